"""What the SMTP session and its caller exchange, in both directions (like h11's events).

Actions (session → caller, returned in lists by :meth:`SmtpSession.start`, ``feed``,
``handle``, ``close``): :class:`Reply`, :class:`Disconnect`, :class:`FilterEvent`,
:class:`RollbackMessage` and the requests (:data:`REQUESTS`), each of which the session
then waits for one answer to.  Events (caller → session, :meth:`SmtpSession.handle`): the
answers — :class:`FilterResult`, :class:`MessageCreated`, :class:`EnvelopeSubmitted`,
:class:`RcptResult`, :class:`MessageOpened`, :class:`MessageCommitted`,
:class:`TlsResult`, :class:`AuthResult`.  Each names the imsg or callback of
``smtp_session.c`` it stands for (5.x name / 6.8 name).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Reply", "Disconnect", "FilterQuery", "FilterEvent", "CreateMessage", "ExpandRcpt",
    "OpenMessage", "CommitMessage", "RollbackMessage", "StartTls", "Authenticate", "REQUESTS",
    "FilterResult", "MessageCreated", "EnvelopeSubmitted", "RcptResult", "MessageOpened",
    "MessageCommitted", "TlsResult", "AuthResult", "DEFAULT_DATE", "time_to_text",
]

DEFAULT_DATE = "Thu, 1 Jan 1970 00:00:00 +0000 (UTC)"  # time_to_text() stand-in (no clock here)

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # datetime.weekday() order
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def time_to_text(when: float, offset: int = 0, zone: str = "UTC") -> str:
    """``to.c:time_to_text()`` (6.8; the same format at 5.4.2/5.7.3): ``when`` (seconds
    since the epoch, truncated to ``time_t``) in the zone ``offset`` seconds east of UTC,
    named ``zone`` — ``"%s, %d %s %d %02d:%02d:%02d %c%02d%02d (%s)"``, no locale. Pure:
    the caller says what time it is (the Received: date of :class:`MessageOpened`)."""
    t = datetime.datetime.fromtimestamp(int(when) + offset, datetime.UTC)
    sign = "+" if offset >= 0 else "-"
    return (f"{_DAYS[t.weekday()]}, {t.day} {_MONTHS[t.month - 1]} {t.year} "
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} "
            f"{sign}{abs(offset) // 3600:02d}{abs(offset) % 3600 // 60:02d} ({zone})")


# ================================================================================================
# Actions (FSM -> caller)
# ================================================================================================

@dataclass(frozen=True, slots=True)
class Reply:
    """One complete SMTP reply (``smtp_reply()`` calls), lines joined by ``\\n``, no CRLF."""
    text: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the connection once the replies before it are flushed (``smtp_free()``)."""
    reason: str


@dataclass(frozen=True, slots=True)
class FilterQuery:
    """Consult the filter (5.4.2 ``IMSG_MFA_REQ_*``, 6.8 ``IMSG_FILTER_SMTP_PROTOCOL``);
    the session waits for :class:`FilterResult`."""
    phase: str
    param: str


@dataclass(frozen=True, slots=True)
class FilterEvent:
    """One-way notification to the filter (5.4.2 ``IMSG_MFA_EVENT_*``), no answer."""
    event: str


@dataclass(frozen=True, slots=True)
class CreateMessage:
    """``IMSG_QUEUE_CREATE_MESSAGE`` / ``IMSG_SMTP_MESSAGE_CREATE`` → :class:`MessageCreated`."""


@dataclass(frozen=True, slots=True)
class ExpandRcpt:
    """``IMSG_LKA_EXPAND_RCPT`` / ``IMSG_SMTP_EXPAND_RCPT`` → zero or more
    :class:`EnvelopeSubmitted`, then :class:`RcptResult`. The DSN fields are the
    transaction's envelope (``tx->evp``): NOTIFY= and ORCPT= of this RCPT, RET= and
    ENVID= of the MAIL FROM."""
    rcpt: str
    sender: str
    dsn_notify: int
    dsn_orcpt: str | None
    dsn_ret: int = 0
    dsn_envid: str = ""


@dataclass(frozen=True, slots=True)
class OpenMessage:
    """``IMSG_QUEUE_MESSAGE_FILE`` / ``IMSG_SMTP_MESSAGE_OPEN`` → :class:`MessageOpened`."""
    msgid: int


@dataclass(frozen=True, slots=True)
class CommitMessage:
    """``IMSG_QUEUE_COMMIT_MESSAGE`` / ``IMSG_SMTP_MESSAGE_COMMIT`` → :class:`MessageCommitted`.
    ``size``: bytes written to the message file (Received: header included); ``body``:
    those bytes when ``keep_body``; ``delivered_to``: the file's header lines that
    ``mda.c:mda_check_loop()`` compares with each recipient (``Delivered-To: ...``)."""
    msgid: int
    size: int
    body: bytes | None
    delivered_to: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class RollbackMessage:
    """``IMSG_QUEUE_REMOVE_MESSAGE`` / ``IMSG_SMTP_MESSAGE_ROLLBACK``; no answer."""
    msgid: int


@dataclass(frozen=True, slots=True)
class StartTls:
    """Start the server TLS handshake once the ``220`` is flushed → :class:`TlsResult`."""


@dataclass(frozen=True, slots=True)
class Authenticate:
    """``IMSG_LKA_AUTHENTICATE`` / ``IMSG_SMTP_AUTHENTICATE`` → :class:`AuthResult`."""
    method: str
    user: str
    password: str


REQUESTS = (FilterQuery, CreateMessage, ExpandRcpt, OpenMessage, CommitMessage, StartTls,
            Authenticate)


# ================================================================================================
# Events (caller -> FSM)
# ================================================================================================

@dataclass(frozen=True, slots=True)
class FilterResult:
    """Filter decision.  ``proceed`` = MFA_OK / FILTER_PROCEED; ``reject`` = MFA_FAIL /
    FILTER_REJECT; ``disconnect`` = MFA_CLOSE / FILTER_DISCONNECT.  5.4.2: ``code`` and
    ``text`` as in IMSG_MFA_SMTP_RESPONSE (defaults per phase when absent); 6.8: the
    filter's response line is ``f"{code} {text}"``, or ``text`` alone when ``code`` is None."""
    decision: Literal["proceed", "reject", "disconnect"]
    code: int | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class MessageCreated:
    """The queue's answer to :class:`CreateMessage` (IMSG_QUEUE_CREATE_MESSAGE /
    IMSG_SMTP_MESSAGE_CREATE): the new message's id, or a failure."""
    ok: bool
    msgid: int = 0


@dataclass(frozen=True, slots=True)
class EnvelopeSubmitted:
    """The queue's per-envelope ack (IMSG_QUEUE_SUBMIT_ENVELOPE / IMSG_QUEUE_ENVELOPE_SUBMIT)."""
    ok: bool
    evpid: int = 0


@dataclass(frozen=True, slots=True)
class RcptResult:
    """``ok`` = the queue's envelope commit; ``permfail`` / ``tempfail`` = lka's
    IMSG_*_EXPAND_RCPT with its error line (``lka_session.c``: the alias ``:error:`` text,
    else ``"550 Invalid recipient"`` / ``"451 Temporary failure"``, the defaults used when
    ``text`` is None).  5.x reply that line as is; 6.8 appends ``: <user@domain>``."""
    status: Literal["ok", "permfail", "tempfail"]
    text: str | None = None


@dataclass(frozen=True, slots=True)
class MessageOpened:
    """The queue's fd for the message.  ``date``: ``time_to_text(now)`` for the Received:
    header (the FSM has no clock)."""
    ok: bool
    date: str = DEFAULT_DATE


@dataclass(frozen=True, slots=True)
class MessageCommitted:
    """The queue's answer to :class:`CommitMessage` (IMSG_QUEUE_COMMIT_MESSAGE /
    IMSG_SMTP_MESSAGE_COMMIT)."""
    ok: bool


@dataclass(frozen=True, slots=True)
class TlsResult:
    """Handshake outcome; the cipher description goes into the Received: header."""
    ok: bool
    version: str = "TLSv1.3"
    cipher: str = "TLS_AES_256_GCM_SHA384"
    bits: int = 256


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The answer to :class:`Authenticate` (IMSG_LKA_AUTHENTICATE / IMSG_SMTP_AUTHENTICATE:
    LKA_OK, LKA_PERMFAIL, LKA_TEMPFAIL)."""
    status: Literal["ok", "permfail", "tempfail"]
