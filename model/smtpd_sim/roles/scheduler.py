"""The scheduler (``scheduler.c`` with the ``ramqueue`` backend).

The backend is the pure ``smtpd_sim.fsm.ramqueue.RamQueue``; this role turns its decisions
into imsgs and stats exactly where ``scheduler.c`` and ``scheduler_ramqueue.c`` send
them, and re-arms its evtimer like ``scheduler_reset_events()`` / ``scheduler_timeout()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smtpd_sim.fsm.envelope import Envelope
from smtpd_sim.fsm.ramqueue import RamQueue, RetryPolicy, SchedulerInfo, Tick
from smtpd_sim.kernel.message import Imsg
from smtpd_sim.kernel.sched import cancel
from smtpd_sim.roles.base import Role, handles

if TYPE_CHECKING:
    from smtpd_sim.kernel.process import Process
    from smtpd_sim.roles.ports import Ports

_DISPATCH = {
    "mda": "SCHED_ENVELOPE_DELIVER",
    "mta": "SCHED_ENVELOPE_TRANSFER",
    "bounce": "SCHED_ENVELOPE_INJECT",
    "expire": "SCHED_ENVELOPE_EXPIRE",
    "remove": "SCHED_ENVELOPE_REMOVE",
}
_RQ_KEYS = ("update", "message", "envelope", "hold", "holdq")


class SchedulerRole(Role):
    """``scheduler.c:scheduler_imsg()``."""

    name = "scheduler"

    def __init__(self, proc: Process, ports: Ports) -> None:
        super().__init__(proc, ports)
        self.era = self.behaviour.retry
        self.backend = RamQueue(RetryPolicy(self.era))
        self.ninflight = 0
        self.mda_paused = False
        self.mta_paused = False
        self._timer: Any = None
        self.ledger = ports.ledger

    def counters(self) -> dict[str, float]:
        """The ramqueue's gauges: pending, inflight, held... (``smtpctl show queue``)."""
        return dict(self.backend.counts())

    def start_paused(self, agent: str) -> None:
        """``smtpd -P mta|mda`` (``smtpd.c:main()``: SMTPD_MTA_PAUSED / SMTPD_MDA_PAUSED in
        the flags from the start): that agent gets no envelope until resumed."""
        if agent == "mta":
            self.mta_paused = True
        elif agent == "mda":
            self.mda_paused = True
        else:
            raise ValueError(f"pause: no agent {agent!r} (mta or mda)")

    # ---- ramqueue gauges -> stat imsgs in the order scheduler_ramqueue.c sends them --------

    def _rq_stats(self, before: dict[str, int], order: tuple[str, ...] = _RQ_KEYS) -> None:
        after = self.backend.stats()
        for k in order:
            key = f"scheduler.ramqueue.{k}"
            d = after[key] - before[key]
            if d > 0:
                self.stat_increment(key, d)
            elif d < 0:
                self.stat_decrement(key, -d)

    # ---- evtimer --------------------------------------------------------------------------

    def _reset_events(self) -> None:
        """``scheduler.c:scheduler_reset_events()``: evtimer with a 0 timeout."""
        if self._timer is not None:
            cancel(self.proc.env, self._timer)
        self._timer = self.proc.timer(0.0, self._timeout, None, key="scheduler.timeout")

    def _timeout(self, _arg: object) -> None:
        """``scheduler.c:scheduler_timeout()``: the batches of one firing, the stats, and
        the next timer (0 s again, the backend's delay, or sleep)."""
        self._timer = None
        before = self.backend.stats()
        tick = self.backend.timeout(self.now, ninflight=self.ninflight,
                                    mda_paused=self.mda_paused, mta_paused=self.mta_paused)
        self._tick(tick, before)
        if tick.next_timer is not None:
            self._timer = self.proc.timer(tick.next_timer, self._timeout, None, key="scheduler.timeout")

    def _tick(self, tick: Tick, before: dict[str, int]) -> None:
        """The batches of one ``scheduler_timeout()`` firing: dispatch, then the stats."""
        d_inflight = d_envelope = d_expired = d_removed = d_updated = 0
        for batch in tick.batches:
            for evpid, typ in zip(batch.evpids, batch.types, strict=True):
                if typ == "update":
                    d_updated += 1
                    continue
                self.send("queue", _DISPATCH[typ], {"evpid": evpid})
                d_inflight += 1
                if typ in ("expire", "remove"):
                    d_envelope += 1
                    if typ == "expire":
                        d_expired += 1
                    else:
                        d_removed += 1
        self._rq_stats(before)
        self.stat_decrement("scheduler.envelope", d_envelope)
        self.stat_increment("scheduler.envelope.inflight", d_inflight)
        self.stat_increment("scheduler.envelope.expired", d_expired)
        self.stat_increment("scheduler.envelope.removed", d_removed)
        # 5.4.2 scheduler.c:scheduler_process_update(): "scheduler.envelope.update";
        # 5.7.3 / 6.8 scheduler_timeout(): "scheduler.envelope.updated"
        self.stat_increment("scheduler.envelope.update" if self.era == "5.4.2"
                            else "scheduler.envelope.updated", d_updated)
        self.ninflight += d_inflight

    def _info(self, evp: Envelope) -> SchedulerInfo:
        """``scheduler_backend.c:scheduler_info()``."""
        return SchedulerInfo.from_envelope(evp, self.era)

    # ---- imsgs ----------------------------------------------------------------------------

    @handles("QUEUE_ENVELOPE_SUBMIT")
    def on_envelope_submit(self, m: Imsg) -> None:
        """IMSG_QUEUE_ENVELOPE_SUBMIT → ``backend->insert()`` (held until the commit)."""
        before = self.backend.stats()
        self.stat_increment("scheduler.envelope.incoming")
        self.backend.insert(self._info(m.payload["envelope"]), self.now)
        self._rq_stats(before)

    @handles("QUEUE_MESSAGE_COMMIT")
    def on_message_commit(self, m: Imsg) -> None:
        """IMSG_QUEUE_MESSAGE_COMMIT → ``scheduler_ram_commit()``; envelopes become schedulable."""
        before = self.backend.stats()
        n = self.backend.commit(m.payload["msgid"], self.now)
        # rq_queue_merge() drops a duplicate message struct before the update goes away
        self._rq_stats(before, ("message", "update", "envelope", "hold", "holdq"))
        self.stat_decrement("scheduler.envelope.incoming", n)
        self.stat_increment("scheduler.envelope", n)
        self._reset_events()

    @handles("QUEUE_MESSAGE_ROLLBACK")
    def on_message_rollback(self, m: Imsg) -> None:
        """IMSG_QUEUE_MESSAGE_ROLLBACK → ``scheduler_ram_rollback()``."""
        before = self.backend.stats()
        n = self.backend.rollback(m.payload["msgid"], self.now)
        self._rq_stats(before, ("message", "envelope", "update", "hold", "holdq"))
        # scheduler.c IMSG_QUEUE_REMOVE_MESSAGE: stat_decrement(..., n) even when no envelope
        # was held (5.4.2 sends the 0: real reject-rcpt trace, tests/data/real-traces-5.4.2)
        self.stat_decrement("scheduler.envelope.incoming", n, zero=True)
        self._reset_events()

    @handles("QUEUE_DELIVERY_OK", "QUEUE_DELIVERY_PERMFAIL", "QUEUE_DELIVERY_LOOP")
    def on_delivery_done(self, m: Imsg) -> None:
        """IMSG_QUEUE_DELIVERY_OK / _PERMFAIL / _LOOP → ``scheduler_ram_delete()``."""
        before = self.backend.stats()
        self.backend.delete(m.payload["evpid"])
        self._rq_stats(before)
        self.ninflight -= 1
        what = {"QUEUE_DELIVERY_OK": "ok", "QUEUE_DELIVERY_PERMFAIL": "permfail",
                "QUEUE_DELIVERY_LOOP": "loop"}[m.kind]
        self.stat_increment(f"scheduler.delivery.{what}")
        self.stat_decrement("scheduler.envelope.inflight")
        self.stat_decrement("scheduler.envelope")
        self._reset_events()

    @handles("QUEUE_DELIVERY_TEMPFAIL")
    def on_delivery_tempfail(self, m: Imsg) -> None:
        """IMSG_QUEUE_DELIVERY_TEMPFAIL → ``scheduler_ram_update()`` (next try per the era's
        series), then the delay-warning check (``sc_bounce_warn``)."""
        evp: Envelope = m.payload["envelope"]
        info = self._info(evp)
        warning = self.backend.tempfail(info, self.now)
        self.ninflight -= 1
        self.stat_increment("scheduler.delivery.tempfail")
        self.stat_decrement("scheduler.envelope.inflight")
        if warning is not None:
            self.reply(m, "SCHED_ENVELOPE_BOUNCE",
                       {"evpid": warning.evpid, "timestamp": warning.timestamp,
                        "delay": warning.delay, "expire": warning.expire}, length=48)
        self.ledger.next_try(evp.id, info.nexttry)
        self._reset_events()

    @handles("QUEUE_ENVELOPE_ACK")
    def on_envelope_ack(self, m: Imsg) -> None:
        """IMSG_QUEUE_ENVELOPE_ACK (after SCHED_ENVELOPE_REMOVE/EXPIRE): no longer in flight."""
        self.ninflight -= 1
        self.stat_decrement("scheduler.envelope.inflight")
        self._reset_events()

    @handles("QUEUE_ENVELOPE_REMOVE")
    def on_envelope_remove(self, m: Imsg) -> None:
        """IMSG_QUEUE_ENVELOPE_REMOVE: the queue could not load an envelope."""
        self.stat_decrement("scheduler.envelope")
        before = self.backend.stats()
        if m.payload.get("inflight"):
            self.backend.delete(m.payload["evpid"])
            self.ninflight -= 1
            self.stat_decrement("scheduler.envelope.inflight")
        else:
            self.backend.remove(m.payload["evpid"], self.now)
        self._rq_stats(before)
        self._reset_events()

    @handles("QUEUE_HOLDQ_HOLD")
    def on_hold(self, m: Imsg) -> None:
        """IMSG_QUEUE_HOLDQ_HOLD (an agent above its high water) → ``scheduler_ram_hold()``."""
        before = self.backend.stats()
        self.backend.hold(m.payload["evpid"], m.payload["holdq"], self.now)
        self._rq_stats(before)
        self.ninflight -= 1
        self.stat_decrement("scheduler.envelope.inflight")
        self._reset_events()

    @handles("QUEUE_HOLDQ_RELEASE")
    def on_release(self, m: Imsg) -> None:
        """IMSG_QUEUE_HOLDQ_RELEASE → ``scheduler_ram_release()``."""
        before = self.backend.stats()
        self.backend.release(m.payload["type"], m.payload["holdq"], m.payload["n"], self.now)
        self._rq_stats(before)
        self._reset_events()

    @handles("QUEUE_ENVELOPE_SCHEDULE")
    def on_schedule(self, m: Imsg) -> None:
        """IMSG_QUEUE_ENVELOPE_SCHEDULE (mta hoststat) → ``scheduler_ram_schedule()``."""
        self.backend.schedule(m.payload["evpid"], self.now)
        self._reset_events()

    @handles("CTL_SCHEDULE")
    def on_ctl_schedule(self, m: Imsg) -> None:
        """IMSG_CTL_SCHEDULE (``smtpctl schedule all|id``) → ``scheduler_ram_schedule()``."""
        self.backend.schedule(m.payload.get("id"), self.now)
        self.reply(m, "CTL_OK", {}, length=0)
        self._reset_events()

    def pause(self, agent: str) -> None:
        """IMSG_CTL_PAUSE_MDA / _MTA (``smtpctl pause mda|mta``): SMTPD_*_PAUSED."""
        self.proc.post(lambda _a: setattr(self, f"{agent}_paused", True), None, key="scheduler.ctl")

    def resume(self, agent: str) -> None:
        """IMSG_CTL_RESUME_MDA / _MTA: clear the flag, ``scheduler_reset_events()``."""
        def go(_a: object) -> None:
            setattr(self, f"{agent}_paused", False)
            self._reset_events()
        self.proc.post(go, None, key="scheduler.ctl")

    def schedule_all(self) -> None:
        """What ``smtpctl schedule all`` makes happen (used by the world's operator)."""
        def go(_a: object) -> None:
            self.backend.schedule("all", self.now)
            self._reset_events()
        self.proc.post(go, None, key="scheduler.ctl")
