"""Run a scenario to the end: arrivals, faults, the drain; then the ledger and the tables."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from smtpd_sim.observe.metrics import hops_frame
from smtpd_sim.observe.sketch import maximum, mean, percentile
from smtpd_sim.sim.result import RunResult
from smtpd_sim.sim.runner import Runner
from smtpd_sim.spec.scenario import Scenario, ScenarioSpec, resolve_scenario
from smtpd_sim.studies.messages import EnvelopeLog, install_log, messages_table

SAMPLE_COLUMNS = ("time", "queued", "pending", "inflight", "held", "accepted", "delivered", "bounced",
                  "expired", "sessions_open", "down")


@dataclass
class RunSummary:
    """What a scenario run produced (everything computed from the run)."""

    name: str
    seed: int
    era: str
    simulated_s: float
    wall_s: float
    ledger: dict[str, int]
    tempfails: int
    warnings: int
    bounces: dict[str, int]
    crashes: int
    restarts: int
    refused_sessions: int
    vanished_clients: int
    throughput_msg_s: float
    latency_s: dict[str, float | None]
    delivery_delay_s: dict[str, float | None]
    cpu_ms_per_msg: dict[str, float]
    samples: list[tuple[Any, ...]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    # what the queue said about each envelope (messages.csv), None for a streaming run
    envelopes: EnvelopeLog | None = field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("samples", "config", "envelopes")}
        return d


def run_scenario(scenario: Scenario | ScenarioSpec | str | Path, *, progress: Any = None, rows: bool = False,
                 stream: bool = False) -> tuple[RunSummary, RunResult]:
    """Simulate arrivals for the workload's duration, then keep going until everything
    accepted is settled or ``drain_s`` has passed; sample the queue every ``sample_s``.
    ``stream``: no per-message history (memory follows what is in flight), percentiles
    from sketches."""
    scen = scenario if isinstance(scenario, Scenario) else resolve_scenario(scenario)
    wl = scen.workload
    assert wl is not None  # a scenario always has one (the default workload)
    wall0 = time.perf_counter()
    runner = Runner(scen, rows=rows, stream=stream)
    log = None if stream else install_log(runner.sim.ledger, runner.sim.hooks)
    t0 = runner.start()
    t_arrivals = t0 + wl.duration_s
    runner.sample(t_arrivals + scen.drain_s, every=scen.sample_s, quiet_after=t_arrivals, progress=progress)
    res = runner.result()
    faults = runner.faults
    totals = res.processes
    accepted = max(res.accepted_messages, 1)
    lat = res.latency
    delays = res.delivery_delays
    summary = RunSummary(
        name=scen.name,
        seed=scen.seed,
        era=scen.era,
        simulated_s=res.simulated_s,
        wall_s=time.perf_counter() - wall0,
        ledger=res.ledger,
        tempfails=res.tempfails,
        warnings=res.warnings,
        bounces=res.bounces,
        crashes=faults.crashes if faults else 0,
        restarts=res.restarts,
        refused_sessions=res.refused_sessions,
        vanished_clients=faults.vanished if faults else 0,
        throughput_msg_s=res.accepted_messages / wl.duration_s,
        latency_s={"mean": _finite(mean(lat)), "p99": _finite(percentile(lat, 99))},
        delivery_delay_s={"median": _finite(percentile(delays, 50)), "p99": _finite(percentile(delays, 99)),
                          "max": maximum(delays)},
        cpu_ms_per_msg={n: v["cpu"] * 1e3 / accepted for n, v in totals.items()},
        samples=res.samples,
        config=res.config,
        envelopes=log,
    )
    return summary, res


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


def samples_frame(summary: RunSummary) -> pd.DataFrame:
    """The time series: the queue, the ledger and the sessions every ``sample_s``."""
    return pd.DataFrame.from_records(summary.samples, columns=list(SAMPLE_COLUMNS))


def messages_frame(res: RunResult, envelopes: EnvelopeLog | None = None) -> pd.DataFrame:
    """One row per accepted envelope, then per bounce envelope (empty for a streaming run,
    which kept none): the ledger's columns, then kind, domain, size, recipients, session,
    queue wait, attempts and last error from ``envelopes`` (``RunSummary.envelopes``;
    without it those are empty). Columns and what is empty when:
    ``smtpd_sim.studies.messages.messages_table``."""
    return messages_table(res.messages, envelopes)


def write_results(summary: RunSummary, res: RunResult, out: Path) -> Path:
    """A results directory: the resolved config, the ledger, per-message and per-hop tables
    (CSV) and the time series (the figure: ``smtpd_sim.figures.run``)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(summary.config, indent=2, default=str) + "\n")
    (out / "summary.json").write_text(json.dumps(summary.summary(), indent=2, default=str) + "\n")
    samples_frame(summary).to_csv(out / "samples.csv", index=False)
    if res.messages is not None:  # a streaming run kept no per-message history
        messages_frame(res, summary.envelopes).to_csv(out / "messages.csv", index=False)
    hop_rows = [(s, d, n, c, False) for (s, d, n), c in sorted(res.hop_counts.items())]
    hop_rows += [(s, d, n, c, True) for (s, d, n), c in sorted(res.stat_counts.items())]
    pd.DataFrame.from_records(hop_rows, columns=["from_proc", "to_proc", "imsg_name", "count", "stat"]).to_csv(
        out / "hops.csv", index=False)
    if res.hops:
        hops_frame(res.hops).to_csv(out / "hop_rows.csv", index=False)
    return out
