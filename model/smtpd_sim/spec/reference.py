"""The scenario reference, generated from the data models: every key with its type, unit,
default, allowed range and description, and the list of the shipped data files.

The pydantic models hold the truth (``Field(description=..., ge=..., le=...)``); this module
only reads them, so ``smtpd-sim schema`` and a docs page made with :func:`reference_markdown`
cannot drift from what a file is validated against. A number's unit is declared on its
field (``json_schema_extra={"unit": ...}``, ``"-"`` for a pure number) or follows from its
name's suffix (:data:`UNIT_SUFFIXES`); :func:`missing_docs` lists the fields that have
neither, or no description (the tests require it empty).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from smtpd_sim.spec import faults as faults_module
from smtpd_sim.spec.calibration import Calibration
from smtpd_sim.spec.faults import Fault
from smtpd_sim.spec.files import KINDS, scenario_dir
from smtpd_sim.spec.scenario import ScenarioSpec
from smtpd_sim.spec.site import SiteSpec
from smtpd_sim.spec.tables import TableSpec
from smtpd_sim.spec.topology import TopologySpec
from smtpd_sim.spec.workload import WorkloadSpec

# section -> (its model, where its keys are written). A model that is a section is never
# expanded inside another (the scenario's `workload` says "see section workload").
SECTIONS: dict[str, tuple[type[BaseModel], str]] = {
    "scenario": (ScenarioSpec, "a scenario file: scenarios/<name>.toml"),
    "workload": (WorkloadSpec, "scenarios/workloads/<name>.toml, or a scenario's [workload] table"),
    "fault": (Fault, "a scenario's [[fault]] tables"),
    "tables": (TableSpec, "[tables.<name>] in a site or a scenario"),
    "site": (SiteSpec, "scenarios/sites/<name>.toml"),
    "calibration": (Calibration, "scenarios/calibration/<name>.toml"),
    "topology": (TopologySpec, "scenarios/topologies/<name>.toml: an era"),
}

# A number's unit from its name when the field declares none (the project's naming rule:
# DESIGN.md, every duration ends in _s). Checked in order: the first suffix that matches.
UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("per_byte_s", "s/byte"),
    ("_per_s", "1/s"),
    ("_s", "s"),
    ("_bytes", "bytes"),
    ("_share", "fraction"),
)

# Where a kind of shipped file lives, how the listing calls it, and the key that uses it.
_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("scenario", KINDS["scenario"][0], "smtpd-sim run NAME"),
    ("era", KINDS["topology"][0], "era = NAME"),
    ("site", KINDS["site"][0], "site = NAME"),
    ("workload", KINDS["workload"][0], "workload = NAME"),
    ("calibration", KINDS["calibration"][0], "calibration = NAME"),
    ("platform", "platform", "read by smtpd-sim privsep ERA --platform / --fds / --trust"),
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One key of a section: ``key`` as written in the file (``arrival.rate_per_s``,
    ``fault[].kind``, ``roles.<name>.wake_s``); ``unit`` "" for a non-number, "-" for a pure
    number, None when a number declares none; ``default`` "required", "unset", "" for a
    table whose keys follow, else TOML; ``allowed`` the range or the choices."""

    key: str
    type: str
    unit: str | None
    default: str
    allowed: str
    description: str


def sections() -> list[str]:
    """The sections ``smtpd-sim schema SECTION`` knows, in the order of the reference."""
    return list(SECTIONS)


def _members(annotation: Any) -> list[Any]:
    """The types a union (or Optional) holds; Annotated unwrapped; a plain type alone."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return [m for a in get_args(annotation) for m in _members(a)]
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    return [annotation]


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _leaf_types(annotation: Any) -> list[Any]:
    """Every scalar type an annotation may hold, through unions, lists and dict values."""
    out: list[Any] = []
    for m in _members(annotation):
        origin = get_origin(m)
        if origin in (list, tuple):
            out += [x for a in get_args(m) if a is not Ellipsis for x in _leaf_types(a)]
        elif origin is dict:
            out += _leaf_types(get_args(m)[1])
        elif not _is_model(m):
            out.append(m)
    return out


def _is_number(annotation: Any) -> bool:
    return any(t in (int, float, object) for t in _leaf_types(annotation))


def _type_name(annotation: Any) -> str:
    """``number``, ``integer or unset``, ``array of strings``, ``table of numbers``..."""
    names = []
    for m in _members(annotation):
        origin = get_origin(m)
        if m is type(None):
            continue
        if origin is Literal:
            names.append("string" if all(isinstance(a, str) for a in get_args(m)) else "value")
        elif origin is list:
            names.append(f"array of {_plural(_type_name(get_args(m)[0]))}")
        elif origin is tuple:
            args = [a for a in get_args(m) if a is not Ellipsis]
            names.append("pair of strings" if args == [str, str] else f"array of {len(args)} values")
        elif origin is dict:
            names.append(f"table of {_plural(_type_name(get_args(m)[1]))}")
        elif _is_model(m):
            names.append("table")
        else:
            names.append({str: "string", int: "integer", float: "number", bool: "boolean",
                          object: "any value"}.get(m, getattr(m, "__name__", str(m))))
    text = " or ".join(names)
    return text + " or unset" if type(None) in _members(annotation) else text


def _plural(name: str) -> str:
    if name == "any value":
        return "values"
    if " or " in name:
        return f"({name})"
    return name.replace("array", "arrays", 1) if name.startswith("array") else name + "s"


def unit_of(name: str, field: FieldInfo) -> str | None:
    """The unit of a field: declared (``json_schema_extra={"unit": ...}``), else from the
    name's suffix for a number, "" for what is not a number, None for a number without one."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "unit" in extra:
        return str(extra["unit"])
    if not _is_number(field.annotation):
        return ""
    for suffix, unit in UNIT_SUFFIXES:
        if name.endswith(suffix):
            return unit
    return None


def _num(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:g}"
    return str(v)


def _bounds(metadata: list[Any], text: bool = False) -> str:
    """``0 < x <= 100000``, ``1 to 255 characters``, ``at least 1 item``: what the Field's
    constraints allow (the same range the one-line errors quote); ``text``: lengths count
    characters (a string), else items (an array)."""
    lo = hi = ""
    parts: list[str] = []
    inf = False
    for m in metadata:
        for attr, op in (("gt", "<"), ("ge", "<=")):
            if getattr(m, attr, None) is not None:
                lo = f"{_num(getattr(m, attr))} {op} "
        for attr, op in (("lt", "<"), ("le", "<=")):
            if getattr(m, attr, None) is not None:
                hi = f" {op} {_num(getattr(m, attr))}"
        if getattr(m, "allow_inf_nan", None):
            inf = True
        if getattr(m, "pattern", None):
            parts.append(f"matches {m.pattern}")
    lengths = {a: getattr(m, a) for m in metadata for a in ("min_length", "max_length")
               if getattr(m, a, None) is not None}
    if lengths:
        what = "character" if text else "item"
        lo_n, hi_n = lengths.get("min_length", 0), lengths.get("max_length")
        parts.insert(0, f"{lo_n} to {hi_n} {what}s" if hi_n is not None else
                     f"at least {lo_n} {what}{'' if lo_n == 1 else 's'}")
    if lo or hi:
        parts.insert(0, f"{lo}x{hi}" + (", or inf" if inf else ""))
    return "; ".join(parts)


def _allowed(field: FieldInfo) -> str:
    """The range of a number, the choices of a Literal, the bounds of each value of a table."""
    text = _bounds(list(field.metadata), str in _members(field.annotation))
    for m in _members(field.annotation):
        if get_origin(m) is Literal:
            text = "one of " + ", ".join(str(a) for a in get_args(m))
        elif get_origin(m) is dict:
            value = get_args(m)[1]
            if get_origin(value) is Annotated:
                inner = _bounds(list(FieldInfo.from_annotation(value).metadata))
                if inner:
                    text = f"each value {inner}"
    return text


def _toml(v: Any) -> str:
    """A default as it would be written in a TOML file."""
    if isinstance(v, BaseModel):
        return "(table)"
    if isinstance(v, (bool, int, float)):
        return _num(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(x)}" for k, x in v.items()) + "}" if v else "{}"
    return str(v)


def _default(field: FieldInfo) -> str:
    """``required``, ``unset`` (None), "" for a table of keys (its keys have the defaults),
    else the default as TOML."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return ""
    return "unset" if value is None else _toml(value)


def _rows(model: type[BaseModel], prefix: str, root: type[BaseModel]) -> list[Row]:
    out: list[Row] = []
    section_of = {m: name for name, (m, _where) in SECTIONS.items()}
    for name, field in model.model_fields.items():
        key = prefix + name
        description = field.description or ""
        nested: tuple[str, type[BaseModel]] | None = None
        for m in _members(field.annotation):
            origin = get_origin(m)
            inner, path = (get_args(m)[0], f"{key}[].") if origin is list else (
                (get_args(m)[1], f"{key}.<name>.") if origin is dict else (m, f"{key}."))
            if _is_model(inner) and inner is not root:
                if inner in section_of:
                    description += f" (see section {section_of[inner]})" if "see section" not in description else ""
                else:
                    nested = (path, inner)
        out.append(Row(key, _type_name(field.annotation), unit_of(name, field), _default(field),
                       _allowed(field), description))
        if nested is not None:
            out += _rows(nested[1], nested[0], root)
    return out


def _check(section: str | None) -> list[str]:
    if section is None:
        return sections()
    if section not in SECTIONS:
        raise ValueError(f"unknown section {section!r} (expected one of {', '.join(SECTIONS)})")
    return [section]


def reference_rows(section: str | None = None) -> dict[str, list[Row]]:
    """Every key of a section (all sections when None), in the models' order; an unknown
    section is a one-line ValueError naming the valid ones."""
    return {s: _rows(SECTIONS[s][0], "", SECTIONS[s][0]) for s in _check(section)}


def _intro(section: str) -> tuple[str, str]:
    model, where = SECTIONS[section]
    doc = (model.__doc__ or "").strip().splitlines()
    return (doc[0].replace("``", "") if doc else ""), where


def _unit_text(unit: str | None) -> str:
    return "?" if unit is None else unit


def reference_text(section: str | None = None) -> str:
    """The reference as plain text for a terminal: ``key = default  (type, unit; allowed)``
    and the description indented below."""
    lines: list[str] = []
    for s, rows in reference_rows(section).items():
        summary, where = _intro(s)
        lines += [f"[{s}] {summary}", f"  in {where}", ""]
        for r in rows:
            what = r.type + (f", {_unit_text(r.unit)}" if r.unit not in ("", "-") else "")
            what += f"; {r.allowed}" if r.allowed else ""
            head = {"required": f"{r.key} (required)", "": r.key}.get(r.default, f"{r.key} = {r.default}")
            lines += [f"  {head}   ({what})", f"      {r.description}"]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _cell(text: str) -> str:
    """Text in a Markdown table cell: pipes escaped, ``<name>`` not taken for HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def reference_markdown(section: str | None = None) -> str:
    """The reference as Markdown: a heading and a table per section (for a docs page)."""
    lines: list[str] = []
    for s, rows in reference_rows(section).items():
        summary, where = _intro(s)
        lines += [f"## {s}", "", _cell(f"{summary} In {where}."), "",
                  "| key | type | unit | default | allowed | description |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            # key, default and range in code spans (no escaping of <name> there; a pipe still ends a cell)
            default = r.default if r.default in ("required", "") else "`" + r.default.replace("|", "\\|") + "`"
            allowed = "`" + r.allowed.replace("|", "\\|") + "`" if r.allowed else ""
            cells = [f"`{r.key}`", _cell(r.type), _cell(_unit_text(r.unit)), default, allowed, _cell(r.description)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def missing_docs() -> list[str]:
    """``section: key: what is missing`` for every field without a description, or a number
    without a unit (declared or from its name); the reference is complete when empty."""
    out = []
    for s, rows in reference_rows().items():
        for r in rows:
            if not r.description.strip():
                out.append(f"{s}: {r.key}: no description")
            if r.unit is None:
                out.append(f"{s}: {r.key}: a number without a unit (json_schema_extra unit, or a suffix)")
    return out


# ---- the shipped files -----------------------------------------------------------------------

def _first_comment(text: str) -> str:
    """The first sentence of the file's first comment line."""
    for line in text.splitlines():
        if line.startswith("#") and line.strip("# "):
            sentence = line.lstrip("# ").rstrip()
            return re.split(r"(?<=\.)\s", sentence, maxsplit=1)[0].rstrip(":;,")
    return ""


def describe_file(path: Path) -> str:
    """A shipped file's one line: its ``description`` key, else its ``title`` (an era's),
    else the first sentence of its first comment line."""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        data = {}
    for key in ("description", "title"):
        if isinstance(data.get(key), str) and data[key].strip():
            return " ".join(data[key].split())
    return _first_comment(text)


def fault_kinds() -> dict[str, str]:
    """Each fault kind and what it does, from the faults module's own list (its docstring)."""
    doc = faults_module.__doc__ or ""
    kinds = {}
    for m in re.finditer(r"^\* ``(\w+)``: (.*?)(?=^\* |^\S|\Z)", doc, re.M | re.S):
        kinds[m.group(1)] = " ".join(m.group(2).replace("``", "").split())
    return kinds


def shipped() -> dict[str, dict[str, Any]]:
    """The shipped data files by group (scenario, era, site, workload, calibration, platform),
    each group with ``folder`` (under scenarios/), ``use`` (how a file is named) and ``items``
    (``name``, ``path`` under scenarios/, ``description``); then the fault kinds a
    scenario's ``[[fault]]`` may name."""
    root = scenario_dir()
    out: dict[str, dict[str, Any]] = {}
    for group, folder, use in _GROUPS:
        items = [{"name": p.stem, "path": str(p.relative_to(root)), "description": describe_file(p)}
                 for p in sorted((root / folder).glob("*.toml"), key=lambda p: p.stem)]
        out[group] = {"folder": folder or ".", "use": use, "items": items}
    out["fault"] = {"folder": "", "use": '[[fault]] kind = "NAME" in a scenario',
                    "items": [{"name": k, "path": "", "description": d} for k, d in fault_kinds().items()]}
    return out
