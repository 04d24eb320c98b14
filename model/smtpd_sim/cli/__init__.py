"""The ``smtpd-sim`` command: one Typer app, a module per command (parse, call a study, print).

Commands import their studies lazily, so ``smtpd-sim --help`` starts fast and
``SMTPD_SIM_PURE=1`` can still choose the pure-Python hot path before the model loads.
"""

from __future__ import annotations

from typing import Annotated

import typer

from smtpd_sim.cli import (
    bench,
    calibrate,
    compare,
    explore,
    native,
    plugins,
    privsep,
    real,
    run,
    scenarios,
    schema,
    serve,
    sweep,
    topology,
    trace,
)
from smtpd_sim.cli.common import OneLineErrors

app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate the OpenSMTPD daemon as privilege-separated processes exchanging imsgs.",
)
for command in (compare.compare, topology.topology, privsep.privsep, serve.serve, run.run, bench.bench,
                sweep.sweep, calibrate.calibrate, trace.trace, plugins.plugins, scenarios.scenarios,
                schema.schema, explore.explore):
    app.command()(command)
app.add_typer(real.app, name="real")


def _print_version(value: bool) -> None:
    """``--version``: the installed package's version (its metadata, not a constant here)."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"smtpd-sim {version('smtpd-sim')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("smtpd-sim: not installed (no package metadata; pip install .)")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the installed version and exit")] = False) -> None:
    """Simulate the OpenSMTPD daemon as privilege-separated processes exchanging imsgs."""

app.add_typer(native.app, name="native")


def main() -> None:
    """Console-script entry point: the compiled hot path unless it is stale (a source
    edited since the build) or ``SMTPD_SIM_PURE=1`` asks for pure Python."""
    from smtpd_sim.native import prepare

    prepare()  # before any compiled module is imported: an edit is never shadowed
    app()


__all__ = ["app", "main"]
