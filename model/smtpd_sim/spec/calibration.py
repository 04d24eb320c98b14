"""Cost calibration: CPU per handler, wake-up cost, channel latency, the world's latencies.

A calibration file (``scenarios/calibration/<name>.toml``) says how much each role's
handlers cost and how the measurement was taken. Process costs are the union of the
costs of the roles it hosts (pony = smtp + mta + mda), so one calibration serves every
era; roles the measured daemon did not have (mfa) take a documented stand-in.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.spec.files import Strict, load_model
from smtpd_sim.spec.limits import MAX_CORES, MAX_COST_S, Cost
from smtpd_sim.spec.plugins import role_names
from smtpd_sim.spec.world import WorldParams


class CalibrationError(SmtpdSimError):
    """An invalid calibration file (one line)."""


class RoleCosts(Strict):
    """CPU seconds of one role's handlers."""

    wake_s: float = Field(default=0.0, ge=0, le=MAX_COST_S, description="CPU per event-loop iteration "
                          "(epoll, read, write)")
    default_s: float = Field(default=0.0, ge=0, le=MAX_COST_S, description="CPU per item handled (an imsg or "
                             "an io event) that `handler` does not name")
    per_byte_s: float = Field(default=0.0, ge=0, le=MAX_COST_S, description="CPU per payload byte (imsg) or "
                              "client byte (smtp)")
    handler: dict[str, Cost] = Field(default_factory=dict, description="CPU per item, by imsg kind or io key "
                                     "(e.g. SMTP_EXPAND_RCPT)", json_schema_extra={"unit": "s"})


class ChannelCosts(Strict):
    """The imsg channels (socketpairs) between processes."""

    latency_s: float = Field(default=15e-6, ge=0, le=MAX_COST_S, description="socketpair write to the peer "
                             "readable")
    per_byte_s: float = Field(default=0.0, ge=0, le=MAX_COST_S, description="extra latency per payload byte")
    fd_s: float = Field(default=0.0, ge=0, le=MAX_COST_S, description="extra latency of passing a file "
                        "descriptor (SCM_RIGHTS)")


class DiskCosts(Strict):
    """File-system syscalls of the queue (and the parent's .forward open)."""

    cpu_s: dict[str, Cost] = Field(default_factory=dict, description="kernel CPU (stime) per file-system "
                                   "operation, by operation")
    wait_s: dict[str, Cost] = Field(default_factory=dict, description="off-CPU wait (journal commit) per "
                                    "file-system operation, by operation")


class Calibration(Strict):
    """A calibration file: what each role's handlers cost and how that was measured."""

    name: str = Field(description="the calibration's name")
    description: str = Field(default="", description="one line saying what was measured "
                             "(`smtpd-sim scenarios` shows it)")
    source: str = Field(default="", description="where the figures come from")
    cores: int = Field(default=2, ge=1, le=MAX_CORES, description="CPU cores of the measured host",
                       json_schema_extra={"unit": "cores"})
    cpu_policy: Literal["fifo", "fair"] = Field(default="fair", description="how runnable processes share the "
                                                "cores: first come first served, or shared equally")
    channel: ChannelCosts = Field(default_factory=ChannelCosts, description="[channel]: the imsg socketpairs")
    world: WorldParams = Field(default_factory=WorldParams, description="[world]: latencies and CPU of what the "
                               "daemon talks to")
    disk: DiskCosts = Field(default_factory=DiskCosts, description="[disk]: the queue's file-system syscalls")
    roles: dict[str, RoleCosts] = Field(default_factory=dict, description="[roles.<role>]: CPU of each role's "
                                        "handlers (smtp, lka, queue, ..., client: the load generator)")
    measured: dict[str, object] = Field(default_factory=dict, description="the figures this was fitted on "
                                        "(documentation; not read by the model)", json_schema_extra={"unit": "-"})

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, v: dict[str, RoleCosts]) -> dict[str, RoleCosts]:
        """A role's costs under a name no process hosts would be silently unused (a typo)."""
        known = (*role_names(), "client")  # client: the load generator's events (sim.simulation)
        for name in v:
            if name not in known:
                near = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {near[0]}?" if near else f"expected one of {', '.join(known)}"
                raise ValueError(f"unknown role {name!r} ({hint})")
        return v


def load_calibration(ref: str | Path | Calibration) -> Calibration:
    """A calibration by name or path (one already loaded, e.g. inline in a scenario, as is)."""
    if isinstance(ref, Calibration):
        return ref
    return load_model(ref, "calibration", Calibration, CalibrationError)[1]
