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


def test_a_redelivery_before_the_queue_learns_is_still_a_duplicate() -> None:
    # the mailbox is written, the daemon dies before the queue hears of it, the restarted
    # daemon delivers again: two world deliveries before the terminal state
    led = Ledger()
    e = 7 << 32
    led.committed(7, [e], 0.0)
    led.accepted(7, 0.0)
    led.world_delivery(e)
    led.world_delivery(e)
    led.delivered(e, 1.0)
    assert led.duplicated == 1 and not led.world_deliveries


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
