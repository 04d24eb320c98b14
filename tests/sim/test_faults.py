"""Faults armed on a simulation: a bad one is a one-line model error, not a bare ValueError."""

from __future__ import annotations

import pytest

from smtpd_sim.errors import ModelError
from smtpd_sim.sim.faults import Faults
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.faults import Fault
from smtpd_sim.spec.scenario import scenario_of


def test_the_simulation_refuses_an_unknown_crash_as_a_model_error() -> None:
    """Code that arms faults on a scenario it built itself still gets one line, not a bare ValueError."""
    scen = scenario_of("pony")
    sim = Simulation(scen)
    with pytest.raises(ModelError, match="no process 'mfa'"):
        Faults(sim, [Fault(kind="crash", process="mfa")], 0.0)
