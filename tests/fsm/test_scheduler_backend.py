"""The scheduler's backend interface (``model/smtpd_sim/fsm/scheduler_backend.py``):
``scheduler_backend.c:scheduler_info()`` per era, ``struct scheduler_batch``, the
``SCHED_*`` typemasks."""

from __future__ import annotations

from smtpd_sim.fsm.envelope import BOUNCE_EXPIRY, D_BOUNCE, SMTPD_QUEUE_EXPIRY, Envelope, make_evpid
from smtpd_sim.fsm.scheduler_backend import (
    SCHED_ALL,
    SCHED_BOUNCE,
    SCHED_MDA,
    SCHED_MTA,
    Batch,
    SchedulerInfo,
    sched_mask,
)


def test_bounce_ttl_per_era() -> None:
    evp = Envelope(id=make_evpid(1, 1), type=D_BOUNCE, creation=0.0, expire=float(BOUNCE_EXPIRY))
    assert SchedulerInfo.from_envelope(evp, "5.4.2").expire == BOUNCE_EXPIRY
    # 6.8: scheduler_info() uses the dispatcher's ttl -> sc_ttl (4 days) for bounces too
    assert SchedulerInfo.from_envelope(evp, "6.8").expire == SMTPD_QUEUE_EXPIRY
    d = {"id": make_evpid(1, 2), "type": "mta", "creation": 5.0, "retry": 2}
    i = SchedulerInfo.from_envelope(d, "5.4.2")
    assert (i.evpid, i.retry, i.expire) == (make_evpid(1, 2), 2, SMTPD_QUEUE_EXPIRY)


def test_sched_mask_from_names_bits_or_none() -> None:
    assert sched_mask(None) == SCHED_ALL
    assert sched_mask(SCHED_MDA | SCHED_MTA) == SCHED_MDA | SCHED_MTA
    assert sched_mask("bounce") == SCHED_BOUNCE
    assert sched_mask(["mda", "mta"]) == SCHED_MDA | SCHED_MTA


def test_batch_iterates_type_and_evpid_pairs() -> None:
    b = Batch("mixed", [1, 2], ["mda", "mta"], 0.0)
    assert len(b) == 2 and list(b) == [("mda", 1), ("mta", 2)]
    assert len(Batch(None, [], [], None)) == 0
