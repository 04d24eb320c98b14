"""The 6.8 message parser (``model/smtpd_sim/fsm/rfc5322.py``, ``rfc5322.c``) on its own:
what ``rfc5322_next()`` returns line by line, unfolding, and its errors."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smtpd_sim.fsm.rfc5322 import (
    RFC5322_BODY,
    RFC5322_BODY_START,
    RFC5322_END_OF_HEADERS,
    RFC5322_END_OF_MESSAGE,
    RFC5322_ERR,
    RFC5322_HEADER_CONT,
    RFC5322_HEADER_END,
    RFC5322_HEADER_START,
    RFC5322_NONE,
    Rfc5322Parser,
)


def feed(p: Rfc5322Parser, line: bytes | None, unfold: tuple[bytes, ...] = ()) -> list[tuple]:
    """Push one line and drain the parser the way ``smtp_tx_dataline()`` does: the
    results (code, header, value) up to RFC5322_NONE / END_OF_MESSAGE / ERR."""
    assert p.push(line)
    out: list[tuple] = []
    while True:
        r = p.next()
        if r == RFC5322_NONE:
            return out
        out.append((r, p.hdr if r in (RFC5322_HEADER_START, RFC5322_HEADER_CONT, RFC5322_HEADER_END)
                    else None, p.value))
        if r == RFC5322_HEADER_START and p.hdr.lower() in unfold:
            p.unfold_header()
        if r in (RFC5322_END_OF_MESSAGE, RFC5322_ERR):
            return out


def test_headers_body_and_end() -> None:
    p = Rfc5322Parser()
    assert feed(p, b"Subject: hi") == [(RFC5322_HEADER_START, b"Subject", b" hi")]
    assert feed(p, b"\tthere") == [(RFC5322_HEADER_CONT, b"Subject", b"\tthere")]
    assert feed(p, b"From:a") == [(RFC5322_HEADER_END, b"Subject", None),
                                  (RFC5322_HEADER_START, b"From", b"a")]
    assert feed(p, b"") == [(RFC5322_HEADER_END, b"From", None), (RFC5322_END_OF_HEADERS, None, None),
                            (RFC5322_BODY_START, None, b"")]
    assert feed(p, b"body: not a header") == [(RFC5322_BODY, None, b"body: not a header")]
    assert feed(p, b" indented") == [(RFC5322_BODY, None, b" indented")]
    assert feed(p, None) == [(RFC5322_END_OF_MESSAGE, None, None)]
    assert p.state == RFC5322_END_OF_MESSAGE


def test_unfolded_value_comes_at_header_end() -> None:
    p = Rfc5322Parser()
    assert feed(p, b"To: a,", unfold=(b"to",)) == [(RFC5322_HEADER_START, b"To", b" a,")]
    assert feed(p, b" b") == [(RFC5322_HEADER_CONT, b"To", b" b")]
    assert feed(p, b"Cc: c") == [(RFC5322_HEADER_END, b"To", b" a,\n b"),
                                 (RFC5322_HEADER_START, b"Cc", b" c")]
    assert not p.unfold and p.unfold_header() and not p.unfold_header()  # EALREADY


def test_a_message_without_headers_or_body() -> None:
    p = Rfc5322Parser()
    assert feed(p, b"no colon here") == [(RFC5322_END_OF_HEADERS, None, None), (RFC5322_ERR, None, None)]
    assert p.state == RFC5322_ERR
    p = Rfc5322Parser()
    assert feed(p, None) == [(RFC5322_END_OF_HEADERS, None, None), (RFC5322_END_OF_MESSAGE, None, None)]
    assert feed(p, b"x") == [(RFC5322_ERR, None, None)]  # ENOMSG: a line after the end


def test_push_refuses_a_second_line_and_clear_starts_over() -> None:
    p = Rfc5322Parser()
    assert p.push(b"A: 1") and not p.push(b"B: 2")  # EALREADY
    assert p.next() == RFC5322_HEADER_START and p.next() == RFC5322_NONE
    p.clear()
    assert p.state == RFC5322_NONE and p.push(b"")
    assert p.next() == RFC5322_END_OF_HEADERS and p.next() == RFC5322_BODY_START


def test_buffer_limits() -> None:
    p = Rfc5322Parser()  # hdr.bufmax 1024: the previous name's length counts (buf_grow())
    assert feed(p, b"h" * 1022 + b":v")[0][0] == RFC5322_HEADER_START
    p = Rfc5322Parser()
    assert feed(p, b"h" * 1023 + b":v") == [(RFC5322_ERR, None, None)]
    p = Rfc5322Parser()
    assert feed(p, b"a" * 600 + b":v")[0][0] == RFC5322_HEADER_START
    assert feed(p, b"b" * 600 + b":v") == [(RFC5322_HEADER_END, b"a" * 600, None), (RFC5322_ERR, None, None)]
    p = Rfc5322Parser()  # val.bufmax 65536 for an unfolded value
    feed(p, b"To: x", unfold=(b"to",))
    assert feed(p, b" " + b"y" * 65000) == [(RFC5322_HEADER_CONT, b"To", b" " + b"y" * 65000)]
    assert feed(p, b" " + b"z" * 600) == [(RFC5322_ERR, None, None)]


@given(st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\0", b"")), max_size=20))
def test_any_message_ends_or_fails_once(lines: list[bytes]) -> None:
    """``smtp_tx_dataline()`` stops feeding at the first error (tx->error)."""
    p = Rfc5322Parser()
    results: list[int] = []
    for line in [*lines, None]:
        results += [r for r, _h, _v in feed(p, line)]
        if RFC5322_ERR in results:
            break
    assert results.count(RFC5322_END_OF_MESSAGE) + results.count(RFC5322_ERR) == 1
    assert results[-1] in (RFC5322_END_OF_MESSAGE, RFC5322_ERR)
