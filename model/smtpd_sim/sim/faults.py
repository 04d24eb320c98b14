"""Faults declared in a scenario: at times (windows) or with rates.

Kinds (issue 5):

* ``mx_down``: the remote MX refuses connections during the window.
* ``mx_reply``: the remote MX answers ``code`` (4xx/5xx) at ``phase`` (connect, ehlo,
  mail, rcpt, data, eom) with probability ``rate`` during the window.
* ``mx_slow``: every reply of the remote MX takes ``delay_s`` longer during the window.
* ``dns_failure``: the resolver fails (lookups answer nothing) during the window.
* ``disk_full``: the queue's file system is full during the window (``fsqueue_check_space()``
  fails: 4xx to clients).
* ``agent_tempfail``: local delivery agents exit EX_TEMPFAIL (for ``user`` or everyone),
  with probability ``rate`` during the window.
* ``crash``: a child process dies at ``start_s``; the real parent then exits
  (``parent_imsg(NULL)`` → fatalx): the daemon stops and restarts ``restart_after_s``
  later from its on-disk queue.
* ``client_vanish``: a client disconnects in the middle of DATA with probability ``rate``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from smtpd_sim.kernel.sched import call_later

if TYPE_CHECKING:
    from smtpd_sim.sim.simulation import Simulation

FaultKind = Literal["mx_down", "mx_reply", "mx_slow", "dns_failure", "disk_full",
                    "agent_tempfail", "crash", "client_vanish"]
PHASES = ("connect", "ehlo", "mail", "rcpt", "data", "eom")


class Fault(BaseModel):
    """One fault of a scenario (``[[fault]]`` tables)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    start_s: float = Field(default=0.0, ge=0)
    duration_s: float = Field(default=float("inf"), gt=0)
    rate: float = Field(default=1.0, ge=0, le=1)
    phase: Literal["connect", "ehlo", "mail", "rcpt", "data", "eom"] = "rcpt"
    code: int = Field(default=451, ge=400, le=599)
    delay_s: float = Field(default=0.0, ge=0)
    user: str = ""
    process: str = ""
    restart_after_s: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _needs(self) -> Fault:
        if self.kind == "crash" and not self.process:
            raise ValueError("a crash fault needs `process` (the child that dies)")
        if self.kind == "crash" and self.process in ("parent",):
            raise ValueError("crash: name a child process (the parent is the daemon itself)")
        return self

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


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
                if f.process not in sim.procs:
                    raise ValueError(f"crash: no process {f.process!r} in {sim.topology.name} "
                                     f"(expected one of {', '.join(sim.procs)})")
                call_later(env, t0 + f.start_s - env.now, lambda _t, f=f: self._crash(f))
            elif f.kind in ("mx_down", "dns_failure", "disk_full"):
                call_later(env, t0 + f.start_s - env.now, lambda _t, f=f: self._toggle(f, True))
                if f.end_s != float("inf"):
                    call_later(env, t0 + f.end_s - env.now, lambda _t, f=f: self._toggle(f, False))
        sim.faults = self
        sim.remote_mx.faults = self

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
