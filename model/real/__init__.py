"""The real OpenSMTPD 6.8.0p2 as ground truth: harness, relay sink, scenario client, /proc CPU.

Why: the simulator is checked against the real daemon on every CI run
(``make validate-real``). :mod:`model.real.harness` runs the Debian package on loopback
only inside a network namespace, :mod:`model.real.scenarios` drives it (or any SMTP
server, e.g. the simulator's live one), :mod:`model.real.sink` stands in for the
remote MX and :mod:`model.real.procstat` reads per-process CPU for calibration.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Lazy exports, so that ``python -m model.real.harness`` does not import the module twice.
_EXPORTS: dict[str, str] = {
    "DEFAULT_TRACE_FLAGS": "model.real.harness",
    "RealDaemon": "model.real.harness",
    "RealDaemonError": "model.real.harness",
    "RealRun": "model.real.harness",
    "compare_with_reference": "model.real.harness",
    "ensure_installed": "model.real.harness",
    "run_real_scenarios": "model.real.harness",
    "SCENARIOS": "model.real.scenarios",
    "ScenarioEnv": "model.real.scenarios",
    "ScenarioError": "model.real.scenarios",
    "run_scenario_client": "model.real.scenarios",
    "scenario_names": "model.real.scenarios",
    "Sink": "model.real.sink",
    "SinkError": "model.real.sink",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first use."""
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'model.real' has no attribute {name!r}") from None
    return getattr(import_module(module), name)
