"""The MFA post's claims as experiments (studies.claims): short runs, expected values beside
their source in the research notes."""

from __future__ import annotations

import pandas as pd
import pytest

from smtpd_sim.spec.workload import parse_workload
from smtpd_sim.studies import claims
from smtpd_sim.studies.experiments import workload_variant


def _misbehaving(duration_s: float = 0.3, rate: float = 100.0):
    wl = workload_variant("default", duration_s=duration_s, rate_per_s=rate)
    d = wl.model_dump()
    d["mix"].update(bad_rcpt_share=0.2, protocol_error_share=0.1)
    return parse_workload(d, "misbehaving")


def test_the_mfa_never_says_no_while_the_daemon_does() -> None:
    a = claims.mfa_answers(_misbehaving())
    # every query answered (mfa_session.c:mfa_drain_query(), era-5.4.2-mfa.md §4.1), all MFA_OK
    assert a["answers"] == a["queries"] > 5 * a["accepted"] > 0
    assert a["not_ok"] == 0
    # unknown recipients and bad commands are refused, by someone else
    assert a["replies_5xx"] > 0


def test_mfa_idle_falls_as_its_handler_cost_grows() -> None:
    wl = workload_variant("default", duration_s=0.3, rate_per_s=100.0)
    df = claims.mfa_cost_sweep([9e-6, 35e-6, 100e-6], wl, seeds=[1])
    idle = df.sort_values("mfa_cost_s")["mfa_idle"].tolist()
    assert idle[0] > idle[1] > idle[2]
    assert (df["session_extra_s"] > 0).all()  # the MFA always costs the client something
    cal = claims.with_role_cost("research-6.8", "mfa", 35e-6)
    assert cal.roles["mfa"].default_s == 35e-6 and cal.roles["lka"].default_s == 35e-6


def test_busy_sweep_and_knee() -> None:
    wl = workload_variant("default", duration_s=0.3)
    sw = claims.busy_sweep("with-mfa", wl, [50, 800])
    assert {"busy_smtp", "busy_mta", "busy_mda", "busy_mfa", "cores_used"} <= set(sw.columns)
    low, high = sw.iloc[0], sw.iloc[1]
    assert low["cores_used"] < high["cores_used"] <= 2.0 + 1e-9
    assert high["accepted_msg_s"] < 0.95 * high["offered_msg_s"]  # 800/s is past the 2-core box
    assert claims.knee(sw) == 50


def test_knee_rule_on_a_made_up_sweep() -> None:
    sw = pd.DataFrame({"rate_per_s": [1, 2, 3, 4], "offered_msg_s": [1, 2, 3, 4],
                       "accepted_msg_s": [1, 2, 3, 3], "session_mean_s": [1.0, 1.2, 1.9, 5.0]})
    assert claims.knee(sw) == 3  # 3 of 4 offered at 4/s is under 95 %
    assert claims.knee(sw, slow=1.5) == 2  # sessions 1.9× slower at 3/s
    with pytest.raises(ValueError):
        claims.knee(sw.assign(accepted_msg_s=0))


def test_history_steps_separated() -> None:
    h = claims.history_table().set_index("step")
    # processes / channels: era-pony.md §7 "Key numbers" (5.4.2 / pony+MFA / MFA zapped / 5.7.3)
    # and era-5.4.2-mfa.md §1.2 for without-mfa (8 processes, 20 channels)
    assert h["processes"].tolist() == [9, 7, 6, 7, 8]
    assert h["channels"].tolist() == [23, 15, 12, 15, 20]
    # hops per local / relayed message: 41 / 39 with the MFA, 28 / 26 without (era-pony.md §7)
    assert h["hops_local"].tolist() == [41, 41, 28, 28, 28]
    assert h["hops_relay"].tolist() == [39, 39, 26, 26, 26]
    # STARTTLS: +2 without a ca (lka SSL_INIT), +4 with klondike (era-pony.md §4, §7 adders)
    assert h.loc["MFA removed", "hops_local_starttls"] - h.loc["MFA removed", "hops_local"] == 2
    assert h.loc["klondike (5.7.3)", "hops_local_starttls"] - h.loc["klondike (5.7.3)", "hops_local"] == 4
    # each step's change: the merge -2 processes and no hop, the removal -1 and -13 hops,
    # klondike +1 process; the counterfactual is compared with 5.4.2
    assert h["Δprocesses"].tolist()[1:] == [-2, -1, 1, -1]
    assert h["Δhops_local"].tolist()[1:] == [0, -13, 0, -13]


def test_filter_round_trips_per_phase() -> None:
    f = claims.filter_round_trips().set_index("reply to")
    # 5.4.2: one smtp->mfa->smtp round trip before each reply but QUIT (era-5.4.2-mfa.md §0.3)
    assert f["5.4.2 MFA"].tolist() == [2, 2, 2, 2, 2, 2, 0]
    # 5.7.3: filter.c is linked into pony, an empty chain answers in the same process
    assert (f["5.7.3 in pony"] == 0).all()
    # 6.8, filtered listener: FILTER_SMTP_PROTOCOL to lka and back at every phase, whether or
    # not the filter subscribed (era-pony.md §5); DATA adds the data-channel fd round trip
    assert f["6.8 filtered"].tolist() == [2, 2, 2, 2, 4, 2, 2]
    assert not f.loc["EHLO", "6.8 filter subscribed"] and f.loc["RCPT TO", "6.8 filter subscribed"]


def test_klondike_table_pairs_by_seed() -> None:
    cost = pd.DataFrame({"tls_share": [1.0] * 6, "seed": [1, 1, 2, 2, 3, 3],
                         "era": ["klondike", "key in pony"] * 3,
                         "throughput_msg_s": [90, 100, 95, 100, 92, 100], "session_mean_s": [1.0] * 6})
    t = claims.klondike_table(cost).iloc[0]
    assert t["n"] == 3 and t["change"] == pytest.approx(-0.07666, abs=1e-4)
    assert t["low"] < t["change"] < t["high"] < 0
    assert (t["seed_min"], t["seed_max"]) == pytest.approx((-0.10, -0.05))


def test_klondike_cost_short_run() -> None:
    cost = claims.klondike_cost([1.0], seeds=[1, 2], concurrency=4, duration_s=0.3)
    assert set(cost["era"]) == {"klondike", "key in pony"} and len(cost) == 4
    assert (cost["throughput_msg_s"] > 0).all()


def test_measured_mfa_cost_from_the_recorded_real_542() -> None:
    import json
    from pathlib import Path

    from smtpd_sim.observe.traces import read_hops_csv

    data = Path(__file__).parents[1] / "data" / "real-traces-5.4.2"
    bench = json.loads((data / "bench.json").read_text())
    trace = read_hops_csv(data / "csv" / "local-1rcpt.imsg.csv")
    m = claims.measured_mfa_cost(bench, trace)
    # 6 queries and the commit event per message (era-5.4.2-mfa.md §0.3; the recorded trace)
    assert m["imsgs_per_msg"] == 7
    # the bench host was busy (bench.json "other_cores" 1.1-1.7): 6.8 used more CPU than calibrated
    assert m["host_factor"] > 1
    assert m["per_imsg_s"] == pytest.approx(m["raw_s"] / m["host_factor"])
    assert m["handler_s"] < m["per_imsg_s"] < m["raw_s"]  # the handler alone is part of it
    with pytest.raises(ValueError):
        claims.measured_mfa_cost(bench, trace, concurrency=99)
