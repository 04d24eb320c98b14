"""``--set key.path=value``: one value of a scenario changed from the command line.

Keys are the dotted paths ``sweep --vary`` takes (studies/sweep.py): a scenario key
(``era``, ``cores``, ``seed``, ``drain_s``, ``site``...), ``workload.<path>``,
``calibration.<path>``, ``site.<path>``, ``tables.<name>.<field>``; ``world.<path>`` is
short for ``calibration.world.<path>`` and ``world.cores`` for ``cores`` (the host's
cores). A key inside a part named by name or file loads that part and inlines it, so the
part is then validated whole, by the same models as the files. Values are TOML values
(``4``, ``2.5e-3``, ``true``, ``"x"``, ``[]``); a bare word that is not TOML is a string
(``era=pony``). Errors are one line naming the ``--set`` and, for an unknown key, the
nearest valid one.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.spec.calibration import load_calibration
from smtpd_sim.spec.files import error_key, validation_line
from smtpd_sim.spec.scenario import INLINE_PARTS, ScenarioError, ScenarioSpec
from smtpd_sim.spec.site import load_site
from smtpd_sim.spec.topology import load_topology
from smtpd_sim.spec.workload import load_workload

# how each part is loaded when a key inside it is set and the scenario names it
_LOADERS: dict[str, Any] = {"workload": load_workload, "site": load_site, "calibration": load_calibration,
                            "era": load_topology}


@dataclasses.dataclass(frozen=True)
class Override:
    """One ``--set``: the key as canonical path, the parsed value, the text as typed."""

    key: str
    value: Any
    text: str

    @property
    def where(self) -> str:
        return f"--set {self.text}"


def parse_value(raw: str) -> Any:
    """A value as TOML reads it (``4``, ``0.2``, ``true``, ``"a b"``, ``[1, 2]``,
    ``{x = 1}``); anything TOML does not read is the string itself (``pony-6.8``)."""
    try:
        doc = tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError:
        return raw.strip()
    return doc["v"] if list(doc) == ["v"] else raw.strip()


def canonical(key: str) -> str:
    """``world.cores`` -> ``cores``; ``world.<path>`` -> ``calibration.world.<path>``."""
    if key == "world.cores":
        return "cores"
    if key.startswith("world."):
        return "calibration." + key
    return key


def parse_set(text: str) -> Override:
    """``key.path=value`` -> Override (one-line ScenarioError when it is not that)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part.strip() for part in key.split(".")):
        raise ScenarioError(f"--set {text!r}: expected key.path=value (e.g. --set workload.arrival.rate_per_s=50)")
    return Override(canonical(key), parse_value(raw), text)


def parse_sets(texts: Sequence[str] | None) -> list[Override]:
    """Every ``--set``, in the order given; a key given twice is an error."""
    out = [parse_set(t) for t in texts or []]
    seen: dict[str, Override] = {}
    for o in out:
        if o.key in seen:
            raise ScenarioError(f"{o.where}: {o.key} is already set by --set {seen[o.key].text}")
        seen[o.key] = o
    return out


def _set_path(doc: dict[str, Any], o: Override, path: list[str], prefix: str = "") -> None:
    """``o.value`` at ``path`` in ``doc``; missing tables on the way are created (free-form
    maps: ``calibration.roles.<role>``, ``tables.<name>``): the model then refuses a key that
    does not exist, naming the nearest one."""
    node: Any = doc
    for i, part in enumerate(path[:-1]):
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ScenarioError(f"{o.where}: {prefix}{'.'.join(path[:i + 1])} is a value, not a table")
    node[path[-1]] = o.value


def _culprit(overrides: Sequence[Override], loc: str) -> Override | None:
    """The --set a validation error at ``loc`` (a dotted key) comes from."""
    for o in reversed(overrides):
        if o.key == loc or o.key.startswith(loc + ".") or loc.startswith((o.key + ".", o.key + "[")):
            return o
    return None


def _validate(model: type[BaseModel], doc: Any, prefix: str, overrides: Sequence[Override], where: str) -> None:
    try:
        model.model_validate(doc)
    except ValidationError as e:
        o = _culprit(overrides, error_key(e, model, prefix))
        raise ScenarioError(validation_line(o.where if o else where, e, model, prefix)) from None
    except ValueError as e:  # a validator's own one-line error outside pydantic's
        raise ScenarioError(f"{where}: {str(e).splitlines()[0]}") from None


def _scenario_document(spec: ScenarioSpec) -> dict[str, Any]:
    """The scenario's keys as plain data; ``tables`` keeps only the fields that were set
    (merge_tables lays them over the site's, field by field), as ``sweep --vary`` does."""
    doc = spec.model_dump(mode="json", exclude={"tables"})
    doc["tables"] = {n: t.model_dump(mode="json", exclude_unset=True) for n, t in spec.tables.items()}
    return doc


def apply_overrides(spec: ScenarioSpec, overrides: Sequence[Override] | Sequence[str] | None,
                    *, refuse: Mapping[str, str] | None = None) -> ScenarioSpec:
    """``spec`` with every ``--set`` applied and validated (the scenario and each part it
    touches). ``refuse``: scenario keys a command does not use, with the reason.
    Whole-part keys (``workload=mine.toml``) apply before keys inside a part, whatever the
    order given; a file given on the command line is relative to the current directory."""
    items = [o if isinstance(o, Override) else parse_set(o) for o in overrides or []]
    if not items:
        return spec
    parse_sets([o.text for o in items])  # a key given twice
    where = f"--set ({spec._source or spec.name})"
    doc = _scenario_document(spec)
    for o in items:
        head = o.key.split(".", 1)[0]
        if refuse and head in refuse:
            raise ScenarioError(f"{o.where}: {refuse[head]}")
    touched: set[str] = set()
    for o in sorted(items, key=lambda o: "." in o.key):  # whole keys first (stable)
        head, *rest = o.key.split(".")
        if rest and head in INLINE_PARTS:
            if not isinstance(doc.get(head), dict):
                try:
                    doc[head] = _LOADERS[head](doc[head]).model_dump(mode="json")
                except SmtpdSimError as e:  # the part named by a --set of its own, or by the scenario
                    by = next((w for w in items if w.key == head), o)
                    raise ScenarioError(f"{by.where}: {head}: {str(e).splitlines()[0]}") from None
            touched.add(head)
            _set_path(doc[head], o, rest, f"{head}.")
        else:
            _set_path(doc, o, [head, *rest])
    for part in sorted(touched):  # errors inside a part name <part>.<key>, like a file's
        _validate(INLINE_PARTS[part], json.loads(json.dumps(doc[part])), f"{part}.", items, where)
    try:
        out = ScenarioSpec.model_validate(doc)
    except ValidationError as e:
        o = _culprit(items, error_key(e, ScenarioSpec))
        raise ScenarioError(validation_line(o.where if o else where, e, ScenarioSpec)) from None
    except ValueError as e:
        raise ScenarioError(f"{where}: {str(e).splitlines()[0]}") from None
    for o in items:  # a part named on the command line: one line naming the --set if it is not there
        if o.key in _LOADERS and isinstance(o.value, str) and o.key not in touched:
            try:
                _LOADERS[o.key](o.value)
            except SmtpdSimError as e:
                raise ScenarioError(f"{o.where}: {str(e).splitlines()[0]}") from None
    out._source = spec._source
    return out
