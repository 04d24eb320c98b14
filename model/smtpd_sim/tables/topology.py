"""The daemon's process graph with its table processes (what ``ps`` shows once the lka
has run ``table_open_all()``): one ``table-<name>`` node per external table, forked by
and talking only to the lka's process, running as the lka's user (``fork_proc_backend()``
execs the program without changing user or root)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

from smtpd_sim.tables.registry import get_backend
from smtpd_sim.tables.spec import TableSpec

if TYPE_CHECKING:
    from smtpd_sim.spec.topology import Topology


def graph_with_tables(topology: Topology, tables: dict[str, TableSpec]) -> nx.Graph:
    """A copy of ``topology.graph`` plus a node and a socketpair per table process."""
    g = topology.graph.copy()
    lka = topology.host["lka"]
    user = topology.processes[lka].user
    for name in sorted(tables):
        backend = get_backend(tables[name].backend)
        if not backend.external:
            continue
        node = f"table-{name}"
        g.add_node(node, roles=[], user=user, chroot="", root=False, network_facing=False,
                   title=f"table-{backend.name} {name}", table=name, backend=backend.name)
        g.add_edge(lka, node)
    return g
