"""The queue process (``queue.c``, ``queue_backend.c``, ``queue_fs.c``): the on-disk queue.

The file system is ``smtpd_sim.world.disk``: every syscall blocks the queue process
(fsync of each envelope, renames at commit). The message is committed — safe — when
``queue_fs_message_commit()`` renames ``/incoming/<msgid>`` into ``/queue/``; only then
does smtp answer 250.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smtpd_sim.fsm.envelope import (
    B_DELIVERED,
    B_ERROR,
    B_WARNING,
    D_BOUNCE,
    DSN_SUCCESS,
    ESC_DELIVERY_TIME_EXPIRED,
    ESC_ROUTING_LOOP_DETECTED,
    ESC_STATUS_OK,
    ESC_STATUS_PERMFAIL,
    ESC_STATUS_TEMPFAIL,
    NO_BOUNCE_DOUBLE,
    Envelope,
)
from smtpd_sim.fsm.mta_session import MTA_EXT_DSN
from smtpd_sim.kernel.message import Imsg
from smtpd_sim.roles.base import Role, handles
from smtpd_sim.roles.bounce import BounceEngine

if TYPE_CHECKING:
    from smtpd_sim.kernel.process import Process
    from smtpd_sim.roles.ports import Ports


class _Message:
    """A message directory: ``/incoming/<msgid>`` until committed, then ``/queue/<hh>/<msgid>``."""

    __slots__ = ("msgid", "committed", "envelopes", "has_body", "size")

    def __init__(self, msgid: int) -> None:
        self.msgid = msgid
        self.committed = False
        self.envelopes: dict[int, Envelope] = {}
        self.has_body = False
        self.size = 0


class QueueRole(Role):
    """``queue.c:queue_imsg()``."""

    name = "queue"

    def __init__(self, proc: Process, ports: Ports) -> None:
        super().__init__(proc, ports)
        self.disk = ports.disk
        self.rng = ports.rng("queue-ids")
        self.ledger = ports.ledger
        self.hooks = ports.hooks  # a live server's real queue files (smtpd_sim.serve.store)
        self.hostname = ports.site.hostname  # bounce.c: the default smtpname
        self.messages: dict[int, _Message] = {}
        self.evpcache: set[int] = set()  # queue_backend.c envelope cache (QUEUE_EVPCACHE 1024)
        self.bounce_rng = ports.rng("bounce-ids")  # bounce.c: each session's MIME boundary
        self.bounces = BounceEngine(self)
        self.double_bounces = 0

    def counters(self) -> dict[str, float]:
        """``log_warnx("warn: queue: double bounce!")``s: bounces of bounces, dropped."""
        return {"double_bounces": self.double_bounces}

    # ---- queue_backend.c ---------------------------------------------------------------

    def _new_msgid(self) -> int:
        """``queue_fs.c:queue_fs_message_create()``: random msgid, not already used."""
        while True:
            msgid = self.rng.getrandbits(32)
            if msgid and msgid not in self.messages:
                return msgid

    def _generate_evpid(self, msg: _Message) -> int:
        """``queue_backend.c:queue_generate_evpid()``: a random evpid in the msgid, non-zero
        in its low half, not already used."""
        while True:
            evpid = (msg.msgid << 32) | self.rng.getrandbits(32)
            if evpid & 0xFFFFFFFF and evpid not in msg.envelopes:
                return evpid

    def _envelope_create(self, msg: _Message, evp: Envelope) -> int:
        """``queue_backend.c:queue_envelope_create()``: a new evpid, then the envelope is
        written (:meth:`_envelope_write`)."""
        evp.id = self._generate_evpid(msg)
        self._envelope_write(msg, evp)
        return evp.id

    def _envelope_write(self, msg: _Message, evp: Envelope) -> None:
        """The rest of ``queue_envelope_create()`` once ``evp.id`` is drawn: ``creation``,
        write the envelope file and fsync it; add it to the envelope cache (stat
        evpcache.size)."""
        evp.creation = self.now
        self.disk.op(self.proc, "open", "fsync")
        msg.envelopes[evp.id] = evp
        self._evpcache_add(evp.id)
        if msg.committed and self.hooks.envelope_written is not None:
            self.hooks.envelope_written(evp)  # queue_fs_envelope_create() straight into /queue

    def _envelope_update(self, evp: Envelope) -> None:
        """``queue_backend.c:queue_envelope_update()`` → ``queue_fs_envelope_update()``:
        write a temporary file, fsync, rename over the envelope."""
        self.disk.op(self.proc, "open", "fsync", "rename")
        if self.hooks.envelope_written is not None:
            self.hooks.envelope_written(evp)

    def _evpcache_add(self, evpid: int) -> None:
        self.evpcache.add(evpid)
        self.stat_increment("queue.evpcache.size")

    def _envelope_load(self, evpid: int) -> Envelope | None:
        """``queue_backend.c:queue_envelope_load()``: from the cache (stat load.hit) or disk."""
        msg = self.messages.get(evpid >> 32)
        evp = msg.envelopes.get(evpid) if msg else None
        if evp is None:
            return None
        if evpid in self.evpcache:
            self.stat_increment("queue.evpcache.load.hit")
        else:
            self.stat_increment("queue.evpcache.load.missed")
            self.disk.op(self.proc, "open")
            self._evpcache_add(evpid)
        return evp

    def _envelope_delete(self, evpid: int) -> None:
        """``queue_backend.c:queue_envelope_delete()``: unlink; the message directory goes
        with the last envelope (``queue_fs_message_delete()``)."""
        msg = self.messages.get(evpid >> 32)
        if msg is None or evpid not in msg.envelopes:
            return
        del msg.envelopes[evpid]
        if self.hooks.envelope_deleted is not None:
            self.hooks.envelope_deleted(evpid)  # queue_fs_envelope_delete()
        if evpid in self.evpcache:
            self.evpcache.discard(evpid)
            self.stat_decrement("queue.evpcache.size")
        self.disk.op(self.proc, "unlink")
        if not msg.envelopes:
            self.disk.op(self.proc, "unlink", "unlink")
            del self.messages[msg.msgid]
            self.disk.bodies.pop(msg.msgid, None)
            self.disk.delivered_to.pop(msg.msgid, None)

    # ---- restart -------------------------------------------------------------------------

    def disk_state(self) -> dict[int, list[Envelope]]:
        """What survives a crash: ``/queue/<hh>/<msgid>/`` (committed messages and copies of
        their envelope files). ``/incoming`` and ``/temporary`` are purged at the next start."""
        return {m.msgid: [e.copy() for e in m.envelopes.values()]
                for m in self.messages.values() if m.committed}

    def load_from_disk(self, disk: dict[int, list[Envelope]]) -> None:
        """``queue.c:queue_timeout()`` at start-up: walk /queue one envelope per 10 µs tick,
        IMSG_QUEUE_ENVELOPE_SUBMIT each to the scheduler and IMSG_QUEUE_MESSAGE_COMMIT
        whenever the msgid changes and at the end."""
        items: list[tuple[int, Envelope]] = []
        for msgid in sorted(disk):
            msg = _Message(msgid)
            msg.committed = True
            for e in disk[msgid]:
                msg.envelopes[e.id] = e
                items.append((msgid, e))
            self.messages[msgid] = msg

        def tick(i: int) -> None:
            if i > 0 and (i == len(items) or items[i][0] != items[i - 1][0]):
                self.send("scheduler", "QUEUE_MESSAGE_COMMIT", {"msgid": items[i - 1][0]})
            if i == len(items):
                return
            evp = items[i][1]
            self.send("scheduler", "QUEUE_ENVELOPE_SUBMIT", {"envelope": evp}, length=10 + evp.approx_size())
            self.proc.timer(10e-6, tick, i + 1, key="queue.timeout")

        if items:
            self.proc.timer(10e-6, tick, 0, key="queue.timeout")

    def committed_envelopes(self) -> set[int]:
        """Every envelope in /queue (committed messages), as a restart would find them."""
        return {e for m in self.messages.values() if m.committed for e in m.envelopes}

    # ---- smtp side -----------------------------------------------------------------------

    @handles("SMTP_MESSAGE_CREATE")
    def on_message_create(self, m: Imsg) -> None:
        """IMSG_SMTP_MESSAGE_CREATE → ``queue_message_create()``: free-space check, mkdir
        ``/incoming/<msgid>``; answer with the msgid (or failure when the disk is full)."""
        if self.disk.full:
            self.reply(m, "SMTP_MESSAGE_CREATE", {"session": m.payload["session"], "ok": False})
            return
        msgid = self._new_msgid()
        self.disk.op(self.proc, "mkdir")
        self.messages[msgid] = _Message(msgid)
        self.reply(m, "SMTP_MESSAGE_CREATE", {"session": m.payload["session"], "ok": True, "msgid": msgid})

    @handles("LKA_ENVELOPE_SUBMIT")
    def on_envelope_submit(self, m: Imsg) -> None:
        """IMSG_LKA_ENVELOPE_SUBMIT → ``queue_envelope_create()``; ack to smtp, then the
        whole envelope to the scheduler (held there until the message commits)."""
        p = m.payload
        sent: Envelope = p["envelope"]
        evp = sent.copy()  # what queue_imsg() reads off the imsg is its own
        msg = self.messages.get(evp.msgid)
        ok = msg is not None and not self.disk.full
        evpid = self._envelope_create(msg, evp) if msg is not None and ok else 0
        self.send(p["reply_to"], "QUEUE_ENVELOPE_SUBMIT", {"session": p["session"], "ok": ok, "evpid": evpid},
                  length=20)
        if ok:
            self.send("scheduler", "QUEUE_ENVELOPE_SUBMIT", {"envelope": evp}, length=10 + evp.approx_size())

    @handles("LKA_ENVELOPE_COMMIT")
    def on_envelope_commit(self, m: Imsg) -> None:
        """IMSG_LKA_ENVELOPE_COMMIT: the recipient is accepted (``250 2.1.5``)."""
        self.send(m.payload["reply_to"], "QUEUE_ENVELOPE_COMMIT", {"session": m.payload["session"], "ok": True})

    @handles("SMTP_MESSAGE_OPEN")
    def on_message_open(self, m: Imsg) -> None:
        """IMSG_SMTP_MESSAGE_OPEN → ``queue_message_fd_rw()``: create ``/temporary/<msgid>``
        and pass the read-write fd to smtp."""
        msg = self.messages.get(m.payload["msgid"])
        ok = msg is not None
        if msg is not None:
            self.disk.op(self.proc, "open")
            msg.has_body = True
        self.reply(m, "SMTP_MESSAGE_OPEN", {"session": m.payload["session"], "ok": ok}, fd=ok)

    @handles("SMTP_MESSAGE_COMMIT")
    def on_message_commit(self, m: Imsg) -> None:
        """IMSG_SMTP_MESSAGE_COMMIT → ``queue_message_commit()``: rename the body into the
        incoming dir, rename the dir into /queue (THE commit point); answer smtp, then tell
        the scheduler the envelopes are schedulable."""
        msgid = m.payload["msgid"]
        msg = self.messages.get(msgid)
        ok = msg is not None and not self.disk.full
        commit = self.hooks.committed  # a live server writes and renames the real files here
        if msg is not None and ok and commit is not None:
            ok = commit(msgid, list(msg.envelopes.values()), self.disk.bodies.get(msgid, b""))
        if msg is not None and ok:
            self.disk.op(self.proc, "rename", "rename")
            msg.committed = True
            msg.size = m.payload.get("size", 0)
            self.ledger.committed(msgid, list(msg.envelopes), self.now)
        self.reply(m, "SMTP_MESSAGE_COMMIT", {"session": m.payload["session"], "ok": ok})
        if ok:
            self.send("scheduler", "QUEUE_MESSAGE_COMMIT", {"msgid": msgid})

    @handles("SMTP_MESSAGE_ROLLBACK")
    def on_message_rollback(self, m: Imsg) -> None:
        """IMSG_SMTP_MESSAGE_ROLLBACK → ``queue_message_delete()`` (rmtree of the incoming
        dir and the temporary file), then the scheduler drops the update queue."""
        msgid = m.payload["msgid"]
        msg = self.messages.pop(msgid, None)
        self.disk.bodies.pop(msgid, None)
        self.disk.delivered_to.pop(msgid, None)
        if msg is not None:
            for evpid in msg.envelopes:
                if evpid in self.evpcache:
                    self.evpcache.discard(evpid)
                    self.stat_decrement("queue.evpcache.size")
            self.disk.op(self.proc, *(["unlink"] * (len(msg.envelopes) + 2)))
        self.send("scheduler", "QUEUE_MESSAGE_ROLLBACK", {"msgid": msgid})

    # ---- scheduler side --------------------------------------------------------------------

    @handles("SCHED_ENVELOPE_DELIVER", "SCHED_ENVELOPE_TRANSFER")
    def on_sched_dispatch(self, m: Imsg) -> None:
        """IMSG_SCHED_ENVELOPE_DELIVER / _TRANSFER: load the envelope, set lasttry and hand it
        to the agent (IMSG_QUEUE_DELIVER to mda, IMSG_QUEUE_TRANSFER to mta)."""
        evpid = m.payload["evpid"]
        evp = self._envelope_load(evpid)
        if evp is None:
            self.send("scheduler", "QUEUE_ENVELOPE_REMOVE", {"evpid": evpid, "inflight": True}, length=12)
            return
        evp.lasttry = self.now
        if m.kind == "SCHED_ENVELOPE_DELIVER":
            self.send("mda", "QUEUE_DELIVER", {"envelope": evp}, length=19 + evp.approx_size())
        else:
            self.send("mta", "QUEUE_TRANSFER", {"envelope": evp}, length=19 + evp.approx_size())

    @handles("MDA_OPEN_MESSAGE", "MTA_OPEN_MESSAGE")
    def on_open_message(self, m: Imsg) -> None:
        """IMSG_MDA_OPEN_MESSAGE / IMSG_MTA_OPEN_MESSAGE → ``queue_message_fd_r()``: a
        read-only fd on the committed message file."""
        msg = self.messages.get(m.payload["msgid"])
        ok = msg is not None and msg.committed
        size = 0
        if msg is not None and ok:
            self.disk.op(self.proc, "open")
            size = msg.size  # what fstat() on the fd tells the receiver
        self.reply(m, m.kind, {**m.payload, "ok": ok, "size": size}, fd=ok)

    @handles("MDA_DELIVERY_OK", "MTA_DELIVERY_OK")
    def on_delivery_ok(self, m: Imsg) -> None:
        """IMSG_*_DELIVERY_OK (5.4.2 IMSG_DELIVERY_OK): with ``dsn_notify & DSN_SUCCESS``,
        ESC class 2 and a success notice, ``queue_bounce(B_DELIVERED)`` (5.x B_DSN) —
        always for the mda; for the mta only when the remote did not announce DSN
        (``(mta_ext & MTA_EXT_DSN) == 0``: ``mta_without_dsn = 1``; with DSN the remote
        got NOTIFY= and notifies itself). Then delete the envelope, tell the scheduler."""
        evpid = m.payload["evpid"]
        evp = self._envelope_load(evpid)
        if evp is None:
            return
        if evp.dsn_notify & DSN_SUCCESS:
            mta = m.kind == "MTA_DELIVERY_OK"
            if not mta or not m.payload.get("mta_ext", 0) & MTA_EXT_DSN:
                evp.esc_class = ESC_STATUS_OK
                self._bounce(evp, B_DELIVERED, mta_without_dsn=mta)
        self._envelope_delete(evpid)
        self.ledger.delivered(evpid, self.now)
        self.send("scheduler", "QUEUE_DELIVERY_OK", {"evpid": evpid})

    @handles("MDA_DELIVERY_TEMPFAIL", "MTA_DELIVERY_TEMPFAIL")
    def on_delivery_tempfail(self, m: Imsg) -> None:
        """IMSG_*_DELIVERY_TEMPFAIL: record the error, ``retry++``, rewrite the envelope
        (tmp file, fsync, rename), hand the whole envelope back to the scheduler."""
        evpid = m.payload["evpid"]
        evp = self._envelope_load(evpid)
        if evp is None:
            self.send("scheduler", "QUEUE_ENVELOPE_REMOVE", {"evpid": evpid, "inflight": True}, length=12)
            return
        evp.errorline = m.payload.get("reason", "")
        evp.esc_class, evp.esc_code = ESC_STATUS_TEMPFAIL, m.payload.get("code", 0)
        evp.retry += 1
        self._envelope_update(evp)
        self.ledger.tempfailed(evpid, self.now)
        self.send("scheduler", "QUEUE_DELIVERY_TEMPFAIL", {"envelope": evp}, length=10 + evp.approx_size())

    @handles("MDA_DELIVERY_PERMFAIL", "MTA_DELIVERY_PERMFAIL", "MDA_DELIVERY_LOOP", "MTA_DELIVERY_LOOP")
    def on_delivery_permfail(self, m: Imsg) -> None:
        """IMSG_*_DELIVERY_PERMFAIL / _LOOP: bounce (``queue_bounce()``), delete, tell the
        scheduler."""
        evpid = m.payload["evpid"]
        evp = self._envelope_load(evpid)
        if evp is None:
            self.send("scheduler", "QUEUE_ENVELOPE_REMOVE", {"evpid": evpid, "inflight": True}, length=12)
            return
        loop = m.kind.endswith("LOOP")
        evp.errorline = "Loop detected" if loop else m.payload.get("reason", "")
        if loop:  # envelope_set_esc_class(ESC_STATUS_TEMPFAIL), _code(ESC_ROUTING_LOOP_DETECTED)
            evp.esc_class, evp.esc_code = ESC_STATUS_TEMPFAIL, ESC_ROUTING_LOOP_DETECTED
        else:
            evp.esc_class, evp.esc_code = ESC_STATUS_PERMFAIL, m.payload.get("code", 0)
        self._bounce(evp, B_ERROR)
        self._envelope_delete(evpid)
        self.ledger.failed(evpid, self.now)
        self.send("scheduler", "QUEUE_DELIVERY_LOOP" if loop else "QUEUE_DELIVERY_PERMFAIL", {"evpid": evpid})

    @handles("MDA_DELIVERY_HOLD", "MTA_DELIVERY_HOLD")
    def on_delivery_hold(self, m: Imsg) -> None:
        """IMSG_*_DELIVERY_HOLD: retyped IMSG_QUEUE_HOLDQ_HOLD, forwarded to the scheduler."""
        self.send("scheduler", "QUEUE_HOLDQ_HOLD", m.payload, length=m.length)

    @handles("MDA_HOLDQ_RELEASE", "MTA_HOLDQ_RELEASE")
    def on_holdq_release(self, m: Imsg) -> None:
        """IMSG_*_HOLDQ_RELEASE → IMSG_QUEUE_HOLDQ_RELEASE (type, holdq, n) to the scheduler."""
        typ = "mta" if m.kind.startswith("MTA") else "mda"
        self.send("scheduler", "QUEUE_HOLDQ_RELEASE", {**m.payload, "type": typ}, length=16)

    @handles("MTA_SCHEDULE")
    def on_mta_schedule(self, m: Imsg) -> None:
        """IMSG_MTA_SCHEDULE: retyped IMSG_QUEUE_ENVELOPE_SCHEDULE to the scheduler."""
        self.send("scheduler", "QUEUE_ENVELOPE_SCHEDULE", m.payload, length=m.length)

    @handles("SCHED_ENVELOPE_REMOVE")
    def on_sched_remove(self, m: Imsg) -> None:
        """IMSG_SCHED_ENVELOPE_REMOVE: ack, then delete (``smtpctl remove``)."""
        evpid = m.payload["evpid"]
        self.send("scheduler", "QUEUE_ENVELOPE_ACK", {"evpid": evpid})
        if self._envelope_load(evpid) is None:
            return
        self._envelope_delete(evpid)
        self.ledger.removed(evpid, self.now)

    @handles("SCHED_ENVELOPE_EXPIRE")
    def on_sched_expire(self, m: Imsg) -> None:
        """IMSG_SCHED_ENVELOPE_EXPIRE: ack, bounce "Envelope expired" (ESC 4.4.7), delete."""
        evpid = m.payload["evpid"]
        self.send("scheduler", "QUEUE_ENVELOPE_ACK", {"evpid": evpid})
        evp = self._envelope_load(evpid)
        if evp is None:
            return
        evp.errorline = "Envelope expired"
        evp.esc_class, evp.esc_code = ESC_STATUS_TEMPFAIL, ESC_DELIVERY_TIME_EXPIRED
        self._bounce(evp, B_ERROR)
        self._envelope_delete(evpid)
        if evp.type == D_BOUNCE:
            self.ledger.bounce_finished(evpid, "expired", self.now)
        else:
            self.ledger.expired(evpid, self.now)

    @handles("SCHED_ENVELOPE_BOUNCE")
    def on_sched_bounce(self, m: Imsg) -> None:
        """IMSG_SCHED_ENVELOPE_BOUNCE (delay warning): ``queue_bounce(B_DELAYED)``, then
        ``lastbounce`` = the warning's timestamp in the stored envelope."""
        p = m.payload
        evp = self._envelope_load(p["evpid"])
        if evp is None:
            self.send("scheduler", "QUEUE_ENVELOPE_REMOVE", {"evpid": p["evpid"], "inflight": False}, length=12)
            return
        self._bounce(evp, B_WARNING, delay=p["delay"], expire=p["expire"])
        evp.lastbounce = p["timestamp"]
        self._envelope_update(evp)
        self.ledger.warned(p["evpid"], self.now)

    # ---- bounces ------------------------------------------------------------------------

    def _bounce(self, evp: Envelope, bounce_type: int, delay: float = 0.0,
                expire: float | None = None, *, mta_without_dsn: bool = False) -> None:
        """``queue.c:queue_bounce()``: ``Envelope.make_bounce()`` — a D_BOUNCE copy of the
        envelope with a new evpid in the same message directory — written, submitted and
        committed to the scheduler; none for DSN NEVER, for a bounce (double bounce), or
        without a return path (``Envelope.bounce_refused()``, checked before an evpid is
        drawn)."""
        refused = evp.bounce_refused()
        if refused:
            if refused == NO_BOUNCE_DOUBLE:
                self.double_bounces += 1  # log_warnx("warn: queue: double bounce!")
            return
        msg = self.messages.get(evp.msgid)
        if msg is None:
            return
        b = evp.make_bounce(self._generate_evpid(msg), self.now, bounce_type,
                            delay=delay, expire=expire, mta_without_dsn=mta_without_dsn)
        assert b is not None
        self._envelope_write(msg, b)
        self.send("scheduler", "QUEUE_ENVELOPE_SUBMIT", {"envelope": b}, length=10 + b.approx_size())
        self.send("scheduler", "QUEUE_MESSAGE_COMMIT", {"msgid": msg.msgid})
        self.stat_increment("queue.bounce")
        self.ledger.bounce_created(b.id, self.now)

    @handles("SCHED_ENVELOPE_INJECT")
    def on_inject(self, m: Imsg) -> None:
        """IMSG_SCHED_ENVELOPE_INJECT → ``bounce.c:bounce_add()``."""
        evpid = m.payload["evpid"]
        evp = self._envelope_load(evpid)
        if evp is None:
            self.send("scheduler", "QUEUE_DELIVERY_PERMFAIL", {"evpid": evpid})
            return
        self.bounces.add(evp)

    @handles("QUEUE_SMTP_SESSION")
    def on_smtp_session(self, m: Imsg) -> None:
        """IMSG_QUEUE_SMTP_SESSION [fd] from smtp → ``bounce.c:bounce_fd()``."""
        self.bounces.fd(m.payload.get("pair") if m.payload else None)

    def bounce_done(self, evp: Envelope, result: str) -> None:
        """``bounce_delivery()`` for OK/PERMFAIL: tell the scheduler, delete the envelope."""
        kind = "QUEUE_DELIVERY_OK" if result == "ok" else "QUEUE_DELIVERY_PERMFAIL"
        self.send("scheduler", kind, {"evpid": evp.id})
        self._envelope_delete(evp.id)
        self.ledger.bounce_finished(evp.id, result, self.now)

    def bounce_tempfail(self, evp: Envelope, status: str) -> None:
        """``bounce_delivery()`` for TEMPFAIL: retry++, rewrite, whole envelope to the scheduler."""
        evp.retry += 1
        evp.errorline = status
        self._envelope_update(evp)
        self.send("scheduler", "QUEUE_DELIVERY_TEMPFAIL", {"envelope": evp}, length=10 + evp.approx_size())
