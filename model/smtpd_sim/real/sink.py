"""Loopback SMTP sink standing in for the remote MX of ``relay.test`` (asyncio, stdlib only).

Why: the real daemon relays ``relay.test`` to ``smtp+notls://127.0.0.1:2626``; the sink
answers there so that relay, permfail-bounce and retry scenarios can run with no
network. Behaviour (as the research's aiosmtpd sink, real-daemon.md §2): RCPT whose
local part starts with ``reject`` gets 550, ``defer`` gets 451, anything else 250;
every accepted message is recorded in :attr:`Sink.messages`. Options: ``dsn`` advertises
the DSN extension in EHLO (the real mta then passes NOTIFY/ORCPT/RET/ENVID on and
leaves success notices to the sink, 6.8 ``mta_session.c``), ``tls`` an SSL context
with which the sink offers STARTTLS (the outbound-TLS scenarios).

The sink runs its own event loop in a background thread. It listens on the loopback
only; the listening socket can be created by a caller-provided factory (the harness
creates it inside the daemon's network namespace). Every read has a timeout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

SINK_HOSTNAME = "sink.relay.test"
MAX_LINE = 65536  # bytes per command or data line
MAX_MESSAGE = 64 * 1024 * 1024  # bytes per message; beyond it: 552 and the message is dropped
IDLE_TIMEOUT = 300.0  # seconds without a line before the sink hangs up (RFC 5321 §4.5.3.2)

SocketFactory = Callable[[int, int], socket.socket]


class SinkError(RuntimeError):
    """The sink could not start or stop (one-line message)."""


@dataclass
class SinkMessage:
    """One message accepted by the sink."""

    t_recv: float
    mail_from: str
    rcpt_tos: list[str]
    size: int
    params: list[str] = field(default_factory=list)  # MAIL/RCPT parameters as received (DSN)
    tls: bool = False  # the session had switched to TLS


@dataclass
class _Txn:
    mail_from: str | None = None
    rcpt_tos: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)


def _params(arg: str) -> list[str]:
    """The ESMTP parameters after ``<...>`` of a MAIL/RCPT argument (``NOTIFY=...``)."""
    gt = arg.find(">")
    return arg[gt + 1 :].split() if gt >= 0 else []


def _address(arg: str) -> str:
    """The address inside ``<...>`` of a MAIL/RCPT argument ("" for ``<>``)."""
    lt, gt = arg.find("<"), arg.find(">")
    if lt >= 0 and gt > lt:
        return arg[lt + 1 : gt]
    return arg.split(":", 1)[-1].strip().split(" ")[0]


def rcpt_reply(address: str) -> str:
    """The sink's answer to ``RCPT TO:<address>`` (550 reject*, 451 defer*, else 250)."""
    local = address.split("@", 1)[0].lower()
    if local.startswith("reject"):
        return "550 5.1.1 sink: no such user"
    if local.startswith("defer"):
        return "451 4.3.0 sink: try again later"
    return "250 2.1.5 OK"


class Sink:
    """An SMTP sink on ``host:port`` (loopback only), served from a background thread."""

    def __init__(
        self,
        port: int = 2626,
        host: str = "127.0.0.1",
        *,
        socket_factory: SocketFactory | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        dsn: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise SinkError(f"the sink listens on loopback addresses only, not {host}")
        self.host, self.port = host, port
        self.idle_timeout = idle_timeout
        self.dsn = dsn
        self.tls = tls
        self._factory: SocketFactory = socket_factory or (lambda fam, typ: socket.socket(fam, typ))
        self.messages: list[SinkMessage] = []
        self.rejected: list[tuple[str, str]] = []  # (address, reply) for non-250 RCPTs
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        """True while the sink accepts connections."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def count(self) -> int:
        """Number of messages accepted so far."""
        with self._lock:
            return len(self.messages)

    def start(self, timeout: float = 5.0) -> None:
        """Bind, listen and serve in a background thread; returns once listening."""
        if self.running:
            return
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = self._factory(fam, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(64)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            raise SinkError(f"sink cannot listen on {self.host}:{self.port}: {e.strerror or e}") from e
        if self.port == 0:
            self.port = sock.getsockname()[1]
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(asyncio.start_server(self._serve, sock=sock))
            except BaseException as e:  # reported to the starting thread
                errors.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"sink:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or errors:
            self.stop(timeout)
            raise SinkError(f"sink did not start on {self.host}:{self.port}: {errors[0] if errors else 'timeout'}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, hang up open sessions and join the thread (bounded by ``timeout``)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.close()
            await asyncio.sleep(0)
            loop.stop()

        if thread.is_alive() and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(shutdown(), loop)
        thread.join(timeout)
        if thread.is_alive():
            raise SinkError(f"sink thread on port {self.port} did not stop within {timeout:.0f} s")
        self._loop = self._thread = self._server = None

    def __enter__(self) -> Sink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ protocol
    async def _readline(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            line = await asyncio.wait_for(reader.readline(), self.idle_timeout)
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            return None
        return line if line else None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)

        async def reply(text: str) -> None:
            writer.write(text.encode() + b"\r\n")
            await writer.drain()

        try:
            await reply(f"220 {SINK_HOSTNAME} ESMTP sink")
            txn = _Txn()
            in_tls = False
            while True:
                raw = await self._readline(reader)
                if raw is None:
                    return
                line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                verb, _, arg = line.partition(" ")
                verb = verb.upper()
                if verb == "EHLO":
                    ext = ["8BITMIME", f"SIZE {MAX_MESSAGE}"]
                    if self.dsn:
                        ext.append("DSN")
                    if self.tls is not None and not in_tls:
                        ext.append("STARTTLS")
                    await reply("\r\n".join(f"250-{x}" for x in [SINK_HOSTNAME, *ext]) + "\r\n250 HELP")
                elif verb == "STARTTLS" and self.tls is not None and not in_tls:
                    await reply("220 2.0.0 ready to start TLS")
                    try:
                        await asyncio.wait_for(writer.start_tls(self.tls), self.idle_timeout)
                    except (ssl.SSLError, TimeoutError, ConnectionError, OSError):
                        return
                    in_tls = True
                    txn = _Txn()
                elif verb == "HELO":
                    await reply(f"250 {SINK_HOSTNAME}")
                elif verb == "MAIL":
                    txn = _Txn(mail_from=_address(arg), params=_params(arg))
                    await reply("250 2.1.0 OK")
                elif verb == "RCPT":
                    if txn.mail_from is None:
                        await reply("503 5.5.1 need MAIL first")
                        continue
                    addr = _address(arg)
                    answer = rcpt_reply(addr)
                    if answer.startswith("250"):
                        txn.rcpt_tos.append(addr)
                        txn.params.extend(_params(arg))
                    else:
                        with self._lock:
                            self.rejected.append((addr, answer))
                    await reply(answer)
                elif verb == "DATA":
                    if not txn.rcpt_tos:
                        await reply("503 5.5.1 need RCPT first")
                        continue
                    await reply("354 end data with <CR><LF>.<CR><LF>")
                    size, ok = await self._read_data(reader)
                    if size is None:
                        return
                    if ok:
                        with self._lock:
                            self.messages.append(SinkMessage(time.time(), txn.mail_from or "", list(txn.rcpt_tos), size,
                                                         list(txn.params), in_tls))
                        await reply("250 2.0.0 OK sink")
                    else:
                        await reply("552 5.3.4 message too big")
                    txn = _Txn()
                elif verb == "RSET":
                    txn = _Txn()
                    await reply("250 2.0.0 OK")
                elif verb == "NOOP":
                    await reply("250 2.0.0 OK")
                elif verb == "QUIT":
                    await reply("221 2.0.0 bye")
                    return
                else:
                    await reply("500 5.5.1 command unrecognized")
        except (ConnectionError, OSError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _read_data(self, reader: asyncio.StreamReader) -> tuple[int | None, bool]:
        """Read a DATA body up to ``.``; (size, accepted) or (None, False) on hangup."""
        size = 0
        while True:
            raw = await self._readline(reader)
            if raw is None:
                return None, False
            if raw.rstrip(b"\r\n") == b".":
                return size, size <= MAX_MESSAGE
            size += len(raw)
