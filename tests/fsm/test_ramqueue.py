"""scheduler_ramqueue.c port: retry series per era, batching, commit/rollback, expiry,
delay warnings, hold/release, smtpctl controls, and random-operation invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpd_sim.fsm.envelope import (
    D_BOUNCE,
    D_MDA,
    D_MTA,
    SMTPD_QUEUE_EXPIRY,
    make_evpid,
)
from smtpd_sim.fsm.ramqueue import RamQueue, RetryPolicy
from smtpd_sim.fsm.scheduler_backend import (
    SCHED_ALL,
    SCHED_BOUNCE,
    SCHED_MDA,
    SCHED_MTA,
    SCHED_REMOVE,
    SCHED_UPDATE,
    SchedulerInfo,
)

ERAS = ("5.4.2", "5.7.3", "6.8")


def _evp(msgid: int, n: int, typ: str = D_MTA, creation: float = 1000.0, **kw) -> SchedulerInfo:
    return SchedulerInfo(make_evpid(msgid, n), typ, creation, **kw)


def _committed(rq: RamQueue, infos: list[SchedulerInfo], now: float) -> None:
    msgids = []
    for i in infos:
        rq.insert(i, now)
        if i.msgid not in msgids:
            msgids.append(i.msgid)
    for m in msgids:
        rq.commit(m, now)


def _retry_times(era: str, typ: str, n: int, creation: float = 1000.0,
                 fail_after: float = 0.0) -> list[float]:
    """Dispatch, tempfail ``fail_after`` s later, follow the scheduler's timer; return
    the dispatch times minus creation."""
    rq = RamQueue(era)
    info = _evp(1, 1, typ, creation)
    _committed(rq, [info], creation)
    t = creation
    times = []
    for retry in range(1, n + 1):
        tick = rq.timeout(t)
        assert [b.evpids for b in tick.batches] == [[info.evpid]], (t, rq.counts())
        times.append(t - creation)
        t += fail_after
        info.retry = retry  # queue.c: evp.retry++
        rq.update(info, t)
        tick = rq.timeout(t)
        assert tick.batches == [] and tick.next_timer is not None
        t += tick.next_timer
        rq.check_invariants()
    tick = rq.timeout(t)
    assert tick.batches and tick.batches[0].evpids == [info.evpid]
    times.append(t - creation)
    return times[1:]


# ---- retry series ------------------------------------------------------------------------

def test_series_6_8_mda_matches_real_daemon() -> None:
    # real-daemon.md §7: creation+10, +40, +90, next +160
    assert _retry_times("6.8", D_MDA, 5) == [10, 40, 90, 160, 250]


def test_series_6_8_mta() -> None:
    assert _retry_times("6.8", D_MTA, 3) == [400, 1600, 3600]


def test_series_5_7_3_equals_6_8() -> None:
    assert _retry_times("5.7.3", D_MDA, 4) == [10, 40, 90, 160]
    assert _retry_times("5.7.3", D_MTA, 3) == [400, 1600, 3600]


def test_series_5_4_2() -> None:
    # scheduler_compute_schedule(): creation + base*retry*retry/2, base 800 / 10
    assert _retry_times("5.4.2", D_MTA, 3) == [400, 1600, 3600]
    assert _retry_times("5.4.2", D_MDA, 4) == [5, 20, 45, 80]
    assert _retry_times("5.4.2", D_BOUNCE, 3) == [5, 20, 45]


def test_bounce_envelopes_use_the_delivery_base() -> None:
    assert _retry_times("6.8", D_BOUNCE, 3) == [10, 40, 90]


def test_policy_series() -> None:
    assert RetryPolicy("6.8").series(D_MTA, 4) == [400, 1600, 3600, 6400]
    assert RetryPolicy("5.4.2").series(D_MDA, 3) == [5, 20, 45]
    assert RetryPolicy("pony-6.8").era == "6.8"
    assert RetryPolicy("with-mfa").era == "5.4.2"


def test_real_6_8_integer_time_reproduces_logged_delays() -> None:
    """real-traces local-tempfail-retry: creation 1795540173, accepted .96 s into that
    second; scheduler 'delay=10', '30', '49', '70'; retries at t+10.0, t+40.0, t+89.1."""
    rq = RamQueue("6.8")
    t_accept = 1795540173.964
    info = _evp(0x4A8C3C91, 0xA3BFE2AD, D_MDA, t_accept)
    _committed(rq, [info], t_accept)
    t = t_accept
    delays, tries = [], []
    for retry in range(1, 5):
        assert rq.timeout(t).batches
        t += 0.012  # fork + mail.maildir failing + imsg round trips (trace: 10-25 ms)
        info.retry = retry
        rq.update(info, t)
        d = rq.timeout(t).next_timer
        delays.append(d)
        t += d + 0.004
        tries.append(t - t_accept)
    assert delays == [10, 30, 49, 70]
    assert round(tries[0], 1) == 10.0 and round(tries[1], 1) == 40.0
    assert 89.0 <= tries[2] <= 89.2  # observed t+89.1


def test_real_6_8_mta_delays_389_1189() -> None:
    """real-daemon.md §7 (g): the MTA gives up 11 s after each try; scheduler delay=389,
    then 1189; second try at t+400."""
    rq = RamQueue("6.8")
    t0 = 5000.2
    info = _evp(9, 9, D_MTA, t0)
    _committed(rq, [info], t0)
    assert rq.timeout(t0).batches
    info.retry = 1
    rq.update(info, t0 + 11)
    assert rq.timeout(t0 + 11).next_timer == 389
    t = t0 + 11 + 389
    assert rq.timeout(t).batches and round(t - t0) == 400
    info.retry = 2
    rq.update(info, t + 11)
    assert rq.timeout(t + 11).next_timer == 1189


def test_late_tempfail_takes_next_point_in_the_future() -> None:
    for era in ERAS:
        rq = RamQueue(era)
        info = _evp(1, 1, D_MTA, 1000.0)
        _committed(rq, [info], 1000)
        rq.batch(SCHED_ALL, 1000)
        info.retry = 1
        # the first retry point (+400) has already passed: +1600 it is
        assert rq.update(info, 1000 + 500) == 1000 + 1600
        assert info.nexttry == 2600
        rq.check_invariants()
    # 6.8 MDA, retry=1 but reported at +95 s: 10, 40, 90 are past -> +160
    rq = RamQueue("6.8")
    info = _evp(2, 1, D_MDA, 0.0)
    _committed(rq, [info], 0)
    rq.batch(SCHED_ALL, 0)
    info.retry = 1
    assert rq.update(info, 95) == 160


@given(era=st.sampled_from(ERAS), typ=st.sampled_from((D_MDA, D_MTA, D_BOUNCE)),
       creation=st.integers(0, 10**9), retry=st.integers(0, 400),
       dt=st.floats(-1000, 10**7, allow_nan=False))
def test_next_point_matches_the_c_loop(era, typ, creation, retry, dt) -> None:
    pol = RetryPolicy(era)
    now = creation + dt
    k = retry
    while pol.schedule(typ, creation, k) <= now:  # scheduler_ram_update() / scheduler_next()
        k += 1
    assert pol.next(typ, creation, retry, now) == pol.schedule(typ, creation, k)


def test_update_batch_recomputation_per_era() -> None:
    # 5.4.2 SCHED_UPDATE: base 800 (/2) whatever the type; 5.7.3+: the type's base
    assert RetryPolicy("5.4.2").update_schedule(D_MDA, 0.0, 50.0) == 400
    assert RetryPolicy("6.8").update_schedule(D_MDA, 0.0, 50.0) == 90
    assert RetryPolicy("6.8").update_schedule(D_MTA, 0.0, 50.0) == 400
    assert RetryPolicy("6.8").update_schedule(D_MTA, 0.0, 50.0, overflow=True) == 75


# ---- commit / rollback -------------------------------------------------------------------

def test_envelopes_are_not_schedulable_before_commit() -> None:
    rq = RamQueue("6.8")
    a, b = _evp(5, 1), _evp(5, 2)
    assert rq.insert(a, 1000) == 1000  # retry 0: due at creation
    rq.insert(b, 1000)
    assert rq.state_of(a.evpid) == "incoming" and len(rq) == 2
    assert rq.batch(SCHED_ALL, 2000).evpids == []
    assert rq.timeout(2000).next_timer is None  # nothing committed: sleep
    assert rq.commit(5, 2000) == 2
    assert rq.state_of(a.evpid) == "scheduled"  # commit runs rq_queue_schedule()
    b1 = rq.batch(SCHED_ALL, 2000)
    assert sorted(b1.evpids) == [a.evpid, b.evpid] and b1.type == "mta"
    assert rq.ninflight == 2
    rq.check_invariants()


def test_rollback_discards_uncommitted_envelopes() -> None:
    rq = RamQueue("6.8")
    rq.insert(_evp(5, 1), 1000)
    rq.insert(_evp(5, 2), 1000)
    assert rq.rollback(5) == 2
    assert rq.rollback(5) == 0
    assert len(rq) == 0 and rq.stats()["scheduler.ramqueue.update"] == 0
    with pytest.raises(KeyError):
        rq.commit(5, 1000)
    rq.check_invariants()


def test_bounce_envelope_joins_a_committed_message() -> None:
    rq = RamQueue("6.8")
    _committed(rq, [_evp(5, 1)], 1000)
    rq.insert(_evp(5, 2, D_BOUNCE, 1200), 1200)
    assert rq.stats()["scheduler.ramqueue.message"] == 2  # one in ramqueue, one per update
    assert rq.commit(5, 1200) == 1
    assert rq.stats()["scheduler.ramqueue.message"] == 1
    assert set(rq.messages[5]) == {make_evpid(5, 1), make_evpid(5, 2)}
    rq.check_invariants()


def test_double_insert_is_fatal() -> None:
    rq = RamQueue("6.8")
    rq.insert(_evp(5, 1), 0)
    with pytest.raises(RuntimeError):
        rq.insert(_evp(5, 1), 0)


# ---- batching ----------------------------------------------------------------------------

def test_batch_priority_and_size_5_4_2() -> None:
    rq = RamQueue("5.4.2")
    now = 10**6
    # removed > expired > update > bounce > mda > mta, one type per batch, at most 10
    rem = [_evp(1, i + 1, D_MTA, now + 50) for i in range(12)]
    exp = [_evp(2, i + 1, D_MDA, now - SMTPD_QUEUE_EXPIRY) for i in range(12)]
    for i in exp:
        i.retry = 100
    bnc = [_evp(3, i + 1, D_BOUNCE, now) for i in range(12)]
    mda = [_evp(4, i + 1, D_MDA, now) for i in range(12)]
    mta = [_evp(5, i + 1, D_MTA, now) for i in range(12)]
    held = [_evp(6, i + 1, D_MDA, now) for i in range(3)]
    _committed(rq, rem + exp + bnc + mda + mta + held, now)
    rq.remove(1, now)
    # 10 mda envelopes onto q_update: dispatch, hold, release with n = -1
    b = rq.batch(SCHED_MDA, now)
    for e in b.evpids:
        rq.hold(e, 77)
    assert rq.release(D_MDA, 77, -1) == 10
    order = []
    while True:
        b = rq.batch(SCHED_ALL, now)
        if not b.evpids:
            break
        assert len(b.evpids) <= 10 and len(set(b.types)) == 1
        order.append((b.type, len(b.evpids)))
        rq.check_invariants()
    assert order == [("remove", 10), ("remove", 2), ("expire", 10), ("expire", 2),
                     ("update", 10), ("bounce", 10), ("bounce", 2), ("mda", 5),
                     ("mta", 10), ("mta", 2)]


def test_batch_round_robin_6_8() -> None:
    rq = RamQueue("6.8")
    now = 10**6
    bnc = [_evp(3, i + 1, D_BOUNCE, now) for i in range(4)]
    mda = [_evp(4, i + 1, D_MDA, now) for i in range(9)]
    mta = [_evp(5, i + 1, D_MTA, now) for i in range(9)]
    _committed(rq, bnc + mda + mta, now)
    b = rq.batch(SCHED_ALL, now)
    assert len(b) == 10 and b.type == "mixed"
    assert b.types == ["bounce", "mda", "mta"] * 3 + ["bounce"]
    b = rq.batch(SCHED_ALL, now)
    assert b.types == ["mda", "mta"] * 5
    b = rq.batch(SCHED_MDA | SCHED_MTA, now)
    assert b.types == ["mda", "mta"]
    rq.check_invariants()


def test_typemask_restricts_and_delay_reports_the_next_due() -> None:
    rq = RamQueue("6.8")
    _committed(rq, [_evp(1, 1, D_MTA, 1000), _evp(2, 1, D_MDA, 1000, retry=1)], 1000)
    b = rq.batch(SCHED_MDA | SCHED_BOUNCE, 1000)
    assert b.evpids == [] and b.type is None and b.delay == 10  # the mda one is due at +10
    b = rq.batch(["mta"], 1000)
    assert b.evpids == [make_evpid(1, 1)] and b.delay == 0.0
    assert rq.next_wakeup(1000.5) == 1010.5  # delay from the floored clock, added to now
    assert rq.batch(SCHED_ALL, 1010).evpids == [make_evpid(2, 1)]
    assert rq.batch(SCHED_ALL, 1010).delay is None  # nothing pending at all


def test_timeout_5_4_2_serves_one_batch_per_type() -> None:
    rq = RamQueue("5.4.2")
    now = 0
    infos = ([_evp(1, i + 1, D_MDA, now) for i in range(15)]
             + [_evp(2, i + 1, D_MTA, now) for i in range(3)]
             + [_evp(3, 1, D_MTA, now, retry=1)])
    _committed(rq, infos, now)
    tick = rq.timeout(now)
    assert [(b.type, len(b)) for b in tick.batches] == [("mda", 10), ("mta", 3)]
    assert tick.next_timer == 0.0  # q_mda still has 5
    tick = rq.timeout(now)
    assert [(b.type, len(b)) for b in tick.batches] == [("mda", 5)]
    assert tick.next_timer == 0.0  # something pending and a batch was served
    tick = rq.timeout(now)
    assert tick.batches == [] and tick.next_timer == 400
    assert rq.timeout(now, mta_paused=True).next_timer == 400


def test_timeout_6_8_one_mixed_batch_and_sleep() -> None:
    rq = RamQueue("6.8")
    _committed(rq, [_evp(1, i + 1, D_MDA, 0) for i in range(3)], 0)
    tick = rq.timeout(0)
    assert len(tick.batches) == 1 and len(tick.batches[0]) == 3 and tick.next_timer == 0.0
    tick = rq.timeout(0)
    assert tick.batches == [] and tick.next_timer is None  # all in flight: sleep


def test_timeout_respects_pause_and_max_inflight() -> None:
    for era in ERAS:
        rq = RamQueue(era, max_inflight=4)
        _committed(rq, [_evp(1, i + 1, D_MDA, 0) for i in range(6)]
                   + [_evp(2, 1, D_MTA, 0)], 0)
        tick = rq.timeout(0, mda_paused=True)
        assert [b.types for b in tick.batches] == [["mta"]]
        tick = rq.timeout(0)
        assert sum(len(b) for b in tick.batches) == 6 and rq.ninflight == 7
        rq2 = RamQueue(era, max_inflight=4)
        _committed(rq2, [_evp(1, i + 1, D_MDA, 0) for i in range(6)], 0)
        tick = rq2.timeout(0, ninflight=4)
        assert tick.batches == []


# ---- expiry and delay warnings -------------------------------------------------------------

def test_expiry_after_four_days_produces_an_expire_batch() -> None:
    for era in ERAS:
        rq = RamQueue(era)
        c = 1000.0
        info = _evp(1, 1, D_MTA, c)
        _committed(rq, [info], c)
        t = c
        retry = 0
        while True:
            tick = rq.timeout(t)
            types = [ty for b in tick.batches for ty in b.types]
            if "expire" in types:
                break
            if types:
                assert types == ["mta"]
                retry += 1
                info.retry = retry
                rq.update(info, t + 30)
                t += 30
                continue
            assert tick.next_timer is not None
            t += tick.next_timer
        assert t - c == SMTPD_QUEUE_EXPIRY
        assert len(rq) == 0 and rq.state_of(info.evpid) is None
        # 400·k² < 4 d: k = 1..29 (era-5.4.2-mfa.md §6.3)
        assert retry == 30  # the first attempt + 29 retries
        rq.check_invariants()


def test_inflight_envelopes_do_not_expire() -> None:
    rq = RamQueue("6.8")
    info = _evp(1, 1, D_MDA, 0)
    _committed(rq, [info], 0)
    rq.batch(SCHED_ALL, 0)
    assert rq.batch(SCHED_ALL, SMTPD_QUEUE_EXPIRY + 100).evpids == []
    info.retry = 1
    rq.update(info, SMTPD_QUEUE_EXPIRY + 100)
    b = rq.batch(SCHED_ALL, SMTPD_QUEUE_EXPIRY + 100)
    assert b.types == ["expire"]


def test_delay_warning_after_four_hours_exactly_once() -> None:
    for era in ERAS:
        rq = RamQueue(era)
        c = 0.0
        info = _evp(1, 1, D_MTA, c)
        _committed(rq, [info], c)
        t = c
        warnings = []
        for retry in range(1, 12):
            tick = rq.timeout(t)
            assert tick.batches
            info.retry = retry
            w = rq.tempfail(info, t + 5)
            if w is not None:
                warnings.append((retry, info.nexttry, w))
                info.lastbounce = w.timestamp  # queue.c stores req->timestamp
            t = info.nexttry
        assert len(warnings) == 1
        retry, nexttry, w = warnings[0]
        # MTA series 400 k^2: 14400 s = 4 h at k = 6 -> sent on the 6th tempfail
        assert (retry, nexttry) == (6, 14400)
        assert (w.timestamp, w.delay, w.expire) == (14400, 14400, SMTPD_QUEUE_EXPIRY)


def test_delay_warning_thresholds_and_none_for_removed() -> None:
    rq = RamQueue("6.8", bounce_warn=(3600, 7200))
    info = _evp(1, 1, D_MTA, 0)
    _committed(rq, [info], 0)
    rq.batch(SCHED_ALL, 0)
    info.retry = 3
    w = rq.tempfail(info, 10)  # next try 3600 >= creation + 1 h
    assert w is not None and w.delay == 3600
    info.lastbounce = w.timestamp
    rq.schedule(info.evpid, 3600)
    rq.batch(SCHED_ALL, 3600)
    info.retry = 4  # next 6400 < 7200: nothing
    assert rq.tempfail(info, 3601) is None
    rq.batch(SCHED_ALL, 6400)
    info.retry = 5  # next 10000 >= 7200
    w = rq.tempfail(info, 6401)
    assert w is not None and w.delay == 7200
    # removed while in flight: to q_removed, nexttry 0, no warning
    rq.batch(SCHED_ALL, 10000)
    rq.remove(info.evpid, 10000)
    info.retry = 6
    assert rq.tempfail(info, 10001) is None and info.nexttry == 0
    assert rq.batch(SCHED_ALL, 10001).types == ["remove"]


# ---- hold / release ------------------------------------------------------------------------

def test_hold_and_release() -> None:
    for era in ERAS:
        rq = RamQueue(era)
        infos = [_evp(1, i + 1, D_MTA, 0) for i in range(5)]
        _committed(rq, infos, 0)
        b = rq.batch(SCHED_ALL, 0)
        for e in b.evpids:
            assert rq.hold(e, 0xABC, 0) == 1
        assert rq.counts()["held"] == 5 and rq.ninflight == 0
        with pytest.raises(RuntimeError):
            rq.hold(b.evpids[0], 0xABC)  # must be in flight
        assert rq.release(D_MTA, 0xABC, 2) == 2
        assert rq.counts()["held"] == 3
        # released envelopes are pending with their old (past) sched: due at once
        again = rq.batch(SCHED_ALL, 1)
        assert len(again) == 2
        assert rq.release(D_MTA, 0xABC, 0) == 3
        assert rq.release(D_MTA, 0xABC, 0) == 0 and rq.holdqs[D_MTA] == {}
        rq.check_invariants()


def test_release_minus_one_defers_through_an_update_batch() -> None:
    for era, expect in (("5.4.2", 400), ("6.8", 400)):
        rq = RamQueue(era)
        _committed(rq, [_evp(1, 1, D_MTA, 0)], 0)
        e = rq.batch(SCHED_ALL, 0).evpids[0]
        rq.hold(e, 1)
        assert rq.release(D_MTA, 1, -1) == 1
        b = rq.batch(SCHED_ALL, 50)
        assert b.types == ["update"]
        assert rq.state_of(e) == "pending" and rq.envelope(e).sched == expect
        assert rq.batch(SCHED_ALL, 50).delay == expect - 50
        rq.check_invariants()


def test_holdq_overflow_5_7_3_plus() -> None:
    rq = RamQueue("6.8", max_schedule=2000)
    infos = [_evp(1 + i // 500, i % 500 + 1, D_MDA, 0) for i in range(1001)]
    _committed(rq, infos, 0)
    b = rq.batch(SCHED_ALL, 0)
    assert len(b) == 1001
    held = [rq.hold(e, 5) for e in b.evpids]
    assert held.count(1) == 1000 and held[-1] == 0
    last = b.evpids[-1]
    assert rq.state_of(last) == "pending"
    assert rq.batch(SCHED_REMOVE | SCHED_UPDATE, 0).types == ["update"]
    assert rq.envelope(last).sched == 3  # BACKOFF_OVERFLOW: 3 s
    rq.check_invariants()
    rq2 = RamQueue("5.4.2", max_schedule=2000)  # no HOLDQ_MAXSIZE at 5.4.2
    _committed(rq2, infos, 0)
    assert all(rq2.hold(e, 5) for e in rq2.batch(SCHED_ALL, 0).evpids)


def test_hold_of_suspended_envelope_makes_it_pending_offlist() -> None:
    rq = RamQueue("6.8")
    _committed(rq, [_evp(1, 1, D_MTA, 0)], 0)
    e = rq.batch(SCHED_ALL, 0).evpids[0]
    assert rq.suspend(e) == 1
    assert rq.hold(e, 3) == 0
    assert rq.state_of(e) == "pending" and rq.counts()["suspended_offlist"] == 1
    assert rq.resume(e) == 1
    assert rq.batch(SCHED_ALL, 1).evpids == [e]
    rq.check_invariants()


# ---- smtpctl controls ---------------------------------------------------------------------

def test_schedule_all_forces_pending_envelopes() -> None:
    rq = RamQueue("6.8")
    infos = [_evp(1, 1, D_MTA, 0), _evp(2, 1, D_MDA, 0), _evp(2, 2, D_MDA, 0)]
    _committed(rq, infos, 0)
    b = rq.batch(SCHED_ALL, 0)
    for i in infos:
        i.retry = 1
        rq.update(i, 1)
    assert rq.batch(SCHED_ALL, 5).evpids == []
    # one envelope in flight is not touched
    _committed(rq, [_evp(3, 1, D_MTA, 5)], 5)
    infl = rq.batch(SCHED_ALL, 5).evpids
    assert rq.schedule("all", 6) == 3
    b = rq.batch(SCHED_ALL, 6)
    assert sorted(b.evpids) == sorted(i.evpid for i in infos)
    assert rq.schedule(infl[0], 6) == 0
    assert rq.schedule(0xDEAD, 6) == 0
    rq.check_invariants()


def test_schedule_single_message_and_held() -> None:
    rq = RamQueue("5.4.2")
    _committed(rq, [_evp(7, 1, D_MTA, 0), _evp(7, 2, D_MTA, 0)], 0)
    a, b = rq.batch(SCHED_ALL, 0).evpids
    rq.hold(a, 9)
    info = _evp(7, 2, D_MTA, 0, retry=1)
    rq.update(info, 1)
    assert rq.schedule(7, 2) == 2
    assert sorted(rq.batch(SCHED_ALL, 2).evpids) == sorted([a, b])
    assert rq.holdqs[D_MTA] == {}
    rq.check_invariants()


def test_remove_pending_held_and_inflight() -> None:
    rq = RamQueue("6.8")
    infos = [_evp(1, i + 1, D_MTA, 0) for i in range(3)]
    _committed(rq, infos, 0)
    a, b, c = rq.batch(SCHED_ALL, 0).evpids
    rq.hold(a, 1)
    rq.update(SchedulerInfo(b, D_MTA, 0, retry=1), 0)
    assert rq.remove(1, 1) == 3  # held and pending -> q_removed; c in flight: flagged
    assert rq.remove(1, 1) == 0
    batch = rq.batch(SCHED_ALL, 1)
    assert batch.types == ["remove", "remove"]
    assert rq.state_of(c) == "inflight"
    rq.delete(c)  # the agent's OK arrives anyway
    assert len(rq) == 0 and rq.messages == {}
    rq.check_invariants()


def test_suspend_resume_scheduled_and_pending() -> None:
    rq = RamQueue("6.8")
    _committed(rq, [_evp(1, 1, D_MTA, 0), _evp(1, 2, D_MTA, 0, retry=2)], 0)
    a, b = make_evpid(1, 1), make_evpid(1, 2)
    assert rq.state_of(a) == "scheduled" and rq.state_of(b) == "pending"
    assert rq.suspend(1) == 2 and rq.suspend(1) == 0
    assert rq.batch(SCHED_ALL, 10**6).evpids == []  # neither dispatched nor expired
    assert rq.resume(a) == 1
    assert rq.batch(SCHED_ALL, 10).evpids == [a]
    assert rq.resume(b) == 1
    assert rq.batch(SCHED_ALL, 10**6).types == ["expire"]
    rq.check_invariants()


def test_introspection() -> None:
    rq = RamQueue("6.8")
    _committed(rq, [_evp(1, 1, D_MTA, 0), _evp(1, 2, D_MDA, 0)], 0)
    rq.insert(_evp(2, 1), 0)
    assert rq.query(1) and rq.query(make_evpid(1, 2)) and not rq.query(2)
    assert rq.list_messages() == [1]
    env = rq.list_envelopes(1)
    assert [e[0] for e in env] == [make_evpid(1, 1), make_evpid(1, 2)]
    assert make_evpid(2, 1) in rq and make_evpid(9, 1) not in rq
    c = rq.counts()
    assert c["incoming"] == 1 and c["mta"] == 1 and c["mda"] == 1 and c["envelopes"] == 2
    assert rq.stats() == {"scheduler.ramqueue.update": 1, "scheduler.ramqueue.message": 2,
                          "scheduler.ramqueue.envelope": 3, "scheduler.ramqueue.hold": 0,
                          "scheduler.ramqueue.holdq": 0}
    assert {e.evpid for e in rq.envelopes()} == {make_evpid(1, 1), make_evpid(1, 2)}


def test_non_integer_time_mode() -> None:
    rq = RamQueue("6.8", integer_time=False)
    info = _evp(1, 1, D_MDA, 100.5)
    _committed(rq, [info], 100.5)
    rq.batch(SCHED_ALL, 100.5)
    info.retry = 1
    assert rq.update(info, 100.6) == 110.5
    assert math.isclose(rq.batch(SCHED_ALL, 101).delay, 9.5)


def test_misuse_raises_like_c_fatal() -> None:
    rq = RamQueue("6.8")
    _committed(rq, [_evp(1, 1)], 0)
    with pytest.raises(RuntimeError):
        rq.delete(make_evpid(1, 1))  # not in flight
    with pytest.raises(RuntimeError):
        rq.update(_evp(1, 1), 0)
    with pytest.raises(RuntimeError):
        rq.delete(make_evpid(3, 3))  # unknown
    with pytest.raises(ValueError):
        rq.insert(SchedulerInfo(5, D_MTA, 0), 0)  # a msgid, not an evpid


# ---- random operations keep the invariants --------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(era=st.sampled_from(ERAS), data=st.data())
def test_random_operations_keep_invariants(era: str, data) -> None:
    rq = RamQueue(era, max_schedule=data.draw(st.integers(1, 12)),
                  max_inflight=data.draw(st.integers(1, 30)))
    now = 0.0
    next_msg = 1
    uncommitted: dict[int, list[int]] = {}
    retries: dict[int, int] = {}
    infos: dict[int, SchedulerInfo] = {}
    inflight: set[int] = set()  # model of what was dispatched and not answered
    gone: set[int] = set()  # left the scheduler (ok / removed / expired / rolled back)
    known: set[int] = set()
    held: dict[tuple[str, int], int] = {}
    for _ in range(data.draw(st.integers(1, 60))):
        op = data.draw(st.sampled_from(
            ["insert", "commit", "rollback", "batch", "timeout", "ok", "tempfail", "hold",
             "release", "schedule", "remove", "suspend", "resume", "time"]))
        if op == "insert":
            msgid = next_msg
            next_msg += 1
            n = data.draw(st.integers(1, 4))
            uncommitted[msgid] = []
            for k in range(n):
                typ = data.draw(st.sampled_from((D_MDA, D_MTA, D_BOUNCE)))
                info = SchedulerInfo(make_evpid(msgid, k + 1), typ, now,
                                     expire=data.draw(st.sampled_from((50.0, 5000.0))))
                rq.insert(info, now)
                infos[info.evpid] = info
                retries[info.evpid] = 0
                uncommitted[msgid].append(info.evpid)
                known.add(info.evpid)
        elif op in ("commit", "rollback") and uncommitted:
            msgid = data.draw(st.sampled_from(sorted(uncommitted)))
            evps = uncommitted.pop(msgid)
            if op == "commit":
                assert rq.commit(msgid, now) == len(evps)
            else:
                assert rq.rollback(msgid) == len(evps)
                gone.update(evps)
        elif op in ("batch", "timeout"):
            if op == "batch":
                batches = [rq.batch(data.draw(st.integers(0, 0x3F)), now)]
            else:
                batches = rq.timeout(now).batches
            for b in batches:
                assert len(b) <= rq.max_schedule
                for typ, e in b:
                    if typ in ("mda", "mta", "bounce"):
                        assert e not in inflight
                        inflight.add(e)
                    elif typ in ("remove", "expire"):
                        assert e not in inflight
                        gone.add(e)
        elif op in ("ok", "tempfail", "hold") and inflight:
            e = data.draw(st.sampled_from(sorted(inflight)))
            inflight.discard(e)
            if op == "ok":
                rq.delete(e)
                gone.add(e)
            elif op == "tempfail":
                retries[e] += 1
                infos[e].retry = retries[e]
                rq.tempfail(infos[e], now)
            else:
                hq = data.draw(st.integers(1, 3))
                if rq.hold(e, hq, now):
                    held[(infos[e].type, hq)] = 1
        elif op == "release" and held:
            typ, hq = data.draw(st.sampled_from(sorted(held)))
            rq.release(typ, hq, data.draw(st.integers(-1, 3)), now)
        elif op in ("schedule", "remove", "suspend", "resume") and known:
            target = data.draw(st.one_of(st.sampled_from(sorted(known)),
                                         st.just("all") if op == "schedule" else st.nothing(),
                                         st.integers(1, next_msg)))
            if op == "schedule":
                rq.schedule(target, now)
            elif op == "remove":
                rq.remove(target, now)
            elif op == "suspend":
                rq.suspend(target)
            else:
                rq.resume(target)
        elif op == "time":
            now += data.draw(st.sampled_from((0.0, 0.4, 1.0, 7.0, 60.0, 500.0, 6000.0)))
        rq.check_invariants()
        assert rq.ninflight == len(inflight)
        for e in inflight:
            assert rq.state_of(e) == "inflight"
        for e in gone:
            assert rq.state_of(e) is None
        live = known - gone
        assert len(rq) == len(live)
        for e in live:
            assert rq.state_of(e) is not None
