"""The command line: JSON shape, determinism, and one clear line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from testkit import tiny_scenario
from typer.testing import CliRunner

from smtpd_sim.cli import app

runner = CliRunner()
SMALL = Path(__file__).parents[1] / "data" / "small-workload.toml"


def test_compare_json_shape_and_determinism() -> None:
    args = ["compare", "--json", "--workload", str(SMALL), "--seed", "3", "--eras", "with-mfa,pony-6.8"]
    a = runner.invoke(app, args)
    b = runner.invoke(app, args)
    assert a.exit_code == 0, a.output
    assert a.stdout == b.stdout  # same seed, same bytes
    out = json.loads(a.stdout)
    eras = {e["era"]: e for e in out["eras"]}
    assert eras["with-mfa"]["processes"] == 9 and eras["with-mfa"]["channels"] == 23
    assert eras["with-mfa"]["hops_per_message"] == {"local": 41, "relay": 39}
    assert eras["pony-6.8"]["hops_per_message"] == {"local": 31, "relay": 29}
    for e in out["eras"]:
        assert set(e["latency_s"]) == {"mean", "p99"}
        assert set(e["stat_hops_per_message"]) == {"local", "relay"}
        assert all(0.0 <= v <= 1.0 for v in e["idle_fraction"].values())


def test_another_seed_gives_other_load_numbers() -> None:
    base = ["compare", "--json", "--workload", str(SMALL), "--eras", "pony-6.8"]
    a = json.loads(runner.invoke(app, [*base, "--seed", "1"]).stdout)
    b = json.loads(runner.invoke(app, [*base, "--seed", "2"]).stdout)
    assert a["eras"][0]["latency_s"] != b["eras"][0]["latency_s"]
    assert a["eras"][0]["hops_per_message"] == b["eras"][0]["hops_per_message"]


def test_compare_writes_a_png(tmp_path: Path) -> None:
    png = tmp_path / "c.png"
    r = runner.invoke(app, ["compare", "--workload", str(SMALL), "--eras", "pony", "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smtpd_sim", *args], capture_output=True, text=True)


def test_broken_topology_file_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    text = (Path(__file__).parents[2] / "scenarios" / "topologies" / "pony.toml").read_text()
    bad.write_text(text.replace('roles = ["ca"]', 'roles = ["ca", "ponies"]'))
    r = _cli("compare", "--eras", str(bad))
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(bad) in lines[0] and "unknown role 'ponies'" in lines[0]
    assert "Traceback" not in r.stderr


def test_unknown_era_and_missing_workload_one_line_exit_2() -> None:
    for args in (("topology", "qmail"), ("compare", "--workload", "nope.toml")):
        r = _cli(*args)
        assert r.returncode == 2, r
        assert len(r.stderr.strip().splitlines()) == 1
        assert "Traceback" not in r.stderr


def test_topology_prints_and_writes_dot(tmp_path: Path) -> None:
    dot = tmp_path / "t.dot"
    r = runner.invoke(app, ["topology", "with-mfa", "--dot", str(dot)])
    assert r.exit_code == 0
    assert "9 processes, 23 live channels" in r.stdout
    assert dot.read_text().count(" -- ") == 23



def test_run_json_ledger_and_results_directory(tmp_path: Path) -> None:
    out = tmp_path / "res"
    r = runner.invoke(app, ["run", str(tiny_scenario(tmp_path)), "--json", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    led = res["ledger"]
    assert set(led) >= {"accepted", "delivered", "bounced", "expired", "queued", "lost", "duplicated"}
    assert led["lost"] == 0 and led["bounced"] > 0
    assert led["accepted"] == led["delivered"] + led["bounced"] + led["expired"] + led["queued"]
    for f in ("config.json", "summary.json", "messages.csv", "hops.csv", "samples.csv", "run.png"):
        assert (out / f).exists(), f
    config = json.loads((out / "config.json").read_text())
    assert config["topology"]["name"] == "pony-6.8" and config["workload"]["duration_s"] == 60


def test_run_stream_same_ledger_without_per_message_history(tmp_path: Path) -> None:
    exact, streamed = tmp_path / "exact", tmp_path / "stream"
    sc = str(tiny_scenario(tmp_path))
    a = runner.invoke(app, ["run", sc, "--json", "--out", str(exact)])
    b = runner.invoke(app, ["run", sc, "--json", "--out", str(streamed), "--stream"])
    assert a.exit_code == 0 and b.exit_code == 0, b.output
    ra, rb = json.loads(a.stdout), json.loads(b.stdout)
    assert ra["ledger"] == rb["ledger"] and ra["bounces"] == rb["bounces"]
    assert rb["latency_s"]["mean"] == ra["latency_s"]["mean"]  # a sum: exact in a sketch too
    assert abs(rb["latency_s"]["p99"] - ra["latency_s"]["p99"]) <= 1e-3 * ra["latency_s"]["p99"]
    assert not (streamed / "messages.csv").exists() and (streamed / "run.png").exists()


def test_run_stream_with_trace_is_one_line(tmp_path: Path) -> None:
    r = _cli("run", str(tiny_scenario(tmp_path)), "--stream", "--trace", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "--stream" in r.stderr


def test_run_bad_scenario_key_one_line(tmp_path: Path) -> None:
    sc = tiny_scenario(tmp_path)
    sc.write_text(sc.read_text().replace("drain_s", "drain_seconds"))
    r = _cli("run", str(sc))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "drain_seconds: unknown key" in r.stderr
