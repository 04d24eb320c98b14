"""``smtpd-sim schema`` and ``smtpd-sim scenarios``: the reference and the shipped files."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from smtpd_sim.cli import app
from smtpd_sim.spec.files import scenario_dir
from smtpd_sim.spec.reference import sections
from smtpd_sim.spec.scenario import ScenarioSpec

runner = CliRunner()


def test_schema_section_shows_a_key_with_default_and_range() -> None:
    r = runner.invoke(app, ["schema", "scenario"])
    assert r.exit_code == 0, r.output
    field = ScenarioSpec.model_fields["sample_s"]
    gt = next(m.gt for m in field.metadata if getattr(m, "gt", None) is not None)
    le = next(m.le for m in field.metadata if getattr(m, "le", None) is not None)
    line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("sample_s ="))
    assert f"sample_s = {field.default:g}" in line and f"{gt:g} < x <= {le:g}" in line
    assert field.description in r.stdout
    assert not any(ln.startswith("[workload]") for ln in r.stdout.splitlines())  # one section only


def test_schema_markdown_and_json() -> None:
    md = runner.invoke(app, ["schema", "fault", "--markdown"])
    assert md.exit_code == 0 and md.stdout.startswith("## fault\n")
    assert "| `restart_after_s` |" in md.stdout
    js = runner.invoke(app, ["schema", "--json"])
    assert js.exit_code == 0
    assert list(json.loads(js.stdout)) == sections()


def test_schema_unknown_section_is_one_line_and_exit_2() -> None:
    r = runner.invoke(app, ["schema", "nosuch"])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "nosuch" in lines[0]
    assert all(s in lines[0] for s in sections())
    assert r.stdout == ""


def test_scenarios_lists_every_shipped_file() -> None:
    r = runner.invoke(app, ["scenarios"])
    assert r.exit_code == 0, r.output
    names = {ln.split()[0] for ln in r.stdout.splitlines() if ln.startswith("  ")}
    assert {p.stem for p in scenario_dir().rglob("*.toml")} <= names
    js = json.loads(runner.invoke(app, ["scenarios", "--json"]).stdout)
    root = scenario_dir()
    paths = {i["path"] for g in js.values() for i in g["items"] if i["path"]}
    assert paths == {str(p.relative_to(root)) for p in root.rglob("*.toml")}
    assert [i["name"] for i in js["era"]["items"]] == sorted(p.stem for p in (root / "topologies").glob("*.toml"))
    assert "crash" in {i["name"] for i in js["fault"]["items"]}
