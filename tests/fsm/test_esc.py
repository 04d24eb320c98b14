"""``fsm.esc``: esc.c's status text and descriptions."""

from __future__ import annotations

from smtpd_sim.fsm.esc import esc_code, esc_description


def test_esc_code_and_description() -> None:
    assert esc_code(4, 46) == "4.4.6" and esc_description(46) == "Routing loop detected"
    assert esc_description(34) == "Message too big for system"  # first match in esc.c's table
    assert esc_description(77) == "Other/Undefined"  # esc.c lists 77's text under 34
