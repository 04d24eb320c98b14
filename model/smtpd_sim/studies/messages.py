"""The per-message table of a run (``messages.csv``): what happened to each envelope, and
enough about it to answer "why was this message slow".

The ledger (``smtpd_sim.observe.ledger``) keeps, per envelope a client got a 250 for,
when it was accepted, how it ended, when, and its tempfails; and per message the smtp
session and size (``Ledger.message_sent()``). What the queue knows about each envelope
(local or relay, the destination, its first delivery attempt, the last error) is heard
on the queue's file hooks (``roles.ports.Hooks``: the envelope files' commit, update and
delete) by :class:`EnvelopeLog`, which only listens: the run is the same with or without it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from smtpd_sim.fsm.envelope import D_BOUNCE, D_MDA, D_MTA, Envelope
from smtpd_sim.observe.ledger import Ledger
from smtpd_sim.roles.ports import Hooks

# the ledger's record of an accepted envelope, in this order (Ledger.records)
LEDGER_COLUMNS = ("evpid", "msgid", "accepted_at", "state", "ended_at", "tempfails")
# what this module adds; the first six columns keep their place
EXTRA_COLUMNS = ("kind", "domain", "size", "recipients", "session", "queue_wait_s", "attempts",
                 "last_error")
MESSAGE_COLUMNS = LEDGER_COLUMNS + EXTRA_COLUMNS

KINDS = {D_MDA: "local", D_MTA: "relay", D_BOUNCE: "bounce"}
# bounce_finished() results as a bounce row's state: the daemon's own smtp session took the
# bounce (bounce.c, 250), refused it (a double bounce, dropped), or it expired
BOUNCE_STATES = {"ok": "sent", "expired": "expired"}
# states that end with a delivery attempt (an agent's answer); expired/removed ones do not
ATTEMPTED = ("delivered", "bounced", "sent", "refused")


def domain_of(address: str) -> str:
    """``user@domain`` → ``domain`` ("" for the null sender or a bare name)."""
    return address.rpartition("@")[2] if "@" in address else ""


class _Facts:
    """What the log knows about one envelope."""

    __slots__ = ("kind", "domain", "recipients", "created", "first_try", "retry", "error")

    def __init__(self, kind: str, domain: str, recipients: int | None, created: float) -> None:
        self.kind, self.domain, self.recipients, self.created = kind, domain, recipients, created
        self.first_try: float | None = None
        self.retry = 0
        self.error = ""

    def saw(self, evp: Envelope) -> None:
        if self.first_try is None and evp.lasttry > 0:
            self.first_try = evp.lasttry  # set when the queue handed it to mda/mta (queue.c)
        self.retry = max(self.retry, evp.retry)
        if evp.errorline:
            self.error = evp.errorline


class EnvelopeLog:
    """Per-envelope facts heard on the queue's hooks (``queue_fs_message_commit()``,
    ``queue_fs_envelope_update()``, ``queue_fs_envelope_delete()``), chained after any
    listener already there (a live server's store). Keeps one small record per envelope
    the run accepted: install it only on runs that keep per-message history.

    Envelope objects are read while the queue holds them; after a daemon restart the queue
    holds copies read back from disk, which the log meets again at their next update: a
    first attempt made by a restarted daemon on an envelope never updated since is not
    seen (its ``queue_wait_s`` is left empty)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.facts: dict[int, _Facts] = {}
        self._held: dict[int, Envelope] = {}  # evpid -> the queue's envelope, until deleted

    def install(self, hooks: Hooks) -> EnvelopeLog:
        """Listen on ``hooks`` (keeping whoever listened before)."""
        committed, written, deleted = hooks.committed, hooks.envelope_written, hooks.envelope_deleted

        def on_committed(msgid: int, envelopes: list[Envelope], body: bytes) -> bool:
            ok = committed(msgid, envelopes, body) if committed is not None else True
            if ok:
                self.committed(envelopes)
            return ok

        def on_written(evp: Envelope) -> None:
            if written is not None:
                written(evp)
            self.written(evp)

        def on_deleted(evpid: int) -> None:
            if deleted is not None:
                deleted(evpid)
            self.deleted(evpid)

        hooks.committed, hooks.envelope_written, hooks.envelope_deleted = on_committed, on_written, on_deleted
        return self

    def committed(self, envelopes: list[Envelope]) -> None:
        """A message reached /queue: one record per envelope (recipient)."""
        for e in envelopes:
            f = _Facts(KINDS.get(e.type, e.type), domain_of(e.dest or e.rcpt), len(envelopes), e.creation)
            f.saw(e)
            self.facts[e.id] = f
            self._held[e.id] = e

    def written(self, evp: Envelope) -> None:
        """An envelope file was rewritten (a tempfail, a warning) or created in a committed
        message (a bounce envelope, ``queue_bounce()``)."""
        f = self.facts.get(evp.id)
        if f is None:
            if evp.type != D_BOUNCE:
                return
            # the bounce goes back to the original sender
            f = self.facts[evp.id] = _Facts("bounce", domain_of(evp.sender), None, evp.creation)
        f.saw(evp)
        self._held[evp.id] = evp  # after a restart: the copy the queue now holds

    def deleted(self, evpid: int) -> None:
        """The envelope file was unlinked: its last attempt and error are final."""
        evp = self._held.pop(evpid, None)
        f = self.facts.get(evpid)
        if evp is not None and f is not None:
            f.saw(evp)

    def settle_view(self) -> None:
        """Read the envelopes still in the queue (the run's end) once more."""
        for evpid, evp in self._held.items():
            f = self.facts.get(evpid)
            if f is not None:
                f.saw(evp)


def messages_table(records: dict[int, list[Any]] | None, log: EnvelopeLog | None = None) -> pd.DataFrame:
    """One row per envelope a client got a 250 for, then one per bounce envelope the queue
    created (``kind`` bounce, with ``msgid`` the bounced message's); columns
    :data:`MESSAGE_COLUMNS`, the first six as the ledger keeps them.

    - ``kind``: local (mda), relay (mta) or bounce; ``domain``: the destination's domain
      (after alias expansion; a bounce's: the original sender's)
    - ``size`` (bytes, as smtp committed it), ``recipients`` (envelopes of the message)
      and ``session`` (the smtp session id, in hex as smtpd logs it, like ``evpid``):
      empty for bounce
      rows, whose message bounce.c composes later in a session of its own
    - ``queue_wait_s``: from the 250 (a bounce: its creation) to the first delivery
      attempt (the queue's ``lasttry``); empty when there was none (expired, still
      queued), when it was not seen (see :class:`EnvelopeLog`), and for bounce rows
      (bounce.c's session sets no ``lasttry``)
    - ``attempts``: tempfails, plus the attempt that ended it for delivered / bounced
      envelopes (and sent / refused bounces); ``last_error``: the envelope's last error
      line ("" when none)
    - a bounce row's ``state``: sent (the daemon's own smtp session took it), refused
      (a double bounce, dropped), expired, or queued; its ``tempfails`` are its retries

    Without a log (or for a streaming run, which keeps no records) the added columns are
    empty; a streaming run's table has no rows."""
    facts = log.facts if log is not None else {}
    if log is not None:
        log.settle_view()
    sent = log.ledger.message_facts if log is not None else {}
    rows: list[tuple[Any, ...]] = []
    for evpid, (msgid, accepted_at, state, ended_at, tempfails) in (records or {}).items():
        f = facts.get(evpid)
        session, size = sent.get(msgid, (None, None))
        attempts = tempfails + (1 if state in ATTEMPTED else 0)
        wait = f.first_try - accepted_at if f is not None and f.first_try is not None else None
        rows.append((evpid, msgid, accepted_at, state, ended_at, tempfails,
                     f.kind if f else None, f.domain if f else None, size, f.recipients if f else None,
                     None if session is None else f"{session:016x}", wait, attempts, f.error if f else None))
    results = log.ledger.bounce_results if log is not None else {}
    for evpid, f in facts.items():
        if f.kind != "bounce":
            continue
        result, ended_at = results.get(evpid, ("queued", None))
        state = BOUNCE_STATES.get(result, "refused" if result != "queued" else "queued")
        attempts = f.retry + (1 if state in ATTEMPTED else 0)
        wait = f.first_try - f.created if f.first_try is not None else None
        rows.append((evpid, evpid >> 32, f.created, state, ended_at, f.retry, "bounce", f.domain,
                     None, None, None, wait, attempts, f.error))
    msgs = pd.DataFrame.from_records(rows, columns=list(MESSAGE_COLUMNS))
    msgs["evpid"] = msgs["evpid"].map(lambda x: f"{x:016x}")
    msgs["msgid"] = msgs["msgid"].map(lambda x: f"{x:08x}")
    for col in ("size", "recipients", "attempts"):
        msgs[col] = msgs[col].astype("Int64")  # whole numbers, empty where unknown
    return msgs


def install_log(ledger: Ledger, hooks: Hooks) -> EnvelopeLog:
    """An :class:`EnvelopeLog` listening on a simulation's hooks."""
    return EnvelopeLog(ledger).install(hooks)


__all__ = ["EXTRA_COLUMNS", "LEDGER_COLUMNS", "MESSAGE_COLUMNS", "EnvelopeLog", "domain_of", "install_log",
           "messages_table"]
