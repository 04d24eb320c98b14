"""IMSG names per era (smtpd.h of each tag)."""

from __future__ import annotations

import pytest

from smtpd_sim.imsg import Vocabulary


def test_the_same_kind_has_each_eras_name() -> None:
    assert Vocabulary("5.4.2").name("SMTP_MESSAGE_CREATE") == "IMSG_QUEUE_CREATE_MESSAGE"
    assert Vocabulary("5.7.3").name("SMTP_MESSAGE_CREATE") == "IMSG_SMTP_MESSAGE_CREATE"
    assert Vocabulary("6.8").name("SCHED_ENVELOPE_DELIVER") == "IMSG_SCHED_ENVELOPE_DELIVER"
    # 5.4.2 used one name for scheduler->queue and queue->mda (era-pony.md §3.6)
    assert Vocabulary("5.4.2").name("SCHED_ENVELOPE_DELIVER") == Vocabulary("5.4.2").name("QUEUE_DELIVER")


def test_kinds_that_an_era_does_not_have_are_errors() -> None:
    with pytest.raises(KeyError, match="does not exist in OpenSMTPD 6.8"):
        Vocabulary("6.8").name("MFA_REQ_MAIL")
    with pytest.raises(KeyError, match="5.4.2"):
        Vocabulary("5.4.2").name("GETNAMEINFO")
