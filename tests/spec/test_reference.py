"""The scenario reference: generated from the models, complete (every field described, every
number with a unit), and the listing of the shipped files."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel, Field

from smtpd_sim.spec.faults import FaultKind
from smtpd_sim.spec.files import Strict, scenario_dir
from smtpd_sim.spec.reference import (
    SECTIONS,
    describe_file,
    fault_kinds,
    missing_docs,
    reference_markdown,
    reference_rows,
    reference_text,
    sections,
    shipped,
    unit_of,
)
from smtpd_sim.spec.workload import Arrival, WorkloadSpec

# the scenario-facing models (issue 19: every field described, with its unit)
MODULES = ("scenario", "workload", "site", "calibration", "world", "faults", "tables", "topology")


def _models() -> list[type[BaseModel]]:
    out = []
    for name in MODULES:
        mod = importlib.import_module(f"smtpd_sim.spec.{name}")
        out += [c for _n, c in inspect.getmembers(mod, inspect.isclass)
                if issubclass(c, Strict) and c is not Strict and c.__module__ == mod.__name__]
    return out


def test_every_field_of_every_model_is_described_with_a_unit() -> None:
    models = _models()
    assert len(models) >= 20  # every module was found (Arrival, Mix, ..., TopologySpec)
    problems = []
    for model in models:
        for name, field in model.model_fields.items():
            if not (field.description or "").strip():
                problems.append(f"{model.__name__}.{name}: no description")
            if unit_of(name, field) is None:
                problems.append(f"{model.__name__}.{name}: a number without a unit")
    assert problems == []
    assert missing_docs() == []


def test_every_model_is_reached_by_a_section() -> None:
    """A model no section reaches would be missing from the reference."""
    reached = set()

    def walk(model: type[BaseModel]) -> None:
        reached.add(model)
        for f in model.model_fields.values():
            for t in _inner(f.annotation):
                if isinstance(t, type) and issubclass(t, BaseModel) and t not in reached:
                    walk(t)

    for model, _where in SECTIONS.values():
        walk(model)
    assert set(_models()) - reached == set()


def _inner(annotation: object) -> list[object]:
    args = get_args(annotation)
    return [annotation, *[x for a in args for x in _inner(a)]]


def test_a_field_without_description_or_unit_is_caught() -> None:
    class Bare(Strict):
        count: int = 1
        label: str = ""
        delay_s: float = Field(default=0.0, description="a wait")
        dimensionless: int = Field(default=0, description="a number", json_schema_extra={"unit": "-"})

    f = Bare.model_fields
    assert unit_of("count", f["count"]) is None  # a number: needs a unit
    assert unit_of("label", f["label"]) == ""  # not a number: no unit to give
    assert unit_of("delay_s", f["delay_s"]) == "s"  # from the name
    assert unit_of("dimensionless", f["dimensionless"]) == "-"  # declared unitless


def test_schema_shows_a_key_with_its_range_default_and_unit_from_the_model() -> None:
    field = Arrival.model_fields["rate_per_s"]
    gt = next(m.gt for m in field.metadata if getattr(m, "gt", None) is not None)
    le = next(m.le for m in field.metadata if getattr(m, "le", None) is not None)
    allowed = f"{gt:g} < x <= {le:g}"
    text = reference_text("workload")
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("arrival.rate_per_s ="))
    assert f"= {field.default:g}" in line and allowed in line and "1/s" in line
    row = next(r for r in reference_rows("workload")["workload"] if r.key == "arrival.rate_per_s")
    assert (row.default, row.allowed, row.unit) == (f"{field.default:g}", allowed, "1/s")
    assert row.description == field.description
    md = reference_markdown("workload")
    assert f"| `arrival.rate_per_s` | number | 1/s | `{field.default:g}` | `{allowed}` |" in md


def test_defaults_from_factories_and_required_keys() -> None:
    rows = {r.key: r for r in reference_rows("workload")["workload"]}
    users = WorkloadSpec().mix.local_users
    assert rows["mix.local_users"].default == "[" + ", ".join(f'"{u}"' for u in users) + "]"
    topo = {r.key: r for r in reference_rows("topology")["topology"]}
    assert topo["name"].default == "required"
    assert topo["process[].name"].allowed.startswith("matches ")


def test_sections_are_not_expanded_inside_each_other() -> None:
    keys = [r.key for r in reference_rows("scenario")["scenario"]]
    assert "workload" in keys and not any(k.startswith(("workload.", "fault[]", "tables.")) for k in keys)
    wl = next(r for r in reference_rows("scenario")["scenario"] if r.key == "workload")
    assert "see section workload" in wl.description
    cal = [r.key for r in reference_rows("calibration")["calibration"]]
    assert "roles.<name>.wake_s" in cal and "world.net_latency_s" in cal


def test_unknown_section_names_the_valid_ones() -> None:
    with pytest.raises(ValueError) as e:
        reference_rows("wrokload")
    assert all(s in str(e.value) for s in sections()) and "\n" not in str(e.value)


def test_all_sections_by_default() -> None:
    assert list(reference_rows()) == sections()
    assert all(f"## {s}\n" in reference_markdown() for s in sections())


def test_describe_file_reads_description_title_or_first_comment(tmp_path: Path) -> None:
    a = tmp_path / "a.toml"
    a.write_text('# a comment\ndescription = "from the key"\n')
    b = tmp_path / "b.toml"
    b.write_text('# a comment\ntitle = "an era\'s title"\n')
    c = tmp_path / "c.toml"
    c.write_text('\n# First sentence. Second sentence.\nname = "x"\n')
    assert [describe_file(p) for p in (a, b, c)] == ["from the key", "an era's title", "First sentence."]


def test_shipped_lists_every_file_with_a_description() -> None:
    root = scenario_dir()
    listed = {i["path"] for g in shipped().values() for i in g["items"] if i["path"]}
    assert listed == {str(p.relative_to(root)) for p in root.rglob("*.toml")}
    for g in shipped().values():
        for i in g["items"]:
            assert i["description"].strip(), i


def test_scenario_part_files_carry_a_description_key() -> None:
    """Scenarios, sites, workloads and calibrations say what they are in a ``description``
    key (eras in their ``title``); the comment line is only the platform files' fallback."""
    import tomllib

    root = scenario_dir()
    for folder in ("", "sites", "workloads", "calibration"):
        for p in (root / folder).glob("*.toml"):
            assert tomllib.loads(p.read_text()).get("description"), p
    for p in (root / "topologies").glob("*.toml"):
        assert tomllib.loads(p.read_text()).get("title"), p


def test_fault_kinds_cover_the_model() -> None:
    kinds = fault_kinds()
    assert list(kinds) == list(get_args(FaultKind))
    assert all(d for d in kinds.values())
