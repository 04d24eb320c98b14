"""The 5.7.3 message parser (``model/smtpd_sim/fsm/rfc2822.py``, ``rfc2822.c``) on its own:
which callback gets which header, continuation lines, the body, its errors."""

from __future__ import annotations

from smtpd_sim.fsm.rfc2822 import RFC2822_MAX_LINE_SIZE, HeaderCallback, Rfc2822Parser


class Recorder:
    """Callbacks that record what they were given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, list[bytes]] | tuple[str, bytes]] = []

    def header(self, tag: str) -> HeaderCallback:
        return lambda name, lines: self.calls.append((tag, name, list(lines)))

    def body(self, line: bytes) -> None:
        self.calls.append(("body", line))


def parser() -> tuple[Rfc2822Parser, Recorder]:
    p, rec = Rfc2822Parser(), Recorder()
    p.header_default_callback(rec.header("default"))
    p.header_callback(b"to", rec.header("to"))
    p.body_callback(rec.body)
    p.reset()
    return p, rec


def test_headers_go_to_their_callback_when_the_next_one_starts() -> None:
    p, rec = parser()
    assert p.feed(b"TO: a,") and p.feed(b"\tb") and rec.calls == []
    assert p.feed(b"Subject:x")
    assert rec.calls == [("to", b"TO", [b" a,", b"\tb"])]  # case-insensitive name
    assert p.feed(b"") and p.feed(b"body") and p.feed(b" Not: a header")
    assert rec.calls[1:] == [("default", b"Subject", [b" x"]), ("body", b""), ("body", b"body"),
                             ("body", b" Not: a header")]
    assert not p.in_hdrs and not p.in_hdr


def test_the_last_header_waits_for_a_line_that_is_not_a_continuation() -> None:
    p, rec = parser()
    assert p.feed(b"Subject: s")
    p.reset()  # the next message: in_hdr and the name survive rfc2822_parser_reset()
    assert p.in_hdr and p.in_hdrs and p.lines == []
    assert p.feed(b"X: y")
    assert rec.calls == [("default", b"Subject", [])]


def test_malformed_header_lines() -> None:
    p, _ = parser()
    assert not p.feed(b"no colon")
    p, _ = parser()
    assert not p.feed(b" continuation before any header")
    p, _ = parser()
    assert p.feed(b"L:" + b"x" * (RFC2822_MAX_LINE_SIZE - 2))
    assert not p.feed(b"L:" + b"x" * (RFC2822_MAX_LINE_SIZE - 1))  # 999 bytes
    p, rec = parser()
    assert p.feed(b"") and p.feed(b"y" * 5000)  # no limit on body lines
    assert rec.calls == [("body", b""), ("body", b"y" * 5000)]


def test_registration_and_release() -> None:
    p, rec = parser()
    p.header_callback(b"To", rec.header("to2"))  # replaces the earlier "to"
    assert not p.header_callback(b"n" * (RFC2822_MAX_LINE_SIZE + 1), rec.header("long"))
    p.feed(b"to: a")
    p.feed(b"")
    assert rec.calls == [("to2", b"to", [b" a"]), ("body", b"")]
    p.release()
    assert p.in_hdrs and p.feed(b"to: a") and p.feed(b"") and p.feed(b"x")
    assert len(rec.calls) == 2  # the callbacks are gone
