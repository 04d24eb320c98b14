"""The ``plugins`` command: the table backends and roles this installation knows, where
each comes from (built in, or which installed package added it) and the defaults' sources."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from smtpd_sim.cli.common import console, user_errors


@user_errors
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Table backends and roles, built in and added by installed packages (entry points)."""
    from rich.table import Table

    from smtpd_sim.spec.backends import BUILTIN, backends
    from smtpd_sim.spec.plugins import BUILTIN_ROLES, plugin_errors, plugin_roles

    builtin_tables = {cls.name for cls in BUILTIN}
    tables = []
    for name, b in sorted(backends(refresh=True).items()):
        if isinstance(b, str):
            tables.append({"name": name, "origin": "plugin", "error": b})
            continue
        d = b.defaults()
        tables.append({"name": name, "origin": "built in" if name in builtin_tables else "plugin",
                       "external": b.external, "cpu_s": d.get("cpu_s"), "lookup_s": d.get("lookup_s"),
                       "concurrency": d.get("concurrency"), "source": d.get("source", "")})
    roles = [{"name": r, "origin": "built in"} for r in BUILTIN_ROLES]
    roles += [{"name": r, "origin": f"plugin ({cls.__module__})"} for r, cls in sorted(plugin_roles(True).items())]
    roles += [{"name": r, "origin": "plugin", "error": e} for r, e in sorted(plugin_errors().items())]
    if as_json:
        typer.echo(json.dumps({"tables": tables, "roles": roles}, sort_keys=True))
        return
    t = Table(title="table backends (\\[tables.<name>] backend = ...)")
    for col in ("backend", "origin", "where", "cpu per lookup", "wait per lookup", "concurrency", "source"):
        t.add_column(col)
    for r in tables:
        if "error" in r:
            t.add_row(r["name"], r["origin"], "", "", "", "", f"[red]{r['error']}[/]")
            continue
        wait = "user must set lookup_s" if r["lookup_s"] is None else f"{r['lookup_s'] * 1e6:.0f} µs"
        t.add_row(r["name"], r["origin"], "table process" if r["external"] else "in the lka",
                  f"{(r['cpu_s'] or 0) * 1e6:.0f} µs", wait, str(r["concurrency"]), r["source"])
    console.print(t)
    console.print("roles: " + ", ".join(f"{r['name']} ({r['origin']})" for r in roles if "error" not in r))
    for r in roles:
        if "error" in r:
            console.print(f"[red]{r['error']}[/]")
