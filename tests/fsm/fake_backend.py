"""A fake of the processes behind the SMTP server session, for tests only.

:class:`FakeBackend` answers the requests of a :class:`~smtpd_sim.fsm.smtp_session.SmtpSession`
the way the real 6.8.0p2 daemon did with the research site configuration
(``research/real-daemon.md`` §2):

* queue: message creation, envelopes, open and commit always succeed; message ids are
  8 hex digits (``queue_fs.c``: random 32-bit ids), drawn from a seeded generator;
* lka (``lka_session.c:lka_expand()``): ``match for domain "local.test" action "local"``
  with the system users alice, bob, carol and dave (the user part is lowercased and the
  ``+tag`` sub-address stripped before ``getpwnam()``), ``match for domain "relay.test"
  action "relay"`` (and the relays added for issue 17: dsn.test, mx.test, tls1.test,
  tls2.test), anything else matches no rule → LKA_PERMFAIL with lka's default line
  ``"550 Invalid recipient"`` (the session appends ``": <user@domain>"``); erin and frank
  forward to each other, an expansion that ends at EXPAND_DEPTH with
  ``"524 5.2.4 Mailing list expansion problem"`` (the forward-loop scenario);
* STARTTLS: the handshake fails (OpenSSL 3 and the privsep key engine, §6) unless
  ``tls_ok``; when ``answer_tls`` is False the StartTls request is left unanswered so
  a dialog can deliver the failure when its timeline says so;
* AUTH: no credentials table, every attempt fails (``auth``);
* filters: every query proceeds (``filter_reject``: these phases are rejected).

:meth:`FakeBackend.drive` runs a list of actions to completion: every request gets its
answers fed back with :meth:`SmtpSession.handle`, and the actions those produce are
processed in turn.  It records what crossed (requests, events, msgids) for assertions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from smtpd_sim.fsm.smtp_session import (
    Authenticate,
    AuthResult,
    CommitMessage,
    CreateMessage,
    Disconnect,
    EnvelopeSubmitted,
    ExpandRcpt,
    FilterQuery,
    FilterResult,
    MessageCommitted,
    MessageCreated,
    MessageOpened,
    OpenMessage,
    RcptResult,
    Reply,
    RollbackMessage,
    SmtpSession,
    StartTls,
    TlsResult,
)

LOCAL_DOMAIN = "local.test"
RELAY_DOMAIN = "relay.test"
RELAY_DOMAINS = frozenset({RELAY_DOMAIN, "dsn.test", "mx.test", "tls1.test", "tls2.test"})
LOCAL_USERS = frozenset({"alice", "bob", "carol", "dave"})
FORWARD_LOOP_USERS = frozenset({"erin", "frank"})  # each one's ~/.forward names the other


def site_expand(rcpt: str) -> str:
    """The research site's ruleset + userbase: "ok", "permfail" or "loop" for an address."""
    user, _, domain = rcpt.rpartition("@")
    domain = domain.lower()
    if domain == LOCAL_DOMAIN:
        local = user.lower().split("+", 1)[0]
        if local in FORWARD_LOOP_USERS:
            return "loop"
        return "ok" if local in LOCAL_USERS else "permfail"
    if domain in RELAY_DOMAINS:
        return "ok"
    return "permfail"


@dataclass
class FakeBackend:
    seed: int = 1
    tls_ok: bool = False
    answer_tls: bool = True
    auth: str = "permfail"
    filter_decision: str = "proceed"
    filter_reject: frozenset[str] = frozenset()  # phases answered "reject" instead
    rng: random.Random = field(init=False)
    created: list[int] = field(default_factory=list)
    committed: list[int] = field(default_factory=list)
    rolled_back: list[int] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    bodies: dict[int, bytes] = field(default_factory=dict)
    expanded: list[ExpandRcpt] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def answers(self, action: Any) -> list[Any]:
        """The events the daemon's other processes send back for one request."""
        if isinstance(action, FilterQuery):
            if action.phase in self.filter_reject:
                return [FilterResult("reject")]
            return [FilterResult(self.filter_decision)]
        if isinstance(action, CreateMessage):
            msgid = self.rng.getrandbits(32) or 1
            self.created.append(msgid)
            return [MessageCreated(True, msgid)]
        if isinstance(action, ExpandRcpt):
            self.expanded.append(action)
            result = site_expand(action.rcpt)
            if result == "ok":
                return [EnvelopeSubmitted(True, self.rng.getrandbits(64)), RcptResult("ok")]
            if result == "loop":
                return [RcptResult("permfail", "524 5.2.4 Mailing list expansion problem")]
            return [RcptResult("permfail", "550 Invalid recipient")]
        if isinstance(action, OpenMessage):
            return [MessageOpened(True)]
        if isinstance(action, CommitMessage):
            self.committed.append(action.msgid)
            if action.body is not None:
                self.bodies[action.msgid] = action.body
            return [MessageCommitted(True)]
        if isinstance(action, StartTls):
            return [TlsResult(self.tls_ok)] if self.answer_tls else []
        if isinstance(action, Authenticate):
            return [AuthResult(self.auth)]
        return []

    def drive(self, session: SmtpSession, actions: list[Any]) -> list[Any]:
        """Process ``actions`` (answering requests recursively); all actions, in order."""
        done: list[Any] = []
        todo = list(actions)
        while todo:
            a = todo.pop(0)
            done.append(a)
            if isinstance(a, RollbackMessage):
                self.rolled_back.append(a.msgid)
            evs = self.answers(a)
            if evs:
                self.requests.append(a)
            more: list[Any] = []
            for ev in evs:
                self.events.append(ev)
                more.extend(session.handle(ev))
            todo[0:0] = more
        return done


def replies(actions: list[Any]) -> list[str]:
    return [a.text for a in actions if isinstance(a, Reply)]


def disconnected(actions: list[Any]) -> bool:
    return any(isinstance(a, Disconnect) for a in actions)
