"""Result → numbers and pandas DataFrames: hops, critical paths, idle time, latency, CPU.

Everything here is computed from what the recorder saw while the model ran; nothing is
looked up from a table of expected values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from smtpd_sim.spec.calibration import Calibration
from smtpd_sim.observe.recorder import EVENT_COLUMNS, HOP_COLUMNS, RUN_COLUMNS
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.observe.sketch import mean, percentile, snapshot
from smtpd_sim.spec.topology import Topology
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec

# The client script of a probe session (smtpd_sim.world.clients.ClientSession): the replies
# a one-message session gets, in order.
PROBE_STEPS = ("banner", "EHLO", "MAIL FROM", "RCPT TO", "DATA", "end of data", "QUIT")


def hops_frame(sim: Simulation) -> pd.DataFrame:
    """One row per imsg received (needs a run with ``rows=True``)."""
    return pd.DataFrame.from_records(sim.kernel.recorder.hops, columns=list(HOP_COLUMNS))


def runs_frame(sim: Simulation) -> pd.DataFrame:
    """One row per handler run."""
    return pd.DataFrame.from_records(sim.kernel.recorder.runs, columns=list(RUN_COLUMNS))


def events_frame(sim: Simulation) -> pd.DataFrame:
    return pd.DataFrame.from_records(sim.kernel.recorder.events, columns=list(EVENT_COLUMNS))


def probe_workload(kind: str = "local", *, recipients: int = 1, messages: int = 1,
                   sessions: int = 1) -> WorkloadSpec:
    """The research's common case: sessions of ``messages`` messages to ``recipients``
    recipients, all local or all relayed (era-5.4.2-mfa.md §0.2)."""
    if kind not in ("local", "relay"):
        raise ValueError(f"probe kind must be 'local' or 'relay', not {kind!r}")
    return WorkloadSpec(
        name=f"probe-{kind}",
        sessions=sessions,
        arrival=Arrival(process="fixed", rate_per_s=10.0),
        mix=Mix(messages=messages, recipients=recipients, local_share=1.0 if kind == "local" else 0.0,
                local_users=["alice", "bob", "carol"], pick="cycle"),
    )


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


def probe_simulation(era: str | Topology, kind: str = "local", *, recipients: int = 1, messages: int = 1,
                     sessions: int = 1, seed: int = 1, calibration: Calibration | str = "research-6.8",
                     site: str = "common-case") -> tuple[Simulation, float]:
    """The probe's simulation run to quiescence, with every row recorded; and the time the
    clients started (after the daemon's startup)."""
    sim = Simulation(era, workload=probe_workload(kind, recipients=recipients, messages=messages,
                                                  sessions=sessions),
                     seed=seed, calibration=calibration, site=site)
    sim.startup()
    t0 = sim.env.now
    sim.start_clients()
    sim.run_until_quiet(max_time=600.0)
    return sim, t0


def trace_frames(sim: Simulation) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(hops, handler runs) of a run recorded with rows, in the shape ``smtpd_sim.observe.traces`` writes
    as a real ``-T imsg`` log (:func:`smtpd_sim.observe.traces.write_imsg_trace`) or a Chrome trace."""
    return trace_hops(sim.kernel.recorder.hops), runs_frame(sim)


def trace_hops(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Recorder hop rows as the hop table ``smtpd_sim.observe.traces.write_imsg_trace`` takes
    (``fd`` 1 when a descriptor was passed, -1 when not)."""
    return pd.DataFrame.from_records(
        [(h[0], h[1], h[2], h[3], h[4], h[6], 1 if h[7] else -1) for h in rows],
        columns=["time", "sent_time", "from_proc", "to_proc", "imsg_name", "len", "fd"])


def run_probe(era: str | Topology, kind: str = "local", *, recipients: int = 1, messages: int = 1,
              sessions: int = 1, seed: int = 1, calibration: str = "research-6.8",
              site: str = "common-case") -> Probe:
    """Run the probe to quiescence and count what crossed process boundaries."""
    sim, t0 = probe_simulation(era, kind, recipients=recipients, messages=messages, sessions=sessions,
                               seed=seed, calibration=calibration, site=site)
    rec = sim.kernel.recorder
    by_pair: dict[str, int] = {}
    by_type: dict[str, int] = {}
    for (src, dst, name), n in rec.hop_counts.items():
        by_pair[f"{src}->{dst}"] = by_pair.get(f"{src}->{dst}", 0) + n
        by_type[name] = by_type.get(name, 0) + n
    stat_set = sum(n for (_s, _d, name), n in rec.stat_counts.items() if name.endswith("STAT_SET"))
    return Probe(
        era=era,
        kind=kind,
        hops=sum(rec.hop_counts.values()),
        stat_hops=sum(rec.stat_counts.values()) - stat_set,
        background_stat_hops=stat_set,
        by_pair=dict(sorted(by_pair.items())),
        by_type=dict(sorted(by_type.items())),
        critical_path=critical_paths(sim),
        ledger=sim.ledger.summary(),
        sequence=[(h[2], h[3], h[4]) for h in rec.hops if not h[8]],
        span_s=sim.env.now - t0,
    )


def critical_paths(sim: Simulation) -> list[dict[str, Any]]:
    """For each SMTP reply: the imsgs on the causal chain from what the client did (connect
    or a command line) to the reply. A request/answer pair is one round trip."""
    rec = sim.kernel.recorder
    parent: dict[int, tuple[int, bool]] = {r[4]: (r[5], r[6]) for r in rec.runs}
    out: list[dict[str, Any]] = []
    per_session: dict[int, int] = {}
    for t, event, _proc, session, code, cause in rec.events:
        if event != "reply":
            continue
        hops = 0
        node = cause
        seen = 0
        while node and seen < 10_000:
            seen += 1
            up, is_hop = parent.get(node, (0, False))
            if is_hop:
                hops += 1
            node = up
        i = per_session.get(session, 0)
        per_session[session] = i + 1
        step = PROBE_STEPS[i] if i < len(PROBE_STEPS) else f"reply {i}"
        out.append({"session": session, "step": step, "code": code, "time": t, "hops": hops,
                    "round_trips": hops / 2})
    return out


@dataclass
class LoadMetrics:
    """What a load run measured over its window."""

    era: str
    duration_s: float
    accepted: int
    throughput_msg_s: float
    latency_mean_s: float
    latency_p99_s: float
    session_mean_s: float
    idle_fraction: dict[str, float]
    cpu_ms_per_msg: dict[str, float]
    cores: int
    ledger: dict[str, int]
    background_stat_hops_per_s: float = 0.0


def run_load(era: str | Topology, workload: WorkloadSpec, *, seed: int = 1, calibration: str = "research-6.8",
             site: str = "common-case", rows: bool = False, drain_s: float = 30.0,
             **sim_kw: Any) -> tuple[LoadMetrics, Simulation]:
    """Run a workload; measure from the first arrival to the end of the arrivals, then let
    the queue drain (bounded) so the ledger can be checked."""
    sim = Simulation(era, workload=workload, seed=seed, calibration=calibration, site=site,
                     rows=rows, **sim_kw)
    sim.startup()
    t0 = sim.env.now
    procs = sim.procs
    busy0 = {n: p.busy_time for n, p in procs.items()}
    cpu0 = {n: p.cpu_time for n, p in procs.items()}
    parent_role = sim.roles["parent"]
    child0 = parent_role.children_cpu
    sim.start_clients(t0)
    t1 = t0 + workload.duration_s
    sim.ledger.window_end = t1  # delivered throughput counts what was delivered by then
    sim.run(t1)
    window = sim.env.now - t0
    accepted = sim.ledger.accepted_msgs
    idle = {n: max(0.0, 1.0 - (p.busy_time - busy0[n]) / window) for n, p in procs.items()}
    denom = max(accepted, 1)
    cpu = {n: (p.cpu_time - cpu0[n]) * 1e3 / denom for n, p in procs.items()}
    cpu["parent-children"] = (parent_role.children_cpu - child0) * 1e3 / denom
    lat = snapshot(sim.latency_samples)  # the window's, before the drain adds more
    sessions = snapshot(sim.session_times)
    stat_set = sum(n for (_s, _d, name), n in sim.kernel.recorder.stat_counts.items()
                   if name.endswith("STAT_SET"))
    sim.run_until_quiet(max_time=sim.env.now + drain_s)
    m = LoadMetrics(
        era=era,
        duration_s=window,
        accepted=accepted,
        throughput_msg_s=accepted / window if window else 0.0,
        latency_mean_s=mean(lat),
        latency_p99_s=percentile(lat, 99),
        session_mean_s=mean(sessions),
        idle_fraction=idle,
        cpu_ms_per_msg=cpu,
        cores=sim.kernel.cpu.cores,
        ledger=sim.ledger.summary(),
        background_stat_hops_per_s=stat_set / window if window else 0.0,
    )
    return m, sim
