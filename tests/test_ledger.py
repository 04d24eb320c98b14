"""The ledger's running count of envelopes on their way equals a recount of its states."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from model.ledger import OPEN, Ledger

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
