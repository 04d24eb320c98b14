"""Sweeps on real Dask clusters: a user's own topology reaches a worker started in another
directory, a scheduler with no worker is a bounded wait and one line, the dashboard link is
printed (and can be turned off), and sweep.json records the workers that ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import smtpd_sim
import smtpd_sim.cli.sweep as cli_sweep
import smtpd_sim.studies.sweep as sweep
from smtpd_sim.cli import app
from smtpd_sim.spec.files import scenario_dir
from smtpd_sim.spec.scenario import load_scenario

distributed = pytest.importorskip("distributed")  # the 'sweep' extra (make test installs it)

runner = CliRunner()
TINY = ["workload.duration_s=1", "workload.arrival.rate_per_s=20"]


def _vary(*keys: str) -> list[str]:
    return [a for v in keys for a in ("--vary", v)]


def _user_scenario(home: Path) -> Path:
    """A scenario whose era is a topology file of its own, named relative to ``home``."""
    topo = (scenario_dir() / "topologies" / "pony-6.8.toml").read_text()
    assert 'name = "pony-6.8"' in topo
    (home / "topo.toml").write_text(topo.replace('name = "pony-6.8"', 'name = "mine"', 1))
    scen = home / "mine.toml"
    scen.write_text('name = "mine"\nera = "topo.toml"\ndrain_s = 60\n')
    return scen


def _worker(address: str, cwd: Path) -> subprocess.Popen[bytes]:
    """A `dask worker` process started in ``cwd``, finding smtpd_sim as this process does."""
    env = dict(os.environ)
    model = str(Path(smtpd_sim.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (model, env.get("PYTHONPATH", "")) if p)
    return subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads", "1",
                             "--nworkers", "1", "--no-dashboard"],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_users_topology_file_reaches_a_worker_in_another_directory(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(home)
    scen = _user_scenario(home)
    plan = sweep.plan_sweep(load_scenario(scen), [sweep.parse_vary(v) for v in [*TINY, "cores=1,2"]])
    assert plan.points[0].topology["name"] == "mine"  # the topology travels as data
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
        worker = _worker(cluster.scheduler_address, elsewhere)  # no topo.toml where it runs
        try:
            # started before the worker has joined: the sweep waits for it, then records it
            run = sweep.run_sweep(plan, scheduler=cluster.scheduler_address, wait_workers_s=60)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    assert run.workers == 1 and len(run.worker_addresses) == 1
    assert run.worker_addresses[0].startswith("tcp://")
    # the era's file is resolved against the scenario that names it (spec/files.py)
    assert set(run.table["era_run"]) == {str((home / "topo.toml").resolve())}
    assert json.loads(run.table["config"].iloc[0])["topology"]["name"] == "mine"
    pd.testing.assert_frame_equal(run.table, sweep.run_sweep(plan, workers=0).table)


def test_a_scheduler_without_workers_is_a_bounded_wait_and_one_line(tmp_path: Path) -> None:
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
        t0 = time.perf_counter()
        r = runner.invoke(app, ["sweep", "default", "--scheduler", cluster.scheduler_address,
                                "--wait-workers", "1", "--no-dashboard", "--json",
                                "--out", str(tmp_path / "s"), *_vary(*TINY, "cores=1,2")])
        waited = time.perf_counter() - t0
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert lines == [f"smtpd-sim: error: --scheduler {cluster.scheduler_address}: no worker joined "
                     f"within 1 s (start one: dask worker {cluster.scheduler_address}; or --wait-workers)"]
    assert waited < 30
    assert not (tmp_path / "s" / "sweep.json").exists()


def test_the_cli_wait_default_is_the_studys() -> None:
    assert cli_sweep.WAIT_WORKERS_S == sweep.WAIT_WORKERS_S


def test_a_local_sweep_prints_its_dashboard_and_records_the_workers_that_ran(tmp_path: Path) -> None:
    pytest.importorskip("bokeh")  # Dask serves its dashboard with bokeh (in the 'sweep' extra)
    out = tmp_path / "s"
    r = runner.invoke(app, ["sweep", "default", "--workers", "1", "--json", "--out", str(out),
                            *_vary(*TINY, "cores=1,2")])
    assert r.exit_code == 0, r.output
    link = [ln for ln in r.stderr.splitlines() if ln.startswith("Dask dashboard: ")]
    assert len(link) == 1 and link[0].split(": ", 1)[1].startswith("http://"), r.stderr
    info = json.loads((out / "sweep.json").read_text())
    assert info["dashboard"] == link[0].split(": ", 1)[1]
    assert info["workers"] == 1 and len(info["worker_addresses"]) == 1
    assert json.loads(r.stdout)["workers"] == 1

    r = runner.invoke(app, ["sweep", "default", "--workers", "1", "--json", "--no-dashboard",
                            "--out", str(out), *_vary(*TINY, "cores=1,2")])
    assert r.exit_code == 0, r.output
    assert "dashboard" not in r.stderr
    assert json.loads((out / "sweep.json").read_text())["dashboard"] is None


def test_a_replay_csv_travels_as_times_to_a_worker_in_another_directory(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A replay workload's CSV is read where the sweep is planned and its times shipped: the
    worker, started in a directory without the CSV, replays the same sessions."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(home)
    (home / "arrivals.csv").write_text("time\n0.1\n0.25\n0.3\n0.9\n")
    scen = home / "replay.toml"
    scen.write_text('name = "replay"\ndrain_s = 60\n[workload]\nduration_s = 1\n'
                    '[workload.arrival]\nprocess = "replay"\ncsv = "arrivals.csv"\n')
    plan = sweep.plan_sweep(load_scenario(scen), [sweep.parse_vary("cores=1,2")])
    assert plan.points[0].scenario["workload"]["arrival"]["times"] == [0.1, 0.25, 0.3, 0.9]
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
        worker = _worker(cluster.scheduler_address, elsewhere)
        try:
            run = sweep.run_sweep(plan, scheduler=cluster.scheduler_address, wait_workers_s=60)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    assert run.workers == 1
    local = sweep.run_sweep(plan, workers=0).table
    pd.testing.assert_frame_equal(run.table, local)
    assert set(local["ledger.accepted"]) == {4}  # the four replayed sessions, one message each
