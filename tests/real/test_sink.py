"""smtpd_sim.real.sink: the loopback remote MX answers like the research sink (no root)."""

from __future__ import annotations

import socket

import pytest

from smtpd_sim.real.scenarios import SmtpSession
from smtpd_sim.real.sink import Sink, SinkError, rcpt_reply


def _session(port: int) -> SmtpSession:
    return SmtpSession(socket.create_connection(("127.0.0.1", port), 5), timeout=5)


def test_sink_answers_like_the_research_sink(sink: Sink) -> None:
    s = _session(sink.port)
    assert s.greeting.startswith("220 ")
    assert s.cmd("EHLO mx.local.test").startswith("250-")
    assert s.cmd("MAIL FROM:<sender@local.test>").startswith("250")
    assert s.cmd("RCPT TO:<reject-me@relay.test>").startswith("550")
    assert s.cmd("RCPT TO:<defer-me@relay.test>").startswith("451")
    assert s.cmd("RCPT TO:<user@relay.test>").startswith("250")
    assert s.cmd("DATA").startswith("354")
    assert s.data_body(["Subject: x", "", ".leading dot", "body"]).startswith("250")
    assert s.cmd("QUIT").startswith("221")
    s.close()
    assert sink.count == 1
    m = sink.messages[0]
    assert m.mail_from == "sender@local.test" and m.rcpt_tos == ["user@relay.test"]
    assert [a for a, _ in sink.rejected] == ["reject-me@relay.test", "defer-me@relay.test"]


def test_sink_rules_and_loopback_only() -> None:
    assert rcpt_reply("Reject.x@relay.test").startswith("550")
    assert rcpt_reply("deferred@relay.test").startswith("451")
    assert rcpt_reply("user@relay.test").startswith("250")
    with pytest.raises(SinkError, match="loopback"):
        Sink(port=0, host="10.0.0.1")


def test_sink_stop_hangs_up_and_frees_the_port(sink: Sink) -> None:
    s = _session(sink.port)
    port = sink.port
    sink.stop()
    assert not sink.running
    assert s.cmd("NOOP") in ("<EOF>", "<TIMEOUT>")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), 1)


def test_sink_port_in_use_is_a_clear_error(sink: Sink) -> None:
    with pytest.raises(SinkError, match="cannot listen"):
        Sink(port=sink.port).start()
