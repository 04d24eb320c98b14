"""The scheduler's backend interface (``scheduler_backend.c``, ``smtpd.h``, ``smtpd-api.h``)
— pure values shared by the scheduler and its ramqueue backend.

* ``struct scheduler_info`` and ``scheduler_backend.c:scheduler_info()``: what the
  scheduler tells the backend about an envelope (:class:`SchedulerInfo`);
* ``struct scheduler_batch``: what ``backend->batch()`` returns (:class:`Batch`);
* the ``SCHED_*`` batch types of ``smtpd-api.h`` and their names (:func:`sched_mask`).

The backend itself, ``scheduler_ramqueue.c``, is :mod:`smtpd_sim.fsm.ramqueue`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from smtpd_sim.fsm.envelope import SMTPD_QUEUE_EXPIRY, Envelope, era_key

__all__ = [
    "SCHED_REMOVE", "SCHED_EXPIRE", "SCHED_UPDATE", "SCHED_BOUNCE", "SCHED_MDA", "SCHED_MTA",
    "SCHED_ALL", "REMOVE", "EXPIRE", "UPDATE", "BOUNCE", "MDA", "MTA", "SCHED_NAMES",
    "SCHED_BITS", "sched_mask", "SchedulerInfo", "Batch",
]

# ---- batch types (smtpd-api.h: SCHED_*; the 6.8 values — 5.4.2 had SCHED_DELAY = 0x01 and
# every other bit shifted left by one, which only matters inside C) -----------------------
SCHED_REMOVE = 0x01
SCHED_EXPIRE = 0x02
SCHED_UPDATE = 0x04
SCHED_BOUNCE = 0x08
SCHED_MDA = 0x10
SCHED_MTA = 0x20
SCHED_ALL = 0x3F

REMOVE = "remove"
EXPIRE = "expire"
UPDATE = "update"
BOUNCE = "bounce"
MDA = "mda"
MTA = "mta"
SCHED_NAMES = {SCHED_REMOVE: REMOVE, SCHED_EXPIRE: EXPIRE, SCHED_UPDATE: UPDATE,
               SCHED_BOUNCE: BOUNCE, SCHED_MDA: MDA, SCHED_MTA: MTA}
SCHED_BITS = {v: k for k, v in SCHED_NAMES.items()}


def sched_mask(typemask: int | str | Iterable[str] | None) -> int:
    """A typemask for ``backend->batch()``: SCHED_* bits, a type name or names, None for all."""
    if typemask is None:
        return SCHED_ALL
    if isinstance(typemask, int):
        return typemask
    if isinstance(typemask, str):
        return SCHED_BITS[typemask]
    m = 0
    for name in typemask:
        m |= SCHED_BITS[name]
    return m


@dataclass(slots=True)
class SchedulerInfo:
    """``struct scheduler_info`` (``scheduler_backend.c:scheduler_info()``).

    ``expire`` is a duration (``ttl`` at 6.8).  ``retry`` is the envelope's stored retry:
    0 for new mail, already incremented by the queue on a tempfail."""

    evpid: int
    type: str
    creation: float
    retry: int = 0
    expire: float = float(SMTPD_QUEUE_EXPIRY)
    lasttry: float = 0.0
    lastbounce: float = 0.0
    nexttry: float = 0.0

    @property
    def msgid(self) -> int:
        """``evpid_to_msgid()``: the envelope's message."""
        return self.evpid >> 32

    @classmethod
    def from_envelope(cls, evp: Envelope | dict, era: str = "6.8", *,
                      ttl: float | None = None) -> SchedulerInfo:
        """``scheduler_backend.c:scheduler_info()``.

        5.4.2 and 5.7.3 copy ``evp->expire`` (4 d by default, 7 d for bounces).  6.8
        ignores the envelope and takes the *dispatcher's* ttl (``disp->ttl ? disp->ttl :
        env->sc_ttl``), and the bounce dispatcher has none, so at 6.8 bounces expire after
        ``sc_ttl`` = 4 days in the scheduler although ``queue_bounce()`` wrote 7 days into
        the envelope.  ``ttl`` overrides the dispatcher ttl (6.8 only)."""
        if isinstance(evp, Envelope):
            evpid, typ, creation = evp.id, evp.type, evp.creation
            retry, expire = evp.retry, evp.expire
            lasttry, lastbounce = evp.lasttry, evp.lastbounce
        else:
            evpid = evp["id"] if "id" in evp else evp["evpid"]
            typ, creation = evp["type"], evp["creation"]
            retry = evp.get("retry", 0)
            expire = evp.get("expire", SMTPD_QUEUE_EXPIRY)
            lasttry = evp.get("lasttry", 0.0)
            lastbounce = evp.get("lastbounce", 0.0)
        if era_key(era) == "6.8":
            expire = float(SMTPD_QUEUE_EXPIRY) if ttl is None else ttl
        return cls(evpid, typ, creation, retry, expire, lasttry, lastbounce, 0.0)


@dataclass(slots=True)
class Batch:
    """What ``scheduler_ram_batch()`` returned.

    ``evpids``/``types`` are parallel lists (≤ ``max_schedule``).  At 5.4.2 a batch holds
    one type and ``type`` is it; at 5.7.3+ a batch mixes types round-robin and ``type`` is
    the common type or ``"mixed"`` — always dispatch on ``types[i]``:

    ============ ============================================ ===========================
    type         5.4.2 imsg (scheduler -> queue)              5.7.3 / 6.8 imsg
    ============ ============================================ ===========================
    remove       IMSG_QUEUE_REMOVE                            IMSG_SCHED_ENVELOPE_REMOVE
    expire       IMSG_QUEUE_EXPIRE                            IMSG_SCHED_ENVELOPE_EXPIRE
    update       (none: rescheduled in the backend)           (none)
    bounce       IMSG_BOUNCE_INJECT                           IMSG_SCHED_ENVELOPE_INJECT
    mda          IMSG_MDA_DELIVER                             IMSG_SCHED_ENVELOPE_DELIVER
    mta          IMSG_MTA_TRANSFER                            IMSG_SCHED_ENVELOPE_TRANSFER
    ============ ============================================ ===========================

    An empty batch has ``type None`` and ``delay`` = seconds until the head of
    ``q_pending`` is due (SCHED_DELAY), or ``None`` when nothing is pending (SCHED_NONE /
    delay -1).  A non-empty batch has ``delay`` 0.0 ("call again now")."""

    type: str | None
    evpids: list[int]
    types: list[str]
    delay: float | None

    def __len__(self) -> int:
        """Envelopes in the batch (0: SCHED_DELAY / SCHED_NONE)."""
        return len(self.evpids)

    def __iter__(self) -> Iterator[tuple[str, int]]:
        """(type, evpid) pairs, in the batch's order."""
        return zip(self.types, self.evpids, strict=True)
