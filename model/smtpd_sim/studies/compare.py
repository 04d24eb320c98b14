"""The headline comparison of the eras, as one dict (what ``compare --json`` prints)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from smtpd_sim.spec.calibration import Calibration, load_calibration
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION, DEFAULT_SITE, DEFAULT_WORKLOAD
from smtpd_sim.spec.site import SiteSpec, load_site
from smtpd_sim.spec.topology import ERAS, Topology, load_topology
from smtpd_sim.spec.workload import WorkloadSpec, load_workload
from smtpd_sim.studies.load import run_load
from smtpd_sim.studies.probe import run_probe


def _r(x: float, nd: int = 6) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, nd)


def compare_eras(
    eras: list[str] | None = None,
    workload: WorkloadSpec | str = DEFAULT_WORKLOAD,
    *,
    seed: int = 1,
    calibration: str | Calibration = DEFAULT_CALIBRATION,
    site: str | SiteSpec = DEFAULT_SITE,
    progress: Any = None,
    topologies: Sequence[Topology] | None = None,
) -> dict[str, Any]:
    """Per era: processes, channels, hops per message (local, relay) and their critical
    paths from one-message probes; idle time, latency, CPU and memory from the load
    workload. Every era sees the same clients (same seed, common random numbers). The parts
    are names, files or objects (a ``--set`` changed them: spec/overrides.py)."""
    eras = list(eras or ERAS)
    wl = load_workload(workload) if isinstance(workload, str) else workload
    # every part read once (a bad one: one line, before anything runs); ``topologies``: the
    # eras' topologies, already loaded
    topos = list(topologies) if topologies is not None else [load_topology(era) for era in eras]
    cal = calibration if isinstance(calibration, Calibration) else load_calibration(calibration)
    site_spec = site if isinstance(site, SiteSpec) else load_site(site)
    out: list[dict[str, Any]] = []
    for era, topo in zip(eras, topos, strict=True):
        probes = {kind: run_probe(topo, kind, seed=seed, calibration=cal, site=site_spec)
                  for kind in ("local", "relay")}
        if progress:
            progress(era, "probes")
        load, _res = run_load(topo, wl, seed=seed, calibration=cal, site=site_spec)
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
        "calibration": calibration if isinstance(calibration, str) else cal.name,
        "site": site if isinstance(site, str) else "inline",
        "cores": load.cores,
        "eras": out,
    }
