"""The layout holds: every room is under the import contracts, and they are kept
(import-linter, configured in pyproject.toml; docs/design.md draws the rooms)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import smtpd_sim

ROOT = Path(__file__).resolve().parent.parent


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_every_room_and_leaf_module_has_a_layer() -> None:
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    placed = {name.strip() for layer in layers for name in layer.split("|")}
    rooms = {f"smtpd_sim.{m.name}" for m in pkgutil.iter_modules(smtpd_sim.__path__) if m.name != "__main__"}
    assert rooms == placed, f"rooms without a layer: {sorted(rooms - placed)}; layers naming nothing: {sorted(placed - rooms)}"


def test_the_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "0 broken" in out.stdout


def test_importing_the_package_has_no_side_effects() -> None:
    """No module of the package is loaded by importing it (the native check and the
    SimPy model load only when a program asks)."""
    code = ("import sys, smtpd_sim; "
            "print(sorted(m for m in sys.modules if m.startswith('smtpd_sim.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_dash_m_runs_the_command() -> None:
    out = subprocess.run([sys.executable, "-m", "smtpd_sim", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "compare" in out.stdout and "real" in out.stdout
