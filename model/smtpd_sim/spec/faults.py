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

from typing import Literal

from pydantic import Field, model_validator

from smtpd_sim.spec.files import Strict
from smtpd_sim.spec.limits import MAX_COST_S, MAX_TIME_S

FaultKind = Literal["mx_down", "mx_reply", "mx_slow", "dns_failure", "disk_full",
                    "agent_tempfail", "crash", "client_vanish"]
PHASES = ("connect", "ehlo", "mail", "rcpt", "data", "eom")


class Fault(Strict):
    """One fault of a scenario (``[[fault]]`` tables)."""

    kind: FaultKind
    start_s: float = Field(default=0.0, ge=0, le=MAX_TIME_S)
    # omitted: to the end of the run (inf, the one infinite number a data file may mean)
    duration_s: float = Field(default=float("inf"), gt=0, allow_inf_nan=True)
    rate: float = Field(default=1.0, ge=0, le=1)
    phase: Literal["connect", "ehlo", "mail", "rcpt", "data", "eom"] = "rcpt"
    code: int = Field(default=451, ge=400, le=599)
    delay_s: float = Field(default=0.0, ge=0, le=MAX_COST_S)
    user: str = ""
    process: str = ""
    restart_after_s: float = Field(default=10.0, ge=0, le=MAX_TIME_S)

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
