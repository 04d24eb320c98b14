"""Roles from other packages (``smtpd_sim.roles`` entry points): the example package's
``spamd`` role is found once installed, a topology may host it, and it runs and is measured
like the daemon's own processes; a broken plugin harms nothing until a topology names it."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from smtpd_sim.spec.plugins import ROLE_ENTRY_POINT_GROUP, plugin_roles, role_names
from smtpd_sim.spec.topology import Topology, TopologySpec, load_topology
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec
from smtpd_sim.studies.load import run_load

EXAMPLE = Path(__file__).parents[2] / "extras" / "smtpd-sim-table-example"


def _with_spamd() -> Topology:
    d = load_topology("pony-6.8").spec.model_dump()
    d["name"] = "pony-6.8-spamd"
    d["process"].append({"name": "spamd", "roles": ["spamd"], "user": "_spamd", "chroot": "/var/empty"})
    return Topology(TopologySpec.model_validate(d))


def test_example_role_is_discovered_once_installed(fake_install: Callable[[str, str], None]) -> None:
    assert "spamd" not in role_names()
    with pytest.raises(ValueError, match="unknown role 'spamd'"):
        _with_spamd()
    eps = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"][ROLE_ENTRY_POINT_GROUP]
    assert eps == {"spamd": "smtpd_sim_table_example.roles:SpamdRole"}
    fake_install("smtpd-sim-table-example",
                 f"[{ROLE_ENTRY_POINT_GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    plugin_roles(refresh=True)
    assert "spamd" in role_names()
    topo = _with_spamd()
    assert topo.n_processes == load_topology("pony-6.8").n_processes + 1
    wl = WorkloadSpec(name="w", duration_s=130.0, arrival=Arrival(process="poisson", rate_per_s=2.0),
                      mix=Mix(local_share=1.0))
    m, res = run_load(topo, wl, seed=1)
    assert res.counters["spamd"] == {"reloads": 2}  # at 60 s and 120 s (its period, a user parameter)
    assert 0.99 < m.idle_fraction["spamd"] < 1.0  # busy 2 x 20 ms in ~130 s, idle otherwise
    assert m.accepted > 0


def test_a_broken_role_plugin_is_reported_only_when_named(fake_install: Callable[[str, str], None]) -> None:
    fake_install("broken", f"[{ROLE_ENTRY_POINT_GROUP}]\nspamd = no_such_module_xyz:Role\n")
    plugin_roles(refresh=True)
    load_topology("pony-6.8")  # the daemon's own topologies are unaffected
    with pytest.raises(ValueError, match="role plugin 'spamd'.*failed to load"):
        _with_spamd()


def test_a_plugin_cannot_replace_a_daemon_role(fake_install: Callable[[str, str], None]) -> None:
    fake_install("evil", f"[{ROLE_ENTRY_POINT_GROUP}]\nqueue = smtpd_sim_table_example.roles:SpamdRole\n")
    assert "queue" not in plugin_roles(refresh=True)
