"""Load metrics: idle time, latency, CPU, computed from running the model."""

from __future__ import annotations

import pytest

from smtpd_sim.observe.sketch import percentile
from smtpd_sim.spec.workload import load_workload
from smtpd_sim.studies.load import run_load


@pytest.fixture(scope="module")
def default_runs():
    wl = load_workload("default")
    return {era: run_load(era, wl, seed=7)[0] for era in ("with-mfa", "without-mfa", "pony-6.8")}


def test_mfa_is_idle_more_than_99_percent_of_the_time(default_runs) -> None:
    m = default_runs["with-mfa"]
    assert m.accepted > 500
    assert m.idle_fraction["mfa"] > 0.99
    # ...while the processes that do the work are the busiest
    assert m.idle_fraction["queue"] < m.idle_fraction["mfa"]
    assert m.idle_fraction["smtp"] < m.idle_fraction["mfa"]


def test_removing_mfa_lowers_mean_latency(default_runs) -> None:
    """Common random numbers: both eras saw exactly the same clients."""
    with_mfa, without = default_runs["with-mfa"], default_runs["without-mfa"]
    assert with_mfa.accepted == without.accepted
    assert without.latency_mean_s < with_mfa.latency_mean_s


def test_cpu_per_message_accounts_for_every_process(default_runs) -> None:
    m = default_runs["pony-6.8"]
    assert set(m.cpu_ms_per_msg) >= {"parent", "lka", "queue", "control", "scheduler", "pony", "ca"}
    assert m.cpu_ms_per_msg["ca"] == 0.0  # no TLS in the default workload: klondike idle
    assert m.cpu_ms_per_msg["parent-children"] > 0  # the delivery agents the parent forked


def test_nothing_accepted_is_lost(default_runs) -> None:
    for m in default_runs.values():
        assert m.ledger["lost"] == 0
        assert m.ledger["accepted"] == m.ledger["delivered"] + m.ledger["bounced"] + m.ledger["queued"]


def test_percentile_nearest_rank() -> None:
    xs = list(range(1, 101))
    assert percentile(xs, 99) == 99
    assert percentile(xs, 50) == 50
    assert percentile([5.0], 99) == 5.0
