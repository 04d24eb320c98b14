"""``smtpd-sim serve``: real SMTP over TCP through the simulated daemon, in real time.

An asyncio server accepts TCP connections and hands every byte to the same smtp role
and session FSM the simulation uses; the simulated topology behind it (lka, queue,
scheduler, parent, delivery agents...) runs in wall-clock time: before each client
event the simulation is advanced to "now", and a pump task advances it between events.
Accepted local mail is written into maildirs, relayed mail into a spool file. With a
queue directory (``smtpd_sim.serve.store``) every message is on disk before its 250 and
a restart delivers what the last run left queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from smtpd_sim.fsm.envelope import D_BOUNCE, Envelope
from smtpd_sim.observe.metrics import trace_hops
from smtpd_sim.observe.traces import write_imsg_trace
from smtpd_sim.serve.store import Maildirs, QueueStore, Reloaded, append_mbox
from smtpd_sim.sim.runner import Runner
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION, DEFAULT_ERA, RESEARCH_SITE, scenario_of

MAX_BUFFERED = 1 << 20  # bytes kept for a client before its session has been attached
LINGER_S = 2.0  # how long a closed session still drains client input before the socket closes


class LiveConnection:
    """The client side of one TCP connection, as the smtp role sees a client."""

    def __init__(self, server: LiveServer, transport: asyncio.Transport, addr: str) -> None:
        self.server = server
        self.transport = transport
        self.addr = addr
        self.smtp: Any = None
        self.sid = 0
        self.pending: list[bytes] = []
        self.closed = False
        self.gone = False

    # called by the smtp role
    def attach(self, smtp: Any, sid: int) -> None:
        self.smtp = smtp
        self.sid = sid
        pending, self.pending = self.pending, []
        for data in pending:
            smtp.client_data(sid, data)
        if self.gone:
            smtp.client_gone(sid)

    def server_reply(self, text: str) -> None:
        if not self.closed and not self.transport.is_closing():
            self.transport.write(text.replace("\n", "\r\n").encode("utf-8", "replace") + b"\r\n")

    def server_close(self, _reason: str) -> None:
        """Close like a careful server: flush the last reply and send FIN, keep reading (and
        discarding) what the client still sends for a moment, then close. Closing at once with
        unread input would reset the connection and could destroy the reply the client has
        not read yet (say ``500 5.0.0 Line too long`` after a 70 kB line)."""
        self.closed = True
        t = self.transport
        if t.is_closing():
            return
        if t.can_write_eof():
            t.write_eof()
            asyncio.get_running_loop().call_later(LINGER_S, t.close)
        else:
            t.close()

    # called by asyncio
    def data(self, data: bytes) -> None:
        if self.closed:
            return  # lingering after our close: input is read and dropped
        if self.smtp is None:
            if sum(map(len, self.pending)) < MAX_BUFFERED:
                self.pending.append(data)
            return
        self.smtp.client_data(self.sid, data)

    def lost(self) -> None:
        self.gone = True
        self.closed = True
        if self.smtp is not None:
            self.smtp.client_gone(self.sid)


class _Protocol(asyncio.Protocol):
    def __init__(self, server: LiveServer, tls_listener: bool) -> None:
        self.server = server
        self.tls_listener = tls_listener
        self.conn: LiveConnection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername") or ("127.0.0.1", 0)
        self.conn = LiveConnection(self.server, transport, peer[0])  # type: ignore[arg-type]
        self.server.event(lambda: self.server.sim.listener().connect(self.conn, self.tls_listener))

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is not None:
            self.server.event(lambda: conn.data(data))

    def connection_lost(self, exc: Exception | None) -> None:
        conn = self.conn
        if conn is not None:
            self.server.event(conn.lost)


class LiveServer:
    """The simulated daemon behind real sockets. ``queue``: the queue directory (None: the
    queue lives in memory only, as in a simulation); ``log``: where one-line warnings go
    (default stderr)."""

    def __init__(
        self,
        era: str = DEFAULT_ERA,
        *,
        site: str = RESEARCH_SITE,
        calibration: str = DEFAULT_CALIBRATION,
        maildir: Path | None = None,
        spool: Path | None = None,
        queue: Path | None = None,
        log: TextIO | None = None,
        trace: Any = None,
        seed: int = 1,
        rows: bool = False,
    ) -> None:
        runner = Runner(scenario_of(era, calibration=calibration, site=site, seed=seed),
                        rows=rows or trace is not None, keep_body=True)
        self.sim = runner.sim
        self.maildir = maildir
        self.spool = spool
        self.trace = trace
        self._traced = 0
        self.sim.hooks.delivered = self._delivered
        self.sim.hooks.relayed = self._relayed
        runner.start(clients=False)
        self._t0_wall = time.monotonic()
        self._t0_sim = self.sim.env.now
        self._wake: asyncio.Event | None = None
        self.delivered = 0
        self.relayed = 0
        self.per_user: dict[str, int] = {}
        self.log = log
        self.tempfails = 0  # maildir writes that failed (the envelope stayed queued)
        self.redelivered = 0  # deliveries found already in the maildir (after a crash)
        self._maildirs: Maildirs | None = None
        self.store: QueueStore | None = None
        self.reloaded = 0  # envelopes found in the queue directory at start-up
        if queue is not None:
            self._open_queue(Path(queue))

    # ---- time -------------------------------------------------------------------------

    def now(self) -> float:
        return self._t0_sim + (time.monotonic() - self._t0_wall)

    def advance(self) -> None:
        """Run the simulation up to wall-clock now."""
        target = self.now()
        env = self.sim.env
        if target > env.now:
            env.run(until=target)
        self._emit_trace()

    def event(self, fn: Any) -> None:
        """A client event: bring the simulation to now, apply it, wake the pump."""
        self.advance()
        fn()
        if self._wake is not None:
            self._wake.set()

    async def pump(self) -> None:
        """Advance the simulation as wall time passes, sleeping until its next event."""
        self._wake = asyncio.Event()
        env = self.sim.env
        while True:
            self.advance()
            nxt = env.peek()
            delay = min(max(nxt - self.now(), 0.0), 0.05) if nxt != float("inf") else 0.05
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.0005))

    # ---- outputs ------------------------------------------------------------------------

    def _emit_trace(self) -> None:
        if self.trace is None:
            return
        hops = self.sim.recorder.hops
        if self._traced >= len(hops):
            return
        df = trace_hops(hops[self._traced:])
        self._traced = len(hops)
        for line in write_imsg_trace(df, epoch=time.time() - self.now()):
            if "### SCENARIO" not in line:
                self.trace.write(line + "\n")
        self.trace.flush()

    def _log(self, line: str) -> None:
        out = self.log or sys.stderr
        out.write(f"smtpd-sim serve: {line}\n")
        out.flush()

    def _mailboxes(self) -> Maildirs | None:
        if self.maildir is None:
            return None
        if self._maildirs is None or self._maildirs.root != Path(self.maildir):
            self._maildirs = Maildirs(Path(self.maildir))
        return self._maildirs

    def _delivered(self, evpid: int, user: str, data: bytes) -> bool:
        """Hook: the delivery agent writes ``<maildir>/<user>/new/<name>`` (``mail.maildir``);
        a failed write is a temporary failure: False, one line logged, and the simulated
        mda, queue and scheduler keep the envelope and retry it (10 s, 40 s, 90 s ... after
        its creation, ``scheduler_backoff()``). Never raises."""
        boxes = self._mailboxes()
        if boxes is not None:
            name = (self.store.delivery_name(evpid) if self.store is not None else None) or boxes.fresh_name()
            try:
                if not boxes.deliver(user, name, data):
                    self.redelivered += 1  # already there: written before a crash
            except Exception as e:  # noqa: BLE001 - any failure is the agent's EX_TEMPFAIL
                self.tempfails += 1
                self._log(f"delivery to {user} tempfailed, envelope {evpid:016x} stays queued "
                          f"and is retried: {e}")
                return False
        self.delivered += 1
        self.per_user[user] = self.per_user.get(user, 0) + 1
        return True

    def _relayed(self, sender: str, rcpts: list[str], body: bytes) -> None:
        """Hook: the remote MX accepted a relayed message: append it to the spool file
        (mbox, fsynced). The spool is the remote's mailbox: a write error is logged."""
        self.relayed += 1
        if self.spool is None:
            return
        try:
            append_mbox(Path(self.spool), sender, rcpts, body)
        except OSError as e:
            self._log(f"relay spool {self.spool}: {e}")

    # ---- the queue directory --------------------------------------------------------------

    def _open_queue(self, path: Path) -> None:
        """Open the queue directory (``queue_fs_init()``), hook its operations into the
        simulated queue, and reload what it holds."""
        store = QueueStore(path)
        store.clock_offset = time.time() - self.now()
        loaded = store.load()
        for line in loaded.skipped:
            self._log(f"queue: {line}")
        self.store = store
        hooks = self.sim.hooks
        hooks.committed = self._committed
        hooks.envelope_written = self._envelope_written
        hooks.envelope_deleted = self._envelope_deleted
        if loaded.envelopes:
            self._reload(loaded)

    def _reload(self, loaded: Reloaded) -> None:
        """What a restarted daemon does (``queue.c:queue_timeout()`` walking the queue,
        IMSG_QUEUE_ENVELOPE_SUBMIT / _MESSAGE_COMMIT to the scheduler): the simulated
        queue loads the envelopes (``QueueRole.load_from_disk()``, the path a simulated
        crash-restart takes) and the scheduler delivers them as it would any envelope. The
        ledger counts them as accepted by this run."""
        sim = self.sim
        now = sim.env.now
        for msgid, evps in loaded.envelopes.items():
            sim.disk.bodies[msgid] = loaded.bodies[msgid]
            sim.ledger.committed(msgid, [e.id for e in evps if e.type != D_BOUNCE], now)
            sim.ledger.accepted(msgid, now)
            for e in evps:
                if e.type == D_BOUNCE:
                    sim.ledger.bounce_created(e.id, now)
        sim.roles["queue"].load_from_disk(loaded.envelopes)
        self.reloaded = loaded.count

    def _committed(self, msgid: int, envelopes: list[Envelope], body: bytes) -> bool:
        """Hook (``queue_fs_message_commit()``): the message and its envelopes written,
        fsynced and renamed into ``queue/`` before the simulated queue answers smtp; False
        (smtp answers 421, the client keeps its message) if the disk refused."""
        assert self.store is not None
        try:
            self.store.commit(msgid, envelopes, body)
        except Exception as e:  # noqa: BLE001 - any failure is a failed commit
            self._log(f"queue: commit of message {msgid:08x} failed, 421 to the client: {e}")
            return False
        return True

    def _envelope_written(self, evp: Envelope) -> None:
        """Hook (``queue_fs_envelope_update()``): a retry count, a bounce envelope."""
        assert self.store is not None
        try:
            self.store.envelope_update(evp)
        except Exception as e:  # noqa: BLE001
            self._log(f"queue: update of envelope {evp.id:016x} failed: {e}")

    def _envelope_deleted(self, evpid: int) -> None:
        """Hook (``queue_fs_envelope_delete()``)."""
        assert self.store is not None
        try:
            self.store.envelope_delete(evpid)
        except Exception as e:  # noqa: BLE001
            self._log(f"queue: removal of envelope {evpid:016x} failed: {e}")

    # ---- running ------------------------------------------------------------------------

    async def serve(self, host: str, port: int, tls_port: int | None = None,
                    ready: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(lambda: _Protocol(self, False), host, port, reuse_address=True)]
        if tls_port:
            servers.append(await loop.create_server(lambda: _Protocol(self, True), host, tls_port,
                                                    reuse_address=True))
        pump = asyncio.create_task(self.pump())
        if ready is not None:
            ready.set()
        try:
            await asyncio.gather(*(s.serve_forever() for s in servers))
        finally:
            pump.cancel()
            for s in servers:
                s.close()
