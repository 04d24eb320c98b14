"""Reading the TOML data files (topologies, sites, workloads, calibrations, scenarios) with
errors of one line that name the file, the key and what was expected (DESIGN.md rule 5)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from smtpd_sim.spec.paths import scenario_dir

M = TypeVar("M", bound=BaseModel)


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


def data_path(ref: str | Path, subdir: str) -> Path:
    """A file given by path, or by name under ``scenarios/<subdir>/<name>.toml``."""
    p = Path(ref)
    if p.suffix == ".toml" or p.exists():
        return p
    return scenario_dir() / subdir / f"{ref}.toml"


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


def load_model(ref: str | Path, subdir: str, what: str, model: type[M], error: type[Exception]) -> tuple[Path, M]:
    """Find, read and validate one data file."""
    path = data_path(ref, subdir)
    return path, validate(model, read_toml(path, what, error), path, error)
