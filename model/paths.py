"""Where the embedded scenarios live (the repo's ``scenarios/`` or the installed copy)."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def scenario_dir() -> Path:
    """``scenarios/`` next to the package (editable install) or ``model/_scenarios`` (wheel)."""
    for candidate in (_HERE.parent / "scenarios", _HERE / "_scenarios"):
        if (candidate / "topologies").is_dir():
            return candidate
    raise FileNotFoundError("the embedded scenarios directory is missing from this installation")
