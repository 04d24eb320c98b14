"""The package as installed: ``--version`` reads the package metadata, ``python -m smtpd_sim``
is the same command, the package says it is typed, the license is the one pyproject names."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from typer.testing import CliRunner

import smtpd_sim
from smtpd_sim.cli import app

ROOT = Path(__file__).resolve().parents[1]


def _installed() -> str | None:
    try:
        return version("smtpd-sim")
    except PackageNotFoundError:
        return None


def test_version_is_the_installed_metadata() -> None:
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0, r.output
    v = _installed()
    assert r.stdout == (f"smtpd-sim {v}\n" if v else
                        "smtpd-sim: not installed (no package metadata; pip install .)\n")


def test_python_dash_m_is_the_same_command() -> None:
    env = dict(os.environ)
    model = str(Path(smtpd_sim.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (model, env.get("PYTHONPATH", "")) if p)
    version_out = subprocess.run([sys.executable, "-m", "smtpd_sim", "--version"], capture_output=True,
                                 text=True, env=env, timeout=120)
    assert version_out.returncode == 0 and version_out.stdout.startswith("smtpd-sim "), version_out
    bad = subprocess.run([sys.executable, "-m", "smtpd_sim", "topology", "nosuch-era"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("smtpd-sim: error: ") and bad.stdout == ""


def test_typed_and_licensed() -> None:
    assert (Path(smtpd_sim.__file__).parent / "py.typed").is_file()
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == {"text": "ISC"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("ISC License\n") and "the smtpd-sim authors" in text
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog\n")
