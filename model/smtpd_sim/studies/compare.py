"""The headline comparison of the eras, as a dict (JSON), and as rich tables."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from smtpd_sim.observe.metrics import run_load, run_probe
from smtpd_sim.spec.topology import ERAS, load_topology
from smtpd_sim.spec.workload import WorkloadSpec, load_workload

DEFAULT_WORKLOAD = "default"


def _r(x: float, nd: int = 6) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, nd)


def compare_eras(
    eras: list[str] | None = None,
    workload: WorkloadSpec | str = DEFAULT_WORKLOAD,
    *,
    seed: int = 1,
    calibration: str = "research-6.8",
    site: str = "common-case",
    progress: Any = None,
) -> dict[str, Any]:
    """Per era: processes, channels, hops per message (local, relay) and their critical
    paths from one-message probes; idle time, latency, CPU and memory from the load
    workload. Every era sees the same clients (same seed, common random numbers)."""
    eras = list(eras or ERAS)
    wl = load_workload(workload) if isinstance(workload, str) else workload
    out: list[dict[str, Any]] = []
    for era in eras:
        topo = load_topology(era)
        probes = {kind: run_probe(era, kind, seed=seed, calibration=calibration, site=site)
                  for kind in ("local", "relay")}
        if progress:
            progress(era, "probes")
        load, _sim = run_load(era, wl, seed=seed, calibration=calibration, site=site)
        if progress:
            progress(era, "load")
        local = probes["local"]
        mfa_hops = sum(n for pair, n in local.by_pair.items() if "mfa" in pair.split("->"))
        rss = {p.name: p.rss_bytes for p in topo.spec.process}
        out.append({
            "era": era,
            "version": topo.spec.version,
            "processes": topo.n_processes,
            "channels": topo.n_channels,
            "hops_per_message": {"local": local.hops, "relay": probes["relay"].hops},
            "stat_hops_per_message": {"local": local.stat_hops, "relay": probes["relay"].stat_hops},
            "background_stat_hops_per_s": _r(load.background_stat_hops_per_s, 2),
            "mfa_hops_per_message": mfa_hops,
            "mfa_share": _r(mfa_hops / local.hops if local.hops else 0.0, 4),
            "hops_by_channel": {"local": local.by_pair, "relay": probes["relay"].by_pair},
            "critical_path_hops": {c["step"]: c["hops"] for c in local.critical_path},
            "round_trips": {c["step"]: c["round_trips"] for c in local.critical_path},
            "idle_fraction": {k: _r(v, 5) for k, v in load.idle_fraction.items()},
            "latency_s": {"mean": _r(load.latency_mean_s, 7), "p99": _r(load.latency_p99_s, 7)},
            "session_s": {"mean": _r(load.session_mean_s, 7)},
            "throughput_msg_s": _r(load.throughput_msg_s, 3),
            "accepted": load.accepted,
            "cpu_ms_per_message": {k: _r(v, 4) for k, v in load.cpu_ms_per_msg.items()},
            "memory_bytes": sum(rss.values()),
            "rss_bytes": rss,
            "ledger": load.ledger,
        })
    return {
        "workload": wl.name,
        "seed": seed,
        "calibration": calibration,
        "site": site,
        "cores": load.cores,
        "eras": out,
    }


def print_compare(result: dict[str, Any], console: Console | None = None) -> None:
    """Side-by-side tables of the comparison."""
    console = console or Console()
    eras = result["eras"]
    names = [e["era"] for e in eras]

    t = Table(title=f"OpenSMTPD eras — workload '{result['workload']}', seed {result['seed']}, "
                    f"{result['cores']} cores, calibration {result['calibration']}")
    t.add_column("", style="bold")
    for n in names:
        t.add_column(n, justify="right")

    def row(label: str, fn: Any) -> None:
        t.add_row(label, *[fn(e) for e in eras])

    row("long-lived processes", lambda e: str(e["processes"]))
    row("live channels", lambda e: str(e["channels"]))
    row("hops/message local", lambda e: str(e["hops_per_message"]["local"]))
    row("hops/message relay", lambda e: str(e["hops_per_message"]["relay"]))
    row("  of which smtp<->mfa", lambda e: f"{e['mfa_hops_per_message']} ({e['mfa_share']:.0%})")
    row("stat hops/message local", lambda e: str(e["stat_hops_per_message"]["local"]))
    row("stat hops/message relay", lambda e: str(e["stat_hops_per_message"]["relay"]))
    row("background stat hops/s", lambda e: f"{e['background_stat_hops_per_s']:g}")
    steps = list(eras[0]["critical_path_hops"])
    for s in steps:
        row(f"round trips before {s} reply", lambda e, s=s: f"{e['round_trips'].get(s, 0):g}")
    row("DATA-end -> 250 mean (ms)", lambda e: f"{e['latency_s']['mean'] * 1e3:.3f}")
    row("DATA-end -> 250 p99 (ms)", lambda e: f"{e['latency_s']['p99'] * 1e3:.3f}")
    row("accepted msg/s", lambda e: f"{e['throughput_msg_s']:.1f}")
    row("memory (processes x RSS)", lambda e: f"{e['memory_bytes'] / 1e6:.0f} MB")
    console.print(t)

    procs: list[str] = []
    for e in eras:
        for p in e["idle_fraction"]:
            if p not in procs:
                procs.append(p)
    t2 = Table(title="Idle fraction and CPU ms per message, per process (load workload)")
    t2.add_column("process", style="bold")
    for n in names:
        t2.add_column(n, justify="right")
    for p in procs:
        t2.add_row(p, *[
            f"{e['idle_fraction'][p]:.4f} / {e['cpu_ms_per_message'][p]:.3f}" if p in e["idle_fraction"] else "-"
            for e in eras
        ])
    t2.add_row("parent's children", *[f"- / {e['cpu_ms_per_message']['parent-children']:.3f}" for e in eras])
    console.print(t2)
