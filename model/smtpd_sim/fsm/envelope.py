"""The envelope (``struct envelope``) and its life cycle, pure and sans-IO.

Sources (function names, not line numbers):

* ``smtpd.h`` ``struct envelope`` / ``struct delivery_bounce`` (5.4.2, 5.7.3, 6.8) and
  ``smtpd-api.h`` (``enum envelope_flags``, ``enum delivery_type``,
  ``evpid_to_msgid()``, ``msgid_to_evpid()``);
* ``envelope.c:envelope_dump_buffer()`` / ``ascii_dump_field()``: the text format that is
  written to disk *and* sent as the imsg payload (``mproc.c:m_add_envelope()``);
* ``queue.c:queue_bounce()`` (bounce envelope creation), ``queue.c:queue_imsg()``
  (tempfail: ``retry++``; warning bounce: ``lastbounce``), ``queue_fs.c`` (commit point).

This is the one envelope type of the simulator: smtp builds it (``smtp_tx_rcpt_to()``),
lka copies and expands it (``lka_submit()``), the queue stores, loads and bounces it, the
scheduler, mda, mta and bounce code read it.  Things that are not in ``struct envelope``
(the smtp session an lka expansion answers, the agent a result goes to) travel in the
imsg payload beside it.

The life cycle below is what the simulator's ledger tracks.  An envelope is *written*
under ``/incoming/<msgid>/<evpid>`` at RCPT time (``queue_fs.c:queue_fs_envelope_create()``)
and becomes durable ("committed") only when ``queue_fs.c:queue_fs_message_commit()``
renames ``/incoming/<msgid>`` to ``/queue/<hh>/<msgid>``: that rename is THE commit point;
only after it does smtp answer ``250 ... Message accepted for delivery``.

Time is a float ``now`` in seconds handed in by the caller; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

# ---- delivery types (smtpd-api.h: enum delivery_type D_MDA, D_MTA, D_BOUNCE) ---------------
# Strings rather than ints: the roles and the scheduler backend dispatch on these names.
D_MDA = "mda"
D_MTA = "mta"
D_BOUNCE = "bounce"
DELIVERY_TYPES = (D_MDA, D_MTA, D_BOUNCE)

# ---- bounce types (smtpd.h enum bounce_type) ------------------------------------------------
# 5.4.2/5.7.3: B_ERROR, B_WARNING, B_DSN; 6.8 renamed them B_FAILED, B_DELAYED, B_DELIVERED
# with the same values (usr.sbin/smtpd/smtpd.h).
B_ERROR = 0
B_WARNING = 1
B_DSN = 2
B_FAILED, B_DELAYED, B_DELIVERED = B_ERROR, B_WARNING, B_DSN

# ---- envelope flags (smtpd-api.h enum envelope_flags) ---------------------------------------
EF_AUTHENTICATED = 0x01
EF_BOUNCE = 0x02
EF_INTERNAL = 0x04
# runtime-only flags reported by scheduler_ram_envelopes() to smtpctl
EF_PENDING = 0x10
EF_INFLIGHT = 0x20
EF_SUSPEND = 0x40
EF_HOLD = 0x80

# ---- DSN (smtpd.h) --------------------------------------------------------------------------
DSN_SUCCESS = 0x01
DSN_FAILURE = 0x02
DSN_DELAY = 0x04
DSN_NEVER = 0x08
DSN_RETFULL = 1  # enum dsn_ret
DSN_RETHDRS = 2
DSN_ENVID_LEN = 100

# ---- ESC classes (smtpd.h enum enhanced_status_class) ---------------------------------------
ESC_STATUS_OK = 2
ESC_STATUS_TEMPFAIL = 4
ESC_STATUS_PERMFAIL = 5
ESC_ROUTING_LOOP_DETECTED = 46  # smtpd-api.h enum enhanced_status_code (X.4.6)
ESC_DELIVERY_TIME_EXPIRED = 47  # smtpd-api.h enum enhanced_status_code (X.4.7)

# ---- durations ----------------------------------------------------------------------------
SMTPD_QUEUE_EXPIRY = 4 * 24 * 60 * 60  # smtpd.h, default `expire` (5.4.2) / sc_ttl (6.8): 4 days
BOUNCE_EXPIRY = 3600 * 24 * 7  # queue.c:queue_bounce(): b.expire (b.ttl in 6.8) = 7 days
MAX_BOUNCE_WARN = 4  # smtpd.h: sc_bounce_warn[MAX_BOUNCE_WARN]
DEFAULT_BOUNCE_WARN = (3600 * 4,)  # parse.y (5.4.2) / config.c (6.8): sc_bounce_warn[0] = 4 h
MAX_HOPS_COUNT = 100  # smtpd.h: Received: headers before a loop is declared

# why queue.c:queue_bounce() makes no bounce (Envelope.bounce_refused(); the last two are
# its log_warnx() texts, DSN NEVER returns silently)
NO_BOUNCE_DSN_NEVER = "DSN NEVER"
NO_BOUNCE_DOUBLE = "double bounce!"
NO_BOUNCE_NO_RETURN_PATH = "no return path!"

# The size the roles charge for an envelope's text in imsg payloads (Envelope.approx_size()):
# the 6.8 text with empty optional fields is ~230 bytes plus the addresses; real-traces
# local-1rcpt: LKA_ENVELOPE_SUBMIT len=299 for sender@local.test -> alice@local.test (rcpt
# and dest), i.e. 299 - 9 (reqid + framing) - 3*16 = 242 (the sender has 17 characters, so
# the figure charges 300 there, one byte more than the trace).
APPROX_FIXED = 242

# SMTPD_ENVELOPE_VERSION (smtpd.h): 2 at 5.4.2 and 5.7.3, 3 at 6.8
ENVELOPE_VERSION = {"5.4.2": 2, "5.7.3": 2, "6.8": 3}

ERAS = ("5.4.2", "5.7.3", "6.8")


def era_key(era: str) -> str:
    """Normalise an era name ("6.8.0p2", "pony-6.8", "with-mfa" ...) to "5.4.2", "5.7.3", "6.8"."""
    if era in ENVELOPE_VERSION:
        return era
    e = era.lower()
    if "6.8" in e:
        return "6.8"
    if "5.7" in e or e == "pony":
        return "5.7.3"
    if "5.4" in e or "mfa" in e:
        return "5.4.2"
    raise ValueError(f"unknown era {era!r}")


def evpid_to_msgid(evpid: int) -> int:
    """``smtpd-api.h:evpid_to_msgid()``: the message id is the top 32 bits."""
    return evpid >> 32


def msgid_to_evpid(msgid: int) -> int:
    """``smtpd-api.h:msgid_to_evpid()``: ``(uint64_t)msgid << 32`` (the message's lowest evpid)."""
    return (msgid & 0xFFFFFFFF) << 32


def make_evpid(msgid: int, rnd: int) -> int:
    """``queue_backend.c:queue_generate_evpid()``: msgid in the top half, a non-zero random
    32-bit value in the bottom half (the caller supplies ``rnd``)."""
    rnd &= 0xFFFFFFFF
    if rnd == 0:
        raise ValueError("the low 32 bits of an evpid are never 0")
    return ((msgid & 0xFFFFFFFF) << 32) | rnd


# ---- life cycle ---------------------------------------------------------------------------
# Non-terminal states
INCOMING = "incoming"  # written under /incoming/<msgid>/, message not committed yet
QUEUED = "queued"  # committed (rename into /queue), waiting for its first attempt
SCHEDULED = "scheduled"  # due: on one of the scheduler's dispatch lists (q_mta/q_mda/...)
INFLIGHT = "inflight"  # handed to queue -> mda/mta/bounce, waiting for the result
PENDING = "pending"  # waiting for a retry after a temporary failure
HELD = "held"  # parked on a holdq by an agent at its high-water mark
# Terminal states
DELIVERED = "delivered"  # IMSG_*_DELIVERY_OK: envelope deleted from the queue
BOUNCED = "bounced"  # permanent failure / loop, and queue_bounce() created a bounce
FAILED = "failed"  # permanent failure but no bounce possible (null sender, double bounce, NOTIFY=NEVER)
EXPIRED = "expired"  # expired in the scheduler; queue_bounce("Envelope expired") then deleted
REMOVED = "removed"  # administratively removed (smtpctl remove) or unloadable
ROLLED_BACK = "rolled_back"  # never committed (RSET / abort / crash before the rename)

STATES = (INCOMING, QUEUED, SCHEDULED, INFLIGHT, PENDING, HELD,
          DELIVERED, BOUNCED, FAILED, EXPIRED, REMOVED, ROLLED_BACK)
TERMINAL = frozenset((DELIVERED, BOUNCED, FAILED, EXPIRED, REMOVED, ROLLED_BACK))
WAITING = frozenset((QUEUED, PENDING))

# Which C function causes each transition:
#   INCOMING -> QUEUED       queue_fs.c:queue_fs_message_commit() (rename), then
#                            IMSG_QUEUE_COMMIT_MESSAGE -> scheduler_ram_commit()
#   INCOMING -> ROLLED_BACK  queue.c IMSG_QUEUE_REMOVE_MESSAGE -> queue_message_delete() and
#                            scheduler_ram_rollback(); or the startup purge of /incoming
#   QUEUED|PENDING -> SCHEDULED   scheduler_ramqueue.c:rq_queue_schedule()/rq_envelope_schedule()
#                            (sched <= now), or scheduler_ram_schedule() (smtpctl schedule)
#   QUEUED|PENDING|SCHEDULED -> INFLIGHT  scheduler_ram_batch() SCHED_MDA/MTA/BOUNCE (the
#                            batch runs rq_queue_schedule() first, so QUEUED->INFLIGHT is one step)
#   SCHEDULED -> PENDING     scheduler_ram_batch() SCHED_UPDATE (sched recomputed)
#   INFLIGHT -> PENDING      IMSG_*_DELIVERY_TEMPFAIL: queue.c retry++ / queue_envelope_update(),
#                            scheduler_ram_update()
#   INFLIGHT -> HELD         IMSG_*_DELIVERY_HOLD -> scheduler_ram_hold()
#   INFLIGHT -> PENDING      scheduler_ram_hold() on a suspended envelope / holdq overflow (5.7.3+)
#   HELD -> PENDING          IMSG_*_DELIVERY_RELEASE -> scheduler_ram_release()
#   HELD -> SCHEDULED        scheduler_ram_schedule()
#   INFLIGHT -> DELIVERED    IMSG_*_DELIVERY_OK -> queue_envelope_delete(), scheduler_ram_delete()
#   INFLIGHT -> BOUNCED|FAILED  IMSG_*_DELIVERY_PERMFAIL / _LOOP -> queue_bounce(B_ERROR),
#                            queue_envelope_delete(), scheduler_ram_delete()
#   QUEUED|PENDING|SCHEDULED -> EXPIRED  rq_queue_schedule() (expire <= now) then batch
#                            SCHED_EXPIRE -> IMSG_QUEUE_EXPIRE -> queue_bounce("Envelope expired")
#   any non-terminal committed -> REMOVED  scheduler_ram_remove() + batch SCHED_REMOVE ->
#                            IMSG_QUEUE_REMOVE -> queue_envelope_delete(); in flight:
#                            flagged, removed when the agent's result comes back; or queue
#                            IMSG_QUEUE_REMOVE (inflight=1) when the envelope cannot be loaded
TRANSITIONS: dict[str, frozenset[str]] = {
    INCOMING: frozenset((QUEUED, ROLLED_BACK)),
    QUEUED: frozenset((SCHEDULED, INFLIGHT, EXPIRED, REMOVED)),
    PENDING: frozenset((SCHEDULED, INFLIGHT, EXPIRED, REMOVED)),
    SCHEDULED: frozenset((INFLIGHT, PENDING, EXPIRED, REMOVED)),
    INFLIGHT: frozenset((DELIVERED, BOUNCED, FAILED, PENDING, HELD, REMOVED)),
    HELD: frozenset((PENDING, SCHEDULED, REMOVED)),
    DELIVERED: frozenset(),
    BOUNCED: frozenset(),
    FAILED: frozenset(),
    EXPIRED: frozenset(),
    REMOVED: frozenset(),
    ROLLED_BACK: frozenset(),
}


class IllegalTransition(ValueError):
    """An envelope was asked to go where its life cycle does not allow."""


def check_transition(old: str, new: str) -> str:
    """Validate ``old -> new`` against :data:`TRANSITIONS`; returns ``new``.

    For ledgers that keep plain state strings instead of :class:`Envelope` objects."""
    allowed = TRANSITIONS.get(old)
    if allowed is None:
        raise IllegalTransition(f"unknown state {old!r}")
    if new not in allowed:
        raise IllegalTransition(f"{old} -> {new} is not a legal envelope transition")
    return new


# ---- the envelope -------------------------------------------------------------------------

# 6.8 only: the dispatcher (action) name is serialized; real-traces/smtpd.conf names its
# actions "local" and "relay", which is what an unset dispatcher defaults to in dumps.
DEFAULT_DISPATCHER = {D_MDA: "local", D_MTA: "relay", D_BOUNCE: "local"}

_ERA_FAST = {"5.4.2": "5.4.2", "5.7.3": "5.7.3", "6.8": "6.8"}

_BOUNCE_TYPE_TEXT = {  # envelope.c:ascii_dump_bounce_type()
    "5.4.2": ("error", "warn", "dsn"),
    "5.7.3": ("error", "warn", "dsn"),
    "6.8": ("failed", "delayed", "delivered"),
}


def _flags_text(flags: int) -> str:
    """``envelope.c:ascii_dump_flags()``."""
    parts = []
    if flags & EF_AUTHENTICATED:
        parts.append("authenticated")
    if flags & EF_BOUNCE:
        parts.append("bounce")
    if flags & EF_INTERNAL:
        parts.append("internal")
    return " ".join(parts)


def _mailaddr_text(addr: str) -> str:
    """``envelope.c:ascii_dump_mailaddr()`` prints ``user@domain``; the null sender
    (empty user and domain) therefore prints as ``@``."""
    return addr if addr else "@"


def _orcpt_text(addr: str) -> str:
    """``ascii_dump_field("dsn-orcpt")``: only when both user and domain are set."""
    user, _, domain = addr.rpartition("@")
    return addr if user and domain else ""


@dataclass(slots=True, eq=False)
class Envelope:
    """``struct envelope`` (``smtpd.h``), the fields that matter to the simulator.

    ``expire`` is a *duration* (``expire`` at 5.4.2/5.7.3, ``ttl`` at 6.8) counted from
    ``creation``; ``creation`` is set by ``queue_backend.c:queue_envelope_create()`` (RCPT
    time) and is a whole second (``time(NULL)``) in the daemon.  ``sender``/``rcpt``/``dest``
    are ``user@domain`` strings; the null sender is ``""``.  ``state`` is the simulator's
    life-cycle state (not a C field).
    """

    id: int = 0  # evpid = msgid << 32 | random32
    type: str = D_MDA
    sender: str = ""
    rcpt: str = ""  # the original RCPT TO
    dest: str = ""  # the address after expansion
    creation: float = 0.0
    expire: float = float(SMTPD_QUEUE_EXPIRY)
    retry: int = 0
    lasttry: float = 0.0
    nexttry: float = 0.0  # not persisted (scheduler_info.nexttry)
    lastbounce: float = 0.0
    flags: int = 0
    tag: str = ""
    smtpname: str = ""
    helo: str = ""
    hostname: str = ""  # PTR name of the client (s->rdns)
    sockaddr: str = ""  # ss_to_text(&ss), e.g. "127.0.0.1"
    errorline: str = ""
    esc_class: int = 0
    esc_code: int = 0
    dsn_notify: int = 0
    dsn_ret: int = 0
    dsn_envid: str = ""
    dsn_orcpt: str = ""
    # agent.bounce (struct delivery_bounce)
    bounce_type: int = B_ERROR
    bounce_delay: float = 0.0
    bounce_expire: float = 0.0
    bounce_dsn_ret: int = 0
    mta_without_dsn: bool = False
    # agent.mda (5.4.2/5.7.3 struct delivery_mda; 6.8 mda_user/mda_exec/mda_subaddress)
    mda_method: str = ""  # "mbox", "maildir", "filename", "mda", "lmtp"
    mda_user: str = ""
    mda_usertable: str = ""
    mda_buffer: str = ""
    mda_delivery_user: str = ""  # 5.7.3
    mda_exec: str = ""  # 6.8
    mda_subaddress: str = ""  # 6.8
    # agent.mta (struct relayhost; empty hostname = MX relay)
    mta_relay: str = ""  # relayhost_to_text(), e.g. "smtp+tls://mx.example.org:25"
    mta_relay_flags: str = ""  # "tls", "verify", "verify tls" (ascii_dump_mta_relay_flags())
    mta_relay_auth: str = ""
    mta_relay_cert: str = ""
    mta_relay_heloname: str = ""
    mta_relay_helotable: str = ""
    mta_relay_source: str = ""
    mta_relay_ca: str = ""  # 5.7.3
    # what the mta role routes on (struct relayhost hostname / port, 6.8 tls): the relay host
    # of a `relay host` rule (empty: the MX of the dest domain); lka_submit() copies them
    # from the rule. mta_relay above is the text the 5.x dump shows for the same relayhost.
    mta_relay_hostname: str = ""
    mta_relay_port: int = 0
    mta_relay_tls: str = "optional"  # RELAY_TLS_OPPORTUNISTIC; "plain" (no TLS), "required"
    dispatcher: str = ""  # 6.8 action name
    username: str = ""  # 6.8: authenticated user
    # simulator life cycle (the roles leave it alone: the ledger tracks theirs by evpid)
    state: str = INCOMING

    # ---- identifiers --------------------------------------------------------------------

    @property
    def msgid(self) -> int:
        """``evpid_to_msgid(evp->id)``."""
        return self.id >> 32

    @property
    def expires_at(self) -> float:
        """Absolute expiry time as the ramqueue computes it: ``creation + expire``."""
        return self.creation + self.expire

    # ---- copies ---------------------------------------------------------------------------

    def copy(self) -> Envelope:
        """``struct envelope`` assignment (``b = *e``, ``ep = *s->envelope``): every field,
        assigned one by one (a hot path: no reflection, no ``dataclasses.replace``)."""
        e = Envelope()
        e.id = self.id
        e.type = self.type
        e.sender = self.sender
        e.rcpt = self.rcpt
        e.dest = self.dest
        e.creation = self.creation
        e.expire = self.expire
        e.retry = self.retry
        e.lasttry = self.lasttry
        e.nexttry = self.nexttry
        e.lastbounce = self.lastbounce
        e.flags = self.flags
        e.tag = self.tag
        e.smtpname = self.smtpname
        e.helo = self.helo
        e.hostname = self.hostname
        e.sockaddr = self.sockaddr
        e.errorline = self.errorline
        e.esc_class = self.esc_class
        e.esc_code = self.esc_code
        e.dsn_notify = self.dsn_notify
        e.dsn_ret = self.dsn_ret
        e.dsn_envid = self.dsn_envid
        e.dsn_orcpt = self.dsn_orcpt
        e.bounce_type = self.bounce_type
        e.bounce_delay = self.bounce_delay
        e.bounce_expire = self.bounce_expire
        e.bounce_dsn_ret = self.bounce_dsn_ret
        e.mta_without_dsn = self.mta_without_dsn
        e.mda_method = self.mda_method
        e.mda_user = self.mda_user
        e.mda_usertable = self.mda_usertable
        e.mda_buffer = self.mda_buffer
        e.mda_delivery_user = self.mda_delivery_user
        e.mda_exec = self.mda_exec
        e.mda_subaddress = self.mda_subaddress
        e.mta_relay = self.mta_relay
        e.mta_relay_flags = self.mta_relay_flags
        e.mta_relay_auth = self.mta_relay_auth
        e.mta_relay_cert = self.mta_relay_cert
        e.mta_relay_heloname = self.mta_relay_heloname
        e.mta_relay_helotable = self.mta_relay_helotable
        e.mta_relay_source = self.mta_relay_source
        e.mta_relay_ca = self.mta_relay_ca
        e.mta_relay_hostname = self.mta_relay_hostname
        e.mta_relay_port = self.mta_relay_port
        e.mta_relay_tls = self.mta_relay_tls
        e.dispatcher = self.dispatcher
        e.username = self.username
        e.state = self.state
        return e

    # ---- life cycle ---------------------------------------------------------------------

    def _to(self, new: str) -> None:
        old = self.state
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(f"evp:{self.id:016x}: {old} -> {new} is not legal")
        self.state = new

    def commit(self) -> None:
        """``queue_fs.c:queue_fs_message_commit()``: ``/incoming/<msgid>`` renamed to
        ``/queue/<hh>/<msgid>`` — the commit point; then ``scheduler_ram_commit()``."""
        self._to(QUEUED)

    def rollback(self) -> None:
        """IMSG_QUEUE_REMOVE_MESSAGE → ``queue_message_delete()`` +
        ``scheduler_ram_rollback()`` (RSET, abort, failed DATA) or the startup purge of
        ``/incoming``: the envelope never existed as far as the client is concerned."""
        self._to(ROLLED_BACK)

    def schedule(self) -> None:
        """``scheduler_ramqueue.c:rq_envelope_schedule()``: due (``sched <= now``) or
        forced by ``smtpctl schedule`` (``scheduler_ram_schedule()``)."""
        self._to(SCHEDULED)

    def dispatch(self, now: float) -> None:
        """``scheduler_ram_batch()`` SCHED_MDA/MTA/BOUNCE → IMSG_MDA_DELIVER / MTA_TRANSFER /
        BOUNCE_INJECT; ``queue.c:queue_imsg()`` loads the envelope and sets ``lasttry``."""
        self._to(INFLIGHT)
        self.lasttry = now

    def tempfail(self, errorline: str = "", esc_code: int = 0) -> None:
        """IMSG_*_DELIVERY_TEMPFAIL in ``queue.c:queue_imsg()``: errorline, ESC class 4,
        ``retry++``, ``queue_envelope_update()``; the scheduler reschedules it
        (``scheduler_ram_update()``)."""
        self._to(PENDING)
        self.errorline = errorline
        self.esc_class = ESC_STATUS_TEMPFAIL
        self.esc_code = esc_code
        self.retry += 1

    def updated(self) -> None:
        """``scheduler_ram_batch()`` SCHED_UPDATE: a SCHEDULED envelope flagged UPDATE
        (released with n = -1, or holdq overflow) gets a new ``sched`` and is PENDING again."""
        self._to(PENDING)

    def hold(self) -> None:
        """IMSG_*_DELIVERY_HOLD → ``scheduler_ram_hold()``: the agent is at its high-water
        mark (mda per user, mta per relay)."""
        self._to(HELD)

    def release(self) -> None:
        """IMSG_*_DELIVERY_RELEASE → ``scheduler_ram_release()``: back to PENDING."""
        self._to(PENDING)

    def deliver(self) -> None:
        """IMSG_*_DELIVERY_OK → ``queue_envelope_delete()`` + ``scheduler_ram_delete()``."""
        self._to(DELIVERED)

    def permfail(self, errorline: str = "", esc_code: int = 0, *, bounced: bool = True) -> None:
        """IMSG_*_DELIVERY_PERMFAIL / _LOOP → ``queue_bounce(B_ERROR)``,
        ``queue_envelope_delete()``, ``scheduler_ram_delete()``.  ``bounced`` says whether
        ``queue_bounce()`` actually created a bounce (see :meth:`make_bounce`)."""
        self._to(BOUNCED if bounced else FAILED)
        self.errorline = errorline
        self.esc_class = ESC_STATUS_PERMFAIL
        self.esc_code = esc_code

    def expire_now(self) -> None:
        """Batch SCHED_EXPIRE → IMSG_QUEUE_EXPIRE (5.4.2) / IMSG_SCHED_ENVELOPE_EXPIRE:
        ``envelope_set_errormsg("Envelope expired")``, ESC 4.4.7, ``queue_bounce()``, delete."""
        self._to(EXPIRED)
        self.errorline = "Envelope expired"
        self.esc_class = ESC_STATUS_TEMPFAIL
        self.esc_code = ESC_DELIVERY_TIME_EXPIRED

    def remove(self) -> None:
        """Batch SCHED_REMOVE → IMSG_QUEUE_REMOVE → ``queue_envelope_delete()``."""
        self._to(REMOVED)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    # ---- bounces ------------------------------------------------------------------------

    def bounce_refused(self) -> str:
        """Why ``queue.c:queue_bounce()`` makes no bounce of this envelope, or ``""``:
        ``dsn_notify & DSN_NEVER`` (checked first, silently), the envelope is itself a
        bounce (``"double bounce!"``), or the sender is empty (``"no return path!"``) —
        the checks it makes before ``queue_envelope_create()`` draws the new evpid."""
        if self.dsn_notify & DSN_NEVER:
            return NO_BOUNCE_DSN_NEVER
        if self.type == D_BOUNCE:
            return NO_BOUNCE_DOUBLE
        if not self.sender:
            return NO_BOUNCE_NO_RETURN_PATH
        return ""

    def make_bounce(self, evpid: int, now: float, bounce_type: int = B_ERROR, *,
                    delay: float = 0.0, expire: float | None = None,
                    mta_without_dsn: bool = False) -> Envelope | None:
        """``queue.c:queue_bounce()``: a copy with ``type = D_BOUNCE``, the bounce
        parameters, ``retry = 0``, ``lasttry = 0``, ``creation = now`` and a hard-coded
        7-day expiry, written into the same message directory (new evpid, same msgid).

        Returns ``None`` when no bounce is made (:meth:`bounce_refused`).  ``evpid`` must
        share this envelope's msgid (the caller draws it, ``queue_envelope_create()``)."""
        if self.bounce_refused():
            return None
        if evpid >> 32 != self.id >> 32:
            raise ValueError("a bounce envelope lives in the original message (same msgid)")
        b = self.copy()  # b = *e
        b.id = evpid
        b.type = D_BOUNCE
        b.bounce_type = bounce_type
        b.bounce_delay = delay
        b.bounce_expire = self.expire if expire is None else expire
        b.bounce_dsn_ret = self.dsn_ret
        b.mta_without_dsn = mta_without_dsn  # a success notice for a relay without DSN
        b.retry = 0
        b.lasttry = 0.0
        b.nexttry = 0.0
        b.creation = now
        b.expire = float(BOUNCE_EXPIRY)
        b.state = INCOMING
        return b

    # ---- serialization ------------------------------------------------------------------

    def _fields(self, era: str) -> list[tuple[str, str]]:
        """``envelope.c:envelope_dump_buffer()``: (field, text) in dump order; fields whose
        text is empty are skipped by ``envelope_ascii_dump()``."""
        era = era_key(era)
        t = self.type
        i = int
        f: list[tuple[str, str]] = [("version", str(ENVELOPE_VERSION[era]))]
        if era == "6.8":
            f.append(("dispatcher", self.dispatcher or DEFAULT_DISPATCHER[t]))
        f += [
            ("tag", self.tag),
            ("type", t),
            ("smtpname", self.smtpname),
            ("helo", self.helo),
            ("hostname", self.hostname),
        ]
        if era == "6.8":
            f.append(("username", self.username))
        f += [
            ("errorline", self.errorline),
            ("sockaddr", self.sockaddr),
            ("sender", _mailaddr_text(self.sender)),
            ("rcpt", _mailaddr_text(self.rcpt)),
            ("dest", _mailaddr_text(self.dest)),
            ("ctime", str(i(self.creation))),
            ("last-try", str(i(self.lasttry))),
            ("last-bounce", str(i(self.lastbounce))),
        ]
        if era == "6.8":
            # 6.8 never sets evp->ttl for ordinary mail (scheduler_backend.c:scheduler_info()
            # takes the dispatcher's ttl instead), so it dumps "ttl: 0"; only
            # queue_bounce() sets it (7 days).  Confirmed by real-traces: local-1rcpt
            # QUEUE_ENVELOPE_SUBMIT payload 300 = 8 + 1 + 290 + 1 only with "ttl: 0".
            f.append(("ttl", str(i(self.expire)) if t == D_BOUNCE else "0"))
        else:
            f.append(("expire", str(i(self.expire))))
        f += [
            ("retry", str(self.retry)),
            ("flags", _flags_text(self.flags)),
            ("dsn-notify", str(self.dsn_notify)),
            ("dsn-ret", {DSN_RETFULL: "FULL", DSN_RETHDRS: "HDRS"}.get(self.dsn_ret, "")),
            ("dsn-envid", self.dsn_envid),
            ("dsn-orcpt", _orcpt_text(self.dsn_orcpt)),
            ("esc-class", str(self.esc_class) if self.esc_class else ""),
            ("esc-code", str(self.esc_code) if self.esc_class else ""),
        ]
        if t == D_MDA:
            if era == "6.8":
                f += [("mda-exec", self.mda_exec), ("mda-subaddress", self.mda_subaddress),
                      ("mda-user", self.mda_user)]
            else:
                f += [("mda-buffer", self.mda_buffer), ("mda-method", self.mda_method),
                      ("mda-user", self.mda_user), ("mda-usertable", self.mda_usertable)]
                if era == "5.7.3":
                    f.append(("mda-delivery-user", self.mda_delivery_user))
        elif t == D_MTA:
            if era != "6.8":  # 6.8 dumps nothing for D_MTA (the relay is in the dispatcher)
                f += [("mta-relay", self.mta_relay), ("mta-relay-auth", self.mta_relay_auth)]
                if era == "5.7.3":
                    f.append(("mta-relay-ca", self.mta_relay_ca))
                f += [("mta-relay-cert", self.mta_relay_cert),
                      ("mta-relay-flags", self.mta_relay_flags),
                      ("mta-relay-heloname", self.mta_relay_heloname),
                      ("mta-relay-helotable", self.mta_relay_helotable),
                      ("mta-relay-source", self.mta_relay_source)]
        else:
            warning = self.bounce_type == B_WARNING
            f += [
                ("bounce-ttl" if era == "6.8" else "bounce-expire",
                 str(i(self.bounce_expire)) if warning else ""),
                ("bounce-delay", str(i(self.bounce_delay)) if warning else ""),
                ("bounce-type", _BOUNCE_TYPE_TEXT[era][self.bounce_type]),
            ]
        return f

    def dump(self, era: str = "6.8") -> str:
        """The text ``envelope.c:envelope_dump_buffer()`` produces (``field: value\\n``)."""
        return "".join(f"{k}: {v}\n" for k, v in self._fields(era) if v)

    def serialized_size(self, era: str = "6.8") -> int:
        """``strlen()`` of :meth:`dump` — the envelope text written to disk and carried by
        ``m_add_envelope()``.  Deterministic, and computed by arithmetic (a hot path: one
        call per envelope-carrying imsg); :meth:`dump` is the reference implementation."""
        era = _ERA_FAST.get(era) or era_key(era)
        new = era == "6.8"
        t = self.type

        def f(name_len: int, v: str) -> int:  # "name: v\n" unless v is empty
            return name_len + 3 + len(v) if v else 0

        def num(name_len: int, x: float) -> int:
            return name_len + 3 + len(str(int(x)))

        n = 11  # "version: N\n"
        if new:
            n += f(10, self.dispatcher or DEFAULT_DISPATCHER[t])
            n += f(8, self.username)
        n += f(3, self.tag) + 7 + len(t)  # "type: t\n"
        n += f(8, self.smtpname) + f(4, self.helo) + f(8, self.hostname)
        n += f(9, self.errorline) + f(8, self.sockaddr)
        n += 9 + (len(self.sender) or 1)  # "sender: s\n", null sender "@"
        n += 7 + (len(self.rcpt) or 1) + 7 + (len(self.dest) or 1)
        n += num(5, self.creation) + num(8, self.lasttry) + num(11, self.lastbounce)
        if new:
            n += num(3, self.expire) if t == D_BOUNCE else 7  # "ttl: 0\n"
        else:
            n += num(6, self.expire)
        n += 8 + len(str(self.retry))
        if self.flags & (EF_AUTHENTICATED | EF_BOUNCE | EF_INTERNAL):
            n += 8 + len(_flags_text(self.flags))
        n += 13 + len(str(self.dsn_notify))
        if self.dsn_ret in (DSN_RETFULL, DSN_RETHDRS):
            n += 14  # "dsn-ret: FULL\n"
        n += f(9, self.dsn_envid) + f(9, _orcpt_text(self.dsn_orcpt))
        if self.esc_class:
            n += 12 + len(str(self.esc_class)) + 11 + len(str(self.esc_code))
        if t == D_MDA:
            if new:
                n += f(8, self.mda_exec) + f(14, self.mda_subaddress) + f(8, self.mda_user)
            else:
                n += f(10, self.mda_buffer) + f(10, self.mda_method) + f(8, self.mda_user)
                n += f(13, self.mda_usertable)
                if era == "5.7.3":
                    n += f(17, self.mda_delivery_user)
        elif t == D_MTA:
            if not new:
                n += f(9, self.mta_relay) + f(14, self.mta_relay_auth)
                n += f(14, self.mta_relay_cert) + f(15, self.mta_relay_flags)
                n += f(18, self.mta_relay_heloname) + f(19, self.mta_relay_helotable)
                n += f(16, self.mta_relay_source)
                if era == "5.7.3":
                    n += f(12, self.mta_relay_ca)
        else:
            if self.bounce_type == B_WARNING:
                n += num(10 if new else 13, self.bounce_expire) + num(12, self.bounce_delay)
            n += 14 + len(_BOUNCE_TYPE_TEXT[era][self.bounce_type])
        return n

    def approx_size(self) -> int:
        """Bytes of the envelope text as the roles charge them in imsg payloads:
        :data:`APPROX_FIXED` + sender + rcpt + dest (rcpt again before lka set a dest).
        One figure fitted on real-traces, not :meth:`serialized_size`: every hop's length
        and per-byte cost in the recorded results depends on it."""
        return APPROX_FIXED + len(self.sender) + len(self.rcpt) + len(self.dest or self.rcpt)

    def imsg_payload_len(self, era: str = "6.8") -> int:
        """Bytes ``mproc.c:m_add_envelope()`` adds to an imsg.

        5.4.2/5.7.3: ``m_add_evpid()`` typed (1 + 8) + ``m_add_typed_sized(M_ENVELOPE)``
        (1 type + 8 size_t + text + NUL) = text + 19.  6.8: evpid (8) + ``m_add_string()``
        ("s" + text + NUL) = text + 10 (real-traces: 300 for local-1rcpt)."""
        n = self.serialized_size(era)
        return n + (10 if era_key(era) == "6.8" else 19)

    # ---- dict interop (tests and tools; the roles pass Envelope objects) ----------------

    @classmethod
    def from_mapping(cls, d: Any) -> Envelope:
        """Build from a mapping using the field names above; ``"id"`` or ``"evpid"`` for
        the id; unknown keys are ignored."""
        e = cls()
        for k, v in d.items():
            if k == "evpid":
                k = "id"
            if k in _FIELD_SET:
                setattr(e, k, v)
        return e

    def to_dict(self) -> dict[str, Any]:
        d = {name: getattr(self, name) for name in FIELDS}
        d["msgid"] = self.msgid
        return d


# the field names, for dict interop (a compiled class has no usable __slots__)
FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Envelope))
_FIELD_SET: frozenset[str] = frozenset(FIELDS)
