"""The ledger: what happened to every envelope the daemon accepted.

A message is *accepted* when the client received ``250 ... Message accepted``; its
envelopes were committed to the queue just before (the rename in
``queue_fs_message_commit()``). From then on each envelope must end delivered, bounced
(permanent failure, a bounce was generated), expired, or still be in the queue. Anything
else is *lost*, which the model must never produce.

Exactly once: the world sees a delivery (a mailbox written, the remote MX's 250) before the
queue removes the envelope (``queue.c``: ``queue_envelope_delete()`` on
IMSG_MDA_DELIVERY_OK / IMSG_MTA_DELIVERY_OK). A crash between the two leaves the envelope
in /queue and the restarted daemon delivers it again, as the real one does: that is
``redelivered_after_crash``. A second delivery made by the same incarnation of the daemon
is ``duplicated``, which the model must never produce.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from smtpd_sim.observe.sketch import Sketch

TERMINAL = ("delivered", "bounced", "expired", "removed")
OPEN = ("committed", "queued")  # on its way: neither terminal nor forgotten


class Ledger:
    """Per-envelope states of what is on its way, plus counters: an envelope is forgotten
    once settled, so with ``keep_delays`` off (a streaming run) memory follows what is in
    flight, not what has passed."""

    def __init__(self) -> None:
        self.state: dict[int, str] = {}  # evpid -> committed | queued (settled ones are forgotten)
        self.open = 0  # envelopes whose state is in OPEN (kept so settled() is O(1))
        self.msg_envelopes: dict[int, list[int]] = {}  # msgid -> evpids (until accepted)
        self.accepted_msgs = 0
        self.accepted_envelopes = 0
        self.committed_not_acked = 0
        self.counts: dict[str, int] = dict.fromkeys(TERMINAL, 0)
        self.tempfails = 0
        self.duplicated = 0  # a second world delivery by the same incarnation: a model bug
        self.redelivered_after_crash = 0  # delivered, the daemon died before the removal
        self.epoch = 0  # the daemon's incarnation: each crash starts the next (crashed())
        self.accept_times: dict[int, tuple[float, int]] = {}  # evpid -> (accepted at, msgid)
        # messages whose every envelope was delivered by ``window_end`` (the end of the
        # arrivals, for delivered throughput), counted as their last envelope settles
        self.window_end = float("inf")
        self.delivered_in_window = 0
        self._msg_left: dict[int, list[Any]] = {}  # msgid -> [envelopes on their way, all ok so far]
        self.delivery_delays: list[float] | Sketch = []
        self.keep_delays = True  # per-envelope history: records, retries, warning times
        self.bounces_created = 0
        self.bounces_sent = 0
        self.bounces_failed = 0
        self.bounce_state: dict[int, str] = {}
        self.internal_msgs = 0
        self.unacked_settled = 0
        self.warnings = 0
        # evpid -> the newest incarnation that handed it to the world, until the queue
        # removes it (a repeat after that is impossible: the envelope file is gone)
        self.world_deliveries: dict[int, int] = {}
        # evpid -> delivery agents of dead incarnations still writing its mailbox, and those
        # of them whose envelope the restarted daemon settled meanwhile (see crashed())
        self.orphans: dict[int, int] = {}
        self._orphans_settled: set[int] = set()
        # every world delivery as (evpid, incarnation), never forgotten: only when a caller
        # sets a list here (an audit of the counts above, e.g. by the fault tests)
        self.audit: list[tuple[int, int]] | None = None
        # per accepted envelope: [msgid, accepted at, state, ended at, tempfails]
        self.records: dict[int, list[Any]] = {}
        self.retries: list[tuple[int, float]] = []
        self.warning_times: list[tuple[int, float]] = []
        # for the per-message table, kept only with keep_delays: msgid -> (smtp session id,
        # size in bytes) as smtp sent IMSG_SMTP_MESSAGE_COMMIT (message_sent()), and a
        # bounce envelope's evpid -> (result, time) of bounce_finished()
        self.message_facts: dict[int, tuple[int, int]] = {}
        self.bounce_results: dict[int, tuple[str, float]] = {}

    def committed(self, msgid: int, evpids: list[int], t: float) -> None:
        """The queue renamed the message into /queue: its envelopes are on disk for good."""
        self.msg_envelopes[msgid] = list(evpids)
        for e in evpids:
            if self.state.get(e) not in OPEN:
                self.open += 1
            self.state[e] = "committed"

    def accepted(self, msgid: int, t: float, *, internal: bool = False) -> None:
        """The client was told 250: the daemon now owns the message. ``internal``: the
        client was the queue's own bounce session (a bounce message, counted apart)."""
        evpids = self.msg_envelopes.pop(msgid, [])
        if internal:
            # a bounce the queue re-injected: the daemon's own mail, accounted for by the
            # bounce counters, not as a client's message
            self.internal_msgs += 1
            for e in evpids:
                if self.state.pop(e, None) in OPEN:
                    self.open -= 1
        else:
            self.accepted_msgs += 1
            self.accepted_envelopes += len(evpids)
            if self.keep_delays:
                for e in evpids:
                    self.records[e] = [msgid, t, "queued", None, 0]
        left, ok = 0, True
        for e in evpids:
            if self.state.get(e) == "committed":
                self.state[e] = "queued"
                if not internal:
                    self.accept_times[e] = (t, msgid)  # read once, when it settles
                    left += 1
            else:
                ok = False  # settled before the 250: not a delivered message
        if left:
            self._msg_left[msgid] = [left, ok]

    def _terminal(self, evpid: int, what: str, t: float) -> None:
        # the queue deletes the envelope file at this instant: no redelivery can follow, so
        # the duplicate count no longer needs it (unless an orphan agent is still writing)
        if evpid in self.orphans:
            self._orphans_settled.add(evpid)
        else:
            self.world_deliveries.pop(evpid, None)
        prev = self.state.pop(evpid, None)
        if prev is None:
            return  # internal mail, or already settled
        self.open -= 1  # prev is committed or queued
        if prev == "committed":
            # committed but the client never saw the 250 (it vanished or the daemon died):
            # SMTP's at-least-once — the client will send it again; counted apart
            self.unacked_settled += 1
            return
        self.counts[what] += 1
        rec = self.records.get(evpid)
        if rec is not None:
            rec[2], rec[3] = what, t
        acc = self.accept_times.pop(evpid, None)
        if acc is None:
            return
        t0, msgid = acc
        ok = what == "delivered"
        if ok:
            self.delivery_delays.append(t - t0)
        msg = self._msg_left[msgid]
        msg[0] -= 1
        msg[1] = msg[1] and ok and t <= self.window_end
        if not msg[0]:
            del self._msg_left[msgid]
            if msg[1]:
                self.delivered_in_window += 1

    def delivered(self, evpid: int, t: float) -> None:
        self._terminal(evpid, "delivered", t)

    def failed(self, evpid: int, t: float) -> None:
        self._terminal(evpid, "bounced", t)

    def expired(self, evpid: int, t: float) -> None:
        self._terminal(evpid, "expired", t)

    def tempfailed(self, evpid: int, t: float) -> None:
        self.tempfails += 1
        rec = self.records.get(evpid)
        if rec is not None:
            rec[4] += 1

    def world_delivery(self, evpid: int, epoch: int | None = None) -> None:
        """A mailbox was written or the remote MX said 250: delivered as the world sees it.
        ``epoch``: the incarnation that handed it over (default: the running one; a local
        delivery is that of the parent which forked the agent). A repeat by another
        incarnation followed a crash between a delivery and the removal of the envelope
        (``redelivered_after_crash``); a repeat by the same one is ``duplicated``."""
        e = self.epoch if epoch is None else epoch
        if self.audit is not None:
            self.audit.append((evpid, e))
        prev = self.world_deliveries.get(evpid)
        if prev is None:
            self.world_deliveries[evpid] = e
        else:
            if prev == e:
                self.duplicated += 1
            else:
                self.redelivered_after_crash += 1
            self.world_deliveries[evpid] = max(prev, e)
        if e < self.epoch and evpid in self.orphans:
            # the agent of a dead daemon has written the mailbox: nothing more will come of it
            n = self.orphans[evpid] - 1
            if n:
                self.orphans[evpid] = n
            else:
                del self.orphans[evpid]
                if evpid in self._orphans_settled:
                    self._orphans_settled.discard(evpid)
                    self.world_deliveries.pop(evpid, None)

    def crashed(self, orphans: Iterable[int]) -> None:
        """The daemon died: the next deliveries are the next incarnation's. ``orphans``: the
        envelopes whose delivery agent outlives it (``forkmda()``'s child has read the whole
        message; nothing kills it when the parent exits) and will still write the mailbox,
        perhaps after the restarted daemon delivered and removed the envelope."""
        self.epoch += 1
        for evpid in orphans:
            self.orphans[evpid] = self.orphans.get(evpid, 0) + 1

    def removed(self, evpid: int, t: float) -> None:
        self._terminal(evpid, "removed", t)

    def next_try(self, evpid: int, when: float) -> None:
        """The scheduler's next attempt for a tempfailed envelope (for retry plots/tests)."""
        if self.keep_delays:
            self.retries.append((evpid, when))

    def warned(self, evpid: int, t: float) -> None:
        """A delay warning was generated for this envelope."""
        self.warnings += 1
        if self.keep_delays:
            self.warning_times.append((evpid, t))

    def message_sent(self, msgid: int, session: int, size: int) -> None:
        """A client's message went to the queue for commit (``smtp_tx_commit()``): which
        smtp session carried it and its size, for the per-message table only."""
        if self.keep_delays:
            self.message_facts[msgid] = (session, size)

    def bounce_created(self, evpid: int, t: float) -> None:
        """queue_bounce() wrote a bounce envelope (internal mail, not a client's)."""
        self.bounces_created += 1
        self.bounce_state[evpid] = "pending"

    def bounce_finished(self, evpid: int, result: str, t: float) -> None:
        """The bounce was accepted by the smtp session (ok) or refused (a double bounce
        is then dropped, as ``queue_bounce()`` does)."""
        self.bounce_state.pop(evpid, None)
        if self.keep_delays:
            self.bounce_results[evpid] = (result, t)
        if result == "ok":
            self.bounces_sent += 1
        else:
            self.bounces_failed += 1

    @property
    def in_flight(self) -> int:
        """Envelopes committed or accepted and not yet in a terminal state."""
        return self.open

    def settled(self) -> bool:
        """Nothing accepted is still on its way, and no bounce is pending."""
        return not self.bounce_state and not self.open

    def in_queue(self) -> set[int]:
        """Envelopes accepted (or committed) and not settled."""
        return {e for e, s in self.state.items() if s in OPEN}

    def summary(self, queued_on_disk: set[int] | None = None, *, crashes: bool = False) -> dict[str, Any]:
        """Counts; ``lost`` = accepted envelopes neither terminal nor on disk. ``crashes``:
        the run could crash the daemon, so ``redelivered_after_crash`` is reported too (a
        run without crash faults reports what it always did)."""
        queued = 0
        lost = 0
        for e, s in self.state.items():
            if s == "queued":
                if queued_on_disk is None or e in queued_on_disk:
                    queued += 1
                else:
                    lost += 1
        return {
            "accepted": self.accepted_envelopes,
            "accepted_messages": self.accepted_msgs,
            "delivered": self.counts["delivered"],
            "bounced": self.counts["bounced"],
            "expired": self.counts["expired"],
            "queued": queued,
            "lost": lost,
            "duplicated": self.duplicated,
            **({"redelivered_after_crash": self.redelivered_after_crash} if crashes else {}),
        }
