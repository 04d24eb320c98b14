"""What an attacker in one process reaches beyond the private key (issue 23): root, credentials
and password oracles, rule steering, availability, every secret; and how attacker data from the
network reaches the root parent's delivery command with no compromise at all.

Answers are computed from smtpd_sim.studies.privsep (the imsgs each peer accepts, observed by
running the model plus the declared ones, and what each grants) and the era facts of
smtpd_sim.studies.privsep_facts (forkmda()'s backends, the sender guard, who ends on an
unexpected imsg), against a site (its local delivery methods are the configured actions).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from smtpd_sim.imsg import Vocabulary
from smtpd_sim.spec.plugins import plugin_imsgs
from smtpd_sim.spec.site import SiteSpec
from smtpd_sim.spec.topology import Topology
from smtpd_sim.studies.privsep import (
    EFFECTS,
    BlastRadius,
    Traffic,
    blast_radius,
    fork_routes,
    local_methods,
    receiving_roles,
    resolve_process,
    site_of,
    traffic_for,
)
from smtpd_sim.studies.privsep import SCENARIOS as PRIVSEP_SCENARIOS
from smtpd_sim.studies.privsep_facts import (
    CHILD_DEATH,
    DELIVERY,
    SENDER_CARRIERS,
    SENDER_ENTRY,
    SENDER_SINKS,
    UNEXPECTED_IMSG,
)

SCENARIOS = (*PRIVSEP_SCENARIOS, "sender-flow")

# capabilities (privsep.EFFECTS) each reach category collects
CREDENTIAL_CAPS = ("password-oracle", "system-password-oracle", "read-relay-credentials")
CREDENTIAL_SECRETS = ("auth-passwords", "relay-credentials")
STEERING_CAPS = ("steer-ruleset", "forge-envelopes", "local-submission")
CONTROL_CAPS = ("stop-daemon", "pause-deliveries", "drop-queued-mail", "falsify-delivery-status")


def _paths(br: BlastRadius, caps: tuple[str, ...]) -> list[dict[str, Any]]:
    return [p for p in br.paths if p["capability"] in caps]


def root_reach(topo: Topology, br: BlastRadius, site: SiteSpec) -> dict[str, Any]:
    """Root through the parent's fork request: per backend of the era's forkmda(), whether the
    attacker can name it (5.x: any compiled-in backend, the request names it; 6.8: a configured
    action only) and whether it serves uid 0."""
    proc = topo.processes[br.compromised] if isinstance(br.compromised, str) else None
    facts = DELIVERY[topo.spec.vocabulary]
    forks = [p for p in br.paths if p["imsg"] == "MDA_FORK"]
    configured = local_methods(site)
    routes = [{**{k: v for k, v in b.items() if k != "uid0"}, "root": bool(forks) and b["uid0"]}
              for b in fork_routes(topo, site)]
    is_root = bool(proc and proc.root)
    return {"reached": is_root or any(r["root"] for r in routes), "is_root": is_root,
            "fork_paths": [p["path"] for p in forks], "selector": facts.selector,
            "site_methods": configured, "routes": routes}


def availability(topo: Topology, br: BlastRadius) -> dict[str, Any]:
    """Stopping the daemon: every peer ends on an imsg it does not accept, and the parent stops
    when a child ends (the compromised child's own exit is enough); control commands."""
    name = br.compromised if isinstance(br.compromised, str) else br.compromised[0]
    peers = sorted(topo.graph.neighbors(name))
    is_parent = topo.processes[name].root
    return {"stops_daemon": True, "crashable_peers": peers,
            "how": ("it is the parent" if is_parent else
                    f"its own exit, or an unexpected imsg to a peer ({UNEXPECTED_IMSG}); the parent: "
                    f"{CHILD_DEATH[topo.spec.vocabulary]}"),
            "commands": _paths(br, CONTROL_CAPS)}


def reach(topo: Topology, process: str, site: str | SiteSpec | None = None,
          traffic: Traffic | None = None) -> dict[str, Any]:
    """The blast radius of code execution in ``process`` with the reach categories added, and its
    entry: how exposed the process is to network data (a parser bug there needs no imsg)."""
    s = site_of(site)
    br = blast_radius(topo, resolve_process(topo, process), traffic)
    out = br.to_dict()
    out["site"] = s.hostname
    proc = topo.processes[br.compromised] if isinstance(br.compromised, str) else None
    out["reach"] = {
        # how the attacker gets code running there from the network, before any imsg
        "entry": {"exposure": proc.exposure if proc else "",
                  "network_inputs": [i.model_dump() for i in proc.network_inputs] if proc else []},
        "root": root_reach(topo, br, s),
        "credentials": {
            "paths": _paths(br, CREDENTIAL_CAPS),
            "secrets": [e for e in br.exposures if e["secret"] in CREDENTIAL_SECRETS],
        },
        "rule_steering": _paths(br, STEERING_CAPS),
        "availability": availability(topo, br),
        "secrets": sorted({e["secret"] for e in br.exposures}),
    }
    return out


def sender_flow(topo: Topology, site: str | SiteSpec | None = None,
                traffic: Traffic | None = None) -> dict[str, Any]:
    """Attacker data through legitimate imsgs, no compromise: the MAIL FROM address from the
    network-facing smtp to the command the root parent forks. The steps are the shortest chain
    of observed envelope-carrying imsgs (privsep_facts.SENDER_CARRIERS) from the process hosting
    smtp to the parent; the sink is what the era runs with the sender, per local method."""
    s = site_of(site)
    tr = traffic or traffic_for(topo)
    vocab = Vocabulary(topo.spec.vocabulary, plugin_imsgs())
    start, goal = topo.host["smtp"], topo.host["parent"]

    def legit(src: str, dst: str, k: str) -> bool:  # observed, not declared nor unchecked
        return (k in SENDER_CARRIERS and k in tr.accepted.get((src, dst), ())
                and (src, dst, k) not in tr.declared and k not in tr.unchecked.get((src, dst), ()))

    def stores(dst: str, k: str) -> bool:
        return any(EFFECTS[(k, r)].stores for r in receiving_roles(topo, dst, k) if (k, r) in EFFECTS)

    # a step follows the previous one when the model's runs show it caused by it (the recorder's
    # cause chain), or when the previous receiver stored the envelope (it comes back out later)
    Hop = tuple[str, str, str]
    first = [(start, dst, SENDER_ENTRY) for (src, dst) in sorted(tr.accepted)
             if src == start and legit(start, dst, SENDER_ENTRY)]
    prev: dict[Hop, Hop | None] = {h: None for h in first}
    q = deque(first)
    end: Hop | None = None
    while q and end is None:
        hop = q.popleft()
        if hop[1] == goal and hop[2] == "MDA_FORK":
            end = hop
            break
        nxt = {h for h in tr.subtree.get(hop, ()) if h[0] == hop[1] and legit(*h)}
        if stores(hop[1], hop[2]):
            nxt |= {(hop[1], d2, k2) for (s2, d2), ks in tr.accepted.items() if s2 == hop[1]
                    for k2 in ks if legit(hop[1], d2, k2)}
        for h in sorted(nxt):
            if h not in prev:
                prev[h] = hop
                q.append(h)
    steps: list[dict[str, Any]] = []
    node = end
    while node is not None:
        steps.insert(0, {"from": node[0], "to": node[1], "imsg": node[2], "name": vocab.name(node[2]),
                         "carries": SENDER_CARRIERS[node[2]]})
        node = prev[node]
    facts = DELIVERY[topo.spec.vocabulary]
    configured = local_methods(s)
    sinks = [{"method": m, "configured": m in configured, "runs_as": u, "shell": sh, "source": src}
             for (v, m), (u, sh, src) in sorted(SENDER_SINKS.items()) if v == topo.spec.vocabulary]
    return {"era": topo.name, "site": s.hostname, "scenario": "sender-flow",
            "entry": {"process": start, "guard": facts.sender_guard, "source": facts.sender_guard_source},
            "steps": steps, "reaches_parent": bool(steps),
            "sinks": sinks,
            "root_sink_configured": any(x["configured"] and x["runs_as"] == "root" for x in sinks)}
