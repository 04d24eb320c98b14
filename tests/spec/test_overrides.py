"""``--set key.path=value`` (spec/overrides.py) and where the files a scenario names are
found (spec/files.py, spec/scenario.py): each kind of key, values read as TOML, errors of
one line naming the --set and the nearest key, and relative paths taken from the file
that names them whatever the current directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from smtpd_sim.spec.files import scenario_dir
from smtpd_sim.spec.overrides import apply_overrides, parse_sets, parse_value
from smtpd_sim.spec.scenario import ScenarioError, ScenarioSpec, load_scenario, resolve_scenario
from smtpd_sim.spec.workload import WorkloadSpec, load_workload


def _spec(tmp_path: Path, text: str) -> ScenarioSpec:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return load_scenario(p)


def _err(spec: ScenarioSpec, *sets: str) -> str:
    with pytest.raises(ScenarioError) as e:
        resolve_scenario(apply_overrides(spec, list(sets)))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(("raw", "value"), [
    ("4", 4), ("2.5e-3", 2.5e-3), ("true", True), ('"a b"', "a b"), ("[1, 2]", [1, 2]),
    ("{x = 1}", {"x": 1}), ("pony", "pony"), ("pony-6.8", "pony-6.8"), ("mine.toml", "mine.toml"),
    ("1\nw = 2", "1\nw = 2"),  # one value, not a document
])
def test_values_are_read_as_toml_else_as_a_string(raw: str, value: object) -> None:
    assert parse_value(raw) == value


def test_no_override_is_the_same_spec() -> None:
    spec = ScenarioSpec(name="x")
    assert apply_overrides(spec, None) is spec and apply_overrides(spec, []) is spec


def test_scenario_keys() -> None:
    spec = apply_overrides(ScenarioSpec(name="x"), ["era=pony", "seed=7", "drain_s=30", "world.cores=4"])
    scen = resolve_scenario(spec)
    assert (scen.era, scen.seed, scen.drain_s, scen.cores) == ("pony", 7, 30.0, 4)
    assert apply_overrides(ScenarioSpec(name="x"), ["cores=3"]).cores == 3


def test_a_key_in_a_workload_named_by_name_inlines_it_with_the_rest_of_its_file() -> None:
    named = load_workload("default")
    spec = apply_overrides(ScenarioSpec(name="x"), ["workload.arrival.rate_per_s=7"])
    assert isinstance(spec.workload, WorkloadSpec)
    assert spec.workload.arrival.rate_per_s == 7.0
    assert spec.workload.model_dump(exclude={"arrival"}) == named.model_dump(exclude={"arrival"})


def test_a_key_in_a_workload_named_by_file_and_inline(tmp_path: Path) -> None:
    (tmp_path / "wl.toml").write_text('name = "mine"\nduration_s = 3\n[mix]\nlocal_share = 0.9\n')
    spec = apply_overrides(_spec(tmp_path, 'workload = "wl.toml"\n'), ["workload.mix.local_share=0.2"])
    assert isinstance(spec.workload, WorkloadSpec)
    assert (spec.workload.name, spec.workload.duration_s, spec.workload.mix.local_share) == ("mine", 3.0, 0.2)
    inline = _spec(tmp_path, "[workload]\nduration_s = 2\n[workload.arrival]\nrate_per_s = 3\n")
    spec = apply_overrides(inline, ["workload.arrival.rate_per_s=50"])
    assert isinstance(spec.workload, WorkloadSpec)
    assert (spec.workload.duration_s, spec.workload.arrival.rate_per_s) == (2.0, 50.0)


def test_calibration_world_site_and_table_keys() -> None:
    base = resolve_scenario(ScenarioSpec(name="x"))
    scen = resolve_scenario(apply_overrides(ScenarioSpec(name="x"), [
        "world.net_latency_s=3e-5", "calibration.roles.queue.default_s=1e-4",
        "site.hostname=mx.example", "tables.aliases.lookup_s=0.002"]))
    assert scen.calibration.name == base.calibration.name
    assert scen.calibration.world.net_latency_s == 3e-5
    assert scen.calibration.roles["queue"].default_s == 1e-4
    assert scen.calibration.world.dns_latency_s == base.calibration.world.dns_latency_s  # the rest kept
    assert scen.site.hostname == "mx.example" and scen.site.user == base.site.user
    assert scen.tables["aliases"].lookup_s == 0.002
    assert scen.tables["aliases"].backend == "static"  # the fields not set: the defaults
    config = scen.config()
    assert config["calibration"]["world"]["net_latency_s"] == 3e-5 and config["site"]["hostname"] == "mx.example"


def test_a_whole_part_applies_before_keys_inside_it_whatever_the_order(tmp_path: Path) -> None:
    (tmp_path / "wl.toml").write_text('name = "mine"\nduration_s = 3\n')
    spec = apply_overrides(ScenarioSpec(name="x"), ["workload.duration_s=5", f"workload={tmp_path / 'wl.toml'}"])
    assert isinstance(spec.workload, WorkloadSpec)
    assert (spec.workload.name, spec.workload.duration_s) == ("mine", 5.0)


def test_faults_can_be_replaced_by_a_toml_array(tmp_path: Path) -> None:
    spec = load_scenario("faults")
    assert spec.fault
    assert apply_overrides(spec, ["fault=[]"]).fault == []
    one = apply_overrides(spec, ['fault=[{kind = "mx_down", start_s = 1, duration_s = 2}]']).fault
    assert [(f.kind, f.start_s) for f in one] == [("mx_down", 1.0)]


@pytest.mark.parametrize(("sets", "fragments"), [
    (["workload.arival.rate_per_s=5"], ["--set workload.arival.rate_per_s=5", "workload.arival", "did you mean arrival?"]),
    (["crores=4"], ["--set crores=4", "did you mean cores?"]),
    (["world.net_latncy_s=1"], ["calibration.world.net_latncy_s", "did you mean net_latency_s?"]),
    (["site.hostnme=x"], ["site.hostnme", "did you mean hostname?"]),
    (["calibration.roles.qeue.default_s=1"], ["calibration.roles", "did you mean queue?"]),
    (["tables.aliases.lokup_s=1"], ["tables.aliases.lokup_s", "did you mean lookup_s?"]),
])
def test_an_unknown_key_names_the_set_and_the_nearest_key(sets: list[str], fragments: list[str]) -> None:
    msg = _err(ScenarioSpec(name="x"), *sets)
    for f in fragments:
        assert f in msg, msg


@pytest.mark.parametrize(("sets", "fragments"), [
    (["world.cores=abc"], ["--set world.cores=abc", "cores:", "valid integer", "'abc'"]),
    (["workload.arrival.rate_per_s=-1"], ["workload.arrival.rate_per_s", "greater than 0", "allowed: 0 < x"]),
    (["tables.aliases.lookup_s=slow"], ["tables.aliases.lookup_s", "valid number"]),
    (["seed=-1"], ["--set seed=-1", "seed", "allowed: 0 <= x"]),
    (["name=a/b"], ["--set name=a/b", "name", "no '/'"]),
    (["workload.arrival=5"], ["workload.arrival", "expected a table (got 5)"]),
    (["workload.duration_s.x=1"], ["workload.duration_s is a value, not a table"]),
    (["era=nosuch"], ["--set era=nosuch", "unknown era"]),
    (["site=nosuch"], ["--set site=nosuch", "unknown site"]),
    (["calibration=nosuch.toml"], ["--set calibration=nosuch.toml", "no such calibration file"]),
    (["workload.arrival.process=replay"], ["--set workload.arrival.process=replay", "needs arrival.csv"]),
    (["workload=nosuch.toml", "workload.duration_s=1"], ["--set workload=nosuch.toml", "no such workload file"]),
    (["cores=2", "cores=3"], ["--set cores=3", "already set by --set cores=2"]),
    (["cores"], ["--set 'cores'", "expected key.path=value"]),
    (["a..b=1"], ["expected key.path=value"]),
])
def test_a_bad_value_is_one_line_naming_the_set(sets: list[str], fragments: list[str]) -> None:
    msg = _err(ScenarioSpec(name="x"), *sets)
    for f in fragments:
        assert f in msg, msg


def test_refused_keys_say_why() -> None:
    with pytest.raises(ScenarioError, match=r"--set era=pony: use --eras"):
        apply_overrides(ScenarioSpec(name="x"), ["era=pony"], refuse={"era": "use --eras"})


def test_parse_sets_keeps_the_order_and_the_aliases() -> None:
    assert [(o.key, o.value) for o in parse_sets(["world.cores=2", "world.dns_latency_s=0", "era=pony"])] == [
        ("cores", 2), ("calibration.world.dns_latency_s", 0), ("era", "pony")]


# ---- paths: relative to the file that names them ----------------------------------------------------


def _parts(d: Path) -> None:
    """A scenario naming every part by a relative file, and a workload naming a replay CSV."""
    shipped = scenario_dir()
    (d / "parts").mkdir(parents=True)
    shutil.copy(shipped / "topologies" / "pony.toml", d / "parts" / "topo.toml")
    shutil.copy(shipped / "sites" / "common-case.toml", d / "parts" / "site.toml")
    shutil.copy(shipped / "calibration" / "research-6.8.toml", d / "parts" / "cal.toml")
    (d / "parts" / "arrivals.csv").write_text("time\n0.1\n0.2\n0.5\n")
    (d / "parts" / "wl.toml").write_text(
        'name = "replayed"\nduration_s = 1\n[arrival]\nprocess = "replay"\ncsv = "arrivals.csv"\n')
    (d / "s.toml").write_text('name = "rel"\nera = "parts/topo.toml"\nsite = "parts/site.toml"\n'
                              'calibration = "parts/cal.toml"\nworkload = "parts/wl.toml"\n')


def test_relative_parts_are_found_next_to_the_scenario_from_another_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _parts(tmp_path / "here")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    scen = resolve_scenario(load_scenario("../here/s.toml"))
    assert scen.topology.path == Path("../here/parts/topo.toml")
    assert scen.era == "pony" and scen.calibration.name == "research-6.8"
    # nested: the workload's replay CSV is next to the workload file, not the scenario
    assert scen.workload is not None and scen.workload.arrival.csv == "../here/parts/arrivals.csv"
    assert Path(scen.workload.arrival.csv).read_text().startswith("time")


def test_a_relative_part_missing_next_to_the_scenario_is_not_looked_for_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "s.toml").write_text('workload = "wl.toml"\n')
    (tmp_path / "wl.toml").write_text("duration_s = 1\n")  # in the current directory only
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError, match=r"workload: sub/wl.toml: no such workload file"):
        resolve_scenario(load_scenario("sub/s.toml"))


def test_an_inline_workload_csv_is_next_to_the_scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("time\n0.5\n")
    (tmp_path / "d" / "s.toml").write_text(
        '[workload]\nduration_s = 1\n[workload.arrival]\nprocess = "replay"\ncsv = "a.csv"\n')
    monkeypatch.chdir(tmp_path)
    spec = load_scenario("d/s.toml")
    assert isinstance(spec.workload, WorkloadSpec) and spec.workload.arrival.csv == "d/a.csv"


def test_shipped_scenarios_and_parts_are_found_by_name_from_any_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    scen = resolve_scenario(load_scenario("faults"))
    assert scen.era == "pony-6.8" and scen.site.user and scen.faults
    assert load_workload("default").name


def test_a_file_given_to_set_is_relative_to_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _parts(tmp_path / "here")
    monkeypatch.chdir(tmp_path / "here" / "parts")
    spec = apply_overrides(load_scenario("../s.toml"), ["calibration=cal.toml", "workload.duration_s=2"])
    scen = resolve_scenario(spec)
    assert scen.calibration.name == "research-6.8"
    assert scen.workload is not None and scen.workload.duration_s == 2.0
    # the workload's CSV stays next to the workload file (../parts/, seen from here)
    assert Path(scen.workload.arrival.csv).resolve() == (tmp_path / "here" / "parts" / "arrivals.csv").resolve()


def test_a_scenario_may_inline_its_site_and_calibration(tmp_path: Path) -> None:
    spec = _spec(tmp_path, '[calibration]\nname = "mine"\ncores = 3\n[calibration.world]\nnet_latency_s = 2e-5\n'
                           '[site]\nhostname = "mx.inline.test"\n')
    scen = resolve_scenario(spec)
    assert (scen.calibration.name, scen.calibration.cores, scen.calibration.world.net_latency_s) == ("mine", 3, 2e-5)
    assert scen.site.hostname == "mx.inline.test"
    assert "site" not in scen.config()["scenario"] and scen.config()["site"]["hostname"] == "mx.inline.test"
    with pytest.raises(ScenarioError, match=r"s\.toml: site\.hostnme: unknown key \(did you mean hostname\?\)"):
        _spec(tmp_path, '[site]\nhostnme = "x"\n')
    with pytest.raises(ScenarioError, match=r"s\.toml: calibration\.name: missing key"):
        _spec(tmp_path, "[calibration]\ncores = 3\n")
