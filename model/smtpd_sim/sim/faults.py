"""Faults armed on a running simulation (the kinds: ``smtpd_sim.spec.faults``): windows open
and close on the world's ports (the remote MX, the resolver, the disk), crashes stop the
daemon, and the world asks ``active()`` when a rate-driven fault may hit."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from smtpd_sim.errors import ModelError
from smtpd_sim.kernel.sched import call_later
from smtpd_sim.spec.faults import Fault

if TYPE_CHECKING:
    from smtpd_sim.sim.simulation import Simulation


class Faults:
    """Arms the faults on a simulation; the world consults ``active()`` when it matters."""

    def __init__(self, sim: Simulation, faults: list[Fault], t0: float) -> None:
        self.sim = sim
        self.faults = faults
        self.t0 = t0
        self.rng = random.Random(f"{sim.seed}:faults")
        self.crashes = 0
        self.vanished = 0
        env = sim.env
        for f in faults:
            if f.kind == "crash":
                if f.process not in sim.procs:  # spec.scenario.check_scenario says it first, naming the file
                    raise ModelError(f"crash: no process {f.process!r} in {sim.topology.name} "
                                     f"(expected one of {', '.join(sim.procs)})")
                call_later(env, t0 + f.start_s - env.now, lambda _t, f=f: self._crash(f))
            elif f.kind in ("mx_down", "dns_failure", "disk_full"):
                call_later(env, t0 + f.start_s - env.now, lambda _t, f=f: self._toggle(f, True))
                if f.end_s != float("inf"):
                    call_later(env, t0 + f.end_s - env.now, lambda _t, f=f: self._toggle(f, False))
        sim.faults.armed = self  # the remote MX, the parent and the clients ask it

    def _window(self, f: Fault) -> bool:
        t = self.sim.env.now - self.t0
        return f.start_s <= t < f.end_s

    def active(self, kind: str, **match: str) -> Fault | None:
        """The first fault of ``kind`` whose window is open and whose draw hits."""
        for f in self.faults:
            if f.kind != kind or not self._window(f):
                continue
            if any(getattr(f, k) and getattr(f, k) != v for k, v in match.items()):
                continue
            if f.rate >= 1.0 or self.rng.random() < f.rate:
                return f
        return None

    def _toggle(self, f: Fault, on: bool) -> None:
        sim = self.sim
        if f.kind == "mx_down":
            sim.remote_mx.down = on
        elif f.kind == "dns_failure":
            sim.resolver.failing = on
        elif f.kind == "disk_full":
            sim.disk.full = on

    def _crash(self, f: Fault) -> None:
        self.crashes += 1
        self.sim.crash(f.process, f.restart_after_s)
