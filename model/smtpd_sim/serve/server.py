"""``smtpd-sim serve``: real SMTP over TCP through the simulated daemon, in real time.

An asyncio server accepts TCP connections and hands every byte to the same smtp role
and session FSM the simulation uses; the simulated topology behind it (lka, queue,
scheduler, parent, delivery agents...) runs in wall-clock time: before each client
event the simulation is advanced to "now", and a pump task advances it between events.
Accepted local mail is written into maildirs, relayed mail into a spool file.
The sockets, TLS, the session timeout and the limits live in :mod:`smtpd_sim.serve.net`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from smtpd_sim.errors import ModelError
from smtpd_sim.observe.metrics import trace_hops
from smtpd_sim.observe.traces import write_imsg_trace
from smtpd_sim.serve.net import (
    ListenSpec,
    NetEdge,
    NetOptions,
    PumpError,
    log,
)
from smtpd_sim.sim.runner import Runner
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION, DEFAULT_ERA, RESEARCH_SITE, scenario_of


class LiveServer:
    """The simulated daemon behind real sockets."""

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

    def _delivered(self, user: str, body: bytes) -> None:
        """A delivery agent exited okay: write the message into ``<maildir>/<user>/new``."""
        self.delivered += 1
        self.per_user[user] = self.per_user.get(user, 0) + 1
        if self.maildir is None:
            return
        base = self.maildir / user
        for sub in ("tmp", "new", "cur"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        name = f"{time.time():.6f}.{os.getpid()}.{self.delivered}.{socket.gethostname()}"
        tmp = base / "tmp" / name
        tmp.write_bytes(body)
        tmp.rename(base / "new" / name)

    def _relayed(self, sender: str, rcpts: list[str], body: bytes) -> None:
        """The remote MX accepted a relayed message: append it to the spool file (mbox)."""
        self.relayed += 1
        if self.spool is None:
            return
        self.spool.parent.mkdir(parents=True, exist_ok=True)
        with open(self.spool, "ab") as fh:
            fh.write(f"From {sender or 'MAILER-DAEMON'} {time.asctime()}\n".encode())
            fh.write(f"X-Relayed-To: {', '.join(rcpts)}\n".encode())
            fh.write(body.replace(b"\r\n", b"\n"))
            fh.write(b"\n")

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
