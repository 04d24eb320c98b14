"""Probes: a few SMTP sessions run to quiescence with every row recorded, to count what
crosses process boundaries and trace one message imsg by imsg.

The research's common case (era-5.4.2-mfa.md §0.2): sessions of ``messages`` messages to
``recipients`` recipients, all local or all relayed; local users taken in turn, so a
probe is the same in every era.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from smtpd_sim.observe.metrics import critical_paths, events_frame, hops_frame, reply_steps
from smtpd_sim.sim.result import RunResult
from smtpd_sim.sim.runner import probe
from smtpd_sim.spec.calibration import Calibration
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION, DEFAULT_SITE, Scenario, scenario_of
from smtpd_sim.spec.site import SiteSpec
from smtpd_sim.spec.topology import Topology
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec

KINDS = ("local", "relay")


def probe_workload(kind: str = "local", *, recipients: int = 1, messages: int = 1,
                   sessions: int = 1) -> WorkloadSpec:
    """``sessions`` sessions of ``messages`` messages to ``recipients`` recipients, all local
    (alice, bob, carol in turn) or all relayed."""
    if kind not in KINDS:
        raise ValueError(f"probe kind must be 'local' or 'relay', not {kind!r}")
    return WorkloadSpec(
        name=f"probe-{kind}",
        sessions=sessions,
        arrival=Arrival(process="fixed", rate_per_s=10.0),
        mix=Mix(messages=messages, recipients=recipients, local_share=1.0 if kind == "local" else 0.0,
                local_users=["alice", "bob", "carol"], pick="cycle"),
    )


def probe_scenario(era: str | Path | Topology, kind: str = "local", *, recipients: int = 1, messages: int = 1,
                   sessions: int = 1, seed: int = 1, calibration: str | Path | Calibration = DEFAULT_CALIBRATION,
                   site: str | Path | SiteSpec = DEFAULT_SITE, workload: WorkloadSpec | None = None) -> Scenario:
    """The probe of ``era`` as a scenario (``workload`` replaces the probe's own)."""
    wl = workload or probe_workload(kind, recipients=recipients, messages=messages, sessions=sessions)
    return scenario_of(era, workload=wl, seed=seed, calibration=calibration, site=site)


def probe_result(era: str | Path | Topology | Scenario, kind: str = "local", *, rows: bool = True,
                 **kw: Any) -> RunResult:
    """The probe run to quiescence, every row recorded unless ``rows`` is off (``kw``:
    :func:`probe_scenario`'s)."""
    scenario = era if isinstance(era, Scenario) else probe_scenario(era, kind, **kw)
    return probe(scenario, rows=rows).result()


@dataclass
class Probe:
    """Counts from running a few sessions to completion."""

    era: str
    kind: str
    hops: int
    stat_hops: int
    background_stat_hops: int
    by_pair: dict[str, int]
    by_type: dict[str, int]
    critical_path: list[dict[str, Any]] = field(default_factory=list)
    ledger: dict[str, int] = field(default_factory=dict)
    sequence: list[tuple[str, str, str]] = field(default_factory=list)
    span_s: float = 0.0  # simulated time from the first client to quiescence


def run_probe(era: str | Path | Topology, kind: str = "local", **kw: Any) -> Probe:
    """Run the probe to quiescence and count what crossed process boundaries."""
    res = probe_result(era, kind, **kw)
    by_pair: dict[str, int] = {}
    by_type: dict[str, int] = {}
    for (src, dst, name), n in res.hop_counts.items():
        by_pair[f"{src}->{dst}"] = by_pair.get(f"{src}->{dst}", 0) + n
        by_type[name] = by_type.get(name, 0) + n
    stat_set = sum(n for (_s, _d, name), n in res.stat_counts.items() if name.endswith("STAT_SET"))
    return Probe(
        era=era if isinstance(era, str) else res.era,
        kind=kind,
        hops=sum(res.hop_counts.values()),
        stat_hops=sum(res.stat_counts.values()) - stat_set,
        background_stat_hops=stat_set,
        by_pair=dict(sorted(by_pair.items())),
        by_type=dict(sorted(by_type.items())),
        critical_path=critical_paths(res.runs, res.events),
        ledger=res.ledger,
        sequence=[(h.from_proc, h.to_proc, h.imsg_name) for h in res.hops if not h.stat],
        span_s=res.simulated_s,
    )


@dataclass
class ProbeTrace:
    """Every imsg and SMTP reply of a few probe sessions, with times (for sequence diagrams)."""

    era: str
    hops: pd.DataFrame  # hops_frame columns, time relative to the first client connect
    replies: pd.DataFrame  # time, code, step of each SMTP reply the client got
    processes: list[str]  # the daemon's processes, in topology order
    mfa: str | None  # the process hosting mfa
    smtp: str  # the process hosting smtp (the one the client talks to)
    filter_lines: int  # lines lka exchanged with 6.8 filter processors (not imsgs)


def probe_trace(era: str | Path | Topology, kind: str = "local", *, recipients: int = 1, messages: int = 1,
                seed: int = 1, calibration: str | Path | Calibration = DEFAULT_CALIBRATION) -> ProbeTrace:
    """Run one probe session (as ``run_probe`` does) and keep its hops and replies; times are
    measured from the first thing the daemon does for the session (the first imsg sent or
    the banner, whichever is earlier)."""
    scenario = probe_scenario(era, kind, recipients=recipients, messages=messages, seed=seed,
                              calibration=calibration)
    res = probe_result(scenario)
    hops = hops_frame(res.hops)
    ev = events_frame(res.events)
    ev = ev[ev["event"] == "reply"].reset_index(drop=True)
    starts = [x for x in (hops["sent_time"].min(), ev["time"].min()) if not pd.isna(x)]
    origin = min(starts) if starts else res.t0
    hops["time"] -= origin
    hops["sent_time"] -= origin
    steps = reply_steps(recipients, messages)
    replies = pd.DataFrame({
        "time": ev["time"] - origin,
        "code": ev["detail"].astype(str),
        "step": [steps[i] if i < len(steps) else f"reply {i}" for i in range(len(ev))],
    })
    topo = scenario.topology
    return ProbeTrace(res.era if not isinstance(era, str) else era, hops, replies,
                      [p.name for p in topo.spec.process], topo.host.get("mfa"), topo.host["smtp"],
                      res.filter_lines)

