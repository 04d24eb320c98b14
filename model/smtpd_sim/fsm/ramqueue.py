"""The scheduler's ``ramqueue`` backend and the retry policy of each era — pure, sans-IO.

A port of ``scheduler_ramqueue.c`` (5.4.2, 5.7.3 and 6.8; the last two are identical apart
from cosmetics) with the retry functions of ``scheduler_backend.c`` (5.4.2) and of
``scheduler_ramqueue.c`` itself (5.7.3+), plus the pure parts of ``scheduler.c``: the
``scheduler_timeout()`` batching loop and the delay-warning check of the
IMSG_*_DELIVERY_TEMPFAIL handler.  Nothing here sends an imsg: every method returns what
the scheduler role must send.  The backend interface (``struct scheduler_info``,
``struct scheduler_batch``, ``SCHED_*``) is :mod:`smtpd_sim.fsm.scheduler_backend`.

Envelope states (``struct rq_envelope.state``): PENDING, SCHEDULED, INFLIGHT, HELD; flags
EXPIRED, REMOVED, SUSPEND, UPDATE (+ OVERFLOW at 5.7.3+).  Containers: per-msgid *update*
queues for uncommitted messages, ``q_pending`` ordered by ``(min(sched, expire), evpid)``
(``rq_envelope_cmp()``), ``q_mta``/``q_mda``/``q_bounce``/``q_update``/``q_expired``/
``q_removed`` (all SCHEDULED), ``q_inflight`` and the holdqs per (type, holdq id).
Suspended envelopes that are PENDING or SCHEDULED are on no list at all, as in C.

Time.  The daemon works in whole seconds (``currtime = time(NULL)``; ``creation`` is a
``time_t``).  With ``integer_time=True`` (default) ``now`` and ``creation`` are floored
exactly like that, and the delays returned are whole seconds to add to the caller's
(fractional) clock.  This reproduces the real 6.8 daemon (real-daemon.md §7): MDA retries
logged ``delay=10, 30, 49, 70`` and ran at t+10.0, t+40.0, t+89.1 — the 49 and the .1
come from the truncation of a creation time that was .96 s into its second.

Data structures.  Lists are deques of ``(token, evp)`` with lazy deletion and ``q_pending``
is a heap of ``(ref, evpid, token, evp)``: every envelope records the one container it is
on (``where``) and a token that invalidates its stale entries, so unlinking from the
middle — what ``TAILQ_REMOVE`` does in C — is O(1) and FIFO/priority order is exactly C's.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from smtpd_sim.fsm.envelope import (
    D_BOUNCE,
    D_MDA,
    D_MTA,
    DEFAULT_BOUNCE_WARN,
    EF_HOLD,
    EF_INFLIGHT,
    EF_PENDING,
    EF_SUSPEND,
    era_key,
)
from smtpd_sim.fsm.scheduler_backend import (
    BOUNCE,
    EXPIRE,
    MDA,
    MTA,
    REMOVE,
    SCHED_BITS,
    SCHED_BOUNCE,
    SCHED_EXPIRE,
    SCHED_MDA,
    SCHED_MTA,
    SCHED_REMOVE,
    SCHED_UPDATE,
    UPDATE,
    Batch,
    SchedulerInfo,
    sched_mask,
)

# ---- struct rq_envelope (scheduler_ramqueue.c) ----------------------------------------------
RQ_EVPSTATE_PENDING = 0
RQ_EVPSTATE_SCHEDULED = 1
RQ_EVPSTATE_INFLIGHT = 2
RQ_EVPSTATE_HELD = 3
RQ_STATE_NAMES = ("pending", "scheduled", "inflight", "held")

RQ_ENVELOPE_EXPIRED = 0x01
RQ_ENVELOPE_REMOVED = 0x02
RQ_ENVELOPE_SUSPEND = 0x04
RQ_ENVELOPE_UPDATE = 0x08
RQ_ENVELOPE_OVERFLOW = 0x10  # 5.7.3+

# scheduler_ramqueue.c (5.7.3+)
BACKOFF_TRANSFER = 400
BACKOFF_DELIVERY = 10
BACKOFF_OVERFLOW = 3
HOLDQ_MAXSIZE = 1000
SCHEDULEMAX = 1024  # rq_queue_schedule(): envelopes moved out of q_pending per call
# scheduler_backend.c:scheduler_compute_schedule() (5.4.2)
COMPUTE_SCHEDULE_MTA = 800
COMPUTE_SCHEDULE_OTHER = 10
# parse.y (5.4.2) / config.c (6.8)
SC_SCHEDULER_MAX_INFLIGHT = 5000
SC_SCHEDULER_MAX_SCHEDULE = 10

_TYPES = (D_MDA, D_MTA, D_BOUNCE)


# ---- retry policy ---------------------------------------------------------------------------

class RetryPolicy:
    """When an envelope is (re)tried, per era.

    * ``"5.4.2"``: ``scheduler_backend.c:scheduler_compute_schedule()``:
      ``creation + base·retry²/2`` (integer division) with base 800 for D_MTA and 10 for
      D_MDA and D_BOUNCE, i.e. MTA +400, +1600, +3600 …, MDA/bounce +5, +20, +45 … .
      The SCHED_UPDATE batch recomputes with base 800 whatever the type
      (``scheduler_ram_batch()``: "XXX we can't really use scheduler_compute_schedule").
    * ``"5.7.3"`` and ``"6.8"`` (identical code): ``scheduler_ramqueue.c:scheduler_backoff()``
      ``creation + base·step²`` with BACKOFF_TRANSFER 400 (D_MTA) and BACKOFF_DELIVERY 10
      (D_MDA, D_BOUNCE): MTA +400, +1600, +3600 …, MDA/bounce +10, +40, +90, +160 … —
      exactly what the real 6.8 daemon did (real-daemon.md §7).  SCHED_UPDATE uses the
      type's base (BACKOFF_OVERFLOW 3 after a holdq overflow) from step 0.

    On a tempfail the next try is "the next point of the series in the future":
    ``while ((sched = f(retry)) <= now) retry++`` starting from the envelope's stored
    (already incremented) ``retry`` (``scheduler_ram_update()`` / ``scheduler_next()``).
    ``mta_base``/``mda_base`` override the bases (for experiments); the 5.4.2 halving is kept.
    """

    __slots__ = ("era", "mta_base", "mda_base", "half")

    def __init__(self, era: str = "6.8", *, mta_base: int | None = None,
                 mda_base: int | None = None) -> None:
        self.era = era_key(era)
        if self.era == "5.4.2":
            self.half = True
            self.mta_base = COMPUTE_SCHEDULE_MTA if mta_base is None else mta_base
            self.mda_base = COMPUTE_SCHEDULE_OTHER if mda_base is None else mda_base
        else:
            self.half = False
            self.mta_base = BACKOFF_TRANSFER if mta_base is None else mta_base
            self.mda_base = BACKOFF_DELIVERY if mda_base is None else mda_base

    def __repr__(self) -> str:
        return f"RetryPolicy({self.era!r})"

    def base(self, type: str) -> int:
        return self.mta_base if type == D_MTA else self.mda_base

    def offset(self, type: str, retry: int) -> float:
        """Delay after ``creation`` of try number ``retry`` (0 = the first attempt)."""
        b = self.mta_base if type == D_MTA else self.mda_base
        return (b * retry * retry) // 2 if self.half else b * retry * retry

    def schedule(self, type: str, creation: float, retry: int) -> float:
        """``scheduler_compute_schedule()`` (5.4.2) / ``scheduler_backoff()`` (5.7.3+):
        the ``sched`` given to an envelope on insert (no "future" loop there)."""
        return creation + self.offset(type, retry)

    def next(self, type: str, creation: float, retry: int, now: float) -> float:
        """``scheduler_ram_update()``'s loop (5.4.2) / ``scheduler_next()`` (5.7.3+): the
        first point ``creation + f(k)``, ``k >= retry``, strictly after ``now``."""
        return _next_point(creation, self.base(type), self.half, retry, now)

    def update_schedule(self, type: str, creation: float, now: float, *,
                        overflow: bool = False) -> float:
        """``scheduler_ram_batch()`` SCHED_UPDATE: new ``sched`` from step 0."""
        if self.half:  # 5.4.2: ctime + 800 * retry * retry / 2, type ignored
            return _next_point(creation, COMPUTE_SCHEDULE_MTA, True, 0, now)
        if overflow:
            base = BACKOFF_OVERFLOW
        else:
            base = self.base(type)
        return _next_point(creation, base, False, 0, now)

    def series(self, type: str, n: int) -> list[float]:
        """Offsets from creation of the first ``n`` retries (retry 1..n)."""
        return [self.offset(type, k) for k in range(1, n + 1)]


def _next_point(creation: float, base: int, half: bool, k0: int, now: float) -> float:
    """Smallest ``creation + f(k)`` with ``k >= k0`` and ``> now`` where
    ``f(k) = base·k²`` (or ``base·k²//2``); closed form, same result as C's loop."""
    if base <= 0:
        # degenerate policy: the C loop would never end; retry right away instead
        return creation if creation > now else now + 1
    d = now - creation
    k = k0
    if d >= 0:
        est = math.isqrt(int(d * 2 // base if half else d // base)) if d > 0 else 0
        if est > k:
            k = est
    off = (base * k * k) // 2 if half else base * k * k
    while creation + off <= now:
        k += 1
        off = (base * k * k) // 2 if half else base * k * k
    while k > k0:
        k1 = k - 1
        off1 = (base * k1 * k1) // 2 if half else base * k1 * k1
        if creation + off1 > now:
            k, off = k1, off1
        else:
            break
    return creation + off


# ---- value objects --------------------------------------------------------------------------

@dataclass(slots=True)
class Tick:
    """One ``scheduler.c:scheduler_timeout()``: the batches to send and the evtimer to
    arm next — 0.0 (again at once), a delay in seconds, or ``None`` (sleep until an imsg
    calls ``scheduler_reset_events()``)."""

    batches: list[Batch]
    next_timer: float | None


@dataclass(slots=True)
class BounceWarning:
    """``struct bounce_req_msg`` the scheduler sends (5.4.2 IMSG_QUEUE_BOUNCE, 5.7.3+
    IMSG_SCHED_ENVELOPE_BOUNCE): bounce type B_WARNING (B_DELAYED at 6.8).  The queue then
    sets ``lastbounce = timestamp`` in the stored envelope, which is what makes the
    warning a once-only event."""

    evpid: int
    timestamp: float
    delay: float
    expire: float


class RqEnvelope:
    """``struct rq_envelope``."""

    __slots__ = ("evpid", "msgid", "type", "state", "flags", "ctime", "sched", "expire",
                 "holdq", "t_inflight", "t_scheduled", "where", "token")

    def __init__(self, evpid: int, type: str, ctime: float, sched: float, expire: float) -> None:
        self.evpid = evpid
        self.msgid = evpid >> 32
        self.type = type
        self.state = RQ_EVPSTATE_PENDING
        self.flags = 0
        self.ctime = ctime
        self.sched = sched
        self.expire = expire
        self.holdq = 0
        self.t_inflight = 0.0
        self.t_scheduled = 0.0
        self.where: object = None  # the container the envelope is on (None = off-list)
        self.token = 0

    def __repr__(self) -> str:
        return (f"<rq_envelope {self.evpid:016x} {self.type} {RQ_STATE_NAMES[self.state]}"
                f" flags={self.flags:#x} sched={self.sched} expire={self.expire}>")


class _List:
    """A TAILQ of rq_envelopes: deque of (token, evp) with lazy deletion."""

    __slots__ = ("name", "dq", "n")

    def __init__(self, name: str) -> None:
        self.name = name
        self.dq: deque[tuple[int, RqEnvelope]] = deque()
        self.n = 0

    def __repr__(self) -> str:
        return f"<{self.name} n={self.n}>"

    def push(self, evp: RqEnvelope) -> None:  # TAILQ_INSERT_TAIL
        evp.token += 1
        evp.where = self
        self.dq.append((evp.token, evp))
        self.n += 1

    def push_head(self, evp: RqEnvelope) -> None:  # TAILQ_INSERT_HEAD
        evp.token += 1
        evp.where = self
        self.dq.appendleft((evp.token, evp))
        self.n += 1

    def unlink(self, evp: RqEnvelope) -> None:  # TAILQ_REMOVE
        evp.where = None
        evp.token += 1
        self.n -= 1
        dq = self.dq
        if len(dq) > 2 * self.n + 64:
            # unlinked entries are dropped lazily at the head; a list whose head rarely
            # moves (inflight) would keep every envelope that ever passed: compact it, in
            # order, so memory follows what is queued (amortised O(1) per unlink)
            self.dq = deque(e for e in dq if e[1].where is self and e[1].token == e[0])

    def first(self) -> RqEnvelope | None:  # TAILQ_FIRST
        dq = self.dq
        while dq:
            tok, evp = dq[0]
            if evp.where is self and evp.token == tok:
                return evp
            dq.popleft()
        return None

    def pop(self) -> RqEnvelope | None:
        evp = self.first()
        if evp is not None:
            self.dq.popleft()
            evp.where = None
            evp.token += 1
            self.n -= 1
        return evp

    def __iter__(self) -> Iterator[RqEnvelope]:
        for tok, evp in list(self.dq):
            if evp.where is self and evp.token == tok:
                yield evp


class _Pending:
    """``q_pending`` + ``q_priotree``: sorted by ``rq_envelope_cmp()``."""

    __slots__ = ("heap", "n")
    name = "q_pending"

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, int, RqEnvelope]] = []
        self.n = 0

    def push(self, evp: RqEnvelope) -> None:  # sorted_insert()
        evp.token += 1
        evp.where = self
        s, e = evp.sched, evp.expire
        heapq.heappush(self.heap, (s if s < e else e, evp.evpid, evp.token, evp))
        self.n += 1

    def unlink(self, evp: RqEnvelope) -> None:
        evp.where = None
        evp.token += 1
        self.n -= 1

    def first(self) -> RqEnvelope | None:
        h = self.heap
        while h:
            _, _, tok, evp = h[0]
            if evp.where is self and evp.token == tok:
                return evp
            heapq.heappop(h)
        return None

    def __iter__(self) -> Iterator[RqEnvelope]:
        for _, _, tok, evp in sorted(self.heap, key=lambda x: (x[0], x[1])):
            if evp.where is self and evp.token == tok:
                yield evp


class _Update:
    """A per-msgid ``struct rq_queue`` holding one uncommitted message."""

    __slots__ = ("msgid", "envelopes", "pending")

    def __init__(self, msgid: int) -> None:
        self.msgid = msgid
        self.envelopes: dict[int, RqEnvelope] = {}
        self.pending = _List(f"update[{msgid:08x}]")


# ---- the backend ----------------------------------------------------------------------------

class RamQueue:
    """``scheduler_ramqueue.c`` (``struct scheduler_backend scheduler_backend_ramqueue``).

    Methods mirror ``scheduler_ram_*()``; ids follow the C convention: a value above
    ``0xffffffff`` is an evpid, otherwise a msgid.  Misuse that makes the C daemon
    ``errx()``/``fatalx()`` (e.g. deleting an envelope that is not in flight) raises
    :class:`RuntimeError`."""

    __slots__ = ("policy", "era", "max_inflight", "max_schedule", "bounce_warn",
                 "integer_time", "updates", "messages", "q_pending", "q_inflight", "q_mta",
                 "q_mda", "q_bounce", "q_update", "q_expired", "q_removed", "holdqs",
                 "evpcount", "n_incoming", "n_hold", "_split_batches", "_schedulemax",
                 "_holdq_max")

    def __init__(self, policy: RetryPolicy | str | None = None, *,
                 max_inflight: int = SC_SCHEDULER_MAX_INFLIGHT,
                 max_schedule: int = SC_SCHEDULER_MAX_SCHEDULE,
                 bounce_warn: Iterable[float] = DEFAULT_BOUNCE_WARN,
                 integer_time: bool = True) -> None:
        if policy is None:
            policy = RetryPolicy()
        elif isinstance(policy, str):
            policy = RetryPolicy(policy)
        self.policy = policy
        self.era = policy.era
        self.max_inflight = max_inflight
        self.max_schedule = max_schedule
        self.bounce_warn = tuple(bounce_warn)
        self.integer_time = integer_time
        self.updates: dict[int, _Update] = {}  # tree updates
        self.messages: dict[int, dict[int, RqEnvelope]] = {}  # ramqueue.messages
        self.q_pending = _Pending()
        self.q_inflight = _List("q_inflight")
        self.q_mta = _List("q_mta")
        self.q_mda = _List("q_mda")
        self.q_bounce = _List("q_bounce")
        self.q_update = _List("q_update")
        self.q_expired = _List("q_expired")
        self.q_removed = _List("q_removed")
        self.holdqs: dict[str, dict[int, _List]] = {D_MDA: {}, D_MTA: {}, D_BOUNCE: {}}
        self.evpcount = 0  # committed envelopes (ramqueue.evpcount)
        self.n_incoming = 0  # envelopes in update queues
        self.n_hold = 0  # stat scheduler.ramqueue.hold
        old = self.era == "5.4.2"
        self._split_batches = old  # 5.4.2: one type per batch
        self._schedulemax = 0 if old else SCHEDULEMAX
        self._holdq_max = 0 if old else HOLDQ_MAXSIZE

    # ---- helpers ------------------------------------------------------------------------

    def _t(self, t: float) -> float:
        return float(math.floor(t)) if self.integer_time else t

    def _get(self, evpid: int) -> RqEnvelope | None:
        msg = self.messages.get(evpid >> 32)
        return msg.get(evpid) if msg is not None else None

    def _xget(self, evpid: int) -> RqEnvelope:
        evp = self._get(evpid)
        if evp is None:
            raise RuntimeError(f"evp:{evpid:016x} not in the ramqueue")
        return evp

    def _type_list(self, evp: RqEnvelope) -> _List:
        t = evp.type
        return self.q_mta if t == D_MTA else self.q_mda if t == D_MDA else self.q_bounce

    def _scheduled_list(self, evp: RqEnvelope) -> _List:
        """``rq_envelope_list()`` for a SCHEDULED envelope."""
        f = evp.flags
        if f & RQ_ENVELOPE_EXPIRED:
            return self.q_expired
        if f & RQ_ENVELOPE_REMOVED:
            return self.q_removed
        if f & RQ_ENVELOPE_UPDATE:
            return self.q_update
        return self._type_list(evp)

    def _holdq_unlink(self, evp: RqEnvelope) -> None:
        hq = evp.where
        assert isinstance(hq, _List)
        hq.unlink(evp)
        if hq.n == 0:
            del self.holdqs[evp.type][evp.holdq]
        evp.holdq = 0
        self.n_hold -= 1

    def _delete(self, evp: RqEnvelope) -> None:
        """``rq_envelope_delete()``."""
        msg = self.messages[evp.msgid]
        del msg[evp.evpid]
        if not msg:
            del self.messages[evp.msgid]
        self.evpcount -= 1

    # ---- insert / commit / rollback ----------------------------------------------------

    def insert(self, info: SchedulerInfo, now: float | None = None) -> float:
        """``scheduler_ram_insert()`` (IMSG_QUEUE_SUBMIT_ENVELOPE / _ENVELOPE_SUBMIT): a new
        PENDING envelope in the msgid's update queue, ``sched = f(creation, retry)``.
        Returns (and stores in ``info.nexttry``) the envelope's ``sched``."""
        evpid = info.evpid
        msgid = evpid >> 32
        if evpid <= 0xFFFFFFFF:
            raise ValueError(f"{evpid:#x} is not an evpid")
        if info.type not in _TYPES:
            raise ValueError(f"bad envelope type {info.type!r}")
        upd = self.updates.get(msgid)
        if upd is None:
            upd = self.updates[msgid] = _Update(msgid)
        if evpid in upd.envelopes or self._get(evpid) is not None:
            raise RuntimeError(f"evp:{evpid:016x} inserted twice")
        ctime = self._t(info.creation)
        sched = self.policy.schedule(info.type, ctime, info.retry)
        evp = RqEnvelope(evpid, info.type, ctime, sched, ctime + info.expire)
        upd.envelopes[evpid] = evp
        upd.pending.push(evp)
        self.n_incoming += 1
        info.nexttry = sched
        return sched

    def commit(self, msgid: int, now: float) -> int:
        """``scheduler_ram_commit()`` (IMSG_QUEUE_COMMIT_MESSAGE): merge the update queue
        into the ramqueue (``rq_queue_merge()``: sorted insert into ``q_pending``), then
        ``rq_queue_schedule()``.  Returns the number of envelopes committed.  C does
        ``tree_xpop()`` (fatal) when there is nothing to commit; so does this (KeyError)."""
        upd = self.updates.pop(msgid)
        n = len(upd.envelopes)
        msg = self.messages.get(msgid)
        if msg is None:
            msg = self.messages[msgid] = {}
        msg.update(upd.envelopes)
        push = self.q_pending.push
        while True:
            evp = upd.pending.pop()
            if evp is None:
                break
            push(evp)
        self.evpcount += n
        self.n_incoming -= n
        self._queue_schedule(self._t(now))
        return n

    def rollback(self, msgid: int, now: float | None = None) -> int:
        """``scheduler_ram_rollback()`` (IMSG_QUEUE_REMOVE_MESSAGE / _MESSAGE_ROLLBACK):
        discard the uncommitted envelopes of ``msgid``; returns how many."""
        upd = self.updates.pop(msgid, None)
        if upd is None:
            return 0
        n = len(upd.envelopes)
        for evp in upd.envelopes.values():
            evp.where = None
            evp.token += 1
        self.n_incoming -= n
        return n

    # ---- results from the agents ------------------------------------------------------

    def _inflight(self, evpid: int) -> RqEnvelope:
        evp = self._xget(evpid)
        if evp.state != RQ_EVPSTATE_INFLIGHT:
            raise RuntimeError(f"evp:{evpid:016x} not in-flight")
        self.q_inflight.unlink(evp)
        return evp

    def update(self, info: SchedulerInfo, now: float) -> float:
        """``scheduler_ram_update()`` (IMSG_*_DELIVERY_TEMPFAIL): the in-flight envelope
        goes back to PENDING with ``sched`` = the next point of the era's series after
        ``now`` (starting from ``info.retry``, which the queue already incremented); a
        suspended one stays off-list.  If it was removed while in flight it goes to
        ``q_removed`` instead and ``nexttry`` stays 0, as in C.  Returns ``info.nexttry``."""
        evp = self._inflight(info.evpid)
        currtime = self._t(now)
        if evp.flags & RQ_ENVELOPE_REMOVED:
            self.q_removed.push(evp)
            evp.state = RQ_EVPSTATE_SCHEDULED
            evp.t_scheduled = currtime
            info.nexttry = 0.0
            return 0.0
        # 5.4.2 loops on scheduler_compute_schedule(si) (si->creation), 5.7.3+ calls
        # scheduler_next(evp->ctime, ...); both are the envelope's creation time.
        evp.sched = self.policy.next(info.type, evp.ctime, info.retry, currtime)
        evp.state = RQ_EVPSTATE_PENDING
        if not evp.flags & RQ_ENVELOPE_SUSPEND:
            self.q_pending.push(evp)
        info.nexttry = evp.sched
        return evp.sched

    def bounce_warning(self, info: SchedulerInfo) -> BounceWarning | None:
        """The ``sc_bounce_warn[]`` loop of ``scheduler.c:scheduler_imsg()``
        IMSG_*_DELIVERY_TEMPFAIL, run after :meth:`update`: the first threshold ``w`` with
        ``nexttry >= creation + w`` and ``lastbounce < creation + w`` yields a warning
        bounce request (default thresholds: 4 h only).  Checked on tempfail only."""
        creation = self._t(info.creation)
        for w in self.bounce_warn:
            if w == 0:
                break
            ts = creation + w
            if info.nexttry >= ts and info.lastbounce < ts:
                return BounceWarning(info.evpid, ts, w, info.expire)
        return None

    def tempfail(self, info: SchedulerInfo, now: float) -> BounceWarning | None:
        """IMSG_*_DELIVERY_TEMPFAIL as the scheduler handles it: :meth:`update` then
        :meth:`bounce_warning`.  ``info.nexttry`` holds the next try afterwards."""
        self.update(info, now)
        return self.bounce_warning(info)

    def delete(self, evpid: int) -> None:
        """``scheduler_ram_delete()`` (IMSG_*_DELIVERY_OK / _PERMFAIL / _LOOP, or queue's
        IMSG_QUEUE_REMOVE with inflight=1): the envelope must be in flight."""
        self._delete(self._inflight(evpid))

    def hold(self, evpid: int, holdq: int, now: float | None = None) -> int:
        """``scheduler_ram_hold()`` (IMSG_*_DELIVERY_HOLD): INFLIGHT -> HELD at the head of
        holdq ``(type, holdq)``.  A suspended envelope just becomes PENDING (off-list),
        returns 0.  5.7.3+: a holdq already holding HOLDQ_MAXSIZE (1000) envelopes makes
        the envelope PENDING with UPDATE|OVERFLOW instead ("tempfail"), returns 0.  One
        removed while in flight goes to ``q_removed`` (returns 0; see the comment)."""
        evp = self._inflight(evpid)
        if evp.flags & RQ_ENVELOPE_REMOVED:
            # Divergence: C ignores the REMOVED flag here, so an envelope removed while
            # in flight and then held is later delivered anyway, and sits on a dispatch
            # list while rq_envelope_list() says q_removed.  We honour the removal the
            # way scheduler_ram_update() does.
            self.q_removed.push(evp)
            evp.state = RQ_EVPSTATE_SCHEDULED
            evp.t_scheduled = self._t(now) if now is not None else 0.0
            return 0
        if evp.flags & RQ_ENVELOPE_SUSPEND:
            evp.state = RQ_EVPSTATE_PENDING
            return 0
        hqs = self.holdqs[evp.type]
        hq = hqs.get(holdq)
        if self._holdq_max and hq is not None and hq.n >= self._holdq_max:
            evp.state = RQ_EVPSTATE_PENDING
            evp.flags |= RQ_ENVELOPE_UPDATE | RQ_ENVELOPE_OVERFLOW
            self.q_pending.push(evp)
            return 0
        if hq is None:
            hq = hqs[holdq] = _List(f"holdq[{evp.type}][{holdq:x}]")
        evp.state = RQ_EVPSTATE_HELD
        evp.holdq = holdq
        # "upon release, the envelopes will be inserted in the pending queue from the
        # first element to the last"
        hq.push_head(evp)
        self.n_hold += 1
        return 1

    def release(self, type: str, holdq: int, n: int, now: float | None = None) -> int:
        """``scheduler_ram_release()`` (IMSG_*_DELIVERY_RELEASE): up to ``n`` held
        envelopes (all if ``n`` is 0 or -1) back to PENDING; ``n == -1`` also flags them
        UPDATE (they get a fresh ``sched`` through a SCHED_UPDATE batch).  Returns how many."""
        hqs = self.holdqs[type]
        hq = hqs.get(holdq)
        if hq is None:
            return 0
        update = n == -1
        if update:
            n = 0
        i = 0
        while n == 0 or i < n:
            evp = hq.pop()
            if evp is None:
                break
            evp.holdq = 0
            evp.state = RQ_EVPSTATE_PENDING
            if update:
                evp.flags |= RQ_ENVELOPE_UPDATE
            self.q_pending.push(evp)
            i += 1
        if hq.n == 0:
            del hqs[holdq]
        self.n_hold -= i
        return i

    # ---- scheduling ---------------------------------------------------------------------

    def _envelope_schedule(self, evp: RqEnvelope, currtime: float) -> None:
        """``rq_envelope_schedule()``: onto ``q_update`` (UPDATE flag) or the type's list."""
        q = self.q_update if evp.flags & RQ_ENVELOPE_UPDATE else self._type_list(evp)
        if evp.state == RQ_EVPSTATE_HELD:
            self._holdq_unlink(evp)
        elif evp.where is not None:
            evp.where.unlink(evp)  # type: ignore[attr-defined]
        q.push(evp)
        evp.state = RQ_EVPSTATE_SCHEDULED
        evp.t_scheduled = currtime

    def _queue_schedule(self, currtime: float) -> None:
        """``rq_queue_schedule()``: move every due PENDING envelope off ``q_pending`` —
        expired ones (``expire <= now``) to ``q_expired`` (SCHEDULED|EXPIRED), the others
        to their dispatch list.  5.7.3+ moves at most SCHEDULEMAX (1024) per call."""
        qp = self.q_pending
        limit = self._schedulemax
        n = 0
        while True:
            evp = qp.first()
            if evp is None or (evp.sched > currtime and evp.expire > currtime):
                break
            if limit and n == limit:
                break
            if evp.expire <= currtime:
                qp.unlink(evp)
                self.q_expired.push(evp)
                evp.state = RQ_EVPSTATE_SCHEDULED
                evp.flags |= RQ_ENVELOPE_EXPIRED
                evp.t_scheduled = currtime
                continue
            self._envelope_schedule(evp, currtime)
            n += 1

    def _pending_delay(self, currtime: float) -> float | None:
        evp = self.q_pending.first()
        if evp is None:
            return None
        t = evp.sched if evp.sched < evp.expire else evp.expire
        d = t - currtime
        return d if d > 0 else 0.0

    def _take(self, q: _List, bit: int, currtime: float) -> RqEnvelope | None:
        """One envelope of a batch (the body of ``scheduler_ram_batch()``'s loop)."""
        evp = q.pop()
        if evp is None:
            return None
        if evp.state != RQ_EVPSTATE_SCHEDULED:
            raise RuntimeError(f"evp:{evp.evpid:016x} not scheduled")
        if bit == SCHED_REMOVE or bit == SCHED_EXPIRE:
            self._delete(evp)
        elif bit == SCHED_UPDATE:
            overflow = bool(evp.flags & RQ_ENVELOPE_OVERFLOW)
            evp.sched = self.policy.update_schedule(evp.type, evp.ctime, currtime,
                                                    overflow=overflow)
            evp.flags &= ~(RQ_ENVELOPE_UPDATE | RQ_ENVELOPE_OVERFLOW)
            evp.state = RQ_EVPSTATE_PENDING
            if not evp.flags & RQ_ENVELOPE_SUSPEND:
                self.q_pending.push(evp)
        else:
            self.q_inflight.push(evp)
            evp.state = RQ_EVPSTATE_INFLIGHT
            evp.t_inflight = currtime
        return evp

    def _queues(self) -> tuple[tuple[int, str, _List], ...]:
        return ((SCHED_REMOVE, REMOVE, self.q_removed), (SCHED_EXPIRE, EXPIRE, self.q_expired),
                (SCHED_UPDATE, UPDATE, self.q_update), (SCHED_BOUNCE, BOUNCE, self.q_bounce),
                (SCHED_MDA, MDA, self.q_mda), (SCHED_MTA, MTA, self.q_mta))

    def batch(self, typemask: int | str | Iterable[str] | None, now: float,
              count: int | None = None) -> Batch:
        """``scheduler_ram_batch()``: ``rq_queue_schedule()`` then up to ``count``
        (default ``max_schedule`` = 10) envelopes, priority REMOVE > EXPIRE > UPDATE >
        BOUNCE > MDA > MTA restricted to ``typemask`` (SCHED_* bits or names).

        5.4.2: all of one type — the first non-empty list in priority order.
        5.7.3+: round-robin, one of each non-empty list per round, until ``count``.

        REMOVE/EXPIRE envelopes leave the ramqueue; UPDATE ones get a new ``sched`` and
        stay (PENDING); BOUNCE/MDA/MTA ones go INFLIGHT."""
        currtime = self._t(now)
        mask = sched_mask(typemask)
        if count is None:
            count = self.max_schedule
        self._queue_schedule(currtime)
        evpids: list[int] = []
        types: list[str] = []
        if count > 0:
            if self._split_batches:
                for bit, name, q in self._queues():
                    if mask & bit and q.n:
                        while len(evpids) < count:
                            evp = self._take(q, bit, currtime)
                            if evp is None:
                                break
                            evpids.append(evp.evpid)
                            types.append(name)
                        break
            else:
                queues = [(bit, name, q) for bit, name, q in self._queues() if mask & bit]
                full = False
                while not full:
                    seen = len(evpids)
                    for bit, name, q in queues:
                        if q.n:
                            evp = self._take(q, bit, currtime)
                            if evp is None:
                                continue
                            evpids.append(evp.evpid)
                            types.append(name)
                            if len(evpids) == count:
                                full = True
                                break
                    if len(evpids) == seen:
                        break
        if evpids:
            t0 = types[0]
            typ = t0
            for t in types:
                if t is not t0:
                    typ = "mixed"
                    break
            return Batch(typ, evpids, types, 0.0)
        return Batch(None, evpids, types, self._pending_delay(currtime))

    def _nonempty_mask(self) -> int:
        m = 0
        for bit, _, q in self._queues():
            if q.n:
                m |= bit
        return m

    def timeout(self, now: float, *, ninflight: int | None = None, mda_paused: bool = False,
                mta_paused: bool = False) -> Tick:
        """``scheduler.c:scheduler_timeout()`` — which batches one evtimer firing
        produces and when the timer fires next.

        5.4.2: typemask REMOVE|EXPIRE|UPDATE|BOUNCE, plus MDA / MTA while ``ninflight <
        max_inflight`` and not paused; loops ``backend->batch()`` dropping each served type
        and the types that became empty (at most one batch per type), then re-arms at 0 s
        if anything is left, else after SCHED_DELAY, else sleeps.
        5.7.3+: mask UPDATE, plus EXPIRE|REMOVE|BOUNCE|MDA|MTA while ``ninflight <
        max_inflight`` (MDA/MTA unless paused); one mixed batch; re-arm 0 s if it was not
        empty, else the backend's delay, else sleep.

        ``ninflight`` is the scheduler's counter (at 5.7.3+ it also counts REMOVE/EXPIRE
        envelopes until the queue's IMSG_QUEUE_ENVELOPE_ACK); default: envelopes in flight
        in this ramqueue."""
        if ninflight is None:
            ninflight = self.q_inflight.n
        room = ninflight < self.max_inflight
        batches: list[Batch] = []
        if self._split_batches:
            typemask = SCHED_REMOVE | SCHED_EXPIRE | SCHED_UPDATE | SCHED_BOUNCE
            if room and not mda_paused:
                typemask |= SCHED_MDA
            if room and not mta_paused:
                typemask |= SCHED_MTA
            left = typemask
            while True:
                b = self.batch(left, now)
                after = self._nonempty_mask()
                if b.evpids:
                    batches.append(b)
                    left &= after
                    left &= ~SCHED_BITS[b.type]  # type: ignore[index]
                else:
                    left &= after
                if not left:
                    break
            pending = self.q_pending.n > 0
            if after & typemask or (pending and b.evpids):
                return Tick(batches, 0.0)
            if b.type is None and b.delay is not None:
                return Tick(batches, b.delay)
            return Tick(batches, None)
        mask = SCHED_UPDATE
        if room:
            mask |= SCHED_EXPIRE | SCHED_REMOVE | SCHED_BOUNCE
            if not mda_paused:
                mask |= SCHED_MDA
            if not mta_paused:
                mask |= SCHED_MTA
        b = self.batch(mask, now)
        if b.evpids:
            return Tick([b], 0.0)
        return Tick([], b.delay)

    # ---- control (smtpctl) ------------------------------------------------------------

    def _targets(self, id: int | str | None) -> list[RqEnvelope]:
        if id is None or id == "all":
            return [e for msg in list(self.messages.values()) for e in list(msg.values())]
        if isinstance(id, str):
            raise ValueError(f"bad id {id!r}")
        if id > 0xFFFFFFFF:
            evp = self._get(id)
            return [evp] if evp is not None else []
        msg = self.messages.get(id)
        return list(msg.values()) if msg is not None else []

    def schedule(self, id: int | str | None, now: float | None = None) -> int:
        """``scheduler_ram_schedule()`` (IMSG_CTL_SCHEDULE, IMSG_MTA_SCHEDULE /
        IMSG_QUEUE_ENVELOPE_SCHEDULE): every envelope of the evpid / msgid that is not in
        flight becomes SCHEDULED at once.  ``"all"``/``None`` = every message (what
        ``smtpctl schedule all`` achieves with one IMSG_CTL_SCHEDULE per msgid).

        Divergence: C's ``rq_envelope_schedule()`` unlinks the envelope from ``q_pending``
        even when it is already SCHEDULED on another list (list corruption when it is that
        list's tail); here an already SCHEDULED envelope is left where it is (still
        counted, as C returns it)."""
        currtime = self._t(now) if now is not None else 0.0
        r = 0
        for evp in self._targets(id):
            if evp.state == RQ_EVPSTATE_INFLIGHT:
                continue
            if evp.state != RQ_EVPSTATE_SCHEDULED:
                self._envelope_schedule(evp, currtime)
            r += 1
        return r

    def remove(self, id: int | str | None, now: float | None = None) -> int:
        """``scheduler_ram_remove()`` / ``rq_envelope_remove()`` (IMSG_CTL_REMOVE, queue's
        IMSG_QUEUE_REMOVE with inflight=0): to ``q_removed`` (SCHEDULED|REMOVED); in flight:
        flag REMOVED only (removed when the result comes back); already removed/expired:
        not counted."""
        currtime = self._t(now) if now is not None else 0.0
        r = 0
        for evp in self._targets(id):
            if evp.flags & (RQ_ENVELOPE_REMOVED | RQ_ENVELOPE_EXPIRED):
                continue
            if evp.state == RQ_EVPSTATE_INFLIGHT:
                evp.flags |= RQ_ENVELOPE_REMOVED
                r += 1
                continue
            if evp.state == RQ_EVPSTATE_HELD:
                self._holdq_unlink(evp)
            elif evp.where is not None:
                evp.where.unlink(evp)  # type: ignore[attr-defined]
            self.q_removed.push(evp)
            evp.state = RQ_EVPSTATE_SCHEDULED
            evp.flags |= RQ_ENVELOPE_REMOVED
            evp.t_scheduled = currtime
            r += 1
        return r

    def suspend(self, id: int | str | None) -> int:
        """``scheduler_ram_suspend()`` / ``rq_envelope_suspend()`` (IMSG_CTL_PAUSE_EVP):
        flag SUSPEND and take the envelope off its list (a held one becomes PENDING; one
        in flight stays on ``q_inflight``)."""
        r = 0
        for evp in self._targets(id):
            if evp.flags & RQ_ENVELOPE_SUSPEND:
                continue
            if evp.state == RQ_EVPSTATE_HELD:
                self._holdq_unlink(evp)
                evp.state = RQ_EVPSTATE_PENDING
            elif evp.state != RQ_EVPSTATE_INFLIGHT and evp.where is not None:
                evp.where.unlink(evp)  # type: ignore[attr-defined]
            evp.flags |= RQ_ENVELOPE_SUSPEND
            r += 1
        return r

    def resume(self, id: int | str | None) -> int:
        """``scheduler_ram_resume()`` / ``rq_envelope_resume()`` (IMSG_CTL_RESUME_EVP):
        clear SUSPEND and put the envelope back on the list its state says."""
        r = 0
        for evp in self._targets(id):
            if not evp.flags & RQ_ENVELOPE_SUSPEND:
                continue
            if evp.state != RQ_EVPSTATE_INFLIGHT and evp.where is None:
                if evp.state == RQ_EVPSTATE_PENDING:
                    self.q_pending.push(evp)
                else:
                    self._scheduled_list(evp).push(evp)
            evp.flags &= ~RQ_ENVELOPE_SUSPEND
            r += 1
        return r

    def query(self, id: int) -> bool:
        """``scheduler_ram_query()`` (5.7.3+, IMSG_QUEUE_DISCOVER_*): is the message known?"""
        return (id >> 32 if id > 0xFFFFFFFF else id) in self.messages

    def list_messages(self, start: int = 0, size: int = 1024) -> list[int]:
        """``scheduler_ram_messages()`` (IMSG_CTL_LIST_MESSAGES): msgids from ``start``."""
        return sorted(m for m in self.messages if m >= start)[:size]

    def list_envelopes(self, start: int, size: int = 256) -> list[tuple[int, int, float]]:
        """``scheduler_ram_envelopes()`` (IMSG_CTL_LIST_ENVELOPES): ``(evpid, EF_* flags,
        time)`` for the envelopes of ``start``'s message from ``start`` on, skipping
        removed and expired ones."""
        msg = self.messages.get(start >> 32 if start > 0xFFFFFFFF else start)
        out: list[tuple[int, int, float]] = []
        if msg is None:
            return out
        for evpid in sorted(msg):
            if evpid < start:
                continue
            evp = msg[evpid]
            if evp.flags & (RQ_ENVELOPE_REMOVED | RQ_ENVELOPE_EXPIRED):
                continue
            s = evp.state
            if s == RQ_EVPSTATE_PENDING:
                flags, t = EF_PENDING, evp.sched
            elif s == RQ_EVPSTATE_SCHEDULED:
                flags, t = EF_PENDING, evp.t_scheduled
            elif s == RQ_EVPSTATE_INFLIGHT:
                flags, t = EF_INFLIGHT, evp.t_inflight
            else:
                flags, t = EF_PENDING | EF_HOLD, evp.t_scheduled
            if evp.flags & RQ_ENVELOPE_SUSPEND:
                flags |= EF_SUSPEND
            out.append((evpid, flags, t))
            if len(out) == size:
                break
        return out

    # ---- introspection ----------------------------------------------------------------

    @property
    def ninflight(self) -> int:
        """Envelopes on ``q_inflight``."""
        return self.q_inflight.n

    def __len__(self) -> int:
        """Envelopes known to the scheduler (committed + incoming)."""
        return self.evpcount + self.n_incoming

    def __contains__(self, evpid: int) -> bool:
        if self._get(evpid) is not None:
            return True
        upd = self.updates.get(evpid >> 32)
        return upd is not None and evpid in upd.envelopes

    def state_of(self, evpid: int) -> str | None:
        """``"incoming"``, ``"pending"``, ``"scheduled"``, ``"inflight"``, ``"held"`` or
        ``None`` (unknown / gone)."""
        evp = self._get(evpid)
        if evp is not None:
            return RQ_STATE_NAMES[evp.state]
        upd = self.updates.get(evpid >> 32)
        if upd is not None and evpid in upd.envelopes:
            return "incoming"
        return None

    def envelope(self, evpid: int) -> RqEnvelope | None:
        return self._get(evpid)

    def envelopes(self) -> Iterator[RqEnvelope]:
        """Committed envelopes (msgid order is not meaningful)."""
        for msg in self.messages.values():
            yield from msg.values()

    def counts(self) -> dict[str, int]:
        """Sizes of every list plus state totals."""
        c = {
            "incoming": self.n_incoming,
            "pending": self.q_pending.n,
            "mta": self.q_mta.n,
            "mda": self.q_mda.n,
            "bounce": self.q_bounce.n,
            "update": self.q_update.n,
            "expired": self.q_expired.n,
            "removed": self.q_removed.n,
            "inflight": self.q_inflight.n,
            "held": self.n_hold,
            "envelopes": self.evpcount,
            "messages": len(self.messages),
        }
        c["suspended_offlist"] = self.evpcount - sum(
            c[k] for k in ("pending", "mta", "mda", "bounce", "update", "expired", "removed",
                           "inflight", "held"))
        return c

    def stats(self) -> dict[str, int]:
        """The ``scheduler.ramqueue.*`` gauges of the C code (``stat_increment()`` calls
        in this file): updates, messages (incl. the one per update), envelopes, hold."""
        return {
            "scheduler.ramqueue.update": len(self.updates),
            "scheduler.ramqueue.message": len(self.messages) + len(self.updates),
            "scheduler.ramqueue.envelope": self.evpcount + self.n_incoming,
            "scheduler.ramqueue.hold": self.n_hold,
            "scheduler.ramqueue.holdq": sum(len(h) for h in self.holdqs.values()),
        }

    def next_wakeup(self, now: float) -> float | None:
        """Absolute time at which something becomes due: ``now`` when a dispatch list is
        not empty, else ``now + delay`` of the head of ``q_pending``, else ``None``."""
        if self._nonempty_mask():
            return now
        d = self._pending_delay(self._t(now))
        return None if d is None else now + d

    def check_invariants(self) -> None:
        """Every committed envelope is on exactly the container its state and flags
        require (or off-list when suspended), counters agree, ``q_pending`` is in
        ``rq_envelope_cmp()`` order.  Raises AssertionError.  For tests."""
        lists = {id(q): q for q in (self.q_pending, self.q_inflight, self.q_mta, self.q_mda,
                                     self.q_bounce, self.q_update, self.q_expired,
                                     self.q_removed)}
        for hqs in self.holdqs.values():
            for hq in hqs.values():
                lists[id(hq)] = hq
        live: dict[int, int] = {k: 0 for k in lists}
        total = 0
        for msgid, msg in self.messages.items():
            assert msg, f"empty message {msgid:08x}"
            for evpid, evp in msg.items():
                total += 1
                assert evp.evpid == evpid and evp.msgid == msgid
                w = evp.where
                s, f = evp.state, evp.flags
                if w is not None:
                    assert id(w) in lists, f"{evp!r} on an unknown list"
                    live[id(w)] += 1
                if s == RQ_EVPSTATE_INFLIGHT:
                    assert w is self.q_inflight, evp
                elif s == RQ_EVPSTATE_HELD:
                    assert w is self.holdqs[evp.type].get(evp.holdq), evp
                    assert not f & RQ_ENVELOPE_SUSPEND, evp
                elif f & RQ_ENVELOPE_SUSPEND:
                    assert w is None or (s == RQ_EVPSTATE_SCHEDULED
                                         and w is self._scheduled_list(evp)), evp
                elif s == RQ_EVPSTATE_PENDING:
                    assert w is self.q_pending, evp
                else:
                    assert w is not None and (w is self._scheduled_list(evp)
                                              or w is self.q_removed
                                              or w is self.q_expired), evp
        assert total == self.evpcount, (total, self.evpcount)
        for k, q in lists.items():
            assert live[k] == q.n, (q, live[k])
        assert self.n_hold == sum(h.n for hqs in self.holdqs.values() for h in hqs.values())
        inc = 0
        for upd in self.updates.values():
            for evp in upd.envelopes.values():
                assert evp.where is upd.pending and evp.state == RQ_EVPSTATE_PENDING
                inc += 1
            assert upd.pending.n == len(upd.envelopes)
        assert inc == self.n_incoming
        prev = None
        for evp in self.q_pending:
            key = (min(evp.sched, evp.expire), evp.evpid)
            assert prev is None or prev < key
            prev = key
        for hqs in self.holdqs.values():
            for hq in hqs.values():
                assert hq.n > 0
