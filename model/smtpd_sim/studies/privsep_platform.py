"""The privsep analysis on a platform (issue 23): pledge per process and stage, the same
compromise answered on OpenBSD (pledge, chroot, uid) and on the portable build on Linux
(chroot and uid only), the fds passed over imsg channels, and the imsg trust model.

Inputs, none of them answers: the topology (processes, users, chroots, channels, who checks
the sender), ``scenarios/platform/*.toml`` (pledge promises, what each system call needs,
fd-carrying imsgs, trusted answers, control commands; each with its C source), the blast
radius of :mod:`smtpd_sim.studies.privsep`, and the imsgs observed by running the model.
What pledge removes is computed: an item is possible under a platform when the actions it
needs are allowed by the process's promises there (or the platform enforces none).
"""

from __future__ import annotations

from typing import Any

from smtpd_sim.spec.platform import OUTSIDE, FdPass, PledgeStage, load_fds, load_pledge, load_trust
from smtpd_sim.spec.topology import Topology
from smtpd_sim.studies.privsep import (
    PrivsepError,
    Traffic,
    blast_radius,
    resolve_process,
    traffic_for,
)

PLATFORMS = ("openbsd", "linux-portable")
DEFAULT_PLATFORM = "linux-portable"  # the Debian package of 6.8.0p2 the project checks against
STAGES = ("setup", "serving")


# ---- pledge per process --------------------------------------------------------------------


def pledge_stages(topo: Topology, process: str) -> list[PledgeStage]:
    """The pledge() stages of one process of ``topo``, oldest first: the era's entries for a
    process of that name, else for the C process hosting the same roles (a merged or renamed
    process matches none: it would need a pledge of its own, so it has none)."""
    p = topo.processes[resolve_process(topo, process)]
    mine = [s for s in load_pledge().stage if s.vocabulary == topo.spec.vocabulary]
    named = [s for s in mine if s.process == p.name and set(s.roles) == set(p.roles)]
    same_roles = [s for s in mine if set(s.roles) == set(p.roles)]
    found = named or same_roles
    return sorted(found, key=lambda s: STAGES.index(s.stage))


def promises_at(topo: Topology, process: str, stage: str = "serving") -> list[str] | None:
    """The promises ``process`` holds at ``stage`` (the latest pledge at or before it), or
    None when it has not pledged by then (unrestricted)."""
    cur: list[str] | None = None
    for s in pledge_stages(topo, process):
        if STAGES.index(s.stage) <= STAGES.index(stage):
            cur = list(s.promises)
    return cur


def pledge_table(topo: Topology, platform: str = DEFAULT_PLATFORM) -> dict[str, Any]:
    """Per process: its user, chroot, and the promises at each stage, with their C source;
    whether the platform enforces them; whether the era's tree has pledge() at all."""
    data = load_pledge()
    plat = data.platform_named(platform)
    era = data.era_of(topo.spec.vocabulary)
    rows = []
    for p in topo.spec.process:
        stages = pledge_stages(topo, p.name)
        rows.append({
            "process": p.name, "roles": list(p.roles), "user": p.user, "chroot": p.chroot or None,
            "stages": [{"stage": s.stage, "promises": list(s.promises), "when": s.when, "source": s.source}
                       for s in stages],
            "enforced": plat.enforces_pledge and bool(stages),
        })
    return {"era": topo.name, "vocabulary": topo.spec.vocabulary, "platform": plat.name,
            "enforces_pledge": plat.enforces_pledge, "platform_source": plat.source,
            "pledge_in_tree": era.pledge_in_tree, "era_source": era.source, "processes": rows}


# ---- what a compromised process can do with its own system calls --------------------------


def _allowed(needs: list[str], never: bool, promises: list[str] | None, enforced: bool) -> bool:
    if not enforced or promises is None:
        return True
    return not never and set(needs) <= set(promises)


def own_actions(topo: Topology, process: str, platform: str = DEFAULT_PLATFORM,
                stage: str = "serving") -> dict[str, Any]:
    """Each system-call action (pledge.toml) of a compromised ``process``: allowed by its
    promises on ``platform`` at ``stage``? Exec'ing regains every action, since the image an
    unpledged exec starts has no promises (execpromises NULL); chroot and uid still bound it."""
    data = load_pledge()
    plat = data.platform_named(platform)
    name = resolve_process(topo, process)
    p = topo.processes[name]
    promises = promises_at(topo, name, stage)
    enforced = plat.enforces_pledge and promises is not None
    direct = {a.name: _allowed(a.needs, a.never_under_pledge, promises, enforced) for a in data.action}
    escape = enforced and direct["exec"]
    rows = []
    for a in data.action:
        ok = direct[a.name] or escape
        limits = []
        if "chroot" in a.limited_by and p.chroot:
            limits.append(f"chroot {p.chroot}")
        if "uid" in a.limited_by and not p.root:
            limits.append(f"user {p.user}")
        rows.append({"action": a.name, "title": a.title, "needs": list(a.needs),
                     "never_under_pledge": a.never_under_pledge, "allowed": ok,
                     "via_exec": ok and not direct[a.name], "limited_by": limits, "source": a.source})
    return {"era": topo.name, "process": name, "platform": plat.name, "stage": stage,
            "promises": promises, "enforced": enforced, "exec_escape": escape,
            "exec_escape_source": data.exec_escape_source if escape else "", "actions": rows}


def _fd_answers(topo: Topology) -> dict[tuple[str, str], FdPass]:
    """(imsg kind, role of the peer answering) -> the fd-carrying answer, for this era."""
    out: dict[tuple[str, str], FdPass] = {}
    for f in load_fds().fd:
        if topo.spec.vocabulary in f.vocabularies and f.kind and not f.per_channel:
            out.setdefault((f.kind, f.sender), f)
    return out


def _reach_items(topo: Topology, process: str, traffic: Traffic | None) -> list[dict[str, Any]]:
    """Every item of the blast radius, with the actions of the compromised process it needs."""
    data = load_pledge()
    br = blast_radius(topo, process, traffic).to_dict()
    name = br["compromised"]
    p = topo.processes[name]
    answers = _fd_answers(topo)
    items: list[dict[str, Any]] = []
    for path in br["paths"]:
        needs = ["use-held-fds"]  # the attacker writes the imsg on a socket it holds
        fd = answers.get((path["imsg"], path["receiver"]))
        if len(path["path"]) == 2 and fd is not None and not fd.grant_without_fd:
            needs.append("receive-fd")  # the capability is an fd the peer hands back
        items.append({"item": f"{path['capability']} via {' -> '.join(path['path'])} ({path['imsg']})",
                      "kind": "imsg", "needs": needs, "source": path["source"]})
    for f in p.files:
        if f.when == "serving" and f.item in data.file_action:
            items.append({"item": f"own file: {f.item}", "kind": "file",
                          "needs": [data.file_action[f.item]], "source": f.source})
    via_imsg = {path["imsg"] for path in br["paths"]}
    for e in br["exposures"]:
        if e["holder"] == name:
            how, needs = "in its own memory", []
        elif e["holder"] == "disk":
            how, needs = "key files on disk", ["read-files"]
        elif any(k in e["how"] for k in via_imsg):
            how, needs = "answered over an imsg", ["use-held-fds"]
        else:
            how, needs = "another process's memory", ["ptrace"]
        cond = f" (if {e['condition']})" if e.get("condition") else ""
        items.append({"item": f"read secret {e['secret']} ({e['holder']}: {how}){cond}", "kind": "secret",
                      "needs": needs, "source": e["source"]})
    for secret in sorted({e["secret"] for e in br["exposures"]}):
        conds = {e.get("condition") or "" for e in br["exposures"] if e["secret"] == secret}
        cond = f" (if {conds.pop()})" if "" not in conds and len(conds) == 1 else ""
        items.append({"item": f"send {secret} off the host directly{cond}", "kind": "exfiltrate",
                      "needs_any": list(data.exfiltrate_via), "needs": [], "source": data.exfiltrate_source})
    items.append({"item": "open new network connections (pivot, exfiltration)", "kind": "network",
                      "needs": ["connect-network"], "source": "pledge.toml action connect-network"})
    return items


def _possible(item: dict[str, Any], allowed: dict[str, bool]) -> bool:
    if item.get("needs_any"):
        return all(allowed[n] for n in item["needs"]) and any(allowed[n] for n in item["needs_any"])
    return all(allowed[n] for n in item["needs"])


def platform_blast(topo: Topology, process: str, platform: str = DEFAULT_PLATFORM,
                   stage: str = "serving", traffic: Traffic | None = None) -> dict[str, Any]:
    """The blast radius of code execution in ``process`` on ``platform``: each reach item,
    possible or not given the process's promises there, and the items pledge removes (those
    possible on the portable Linux build and not here)."""
    name = resolve_process(topo, process)
    tr = traffic or traffic_for(topo)
    here = own_actions(topo, name, platform, stage)
    linux = own_actions(topo, name, "linux-portable", stage)
    ok_here = {a["action"]: a["allowed"] for a in here["actions"]}
    ok_linux = {a["action"]: a["allowed"] for a in linux["actions"]}
    items = _reach_items(topo, name, tr)
    for it in items:
        it["possible"] = _possible(it, ok_here)
        it["possible_on_linux"] = _possible(it, ok_linux)
    return {
        "era": topo.name, "compromised": name, "platform": here["platform"], "stage": stage,
        "promises": here["promises"], "enforced": here["enforced"], "exec_escape": here["exec_escape"],
        "own_actions": here["actions"], "reach": items,
        "removed_by_pledge": [it["item"] for it in items if it["possible_on_linux"] and not it["possible"]],
        "actions_removed": [a["action"] for a in here["actions"] if not a["allowed"]],
    }


FILTER_PREFIX = "filter:"  # --compromise filter:NAME names a 6.8 filter processor


def filter_blast(topo: Topology, ref: str, platform: str = DEFAULT_PLATFORM) -> dict[str, Any]:
    """Code execution in a 6.8 filter processor (``filter:NAME``): it never pledges (forked
    before the parent's pledge, exec'd through system()), runs as its configured user, chrooted
    only if configured; it sees what its phases and reports carry, and lka acts on its lines."""
    name = ref.removeprefix(FILTER_PREFIX)
    f = next((x for x in topo.spec.filter if x.name == name), None)
    if f is None:
        raise PrivsepError(f"{topo.name}: no filter processor {name!r} (filters here: "
                           f"{', '.join(x.name for x in topo.spec.filter) or 'none'})")
    data = load_pledge()
    plat = data.platform_named(platform)
    acts = []
    for a in data.action:
        limits = ([f"chroot {f.chroot}"] if "chroot" in a.limited_by and f.chroot else []) + (
            [f"user {f.user}"] if "uid" in a.limited_by else [])
        acts.append({"action": a.name, "title": a.title, "needs": list(a.needs),
                     "never_under_pledge": a.never_under_pledge, "allowed": True, "via_exec": False,
                     "limited_by": limits, "source": a.source})
    lka = topo.host["lka"]
    trusted = [t for t in load_trust().trusted if topo.spec.vocabulary in t.vocabularies and t.sender == "filter"]
    items: list[dict[str, Any]] = [
        {"item": f"make {lka} act on its lines: {t.consequence}", "kind": "imsg", "needs": ["use-held-fds"],
         "source": t.source} for t in trusted]
    items += [{"item": f"stop the daemon: {t.check}", "kind": "availability", "needs": ["use-held-fds"],
               "source": t.source} for t in trusted if "fatalx" in t.check]
    seen = ", ".join(f.phases) + (" and every report line of the session" if f.reports else "")
    items.append({"item": f"send off the host what lka shows it ({seen})", "kind": "exfiltrate",
                  "needs": ["connect-network"], "source": "lka_filter.c:filter_protocol_query() (phases), lka_filter.c:lka_report_smtp_*() (reports)"})
    same = [p.name for p in topo.spec.process if p.user == f.user]
    for it in items:
        it["possible"] = it["possible_on_linux"] = True
    return {"era": topo.name, "compromised": f"{FILTER_PREFIX}{f.name}", "platform": plat.name, "stage": "serving",
            "promises": None, "enforced": False, "exec_escape": False, "own_actions": acts, "reach": items,
            "removed_by_pledge": [], "actions_removed": [], "user": f.user, "chroot": f.chroot or None,
            "same_user_as": same,
            "source": "smtpd.c:fork_filter_process() (no pledge; fork before smtpd()'s pledge())"}


# ---- fds passed over imsg channels ---------------------------------------------------------


def _end(topo: Topology, role: str) -> str | None:
    if role in OUTSIDE:
        return role
    return topo.host.get(role)


def fd_passing(topo: Topology) -> list[dict[str, Any]]:
    """Every fd that crosses a channel of ``topo`` in its era: sender and receiver
    processes (or an outside program), the imsg, what the fd is and what holding it lets a
    compromised receiver do. Per-channel fds (6.8 IMSG_SETUP_PEER) are expanded over the
    topology's channels; passes inside one process (a merge) cross nothing and are left out."""
    rows: list[dict[str, Any]] = []
    for f in load_fds().fd:
        if topo.spec.vocabulary not in f.vocabularies or (f.needs_filters and not topo.spec.filter):
            continue
        base = {"imsg": f.imsg, "kind": f.kind, "object": f.object, "mode": f.mode,
                "capability": f.capability, "grants": f.grants, "condition": f.condition,
                "at_setup": f.at_setup, "source": f.source}
        src = _end(topo, f.sender)
        if src is None:
            continue
        if f.per_channel:
            for a, b in topo.spec.channels:
                if src in (a, b):
                    continue
                for me, peer in ((a, b), (b, a)):
                    rows.append({**base, "from": src, "to": me, "peer": peer,
                                 "object": f"{f.object} (to {peer})"})
            continue
        dst = _end(topo, f.receiver)
        if dst is None or dst == src:
            continue
        rows.append({**base, "from": src, "to": dst})
    return rows


def fds_without_passing(topo: Topology) -> list[str]:
    """How the channels reach the children when no fd carries them (5.x: inherited)."""
    return sorted({f.inherited_instead for f in load_fds().fd
                   if f.per_channel and topo.spec.vocabulary not in f.vocabularies and f.inherited_instead})


def fd_receivers_lacking_recvfd(topo: Topology) -> list[dict[str, Any]]:
    """Serving-time fds whose receiving process, pledged, lacks ``recvfd`` (on OpenBSD the
    kernel would kill it on receipt): a consistency check of the pledge and fd data."""
    out = []
    for r in fd_passing(topo):
        if r["to"] in OUTSIDE or r["at_setup"]:
            continue
        pr = promises_at(topo, r["to"], "serving")
        if pr is not None and "recvfd" not in pr:
            out.append(r)
    return out


# ---- the imsg trust model ------------------------------------------------------------------


def trust_model(topo: Topology, traffic: Traffic | None = None) -> dict[str, Any]:
    """Per receiving process: does it test the sender, which peers it accepts kinds from
    (observed) and how many only because it does not test; how a malformed payload ends;
    the answers it acts on as sent. Then the control socket's local boundary and, in 6.8
    with filters, the filter processors as processes of the analysis."""
    trust = load_trust()
    vocab = topo.spec.vocabulary
    tr = traffic or traffic_for(topo)
    payload = next(p for p in trust.payload if p.vocabulary == vocab)
    rows = []
    for p in topo.spec.process:
        peers = {}
        for (src, dst), kinds in sorted(tr.accepted.items()):
            if dst != p.name:
                continue
            unchecked = sorted(tr.unchecked.get((src, dst), set()))
            peers[src] = {"kinds": len(kinds), "only_because_unchecked": unchecked}
        answers = []
        for t in trust.trusted:
            if vocab not in t.vocabularies or t.receiver not in p.roles:
                continue
            sender = _end(topo, t.sender)
            if sender is None or sender == p.name or (sender == "filter" and not topo.spec.filter):
                continue
            # a receiver that does not test the sender takes the same imsg from any peer on a channel
            others = [] if p.checks_sender or sender in OUTSIDE else sorted(
                b if a == p.name else a for a, b in topo.spec.channels
                if p.name in (a, b) and sender not in (a, b))
            answers.append({"from": sender, "also_from": others, "kind": t.kind, "field": t.field,
                            "consequence": t.consequence, "check": t.check, "source": t.source})
        rows.append({"process": p.name, "roles": list(p.roles), "checks_sender": p.checks_sender,
                     "source": p.source, "peers": peers, "trusted_answers": answers})
    ctl = next(c for c in trust.control if c.vocabulary == vocab)
    cmds = next(c for c in trust.commands if c.vocabulary == vocab)
    control = {
        "socket_mode": ctl.socket_mode, "world_writable": int(ctl.socket_mode, 8) & 0o002 != 0,
        "peer_credentials": ctl.peer_credentials, "source": ctl.source,
        "commands": len(cmds.rows),
        "root_only": sorted(n for n, root, _ln in cmds.rows if root),
        "any_local_user": sorted(n for n, root, _ln in cmds.rows if not root),
        "commands_source": cmds.source,
    }
    filters = []
    lka = topo.host.get("lka")
    for f in topo.spec.filter:
        lka_peers = [r for r in fd_passing(topo) if r["to"] == lka and r["capability"] == "filter-io"]
        filters.append({
            "name": f.name, "command": f.command, "user": f.user, "chroot": f.chroot or None,
            "pledged": False, "same_user_as": [p.name for p in topo.spec.process if p.user == f.user], "talks_to": lka, "channel": [r["imsg"] for r in lka_peers],
            "lka_trusts": [a for r in rows if r["process"] == lka for a in r["trusted_answers"]
                           if a["from"] == "filter"],
            "source": "smtpd.c:fork_filter_process(): fork before smtpd()'s pledge(), chroot if "
                      "configured, setresuid(user, default SMTPD_USER), system(\"exec <command>\")",
        })
    return {"era": topo.name, "vocabulary": vocab,
            "payload": {"encoding": payload.encoding, "malformed": payload.malformed,
                        "checks": payload.checks, "raw_structs": payload.raw_structs,
                        "source": payload.source},
            "processes": rows, "control": control, "filter_processors": filters,
            "any_sender_processes": [r["process"] for r in rows if not r["checks_sender"]]}
