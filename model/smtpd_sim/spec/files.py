"""The data files (scenarios, topologies, sites, workloads, calibrations): where they live,
how a name or a path finds one (one resolver; a file named inside another is relative to
the directory of the file that names it), reading and validating them with errors of
one line that name the file, the key and what was expected (DESIGN.md rule 5)."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from smtpd_sim.errors import SmtpdSimError

M = TypeVar("M", bound=BaseModel)

_PACKAGE = Path(__file__).resolve().parent.parent  # smtpd_sim/


class Strict(BaseModel):
    """The one base of every data model: unknown keys are errors, values are frozen, and
    numbers are finite (``inf`` or ``nan`` would make a run that never ends or means nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def scenario_dir() -> Path:
    """``scenarios/`` of the checkout (editable install: ``model/smtpd_sim`` is two levels
    below it) or ``smtpd_sim/_scenarios`` (wheel)."""
    for candidate in (_PACKAGE.parent.parent / "scenarios", _PACKAGE / "_scenarios"):
        if (candidate / "topologies").is_dir():
            return candidate
    raise FileNotFoundError("the embedded scenarios directory is missing from this installation")


# kind of data file -> (its folder under scenarios/, what an unknown name is called)
KINDS: dict[str, tuple[str, str]] = {
    "scenario": ("", "scenario"),
    "topology": ("topologies", "era"),
    "site": ("sites", "site"),
    "workload": ("workloads", "workload"),
    "calibration": ("calibration", "calibration"),
}


def names(kind: str) -> list[str]:
    """The files of ``kind`` shipped in ``scenarios/``, by name."""
    return sorted(p.stem for p in (scenario_dir() / KINDS[kind][0]).glob("*.toml"))


def resolve(ref: str | Path, kind: str, error: type[SmtpdSimError],
            unknown: Callable[[str, Path], str] | None = None) -> Path:
    """The file a scenario key names: a path (``*.toml``, or any file that exists), or a
    name under ``scenarios/<folder>/``. ``unknown(ref, candidate)`` words the error for a
    name that is not there."""
    folder, called = KINDS[kind]
    if not str(ref).strip() or "\0" in str(ref):
        raise error(f"{ref!r}: not a {called} name or a file name")
    p = Path(ref)
    try:
        exists = p.exists()
    except OSError as e:  # a name too long for the file system
        raise error(f"{str(ref)[:60]}...: not a {kind} file ({e.strerror})") from None
    if p.suffix == ".toml" or exists:
        if not exists:
            raise error(f"{p}: no such {kind} file")
        return p
    candidate = scenario_dir() / folder / f"{ref}.toml"
    if not candidate.exists():
        raise error(unknown(str(ref), candidate) if unknown else
                    f"{ref}: unknown {called} (expected one of {', '.join(names(kind))} or a .toml file)")
    return candidate


def relative_to(ref: Any, base: Path) -> Any:
    """A part a data file names (a workload, a site, an era...), as the caller can open it:
    a relative file name is relative to the directory of the file that names it (``base``);
    a name of a shipped part (no ``.toml``, no such file there) and an absolute path stay."""
    if not isinstance(ref, str) or not ref.strip() or "\0" in ref or Path(ref).is_absolute():
        return ref
    try:
        is_file = Path(ref).suffix == ".toml" or (base / ref).exists()
    except OSError:  # a name too long for the file system: resolve() says so
        return ref
    return str(base / ref) if is_file else ref


def path_relative_to(path: Any, base: Path) -> Any:
    """A plain file a data file names (a replay CSV), relative to that file's directory."""
    if not isinstance(path, str) or not path or "\0" in path or Path(path).is_absolute():
        return path
    return str(base / path)


# The plain files each kind of data file may name, by key path (nested tables).
PATH_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "workload": (("arrival", "csv"),),
}


def rebase_paths(data: dict[str, Any], kind: str, base: Path) -> dict[str, Any]:
    """``data`` with the plain files it names (:data:`PATH_KEYS`) relative to ``base``."""
    for keys in PATH_KEYS.get(kind, ()):
        node: Any = data
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and keys[-1] in node:
            node[keys[-1]] = path_relative_to(node[keys[-1]], base)
    return data


# Data files are a few kilobytes; anything far bigger is a wrong path (a log, an image, a
# device), refused before it is read.
MAX_FILE_BYTES = 16 * 1024 * 1024


def _suffix(x: Any) -> str:
    return f"[{x}]" if isinstance(x, int) else f".{x}"


def _loc(loc: tuple[Any, ...] | list[Any], prefix: str = "") -> str:
    """``fault[0].start_s``: a key path as written in the file."""
    out = prefix.rstrip(".")
    for x in loc:
        out += _suffix(x) if out else str(x)
    return out or "(top level)"


def _models(annotation: Any) -> list[Any]:
    """The models, lists and dicts an annotation may hold (unions and Optional unwrapped)."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return [m for a in get_args(annotation) for m in _models(a)]
    if origin is Annotated:
        return _models(get_args(annotation)[0])
    return [annotation]


def _tag(t: Any) -> str:
    """How pydantic names a union member in an error's location (``str``, ``WorkloadSpec``)."""
    return getattr(t, "__name__", str(t))


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, Any, tuple[Any, ...], list[Any]]:
    """The model holding the last key of ``loc``, that key's FieldInfo (None when the path
    leaves the models: a dict's value), the location without union tags, and the members of
    the union the value failed (empty when it was no union)."""
    current: list[Any] = [model]
    parent: type[BaseModel] | None = None
    field: Any = None
    clean: list[Any] = []
    union: list[Any] = []
    for x in loc:
        if isinstance(x, str) and len(current) > 1 and x in {_tag(t) for t in current}:
            union = list(current)  # a union tag, not a key: the member pydantic tried
            current = [t for t in current if _tag(t) == x]
            continue
        clean.append(x)
        nxt: list[Any] = []
        parent, field = None, None
        for t in current:
            origin = get_origin(t)
            if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(x, str):
                if x in t.model_fields:
                    parent, field = t, t.model_fields[x]
                    nxt.extend(_models(field.annotation))
                else:
                    parent = t  # an unknown key: its siblings are t's fields
            elif origin in (list, tuple) and isinstance(x, int):
                nxt.extend(m for a in get_args(t) if a is not Ellipsis for m in _models(a))
            elif origin is dict:
                value = get_args(t)[1]
                if get_origin(value) is Annotated:  # dict[str, Cost]: the value's own constraints
                    field = FieldInfo.from_annotation(value)
                nxt.extend(_models(value))
        current = nxt
    return parent, field, tuple(clean), union


_KINDS = {str: "a string (a name or a .toml file)", int: "an integer", float: "a number", bool: "true or false",
          type(None): "nothing"}


def _bounds(field: Any) -> str:
    """``0 < x <= 100000``: the range a number field allows (from its Field constraints)."""
    lo = hi = ""
    for m in getattr(field, "metadata", []):
        for attr, side, op in (("gt", "lo", "<"), ("ge", "lo", "<="), ("lt", "hi", "<"), ("le", "hi", "<=")):
            v = getattr(m, attr, None)
            if v is not None:
                if side == "lo":
                    lo = f"{v:g} {op} " if isinstance(v, float) else f"{v} {op} "
                else:
                    hi = f" {op} {v:g}" if isinstance(v, float) else f" {op} {v}"
    return f"{lo}x{hi}" if lo or hi else ""


_NUMBER_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number",
                  "int_parsing", "int_type", "float_parsing", "float_type", "int_from_float"}


def error_key(err: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """The key path of ``err``'s first error as written in a file (union tags dropped)."""
    return _loc(_walk(model, tuple(err.errors()[0]["loc"]))[2], prefix)


def validation_line(where: Path | str, err: ValidationError, model: type[BaseModel] | None = None,
                    prefix: str = "") -> str:
    """``<where>: <key.path>: <message>`` for the first validation error; with ``model``, a
    number out of range says the allowed range and the value given, and an unknown key names
    the nearest valid one."""
    e = err.errors()[0]
    loc = tuple(e["loc"])
    msg = str(e["msg"]).removeprefix("Value error, ")
    parent, field, union = None, None, []
    if model is not None:
        parent, field, loc, union = _walk(model, loc)
    if union and e["type"] not in ("extra_forbidden", "missing"):  # e.g. workload = 5
        kinds = [_KINDS.get(t, "a table" if isinstance(t, type) and issubclass(t, BaseModel) else _tag(t))
                 for t in union]
        return f"{where}: {_loc(loc, prefix)}: expected {' or '.join(kinds)} (got {_got(e)})"
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
        if parent is not None and loc and isinstance(loc[-1], str):
            near = difflib.get_close_matches(loc[-1], list(parent.model_fields), n=1, cutoff=0.6)
            msg += f" (did you mean {near[0]}?)" if near else f" (expected one of {', '.join(parent.model_fields)})"
    elif e["type"] == "missing":
        msg = "missing key"
    elif e["type"] in ("model_type", "dict_type", "model_attributes_type"):
        msg = f"expected a table (got {_got(e)})"
    elif e["type"] in _NUMBER_ERRORS:
        allowed = _bounds(field) if field is not None else ""
        if e["type"] == "finite_number" and not allowed:
            allowed = "a finite number"
        msg += f" (got {_got(e)}" + (f"; allowed: {allowed})" if allowed else ")")
    elif e["type"] not in ("value_error", "assertion_error") and "input" in e:
        msg += f" (got {_got(e)})"
    return f"{where}: {_loc(loc, prefix)}: {msg}"


def _got(e: Any) -> str:
    """The value given, short enough for one line."""
    text = repr(e.get("input"))
    return text if len(text) <= 60 else text[:57] + "..."


def read_toml(path: Path, what: str, error: type[Exception]) -> dict[str, Any]:
    """The parsed file; a missing, unreadable, binary, empty or malformed one raises
    ``error`` with one line."""
    try:
        if path.is_dir():
            raise error(f"{path}: is a directory, not a {what} file")
        if path.exists() and not path.is_file():
            raise error(f"{path}: not a regular file (a {what} file is TOML text)")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise error(f"{path}: {path.stat().st_size} bytes, too big for a {what} file "
                        f"(at most {MAX_FILE_BYTES} bytes)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except OSError as e:
        raise error(f"{path}: cannot read the {what} file: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not a UTF-8 text file (byte 0x{raw[e.start]:02x} at offset {e.start}); "
                    f"a {what} file is TOML text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise error(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    if not data:
        raise error(f"{path}: empty {what} file (no keys; an empty file is never meant)")
    return data


def validate(model: type[M], data: dict[str, Any], where: Path | str, error: type[Exception],
             prefix: str = "") -> M:
    """``model.model_validate(data)`` with a one-line ``error`` on failure (``prefix``: the
    key path of ``data`` inside its file, e.g. ``workload.``)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise error(validation_line(where, e, model, prefix)) from None
    except RecursionError:
        raise error(f"{where}: {prefix.rstrip('.') or '(top level)'}: values nested too deeply") from None


def load_model(ref: str | Path, kind: str, model: type[M], error: type[SmtpdSimError]) -> tuple[Path, M]:
    """Find, read and validate one data file."""
    path = resolve(ref, kind, error)
    data = rebase_paths(read_toml(path, kind, error), kind, path.parent)  # a replay CSV: next to its workload
    return path, validate(model, data, path, error)
