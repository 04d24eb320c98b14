"""Table backends (spec/backends.py, spec/tables.py, world/tables.py): configuration, the lka's lookups, table processes,
plugin discovery through the ``smtpd_sim.tables`` entry points. No root needed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from smtpd_sim.kernel.process import ModelError
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.backends import ENTRY_POINT_GROUP, backends, get_backend
from smtpd_sim.spec.files import scenario_dir
from smtpd_sim.spec.scenario import ScenarioError, ScenarioSpec, load_scenario, scenario_of
from smtpd_sim.spec.tables import TableSpec, merge_tables
from smtpd_sim.spec.workload import parse_workload
from smtpd_sim.studies.run import run_scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "extras" / "smtpd-sim-table-example"
BUILTIN = {"static", "db", "ldap", "mysql", "postgres", "redis", "socketmap", "sqlite"}


def _workload(users: list[str], rate: float = 20.0, duration: float = 2.0) -> object:
    return parse_workload({"arrival": {"process": "fixed", "rate_per_s": rate}, "duration_s": duration,
                           "mix": {"local_share": 1.0, "local_users": users, "pick": "cycle"}})


def _sim(tables: dict[str, dict[str, object]] | None, users: list[str], **kw: object) -> Simulation:
    specs = {k: TableSpec.model_validate(v) for k, v in (tables or {}).items()}
    sim = Simulation(scenario_of("pony-6.8", workload=_workload(users, **kw), tables=specs),  # type: ignore[arg-type]
                     rows=False)
    sim.startup()
    sim.start_clients()
    sim.run_until_quiet(max_time=120)
    return sim


# ---- configuration ----------------------------------------------------------------------


def test_builtin_backends_and_kinds() -> None:
    known = backends(refresh=True)
    assert BUILTIN <= set(known)
    assert not get_backend("static").external and not get_backend("db").external
    for name in ("ldap", "mysql", "postgres", "redis", "socketmap", "sqlite"):
        assert get_backend(name).external, name


def test_unknown_backend_one_line_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown table backend 'nope'.*sqlite"):
        TableSpec(backend="nope")
    f = tmp_path / "s.toml"
    f.write_text('[tables.aliases]\nbackend = "nope"\n')
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    msg = str(e.value)
    assert "\n" not in msg and "tables.aliases.backend" in msg and "unknown table backend 'nope'" in msg


def test_cli_unknown_backend_exit_2_one_line(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('[tables.aliases]\nbackend = "nope"\n')
    cp = subprocess.run([sys.executable, "-m", "smtpd_sim", "run", str(f)], capture_output=True, text=True)
    assert cp.returncode == 2
    assert len(cp.stderr.strip().splitlines()) == 1, cp.stderr
    assert "unknown table backend 'nope'" in cp.stderr and "Traceback" not in cp.stderr


def test_unmeasured_backend_needs_lookup_s_and_unknown_table_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="'ldap' has no measured lookup cost: set lookup_s"):
        TableSpec(backend="ldap")
    assert TableSpec(backend="ldap", lookup_s=0.002).lookup_s == 0.002
    with pytest.raises(ValueError, match="unknown table 'virtual'"):
        ScenarioSpec.model_validate({"tables": {"virtual": {"backend": "static"}}})


def test_dotted_key_reaches_the_table_through_the_scenario() -> None:
    """What a sweep does with ``--vary tables.aliases.lookup_s=...``: set the nested key on
    the dumped scenario and validate again."""
    base = ScenarioSpec.model_validate({"tables": {"aliases": {"backend": "ldap", "lookup_s": 0.002}}})
    data = base.model_dump(mode="json")
    data["tables"]["aliases"]["lookup_s"] = 0.005
    spec = ScenarioSpec.model_validate(data)
    assert spec.tables["aliases"].lookup_s == 0.005 and spec.tables["aliases"].backend == "ldap"
    # a scenario without [tables] still takes the key
    empty = ScenarioSpec().model_dump(mode="json")
    empty.setdefault("tables", {}).setdefault("aliases", {})["lookup_s"] = 0.001
    assert ScenarioSpec.model_validate(empty).tables["aliases"].lookup_s == 0.001


def test_site_tables_with_scenario_fields_on_top() -> None:
    site = {"aliases": TableSpec(backend="ldap", lookup_s=0.002, concurrency=4)}
    over = {"aliases": TableSpec.model_validate({"lookup_s": 0.010})}  # backend left unset
    merged = merge_tables(site, over)["aliases"]
    assert (merged.backend, merged.lookup_s, merged.concurrency) == ("ldap", 0.010, 4)
    # a scenario that only switches the backend to one needing lookup_s: one-line error
    only_backend = TableSpec.model_construct(backend="ldap", _fields_set={"backend"})
    with pytest.raises(ModelError, match="tables.aliases: .*set lookup_s"):
        merge_tables({"aliases": TableSpec(backend="static")}, {"aliases": only_backend})


def test_measured_backends_cite_the_calibration_file() -> None:
    cal = tomllib.loads((scenario_dir() / "calibration" / "tables-6.8.toml").read_text())
    for name in ("sqlite", "redis"):
        p = get_backend(name).resolve(TableSpec(backend=name))
        assert p.cpu_s == pytest.approx(cal["backend"][name]["cpu_s"])
        assert p.lookup_s == pytest.approx(cal["backend"][name]["lookup_s"])
        assert "tables-6.8.toml" in p.source
    assert get_backend("ldap").resolve(TableSpec(backend="ldap", lookup_s=0.002)).source.startswith("user parameter (lookup_s)")


# ---- the lka's lookups ------------------------------------------------------------------------


def test_no_table_and_static_table_give_the_same_run_static_counts_lookups() -> None:
    a = _sim(None, ["staff", "alice"])
    b = _sim({"aliases": {"backend": "static"}}, ["staff", "alice"])
    assert a.ledger.summary(set()) == b.ledger.summary(set())
    assert a.env.now == b.env.now and a.clients.latency == b.clients.latency
    assert a.tables == {}
    t = b.tables["aliases"]
    # aliases_get() for every non-sameuser username: staff (hit) -> alice, bob (two misses);
    # alice (miss): 3 lookups per staff message, 1 per alice message
    msgs = b.ledger.accepted_msgs  # pick = cycle: staff, alice, staff, ...
    assert msgs > 10
    assert t.lookups == (msgs + 1) // 2 * 3 + msgs // 2 * 1


def test_subaddress_looks_up_with_the_tag_then_without() -> None:
    sim = _sim({"aliases": {"backend": "static"}}, ["alice+news"])
    assert sim.tables["aliases"].lookups == 2 * sim.ledger.accepted_msgs


def test_table_process_blocks_the_lka_for_each_round_trip() -> None:
    lookup_s, cpu_s = 0.004, 50e-6
    sim = _sim({"aliases": {"backend": "ldap", "lookup_s": lookup_s, "cpu_s": cpu_s}}, ["staff"])
    t = sim.tables["aliases"]
    lat = sim._channel_latency
    assert t.proc is not None and sim.procs["table-aliases"] is t.proc
    assert t.lookups == 3 * sim.ledger.accepted_msgs > 0
    # the lka asks one question at a time (table_proc_call() blocks): the server never queues
    assert t.server_queued == 0
    assert t.waited_s == pytest.approx(t.lookups * (lookup_s + cpu_s + 2 * lat))
    # the table process ran its handler once per lookup, on the simulated cores
    assert t.served == t.lookups
    assert sim.process_totals()["table-aliases"]["cpu"] == pytest.approx(t.lookups * cpu_s)
    # the lka was busy (blocked) at least that long
    assert sim.process_totals()["lka"]["busy"] >= t.waited_s


def test_a_slow_table_saturates_the_lka() -> None:
    """With 20 ms per lookup and 3 lookups per message the blocked lka serves at most
    ~16 messages/s: at 30/s offered the delivered rate falls below the offered rate and
    below the static table's."""
    fast = _sim({"aliases": {"backend": "static"}}, ["staff"], rate=30.0, duration=4.0)
    slow = _sim({"aliases": {"backend": "ldap", "lookup_s": 0.020}}, ["staff"], rate=30.0, duration=4.0)
    busy_fast = fast.process_totals()["lka"]["busy"] / fast.env.now
    busy_slow = slow.process_totals()["lka"]["busy"] / slow.env.now
    assert busy_slow > 0.9 > busy_fast
    assert slow.env.now > fast.env.now + 2.0  # the backlog takes longer to drain


def test_deterministic_with_a_table_process() -> None:
    spec = ScenarioSpec.model_validate({"seed": 3, "drain_s": 30,
                                        "workload": {"duration_s": 2.0, "arrival": {"rate_per_s": 30.0}},
                                        "tables": {"aliases": {"backend": "ldap", "lookup_s": 0.003}}})
    r1, s1 = run_scenario(spec)
    r2, s2 = run_scenario(spec)
    assert r1.summary() | {"wall_s": 0} == r2.summary() | {"wall_s": 0}
    assert s1.tables["aliases"] == s2.tables["aliases"]
    assert "table-aliases" in r1.cpu_ms_per_msg
    assert r1.config["scenario"]["tables"]["aliases"]["backend"] == "ldap"


def test_restart_forks_a_new_table_process() -> None:
    sim = _sim({"aliases": {"backend": "ldap", "lookup_s": 0.001}}, ["alice"], duration=1.0)
    before = sim.tables["aliases"]
    sim.crash("lka", 0.5)
    sim.run(sim.env.now + 1.0)
    assert sim.restarts == 1 and sim.tables["aliases"] is not before
    assert sim.procs["table-aliases"] is sim.tables["aliases"].proc


# ---- plugins ------------------------------------------------------------------------------------


def test_example_plugin_is_discovered_once_installed(fake_install: Callable[[str, str], None]) -> None:
    assert "http" not in backends(refresh=True)
    with pytest.raises(ValueError, match="unknown table backend 'http'"):
        TableSpec(backend="http")
    # the example package's own pyproject declares the entry point we install
    pyproject = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    eps = pyproject["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert eps == {"http": "smtpd_sim_table_example:HttpBackend"}
    fake_install(pyproject["project"]["name"],
                 f"[{ENTRY_POINT_GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    b = get_backend("http")  # found without a refresh by hand: an unknown name re-reads the entry points
    assert type(b).__name__ == "HttpBackend" and b.external and b.name == "http"
    sim = _sim({"aliases": {"backend": "http"}}, ["staff"])
    t = sim.tables["aliases"]
    assert t.lookups == 3 * sim.ledger.accepted_msgs > 0
    assert t.params.lookup_s == b.lookup_s and t.params.concurrency == b.concurrency
    assert t.waited_s == pytest.approx(t.lookups * (b.lookup_s + b.cpu_s + 2 * sim._channel_latency))


def test_broken_plugin_is_reported_when_used_and_harms_nothing_else(
        fake_install: Callable[[str, str], None]) -> None:
    fake_install("broken-plugin", f"[{ENTRY_POINT_GROUP}]\nbroken = no_such_module_xyz:Backend\n"
                                  f"static = no_such_module_xyz:Static\n")
    known = backends(refresh=True)
    assert isinstance(known["broken"], str) and not isinstance(known["static"], str)  # no shadowing
    with pytest.raises(ValueError, match="'broken'.*failed to load: ModuleNotFoundError"):
        TableSpec(backend="broken")
    assert TableSpec(backend="sqlite").backend == "sqlite"


def test_backend_concurrency_cannot_matter_behind_a_synchronous_lka() -> None:
    """One lka, one question at a time (table_proc.c): a server with 8 slots serves the
    same run as one with a single slot."""
    one = _sim({"aliases": {"backend": "ldap", "lookup_s": 0.01, "concurrency": 1}}, ["staff"], rate=40.0)
    eight = _sim({"aliases": {"backend": "ldap", "lookup_s": 0.01, "concurrency": 8}}, ["staff"], rate=40.0)
    assert one.env.now == eight.env.now and one.clients.latency == eight.clients.latency
    assert one.tables["aliases"].server_queued == eight.tables["aliases"].server_queued == 0


def test_a_backend_that_errs_on_a_missing_key_tempfails_the_recipient() -> None:
    """Debian's table-redis answers a key it does not have with -1: lka_expand() sets
    LKA_TEMPFAIL, the client gets 424 and nothing is queued for that recipient."""
    ok = _sim({"aliases": {"backend": "ldap", "lookup_s": 0.001}}, ["alice"], duration=1.0)
    bad = _sim({"aliases": {"backend": "ldap", "lookup_s": 0.001, "miss_tempfails": True}}, ["alice"], duration=1.0)
    assert ok.ledger.accepted_msgs > 0 and bad.ledger.accepted_msgs == 0
    assert bad.tables["aliases"].lookups == ok.tables["aliases"].lookups  # one lookup each, then the error
    staff = _sim({"aliases": {"backend": "ldap", "lookup_s": 0.001, "miss_tempfails": True}}, ["staff"],
                 duration=1.0)
    assert staff.ledger.accepted_msgs == 0  # staff hits, but alice and bob miss


def test_table_processes_join_the_process_graph() -> None:
    from smtpd_sim.spec.topology import load_topology

    topo = load_topology("pony-6.8")
    g = topo.graph_with_tables({"aliases": TableSpec(backend="ldap", lookup_s=0.001)})
    assert g.number_of_nodes() == topo.graph.number_of_nodes() + 1
    assert set(g.neighbors("table-aliases")) == {topo.host["lka"]}
    assert g.nodes["table-aliases"]["user"] == topo.processes[topo.host["lka"]].user
    static = topo.graph_with_tables({"aliases": TableSpec(backend="static")})
    assert static.number_of_nodes() == topo.graph.number_of_nodes()  # in the lka, no process


def test_what_if_asynchronous_lookups_let_the_server_concurrency_matter() -> None:
    """Not 6.8: with ``blocking = false`` the lka keeps working while lookups are out, so
    lookups overlap and queue at a one-slot server, and more slots remove that queue."""
    slow = {"backend": "ldap", "lookup_s": 0.02}
    blocking = _sim({"aliases": slow}, ["staff"], rate=30.0, duration=4.0)
    one = _sim({"aliases": slow | {"blocking": False, "concurrency": 1}}, ["staff"], rate=30.0, duration=4.0)
    many = _sim({"aliases": slow | {"blocking": False, "concurrency": 16}}, ["staff"], rate=30.0, duration=4.0)
    for s in (blocking, one, many):
        assert s.ledger.accepted_msgs == blocking.ledger.accepted_msgs > 0
        assert s.tables["aliases"].lookups == 3 * s.ledger.accepted_msgs
    assert blocking.tables["aliases"].server_queued == 0
    assert one.tables["aliases"].server_queued > 0 and many.tables["aliases"].server_queued == 0
    assert one.tables["aliases"].blocked_s == many.tables["aliases"].blocked_s == 0.0
    # the lka is no longer the bottleneck: everything settles sooner than when it blocks
    assert many.env.now < blocking.env.now
    assert sum(many.clients.sessions) < sum(blocking.clients.sessions)
    with pytest.raises(ValueError, match="table processes only"):
        TableSpec(backend="static", blocking=False)
