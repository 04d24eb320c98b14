"""Sweep throughput: points per second on a Dask LocalCluster of 1 worker vs 2 workers.

The same design (default scenario, pony-6.8, arrival rates from 20 to 90 sessions/s,
a few simulated seconds each) runs in-process, then on 1 and on 2 worker processes (one
thread each); the clock starts once the workers are up and warm (model imported), so the
figures are the work, not the cluster start-up. The workers' CPU time is read too: CPU per
wall second per worker well below 1 means other programs had the cores. On a 2-core machine 2 workers should give
close to twice the points per second of 1, provided nothing else is using the cores
(the load average is printed before and after).

    .venv/bin/python benchmarks/bench_sweep.py [--points 16] [--duration 5] [--repeat 3] [--json]

The 1- and 2-worker runs alternate ``--repeat`` times and the medians are compared: the
speed of one task varies by tens of per cent between runs on a shared virtual machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

from distributed import Client, LocalCluster

from smtpd_sim import native

native.prepare()  # before the model loads: a stale build dropped, SMTPD_SIM_PURE honoured

from smtpd_sim.studies.sweep import (  # noqa: E402
    SweepPlan,
    default_scenario,
    parse_vary,
    plan_sweep,
    run_sweep,
    warm_worker,
)


def measure(plan: SweepPlan, workers: int) -> dict[str, Any]:
    """One timed run of the plan: in this process (0) or on a fresh LocalCluster."""
    topologies = list({p.scenario["era"]: p.topology for p in plan.points}.values())
    if workers == 0:
        warm_worker(topologies)  # the imports the workers do before their clock starts
        cpu0 = time.process_time()
        run = run_sweep(plan, workers=0)
        cpu = time.process_time() - cpu0
    else:
        # the same LocalCluster run_sweep would start, started here so that the workers'
        # CPU time can be read: CPU / (wall x workers) below 1 means the cores were busy
        # with something else (other users of the machine), not that the sweep idled
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=50) as cluster, Client(cluster) as client:
            client.run(warm_worker, topologies)
            cpu0 = sum(client.run(time.process_time).values())
            run = run_sweep(plan, scheduler=cluster.scheduler_address)
            cpu = sum(client.run(time.process_time).values()) - cpu0
    return {"wall_s": round(run.wall_s, 3), "points_per_s": round(run.points_per_s, 3), "cpu_s": round(cpu, 3),
            "cpu_per_wall_per_worker": round(cpu / (run.wall_s * max(workers, 1)), 3), "table": run.table}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=16, help="design points (arrival rates)")
    ap.add_argument("--duration", type=float, default=5.0, help="simulated seconds of arrivals per point")
    ap.add_argument("--repeat", type=int, default=3, help="alternate 1- and 2-worker runs this many times")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    rates = ",".join(str(20 + i * 70 / max(1, args.points - 1)) for i in range(args.points))
    plan = plan_sweep(default_scenario(), [parse_vary(f"workload.arrival.rate_per_s={rates}"),
                                           parse_vary(f"workload.duration_s={args.duration}")])
    load0 = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {"in_process": [measure(plan, 0)], "workers_1": [], "workers_2": []}
    for _ in range(args.repeat):  # alternate, so that a noisy spell hits both
        for workers in (1, 2):
            runs[f"workers_{workers}"].append(measure(plan, workers))
    same = all(r["table"].equals(runs["in_process"][0]["table"]) for rs in runs.values() for r in rs)
    out: dict[str, Any] = {"points": len(plan.points), "duration_s": args.duration, "repeat": args.repeat,
                           "load_before": load0, "load_after": os.getloadavg(), "same_table": same}
    for label, rs in runs.items():
        out[label] = {"points_per_s_median": statistics.median(r["points_per_s"] for r in rs),
                      "runs": [{k: v for k, v in r.items() if k != "table"} for r in rs]}
        if not args.json:
            for r in rs:
                print(f"{label:>10}: {len(plan.points)} points in {r['wall_s']:6.2f} s = "
                      f"{r['points_per_s']:6.2f} points/s (CPU {r['cpu_per_wall_per_worker']:.0%} of wall x workers)",
                      file=sys.stderr)
    out["speedup_2_vs_1"] = round(out["workers_2"]["points_per_s_median"] / out["workers_1"]["points_per_s_median"], 3)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"median points/s: 1 worker {out['workers_1']['points_per_s_median']:.2f}, 2 workers "
              f"{out['workers_2']['points_per_s_median']:.2f}: {out['speedup_2_vs_1']:.2f}x (load average before "
              f"{load0[0]:.2f}, after {out['load_after'][0]:.2f}); same table every run: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
