"""6.8 filter processors: what MFA's successor costs when a listener is filtered."""

from __future__ import annotations

import pytest

from smtpd_sim.spec.topology import TopologyError, load_topology
from smtpd_sim.studies.probe import run_probe


def test_filtered_session_adds_the_source_derived_55_imsgs() -> None:
    """era-pony.md §5: one filtered 1-message session, no data-line filter: connect 7,
    EHLO 5+6, MAIL 7, RCPT 7, DATA 8, "."/commit 8, QUIT 5, close 2 = 55 extra imsgs."""
    plain = run_probe("pony-6.8", "local")
    filtered = run_probe("pony-6.8-filters", "local")
    assert filtered.hops - plain.hops == 55
    assert filtered.ledger["delivered"] == 1
    # per filtered phase the fixed cost is 3: FILTER_SMTP_PROTOCOL both ways + FILTER_RESPONSE
    assert filtered.by_type["IMSG_FILTER_SMTP_PROTOCOL"] == 2 * 7
    assert filtered.by_type["IMSG_REPORT_SMTP_FILTER_RESPONSE"] == 7


def test_only_lka_talks_to_filters_and_each_filter_is_two_processes() -> None:
    """Filter processors speak a text protocol with lka only (no imsgs), registered for
    connect, MAIL, RCPT and commit: 4 query lines per 1-recipient session, plus reports."""
    from smtpd_sim.sim.simulation import Simulation
    from smtpd_sim.spec.scenario import scenario_of
    from smtpd_sim.studies.probe import probe_workload

    assert load_topology("pony-6.8-filters").n_processes == 7 + 2
    sim = Simulation(scenario_of("pony-6.8-filters", workload=probe_workload("local")))
    sim.startup()
    sim.start_clients()
    sim.run_until_quiet(60)
    assert not [k for k in sim.recorder.hop_counts if "filter-example" in k[:2]]
    fp = sim.filter_procs["example"]
    assert fp.queries == 4
    # every REPORT_SMTP_* of the session reached it: 7 filter responses, 6 client lines, 12
    # server lines, link connect/greeting/identify/disconnect, 7 transaction reports
    assert fp.reports == 7 + 6 + 12 + 4 + 7


def test_filters_put_round_trips_back_on_the_critical_path() -> None:
    plain = {c["step"]: c["hops"] for c in run_probe("pony-6.8", "local").critical_path}
    filt = {c["step"]: c["hops"] for c in run_probe("pony-6.8-filters", "local").critical_path}
    for step in ("banner", "EHLO", "MAIL FROM", "RCPT TO", "end of data", "QUIT"):
        assert filt[step] == plain[step] + 2, step
    assert filt["DATA"] == plain["DATA"] + 4  # the phase + lka's data socketpair


def test_filters_need_6_8(tmp_path) -> None:
    text = load_topology("pony").path.read_text() + '\n[[filter]]\nname = "x"\n'
    p = tmp_path / "t.toml"
    p.write_text(text)
    with pytest.raises(TopologyError, match="only in 6.8"):
        load_topology(p)
