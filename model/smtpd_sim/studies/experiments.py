"""Experiments the notebooks run: probes traced hop by hop, replications with confidence
intervals under common random numbers, and sweeps (channel latency, recipients, load).

Everything here runs the model through its public API (``run_probe``, ``run_load``,
``Simulation``) and returns pandas DataFrames; nothing is looked up from a table. Each
replication is one seed; every era in a replication gets the same seed, hence the same
clients (common random numbers, DESIGN.md rule 3), so era differences can be paired.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from smtpd_sim.observe.stats import DEFAULT_LEVEL, Interval, mean_interval, t_quantile
from smtpd_sim.spec.calibration import Calibration, ChannelCosts, load_calibration
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION, DEFAULT_SITE, DEFAULT_WORKLOAD
from smtpd_sim.spec.topology import load_topology
from smtpd_sim.spec.workload import WorkloadSpec, load_workload, parse_workload
from smtpd_sim.studies.load import run_load
from smtpd_sim.studies.probe import ProbeTrace, probe_trace, run_probe

__all__ = ["ProbeTrace", "probe_trace"]  # the probe's trace, re-exported for the notebooks

# ---- intervals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """``era`` minus ``baseline`` for one metric: paired by seed (common random numbers)
    and, from the same numbers, as if the two eras had been run with independent seeds
    (Welch interval), to show what pairing buys."""

    metric: str
    era: str
    baseline: str
    paired: Interval
    independent: Interval
    relative: float  # mean difference / baseline mean


def paired_difference(reps: pd.DataFrame, metric: str, era: str, baseline: str,
                      level: float = DEFAULT_LEVEL) -> Difference:
    """Difference of ``metric`` between two eras over the seeds both were run with."""
    a = reps[reps["era"] == era].set_index("seed")[metric]
    b = reps[reps["era"] == baseline].set_index("seed")[metric]
    seeds = a.index.intersection(b.index)
    if len(seeds) < 2:
        raise ValueError(f"need at least two common seeds for {era!r} and {baseline!r}")
    a, b = a.loc[seeds], b.loc[seeds]
    paired = mean_interval((a - b).tolist(), level)
    n = len(seeds)
    va, vb = statistics.variance(a.tolist()) / n, statistics.variance(b.tolist()) / n
    diff = float(a.mean() - b.mean())
    if va + vb == 0:
        indep = Interval(diff, diff, diff, n, level)
    else:
        df = (va + vb) ** 2 / (va * va / (n - 1) + vb * vb / (n - 1))
        half = t_quantile(0.5 + level / 2.0, df) * math.sqrt(va + vb)
        indep = Interval(diff, diff - half, diff + half, n, level)
    base = float(b.mean())
    return Difference(metric, era, baseline, paired, indep, diff / base if base else math.nan)


def difference_table(df: pd.DataFrame, by: str | Sequence[str], metric: str, era: str,
                     baseline: str, level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """``paired_difference`` of ``metric`` within each group of ``by`` (a sweep): one row
    per group with the paired interval, labelled ``era − baseline`` in the ``era`` column."""
    keys = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, g in df.groupby(keys, sort=False):
        d = paired_difference(g, metric, era, baseline, level)
        kv = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, kv, strict=True)), "era": f"{era} − {baseline}",
                     "mean": d.paired.mean, "low": d.paired.low, "high": d.paired.high,
                     "n": d.paired.n, "relative": d.relative})
    return pd.DataFrame(rows)


def intervals(df: pd.DataFrame, by: str | Sequence[str], metric: str,
              level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """One row per group: mean, low, high, n of ``metric`` over the group's rows
    (replications), groups in order of first appearance."""
    keys = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, g in df.groupby(keys, sort=False):
        ci = mean_interval(g[metric].tolist(), level)
        kv = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, kv, strict=True)), "mean": ci.mean, "low": ci.low,
                     "high": ci.high, "n": ci.n})
    return pd.DataFrame(rows)


# ---- inputs ---------------------------------------------------------------------------------


def workload_variant(base: WorkloadSpec | str = DEFAULT_WORKLOAD, *, duration_s: float | None = None,
                     rate_per_s: float | None = None, recipients: int | None = None,
                     messages: int | None = None, local_share: float | None = None,
                     name: str | None = None) -> WorkloadSpec:
    """A copy of a workload with a few fields changed, validated like a workload file
    (a bad value raises ``WorkloadError`` with one line)."""
    wl = load_workload(base) if isinstance(base, str) else base
    data: dict[str, Any] = wl.model_dump()
    if duration_s is not None:
        data["duration_s"] = duration_s
    if rate_per_s is not None:
        data["arrival"]["rate_per_s"] = rate_per_s
    if recipients is not None:
        data["mix"]["recipients"] = recipients
    if messages is not None:
        data["mix"]["messages"] = messages
    if local_share is not None:
        data["mix"]["local_share"] = local_share
    if name is not None:
        data["name"] = name
    return parse_workload(data, f"workload {data['name']!r}")


def with_channel_latency(calibration: Calibration | str, latency_s: float) -> Calibration:
    """A calibration whose imsg channels (socketpair write → peer readable) take
    ``latency_s``; every other cost unchanged."""
    cal = load_calibration(calibration) if isinstance(calibration, str) else calibration
    channel = ChannelCosts.model_validate({**cal.channel.model_dump(), "latency_s": latency_s})
    return cal.model_copy(update={"channel": channel,
                                  "name": f"{cal.name}+channel{latency_s:g}s"})


# ---- probes ---------------------------------------------------------------------------------


def mfa_process(era: str) -> str | None:
    """The process hosting the mfa role in this era, if any."""
    return load_topology(era).host.get("mfa")


def hop_table(eras: Sequence[str], *, kind: str = "local", recipients: int = 1,
              messages: int = 1, seed: int = 1,
              calibration: str = DEFAULT_CALIBRATION) -> pd.DataFrame:
    """Non-stat hops of one probe session per era and channel (undirected process pair),
    with whether the channel touches the MFA process."""
    rows = []
    for era in eras:
        probe = run_probe(era, kind, recipients=recipients, messages=messages, seed=seed,
                          calibration=calibration)
        mfa = mfa_process(era)
        per_channel: dict[str, int] = {}
        for pair, n in probe.by_pair.items():
            a, b = pair.split("->")
            ch = "<->".join(sorted((a, b)))
            per_channel[ch] = per_channel.get(ch, 0) + n
        for ch, n in per_channel.items():
            rows.append({"era": era, "kind": kind, "recipients": recipients, "messages": messages,
                         "channel": ch, "hops": n,
                         "mfa": mfa is not None and mfa in ch.split("<->")})
    return pd.DataFrame(rows)


def hop_summary(eras: Sequence[str], *, kind: str = "local", recipients: int = 1,
                messages: int = 1, seed: int = 1,
                calibration: str = DEFAULT_CALIBRATION) -> pd.DataFrame:
    """Per era: non-stat hops per session and per message, the smtp<->mfa part and its
    share, stat hops, and filter-processor lines (6.8 filters, counted apart)."""
    rows = []
    for era in eras:
        probe = run_probe(era, kind, recipients=recipients, messages=messages, seed=seed,
                          calibration=calibration)
        mfa = mfa_process(era)
        mfa_hops = sum(n for pair, n in probe.by_pair.items() if mfa in pair.split("->")) if mfa else 0
        trace = probe_trace(era, kind, recipients=recipients, messages=messages, seed=seed,
                            calibration=calibration)
        rows.append({
            "era": era, "kind": kind, "recipients": recipients, "messages": messages,
            "hops_per_session": probe.hops,
            "hops_per_message": probe.hops / messages,
            "mfa_hops_per_session": mfa_hops,
            "mfa_share": mfa_hops / probe.hops if probe.hops else 0.0,
            "stat_hops_per_session": probe.stat_hops,
            "filter_lines_per_session": trace.filter_lines,
        })
    return pd.DataFrame(rows)


# ---- load runs ------------------------------------------------------------------------------

LOAD_METRICS = ("accepted", "throughput_msg_s", "latency_mean_s", "latency_p99_s", "session_mean_s")


def _load_row(era: str, workload: WorkloadSpec, seed: int, calibration: Calibration | str,
              site: str) -> dict[str, Any]:
    m, _res = run_load(era, workload, seed=seed, calibration=calibration, site=site)
    row: dict[str, Any] = {"era": era, "seed": seed}
    for k in LOAD_METRICS:
        row[k] = getattr(m, k)
    row["cpu_ms_per_msg"] = sum(m.cpu_ms_per_msg.values())
    return row


def replications(eras: Sequence[str], workload: WorkloadSpec | str, seeds: Sequence[int], *,
                 calibration: Calibration | str = DEFAULT_CALIBRATION,
                 site: str = DEFAULT_SITE) -> pd.DataFrame:
    """One row per (era, seed): latency (DATA-end→250), session time, throughput, CPU.
    Every era runs every seed (common random numbers)."""
    if not seeds:
        raise ValueError("replications need at least one seed")
    wl = load_workload(workload) if isinstance(workload, str) else workload
    return pd.DataFrame([_load_row(era, wl, s, calibration, site) for s in seeds for era in eras])


def load_tables(eras: Sequence[str], workload: WorkloadSpec | str, *, seed: int = 1,
                calibration: Calibration | str = DEFAULT_CALIBRATION,
                site: str = DEFAULT_SITE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One load run per era, two tables: per (era, process) the idle fraction over the
    load window and CPU ms per accepted message; per era the processes, long-lived and
    transient (delivery agents the parent forked: ``smtpd.c:forkmda()``)."""
    wl = load_workload(workload) if isinstance(workload, str) else workload
    idle_rows, proc_rows = [], []
    for era in eras:
        m, res = run_load(era, wl, seed=seed, calibration=calibration, site=site)
        for proc, idle in m.idle_fraction.items():
            idle_rows.append({"era": era, "process": proc, "idle": idle, "busy": 1.0 - idle,
                              "cpu_ms_per_msg": m.cpu_ms_per_msg.get(proc, math.nan)})
        parent = res.counters["parent"]
        forks, peak = int(parent["forks"]), int(parent["max_children"])
        long_lived = load_topology(era).n_processes
        proc_rows.append({"era": era, "long_lived": long_lived, "accepted": m.accepted,
                          "forks": forks,
                          "forks_per_msg": forks / m.accepted if m.accepted else math.nan,
                          "peak_children": peak,
                          "peak_processes": long_lived + peak})
    return pd.DataFrame(idle_rows), pd.DataFrame(proc_rows)


def idle_table(eras: Sequence[str], workload: WorkloadSpec | str, *, seed: int = 1,
               calibration: Calibration | str = DEFAULT_CALIBRATION,
               site: str = DEFAULT_SITE) -> pd.DataFrame:
    """Per era and process: idle fraction over the load window and CPU ms per accepted
    message (the first table of ``load_tables``)."""
    return load_tables(eras, workload, seed=seed, calibration=calibration, site=site)[0]


def channel_latency_sweep(eras: Sequence[str], workload: WorkloadSpec | str,
                          latencies_s: Sequence[float], seeds: Sequence[int], *,
                          calibration: Calibration | str = DEFAULT_CALIBRATION,
                          site: str = DEFAULT_SITE) -> pd.DataFrame:
    """Replications at each imsg channel latency (``with_channel_latency``)."""
    wl = load_workload(workload) if isinstance(workload, str) else workload
    rows = []
    for lat in latencies_s:
        cal = with_channel_latency(calibration, lat)
        for s in seeds:
            for era in eras:
                rows.append({"channel_latency_s": lat, **_load_row(era, wl, s, cal, site)})
    return pd.DataFrame(rows)


def recipients_sweep(eras: Sequence[str], workload: WorkloadSpec | str,
                     recipients: Sequence[int], seeds: Sequence[int], *,
                     calibration: Calibration | str = DEFAULT_CALIBRATION,
                     site: str = DEFAULT_SITE) -> pd.DataFrame:
    """Replications with each number of recipients per message, plus the non-stat hops of
    one probe message (local) with that many recipients."""
    rows = []
    for n in recipients:
        wl = workload_variant(workload, recipients=n)
        hops = {}
        for era in eras:
            tr = probe_trace(era, "local", recipients=n, calibration=calibration)
            hops[era] = int((~tr.hops["stat"].astype(bool)).sum())
        for s in seeds:
            for era in eras:
                rows.append({"recipients": n, "probe_hops_per_message": hops[era],
                             **_load_row(era, wl, s, calibration, site)})
    return pd.DataFrame(rows)


def load_sweep(eras: Sequence[str], workload: WorkloadSpec | str, rates_per_s: Sequence[float],
               seeds: Sequence[int], *, calibration: Calibration | str = DEFAULT_CALIBRATION,
               site: str = DEFAULT_SITE) -> pd.DataFrame:
    """Replications at each session arrival rate (the workload's arrival process)."""
    rows = []
    for r in rates_per_s:
        wl = workload_variant(workload, rate_per_s=r)
        for s in seeds:
            for era in eras:
                rows.append({"rate_per_s": r, **_load_row(era, wl, s, calibration, site)})
    return pd.DataFrame(rows)


# ---- processes and memory -------------------------------------------------------------------


def era_resources(eras: Sequence[str]) -> pd.DataFrame:
    """Per era: long-lived daemon processes, filter-processor processes, live channels,
    and memory as the sum of each daemon process's RSS (topology ``rss_bytes``, ~8 MB on
    the real 6.8 daemon, research/real-daemon.md §3)."""
    rows = []
    for era in eras:
        topo = load_topology(era)
        daemon = len(topo.spec.process)
        rows.append({
            "era": era, "version": topo.spec.version,
            "processes": topo.n_processes, "daemon_processes": daemon,
            "filter_processes": topo.n_processes - daemon,
            "channels": topo.n_channels,
            "memory_bytes": sum(p.rss_bytes for p in topo.spec.process),
        })
    return pd.DataFrame(rows)
