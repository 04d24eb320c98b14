"""The 5.7.3 message parser (``rfc2822.c``): headers by callback, body lines by callback.

One :class:`Rfc2822Parser` is one ``struct rfc2822_parser``: the owner registers a
callback per header name (:meth:`~Rfc2822Parser.header_callback`, case-insensitive), a
default one and a body-line one, then feeds the message line by line
(:meth:`~Rfc2822Parser.feed`).  A header is handed over, name and lines, when the next
line is not a continuation; the blank line ends the headers; body lines go straight to
the body callback.  ``smtp_session.c`` (5.7.3) registers its callbacks in
``smtp_session()`` and releases them in ``smtp_free()``.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["RFC2822_MAX_LINE_SIZE", "HeaderCallback", "LineCallback", "Rfc2822Parser"]

RFC2822_MAX_LINE_SIZE = 998  # rfc2822.h: a header line longer than this is an error

_ISSPACE = frozenset(b" \t\n\v\f\r")  # isspace() in the C locale

HeaderCallback = Callable[[bytes, list[bytes]], None]  # (struct rfc2822_header: name, lines)
LineCallback = Callable[[bytes], None]


def _hdr_dflt_cb(name: bytes, lines: list[bytes]) -> None:
    """``rfc2822.c:hdr_dflt_cb()``: the default header callback, a no-op."""


def _body_dflt_cb(line: bytes) -> None:
    """``rfc2822.c:body_dflt_cb()``: the default body callback, a no-op."""


class Rfc2822Parser:
    """``struct rfc2822_parser`` and the functions of ``rfc2822.c`` acting on it."""

    __slots__ = ("in_hdrs", "in_hdr", "name", "lines", "_hdr_cb", "_hdr_dflt_cb", "_body_line_cb")

    in_hdrs: bool  # in the message's headers
    in_hdr: bool  # in one header (its callback is pending)
    name: bytes  # header.name
    lines: list[bytes]  # header.lines
    _hdr_cb: dict[bytes, HeaderCallback]  # hdr_cb, by lower-case name
    _hdr_dflt_cb: HeaderCallback
    _body_line_cb: LineCallback

    def __init__(self) -> None:
        """``rfc2822.c:rfc2822_parser_init()``: no headers seen, no-op callbacks."""
        self.in_hdrs = False
        self.in_hdr = False
        self.name = b""
        self.lines = []
        self._hdr_cb = {}
        self._hdr_dflt_cb = _hdr_dflt_cb
        self._body_line_cb = _body_dflt_cb

    def header_callback(self, header: bytes, func: HeaderCallback) -> bool:
        """``rfc2822.c:rfc2822_header_callback()``: ``func`` for the headers named ``header``
        (case-insensitive; replaces an earlier one); False for a name over the line size."""
        if len(header) >= RFC2822_MAX_LINE_SIZE + 1:
            return False
        self._hdr_cb[header.lower()] = func
        return True

    def header_default_callback(self, func: HeaderCallback) -> None:
        """``rfc2822.c:rfc2822_header_default_callback()``: for every other header."""
        self._hdr_dflt_cb = func

    def body_callback(self, func: LineCallback) -> None:
        """``rfc2822.c:rfc2822_body_callback()``: for every body line."""
        self._body_line_cb = func

    def reset(self) -> None:
        """``rfc2822.c:rfc2822_parser_reset()`` (before each message): the header lines
        dropped, back in the headers (``in_hdr`` and the name survive, as in C)."""
        self.lines = []
        self.in_hdrs = True

    def release(self) -> None:
        """``rfc2822.c:rfc2822_parser_release()``: reset, and the callbacks dropped."""
        self.reset()
        self._hdr_cb = {}
        self._hdr_dflt_cb = _hdr_dflt_cb
        self._body_line_cb = _body_dflt_cb

    def feed(self, line: bytes) -> bool:
        """``rfc2822.c:rfc2822_parser_feed()``: one message line (no CRLF, no NUL); False
        (0 in C) for a malformed header line."""
        if self.in_hdr and (not line or line[0] not in _ISSPACE):
            self._header_callback()
        if not line:
            self.in_hdrs = False
        if self.in_hdrs:
            if len(line) >= RFC2822_MAX_LINE_SIZE + 1:
                return False
            return self._feed_header(line)
        self._body_line_cb(line)  # parser_feed_body() -> body_callback()
        return True

    def _header_callback(self) -> None:
        """``rfc2822.c:header_callback()``: the header's callback, then ``header_reset()``."""
        func = self._hdr_cb.get(self.name.lower(), self._hdr_dflt_cb)
        func(self.name, self.lines)
        self.lines = []
        self.in_hdr = False

    def _feed_header(self, line: bytes) -> bool:
        """``rfc2822.c:parser_feed_header()``: a new header (its name, then its first value
        as a line) or a continuation line of the current one."""
        if line and line[0] not in _ISSPACE:
            self.in_hdr = True
            pos = line.find(b":")
            if pos < 0:
                return False
            self.name = line[:pos]
            rest = line[pos + 1:]
            return self._feed_header(rest if rest[:1] and rest[0] in _ISSPACE else b" " + rest)
        if not self.in_hdr:
            return False
        self.lines.append(line)
        return True
