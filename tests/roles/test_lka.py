"""The lka role (``lka_session.c``, ``expand.c``): recipient expansion against the tree of
``expand_insert()``/``expand_cmp()``."""

from __future__ import annotations

from testkit import ScriptedClient

from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import scenario_of
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec


def _rcpt(rcpt: str, site: str = "research") -> tuple[Simulation, list[str]]:
    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=1.0, local_users=["bob"], sender="bob@local.test"))
    sim = Simulation(scenario_of("pony-6.8", workload=wl, site=site, calibration="traced-6.8"))
    sim.startup()
    client = ScriptedClient(sim, ["EHLO client.local.test\r\n", "MAIL FROM:<bob@local.test>\r\n",
                                   f"RCPT TO:<{rcpt}>\r\n", "QUIT\r\n"])
    sim.listener().connect(client)
    sim.run_until_quiet(max_time=sim.env.now + 60.0)
    return sim, client.replies


def test_forward_loop_expands_until_expand_depth() -> None:
    """erin's ~/.forward says frank@local.test, frank's says erin@local.test (the research
    site, as the real harness installs them). ``expand_cmp()`` tells an address node
    apart by its nearest EXPAND_ADDRESS ancestor, and a resolved username node carries
    ``realuser = 1``, so neither erin@ again nor frank again is a duplicate: the lka
    asks the parent for a .forward at depths 1, 3, 5, 7, 9 and the address at depth 10
    fails with 524 5.2.4 (``lka_expand()``: ``xn->depth >= EXPAND_DEPTH``). The real
    6.8.0p2 daemon: five IMSG_LKA_OPEN_FORWARD round trips
    (tests/data/real-traces/csv/forward-loop.imsg.csv). The model used to drop erin@ the
    second time and stop after two."""
    sim, replies = _rcpt("erin@local.test")
    assert replies[3] == "524 5.2.4 Mailing list expansion problem: <erin@local.test>"
    counts = sim.recorder.hop_counts
    assert counts[("lka", "parent", "IMSG_LKA_OPEN_FORWARD")] == 5
    assert counts[("parent", "lka", "IMSG_LKA_OPEN_FORWARD")] == 5


def test_alias_to_two_users_still_delivers_to_both() -> None:
    """The common-case site's alias staff -> alice, bob: two address nodes under the same
    address (two deliveries), as before."""
    sim, replies = _rcpt("staff@local.test", site="common-case")
    assert replies[3].startswith("250 2.1.5")
    assert sim.recorder.hop_counts[("lka", "queue", "IMSG_LKA_ENVELOPE_SUBMIT")] == 2
