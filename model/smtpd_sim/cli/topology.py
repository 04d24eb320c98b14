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
    from rich.markup import escape
    from rich.table import Table

    from smtpd_sim.studies.privsep_platform import fd_passing, fds_without_passing

    check_output(dot, "--dot")
    topo = load_topology(era)
    spec = topo.spec
    fds = fd_passing(topo)  # issue 23: the fds crossing the channels (scenarios/platform/fds.toml)
    if as_json:
        sys.stdout.write(json.dumps({
            "era": spec.name, "version": spec.version, "processes": [p.model_dump() for p in spec.process],
            "channels": [list(c) for c in spec.channels], "behaviour": spec.behaviour.model_dump(),
            "fds": fds, "fds_inherited": fds_without_passing(topo),
        }) + "\n")
    else:
        t = Table(title=escape(f"{spec.name} ({spec.version}): {spec.title}"))
        for col in ("process", "title", "roles", "user", "chroot", "root", "network-facing"):
            t.add_column(col)
        for p in spec.process:
            # titles are words, not markup: 5.x's parent is "[priv]" (rich.markup.escape)
            t.add_row(p.name, escape(p.title), ", ".join(p.roles), p.user, escape(p.chroot or "-"),
                      "yes" if p.root else "",
                      # issue 23: lka accepts no connection but parses the DNS answers remote parties shape
                      "yes" if p.network_facing else ", ".join(i.item for i in p.network_inputs))
        console.print(t)
        console.print(f"{topo.n_processes} processes, {topo.n_channels} live channels "
                      f"({escape(spec.channel_source)}):")
        console.print("  " + ", ".join(f"{a}-{b}" for a, b in spec.channels))
        from smtpd_sim.cli.privsep_platform import print_fds

        print_fds(spec.name, fds, fds_without_passing(topo))
    if dot is not None:
        dot.write_text(topo.to_dot())
        (err_console if as_json else console).print(f"DOT written to {dot}")
