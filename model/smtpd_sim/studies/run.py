"""Run a scenario to the end: arrivals, faults, the drain; then the ledger and the tables."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from smtpd_sim.sim.faults import Faults
from smtpd_sim.spec.scenario import ScenarioSpec, resolved, workload_of
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.observe.sketch import Sketch, maximum, mean, percentile

SAMPLE_COLUMNS = ("time", "queued", "pending", "inflight", "held", "accepted", "delivered", "bounced",
                  "expired", "sessions_open", "down")


@dataclass
class RunResult:
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

    def summary(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("samples", "config")}
        return d


def run_scenario(spec: ScenarioSpec, *, progress: Any = None, rows: bool = False,
                 stream: bool = False) -> tuple[RunResult, Simulation]:
    """Simulate arrivals for the workload's duration, then keep going until everything
    accepted is settled or ``drain_s`` has passed; sample the queue every ``sample_s``.
    ``stream``: no per-message history (memory follows what is in flight), percentiles
    from sketches."""
    wl = workload_of(spec)
    wall0 = time.perf_counter()
    sim = Simulation(spec.era, calibration=spec.calibration, site=spec.site, workload=wl,
                     seed=spec.seed, rows=rows, cores=spec.cores, tables=spec.tables, stream=stream)
    sim.startup()
    t0 = sim.env.now
    faults = Faults(sim, list(spec.fault), t0) if spec.fault else None
    sim.start_clients(t0)
    t_arrivals = t0 + wl.duration_s
    end = t_arrivals + spec.drain_s
    samples: list[tuple[Any, ...]] = []
    env = sim.env
    while env.now < end:
        env.run(until=min(end, env.now + spec.sample_s))
        samples.append(_sample(sim, t0))
        if progress:
            progress(env.now - t0, end - t0)
        if env.now >= t_arrivals and sim.quiet():
            break
    led = sim.ledger
    totals = sim.process_totals()
    accepted = max(led.accepted_msgs, 1)
    lat = sim.latency_samples
    delays = led.delivery_delays
    res = RunResult(
        name=spec.name,
        seed=spec.seed,
        era=spec.era,
        simulated_s=env.now - t0,
        wall_s=time.perf_counter() - wall0,
        ledger=led.summary(sim.queued_on_disk()),
        tempfails=led.tempfails,
        warnings=led.warnings,
        bounces={"generated": led.bounces_created, "delivered": led.bounces_sent,
                 "failed": led.bounces_failed,
                 "double_bounces_dropped": sim.roles["queue"].double_bounces},
        crashes=faults.crashes if faults else 0,
        restarts=sim.restarts,
        refused_sessions=sim.refused_sessions,
        vanished_clients=faults.vanished if faults else 0,
        throughput_msg_s=led.accepted_msgs / wl.duration_s,
        latency_s={"mean": _finite(mean(lat)), "p99": _finite(percentile(lat, 99))},
        delivery_delay_s={"median": _finite(percentile(delays, 50)), "p99": _finite(percentile(delays, 99)),
                          "max": maximum(delays)},
        cpu_ms_per_msg={n: v["cpu"] * 1e3 / accepted for n, v in totals.items()},
        samples=samples,
        config=resolved(spec),
    )
    return res, sim


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


def _sample(sim: Simulation, t0: float) -> tuple[Any, ...]:
    led = sim.ledger
    c = sim.roles["scheduler"].backend.counts() if not sim.down else {}
    return (sim.env.now - t0, led.in_flight, c.get("pending", 0), c.get("inflight", 0), c.get("held", 0),
            led.accepted_msgs,
            led.counts["delivered"], led.counts["bounced"], led.counts["expired"],
            sim.fleet.open if sim.fleet else 0, int(sim.down))


def write_results(res: RunResult, sim: Simulation, out: Path) -> Path:
    """A results directory: the resolved config, the ledger, per-message and per-hop tables
    (CSV), the time series and plots."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(res.config, indent=2, default=str) + "\n")
    (out / "summary.json").write_text(json.dumps(res.summary(), indent=2, default=str) + "\n")
    samples = pd.DataFrame.from_records(res.samples, columns=list(SAMPLE_COLUMNS))
    samples.to_csv(out / "samples.csv", index=False)
    recs = [(e, *r) for e, r in sim.ledger.records.items()]
    msgs = pd.DataFrame.from_records(recs, columns=["evpid", "msgid", "accepted_at", "state", "ended_at",
                                                    "tempfails"])
    msgs["evpid"] = msgs["evpid"].map(lambda x: f"{x:016x}")
    msgs["msgid"] = msgs["msgid"].map(lambda x: f"{x:08x}")
    if not sim.stream:  # a streaming run kept no per-message history
        msgs.to_csv(out / "messages.csv", index=False)
    rec = sim.kernel.recorder
    hop_rows = [(s, d, n, c, False) for (s, d, n), c in sorted(rec.hop_counts.items())]
    hop_rows += [(s, d, n, c, True) for (s, d, n), c in sorted(rec.stat_counts.items())]
    pd.DataFrame.from_records(hop_rows, columns=["from_proc", "to_proc", "imsg_name", "count", "stat"]).to_csv(
        out / "hops.csv", index=False)
    if rec.rows and rec.hops:
        from smtpd_sim.observe.metrics import hops_frame

        hops_frame(sim).to_csv(out / "hop_rows.csv", index=False)
    from smtpd_sim.figures.plots import run_figure, save

    delays = sim.ledger.delivery_delays
    save(run_figure(res, samples, msgs, delays if isinstance(delays, Sketch) else None), out / "run.png")
    return out
