"""``serve``'s network edge: one connection's failure never stops the server, and a dead
simulation pump stops it loudly instead of leaving it hanging."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
import threading
import time
from typing import Any

import pytest
from typer.testing import CliRunner

from smtpd_sim.serve.net import LiveConnection, NetEdge, NetOptions, PumpError


def _reset(s: socket.socket) -> None:
    """Close with SO_LINGER (on, 0 s): the kernel sends RST instead of FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def _reply(f: Any) -> bytes:
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
    return line


def _send_one(port: int, rcpt: str = "bob@local.test") -> tuple[bytes, bytes]:
    """A whole session; (banner, reply to the final dot)."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    f = s.makefile("rb")
    banner = _reply(f)
    for cmd in (b"EHLO fresh.test", b"MAIL FROM:<a@local.test>", f"RCPT TO:<{rcpt}>".encode(), b"DATA"):
        s.sendall(cmd + b"\r\n")
        _reply(f)
    s.sendall(b"Subject: fresh\r\n\r\nhello\r\n.\r\n")
    end = _reply(f)
    s.sendall(b"QUIT\r\n")
    _reply(f)
    s.close()
    return banner, end


def _open(port: int, steps: list[bytes]) -> tuple[socket.socket, Any]:
    """Connect, read the banner, send each step and read its reply."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    f = s.makefile("rb")
    _reply(f)
    for cmd in steps:
        s.sendall(cmd)
        _reply(f)
    return s, f


def _rst_before_banner(port: int) -> None:
    _reset(socket.create_connection(("127.0.0.1", port), 5))


def _rst_mid_command(port: int) -> None:
    s, _f = _open(port, [b"EHLO x\r\n"])
    s.sendall(b"MAIL FROM:<half@loc")
    time.sleep(0.05)
    _reset(s)


def _rst_mid_data(port: int) -> None:
    s, _f = _open(port, [b"EHLO x\r\n", b"MAIL FROM:<a@local.test>\r\n", b"RCPT TO:<alice@local.test>\r\n",
                         b"DATA\r\n"])
    s.sendall(b"Subject: half\r\n\r\nnot fin")
    time.sleep(0.05)
    _reset(s)


def _rst_after_quit(port: int) -> None:
    s, _f = _open(port, [b"EHLO x\r\n"])
    s.sendall(b"QUIT\r\n")
    _reset(s)  # before the 221 is read (or even written)


def _rst_after_server_close(port: int) -> None:
    s, f = _open(port, [b"EHLO x\r\n"])
    s.sendall(b"QUIT\r\n")
    _reply(f)
    assert f.read() == b""  # the server's FIN
    s.sendall(b"NOOP\r\n")  # the server still drains input while it lingers
    _reset(s)


def _rst_http_after_error(port: int) -> None:
    """The issue's case: ``printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc`` then a reset."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.recv(4096)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    time.sleep(0.05)
    _reset(s)


RESETS = [_rst_before_banner, _rst_mid_command, _rst_mid_data, _rst_after_quit,
          _rst_after_server_close, _rst_http_after_error]


def test_a_reset_at_every_smtp_state_ends_only_that_connection(tmp_path: Any, serve_thread: Any) -> None:
    """After each reset a fresh client still gets its banner and a 250 for a message; the
    half-sent message is not delivered, the server task is still running."""
    with serve_thread(maildir=tmp_path) as st:
        for i, reset in enumerate(RESETS):
            for _ in range(3):  # the race windows differ from one try to the next
                reset(st.port)
            time.sleep(0.1)
            banner, end = _send_one(st.port)
            assert banner.startswith(b"220 "), (reset.__name__, banner)
            assert end.startswith(b"250 "), (reset.__name__, end)
            assert st.error is None and not st.done.is_set(), reset.__name__
            assert st.call(lambda: st.server.sim.ledger.summary()["accepted"]) == i + 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and st.call(lambda: st.server.per_user.get("bob", 0)) < len(RESETS):
            time.sleep(0.1)
        assert st.call(lambda: dict(st.server.per_user)) == {"bob": len(RESETS)}
        assert st.call(lambda: st.server.edge.sessions) == 0  # every session collected


class _DeadTransport(asyncio.Transport):
    """A transport whose peer reset: writes and shutdown fail as the kernel makes them fail."""

    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.7", 4242) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.aborted

    def can_write_eof(self) -> bool:
        return True

    def write(self, data: Any) -> None:
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")

    def write_eof(self) -> None:
        raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")

    def abort(self) -> None:
        self.aborted = True


def test_write_errors_are_caught_at_the_connection_edge(caplog: pytest.LogCaptureFixture) -> None:
    """``write_eof()`` → ENOTCONN (the issue's traceback) and a failing write are one log
    line each naming the peer and the session; the connection is dropped, nothing raises."""
    async def run() -> list[_DeadTransport]:
        edge = NetEdge(None, NetOptions())  # type: ignore[arg-type]
        out = []
        for act in (lambda c: c.server_reply("250 2.0.0 Ok"), lambda c: c.server_close("quit")):
            t = _DeadTransport()
            conn = LiveConnection(None, edge, t, "192.0.2.7", "plain")  # type: ignore[arg-type]
            conn.sid = 0xABCDEF
            act(conn)
            out.append(t)
        return out

    with caplog.at_level(logging.WARNING, logger="smtpd_sim.serve"):
        transports = asyncio.run(run())
    assert all(t.aborted for t in transports)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert all("192.0.2.7:4242 session 0000000000abcdef" in x for x in lines)
    assert "ConnectionResetError" in lines[0] and "Errno 107" in lines[1]
    assert all("\n" not in x for x in lines)


def test_a_dying_pump_stops_serve_with_an_error(serve_thread: Any) -> None:
    """An exception inside the pump is logged and serve() raises PumpError (a supervisor
    sees the exit) instead of the server hanging with no banner for anyone."""
    with serve_thread() as st:
        assert _send_one(st.port)[1].startswith(b"250 ")

        def boom() -> None:
            raise RuntimeError("simulated kernel bug")

        st.loop.call_soon_threadsafe(setattr, st.server, "advance", boom)
        assert st.done.wait(5), "serve() kept running with a dead pump"
    assert isinstance(st.error, PumpError)
    assert str(st.error) == "the simulation pump failed: RuntimeError: simulated kernel bug"


def test_cli_exits_1_with_one_line_when_the_pump_dies(monkeypatch: pytest.MonkeyPatch) -> None:
    from smtpd_sim.cli import app
    from smtpd_sim.serve.server import LiveServer

    def boom(self: LiveServer) -> None:
        raise RuntimeError("simulated kernel bug")

    monkeypatch.setattr(LiveServer, "advance", boom)
    r = CliRunner().invoke(app, ["serve", "--port", "0", "--tls-port", "0"])
    assert r.exit_code == 1, r.output
    lines = [x for x in r.output.splitlines() if not x.startswith("smtpd-sim serving")]
    assert lines == ["smtpd-sim: fatal: the simulation pump failed: RuntimeError: simulated kernel bug"]
    assert "Traceback" not in r.output


def _close_early(port: int, n: int) -> None:
    """Clients that write and close at once, some without reading the banner (their close
    is then a reset): the server's reply and close meet a socket the client already shut."""
    for i in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), 5)
            if i % 2:
                s.recv(100)
            s.sendall(b"EHLO x\r\nQUIT\r\n" if i % 3 == 0 else b"QUIT\r\n")
            if i % 4 == 0:
                time.sleep(0.001 * (i % 7))
            s.close()
        except OSError:
            pass


def test_a_storm_of_early_closes_leaves_the_server_answering(serve_thread: Any) -> None:
    """The issue's freeze: ``write_eof()`` raising ENOTCONN inside the pump stopped every
    later banner. 800 early-closing clients from 20 threads, then a fresh client."""
    with serve_thread() as st:
        threads = [threading.Thread(target=_close_early, args=(st.port, 40)) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        banner, end = _send_one(st.port)
        assert banner.startswith(b"220 ") and end.startswith(b"250 ")
        assert st.error is None and not st.done.is_set()
