"""The compiled hot path: never stale, switchable off, and the same bytes as pure Python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smtpd_sim import native


def _tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake package tree with one 'compiled' module and its build manifest."""
    src = tmp_path / "smtpd_sim" / "kernel" / "x.py"
    src.parent.mkdir(parents=True)
    src.write_text("A = 1\n")
    (src.parent / "x.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\0")
    monkeypatch.setattr(native, "ROOT", tmp_path)
    monkeypatch.setattr(native, "MODULES", ("smtpd_sim/kernel/x.py",))
    monkeypatch.setattr(native, "MANIFEST", tmp_path / "smtpd_sim" / "_native.json")
    native.MANIFEST.write_text(json.dumps({"smtpd_sim/kernel/x.py": native._digest("smtpd_sim/kernel/x.py")}))
    return src


def test_an_extension_built_from_this_source_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _tree(tmp_path, monkeypatch)
    assert native.drop_stale() == []
    assert list(src.parent.glob("x.*.so"))


def test_an_extension_older_than_an_edit_is_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _tree(tmp_path, monkeypatch)
    src.write_text("A = 2\n")
    assert native.drop_stale() == ["smtpd_sim.kernel.x"]
    assert not list(src.parent.glob("x.*.so"))


def test_an_extension_without_a_manifest_is_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _tree(tmp_path, monkeypatch)
    native.MANIFEST.unlink()
    assert native.drop_stale() == ["smtpd_sim.kernel.x"]
    assert not list(src.parent.glob("x.*.so"))


_PROBE = """
import json
from smtpd_sim.native import prepare, status
prepare()
from smtpd_sim.studies.bench import model_run
print(json.dumps({"compiled": sum(status().values()), "imsgs": model_run(60)["imsgs"]}))
"""


def _probe(pure: bool) -> tuple[dict, str]:
    """(compiled-module count and a bench run's imsgs, ``compare --json``) in a fresh interpreter."""
    env = dict(os.environ)
    env.pop("SMTPD_SIM_PURE", None)
    if pure:
        env["SMTPD_SIM_PURE"] = "1"
    run = [sys.executable, "-c", _PROBE]
    probe = json.loads(subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout)
    cmp = [sys.executable, "-m", "smtpd_sim", "compare", "--json", "--eras", "with-mfa,pony-6.8"]
    return probe, subprocess.run(cmp, env=env, capture_output=True, text=True, check=True).stdout


def test_pure_python_switch_and_same_results_compiled_or_not() -> None:
    pure, pure_compare = _probe(pure=True)
    assert pure["compiled"] == 0
    compiled, compiled_compare = _probe(pure=False)
    if compiled["compiled"] == 0:
        pytest.skip("no compiled hot path in this installation (make builds it when mypyc can)")
    assert compiled["imsgs"] == pure["imsgs"]
    assert compiled_compare == pure_compare  # byte for byte: hops, idle, latencies, CPU


def test_the_command_line_loads_no_hot_path_module_before_prepare() -> None:
    """``smtpd_sim.cli`` is imported before ``main()`` calls ``native.prepare()``: it must not
    import a compiled module, or SMTPD_SIM_PURE=1 and a stale build could not take effect."""
    import subprocess
    import sys

    code = ("import sys, smtpd_sim.cli, smtpd_sim.__main__\n"
            "from smtpd_sim.native import MODULES\n"
            "names = {m[:-3].replace('/', '.') for m in MODULES}\n"
            "print(sorted(names & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
