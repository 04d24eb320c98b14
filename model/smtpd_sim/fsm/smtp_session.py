"""The SMTP server session (``smtp_session.c``) as a pure, sans-IO state machine.

One :class:`SmtpSession` is one ``struct smtp_session``: the caller (the simulator's smtp
role, the live asyncio server, a test) feeds it what the client wrote and the answers of
the other processes, and executes the actions it returns, in order.  It never reads a
clock, a socket or a random source.

Three variants, each mirroring its own ``smtp_session.c`` (``SessionConfig.variant``):

* ``"6.8"`` — OpenSMTPD 6.8.0p2 (``usr.sbin/smtpd/smtp_session.c`` 1.428), checked reply
  for reply against the real daemon (``research/real-daemon.md`` §8 and the recorded
  dialogs).  No phase enum: a session is identified once ``s->helo`` is set and in a
  transaction while ``s->tx`` exists; no kick counters; ``smtp_filter_phase()`` consults
  lka (``filter_mode="lka"``, a filtered listener) or proceeds at once.  Body lines go
  through the ``rfc5322.c`` parser (``550 5.7.1 ... not RFC 2822 compliant``).
* ``"5.4.2"`` — the last release with the MFA process (``smtpd/smtp_session.c`` at
  opensmtpd-5.4.2): PHASE_INIT/SETUP/TRANSACTION decide what is allowed; the
  ``SMTP_KICK_CMD`` / ``SMTP_KICK_RCPTFAIL`` counters; every phase is an MFA round trip
  (``filter_mode="mfa"``: :class:`FilterQuery` ``connect helo mail rcpt data eom`` and the
  one-way :class:`FilterEvent` ``rset commit rollback disconnect``, exactly where the C
  sends ``IMSG_MFA_*``, including the flag-mask bug of ``smtp_command()`` HELO/EHLO that
  clears ``SF_MFACONNSENT`` so ``IMSG_MFA_EVENT_DISCONNECT`` is only sent by sessions that
  never got past a valid HELO/EHLO, era-5.4.2-mfa.md §0.3).  ``filter_mode="none"``
  answers every query in-process (the "5.4 without MFA" topology).  Texts carry the
  5.x ``2.0.0:`` colon, ``Already indentified`` (sic), the 4-line 214 HELP without
  enhanced codes on the first three lines, 8th-bit stripping without 8BITMIME, no body
  header check, ``554 5.3.4`` for a too-big message.
* ``"5.7.3"`` — the pony era (``smtpd/smtp_session.c`` at opensmtpd-5.7.3): 5.4.2's
  phases, kick counters and texts, in-process filters (never a :class:`FilterQuery`),
  plus the ``rfc2822.c`` header parser (``550 5.7.1 ... not RFC 2822 compliant``, loop
  detection), Bcc stripping, DSN options gated by the listener, ``554 Message too big``,
  no ``Already identified`` check (a second HELO re-identifies and drops the
  transaction) and ``smtp_mailaddr()``'s "no domain → local user" acceptance.

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
* 6.8 filtered listeners: only the ``smtp_filter_phase()`` round trips are modelled (no
  report imsgs, no ``FILTER_SMTP_BEGIN/END``, no data-line filtering), decisions are
  proceed / reject / disconnect (no junk / rewrite).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from smtpd_sim.fsm.address import (
    ASCII_UPPER,
    C_SPACE,
    LINE_MAX,
    b64_pton,
    text_to_mailaddr,
    valid_domainpart,
    valid_localpart,
    valid_smtp_response,
)
from smtpd_sim.fsm.envelope import (
    DSN_DELAY,
    DSN_ENVID_LEN,
    DSN_FAILURE,
    DSN_NEVER,
    DSN_RETFULL,
    DSN_RETHDRS,
    DSN_SUCCESS,
    MAX_HOPS_COUNT,
)
from smtpd_sim.fsm.rfc2822 import Rfc2822Parser
from smtpd_sim.fsm.rfc5322 import (
    RFC5322_BODY,
    RFC5322_BODY_START,
    RFC5322_END_OF_HEADERS,
    RFC5322_END_OF_MESSAGE,
    RFC5322_HEADER_CONT,
    RFC5322_HEADER_END,
    RFC5322_HEADER_START,
    RFC5322_NONE,
    Rfc5322Parser,
)
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
)

__all__ = [
    "SessionConfig", "SmtpSession",
    "Reply", "Disconnect", "FilterQuery", "FilterEvent", "CreateMessage", "ExpandRcpt",
    "OpenMessage", "CommitMessage", "RollbackMessage", "StartTls", "Authenticate",
    "FilterResult", "MessageCreated", "EnvelopeSubmitted", "RcptResult", "MessageOpened",
    "MessageCommitted", "TlsResult", "AuthResult",
    "REQUESTS", "STATE_NAMES", "PHASE_NAMES",
]

# ---- limits and sizes (where they come from) --------------------------------------------------
SMTP_LIMIT_MAIL = 100  # smtp_session.c 5.4.2 SMTP_LIMIT_MAIL; config.c sc_session_max_mails (5.7.3, 6.8)
SMTP_LIMIT_RCPT = 1000  # smtp_session.c 5.4.2 SMTP_LIMIT_RCPT; config.c sc_session_max_rcpt
SMTP_KICK_CMD = 5  # smtp_session.c 5.4.2 / 5.7.3: commands without progress before the kick
SMTP_KICK_RCPTFAIL = 50  # smtp_session.c 5.4.2 / 5.7.3: failed RCPTs before STATE_QUIT
SMTP_LINE_MAX = 65535  # smtp_session.c 6.8 SMTP_LINE_MAX
IOBUF_MAX = 65536  # iobuf.c 6.8 IOBUF_MAX: io_new() -> iobuf_init(0, 0)
DEFAULT_MAX_BODY_SIZE = 35 * 1024 * 1024  # smtpd.h DEFAULT_MAX_BODY_SIZE
HOST_NAME_MAX = 255  # envelope helo[] (5.x evp.helo: SMTPD_MAXHOSTNAMELEN / HOST_NAME_MAX+1)
APPEND_DOMAIN_BUFFER_SIZE = {0: 0, 1: 4096, 2: SMTP_LINE_MAX}  # smtp_session.c 5.7.3 / 6.8
SMTPD_NAME = "OpenSMTPD"  # smtpd.h

# ---- enum smtp_state / smtp_phase (smtp_session.c) -------------------------------------------
ST_NEW, ST_CONNECTED, ST_TLS, ST_HELO, ST_AUTH_INIT, ST_AUTH_USERNAME, ST_AUTH_PASSWORD, \
    ST_AUTH_FINALIZE, ST_BODY, ST_QUIT = range(10)
STATE_NAMES = ("STATE_NEW", "STATE_CONNECTED", "STATE_TLS", "STATE_HELO", "STATE_AUTH_INIT",
               "STATE_AUTH_USERNAME", "STATE_AUTH_PASSWORD", "STATE_AUTH_FINALIZE",
               "STATE_BODY", "STATE_QUIT")
PH_INIT, PH_SETUP, PH_TRANSACTION = range(3)
PHASE_NAMES = ("PHASE_INIT", "PHASE_SETUP", "PHASE_TRANSACTION")

# ---- enum session_flags (one set for the three variants; the C values differ) -------------
SF_EHLO = 0x0001
SF_8BITMIME = 0x0002
SF_SECURE = 0x0004
SF_AUTHENTICATED = 0x0008
SF_BOUNCE = 0x0010
SF_KICK = 0x0020  # 5.x
SF_VERIFIED = 0x0040
SF_MFACONNSENT = 0x0080  # 5.4.2
SF_BADINPUT = 0x0100
SF_FILTERCONN = 0x0200  # 5.7.3

# ---- transaction errors: 6.8 TX_* (enum, one value) / 5.x MF_* (flags) ------------------------
TX_OK, TX_ERROR_ENVELOPE, TX_ERROR_SIZE, TX_ERROR_IO, TX_ERROR_LOOP, TX_ERROR_MALFORMED, \
    TX_ERROR_RESOURCES, TX_ERROR_INTERNAL = range(8)
MF_QUEUE_ENVELOPE_FAIL = 0x00001
MF_ERROR_SIZE = 0x01000
MF_ERROR_IO = 0x02000
MF_ERROR_MFA = 0x04000  # 5.4.2 (5.7.3 reuses 0x04000 for LOOP; distinct here)
MF_ERROR_LOOP = 0x08000  # 5.7.3
MF_ERROR_MALFORMED = 0x10000  # 5.7.3
MF_ERROR_RESOURCES = 0x20000  # 5.7.3
MF_ERROR_542 = MF_ERROR_SIZE | MF_ERROR_IO | MF_ERROR_MFA  # smtp_message_end() 5.4.2
MF_ERROR = MF_ERROR_SIZE | MF_ERROR_IO | MF_ERROR_LOOP | MF_ERROR_MALFORMED | MF_ERROR_RESOURCES

# ---- enum smtp_command ------------------------------------------------------------------------
CMD_HELO, CMD_EHLO, CMD_STARTTLS, CMD_AUTH, CMD_MAIL_FROM, CMD_RCPT_TO, CMD_DATA, CMD_RSET, \
    CMD_QUIT, CMD_HELP, CMD_WIZ, CMD_NOOP = range(12)
_COMMANDS = {"HELO": CMD_HELO, "EHLO": CMD_EHLO, "STARTTLS": CMD_STARTTLS, "AUTH": CMD_AUTH,
             "MAIL FROM": CMD_MAIL_FROM, "RCPT TO": CMD_RCPT_TO, "DATA": CMD_DATA,
             "RSET": CMD_RSET, "QUIT": CMD_QUIT, "HELP": CMD_HELP, "WIZ": CMD_WIZ,
             "NOOP": CMD_NOOP}

# ---- what the session waits for ---------------------------------------------------------------
W_NONE, W_FILTER, W_CREATE, W_RCPT, W_OPEN, W_COMMIT, W_TLS, W_AUTH = range(8)
_WAIT_NAMES = ("nothing", "FilterResult", "MessageCreated", "EnvelopeSubmitted/RcptResult",
               "MessageOpened", "MessageCommitted", "TlsResult", "AuthResult")

V542, V573, V68 = 0, 1, 2
_VARIANTS = {"5.4.2": V542, "5.7.3": V573, "6.8": V68}
# s->username: SMTPD_MAXLOGNAME (5.4.2), LOGIN_NAME_MAX (5.7.3, OpenBSD), SMTPD_MAXMAILADDRSIZE (6.8)
_USERNAME_SIZE = {V542: 32, V573: 32, V68: 256}


# ================================================================================================
# Configuration
# ================================================================================================

@dataclass(frozen=True, slots=True)
class SessionConfig:
    """The listener and daemon settings one session depends on (smtpd.conf ``listen on``,
    ``smtp max-message-size``, ``smtp limit max-rcpt`` / ``max-mails``)."""

    variant: Literal["5.4.2", "5.7.3", "6.8"] = "6.8"
    hostname: str = "mx.local.test"  # listener hostname = smtpname (banner, EHLO, Received)
    max_message_size: int = DEFAULT_MAX_BODY_SIZE  # env->sc_maxsize
    max_rcpt: int = SMTP_LIMIT_RCPT  # env->sc_session_max_rcpt
    max_mails: int = SMTP_LIMIT_MAIL  # env->sc_session_max_mails
    tls: bool = False  # listener F_STARTTLS
    tls_required: bool = False  # listener F_STARTTLS_REQUIRE
    auth: bool = False  # listener F_AUTH (advertised only on a secured session)
    filter_mode: Literal["none", "mfa", "lka"] = "none"
    keep_body: bool = False  # build the message file bytes (else only count them)
    # -- additions to the agreed interface --
    auth_required: bool = False  # listener F_AUTH_REQUIRE
    dsn: bool = True  # listener F_EXT_DSN (5.7.3, 6.8; default on, "no-dsn" turns it off)
    listener_local: bool = False  # listener->local (loopback or enqueue socket): 6.8 adds
    #                               missing Date: / Message-ID: headers

    def __post_init__(self) -> None:
        if self.variant not in _VARIANTS:
            raise ValueError(f"SessionConfig.variant: {self.variant!r} is not one of 5.4.2, 5.7.3, 6.8")
        allowed = {"5.4.2": ("none", "mfa"), "5.7.3": ("none",), "6.8": ("none", "lka")}[self.variant]
        if self.filter_mode not in allowed:
            raise ValueError(f"SessionConfig.filter_mode: {self.filter_mode!r} is not available "
                             f"in {self.variant} (expected one of {', '.join(allowed)})")
        if not self.hostname or len(self.hostname) > HOST_NAME_MAX:
            raise ValueError("SessionConfig.hostname: expected 1 to 255 characters")


# ================================================================================================
# Helpers (C strings, the 8th bit)
# ================================================================================================

_UPPER = ASCII_UPPER  # strcasecmp
_C_SPACE = C_SPACE  # isspace() in the C locale
_B_SPACE = frozenset(b" \t\n\v\f\r")
_STRIP8 = bytes(range(128)) * 2  # bytes.translate table: c & 0x7f


def _c_string(b: bytes) -> bytes:
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


# ================================================================================================
# Header rewriting (smtp_session.c header_append_domain_buffer() & co)
# ================================================================================================

def _append_domain_buffer(buf: bytes, domain: bytes, size: int) -> bytes:
    """``smtp_session.c:header_append_domain_buffer()``: add ``@domain`` to an address
    without a domain (not for groups, comments or unbalanced input)."""
    escape = quote = comment = bracket = 0
    has_domain = has_bracket = has_group = False
    pos_bracket = pos_component = 0
    for i, c in enumerate(buf):
        if c == 0x28 and not escape and not quote:  # (
            comment += 1
        if c == 0x22 and not escape and not comment:  # "
            quote = not quote
        if c == 0x29 and not escape and not quote and comment:  # )
            comment -= 1
        escape = 1 if (c == 0x5C and not escape and not comment and not quote) else 0
        if c == 0x3C and not escape and not comment and not quote and not bracket:  # <
            bracket += 1
            has_bracket = True
        if c == 0x3E and not escape and not comment and not quote and bracket:  # >
            bracket -= 1
            pos_bracket = i
        if c == 0x40 and not escape and not comment and not quote:  # @
            has_domain = True
        if c == 0x3A and not escape and not comment and not quote:  # :
            has_group = True
        if not comment and c != 0x29 and c not in _B_SPACE:
            pos_component = i
    if escape or quote or comment or bracket or has_domain or has_group:
        return buf
    if has_bracket:
        pos_bracket -= 1
        while pos_bracket > 0 and buf[pos_bracket] in _B_SPACE:
            pos_bracket -= 1
        if buf[pos_bracket] == 0x3C:
            return buf
        pos_insert = pos_bracket + 1
    else:
        if not buf or buf[pos_component] in _B_SPACE:
            return buf
        pos_insert = pos_component + 1
    copy = buf[:pos_insert] + b"@" + domain + buf[pos_insert:]
    if len(copy) >= size:
        return buf
    return copy


def _domain_append_lines(hdr: bytes, lines: list[bytes] | None, domain: bytes, size: int) -> bytes:
    """``smtp_session.c:header_domain_append_callback()`` (6.8 over the unfolded value
    split at ``\\n``, 5.7.3 over the header's lines): every address of To/Cc/From
    without a domain gets ``@<listener hostname>``."""
    out = [hdr, b":"]
    if lines is None:
        return b"".join(out)
    value = b"\n".join(lines)
    if len(value) + 1 < size - 1 and _ADDR_SPECIAL.search(value) is None \
            and (b"@" in value or b":" in value):
        # one address, no quote / comment / escape: header_append_domain_buffer() keeps it
        return hdr + b":" + value + b"\n"
    buf = bytearray()
    skip = False
    escape = quote = comment = 0
    limit = size - 1
    dl = len(domain)
    for line in lines:
        for c in line:
            if c == 0x28 and not escape and not quote:
                comment += 1
            if c == 0x22 and not escape and not comment:
                quote = not quote
            if c == 0x29 and not escape and not quote and comment:
                comment -= 1
            escape = 1 if (c == 0x5C and not escape and not comment and not quote) else 0
            if c == 0x2C and not escape and not quote and not comment:  # ,
                b = bytes(buf)
                if not skip and len(buf) + dl + 1 < size:
                    b = _append_domain_buffer(b, domain, size)
                out.append(b)
                out.append(b",")
                buf = bytearray()
                skip = False
            elif skip:
                out.append(bytes((c,)))
            else:
                buf.append(c)
                if len(buf) == limit:
                    out.append(bytes(buf))
                    skip = True
                    buf = bytearray()
        if skip:
            out.append(b"\n")
        else:
            buf.append(0x0A)
            if len(buf) == limit:
                out.append(bytes(buf))
                skip = True
                buf = bytearray()
    if buf:
        b = bytes(buf)
        if len(buf) + dl + 1 < size:
            b = _append_domain_buffer(b, domain, size)
        out.append(b)
    return b"".join(out)


_ADDR_SPECIAL = re.compile(rb'[,()"\\]')


# ================================================================================================
# The session
# ================================================================================================

class SmtpSession:
    """``struct smtp_session`` and the functions of ``smtp_session.c`` acting on it.

    ``client_addr``: the peer address as ``ss_to_text()`` prints it (``"local"`` for an
    enqueue socketpair); ``rdns``: the resolved client name (``s->rdns`` / ``s->hostname``,
    ``"<unknown>"`` without PTR); ``local``: a local enqueue session (``smtp_enqueue()``:
    ``smtp_session()`` with a hostname → SF_AUTHENTICATED, SF_BOUNCE if it is
    ``"localhost"``, listener->local)."""

    __slots__ = (
        "cfg", "_v", "_vname", "_mfa", "_lka", "_addr", "_addr_br", "_rdns", "_local",
        "_hostb", "_maxsize", "_cap", "_dsn",
        "_st", "_phase", "flags", "helo", "_evp_helo", "_banner_sent", "closed", "_wait",
        "_wphase", "_wparam", "_reading", "_buf", "_pend", "_out", "_orphan",
        "mailcount", "kickcount", "rcptfail", "username",
        "_tx", "_msgid", "_rcptcount", "_destcount", "_sender", "_ruser", "_rdomain",
        "_dsn_notify", "_dsn_orcpt", "_dsn_ret", "_dsn_envid", "_txerr", "_datain",
        "_odatalen", "_body", "_date", "_uid", "_tls_desc",
        "_parser", "_rcvcount", "_has_date", "_has_mid",
        "_rfc2822", "_hdrdone", "_skiphdr",
    )

    # the transaction's state, (re)set by _reset_tx()
    _tx: bool
    _msgid: int
    _rcptcount: int
    _destcount: int
    _sender: str
    _ruser: str
    _rdomain: str
    _dsn_notify: int
    _dsn_orcpt: str | None
    _dsn_ret: int
    _dsn_envid: str
    _txerr: int
    _datain: int
    _odatalen: int
    _body: list[bytes] | None  # the message file's bytes (cfg.keep_body), else None
    _date: str
    _parser: Rfc5322Parser  # 6.8 tx->parser (a new one per transaction, smtp_tx())
    _rcvcount: int
    _has_date: bool
    _has_mid: bool
    _hdrdone: bool
    _skiphdr: bool

    def __init__(self, config: SessionConfig, *, client_addr: str = "127.0.0.1",
                 rdns: str = "localhost", local: bool = False) -> None:
        """``smtp_session.c:smtp_session()``: a new session in STATE_NEW / PHASE_INIT;
        the caller did the reverse DNS (``rdns``) before :meth:`start`."""
        self.cfg = config
        v = _VARIANTS[config.variant]
        self._v = v
        self._vname = config.variant
        self._mfa = config.filter_mode == "mfa"
        self._lka = config.filter_mode == "lka"
        self._addr = client_addr
        if ":" in client_addr:  # sa_to_text(): AF_INET6
            self._addr_br = f"[{client_addr}]" if v == V68 else f"[IPv6:{client_addr}]"
        else:
            self._addr_br = f"[{client_addr}]"
        self._rdns = rdns
        self._local = local
        self._hostb = config.hostname.encode("latin-1", "replace")
        self._maxsize = config.max_message_size
        self._cap = IOBUF_MAX if v == V68 else LINE_MAX
        self._dsn = config.dsn or v == V542  # 5.4.2 parses DSN options unconditionally
        self._st = ST_NEW
        self._phase = PH_INIT
        self.flags = 0
        if local:
            self.flags |= SF_AUTHENTICATED
            if rdns == "localhost":
                self.flags |= SF_BOUNCE
        self.helo = ""
        self._evp_helo = ""
        self._banner_sent = False
        self.closed = False
        self._wait = W_NONE
        self._wphase = ""
        self._wparam: str | None = ""
        self._reading = False
        self._buf = bytearray()
        self._pend = bytearray()
        self._out: list[Any] = []
        self._orphan = False
        self.mailcount = 0
        self.kickcount = 0
        self.rcptfail = 0
        self.username = ""
        self._uid = 0
        self._tls_desc = ("", "", 0)
        # 5.7.3 s->rfc2822_parser and its callbacks (smtp_session())
        self._rfc2822 = p = Rfc2822Parser()
        p.header_default_callback(self._header_default_callback)
        p.header_callback(b"bcc", self._header_bcc_callback)
        p.header_callback(b"from", self._header_domain_append_callback)
        p.header_callback(b"to", self._header_domain_append_callback)
        p.header_callback(b"cc", self._header_domain_append_callback)
        p.body_callback(self._dataline_callback)
        self._parser = Rfc5322Parser()
        self._reset_tx()

    # ------------------------------------------------------------------------------------------
    # public surface
    # ------------------------------------------------------------------------------------------

    @property
    def waiting(self) -> bool:
        """True while one request is outstanding (input is buffered, not read)."""
        return self._wait != W_NONE

    @property
    def state(self) -> str:
        """``enum smtp_state`` name, e.g. ``"STATE_HELO"``."""
        return STATE_NAMES[self._st]

    @property
    def phase(self) -> str:
        """``enum smtp_phase`` name (6.8: derived — INIT until identified, TRANSACTION
        while ``s->tx`` exists, else SETUP)."""
        if self._v == V68:
            if self._tx:
                return "PHASE_TRANSACTION"
            return "PHASE_SETUP" if self.helo else "PHASE_INIT"
        return PHASE_NAMES[self._phase]

    @property
    def msgid(self) -> int:
        """The open transaction's message id (6.8 ``s->tx->msgid``, 5.x ``s->evp.id >> 32``), 0 if none."""
        return self._msgid

    @property
    def rcptcount(self) -> int:
        """Accepted recipients of the open transaction."""
        return self._rcptcount

    @property
    def waiting_for(self) -> str:
        """The name of the awaited event (debugging aid)."""
        return _WAIT_NAMES[self._wait]

    def start(self) -> list:
        """``smtp_session.c:smtp_connected()`` (after the PTR / FCrDNS lookups): the
        connect filter query (5.4.2 mfa, 6.8 filtered listener) or the banner."""
        out = self._out = []
        if self._st != ST_NEW or self.closed:
            raise ValueError("SmtpSession.start(): already started")
        self._st = ST_CONNECTED
        if self._v == V68:
            self._filter_phase68("connect", self._addr)
        elif self._v == V542:
            if self._mfa:
                self.flags |= SF_MFACONNSENT
            self._filter5("connect", self._rdns)
        else:
            self.flags |= SF_FILTERCONN
            self._filter5("connect", self._rdns)
        self._pump()
        return out

    def feed(self, data: bytes) -> list:
        """One read of the client socket (``smtp_io()`` IO_DATAIN); may hold several lines
        or part of one.  Bytes arriving while the session does not read are kept."""
        if self.closed:
            return []
        out = self._out = []
        if data:
            self._pend += data
        self._pump()
        return out

    def handle(self, event: object) -> list:
        """The answer to the outstanding request (``smtp_session_imsg()`` / the filter
        response / the TLS and auth callbacks).  Raises ValueError for an event that does
        not answer what the session waits for."""
        out = self._out = []
        w = self._wait
        et = type(event)
        if w == W_NONE or et not in _ACCEPTS[w]:
            raise ValueError(f"SmtpSession.handle(): unexpected {et.__name__} "
                             f"(waiting for {_WAIT_NAMES[w]})")
        _check_event(event)
        if self.closed:
            self._handle_after_close(event)
            return out
        if et is not EnvelopeSubmitted:
            self._wait = W_NONE
        _HANDLERS[et](self, event)
        self._pump()
        return out

    def close(self) -> list:
        """The connection is gone (IO_DISCONNECTED / IO_TIMEOUT / IO_ERROR →
        ``smtp_free()``): cleanup actions, no Disconnect."""
        if self.closed:
            return []
        out = self._out = []
        w = self._wait
        if w == W_CREATE:
            self._orphan = True  # the msgid is not known yet: roll back when it comes
        keep_wait = w in (W_CREATE, W_RCPT, W_OPEN, W_COMMIT, W_FILTER, W_TLS, W_AUTH)
        if w == W_COMMIT:
            # the commit is in flight; whatever the queue answers, nothing to undo
            self._msgid = 0
            self._tx = False
        self._free(None)
        if keep_wait:
            self._wait = w
        return out

    # ------------------------------------------------------------------------------------------
    # reading (ioev.c io_dispatch() + smtp_io() IO_DATAIN)
    # ------------------------------------------------------------------------------------------

    def _pump(self) -> None:
        """``ioev.c:io_dispatch()`` EV_READ: ``iobuf_read()`` what fits in the iobuf, then
        ``smtp_io()`` IO_DATAIN; repeated while the session reads and bytes are pending."""
        pend = self._pend
        buf = self._buf
        cap = self._cap
        while pend and self._reading and self._wait == W_NONE and not self.closed \
                and self._st != ST_TLS and self._st != ST_QUIT:
            room = cap - len(buf)
            if room <= 0:  # pragma: no cover - a full iobuf is "Line too long" first
                break
            if len(pend) <= room:
                buf += pend
                pend.clear()
            else:
                buf += pend[:room]
                del pend[:room]
            if self._v == V68:
                self._datain68()
            else:
                self._datain5()

    def _bulk_body(self) -> None:
        """A shortcut for what ``smtp_io()`` does line by line once the message is past its
        headers: plain lines (no leading ".", no NUL, no 8th bit to strip at 5.x, well
        under the line and size limits) only add to the counts and to the file.  Anything
        else is left to the exact per-line path."""
        buf = self._buf
        if buf[:1] == b".":
            return
        end = buf.find(b"\n.")
        end = buf.rfind(b"\n") if end < 0 else end
        if end < 0:
            return
        region = bytes(buf[:end + 1])
        if len(region) >= SMTP_LINE_MAX - 1 or b"\0" in region:
            return
        v = self._v
        if v != V68 and not self.flags & SF_8BITMIME and not region.isascii():
            return
        n = len(region) - region.count(b"\r\n")
        if self._datain + n > self._maxsize:
            return
        self._datain += n
        self._odatalen += n
        if self._body is not None:
            self._body.append(region.replace(b"\r\n", b"\n"))
        del buf[:end + 1]

    def _datain68(self) -> None:
        """6.8 ``smtp_session.c:smtp_io()`` IO_DATAIN."""
        buf = self._buf
        while True:
            if self._st == ST_BODY and self._parser.state == RFC5322_BODY and not self._txerr:
                self._bulk_body()
            i = buf.find(b"\n")
            if i < 0:
                if len(buf) >= SMTP_LINE_MAX:
                    self._badinput("500 5.0.0 Line too long")
                return
            if i >= SMTP_LINE_MAX:
                self._badinput("500 5.0.0 Line too long")
                return
            line = bytes(buf[:i])
            del buf[:i + 1]
            if line[-1:] == b"\r":
                line = line[:-1]
            if b"\0" in line:
                line = _c_string(line)
            eom = False
            if self._st == ST_BODY:
                if line != b".":
                    self._datain += len(line) + 1
                    if self._datain > self._maxsize:
                        self._txerr = TX_ERROR_SIZE
                eom = self._tx_dataline68(line)
                if not eom:
                    continue
            if buf:
                self._badinput("500 5.5.1 Invalid command: Pipelining not supported")
                return
            if eom:
                self._filter_phase68("commit", "")  # smtp_tx_eom()
                return
            if len(line) >= LINE_MAX:
                self._badinput("500 5.0.0 Command line too long")
                return
            self._command68(line.decode("latin-1"))
            return

    def _datain5(self) -> None:
        """5.4.2 / 5.7.3 ``smtp_session.c:smtp_io()`` IO_DATAIN."""
        buf = self._buf
        while True:
            if self._st == ST_BODY and not self._txerr and (
                    self._v == V542 or (self._hdrdone and not self._rfc2822.in_hdrs
                                        and not self._rfc2822.in_hdr and not self._skiphdr)):
                self._bulk_body()
            i = buf.find(b"\n")
            if i < 0:
                if len(buf) >= LINE_MAX:
                    self._badinput("500 5.0.0: Line too long")
                return
            n = i - 1 if i and buf[i - 1] == 13 else i  # iobuf_getline() strips \r
            if n >= LINE_MAX:
                self._badinput("500 5.0.0: Line too long")
                return
            line = bytes(buf[:n])
            del buf[:i + 1]
            if b"\0" in line:
                line = _c_string(line)
            if self._st == ST_BODY and line != b".":
                if self._v == V542:
                    self._body_line542(line)
                else:
                    self._body_line573(line)
                continue
            if buf:
                self._badinput("500 5.5.1 Invalid command: Pipelining not supported")
                return
            if self._st == ST_BODY:
                if self._v == V542:
                    self._filter5("eom", str(self._datain))
                else:
                    self._data_io_done573()
                return
            self._command5(line.decode("latin-1"))
            if self.flags & SF_KICK and not self.closed:
                self._free("kick")
            return

    # ------------------------------------------------------------------------------------------
    # replies, quitting, freeing
    # ------------------------------------------------------------------------------------------

    def _reply(self, text: str) -> None:
        """``smtp_session.c:smtp_reply()`` (one complete reply; the daemon truncates a 6.8
        reply at 4095 bytes, 5.x would fatalx() at 2048: truncated here)."""
        limit = 4095 if self._v == V68 else LINE_MAX - 1
        if len(text) > limit and "\n" not in text:
            text = text[:limit]
        self._out.append(Reply(text))
        self._reading = True  # IO_LOWAT after the flush -> io_set_read()

    def _badinput(self, text: str) -> None:
        self.flags |= SF_BADINPUT
        self._reply(text)
        self._quit("bad input")

    def _quit(self, reason: str) -> None:
        """``smtp_enter_state(STATE_QUIT)``: close once the output drained (IO_LOWAT →
        ``smtp_free()``)."""
        self._st = ST_QUIT
        self._free(reason)

    def _free(self, reason: str | None) -> None:
        """``smtp_session.c:smtp_free()``: roll back the open transaction, 5.4.2
        IMSG_MFA_EVENT_DISCONNECT when SF_MFACONNSENT survived, then close."""
        out = self._out
        if self._msgid:
            out.append(RollbackMessage(self._msgid))
        if self._v == V542 and self._mfa and self.flags & SF_MFACONNSENT:
            out.append(FilterEvent("disconnect"))
        self._reset_tx()
        self._rfc2822.release()  # 5.7.3 rfc2822_parser_release()
        self.closed = True
        self._wait = W_NONE
        self._st = ST_QUIT
        self._buf.clear()
        self._pend.clear()
        if reason is not None:
            out.append(Disconnect(reason))

    def _handle_after_close(self, event: object) -> None:
        """Answers still arriving for a request made before :meth:`close`."""
        if type(event) is EnvelopeSubmitted:
            return
        self._wait = W_NONE
        if type(event) is MessageCreated and event.ok and self._orphan:
            self._out.append(RollbackMessage(event.msgid))
        self._orphan = False

    def _request(self, action: object, wait: int) -> None:
        self._out.append(action)
        self._wait = wait

    # ------------------------------------------------------------------------------------------
    # transaction state
    # ------------------------------------------------------------------------------------------

    def _reset_tx(self) -> None:
        """6.8 ``smtp_tx_free()`` / 5.x ``smtp_message_reset(s, 0)``."""
        self._tx = False
        self._msgid = 0
        self._rcptcount = 0
        self._destcount = 0
        self._sender = ""
        self._ruser = ""
        self._rdomain = ""
        self._dsn_notify = 0
        self._dsn_orcpt = None
        self._dsn_ret = 0
        self._dsn_envid = ""
        self._txerr = 0
        self._datain = 0
        self._odatalen = 0
        self._body = None
        self._date = DEFAULT_DATE
        self._rcvcount = 0
        self._has_date = False
        self._has_mid = False
        self._hdrdone = False
        self._skiphdr = False
        self._evp_helo = ""

    def _message_reset5(self, prepare: bool) -> None:
        """5.x ``smtp_session.c:smtp_message_reset()``."""
        self._reset_tx()
        if prepare:
            self._evp_helo = self.helo[:HOST_NAME_MAX]

    def _emit(self, data: bytes) -> None:
        """``smtp_message_printf()`` / ``iobuf_fqueue(&s->obuf)``: bytes into the message file."""
        self._odatalen += len(data)
        body = self._body
        if body is not None:
            body.append(data)

    def _rcpt_text(self) -> str:
        u, d = self._ruser, self._rdomain
        return f"{u}@{d}" if (u or d) else ""

    def _advertise_auth(self) -> bool:
        """ADVERTISE_AUTH(): F_AUTH on the listener, secured, not yet authenticated."""
        return self.cfg.auth and bool(self.flags & SF_SECURE) and not self.flags & SF_AUTHENTICATED

    def _ehlo_reply(self, helo: str, sep: str, esmtp: bool) -> str:
        """The HELO/EHLO answer (``smtp_proceed_ehlo()`` / 5.x ``smtp_mfa_response()``)."""
        lines = [f"250{sep}{self.cfg.hostname} Hello {helo} {self._addr_br}, pleased to meet you"]
        if esmtp:
            lines.append("250-8BITMIME")
            lines.append("250-ENHANCEDSTATUSCODES")
            lines.append(f"250-SIZE {self._maxsize}")
            if self._v == V542 or self.cfg.dsn:
                lines.append("250-DSN")
            if self.cfg.tls and not self.flags & SF_SECURE:
                lines.append("250-STARTTLS")
            if self._advertise_auth():
                lines.append("250-AUTH PLAIN LOGIN")
            lines.append("250 HELP")
        return "\n".join(lines)

    def _banner(self) -> None:
        """``smtp_session.c:smtp_send_banner()``."""
        self._reply(f"220 {self.cfg.hostname} ESMTP {SMTPD_NAME}")
        self._banner_sent = True

    def _mailaddr(self, line: str | None, mailfrom: bool) -> tuple[int, str, str, str]:
        """``smtp_session.c:smtp_mailaddr()`` of the variant.  Returns (ok, user, domain,
        rest) where ok is 1 (valid), 0 (rejected after parsing: user/domain are what
        text_to_mailaddr() stored) or -1 (not parsed)."""
        if line is None or line[:1] != "<":
            return -1, "", "", ""
        e = line.find(">")
        if e < 0:
            return -1, "", "", ""
        rest = line[e + 1:].lstrip(" ")
        parsed = text_to_mailaddr(line[1:e])
        if parsed is None:
            return -1, "", "", rest
        user, domain = parsed
        p = user.find(":")
        if p >= 0:
            user = user[p + 1:]
        v = self._v
        vn = self._vname
        if v == V68:
            if mailfrom and not user and not domain:
                return 1, user, domain, rest
            if not user or not valid_localpart(user):
                return 0, user, domain, rest
            if not domain:
                domain = self.cfg.hostname
            if not valid_domainpart(domain, vn):
                return 0, user, domain, rest
            return 1, user, domain, rest
        if not valid_localpart(user) or not valid_domainpart(domain, vn):
            if mailfrom and not user and not domain:
                return 1, user, domain, rest
            if v == V542:
                if not mailfrom and user.translate(_UPPER) == "POSTMASTER" and not domain:
                    return 1, user, self.cfg.hostname, rest
                return 0, user, domain, rest
            if not user:
                return 0, user, domain, rest
            if not domain:
                return 1, user, self.cfg.hostname, rest
            return 0, user, domain, rest
        return 1, user, domain, rest

    # ------------------------------------------------------------------------------------------
    # 6.8: smtp_command() and the smtp_check_*() / smtp_proceed_*() functions
    # ------------------------------------------------------------------------------------------

    def _command68(self, line: str) -> None:
        """6.8 ``smtp_session.c:smtp_command()``."""
        st = self._st
        if st == ST_AUTH_INIT:
            self._auth_plain(line)
            return
        if st == ST_AUTH_USERNAME or st == ST_AUTH_PASSWORD:
            self._auth_login(line)
            return
        cmd, args = _parse_command(line)
        if cmd == CMD_HELO or cmd == CMD_EHLO:
            if self._check_helo68(cmd, args):
                self._filter_phase68("helo" if cmd == CMD_HELO else "ehlo", args)
        elif cmd == CMD_STARTTLS:
            if self._check_starttls68(args):
                self._filter_phase68("starttls", None)
        elif cmd == CMD_AUTH:
            if self._check_auth68(args):
                self._filter_phase68("auth", args)
        elif cmd == CMD_MAIL_FROM:
            if self._check_mail_from68(args):
                self._filter_phase68("mail", args)
        elif cmd == CMD_RCPT_TO:
            if self._check_rcpt_to68(args):
                self._filter_phase68("rcpt", args)
        elif cmd == CMD_RSET:
            if self._check_noparam68(args):
                if not self.helo:
                    self._reply("503 5.5.1 Invalid command: Command not allowed at this point.")
                else:
                    self._filter_phase68("rset", None)
        elif cmd == CMD_DATA:
            if self._check_noparam68(args):
                if not self._tx:
                    self._reply("503 5.5.1 Invalid command: Command not allowed at this point.")
                elif self._rcptcount == 0:
                    self._reply("503 5.5.4 Invalid command arguments: No recipient specified")
                else:
                    self._filter_phase68("data", None)
        elif cmd == CMD_QUIT:
            if self._check_noparam68(args):
                self._filter_phase68("quit", None)
        elif cmd == CMD_NOOP:
            if self._check_noparam68(args):
                self._filter_phase68("noop", None)
        elif cmd == CMD_HELP:
            if self._check_noparam68(args):
                self._proceed68("help", None)
        elif cmd == CMD_WIZ:
            if self._check_noparam68(args):
                self._proceed68("wiz", None)
        else:
            self._reply("500 5.5.1 Invalid command: Command unrecognized")

    def _check_noparam68(self, args: str | None) -> bool:
        """``smtp_check_noparam()``."""
        if args is not None:
            self._reply("500 5.5.4 Invalid command arguments: command does not accept arguments.")
            return False
        return True

    def _check_helo68(self, cmd: int, args: str | None) -> bool:
        """``smtp_check_helo()`` / ``smtp_check_ehlo()``."""
        if not self._banner_sent:
            self._reply("503 5.5.1 Invalid command: Command not allowed at this point.")
        elif self.helo:
            self._reply("503 5.5.1 Invalid command: Already identified")
        elif args is None:
            self._reply("501 5.5.1 Invalid command: %s requires domain name"
                        % ("HELO" if cmd == CMD_HELO else "EHLO"))
        elif not valid_domainpart(args, "6.8"):
            self._reply("501 5.5.4 Invalid command arguments: Invalid domain name")
        else:
            return True
        return False

    def _check_starttls68(self, args: str | None) -> bool:
        """``smtp_check_starttls()``."""
        if not self.helo or self._tx:
            self._reply("503 5.5.1 Invalid command: Command not allowed at this point.")
        elif not self.cfg.tls:
            self._reply("503 5.5.1 Invalid command: Command not supported")
        elif self.flags & SF_SECURE:
            self._reply("503 5.5.1 Invalid command: Channel already secured")
        elif args is not None:
            self._reply("501 5.5.4 Invalid command arguments: No parameters allowed")
        else:
            return True
        return False

    def _check_auth68(self, args: str | None) -> bool:
        """``smtp_check_auth()``."""
        if not self.helo or self._tx:
            self._reply("503 5.5.1 Invalid command: Command not allowed at this point.")
        elif self.flags & SF_AUTHENTICATED:
            self._reply("503 5.5.1 Invalid command: Already authenticated")
        elif not self._advertise_auth():
            self._reply("503 5.5.1 Invalid command: Command not supported")
        elif args is None:
            self._reply("501 5.5.4 Invalid command arguments: No parameters given")
        else:
            return True
        return False

    def _check_mail_from68(self, args: str | None) -> bool:
        """``smtp_check_mail_from()``."""
        cfg = self.cfg
        if not self.helo or self._tx:
            self._reply("503 5.5.1 Invalid command: Command not allowed at this point.")
        elif cfg.tls_required and not self.flags & SF_SECURE:
            self._reply("530 5.5.1 Invalid command: Must issue a STARTTLS command first")
        elif cfg.auth_required and not self.flags & SF_AUTHENTICATED:
            self._reply("530 5.5.1 Invalid command: Must issue an AUTH command first")
        elif self.mailcount >= cfg.max_mails:
            self._reply("452 4.5.3 Too many recipients: Too many messages sent")
        elif self._mailaddr(args, True)[0] != 1:
            self._reply("553 5.1.0 Sender address syntax error")
        else:
            return True
        return False

    def _check_rcpt_to68(self, args: str | None) -> bool:
        """``smtp_check_rcpt_to()`` (which already stores the address in tx->evp.rcpt)."""
        if not self._tx:
            self._reply("503 5.5.1 Invalid command: Command not allowed at this point.")
            return False
        if self._rcptcount >= self.cfg.max_rcpt:
            self._reply("451 4.5.3 Too many recipients: Too many recipients")
            return False
        ok, user, domain, _rest = self._mailaddr(args, False)
        if ok >= 0:
            self._ruser, self._rdomain = user, domain
        if ok != 1:
            self._reply("501 5.1.3 Recipient address syntax error")
            return False
        return True

    def _filter_phase68(self, phase: str, param: str | None) -> None:
        """6.8 ``smtp_session.c:smtp_filter_phase()``: ask lka on a filtered listener,
        else proceed at once."""
        self._wphase = phase
        self._wparam = param
        if self._lka:
            self._request(FilterQuery(phase, param if param is not None else ""), W_FILTER)
            return
        self._proceed68(phase, param)

    def _proceed68(self, phase: str, param: str | None) -> None:
        """The ``smtp_proceed_*()`` of a phase (the ``commands[]`` table)."""
        if phase == "connect":
            self._banner()  # smtp_proceed_connected() (no SMTPS listener)
        elif phase == "helo" or phase == "ehlo":
            # smtp_proceed_helo() / smtp_proceed_ehlo()
            self.helo = param or ""
            self.flags &= SF_SECURE | SF_AUTHENTICATED | SF_VERIFIED
            ehlo = phase == "ehlo"
            if ehlo:
                self.flags |= SF_EHLO | SF_8BITMIME
            self._st = ST_HELO
            self._reply(self._ehlo_reply(self.helo, "-" if ehlo else " ", ehlo))
        elif phase == "starttls":
            self._reply("220 2.0.0 Ready to start TLS")
            self._st = ST_TLS
            self._request(StartTls(), W_TLS)  # IO_LOWAT in STATE_TLS: smtp_cert_init()
        elif phase == "auth":
            self._proceed_auth(param or "")
        elif phase == "mail":
            self._proceed_mail_from68(param)
        elif phase == "rcpt":
            self._tx_rcpt_to68(param)
        elif phase == "data":
            self._request(OpenMessage(self._msgid), W_OPEN)  # smtp_tx_open_message()
        elif phase == "rset":
            self._reply("250 2.0.0 Reset state")
            if self._tx:
                if self._msgid:
                    self._out.append(RollbackMessage(self._msgid))
                self._reset_tx()
        elif phase == "quit":
            self._reply("221 2.0.0 Bye")
            self._quit("quit")
        elif phase == "noop":
            self._reply("250 2.0.0 Ok")
        elif phase == "help":
            self._reply("214-2.0.0 This is OpenSMTPD\n"
                        "214-2.0.0 To report bugs in the implementation, please contact bugs@openbsd.org\n"
                        "214-2.0.0 with full details\n"
                        "214 2.0.0 End of HELP info")
        elif phase == "wiz":
            self._reply("500 5.5.1 Invalid command: this feature is not supported yet ;-)")
        elif phase == "commit":
            self._message_end68()

    def _proceed_mail_from68(self, args: str | None) -> None:
        """``smtp_proceed_mail_from()`` → ``smtp_tx()`` → ``smtp_tx_mail_from()``: options,
        then ``smtp_tx_create_message()``."""
        ok, user, domain, rest = self._mailaddr(args, True)
        if ok != 1:  # pragma: no cover - checked by smtp_check_mail_from(); reachable via filters
            self._reply("553 5.1.0 Sender address syntax error")
            return
        self._reset_tx()
        self._tx = True  # smtp_tx()
        self._parser = Rfc5322Parser()
        self._sender = f"{user}@{domain}" if (user or domain) else ""
        for opt in rest.split(" "):
            if not opt:
                continue
            o = opt.translate(_UPPER)
            if o.startswith("AUTH=") or o.startswith("SIZE=") or o == "BODY=8BITMIME":
                continue
            if o == "BODY=7BIT":
                self.flags &= ~SF_8BITMIME
            elif self.cfg.dsn and o.startswith("RET="):
                if o[4:] == "HDRS":
                    self._dsn_ret = DSN_RETHDRS
                elif o[4:] == "FULL":
                    self._dsn_ret = DSN_RETFULL
            elif self.cfg.dsn and o.startswith("ENVID="):
                if len(opt) - 6 >= DSN_ENVID_LEN + 1:
                    self._reply("503 5.5.4 Invalid command arguments: option too large, "
                                f"truncated: {opt[6:]}")
                    self._reset_tx()
                    return
                self._dsn_envid = opt[6:]
            else:
                self._reply(f"503 5.5.4 Invalid command arguments: Unsupported option {opt}")
                self._reset_tx()
                return
        self._request(CreateMessage(), W_CREATE)

    def _tx_rcpt_to68(self, args: str | None) -> None:
        """``smtp_tx_rcpt_to()``: limit, address, DSN options (NOTIFY flags accumulate over
        the transaction), then IMSG_SMTP_EXPAND_RCPT."""
        if self._rcptcount >= self.cfg.max_rcpt:  # pragma: no cover - checked before
            self._reply("451 4.5.3 Too many recipients: Too many recipients")
            return
        ok, user, domain, rest = self._mailaddr(args, False)
        if ok >= 0:
            self._ruser, self._rdomain = user, domain
        if ok != 1:  # pragma: no cover - checked before
            self._reply("501 5.1.3 Recipient address syntax error")
            return
        dsn = self.cfg.dsn
        for opt in rest.split(" "):
            if not opt:
                continue
            o = opt.translate(_UPPER)
            if dsn and o.startswith("NOTIFY="):
                for p in o[7:].split(","):
                    self._dsn_notify |= _NOTIFY.get(p, 0)
                if self._dsn_notify & DSN_NEVER and \
                        self._dsn_notify & (DSN_SUCCESS | DSN_FAILURE | DSN_DELAY):
                    self._reply("553 NOTIFY option NEVER cannot be combined with other options")
                    return
            elif dsn and o.startswith("ORCPT="):
                val = opt[6:]
                if val[:7].translate(_UPPER) == "RFC822;":
                    val = val[7:]
                parsed = text_to_mailaddr(val)
                if parsed is None or not valid_localpart(parsed[0]) or \
                        (parsed[1] and not valid_domainpart(parsed[1], "6.8")):
                    self._dsn_orcpt = None
                    self._reply("553 ORCPT address syntax error")
                    return
                self._dsn_orcpt = f"{parsed[0]}@{parsed[1]}"
            else:
                self._reply(f"503 Unsupported option {opt}")
                return
        self._request(ExpandRcpt(f"{user}@{domain}", self._sender, self._dsn_notify,
                                 self._dsn_orcpt), W_RCPT)

    def _message_begin68(self) -> None:
        """``smtp_session.c:smtp_message_begin()``: 354, the Received: header, STATE_BODY."""
        self._reply('354 Enter mail, end with "." on a line by itself')
        if self.cfg.keep_body:
            self._body = []
        parts = ["Received: "]
        parts.append(f"from {self.helo} ({self._rdns} {self._addr_br})")
        f = self.flags
        parts.append(f"\n\tby {self.cfg.hostname} ({SMTPD_NAME}) with "
                     f"{'E' if f & SF_EHLO else ''}SMTP{'S' if f & SF_SECURE else ''}"
                     f"{'A' if f & SF_AUTHENTICATED else ''} id {self._msgid:08x}")
        if f & SF_SECURE:
            ver, cipher, bits = self._tls_desc
            parts.append(f" ({ver}:{cipher}:{bits}:{'YES' if f & SF_VERIFIED else 'NO'})")
        if self._rcptcount == 1:
            parts.append(f"\n\tfor <{self._ruser}@{self._rdomain}>")
        parts.append(f";\n\t{self._date}\n")
        self._emit("".join(parts).encode("latin-1", "replace"))
        self._st = ST_BODY

    def _tx_dataline68(self, line: bytes) -> bool:
        """``smtp_session.c:smtp_tx_dataline()``: one message line through the ``rfc5322.c``
        parser into the message file; True at the end of the message (``"."``)."""
        if line == b".":
            if self._txerr:
                return True
            cur: bytes | None = None
        else:
            if self._txerr:
                return False
            cur = line[1:] if line[:1] == b"." else line  # dot-stuffing
        parser = self._parser
        if not parser.push(cur):  # pragma: no cover - every call consumes its line
            self._txerr = TX_ERROR_INTERNAL
            return False
        emit = self._emit
        while True:
            r = parser.next()
            if r == RFC5322_NONE:
                return False  # need more data
            if r == RFC5322_BODY:
                value = parser.value
                assert value is not None
                self._odatalen += len(value) + 1
                if self._body is not None:
                    self._body.append(value + b"\n")
                return False  # the line is consumed: rfc5322_next() would say RFC5322_NONE
            elif r == RFC5322_HEADER_START:
                hdr = parser.hdr
                hl = hdr.lower()
                if hl == b"bcc":
                    continue
                if hl in _HDR_ADDR:
                    parser.unfold_header()  # its errors are ignored
                    continue
                if hl == b"received":
                    self._rcvcount += 1
                    if self._rcvcount >= MAX_HOPS_COUNT:
                        self._txerr = TX_ERROR_LOOP
                        return False
                elif hl == b"date":
                    self._has_date = True
                elif hl == b"message-id":
                    self._has_mid = True
                emit(hdr + b":" + (parser.value or b"") + b"\n")
            elif r == RFC5322_HEADER_CONT:
                if parser.hdr.lower() not in _HDR_SKIP_CONT:
                    emit((parser.value or b"") + b"\n")
            elif r == RFC5322_HEADER_END:
                if parser.hdr.lower() in _HDR_ADDR:
                    value = parser.value
                    emit(_domain_append_lines(parser.hdr, value.split(b"\n") if value is not None
                                              else None, self._hostb, SMTP_LINE_MAX))
            elif r == RFC5322_END_OF_HEADERS:
                if self._local or self.cfg.listener_local:
                    if not self._has_date:
                        emit(f"Date: {self._date}\n".encode("latin-1", "replace"))
                    if not self._has_mid:
                        self._uid += 1
                        uid = (self._msgid << 32) | self._uid
                        emit(f"Message-ID: <{uid:016x}@{self.cfg.hostname}>\n".encode("latin-1", "replace"))
            elif r == RFC5322_BODY_START:
                emit(b"\n")
                return False  # consumed, as above
            elif r == RFC5322_END_OF_MESSAGE:
                return True
            else:  # RFC5322_ERR
                self._txerr = TX_ERROR_MALFORMED
                return False

    def _message_end68(self) -> None:
        """``smtp_session.c:smtp_message_end()``: commit, or the error reply and rollback."""
        err = self._txerr
        if err == TX_OK:
            body = b"".join(self._body) if self._body is not None else None
            self._request(CommitMessage(self._msgid, self._odatalen, body), W_COMMIT)
            return
        if err == TX_ERROR_SIZE:
            self._reply("554 5.3.4 Message too big for system: Transaction failed, message too big")
        elif err == TX_ERROR_LOOP:
            self._reply("500 5.4.6 Routing loop detected: Loop detected")
        elif err == TX_ERROR_MALFORMED:
            self._reply("550 5.7.1 Delivery not authorized, message refused: "
                        "Message is not RFC 2822 compliant")
        elif err == TX_ERROR_IO or err == TX_ERROR_RESOURCES:  # pragma: no cover - no I/O here
            self._reply("421 4.3.0 Temporary Error")
        else:
            self._reply("421 Internal server error")
        self._rollback_tx68()

    def _rollback_tx68(self) -> None:
        """``smtp_tx_rollback()`` + ``smtp_tx_free()`` + STATE_HELO."""
        if self._msgid:
            self._out.append(RollbackMessage(self._msgid))
        self._reset_tx()
        self._st = ST_HELO

    # ------------------------------------------------------------------------------------------
    # 5.4.2 / 5.7.3: smtp_command()
    # ------------------------------------------------------------------------------------------

    def _command5(self, line: str) -> None:
        """5.4.2 / 5.7.3 ``smtp_session.c:smtp_command()``."""
        self.kickcount += 1
        if self.kickcount >= SMTP_KICK_CMD:
            self.flags |= SF_KICK  # "session not moving forward", dropped without a reply
            return
        st = self._st
        if st == ST_AUTH_INIT:
            self._auth_plain(line)
            return
        if st == ST_AUTH_USERNAME or st == ST_AUTH_PASSWORD:
            self._auth_login(line)
            return
        cmd, args = _parse_command(line)
        v = self._v
        phase = self._phase
        cfg = self.cfg
        not_allowed = "503 5.5.1 Invalid command: Command not allowed at this point."
        if cmd == CMD_HELO or cmd == CMD_EHLO:
            if v == V542 and phase != PH_INIT:
                self._reply("503 5.5.1 Invalid command: Already indentified")
                return
            if args is None:
                self._reply("501 5.5.1 Invalid command: %s requires domain name"
                            % ("HELO" if cmd == CMD_HELO else "EHLO"))
                return
            if not valid_domainpart(args, self._vname):
                self._reply("501 5.5.4 Invalid command arguments: Invalid domain name")
                return
            self.helo = args
            keep = SF_SECURE | SF_AUTHENTICATED | SF_VERIFIED
            if v == V573:
                keep |= SF_FILTERCONN
            self.flags &= keep  # 5.4.2: also clears SF_MFACONNSENT (era-5.4.2-mfa.md §0.3)
            if cmd == CMD_EHLO:
                self.flags |= SF_EHLO | SF_8BITMIME
            self._message_reset5(True)  # 5.7.3: drops an open transaction without rollback
            self._filter5("helo", self.helo)
        elif cmd == CMD_STARTTLS:
            if phase != PH_SETUP:
                self._reply(not_allowed)
            elif not cfg.tls:
                self._reply("503 5.5.1 Invalid command: Command not supported")
            elif self.flags & SF_SECURE:
                self._reply("503 5.5.1 Invalid command: Channel already secured")
            elif args is not None:
                self._reply("501 5.5.4 Invalid command arguments: No parameters allowed")
            else:
                self._reply("220 2.0.0: Ready to start TLS")
                self._st = ST_TLS
                self._request(StartTls(), W_TLS)
        elif cmd == CMD_AUTH:
            if phase != PH_SETUP:
                self._reply(not_allowed)
            elif self.flags & SF_AUTHENTICATED:
                self._reply("503 5.5.1 Invalid command: Already authenticated")
            elif not self._advertise_auth():
                self._reply("503 5.5.1 Invalid command: Command not supported")
            elif args is None:
                self._reply("501 5.5.4 Invalid command arguments: No parameters given")
            else:
                self._proceed_auth(args)
        elif cmd == CMD_MAIL_FROM:
            if phase != PH_SETUP:
                self._reply(not_allowed)
            elif cfg.tls_required and not self.flags & SF_SECURE:
                self._reply("530 5.5.1 Invalid command: Must issue a STARTTLS command first")
            elif cfg.auth_required and not self.flags & SF_AUTHENTICATED:
                self._reply("530 5.5.1 Invalid command: Must issue an AUTH command first")
            elif self.mailcount >= cfg.max_mails:
                self._reply("452 4.5.3 Too many recipients: Too many messages sent")
            else:
                self._message_reset5(True)
                ok, user, domain, rest = self._mailaddr(args, True)
                if ok != 1:
                    self._reply("553 5.1.0: Sender address syntax error")
                    return
                self._sender = f"{user}@{domain}" if (user or domain) else ""
                if self._parse_mail_args5(rest):
                    self._filter5("mail", self._sender)
        elif cmd == CMD_RCPT_TO:
            if phase != PH_TRANSACTION:
                self._reply(not_allowed)
            elif self._rcptcount >= cfg.max_rcpt:
                self._reply("451 4.5.3 Too many recipients: Too many recipients")
            else:
                ok, user, domain, rest = self._mailaddr(args, False)
                if ok >= 0:
                    self._ruser, self._rdomain = user, domain
                if ok != 1:
                    self._reply("501 5.1.3: Recipient address syntax error")
                    return
                if self._parse_rcpt_args5(rest):
                    self._filter5("rcpt", self._rcpt_text())
        elif cmd == CMD_RSET:
            if phase != PH_TRANSACTION and phase != PH_SETUP:
                self._reply(not_allowed)
                return
            if self._mfa:
                self._out.append(FilterEvent("rset"))
            if self._msgid:
                self._out.append(RollbackMessage(self._msgid))
            self._phase = PH_SETUP
            self._message_reset5(False)
            self._reply("250 2.0.0: Reset state")
        elif cmd == CMD_DATA:
            if phase != PH_TRANSACTION:
                self._reply(not_allowed)
            elif self._rcptcount == 0:
                self._reply("503 5.5.4 Invalid command arguments: No recipient specified")
            else:
                if v == V573:  # rfc2822_parser_reset(): in_hdr and the name survive
                    self._rfc2822.reset()
                self._filter5("data", "")
        elif cmd == CMD_QUIT:
            self._reply("221 2.0.0: Bye")
            self._quit("quit")
        elif cmd == CMD_NOOP:
            self._reply("250 2.0.0: Ok")
        elif cmd == CMD_HELP:
            self._reply("214- This is OpenSMTPD\n"
                        "214- To report bugs in the implementation, please contact bugs@openbsd.org\n"
                        "214- with full details\n"
                        "214 2.0.0: End of HELP info")
        elif cmd == CMD_WIZ:
            self._reply("500 5.5.1 Invalid command: this feature is not supported yet ;-)")
        else:
            self._reply("500 5.5.1 Invalid command: Command unrecognized")

    def _parse_mail_args5(self, rest: str) -> bool:
        """5.x ``smtp_session.c:smtp_parse_mail_args()``."""
        dsn = self._dsn
        for opt in rest.split(" "):
            if not opt:
                continue
            o = opt.translate(_UPPER)
            if o.startswith("AUTH=") or o.startswith("SIZE=") or o == "BODY=8BITMIME":
                continue
            if o == "BODY=7BIT":
                self.flags &= ~SF_8BITMIME
            elif dsn and o.startswith("RET="):
                if o[4:] == "HDRS":
                    self._dsn_ret = DSN_RETHDRS
                elif o[4:] == "FULL":
                    self._dsn_ret = DSN_RETFULL
            elif dsn and o.startswith("ENVID="):
                if self._v == V573 and len(opt) - 6 >= DSN_ENVID_LEN + 1:
                    self._reply("503 5.5.4 Invalid command arguments: option too large, "
                                f"truncated: {opt[6:]}")
                    return False
                self._dsn_envid = opt[6:6 + DSN_ENVID_LEN]
            else:
                self._reply(f"503 5.5.4 Invalid command arguments: Unsupported option {opt}")
                return False
        return True

    def _parse_rcpt_args5(self, rest: str) -> bool:
        """5.x ``smtp_session.c:smtp_parse_rcpt_args()``."""
        dsn = self._dsn
        for opt in rest.split(" "):
            if not opt:
                continue
            o = opt.translate(_UPPER)
            if dsn and o.startswith("NOTIFY="):
                for p in o[7:].split(","):
                    self._dsn_notify |= _NOTIFY.get(p, 0)
                if self._dsn_notify & DSN_NEVER and \
                        self._dsn_notify & (DSN_SUCCESS | DSN_FAILURE | DSN_DELAY):
                    # a backslash-continued string literal: the next line's indentation is in it
                    self._reply("553 NOTIFY option NEVER cannot be \t\t\t\t    combined with other options")
                    return False
            elif dsn and o.startswith("ORCPT="):
                parsed = text_to_mailaddr(opt[6:])
                if parsed is None:
                    self._reply("553 ORCPT address syntax error")
                    return False
                self._dsn_orcpt = f"{parsed[0]}@{parsed[1]}"
            else:
                self._reply(f"503 Unsupported option {opt}")
                return False
        return True

    def _filter5(self, query: str, param: str) -> None:
        """5.4.2 ``m_create(p_mfa, IMSG_MFA_REQ_*)`` + ``smtp_wait_mfa()`` (5.7.3
        ``smtp_filter_*()`` in-process, answered at once)."""
        if self._mfa:
            self._wphase = query
            self._request(FilterQuery(query, param), W_FILTER)
            return
        self._mfa_response5(query, "proceed", None, None)

    def _mfa_response5(self, query: str, decision: str, code: int | None,
                       text: str | None) -> None:
        """5.4.2 ``smtp_session.c:smtp_mfa_response()`` / 5.7.3 ``smtp_filter_response()``."""
        if code is not None and not 100 <= code <= 599:
            code = None  # not a reply code: the phase's default instead
        if text is not None and ("\n" in text or "\r" in text):
            text = text.replace("\r", " ").replace("\n", " ")  # one reply line, always
        if decision == "disconnect":  # MFA_CLOSE / FILTER_CLOSE
            self._reply(f"{code or 421} {text if text is not None else 'Temporary failure'}")
            self._quit("filter")
            return
        ok = decision == "proceed"
        if query == "connect":
            if not ok:
                self._free("rejected by filter")
                return
            self._banner()
        elif query == "helo":
            if not ok:
                self._reply(f"{code or 530} {text if text is not None else 'Hello rejected'}")
                return
            self._st = ST_HELO
            ehlo = bool(self.flags & SF_EHLO)
            self._reply(self._ehlo_reply(self._evp_helo, "-" if ehlo else " ", ehlo))
            self.kickcount = 0
            self._phase = PH_SETUP
        elif query == "mail":
            if not ok:
                self._reply(f"{code or 530} {text if text is not None else 'Sender rejected'}")
                return
            self._request(CreateMessage(), W_CREATE)
        elif query == "rcpt":
            if not ok:
                self._reply(f"{code or 530} {text if text is not None else 'Recipient rejected'}")
                self._rcpt_failed5()
                return
            self._request(ExpandRcpt(self._rcpt_text(), self._sender, self._dsn_notify,
                                     self._dsn_orcpt), W_RCPT)
        elif query == "data":
            if not ok:
                self._reply(f"{code or 530} {text if text is not None else 'Message rejected'}")
                return
            self._request(OpenMessage(self._msgid), W_OPEN)
        elif query == "eom":
            if not ok:  # the state stays STATE_BODY (only reachable with filters)
                self._reply(f"{code or 530} {text if text is not None else 'Message rejected'}")
                return
            self._message_end5()

    def _rcpt_failed5(self) -> None:
        self.rcptfail += 1
        if self.rcptfail >= SMTP_KICK_RCPTFAIL:
            self._quit("too many failed RCPT")

    def _message_begin5(self) -> None:
        """5.4.2 ``smtp_session_imsg()`` IMSG_QUEUE_MESSAGE_FILE / 5.7.3 ``smtp_filter_fd()``:
        the Received: header, STATE_BODY, 354."""
        if self.cfg.keep_body:
            self._body = []
        f = self.flags
        with_ = (f"{'E' if f & SF_EHLO else ''}SMTP{'S' if f & SF_SECURE else ''}"
                 f"{'A' if f & SF_AUTHENTICATED else ''}")
        ver, cipher, bits = self._tls_desc
        verify = "YES" if f & SF_VERIFIED else "NO"
        if self._v == V542:
            parts = [f"Received: from {self._evp_helo} ({self._rdns} {self._addr_br});\n\t"
                     f"by {self.cfg.hostname} ({SMTPD_NAME}) with {with_} id {self._msgid:08x};\n"]
            if f & SF_SECURE:
                parts.append(f"\tTLS version={ver} cipher={cipher} bits={bits} verify={verify};\n")
            if self._rcptcount == 1:
                parts.append(f"\tfor <{self._ruser}@{self._rdomain}>;\n")
            parts.append(f"\t{self._date}\n")
        else:
            parts = [f"Received: from {self._evp_helo} ({self._rdns} {self._addr_br})"
                     f"\n\tby {self.cfg.hostname} ({SMTPD_NAME}) with {with_} id {self._msgid:08x}"]
            if f & SF_SECURE:
                parts.append(f"\n\tTLS version={ver} cipher={cipher} bits={bits} verify={verify}")
            if self._rcptcount == 1:
                parts.append(f"\n\tfor <{self._ruser}@{self._rdomain}>")
            parts.append(f";\n\t{self._date}\n")
        self._emit("".join(parts).encode("latin-1", "replace"))
        self._st = ST_BODY
        self._reply('354 Enter mail, end with "." on a line by itself')

    def _body_line542(self, line: bytes) -> None:
        """5.4.2 ``smtp_io()`` body line + ``smtp_message_write()``."""
        if line[:1] == b".":
            line = line[1:]
        if not self.flags & SF_8BITMIME:
            line = _c_string(line.translate(_STRIP8))
        if self._txerr & MF_ERROR_542:
            return
        n = len(line) + 1
        if self._datain + n > self._maxsize:
            self._txerr |= MF_ERROR_SIZE
            return
        self._datain += n
        self._odatalen += n
        if self._body is not None:
            self._body.append(line + b"\n")

    def _body_line573(self, line: bytes) -> None:
        """5.7.3 ``smtp_io()`` body line (Bcc stripping, 8th bit) + ``smtp_filter_dataline()``."""
        if line[:1] == b".":
            line = line[1:]
        if self._skiphdr and line[:1] and line[0] in _B_SPACE:
            return
        self._skiphdr = False
        if not self._hdrdone and line[:4].lower() == b"bcc:":
            self._skiphdr = True
            return
        if not self.flags & SF_8BITMIME:
            line = _c_string(line.translate(_STRIP8))
        if self._txerr & MF_ERROR:
            return
        if not line:
            self._hdrdone = True
        self._datain += len(line) + 1
        if self._datain > self._maxsize:
            self._txerr |= MF_ERROR_SIZE
            return
        if not self._hdrdone:
            if line[:10].lower() == b"received: ":
                self._rcvcount += 1
            if self._rcvcount == MAX_HOPS_COUNT:
                self._txerr |= MF_ERROR_LOOP
                return
        if not self._rfc2822.feed(line):
            self._txerr |= MF_ERROR_MALFORMED

    # 5.7.3 smtp_session.c: the rfc2822 parser's callbacks

    def _header_default_callback(self, name: bytes, lines: list[bytes]) -> None:
        """5.7.3 ``smtp_session.c:header_default_callback()``: the header as it came."""
        self._emit(name + b":" + b"".join(ln + b"\n" for ln in lines))

    def _header_bcc_callback(self, name: bytes, lines: list[bytes]) -> None:
        """5.7.3 ``smtp_session.c:header_bcc_callback()``: Bcc: dropped."""

    def _header_domain_append_callback(self, name: bytes, lines: list[bytes]) -> None:
        """5.7.3 ``smtp_session.c:header_domain_append_callback()`` (From, To, Cc)."""
        self._emit(_domain_append_lines(name, lines, self._hostb, APPEND_DOMAIN_BUFFER_SIZE[V573]))

    def _dataline_callback(self, line: bytes) -> None:
        """5.7.3 ``smtp_session.c:dataline_callback()``: a body line into the message file."""
        self._odatalen += len(line) + 1
        if self._body is not None:
            self._body.append(line + b"\n")

    def _data_io_done573(self) -> None:
        """5.7.3 ``smtp_session.c:smtp_data_io_done()`` (note: the phase is left as it was
        on error, PHASE_TRANSACTION without a message: a C bug kept here)."""
        mf = self._txerr
        if mf & MF_ERROR:
            if self._msgid:
                self._out.append(RollbackMessage(self._msgid))
            if mf & MF_ERROR_SIZE:
                self._reply("554 Message too big")
            elif mf & MF_ERROR_LOOP:
                self._reply("500 5.4.6 Routing loop detected: Loop detected")
            elif mf & MF_ERROR_RESOURCES:  # pragma: no cover - no allocation failures here
                self._reply("421 4.3.0: Temporary Error")
            elif mf & MF_ERROR_MALFORMED:
                self._reply("550 5.7.1 Delivery not authorized, message refused: "
                            "Message is not RFC 2822 compliant")
            else:  # pragma: no cover
                self._reply("421 Internal server error")
            self._message_reset5(False)
            self._st = ST_HELO
            return
        self._filter5("eom", str(self._odatalen))

    def _message_end5(self) -> None:
        """5.x ``smtp_session.c:smtp_message_end()``."""
        self._phase = PH_SETUP
        if self._txerr & (MF_ERROR_542 if self._v == V542 else MF_ERROR):
            if self._msgid:
                self._out.append(RollbackMessage(self._msgid))
            if self._txerr & MF_ERROR_SIZE:
                self._reply("554 5.3.4 Message too big for system: Transaction failed, message too big")
            else:  # pragma: no cover - msgcode is never set: "0 Message rejected" in the C
                self._reply("421 Message rejected")
            self._message_reset5(False)
            self._st = ST_HELO
            return
        body = b"".join(self._body) if self._body is not None else None
        self._request(CommitMessage(self._msgid, self._odatalen, body), W_COMMIT)

    # ------------------------------------------------------------------------------------------
    # AUTH (smtp_rfc4954_auth_plain() / smtp_rfc4954_auth_login())
    # ------------------------------------------------------------------------------------------

    def _proceed_auth(self, args: str) -> None:
        """6.8 ``smtp_proceed_auth()`` / 5.x ``smtp_command()`` CMD_AUTH: the method."""
        sp = args.find(" ")
        if sp < 0:
            sp = args.find("\t")
        method, rest = (args, None) if sp < 0 else (args[:sp], args[sp + 1:])
        m = method.translate(_UPPER)
        if m == "PLAIN":
            self._auth_plain(rest)
        elif m == "LOGIN":
            self._auth_login(rest)
        else:
            self._reply("504 5.7.4 Security features not supported: "
                        f'AUTH method "{method}" not supported')

    def _auth_abort(self) -> None:
        self._reply("501 5.5.2 Syntax error: Syntax error")
        self._st = ST_HELO

    def _auth_plain(self, arg: str | None) -> None:
        """``smtp_session.c:smtp_rfc4954_auth_plain()``."""
        if self._st == ST_HELO:
            self._st = ST_AUTH_INIT
            if arg is None:
                self._reply("334 ")
                return
        buf = b64_pton(arg or "", 1023)
        if buf is None:
            self._auth_abort()
            return
        n = len(buf)
        u = buf.find(b"\0")
        if u < 0 or u >= n - 2:
            self._auth_abort()
            return
        user = _c_string(buf[u + 1:])
        if len(user) >= _USERNAME_SIZE[self._v]:
            self._auth_abort()
            return
        p = buf.find(b"\0", u + 1)
        if p < 0 or p >= n - 2:
            self._auth_abort()
            return
        self.username = user.decode("latin-1")
        self._request(Authenticate("PLAIN", self.username, _c_string(buf[p + 1:]).decode("latin-1")),
                      W_AUTH)

    def _auth_login(self, arg: str | None) -> None:
        """``smtp_session.c:smtp_rfc4954_auth_login()`` (6.8 takes an initial username
        argument, 5.x ignore it)."""
        st = self._st
        if st == ST_HELO:
            self._st = ST_AUTH_USERNAME
            if self._v == V68 and arg:
                self._auth_login(arg)
                return
            self._reply("334 VXNlcm5hbWU6")
            return
        if st == ST_AUTH_USERNAME:
            user = b64_pton(arg or "", _USERNAME_SIZE[self._v] - 1)
            if user is None:
                self._auth_abort()
                return
            self.username = _c_string(user).decode("latin-1")
            self._st = ST_AUTH_PASSWORD
            self._reply("334 UGFzc3dvcmQ6")
            return
        pw = b64_pton(arg or "", LINE_MAX - 1)
        if pw is None:
            self._auth_abort()
            return
        self._request(Authenticate("LOGIN", self.username, _c_string(pw).decode("latin-1")), W_AUTH)

    # ------------------------------------------------------------------------------------------
    # event handlers (smtp_session_imsg() and the callbacks)
    # ------------------------------------------------------------------------------------------

    def _on_filter_result(self, ev: FilterResult) -> None:
        """6.8 ``smtp_session_imsg()`` IMSG_FILTER_SMTP_PROTOCOL / 5.4.2
        ``smtp_mfa_response()``."""
        decision = ev.decision
        if self._v != V68:
            self._mfa_response5(self._wphase, decision, ev.code, ev.text)
            return
        phase = self._wphase
        if decision == "proceed":
            self._proceed68(phase, self._wparam)
            return
        if ev.code is not None:
            param = f"{ev.code} {ev.text or ''}"
        else:
            param = ev.text or ""
        if not valid_smtp_response(param) or param[0] not in "45":
            param = "421 Internal server error"
        self._reply(param)
        if decision == "disconnect" or param.startswith("421"):
            self._quit("filter")
        elif phase == "commit":
            self._rollback_tx68()  # smtp_proceed_rollback()

    def _on_message_created(self, ev: MessageCreated) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_CREATE_MESSAGE / IMSG_SMTP_MESSAGE_CREATE."""
        if ev.ok:
            self._msgid = ev.msgid & 0xFFFFFFFF
            self._rcptcount = 0
            if self._v == V68:
                self._reply("250 2.0.0 Ok")
            else:
                self._phase = PH_TRANSACTION
                self._reply("250 2.0.0: Ok")
            return
        if self._v == V68:
            self._reply("421 4.3.0 Temporary Error")
            self._reset_tx()
        else:
            self._reply("421 4.3.0: Temporary Error")
        self._quit("queue failure")

    def _on_envelope_submitted(self, ev: EnvelopeSubmitted) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_SUBMIT_ENVELOPE / IMSG_QUEUE_ENVELOPE_SUBMIT."""
        if ev.ok:
            self._destcount += 1
        elif self._v == V68:
            self._txerr = TX_ERROR_ENVELOPE
        else:
            self._txerr |= MF_QUEUE_ENVELOPE_FAIL

    def _on_rcpt_result(self, ev: RcptResult) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_COMMIT_ENVELOPES / IMSG_QUEUE_ENVELOPE_COMMIT
        (``ok``) and IMSG_LKA_EXPAND_RCPT / IMSG_SMTP_EXPAND_RCPT (failures)."""
        status = ev.status
        v = self._v
        if status == "ok":
            failed = self._txerr == TX_ERROR_ENVELOPE if v == V68 else \
                self._txerr & MF_QUEUE_ENVELOPE_FAIL
            if failed:
                self._reply("421 4.3.0 Temporary failure" if v == V68 else "421 4.3.0: Temporary failure")
                self._quit("envelope failure")
                return
            self._destcount = 0
            self._rcptcount += 1
            if v != V68:
                self.kickcount -= 1
            self._reply("250 2.1.5 Destination address valid: Recipient ok")
            return
        if status == "permfail":
            text = ev.text if ev.text is not None else "550 Invalid recipient"
        else:
            text = ev.text if ev.text is not None else "451 Temporary failure"
        if v == V68:
            tmp = ""
            if self._ruser:
                tmp = self._ruser + ("@" + self._rdomain if self._rdomain else "")
            self._reply(f"{text}: <{tmp}>")
            return
        self._reply(text)
        if status == "permfail":
            self._rcpt_failed5()

    def _on_message_opened(self, ev: MessageOpened) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_MESSAGE_FILE / IMSG_SMTP_MESSAGE_OPEN."""
        if not ev.ok:
            self._reply("421 4.3.0 Temporary Error" if self._v == V68 else "421 4.3.0: Temporary Error")
            self._quit("queue failure")
            return
        self._date = ev.date
        if self._v == V68:
            self._message_begin68()
        else:
            self._message_begin5()

    def _on_message_committed(self, ev: MessageCommitted) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_COMMIT_MESSAGE / IMSG_SMTP_MESSAGE_COMMIT."""
        v = self._v
        if not ev.ok:
            if v == V68:
                self._reply("421 4.3.0 Temporary failure")
                self._reset_tx()  # smtp_tx_free(): no rollback at 6.8
            else:
                if self._mfa:
                    self._out.append(FilterEvent("rollback"))
                self._reply("421 4.3.0: Temporary failure")  # smtp_free() removes the message
            self._quit("commit failure")
            return
        if v == V68:
            self._reply(f"250 2.0.0 {self._msgid:08x} Message accepted for delivery")
            self._reset_tx()
        else:
            if self._mfa:
                self._out.append(FilterEvent("commit"))
            self._reply(f"250 2.0.0: {self._msgid:08x} Message accepted for delivery")
            self.kickcount = 0
            self._phase = PH_SETUP
            self._message_reset5(False)
        self.mailcount += 1
        self._st = ST_HELO

    def _on_tls_result(self, ev: TlsResult) -> None:
        """IO_TLSREADY (+ ``smtp_cert_verify()`` without client certificate) or the
        handshake error (IO_ERROR → ``smtp_free()``)."""
        self._buf.clear()
        self._pend.clear()  # plaintext sent before the handshake was handshake bytes
        if not ev.ok:
            self._free("io-error")
            return
        self._tls_desc = (ev.version, ev.cipher, ev.bits)
        self.flags |= SF_SECURE
        if self._v == V68:
            self.helo = ""
        else:
            self.kickcount = 0
            self._phase = PH_INIT
        self._st = ST_HELO

    def _on_auth_result(self, ev: AuthResult) -> None:
        """``smtp_session_imsg()`` IMSG_SMTP_AUTHENTICATE / IMSG_LKA_AUTHENTICATE."""
        status = ev.status
        v = self._v
        if status == "ok":
            self.flags |= SF_AUTHENTICATED
            if v != V68:
                self.kickcount = 0
            self._reply("235 2.0.0 Authentication succeeded" if v == V68
                        else "235 2.0.0: Authentication succeeded")
        elif status == "permfail":
            self._reply("535 Authentication failed")  # after smtp_auth_failure_pause()
        else:
            self._reply("421 4.3.0 Temporary failure" if v == V68 else "421 4.3.0: Temporary failure")
        self._st = ST_HELO


# ---- tables used above ------------------------------------------------------------------------

_NOTIFY = {"SUCCESS": DSN_SUCCESS, "FAILURE": DSN_FAILURE, "DELAY": DSN_DELAY, "NEVER": DSN_NEVER}
_HDR_ADDR = frozenset((b"to", b"cc", b"from"))
_HDR_SKIP_CONT = frozenset((b"bcc", b"to", b"cc", b"from"))

_ACCEPTS: tuple[tuple[type, ...], ...] = (
    (),
    (FilterResult,),
    (MessageCreated,),
    (EnvelopeSubmitted, RcptResult),
    (MessageOpened,),
    (MessageCommitted,),
    (TlsResult,),
    (AuthResult,),
)

# the event's type -> the method taking it
_HANDLERS: dict[type, Callable[[SmtpSession, Any], None]] = {
    FilterResult: SmtpSession._on_filter_result,
    MessageCreated: SmtpSession._on_message_created,
    EnvelopeSubmitted: SmtpSession._on_envelope_submitted,
    RcptResult: SmtpSession._on_rcpt_result,
    MessageOpened: SmtpSession._on_message_opened,
    MessageCommitted: SmtpSession._on_message_committed,
    TlsResult: SmtpSession._on_tls_result,
    AuthResult: SmtpSession._on_auth_result,
}


_EVENT_VALUES = {
    FilterResult: ("decision", ("proceed", "reject", "disconnect")),
    RcptResult: ("status", ("ok", "permfail", "tempfail")),
    AuthResult: ("status", ("ok", "permfail", "tempfail")),
}


def _check_event(event: object) -> None:
    spec = _EVENT_VALUES.get(type(event))
    if spec is not None and getattr(event, spec[0]) not in spec[1]:
        raise ValueError(f"{type(event).__name__}.{spec[0]}: {getattr(event, spec[0])!r} is not "
                         f"one of {', '.join(spec[1])}")


def _parse_command(line: str) -> tuple[int, str | None]:
    """The verb/argument split of ``smtp_command()``: ``MAIL FROM:`` / ``RCPT TO:`` split
    at the colon, other verbs at the first space; leading whitespace of the argument is
    skipped; verbs compared case-insensitively (``strcasecmp``)."""
    head = line[:10].translate(_UPPER)
    if head == "MAIL FROM:" or head[:8] == "RCPT TO:":
        i = line.find(":")
    else:
        i = line.find(" ")
    if i >= 0:
        verb, args = line[:i], line[i + 1:].lstrip(_C_SPACE)
    else:
        verb, args = line, None
    return _COMMANDS.get(verb.translate(_UPPER), -1), args
