"""Cost calibration: CPU per handler, wake-up cost, channel latency, the world's latencies.

A calibration file (``scenarios/calibration/<name>.toml``) says how much each role's
handlers cost and how the measurement was taken. Process costs are the union of the
costs of the roles it hosts (pony = smtp + mta + mda), so one calibration serves every
era; roles the measured daemon did not have (mfa) take a documented stand-in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from smtpd_sim.spec.files import load_model
from smtpd_sim.kernel.process import ProcessCosts
from smtpd_sim.spec.world import WorldParams


class CalibrationError(ValueError):
    """An invalid calibration file (one line)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleCosts(_Strict):
    """CPU seconds of one role's handlers."""

    wake_s: float = Field(default=0.0, ge=0)  # per event-loop iteration (epoll, read, write)
    default_s: float = Field(default=0.0, ge=0)  # per item handled (imsg or io event)
    per_byte_s: float = Field(default=0.0, ge=0)  # per payload byte (imsg) or client byte (smtp)
    handler: dict[str, float] = Field(default_factory=dict)  # per imsg kind or io key


class ChannelCosts(_Strict):
    latency_s: float = Field(default=15e-6, ge=0)  # socketpair write -> peer readable
    per_byte_s: float = Field(default=0.0, ge=0)
    fd_s: float = Field(default=0.0, ge=0)  # SCM_RIGHTS


class DiskCosts(_Strict):
    """File-system syscalls of the queue (and the parent's .forward open)."""

    cpu_s: dict[str, float] = Field(default_factory=dict)  # kernel CPU per op (stime)
    wait_s: dict[str, float] = Field(default_factory=dict)  # off-CPU wait per op (journal commit)


class Calibration(_Strict):
    name: str
    description: str = ""
    source: str = ""
    cores: int = Field(default=2, ge=1)
    cpu_policy: Literal["fifo", "fair"] = "fair"
    channel: ChannelCosts = Field(default_factory=ChannelCosts)
    world: WorldParams = Field(default_factory=WorldParams)
    disk: DiskCosts = Field(default_factory=DiskCosts)
    roles: dict[str, RoleCosts] = Field(default_factory=dict)
    measured: dict[str, object] = Field(default_factory=dict)  # the figures this was fitted on

    def process_costs(self, roles: list[str]) -> ProcessCosts:
        """Merge the costs of the roles a process hosts."""
        wake = 0.0
        default = 0.0
        per_byte = 0.0
        handler: dict[str, float] = {}
        for r in roles:
            rc = self.roles.get(r)
            if rc is None:
                continue
            wake = max(wake, rc.wake_s)
            default = max(default, rc.default_s)
            per_byte = max(per_byte, rc.per_byte_s)
            handler.update(rc.handler)
            # every kind this role handles falls back to its own default, not the process max
        return ProcessCosts(wake=wake, handler=handler, default=default, per_byte=per_byte)


def load_calibration(ref: str | Path = "research-6.8") -> Calibration:
    """A calibration by name or path."""
    return load_model(ref, "calibration", "calibration", Calibration, CalibrationError)[1]


# processes of the 6.8 daemon -> the roles whose handlers run in them
PROCESS_ROLES_68 = {
    "pony": ("smtp", "mta", "mda"), "lka": ("lka",), "queue": ("queue",),
    "scheduler": ("scheduler",), "control": ("control",), "parent": ("parent",), "ca": ("ca",),
}


def handler_medians(csv_paths: list[Path]) -> dict[tuple[str, str], tuple[float, int]]:
    """Median ``profile-imsg`` handler time per (receiving process, imsg kind) over real
    trace CSVs (columns of research/real-traces/csv/*.imsg.csv), in seconds, with counts."""
    import csv
    import statistics

    samples: dict[tuple[str, str], list[float]] = {}
    for path in csv_paths:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("handler_us"):
                    key = (row["to_proc"], row["imsg_name"].removeprefix("IMSG_"))
                    samples.setdefault(key, []).append(float(row["handler_us"]) * 1e-6)
    return {k: (statistics.median(v), len(v)) for k, v in sorted(samples.items())}


def traced_calibration_toml(csv_paths: list[Path], base: Calibration, name: str = "traced-6.8") -> str:
    """A calibration for runs taken like the research traces (``-T all -T profile-imsg``):
    each imsg handler costs its median measured time, the daemon has one core."""
    from smtpd_sim.sim.simulation import ROLE_CLASSES

    med = handler_medians(csv_paths)
    lines = [
        f'name = "{name}"',
        'description = "OpenSMTPD 6.8.0p2 as traced with -T all -T profile-imsg (research/real-traces)"',
        'source = "median profile-imsg handler times per (process, imsg) over research/real-traces/csv/*.imsg.csv"',
        "# Under -T all the trace reader (tools/tslog.py) shared the 2 vCPUs: in local-1rcpt pony",
        "# waits ~600 us with an imsg pending while only scheduler, queue and control run, i.e. the",
        "# daemon had one core's worth of service. Handler times include the trace logging and the",
        "# file-system waits, so the disk costs are zero here.",
        "cores = 1",
        'cpu_policy = "fair"',
        "",
        "[channel]",
        f"latency_s = {base.channel.latency_s!r}",
        "",
        "[world]",
    ]
    for k, v in base.world.model_dump().items():
        if k == "tls_key_engine_broken":
            lines.append("# Debian 12's 6.8.0p2 with OpenSSL 3: no IMSG_CA_*, handshakes fail (real-daemon.md §6)")
            v = True
        lines.append(f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}")
    lines.append("")
    for proc, roles in PROCESS_ROLES_68.items():
        for role in roles:
            rc = base.roles.get(role, RoleCosts())
            kinds = ROLE_CLASSES[role].handlers
            lines.append(f"[roles.{role}]")
            lines.append(f"default_s = {rc.default_s!r}")
            if rc.per_byte_s:
                lines.append(f"per_byte_s = {rc.per_byte_s!r}")
            lines.append(f"[roles.{role}.handler]")
            for (p, kind), (value, n) in med.items():
                if p == proc and kind in kinds:
                    lines.append(f"{kind} = {value:.4g}  # median of {n}")
            lines.append("")
    return "\n".join(lines)
