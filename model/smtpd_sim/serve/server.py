"""``smtpd-sim serve``: real SMTP over TCP through the simulated daemon, in real time.

An asyncio server accepts TCP connections and hands every byte to the same smtp role
and session FSM the simulation uses; the simulated topology behind it (lka, queue,
scheduler, parent, delivery agents...) runs in wall-clock time: before each client
event the simulation is advanced to "now", and a pump task advances it between events.
Accepted local mail is written into maildirs, relayed mail into a spool file. With a
queue directory (``smtpd_sim.serve.store``) every message is on disk before its 250 and
a restart delivers what the last run left queued. The sockets, TLS, the session timeout
and the limits live in :mod:`smtpd_sim.serve.net`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from smtpd_sim.errors import ModelError
from smtpd_sim.fsm.envelope import D_BOUNCE, Envelope
from smtpd_sim.fsm.smtp_events import time_to_text
from smtpd_sim.observe.metrics import trace_hops
from smtpd_sim.observe.traces import write_imsg_trace
from smtpd_sim.serve.net import (
    ListenSpec,
    NetEdge,
    NetOptions,
    PumpError,
    log,
)
from smtpd_sim.serve.store import Maildirs, QueueStore, Reloaded, append_mbox
from smtpd_sim.sim.runner import Runner
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION, DEFAULT_ERA, RESEARCH_SITE, scenario_of


def wall_date() -> str:
    """``time_to_text(time(NULL))`` from this machine's clock in its local zone
    (``localtime()``'s ``tm_gmtoff`` / ``tm_zone``, as ``to.c`` reads them)."""
    now = time.time()
    lt = time.localtime(now)
    return time_to_text(now, lt.tm_gmtoff, lt.tm_zone)


class LiveServer:
    """The simulated daemon behind real sockets. ``queue``: the queue directory (None: the
    queue lives in memory only, as in a simulation); ``log``: where one-line warnings go
    (default stderr)."""

    edge: NetEdge | None = None  # the sockets, once serve() has bound them
    tls_files: tuple[Path, Path] | None = None  # a self-signed pair serve() generated

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
        self.sim.hooks.date = wall_date  # Received: dates from this machine's clock
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
        wake = self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        env = self.sim.env
        while True:
            self.advance()
            nxt = env.peek()
            delay = min(max(nxt - self.now(), 0.0), 0.05) if nxt != float("inf") else 0.05
            wake.clear()
            # a timer, not wait_for(): cancelling wait_for's inner task together with the
            # pump (Python 3.11) can swallow the pump's cancellation
            timer = loop.call_later(max(delay, 0.0005), wake.set)
            try:
                await wake.wait()
            finally:
                timer.cancel()

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
                    ready: asyncio.Event | None = None, *, smtps_port: int | None = None,
                    net: NetOptions | None = None,
                    on_ready: Callable[[dict[str, int]], None] | None = None) -> None:
        """Listen (plain ``port``, ``tls_port`` offering STARTTLS, ``smtps_port`` with
        implicit TLS; None: no such listener, 0: a port the kernel picks) and serve until
        cancelled.  Every
        listener is bound before ``ready`` is set and ``on_ready(ports)`` is called
        (:class:`~smtpd_sim.serve.net.BindError` otherwise); if the simulation pump dies
        the failure is logged and :class:`~smtpd_sim.serve.net.PumpError` raised."""
        specs = [ListenSpec("plain", host, port)]
        if tls_port is not None:
            specs.append(ListenSpec("starttls", host, tls_port))
        if smtps_port is not None:
            specs.append(ListenSpec("smtps", host, smtps_port))
        opts = net or NetOptions()
        if smtps_port is not None and self.sim.listener().config_smtps is None:
            raise ModelError("--smtps-port: the SMTPS listener is modelled for 6.8 eras only")
        edge = self.edge = NetEdge(self, opts)
        edge.bind(specs)
        if opts.ssl_context is None and len(specs) > 1:
            from smtpd_sim.serve.tls import make_self_signed, server_context
            try:
                cert, key = make_self_signed(self.sim.listener().hostname)
                self.tls_files = (cert, key)
                edge.opts = replace(opts, ssl_context=server_context(cert, key))
            except BaseException:
                edge.close()
                raise
        edge.configure(self.sim.listener())
        pump = asyncio.create_task(self.pump())
        try:
            edge.start()
            if ready is not None:
                ready.set()
            if on_ready is not None:
                on_ready(edge.ports())
            try:
                await pump
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # the caller reports it in one line (the command: status 1); the traceback
                # is for whoever runs with debug logging
                log.debug("smtpd-sim serve: the simulation pump failed", exc_info=True)
                raise PumpError(f"the simulation pump failed: {type(e).__name__}: {e}") from e
        finally:
            pump.cancel()
            edge.close()
