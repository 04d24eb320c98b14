"""The ``sweep`` command: a factorial design over scenario keys, on Dask or in-process."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from smtpd_sim.cli.common import (
    SEED,
    SetOption,
    check_output,
    console,
    err_console,
    fail,
    user_errors,
)
from smtpd_sim.spec.limits import MAX_CORES, MAX_REPLICATIONS

WAIT_WORKERS_S = 60.0  # smtpd_sim.studies.sweep.WAIT_WORKERS_S (not imported: --help stays fast)


@user_errors
def sweep(
    scenario: Annotated[str, typer.Argument(
        help="Scenario name (scenarios/<name>.toml), file, or 'default' (the embedded default)")],
    vary: Annotated[list[str] | None, typer.Option(
        "--vary", help="key=v1,v2,... (dotted path into the resolved scenario: era, cores, "
                       "calibration, workload.arrival.rate_per_s, calibration.roles.queue.default_s, "
                       "tables.aliases.lookup_s...); "
                       "repeat for a factorial design")] = None,
    replications: Annotated[int, typer.Option(help="Runs per point, seeds seed..seed+N-1", min=1,
                                              max=MAX_REPLICATIONS)] = 1,
    seed: Annotated[int | None, typer.Option(help="First seed (default: the scenario's)", **SEED)] = None,
    scheduler: Annotated[str | None, typer.Option(help="Address of an existing Dask scheduler")] = None,
    workers: Annotated[int | None, typer.Option(
        help="LocalCluster worker processes (default: one per core; 0: run in this process)",
        min=0, max=MAX_CORES)] = None,
    out: Annotated[Path | None, typer.Option(help="Results directory (default results/sweep-<name>)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    stream: Annotated[bool, typer.Option(
        "--stream", help="Runs keep no per-message history, so memory follows what is in flight "
        "(for big points): p99 latency within 0.1 %")] = False,
    wait_workers: Annotated[float, typer.Option(
        help="With --scheduler: seconds to wait for a first worker before giving up",
        min=0, max=86400)] = WAIT_WORKERS_S,
    no_dashboard: Annotated[bool, typer.Option(
        "--no-dashboard", help="No Dask dashboard: a LocalCluster starts none, and no link is printed")] = False,
    sets: SetOption = None,
) -> None:
    """Run a factorial sweep with replications: a Parquet table, a summary with 95 % CIs, plots."""
    from smtpd_sim.figures.sweep import write_figures
    from smtpd_sim.spec.overrides import apply_overrides
    from smtpd_sim.spec.scenario import ScenarioError, load_scenario, scenario_path
    from smtpd_sim.studies.sweep import (
        SweepError,
        default_scenario,
        parse_vary,
        plan_sweep,
        require_extra,
        run_sweep,
        summarize,
        write_table,
    )

    try:
        try:
            path: Path | None = scenario_path(scenario)
        except ScenarioError:
            if scenario != "default":
                raise
            path = None  # no default.toml: the embedded default scenario
        spec = apply_overrides(load_scenario(path) if path is not None else default_scenario(), sets)
        factors = [parse_vary(v) for v in vary or []]
        if not factors:
            raise SweepError("nothing to sweep: give at least one --vary key=v1,v2,...")
        plan = plan_sweep(spec, factors, replications=replications, seed=seed, stream=stream)
        if workers is not None and workers < 0:
            raise SweepError(f"--workers: must be 0 or more, got {workers}")
        if scheduler is not None and workers is not None:
            raise SweepError("--workers and --scheduler exclude each other (the cluster has its workers)")
        check_output(out or Path("results") / f"sweep-{plan.name}", "--out", directory=True)
        require_extra(dask=scheduler is not None or workers != 0)  # before anything runs
        cluster = {"wait_workers_s": wait_workers, "dashboard": not no_dashboard,
                   "notify": lambda line: err_console.print(line, highlight=False, soft_wrap=True)}
        n = len(plan.points) * plan.replications
        if as_json:
            run = run_sweep(plan, workers=workers, scheduler=scheduler, **cluster)
        else:
            from smtpd_sim.cli.progress import progress_bar

            with progress_bar(err_console, unit="runs") as prog:
                task = prog.add_task(f"sweep {plan.name}: {len(plan.points)} points x "
                                     f"{plan.replications}", total=n)
                run = run_sweep(plan, workers=workers, scheduler=scheduler, **cluster,
                                progress=lambda done, total: prog.update(task, completed=done))
    except SweepError as e:
        fail(str(e))
        return
    dest = out or Path("results") / f"sweep-{plan.name}"
    table_path = write_table(run.table, dest / "sweep.parquet")
    summary = summarize(run.table, plan.keys)
    summary.to_csv(dest / "summary.csv", index=False)
    figures = write_figures(summary, plan.keys, dest)
    info = {
        "scenario": plan.name,
        "factors": {f.key: list(f.values) for f in plan.factors},
        "points": len(plan.points),
        "replications": plan.replications,
        "seeds": [plan.seed + r for r in range(plan.replications)],
        "runs": len(run.table),
        "where": run.where,
        "workers": run.workers,  # those that ran at least one task
        "worker_addresses": run.worker_addresses,
        "dashboard": run.dashboard,
        "wall_s": round(run.wall_s, 3),
        "points_per_s": round(run.points_per_s, 3),
        "runs_per_s": round(run.runs_per_s, 3),
        "table": str(table_path),
        "figures": [str(p) for p in figures],
    }
    (dest / "sweep.json").write_text(json.dumps(info, indent=2) + "\n")
    if as_json:
        records = json.loads(summary.to_json(orient="records"))
        sys.stdout.write(json.dumps({**info, "summary": records}) + "\n")
        return
    print_summary(summary, plan.keys, console)
    where = ("in this process" if run.where == "in-process"
             else f"on {run.where} ({run.workers} workers)")
    console.print(f"{info['runs']} runs ({info['points']} points x {info['replications']}) in "
                  f"{run.wall_s:.1f} s {where}: "
                  f"{run.points_per_s:.2f} points/s, {run.runs_per_s:.2f} runs/s")
    console.print(f"table {table_path}; summary.csv, sweep.json and "
                  f"{', '.join(p.name for p in figures)} in {dest}/")


def _pm(mean: float, half: float, scale: float = 1.0, fmt: str = "{:.1f}") -> str:
    if math.isnan(mean):
        return "-"
    s = fmt.format(mean * scale)
    return s if math.isnan(half) else f"{s} ± {fmt.format(half * scale)}"


def print_summary(summary: Any, keys: list[str], console: Any) -> None:
    """The per-point summary (mean ± 95 % CI half-width) as a rich table."""
    from rich.table import Table

    t = Table(title="sweep summary (mean ± 95 % CI, t-based)")
    for k in keys:
        t.add_column(k.rsplit(".", 1)[-1], justify="right")
    for col in ("n", "accepted msg/s", "delivered msg/s", "latency mean ms", "latency p99 ms",
                "busiest process", "its busy share", "cores busy"):
        t.add_column(col, justify="right")
    for r in summary.to_dict("records"):
        t.add_row(*(str(r[k]) for k in keys), str(r["n"]),
                  _pm(r["accepted_msg_s_mean"], r["accepted_msg_s_ci"]),
                  _pm(r["delivered_msg_s_mean"], r["delivered_msg_s_ci"]),
                  _pm(r["latency_mean_s_mean"], r["latency_mean_s_ci"], 1e3, "{:.3f}"),
                  _pm(r["latency_p99_s_mean"], r["latency_p99_s_ci"], 1e3, "{:.3f}"),
                  r["bottleneck"],
                  _pm(r["bottleneck_util_mean"], math.nan, 100, "{:.0f}%"),
                  _pm(r["cores_util_mean"], math.nan, 100, "{:.0f}%"))
    console.print(t)
