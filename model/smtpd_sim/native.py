"""The simulator's hot path compiled with mypyc (optional): same code, same bytes out, faster.

``smtpd-sim native build`` compiles :data:`MODULES` in place (a C extension beside each
``.py``, which Python imports in preference to the source); ``clean`` removes them;
``status`` says which modules run compiled. ``make`` builds them when a C compiler and mypy
are there (and again when one of their sources changes) and goes on in pure Python
otherwise. A compiled module whose source changed after the build is stale:
:func:`drop_stale` deletes the build, so an edited source is never shadowed by old machine
code; the command runs it before the model loads, and so does the test suite (importing
the package does not). ``SMTPD_SIM_PURE=1`` makes Python ignore the compiled modules
(:func:`use_pure_python`), to compare the two.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the directory holding the ``smtpd_sim`` package (model/)
GROUP = "smtpd_sim_native"  # mypyc's shared library: <GROUP>__mypyc.<abi>.so beside ``smtpd_sim``
MANIFEST = Path(__file__).with_name("_native.json")  # source hashes of the last build

# Modules on the per-imsg path, pure Python without pydantic (mypyc compiles them as typed):
# the kernel, the FSMs, the roles (their handlers) and the parts of the world they call.
# Not spec/workload.py, world.py, site.py: pydantic models, which mypyc cannot compile.
MODULES = (
    "smtpd_sim/kernel/sched.py",
    "smtpd_sim/kernel/message.py",
    "smtpd_sim/kernel/observer.py",
    "smtpd_sim/kernel/channel.py",
    "smtpd_sim/kernel/cpu.py",
    "smtpd_sim/kernel/process.py",
    "smtpd_sim/observe/recorder.py",
    "smtpd_sim/imsg.py",
    "smtpd_sim/observe/ledger.py",
    "smtpd_sim/observe/client_log.py",
    "smtpd_sim/fsm/envelope.py",
    "smtpd_sim/fsm/scheduler_backend.py",
    "smtpd_sim/fsm/ramqueue.py",
    "smtpd_sim/fsm/mta_session.py",
    "smtpd_sim/fsm/address.py",
    "smtpd_sim/fsm/rfc5322.py",
    "smtpd_sim/fsm/rfc2822.py",
    "smtpd_sim/fsm/smtp_events.py",
    "smtpd_sim/fsm/smtp_session_common.py",
    "smtpd_sim/fsm/smtp_session_68.py",
    "smtpd_sim/fsm/smtp_session_5.py",
    "smtpd_sim/fsm/smtp_session.py",
    "smtpd_sim/roles/__init__.py",
    "smtpd_sim/roles/base.py",
    "smtpd_sim/roles/parent.py",
    "smtpd_sim/roles/smtp.py",
    "smtpd_sim/roles/mta.py",
    "smtpd_sim/roles/mta_session.py",
    "smtpd_sim/roles/runq.py",
    "smtpd_sim/roles/limit.py",
    "smtpd_sim/roles/mda.py",
    "smtpd_sim/roles/mfa.py",
    "smtpd_sim/roles/lka.py",
    "smtpd_sim/roles/queue.py",
    "smtpd_sim/roles/bounce.py",
    "smtpd_sim/roles/scheduler.py",
    "smtpd_sim/roles/control.py",
    "smtpd_sim/roles/ca.py",
    "smtpd_sim/world/disk.py",
    "smtpd_sim/world/dns.py",
    "smtpd_sim/world/delivery_agent.py",
    "smtpd_sim/world/remote_mx.py",
    "smtpd_sim/world/filter_proc.py",
    "smtpd_sim/world/faults.py",
    "smtpd_sim/world/clients.py",
)


def _module_name(path: str) -> str:
    name = path[:-3].replace("/", ".")
    return name.removesuffix(".__init__")  # a package's __init__.py is the package itself


def _extensions(path: str) -> list[Path]:
    src = ROOT / path
    return sorted(src.parent.glob(src.stem + ".*.so")) + sorted(src.parent.glob(src.stem + ".*.pyd"))


def _digest(path: str) -> str:
    return hashlib.sha256((ROOT / path).read_bytes()).hexdigest()


def drop_stale() -> list[str]:
    """Delete the compiled modules if a source no longer matches the build (or one of them
    is missing); returns the names of the modules dropped. All go: compiled together, they
    use each other's classes natively (an argument typed with a compiled class must be an
    instance of that very class), so one module back in Python among compiled ones fails."""
    try:
        built = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        built = {}
    compiled = [path for path in MODULES if _extensions(path)]
    if not compiled or (len(compiled) == len(MODULES)
                        and all(built.get(path) == _digest(path) for path in MODULES)):
        return []
    clean()
    return [_module_name(path) for path in compiled]


class _SourceFirst:
    """A meta-path finder that loads :data:`MODULES` from their ``.py``, never the extension."""

    paths = {_module_name(p): p for p in MODULES}

    @classmethod
    def find_spec(cls, name: str, path: object = None, target: object = None) -> object:
        if name not in cls.paths:
            return None
        src = ROOT / cls.paths[name]
        loader = importlib.machinery.SourceFileLoader(name, str(src))
        if src.name == "__init__.py":  # a package: its submodules are found in its directory
            return importlib.util.spec_from_file_location(
                name, src, loader=loader, submodule_search_locations=[str(src.parent)])
        return importlib.util.spec_from_file_location(name, src, loader=loader)


def use_pure_python() -> None:
    """Import :data:`MODULES` from source from now on (call before they are imported)."""
    if _SourceFirst not in sys.meta_path:
        sys.meta_path.insert(0, _SourceFirst)  # type: ignore[arg-type]


def prepare() -> list[str]:
    """What a program does before it imports the model (the command, the test suite, the
    benchmarks): drop a stale build, and ignore the compiled modules if ``SMTPD_SIM_PURE``
    is set. Returns the modules dropped."""
    dropped = drop_stale()
    if os.environ.get("SMTPD_SIM_PURE"):
        use_pure_python()
    return dropped


def status() -> dict[str, bool]:
    """Module name -> whether the imported module is the compiled one."""
    out = {}
    for path in MODULES:
        mod = importlib.import_module(_module_name(path))
        out[mod.__name__] = not str(getattr(mod, "__file__", "")).endswith(".py")
    return out


def clean() -> None:
    for path in MODULES:
        for ext in _extensions(path):
            ext.unlink()
    for lib in list(ROOT.glob(GROUP + "__mypyc.*.so")):
        lib.unlink()
    MANIFEST.unlink(missing_ok=True)


def build(jobs: int = 2) -> None:
    """Compile :data:`MODULES` in place (needs mypy, setuptools and a C compiler)."""
    from mypyc.build import mypycify
    from setuptools import setup

    clean()
    cwd = os.getcwd()
    os.chdir(ROOT)  # mypyc takes paths relative to the package root and writes build/ there
    try:
        setup(
            name="smtpd-sim-native",
            py_modules=[],
            packages=[],
            # -O1: the build takes 2.6 min instead of 3.3 on 2 cores, and the bench ratio
            # measured the same within noise (0.60/0.58 against 0.62/0.58 at -O3)
            ext_modules=mypycify(list(MODULES), opt_level="1", group_name=GROUP),
            script_args=["-q", "build_ext", "--inplace", "--parallel", str(jobs)],
        )
    finally:
        os.chdir(cwd)
    MANIFEST.write_text(json.dumps({p: _digest(p) for p in MODULES}, indent=1) + "\n")
