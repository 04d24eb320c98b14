"""The speed benchmark: SimPy and the model interleaved, what it reports, and its CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from smtpd_sim.cli import app
from smtpd_sim.studies.bench import PingPong, model_run, report_lines, run_bench


def test_pingpong_advances_by_the_hops_asked() -> None:
    pp = PingPong()
    pp.advance(500)
    assert pp.hops == 500
    pp.advance(250)
    assert pp.hops == 750


def test_model_run_delivers_everything_and_is_deterministic() -> None:
    a, b = model_run(150), model_run(150)
    assert a["accepted"] == a["delivered"] == 150
    assert a["imsgs"] == b["imsgs"]  # same seed, same run: only the CPU time may differ
    assert 40 < a["imsgs"] / 150 < 80  # every imsg of pony-6.8 (31 non-stat hops + stats)
    assert a["imsgs_per_s"] == pytest.approx(a["imsgs"] / a["cpu_s"])


def test_interleaved_run_measures_both_and_their_ratio() -> None:
    pp = PingPong()
    r = model_run(200, pingpong=pp)
    assert r["simpy_hops"] > 0 and r["simpy_cpu_s"] > 0 and r["cpu_s"] > 0
    assert r["simpy_hops"] == pp.hops  # nothing else advanced it
    assert r["ratio"] == pytest.approx(
        (r["imsgs"] / r["cpu_s"]) / (r["simpy_hops"] / r["simpy_cpu_s"]))
    # SimPy gets about as much CPU time as the model (slice by slice), within a factor
    assert 0.3 < r["simpy_cpu_s"] / r["cpu_s"] < 3


def test_run_bench_reports_the_largest_run_and_memory() -> None:
    res = run_bench((100, 250))
    assert [r["messages"] for r in res["scaling"]] == [100, 250]
    assert res["ratio"] == res["scaling"][1]["ratio"]
    assert res["model_imsgs_per_s"] == res["scaling"][1]["imsgs_per_s"]
    assert [m["messages"] for m in res["memory"]] == [100, 250]
    assert all(m["peak_traced_bytes"] > 0 for m in res["memory"])
    for r in res["scaling"]:  # what memory follows, sampled at every slice
        assert r["in_flight_peak"] > 0 and r["blocks_peak"] > 0
    assert 0 <= res["compiled_modules"] <= res["hot_path_modules"]
    text = "\n".join(report_lines(res))
    assert "ratio" in text and "goal >= 0.5" in text and "250 messages" in text
    assert "envelopes in flight" in text


def test_cli_json_has_the_issue_keys_and_bad_sizes_exit_2() -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["bench", "--json", "--sizes", "120"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert {"simpy_hops_per_s", "model_imsgs_per_s", "ratio", "scaling"} <= out.keys()
    bad = runner.invoke(app, ["bench", "--sizes", "ten"])
    assert bad.exit_code == 2 and "--sizes" in bad.output
