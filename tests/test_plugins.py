"""Roles from other packages (``smtpd_sim.roles`` entry points): the example package's
``spamd`` role is found once installed, a topology may host it, and it runs and is measured
like the daemon's own processes; a broken plugin harms nothing until a topology names it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from model.metrics import run_load
from model.plugins import ROLE_ENTRY_POINT_GROUP, plugin_roles, role_names
from model.topology import Topology, TopologySpec, load_topology
from model.world.clients import Arrival, Mix, WorkloadSpec

EXAMPLE = Path(__file__).parent.parent / "extras" / "smtpd-sim-table-example"


def _fake_install(site: Path, name: str, entry_points: str) -> None:
    """What ``pip install`` leaves in site-packages: a .dist-info with METADATA and
    entry_points.txt (all importlib.metadata reads)."""
    d = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    d.mkdir(parents=True)
    (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (d / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def fresh() -> object:
    plugin_roles(refresh=True)
    yield
    plugin_roles(refresh=True)


def _with_spamd() -> Topology:
    d = load_topology("pony-6.8").spec.model_dump()
    d["name"] = "pony-6.8-spamd"
    d["process"].append({"name": "spamd", "roles": ["spamd"], "user": "_spamd", "chroot": "/var/empty"})
    return Topology(TopologySpec.model_validate(d))


def test_example_role_is_discovered_once_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   fresh: object) -> None:
    assert "spamd" not in role_names()
    with pytest.raises(ValueError, match="unknown role 'spamd'"):
        _with_spamd()
    eps = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"][ROLE_ENTRY_POINT_GROUP]
    assert eps == {"spamd": "smtpd_sim_table_example.roles:SpamdRole"}
    site = tmp_path / "site-packages"
    _fake_install(site, "smtpd-sim-table-example",
                  f"[{ROLE_ENTRY_POINT_GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    monkeypatch.syspath_prepend(str(site))
    plugin_roles(refresh=True)
    assert "spamd" in role_names()
    topo = _with_spamd()
    assert topo.n_processes == load_topology("pony-6.8").n_processes + 1
    wl = WorkloadSpec(name="w", duration_s=130.0, arrival=Arrival(process="poisson", rate_per_s=2.0),
                      mix=Mix(local_share=1.0))
    m, sim = run_load(topo, wl, seed=1)
    spamd = sim.roles["spamd"]
    assert spamd.reloads == 2  # at 60 s and 120 s (its period, a user parameter)
    assert 0.99 < m.idle_fraction["spamd"] < 1.0  # busy 2 x 20 ms in ~130 s, idle otherwise
    assert m.accepted > 0


def test_a_broken_role_plugin_is_reported_only_when_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          fresh: object) -> None:
    site = tmp_path / "site-packages"
    _fake_install(site, "broken", f"[{ROLE_ENTRY_POINT_GROUP}]\nspamd = no_such_module_xyz:Role\n")
    monkeypatch.syspath_prepend(str(site))
    plugin_roles(refresh=True)
    load_topology("pony-6.8")  # the daemon's own topologies are unaffected
    with pytest.raises(ValueError, match="role plugin 'spamd'.*failed to load"):
        _with_spamd()


def test_a_plugin_cannot_replace_a_daemon_role(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               fresh: object) -> None:
    site = tmp_path / "site-packages"
    _fake_install(site, "evil", f"[{ROLE_ENTRY_POINT_GROUP}]\nqueue = smtpd_sim_table_example.roles:SpamdRole\n")
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    monkeypatch.syspath_prepend(str(site))
    assert "queue" not in plugin_roles(refresh=True)
