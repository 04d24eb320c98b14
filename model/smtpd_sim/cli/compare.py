"""The ``compare`` command: the headline comparison of the eras, as tables, JSON or a chart."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from smtpd_sim.cli.common import (
    SEED,
    SetOption,
    check_output,
    console,
    err_console,
    fail,
    make_console,
    split_list,
    user_errors,
)
from smtpd_sim.spec.calibration import load_calibration
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION, DEFAULT_SITE, DEFAULT_WORKLOAD
from smtpd_sim.spec.site import load_site
from smtpd_sim.spec.topology import ERAS, load_topology
from smtpd_sim.spec.workload import load_workload


@user_errors
def compare(
    eras: Annotated[list[str] | None, typer.Option("--eras", help="Eras to compare (default: all four)")] = None,
    workload: Annotated[str, typer.Option(help="Workload name or TOML file")] = DEFAULT_WORKLOAD,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes out)", **SEED)] = 1,
    calibration: Annotated[str, typer.Option(help="Calibration name or TOML file")] = DEFAULT_CALIBRATION,
    site: Annotated[str, typer.Option(help="Site name or TOML file")] = DEFAULT_SITE,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG chart here")] = None,
    sets: SetOption = None,
) -> None:
    """Compare the eras: processes, channels, hops, idle time, latency, CPU, memory."""
    from smtpd_sim.studies.compare import compare_eras

    selected = split_list(eras) or list(ERAS)
    if eras is not None and not split_list(eras):
        fail(f"--eras: expected era names or topology files, comma-separated, got {','.join(eras)!r}")
    if dup := next((e for e in selected if selected.count(e) > 1), None):
        fail(f"--eras: {dup} is given twice")
    topos = [load_topology(e) for e in selected]  # a bad era: one line before anything runs
    load_workload(workload)  # so are the other parts
    check_output(plot, "--plot")
    load_calibration(calibration)
    load_site(site)
    parts: dict[str, Any] = {"workload": workload, "calibration": calibration, "site": site}
    if sets:
        parts, seed = compare_parts(parts, seed, sets)
    if as_json:
        result = compare_eras(selected, parts["workload"], seed=seed, calibration=parts["calibration"],
                              site=parts["site"], topologies=topos)
    else:
        from smtpd_sim.cli.progress import progress_bar

        with progress_bar(err_console, unit="runs") as prog:
            task = prog.add_task("simulating", total=2 * len(selected))
            result = compare_eras(selected, parts["workload"], seed=seed, calibration=parts["calibration"],
                                  site=parts["site"], topologies=topos, progress=lambda era, what: prog.update(
                                      task, advance=1, description=f"{era}: {what} done"))
    if as_json:
        sys.stdout.write(json.dumps(result, sort_keys=False) + "\n")
    else:
        print_compare(result, console)
    if plot is not None:
        from smtpd_sim.figures.compare import compare_figure
        from smtpd_sim.figures.style import save

        path = save(compare_figure(result), plot)
        (err_console if as_json else console).print(f"chart written to {path}")


# scenario keys compare has no use for (it runs the eras of --eras, without faults)
COMPARE_REFUSES = {
    "era": "compare runs every era of --eras (give --eras instead)",
    "name": "compare's results have no scenario name",
    "description": "compare's results have no scenario description",
    "fault": "compare measures the eras without faults (use smtpd-sim run)",
    "drain_s": "compare's load runs measure the arrival window (no drain to set)",
    "sample_s": "compare keeps no time series",
    "tables": "compare takes the site's tables (set site.tables.<name>.<field>)",
}


def compare_parts(parts: dict[str, Any], seed: int, sets: list[str]) -> tuple[dict[str, Any], int]:
    """The parts and the seed after the ``--set``s: a part a key changed as an object, the
    others as given; ``cores`` becomes the calibration's (the cores the eras run on)."""
    from smtpd_sim.spec.overrides import apply_overrides, parse_sets
    from smtpd_sim.spec.scenario import ScenarioSpec, resolve_scenario

    spec = apply_overrides(ScenarioSpec(name="compare", seed=seed, **parts), sets, refuse=COMPARE_REFUSES)
    scen = resolve_scenario(spec)
    touched = {o.key.split(".", 1)[0] for o in parse_sets(sets)}
    out = dict(parts)
    if "workload" in touched:
        out["workload"] = scen.workload
    if touched & {"calibration", "cores"}:
        out["calibration"] = scen.calibration if scen.cores is None else \
            scen.calibration.model_copy(update={"cores": scen.cores})
    if "site" in touched:
        out["site"] = scen.site
    return out, scen.seed


def print_compare(result: dict[str, Any], console: Console | None = None) -> None:
    """Side-by-side tables of the comparison."""
    console = console or make_console()
    eras = result["eras"]
    names = [e["era"] for e in eras]

    t = Table(title=f"OpenSMTPD eras — workload '{result['workload']}', seed {result['seed']}, "
                    f"{result['cores']} cores, calibration {result['calibration']}")
    t.add_column("", style="bold")
    for n in names:
        t.add_column(n, justify="right")

    def row(label: str, fn: Any) -> None:
        t.add_row(label, *[fn(e) for e in eras])

    row("long-lived processes", lambda e: str(e["processes"]))
    row("live channels", lambda e: str(e["channels"]))
    row("hops/message local", lambda e: str(e["hops_per_message"]["local"]))
    row("hops/message relay", lambda e: str(e["hops_per_message"]["relay"]))
    row("  of which smtp<->mfa", lambda e: f"{e['mfa_hops_per_message']} ({e['mfa_share']:.0%})")
    row("stat hops/message local", lambda e: str(e["stat_hops_per_message"]["local"]))
    row("stat hops/message relay", lambda e: str(e["stat_hops_per_message"]["relay"]))
    row("background stat hops/s", lambda e: f"{e['background_stat_hops_per_s']:g}")
    steps = list(eras[0]["critical_path_hops"])
    for s in steps:
        row(f"round trips before {s} reply", lambda e, s=s: f"{e['round_trips'].get(s, 0):g}")
    row("DATA-end -> 250 mean (ms)", lambda e: f"{e['latency_s']['mean'] * 1e3:.3f}")
    row("DATA-end -> 250 p99 (ms)", lambda e: f"{e['latency_s']['p99'] * 1e3:.3f}")
    row("accepted msg/s", lambda e: f"{e['throughput_msg_s']:.1f}")
    row("memory (processes x RSS)", lambda e: f"{e['memory_bytes'] / 1e6:.0f} MB")
    console.print(t)

    procs: list[str] = []
    for e in eras:
        for p in e["idle_fraction"]:
            if p not in procs:
                procs.append(p)
    t2 = Table(title="Idle fraction and CPU ms per message, per process (load workload)")
    t2.add_column("process", style="bold")
    for n in names:
        t2.add_column(n, justify="right")
    for p in procs:
        t2.add_row(p, *[
            f"{e['idle_fraction'][p]:.4f} / {e['cpu_ms_per_message'][p]:.3f}" if p in e["idle_fraction"] else "-"
            for e in eras
        ])
    t2.add_row("parent's children", *[f"- / {e['cpu_ms_per_message']['parent-children']:.3f}" for e in eras])
    console.print(t2)
