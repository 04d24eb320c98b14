"""smtpd_sim.real.commands: every command has a timeout and fails in one line (no root)."""

from __future__ import annotations

import time

import pytest

from smtpd_sim.real.commands import RealDaemonError, run, wait_until


def test_run_helper_errors_and_timeouts() -> None:
    with pytest.raises(RealDaemonError, match="command not found"):
        run(["/nonexistent/smtpd-sim-cmd"], timeout=5, what="probe")
    t0 = time.monotonic()
    with pytest.raises(RealDaemonError, match="did not finish within"):
        run(["sleep", "5"], timeout=0.2, what="probe")
    assert time.monotonic() - t0 < 3
    with pytest.raises(RealDaemonError, match="exited 3"):
        run(["sh", "-c", "echo boom >&2; exit 3"], timeout=5, what="probe")


def test_wait_until_is_bounded() -> None:
    t0 = time.monotonic()
    assert not wait_until(lambda: False, 0.1, 0.01)
    assert time.monotonic() - t0 < 2
    assert wait_until(lambda: True, 0.0)
