"""The mda role (``mda.c``): the delivery-loop check of IMSG_MDA_OPEN_MESSAGE.

5.4.2, 5.7.3 and 6.8 ``mda.c:mda_check_loop()`` read the message file's header lines (up
to the first line with no ``:`` that does not start with a space) and compare each
``Delivered-To: X`` with the envelope's dest (``strcasecmp``); a match sends
IMSG_MDA_DELIVERY_LOOP (5.4.2 IMSG_DELIVERY_LOOP) to the queue instead of forking the
agent, and ``queue.c`` bounces it ("Loop detected", ESC 4.4.6) and tells the scheduler
IMSG_QUEUE_DELIVERY_LOOP. Issue 17 item 3: nothing in the model sent it."""

from __future__ import annotations

import pytest
from testkit import ScriptedClient

from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import scenario_of
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec

LOOP_NAMES = {"with-mfa": ("IMSG_DELIVERY_LOOP", "IMSG_DELIVERY_LOOP"),
              "pony": ("IMSG_MDA_DELIVERY_LOOP", "IMSG_QUEUE_DELIVERY_LOOP"),
              "pony-6.8": ("IMSG_MDA_DELIVERY_LOOP", "IMSG_QUEUE_DELIVERY_LOOP")}


def _send(era: str, message: str, rcpt: str = "bob@local.test") -> tuple[Simulation, list[str]]:
    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=1.0, local_users=["bob"], sender="alice@local.test"))
    sim = Simulation(scenario_of(era, workload=wl, site="research", calibration="traced-6.8"))
    sim.startup()
    client = ScriptedClient(sim, ["EHLO client.local.test\r\n", "MAIL FROM:<alice@local.test>\r\n",
                                   f"RCPT TO:<{rcpt}>\r\n", "DATA\r\n", message, "QUIT\r\n"])
    sim.listener().connect(client)
    sim.run_until_quiet(max_time=sim.env.now + 60.0)
    assert sim.ledger.summary()["accepted"] == 1, client.replies
    return sim, client.replies


def _loop_hops(sim: Simulation, era: str) -> tuple[int, int]:
    mda_name, queue_name = LOOP_NAMES[era]
    counts = sim.recorder.hop_counts
    to_queue = sum(n for (src, dst, k), n in counts.items() if k == mda_name and dst == "queue")
    to_sched = sum(n for (src, dst, k), n in counts.items() if k == queue_name and dst == "scheduler")
    return to_queue, to_sched


@pytest.mark.parametrize("era", list(LOOP_NAMES))
def test_delivered_to_the_recipient_is_a_loop(era: str) -> None:
    sim, _ = _send(era, "Delivered-To: BOB@local.test\r\nSubject: x\r\n\r\nhello\r\n.\r\n")
    assert _loop_hops(sim, era) == (1, 1)
    s = sim.ledger.summary()
    assert s["delivered"] == 0 and s["bounced"] == 1  # bob got nothing, alice is told
    assert sim.ledger.bounces_created == 1  # queue_bounce(B_FAILED)
    # one agent forked: the bounce's to alice (whose dest is not in the Delivered-To: line)
    forks = sum(n for (_a, dst, k), n in sim.recorder.hop_counts.items()
                if dst == "parent" and "FORK" in k)  # 5.4.2 IMSG_PARENT_FORK_MDA
    assert forks == 1


@pytest.mark.parametrize("era", list(LOOP_NAMES))
@pytest.mark.parametrize("message", [
    "Delivered-To: carol@local.test\r\nSubject: x\r\n\r\nhello\r\n.\r\n",  # someone else
    "Subject: x\r\n\r\nDelivered-To: bob@local.test\r\n.\r\n",  # in the body: not read
    "Delivered-To:bob@local.test\r\nSubject: x\r\n\r\nhello\r\n.\r\n",  # no space: strncasecmp 14
])
def test_no_loop_otherwise(era: str, message: str) -> None:
    sim, _ = _send(era, message)
    assert _loop_hops(sim, era) == (0, 0)
    assert sim.ledger.bounces_created == 0


def test_mda_check_loop_compares_the_whole_dest_ignoring_case() -> None:
    from smtpd_sim.roles.mda import mda_check_loop

    assert mda_check_loop((b"Delivered-To: Bob@Local.Test",), "bob@local.test")
    assert not mda_check_loop((b"Delivered-To: bob@local.test.org",), "bob@local.test")
    assert not mda_check_loop((), "bob@local.test")

