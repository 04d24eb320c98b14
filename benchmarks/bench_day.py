"""`make bench-day`: how long one simulated day of a 100 msg/s MX takes (benchmarks/day.toml).

A day is 8.64 million messages. The benchmark runs slices of that day (by default 1k, 100k
and 1M messages, the same arrival rate and mix, streaming: no per-message history) and
reports for each the CPU and wall time per message, the messages accounted for, and the
process's peak RSS. The day's time is the largest slice's per-message wall time times
8.64 million, and it is called an extrapolation, which it only is when the cost per
message is flat across the slices (within ``FLAT``); the benchmark says whether it is.
Arguments: the slice sizes in messages. ``SMTPD_SIM_PURE=1`` measures the pure-Python model.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from smtpd_sim import native

native.prepare()  # before the model loads: a stale build dropped, SMTPD_SIM_PURE honoured

from smtpd_sim.sim.runner import Runner  # noqa: E402
from smtpd_sim.spec.scenario import Scenario, resolve_scenario  # noqa: E402
from smtpd_sim.spec.site import Domain  # noqa: E402

DAY_TOML = Path(__file__).with_name("day.toml")
DAY_S = 86_400.0
FLAT = 0.15  # per-message cost of the largest slice within 15 % of the next largest's: flat


def day_scenario(messages: int) -> Scenario:
    """benchmarks/day.toml cut to ``messages`` sessions (one message each), with its relay
    domains added to the default site as MX relays, each domain's MX a host of its own
    (``mx.<domain>`` at an address of its own in 192.0.2.0/24, TEST-NET-1), all answered
    by the world's remote MX: five destination providers, each with the mta's per-host
    connection limits of its own."""
    scen = resolve_scenario(DAY_TOML)
    wl = scen.workload
    assert wl is not None
    site = scen.site
    known = {d.name for d in site.domain}
    extra = [d for d in wl.mix.relay_domains if d not in known]
    used = {a for addrs in site.dns.a.values() for a in addrs}
    free = (f"192.0.2.{i}" for i in range(26, 255) if f"192.0.2.{i}" not in used)
    hosts = {d: (f"mx.{d}", next(free)) for d in extra}
    dns = site.dns.model_copy(update={
        "mx": {**site.dns.mx, **{d: [h] for d, (h, _a) in hosts.items()}},
        "a": {**site.dns.a, **{h: [a] for h, a in hosts.values()}},
        "ptr": {**site.dns.ptr, **{a: h for h, a in hosts.values()}}})
    site = site.model_copy(update={
        "domain": [*site.domain, *(Domain(name=d, action="relay", via="mx") for d in extra)],
        "dns": dns})
    rate = wl.arrival.rate_per_s
    wl = wl.model_copy(update={"sessions": messages, "duration_s": min(DAY_S, messages / rate + 1.0)})
    return scen.replace(site=site, workload=wl)


def run_slice(messages: int) -> dict[str, Any]:
    """One slice of the day, streaming; CPU and wall time of the simulation itself."""
    scen = day_scenario(messages)
    runner = Runner(scen, stream=True)
    runner.start(clients=False)
    sim = runner.sim
    cpu0, wall0 = time.process_time(), time.perf_counter()
    runner.start_clients()
    assert scen.workload is not None
    runner.drain(runner.now + scen.workload.duration_s + scen.drain_s, step=60.0)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    led = sim.ledger
    rec = sim.recorder
    imsgs = sum(rec.hop_counts.values()) + sum(rec.stat_counts.values())
    return {
        "messages": messages,
        "simulated_s": runner.now - runner.t0,
        "accepted": led.accepted_msgs,
        "delivered": led.counts["delivered"],
        "bounced": led.counts["bounced"],
        "in_flight_end": led.in_flight,
        "imsgs": imsgs,
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_ms_per_message": cpu * 1e3 / messages,
        "wall_ms_per_message": wall * 1e3 / messages,
        "us_per_imsg": cpu * 1e6 / max(1, imsgs),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    sizes = tuple(int(x) for x in sys.argv[1:]) or (1_000, 100_000, 1_000_000)
    rate = 100.0
    runs = []
    for n in sizes:
        r = run_slice(n)
        runs.append(r)
        print(f"  {n:>9,} messages ({r['simulated_s'] / 3600:.2f} h simulated): {r['imsgs']:>10,} imsgs, "
              f"{r['cpu_s']:8.1f} s CPU, {r['wall_s']:8.1f} s wall, {r['cpu_ms_per_message']:.3f} ms CPU/message, "
              f"{r['us_per_imsg']:.2f} us/imsg; accepted {r['accepted']:,}, delivered {r['delivered']:,} "
              f"recipients, bounced {r['bounced']}, in flight at the end {r['in_flight_end']}; "
              f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    compiled = native.status()
    mode = (f"{sum(compiled.values())} of {len(compiled)} hot-path modules compiled (mypyc)"
            if any(compiled.values()) else "pure Python")
    big = runs[-1]
    day_msgs = rate * DAY_S
    day_wall = big["wall_ms_per_message"] * day_msgs / 1e3
    day_cpu = big["cpu_ms_per_message"] * day_msgs / 1e3
    flat = None
    if len(runs) >= 2:
        prev = runs[-2]["cpu_ms_per_message"]
        flat = abs(big["cpu_ms_per_message"] - prev) <= FLAT * prev
    how = ("extrapolated from the largest slice: cost per message flat across the slices"
           if flat else "NOT a valid extrapolation: cost per message is not flat across the slices"
           if flat is False else "extrapolated from a single slice (flatness not measured)")
    print(f"day of a 100 msg/s MX ({day_msgs:,.0f} messages, {mode}): {day_wall / 60:.1f} min wall, "
          f"{day_cpu / 60:.1f} min CPU ({how}); goal <= 30 min")
    print(f"peak RSS {max(r['peak_rss_mb'] for r in runs):.0f} MB (the whole process, every slice)")
    print(json.dumps({"mode": mode, "slices": runs, "day_wall_min": day_wall / 60, "day_cpu_min": day_cpu / 60,
                      "flat": flat}), file=sys.stderr)


if __name__ == "__main__":
    main()
