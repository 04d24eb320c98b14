"""The ``schema`` command: the scenario reference (every key with its type, unit, default,
allowed range and description), generated from the data models (``smtpd_sim.spec.reference``)."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer

from smtpd_sim.cli.common import fail, user_errors


@user_errors
def schema(
    section: Annotated[str | None, typer.Argument(
        help="One section, e.g. workload (default: all; an unknown name lists the sections)",
        show_default=False)] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown tables (for a docs page)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Print the keys of the scenario files: type, unit, default, allowed range, description."""
    from smtpd_sim.spec.reference import (
        reference_markdown,
        reference_rows,
        reference_text,
        sections,
    )

    if section is not None and section not in sections():
        fail(f"schema: unknown section {section!r} (expected one of {', '.join(sections())})")
    if markdown and as_json:
        fail("schema: --markdown and --json exclude each other")
    if as_json:
        rows = reference_rows(section)
        typer.echo(json.dumps({s: [dataclasses.asdict(r) for r in rs] for s, rs in rows.items()}))
    elif markdown:
        typer.echo(reference_markdown(section), nl=False)
    else:
        typer.echo(reference_text(section), nl=False)
