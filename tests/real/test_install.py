"""smtpd_sim.real.install: what the host needs; one-line errors when it lacks something."""

from __future__ import annotations

import os

import pytest

from smtpd_sim.real import install
from smtpd_sim.real.commands import RealDaemonError
from smtpd_sim.real.install import check_prerequisites


def test_prerequisite_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(RealDaemonError, match="must run as root") as e:
        check_prerequisites()
    assert "\n" not in str(e.value)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real_which = install.which
    monkeypatch.setattr(install, "which", lambda c: None if c == "ip" else real_which(c))
    with pytest.raises(RealDaemonError, match="'ip' not found"):
        check_prerequisites()


@pytest.mark.real
def test_real_prerequisites(real_requested: None) -> None:
    check_prerequisites()  # raises a one-line RealDaemonError when the machine cannot do it
