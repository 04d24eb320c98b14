"""The ``explore`` command: the teaching page, one self-contained HTML file built from runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smtpd_sim.cli.common import (
    SEED,
    check_output,
    console,
    err_console,
    fail,
    split_list,
    user_errors,
)


@user_errors
def explore(
    eras: Annotated[list[str] | None, typer.Option("--eras", help="Eras to show (default: the four and pony-6.8-filters)")] = None,
    scenario: Annotated[str | None, typer.Option(
        help="Scenario name or file whose calibration, site, workload (compare's load runs) and "
             "seed the runs use (default: compare's defaults)")] = None,
    out: Annotated[Path, typer.Option(help="The HTML file to write")] = Path("explorer.html"),
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the scenario's, else 1)", **SEED)] = None,
) -> None:
    """Write the teaching page: each era's processes, one message imsg by imsg, compromises,
    merges, the numbers between eras, a tour and exercises (one HTML file, no network)."""
    from smtpd_sim.spec.topology import load_topology
    from smtpd_sim.studies.explore import DEFAULT_ERAS, MESSAGE_KINDS, Parts, explore_data

    selected = split_list(eras) or list(DEFAULT_ERAS)
    if eras is not None and not split_list(eras):
        fail(f"--eras: expected era names or topology files, comma-separated, got {','.join(eras)!r}")
    if dup := next((e for e in selected if selected.count(e) > 1), None):
        fail(f"--eras: {dup} is given twice")
    topos = [load_topology(e) for e in selected]  # a bad era: one line before anything runs
    check_output(out, "--out")
    if scenario is not None:
        from smtpd_sim.spec.scenario import resolve_scenario

        scen = resolve_scenario(scenario)
        parts = Parts(scen.calibration, scen.site, scen.workload or Parts.default().workload,
                      scen.seed if seed is None else seed)
    else:
        parts = Parts.default(1 if seed is None else seed)

    from smtpd_sim.cli.progress import progress_bar
    from smtpd_sim.figures.explorer import write_explorer

    steps_per_era = len(MESSAGE_KINDS) + 2 + 2  # the messages, compromises, merges, compare's two runs
    with progress_bar(err_console, unit="steps") as prog:
        task = prog.add_task("explore", total=steps_per_era * len(selected))
        data = explore_data(selected, parts=parts, topologies=topos, scenario=scenario or "",
                            progress=lambda era, what: prog.update(task, advance=1, description=f"{era}: {what}"))
    path = write_explorer(data, out)
    size = path.stat().st_size
    hops = ", ".join(f"{e['era']} {e['messages']['local']['n_hops']}" for e in data["eras"])
    console.print(f"wrote {path} ({size / 1e6:.2f} MB): {len(selected)} eras; hops per local message: {hops}; "
                  f"{len(data['tour'])} tour steps, {len(data['exercises'])} exercises")
