"""A load run: the workload's arrivals measured over their window, then a bounded drain so
the ledger can be checked. The building block of compare, the sweeps and the notebooks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smtpd_sim.observe.sketch import mean, percentile
from smtpd_sim.sim.result import RunResult
from smtpd_sim.sim.runner import Runner
from smtpd_sim.spec.calibration import Calibration
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION, DEFAULT_SITE, Scenario, scenario_of
from smtpd_sim.spec.site import SiteSpec
from smtpd_sim.spec.topology import Topology
from smtpd_sim.spec.workload import WorkloadSpec


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


def run_load(era: str | Path | Topology | Scenario, workload: str | Path | WorkloadSpec | None = None, *,
             seed: int = 1, calibration: str | Path | Calibration = DEFAULT_CALIBRATION,
             site: str | Path | SiteSpec = DEFAULT_SITE, cores: int | None = None, rows: bool = False,
             stream: bool = False, drain_s: float = 30.0) -> tuple[LoadMetrics, RunResult]:
    """Run a workload (or a resolved scenario); measure from the first arrival to the end of
    the arrivals, then let the queue drain for at most ``drain_s`` so the ledger can be
    checked. ``stream``: percentiles from sketches, no per-message history."""
    scenario = era if isinstance(era, Scenario) else scenario_of(
        era, workload=workload, seed=seed, calibration=calibration, site=site, cores=cores)
    wl = scenario.workload
    if wl is None:
        raise ValueError("a load run needs a workload")
    runner = Runner(scenario, rows=rows, stream=stream)
    t0 = runner.start()
    w = runner.measure(t0 + wl.duration_s)
    runner.drain(runner.now + drain_s)
    res = runner.result()
    window = w.length
    accepted = w.accepted
    denom = max(accepted, 1)
    idle = {n: max(0.0, 1.0 - p.busy / window) for n, p in w.processes.items()}
    cpu = {n: p.cpu * 1e3 / denom for n, p in w.processes.items()}
    cpu["parent-children"] = w.children_cpu * 1e3 / denom
    m = LoadMetrics(
        era=era if isinstance(era, str) else scenario.era,
        duration_s=window,
        accepted=accepted,
        throughput_msg_s=accepted / window if window else 0.0,
        latency_mean_s=mean(w.latency),
        latency_p99_s=percentile(w.latency, 99),
        session_mean_s=mean(w.sessions),
        idle_fraction=idle,
        cpu_ms_per_msg=cpu,
        cores=res.cores,
        ledger=res.ledger,
        background_stat_hops_per_s=w.background_stat_hops / window if window else 0.0,
    )
    return m, res
