"""``smtpd-sim privsep --platform / --fds / --trust``: pledge per process, one compromise on
OpenBSD and on the portable Linux build, the fds crossing each channel, the imsg trust model."""

from __future__ import annotations

import json
import sys
from typing import Any

from smtpd_sim.cli.common import console, fail
from smtpd_sim.spec.topology import Topology


def run_platform(topo: Topology, *, compromise: str | None, platform: str | None, stage: str,
                 fds: bool, trust: bool, as_json: bool) -> None:
    """Compute what was asked and print it (text, or one JSON object)."""
    from smtpd_sim.spec.platform import load_pledge
    from smtpd_sim.studies.privsep import resolve_process
    from smtpd_sim.studies.privsep_platform import (
        DEFAULT_PLATFORM,
        FILTER_PREFIX,
        STAGES,
        fd_passing,
        fds_without_passing,
        filter_blast,
        platform_blast,
        pledge_table,
        trust_model,
    )

    if stage not in STAGES:
        fail(f"unknown stage {stage!r} (expected one of {', '.join(STAGES)})")
    plat = load_pledge().platform_named(platform or DEFAULT_PLATFORM).name
    out: dict[str, Any] = {"era": topo.name}
    if platform is not None and compromise is not None and compromise.startswith(FILTER_PREFIX):
        out["platform_blast"] = filter_blast(topo, compromise, plat)
    elif platform is not None and compromise is not None:
        out["platform_blast"] = platform_blast(topo, compromise, plat, stage)
    elif platform is not None:
        out["pledge"] = pledge_table(topo, plat)
    if fds:
        rows = fd_passing(topo)
        if compromise is not None and not compromise.startswith(FILTER_PREFIX):  # the fds it is handed
            me = resolve_process(topo, compromise)
            rows = [r for r in rows if r["to"] == me]
        out["fds"] = rows
        out["fds_inherited"] = fds_without_passing(topo)
    if trust:
        out["trust"] = trust_model(topo)
    if as_json:
        sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
        return
    if "platform_blast" in out:
        _print_blast(out["platform_blast"])
    if "pledge" in out:
        _print_pledge(out["pledge"])
    if fds:
        print_fds(topo.name, out["fds"], out["fds_inherited"])
    if trust:
        _print_trust(out["trust"])


def _print_pledge(obj: dict[str, Any]) -> None:
    from rich.table import Table

    enf = "enforced" if obj["enforces_pledge"] else "[yellow]not enforced[/yellow] (compiled out)"
    console.print(f"[bold]{obj['era']}[/bold] ({obj['vocabulary']}) on {obj['platform']}: pledge {enf}; "
                  f"pledge() in this era's tree: {'yes' if obj['pledge_in_tree'] else 'no'}")
    console.print(f"  [dim]{obj['era_source']}[/dim]")
    t = Table(show_lines=True)
    for col in ("process", "user / chroot", "promises by stage", "enforced"):
        t.add_column(col)
    for r in obj["processes"]:
        stages = "\n".join(f"{s['stage']}: {' '.join(s['promises'])}" for s in r["stages"]) or "no pledge()"
        t.add_row(f"{r['process']}\n[{', '.join(r['roles'])}]", f"{r['user']}\n{r['chroot'] or 'no chroot'}",
                  stages, "yes" if r["enforced"] else "no")
    console.print(t)
    console.print(f"[dim]{obj['platform_source']}[/dim]")


def _print_blast(obj: dict[str, Any]) -> None:
    pr = " ".join(obj["promises"]) if obj["promises"] is not None else "none (not pledged)"
    console.print(f"[bold]{obj['era']}[/bold]: code execution in {obj['compromised']} on {obj['platform']} "
                  f"({obj['stage']}); promises: {pr}; enforced: {'yes' if obj['enforced'] else 'no'}")
    if obj["exec_escape"]:
        console.print("  [red]exec is allowed[/red]: an exec'd image runs without promises, so every action "
                      "comes back (chroot and uid still bound it)")
    console.print("  its own system calls:")
    for a in obj["own_actions"]:
        mark = "[green]yes[/green]" if a["allowed"] else "[red]no[/red]"
        lim = f" (bounded by {', '.join(a['limited_by'])})" if a["limited_by"] and a["allowed"] else ""
        via = " (after exec)" if a["via_exec"] else ""
        console.print(f"    {mark} {a['action']}{via}{lim}  [dim]{' '.join(a['needs']) or 'no promise'}[/dim]")
    console.print("  reach:")
    for it in obj["reach"]:
        mark = "[green]+[/green]" if it["possible"] else "[red]-[/red]"
        console.print(f"    {mark} {it['item']}")
    removed = obj["removed_by_pledge"]
    console.print(f"  removed by pledge (possible on linux-portable, not here): "
                  f"{'; '.join(removed) if removed else 'nothing'}")


def print_fds(era: str, rows: list[dict[str, Any]], inherited: list[str]) -> None:
    """The fds that cross channels, grouped by channel (also used by ``smtpd-sim topology``)."""
    console.print(f"[bold]{era}[/bold]: file descriptors passed over imsg channels ({len(rows)})")
    for r in rows:
        cond = f" [if {r['condition']}]" if r["condition"] else ""
        setup = " (at setup)" if r["at_setup"] else ""
        console.print(f"  {r['from']} -> {r['to']}: {r['imsg']}{setup}: {r['object']} ({r['mode']}) = "
                      f"{r['capability']}{cond}")
    for line in inherited:
        console.print(f"  [dim]{line}[/dim]")


def _print_trust(obj: dict[str, Any]) -> None:
    console.print(f"[bold]{obj['era']}[/bold]: the imsg trust model ({obj['vocabulary']})")
    pl = obj["payload"]
    console.print(f"  payloads: {pl['encoding']} fields, malformed -> {pl['malformed']}: {pl['checks']}")
    console.print(f"    raw structs: {pl['raw_structs']}  [dim]{pl['source']}[/dim]")
    for r in obj["processes"]:
        who = "tests the sender" if r["checks_sender"] else "[red]dispatches on the type alone[/red]"
        extra = {src: len(v["only_because_unchecked"]) for src, v in r["peers"].items()
                 if v["only_because_unchecked"]}
        tail = (f"; kinds accepted only because it does not test: "
                f"{', '.join(f'{s} {n}' for s, n in extra.items())}") if extra else ""
        console.print(f"  {r['process']}: {who}; accepts from {', '.join(r['peers']) or 'nobody'}{tail}")
        for a in r["trusted_answers"]:
            also = f" (and, untested, from {', '.join(a['also_from'])})" if a["also_from"] else ""
            console.print(f"    trusts {a['kind'] or 'lines'} from {a['from']}{also}: {a['field']} -> "
                          f"{a['consequence']}")
            console.print(f"      check: {a['check']}  [dim]{a['source']}[/dim]")
    c = obj["control"]
    console.print(f"  control socket: mode {c['socket_mode']} (world-writable: {c['world_writable']}), "
                  f"caller identified by {c['peer_credentials']}; {len(c['root_only'])} of {c['commands']} "
                  f"commands need euid 0; any local user: {', '.join(c['any_local_user']) or 'none'}")
    for f in obj["filter_processors"]:
        console.print(f"  filter processor {f['name']}: user {f['user']} (same user as "
                      f"{', '.join(f['same_user_as']) or 'no daemon process'}), chroot {f['chroot'] or 'none'}, "
                      f"pledged: {f['pledged']}; talks to {f['talks_to']} over {', '.join(f['channel'])}")
