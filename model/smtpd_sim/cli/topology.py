"""The ``topology`` command: an era's processes, their privileges, and its live channels."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from smtpd_sim.cli.common import check_output, console, err_console, user_errors
from smtpd_sim.spec.topology import load_topology


@user_errors
def topology(
    era: Annotated[str, typer.Argument(help="Era name or topology TOML file")],
    dot: Annotated[Path | None, typer.Option(help="Write Graphviz DOT here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Print an era's processes (roles, user, chroot, privileges) and live channels."""
    from rich.table import Table

    check_output(dot, "--dot")
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
