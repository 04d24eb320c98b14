"""``serve``'s timeouts and limits, as 6.8.0p2 has them (small values so the tests run in
seconds): the idle session timeout, the session limit, serve's per-address limit and the
maximum message size."""

from __future__ import annotations

import asyncio
import socket
import time
from types import SimpleNamespace
from typing import Any

import pytest

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.serve.net import (
    PER_IP_REPLY,
    SMTPD_SESSION_TIMEOUT,
    LiveConnection,
    NetEdge,
    NetOptions,
)


def _connect(port: int, timeout: float = 5.0) -> tuple[socket.socket, Any]:
    s = socket.create_connection(("127.0.0.1", port), timeout)
    return s, s.makefile("rb")


def _reply(f: Any) -> bytes:
    line = f.readline()
    out = line
    while line[3:4] == b"-":
        line = f.readline()
        out += line
    return out


def _close(s: socket.socket, f: Any) -> None:
    """Close the socket and its file object (the fd lives while either is open)."""
    f.close()
    s.close()


def _cmd(s: socket.socket, f: Any, line: bytes) -> bytes:
    s.sendall(line + b"\r\n")
    return _reply(f)


def test_defaults_are_the_daemons() -> None:
    """smtpd.h: SMTPD_SESSION_TIMEOUT 300 s, DEFAULT_MAX_BODY_SIZE 35 MB."""
    opts = NetOptions()
    assert opts.session_timeout == SMTPD_SESSION_TIMEOUT == 300
    assert opts.max_message_size == 35 * 1024 * 1024
    assert opts.max_sessions_per_ip == 0


@pytest.mark.parametrize("kw", [{"session_timeout": 0}, {"max_sessions": 0},
                                {"max_sessions_per_ip": -1}, {"max_message_size": 0}])
def test_options_out_of_range_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(SmtpdSimError):
        NetOptions(**kw)


def test_an_idle_session_is_closed_without_a_reply(serve_thread: Any) -> None:
    """IO_TIMEOUT → ``smtp_free(s, "timeout")``: the socket closed, nothing written; the
    open transaction is rolled back; a client that keeps talking is not cut."""
    with serve_thread(net=NetOptions(session_timeout=0.6)) as st:
        s, f = _connect(st.port)
        _reply(f)
        t0 = time.monotonic()
        assert f.read() == b""  # EOF, no 421
        idle = time.monotonic() - t0
        assert 0.5 <= idle < 3.0, idle
        _close(s, f)

        s, f = _connect(st.port)
        _reply(f)
        for line in (b"EHLO x", b"MAIL FROM:<a@local.test>", b"RCPT TO:<alice@local.test>", b"DATA"):
            _cmd(s, f, line)
        s.sendall(b"Subject: stalled\r\n\r\nhalf a body")
        assert f.read() == b""
        _close(s, f)

        s, f = _connect(st.port)
        _reply(f)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:  # 2.5 timeouts of activity
            assert _cmd(s, f, b"NOOP").startswith(b"250")
            time.sleep(0.2)
        _close(s, f)
        time.sleep(0.2)
        ledger = st.call(lambda: st.server.sim.ledger.summary())
        sessions = st.call(lambda: len(st.server.sim.listener().sessions))
    assert ledger["accepted"] == 0  # the stalled message was not accepted
    assert sessions == 0  # every session freed


def test_the_session_limit_pauses_accept_until_a_session_ends(serve_thread: Any) -> None:
    """smtp.c ``smtp_accept()``: ``!smtp_can_accept()`` → ``smtp_pause()``: the next client
    is not refused, it waits unanswered until ``smtp_collect()`` resumes the listeners."""
    with serve_thread(net=NetOptions(max_sessions=2)) as st:
        a, fa = _connect(st.port)
        b, fb = _connect(st.port)
        assert _reply(fa).startswith(b"220") and _reply(fb).startswith(b"220")
        c = socket.create_connection(("127.0.0.1", st.port), 5)  # the kernel's queue takes it
        c.settimeout(0.8)
        with pytest.raises(TimeoutError):
            c.recv(100)
        assert st.call(lambda: st.server.edge.sessions) == 2
        a.sendall(b"QUIT\r\n")
        assert _reply(fa).startswith(b"221")
        _close(a, fa)
        c.settimeout(5)
        assert c.recv(100).startswith(b"220 ")
        _close(b, fb)
        c.close()


def test_sessions_per_address_get_a_421(serve_thread: Any) -> None:
    """serve's own limit (6.8 has none): the 421 and close, like a connect filter's disconnect."""
    with serve_thread(net=NetOptions(max_sessions_per_ip=2)) as st:
        a, fa = _connect(st.port)
        b, fb = _connect(st.port)
        assert _reply(fa).startswith(b"220") and _reply(fb).startswith(b"220")
        c, fc = _connect(st.port)
        assert fc.read() == PER_IP_REPLY.encode() + b"\r\n"
        _close(c, fc)
        _close(a, fa)
        time.sleep(0.2)
        d, fd = _connect(st.port)
        assert _reply(fd).startswith(b"220")
        _close(b, fb)
        _close(d, fd)


def test_max_message_size_is_advertised_and_enforced(tmp_path: Any, serve_thread: Any) -> None:
    """``smtp max-message-size``: EHLO's ``SIZE``, and past it the 6.8 reply of
    ``smtp_message_end()`` for TX_ERROR_SIZE (the FSM's own check)."""
    with serve_thread(maildir=tmp_path, net=NetOptions(max_message_size=1000)) as st:
        s, f = _connect(st.port)
        _reply(f)
        assert b"250-SIZE 1000\r\n" in _cmd(s, f, b"EHLO x")
        replies = []
        for size in (2000, 400):
            _cmd(s, f, b"MAIL FROM:<a@local.test>")
            _cmd(s, f, b"RCPT TO:<alice@local.test>")
            _cmd(s, f, b"DATA")
            body = b"Subject: size\r\n\r\n" + b"".join(b"x" * 99 + b"\r\n" for _ in range(size // 100))
            s.sendall(body + b".\r\n")
            replies.append(_reply(f))
        _cmd(s, f, b"QUIT")
        _close(s, f)
    assert replies[0] == b"554 5.3.4 Message too big for system: Transaction failed, message too big\r\n"
    assert replies[1].startswith(b"250 2.0.0 ")


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.9", 25) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def test_no_timeout_while_the_session_waits_for_the_daemon() -> None:
    """ioev.c ``io_reset()``: a paused io (the session waits for an imsg answer) has no
    timeout; once it waits for the client again the whole timeout runs."""
    fsm = SimpleNamespace(waiting=True)
    timed_out: list[int] = []
    smtp = SimpleNamespace(sessions={7: SimpleNamespace(fsm=fsm)},
                           client_timeout=lambda sid: timed_out.append(sid))
    server = SimpleNamespace(event=lambda fn: fn())

    async def run() -> tuple[bool, bool, float]:
        edge = NetEdge(None, NetOptions(session_timeout=0.2))  # type: ignore[arg-type]
        t = _Transport()
        conn = LiveConnection(server, edge, t, "192.0.2.9", "plain")  # type: ignore[arg-type]
        conn.attach(smtp, 7)
        await asyncio.sleep(0.5)
        during = t.closed
        fsm.waiting = False
        t0 = time.monotonic()
        while not t.closed and time.monotonic() - t0 < 2:
            await asyncio.sleep(0.01)
        return during, t.closed, time.monotonic() - t0

    during, after, waited = asyncio.run(run())
    assert not during
    assert after and timed_out == [7]
    assert waited <= 0.5
