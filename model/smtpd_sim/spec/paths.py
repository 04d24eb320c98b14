"""Where the embedded scenarios live (the repo's ``scenarios/`` or the installed copy)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # smtpd_sim/


def scenario_dir() -> Path:
    """``scenarios/`` of the checkout (editable install: ``model/smtpd_sim`` is two levels
    below it) or ``smtpd_sim/_scenarios`` (wheel)."""
    for candidate in (_PACKAGE.parent.parent / "scenarios", _PACKAGE / "_scenarios"):
        if (candidate / "topologies").is_dir():
            return candidate
    raise FileNotFoundError("the embedded scenarios directory is missing from this installation")
