"""The ``trace`` command: one probe session through an era, written as the real daemon's
``-T imsg`` log and as a Chrome trace (Perfetto), so one diff or one viewer serves both."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smtpd_sim.cli.common import SEED, check_output, console, fail, user_errors
from smtpd_sim.spec.scenario import DEFAULT_ERA


@user_errors
def trace(
    era: Annotated[str, typer.Argument(help="Era (topology name or file)")] = DEFAULT_ERA,
    kind: Annotated[str, typer.Option(help="local or relay recipient")] = "local",
    recipients: Annotated[int, typer.Option(min=1, max=2000, help="Recipients per message (as workload mix.recipients)")] = 1,
    messages: Annotated[int, typer.Option(min=1, max=1000, help="Messages in the session (as workload mix.messages)")] = 1,
    imsg: Annotated[Path | None, typer.Option(help="Write the -T imsg style log here")] = None,
    chrome: Annotated[Path | None, typer.Option(help="Write Chrome trace JSON here (Perfetto)")] = None,
    seed: Annotated[int, typer.Option(help="Random seed", **SEED)] = 1,
) -> None:
    """One SMTP session through ERA, traced hop by hop (prints the log when no file is given)."""
    from smtpd_sim.observe.metrics import trace_hops
    from smtpd_sim.observe.traces import write_imsg_trace, write_traces
    from smtpd_sim.studies.probe import probe_result

    if kind not in ("local", "relay"):
        fail(f"--kind: expected 'local' or 'relay', got {kind!r}")
    check_output(imsg, "--imsg")
    check_output(chrome, "--chrome")
    res = probe_result(era, kind, recipients=recipients, messages=messages, seed=seed)
    scenario = f"{era}-{kind}-{recipients}rcpt"
    if imsg is None and chrome is None:
        for line in write_imsg_trace(trace_hops(res.hops), scenario=scenario, begin=res.t0):
            typer.echo(line)
        return
    for path in write_traces(res.hops, res.runs, imsg, chrome, scenario=scenario, begin=res.t0):
        console.print(f"wrote {path}")
