"""Topologies as data: load and validate ``scenarios/topologies/*.toml``, build networkx graphs.

A topology says which processes exist, which roles each hosts, their privileges, which
socketpairs are live, and the behaviour switches the era's code had. Errors in a file
are reported as one line naming the file, the key and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import networkx as nx
from pydantic import Field, field_validator, model_validator

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.spec.backends import get_backend
from smtpd_sim.spec.files import Strict, read_toml, resolve, validate
from smtpd_sim.spec.limits import MAX_COST_S, MAX_RSS_BYTES
from smtpd_sim.spec.plugins import plugin_errors, role_names

if TYPE_CHECKING:
    from smtpd_sim.spec.tables import TableSpec

# Every role talks to these roles in the common flows; a topology must give each pair a
# channel unless both roles live in the same process (checked in Topology validation).
ROLE_PEERS: dict[str, tuple[str, ...]] = {
    "smtp": ("lka", "queue", "control"),
    "mfa": ("control",),
    "mta": ("lka", "queue", "control"),
    "mda": ("lka", "queue", "parent", "control"),
    "lka": ("parent", "queue", "control"),
    "queue": ("scheduler", "control"),
    "scheduler": ("control",),
}


class TopologyError(SmtpdSimError):
    """A topology file is invalid; the message is one line."""


# Privsep model (issue 8): what a process may hold or open. Items are a closed vocabulary so
# a typo is an error, not a silently unprotected secret.
SECRET_ITEMS = ("tls-private-key", "queue-encryption-key", "auth-passwords", "relay-credentials",
                "message-data")
FILE_ITEMS = ("queue", "~/.forward", "maildirs", "private-key-files", "tables", "control-socket")
# How far network data reaches a process (issue 23), lowest first: "internal" = only imsgs from
# peers; "parses-network-data" = it accepts no connection but parses data a remote party shapes
# (lka's resolver parses the DNS answers, e.g. the PTR record of the client's own address);
# "network-facing" = it holds the SMTP/TLS sessions with remote hosts.
EXPOSURES = ("internal", "parses-network-data", "network-facing")


class Holding(Strict):
    """A secret a process holds, or a kind of file it can open, and when.

    ``when``: "startup" = only before it serves traffic (purged or dropped before the first
    session), "serving" = while it handles mail. ``form``: "in-use" = the process uses it,
    "dormant" = bytes left allocated and never used (6.8 lka, era-pony.md §1.2).
    ``served_by``: imsg kinds with which this process hands the secret to the peer asking.
    """

    item: str = Field(description="the secret (tls-private-key, queue-encryption-key, auth-passwords, "
                      "relay-credentials, message-data) or the kind of file (queue, ~/.forward, maildirs, "
                      "private-key-files, tables, control-socket)")
    when: Literal["startup", "serving"] = Field(default="serving", description="startup: only before the first "
                                                "session; serving: while it handles mail")
    form: Literal["in-use", "dormant"] = Field(default="in-use", description="in-use: the process uses it; "
                                               "dormant: bytes left allocated and never used")
    condition: str = Field(default="", description="the configuration that makes it true (empty: always)")
    served_by: list[str] = Field(default_factory=list, description="imsg kinds with which this process hands "
                                 "the secret to the peer asking")
    source: str = Field(min_length=1, description="where in the C this was read (file:function)")

    @field_validator("served_by")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        from smtpd_sim import imsg  # here, not at the top: compiled, see native.prepare()

        for k in v:
            if k not in imsg.KINDS:
                raise ValueError(f"unknown imsg kind {k!r} in served_by")
        return v


class NetworkInput(Strict):
    """Network data a process parses without holding the connection it came on: what, who
    shapes it (an attacker's share of it) and the C functions that receive and parse it."""

    item: Literal["dns-replies"] = Field(description="the network data the process parses")
    shaped_by: str = Field(min_length=1, description="who shapes that data (an attacker's share of it)")
    source: str = Field(min_length=1, description="the C functions that receive and parse it")


class ProcessSpec(Strict):
    """One long-lived process of the daemon and its privileges."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="the process's name (channels name it)")
    title: str = Field(default="", description="its title as ps shows it")
    roles: list[str] = Field(min_length=1, description="the roles it hosts (smtp, mfa, mta, mda, lka, queue, "
                             "scheduler, control, ca, parent)")
    user: str = Field(description="the user it runs as")
    chroot: str = Field(default="", description="the directory it is chrooted to (empty: no chroot)")
    root: bool = Field(default=False, description="it keeps root privileges")
    network_facing: bool = Field(default=False, description="it holds the SMTP/TLS sessions with remote hosts")
    rss_bytes: int = Field(default=8_000_000, gt=0, le=MAX_RSS_BYTES, description="resident memory of the "
                           "process")
    source: str = Field(default="", description="where in the C this was read")
    secrets: list[Holding] = Field(default_factory=list, description="[[process.secrets]]: secrets it holds, "
                                   "and when")
    files: list[Holding] = Field(default_factory=list, description="[[process.files]]: kinds of file it can "
                                 "open, and when")
    # its *_imsg() handlers test the sender (``if (p->proc == PROC_X)``) before acting on a
    # type; false = dispatch on the type alone, so every peer may send every handled type
    checks_sender: bool = Field(default=True, description="its imsg handlers check which peer sent a message "
                                "before acting on its type")
    # network data it parses though it accepts no connection (exposure "parses-network-data")
    network_inputs: list[NetworkInput] = Field(default_factory=list, description="network data it parses "
                                               "though it accepts no connection")

    @property
    def exposure(self) -> str:
        """Its level in ``EXPOSURES``: network-facing, parses network data, or internal."""
        if self.network_facing:
            return "network-facing"
        return "parses-network-data" if self.network_inputs else "internal"

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        known = role_names()
        for r in roles:
            if r in plugin_errors():
                raise ValueError(plugin_errors()[r])
            if r not in known:
                raise ValueError(f"unknown role {r!r} (expected one of {', '.join(known)})")
        if len(set(roles)) != len(roles):
            raise ValueError("a role is listed twice")
        return roles

    @field_validator("secrets")
    @classmethod
    def _known_secrets(cls, v: list[Holding]) -> list[Holding]:
        for h in v:
            if h.item not in SECRET_ITEMS:
                raise ValueError(f"unknown secret {h.item!r} (expected one of {', '.join(SECRET_ITEMS)})")
        return v

    @field_validator("files")
    @classmethod
    def _known_files(cls, v: list[Holding]) -> list[Holding]:
        for h in v:
            if h.item not in FILE_ITEMS:
                raise ValueError(f"unknown file kind {h.item!r} (expected one of {', '.join(FILE_ITEMS)})")
            if h.served_by:
                raise ValueError("served_by is for secrets only")
        return v


FILTER_PHASES = ("connect", "helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "rset",
                 "quit", "noop", "commit")


class FilterSpec(Strict):
    """A 6.8 filter processor (``filter NAME proc-exec "cmd"``): forked by the parent, run as
    ``user`` (default the smtpd user), spoken to by lka only, over a text protocol."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="the filter's name (`filter NAME`)")
    command: str = Field(default="", description="the command the parent runs (`proc-exec \"cmd\"`)")
    phases: list[str] = Field(default_factory=list, description="SMTP phases it filters "
                              "(`register|filter|smtp-in|<phase>`)")
    reports: bool = Field(default=True, description="it registers for reports: lka forwards the session's "
                          "events to it")
    user: str = Field(default="_smtpd", description="the user it runs as")
    chroot: str = Field(default="", description="the directory it is chrooted to (empty: none)")
    query_cpu_s: float = Field(default=50e-6, ge=0, le=MAX_COST_S, description="the processor's CPU per filter "
                               "line it answers")
    report_cpu_s: float = Field(default=10e-6, ge=0, le=MAX_COST_S, description="the processor's CPU per report "
                                "line it reads")

    @field_validator("phases")
    @classmethod
    def _phases(cls, v: list[str]) -> list[str]:
        for ph in v:
            if ph not in FILTER_PHASES:
                raise ValueError(f"unknown filter phase {ph!r} (expected one of {', '.join(FILTER_PHASES)})")
        return v


class Behaviour(Strict):
    """Switches the era's code had (they select code paths in the roles, never counts)."""

    resolver: Literal["ptr", "fcrdns"] = Field(description="the client's name: a PTR lookup, or forward-"
                                               "confirmed reverse DNS")
    filters: Literal["mfa", "inproc"] = Field(description="who answers the filter checks: the MFA process, or "
                                              "smtp in-process")
    smtp_variant: Literal["5.4.2", "5.7.3", "6.8"] = Field(description="whose SMTP session code runs")
    retry: Literal["5.4.2", "5.7.3", "6.8"] = Field(description="whose scheduler retry and expiry rules apply")
    stat_buffers: bool = Field(default=False, description="a 1-s IMSG_STAT_SET to each peer "
                               "(5.4.2 config.c:process_stat_event())")
    stat_set_peers: list[str] = Field(default_factory=list, description="the processes IMSG_STAT_SET goes to")
    stat_zero_counts: bool = Field(default=False, description="a stat update of 0 is still sent where the "
                                   "C passes a count (5.4.2 stat_backend.c: no early return; 5.7.3 and 6.8 "
                                   "return on count == 0)")
    key_engine: Literal["none", "ca"] = Field(default="none", description="ca: private-key operations go to "
                                              "the ca process (klondike)")
    smarthost_lookup: bool = Field(default=False, description="mta asks lka for the smarthost "
                                   "(6.8 mta_handle_envelope(): IMSG_MTA_LOOKUP_SMARTHOST)")


class TopologySpec(Strict):
    """A topology file (an era): its processes, their privileges, channels and code switches."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$", description="the era's name (what `era =` names)")
    version: str = Field(description="the OpenSMTPD version it models")
    title: str = Field(default="", description="one line saying what the era is (`smtpd-sim scenarios` shows it)")
    vocabulary: str = Field(description="the imsg vocabulary of its code (5.4.2, 5.7.3, 6.8)")
    source: str = Field(default="", description="where in the research this was read")
    behaviour: Behaviour = Field(description="[behaviour]: switches of the era's code")
    process: list[ProcessSpec] = Field(min_length=1, description="[[process]]: the long-lived processes")
    channels: list[tuple[str, str]] = Field(description="the live socketpairs, as pairs of process names")
    channel_source: str = Field(default="", description="where in the C the channels were read")
    filter: list[FilterSpec] = Field(default_factory=list, description="[[filter]]: 6.8 filter processors "
                                     "(a filtered listener)")

    @field_validator("vocabulary")
    @classmethod
    def _vocab(cls, v: str) -> str:
        from smtpd_sim import imsg  # here, not at the top: compiled, see native.prepare()
        if v not in imsg.VOCABULARIES:
            raise ValueError(f"unknown vocabulary {v!r} (expected one of {', '.join(imsg.VOCABULARIES)})")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TopologySpec:
        names = [p.name for p in self.process]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"process {sorted(dup)[0]!r} is defined twice")
        hosted: dict[str, str] = {}
        for p in self.process:
            for r in p.roles:
                if r in hosted:
                    raise ValueError(f"role {r!r} is hosted by both {hosted[r]!r} and {p.name!r}")
                hosted[r] = p.name
        for needed in ("parent", "smtp", "mta", "mda", "lka", "queue", "scheduler", "control"):
            if needed not in hosted:
                raise ValueError(f"no process hosts the {needed!r} role")
        if self.behaviour.filters == "mfa" and "mfa" not in hosted:
            raise ValueError("behaviour.filters = 'mfa' but no process hosts the 'mfa' role")
        if self.behaviour.key_engine == "ca" and "ca" not in hosted:
            raise ValueError("behaviour.key_engine = 'ca' but no process hosts the 'ca' role")
        pairs = set()
        for i, (a, b) in enumerate(self.channels):
            for end in (a, b):
                if end not in names:
                    raise ValueError(f"channels[{i}] goes to {end!r}, which is not a process")
            if a == b:
                raise ValueError(f"channels[{i}] connects {a!r} to itself")
            key = frozenset((a, b))
            if key in pairs:
                raise ValueError(f"channels[{i}] ({a}, {b}) is listed twice")
            pairs.add(key)
        for role, peers in ROLE_PEERS.items():
            if role not in hosted:
                continue
            for peer in peers:
                a, b = hosted[role], hosted.get(peer)
                if b is None or a == b:
                    continue
                if frozenset((a, b)) not in pairs:
                    raise ValueError(
                        f"role {role!r} ({a}) needs a channel to role {peer!r} ({b}), none is listed"
                    )
        if self.filter and self.vocabulary != "6.8":
            raise ValueError("filter processors exist only in 6.8 (filter proc-exec, lka_filter.c)")
        if self.behaviour.filters == "mfa":
            a, b = hosted["smtp"], hosted["mfa"]
            if a != b and frozenset((a, b)) not in pairs:
                raise ValueError(f"smtp ({a}) needs a channel to mfa ({b})")
        return self


class Topology:
    """A validated topology with its networkx graph."""

    def __init__(self, spec: TopologySpec, path: Path | None = None) -> None:
        self.spec = spec
        self.path = path
        self.name = spec.name
        self.behaviour = spec.behaviour
        self.processes = {p.name: p for p in spec.process}
        self.host = {r: p.name for p in spec.process for r in p.roles}
        self.graph = self._graph()

    def _graph(self) -> nx.Graph:
        g = nx.Graph(name=self.name, version=self.spec.version)
        for p in self.spec.process:
            g.add_node(
                p.name, roles=list(p.roles), user=p.user, chroot=p.chroot, root=p.root,
                network_facing=p.network_facing, title=p.title,
            )
        for a, b in self.spec.channels:
            g.add_edge(a, b)
        return g

    @property
    def n_processes(self) -> int:
        """Long-lived processes: the daemon's, plus two per filter processor (the parent's
        child blocked in ``system()`` and the command itself, era-pony.md §1.2)."""
        return len(self.spec.process) + 2 * len(self.spec.filter)

    @property
    def n_channels(self) -> int:
        return self.graph.number_of_edges()

    def graph_with_tables(self, tables: dict[str, TableSpec]) -> nx.Graph:
        """What ``ps`` shows once the lka has run ``table_open_all()``: a copy of the graph
        plus a ``table-<name>`` node per table process, forked by and talking only to the
        lka's process, running as the lka's user (``fork_proc_backend()`` execs the program
        without changing user or root)."""
        g = self.graph.copy()
        lka = self.host["lka"]
        user = self.processes[lka].user
        for name in sorted(tables):
            backend = get_backend(tables[name].backend)
            if not backend.external:
                continue
            node = f"table-{name}"
            g.add_node(node, roles=[], user=user, chroot="", root=False, network_facing=False,
                       title=f"table-{backend.name} {name}", table=name, backend=backend.name)
            g.add_edge(lka, node)
        return g

    def to_dot(self) -> str:
        """Graphviz DOT: processes (roles, user, chroot) and live channels."""
        lines = [f'graph "{self.name}" {{', "  node [shape=box, fontname=Helvetica];"]
        for p in self.spec.process:
            label = f"{p.name}\\n[{', '.join(p.roles)}]\\n{p.user}" + (f"\\n{p.chroot}" if p.chroot else "")
            style = ', style=filled, fillcolor="#f4cccc"' if p.root else ""
            if p.network_facing:
                style += ", peripheries=2"
            lines.append(f'  "{p.name}" [label="{label}"{style}];')
        for a, b in self.spec.channels:
            lines.append(f'  "{a}" -- "{b}";')
        lines.append("}")
        return "\n".join(lines) + "\n"


ERAS = ("with-mfa", "without-mfa", "pony", "pony-6.8")  # the four built-in eras, oldest first


def load_topology(ref: str | Path) -> Topology:
    """Load a topology by era name (``with-mfa``) or by path to a TOML file."""
    path = resolve(ref, "topology", TopologyError, lambda r, _c: (
        f"{r}: unknown era (expected one of {', '.join(ERAS)} or a .toml file)"))
    spec = validate(TopologySpec, read_toml(path, "topology", TopologyError), path, TopologyError)
    return Topology(spec, path)
