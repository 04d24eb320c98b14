"""smtpd_sim.real.runs: every scenario against fresh REAL daemons (root; run on request),
compared with the reference traces; where those live (always).

``SMTPD_SIM_REAL_LONG=1`` adds the two retry scenarios (~9 minutes).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from smtpd_sim.observe.traces import compare_hops, compare_replies, read_hops_csv
from smtpd_sim.real import netns
from smtpd_sim.real.daemon import RealDaemon, running_smtpd_pids
from smtpd_sim.real.runs import REFERENCE_DIR, RealRun, run_real_scenarios, run_scenario
from smtpd_sim.real.scenarios import scenario_names

DATA = Path(__file__).resolve().parents[1] / "data" / "real-traces"
LONG = ("local-tempfail-retry", "relay-unreachable-retry")


def test_reference_dir_is_the_checkouts_recorded_traces() -> None:
    assert REFERENCE_DIR == DATA
    for name in scenario_names(long=True):
        assert (REFERENCE_DIR / "csv" / f"{name}.imsg.csv").is_file(), name


@pytest.fixture(scope="module")
def real_runs(real_requested: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RealRun]:
    """Every non-long scenario against fresh real daemons (once per module)."""
    work = tmp_path_factory.mktemp("real")
    out = os.environ.get("SMTPD_SIM_REAL_OUT")
    return run_real_scenarios(work, outdir=out)


@pytest.mark.real
@pytest.mark.parametrize("name", scenario_names())
def test_real_hops_match_reference(real_requested: None, real_runs: dict[str, RealRun], name: str) -> None:
    """Fresh real trace vs research CSV: same non-stat (from, to, imsg) multiset and per-channel order."""
    run = real_runs[name]
    c = compare_hops(read_hops_csv(DATA / "csv" / f"{name}.imsg.csv"), run.hops_df)
    assert c["multiset_equal"], f"only in reference {c['only_in_real']}, only now {c['only_in_sim']}"
    assert c["channel_order_equal"], c["channel_divergences"]
    assert (run.hops_df.phase == "startup").sum() == 6  # CONF_START/END to lka, pony, ca


@pytest.mark.real
@pytest.mark.parametrize("name", scenario_names())
def test_real_replies_match_reference(real_requested: None, real_runs: dict[str, RealRun], name: str) -> None:
    ref = json.loads((DATA / "traces" / f"{name}.dialog.json").read_text())
    c = compare_replies(ref, real_runs[name].dialogs)
    assert c["equal"], c["differences"]


@pytest.mark.real
def test_real_deliveries_and_cleanup(real_requested: None, real_runs: dict[str, RealRun]) -> None:
    for name in ("local-1rcpt", "local-3rcpt", "relay-1rcpt"):
        assert real_runs[name].notes["delivered_after_s"] is not None, name
    assert real_runs["relay-permfail-bounce"].notes["bounce_delivered_after_s"] is not None
    assert set(real_runs["local-1rcpt"].cpu) == {"parent", "ca", "control", "lka", "pony", "queue", "scheduler"}
    assert running_smtpd_pids() == []
    stale = list(netns.NETNS_DIR.glob(f"{netns.NETNS_PREFIX}*")) if netns.NETNS_DIR.exists() else []
    assert stale == []


@pytest.mark.real
def test_real_outcomes_past_the_250(real_requested: None, real_runs: dict[str, RealRun]) -> None:
    """What each issue-17 scenario is for happened (not only its imsgs): MX relay and both
    STARTTLS relays delivered, DSN notices where 6.8 queue.c sends them and not elsewhere,
    the DSN sink got the parameters, the loop bounced."""
    n = {name: real_runs[name].notes for name in real_runs}
    for name in ("relay-mx-1rcpt", "relay-starttls-chain1", "relay-starttls-chain2", "rcpt-reject-after-250"):
        assert n[name]["delivered_after_s"] is not None, name
    for name in ("dsn-success-local", "dsn-success-relay", "dsn-success-relay-dsn", "dsn-never-permfail",
                 "dsn-failure-permfail", "dsn-success-permfail", "mail-loop-delivered-to"):
        assert (n[name]["notice_after_s"] is not None) == n[name]["notice_expected"], (name, n[name])
    assert n["dsn-success-relay-dsn"]["sink_params"][0][2:] == ["NOTIFY=SUCCESS", "ORCPT=rfc822;user@dsn.test"]
    assert n["dsn-success-relay"]["sink_params"] == [[]]  # no DSN advertised: nothing passed on
    assert real_runs["forward-loop"].dialogs["sessions"][0]["replies"][3].startswith("524 5.2.4")


@pytest.mark.real
@pytest.mark.parametrize("name", LONG)
def test_real_long_scenarios(real_requested: None, tmp_path: Path, name: str) -> None:
    if os.environ.get("SMTPD_SIM_REAL_LONG") != "1":
        pytest.skip("long real-daemon scenario: also set SMTPD_SIM_REAL_LONG=1 (~9 minutes)")
    with RealDaemon(tmp_path) as d:
        run = run_scenario(d, name, long=True)
    c = compare_hops(read_hops_csv(DATA / "csv" / f"{name}.imsg.csv"), run.hops_df)
    assert c["multiset_equal"], f"only in reference {c['only_in_real']}, only now {c['only_in_sim']}"
