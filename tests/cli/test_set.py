"""``--set key.path=value`` on the commands that take a scenario (run, compare, sweep, serve),
and scenarios with relative paths run from another directory. Bad keys and values are one
line on stderr naming the --set (and the nearest key), exit status 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smtpd_sim.cli import app
from smtpd_sim.cli.serve import serve_parts
from smtpd_sim.spec.calibration import Calibration
from smtpd_sim.spec.files import scenario_dir
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION, RESEARCH_SITE
from smtpd_sim.spec.site import SiteSpec
from smtpd_sim.spec.topology import Topology

runner = CliRunner()

SMALL = ('name = "small"\nera = "pony-6.8"\ndrain_s = 30\n'
         "[workload]\nduration_s = 1\n[workload.arrival]\nrate_per_s = 5\n")


def _one_line_2(args: list[str], *fragments: str) -> str:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smtpd-sim: error: "), r.stderr
    assert "Traceback" not in r.output
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def _run(tmp_path: Path, out: str, *extra: str) -> Path:
    r = runner.invoke(app, ["run", str(tmp_path / "s.toml"), "--json", "--out", str(tmp_path / out), *extra])
    assert r.exit_code == 0, (r.output, r.exception)
    return tmp_path / out


def test_run_with_set(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SMALL)
    dest = _run(tmp_path, "a", "--set", "world.cores=4", "--set", "workload.arrival.rate_per_s=20",
                "--set", "world.net_latency_s=3e-5", "--set", "era=pony")
    config = json.loads((dest / "config.json").read_text())
    assert config["scenario"]["cores"] == 4 and config["scenario"]["era"] == "pony"
    assert config["workload"]["arrival"]["rate_per_s"] == 20.0 and config["workload"]["duration_s"] == 1.0
    assert config["calibration"]["world"]["net_latency_s"] == 3e-5
    assert config["calibration"]["name"] == DEFAULT_CALIBRATION
    summary = json.loads((dest / "summary.json").read_text())
    assert summary["ledger"]["accepted"] > json.loads((_run(tmp_path, "b") / "summary.json").read_text())[
        "ledger"]["accepted"]  # four times the rate: more mail


def test_setting_a_value_to_what_the_file_says_changes_no_byte(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SMALL)
    plain = _run(tmp_path, "plain")
    same = _run(tmp_path, "same", "--set", "workload.arrival.rate_per_s=5", "--set", "seed=1")
    for name in ("messages.csv", "hops.csv", "samples.csv"):
        assert (plain / name).read_bytes() == (same / name).read_bytes(), name


@pytest.mark.parametrize("command", [
    ["run", "{s}"], ["sweep", "{s}", "--vary", "cores=1,2", "--workers", "0"], ["compare", "--eras", "pony"],
    ["serve", "--ephemeral", "--port", "0"],
])
def test_a_wrong_key_names_the_nearest_one(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "s.toml").write_text(SMALL)
    args = [a.replace("{s}", str(tmp_path / "s.toml")) for a in command]
    _one_line_2([*args, "--set", "world.net_latncy_s=1e-5"], "--set world.net_latncy_s=1e-5",
                "did you mean net_latency_s?")


@pytest.mark.parametrize(("sets", "fragment"), [
    (["world.cores=many"], "valid integer"),
    (["workload.arrival.rate_per_s=0"], "greater than 0"),
    (["workload.arrival.rate_per_s"], "expected key.path=value"),
    (["site.hostname="], "hostname"),
    (["workload.arival.rate_per_s=5"], "did you mean arrival?"),
])
def test_run_bad_set_is_one_line_exit_2(tmp_path: Path, sets: list[str], fragment: str) -> None:
    (tmp_path / "s.toml").write_text(SMALL)
    _one_line_2(["run", str(tmp_path / "s.toml"), *(x for s in sets for x in ("--set", s))], fragment)


@pytest.mark.parametrize(("command", "key", "fragment"), [
    (["compare"], "era=pony", "give --eras instead"),
    (["compare"], "drain_s=1", "arrival window"),
    (["serve", "--ephemeral"], "workload.duration_s=1", "no workload"),
    (["serve", "--ephemeral"], "fault=[]", "no faults"),
])
def test_keys_a_command_does_not_use_are_refused(command: list[str], key: str, fragment: str) -> None:
    _one_line_2([*command, "--set", key], f"--set {key}", fragment)


def test_compare_with_set() -> None:
    r = runner.invoke(app, ["compare", "--eras", "pony", "--json", "--set", "workload.duration_s=1",
                            "--set", "world.cores=3", "--set", "world.net_latency_s=5e-5"])
    assert r.exit_code == 0, (r.output, r.exception)
    out = json.loads(r.stdout)
    assert out["cores"] == 3 and out["calibration"] == DEFAULT_CALIBRATION and out["site"] == "common-case"


def test_sweep_with_set(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SMALL)
    r = runner.invoke(app, ["sweep", str(tmp_path / "s.toml"), "--vary", "cores=1,2", "--workers", "0",
                            "--out", str(tmp_path / "sw"), "--json", "--set", "world.net_latency_s=4e-5",
                            "--set", "workload.duration_s=0.5"])
    assert r.exit_code == 0, (r.output, r.exception)
    out = json.loads(r.stdout)
    assert out["factors"] == {"cores": [1, 2]}  # a --set is no factor
    import pandas as pd

    config = json.loads(pd.read_parquet(tmp_path / "sw" / "sweep.parquet")["config"][0])
    assert config["calibration"]["world"]["net_latency_s"] == 4e-5 and config["workload"]["duration_s"] == 0.5


def test_sweep_hints_a_wrong_vary_key_after_a_set_inlined_the_parts(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SMALL)
    _one_line_2(["sweep", str(tmp_path / "s.toml"), "--set", "world.net_latency_s=3e-5", "--set", "site.hostname=x",
                 "--vary", "crs=1,2", "--workers", "0"], "--vary crs", "did you mean cores?")


def test_serve_parts_after_set() -> None:
    parts, era = serve_parts({"era": "pony-6.8", "site": RESEARCH_SITE, "calibration": DEFAULT_CALIBRATION,
                              "seed": 1}, ["era=pony", "world.cores=3", "site.hostname=mx.set.test", "seed=4"])
    assert era == "pony" and isinstance(parts["era"], Topology)
    assert isinstance(parts["calibration"], Calibration) and parts["calibration"].cores == 3
    assert isinstance(parts["site"], SiteSpec) and parts["site"].hostname == "mx.set.test"
    assert parts["seed"] == 4


def test_run_a_scenario_with_relative_paths_from_another_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scenario names its workload and site by relative file names, the workload names a
    replay CSV next to it; run from a directory where none of those names exist."""
    d = tmp_path / "project"
    (d / "parts").mkdir(parents=True)
    shutil.copy(scenario_dir() / "sites" / "common-case.toml", d / "parts" / "site.toml")
    (d / "parts" / "arrivals.csv").write_text("time\n0.1\n0.3\n0.6\n")
    (d / "parts" / "wl.toml").write_text(
        'name = "replayed"\nduration_s = 1\n[arrival]\nprocess = "replay"\ncsv = "arrivals.csv"\n')
    (d / "s.toml").write_text('name = "rel"\nsite = "parts/site.toml"\nworkload = "parts/wl.toml"\ndrain_s = 30\n')
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    r = runner.invoke(app, ["run", "../project/s.toml", "--json", "--out", "out"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert json.loads(r.stdout)["ledger"]["accepted"] == 3  # the CSV's three sessions
    # and a shipped scenario by name, from here
    _one_line_2(["run", "faults", "--set", "drain_s=-1"], "--set drain_s=-1", "drain_s")
