"""Experiments: intervals, paired differences, probes traced, sweeps (short runs)."""

from __future__ import annotations

import math
import statistics

import pandas as pd
import pytest

from smtpd_sim.spec.calibration import load_calibration
from smtpd_sim.spec.topology import TopologyError
from smtpd_sim.spec.workload import WorkloadError
from smtpd_sim.studies.experiments import (
    channel_latency_sweep,
    difference_table,
    era_resources,
    hop_summary,
    hop_table,
    idle_table,
    intervals,
    load_sweep,
    load_tables,
    mean_interval,
    paired_difference,
    probe_trace,
    recipients_sweep,
    replications,
    with_channel_latency,
    workload_variant,
)
from smtpd_sim.studies.probe import run_probe

SHORT = dict(duration_s=1.0, rate_per_s=40.0)


def test_mean_interval_by_hand() -> None:
    xs = [1.0, 2.0, 3.0, 4.0, 5.0]
    ci = mean_interval(xs)
    half = 2.776 * statistics.stdev(xs) / math.sqrt(5)  # t(0.975, 4), table above
    assert ci.mean == 3.0 and ci.n == 5
    assert ci.half_width == pytest.approx(half, rel=1e-3)
    assert mean_interval([2.0]).n == 1 and math.isnan(mean_interval([2.0]).low)
    assert mean_interval([]).n == 0


def test_paired_interval_is_narrower_when_eras_share_noise() -> None:
    """Two 'eras' that differ by a constant 1.0 on top of a large seed effect: pairing
    removes the seed effect exactly, the independent interval does not."""
    seed_effect = [10.0, 30.0, 20.0, 50.0, 40.0]
    rows = [{"era": "a", "seed": s, "x": v + 1.0} for s, v in enumerate(seed_effect)]
    rows += [{"era": "b", "seed": s, "x": v} for s, v in enumerate(seed_effect)]
    d = paired_difference(pd.DataFrame(rows), "x", "a", "b")
    assert d.paired.mean == pytest.approx(1.0)
    assert d.paired.half_width == pytest.approx(0.0, abs=1e-12)
    assert d.independent.half_width > 10
    assert d.relative == pytest.approx(1.0 / statistics.fmean(seed_effect))
    with pytest.raises(ValueError):
        paired_difference(pd.DataFrame(rows[:1] + rows[5:6]), "x", "a", "b")


def test_difference_table_pairs_within_each_group() -> None:
    rows = []
    for x, gap in ((1, 1.0), (2, 5.0)):
        for s, noise in enumerate([0.0, 10.0, 20.0]):
            rows.append({"x": x, "era": "a", "seed": s, "v": noise + gap})
            rows.append({"x": x, "era": "b", "seed": s, "v": noise})
    out = difference_table(pd.DataFrame(rows), "x", "v", "a", "b")
    assert list(out["x"]) == [1, 2]
    assert list(out["mean"]) == pytest.approx([1.0, 5.0])
    assert list(out["high"] - out["low"]) == pytest.approx([0.0, 0.0], abs=1e-12)
    assert set(out["era"]) == {"a − b"}


def test_intervals_group_in_order() -> None:
    df = pd.DataFrame({"g": ["z", "z", "a", "a"], "v": [1.0, 3.0, 5.0, 5.0]})
    out = intervals(df, "g", "v")
    assert list(out["g"]) == ["z", "a"]
    assert list(out["mean"]) == [2.0, 5.0]
    assert out.iloc[1]["low"] == out.iloc[1]["high"] == 5.0


# ---- inputs ---------------------------------------------------------------------------------


def test_workload_variant_changes_only_what_it_is_told() -> None:
    wl = workload_variant("default", duration_s=2.0, rate_per_s=99.0, recipients=3)
    assert (wl.duration_s, wl.arrival.rate_per_s, wl.mix.recipients) == (2.0, 99.0, 3)
    assert wl.mix.local_share == workload_variant("default").mix.local_share
    with pytest.raises(WorkloadError, match="recipients"):
        workload_variant("default", recipients=0)


def test_with_channel_latency_changes_only_the_channel_latency() -> None:
    base = load_calibration("research-6.8")
    cal = with_channel_latency(base, 1e-3)
    assert cal.channel.latency_s == 1e-3
    assert cal.channel.fd_s == base.channel.fd_s
    assert cal.roles == base.roles
    assert base.channel.latency_s != 1e-3  # the base is untouched
    with pytest.raises(ValueError):
        with_channel_latency(base, -1.0)


# ---- probes ---------------------------------------------------------------------------------


def test_probe_trace_agrees_with_run_probe() -> None:
    for era in ("with-mfa", "pony"):
        tr = probe_trace(era)
        probe = run_probe(era)
        non_stat = tr.hops[~tr.hops["stat"].astype(bool)]
        assert len(non_stat) == probe.hops
        assert (tr.hops["time"] >= tr.hops["sent_time"]).all()
        assert tr.hops["sent_time"].min() >= 0
        # one reply per step of the client's script, in time order
        assert list(tr.replies["step"]) == ["banner", "EHLO", "MAIL FROM", "RCPT TO", "DATA",
                                            "end of data", "QUIT"]
        assert tr.replies["time"].is_monotonic_increasing
    assert probe_trace("with-mfa").mfa == "mfa"
    assert probe_trace("pony").mfa is None


def test_probe_trace_steps_follow_recipients_and_messages() -> None:
    tr = probe_trace("pony", recipients=2, messages=2)
    steps = list(tr.replies["step"])
    assert steps.count("RCPT TO") == 4 and steps.count("end of data") == 2


def test_hop_summary_mfa_share_comes_from_the_probe() -> None:
    s = hop_summary(["with-mfa", "without-mfa"]).set_index("era")
    probe = run_probe("with-mfa")
    mfa = sum(n for pair, n in probe.by_pair.items() if "mfa" in pair.split("->"))
    assert s.loc["with-mfa", "hops_per_session"] == probe.hops
    assert s.loc["with-mfa", "mfa_hops_per_session"] == mfa > 0
    assert s.loc["with-mfa", "mfa_share"] == pytest.approx(mfa / probe.hops)
    assert s.loc["without-mfa", "mfa_share"] == 0.0
    # removing the MFA removes exactly its hops (era-5.4.2-mfa.md: the rest of the flow is unchanged)
    assert s.loc["without-mfa", "hops_per_session"] == probe.hops - mfa


def test_hop_summary_per_message_divides_the_session() -> None:
    s = hop_summary(["pony"], messages=3).iloc[0]
    assert s["hops_per_message"] == pytest.approx(s["hops_per_session"] / 3)


def test_filters_are_counted_as_lines_not_hops() -> None:
    s = hop_summary(["pony-6.8", "pony-6.8-filters"]).set_index("era")
    assert s.loc["pony-6.8", "filter_lines_per_session"] == 0
    assert s.loc["pony-6.8-filters", "filter_lines_per_session"] > 0


def test_hop_table_sums_to_the_probe_and_marks_mfa_channels() -> None:
    t = hop_table(["with-mfa", "pony"])
    for era in ("with-mfa", "pony"):
        assert t[t["era"] == era]["hops"].sum() == run_probe(era).hops
    mfa_rows = t[t["mfa"]]
    assert set(mfa_rows["era"]) == {"with-mfa"}
    assert set(mfa_rows["channel"]) == {"mfa<->smtp"}


def test_unknown_era_is_one_line_error() -> None:
    with pytest.raises(TopologyError, match="unknown era"):
        hop_summary(["no-such-era"])


# ---- load runs ------------------------------------------------------------------------------


def test_replications_are_deterministic_and_use_common_random_numbers() -> None:
    wl = workload_variant("default", **SHORT)
    a = replications(["with-mfa", "without-mfa"], wl, [1, 2])
    b = replications(["with-mfa", "without-mfa"], wl, [1, 2])
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 4
    # same seed -> the same clients -> the same number of accepted messages in both eras
    for s in (1, 2):
        acc = a[a["seed"] == s]["accepted"]
        assert acc.nunique() == 1 and acc.iloc[0] > 0
    # different seeds -> different clients
    assert a[a["era"] == "with-mfa"]["latency_mean_s"].nunique() == 2
    with pytest.raises(ValueError):
        replications(["pony"], wl, [])


def test_channel_latency_raises_mfa_cost() -> None:
    wl = workload_variant("default", **SHORT)
    df = channel_latency_sweep(["with-mfa", "without-mfa"], wl, [1e-6, 1e-3], [1])
    lat = df.set_index(["channel_latency_s", "era"])["latency_mean_s"]
    for era in ("with-mfa", "without-mfa"):
        assert lat[(1e-3, era)] > lat[(1e-6, era)]
    gap_fast = lat[(1e-6, "with-mfa")] - lat[(1e-6, "without-mfa")]
    gap_slow = lat[(1e-3, "with-mfa")] - lat[(1e-3, "without-mfa")]
    assert gap_slow > gap_fast > 0


def test_recipients_sweep_counts_more_hops_with_more_recipients() -> None:
    wl = workload_variant("default", **SHORT)
    df = recipients_sweep(["with-mfa"], wl, [1, 3], [1])
    hops = df.set_index("recipients")["probe_hops_per_message"]
    assert hops[3] > hops[1]
    assert hops[1] == run_probe("with-mfa").hops


def test_load_sweep_rows_and_rates() -> None:
    wl = workload_variant("default", duration_s=1.0)
    df = load_sweep(["pony"], wl, [20.0, 80.0], [1])
    acc = df.set_index("rate_per_s")["accepted"]
    assert acc[80.0] > acc[20.0]


def test_idle_table_lists_every_process() -> None:
    wl = workload_variant("default", **SHORT)
    t = idle_table(["with-mfa"], wl)
    assert "mfa" in set(t["process"])
    assert ((t["idle"] >= 0) & (t["idle"] <= 1)).all()
    assert (t["busy"] + t["idle"]).round(12).eq(1.0).all()


def test_load_tables_count_delivery_agents() -> None:
    wl = workload_variant("default", duration_s=1.0, local_share=1.0)
    idle, procs = load_tables(["with-mfa", "pony"], wl)
    assert set(idle["era"]) == {"with-mfa", "pony"}
    p = procs.set_index("era")
    assert p.loc["with-mfa", "long_lived"] == 9 and p.loc["pony", "long_lived"] == 7
    # every accepted message has one local recipient: one fork per delivery (smtpd.c:forkmda())
    for era in ("with-mfa", "pony"):
        assert p.loc[era, "forks"] >= 1
        assert p.loc[era, "peak_processes"] == p.loc[era, "long_lived"] + p.loc[era, "peak_children"]
        assert p.loc[era, "peak_children"] >= 1
    remote = load_tables(["pony"], workload_variant("default", duration_s=1.0, local_share=0.0))[1]
    assert remote.iloc[0]["forks"] == 0  # relayed mail forks nothing


def test_era_resources_from_topologies() -> None:
    r = era_resources(["with-mfa", "pony", "pony-6.8-filters"]).set_index("era")
    assert r.loc["with-mfa", "processes"] == 9  # era-5.4.2-mfa.md §1.1
    assert r.loc["pony", "processes"] == 7  # era-pony.md §0 timeline (2014-05-01: 7 procs)
    assert r.loc["with-mfa", "memory_bytes"] > r.loc["pony", "memory_bytes"]
    assert r.loc["pony-6.8-filters", "filter_processes"] == 2
