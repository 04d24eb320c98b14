"""Real TLS in ``serve``: STARTTLS upgrades the socket, SMTPS speaks TLS from the first
byte, and the Received: header names the protocol and cipher the connection really has."""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import trustme
from typer.testing import CliRunner

from smtpd_sim.serve.net import NetOptions
from smtpd_sim.serve.tls import make_self_signed, server_context

MESSAGE = b"From: <a@local.test>\r\nTo: <alice@local.test>\r\nSubject: tls\r\n\r\nover TLS\r\n"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("mx.local.test", "127.0.0.1").configure_cert(ctx)
    return ctx


def _client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)  # the server's certificate is verified, hostname included
    return ctx


def _wait_files(maildir: Path, user: str, n: int, timeout: float = 10.0) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while True:
        files = sorted((maildir / user / "new").glob("*")) if (maildir / user / "new").is_dir() else []
        if len(files) >= n or time.monotonic() > deadline:
            return [f.read_bytes() for f in files]
        time.sleep(0.05)


def _received(body: bytes) -> str:
    m = re.search(rb"Received: from .*?;", body, re.S)
    assert m, body
    return m.group(0).decode()


def test_starttls_with_smtplib_reaches_the_maildir(tmp_path: Path, ca: trustme.CA, serve_thread: Any) -> None:
    with serve_thread(maildir=tmp_path, net=NetOptions(ssl_context=_server_ctx(ca))) as st:
        with smtplib.SMTP("127.0.0.1", st.ports["starttls"], timeout=10) as c:
            c.ehlo("client.test")
            assert c.has_extn("starttls")
            code, _ = c.starttls(context=_client_ctx(ca))
            assert code == 220
            version, (cipher, _proto, bits) = c.sock.version(), c.sock.cipher()
            c.ehlo("client.test")
            assert not c.has_extn("starttls")  # secured: no longer offered
            assert c.sendmail("a@local.test", ["alice@local.test"], MESSAGE) == {}
        bodies = _wait_files(tmp_path, "alice", 1)
    assert len(bodies) == 1
    rcv = _received(bodies[0])
    assert "with ESMTPS id" in rcv
    assert f"({version}:{cipher}:{bits}:NO)" in rcv, rcv


def test_received_header_reports_the_negotiated_tls_1_2_cipher(tmp_path: Path, ca: trustme.CA,
                                                              serve_thread: Any) -> None:
    """Not the simulation's default (TLSv1.3, TLS_AES_256_GCM_SHA384): what the client and
    the server agreed on."""
    client = _client_ctx(ca)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ECDHE+AESGCM:!AES256")
    with serve_thread(maildir=tmp_path, net=NetOptions(ssl_context=_server_ctx(ca))) as st:
        with smtplib.SMTP("127.0.0.1", st.ports["starttls"], timeout=10) as c:
            c.starttls(context=client)
            version, (cipher, _proto, bits) = c.sock.version(), c.sock.cipher()
            c.sendmail("a@local.test", ["alice@local.test"], MESSAGE)
        bodies = _wait_files(tmp_path, "alice", 1)
    assert version == "TLSv1.2" and "AES128-GCM" in cipher
    assert f"(TLSv1.2:{cipher}:{bits}:NO)" in _received(bodies[0])


def test_smtps_with_smtp_ssl_reaches_the_maildir(tmp_path: Path, ca: trustme.CA, serve_thread: Any) -> None:
    with serve_thread(maildir=tmp_path, smtps=True, net=NetOptions(ssl_context=_server_ctx(ca))) as st:
        with smtplib.SMTP_SSL("127.0.0.1", st.ports["smtps"], timeout=10, context=_client_ctx(ca)) as c:
            code, _ = c.ehlo("client.test")
            assert code == 250 and not c.has_extn("starttls")
            version, (cipher, _proto, bits) = c.sock.version(), c.sock.cipher()
            assert c.sendmail("a@local.test", ["alice@local.test"], MESSAGE) == {}
        bodies = _wait_files(tmp_path, "alice", 1)
    assert "with ESMTPS id" in _received(bodies[0])
    assert f"({version}:{cipher}:{bits}:NO)" in _received(bodies[0])


def test_plain_text_after_starttls_fails_the_handshake_only(ca: trustme.CA, serve_thread: Any,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """A client that goes on in clear text after ``220 Ready to start TLS`` is no TLS
    client: the handshake fails, that connection ends, the next client is served."""
    with serve_thread(net=NetOptions(ssl_context=_server_ctx(ca))) as st:
        s = socket.create_connection(("127.0.0.1", st.ports["starttls"]), 5)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO x\r\n")
        while f.readline()[3:4] == b"-":
            pass
        s.sendall(b"STARTTLS\r\n")
        assert f.readline().startswith(b"220 2.0.0 Ready to start TLS")
        s.sendall(b"EHLO x\r\nMAIL FROM:<a@local.test>\r\n")
        rest = f.read()  # the server drops the connection; no SMTP reply in clear text
        s.close()
        assert b"250" not in rest
        with smtplib.SMTP("127.0.0.1", st.ports["starttls"], timeout=10) as c:
            c.starttls(context=_client_ctx(ca))
            assert c.noop()[0] == 250
    assert any("tls handshake" in r.getMessage() for r in caplog.records)


def test_without_a_certificate_a_self_signed_pair_is_made(tmp_path: Path, serve_thread: Any) -> None:
    with serve_thread(smtps=True) as st:
        cert, key = st.server.tls_files
        assert cert.is_file() and key.is_file()
        client = ssl.create_default_context(cafile=str(cert))
        with smtplib.SMTP_SSL("127.0.0.1", st.ports["smtps"], timeout=10, context=client) as c:
            assert c.noop()[0] == 250


def test_server_context_loads_a_pair_and_rejects_a_bad_one(tmp_path: Path) -> None:
    cert, key = make_self_signed("mx.local.test", tmp_path / "pki")
    assert server_context(cert, key).minimum_version == ssl.TLSVersion.TLSv1_2
    other_cert, _other_key = make_self_signed("other.test", tmp_path / "other")
    from smtpd_sim.serve.tls import TlsConfigError
    with pytest.raises(TlsConfigError, match="cannot load the pair"):
        server_context(other_cert, key)
    with pytest.raises(TlsConfigError, match="no such file"):
        server_context(tmp_path / "missing.crt", key)


def test_cli_refuses_a_certificate_without_its_key_in_one_line(tmp_path: Path) -> None:
    from smtpd_sim.cli import app
    cert, _key = make_self_signed("mx.local.test", tmp_path)
    r = CliRunner().invoke(app, ["serve", "--port", "0", "--cert", str(cert)])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == ["smtpd-sim: error: --cert and --key go together "
                                             "(or neither: a self-signed pair is made)"]
    r = CliRunner().invoke(app, ["serve", "--port", "0", "--cert", str(tmp_path / "nope.crt"),
                                 "--key", str(tmp_path / "nope.key")])
    assert r.exit_code == 2 and "no such file" in r.output and "Traceback" not in r.output
