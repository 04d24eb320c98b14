"""The ``scenarios`` command: the shipped scenarios and their parts (eras, sites, workloads,
calibrations, platform data) and the fault kinds, each with its one-line description.

The descriptions are read from the files themselves (their ``description`` key, an era's
``title``, else their first comment line: ``smtpd_sim.spec.reference.describe_file``).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from smtpd_sim.cli.common import user_errors


@user_errors
def scenarios(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """List the shipped scenarios, eras, sites, workloads, calibrations and fault kinds."""
    from smtpd_sim.spec.reference import shipped

    groups = shipped()
    if as_json:
        typer.echo(json.dumps(groups))
        return
    for group, g in groups.items():
        folder = f"scenarios/{g['folder']}" if g["folder"] not in ("", ".") else (
            "scenarios" if g["folder"] == "." else "")
        typer.echo(f"{group} ({folder + '; ' if folder else ''}{g['use']})")
        width = max((len(i["name"]) for i in g["items"]), default=0)
        for item in g["items"]:
            typer.echo(f"  {item['name']:<{width}}  {item['description']}")
        typer.echo("")
