"""Helpers the test modules share (on the path through pytest's ``pythonpath = ["tests"]``;
the suite runs with ``--import-mode=importlib``, so test modules cannot import each other)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any


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


class ScriptedClient:
    """A client connection to a simulation's smtp role that sends the next line of its
    script on every final reply (``sim.listener().connect(client)``)."""

    def __init__(self, sim: Any, script: list[str]) -> None:
        self.env = sim.env
        self.addr = "127.0.0.1"
        self.script = list(script)
        self.replies: list[str] = []
        self.smtp: Any = None
        self.sid = 0

    def attach(self, smtp: Any, sid: int) -> None:
        self.smtp = smtp
        self.sid = sid

    def server_reply(self, text: str) -> None:
        from smtpd_sim.kernel.sched import call_later

        self.replies.append(text)
        if self.script and text.split("\n")[-1][3:4] != "-":
            line = self.script.pop(0)
            smtp, sid = self.smtp, self.sid
            call_later(self.env, 0.001, lambda _t: smtp.client_data(sid, line.encode()))

    def server_close(self, _reason: str) -> None:
        self.script = []


def assert_model_matches_recording(data: Path, name: str, **kw: Any) -> tuple[Any, Any, dict[str, Any]]:
    """The simulated server (``run_sim_scenario(name, **kw)``) against the real daemon's
    recording under ``data`` (``csv/<name>.imsg.csv``, ``traces/<name>.dialog.json``): the
    non-stat hop multiset, the order on each channel and every reply equal. Returns
    (real hops, simulated hops, the hop comparison) for the caller's stat-hop check."""
    import json

    from smtpd_sim.observe.traces import compare_hops, compare_replies, read_hops_csv
    from smtpd_sim.studies.validate import run_sim_scenario

    real = read_hops_csv(data / "csv" / f"{name}.imsg.csv")
    sim, dialog, _secs = run_sim_scenario(name, **kw)
    c = compare_hops(real, sim)
    assert c["multiset_equal"], (c["only_in_real"], c["only_in_sim"])
    assert c["channel_order_equal"], c["channel_divergences"]
    r = compare_replies(json.loads((data / "traces" / f"{name}.dialog.json").read_text()), dialog)
    assert r["equal"], r["differences"]
    return real, sim, c
