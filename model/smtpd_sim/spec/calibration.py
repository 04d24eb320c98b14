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

    wake_s: float = Field(default=0.0, ge=0, le=MAX_COST_S)  # per event-loop iteration (epoll, read, write)
    default_s: float = Field(default=0.0, ge=0, le=MAX_COST_S)  # per item handled (imsg or io event)
    per_byte_s: float = Field(default=0.0, ge=0, le=MAX_COST_S)  # per payload byte (imsg) or client byte (smtp)
    handler: dict[str, Cost] = Field(default_factory=dict)  # per imsg kind or io key


class ChannelCosts(Strict):
    latency_s: float = Field(default=15e-6, ge=0, le=MAX_COST_S)  # socketpair write -> peer readable
    per_byte_s: float = Field(default=0.0, ge=0, le=MAX_COST_S)
    fd_s: float = Field(default=0.0, ge=0, le=MAX_COST_S)  # SCM_RIGHTS


class DiskCosts(Strict):
    """File-system syscalls of the queue (and the parent's .forward open)."""

    cpu_s: dict[str, Cost] = Field(default_factory=dict)  # kernel CPU per op (stime)
    wait_s: dict[str, Cost] = Field(default_factory=dict)  # off-CPU wait per op (journal commit)


class Calibration(Strict):
    name: str
    description: str = ""
    source: str = ""
    cores: int = Field(default=2, ge=1, le=MAX_CORES)
    cpu_policy: Literal["fifo", "fair"] = "fair"
    channel: ChannelCosts = Field(default_factory=ChannelCosts)
    world: WorldParams = Field(default_factory=WorldParams)
    disk: DiskCosts = Field(default_factory=DiskCosts)
    roles: dict[str, RoleCosts] = Field(default_factory=dict)
    measured: dict[str, object] = Field(default_factory=dict)  # the figures this was fitted on

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
