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

    kind: FaultKind = Field(description="what fails (`smtpd-sim scenarios` lists the kinds)")
    start_s: float = Field(default=0.0, ge=0, le=MAX_TIME_S, description="when the fault starts, from the first "
                           "client (crash: when the process dies)")
    # omitted: to the end of the run (inf, the one infinite number a data file may mean)
    duration_s: float = Field(default=float("inf"), gt=0, allow_inf_nan=True, description="how long it lasts "
                              "(omitted: to the end of the run)")
    rate: float = Field(default=1.0, ge=0, le=1, description="mx_reply, agent_tempfail, client_vanish: "
                        "probability that each reply, delivery or session is hit",
                        json_schema_extra={"unit": "probability"})
    phase: Literal["connect", "ehlo", "mail", "rcpt", "data", "eom"] = Field(default="rcpt", description="mx_reply: "
                                                                             "the SMTP phase the remote MX fails at")
    code: int = Field(default=451, ge=400, le=599, description="mx_reply: the SMTP reply code (4xx temporary, "
                      "5xx permanent)", json_schema_extra={"unit": "-"})
    delay_s: float = Field(default=0.0, ge=0, le=MAX_COST_S, description="mx_slow: extra time before each reply "
                           "of the remote MX")
    user: str = Field(default="", description="agent_tempfail: the user whose deliveries fail (empty: everyone)")
    process: str = Field(default="", description="crash: the child process that dies (a process of the era)")
    restart_after_s: float = Field(default=10.0, ge=0, le=MAX_TIME_S, description="crash: the daemon restarts "
                                   "from its on-disk queue this long after it stopped")

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
