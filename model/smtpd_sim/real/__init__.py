"""The real OpenSMTPD 6.8.0p2 as ground truth: harness, relay sink, scenario client, /proc CPU.

Why: the simulator is checked against the real daemon on every CI run
(``make validate-real``). :mod:`smtpd_sim.real.harness` runs the Debian package on loopback
only inside a network namespace, :mod:`smtpd_sim.real.scenarios` drives it (or any SMTP
server, e.g. the simulator's live one), :mod:`smtpd_sim.real.sink` stands in for the
remote MX and :mod:`smtpd_sim.real.procstat` reads per-process CPU for calibration.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Lazy exports, so that ``python -m smtpd_sim.real.harness`` does not import the module twice.
_EXPORTS: dict[str, str] = {
    "DEFAULT_TRACE_FLAGS": "smtpd_sim.real.harness",
    "RealDaemon": "smtpd_sim.real.harness",
    "RealDaemonError": "smtpd_sim.real.harness",
    "RealRun": "smtpd_sim.real.harness",
    "compare_with_reference": "smtpd_sim.real.harness",
    "ensure_installed": "smtpd_sim.real.harness",
    "run_real_scenarios": "smtpd_sim.real.harness",
    "SCENARIOS": "smtpd_sim.real.scenarios",
    "ScenarioEnv": "smtpd_sim.real.scenarios",
    "DialogError": "smtpd_sim.real.scenarios",
    "run_scenario_client": "smtpd_sim.real.scenarios",
    "scenario_names": "smtpd_sim.real.scenarios",
    "Sink": "smtpd_sim.real.sink",
    "SinkError": "smtpd_sim.real.sink",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first use."""
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'smtpd_sim.real' has no attribute {name!r}") from None
    return getattr(import_module(module), name)
