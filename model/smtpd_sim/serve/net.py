"""The network edge of ``smtpd-sim serve``: listening sockets, client connections, TLS,
the session timeout and the session limits, as ``smtp.c`` / ``smtp_session.c`` / ``ioev.c``
of OpenSMTPD 6.8.0p2 keep them.

Every byte still goes through the simulated smtp role; this module owns the sockets.
A connection's failure (a reset, a write on a dead socket, a handshake error) is caught
where it happens, logged as one line (peer, session id, error) and ends that connection
only: nothing raised here may reach the simulation's event loop, where it would wedge
the smtp process (and with it every later client).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import socket
import ssl
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.fsm.smtp_session_common import DEFAULT_MAX_BODY_SIZE

if TYPE_CHECKING:
    from smtpd_sim.serve.server import LiveServer

log = logging.getLogger("smtpd_sim.serve")

MAX_BUFFERED = 1 << 20  # bytes kept for a client before its session has been attached
LINGER_S = 2.0  # how long a closed session still drains client input before the socket closes
SMTPD_SESSION_TIMEOUT = 300.0  # smtpd.h SMTPD_SESSION_TIMEOUT (s): smtp_session() io_set_timeout()
SMTP_FD_RESERVE = 5  # smtp.c SMTP_FD_RESERVE: descriptors kept free by smtp_can_accept()
LISTEN_BACKLOG = 128  # smtp.c smtp_setup_listeners(): listen(l->fd, SMTPD_BACKLOG) (smtpd.h: 5; a
#                       larger queue here so a paused accept keeps clients waiting, not refused)
# serve's own per-address limit: OpenSMTPD 6.8 has none for smtp-in. The refusal takes the
# form a connect-phase filter's `disconnect` takes in 6.8 (lka_filter.c
# filter_result_disconnect() → smtp_session.c IMSG_FILTER_SMTP_PROTOCOL FILTER_DISCONNECT:
# the 421 line, then STATE_QUIT), with serve's text.
PER_IP_REPLY = "421 4.7.0 Too many sessions from your address (smtpd-sim serve limit)"

Kind = Literal["plain", "starttls", "smtps"]
KIND_NAMES = {"plain": "plain SMTP", "starttls": "STARTTLS", "smtps": "SMTPS"}


class BindError(SmtpdSimError):
    """A listener could not be bound (one line naming the port and the listener)."""


class PumpError(RuntimeError):
    """The simulation pump died: the server cannot go on (the caller exits non-zero)."""


def fd_table_sessions() -> int:
    """``smtp.c:smtp_setup_events()``: ``maxsessions = (getdtablesize() - getdtablecount())
    / 2 - SMTP_FD_RESERVE``, and ``smtp_can_accept()`` refuses at ``sessions + 1 ==
    maxsessions``: the number of concurrent sessions it lets in."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        used = 16  # no /proc: a small process's table
    return max(1, (soft - used) // 2 - SMTP_FD_RESERVE - 1)


@dataclass(frozen=True)
class NetOptions:
    """What smtpd.conf and smtpd.h fix for the network side, as ``serve`` options."""

    session_timeout: float = SMTPD_SESSION_TIMEOUT  # idle seconds before smtp_free("timeout")
    max_sessions: int | None = None  # concurrent sessions; None: smtp.c's fd-table figure
    max_sessions_per_ip: int = 0  # 0: no limit (6.8 has none); else serve's own, see PER_IP_REPLY
    max_message_size: int = DEFAULT_MAX_BODY_SIZE  # smtpd.conf `smtp max-message-size` (sc_maxsize)
    ssl_context: ssl.SSLContext | None = None  # STARTTLS and SMTPS; None: no real TLS available

    def __post_init__(self) -> None:
        """Refuse values the daemon would not take."""
        if self.session_timeout <= 0:
            raise SmtpdSimError(f"--session-timeout: expected seconds > 0, got {self.session_timeout}")
        if self.max_sessions is not None and self.max_sessions < 1:
            raise SmtpdSimError(f"--max-sessions: expected 1 or more, got {self.max_sessions}")
        if self.max_sessions_per_ip < 0:
            raise SmtpdSimError(f"--max-sessions-per-ip: expected 0 (none) or more, got "
                                f"{self.max_sessions_per_ip}")
        if self.max_message_size < 1:
            raise SmtpdSimError(f"--max-message-size: expected bytes > 0, got {self.max_message_size}")


@dataclass(frozen=True)
class ListenSpec:
    """One ``listen on`` line: plain, offering STARTTLS, or SMTPS (implicit TLS)."""

    kind: Kind
    host: str
    port: int


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "?"


class LiveConnection:
    """The client side of one TCP connection, as the smtp role sees a client."""

    def __init__(self, server: LiveServer, edge: NetEdge, transport: asyncio.Transport,
                 addr: str, kind: Kind) -> None:
        self.server = server
        self.edge = edge
        self.transport = transport
        self.protocol: _Protocol | None = None
        self.addr = addr
        self.peer = _peer(transport)
        self.kind = kind
        self.smtp: Any = None
        self.sid = 0
        self.pending: list[bytes] = []
        self.closed = False
        self.gone = False
        self.tls_hold: list[bytes] | None = None  # plaintext read before the sim secured the session
        self.collected = False  # counted out of the edge's sessions (smtp_collect())
        self.last_io = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._arm(edge.opts.session_timeout)

    # ---- logging and failure at the edge --------------------------------------------------

    def describe(self) -> str:
        """``peer session-id`` for one log line."""
        return f"{self.peer} session {self.sid:016x}" if self.sid else f"{self.peer} session -"

    def fail(self, where: str, exc: BaseException) -> None:
        """One connection broke: one line, the socket dropped; the sim learns it from
        ``connection_lost`` (IO_ERROR → ``smtp_free()``)."""
        log.warning("smtpd-sim serve: %s: %s: %s: %s", self.describe(), where,
                    type(exc).__name__, exc)
        self.closed = True
        try:
            self.transport.abort()
        except Exception:  # noqa: BLE001 - an already broken transport: nothing left to do
            pass

    # ---- called by the smtp role ----------------------------------------------------------

    def attach(self, smtp: Any, sid: int) -> None:
        """``smtp_session()`` made session ``sid``: what the client sent so far reaches it."""
        self.smtp = smtp
        self.sid = sid
        pending, self.pending = self.pending, []
        for data in pending:
            smtp.client_data(sid, data)
        if self.gone:
            smtp.client_gone(sid)

    def server_reply(self, text: str) -> None:
        """``smtp_reply()``'s lines onto the socket (CRLF)."""
        if self.closed:
            return
        try:
            if not self.transport.is_closing():
                self.transport.write(text.replace("\n", "\r\n").encode("utf-8", "replace") + b"\r\n")
                self.last_io = time.monotonic()
        except Exception as e:  # noqa: BLE001 - the connection's edge
            self.fail("write", e)

    def server_close(self, _reason: str) -> None:
        """Close like a careful server: flush the last reply and send FIN, keep reading (and
        discarding) what the client still sends for a moment, then close. Closing at once with
        unread input would reset the connection and could destroy the reply the client has
        not read yet (say ``500 5.0.0 Line too long`` after a 70 kB line)."""
        self.closed = True
        self._disarm()
        t = self.transport
        try:
            if t.is_closing():
                return
            if t.can_write_eof():
                t.write_eof()
                asyncio.get_running_loop().call_later(LINGER_S, t.close)
            else:
                t.close()
        except Exception as e:  # noqa: BLE001 - e.g. ENOTCONN: the client reset first
            self.fail("close", e)

    def tls_begin(self) -> None:
        """The ``220 Ready to start TLS`` is written (or an SMTPS client connected): what the
        client sends next is its handshake; it stays unread until :meth:`start_tls`."""
        if self.tls_hold is None:
            self.tls_hold = []
        try:
            if not self.transport.is_closing():
                self.transport.pause_reading()
        except Exception as e:  # noqa: BLE001
            self.fail("tls", e)

    def start_tls(self) -> None:
        """The simulated handshake reached the point the real one can run (the certificate
        from lka, the private-key operation done): run it on this socket."""
        if self.closed or self.transport.is_closing():
            return
        asyncio.get_running_loop().create_task(self._handshake())

    async def _handshake(self) -> None:
        ctx = self.edge.opts.ssl_context
        smtp, sid = self.smtp, self.sid
        try:
            if ctx is None:
                raise ssl.SSLError("no TLS certificate configured")
            loop = asyncio.get_running_loop()
            assert self.protocol is not None
            new = await loop.start_tls(self.transport, self.protocol, ctx, server_side=True,
                                       ssl_handshake_timeout=self.edge.opts.session_timeout)
        except Exception as e:  # noqa: BLE001 - a failed handshake ends this connection only
            self.fail("tls handshake", e)
            self._to_sim(lambda: smtp.tls_done(sid, False))
            return
        if new is None:  # pragma: no cover - the transport closed during the handshake
            return
        self.transport = new
        self.last_io = time.monotonic()
        obj = new.get_extra_info("ssl_object")
        name, _proto, bits = obj.cipher() if obj is not None else ("", "", 0)
        version = obj.version() if obj is not None else ""
        self._to_sim(lambda: smtp.tls_done(sid, True, version or "", name, int(bits or 0)))

    def tls_ready(self) -> None:
        """The simulated session is secured: the client's plaintext reaches it now."""
        held, self.tls_hold = self.tls_hold or [], None
        if self.smtp is not None:
            for data in held:
                self.smtp.client_data(self.sid, data)

    # ---- called by asyncio (through _Protocol) ----------------------------------------------

    def data(self, data: bytes) -> None:
        """One read of the socket (IO_DATAIN), for the session or held until it can read."""
        self.last_io = time.monotonic()
        if self.closed:
            return  # lingering after our close: input is read and dropped
        if self.tls_hold is not None:
            if sum(map(len, self.tls_hold)) < MAX_BUFFERED:
                self.tls_hold.append(data)
            return
        if self.smtp is None:
            if sum(map(len, self.pending)) < MAX_BUFFERED:
                self.pending.append(data)
            return
        self.smtp.client_data(self.sid, data)

    def lost(self) -> None:
        """The client closed or reset (IO_DISCONNECTED / IO_ERROR)."""
        self.gone = True
        self.closed = True
        self._disarm()
        if self.smtp is not None:
            self.smtp.client_gone(self.sid)

    # ---- the session timeout (ioev.c: the io's event re-armed with io->timeout) -------------

    def _arm(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self._check_idle)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_idle(self) -> None:
        """IO_TIMEOUT after ``session_timeout`` s without a read or write while the session
        waits for the client: ``smtp_free(s, "timeout")`` (no reply), the socket closed."""
        self._timer = None
        if self.closed:
            return
        idle = time.monotonic() - self.last_io
        timeout = self.edge.opts.session_timeout
        if idle < timeout:
            self._arm(timeout - idle)
            return
        if self._waiting_on_daemon():
            # ioev.c io_reset(): an io paused while the session waits for an imsg answer
            # has no timeout; it gets a whole one again when it is re-armed
            self.last_io = time.monotonic()
            self._arm(timeout)
            return
        log.info("smtpd-sim serve: %s: smtp disconnected reason=timeout", self.describe())
        self.closed = True
        smtp, sid = self.smtp, self.sid
        if smtp is not None:
            self._to_sim(lambda: smtp.client_timeout(sid))
        try:
            self.transport.close()
        except Exception as e:  # noqa: BLE001
            self.fail("close", e)

    def _waiting_on_daemon(self) -> bool:
        """The session waits for the daemon (lka, queue, a filter), not for the client."""
        sessions = getattr(self.smtp, "sessions", None)
        s = sessions.get(self.sid) if sessions is not None else None
        return bool(s is not None and s.fsm is not None and s.fsm.waiting and self.tls_hold is None)

    def _to_sim(self, fn: Any) -> None:
        try:
            self.server.event(fn)
        except Exception as e:  # noqa: BLE001
            self.fail("simulation", e)


class _Protocol(asyncio.Protocol):
    """asyncio's side of one connection; every callback is the connection's edge."""

    def __init__(self, server: LiveServer, edge: NetEdge, kind: Kind) -> None:
        self.server = server
        self.edge = edge
        self.kind = kind
        self.conn: LiveConnection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername") or ("127.0.0.1", 0)
        conn = self.conn = LiveConnection(self.server, self.edge, transport, peer[0], self.kind)  # type: ignore[arg-type]
        conn.protocol = self
        if self.kind == "smtps":
            conn.tls_begin()  # the ClientHello waits, unread, until the sim is at smtp_cert_init()
        try:
            self.edge.configure(self.server.sim.listener())
            self.server.event(lambda: self.server.sim.listener().connect(
                conn, self.kind == "starttls", smtps=self.kind == "smtps"))
        except Exception as e:  # noqa: BLE001
            conn.fail("accept", e)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is not None:
            try:
                self.server.event(lambda: conn.data(data))
            except Exception as e:  # noqa: BLE001
                conn.fail("read", e)

    def connection_lost(self, exc: Exception | None) -> None:
        conn = self.conn
        self.edge.collect(conn)
        if conn is not None:
            try:
                self.server.event(conn.lost)
            except Exception as e:  # noqa: BLE001
                log.warning("smtpd-sim serve: %s: close: %s: %s", conn.describe(), type(e).__name__, e)


class NetEdge:
    """The listeners and the session count of ``smtp.c``: ``smtp_accept()`` while
    ``smtp_can_accept()``, else ``smtp_pause()`` (listeners off: new clients wait in the
    kernel's queue, no reply) until ``smtp_collect()`` frees a slot and ``smtp_resume()``."""

    def __init__(self, server: LiveServer, opts: NetOptions) -> None:
        self.server = server
        self.opts = opts
        self.max_sessions = opts.max_sessions if opts.max_sessions is not None else fd_table_sessions()
        self.sessions = 0
        self.per_ip: dict[str, int] = {}
        self.listeners: list[tuple[ListenSpec, socket.socket]] = []
        self._reading = False
        self._disabled = False  # SMTPD_SMTP_DISABLED: accept() ran out of descriptors
        self._configured: Any = None

    # ---- binding ------------------------------------------------------------------------------

    def bind(self, specs: list[ListenSpec]) -> None:
        """Bind and listen on every listener, or none: the first failure closes what was
        bound and raises :class:`BindError` naming that listener's port."""
        for spec in specs:
            try:
                infos = socket.getaddrinfo(spec.host, spec.port, type=socket.SOCK_STREAM,
                                           flags=socket.AI_PASSIVE)
                family, stype, proto, _c, addr = infos[0]
                sock = socket.socket(family, stype, proto)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind(addr)
                    sock.listen(LISTEN_BACKLOG)
                    sock.setblocking(False)
                except OSError:
                    sock.close()
                    raise
            except OSError as e:
                self.close()
                why = e.strerror or str(e)
                raise BindError(f"cannot listen on {spec.host}:{spec.port} "
                                f"({KIND_NAMES[spec.kind]} listener): {why}") from None
            self.listeners.append((spec, sock))

    def ports(self) -> dict[str, int]:
        """The bound port of each kind (useful with port 0)."""
        return {spec.kind: sock.getsockname()[1] for spec, sock in self.listeners}

    def close(self) -> None:
        """Stop listening."""
        self._pause()
        for _spec, sock in self.listeners:
            sock.close()
        self.listeners = []

    # ---- the session limit (smtp.c) -------------------------------------------------------------

    def configure(self, smtp: Any) -> None:
        """Give the smtp role's listeners ``smtp max-message-size`` (env->sc_maxsize); again
        after a restart, which builds a new role."""
        if smtp is self._configured:
            return
        size = self.opts.max_message_size
        for attr in ("config", "config_tls", "config_smtps"):
            cfg = getattr(smtp, attr, None)
            if cfg is not None and cfg.max_message_size != size:
                setattr(smtp, attr, replace(cfg, max_message_size=size))
        self._configured = smtp

    def start(self) -> None:
        """``smtp_setup_events()``: the listeners' read events on."""
        self._resume()

    def _can_accept(self) -> bool:
        """``smtp.c:smtp_can_accept()``."""
        return self.sessions < self.max_sessions and not self._disabled

    def _pause(self) -> None:
        """``smtp.c:smtp_pause()``: ``event_del(&l->ev)`` on every listener."""
        if not self._reading:
            return
        loop = asyncio.get_running_loop()
        for _spec, sock in self.listeners:
            loop.remove_reader(sock.fileno())
        self._reading = False

    def _resume(self) -> None:
        """``smtp.c:smtp_resume()``: ``event_add(&l->ev)`` on every listener."""
        if self._reading:
            return
        loop = asyncio.get_running_loop()
        for spec, sock in self.listeners:
            loop.add_reader(sock.fileno(), self._accept, spec, sock)
        self._reading = True

    def _accept(self, spec: ListenSpec, lsock: socket.socket) -> None:
        """``smtp.c:smtp_accept()`` for each waiting client (up to a backlog's worth per
        event, as asyncio's own server does), while ``smtp_can_accept()``."""
        for i in range(LISTEN_BACKLOG):
            if not self._can_accept():
                if i == 0:  # a client is waiting (the event fired) and there is no room
                    log.warning("smtpd-sim serve: warn: Disabling incoming SMTP connections: "
                                "Client limit reached")
                self._pause()
                return
            try:
                sock, addr = lsock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as e:
                if e.errno in (errno.ENFILE, errno.EMFILE):
                    log.warning("smtpd-sim serve: warn: Disabling incoming SMTP connections: %s",
                                e.strerror)
                    self._disabled = True
                    self._pause()
                    return
                log.warning("smtpd-sim serve: accept on %s:%s: %s", spec.host, spec.port, e)
                return
            self._accepted(spec, sock, addr)

    def _accepted(self, spec: ListenSpec, sock: socket.socket, addr: Any) -> None:
        """``smtp.c:smtp_accepted()``: sessions++, the session started."""
        ip = addr[0]
        limit = self.opts.max_sessions_per_ip
        if limit and self.per_ip.get(ip, 0) >= limit:
            self._refuse(sock, f"{ip}:{addr[1]}")
            return
        self.sessions += 1
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        asyncio.get_running_loop().create_task(self._connect(spec, sock, ip))

    async def _connect(self, spec: ListenSpec, sock: socket.socket, ip: str) -> None:
        loop = asyncio.get_running_loop()
        proto = _Protocol(self.server, self, spec.kind)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.connect_accepted_socket(lambda: proto, sock)
        except Exception as e:  # noqa: BLE001 - the client went away before we got to it
            log.warning("smtpd-sim serve: %s session -: accept: %s: %s", ip, type(e).__name__, e)
            sock.close()
            if proto.conn is None:
                self._release(ip)

    def _refuse(self, sock: socket.socket, peer: str) -> None:
        """The per-address limit (serve's own, see :data:`PER_IP_REPLY`): the 421, then close."""
        log.warning("smtpd-sim serve: %s session -: refused: more than %d sessions from this "
                    "address", peer, self.opts.max_sessions_per_ip)
        try:
            sock.setblocking(False)
            sock.send(PER_IP_REPLY.encode() + b"\r\n")
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            sock.close()

    def collect(self, conn: LiveConnection | None) -> None:
        """``smtp.c:smtp_collect()``: sessions--; the listeners back on when there is room."""
        if conn is None or conn.collected:
            return
        conn.collected = True
        self._release(conn.addr)

    def _release(self, ip: str) -> None:
        self.sessions -= 1
        n = self.per_ip.get(ip, 0) - 1
        if n > 0:
            self.per_ip[ip] = n
        else:
            self.per_ip.pop(ip, None)
        if self._disabled:
            log.warning("smtpd-sim serve: warn: smtp: fd exhaustion over, re-enabling incoming "
                        "connections")
            self._disabled = False
        if self._can_accept() and self.listeners:
            self._resume()
