"""The SMTP server session (``smtp_session.c``) as a pure, sans-IO state machine.

One session is one ``struct smtp_session``: the caller (the simulator's smtp role, the
live asyncio server, a test) makes it with :func:`new_session`, feeds it what the client
wrote and the answers of the other processes, and executes the actions it returns, in
order.  It never reads a clock, a socket or a random source.

The module is the session's front door; the code is split where the C splits it:

* :mod:`~smtpd_sim.fsm.smtp_session_common` — :class:`SmtpSession`, what the three
  releases' ``smtp_session.c`` share, and :class:`SessionConfig`;
* :mod:`~smtpd_sim.fsm.smtp_session_68` — ``"6.8"``: OpenSMTPD 6.8.0p2
  (``usr.sbin/smtpd/smtp_session.c`` 1.428), checked reply for reply against the real
  daemon; ``smtp_filter_phase()`` / ``smtp_proceed_*()``, the ``rfc5322.c`` parser;
* :mod:`~smtpd_sim.fsm.smtp_session_5` — ``"5.4.2"`` (the MFA process at every phase)
  and ``"5.7.3"`` (pony: in-process filters, the ``rfc2822.c`` parser), the phases and
  kick counters of 5.x;
* :mod:`~smtpd_sim.fsm.rfc5322` / :mod:`~smtpd_sim.fsm.rfc2822` — the header parsers;
  :mod:`~smtpd_sim.fsm.address` — ``to.c`` / ``util.c`` address and name checks;
  :mod:`~smtpd_sim.fsm.smtp_events` — the actions and events below.

:func:`new_session` picks the release class from ``SessionConfig.variant``.

Actions returned (lists, in order): :class:`Reply`, :class:`Disconnect`,
:class:`FilterQuery`, :class:`FilterEvent`, :class:`CreateMessage`, :class:`ExpandRcpt`,
:class:`OpenMessage`, :class:`CommitMessage`, :class:`RollbackMessage`, :class:`StartTls`,
:class:`Authenticate`.  Events for :meth:`SmtpSession.handle`: :class:`FilterResult`,
:class:`MessageCreated`, :class:`EnvelopeSubmitted`, :class:`RcptResult`,
:class:`MessageOpened`, :class:`MessageCommitted`, :class:`TlsResult`, :class:`AuthResult`.

Reading model (what makes pipelining detection behave like the daemon): :meth:`feed` is
one ``write()`` of the client; the bytes land in the kernel socket buffer and the session
reads from it only when the C would (``io_set_read()`` after the last reply drained:
never while a request is outstanding, in STATE_TLS or after QUIT).  Each read takes at
most what fits in the session's ``iobuf`` (64 KiB at 6.8, ``LINE_MAX`` = 2048 bytes at
5.x) and then runs ``smtp_io()`` IO_DATAIN on it; a command line followed by more
buffered bytes is pipelining (``500 5.5.1 ... Pipelining not supported`` + disconnect).

Invariants (checked by the hypothesis tests):

* after an action list containing :class:`Disconnect` (always its last element) the
  session is :attr:`closed` and every later :meth:`feed` returns ``[]``;
* :attr:`waiting` ⇔ exactly one request (:class:`FilterQuery`, :class:`CreateMessage`,
  :class:`ExpandRcpt`, :class:`OpenMessage`, :class:`CommitMessage`, :class:`StartTls`,
  :class:`Authenticate`) is unanswered; an action list holds at most one request and it
  is its last element;
* outside waits, ``phase == "PHASE_TRANSACTION"`` ⇔ ``msgid != 0`` (6.8, 5.4.2; 5.7.3
  only ⇐, see the C bugs below);
* every msgid obtained through :class:`MessageCreated` is eventually committed
  (:class:`CommitMessage` then :class:`MessageCommitted`) or rolled back
  (:class:`RollbackMessage`), once — except where the C does not: a failed 6.8 commit
  (``smtp_tx_free()`` only, the queue owns the failure) and the 5.7.3 HELO inside a
  transaction (``smtp_message_reset()`` drops it); after a refused 5.7.3 message the
  phase stays PHASE_TRANSACTION with msgid 0 (``smtp_data_io_done()``), so RCPT / DATA
  / "." can then emit requests for msgid 0 that the real queue would fail;
* ``rcptcount <= max_rcpt`` and ``mailcount <= max_mails``; every :class:`Reply` line is
  ``NNN`` + ``-`` or `` `` (the last one ``' '``).

Deliberate deviations from the C, all for inputs the C handles by crashing or by timers:

* 5.x ``smtp_reply()`` calls ``fatalx("line too long")`` for a reply of 2048 bytes or
  more (e.g. a 2000-byte unsupported option echoed back): the FSM truncates instead.
* ``smtp_auth_failure_pause()`` delays ``535`` by a random 0–1 s: the FSM replies at
  once; the caller may delay it.
* :meth:`SmtpSession.close` during an outstanding request cleans up at once (the C does
  not read, hence does not notice the disconnect, until the answer came); a late
  :class:`MessageCreated` is then answered with :class:`RollbackMessage`.
* 6.8 filtered listeners: the FSM makes only the ``smtp_filter_phase()`` round trips
  (:class:`FilterQuery`), decisions proceed / reject / disconnect (no junk / rewrite), and
  no data-line filtering. The rest of what a filtered session sends is the smtp role's
  (``roles/smtp.py``), not the FSM's: the ``IMSG_REPORT_SMTP_*`` report imsgs,
  ``FILTER_SMTP_BEGIN/END`` and the ``FILTER_SMTP_DATA_BEGIN`` socketpair before the 354.
"""

from __future__ import annotations

from smtpd_sim.fsm.smtp_events import (
    DEFAULT_DATE,
    REQUESTS,
    Authenticate,
    AuthResult,
    CommitMessage,
    CreateMessage,
    Disconnect,
    EnvelopeSubmitted,
    ExpandRcpt,
    FilterEvent,
    FilterQuery,
    FilterResult,
    MessageCommitted,
    MessageCreated,
    MessageOpened,
    OpenMessage,
    RcptResult,
    Reply,
    RollbackMessage,
    StartTls,
    TlsResult,
    time_to_text,
)
from smtpd_sim.fsm.smtp_session_5 import SmtpSession5, SmtpSession542, SmtpSession573
from smtpd_sim.fsm.smtp_session_68 import SmtpSession68
from smtpd_sim.fsm.smtp_session_common import (
    PHASE_NAMES,
    SF_SECURE,
    STATE_NAMES,
    SessionConfig,
    SmtpSession,
)

__all__ = [
    "new_session", "SessionConfig", "SmtpSession",
    "SmtpSession68", "SmtpSession5", "SmtpSession542", "SmtpSession573",
    "Reply", "Disconnect", "FilterQuery", "FilterEvent", "CreateMessage", "ExpandRcpt",
    "OpenMessage", "CommitMessage", "RollbackMessage", "StartTls", "Authenticate",
    "FilterResult", "MessageCreated", "EnvelopeSubmitted", "RcptResult", "MessageOpened",
    "MessageCommitted", "TlsResult", "AuthResult",
    "REQUESTS", "STATE_NAMES", "PHASE_NAMES", "SF_SECURE", "DEFAULT_DATE", "time_to_text",
]

# SessionConfig.variant -> the class of that release's smtp_session.c
_SESSIONS: dict[str, type[SmtpSession]] = {
    "5.4.2": SmtpSession542,
    "5.7.3": SmtpSession573,
    "6.8": SmtpSession68,
}


def new_session(config: SessionConfig, *, client_addr: str = "127.0.0.1",
                rdns: str = "localhost", local: bool = False) -> SmtpSession:
    """``smtp_session.c:smtp_session()`` of the release ``config.variant`` names: a new
    session in STATE_NEW (see :class:`SmtpSession` for the arguments)."""
    return _SESSIONS[config.variant](config, client_addr=client_addr, rdns=rdns, local=local)
