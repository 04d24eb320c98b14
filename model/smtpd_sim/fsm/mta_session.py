"""The outbound SMTP client session (``mta_session.c``) as a pure, sans-IO state machine.

One :class:`MtaSession` is one ``struct mta_session``: a connection (plus reconnection
attempts) from the mta to one address of a relay's MX, delivering the relay's tasks (one
task = the envelopes of one message for that relay) one after the other.  The caller
feeds it events and executes the actions it returns; it never reads a clock or a socket.

Events (methods) and the C they mirror:

* :meth:`start` — ``mta_connect()``: returns :class:`Connect` for attempt 0;
* :meth:`connected` — ``mta_io()`` IO_CONNECTED (calling it without :meth:`start` implies
  attempt 0);
* :meth:`receive` — ``mta_io()`` IO_DATAIN, **one reply line** at a time (multi-line
  replies arrive line by line) → ``mta_response()`` on the last line;
* :meth:`tls_result` — IO_TLSREADY (+ the lka certificate verification round trip) or
  IO_TLSERROR;
* :meth:`task` — the answer to :class:`NeedTask`: ``mta_route_next_task()`` and the
  queue's IMSG_MTA_OPEN_MESSAGE / IMSG_QUEUE_MESSAGE_FD reply (``fd_ok``);
* :meth:`timer` — the hang-on runq (``mta_on_timeout()``) after a :class:`Wait`;
* :meth:`timeout`, :meth:`error`, :meth:`disconnected` — IO_TIMEOUT (300 s, see
  :data:`IO_TIMEOUT`), IO_ERROR, IO_DISCONNECTED.

Actions: :class:`Connect`, :class:`Send`, :class:`SendBody`, :class:`StartTls`,
:class:`NeedTask`, :class:`Ready`, :class:`Result`, :class:`Wait`, :class:`Close`.

Every envelope of every task handed to the session gets exactly one :class:`Result`
(``mta_flush_task()`` / the per-RCPT failure path), whose ``text`` is what the daemon
logs as ``stat=`` and stores as the envelope's errorline: the server's reply (5.4.2: its
last line; 5.7.3+: ``replybuf``, the lines joined with the repeated code and enhanced
status code stripped) or the session error (``"Connection closed unexpectedly"`` …).

Eras (``MtaSessionConfig.era``):

* 5.4.2: the banner's code is not checked; ``mta_check_loop()`` (≥ 100 ``Received:``
  headers → LOOP) runs when the message fd arrives; a TLS failure is an IO error (no
  downgrade); multi-line replies are reported by their last line.
* 5.7.3: ``BANNER rejected``; ``replybuf``; TLS failure on an opportunistic session →
  reconnect in plain (``MTA_DOWNGRADE_PLAIN``, also after READY, keeping the task);
  no loop check in the mta.
* 6.8: as 5.7.3, but the downgrade only when the error happens in STARTTLS on an
  opportunistic attempt, any other IO error frees the session (no reconnect); the
  ``SIZE`` extension is honoured (message larger than the advertised size → PERMFAIL
  "message too large for peer"); ``ORCPT=rfc822;``; **``sessdelay_transaction`` is 0**
  (``limit.c:limit_mta_set_defaults()``), 1 s at 5.4.2 and 5.7.3.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from smtpd_sim.fsm.envelope import (
    DSN_DELAY,
    DSN_FAILURE,
    DSN_NEVER,
    DSN_RETFULL,
    DSN_RETHDRS,
    DSN_SUCCESS,
    MAX_HOPS_COUNT,
    era_key,
)

# ---- enum mta_state (mta_session.c) ---------------------------------------------------------
MTA_INIT = 0
MTA_BANNER = 1
MTA_EHLO = 2
MTA_HELO = 3
MTA_LHLO = 4
MTA_STARTTLS = 5
MTA_AUTH = 6
MTA_AUTH_PLAIN = 7
MTA_AUTH_LOGIN = 8
MTA_AUTH_LOGIN_USER = 9
MTA_AUTH_LOGIN_PASS = 10
MTA_READY = 11
MTA_MAIL = 12
MTA_RCPT = 13
MTA_DATA = 14
MTA_BODY = 15
MTA_EOM = 16
MTA_LMTP_EOM = 17
MTA_RSET = 18
MTA_QUIT = 19
STATE_NAMES = ("MTA_INIT", "MTA_BANNER", "MTA_EHLO", "MTA_HELO", "MTA_LHLO", "MTA_STARTTLS",
               "MTA_AUTH", "MTA_AUTH_PLAIN", "MTA_AUTH_LOGIN", "MTA_AUTH_LOGIN_USER",
               "MTA_AUTH_LOGIN_PASS", "MTA_READY", "MTA_MAIL", "MTA_RCPT", "MTA_DATA",
               "MTA_BODY", "MTA_EOM", "MTA_LMTP_EOM", "MTA_RSET", "MTA_QUIT")

# ---- session extensions (mta_session.c MTA_EXT_*, smtpd.h MTA_EXT_DSN) ----------------------
MTA_EXT_STARTTLS = 0x01
MTA_EXT_PIPELINING = 0x02
MTA_EXT_AUTH = 0x04
MTA_EXT_AUTH_PLAIN = 0x08
MTA_EXT_AUTH_LOGIN = 0x10
MTA_EXT_SIZE = 0x20  # 6.8
MTA_EXT_DSN = 0x400

# ---- limits (limit.c:limit_mta_set_defaults(), identical in the three eras but one) --------
MAX_MAIL_PER_SESSION = 100
MAX_FAILURES_PER_SESSION = 25
SESSDELAY_KEEPALIVE = 10
SESSDELAY_TRANSACTION = {"5.4.2": 1, "5.7.3": 1, "6.8": 0}
MAX_TRYBEFOREDISABLE = 10  # mta_session.c: msgtried >= 10 -> "rejects all mails", QUIT
IO_TIMEOUT = 300.0  # mta_connect(): io_set_timeout(300000) ms
LINE_MAX = 2048  # SMTPD_MAXLINESIZE (5.4.2) / LINE_MAX (5.7.3+): parse_smtp_response()
HANGON_DELAY = 1.0  # mta_enter_state(MTA_READY): runq_schedule(hangon, now + 1)

# ---- results ----------------------------------------------------------------------------
OK = "ok"  # IMSG_DELIVERY_OK / IMSG_MTA_DELIVERY_OK
TEMPFAIL = "tempfail"
PERMFAIL = "permfail"
LOOP = "loop"  # 5.4.2 only: IMSG_DELIVERY_LOOP from mta_check_loop()

# TLS modes (what mta_session() derives MTA_FORCE_* / MTA_WANT_SECURE from)
TLS_OPPORTUNISTIC = "opportunistic"  # RELAY_TLS_OPTIONAL / RELAY_TLS_OPPORTUNISTIC: try, else plain
TLS_PLAIN = "plain"  # no STARTTLS attempt: MTA_FORCE_PLAIN
TLS_STARTTLS = "starttls"  # MTA_FORCE_TLS | MTA_WANT_SECURE
TLS_SMTPS = "smtps"  # MTA_FORCE_SMTPS | MTA_WANT_SECURE
TLS_SECURE = "secure"  # 5.4.2/5.7.3 secure://: MTA_FORCE_ANYSSL (STARTTLS, then SMTPS)
_TLS_ALIASES = {
    "opportunistic": TLS_OPPORTUNISTIC, "optional": TLS_OPPORTUNISTIC,
    "plain": TLS_PLAIN, "notls": TLS_PLAIN, "no": TLS_PLAIN,
    "starttls": TLS_STARTTLS, "required": TLS_STARTTLS, "tls": TLS_STARTTLS,
    "smtps": TLS_SMTPS, "secure": TLS_SECURE, "anyssl": TLS_SECURE,
}


def tls_mode_from_url(url: str, era: str = "6.8") -> tuple[str, bool]:
    """``to.c:text_to_relayhost()``: (TLS mode, LMTP?) of a ``relay via`` / ``relay host``
    URL.  The schemas changed meaning between eras:

    ==================== ======================= ===================
    schema               5.4.2 / 5.7.3           6.8
    ==================== ======================= ===================
    (none)               opportunistic (smtp+tls) opportunistic (smtp)
    ``smtp://``          plain                   opportunistic
    ``smtp+tls://``      opportunistic           STARTTLS required
    ``smtp+notls://``    (unknown schema)        plain
    ``tls://``           STARTTLS required       (unknown schema)
    ``smtps://``         SMTPS                   SMTPS
    ``secure://``        STARTTLS then SMTPS     (unknown schema)
    ``lmtp://``          plain, LMTP             plain, LMTP
    ==================== ======================= ===================

    (MX relays without ``relay via``: opportunistic in every era.)"""
    era = era_key(era)
    low = url.lower()
    schema, sep, _ = low.partition("://")
    if not sep:
        return TLS_OPPORTUNISTIC, False
    schema += "://"
    if era == "6.8":
        table = {"smtp://": TLS_OPPORTUNISTIC, "smtp+tls://": TLS_STARTTLS,
                 "smtp+notls://": TLS_PLAIN, "lmtp://": TLS_PLAIN, "smtps://": TLS_SMTPS}
    else:
        table = {"smtp://": TLS_PLAIN, "lmtp://": TLS_PLAIN, "smtp+tls://": TLS_OPPORTUNISTIC,
                 "smtps://": TLS_SMTPS, "tls://": TLS_STARTTLS, "smtps+auth://": TLS_SMTPS,
                 "tls+auth://": TLS_STARTTLS, "secure://": TLS_SECURE,
                 "secure+auth://": TLS_SECURE, "backup://": TLS_OPPORTUNISTIC}
    if schema not in table:
        raise ValueError(f"unknown relay schema {schema!r} at {era}")
    return table[schema], schema == "lmtp://"


# ---- configuration, task, actions --------------------------------------------------------

@dataclass(slots=True)
class MtaSessionConfig:
    """What ``mta_session()`` reads from the relay and its limits.

    ``auth_secret`` is ``relay->secret``: base64 of ``"\\0user\\0password"`` (what the
    credentials table yields).  ``relay_auth`` is the relay's AUTH flag (``auth`` in the
    rule); at 5.4.2/5.7.3 it only matters together with a TLS-forcing mode
    (``MTA_USE_AUTH = RELAY_SSL && RELAY_AUTH``).  ``port`` overrides 25/465.
    ``sessdelay_transaction`` ``None`` = the era's default."""

    helo: str = "localhost"
    tls: str = TLS_OPPORTUNISTIC
    era: str = "6.8"
    lmtp: bool = False
    auth_secret: str | None = None
    relay_auth: bool = False
    tls_verify: bool = False  # F_TLS_VERIFY / RELAY_TLS_VERIFY: failed verification is fatal
    port: int = 0
    max_mail_per_session: int = MAX_MAIL_PER_SESSION
    max_failures_per_session: int = MAX_FAILURES_PER_SESSION
    sessdelay_transaction: float | None = None
    sessdelay_keepalive: int = SESSDELAY_KEEPALIVE


@dataclass(slots=True)
class MtaTask:
    """``struct mta_task``: one message for this relay.  ``envelopes`` items are
    ``(evpid, dest)`` or ``(evpid, dest, dsn_notify, dsn_orcpt)``.  ``dsn_ret`` /
    ``dsn_envid`` come from the first envelope in C.  ``size`` is the message file size
    (6.8 SIZE check, :class:`SendBody`); ``hops`` the number of ``Received:`` headers
    (5.4.2 loop check)."""

    msgid: int
    sender: str
    envelopes: list[tuple] = field(default_factory=list)
    size: int = 0
    dsn_ret: int = 0
    dsn_envid: str = ""
    hops: int = 0


@dataclass(slots=True)
class Connect:
    """``mta_connect()``: open a TCP connection (``io_connect()``), then call
    :meth:`MtaSession.connected` (or :meth:`MtaSession.error` if it fails).  ``smtps``:
    TLS starts right after the TCP handshake."""

    attempt: int
    port: int
    smtps: bool
    schema: str


@dataclass(slots=True)
class Send:
    """``mta_send()``: one command line (without CRLF)."""

    line: str


@dataclass(slots=True)
class SendBody:
    """MTA_BODY: the dot-stuffed message (``mta_queue_data()``, 64 KiB chunks); it is
    followed by a separate ``Send(".")`` — the daemon writes the body and the final dot
    in two writes (real-daemon.md §9: Nagle + delayed ACK ≈ 40 ms per message)."""

    size: int


@dataclass(slots=True)
class StartTls:
    """Begin the TLS handshake (``mta_start_tls()`` / ``mta_cert_init()``: the lka
    certificate round trip, then ``io_start_tls()``); answer with
    :meth:`MtaSession.tls_result`.  ``smtps``: implicit TLS (no STARTTLS command)."""

    smtps: bool = False


@dataclass(slots=True)
class NeedTask:
    """MTA_READY: ``mta_route_next_task()`` and, if there is one, IMSG_MTA_OPEN_MESSAGE to
    the queue; answer with :meth:`MtaSession.task`."""


@dataclass(slots=True)
class Ready:
    """The session reached MTA_READY for the first time (``nconn_ready++``,
    ``mta_route_ok()``)."""


@dataclass(slots=True)
class Result:
    """One envelope's outcome (``mta_delivery_notify()``).  ``dsn``: the remote
    announced DSN (``e->ext``), so the queue must not generate a success DSN itself."""

    evpid: int
    status: str
    text: str
    dsn: bool = False


@dataclass(slots=True)
class Wait:
    """Call :meth:`MtaSession.timer` after ``seconds`` (hang-on / transaction delay)."""

    seconds: float


@dataclass(slots=True)
class Close:
    """``mta_free()``: close the connection, the session is over.  ``reason`` is
    ``"quit"`` after a QUIT exchange, else the error."""

    reason: str


NEED_TASK = NeedTask()
READY = Ready()


def _dsn_notify_text(n: int) -> str:
    """``mta_session.c:dsn_strnotify()``."""
    parts = []
    if n & DSN_SUCCESS:
        parts.append("SUCCESS")
    if n & DSN_FAILURE:
        parts.append("FAILURE")
    if n & DSN_DELAY:
        parts.append("DELAY")
    if n & DSN_NEVER:
        parts.append("NEVER")
    return ",".join(parts)


def _is_esc(p: str) -> bool:
    """``d.d.d`` followed by a space (the enhanced status code ``mta_io()`` strips)."""
    return (len(p) > 5 and p[0].isdigit() and p[1] == "." and p[2].isdigit() and p[3] == "."
            and p[4].isdigit() and p[5].isspace())


def _parse_reply(line: str, era: str) -> tuple[str | None, str, bool]:
    """``util.c:parse_smtp_response()`` → (error, msg, continuation)."""
    n = len(line)
    if n >= LINE_MAX:
        return "line too long", "", False
    if n > 3:
        msg, cont = line[4:], line[3] == "-"
    elif n == 3:
        msg, cont = "", False
    else:
        return "line too short", "", False
    if not ("2" <= line[0] <= "5" and line[1].isdigit() and line[2].isdigit()):
        return "reply code out of range", "", False
    if era == "5.4.2" and not line.isprintable():
        return "non-printable character in reply", "", False
    return None, msg, cont


class MtaSession:
    """``struct mta_session`` + ``mta_enter_state()`` / ``mta_response()`` / ``mta_io()``."""

    __slots__ = ("cfg", "era", "state", "attempt", "use_smtps", "use_starttls",
                 "use_smtp_tls", "force_plain", "force_tls", "force_smtps", "force_anyssl",
                 "want_secure", "use_auth", "tls", "downgrade", "ready", "ext", "ext_size",
                 "msgtried", "msgcount", "rcptcount", "hangon", "failures", "current_task", "envs",
                 "cur", "expect", "waiting_task", "waiting_tls", "hangon_wait", "closed",
                 "close_reason", "orphan_text", "_lines", "_started", "_sdt")

    def __init__(self, config: MtaSessionConfig | None = None) -> None:
        cfg = config or MtaSessionConfig()
        self.cfg = cfg
        self.era = era = era_key(cfg.era)
        mode = _TLS_ALIASES.get(cfg.tls)
        if mode is None:
            raise ValueError(f"unknown tls mode {cfg.tls!r}")
        if mode == TLS_SECURE and era == "6.8":
            raise ValueError("secure:// (STARTTLS then SMTPS) does not exist at 6.8")
        # mta_session(): relay flags -> MTA_FORCE_* / MTA_WANT_SECURE
        self.force_plain = mode == TLS_PLAIN
        self.force_tls = mode == TLS_STARTTLS
        self.force_smtps = mode == TLS_SMTPS
        self.force_anyssl = mode == TLS_SECURE
        self.want_secure = mode in (TLS_STARTTLS, TLS_SMTPS, TLS_SECURE)
        if era == "6.8":
            self.use_auth = cfg.relay_auth  # RELAY_AUTH
        else:
            self.use_auth = cfg.relay_auth and self.want_secure  # MTA_USE_AUTH
        self.state = MTA_INIT
        self.attempt = 0
        self.use_smtps = self.use_starttls = self.use_smtp_tls = False
        self.tls = False  # MTA_TLS
        self.downgrade = False  # MTA_DOWNGRADE_PLAIN (5.7.3+)
        self.ready = False
        self.ext = 0
        self.ext_size = 0
        self.msgtried = 0
        self.msgcount = 0
        self.rcptcount = 0
        self.hangon = 0
        self.failures = 0
        self.current_task: MtaTask | None = None
        self.envs: list[tuple] = []  # the task's envelopes not yet reported
        self.cur = 0  # index in envs of the next RCPT (currevp)
        self.expect = False  # a reply is awaited
        self.waiting_task = False  # NeedTask emitted, task() not yet called
        self.waiting_tls = False
        self.hangon_wait = False  # MTA_HANGON: a Wait is outstanding
        self.closed = False
        self.close_reason = ""
        self.orphan_text = ""  # error that killed the session while a task was awaited
        self._lines: list[str] = []  # the reply being read
        self._started = False
        sdt = cfg.sessdelay_transaction
        self._sdt = SESSDELAY_TRANSACTION[era] if sdt is None else sdt

    def __repr__(self) -> str:
        return (f"<MtaSession {STATE_NAMES[self.state]} era={self.era} msgs={self.msgcount}"
                f"{' closed' if self.closed else ''}>")

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    # ---- connection ---------------------------------------------------------------------

    def _connect(self, out: list, reason: str = "") -> None:
        """``mta_connect()``: choose how to connect for this attempt, or give up
        (``mta_free()``, with ``reason`` or the last error)."""
        self._started = True
        self.use_smtps = self.use_starttls = self.use_smtp_tls = False
        a = self.attempt
        if a == 0:
            if self.force_smtps:
                self.use_smtps = True
            elif self.force_tls or self.force_anyssl:
                self.use_starttls = True
            elif not self.force_plain:
                self.use_smtp_tls = True
        elif a == 1 and self.force_anyssl:
            self.use_smtps = True
        elif a == 1 and self.downgrade and self.era != "5.4.2":
            pass  # smtp, after a TLS failure
        else:
            self._free(out, reason or self.close_reason or "no more connection attempts")
            return
        port = 465 if self.use_smtps else 25
        if self.cfg.port:
            port = self.cfg.port
        self.attempt = a + 1
        if self.use_smtp_tls:
            schema = "smtp+tls://" if self.era != "6.8" else "smtp://"
        elif self.use_starttls:
            schema = "tls://" if self.era != "6.8" else "smtp+tls://"
        elif self.use_smtps:
            schema = "smtps://"
        elif self.cfg.lmtp:
            schema = "lmtp://"
        else:
            schema = "smtp://" if self.era != "6.8" else "smtp+notls://"
        self.state = MTA_INIT
        self.tls = False
        self.expect = False
        self.waiting_tls = False
        self._lines.clear()
        out.append(Connect(self.attempt, port, self.use_smtps, schema))

    def start(self) -> list:
        """``mta_connect()`` for attempt 0 (after the PTR / helo lookups of
        ``mta_session()``)."""
        out: list = []
        if not self.closed and not self._started:
            self._connect(out)
        return out

    def connected(self) -> list:
        """IO_CONNECTED: SMTPS → TLS first, else wait for the banner (MTA_BANNER)."""
        out: list = []
        if self.closed:
            return out
        if not self._started:
            self._connect([])  # implicit attempt 0
        if self.state != MTA_INIT:
            return out
        if self.use_smtps:
            self.waiting_tls = True
            out.append(StartTls(smtps=True))
        else:
            self.state = MTA_BANNER
            self.expect = True
        return out

    # ---- helpers ------------------------------------------------------------------------

    def _send(self, out: list, line: str) -> None:
        self.expect = True
        out.append(Send(line))

    def _free(self, out: list, reason: str) -> None:
        """``mta_free()``; a task still held (C would ``fatalx()``) is tempfailed."""
        if self.closed:
            return
        if self.current_task is not None:
            self._flush(out, TEMPFAIL, reason or "session closed")
        self.closed = True
        self.close_reason = reason
        self.expect = False
        self.hangon_wait = False
        self.waiting_tls = False
        if self.waiting_task:
            self.orphan_text = reason
        out.append(Close(reason))

    def _error(self, out: list, text: str) -> None:
        """``mta_error()``: log; tempfail the current task with the error text."""
        if self.current_task is not None:
            self._flush(out, TEMPFAIL, text)
        if self.waiting_task:
            self.orphan_text = text
        self.close_reason = text

    def _flush(self, out: list, status: str, text: str, count: int = 0) -> None:
        """``mta_flush_task()``: report the remaining envelopes (``count`` of them if
        non-zero — LMTP reports one per reply); the task is done when none remain."""
        envs = self.envs
        dsn = bool(self.ext & MTA_EXT_DSN)
        n = len(envs) if not count else min(count, len(envs))
        for e in envs[:n]:
            out.append(Result(e[0], status, text, dsn))
        del envs[:n]
        if self.cur > n:
            self.cur -= n
        else:
            self.cur = 0
        if not envs:
            self.current_task = None

    def _reconnect(self, out: list, reason: str = "") -> None:
        """``mta_connect()`` again: the next attempt (a new TCP connection) or the end."""
        self._connect(out, reason)

    # ---- mta_enter_state() --------------------------------------------------------------

    def _enter(self, st: int, out: list) -> None:
        while True:
            self.state = st
            self._lines.clear()  # 5.7.3+: memset(s->replybuf, 0, ...)
            if st == MTA_EHLO:
                self.ext = 0
                self._send(out, f"EHLO {self.cfg.helo}")
                return
            if st == MTA_HELO:
                self.ext = 0
                self._send(out, f"HELO {self.cfg.helo}")
                return
            if st == MTA_LHLO:
                self.ext = 0
                self._send(out, f"LHLO {self.cfg.helo}")
                return
            if st == MTA_STARTTLS:
                if self.downgrade and self.era != "5.4.2":
                    st = MTA_AUTH
                    continue
                if self.tls:
                    st = MTA_AUTH
                    continue
                if not self.ext & MTA_EXT_STARTTLS:
                    if self.force_tls or self.want_secure:
                        self._error(out, "TLS required but not supported by remote host")
                        # 5.4.2: mta_connect() at once; 5.7.3+: MTA_RECONN after the reply
                        self._reconnect(out)
                        return
                    st = MTA_AUTH
                    continue
                self._send(out, "STARTTLS")
                return
            if st == MTA_AUTH:
                secret = self.cfg.auth_secret
                if secret and self.tls:
                    if self.ext & MTA_EXT_AUTH:
                        if self.ext & MTA_EXT_AUTH_PLAIN:
                            st = MTA_AUTH_PLAIN
                            continue
                        if self.ext & MTA_EXT_AUTH_LOGIN:
                            st = MTA_AUTH_LOGIN
                            continue
                        self._error(out, "no supported AUTH method")
                    else:
                        self._error(out, "AUTH not advertised")
                    # C: no state change and nothing sent; the session idles until the
                    # 300 s IO timeout (apparent bug, kept).
                    return
                if secret:
                    self._error(out, "Refuse to AUTH over unsecure channel")
                    self._reconnect(out)
                    return
                st = MTA_READY
                continue
            if st == MTA_AUTH_PLAIN:
                self._send(out, f"AUTH PLAIN {self.cfg.auth_secret}")
                return
            if st == MTA_AUTH_LOGIN:
                self._send(out, "AUTH LOGIN")
                return
            if st in (MTA_AUTH_LOGIN_USER, MTA_AUTH_LOGIN_PASS):
                creds = self._credentials()
                if creds is None:
                    self._error(out, "Credentials too large")
                    return
                word = creds[0] if st == MTA_AUTH_LOGIN_USER else creds[1]
                self._send(out, base64.b64encode(word).decode("ascii"))
                return
            if st == MTA_READY:
                if not self.ready:
                    self.ready = True
                    out.append(READY)
                if self.msgtried >= MAX_TRYBEFOREDISABLE:
                    # "Remote host seems to reject all mails"; mta_route_down()
                    st = MTA_QUIT
                    continue
                if self.msgcount >= self.cfg.max_mail_per_session:
                    st = MTA_QUIT
                    continue
                if self.downgrade:
                    self.downgrade = False  # "possibly reuse the same task"
                if self.current_task is not None:
                    st = MTA_MAIL  # the task survived a TLS downgrade (5.7.3)
                    continue
                if self.waiting_task:
                    return  # already asked (before a downgrade reconnection)
                self.waiting_task = True
                out.append(NEED_TASK)
                return
            if st == MTA_MAIL:
                task = self.current_task
                assert task is not None
                self.cur = 0
                self.hangon = 0
                self.msgtried += 1
                line = f"MAIL FROM:<{task.sender}>"
                if self.ext & MTA_EXT_DSN:
                    if task.dsn_ret:
                        line += " RET=" + {DSN_RETFULL: "FULL", DSN_RETHDRS: "HDRS"}.get(
                            task.dsn_ret, "???")
                    if task.dsn_envid:
                        line += " ENVID=" + task.dsn_envid
                self._send(out, line)
                return
            if st == MTA_RCPT:
                e = self.envs[self.cur]
                line = f"RCPT TO:<{e[1]}>"
                if self.ext & MTA_EXT_DSN and len(e) > 2:
                    if e[2]:
                        line += " NOTIFY=" + _dsn_notify_text(e[2])
                    if len(e) > 3 and e[3]:
                        line += (" ORCPT=rfc822;" if self.era == "6.8" else " ORCPT=") + e[3]
                self.rcptcount += 1
                self._send(out, line)
                return
            if st == MTA_DATA:
                self._send(out, "DATA")
                return
            if st == MTA_BODY:
                out.append(SendBody(self.current_task.size if self.current_task is not None else 0))
                st = MTA_EOM
                continue
            if st == MTA_EOM:
                self._send(out, ".")
                return
            if st == MTA_LMTP_EOM:
                self.expect = True  # "LMTP reports status of each delivery"
                return
            if st == MTA_RSET:
                self._send(out, "RSET")
                return
            if st == MTA_QUIT:
                self._send(out, "QUIT")
                return
            raise AssertionError(f"mta_enter_state: unknown state {st}")

    def _credentials(self) -> tuple[bytes, bytes] | None:
        """``base64_decode(relay->secret)`` = ``"\\0user\\0password"``."""
        try:
            raw = base64.b64decode(self.cfg.auth_secret or "", validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(raw) >= LINE_MAX:
            return None
        parts = raw.split(b"\0")
        user = parts[1] if len(parts) > 1 else b""
        pw = parts[2] if len(parts) > 2 else b""
        return user, pw

    def _pause_then_ready(self, out: list) -> None:
        """After a transaction or RSET: wait ``sessdelay_transaction`` (counted in the
        hang-on: ``hangon = sessdelay_transaction - 1``), else READY at once."""
        sdt = self._sdt
        if sdt:
            self.hangon = int(sdt) - 1
            self.hangon_wait = True
            out.append(Wait(float(sdt)))
        else:
            self._enter(MTA_READY, out)

    # ---- mta_response() -----------------------------------------------------------------

    def _response(self, line: str, out: list) -> None:
        st = self.state
        c = line[0]
        if st == MTA_BANNER:
            if c != "2" and self.era != "5.4.2":
                self._error(out, f"BANNER rejected: {line}")
                self._free(out, f"BANNER rejected: {line}")
                return
            self._enter(MTA_LHLO if self.cfg.lmtp else MTA_EHLO, out)
        elif st == MTA_EHLO:
            if c != "2":
                if self.use_auth or self.want_secure:
                    self._error(out, f"EHLO rejected: {line}")
                    self._free(out, f"EHLO rejected: {line}")
                    return
                self._enter(MTA_HELO, out)
                return
            self._enter(MTA_READY if self.force_plain else MTA_STARTTLS, out)
        elif st in (MTA_HELO, MTA_LHLO):
            if c != "2":
                what = "HELO" if st == MTA_HELO else "LHLO"
                self._error(out, f"{what} rejected: {line}")
                self._free(out, f"{what} rejected: {line}")
                return
            self._enter(MTA_READY, out)
        elif st == MTA_STARTTLS:
            if c != "2":
                if not self.want_secure:
                    self._enter(MTA_AUTH, out)
                    return
                self._error(out, f"STARTTLS rejected: {line}")
                self._free(out, f"STARTTLS rejected: {line}")
                return
            self.waiting_tls = True
            out.append(StartTls(smtps=False))
        elif st in (MTA_AUTH_PLAIN, MTA_AUTH_LOGIN_PASS):
            if c != "2":
                self._error(out, f"AUTH rejected: {line}")
                self._free(out, f"AUTH rejected: {line}")
                return
            self._enter(MTA_READY, out)
        elif st in (MTA_AUTH_LOGIN, MTA_AUTH_LOGIN_USER):
            if not line.startswith("334 "):
                self._error(out, f"AUTH rejected: {line}")
                self._free(out, f"AUTH rejected: {line}")
                return
            self._enter(MTA_AUTH_LOGIN_USER if st == MTA_AUTH_LOGIN else MTA_AUTH_LOGIN_PASS,
                        out)
        elif st == MTA_MAIL:
            if c != "2":
                self._flush(out, PERMFAIL if c == "5" else TEMPFAIL, line)
                self._enter(MTA_RSET, out)
                return
            self._enter(MTA_RCPT, out)
        elif st == MTA_RCPT:
            envs = self.envs
            i = self.cur
            e = envs[i]
            if c == "2":
                self.failures = 0
                # (mta_hoststat_reschedule(domain): left to mta.c)
                self.cur = i + 1
            else:
                self.failures += 1
                del envs[i]  # TAILQ_REMOVE(&s->task->envelopes, e)
                out.append(Result(e[0], PERMFAIL if c == "5" else TEMPFAIL, line, False))
                mf = self.cfg.max_failures_per_session
                if mf and self.failures == mf:
                    self._flush(out, TEMPFAIL,
                                "Too many consecutive errors, closing connection")
                    self.current_task = None
                    self._enter(MTA_QUIT, out)
                    return
                if not envs:
                    self.current_task = None  # mta_flush_task(OK, "No envelope"): nothing left
                    self._enter(MTA_RSET, out)
                    return
            self._enter(MTA_DATA if self.cur >= len(envs) else MTA_RCPT, out)
        elif st == MTA_DATA:
            if c in "23":
                self._enter(MTA_BODY, out)
                return
            self._flush(out, PERMFAIL if c == "5" else TEMPFAIL, line)
            self._enter(MTA_RSET, out)
        elif st in (MTA_EOM, MTA_LMTP_EOM):
            if c == "2":
                status = OK
                self.msgtried = 0
                self.msgcount += 1
            elif c == "5":
                status = PERMFAIL
            else:
                status = TEMPFAIL
            self._flush(out, status, line, 1 if self.cfg.lmtp else 0)
            if self.current_task is not None:
                self.rcptcount -= 1
                self._enter(MTA_LMTP_EOM, out)
            else:
                self.rcptcount = 0
                self._pause_then_ready(out)
        elif st == MTA_RSET:
            self.rcptcount = 0
            self._pause_then_ready(out)
        else:
            raise AssertionError(f"mta_response() bad state {STATE_NAMES[st]}")

    # ---- events -------------------------------------------------------------------------

    def receive(self, line: str) -> list:
        """IO_DATAIN: one line of the server's reply (CRLF optional)."""
        out: list = []
        if self.closed:
            return out
        if line.endswith("\n"):
            line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
        if not self.expect:
            # Nothing was asked: C would either fatalx() in mta_response() or catch it
            # as left-over input ("remaining data in input buffer").
            text = "Remote host sent too much data"
            self._error(out, text)
            self._free(out, text)
            return out
        err, msg, cont = _parse_reply(line, self.era)
        if err is not None:
            text = f"Bad response: {err}"
            self._error(out, text)
            self._free(out, text)
            return out
        if self.state == MTA_EHLO:  # "read extensions", on every line of the reply
            if msg == "STARTTLS":
                self.ext |= MTA_EXT_STARTTLS
            elif msg.startswith("AUTH "):
                self.ext |= MTA_EXT_AUTH
                words = msg.split(" ")
                if "PLAIN" in words[1:]:
                    self.ext |= MTA_EXT_AUTH_PLAIN
                if "LOGIN" in words[1:]:
                    self.ext |= MTA_EXT_AUTH_LOGIN
            elif msg == "PIPELINING":
                self.ext |= MTA_EXT_PIPELINING
            elif msg == "DSN":
                self.ext |= MTA_EXT_DSN
            elif self.era == "6.8" and msg.startswith("SIZE "):
                v = msg[5:]
                if v.isdigit() and int(v) <= 0xFFFFFFFF:
                    self.ext_size = int(v)
                    self.ext |= MTA_EXT_SIZE
        if cont:
            self._lines.append(line)
            return out
        text = self._reply_text(line)
        self._lines.clear()
        if self.state == MTA_QUIT:
            self._free(out, "quit")
            return out
        self.expect = False
        self._response(text, out)
        return out

    def _reply_text(self, last: str) -> str:
        """5.4.2: the last line.  5.7.3+: ``replybuf`` — the first line whole, then each
        following line without its code and enhanced status code; if that overflows the
        2048-byte buffer, the last line alone."""
        lines = self._lines
        if self.era == "5.4.2" or not lines:
            return last
        buf = lines[0]
        for ln in (*lines[1:], last):
            if len(ln) > 4:
                p = ln[4:]
                if _is_esc(p):
                    p = p[5:]
                buf += p
        if len(buf) >= 2048:
            return last
        return buf

    def tls_result(self, ok: bool, *, verified: bool = True, reason: str = "") -> list:
        """The TLS handshake ended.  ``ok`` → IO_TLSREADY (+ certificate verification:
        ``verified`` False with ``tls_verify`` → "SSL certificate check failed", free) →
        MTA_EHLO, or MTA_BANNER for SMTPS.  Not ``ok`` → IO_TLSERROR: opportunistic
        sessions reconnect in plain at 5.7.3+ (``MTA_DOWNGRADE_PLAIN``), else the error
        handling of IO_ERROR."""
        out: list = []
        if self.closed or not self.waiting_tls:
            return out
        self.waiting_tls = False
        if ok:
            self.tls = True
            if not verified and self.cfg.tls_verify:
                self._error(out, "SSL certificate check failed")
                self._free(out, "SSL certificate check failed")
                return out
            if self.use_smtps:
                self.state = MTA_BANNER
                self._lines.clear()
                self.expect = True
            else:
                self._enter(MTA_EHLO, out)
            return out
        text = f"IO Error: {reason or 'TLS handshake failed'}"
        if self.era == "5.7.3":
            if not (self.force_tls or self.force_anyssl):
                self.tls = False
                self.downgrade = True
                self._reconnect(out, text)
                return out
            self._error(out, text)
            self._free(out, text)
            return out
        if self.era == "6.8":
            if self.state == MTA_STARTTLS and self.use_smtp_tls:
                self.tls = False
                self.downgrade = True
                self._reconnect(out, text)
                return out
            self._error(out, text)
            self._free(out, text)
            return out
        return self._io_error(out, text)  # 5.4.2: a TLS error is an IO_ERROR

    def _io_error(self, out: list, text: str) -> list:
        """IO_ERROR at 5.4.2 (and IO_TIMEOUT / IO_DISCONNECTED in every era): before READY
        try the next connection attempt, after it free the session."""
        self._error(out, text)
        if not self.ready:
            self._reconnect(out)
        else:
            self._free(out, text)
        return out

    def error(self, reason: str = "") -> list:
        """IO_ERROR (connection refused, reset, TLS alert …)."""
        out: list = []
        if self.closed:
            return out
        text = f"IO Error: {reason}" if reason else "IO Error"
        if self.era == "5.4.2":
            return self._io_error(out, text)
        if self.era == "5.7.3":
            if not self.ready:
                self._error(out, text)
                self._reconnect(out)
                return out
            if not (self.force_tls or self.force_anyssl) and self.tls:
                # "opportunistic TLS failed, downgrading to plain" — the task is kept
                # (a task still being fetched is taken when it arrives)
                self.tls = False
                self.downgrade = True
                self.hangon_wait = False
                self._reconnect(out, text)
                return out
            self._error(out, text)
            self._free(out, text)
            return out
        if self.state == MTA_STARTTLS and self.use_smtp_tls:  # 6.8
            self.tls = False
            self.downgrade = True
            self._reconnect(out, text)
            return out
        self._error(out, text)
        self._free(out, text)
        return out

    def timeout(self) -> list:
        """IO_TIMEOUT (no IO for :data:`IO_TIMEOUT` seconds): "Connection timeout"."""
        out: list = []
        if self.closed:
            return out
        return self._io_error(out, "Connection timeout")

    def disconnected(self) -> list:
        """IO_DISCONNECTED: "Connection closed unexpectedly"."""
        out: list = []
        if self.closed:
            return out
        return self._io_error(out, "Connection closed unexpectedly")

    def task(self, task: MtaTask | None, *, nconn: int = 1, fd_ok: bool = True) -> list:
        """Answer to :class:`NeedTask`.

        ``None``: the relay has no task — QUIT if the relay has other connections
        (``nconn > 1``) or the session hung on ``sessdelay_keepalive`` times already, else
        hang on: ``Wait(1)`` then :meth:`timer`.
        A task: ``fd_ok`` False → TEMPFAIL "Could not get message fd"; 5.4.2 loop check
        (``hops >= 100`` → LOOP "Loop detected"); 6.8 SIZE check → PERMFAIL "message too
        large for peer"; in those cases READY again (next task); else ``MAIL FROM``.

        If the session died while the task was being fetched, every envelope is
        tempfailed with the error that killed it (C holds the task during the fd wait
        and ``mta_error()`` flushes it)."""
        out: list = []
        if self.closed:
            if task is not None:
                text = self.orphan_text or self.close_reason or "session closed"
                for e in task.envelopes:
                    out.append(Result(e[0], TEMPFAIL, text, False))
            self.waiting_task = False
            return out
        if not self.waiting_task:
            raise RuntimeError("task() without a pending NeedTask")
        self.waiting_task = False
        if self.state != MTA_READY:
            # the answer arrives while the session reconnects (5.7.3 TLS downgrade):
            # keep the task for the next MTA_READY, as C keeps s->task
            if task is not None:
                self.current_task = task
                self.envs = list(task.envelopes)
                self.cur = 0
                if not self.envs:
                    self.current_task = None
            return out
        if task is None:
            if nconn > 1 or self.hangon >= self.cfg.sessdelay_keepalive:
                self._enter(MTA_QUIT, out)
                return out
            self.hangon_wait = True
            out.append(Wait(HANGON_DELAY))
            return out
        self.current_task = task
        self.envs = list(task.envelopes)
        self.cur = 0
        if not self.envs:
            self.current_task = None
            self._enter(MTA_READY, out)
            return out
        if not fd_ok:
            self._flush(out, TEMPFAIL, "Could not get message fd")
            self._enter(MTA_READY, out)
            return out
        if self.era == "5.4.2" and task.hops >= MAX_HOPS_COUNT:
            self._flush(out, LOOP, "Loop detected")
            self._enter(MTA_READY, out)
            return out
        if (self.era == "6.8" and self.ext & MTA_EXT_SIZE and self.ext_size
                and task.size > self.ext_size):
            self._flush(out, PERMFAIL, "message too large for peer")
            self._enter(MTA_READY, out)
            return out
        self._enter(MTA_MAIL, out)
        return out

    def timer(self) -> list:
        """The hang-on runq fired (``mta_on_timeout()``): ``hangon++``, MTA_READY."""
        out: list = []
        if self.closed or not self.hangon_wait:
            return out
        self.hangon_wait = False
        self.hangon += 1
        self._enter(MTA_READY, out)
        return out

    # ---- introspection ----------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Waiting for nothing but the caller (task, TLS, timer) or closed."""
        return self.closed or not self.expect
