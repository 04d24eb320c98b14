"""Helpers the test modules share (on the path through pytest's ``pythonpath = ["tests"]``;
the suite runs with ``--import-mode=importlib``, so test modules cannot import each other)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load(name: str, path: Path) -> ModuleType:
    """Import a helper file that lives beside the tests (once: later calls get the same module)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# A short run with a fault, for the command tests: 60 s at 2 sessions/s, half local, 30 %
# of relayed recipients refused by the remote MX (so bounces too).
TINY_SCENARIO = '''name = "tiny"
era = "pony-6.8"
drain_s = 600
sample_s = 10
[workload]
duration_s = 60
[workload.arrival]
rate_per_s = 2.0
[workload.mix]
local_share = 0.5
sender = "alice@local.test"
[[fault]]
kind = "mx_reply"
phase = "rcpt"
code = 550
rate = 0.3
'''


def tiny_scenario(tmp_path: Path) -> Path:
    """``TINY_SCENARIO`` written as ``tmp_path/tiny.toml``."""
    sc = tmp_path / "tiny.toml"
    sc.write_text(TINY_SCENARIO)
    return sc
