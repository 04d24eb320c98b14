"""Privilege separation as a graph question: who holds what, who accepts which imsg from whom,
and what an attacker inside one process reaches (issue 8).

Three inputs, none of them a table of answers:

* the privilege data of each process (user, chroot, root, its exposure to network data:
  network-facing, or parsing what a remote party shapes as lka's resolver does, the secrets it
  holds and the files it opens, each with its C source) from ``scenarios/topologies/*.toml``;
* the imsgs each peer accepts from each process, **observed by running the model**: probe
  sessions (local and relay, with and without STARTTLS) on the topology, keeping every
  non-stat imsg a receiving role handled; plus the few in ``DECLARED`` (with their C source)
  that the C code accepts but the probes never send (outbound TLS, smtpctl schedule); the
  imsgs the C accepts that no model role implements (AUTH, relay credentials, smtpctl stop and
  pause: ``privsep_facts.UNMODELLED``, with their IMSG name per era); and,
  for a process whose handlers dispatch on the type alone (``checks_sender = false``: 6.8
  everywhere, the 5.x scheduler), every type its roles handle, from every peer. Other kinds
  the model never exercises (bounces, most smtpctl commands) are absent;
* what a receiving role does for the sender of an imsg (``EFFECTS`` below: a capability, with
  the C function that grants it). An effect marked ``steers`` hands attacker-chosen data to
  the receiver, which acts on it: the receiver's own later requests in that imsg's causal
  subtree (the recorder's cause chain of the same runs) are reached too; one marked ``stores``
  (envelopes written to the queue) reaches every envelope-carrying send of the receiver.

Everything is computed on a :class:`~smtpd_sim.spec.topology.Topology`, so a topology built in memory
(a merge, a student's design) is analysed the same way as the four eras.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import networkx as nx

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.imsg import Vocabulary
from smtpd_sim.roles.registry import role_class
from smtpd_sim.spec.plugins import plugin_imsgs
from smtpd_sim.spec.site import SiteSpec, load_site
from smtpd_sim.spec.topology import (
    EXPOSURES,
    Holding,
    ProcessSpec,
    Topology,
    TopologySpec,
    load_topology,
)
from smtpd_sim.studies.privsep_facts import DELIVERY, FORK_SENDER_TEST, UNMODELLED
from smtpd_sim.studies.probe import probe_result, probe_scenario, probe_workload


class PrivsepError(SmtpdSimError):
    """Bad input to the privsep analysis (unknown process or role); one line."""


@dataclass(frozen=True)
class Effect:
    """What the receiving role does when a peer sends it one imsg kind."""

    capability: str
    what: str
    source: str
    steers: bool = False  # the receiver acts on sender-chosen data (envelopes): follow the subtree
    discloses: bool = False  # the answer carries a secret if the receiver serves it (Holding.served_by)
    files: tuple[str, ...] = ()  # file kinds the capability opens (topology FILE_ITEMS)
    derived: bool = True  # the request's content comes from the envelope a steered sender holds
    stores: bool = False  # the receiver stores the data: all its later envelope-carrying sends carry it
    reveals: str = ""  # the answer carries this secret item if the receiver holds it while serving
    forwards: tuple[str, ...] = ()  # kinds the receiver sends on with the sender's data (followed)
    runs_as_requested: bool = False  # the receiver runs a program as the user the request names


# (imsg kind, receiving role) -> effect. Only requests that grant something are listed; a
# kind not here is accepted but grants nothing the analysis tracks (answers, stats, events).
EFFECTS: dict[tuple[str, str], Effect] = {
    ("MDA_FORK", "parent"): Effect(
        "exec-as-any-user", "the parent forks a delivery agent running the command the request "
        "names, as the user it names (uid 0 refused unless the backend allows root)",
        "smtpd.c:forkmda()", files=("maildirs",), runs_as_requested=True),
    ("LKA_OPEN_FORWARD", "parent"): Effect(
        "open-forward-as-root", "the parent opens ~user/.forward as root and passes the fd",
        "smtpd.c:parent_forward_open()", files=("~/.forward",)),
    ("SMTP_TLS_INIT", "lka"): Effect(
        "tls-cert-lookup", "lka answers with the pki's certificate (and in 5.4 the private key PEM)",
        "lka.c:lka_imsg() IMSG_LKA_SSL_INIT (5.4.2) / IMSG_SMTP_TLS_INIT (5.7.3)", discloses=True),
    ("MTA_TLS_INIT", "lka"): Effect(
        "tls-cert-lookup", "lka answers with the certificate of the pki named (the relay pki, else "
        "the HELO name, by default the hostname: the server's own pki) and in 5.4 its key PEM",
        "mta_session.c:mta_start_tls() certname = relay->pki_name or s->helo; lka.c:lka_imsg() "
        "PROC_MTA IMSG_LKA_SSL_INIT (5.4.2) / IMSG_MTA_TLS_INIT (5.7.3)", discloses=True),
    ("CERT_INIT", "lka"): Effect(
        "tls-cert-lookup", "lka answers with the certificate only", "cert.c / lka.c:lka_imsg() "
        "IMSG_CERT_INIT (6.8)", discloses=True),
    **{(k, "ca"): Effect(
        "private-key-oracle", "klondike signs whatever it is sent with the private key; the key "
        "itself never leaves ca", f"ca.c:ca_imsg() IMSG_{k}")
       for k in ("CA_PRIVENC", "CA_RSA_PRIVENC", "CA_ECDSA_SIGN")},
    **{(k, "ca"): Effect(
        "private-key-decrypt-oracle", "klondike decrypts whatever it is sent with the private key "
        "(RSA_private_decrypt): the premaster secrets of recorded RSA key-exchange sessions",
        f"ca.c:ca_imsg() IMSG_{k} -> RSA_private_decrypt()")
       for k in ("CA_PRIVDEC", "CA_RSA_PRIVDEC")},
    ("SMTP_EXPAND_RCPT", "lka"): Effect(
        "steer-ruleset", "lka matches the rules on the envelope as sent: its flags (EF_AUTHENTICATED "
        "matches `auth` rules, EF_INTERNAL local ones) and its source address (`from src`) come "
        "from the sender; a forged envelope relays as if authenticated",
        "lka.c:lka_imsg() IMSG_SMTP_EXPAND_RCPT -> ruleset.c:ruleset_match() (5.x `evpflags & "
        "(EF_AUTHENTICATED | EF_INTERNAL)`, 6.8 ruleset_match_smtp_auth()/ruleset_match_from())",
        derived=False),
    ("QUEUE_SMTP_SESSION", "smtp"): Effect(
        "local-submission", "smtp opens an SMTP session on a socketpair and passes the other end: "
        "the session comes from the local (AF_LOCAL) listener, so `from local` rules match what "
        "the sender submits there (bounces use it)", "smtp.c:smtp_imsg() IMSG_QUEUE_SMTP_SESSION "
        "(IMSG_SMTP_ENQUEUE_FD in 5.4.2) -> smtp_enqueue()", derived=False),
    ("CTL_SMTP_SESSION", "smtp"): Effect(
        "local-submission", "smtp opens a local SMTP session for the sender (smtpctl / sendmail "
        "enqueue) and passes its fd", "smtp.c:smtp_imsg() IMSG_CTL_SMTP_SESSION (IMSG_SMTP_ENQUEUE_FD "
        "from PROC_CONTROL in 5.4.2) -> smtp_enqueue()", derived=False),
    ("SCHED_ENVELOPE_BOUNCE", "queue"): Effect(
        "schedule-deliveries", "queue turns the envelope named into a bounce to its sender",
        "queue.c:queue_imsg() IMSG_SCHED_ENVELOPE_BOUNCE", derived=False),
    ("SMTP_AUTHENTICATE", "lka"): Effect(
        "password-oracle", "lka checks a username and password against the auth table, or (plain "
        "`auth`) has the root parent check the system password; the pause after a failure "
        "(smtp_auth_failure_pause()) is in the sender, so a compromised sender guesses at full speed",
        "lka.c:lka_imsg() IMSG_SMTP_AUTHENTICATE -> lka_authenticate() / IMSG_LKA_AUTHENTICATE to the "
        "parent", derived=False, forwards=("LKA_AUTHENTICATE",)),
    ("LKA_AUTHENTICATE", "parent"): Effect(
        "system-password-oracle", "the root parent checks a system user's password and answers "
        "yes or no", "smtpd.c:parent_imsg() IMSG_LKA_AUTHENTICATE -> parent_auth_user()",
        derived=False),
    ("MTA_LOOKUP_CREDENTIALS", "lka"): Effect(
        "read-relay-credentials", "lka answers base64(username, password) of any table and label "
        "the request names", "lka.c:lka_imsg() IMSG_LKA_SECRET (5.4.2) / IMSG_MTA_LOOKUP_CREDENTIALS "
        "-> lka_credentials()", derived=False, reveals="relay-credentials"),
    ("CTL_SHUTDOWN", "parent"): Effect(
        "stop-daemon", "the parent shuts the daemon down (smtpctl stop)",
        "smtpd.c:parent_imsg() IMSG_CTL_SHUTDOWN -> parent_shutdown()", derived=False),
    ("CTL_PAUSE_MDA", "queue"): Effect(
        "pause-deliveries", "the queue stops handing envelopes to mda (smtpctl pause mda)",
        "queue.c:queue_imsg() IMSG_CTL_PAUSE_MDA", derived=False),
    ("MDA_OPEN_MESSAGE", "queue"): Effect(
        "read-any-queued-message", "queue opens the message file of the msgid named and passes "
        "the fd", "queue.c:queue_imsg() IMSG_MDA_OPEN_MESSAGE", files=("queue",)),
    ("MTA_OPEN_MESSAGE", "queue"): Effect(
        "read-any-queued-message", "queue opens the message file of the msgid named and passes "
        "the fd", "queue.c:queue_imsg() IMSG_MTA_OPEN_MESSAGE", files=("queue",)),
    ("SMTP_MESSAGE_OPEN", "queue"): Effect(
        "write-queued-messages", "queue creates a message file and passes a writable fd",
        "queue.c:queue_imsg() IMSG_SMTP_MESSAGE_OPEN", files=("queue",)),
    ("LKA_ENVELOPE_SUBMIT", "queue"): Effect(
        "forge-envelopes", "queue stores the envelope as sent: recipient, delivery method, "
        "user; the scheduler later has it delivered", "queue.c:queue_imsg() "
        "IMSG_LKA_ENVELOPE_SUBMIT -> queue_envelope_create()", stores=True, files=("queue",)),
    ("LKA_ENVELOPE_COMMIT", "queue"): Effect(
        "forge-envelopes", "queue commits the envelopes submitted before",
        "queue.c:queue_imsg() IMSG_LKA_ENVELOPE_COMMIT", stores=True, files=("queue",)),
    ("QUEUE_DELIVER", "mda"): Effect(
        "drive-local-delivery", "mda delivers the envelope it is given: its user and delivery "
        "method become the parent's fork request", "mda.c:mda_imsg() IMSG_QUEUE_DELIVER",
        steers=True),
    ("QUEUE_TRANSFER", "mta"): Effect(
        "drive-relay", "mta relays the envelope it is given to the host it names",
        "mta.c:mta_imsg() IMSG_QUEUE_TRANSFER", steers=True),
    ("CTL_SCHEDULE", "scheduler"): Effect(
        "schedule-deliveries", "the scheduler retries the envelopes named at once",
        "scheduler.c:scheduler_imsg() IMSG_CTL_SCHEDULE", derived=False),
    ("SCHED_ENVELOPE_REMOVE", "queue"): Effect(
        "drop-queued-mail", "queue deletes the envelope named", "queue.c:queue_imsg() "
        "IMSG_SCHED_ENVELOPE_REMOVE", files=("queue",), derived=False),
    ("SCHED_ENVELOPE_DELIVER", "queue"): Effect(
        "schedule-deliveries", "queue loads the envelope named and hands it to mda",
        "queue.c:queue_imsg() IMSG_SCHED_ENVELOPE_DELIVER", derived=False),
    ("SCHED_ENVELOPE_TRANSFER", "queue"): Effect(
        "schedule-deliveries", "queue loads the envelope named and hands it to mta",
        "queue.c:queue_imsg() IMSG_SCHED_ENVELOPE_TRANSFER", derived=False),
    **{(k, "queue"): Effect(
        "falsify-delivery-status", "queue records the outcome it is told (a message can be "
        "marked delivered and silently removed)", f"queue.c:queue_imsg() IMSG_{k}", derived=False)
       for k in ("MDA_DELIVERY_OK", "MTA_DELIVERY_OK")},
}

# Lookups lka's resolver makes for a peer (the model's kind -> the C that parses the answer, in
# lka): sent by the network-facing process about remote parties (the client's address, the
# relay's domain), they make lka parse DNS answers the remote side shapes (issue 23 finding 8).
RESOLVER_KINDS: dict[str, str] = {
    "SMTP_DNS_PTR": "dns.c:dns_imsg() IMSG_DNS_PTR (5.4.2) / IMSG_SMTP_DNS_PTR (5.7.3) -> "
                    "getnameinfo_async() (libasr parses the PTR answer)",
    "MTA_DNS_PTR": "dns.c:dns_imsg() IMSG_MTA_DNS_PTR -> getnameinfo_async()",
    "GETNAMEINFO": "resolver.c:resolver_dispatch_request() IMSG_GETNAMEINFO -> getnameinfo_async() (6.8)",
    "GETADDRINFO": "resolver.c:resolver_dispatch_request() IMSG_GETADDRINFO -> getaddrinfo_async() (6.8)",
    "MTA_DNS_MX": "dns.c:dns_imsg() IMSG_DNS_MX / IMSG_MTA_DNS_MX -> res_query_async(T_MX); "
                  "dns_dispatch_mx() unpacks the records",
    "MTA_DNS_HOST": "dns.c:dns_imsg() IMSG_DNS_HOST / IMSG_MTA_DNS_HOST -> getaddrinfo_async()",
}


def exposure_rank(level: str) -> int:
    """Position of an exposure level in spec.topology.EXPOSURES (0 = internal)."""
    return EXPOSURES.index(level)


def observed_resolvers(topo: Topology, traffic: Traffic | None = None) -> dict[str, dict[str, list[str]]]:
    """Which process answers DNS lookups for a network-facing one, observed in the probe runs:
    resolver -> {asking process: kinds}. What the ``network_inputs`` facts must agree with."""
    tr = traffic or traffic_for(topo)
    out: dict[str, dict[str, list[str]]] = {}
    for (src, dst), kinds in sorted(tr.accepted.items()):
        ks = sorted(k for k in kinds if k in RESOLVER_KINDS and (src, dst, k) not in tr.declared
                    and k not in tr.unchecked.get((src, dst), ()))
        if ks and topo.processes[src].network_facing:
            out.setdefault(dst, {})[src] = ks
    return out


# The probes the accepted-imsg sets are observed from: (kind, STARTTLS share). Local and relay
# are the research's common case (era-5.4.2-mfa.md §0.2); the STARTTLS variants exercise the
# certificate lookup and klondike (era-pony.md §3.7).
OBSERVE_PROBES: tuple[tuple[str, float], ...] = (("local", 0.0), ("relay", 0.0), ("local", 1.0),
                                                 ("relay", 1.0))

# Imsgs the C code accepts but the model's probes never send (the simulated remote MX offers
# no STARTTLS; no smtpctl client runs): (sender role, receiver role, kind, source). Added to the
# observed sets only where the era's vocabulary has the kind and the receiving role handles it,
# and listed as declared, not observed.
DECLARED: tuple[tuple[str, str, str, str], ...] = (
    ("mta", "lka", "MTA_TLS_INIT", "lka.c:lka_imsg() PROC_MTA IMSG_LKA_SSL_INIT (5.4.2) / "
     "IMSG_MTA_TLS_INIT (5.7.3), sent by mta_session.c:mta_start_tls() with any pki name"),
    ("mta", "lka", "CERT_INIT", "mta_session.c:mta_cert_init() -> cert.c:cert_init(); "
     "lka.c:lka_imsg() IMSG_CERT_INIT (6.8)"),
    ("mta", "ca", "CA_PRIVENC", "ca.c:rsae_send_imsg(): the RSA engine serves the client side too "
     "(5.7.3)"),
    ("mta", "ca", "CA_RSA_PRIVENC", "ca.c:rsae_send_imsg() (6.8)"),
    ("smtp", "ca", "CA_PRIVDEC", "ca.c:ca_imsg() PROC_PONY block: case IMSG_CA_PRIVENC: case "
     "IMSG_CA_PRIVDEC (5.7.3); sent by ca.c:rsae_priv_dec() -> rsae_send_imsg() when a client "
     "picks RSA key exchange"),
    ("queue", "smtp", "QUEUE_SMTP_SESSION", "bounce.c:bounce_drain() asks for an enqueue socket "
     "(the probes deliver every message, so no bounce runs) -> smtp.c:smtp_imsg() PROC_QUEUE "
     "IMSG_QUEUE_SMTP_SESSION (IMSG_SMTP_ENQUEUE_FD in 5.4.2) -> smtp_enqueue()"),
    ("scheduler", "queue", "SCHED_ENVELOPE_BOUNCE", "scheduler.c:scheduler_imsg() answers a "
     "delivery failure past its expiry with IMSG_SCHED_ENVELOPE_BOUNCE -> queue.c:queue_imsg()"),
    ("scheduler", "queue", "SCHED_ENVELOPE_INJECT", "scheduler.c:scheduler_timeout() "
     "IMSG_SCHED_ENVELOPE_INJECT -> queue.c:queue_imsg() -> bounce.c:bounce_add()"),
    ("control", "scheduler", "CTL_SCHEDULE", "control.c:control_dispatch_ext() IMSG_CTL_SCHEDULE "
     "-> scheduler.c:scheduler_imsg() (smtpctl schedule)"),
)

# Boundaries the kernel enforces between two processes (the others are the daemon's design).
KERNEL_BOUNDARIES = ("user", "root", "chroot")


@dataclass
class Traffic:
    """What the model's probe runs showed crossing each channel."""

    accepted: dict[tuple[str, str], set[str]]  # (sender, receiver) -> kinds the receiver handled
    subtree: dict[tuple[str, str, str], set[tuple[str, str, str]]]  # (src, dst, kind) -> descendant hops
    declared: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (src, dst, kind) -> source
    unmodelled: set[tuple[str, str, str]] = field(default_factory=set)  # declared ones no role implements
    # (src, dst) -> kinds accepted only because dst dispatches on the type alone (checks_sender false)
    unchecked: dict[tuple[str, str], set[str]] = field(default_factory=dict)


def _unmodelled_kinds(topo: Topology, role: str) -> set[str]:
    """Kinds the C has ``role`` accept that no model role implements, in this era."""
    return {u.kind for u in UNMODELLED if u.receiver == role and u.name_in(topo.spec.vocabulary)}


def receiving_roles(topo: Topology, proc: str, kind: str) -> list[str]:
    """The roles of ``proc`` that act on ``kind`` (model handlers, or declared not-modelled)."""
    return [r for r in topo.processes[proc].roles
            if kind in role_class(r).handlers or kind in _unmodelled_kinds(topo, r)]


def observe_traffic(topo: Topology, seed: int = 1) -> Traffic:
    """Run the probe sessions on ``topo`` and collect, per direction of each channel, the imsg
    kinds a role in the receiver handled, and the causal subtree of each (src, dst, kind)."""
    accepted: dict[tuple[str, str], set[str]] = {}
    subtree: dict[tuple[str, str, str], set[tuple[str, str, str]]] = {}
    for kind, tls in OBSERVE_PROBES:
        w = probe_workload(kind)
        w = w.model_copy(update={"mix": w.mix.model_copy(update={"tls_share": tls})})
        res = probe_result(probe_scenario(topo, workload=w, seed=seed))
        parent = {r.id: (r.cause, r.is_hop) for r in res.runs}
        key_of: dict[int, tuple[str, str, str]] = {}
        for h in res.hops:
            src, dst, k, is_stat, ident = h.from_proc, h.to_proc, h.kind, h.stat, h.id
            if is_stat or src == dst or dst not in topo.processes or src not in topo.processes:
                continue  # stats; calls inside one process; filter processors (not daemon processes)
            if not receiving_roles(topo, dst, k):
                continue
            accepted.setdefault((src, dst), set()).add(k)
            key_of[ident] = (src, dst, k)
        for h in res.hops:
            me = key_of.get(h.id)
            if me is None:
                continue
            node, seen = h.cause, 0
            while node and seen < 100_000:
                seen += 1
                up, is_hop = parent.get(node, (0, False))
                anc = key_of.get(node) if is_hop else None
                if anc is not None and anc != me:
                    subtree.setdefault(anc, set()).add(me)
                node = up
    declared: dict[tuple[str, str, str], str] = {}
    vocab = Vocabulary(topo.spec.vocabulary, plugin_imsgs())
    for src_role, dst_role, kind, source in DECLARED:
        src, dst = topo.host.get(src_role), topo.host.get(dst_role)
        if src is None or dst is None or src == dst or kind not in vocab:
            continue
        if kind not in role_class(dst_role).handlers or kind in accepted.get((src, dst), ()):
            continue
        accepted.setdefault((src, dst), set()).add(kind)
        declared[(src, dst, kind)] = source
    unmodelled: set[tuple[str, str, str]] = set()
    for u in UNMODELLED:
        src, dst = topo.host.get(u.sender), topo.host.get(u.receiver)
        if src is None or dst is None or src == dst or not u.name_in(topo.spec.vocabulary):
            continue
        accepted.setdefault((src, dst), set()).add(u.kind)
        declared[(src, dst, u.kind)] = f"not modelled: {u.source}"
        unmodelled.add((src, dst, u.kind))
    # a process that does not test the sender acts on every type it handles, from every peer
    unchecked: dict[tuple[str, str], set[str]] = {}
    for p in topo.spec.process:
        if p.checks_sender:
            continue
        handled = {k for r in p.roles for k in role_class(r).handlers if k in vocab}
        handled |= {k for r in p.roles for k in _unmodelled_kinds(topo, r)}
        for a, b in topo.spec.channels:
            if p.name not in (a, b):
                continue
            src = b if a == p.name else a
            extra = handled - accepted.get((src, p.name), set())
            if extra:
                unchecked[(src, p.name)] = extra
                accepted.setdefault((src, p.name), set()).update(extra)
    return Traffic(accepted, subtree, declared, unchecked=unchecked, unmodelled=unmodelled)


@lru_cache(maxsize=16)
def _era_traffic(era: str) -> Traffic:
    return observe_traffic(load_topology(era))


def traffic_for(topo: Topology) -> Traffic:
    """Observed traffic of a topology (cached for the built-in eras loaded by name)."""
    if topo.path is not None and topo.path.stem == topo.name:
        return _era_traffic(str(topo.path))
    return observe_traffic(topo)


# ---- the privilege table -------------------------------------------------------------------


def _holding(h: Holding) -> dict[str, Any]:
    d: dict[str, Any] = {"item": h.item, "when": h.when, "form": h.form, "source": h.source}
    if h.condition:
        d["condition"] = h.condition
    if h.served_by:
        d["served_by"] = list(h.served_by)
    return d


def privilege_table(topo: Topology, traffic: Traffic | None = None) -> list[dict[str, Any]]:
    """One row per process: user, chroot, root, exposure to network data (with the DNS lookups it
    was seen answering for a network-facing process), secrets, files, and for each peer the imsg
    kinds it accepts from this process (observed) and the capabilities they grant."""
    tr = traffic or traffic_for(topo)
    g = process_graph(topo, tr)
    resolvers = observed_resolvers(topo, tr)
    rows = []
    for p in topo.spec.process:
        accepts = {dst: sorted(kinds) for (src, dst), kinds in sorted(tr.accepted.items()) if src == p.name}
        grants = {dst: g.edges[p.name, dst]["capabilities"] for dst in accepts}
        rows.append({
            "process": p.name, "roles": list(p.roles), "user": p.user, "chroot": p.chroot or None,
            "root": p.root, "network_facing": p.network_facing, "exposure": p.exposure,
            "network_inputs": [i.model_dump() for i in p.network_inputs],
            "resolves_for": resolvers.get(p.name, {}),
            "secrets": [_holding(h) for h in p.secrets], "files": [_holding(h) for h in p.files],
            "peers_accept": accepts, "peers_grant": grants, "source": p.source,
            "declared": [{"to": d, "kind": k, "source": src} for (s_, d, k), src in sorted(tr.declared.items())
                         if s_ == p.name],
            "unchecked": {d: sorted(k) for (s_, d), k in sorted(tr.unchecked.items()) if s_ == p.name},
            "checks_sender": p.checks_sender,
        })
    return rows


def process_graph(topo: Topology, traffic: Traffic | None = None) -> nx.DiGraph:
    """Directed graph: an edge a -> b when b accepts at least one imsg kind from a, with ``kinds``
    and the ``capabilities`` they grant; ``unchecked_kinds`` are accepted only because b does not
    test the sender, ``sent_capabilities`` come from kinds a really sends (observed or declared).
    Nodes carry the privilege data."""
    tr = traffic or traffic_for(topo)
    g = nx.DiGraph(name=topo.name)
    for p in topo.spec.process:
        g.add_node(p.name, user=p.user, chroot=p.chroot, root=p.root, network_facing=p.network_facing,
                   exposure=p.exposure,
                   secrets=sorted({h.item for h in p.secrets if h.when == "serving"}))
    for (src, dst), kinds in sorted(tr.accepted.items()):
        def caps(ks: set[str], dst: str = dst) -> list[str]:
            return sorted({EFFECTS[(k, r)].capability for k in ks for r in receiving_roles(topo, dst, k)
                           if (k, r) in EFFECTS})
        unchecked = tr.unchecked.get((src, dst), set())
        g.add_edge(src, dst, kinds=sorted(kinds), capabilities=caps(kinds),
                   unchecked_kinds=sorted(unchecked), sent_capabilities=caps(kinds - unchecked))
    return g


# ---- blast radius ---------------------------------------------------------------------------


@dataclass
class BlastRadius:
    """What an attacker in (or reading the memory of) one or more processes reaches."""

    era: str
    compromised: str | list[str]
    scenario: str = "code-execution"
    exposed_secrets: list[str] = field(default_factory=list)
    reachable_processes: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    reachable_files: list[str] = field(default_factory=list)
    exposures: list[dict[str, Any]] = field(default_factory=list)
    paths: list[dict[str, Any]] = field(default_factory=list)
    conditional_secrets: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_process(topo: Topology, name: str) -> str:
    """A process name, or a role name standing for the process that hosts it (``smtp`` is
    ``pony`` from 5.7.3 on)."""
    if name in topo.processes:
        return name
    if name in topo.host:
        return topo.host[name]
    raise PrivsepError(f"{topo.name}: no process or role {name!r} (processes: "
                       f"{', '.join(topo.processes)})")


def _check_process(topo: Topology, process: str) -> ProcessSpec:
    return topo.processes[resolve_process(topo, process)]


def _expose(br: BlastRadius, h: Holding, holder: str, how: str) -> None:
    br.exposures.append({"secret": h.item, "holder": holder, "how": how, "form": h.form,
                         "condition": h.condition, "source": h.source})


def _finish(br: BlastRadius) -> BlastRadius:
    uncond = {e["secret"] for e in br.exposures if not e["condition"]}
    br.exposed_secrets = sorted(uncond)
    br.conditional_secrets = sorted({e["secret"] for e in br.exposures if e["condition"]} - uncond)
    br.capabilities = sorted(set(br.capabilities))
    br.reachable_files = sorted(set(br.reachable_files))
    br.reachable_processes = sorted(set(br.reachable_processes))
    return br


def blast_radius(topo: Topology, process: str, traffic: Traffic | None = None) -> BlastRadius:
    """Code execution in ``process``: its own serving-time secrets and files; the imsgs its
    peers accept from it and what those grant; through steering imsgs, every capability in
    their causal subtree. A root process owns the host: every secret and key file."""
    process = resolve_process(topo, process)
    p = topo.processes[process]
    tr = traffic or traffic_for(topo)
    br = BlastRadius(era=topo.name, compromised=process)
    for h in p.secrets:
        if h.when == "serving":
            _expose(br, h, process, "in the compromised process's memory")
    br.reachable_files += [h.item for h in p.files if h.when == "serving"]
    if p.root:
        br.capabilities += ["root", "exec-as-any-user"]  # root can become any user itself
        br.reachable_processes += [q for q in topo.processes if q != process]
        for q in topo.spec.process:
            for h in q.secrets:
                if h.when == "serving" and q.name != process:
                    _expose(br, h, q.name, "root reads any process's memory (ptrace)")
            if any(f.item == "private-key-files" for f in q.files):
                key = Holding(item="tls-private-key", source=f"{q.name}: private-key-files")
                _expose(br, key, "disk", "root reads the pki key files")
    done: set[tuple[str, str, str]] = set()
    todo: list[tuple[tuple[str, str, str], list[str]]] = [
        ((src, dst, k), [process, dst]) for (src, dst), kinds in sorted(tr.accepted.items())
        if src == process for k in sorted(kinds)]
    while todo:
        (src, dst, k), path = todo.pop(0)
        if (src, dst, k) in done:
            continue
        done.add((src, dst, k))
        if len(path) == 2:
            br.reachable_processes.append(dst)  # it accepts imsgs from the attacker
        for role in receiving_roles(topo, dst, k):
            eff = EFFECTS.get((k, role))
            if eff is None:
                continue
            br.reachable_processes.append(dst)
            br.capabilities.append(eff.capability)
            br.reachable_files += list(eff.files)
            origin = ("declared, not modelled" if (src, dst, k) in tr.unmodelled
                      else "declared" if (src, dst, k) in tr.declared
                      else "unchecked sender" if k in tr.unchecked.get((src, dst), ()) else "observed")
            br.paths.append({"capability": eff.capability, "path": path, "imsg": k, "receiver": role,
                             "origin": origin, "what": eff.what, "source": eff.source})
            if eff.discloses or eff.reveals:
                for h in topo.processes[dst].secrets:
                    if h.when == "serving" and (k in h.served_by or h.item == eff.reveals):
                        _expose(br, h, dst, f"{dst} answers {k} with it")
            for k2 in eff.forwards:
                # the receiver passes the request on as it came (lka -> parent for system passwords)
                for (s2, d2), ks in sorted(tr.accepted.items()):
                    if s2 == dst and d2 != process and k2 in ks and (dst, d2, k2) not in done:
                        todo.append(((dst, d2, k2), path + [d2]))
            if eff.stores:
                # stored envelopes come back out later, under another cause (the message commit,
                # the scheduler): every envelope-carrying send of the receiver carries them
                for (s2, d2), ks in sorted(tr.accepted.items()):
                    if s2 != dst or d2 == process:
                        continue
                    for k2 in sorted(ks):
                        if any(EFFECTS[(k2, r)].steers for r in receiving_roles(topo, d2, k2)
                               if (k2, r) in EFFECTS) and (dst, d2, k2) not in done:
                            todo.append(((dst, d2, k2), path + [d2]))
            if eff.steers:
                # the steered receiver's own later requests carry the attacker's data
                for hop in sorted(tr.subtree.get((src, dst, k), ())):
                    if hop[0] != dst or hop[1] == process or hop in done:
                        continue
                    if any(EFFECTS[(hop[2], r)].derived for r in receiving_roles(topo, hop[1], hop[2])
                           if (hop[2], r) in EFFECTS):
                        todo.append((hop, path + [hop[1]]))
    br.reachable_processes = [q for q in br.reachable_processes if q != process]
    return _finish(br)


# Memory-disclosure scenarios: the lowest exposure (spec.topology.EXPOSURES) a process needs
# for the bug to be reachable from the network, and how the memory is read.
DISCLOSURES: dict[str, tuple[str, str]] = {
    "heartbleed": ("network-facing", "memory disclosure (TLS heartbeat over-read)"),
    "parser-overread": ("parses-network-data", "over-read in a parser of attacker-shaped data "
                        "(SMTP and TLS in the network-facing processes, DNS answers in the resolver)"),
}


def memory_disclosure(topo: Topology, processes: list[str] | None = None,
                      scenario: str = "heartbleed") -> BlastRadius:
    """An attacker reads the memory of the processes exposed enough for ``scenario`` (Heartbleed:
    the network-facing ones; parser-overread: also those parsing attacker-shaped network data,
    lka's DNS answers), or of those given, and nothing more: the secrets they hold while serving."""
    level, how = DISCLOSURES[scenario]
    procs = list(dict.fromkeys(resolve_process(topo, n) for n in processes)) if processes else [
        p.name for p in topo.spec.process if exposure_rank(p.exposure) >= exposure_rank(level)]
    br = BlastRadius(era=topo.name, compromised=list(procs), scenario=scenario,
                     capabilities=["read-memory"])
    for name in procs:
        p = _check_process(topo, name)
        for h in p.secrets:
            if h.when == "serving":
                _expose(br, h, name, how)
    return _finish(br)


SCENARIOS = tuple(DISCLOSURES)


# ---- merges ---------------------------------------------------------------------------------


def _members(topo: Topology, roles: list[str]) -> list[str]:
    if not roles:
        raise PrivsepError("--merge needs at least one role")
    for r in roles:
        if r not in topo.host:
            raise PrivsepError(f"{topo.name}: no process hosts role {r!r} (roles here: "
                               f"{', '.join(topo.host)})")
    wanted = {topo.host[r] for r in roles}
    return [p.name for p in topo.spec.process if p.name in wanted]


def merge_topology(topo: Topology, roles: list[str]) -> Topology:
    """The topology with the processes hosting ``roles`` merged into one: roles, secrets and
    files and network inputs united, root or network-facing if any member was, no chroot if any member had
    none, channels rewired (the ones between members vanish: their imsgs become calls)."""
    members = _members(topo, roles)
    if len(members) < 2:
        return topo
    procs = [topo.processes[m] for m in members]
    name = "-".join(members)
    chroots = {p.chroot for p in procs}
    merged = ProcessSpec(
        name=name, title="merged " + "+".join(members), roles=[r for p in procs for r in p.roles],
        user="+".join(dict.fromkeys(p.user for p in procs)),
        chroot="" if "" in chroots or len(chroots) > 1 else procs[0].chroot,
        root=any(p.root for p in procs), network_facing=any(p.network_facing for p in procs),
        network_inputs=[i for p in procs for i in p.network_inputs],
        source="merged in memory by smtpd_sim.studies.privsep.merge_topology",
        secrets=[h for p in procs for h in p.secrets], files=[h for p in procs for h in p.files],
    )
    rename = {m: name for m in members}
    channels: list[tuple[str, str]] = []
    seen: set[frozenset[str]] = set()
    for a, b in topo.spec.channels:
        a2, b2 = rename.get(a, a), rename.get(b, b)
        if a2 == b2 or frozenset((a2, b2)) in seen:
            continue
        seen.add(frozenset((a2, b2)))
        channels.append((a2, b2))
    first = topo.spec.process.index(procs[0])
    plist = [p for p in topo.spec.process if p.name not in members]
    plist.insert(min(first, len(plist)), merged)
    data = topo.spec.model_dump()
    data.update(name=f"{topo.name}.merged", title=f"{topo.name} with {'+'.join(members)} merged",
                process=[p.model_dump() for p in plist], channels=channels)
    roles_here = set(merged.roles)
    if topo.behaviour.key_engine == "ca" and "ca" in roles_here and roles_here & {"smtp", "mta"}:
        # the key engine in the TLS process is a function call: the process signs itself, as
        # 5.4.2's smtp did (the model's key_engine = "none" path)
        data["behaviour"]["key_engine"] = "none"
    return Topology(TopologySpec.model_validate(data))


def _probe_hops(topo: Topology, kind: str, seed: int = 1) -> int:
    res = probe_result(probe_scenario(topo, kind, seed=seed), rows=False)
    led = res.ledger
    if led["delivered"] != led["accepted_messages"] or led["accepted_messages"] == 0:
        raise PrivsepError(f"{topo.name}: the {kind} probe did not deliver its message ({led})")
    # a hop crosses a process boundary (DESIGN.md "Words"): the kernel's counters also tally
    # imsgs between roles of one process (dispatched locally), which a merge creates
    return sum(n for (src, dst, _name), n in res.hop_counts.items() if src != dst)


def _boundary(kind: str, a: ProcessSpec, b: ProcessSpec, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, "between": [a.name, b.name], "enforced_by_kernel": kind in KERNEL_BOUNDARIES,
            **kw}


def erased_boundaries(topo: Topology, members: list[str], traffic: Traffic | None = None) -> list[dict[str, Any]]:
    """Every privilege difference between two processes that a merge would erase: user, root,
    chroot (the kernel enforces these), secrets and files one holds while serving and the
    other does not, imsg kinds a peer accepts from one and not from the other. ``moves_to_network``:
    the merged process is more exposed to network data (spec.topology.EXPOSURES) than the holder."""
    tr = traffic or traffic_for(topo)
    procs = [topo.processes[m] for m in members]
    level = max((p.exposure for p in procs), key=exposure_rank)  # the merged process's exposure
    out: list[dict[str, Any]] = []
    for i, a in enumerate(procs):
        for b in procs[i + 1:]:
            if a.user != b.user:
                out.append(_boundary("user", a, b, values=[a.user, b.user]))
            if a.root != b.root:
                out.append(_boundary("root", a, b, values=[a.root, b.root]))
            if a.chroot != b.chroot:
                out.append(_boundary("chroot", a, b, values=[a.chroot or None, b.chroot or None]))
    for a in procs:
        others = [p for p in procs if p is not a]
        for attr in ("secrets", "files"):
            mine = {h.item: h for h in getattr(a, attr) if h.when == "serving"}
            for item, h in sorted(mine.items()):
                lacking = [o.name for o in others
                           if item not in {x.item for x in getattr(o, attr) if x.when == "serving"}]
                if lacking:
                    out.append({"kind": attr[:-1], "item": item, "held_by": a.name, "gained_by": lacking,
                                "enforced_by_kernel": False,
                                "moves_to_network": exposure_rank(level) > exposure_rank(a.exposure),
                                "exposure": level,
                                "condition": h.condition, "source": h.source})
        mine_msgs = {(dst, k) for (src, dst), ks in tr.accepted.items() if src == a.name
                     for k in ks if dst not in members}
        caps = sorted({(dst, k, EFFECTS[(k, r)].capability) for dst, k in mine_msgs
                       for r in receiving_roles(topo, dst, k) if (k, r) in EFFECTS})
        for o in others:
            theirs = {(dst, k) for (src, dst), ks in tr.accepted.items() if src == o.name for k in ks}
            gained = [c for c in caps if (c[0], c[1]) not in theirs]
            if gained:
                out.append({"kind": "imsg", "held_by": a.name, "gained_by": [o.name],
                            "enforced_by_kernel": False,
                            "moves_to_network": exposure_rank(level) > exposure_rank(a.exposure),
                            "exposure": level,
                            "imsgs": [f"{k} -> {dst} ({cap})" for dst, k, cap in gained]})
    return out


def site_of(site: str | SiteSpec | None) -> SiteSpec:
    """A site by name or path (default: the common case the research counts hops for)."""
    from smtpd_sim.spec.scenario import DEFAULT_SITE

    if isinstance(site, SiteSpec):
        return site
    return load_site(site or DEFAULT_SITE)


def local_methods(site: SiteSpec) -> list[str]:
    """The delivery methods of the site's local actions (its `action ... mbox|maildir|mda`)."""
    return sorted({d.method for d in site.domain if d.action == "local"})


def fork_routes(topo: Topology, site: SiteSpec) -> list[dict[str, Any]]:
    """Per backend of the era's forkmda() (privsep_facts.DELIVERY): may a fork request name it
    (5.x: any compiled-in backend, the request names it; 6.8: a configured action only), and is
    uid 0 then served (``uid0``)."""
    facts = DELIVERY[topo.spec.vocabulary]
    configured = local_methods(site)
    out = []
    for b in facts.backends:
        nameable = facts.method_from_request or b.method in configured
        out.append({"method": b.method, "configured": b.method in configured, "nameable": nameable,
                    "allow_root": b.allow_root, "uid0": nameable and b.allow_root,
                    "as_root": b.as_root, "source": b.source})
    return out


def root_requests(topo: Topology, members: list[str], site: SiteSpec,
                  traffic: Traffic | None = None) -> list[dict[str, Any]]:
    """Requests a root process serves by running a program as the user the request names
    (``Effect.runs_as_requested``: MDA_FORK -> forkmda()) that a member sends: which processes
    the root process accepted it from before (its sender test, or none), their exposure, the
    merged process's exposure, and whether uid 0 is served (``fork_routes``)."""
    tr = traffic or traffic_for(topo)
    vocab = Vocabulary(topo.spec.vocabulary, plugin_imsgs())
    level = max((topo.processes[m].exposure for m in members), key=exposure_rank)
    routes = fork_routes(topo, site)
    found: dict[tuple[str, str, str], list[str]] = {}
    for (src, dst), kinds in sorted(tr.accepted.items()):
        if src not in members or dst in members or not topo.processes[dst].root:
            continue
        for k in sorted(kinds):
            for r in receiving_roles(topo, dst, k):
                if (k, r) in EFFECTS and EFFECTS[(k, r)].runs_as_requested:
                    found.setdefault((dst, k, r), []).append(src)
    out = []
    for (dst, k, r), senders in sorted(found.items()):
        eff = EFFECTS[(k, r)]
        before = sorted(s for (s, d), ks in tr.accepted.items() if d == dst and k in ks)
        level_before = max((topo.processes[s].exposure for s in before), key=exposure_rank)
        unchecked = sorted(s for s in before if k in tr.unchecked.get((s, dst), ()))
        out.append({
            "imsg": k, "name": vocab.name(k), "to": dst, "receiver": r, "capability": eff.capability,
            "what": eff.what, "source": eff.source, "sent_by": senders,
            "accepted_from_before": before, "accepted_unchecked_from": unchecked,
            "sender_test": FORK_SENDER_TEST[topo.spec.vocabulary] if k == "MDA_FORK" else "",
            "exposure_before": level_before, "exposure_after": level,
            "network_facing_after": level == "network-facing",
            "new_to_network": level == "network-facing" and level_before != "network-facing",
            "uid0_methods": [b["method"] for b in routes if b["uid0"]],
            "selector": DELIVERY[topo.spec.vocabulary].selector,
        })
    return out


def merge_check(topo: Topology, roles: list[str], seed: int = 1,
                site: str | SiteSpec | None = None) -> dict[str, Any]:
    """Would hosting ``roles`` in one process be safe, and what would it save?

    Unsafe when the merge erases a boundary the kernel enforces (user, root, chroot), or
    moves a secret or a file access into a process more exposed to network data than the
    member that held it (a memory disclosure there needs no code execution), or when the
    merged process faces the network and sends a request the root parent serves by running a
    program as the user it names (MDA_FORK: a bug in the SMTP or TLS code is then one imsg
    from a delivery agent as any user, as root where forkmda() serves uid 0) - also when the
    era already hosts the roles so (``already_one_process``). Other imsg capabilities that move
    are reported but do not decide: between processes of one user in one chroot the peer's
    check of the sender was the only barrier.
    Hops saved: probe sessions (one local, one relay message, no TLS) run on the era and on
    the merged topology, non-stat hops counted (the probes' hop definition, smtpd_sim.studies.probe).
    """
    members = _members(topo, roles)
    tr = traffic_for(topo)
    bounds = erased_boundaries(topo, members, tr) if len(members) > 1 else []
    unsafe = [b for b in bounds if b["enforced_by_kernel"]
              or (b["kind"] in ("secret", "file") and b["moves_to_network"])]
    requests = root_requests(topo, members, site_of(site), tr)
    merged = merge_topology(topo, roles)
    before = {k: _probe_hops(topo, k, seed) for k in ("local", "relay")}
    after = before if merged is topo else {k: _probe_hops(merged, k, seed) for k in ("local", "relay")}
    deciding_requests = [i for i, q in enumerate(requests) if q["network_facing_after"]]
    return {
        "era": topo.name, "merge": list(roles), "processes": members,
        "safe": not unsafe and not deciding_requests, "already_one_process": len(members) == 1,
        "erased_boundaries": bounds,
        "deciding_boundaries": [i for i, b in enumerate(bounds) if b in unsafe],
        "root_requests": requests, "deciding_requests": deciding_requests,
        "hops_saved_per_message": {k: before[k] - after[k] for k in before},
        "hops_per_message": {"before": before, "after": after},
        "hops_method": "run the local and relay probes (1 message, 1 recipient) on the era and on "
                       "the merged topology built in memory; non-stat hops",
        "rule": "unsafe if a kernel-enforced boundary (user, root, chroot) is erased, a secret or "
                "file moves into a process more exposed to network data, or the merged process "
                "faces the network and can ask the root parent to run a program as any user",
    }
