"""The scheduler (``scheduler.c`` with the ``ramqueue`` backend).

The backend's state machine is pure (``model.fsm.ramqueue``); this role turns its
decisions into imsgs and stats exactly where ``scheduler.c`` and
``scheduler_ramqueue.c`` send them, and re-arms its evtimer like
``scheduler_reset_events()`` / ``scheduler_timeout()``.
"""

from __future__ import annotations

from typing import Any

from model.imsg import Imsg
from model.roles.base import Role, handles

MAX_INFLIGHT = 5000  # sc_scheduler_max_inflight
MAX_SCHEDULE = 10  # sc_scheduler_max_schedule


class _Backend:
    """Stand-in for the ramqueue: per-msgid update queues, pending list, in-flight set."""

    def __init__(self) -> None:
        self.updates: dict[int, list[dict[str, Any]]] = {}
        self.messages: dict[int, int] = {}  # msgid -> envelopes in the ramqueue
        self.pending: list[dict[str, Any]] = []
        self.inflight: dict[int, dict[str, Any]] = {}

    def insert(self, evp: dict[str, Any]) -> tuple[bool, bool]:
        msgid = evp["msgid"]
        new_update = msgid not in self.updates
        self.updates.setdefault(msgid, []).append(evp)
        new_msg = msgid not in self.messages
        self.messages[msgid] = self.messages.get(msgid, 0) + 1
        return new_update, new_msg

    def commit(self, msgid: int) -> int:
        evps = self.updates.pop(msgid, [])
        self.pending.extend(evps)
        return len(evps)

    def rollback(self, msgid: int) -> int:
        evps = self.updates.pop(msgid, [])
        if evps:
            self.messages[msgid] -= len(evps)
            if self.messages[msgid] <= 0:
                del self.messages[msgid]
        return len(evps)

    def batch(self, mask: set[str], now: float) -> tuple[str | None, list[int], float | None]:
        for typ in ("bounce", "mda", "mta"):
            if typ not in mask:
                continue
            due = [e for e in self.pending if e["type"] == typ and e.get("sched", 0.0) <= now][:MAX_SCHEDULE]
            if due:
                for e in due:
                    self.pending.remove(e)
                    self.inflight[e["id"]] = e
                return typ, [e["id"] for e in due], None
        if not self.pending:
            return None, [], None
        return None, [], max(0.0, min(e.get("sched", 0.0) for e in self.pending) - now)

    def delete(self, evpid: int) -> bool:
        """Returns True when this was the message's last envelope."""
        e = self.inflight.pop(evpid)
        msgid = e["msgid"]
        self.messages[msgid] -= 1
        if self.messages[msgid] == 0:
            del self.messages[msgid]
            return True
        return False

    def update(self, evp: dict[str, Any], sched: float) -> None:
        self.inflight.pop(evp["id"], None)
        evp["sched"] = sched
        self.pending.append(evp)


def compute_schedule(era: str, evp: dict[str, Any], now: float) -> float:
    """``scheduler_backend.c:scheduler_compute_schedule()`` and the loop of
    ``scheduler_ram_update()``: the next point of the era's series after ``now``."""
    mta = evp["type"] == "mta"
    retry = evp.get("retry", 0)
    while True:
        if era == "5.4.2":
            base = 800 if mta else 10
            delay = (base * retry * retry) // 2
        else:  # observed on 6.8 (real-daemon.md §7): creation + base·n², 400 s / 10 s
            base = 400 if mta else 10
            delay = base * retry * retry
        sched = evp["creation"] + delay
        if sched > now:
            return sched
        retry += 1


class SchedulerRole(Role):
    """``scheduler.c:scheduler_imsg()``."""

    name = "scheduler"

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.backend = _Backend()
        self.ninflight = 0
        self._armed = False
        self._timer: Any = None

    # ---- evtimer --------------------------------------------------------------------------

    def _reset_events(self) -> None:
        """``scheduler.c:scheduler_reset_events()``: evtimer with a 0 timeout."""
        if self._timer is not None:
            self._timer.cancelled = True
        self._timer = self.proc.timer(0.0, self._timeout, None, key="scheduler.timeout")

    def _timeout(self, _arg: object) -> None:
        """``scheduler.c:scheduler_timeout()``: one batch, then re-arm (0 s) or sleep."""
        self._timer = None
        mask = set()
        if self.ninflight < MAX_INFLIGHT:
            mask = {"expire", "remove", "bounce", "mda", "mta"}
        typ, evpids, delay = self.backend.batch(mask, self.now)
        if typ is None:
            if delay is not None:
                self._timer = self.proc.timer(delay, self._timeout, None, key="scheduler.timeout")
            return
        kind = {"mda": "SCHED_ENVELOPE_DELIVER", "mta": "SCHED_ENVELOPE_TRANSFER",
                "bounce": "SCHED_ENVELOPE_INJECT"}[typ]
        for evpid in evpids:
            self.send("queue", kind, {"evpid": evpid})
        self.ninflight += len(evpids)
        self.stat_increment("scheduler.envelope.inflight", len(evpids))
        self._timer = self.proc.timer(0.0, self._timeout, None, key="scheduler.timeout")

    # ---- imsgs ----------------------------------------------------------------------------

    @handles("QUEUE_ENVELOPE_SUBMIT")
    def on_envelope_submit(self, m: Imsg) -> None:
        """IMSG_QUEUE_ENVELOPE_SUBMIT → ``backend->insert()`` (``scheduler_ram_insert()``)."""
        evp = dict(m.payload["envelope"])
        evp["sched"] = compute_schedule(self.behaviour.retry, evp, evp["creation"] - 1)
        self.stat_increment("scheduler.envelope.incoming")
        new_update, new_msg = self.backend.insert(evp)
        if new_update:
            self.stat_increment("scheduler.ramqueue.update")
        if new_msg:
            self.stat_increment("scheduler.ramqueue.message")
        self.stat_increment("scheduler.ramqueue.envelope")

    @handles("QUEUE_MESSAGE_COMMIT")
    def on_message_commit(self, m: Imsg) -> None:
        """IMSG_QUEUE_MESSAGE_COMMIT → ``scheduler_ram_commit()``; envelopes become schedulable."""
        n = self.backend.commit(m.payload["msgid"])
        if n:
            self.stat_decrement("scheduler.ramqueue.update")
        self.stat_decrement("scheduler.envelope.incoming", n) if n else None
        self.stat_increment("scheduler.envelope", n) if n else None
        self._reset_events()

    @handles("QUEUE_MESSAGE_ROLLBACK")
    def on_message_rollback(self, m: Imsg) -> None:
        """IMSG_QUEUE_MESSAGE_ROLLBACK → ``scheduler_ram_rollback()``."""
        n = self.backend.rollback(m.payload["msgid"])
        if n:
            self.stat_decrement("scheduler.ramqueue.update")
            self.stat_decrement("scheduler.ramqueue.envelope", n)
            self.stat_decrement("scheduler.envelope.incoming", n)
        self._reset_events()

    @handles("QUEUE_DELIVERY_OK", "QUEUE_DELIVERY_PERMFAIL", "QUEUE_DELIVERY_LOOP")
    def on_delivery_done(self, m: Imsg) -> None:
        """IMSG_QUEUE_DELIVERY_OK / _PERMFAIL / _LOOP → ``scheduler_ram_delete()``."""
        if self.backend.delete(m.payload["evpid"]):
            self.stat_decrement("scheduler.ramqueue.message")
        self.stat_decrement("scheduler.ramqueue.envelope")
        self.ninflight -= 1
        what = {"QUEUE_DELIVERY_OK": "ok", "QUEUE_DELIVERY_PERMFAIL": "permfail",
                "QUEUE_DELIVERY_LOOP": "loop"}[m.kind]
        self.stat_increment(f"scheduler.delivery.{what}")
        self.stat_decrement("scheduler.envelope.inflight")
        self.stat_decrement("scheduler.envelope")
        self._reset_events()

    @handles("QUEUE_DELIVERY_TEMPFAIL")
    def on_delivery_tempfail(self, m: Imsg) -> None:
        """IMSG_QUEUE_DELIVERY_TEMPFAIL → ``scheduler_ram_update()``: next try per the era."""
        evp = dict(m.payload["envelope"])
        self.backend.update(evp, compute_schedule(self.behaviour.retry, evp, self.now))
        self.ninflight -= 1
        self.stat_increment("scheduler.delivery.tempfail")
        self.stat_decrement("scheduler.envelope.inflight")
        self._reset_events()
