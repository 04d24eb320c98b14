"""The ledger: what happened to every envelope the daemon accepted.

A message is *accepted* when the client received ``250 ... Message accepted``; its
envelopes were committed to the queue just before (the rename in
``queue_fs_message_commit()``). From then on each envelope must end delivered, bounced
(permanent failure, a bounce was generated), expired, or still be in the queue. Anything
else is *lost*, which the model must never produce.
"""

from __future__ import annotations

from typing import Any

TERMINAL = ("delivered", "bounced", "expired", "removed")


class Ledger:
    """Per-envelope states plus counters; cheap enough for million-message runs."""

    def __init__(self) -> None:
        self.state: dict[int, str] = {}  # evpid -> committed | delivered | bounced | ...
        self.msg_envelopes: dict[int, list[int]] = {}  # msgid -> evpids (until accepted)
        self.accepted_msgs = 0
        self.accepted_envelopes = 0
        self.committed_not_acked = 0
        self.counts: dict[str, int] = dict.fromkeys(TERMINAL, 0)
        self.tempfails = 0
        self.duplicated = 0
        self.accept_times: dict[int, float] = {}
        self.delivery_delays: list[float] = []
        self.keep_delays = True

    def committed(self, msgid: int, evpids: list[int], t: float) -> None:
        """The queue renamed the message into /queue: its envelopes are on disk for good."""
        self.msg_envelopes[msgid] = list(evpids)
        for e in evpids:
            self.state[e] = "committed"

    def accepted(self, msgid: int, t: float) -> None:
        """The client was told 250: the daemon now owns the message."""
        evpids = self.msg_envelopes.pop(msgid, [])
        self.accepted_msgs += 1
        self.accepted_envelopes += len(evpids)
        for e in evpids:
            if self.state.get(e) == "committed":
                self.state[e] = "queued"
            self.accept_times[e] = t

    def _terminal(self, evpid: int, what: str, t: float) -> None:
        prev = self.state.get(evpid)
        if prev in TERMINAL:
            self.duplicated += 1
            return
        self.state[evpid] = what
        self.counts[what] += 1
        t0 = self.accept_times.pop(evpid, None)
        if t0 is not None and self.keep_delays and what == "delivered":
            self.delivery_delays.append(t - t0)

    def delivered(self, evpid: int, t: float) -> None:
        self._terminal(evpid, "delivered", t)

    def failed(self, evpid: int, t: float) -> None:
        self._terminal(evpid, "bounced", t)

    def expired(self, evpid: int, t: float) -> None:
        self._terminal(evpid, "expired", t)

    def tempfailed(self, evpid: int, t: float) -> None:
        self.tempfails += 1

    @property
    def in_flight(self) -> int:
        """Envelopes committed or accepted and not yet in a terminal state."""
        return sum(1 for s in self.state.values() if s in ("committed", "queued"))

    def settled(self) -> bool:
        return not any(s in ("committed", "queued") for s in self.state.values())

    def summary(self, queued_on_disk: set[int] | None = None) -> dict[str, Any]:
        """Counts; ``lost`` = accepted envelopes neither terminal nor on disk."""
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
        }
