"""The ``serve`` command's start: every listener bound before ``serving on``; a port that
cannot be bound is named (plain, STARTTLS or SMTPS) in one line, exit status 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smtpd_sim.cli import app


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    yield s.getsockname()[1]
    s.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("which, label", [("--port", "plain SMTP"), ("--tls-port", "STARTTLS"),
                                          ("--smtps-port", "SMTPS")])
def test_a_busy_port_is_named_in_one_line(which: str, label: str, busy_port: int) -> None:
    ports = {"--port": _free_port(), "--tls-port": _free_port(), "--smtps-port": _free_port()}
    ports[which] = busy_port
    args = ["serve"] + [x for k, v in ports.items() for x in (k, str(v))]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.output.splitlines() == [
        f"smtpd-sim: error: cannot listen on 127.0.0.1:{busy_port} ({label} listener): "
        f"Address already in use"]  # and no "serving on" before it


def test_serving_is_printed_once_every_listener_is_bound(tmp_path: Path) -> None:
    """The first line out names the bound ports (0: the kernel's choice) and a client
    connecting right after reading it gets the banner, on each listener."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen(
        [sys.executable, "-c", "from smtpd_sim.cli import main; main()", "serve",
         "--port", "0", "--tls-port", str(_free_port()), "--smtps-port", str(_free_port()),
         "--maildir", str(tmp_path / "m"), "--spool", str(tmp_path / "s.mbox")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert p.stdout is not None
        first = p.stdout.readline()
        assert first.startswith("smtpd-sim serving pony-6.8 on 127.0.0.1:"), first
        assert "(STARTTLS)" in first and "(SMTPS)" in first
        plain = int(first.split("127.0.0.1:")[1].split()[0])
        assert plain != 0
        with socket.create_connection(("127.0.0.1", plain), 5) as c:
            assert c.recv(100).startswith(b"220 ")
        cert_line = p.stdout.readline()
        assert cert_line.startswith("self-signed TLS certificate: ")
        assert Path(cert_line.split(": ", 1)[1].split(" (key")[0]).is_file()
    finally:
        p.send_signal(signal.SIGINT)
        _out, err = p.communicate(timeout=15)
    assert "stopped: 0 delivered, 0 relayed" in err


def test_bad_limits_are_one_line_and_status_2() -> None:
    for args, text in ((["--session-timeout", "0"], "--session-timeout"),
                       (["--max-sessions", "-1"], "--max-sessions"),
                       (["--max-message-size", "0"], "--max-message-size")):
        r = CliRunner().invoke(app, ["serve", "--port", "0", *args])
        assert r.exit_code == 2, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1 and text in r.output, r.output


def test_the_cli_defaults_are_the_servers() -> None:
    """cli/serve.py repeats two defaults of serve.net (importing it would load the compiled
    hot path before native.prepare()): they must agree."""
    from smtpd_sim.cli import serve as cli_serve
    from smtpd_sim.serve import net

    assert cli_serve.SMTPD_SESSION_TIMEOUT == net.SMTPD_SESSION_TIMEOUT
    assert cli_serve.DEFAULT_MAX_BODY_SIZE == net.DEFAULT_MAX_BODY_SIZE == net.NetOptions().max_message_size
