"""The 6.8 message parser (``rfc5322.c``): headers, folded lines, the body — pure, no I/O.

One :class:`Rfc5322Parser` is one ``struct rfc5322_parser``: the session pushes a message
line (:meth:`~Rfc5322Parser.push`, None for the final ``"."``) and calls
:meth:`~Rfc5322Parser.next` until it says :data:`RFC5322_NONE` (needs the next line);
each result comes with the current header name (:attr:`~Rfc5322Parser.hdr`) and a value
(:attr:`~Rfc5322Parser.value`), as ``struct rfc5322_result`` does.  ``smtp_session.c``
(6.8 ``smtp_tx_dataline()``) decides what goes into the message file; this module only
parses.  Errors (-1 in C: a header name of 1024 bytes or more, an unfolded value of 64 KiB
or more, a line after the headers that is neither empty nor a body line, anything after
the end) come back as :data:`RFC5322_ERR`.
"""

from __future__ import annotations

__all__ = [
    "RFC5322_ERR", "RFC5322_NONE", "RFC5322_HEADER_START", "RFC5322_HEADER_CONT",
    "RFC5322_HEADER_END", "RFC5322_END_OF_HEADERS", "RFC5322_BODY_START", "RFC5322_BODY",
    "RFC5322_END_OF_MESSAGE", "Rfc5322Parser",
]

# rfc5322.h: what rfc5322_next() returns (and the parser's last state)
RFC5322_ERR = -1
RFC5322_NONE = 0
RFC5322_HEADER_START = 1
RFC5322_HEADER_CONT = 2
RFC5322_HEADER_END = 3
RFC5322_END_OF_HEADERS = 4
RFC5322_BODY_START = 5
RFC5322_BODY = 6
RFC5322_END_OF_MESSAGE = 7

HDR_BUFMAX = 1024  # rfc5322.c rfc5322_parser_new(): hdr.bufmax
VAL_BUFMAX = 65536  # rfc5322.c rfc5322_parser_new(): val.bufmax


def _roundup256(need: int) -> int:
    """``rfc5322.c:buf_alloc()``: allocations are whole multiples of 256 bytes."""
    return (need + 255) // 256 * 256


class Rfc5322Parser:
    """``struct rfc5322_parser`` and the functions of ``rfc5322.c`` acting on it.

    The two ``struct buf`` are modelled by their sizes only where the C checks them
    (``buflen`` / ``bufsz`` against ``bufmax``): the header name and the unfolded value
    themselves are :attr:`hdr` and ``_val``."""

    __slots__ = ("line", "state", "_need_data", "unfold", "currhdr", "hdr", "value",
                 "_hdr_buflen", "_hdr_bufsz", "_val", "_val_bufsz")

    line: bytes | None  # the pushed line not consumed yet
    state: int  # the last result of next(): RFC5322_* (RFC5322_ERR after an error)
    _need_data: bool  # parser->next: the pushed line is consumed
    unfold: bool  # the current header's lines are being unfolded into _val
    currhdr: bytes | None  # the current header's first value (until unfolded)
    hdr: bytes  # res->hdr: the current header's name
    value: bytes | None  # res->value of the last next() (None: NULL)
    _hdr_buflen: int
    _hdr_bufsz: int
    _val: bytearray
    _val_bufsz: int

    def __init__(self) -> None:
        """``rfc5322.c:rfc5322_parser_new()``: an empty parser (``rfc5322_clear()``)."""
        self.currhdr = None
        self.unfold = False
        self.hdr = b""
        self.value = None
        self._hdr_bufsz = 0
        self._val = bytearray()
        self._val_bufsz = 0
        self.clear()

    def clear(self) -> None:
        """``rfc5322.c:rfc5322_clear()``: back to RFC5322_NONE (the buffers keep their size)."""
        self.line = None
        self.state = RFC5322_NONE
        self._need_data = False
        self._hdr_buflen = 0
        self._val.clear()

    def push(self, line: bytes | None) -> bool:
        """``rfc5322.c:rfc5322_push()``: the next message line (None: the end of the
        message); False (EALREADY) while the previous line is not consumed."""
        if self.line is not None:
            return False
        self.line = line
        self._need_data = False
        return True

    def unfold_header(self) -> bool:
        """``rfc5322.c:rfc5322_unfold_header()``: collect the current header's value and
        its continuation lines into one value, given at RFC5322_HEADER_END."""
        if self.unfold or self.currhdr is None:
            return False  # EALREADY / EOPNOTSUPP
        if not self._val_cat(self.currhdr):
            return False
        self.currhdr = None
        self.unfold = True
        return True

    def next(self) -> int:
        """``rfc5322.c:rfc5322_next()``: the next result, RFC5322_NONE when the pushed line
        is consumed (push the next one), RFC5322_ERR on an error."""
        self.value = None  # memset(res, 0, sizeof(*res))
        if self._need_data:
            return RFC5322_NONE
        r = self._next()
        self.state = r
        return r

    def _next(self) -> int:
        """``rfc5322.c:_rfc5322_next()``: one step from the last state."""
        line = self.line
        st = self.state
        if st == RFC5322_HEADER_START or st == RFC5322_HEADER_CONT:
            if line is not None and line[:1] in (b" ", b"\t"):
                self.line = None
                self._need_data = True
                if self.unfold and not (self._val_cat(b"\n") and self._val_cat(line)):
                    return RFC5322_ERR
                self.value = line
                return RFC5322_HEADER_CONT
            if self.unfold:
                self.value = bytes(self._val)
                self._val.clear()
                self.unfold = False
            return RFC5322_HEADER_END
        if st == RFC5322_NONE or st == RFC5322_HEADER_END:
            pos = line.find(b":") if line is not None else -1
            if line is not None and pos >= 0:
                need = self._hdr_buflen + pos + 1  # buf_grow(&parser->hdr, len + 1)
                if self._hdr_bufsz < need:
                    if need >= HDR_BUFMAX:
                        return RFC5322_ERR  # ERANGE
                    self._hdr_bufsz = _roundup256(need)
                self.hdr = line[:pos]
                self._hdr_buflen = pos + 1
                self.line = None
                self._need_data = True
                self.currhdr = self.value = line[pos + 1:]
                return RFC5322_HEADER_START
            return RFC5322_END_OF_HEADERS
        if st == RFC5322_END_OF_HEADERS:
            if line is None:
                return RFC5322_END_OF_MESSAGE
            if line == b"":
                self.line = None
                self._need_data = True
                self.value = line
                return RFC5322_BODY_START
            return RFC5322_ERR  # EINVAL
        if st == RFC5322_BODY_START or st == RFC5322_BODY:
            if line is None:
                return RFC5322_END_OF_MESSAGE
            self.line = None
            self._need_data = True
            self.value = line
            return RFC5322_BODY
        return RFC5322_ERR  # ENOMSG after the end, EINVAL after an error

    def _val_cat(self, s: bytes) -> bool:
        """``rfc5322.c:buf_cat()`` on the unfolding buffer (val.bufmax 65536)."""
        need = len(self._val) + len(s) + 1
        if self._val_bufsz < need:
            if need >= VAL_BUFMAX:
                return False  # ERANGE
            self._val_bufsz = _roundup256(need)
        self._val += s
        return True
