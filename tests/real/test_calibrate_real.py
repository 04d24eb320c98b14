"""``smtpd-sim calibrate`` against the REAL OpenSMTPD 6.8.0p2 (root, Debian): a short measurement.

Runs only when asked for (``pytest -m real`` as ``make validate-real`` does, or
``SMTPD_SIM_REAL=1``); otherwise it is reported as skipped, never as passed. About 30 s:
two 3-second runs at concurrency 1 (local delivery, relay accept-only) against fresh
daemons, then the c=1 fit on them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from smtpd_sim.real.load import run_loads
from smtpd_sim.spec.calibration import load_calibration
from smtpd_sim.studies import calibrate as cb


@pytest.mark.real
def test_short_measurement_and_fit(real_requested: None) -> None:
    workdir = Path(tempfile.gettempdir()) / "smtpd-sim-real"
    results = run_loads(workdir, [("local", 1), ("relay", 1)], 3.0, install=True)
    by = {r.mode: r for r in results}
    for r in results:
        assert r.errors == 0, r
        assert r.accepted > 30, r  # the research's 2-vCPU VM did ~250-460 msg/s at c=1
        for p in ("pony", "lka", "queue", "scheduler", "control", "client"):
            assert r.cpu_ms_per_msg[p] > 0, (r.mode, p)
        assert r.ctxsw_per_msg["pony"] > 1
    loc, rel = by["local"], by["relay"]
    assert loc.delivered == loc.accepted  # every accepted message reached alice's maildir
    assert loc.cpu_ms_per_msg["parent-children"] > 0  # fork + sh + mail.maildir per message
    assert rel.cpu_ms_per_msg["parent"] == 0 and rel.cpu_ms_per_msg["parent-children"] == 0  # -P mta
    measured = cb.aggregate(r.to_dict() for r in results)
    cal, rep = cb.fit(measured, load_calibration("research-6.8"), name="real-test", rounds=1, duration_s=0.4)
    assert rep.wake_s >= 0 and rep.agent_s > 0
    for row in rep.c1:  # the c=1 fit reproduces what it was fitted on, roughly
        assert abs(row["error"]) < 0.35, row
