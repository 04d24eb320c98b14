"""The ``privsep`` command: the privilege model of an era, blast radius, Heartbleed, merges."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from smtpd_sim.cli.common import SEED, console, fail, user_errors


def _holdings(items: list[dict[str, Any]]) -> str:
    out = []
    for h in items:
        tag = h["item"]
        if h["when"] == "startup":
            tag += " (startup only)"
        if h["form"] == "dormant":
            tag += " (dormant)"
        if h.get("condition"):
            tag += f" (if {h['condition']})"
        out.append(tag)
    return "\n".join(out) or "-"


@user_errors
def privsep(
    era: Annotated[str, typer.Argument(help="Era (with-mfa, without-mfa, pony, pony-6.8) or topology file")],
    compromise: Annotated[str | None, typer.Option(
        help="A process (or a role, for the process hosting it) an attacker runs code in: "
             "what does it reach?")] = None,
    scenario: Annotated[str | None, typer.Option(
        help="Named scenario: heartbleed (memory disclosure in the network-facing processes)")] = None,
    merge: Annotated[str | None, typer.Option(
        help="Roles to host in one process, comma-separated (e.g. smtp,mta,mda): is it safe?")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --merge probe runs (same seed, same bytes out)",
                                      **SEED)] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Privilege separation: who holds which secret, what an attacker in one process reaches."""
    from smtpd_sim.spec.topology import load_topology
    from smtpd_sim.studies.privsep import (
        SCENARIOS,
        PrivsepError,
        blast_radius,
        memory_disclosure,
        merge_check,
        privilege_table,
    )

    topo = load_topology(era)
    if scenario is not None and scenario not in SCENARIOS:
        fail(f"unknown scenario {scenario!r} (expected one of {', '.join(SCENARIOS)})")
    if merge is not None and (compromise is not None or scenario is not None):
        fail("--merge cannot be combined with --compromise or --scenario")
    try:
        if merge is not None:
            roles = [r.strip() for r in merge.split(",") if r.strip()]
            result = merge_check(topo, roles, seed=seed)
            _out(result, as_json, _print_merge)
        elif scenario == "heartbleed":
            br = memory_disclosure(topo, [compromise] if compromise else None)
            _out(br.to_dict(), as_json, _print_blast)
        elif compromise is not None:
            _out(blast_radius(topo, compromise).to_dict(), as_json, _print_blast)
        else:
            rows = privilege_table(topo)
            _out({"era": topo.name, "processes": rows}, as_json, _print_table)
    except PrivsepError as e:
        fail(str(e))

def _out(obj: dict[str, Any], as_json: bool, printer: Any) -> None:
    if as_json:
        sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    else:
        printer(obj)

def _print_table(obj: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title=f"privilege model of {obj['era']}", show_lines=True)
    for col in ("process", "user / chroot", "secrets", "files",
                "peer: imsg kinds it accepts from this process (observed), what they grant"):
        t.add_column(col)
    for r in obj["processes"]:
        accepts = "\n".join(
            f"{dst}: {len(k)}" + (f" ({', '.join(r['peers_grant'][dst])})" if r["peers_grant"][dst] else "")
            for dst, k in r["peers_accept"].items()) or "-"
        flags = " ".join(f for f, on in (("ROOT", r["root"]), ("NET", r["network_facing"]),
                                         ("ANY-SENDER", not r["checks_sender"])) if on)
        t.add_row(f"{r['process']} {flags}\n[{', '.join(r['roles'])}]",
                  f"{r['user']}\n{r['chroot'] or 'no chroot'}",
                  _holdings(r["secrets"]), _holdings(r["files"]), accepts)
    console.print(t)
    console.print("[dim]NET = network-facing; ANY-SENDER = its handlers do not test who sent an imsg, so "
                  "every peer may send every type it handles; --json lists every imsg kind and each "
                  "fact's source[/dim]")

def _print_blast(obj: dict[str, Any]) -> None:
    who = obj["compromised"]
    who = ", ".join(who) if isinstance(who, list) else who
    console.print(f"[bold]{obj['era']}[/bold]: {obj['scenario']} in {who or '(no network-facing process)'}")
    secrets = ", ".join(obj["exposed_secrets"]) or "none"
    console.print(f"  exposed secrets: [{'red' if obj['exposed_secrets'] else 'green'}]{secrets}[/]")
    if obj["conditional_secrets"]:
        console.print(f"  exposed only under some configurations: {', '.join(obj['conditional_secrets'])}")
    for e in obj["exposures"]:
        cond = f" (if {e['condition']})" if e["condition"] else ""
        console.print(f"    {e['secret']} held by {e['holder']}: {e['how']}{cond}  [dim]{e['source']}[/dim]")
    console.print(f"  reachable processes: {', '.join(obj['reachable_processes']) or 'none'}")
    console.print(f"  capabilities: {', '.join(obj['capabilities']) or 'none'}")
    console.print(f"  files: {', '.join(obj['reachable_files']) or 'none'}")
    for p in obj["paths"]:
        console.print(f"    {' -> '.join(p['path'])}: {p['imsg']} to {p['receiver']} = {p['capability']}"
                      f" ({p['origin']})  [dim]{p['source']}[/dim]")

def _print_merge(obj: dict[str, Any]) -> None:
    verdict = "[green]safe[/green]" if obj["safe"] else "[red]unsafe[/red]"
    console.print(f"[bold]{obj['era']}[/bold]: merging {', '.join(obj['merge'])} "
                  f"(processes {', '.join(obj['processes'])}) is {verdict}")
    console.print(f"  rule: {obj['rule']}")
    for i, b in enumerate(obj["erased_boundaries"]):
        mark = "[red]![/red]" if i in obj["deciding_boundaries"] else " "
        if b["kind"] in ("user", "root", "chroot"):
            desc = f"{b['kind']} differs between {' and '.join(b['between'])}: {b['values']}"
        elif b["kind"] == "imsg":
            desc = f"{', '.join(b['gained_by'])} gains {b['held_by']}'s imsgs: {'; '.join(b['imsgs'])}"
        else:
            cond = f" (if {b['condition']})" if b["condition"] else ""
            desc = f"{b['kind']} {b['item']} of {b['held_by']} shared with {', '.join(b['gained_by'])}{cond}"
        console.print(f"  {mark} {desc}")
    saved = obj["hops_saved_per_message"]
    before, after = obj["hops_per_message"]["before"], obj["hops_per_message"]["after"]
    console.print(f"  hops per message: local {before['local']} -> {after['local']} (saves {saved['local']}), "
                  f"relay {before['relay']} -> {after['relay']} (saves {saved['relay']})")
