"""``fsm.smtp_events.time_to_text()``: ``to.c:time_to_text()``'s format, no locale."""

from __future__ import annotations

from smtpd_sim.fsm.smtp_events import DEFAULT_DATE, time_to_text


def test_epoch_is_the_default_date() -> None:
    assert time_to_text(0) == DEFAULT_DATE


def test_format_of_to_c() -> None:
    # "%s, %d %s %d %02d:%02d:%02d %c%02d%02d (%s)": day not zero-padded, seconds truncated
    assert time_to_text(1606921754.9) == "Wed, 2 Dec 2020 15:09:14 +0000 (UTC)"
    assert time_to_text(1606921754, 3600, "CET") == "Wed, 2 Dec 2020 16:09:14 +0100 (CET)"
    # abs((int)offset / 3600), abs((int)offset % 3600) / 60 for a zone west of UTC
    assert time_to_text(1606921754, -16200, "VET") == "Wed, 2 Dec 2020 10:39:14 -0430 (VET)"
