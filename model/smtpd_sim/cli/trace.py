"""The ``trace`` command: one probe session through an era, written as the real daemon's
``-T imsg`` log and as a Chrome trace (Perfetto), so one diff or one viewer serves both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from smtpd_sim.sim.simulation import Simulation


def write_traces(sim: Simulation, imsg_log: Path | None, chrome: Path | None, *, scenario: str = "sim",
                 begin: float | None = 0.0) -> list[str]:
    """Write the run's hops as a ``-T imsg``-style log and/or Chrome trace JSON; the paths written."""
    from smtpd_sim.observe.metrics import trace_frames
    from smtpd_sim.observe.traces import to_chrome_trace, write_imsg_trace

    hops, runs = trace_frames(sim)
    written: list[str] = []
    if imsg_log is not None:
        imsg_log.parent.mkdir(parents=True, exist_ok=True)
        imsg_log.write_text("\n".join(write_imsg_trace(hops, scenario=scenario, begin=begin)) + "\n")
        written.append(str(imsg_log))
    if chrome is not None:
        chrome.parent.mkdir(parents=True, exist_ok=True)
        chrome.write_text(json.dumps(to_chrome_trace(hops, runs)) + "\n")
        written.append(str(chrome))
    return written


def register(app: typer.Typer) -> None:
    from smtpd_sim.cli.app import console, fail, user_errors

    @app.command()
    @user_errors
    def trace(
        era: Annotated[str, typer.Argument(help="Era (topology name or file)")] = "pony-6.8",
        kind: Annotated[str, typer.Option(help="local or relay recipient")] = "local",
        recipients: Annotated[int, typer.Option(min=1, help="Recipients per message")] = 1,
        messages: Annotated[int, typer.Option(min=1, help="Messages in the session")] = 1,
        imsg: Annotated[Path | None, typer.Option(help="Write the -T imsg style log here")] = None,
        chrome: Annotated[Path | None, typer.Option(help="Write Chrome trace JSON here (Perfetto)")] = None,
        seed: Annotated[int, typer.Option(help="Random seed")] = 1,
    ) -> None:
        """One SMTP session through ERA, traced hop by hop (prints the log when no file is given)."""
        from smtpd_sim.observe.metrics import probe_simulation
        from smtpd_sim.observe.traces import write_imsg_trace

        if kind not in ("local", "relay"):
            fail(f"--kind: expected 'local' or 'relay', got {kind!r}")
        sim, t0 = probe_simulation(era, kind, recipients=recipients, messages=messages, seed=seed)
        scenario = f"{era}-{kind}-{recipients}rcpt"
        if imsg is None and chrome is None:
            from smtpd_sim.observe.metrics import trace_frames

            hops, _ = trace_frames(sim)
            for line in write_imsg_trace(hops, scenario=scenario, begin=t0):
                typer.echo(line)
            return
        for path in write_traces(sim, imsg, chrome, scenario=scenario, begin=t0):
            console.print(f"wrote {path}")
