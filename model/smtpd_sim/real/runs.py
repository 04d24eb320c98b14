"""Scenario runs against the real daemon: one scenario against a fresh daemon, recorded
(trace, hop table, dialog, CPU per process), a batch of them, and their comparison with
the reference traces checked into ``tests/data/real-traces``.

Why: these recordings are the ground truth the simulator is compared with
(``smtpd-sim real validate``) and the way to refresh the reference traces
(``smtpd-sim real traces``).

Usage::

    with RealDaemon("/tmp/smtpd-real") as d:
        run = run_scenario(d, "local-1rcpt")   # RealRun(log_lines, hops_df, dialogs, ...)
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from smtpd_sim.observe.traces import compare_hops, hops_to_csv, parse_log, read_hops_csv
from smtpd_sim.real import procstat
from smtpd_sim.real.commands import RealDaemonError, wait_until
from smtpd_sim.real.daemon import DEBIAN_68, SMTP_PORT, TLS_PORT, RealDaemon
from smtpd_sim.real.install import BROKEN_MAILDIR_USER, maildir_count, set_maildir_broken
from smtpd_sim.real.profiles import DaemonProfile
from smtpd_sim.real.scenarios import (
    DialogError,
    ScenarioEnv,
    get_scenario,
    run_scenario_client,
    scenario_names,
)
from smtpd_sim.real.sink import Sink

# model/smtpd_sim/real/runs.py -> the checkout's tests/data/real-traces
REFERENCE_DIR = Path(__file__).resolve().parents[3] / "tests" / "data" / "real-traces"


@dataclass
class RealRun:
    """One scenario run against the real daemon."""

    name: str
    log_lines: list[str]
    hops_df: pd.DataFrame
    dialogs: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, procstat.CpuTimes] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def save(self, outdir: str | Path) -> dict[str, Path]:
        """Write ``traces/<name>.log``, ``traces/<name>.dialog.json``, ``csv/<name>.imsg.csv``."""
        out = Path(outdir)
        (out / "traces").mkdir(parents=True, exist_ok=True)
        (out / "csv").mkdir(parents=True, exist_ok=True)
        paths = {
            "log": out / "traces" / f"{self.name}.log",
            "dialog": out / "traces" / f"{self.name}.dialog.json",
            "csv": out / "csv" / f"{self.name}.imsg.csv",
        }
        paths["log"].write_text("".join(x + "\n" for x in self.log_lines))
        paths["dialog"].write_text(json.dumps(self.dialogs, indent=1))
        paths["csv"].write_bytes(hops_to_csv(self.hops_df).encode())
        return paths


class DaemonScenarioEnv(ScenarioEnv):
    """A scenario's operator actions on the real daemon: connect inside its namespace,
    trace markers, maildirs, the relay sink, ``smtpctl schedule all``."""

    def __init__(self, daemon: RealDaemon) -> None:
        self.d = daemon

    def connect(self, host: str, port: int, timeout: float) -> socket.socket:
        return self.d.netns.connect(host, port, timeout)

    def mark(self, text: str) -> None:
        self.d.mark(text)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def maildir_count(self, user: str) -> int:
        return maildir_count(user)

    def wait_maildir(self, user: str, above: int, timeout: float) -> float | None:
        return time.time() if wait_until(lambda: maildir_count(user) > above, timeout) else None

    def _sink(self, which: str) -> Sink:
        try:
            return self.d.sinks[which]
        except KeyError:
            raise DialogError(f"no sink {which!r} (known: {', '.join(self.d.sinks)})") from None

    def sink_count(self, which: str = "relay") -> int:
        return self._sink(which).count

    def wait_sink(self, above: int, timeout: float, which: str = "relay") -> float | None:
        sink = self._sink(which)
        return time.time() if wait_until(lambda: sink.count > above, timeout) else None

    def sink_start(self, which: str = "relay") -> None:
        self._sink(which).start()

    def sink_stop(self, which: str = "relay") -> None:
        self._sink(which).stop()

    def sink_rejected(self, which: str = "relay") -> int:
        return len(self._sink(which).rejected)

    def sink_params(self, which: str = "relay") -> list[list[str]]:
        return [m.params for m in self._sink(which).messages]

    def schedule_all(self) -> None:
        self.d.smtpctl("schedule", "all")

    def set_maildir_broken(self, user: str, broken: bool) -> None:
        set_maildir_broken(user, broken)


def run_scenario(daemon: RealDaemon, name: str, *, long: bool = False, retry_wait: float | None = None) -> RealRun:
    """Fresh daemon, BEGIN marker, the scenario's client, settle, END marker, stop.

    The sink runs only while the scenario wants it and is stopped after END. Long
    scenarios (minutes of retry timers) need ``long=True``; ``retry_wait`` shortens them.
    """
    try:
        get_scenario(name, long=long)
    except DialogError as e:
        raise RealDaemonError(str(e)) from None
    t_start = time.monotonic()
    daemon.start()
    cpu: dict[str, procstat.CpuTimes] = {}
    try:
        time.sleep(0.5)
        daemon.mark(f"SCENARIO {name} BEGIN")
        try:
            dialog = run_scenario_client(name, "127.0.0.1", SMTP_PORT, tls_port=TLS_PORT,
                                         env=DaemonScenarioEnv(daemon), long=long, retry_wait=retry_wait)
        except DialogError as e:
            raise RealDaemonError(f"{name}: {e}") from None
        time.sleep(daemon.settle_s)
        daemon.mark(f"SCENARIO {name} END")
        if daemon.pid is not None:
            try:
                cpu = procstat.snapshot(daemon.pid)
            except procstat.ProcStatError:
                cpu = {}
    finally:
        daemon.stop()
        daemon.stop_sinks()
        set_maildir_broken(BROKEN_MAILDIR_USER, True)
    daemon.mark("SMTPD STOPPED")
    lines = daemon.log_lines
    return RealRun(name=name, log_lines=lines, hops_df=parse_log(lines, **daemon.profile.parse_options()), dialogs=dialog,
                   notes=dict(dialog.get("notes", {})), cpu=cpu, elapsed_s=time.monotonic() - t_start)


def run_real_scenarios(
    workdir: str | Path,
    names: Sequence[str] | None = None,
    *,
    long: bool = False,
    outdir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    profile: DaemonProfile = DEBIAN_68,
) -> dict[str, RealRun]:
    """Run scenarios (default: every non-long one) against fresh daemons of ``profile``;
    optionally save them."""
    runs: dict[str, RealRun] = {}
    with RealDaemon(workdir, profile=profile) as d:
        for name in names or scenario_names(long=long):
            run = run_scenario(d, name, long=long)
            runs[name] = run
            if outdir is not None:
                run.save(outdir)
            if progress is not None:
                progress(f"{name}: {len(run.hops_df)} hops in {run.elapsed_s:.1f} s")
    return runs


def compare_with_reference(runs: dict[str, RealRun], ref_dir: str | Path = REFERENCE_DIR) -> dict[str, dict[str, Any]]:
    """:func:`smtpd_sim.observe.traces.compare_hops` of each run against ``<ref_dir>/csv/<name>.imsg.csv``."""
    out: dict[str, dict[str, Any]] = {}
    for name, run in runs.items():
        ref = Path(ref_dir) / "csv" / f"{name}.imsg.csv"
        if ref.exists():
            out[name] = compare_hops(read_hops_csv(ref), run.hops_df)
    return out
