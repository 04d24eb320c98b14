"""The smtp role (``smtp_session.c`` side): what it hands the pure FSM besides imsgs."""

from __future__ import annotations

import pytest
from testkit import ScriptedClient

from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import scenario_of
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec


def test_received_date_follows_the_simulated_clock() -> None:
    """The smtp role dates the Received: header (``time_to_text(time(NULL))`` in
    ``smtp_message_begin()``) with the simulated time, 0 at the Unix epoch (issue 17 item
    6: the FSM had no clock and every header said 00:00:00)."""
    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=1.0, local_users=["bob"], sender="alice@local.test"))
    sim = Simulation(scenario_of("pony-6.8", workload=wl, site="research", calibration="traced-6.8"),
                     keep_body=True)
    got: list[bytes] = []
    sim.hooks.delivered = lambda _evpid, _user, data: got.append(data) is None  # the mailbox
    sim.startup()
    sim.run(3725.0)
    client = ScriptedClient(sim, ["EHLO client.local.test\r\n", "MAIL FROM:<alice@local.test>\r\n",
                                   "RCPT TO:<bob@local.test>\r\n", "DATA\r\n",
                                   "Subject: x\r\n\r\nhello\r\n.\r\n", "QUIT\r\n"])
    sim.listener().connect(client)
    sim.run(3726.0)
    (body,) = got
    assert b";\n\tThu, 1 Jan 1970 01:02:05 +0000 (UTC)\n" in body


@pytest.mark.parametrize("era", ["with-mfa", "pony"])
def test_5x_kick_counts_smtp_kick(era: str) -> None:
    """5.4.2 / 5.7.3 ``smtp_command()``: the SMTP_KICK_CMD-th command without progress sets
    SF_KICK and ``stat_increment("smtp.kick", 1)`` (issue 17 item 7: the model dropped
    the session without the stat)."""
    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=1.0, local_users=["bob"], sender="alice@local.test"))
    sim = Simulation(scenario_of(era, workload=wl, site="research", calibration="traced-6.8"))
    sim.startup()
    client = ScriptedClient(sim, ["EHLO client.local.test\r\n"] + ["NOOP\r\n"] * 6)
    sim.listener().connect(client)
    sim.run_until_quiet(max_time=sim.env.now + 60.0)
    assert client.script == []  # dropped without a reply to the kicking command
    assert sim.roles["control"].stats.get("smtp.kick", 0) == 1
