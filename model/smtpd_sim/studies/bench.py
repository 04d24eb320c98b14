"""Speed: the model's imsg rate against bare SimPy's hop rate, measured in the same process.

Bare SimPy: two generator processes bouncing one message over two ``simpy.Store``
channels with a timeout per hop (research/bench/bench_pingpong.py, 3 events per hop).
Model: the pony-6.8 topology on a load workload with row recording off, counting every
imsg that crossed a process boundary (stat imsgs included) per CPU second. The two run
interleaved, slice by slice, in one process; rates are per CPU second of each.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from typing import Any

import simpy

from smtpd_sim.sim.runner import Runner
from smtpd_sim.spec.scenario import DEFAULT_ERA, scenario_of
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec


class PingPong:
    """Bare SimPy ping-pong that can be advanced a slice at a time (research/bench/bench_pingpong.py:
    two generator processes, two ``simpy.Store`` channels, a timeout per hop: 3 events a hop)."""

    def __init__(self, latency: float = 1.0) -> None:
        self.env = env = simpy.Environment()
        self.latency = latency
        a_inbox, b_inbox = simpy.Store(env), simpy.Store(env)
        n_hops = float("inf")  # the research benchmark's loop, never stopping by itself

        def node(inbox: simpy.Store, outbox: simpy.Store):  # type: ignore[no-untyped-def]
            while True:
                msg = yield inbox.get()
                if msg >= n_hops:
                    return
                yield env.timeout(latency)
                yield outbox.put(msg + 1)

        env.process(node(a_inbox, b_inbox))
        env.process(node(b_inbox, a_inbox))
        a_inbox.put(0)

    @property
    def hops(self) -> int:
        """Hops done so far (each takes ``latency`` of simulated time)."""
        return int(self.env.now / self.latency)

    def advance(self, hops: int) -> None:
        """``hops`` more hops."""
        self.env.run(until=self.env.now + hops * self.latency)


def bench_workload(messages: int, rate_per_s: float = 100.0) -> WorkloadSpec:
    """A sustainable load for the 2-core calibration: 90 % local, one message a session."""
    return WorkloadSpec(
        name=f"bench-{messages}",
        sessions=messages,
        duration_s=messages / rate_per_s + 1.0,
        arrival=Arrival(process="poisson", rate_per_s=rate_per_s),
        mix=Mix(local_share=0.9, size_bytes=1024),
    )


class _GcClock:
    """CPU time the cyclic garbage collector spends while ``on`` (gc.callbacks)."""

    def __init__(self) -> None:
        self.on = False
        self.total = 0.0
        self._t = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, _info: dict[str, int]) -> None:
        if not self.on:
            return
        if phase == "start":
            self._t = time.process_time()
        elif self._t:
            self.total += time.process_time() - self._t
            self._t = 0.0

    def stop(self) -> None:
        gc.callbacks.remove(self._cb)


def model_run(messages: int, *, era: str = DEFAULT_ERA, seed: int = 1, memory: bool = False,
              pingpong: PingPong | None = None, slice_s: float = 1.0) -> dict[str, Any]:
    """Imsgs per CPU second for ``messages`` one-recipient messages (arrivals + drain).

    With ``pingpong``, each ``slice_s`` of simulated time is followed by about as much CPU
    time of bare SimPy ping-pong, so both rates are measured under the same machine
    conditions (a shared VM's speed drifts by tens of percent within seconds)."""
    gc.collect()
    if memory:
        tracemalloc.start()
    gc_in_simpy = _GcClock() if pingpong is not None else None
    runner = Runner(scenario_of(era, workload=bench_workload(messages), seed=seed), stream=True)
    runner.start(clients=False)
    sim = runner.sim
    led = sim.ledger
    # what memory follows: allocated blocks (cheap to read, unlike tracemalloc) and the
    # envelopes in flight, sampled after every slice
    blocks0 = sys.getallocatedblocks()
    m = {"blocks_peak": 0, "in_flight_peak": 0, "model_cpu": 0.0, "simpy_cpu": 0.0,
         "rate": 100_000.0}  # SimPy hops per CPU second, refined as it runs
    clock = time.process_time
    hops0 = pingpong.hops if pingpong else 0
    t0 = clock()

    def slice_done(_quiet: bool) -> None:
        """After each slice of the model: its CPU, memory, then as much bare SimPy."""
        nonlocal t0
        t1 = clock()
        m["model_cpu"] += t1 - t0
        m["blocks_peak"] = max(m["blocks_peak"], sys.getallocatedblocks() - blocks0)
        m["in_flight_peak"] = max(m["in_flight_peak"], led.in_flight)
        if pingpong is not None:
            assert gc_in_simpy is not None
            gc_in_simpy.on = True
            pingpong.advance(max(100, int(m["rate"] * (t1 - t0))))
            gc_in_simpy.on = False
            t0 = clock()
            m["simpy_cpu"] += t0 - t1
            m["rate"] = (pingpong.hops - hops0) / m["simpy_cpu"]
        else:
            t0 = t1

    runner.start_clients()
    runner.drain(runner.now + messages / 50.0 + 120.0, step=slice_s, on_step=slice_done)
    model_cpu, simpy_cpu = m["model_cpu"], m["simpy_cpu"]
    blocks_peak, in_flight_peak = m["blocks_peak"], m["in_flight_peak"]
    if gc_in_simpy is not None:
        # a collection that runs during a SimPy slice mostly walks the model's objects:
        # its time is the model's
        gc_in_simpy.stop()
        simpy_cpu -= gc_in_simpy.total
        model_cpu += gc_in_simpy.total
    peak = 0
    if memory:
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rec = sim.recorder
    imsgs = sum(rec.hop_counts.values()) + sum(rec.stat_counts.values())
    out: dict[str, Any] = {
        "messages": messages,
        "accepted": sim.ledger.accepted_msgs,
        "delivered": sim.ledger.counts["delivered"],
        "imsgs": imsgs,
        "cpu_s": model_cpu,
        "imsgs_per_s": imsgs / model_cpu,
        "cpu_ms_per_message": model_cpu * 1e3 / max(1, messages),
        "in_flight_peak": in_flight_peak,
        "blocks_peak": blocks_peak,
        "blocks_end": sys.getallocatedblocks() - blocks0,
        "peak_traced_bytes": peak,
        "peak_bytes_per_message": peak / max(1, messages) if memory else None,
    }
    if pingpong is not None:
        assert gc_in_simpy is not None
        hops = pingpong.hops - hops0
        out.update(simpy_hops=hops, simpy_cpu_s=simpy_cpu, simpy_hops_per_s=hops / simpy_cpu,
                   gc_moved_s=gc_in_simpy.total,
                   ratio=(imsgs / model_cpu) / (hops / simpy_cpu))
    return out


def run_bench(scaling: tuple[int, ...] = (1_000, 10_000, 100_000), progress: Any = None) -> dict[str, Any]:
    """The whole benchmark: for each size, the model interleaved with bare SimPy in this
    process (the ratio is the largest run's), then the model's peak memory."""
    from smtpd_sim.native import status

    pp = PingPong()
    pp.advance(20_000)  # warm-up, not measured
    runs = []
    for n in scaling:
        r = model_run(n, pingpong=pp)
        runs.append(r)
        if progress:
            progress(f"{n} messages", r)
    mem = [model_run(n, memory=True) for n in scaling[:2]]
    main = max(runs, key=lambda r: r["messages"])
    compiled = status()
    return {
        "simpy_hops_per_s": main["simpy_hops_per_s"],
        "model_imsgs_per_s": main["imsgs_per_s"],
        "ratio": main["ratio"],
        "compiled_modules": sum(compiled.values()),
        "hot_path_modules": len(compiled),
        "scaling": runs,
        "memory": [{"messages": m["messages"], "peak_traced_bytes": m["peak_traced_bytes"]} for m in mem],
    }


def report_lines(res: dict[str, Any]) -> list[str]:
    """The benchmark as the lines ``make bench`` and ``smtpd-sim bench`` print."""
    main = max(res["scaling"], key=lambda r: r["messages"])
    mode = (f"{res['compiled_modules']} of {res['hot_path_modules']} hot-path modules compiled (mypyc)"
            if res["compiled_modules"] else "pure Python")
    lines = [
        f"bare SimPy ping-pong : {res['simpy_hops_per_s']:>10,.0f} hops per CPU second",
        f"model (pony-6.8)     : {res['model_imsgs_per_s']:>10,.0f} imsgs per CPU second ({mode})",
        f"ratio                : {res['ratio']:.2f} (goal >= 0.5; {main['messages']} messages, "
        f"{main['cpu_s']:.1f} s of model and {main['simpy_cpu_s']:.1f} s of SimPy, interleaved)",
        "scaling (CPU per message, and in SimPy hops of the same moments):",
    ]
    for r in res["scaling"]:
        hops = r["cpu_ms_per_message"] * r["simpy_hops_per_s"] / 1e3
        lines.append(f"  {r['messages']:>7} messages: {r['imsgs']:>9} imsgs, {r['cpu_s']:7.2f} s, "
                     f"{r['cpu_ms_per_message']:.3f} ms/message = {hops:.0f} SimPy hops; ratio {r['ratio']:.2f}")
    lines.append("memory (allocated blocks above the start, at most / after the drain; envelopes in flight):")
    for r in res["scaling"]:
        lines.append(f"  {r['messages']:>7} messages: {r['blocks_peak']:>7,} / {r['blocks_end']:>6,} blocks; "
                     f"at most {r['in_flight_peak']} envelopes in flight")
    for m in res["memory"]:
        lines.append(f"  peak traced memory, {m['messages']:>6} messages: {m['peak_traced_bytes'] / 1e6:.1f} MB")
    return lines
