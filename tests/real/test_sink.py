"""smtpd_sim.real.sink: the loopback remote MX answers like the research sink (no root)."""

from __future__ import annotations

import socket
from pathlib import Path

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


def test_sink_with_dsn_and_starttls_verifies_with_the_test_root(tmp_path: Path) -> None:
    """A sink with ``dsn`` and ``tls`` (a chain of 2 from testpki): EHLO lists DSN and
    STARTTLS, the handshake verifies against the root alone (the intermediate comes from
    the sink), STARTTLS disappears from the second EHLO, and the parameters are kept."""
    import ssl

    from smtpd_sim.real.testpki import write_sink_pki

    chain, key = write_sink_pki(tmp_path, {"tls2.sink.test": 2})["tls2.sink.test"]
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(chain, key)
    with Sink(port=0, dsn=True, tls=server) as sk:
        s = _session(sk.port)
        ehlo = s.cmd("EHLO mx.local.test").split("\n")
        assert "250-DSN" in ehlo and "250-STARTTLS" in ehlo
        assert s.cmd("STARTTLS").startswith("220")
        client = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        s.sock = client.wrap_socket(s.sock, server_hostname="tls2.sink.test")  # verifies chain and name
        assert "250-STARTTLS" not in s.cmd("EHLO mx.local.test").split("\n")
        assert s.cmd("MAIL FROM:<bob@local.test> RET=HDRS ENVID=x").startswith("250")
        assert s.cmd("RCPT TO:<user@dsn.test> NOTIFY=SUCCESS ORCPT=rfc822;user@dsn.test").startswith("250")
        assert s.cmd("DATA").startswith("354")
        assert s.data_body(["Subject: x", "", "body"]).startswith("250")
        s.cmd("QUIT")
        s.close()
        assert sk.count == 1
        m = sk.messages[0]
    assert m.tls and m.params == ["RET=HDRS", "ENVID=x", "NOTIFY=SUCCESS", "ORCPT=rfc822;user@dsn.test"]


def test_plain_sink_offers_neither_dsn_nor_starttls(sink: Sink) -> None:
    s = _session(sink.port)
    ehlo = s.cmd("EHLO mx.local.test").split("\n")
    assert "250-DSN" not in ehlo and "250-STARTTLS" not in ehlo
    assert s.cmd("STARTTLS").startswith("500")
    s.close()
