"""The ``calibrate`` command: measure the real OpenSMTPD, fit the model, check its predictions."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from smtpd_sim.cli.common import (
    SEED,
    check_output,
    check_range,
    console,
    err_console,
    fail,
    user_errors,
)
from smtpd_sim.spec.limits import MAX_REPLICATIONS, MAX_TIME_S
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION

DEFAULT_NAME = "fitted-6.8"


def _need_real() -> None:
    """Root and the opensmtpd package, else one line and exit 2 (no install from here)."""
    from smtpd_sim.real.install import SMTPD_VERSION, smtpd_version

    if not sys.platform.startswith("linux"):
        fail("calibrate measures the real OpenSMTPD: it needs Linux (network namespaces)")
    if os.geteuid() != 0:
        fail("calibrate measures the real OpenSMTPD and must run as root (network namespace, smtpd); "
             "use --check to compare with the measurements a calibration file carries")
    version = smtpd_version()
    if version is None:
        fail("calibrate needs the Debian package opensmtpd (apt-get install opensmtpd, or make validate-real)")
    if version != SMTPD_VERSION:
        fail(f"calibrate expects OpenSMTPD {SMTPD_VERSION}, found {version}")


def _measure(duration: float, repeats: int, concurrency: list[int], say: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the load generator against fresh daemons; the raw results and how they were taken."""
    from smtpd_sim.real.load import how_measured, run_loads
    from smtpd_sim.studies.calibrate import MODES

    _need_real()
    how = how_measured(duration, repeats)
    runs = [(m, c) for _ in range(repeats) for m in MODES for c in concurrency]

    def progress(r: Any) -> None:
        say(f"  {r.mode:5s} c={r.concurrency:<2d} {r.accepted_msg_s:8.1f} msg/s  host busy {r.host_busy_frac:.2f}  "
            f"other load {r.other_cores:.2f} cores  load avg before {r.loadavg_before:.2f}")

    workdir = Path(tempfile.gettempdir()) / "smtpd-sim-real"
    results = [r.to_dict() for r in run_loads(workdir, runs, duration, progress=progress)]
    how["other_cores_max"] = max(r["other_cores"] for r in results)
    return results, how


def _print_rows(rows: list[dict[str, Any]], title: str, console: Any) -> None:
    from rich.table import Table

    t = Table(title=title)
    for col in ("workload", "c", "predicted msg/s", "measured msg/s", "error", "spread", "other load"):
        t.add_column(col, justify="right")
    for r in rows:
        other = r.get("measured_other_cores")
        t.add_row(r["workload"], str(r["concurrency"]), f"{r['predicted_msg_s']:.1f}", f"{r['measured_msg_s']:.1f}",
                  f"{r['error']:+.1%}", f"{r['measured_spread']:.1%}", "-" if other is None else f"{other:.2f} cores")
    console.print(t)
    t = Table(title="CPU ms per accepted message, predicted / measured")
    keys = list(rows[0]["cpu_ms_per_msg"]) if rows else []
    t.add_column("process")
    for r in rows:
        t.add_column(f"{r['workload']} c={r['concurrency']}", justify="right")
    for k in keys:
        t.add_row(k, *(f"{r['cpu_ms_per_msg'][k]['predicted']:.2f} / {r['cpu_ms_per_msg'][k]['measured']:.2f}"
                       for r in rows))
    t.add_row("total", *(f"{sum(c['predicted'] for c in r['cpu_ms_per_msg'].values()):.2f} / "
                         f"{sum(c['measured'] for c in r['cpu_ms_per_msg'].values()):.2f}" for r in rows))
    console.print(t)


@user_errors
def calibrate(
    name: Annotated[str, typer.Option(help="Write scenarios/calibration/<name>.toml")] = DEFAULT_NAME,
    duration: Annotated[float, typer.Option(help="Seconds of load per run")] = 10.0,
    repeats: Annotated[int, typer.Option(help="Runs of each (workload, concurrency); medians are fitted")] = 3,
    base: Annotated[str, typer.Option(help="Calibration whose disk and world latencies are kept")] = DEFAULT_CALIBRATION,
    from_file: Annotated[Path | None, typer.Option("--from", help="Fit recorded load results (JSON lines of "
                                                   "smtpd_sim.real.load) instead of measuring; no root needed")] = None,
    check: Annotated[bool, typer.Option("--check", help="Predict concurrency 4 and 16 with a calibration "
                                        "and compare with its measurements")] = False,
    calibration: Annotated[str, typer.Option(help="Calibration for --check")] = DEFAULT_NAME,
    measure: Annotated[bool, typer.Option("--measure", help="With --check: measure afresh (root)")] = False,
    out: Annotated[Path | None, typer.Option(help="Directory for <name>.toml (default: scenarios/calibration)")] = None,
    sim_seconds: Annotated[float, typer.Option(help="Simulated seconds per model run")] = 1.0,
    max_other_load: Annotated[float, typer.Option(help="Leave out runs during which other programs used more "
                                                  "than this many cores (if a quieter run of the same kind "
                                                  "exists); negative: keep all")] = 0.25,
    seed: Annotated[int, typer.Option(help="Model seed", **SEED)] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Fit the model's costs on the real OpenSMTPD at concurrency 1; --check predicts 4 and 16."""
    from smtpd_sim.real.commands import RealDaemonError
    from smtpd_sim.real.load import LoadError
    from smtpd_sim.spec.calibration import load_calibration
    from smtpd_sim.studies.calibrate import (
        CHECK_CONCURRENCY,
        FIT_CONCURRENCY,
        CalibrateError,
        aggregate,
        calibration_toml,
        fit,
        measured_from_calibration,
        write_calibration,
    )
    from smtpd_sim.studies.calibrate import (
        check as run_check,
    )

    say = (lambda s: err_console.print(s)) if as_json else (lambda s: console.print(s))
    check_range("--duration", duration, 0, MAX_TIME_S, lo_open=True)
    check_range("--sim-seconds", sim_seconds, 0, MAX_TIME_S, lo_open=True)
    check_range("--repeats", repeats, 1, MAX_REPLICATIONS)
    if math.isnan(max_other_load):
        fail("--max-other-load: got nan; expected a number of cores (negative: keep all)")
    keep = max_other_load if max_other_load >= 0 else None
    check_output(out, "--out", directory=True)
    if measure and not check:
        fail("--measure goes with --check (plain calibrate always measures)")
    try:
        if check:
            cal = load_calibration(calibration)
            if measure:
                raw, _how = _measure(duration, repeats, list(CHECK_CONCURRENCY), say)
                measured = aggregate(raw, max_other_cores=keep)
            else:
                measured = measured_from_calibration(cal)
            rows = run_check(cal, measured, seed=seed, duration_s=2 * sim_seconds)
            if as_json:
                sys.stdout.write(json.dumps({"calibration": cal.name, "predictions": rows}) + "\n")
            else:
                _print_rows(rows, f"{cal.name}: model (pony-6.8) vs the real daemon", console)
            return
        if from_file is not None:
            try:
                lines = from_file.read_text().splitlines()
                raw = [json.loads(ln) for ln in lines if ln.strip()]
                hows = [r["how"] for r in raw if isinstance(r, dict) and "how" in r]
                raw = [r for r in raw if not (isinstance(r, dict) and "how" in r)]
            except OSError as e:
                fail(f"{from_file}: {e.strerror or e}")
                return
            except json.JSONDecodeError as e:
                fail(f"{from_file}: not JSON lines of smtpd_sim.real.load results: {e}")
                return
            how: dict[str, Any] = {**(hows[0] if hows else {}), "fitted_from": from_file.name}
            if raw and all("other_cores" in r for r in raw):
                how["other_cores_max"] = max(r["other_cores"] for r in raw)
        else:
            raw, how = _measure(duration, repeats, [FIT_CONCURRENCY, *CHECK_CONCURRENCY], say)
        measured = aggregate(raw, max_other_cores=keep)
        how["max_other_cores"] = keep if keep is not None else -1.0
        basecal = load_calibration(base)
        basecal = basecal.model_copy(update={
            "description": "OpenSMTPD 6.8.0p2, costs fitted on concurrency-1 runs of the real daemon",
            "source": (str(how.get("source") or "smtpd-sim calibrate: smtpd_sim/real/load.py against the real daemon")
                       + f"; [disk] and world latencies from {basecal.name}")})
        cal, rep = fit(measured, basecal, name=name, seed=seed, duration_s=sim_seconds,
                       progress=None if as_json else say)
        path = write_calibration(calibration_toml(cal, rep, measured, how), name, out)
        result = {"calibration": name, "path": str(path), "fit": {
            "wake_s": rep.wake_s, "item_s": rep.item_s, "fork_s": rep.fork_s, "agent_s": rep.agent_s,
            "client_event_s": rep.client_event_s, "channel_latency_s": rep.latency_s, "notes": rep.notes},
            "c1": rep.c1}
        if as_json:
            sys.stdout.write(json.dumps(result) + "\n")
        else:
            _print_rows(rep.c1, f"{name}: concurrency-1 fit (model vs real)", console)
            for n in rep.notes:
                console.print(f"note: {n}")
            ref = name if out is None else str(path)
            console.print(f"written to {path}; check with: smtpd-sim calibrate --check --calibration {ref}")
    except (CalibrateError, RealDaemonError, LoadError) as e:
        fail(str(e))
