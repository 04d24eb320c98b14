"""The ledger's running count of envelopes on their way equals a recount of its states."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smtpd_sim.observe.ledger import OPEN, Ledger

OPS = st.lists(st.tuples(st.sampled_from(["commit", "accept", "accept_internal", "delivered",
                                          "failed", "expired", "removed"]),
                         st.integers(0, 5), st.integers(0, 5)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_open_count_matches_the_states(ops: list[tuple[str, int, int]]) -> None:
    led = Ledger()
    for t, (op, msgid, k) in enumerate(ops):
        evpid = msgid << 32 | k
        if op == "commit":
            led.committed(msgid, [msgid << 32 | j for j in range(k + 1)], float(t))
        elif op == "accept":
            led.accepted(msgid, float(t))
        elif op == "accept_internal":
            led.accepted(msgid, float(t), internal=True)
        else:
            getattr(led, op)(evpid, float(t))
        recount = sum(1 for s in led.state.values() if s in OPEN)
        assert led.open == recount == led.in_flight
        assert led.settled() == (recount == 0 and not led.bounce_state)


def test_settled_envelopes_are_forgotten_but_counted() -> None:
    led = Ledger()
    for msgid in range(1, 501):
        e = msgid << 32
        led.committed(msgid, [e], float(msgid))
        led.accepted(msgid, float(msgid))
        led.world_delivery(e)
        led.delivered(e, msgid + 0.5)
    # memory follows what is on its way: nothing of the 500 settled envelopes is kept
    assert not led.state and not led.world_deliveries and not led.accept_times
    assert led.summary()["delivered"] == 500 and led.duplicated == 0
    assert len(led.delivery_delays) == 500


def _accept(led: Ledger, msgid: int) -> int:
    e = msgid << 32
    led.committed(msgid, [e], 0.0)
    led.accepted(msgid, 0.0)
    return e


def test_a_second_delivery_by_the_same_incarnation_is_a_duplicate() -> None:
    # no crash in between: nothing but a bug in the model can deliver an envelope twice
    led = Ledger()
    e = _accept(led, 7)
    led.world_delivery(e)
    led.world_delivery(e)
    led.delivered(e, 1.0)
    assert led.duplicated == 1 and led.redelivered_after_crash == 0 and not led.world_deliveries


def test_a_redelivery_after_a_crash_before_the_removal_is_counted_apart() -> None:
    # the mailbox is written, the daemon dies before the queue removes the envelope, the
    # restarted daemon delivers it again (queue.c deletes only on IMSG_*_DELIVERY_OK)
    led = Ledger()
    e = _accept(led, 7)
    led.world_delivery(e)
    led.crashed([])
    led.world_delivery(e)
    led.delivered(e, 1.0)
    assert led.redelivered_after_crash == 1 and led.duplicated == 0 and not led.world_deliveries
    s = led.summary(crashes=True)
    assert list(s)[-2:] == ["duplicated", "redelivered_after_crash"]
    assert "redelivered_after_crash" not in led.summary()


def test_an_orphan_agent_writing_after_the_restarted_daemon_settled_is_still_counted() -> None:
    # the dead daemon's agent (incarnation 0) writes the mailbox only after the restarted
    # one (incarnation 1) delivered and removed the envelope: one redelivery, then nothing
    # is kept for it
    led = Ledger()
    e = _accept(led, 7)
    led.crashed([e])
    led.world_delivery(e)  # incarnation 1
    led.delivered(e, 1.0)
    assert led.world_deliveries == {e: 1}  # kept: the orphan has not written yet
    led.world_delivery(e, 0)
    assert led.redelivered_after_crash == 1 and led.duplicated == 0
    assert not led.world_deliveries and not led.orphans
    # the other order: the orphan first, then the restarted daemon
    f = _accept(led, 8)
    led.crashed([f])
    led.world_delivery(f, 1)
    led.world_delivery(f)
    led.delivered(f, 2.0)
    assert led.redelivered_after_crash == 2 and led.duplicated == 0
    assert not led.world_deliveries and not led.orphans


def _deliver(led: Ledger, msgid: int, ends: list[tuple[str, float]]) -> None:
    evpids = [msgid << 32 | k for k in range(len(ends))]
    led.committed(msgid, evpids, 0.0)
    led.accepted(msgid, 0.1)
    for e, (what, t) in zip(evpids, ends, strict=True):
        if what != "queued":
            getattr(led, what)(e, t)


def test_delivered_in_window_counts_whole_messages() -> None:
    led = Ledger()
    led.window_end = 1.0
    _deliver(led, 10, [("delivered", 0.5), ("delivered", 1.5)])  # one envelope late
    _deliver(led, 11, [("delivered", 0.9)])
    _deliver(led, 12, [("delivered", 0.2), ("queued", 0.0)])  # still on its way
    _deliver(led, 13, [("delivered", 0.3), ("failed", 0.4)])  # one bounced
    _deliver(led, 14, [("delivered", 0.3), ("delivered", 1.0)])  # the window's last instant
    assert led.delivered_in_window == 2
    assert list(led._msg_left) == [12]  # only what is on its way is kept
