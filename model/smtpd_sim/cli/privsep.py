"""The ``privsep`` command: the privilege model of an era, blast radius, Heartbleed, merges."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from smtpd_sim.cli.common import SEED, console, fail, user_errors


def _esc(text: Any) -> str:
    """Model text printed through rich: brackets ("[priv]", "[roles]") are words, not markup."""
    from rich.markup import escape

    return escape(str(text))


def _holdings(items: list[dict[str, Any]]) -> str:
    out = []
    for h in items:
        tag = _esc(h["item"])
        if h["when"] == "startup":
            tag += " (startup only)"
        if h["form"] == "dormant":
            tag += " (dormant)"
        if h.get("condition"):
            tag += f" (if {_esc(h['condition'])})"
        out.append(tag)
    return "\n".join(out) or "-"


@user_errors
def privsep(
    era: Annotated[str, typer.Argument(help="Era (with-mfa, without-mfa, pony, pony-6.8) or topology file")],
    compromise: Annotated[str | None, typer.Option(
        help="A process (or a role, for the process hosting it) an attacker runs code in: "
             "what does it reach? With --platform also filter:NAME (a 6.8 filter processor)")] = None,
    scenario: Annotated[str | None, typer.Option(
        help="Named scenario: heartbleed (memory disclosure in the network-facing processes), "
             "parser-overread (also in those parsing attacker-shaped DNS answers), sender-flow (the MAIL FROM address from the network to the root parent's fork)")] = None,
    merge: Annotated[str | None, typer.Option(
        help="Roles to host in one process, comma-separated (e.g. smtp,mta,mda): is it safe?")] = None,
    site: Annotated[str | None, typer.Option(
        help="Site (scenarios/sites name or file) whose local actions are the configured delivery "
             "methods (root through forkmda(), sender-flow, --merge); default common-case")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --merge probe runs (same seed, same bytes out)",
                                      **SEED)] = 1,
    platform: Annotated[str | None, typer.Option(
        help="openbsd (pledge enforced) or linux (the portable build: chroot and uid only, the "
             "default): per-process pledge, or with --compromise what pledge removes")] = None,
    stage: Annotated[str, typer.Option(help="With --platform: setup or serving (the promises then)")] = "serving",
    fds: Annotated[bool, typer.Option("--fds", help="The fds passed over each channel (imsg with SCM_RIGHTS)")] = False,
    trust: Annotated[bool, typer.Option("--trust", help="The imsg trust model: sender tests, payload "
                                        "checks, trusted answers, the control socket")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Privilege separation: who holds which secret, what an attacker in one process reaches."""
    from smtpd_sim.spec.topology import load_topology
    from smtpd_sim.studies.privsep import (
        PrivsepError,
        memory_disclosure,
        merge_check,
        privilege_table,
    )
    from smtpd_sim.studies.privsep_reach import SCENARIOS, reach, sender_flow

    topo = load_topology(era)
    if scenario is not None and scenario not in SCENARIOS:
        fail(f"unknown scenario {scenario!r} (expected one of {', '.join(SCENARIOS)})")
    if merge is not None and (compromise is not None or scenario is not None):
        fail("--merge cannot be combined with --compromise or --scenario")
    if stage != "serving" and platform is None:
        fail("--stage goes with --platform")
    if platform is not None or fds or trust:  # issue 23: smtpd_sim.studies.privsep_platform
        if merge is not None or scenario is not None:
            fail("--platform, --fds and --trust combine with --compromise only")
        from smtpd_sim.cli.privsep_platform import run_platform

        try:
            run_platform(topo, compromise=compromise, platform=platform, stage=stage, fds=fds,
                         trust=trust, as_json=as_json)
        except PrivsepError as e:
            fail(str(e))
        return
    try:
        if merge is not None:
            roles = [r.strip() for r in merge.split(",") if r.strip()]
            result = merge_check(topo, roles, seed=seed, site=site)
            _out(result, as_json, _print_merge)
        elif scenario in ("heartbleed", "parser-overread"):
            br = memory_disclosure(topo, [compromise] if compromise else None, scenario=scenario)
            _out(br.to_dict(), as_json, _print_blast)
        elif scenario == "sender-flow":
            _out(sender_flow(topo, site), as_json, _print_flow)
        elif compromise is not None:
            _out(reach(topo, compromise, site), as_json, _print_blast)
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
                                         ("DNS", r["exposure"] == "parses-network-data"),
                                         ("ANY-SENDER", not r["checks_sender"])) if on)
        t.add_row(_esc(f"{r['process']} {flags}\n[{', '.join(r['roles'])}]"),
                  _esc(f"{r['user']}\n{r['chroot'] or 'no chroot'}"),
                  _holdings(r["secrets"]), _holdings(r["files"]), accepts)
    console.print(t)
    console.print("[dim]NET = network-facing; DNS = accepts no connection but parses DNS answers the "
                  "remote side shapes (the PTR record of the client's own address); ANY-SENDER = its handlers do not test who sent an imsg, so "
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
        console.print(f"    {e['secret']} held by {e['holder']}: {_esc(e['how'] + cond)}  [dim]{_esc(e['source'])}[/dim]")
    console.print(f"  reachable processes: {', '.join(obj['reachable_processes']) or 'none'}")
    console.print(f"  capabilities: {', '.join(obj['capabilities']) or 'none'}")
    console.print(f"  files: {', '.join(obj['reachable_files']) or 'none'}")
    for p in obj["paths"]:
        console.print(f"    {' -> '.join(p['path'])}: {p['imsg']} to {p['receiver']} = {p['capability']}"
                      f" ({p['origin']})  [dim]{_esc(p['source'])}[/dim]")
    if "reach" in obj:
        _print_reach(obj["reach"], obj["site"])


def _print_reach(r: dict[str, Any], site: str) -> None:
    entry = r["entry"]
    console.print(f"  [bold]entry from the network[/bold]: {entry['exposure']}"
                  + "".join(f"; parses {i['item']} shaped by {_esc(i['shaped_by'])}  [dim]{_esc(i['source'])}[/dim]"
                            for i in entry["network_inputs"]))
    root = r["root"]
    verdict = "[red]yes[/red]" if root["reached"] else "[green]no[/green]"
    console.print(f"  [bold]root[/bold] (site {_esc(site)}, local methods "
                  f"{', '.join(root['site_methods']) or 'none'}): {verdict}")
    if root["is_root"]:
        console.print("    the process is root")
    elif root["fork_paths"]:
        console.print(f"    fork request: {' ; '.join(' -> '.join(p) for p in root['fork_paths'])}  "
                      f"[dim]{_esc(root['selector'])}[/dim]")
        for b in root["routes"]:
            state = ("ROOT" if b["root"] else "uid 0 refused" if not b["allow_root"]
                     else "not configured here")
            what = f": {_esc(b['as_root'])}" if b["root"] else ""
            console.print(f"    {b['method']}: {state}{what}  [dim]{_esc(b['source'])}[/dim]")
    else:
        console.print("    no fork request reaches the parent")
    cred = r["credentials"]
    console.print(f"  [bold]credentials[/bold]: {', '.join(sorted({p['capability'] for p in cred['paths']})) or 'none'}"
                  + (f"; in memory: {', '.join(sorted({e['secret'] for e in cred['secrets']}))}"
                     if cred["secrets"] else ""))
    for p in cred["paths"]:
        console.print(f"    {' -> '.join(p['path'])}: {p['imsg']} ({p['origin']})  [dim]{_esc(p['source'])}[/dim]")
    steer = r["rule_steering"]
    console.print(f"  [bold]rule steering[/bold]: {', '.join(sorted({p['capability'] for p in steer})) or 'none'}")
    av = r["availability"]
    console.print(f"  [bold]availability[/bold]: stops the daemon ({_esc(av['how'])}); peers it can end: "
                  f"{', '.join(av['crashable_peers'])}; commands: "
                  f"{', '.join(sorted({p['capability'] for p in av['commands']})) or 'none'}")
    console.print(f"  [bold]secrets[/bold] (own memory or answers): {', '.join(r['secrets']) or 'none'}")


def _print_flow(obj: dict[str, Any]) -> None:
    console.print(f"[bold]{obj['era']}[/bold]: the MAIL FROM address, from the network to the root parent "
                  f"(site {_esc(obj['site'])})")
    e = obj["entry"]
    console.print(f"  enters {e['process']}, checked by {_esc(e['guard'])}  [dim]{_esc(e['source'])}[/dim]")
    for s in obj["steps"]:
        console.print(f"  {s['from']} -> {s['to']}: {s['name']}  [dim]{_esc(s['carries'])}[/dim]")
    if not obj["steps"]:
        console.print("  no observed chain reaches the parent")
    for k in obj["sinks"]:
        mark = "configured" if k["configured"] else "not configured here"
        console.print(f"  {k['method']} ({mark}): runs as {k['runs_as']}"
                      f"{', through /bin/sh -c' if k['shell'] else ', no shell'}  [dim]{_esc(k['source'])}[/dim]")
    console.print(f"  a root-run command with the sender in it is configured: "
                  f"{'yes' if obj['root_sink_configured'] else 'no'}")

def _print_merge(obj: dict[str, Any]) -> None:
    verdict = "[green]safe[/green]" if obj["safe"] else "[red]unsafe[/red]"
    already = " (the era already hosts them in one process)" if obj["already_one_process"] else ""
    console.print(f"[bold]{obj['era']}[/bold]: merging {', '.join(obj['merge'])} "
                  f"(processes {', '.join(obj['processes'])}) is {verdict}{already}")
    console.print(f"  rule: {obj['rule']}")
    for i, b in enumerate(obj["erased_boundaries"]):
        mark = "[red]![/red]" if i in obj["deciding_boundaries"] else " "
        if b["kind"] in ("user", "root", "chroot"):
            desc = f"{b['kind']} differs between {' and '.join(b['between'])}: {b['values']}"
        elif b["kind"] == "imsg":
            desc = _esc(f"{', '.join(b['gained_by'])} gains {b['held_by']}'s imsgs: {'; '.join(b['imsgs'])}")
        else:
            cond = f" (if {b['condition']})" if b["condition"] else ""
            desc = _esc(f"{b['kind']} {b['item']} of {b['held_by']} shared with {', '.join(b['gained_by'])}{cond}")
        console.print(f"  {mark} {desc}")
    for i, q in enumerate(obj["root_requests"]):
        mark = "[red]![/red]" if i in obj["deciding_requests"] else " "
        uid0 = (f"uid 0 served for {', '.join(q['uid0_methods'])}" if q["uid0_methods"]
                else "uid 0 refused")
        was = (f"before: accepted from {', '.join(q['accepted_from_before'])} ({q['exposure_before']})"
               + (f", without a sender test from {', '.join(q['accepted_unchecked_from'])}"
                  if q["accepted_unchecked_from"] else ""))
        console.print(f"  {mark} {q['name']} -> {q['to']} ({q['capability']}, {uid0}) sent from a "
                      f"{q['exposure_after']} process{' [red]for the first time[/red]' if q['new_to_network'] else ''}; "
                      f"{_esc(was)}  [dim]{_esc(q['sender_test'])}; {_esc(q['selector'])}[/dim]")
    saved = obj["hops_saved_per_message"]
    before, after = obj["hops_per_message"]["before"], obj["hops_per_message"]["after"]
    console.print(f"  hops per message: local {before['local']} -> {after['local']} (saves {saved['local']}), "
                  f"relay {before['relay']} -> {after['relay']} (saves {saved['relay']})")
