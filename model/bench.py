"""Speed: the model's imsg rate against bare SimPy's hop rate, measured in the same process.

Bare SimPy: two generator processes bouncing one message over two ``simpy.Store``
channels with a timeout per hop (research/bench/bench_pingpong.py, 3 events per hop).
Model: the pony-6.8 topology on a load workload with row recording off, counting every
imsg that crossed a process boundary (stat imsgs included) per wall-clock second.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

import simpy

from model.simulation import Simulation
from model.world.clients import Arrival, Mix, WorkloadSpec


def simpy_pingpong(n_hops: int = 200_000, latency: float = 1.0) -> dict[str, float]:
    """Hops per second of bare SimPy ping-pong."""
    env = simpy.Environment()
    a_inbox, b_inbox = simpy.Store(env), simpy.Store(env)
    done = {"hops": 0}

    def node(inbox: simpy.Store, outbox: simpy.Store):  # type: ignore[no-untyped-def]
        while True:
            msg = yield inbox.get()
            if msg >= n_hops:
                done["hops"] = msg
                return
            yield env.timeout(latency)
            yield outbox.put(msg + 1)

    env.process(node(a_inbox, b_inbox))
    env.process(node(b_inbox, a_inbox))
    a_inbox.put(0)
    t0 = time.perf_counter()
    env.run()
    wall = time.perf_counter() - t0
    return {"hops": done["hops"], "wall_s": wall, "hops_per_s": done["hops"] / wall}


def bench_workload(messages: int, rate_per_s: float = 100.0) -> WorkloadSpec:
    """A sustainable load for the 2-core calibration: 90 % local, one message a session."""
    return WorkloadSpec(
        name=f"bench-{messages}",
        sessions=messages,
        duration_s=messages / rate_per_s + 1.0,
        arrival=Arrival(process="poisson", rate_per_s=rate_per_s),
        mix=Mix(local_share=0.9, size_bytes=1024),
    )


def model_run(messages: int, *, era: str = "pony-6.8", seed: int = 1, memory: bool = False) -> dict[str, Any]:
    """Imsgs per wall second for ``messages`` one-recipient messages (arrivals + drain)."""
    gc.collect()
    if memory:
        tracemalloc.start()
    sim = Simulation(era, workload=bench_workload(messages), seed=seed, rows=False,
                     calibration="research-6.8", site="common-case")
    sim.ledger.keep_delays = False
    sim.startup()
    t0 = time.perf_counter()
    sim.start_clients()
    sim.run_until_quiet(max_time=sim.env.now + messages / 50.0 + 120.0, step=5.0)
    wall = time.perf_counter() - t0
    peak = 0
    if memory:
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rec = sim.kernel.recorder
    imsgs = sum(rec.hop_counts.values()) + sum(rec.stat_counts.values())
    return {
        "messages": messages,
        "accepted": sim.ledger.accepted_msgs,
        "delivered": sim.ledger.counts["delivered"],
        "imsgs": imsgs,
        "wall_s": wall,
        "imsgs_per_s": imsgs / wall,
        "wall_ms_per_message": wall * 1e3 / max(1, messages),
        "peak_traced_bytes": peak,
        "peak_bytes_per_message": peak / max(1, messages) if memory else None,
    }


def run_bench(scaling: tuple[int, ...] = (1_000, 10_000, 100_000), simpy_hops: int = 300_000,
              progress: Any = None) -> dict[str, Any]:
    """The whole benchmark: SimPy and the model in this process, their ratio, and scaling."""
    base = simpy_pingpong(simpy_hops)
    if progress:
        progress("simpy", base)
    runs = []
    for n in scaling:
        r = model_run(n)
        runs.append(r)
        if progress:
            progress(f"model {n}", r)
    mem = [model_run(n, memory=True) for n in scaling[:2]]
    main = max(runs, key=lambda r: r["messages"])
    return {
        "simpy_hops_per_s": base["hops_per_s"],
        "model_imsgs_per_s": main["imsgs_per_s"],
        "ratio": main["imsgs_per_s"] / base["hops_per_s"],
        "scaling": runs,
        "memory": [{"messages": m["messages"], "peak_traced_bytes": m["peak_traced_bytes"]} for m in mem],
    }
