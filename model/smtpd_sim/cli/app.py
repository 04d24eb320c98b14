"""The ``smtpd-sim`` command (typer + rich).

Bad input never produces a traceback: one line on stderr naming the file, the key and
what was expected, and exit status 2.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from smtpd_sim.spec.calibration import CalibrationError
from smtpd_sim.kernel.process import ModelError
from smtpd_sim.spec.scenario import ScenarioError
from smtpd_sim.spec.topology import ERAS, TopologyError, load_topology
from smtpd_sim.spec.site import SiteError
from smtpd_sim.spec.workload import WorkloadError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate the OpenSMTPD daemon as privilege-separated processes exchanging imsgs.",
)
console = Console()
err_console = Console(stderr=True)

USER_ERRORS = (TopologyError, WorkloadError, SiteError, CalibrationError, ModelError, FileNotFoundError,
               ScenarioError)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> None:
    """One line on stderr, exit status 2."""
    sys.stderr.write(f"smtpd-sim: error: {' '.join(message.split())}\n")  # never wrapped
    sys.stderr.flush()
    raise typer.Exit(2)


def user_errors(fn: F) -> F:
    """Turn the model's input errors into one line and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except USER_ERRORS as e:
            fail(str(e).splitlines()[0] if str(e) else type(e).__name__)

    return wrapper  # type: ignore[return-value]


@app.command()
@user_errors
def compare(
    eras: Annotated[list[str] | None, typer.Option("--eras", help="Eras to compare (default: all four)")] = None,
    workload: Annotated[str, typer.Option(help="Workload name or TOML file")] = "default",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes out)")] = 1,
    calibration: Annotated[str, typer.Option(help="Calibration name or TOML file")] = "research-6.8",
    site: Annotated[str, typer.Option(help="Site name or TOML file")] = "common-case",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG chart here")] = None,
) -> None:
    """Compare the eras: processes, channels, hops, idle time, latency, CPU, memory."""
    from smtpd_sim.studies.compare import compare_eras, print_compare

    selected = _split(eras) or list(ERAS)
    for e in selected:
        load_topology(e)  # validate early: one clear line for a bad era or file
    if as_json:
        result = compare_eras(selected, workload, seed=seed, calibration=calibration, site=site)
    else:
        from rich.progress import Progress

        with Progress(console=err_console, transient=True) as prog:
            task = prog.add_task("simulating", total=2 * len(selected))
            result = compare_eras(selected, workload, seed=seed, calibration=calibration, site=site,
                                  progress=lambda era, what: prog.update(
                                      task, advance=1, description=f"{era}: {what} done"))
    if as_json:
        sys.stdout.write(json.dumps(result, sort_keys=False) + "\n")
    else:
        print_compare(result, console)
    if plot is not None:
        from smtpd_sim.figures.plots import compare_figure, save

        path = save(compare_figure(result), plot)
        (err_console if as_json else console).print(f"chart written to {path}")


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(x for x in v.split(",") if x)
    return out


@app.command()
@user_errors
def topology(
    era: Annotated[str, typer.Argument(help="Era name or topology TOML file")],
    dot: Annotated[Path | None, typer.Option(help="Write Graphviz DOT here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Print an era's processes (roles, user, chroot, privileges) and live channels."""
    from rich.table import Table

    topo = load_topology(era)
    spec = topo.spec
    if as_json:
        sys.stdout.write(json.dumps({
            "era": spec.name, "version": spec.version, "processes": [p.model_dump() for p in spec.process],
            "channels": [list(c) for c in spec.channels], "behaviour": spec.behaviour.model_dump(),
        }) + "\n")
    else:
        t = Table(title=f"{spec.name} ({spec.version}): {spec.title}")
        for col in ("process", "title", "roles", "user", "chroot", "root", "network-facing"):
            t.add_column(col)
        for p in spec.process:
            t.add_row(p.name, p.title, ", ".join(p.roles), p.user, p.chroot or "-",
                      "yes" if p.root else "", "yes" if p.network_facing else "")
        console.print(t)
        console.print(f"{topo.n_processes} processes, {topo.n_channels} live channels "
                      f"({spec.channel_source}):")
        console.print("  " + ", ".join(f"{a}-{b}" for a, b in spec.channels))
    if dot is not None:
        dot.write_text(topo.to_dot())
        (err_console if as_json else console).print(f"DOT written to {dot}")


# Commands living in their own modules register themselves on ``app`` (one import each).
_COMMAND_MODULES = ("smtpd_sim.cli.privsep", "smtpd_sim.cli.serve", "smtpd_sim.cli.run", "smtpd_sim.cli.bench",
                    "smtpd_sim.cli.sweep", "smtpd_sim.cli.calibrate", "smtpd_sim.cli.trace",
                    "smtpd_sim.cli.plugins", "smtpd_sim.cli.real")


def _register_commands() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue  # not written yet
            raise
        module.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
