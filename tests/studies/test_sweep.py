"""Sweeps: the design, its validation, determinism, confidence intervals, real sweeps
in-process and on a two-worker Dask LocalCluster, and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import smtpd_sim.figures.sweep as sweep_figures
import smtpd_sim.studies.sweep as sweep
from smtpd_sim.cli import app
from smtpd_sim.studies.sweep import (
    Factor,
    SweepError,
    default_scenario,
    expand,
    mean_ci,
    parse_value,
    parse_vary,
    plan_sweep,
    run_sweep,
    summarize,
)

runner = CliRunner()
# A second of arrivals at 20 sessions/s: ~20 messages per run, a few hundredths of a second.
TINY = ["workload.duration_s=1", "workload.arrival.rate_per_s=20"]


def _plan(*vary: str, replications: int = 1, seed: int | None = None, stream: bool = False) -> sweep.SweepPlan:
    return plan_sweep(default_scenario(), [parse_vary(v) for v in vary], replications=replications, seed=seed,
                      stream=stream)


# ---- the design ---------------------------------------------------------------------------------


def test_values_are_typed_and_one_type_per_factor() -> None:
    assert parse_value("20") == 20 and isinstance(parse_value("20"), int)
    assert parse_value("0.5") == 0.5 and parse_value("1e-3") == 1e-3
    assert parse_value("true") is True and parse_value("with-mfa") == "with-mfa"
    f = parse_vary("era = with-mfa,pony-6.8")
    assert f == Factor("era", ("with-mfa", "pony-6.8"))
    assert parse_vary("x=1,a").values == ("1", "a")  # a mixed list is all strings


@pytest.mark.parametrize("text", ["era", "=1,2", "era=", "cores=1,1"])
def test_malformed_vary_is_one_error(text: str) -> None:
    with pytest.raises(SweepError):
        parse_vary(text)


def test_full_factorial_first_factor_slowest() -> None:
    pts = expand([Factor("a", (1, 2)), Factor("b", ("x", "y", "z"))])
    assert len(pts) == 6
    assert pts[0] == {"a": 1, "b": "x"} and pts[2] == {"a": 1, "b": "z"} and pts[3] == {"a": 2, "b": "x"}
    with pytest.raises(SweepError, match="given twice"):
        expand([Factor("a", (1,)), Factor("a", (2,))])


def test_points_resolve_every_kind_of_key() -> None:
    plan = _plan("era=with-mfa,pony-6.8", "cores=1,4", "workload.mix.local_share=0,0.8",
                 "calibration.roles.queue.default_s=55e-6,110e-6", replications=2, seed=7)
    assert len(plan.points) == 16
    p = plan.points[-1]
    assert p.scenario["era"] == "pony-6.8" and p.scenario["cores"] == 4
    assert p.scenario["workload"]["mix"]["local_share"] == 0.8
    assert p.calibration["roles"]["queue"]["default_s"] == 110e-6
    assert plan.points[0].scenario["workload"]["mix"]["local_share"] == 0.0  # int level -> float key
    # replication r of every point runs seed + r: common random numbers across points
    assert [(t[0].index, t[1], t[2]) for t in plan.tasks()][:4] == [(0, 0, 7), (0, 1, 8), (1, 0, 7), (1, 1, 8)]


def test_calibration_by_name_then_its_costs() -> None:
    plan = _plan("calibration=research-6.8,traced-6.8", "calibration.cores=3")
    assert [p.calibration["name"] for p in plan.points] == ["research-6.8", "traced-6.8"]
    assert all(p.calibration["cores"] == 3 for p in plan.points)


@pytest.mark.parametrize(("vary", "message"), [
    ("workload.tls_share=0,0.5", "unknown scenario key (did you mean workload.mix.tls_share?)"),
    ("rate_per_s=20,40", "did you mean workload.arrival.rate_per_s?"),
    ("workload.arrival.rate=1", "unknown scenario key"),
    ("era=with-mfa,pony-7", "point 1 (era=pony-7)"),
    ("workload.arrival.rate_per_s=20,-5", "point 1 (workload.arrival.rate_per_s=-5): workload.arrival.rate_per_s"),
    ("cores=2,0", "cores: Input should be greater than or equal to 1"),
    ("calibration=research-6.8,nope", "--vary calibration=nope"),
    ("calibration.roles.queue.default_s=-1", "calibration.roles.queue.default_s"),
    ("seed=1,2", "replications"),
    ("workload.arrival=1", "is a table"),
    ("workload.arival.rate_per_s=1", "--vary workload.arival.rate_per_s: unknown scenario key (did you mean workload.arrival.rate_per_s?)"),
    ("tables.aliases.lookup=1", "did you mean tables.aliases.lookup_s?"),
    ("tables.aliases.backend=ldap", "set lookup_s"),
])
def test_wrong_key_or_value_is_one_line(vary: str, message: str) -> None:
    with pytest.raises(SweepError) as e:
        _plan(vary)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_every_point_is_validated_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[object] = []
    monkeypatch.setattr(sweep, "run_task", lambda task: ran.append(task))
    r = runner.invoke(app, ["sweep", "default", "--workers", "0", "--vary", "era=pony-6.8,with-mfa",
                            "--vary", "workload.arrival.rate_per_s=20,40,-1"])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "rate_per_s=-1" in r.stderr and "Traceback" not in r.stderr
    assert ran == []


def test_cli_without_vary_or_with_a_wrong_key_exits_2() -> None:
    for args in (["sweep", "default"], ["sweep", "default", "--vary", "workload.tls_share=0,1"],
                 ["sweep", "no-such-scenario", "--vary", "cores=1"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, args
        assert r.stderr.startswith("smtpd-sim: error: ") and r.stderr.count("\n") == 1


# ---- statistics ---------------------------------------------------------------------------------


def test_mean_ci_by_hand() -> None:
    mean, half = mean_ci([1, 2, 3, 4, 5])
    assert mean == 3
    assert half == pytest.approx(2.7764451 * math.sqrt(2.5 / 5), rel=1e-6)  # s^2 = 2.5, t(0.975, 4)
    assert math.isnan(mean_ci([4.0])[1]) and mean_ci([4.0])[0] == 4.0
    assert math.isnan(mean_ci([])[0])
    wider = mean_ci([1, 2, 3, 4, 5], level=0.99)[1]
    assert wider > half


def test_summary_is_mean_and_ci_per_point() -> None:
    df = pd.DataFrame({"point": [0, 0, 0, 1, 1, 1], "k": [1, 1, 1, 2, 2, 2],
                       "accepted_msg_s": [10, 12, 14, 20, 20, 20], "delivered_msg_s": [1.0] * 6,
                       "latency_mean_s": [1.0] * 6, "latency_p99_s": [1.0] * 6,
                       "bottleneck_util": [0.5] * 6, "cores_util": [0.2] * 6,
                       "bottleneck": ["queue", "pony", "queue", "pony", "pony", "pony"],
                       "util.queue": [0.5] * 6})
    s = summarize(df, ["k"])
    assert list(s["k"]) == [1, 2] and list(s["n"]) == [3, 3]
    assert s.loc[0, "accepted_msg_s_mean"] == 12
    assert s.loc[0, "accepted_msg_s_ci"] == pytest.approx(4.302653 * 2 / math.sqrt(3), rel=1e-6)
    assert s.loc[1, "accepted_msg_s_ci"] == 0
    assert list(s["bottleneck"]) == ["queue", "pony"]


# ---- real sweeps ----------------------------------------------------------------------------------


def test_tiny_sweep_in_process(tmp_path: Path) -> None:
    plan = _plan(*TINY, "era=with-mfa,pony-6.8", replications=2)
    run = run_sweep(plan, workers=0)
    df = run.table
    assert len(df) == 4 and list(df["point"]) == [0, 0, 1, 1] and list(df["seed"]) == [1, 2, 1, 2]
    assert list(df["era"]) == ["with-mfa", "with-mfa", "pony-6.8", "pony-6.8"]
    assert (df["ledger.lost"] == 0).all() and (df["ledger.accepted"] > 0).all()
    # the same clients at every point (common random numbers), below saturation
    assert list(df["ledger.accepted"][:2]) == list(df["ledger.accepted"][2:])
    # the MFA process exists only in 5.4.2, pony only from 5.7.3
    assert df["util.mfa"].notna().tolist() == [True, True, False, False]
    assert df["util.pony"].notna().tolist() == [False, False, True, True]
    utils = df[[c for c in df.columns if c.startswith("util.")]]
    assert list(df["bottleneck"]) == [c.removeprefix("util.") for c in utils.idxmax(axis=1)]
    for u in utils:
        assert ((df[u] + df[u.replace("util.", "idle.")] - 1).abs().dropna() < 1e-9).all()
    assert (df["accepted_msg_s"] * df["window_s"] <= df["ledger.accepted"] + 1e-9).all()
    assert (df["delivered_msg_s"] <= df["accepted_msg_s"] + 1e-9).all()
    cfg = json.loads(df["config"].iloc[2])
    assert cfg["scenario"]["era"] == "pony-6.8" and cfg["varied"]["era"] == "pony-6.8"
    assert cfg["topology"]["name"] == "pony-6.8" and cfg["workload"]["duration_s"] == 1.0
    paths = sweep_figures.write_figures(summarize(df, plan.keys), plan.keys, tmp_path)
    assert [p.read_bytes()[:4] for p in paths] == [b"\x89PNG"] * 3


def test_stream_sweep_measures_the_same_runs() -> None:
    exact = run_sweep(_plan(*TINY, "era=with-mfa,pony-6.8"), workers=0).table
    streamed = run_sweep(_plan(*TINY, "era=with-mfa,pony-6.8", stream=True), workers=0).table
    same = ["accepted_msg_s", "delivered_msg_s", "latency_mean_s", "bottleneck"] + [
        c for c in exact.columns if c.startswith(("ledger.", "util.", "cpu_ms."))]
    pd.testing.assert_frame_equal(streamed[same], exact[same])
    assert ((streamed["latency_p99_s"] - exact["latency_p99_s"]).abs() <= 1e-3 * exact["latency_p99_s"]).all()
    assert all(json.loads(c)["stream"] for c in streamed["config"])


def test_same_seed_same_table_other_seed_other_table(tmp_path: Path) -> None:
    a = run_sweep(_plan(*TINY, "cores=1,2"), workers=0).table
    b = run_sweep(_plan(*TINY, "cores=1,2"), workers=0).table
    c = run_sweep(_plan(*TINY, "cores=1,2", seed=5), workers=0).table
    pd.testing.assert_frame_equal(a, b)
    pa = sweep.write_table(a, tmp_path / "a.parquet")
    pb = sweep.write_table(b, tmp_path / "b.parquet")
    assert pa.read_bytes() == pb.read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(pa), a)
    assert not a["latency_mean_s"].equals(c["latency_mean_s"])


def test_a_costlier_queue_is_busier() -> None:
    df = run_sweep(_plan(*TINY, "calibration.roles.queue.default_s=55e-6,550e-6"), workers=0).table
    assert df["util.queue"].iloc[1] > 2 * df["util.queue"].iloc[0]
    assert df["cpu_ms.queue"].iloc[1] > df["cpu_ms.queue"].iloc[0]
    assert df["bottleneck"].iloc[1] == "queue"
    assert json.loads(df["config"].iloc[1])["calibration"]["roles"]["queue"]["default_s"] == 550e-6


def test_a_slow_aliases_table_keeps_the_lka_waiting() -> None:
    # tables.<name> keys (spec/tables.py): LDAP with 2 ms per lookup vs no wait
    df = run_sweep(_plan(*TINY, "tables.aliases.backend=ldap", "tables.aliases.lookup_s=0,0.002"), workers=0).table
    assert json.loads(df["config"].iloc[1])["scenario"]["tables"] == {"aliases": {"backend": "ldap", "lookup_s": 0.002}}
    assert df["util.lka"].iloc[1] > 3 * df["util.lka"].iloc[0]
    # RCPT TO of a local recipient (80 % of them) waits for the lookup: ~1.6 ms more per session
    assert df["session_mean_s"].iloc[1] > df["session_mean_s"].iloc[0] + 0.001


def test_local_cluster_with_two_workers_gives_the_in_process_table() -> None:
    plan = _plan(*TINY, "era=without-mfa,pony", replications=2)
    dist = run_sweep(plan, workers=2)
    assert dist.where == "LocalCluster" and dist.workers == 2
    pd.testing.assert_frame_equal(dist.table, run_sweep(plan, workers=0).table)


def test_an_existing_scheduler_by_address() -> None:
    from distributed import LocalCluster

    plan = _plan(*TINY, "cores=1,2")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        run = run_sweep(plan, scheduler=cluster.scheduler_address)
    assert run.where == cluster.scheduler_address and run.workers == 1
    pd.testing.assert_frame_equal(run.table, run_sweep(plan, workers=0).table)


def test_cli_json_and_files(tmp_path: Path) -> None:
    out = tmp_path / "s"
    r = runner.invoke(app, ["sweep", "default", "--workers", "0", "--json", "--out", str(out),
                            *(a for v in [*TINY, "era=pony,pony-6.8"] for a in ("--vary", v))])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["points"] == 2 and res["runs"] == 2 and res["where"] == "in-process"
    assert res["factors"]["era"] == ["pony", "pony-6.8"]
    assert [s["era"] for s in res["summary"]] == ["pony", "pony-6.8"]
    assert len(pd.read_parquet(out / "sweep.parquet")) == 2
    assert {p.name for p in out.glob("*.png")} == {"sweep-throughput-latency.png", "sweep-knee.png",
                                                  "sweep-bottleneck.png"}
