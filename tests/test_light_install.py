"""The light install (``pip install smtpd-sim``, no extras): with Dask, pyarrow and bokeh made
unimportable, every module of the package imports, compare/run/trace/privsep run and serve
answers, and sweep says in one line (exit 2) which extra to install.

One fresh interpreter (``sys.modules[name] = None`` blocks an import, even of a module this
test process loaded already); the commands run in it through Typer's CliRunner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import smtpd_sim

SMALL = Path(__file__).parent / "data" / "small-workload.toml"
BLOCKED = ("dask", "distributed", "pyarrow", "bokeh")

SCRIPT = textwrap.dedent('''
    import json, pkgutil, importlib, sys
    from pathlib import Path
    for name in BLOCKED:
        sys.modules[name] = None  # `import name` now raises ImportError, as if not installed
    import smtpd_sim
    from typer.testing import CliRunner
    from smtpd_sim.cli import app

    modules = [m.name for m in pkgutil.walk_packages(smtpd_sim.__path__, "smtpd_sim.")
               if m.name != "smtpd_sim.__main__"]  # (it runs the command)
    for name in modules:
        importlib.import_module(name)
    tmp = Path(TMP)
    scen = tmp / "tiny.toml"
    scen.write_text('name = "tiny"\\nera = "pony"\\ndrain_s = 60\\n[workload]\\nduration_s = 2\\n'
                    '[workload.arrival]\\nrate_per_s = 10.0\\n')
    runner = CliRunner()
    commands = {
        "compare": ["compare", "--json", "--workload", SMALL, "--eras", "pony"],
        "run": ["run", str(scen), "--json", "--out", str(tmp / "run")],
        "trace": ["trace", "pony-6.8"],
        "privsep": ["privsep", "pony"],
        "serve": ["serve", "--help"],
        "sweep": ["sweep", "default", "--workers", "0", "--vary", "cores=1,2", "--out", str(tmp / "sw")],
        "sweep-dask": ["sweep", "default", "--workers", "1", "--vary", "cores=1,2", "--out", str(tmp / "sw")],
    }
    out = {"modules": len(modules), "loaded": sorted(n for n in BLOCKED if sys.modules.get(n) is not None)}
    for key, args in commands.items():
        r = runner.invoke(app, args)
        out[key] = {"code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr,
                    "exception": repr(r.exception) if r.exception and r.exit_code not in (0, 2) else None}
    out["loaded_after"] = sorted(n for n in BLOCKED if sys.modules.get(n) is not None)
    del sys.modules["pyarrow"]  # pyarrow back (this environment has it), Dask still missing
    r = runner.invoke(app, commands["sweep-dask"])
    out["sweep-pyarrow-only"] = {"code": r.exit_code, "stderr": r.stderr}
    print(json.dumps(out))
''')


def test_the_light_commands_need_no_extra_and_sweep_names_its_own(tmp_path: Path) -> None:
    env = dict(os.environ)
    model = str(Path(smtpd_sim.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (model, env.get("PYTHONPATH", "")) if p)
    code = f"BLOCKED = {BLOCKED!r}; TMP = {str(tmp_path)!r}; SMALL = {str(SMALL)!r}\n" + SCRIPT
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["modules"] > 50 and res["loaded"] == [] and res["loaded_after"] == []
    for key in ("compare", "run", "trace", "privsep", "serve"):
        assert res[key]["code"] == 0, (key, res[key])
    assert [e["era"] for e in json.loads(res["compare"]["stdout"])["eras"]] == ["pony"]
    assert json.loads(res["run"]["stdout"])["ledger"]["accepted"] > 0
    assert "IMSG_" in res["trace"]["stdout"]
    for key, what in (("sweep", "pyarrow"), ("sweep-dask", "pyarrow"),
                      ("sweep-pyarrow-only", "dask.distributed")):
        assert res[key]["code"] == 2, (key, res[key])
        assert res[key]["stderr"] == (f"smtpd-sim: error: smtpd-sim sweep needs {what}, which is in the "
                                      "'sweep' extra: pip install 'smtpd-sim[sweep]'\n")
    assert not (tmp_path / "sw").exists()  # refused before anything ran or was written
