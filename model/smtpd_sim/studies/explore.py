"""The teaching page's data (``smtpd-sim explore``): every fact it shows, from running the model.

Per era: one message of each kind (local, relay, a bounce) run with the recorder on, its
hops in the order the trace has (IMSG name, payload size, simulated time, the C functions
that compose and handle it) and the SMTP dialog, each reply with the hops on its causal
chain; the process graph (``privsep`` and ``topology``'s facts: user, chroot, root,
network-facing, secrets, channels); what code execution and a memory disclosure in each
process reach (``privsep --compromise``, Heartbleed); the merges a course asks about
(``privsep --merge``); and between eras the numbers ``compare`` prints. The tour's text and
the exercises' answers are built from those numbers here, not typed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from smtpd_sim.observe.metrics import reply_steps
from smtpd_sim.sim.runner import probe
from smtpd_sim.spec.calibration import Calibration, load_calibration
from smtpd_sim.spec.faults import Fault
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION, DEFAULT_SITE, DEFAULT_WORKLOAD
from smtpd_sim.spec.site import SiteSpec, load_site
from smtpd_sim.spec.topology import ERAS, Topology, load_topology
from smtpd_sim.spec.workload import WorkloadSpec, load_workload
from smtpd_sim.studies.compare import compare_eras
from smtpd_sim.studies.explore_csource import describe, source_tag
from smtpd_sim.studies.privsep import memory_disclosure, merge_check, privilege_table
from smtpd_sim.studies.privsep_reach import reach
from smtpd_sim.studies.probe import probe_scenario, probe_workload, run_probe

MESSAGE_KINDS = ("local", "relay", "bounce")
# the four eras, and 6.8 with a filtered listener (one filter processor, MFA's successor:
# scenarios/topologies/pony-6.8-filters.toml), so the page shows what filters cost in 6.8
DEFAULT_ERAS = (*ERAS, "pony-6.8-filters")
# the merges a course asks about (issue 20); an era's MFA merge is added when it has one
MERGES: tuple[tuple[str, ...], ...] = (("smtp", "mta", "mda"), ("smtp", "lka"), ("queue", "scheduler"))
# imsgs of 6.8's FCrDNS (smtp_session.c:smtp_getnameinfo_cb() -> resolver_getaddrinfo())
FCRDNS_PREFIXES = ("IMSG_GETNAMEINFO", "IMSG_GETADDRINFO")
# the bounce: one relayed recipient the remote MX refuses with 550 at RCPT; the sender is a
# local user, so the bounce comes back through the daemon's own smtp session to her mailbox
BOUNCE_SENDER_USER = "alice"
BOUNCE_CODE = 550

Progress = Callable[[str, str], None] | None


@dataclass(frozen=True)
class Parts:
    """What the runs share besides the era: the calibration and site of every run, the
    workload of compare's load runs, the seed (a scenario's, or the defaults)."""

    calibration: Calibration
    site: SiteSpec
    workload: WorkloadSpec
    seed: int = 1

    @classmethod
    def default(cls, seed: int = 1) -> Parts:
        return cls(load_calibration(DEFAULT_CALIBRATION), load_site(DEFAULT_SITE),
                   load_workload(DEFAULT_WORKLOAD), seed)


def bounce_workload(local_domain: str = "local.test") -> WorkloadSpec:
    """The relay probe from a local sender (her address is where the bounce goes)."""
    w = probe_workload("relay")
    return w.model_copy(update={"name": "probe-bounce", "mix": w.mix.model_copy(
        update={"sender": f"{BOUNCE_SENDER_USER}@{local_domain}"})})


def message_result(topo: Topology, kind: str, parts: Parts) -> tuple[Any, dict[int, str]]:
    """One probe session of ``kind`` (local, relay, bounce) run to quiescence, rows recorded;
    with each hop's payload summary (by hop id)."""
    kw: dict[str, Any] = {"seed": parts.seed, "calibration": parts.calibration, "site": parts.site}
    if kind == "bounce":
        fault = Fault(kind="mx_reply", phase="rcpt", code=BOUNCE_CODE, rate=1.0)
        scen = probe_scenario(topo, workload=bounce_workload(), **kw).replace(faults=(fault,))
    else:
        scen = probe_scenario(topo, kind, **kw)
    runner = probe(scen, payloads=True)
    return runner.result(), runner.sim.recorder.payloads or {}


def _marks(topo: Topology, src: str, dst: str, name: str) -> list[str]:
    mfa = topo.host.get("mfa")
    marks = []
    if mfa is not None and mfa in (src, dst) and topo.host["smtp"] in (src, dst):
        marks.append("mfa")
    if name.startswith(FCRDNS_PREFIXES):
        marks.append("fcrdns")
    if "FILTER" in name or "REPORT" in name:
        marks.append("filter")
    return marks


def message_trace(topo: Topology, kind: str, parts: Parts | None = None) -> dict[str, Any]:
    """The non-stat hops of one message in the order the trace has them, the SMTP replies with
    the hops on each one's causal chain, and counts (stat hops apart)."""
    res, payloads = message_result(topo, kind, parts or Parts.default())
    runs = {r.id: r for r in res.runs}
    replies_ev = [e for e in res.events if e.event == "reply"]
    hops = [h for h in res.hops if not h.stat]
    starts = [x for x in ([hops[0].sent_time] if hops else []) + ([replies_ev[0].time] if replies_ev else [])]
    origin = min(starts) if starts else res.t0
    index = {h.id: i for i, h in enumerate(hops)}

    def sender(cause: int) -> dict[str, Any]:
        node, seen = cause, 0
        first: dict[str, Any] | None = None
        while node and seen < 1000:
            seen += 1
            r = runs.get(node)
            if r is None:
                break
            d = describe(topo, r.process, r.key, r.is_hop)
            first = first or d
            if d["name"]:
                return d if d is first else {**d, "event": first["event"]}
            node = r.cause if runs.get(r.cause) and runs[r.cause].process == r.process else 0
        return first or {"name": "", "file": "", "url": "", "doc": "", "role": "", "event": ""}

    by_id = {h.id: h for h in hops}

    def answer_to(h: Any) -> int | None:
        """The hop this one answers: the same kind, back the other way, that caused it (through
        the sender's own events in between, e.g. lka's DNS answer arriving)."""
        r = runs.get(h.cause)
        while r is not None and not r.is_hop and r.process == h.from_proc and r.cause in runs:
            r = runs[r.cause]
        q = by_id.get(r.id) if r is not None and r.is_hop else None
        if q is not None and q.kind == h.kind and (q.from_proc, q.to_proc) == (h.to_proc, h.from_proc):
            return index[q.id]
        return None

    out_hops = []
    for i, h in enumerate(hops):
        out_hops.append({
            "i": i, "t": round(h.sent_time - origin, 9), "t_recv": round(h.time - origin, 9),
            "from": h.from_proc, "to": h.to_proc, "imsg": h.imsg_name, "kind": h.kind,
            "len": h.len, "payload": payloads.get(h.id, ""), "fd": bool(h.fd), "marks": _marks(topo, h.from_proc, h.to_proc, h.imsg_name),
            "sender": sender(h.cause), "handler": describe(topo, h.to_proc, h.kind, True)
            if h.to_proc in topo.processes else {"name": "", "file": "", "url": "", "doc": "",
                                                  "role": "", "event": "filter processor"},
            "reply": None, "answer_to": answer_to(h),
        })
    parent = {r.id: (r.cause, r.is_hop) for r in res.runs}
    steps = reply_steps(1, 1)
    sessions: dict[int, int] = {}
    order: dict[int, int] = {}  # session -> 0 for the client's, 1.. for the daemon's own (bounces)
    replies = []
    for e in replies_ev:
        chain: list[int] = []
        node, seen = e.cause, 0
        while node and seen < 10_000:
            seen += 1
            up, is_hop = parent.get(node, (0, False))
            if is_hop and node in index:
                chain.append(index[node])
            node = up
        n = sessions.get(e.session, 0)
        sessions[e.session] = n + 1
        which = order.setdefault(e.session, len(order))
        step = steps[n] if n < len(steps) else f"reply {n}"
        if which:  # the bounce's own session: the daemon talks to itself (bounce.c)
            step = f"bounce session: {step}"
        r_index = len(replies)
        for j in chain:
            if out_hops[j]["reply"] is None:
                out_hops[j]["reply"] = r_index
        replies.append({"step": step, "code": str(e.detail), "t": round(e.time - origin, 9),
                        "hops": sorted(chain), "session": which,
                        "round_trips": len(chain) / 2})
    stat = sum(1 for h in res.hops if h.stat)
    return {"kind": kind, "hops": out_hops, "replies": replies, "n_hops": len(out_hops),
            "stat_hops": stat, "n_mfa": sum("mfa" in h["marks"] for h in out_hops),
            "n_fcrdns": sum("fcrdns" in h["marks"] for h in out_hops),
            "n_filter": sum("filter" in h["marks"] for h in out_hops),
            "span_s": round(res.simulated_s, 9), "ledger": res.ledger, "filter_lines": res.filter_lines,
            "bounces": dict(res.bounces) if isinstance(res.bounces, dict) else res.bounces}


def process_facts(topo: Topology) -> dict[str, Any]:
    """The process graph: ``privsep``'s privilege table and ``topology``'s processes and channels."""
    rows = {r["process"]: r for r in privilege_table(topo)}
    procs = []
    for p in topo.spec.process:
        r = rows[p.name]
        procs.append({
            "name": p.name, "title": p.title, "roles": list(p.roles), "user": p.user,
            "chroot": p.chroot or None, "root": p.root, "network_facing": p.network_facing,
            "exposure": p.exposure, "network_inputs": [i.item for i in p.network_inputs],
            "secrets": r["secrets"], "files": r["files"],
            "serving_secrets": sorted({h["item"] for h in r["secrets"] if h["when"] == "serving"}),
            "peers_accept": {d: len(k) for d, k in r["peers_accept"].items()},
            "peers_grant": r["peers_grant"], "checks_sender": p.checks_sender,
        })
    return {"processes": procs, "channels": [list(c) for c in topo.spec.channels],
            "channel_source": topo.spec.channel_source, "n_processes": topo.n_processes,
            "n_channels": topo.n_channels}


def _blast(d: dict[str, Any]) -> dict[str, Any]:
    keep = ("scenario", "compromised", "exposed_secrets", "conditional_secrets", "reachable_processes",
            "capabilities", "reachable_files")
    out = {k: d[k] for k in keep}
    out["exposures"] = [{k: e.get(k) for k in ("secret", "holder", "how", "condition", "source")}
                        for e in d["exposures"]]
    out["paths"] = [{k: p.get(k) for k in ("path", "imsg", "receiver", "capability", "origin", "source")}
                    for p in d["paths"]]
    if "reach" in d:
        out["root_reached"] = bool(d["reach"]["root"]["reached"])
        out["secrets"] = d["reach"]["secrets"]
    return out


def compromises(topo: Topology, site: SiteSpec | None = None) -> dict[str, Any]:
    """Per process: code execution (``privsep --compromise``) and a memory disclosure of it;
    and Heartbleed in the era's network-facing processes (``privsep --scenario heartbleed``)."""
    per = {p.name: {"code": _blast(reach(topo, p.name, site)),
                    "memory": _blast(memory_disclosure(topo, [p.name]).to_dict())}
           for p in topo.spec.process}
    return {"processes": per, "heartbleed": _blast(memory_disclosure(topo, None, scenario="heartbleed").to_dict())}


def merges(topo: Topology, *, seed: int = 1, site: SiteSpec | None = None) -> list[dict[str, Any]]:
    """``privsep --merge`` for the course's merges (and smtp+mfa where the era has an mfa)."""
    wanted = list(MERGES) + ([("smtp", "mfa")] if "mfa" in topo.host else [])
    out = []
    for roles in wanted:
        if not all(r in topo.host for r in roles):
            continue
        m = merge_check(topo, list(roles), seed=seed, site=site)
        out.append({k: m[k] for k in ("merge", "processes", "safe", "already_one_process", "erased_boundaries",
                                      "deciding_boundaries", "hops_saved_per_message", "hops_per_message",
                                      "rule")}
                   | {"root_requests": [{k: q[k] for k in ("name", "to", "capability", "new_to_network")}
                                        for q in m["root_requests"]], "deciding_requests": m["deciding_requests"]})
    return out


def era_data(era: str, topo: Topology, parts: Parts, progress: Progress = None) -> dict[str, Any]:
    """Everything the page shows about one era."""
    tag, folder = source_tag(topo)
    messages = {}
    for kind in MESSAGE_KINDS:
        messages[kind] = message_trace(topo, kind, parts)
        if progress:
            progress(era, f"{kind} message")
    d = {"era": era, "version": topo.spec.version, "title": topo.spec.title, "tag": tag, "src_folder": folder,
         "host": dict(topo.host), "graph": process_facts(topo), "messages": messages}
    d["compromise"] = compromises(topo, parts.site)
    if progress:
        progress(era, "compromises")
    d["merges"] = merges(topo, seed=parts.seed, site=parts.site)
    if progress:
        progress(era, "merges")
    return d


def _between(result: dict[str, Any]) -> dict[str, Any]:
    """``compare``'s numbers, as it prints them."""
    keep = ("era", "version", "processes", "channels", "hops_per_message", "stat_hops_per_message",
            "mfa_hops_per_message", "mfa_share", "round_trips", "critical_path_hops", "idle_fraction",
            "latency_s", "throughput_msg_s", "memory_bytes", "cpu_ms_per_message")
    steps = list(result["eras"][0]["round_trips"]) if result["eras"] else []  # the dialog's order
    return {"workload": result["workload"], "seed": result["seed"], "cores": result["cores"], "steps": steps,
            "calibration": result["calibration"], "eras": [{k: e[k] for k in keep} for e in result["eras"]]}


def explore_data(eras: Sequence[str] | None = None, *, parts: Parts | None = None, progress: Progress = None,
                 topologies: Sequence[Topology] | None = None, scenario: str = "") -> dict[str, Any]:
    """The page's data for ``eras`` (default: the four and 6.8 with a filter): per era, the messages, graph,
    compromises and merges; between them ``compare``; the tour and the exercises. ``parts``:
    the calibration, site, workload and seed (default: compare's defaults, seed 1)."""
    parts = parts or Parts.default()
    names = list(eras or DEFAULT_ERAS)
    topos = list(topologies) if topologies is not None else [load_topology(e) for e in names]
    per = [era_data(n, t, parts, progress) for n, t in zip(names, topos, strict=True)]
    between = _between(compare_eras(names, parts.workload, seed=parts.seed, calibration=parts.calibration,
                                    site=parts.site, topologies=topos,
                                    progress=(lambda e, w: progress(e, f"compare {w}")) if progress else None))
    data = {"seed": parts.seed, "scenario": scenario, "message_kinds": list(MESSAGE_KINDS), "calibration": parts.calibration.name,
            "site": parts.site.hostname, "eras": per, "compare": between}
    data["exercises"] = exercises(data, topos, parts)
    data["tour"] = tour(data)
    return data


# ---- the tour and the exercises: text around the model's numbers -------------------------


def _era(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((e for e in data["eras"] if e["era"] == name), None)


def _holders(era: dict[str, Any], item: str) -> list[str]:
    return [p["name"] for p in era["graph"]["processes"] if item in p["serving_secrets"]]


def _named(era: dict[str, Any], procs: list[str]) -> str:
    """``ca ("klondike")``: processes with the title ps shows for them."""
    titles = {p["name"]: p["title"] for p in era["graph"]["processes"]}
    return ", ".join(f"{n} (“{titles[n]}”)" if titles.get(n) and titles[n] != n else n for n in procs)


def _net_facing(era: dict[str, Any]) -> list[str]:
    return [p["name"] for p in era["graph"]["processes"] if p["network_facing"]]


def _same_jail(era: dict[str, Any] | None) -> str:
    """Whether smtp, mta and mda ran as one user in one chroot before the merge (the era's facts)."""
    if era is None:
        return ""
    procs = {p["name"]: p for p in era["graph"]["processes"]}
    who = [procs[era["host"][r]] for r in ("smtp", "mta", "mda") if r in era["host"]]
    users, chroots = {p["user"] for p in who}, {p["chroot"] for p in who}
    if len(users) == 1 and len(chroots) == 1:
        return (f" Before, in {era['era']}, the three ran as user {users.pop()} in chroot "
                f"{chroots.pop() or 'none'}: no kernel boundary was lost.")
    return f" Before, in {era['era']}, they ran as users {', '.join(sorted(users))}: the merge erased that."


def exercises(data: dict[str, Any], topos: Sequence[Topology], parts: Parts) -> list[dict[str, Any]]:
    """Questions whose answers the page checks; every answer computed here from the model."""
    out: list[dict[str, Any]] = []
    by = {t.name: t for t in topos}
    mfa, nomfa = _era(data, "with-mfa"), _era(data, "without-mfa")
    if mfa and nomfa:
        two = {e: run_probe(by[e], "local", recipients=2, seed=parts.seed, calibration=parts.calibration,
                            site=parts.site).hops for e in ("with-mfa", "without-mfa")}
        out.append({"id": "mfa-two-rcpt", "type": "number",
                    "question": "How many hops does removing the MFA process save for one local message "
                                "to 2 recipients (with-mfa vs without-mfa)?",
                    "answer": [str(two["with-mfa"] - two["without-mfa"])],
                    "explain": f"The probe of 1 message to 2 local recipients: {two['with-mfa']} hops in "
                               f"with-mfa, {two['without-mfa']} in without-mfa."})
    if mfa:
        m = mfa["messages"]["local"]
        out.append({"id": "mfa-share", "type": "number",
                    "question": "In with-mfa (5.4.2), how many of a local message's hops cross smtp↔mfa?",
                    "answer": [str(m["n_mfa"])],
                    "explain": f"{m['n_mfa']} of {m['n_hops']} non-stat hops."})
    pony = _era(data, "pony")
    if pony:
        holders = _holders(pony, "tls-private-key")
        titles = [p["title"] for p in pony["graph"]["processes"] if p["name"] in holders]
        out.append({"id": "klondike", "type": "text",
                    "question": "In pony (5.7.3), which process holds the TLS private key while serving?",
                    "answer": holders + titles,
                    "explain": f"{', '.join(holders)} ({', '.join(titles)}): the network-facing "
                               f"{', '.join(_net_facing(pony))} only asks it to sign."})
    for e in data["compare"]["eras"]:
        if e["era"] == "with-mfa" and "RCPT TO" in e["round_trips"]:
            rt = e["round_trips"]["RCPT TO"]
            out.append({"id": "rcpt-round-trips", "type": "number",
                        "question": "In with-mfa, how many imsg round trips does the client wait for "
                                    "before the reply to RCPT TO?",
                        "answer": [f"{rt:g}"],
                        "explain": f"{e['critical_path_hops']['RCPT TO']} hops on the causal chain "
                                   f"of that reply: {rt:g} round trips."})
    six = _era(data, "pony-6.8")
    if six:
        hb = six["compromise"]["heartbleed"]
        out.append({"id": "heartbleed-68", "type": "choice", "choices": ["yes", "no"],
                    "question": "Heartbleed in 6.8's network-facing process: does it leak the TLS "
                                "private key?",
                    "answer": ["yes" if "tls-private-key" in hb["exposed_secrets"] else "no"],
                    "explain": f"Read from {', '.join(hb['compromised'])}: "
                               f"{', '.join(hb['exposed_secrets']) or 'nothing'}."})
        m = next((m for m in six["merges"] if m["merge"] == ["smtp", "lka"]), None)
        if m:
            out.append({"id": "merge-smtp-lka", "type": "choice", "choices": ["safe", "unsafe"],
                        "question": "In pony-6.8, is merging smtp and lka into one process safe?",
                        "answer": ["safe" if m["safe"] else "unsafe"],
                        "explain": f"It would save {m['hops_saved_per_message']['local']} hops per local "
                                   f"message, and erase {len(m['erased_boundaries'])} boundaries."})
    return out


def tour(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The guided tour: each step selects an era, a message and a focus; its numbers are the model's."""
    steps: list[dict[str, Any]] = []
    mfa, nomfa, pony, six = (_era(data, n) for n in ("with-mfa", "without-mfa", "pony", "pony-6.8"))
    cmp = {e["era"]: e for e in data["compare"]["eras"]}
    if mfa:
        m = mfa["messages"]["local"]
        rt = cmp["with-mfa"]["round_trips"]
        steps.append({"title": "5.4.2: a round trip to the MFA per SMTP command", "era": "with-mfa",
                      "kind": "local", "focus": "mfa",
                      "text": f"In 5.4.2 every command is filtered by the mfa process: of the {m['n_hops']} "
                              f"hops of one local message, {m['n_mfa']} go between smtp and mfa. The client "
                              f"waits {rt.get('MAIL FROM', 0):g} round trips before MAIL FROM's reply. "
                              "Press Play and watch the smtp↔mfa hops (marked)."})
    if mfa and nomfa:
        a, b = mfa["messages"]["local"]["n_hops"], nomfa["messages"]["local"]["n_hops"]
        la, lb = cmp["with-mfa"]["latency_s"]["mean"], cmp["without-mfa"]["latency_s"]["mean"]
        steps.append({"title": "Why kill the MFA", "era": "without-mfa", "kind": "local", "focus": "charts",
                      "text": f"With the filters answered inside smtp, a local message takes {b} hops "
                              f"instead of {a}; DATA-end → 250 mean latency goes from {la * 1e3:.3f} ms to "
                              f"{lb * 1e3:.3f} ms under the same load (compare's numbers, in the charts)."})
    if pony:
        pony_proc = pony["host"]["smtp"]
        n = pony["messages"]["local"]["n_hops"]
        steps.append({"title": "Why pony: one process for smtp, mta and mda", "era": "pony", "kind": "local",
                      "focus": "graph",
                      "text": f"5.7.3 hosts smtp, mta and mda in '{pony_proc}': "
                              f"{pony['graph']['n_processes']} processes and {pony['graph']['n_channels']} "
                              f"channels; a local message takes {n} hops." + _same_jail(nomfa or mfa)})
    if mfa and pony:
        hb4, hb5 = mfa["compromise"]["heartbleed"], pony["compromise"]["heartbleed"]
        steps.append({"title": "Why klondike: Heartbleed", "era": "pony", "kind": "local",
                      "focus": "heartbleed",
                      "text": f"Heartbleed reads the memory of the network-facing processes. In 5.4.2 "
                              f"({', '.join(hb4['compromised'])}) it exposes: "
                              f"{', '.join(hb4['exposed_secrets'])}. In 5.7.3 the private key moved to "
                              f"{_named(pony, _holders(pony, 'tls-private-key'))}; Heartbleed in "
                              f"{', '.join(hb5['compromised'])} exposes: {', '.join(hb5['exposed_secrets'])}."})
    if six:
        m = six["messages"]["local"]
        filt = _era(data, "pony-6.8-filters")
        more = (f" Filters came back as separate processes that talk to lka: with one filter on the listener "
                f"(era pony-6.8-filters) the same message takes {filt['messages']['local']['n_hops']} hops, "
                f"{filt['messages']['local']['n_filter']} of them to lka for the filter (marked), plus "
                f"{filt['messages']['local']['filter_lines']} lines between lka and the filter process."
                if filt else " Filters came back as separate processes talking to lka (add the era "
                             "pony-6.8-filters to see them).")
        steps.append({"title": "What 6.8 brought back: FCrDNS and filters", "era": "pony-6.8", "kind": "local",
                      "focus": "fcrdns",
                      "text": f"6.8 checks the client's name both ways before the banner (FCrDNS: "
                              f"{m['n_fcrdns']} of the {m['n_hops']} hops, marked)." + more})
        net = _net_facing(six)
        if net:
            c = six["compromise"]["processes"][net[0]]["code"]
            steps.append({"title": "Take over the network-facing process", "era": "pony-6.8", "kind": "local",
                          "focus": f"compromise:{net[0]}",
                          "text": f"Code execution in {net[0]} exposes {', '.join(c['exposed_secrets']) or 'no secret'} "
                                  f"and reaches {', '.join(c['reachable_processes'])} through "
                                  f"{len(c['paths'])} imsg paths; the TLS private key is held by "
                                  f"{', '.join(_holders(six, 'tls-private-key')) or 'no process'} while serving."})
    if pony:
        m = next((m for m in pony["merges"] if m["merge"] == ["queue", "scheduler"]), None)
        if m:
            steps.append({"title": "Merge or not?", "era": "pony", "kind": "local", "focus": "merge:queue+scheduler",
                          "text": f"Merging queue and scheduler in 5.7.3 is {'safe' if m['safe'] else 'unsafe'} "
                                  f"by the model's rule and saves {m['hops_saved_per_message']['local']} hops "
                                  "per local message. Try the others in the Merge panel."})
    return steps
