"""The ``run`` command: one scenario to the end, the ledger, and a results directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

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


@user_errors
def run(
    scenario: Annotated[str, typer.Argument(help="Scenario name (scenarios/<name>.toml) or file")],
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed", **SEED)] = None,
    out: Annotated[Path | None, typer.Option(help="Results directory (default results/<name>-<seed>)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    hop_rows: Annotated[bool, typer.Option("--hop-rows", help="Also record one row per hop")] = False,
    trace: Annotated[bool, typer.Option("--trace", help="Also write imsg.log (-T imsg format) and "
                                        "trace.json (Chrome/Perfetto); implies --hop-rows")] = False,
    stream: Annotated[bool, typer.Option(
        "--stream", help="Keep no per-message history, so memory follows what is in flight, not "
        "what has passed (for long runs): no messages.csv, percentiles within 0.1 %")] = False,
    sets: SetOption = None,
) -> None:
    """Run a scenario (workload, faults) to the end and account for every message."""
    from smtpd_sim.cli.common import counts_text
    from smtpd_sim.cli.progress import progress_bar
    from smtpd_sim.figures.run import few_samples_note, run_figure
    from smtpd_sim.figures.style import save
    from smtpd_sim.observe.sketch import Sketch
    from smtpd_sim.spec.overrides import apply_overrides
    from smtpd_sim.spec.scenario import load_scenario, resolve_scenario
    from smtpd_sim.studies.run import messages_frame, run_scenario, samples_frame, write_results

    spec = apply_overrides(load_scenario(scenario), sets)
    if seed is not None:
        spec = spec.model_copy(update={"seed": seed})
    scen = resolve_scenario(spec)
    hop_rows = hop_rows or trace
    if stream and hop_rows:
        fail("--stream keeps no per-message history; it cannot be combined with --hop-rows or --trace")
        return
    dest = out or Path("results") / f"{spec.name}-{spec.seed}"
    check_output(dest, "--out", directory=True)
    if as_json:
        summary, res = run_scenario(scen, rows=hop_rows, stream=stream)
    else:
        with progress_bar(err_console) as prog:
            task = prog.add_task(f"simulating {spec.name}", total=1.0, simt="")
            summary, res = run_scenario(
                scen, rows=hop_rows, stream=stream,
                progress=lambda t, total: prog.update(task, completed=min(1.0, t / total),
                                                      simt=f"{t / 3600:.2f} h simulated"))
    write_results(summary, res, dest)
    delays = res.delivery_delays
    samples, messages = samples_frame(summary), messages_frame(res, summary.envelopes)
    save(run_figure(summary, samples, messages, delays if isinstance(delays, Sketch) else None),
         dest / "run.png")
    if note := few_samples_note(len(samples), scen.sample_s, summary.simulated_s, has_messages=len(messages) > 0):
        err_console.print(f"note: {note}", highlight=False)
    if trace:
        from smtpd_sim.observe.traces import write_traces

        write_traces(res.hops, res.runs, dest / "imsg.log", dest / "trace.json", scenario=spec.name)
    if as_json:
        sys.stdout.write(json.dumps({**summary.summary(), "results": str(dest)}, default=str) + "\n")
        return
    led = summary.ledger
    console.print(f"[bold]{spec.name}[/bold] ({spec.era}, seed {spec.seed}): "
                  f"{summary.simulated_s / 3600:.2f} h simulated in {summary.wall_s:.1f} s")
    console.print(f"  accepted {led['accepted']}  delivered {led['delivered']}  bounced {led['bounced']}  "
                  f"expired {led['expired']}  still queued {led['queued']}  "
                  f"[{'green' if led['lost'] == 0 else 'red'}]lost {led['lost']}[/]  duplicated {led['duplicated']}"
                  + (f"  redelivered after crash {led['redelivered_after_crash']}"
                     if "redelivered_after_crash" in led else ""))
    console.print(f"  tempfails {summary.tempfails}, delay warnings {summary.warnings}, "
                  f"bounces ({counts_text(summary.bounces)}), crashes {summary.crashes}, "
                  f"refused sessions {summary.refused_sessions}, vanished clients {summary.vanished_clients}")
    files = "config.json, summary.json, " + ("" if stream else "messages.csv, ") + "hops.csv, samples.csv, run.png"
    console.print(f"  results in {dest}/ ({files})")
