"""The data files (scenarios, topologies, sites, workloads, calibrations): where they live,
how a name or a path finds one (one resolver), reading and validating them with errors of
one line that name the file, the key and what was expected (DESIGN.md rule 5)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from smtpd_sim.errors import SmtpdSimError

M = TypeVar("M", bound=BaseModel)

_PACKAGE = Path(__file__).resolve().parent.parent  # smtpd_sim/


class Strict(BaseModel):
    """The one base of every data model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    p = Path(ref)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise error(f"{p}: no such {kind} file")
        return p
    folder, called = KINDS[kind]
    candidate = scenario_dir() / folder / f"{ref}.toml"
    if not candidate.exists():
        raise error(unknown(str(ref), candidate) if unknown else
                    f"{ref}: unknown {called} (expected one of {', '.join(names(kind))} or a .toml file)")
    return candidate


def validation_line(where: Path | str, err: ValidationError) -> str:
    """``<where>: <key.path>: <message>`` for the first validation error."""
    e = err.errors()[0]
    loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
    msg = str(e["msg"]).removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    elif e["type"] == "missing":
        msg = "missing key"
    return f"{where}: {loc}: {msg}"


def read_toml(path: Path, what: str, error: type[Exception]) -> dict[str, Any]:
    """The parsed file; a missing or malformed one raises ``error`` with one line."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise error(f"{path}: cannot read the {what} file: {e.strerror}") from None


def validate(model: type[M], data: dict[str, Any], where: Path | str, error: type[Exception]) -> M:
    """``model.model_validate(data)`` with a one-line ``error`` on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise error(validation_line(where, e)) from None


def load_model(ref: str | Path, kind: str, model: type[M], error: type[SmtpdSimError]) -> tuple[Path, M]:
    """Find, read and validate one data file."""
    path = resolve(ref, kind, error)
    return path, validate(model, read_toml(path, kind, error), path, error)
