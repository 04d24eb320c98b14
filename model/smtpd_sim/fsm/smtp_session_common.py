"""What the three releases' ``smtp_session.c`` share: :class:`SmtpSession`, the base of
:class:`~smtpd_sim.fsm.smtp_session_68.SmtpSession68` (6.8.0p2) and
:class:`~smtpd_sim.fsm.smtp_session_5.SmtpSession5` (5.4.2, 5.7.3), with the listener
settings (:class:`SessionConfig`) and the names of ``smtp_session.c`` the three use alike.

The base class owns the public surface (:meth:`~SmtpSession.start`,
:meth:`~SmtpSession.feed`, :meth:`~SmtpSession.handle`, :meth:`~SmtpSession.close`), the
reading model (``ioev.c io_dispatch()`` into ``smtp_io()`` IO_DATAIN), replies, quitting and
freeing, the transaction fields, the EHLO answer, the banner, ``smtp_mailaddr()``'s
parsing and AUTH PLAIN / LOGIN.  A release subclass supplies the rest: ``smtp_io()``'s line
handling (:meth:`~SmtpSession._io_datain`), ``smtp_command()``, the filter or MFA round trips,
the message file and the answers to the other processes (``_on_*``).  Construct one with
:func:`smtpd_sim.fsm.smtp_session.new_session`.

The header rewriting of 5.7.3 and 6.8 (``header_append_domain_buffer()`` /
``header_domain_append_callback()``, both in their ``smtp_session.c``) is here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from smtpd_sim.fsm.address import (
    ASCII_UPPER,
    C_SPACE,
    LINE_MAX,
    b64_pton,
    text_to_mailaddr,
)
from smtpd_sim.fsm.envelope import DSN_DELAY, DSN_FAILURE, DSN_NEVER, DSN_SUCCESS
from smtpd_sim.fsm.smtp_events import (
    DEFAULT_DATE,
    Authenticate,
    AuthResult,
    Disconnect,
    EnvelopeSubmitted,
    FilterResult,
    MessageCommitted,
    MessageCreated,
    MessageOpened,
    RcptResult,
    Reply,
    RollbackMessage,
    TlsResult,
)

__all__ = [
    "SessionConfig", "SmtpSession", "STATE_NAMES", "PHASE_NAMES", "VARIANTS",
    "header_append_domain_buffer", "header_domain_append", "parse_command", "c_string",
]

# ---- limits and sizes (where they come from) --------------------------------------------------
SMTP_LIMIT_MAIL = 100  # smtp_session.c 5.4.2 SMTP_LIMIT_MAIL; config.c sc_session_max_mails (5.7.3, 6.8)
SMTP_LIMIT_RCPT = 1000  # smtp_session.c 5.4.2 SMTP_LIMIT_RCPT; config.c sc_session_max_rcpt
SMTP_LINE_MAX = 65535  # smtp_session.c 6.8 SMTP_LINE_MAX (also the bound of the bulk-body shortcut)
DEFAULT_MAX_BODY_SIZE = 35 * 1024 * 1024  # smtpd.h DEFAULT_MAX_BODY_SIZE
HOST_NAME_MAX = 255  # envelope helo[] (5.x evp.helo: SMTPD_MAXHOSTNAMELEN / HOST_NAME_MAX+1)
SMTPD_NAME = "OpenSMTPD"  # smtpd.h

VARIANTS = ("5.4.2", "5.7.3", "6.8")  # the releases modelled (SessionConfig.variant)

# ---- enum smtp_state / smtp_phase (smtp_session.c) -------------------------------------------
ST_NEW, ST_CONNECTED, ST_TLS, ST_HELO, ST_AUTH_INIT, ST_AUTH_USERNAME, ST_AUTH_PASSWORD, \
    ST_AUTH_FINALIZE, ST_BODY, ST_QUIT = range(10)
STATE_NAMES = ("STATE_NEW", "STATE_CONNECTED", "STATE_TLS", "STATE_HELO", "STATE_AUTH_INIT",
               "STATE_AUTH_USERNAME", "STATE_AUTH_PASSWORD", "STATE_AUTH_FINALIZE",
               "STATE_BODY", "STATE_QUIT")
PH_INIT, PH_SETUP, PH_TRANSACTION = range(3)
PHASE_NAMES = ("PHASE_INIT", "PHASE_SETUP", "PHASE_TRANSACTION")

# ---- enum session_flags (one set for the three releases; the C values differ) -------------
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

# the RCPT TO NOTIFY= keywords (smtp_tx_rcpt_to() 6.8, smtp_parse_rcpt_args() 5.x)
NOTIFY_FLAGS = {"SUCCESS": DSN_SUCCESS, "FAILURE": DSN_FAILURE, "DELAY": DSN_DELAY, "NEVER": DSN_NEVER}

C_ISSPACE = frozenset(b" \t\n\v\f\r")  # isspace() in the C locale, on bytes


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
    smtps: bool = False  # listener F_SMTPS (6.8): the TLS handshake before the banner

    def __post_init__(self) -> None:
        """Refuse a release, filter mode or hostname the model does not have."""
        if self.variant not in VARIANTS:
            raise ValueError(f"SessionConfig.variant: {self.variant!r} is not one of 5.4.2, 5.7.3, 6.8")
        allowed = {"5.4.2": ("none", "mfa"), "5.7.3": ("none",), "6.8": ("none", "lka")}[self.variant]
        if self.filter_mode not in allowed:
            raise ValueError(f"SessionConfig.filter_mode: {self.filter_mode!r} is not available "
                             f"in {self.variant} (expected one of {', '.join(allowed)})")
        if not self.hostname or len(self.hostname) > HOST_NAME_MAX:
            raise ValueError("SessionConfig.hostname: expected 1 to 255 characters")
        if self.smtps and self.variant != "6.8":
            raise ValueError("SessionConfig.smtps: the SMTPS listener is modelled for 6.8 only")


# ================================================================================================
# Helpers: C strings, the command line
# ================================================================================================

def c_string(b: bytes) -> bytes:
    """What C sees of a line holding a NUL: the bytes before it."""
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


def parse_command(line: str) -> tuple[int, str | None]:
    """The verb/argument split of ``smtp_command()``: ``MAIL FROM:`` / ``RCPT TO:`` split
    at the colon, other verbs at the first space; leading whitespace of the argument is
    skipped; verbs compared case-insensitively (``strcasecmp``)."""
    head = line[:10].translate(ASCII_UPPER)
    if head == "MAIL FROM:" or head[:8] == "RCPT TO:":
        i = line.find(":")
    else:
        i = line.find(" ")
    if i >= 0:
        verb, args = line[:i], line[i + 1:].lstrip(C_SPACE)
    else:
        verb, args = line, None
    return _COMMANDS.get(verb.translate(ASCII_UPPER), -1), args


# ================================================================================================
# Header rewriting (5.7.3 and 6.8 smtp_session.c: header_append_domain_buffer() & co)
# ================================================================================================

def header_append_domain_buffer(buf: bytes, domain: bytes, size: int) -> bytes:
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
        if not comment and c != 0x29 and c not in C_ISSPACE:
            pos_component = i
    if escape or quote or comment or bracket or has_domain or has_group:
        return buf
    if has_bracket:
        pos_bracket -= 1
        while pos_bracket > 0 and buf[pos_bracket] in C_ISSPACE:
            pos_bracket -= 1
        if buf[pos_bracket] == 0x3C:
            return buf
        pos_insert = pos_bracket + 1
    else:
        if not buf or buf[pos_component] in C_ISSPACE:
            return buf
        pos_insert = pos_component + 1
    copy = buf[:pos_insert] + b"@" + domain + buf[pos_insert:]
    if len(copy) >= size:
        return buf
    return copy


_ADDR_SPECIAL = re.compile(rb'[,()"\\]')  # an address that needs header_domain_append()'s scan


def header_domain_append(hdr: bytes, lines: list[bytes] | None, domain: bytes, size: int) -> bytes:
    """``smtp_session.c:header_domain_append_callback()`` (5.7.3 and 6.8; 6.8 over the
    unfolded value split at ``\\n``, 5.7.3 over the header's lines): ``hdr:`` and the
    value, every address of To/Cc/From without a domain given ``@<listener hostname>``."""
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
                    b = header_append_domain_buffer(b, domain, size)
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
            b = header_append_domain_buffer(b, domain, size)
        out.append(b)
    return b"".join(out)


# ================================================================================================
# What the session accepts while it waits, and the checks of the events' values
# ================================================================================================

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

_EVENT_VALUES = {
    FilterResult: ("decision", ("proceed", "reject", "disconnect")),
    RcptResult: ("status", ("ok", "permfail", "tempfail")),
    AuthResult: ("status", ("ok", "permfail", "tempfail")),
}


def _check_event(event: object) -> None:
    """Refuse an event whose decision / status is not one the C knows."""
    spec = _EVENT_VALUES.get(type(event))
    if spec is not None and getattr(event, spec[0]) not in spec[1]:
        raise ValueError(f"{type(event).__name__}.{spec[0]}: {getattr(event, spec[0])!r} is not "
                         f"one of {', '.join(spec[1])}")


# ================================================================================================
# The session
# ================================================================================================

class SmtpSession:
    """``struct smtp_session`` and what the three releases' ``smtp_session.c`` do alike.

    ``client_addr``: the peer address as ``ss_to_text()`` prints it (``"local"`` for an
    enqueue socketpair); ``rdns``: the resolved client name (``s->rdns`` / ``s->hostname``,
    ``"<unknown>"`` without PTR); ``local``: a local enqueue session (``smtp_enqueue()``:
    ``smtp_session()`` with a hostname → SF_AUTHENTICATED, SF_BOUNCE if it is
    ``"localhost"``, listener->local).  Abstract: one of the release subclasses, made by
    :func:`smtpd_sim.fsm.smtp_session.new_session`."""

    __slots__ = (
        "cfg", "_addr", "_addr_br", "_rdns", "_local", "_hostb", "_maxsize",
        "_cap", "_reply_max", "_username_size", "_strip_8bit", "_dsn",
        "_st", "flags", "helo", "_banner_sent", "closed", "_wait", "_wphase",
        "_reading", "_buf", "_pend", "_out", "_orphan", "mailcount", "username", "_tls_desc",
        "_msgid", "_rcptcount", "_destcount", "_sender", "_ruser", "_rdomain",
        "_dsn_notify", "_dsn_orcpt", "_dsn_ret", "_dsn_envid", "_txerr", "_datain",
        "_odatalen", "_body", "_date", "_rcvcount", "_headscan", "_dlvto",
    )

    # what the release sets in its __init__
    _cap: int  # the iobuf's size: what one read can take (6.8 IOBUF_MAX, 5.x LINE_MAX)
    _reply_max: int  # the longest one-line reply smtp_reply() sends (longer: truncated)
    _username_size: int  # sizeof(s->username)
    _strip_8bit: bool  # the 8th bit of body lines is cleared without 8BITMIME (5.x)
    _dsn: bool  # DSN options parsed and DSN advertised

    # the transaction's state, (re)set by _reset_tx()
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
    _txerr: int  # 6.8 tx->error (TX_*), 5.x s->msgflags (MF_*)
    _datain: int
    _odatalen: int
    _body: list[bytes] | None  # the message file's bytes (cfg.keep_body), else None
    _date: str
    _rcvcount: int
    _headscan: bool  # the file's lines are still those mda_check_loop() reads
    _dlvto: tuple[bytes, ...]  # its "Delivered-To: " lines, as written to the file

    def __init__(self, config: SessionConfig, *, client_addr: str = "127.0.0.1",
                 rdns: str = "localhost", local: bool = False) -> None:
        """``smtp_session.c:smtp_session()``: a new session in STATE_NEW / PHASE_INIT;
        the caller did the reverse DNS (``rdns``) before :meth:`start`."""
        if type(self) is SmtpSession:
            raise TypeError("SmtpSession is abstract: use smtp_session.new_session(config)")
        self.cfg = config
        self._addr = client_addr
        self._addr_br = f"[{client_addr}]"  # sa_to_text() (5.x brackets IPv6 differently)
        self._rdns = rdns
        self._local = local
        self._hostb = config.hostname.encode("latin-1", "replace")
        self._maxsize = config.max_message_size
        self._st = ST_NEW
        self.flags = 0
        if local:
            self.flags |= SF_AUTHENTICATED
            if rdns == "localhost":
                self.flags |= SF_BOUNCE
        self.helo = ""
        self._banner_sent = False
        self.closed = False
        self._wait = W_NONE
        self._wphase = ""
        self._reading = False
        self._buf = bytearray()
        self._pend = bytearray()
        self._out: list[Any] = []
        self._orphan = False
        self.mailcount = 0
        self.username = ""
        self._tls_desc = ("", "", 0)
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
        """``enum smtp_phase`` name (6.8 has none: derived, see the release)."""
        return self._phase_name()

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
        self._connected()
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
        # the event's type -> its handler (the type was checked exactly above)
        if isinstance(event, MessageCreated):
            self._on_message_created(event)
        elif isinstance(event, EnvelopeSubmitted):
            self._on_envelope_submitted(event)
        elif isinstance(event, RcptResult):
            self._on_rcpt_result(event)
        elif isinstance(event, MessageOpened):
            self._on_message_opened(event)
        elif isinstance(event, MessageCommitted):
            self._on_message_committed(event)
        elif isinstance(event, FilterResult):
            self._on_filter_result(event)
        elif isinstance(event, TlsResult):
            self._on_tls_result(event)
        elif isinstance(event, AuthResult):
            self._on_auth_result(event)
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
        self._free(None)
        if keep_wait:
            self._wait = w
        return out

    # ------------------------------------------------------------------------------------------
    # what a release provides
    # ------------------------------------------------------------------------------------------

    def _phase_name(self) -> str:  # pragma: no cover - every release overrides it
        """The :attr:`phase` of the release."""
        raise NotImplementedError

    def _connected(self) -> None:  # pragma: no cover
        """The release's ``smtp_connected()`` after STATE_CONNECTED: connect filter or banner."""
        raise NotImplementedError

    def _io_datain(self) -> None:  # pragma: no cover
        """The release's ``smtp_io()`` IO_DATAIN over what :meth:`_pump` put in the iobuf."""
        raise NotImplementedError

    def _check_mailaddr(self, user: str, domain: str, mailfrom: bool) -> tuple[int, str, str]:  # pragma: no cover
        """The release's checks at the end of ``smtp_mailaddr()``: (ok, user, domain)."""
        raise NotImplementedError

    def _io_tlsready(self) -> None:  # pragma: no cover
        """What the release's ``smtp_io()`` IO_TLSREADY does besides SF_SECURE."""
        raise NotImplementedError

    def _on_filter_result(self, ev: FilterResult) -> None:  # pragma: no cover
        """The filter's answer (6.8 IMSG_FILTER_SMTP_PROTOCOL, 5.4.2 IMSG_MFA_SMTP_RESPONSE)."""
        raise NotImplementedError

    def _on_message_created(self, ev: MessageCreated) -> None:  # pragma: no cover
        """``smtp_session_imsg()`` IMSG_QUEUE_CREATE_MESSAGE / IMSG_SMTP_MESSAGE_CREATE."""
        raise NotImplementedError

    def _on_envelope_submitted(self, ev: EnvelopeSubmitted) -> None:  # pragma: no cover
        """``smtp_session_imsg()`` IMSG_QUEUE_SUBMIT_ENVELOPE / IMSG_QUEUE_ENVELOPE_SUBMIT."""
        raise NotImplementedError

    def _on_rcpt_result(self, ev: RcptResult) -> None:  # pragma: no cover
        """``smtp_session_imsg()``: the recipient accepted or refused."""
        raise NotImplementedError

    def _on_message_opened(self, ev: MessageOpened) -> None:  # pragma: no cover
        """``smtp_session_imsg()`` IMSG_QUEUE_MESSAGE_FILE / IMSG_SMTP_MESSAGE_OPEN."""
        raise NotImplementedError

    def _on_message_committed(self, ev: MessageCommitted) -> None:  # pragma: no cover
        """``smtp_session_imsg()`` IMSG_QUEUE_COMMIT_MESSAGE / IMSG_SMTP_MESSAGE_COMMIT."""
        raise NotImplementedError

    def _on_auth_result(self, ev: AuthResult) -> None:  # pragma: no cover
        """``smtp_session_imsg()`` IMSG_SMTP_AUTHENTICATE / IMSG_LKA_AUTHENTICATE."""
        raise NotImplementedError

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
            self._io_datain()

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
        if self._strip_8bit and not self.flags & SF_8BITMIME and not region.isascii():
            return
        n = len(region) - region.count(b"\r\n")
        if self._datain + n > self._maxsize:
            return
        self._datain += n
        self._odatalen += n
        if self._body is not None:
            self._body.append(region.replace(b"\r\n", b"\n"))
        del buf[:end + 1]

    # ------------------------------------------------------------------------------------------
    # replies, quitting, freeing
    # ------------------------------------------------------------------------------------------

    def _reply(self, text: str) -> None:
        """``smtp_session.c:smtp_reply()`` (one complete reply; the daemon truncates a 6.8
        reply at 4095 bytes, 5.x would fatalx() at 2048: truncated here)."""
        limit = self._reply_max
        if len(text) > limit and "\n" not in text:
            text = text[:limit]
        self._out.append(Reply(text))
        self._reading = True  # IO_LOWAT after the flush -> io_set_read()

    def _badinput(self, text: str) -> None:
        """SF_BADINPUT, the error reply, then STATE_QUIT (``smtp_io()``'s input errors)."""
        self.flags |= SF_BADINPUT
        self._reply(text)
        self._quit("bad input")

    def _quit(self, reason: str) -> None:
        """``smtp_enter_state(STATE_QUIT)``: close once the output drained (IO_LOWAT →
        ``smtp_free()``)."""
        self._st = ST_QUIT
        self._free(reason)

    def _free(self, reason: str | None) -> None:
        """``smtp_session.c:smtp_free()``: roll back the open transaction, then close."""
        if self._msgid:
            self._out.append(RollbackMessage(self._msgid))
        self._close(reason)

    def _close(self, reason: str | None) -> None:
        """The end of ``smtp_free()``: transaction and buffers dropped, the connection
        closed (:class:`Disconnect` unless the client is already gone)."""
        self._reset_tx()
        self.closed = True
        self._wait = W_NONE
        self._st = ST_QUIT
        self._buf.clear()
        self._pend.clear()
        if reason is not None:
            self._out.append(Disconnect(reason))

    def _handle_after_close(self, event: object) -> None:
        """Answers still arriving for a request made before :meth:`close`."""
        if type(event) is EnvelopeSubmitted:
            return
        self._wait = W_NONE
        if isinstance(event, MessageCreated) and event.ok and self._orphan:
            self._out.append(RollbackMessage(event.msgid))
        self._orphan = False

    def _request(self, action: object, wait: int) -> None:
        """Send a request (an imsg, a filter query, a handshake) and wait for its answer."""
        self._out.append(action)
        self._wait = wait

    # ------------------------------------------------------------------------------------------
    # transaction state, the message file, the texts shared by the releases
    # ------------------------------------------------------------------------------------------

    def _reset_tx(self) -> None:
        """6.8 ``smtp_tx_free()`` / 5.x ``smtp_message_reset(s, 0)``: the fields the
        releases share (a release resets its own ones too)."""
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
        self._headscan = False
        self._dlvto = ()

    def _loop_scan(self, line: bytes) -> None:
        """What ``mda.c:mda_check_loop()`` will read of the message file, noted as the line
        is written (the mda reads the file; the model keeps only what that loop looks at):
        lines up to the first one with no ``:`` that does not start with a space, and of
        those the ``Delivered-To: `` ones (``strncasecmp(..., 14)``)."""
        if b":" not in line and not (line[:1] and line[0] in C_ISSPACE):
            self._headscan = False
        elif line[:14].lower() == b"delivered-to: ":
            self._dlvto += (line,)

    def _emit(self, data: bytes) -> None:
        """``smtp_message_printf()`` / ``iobuf_fqueue(&s->obuf)``: bytes into the message file."""
        self._odatalen += len(data)
        body = self._body
        if body is not None:
            body.append(data)

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
            if self._dsn:
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

    def _received_with(self) -> str:
        """The protocol word of the Received: header (``with %sSMTP%s%s``): ESMTPSA & co."""
        f = self.flags
        return (f"{'E' if f & SF_EHLO else ''}SMTP{'S' if f & SF_SECURE else ''}"
                f"{'A' if f & SF_AUTHENTICATED else ''}")

    def _mailaddr(self, line: str | None, mailfrom: bool) -> tuple[int, str, str, str]:
        """``smtp_session.c:smtp_mailaddr()``: ``<...>`` split by ``text_to_mailaddr()``,
        a source route dropped, then the release's checks.  Returns (ok, user, domain,
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
        ok, user, domain = self._check_mailaddr(user, domain, mailfrom)
        return ok, user, domain, rest

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
        self._io_tlsready()
        if self.cfg.smtps:
            self._banner()  # 6.8 smtp_cert_verify(): F_SMTPS → smtp_send_banner(), STATE_CONNECTED
        else:
            self._st = ST_HELO  # smtp_cert_verify(): STARTTLS → smtp_enter_state(STATE_HELO)

    # ------------------------------------------------------------------------------------------
    # AUTH (smtp_rfc4954_auth_plain() / smtp_rfc4954_auth_login())
    # ------------------------------------------------------------------------------------------

    def _proceed_auth(self, args: str) -> None:
        """6.8 ``smtp_proceed_auth()`` / 5.x ``smtp_command()`` CMD_AUTH: the method."""
        sp = args.find(" ")
        if sp < 0:
            sp = args.find("\t")
        method, rest = (args, None) if sp < 0 else (args[:sp], args[sp + 1:])
        m = method.translate(ASCII_UPPER)
        if m == "PLAIN":
            self._auth_plain(rest)
        elif m == "LOGIN":
            self._auth_login(rest)
        else:
            self._reply("504 5.7.4 Security features not supported: "
                        f'AUTH method "{method}" not supported')

    def _auth_abort(self) -> None:
        """``smtp_rfc4954_auth_plain()`` / ``_login()`` ``abort:``: 501, back to STATE_HELO."""
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
        user = c_string(buf[u + 1:])
        if len(user) >= self._username_size:
            self._auth_abort()
            return
        p = buf.find(b"\0", u + 1)
        if p < 0 or p >= n - 2:
            self._auth_abort()
            return
        self.username = user.decode("latin-1")
        self._request(Authenticate("PLAIN", self.username, c_string(buf[p + 1:]).decode("latin-1")),
                      W_AUTH)

    def _auth_login(self, arg: str | None) -> None:
        """``smtp_session.c:smtp_rfc4954_auth_login()`` (5.x: an initial argument is
        ignored; 6.8 overrides the STATE_HELO step)."""
        st = self._st
        if st == ST_HELO:
            self._st = ST_AUTH_USERNAME
            self._reply("334 VXNlcm5hbWU6")
            return
        if st == ST_AUTH_USERNAME:
            user = b64_pton(arg or "", self._username_size - 1)
            if user is None:
                self._auth_abort()
                return
            self.username = c_string(user).decode("latin-1")
            self._st = ST_AUTH_PASSWORD
            self._reply("334 UGFzc3dvcmQ6")
            return
        pw = b64_pton(arg or "", LINE_MAX - 1)
        if pw is None:
            self._auth_abort()
            return
        self._request(Authenticate("LOGIN", self.username, c_string(pw).decode("latin-1")), W_AUTH)
