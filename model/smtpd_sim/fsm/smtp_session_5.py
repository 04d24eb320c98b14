"""OpenSMTPD 5.x ``smtpd/smtp_session.c``: :class:`SmtpSession5` (what 5.4.2 and 5.7.3
share), :class:`SmtpSession542` and :class:`SmtpSession573`.

* 5.x: PHASE_INIT/SETUP/TRANSACTION decide what is allowed; the ``SMTP_KICK_CMD`` /
  ``SMTP_KICK_RCPTFAIL`` counters; the texts carry the ``2.0.0:`` colon; the 4-line 214
  HELP without enhanced codes on the first three lines; 8th-bit stripping without
  8BITMIME; ``LINE_MAX`` (2048 bytes) iobuf, replies and lines.
* 5.4.2 (opensmtpd-5.4.2, the last release with the MFA process): every phase is an MFA
  round trip (``filter_mode="mfa"``: :class:`FilterQuery` ``connect helo mail rcpt data
  eom`` and the one-way :class:`FilterEvent` ``rset commit rollback disconnect``, exactly
  where the C sends ``IMSG_MFA_*``, including the flag-mask bug of ``smtp_command()``
  HELO/EHLO that clears ``SF_MFACONNSENT`` so ``IMSG_MFA_EVENT_DISCONNECT`` is only sent
  by sessions that never got past a valid HELO/EHLO, era-5.4.2-mfa.md §0.3);
  ``filter_mode="none"`` answers every query in-process (the "5.4 without MFA"
  topology).  ``Already indentified`` (sic), no body header check, ``554 5.3.4`` for a
  too-big message, DSN options parsed whatever the listener says.
* 5.7.3 (opensmtpd-5.7.3, the pony era): in-process filters (never a
  :class:`FilterQuery`), the ``rfc2822.c`` header parser
  (:class:`~smtpd_sim.fsm.rfc2822.Rfc2822Parser`: ``550 5.7.1 ... not RFC 2822
  compliant``, loop detection, ``@domain`` appended to From/To/Cc), Bcc stripping, DSN
  options gated by the listener, ``554 Message too big``, no ``Already identified``
  check (a second HELO re-identifies and drops the transaction) and ``smtp_mailaddr()``'s
  "no domain → local user" acceptance.
"""

from __future__ import annotations

from smtpd_sim.fsm.address import (
    ASCII_UPPER,
    LINE_MAX,
    text_to_mailaddr,
    valid_domainpart,
    valid_localpart,
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
from smtpd_sim.fsm.smtp_events import (
    AuthResult,
    CommitMessage,
    CreateMessage,
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
    RollbackMessage,
    StartTls,
)
from smtpd_sim.fsm.smtp_session_common import (
    C_ISSPACE,
    CMD_AUTH,
    CMD_DATA,
    CMD_EHLO,
    CMD_HELO,
    CMD_HELP,
    CMD_MAIL_FROM,
    CMD_NOOP,
    CMD_QUIT,
    CMD_RCPT_TO,
    CMD_RSET,
    CMD_STARTTLS,
    CMD_WIZ,
    HOST_NAME_MAX,
    NOTIFY_FLAGS,
    PH_INIT,
    PH_SETUP,
    PH_TRANSACTION,
    PHASE_NAMES,
    SF_8BITMIME,
    SF_AUTHENTICATED,
    SF_EHLO,
    SF_FILTERCONN,
    SF_KICK,
    SF_MFACONNSENT,
    SF_SECURE,
    SF_VERIFIED,
    SMTPD_NAME,
    ST_AUTH_INIT,
    ST_AUTH_PASSWORD,
    ST_AUTH_USERNAME,
    ST_BODY,
    ST_HELO,
    ST_TLS,
    W_COMMIT,
    W_CREATE,
    W_FILTER,
    W_OPEN,
    W_RCPT,
    W_TLS,
    SessionConfig,
    SmtpSession,
    c_string,
    header_domain_append,
    parse_command,
)

__all__ = ["SmtpSession5", "SmtpSession542", "SmtpSession573"]

SMTP_KICK_CMD = 5  # smtp_session.c 5.4.2 / 5.7.3: commands without progress before the kick
SMTP_KICK_RCPTFAIL = 50  # smtp_session.c 5.4.2 / 5.7.3: failed RCPTs before STATE_QUIT
# s->username: SMTPD_MAXLOGNAME (5.4.2), LOGIN_NAME_MAX (5.7.3, OpenBSD)
USERNAME_SIZE = 32
APPEND_DOMAIN_BUFFER_SIZE = 4096  # smtp_session.c 5.7.3 APPEND_DOMAIN_BUFFER_SIZE

# ---- s->msgflags (MF_*, flags; the C values differ between the two releases) --------------------
MF_QUEUE_ENVELOPE_FAIL = 0x00001
MF_ERROR_SIZE = 0x01000
MF_ERROR_IO = 0x02000
MF_ERROR_MFA = 0x04000  # 5.4.2 (5.7.3 reuses 0x04000 for LOOP; distinct here)
MF_ERROR_LOOP = 0x08000  # 5.7.3
MF_ERROR_MALFORMED = 0x10000  # 5.7.3
MF_ERROR_RESOURCES = 0x20000  # 5.7.3
MF_ERROR_542 = MF_ERROR_SIZE | MF_ERROR_IO | MF_ERROR_MFA  # smtp_message_end() 5.4.2
MF_ERROR = MF_ERROR_SIZE | MF_ERROR_IO | MF_ERROR_LOOP | MF_ERROR_MALFORMED | MF_ERROR_RESOURCES

_STRIP8 = bytes(range(128)) * 2  # bytes.translate table: c & 0x7f (no 8BITMIME)


class SmtpSession5(SmtpSession):
    """``struct smtp_session`` of the 5.x releases and what their ``smtp_session.c`` share."""

    __slots__ = ("_phase", "kickcount", "rcptfail", "_evp_helo", "_mf_error")

    _evp_helo: str  # s->evp.helo (set by smtp_message_reset(s, 1))
    _mf_error: int  # the MF_ERROR mask of smtp_message_end()

    def __init__(self, config: SessionConfig, *, client_addr: str = "127.0.0.1",
                 rdns: str = "localhost", local: bool = False) -> None:
        """``smtp_session.c:smtp_session()`` (5.x): PHASE_INIT, no kicks yet."""
        super().__init__(config, client_addr=client_addr, rdns=rdns, local=local)
        if ":" in client_addr:  # ss_to_text(): AF_INET6 with its "IPv6:" prefix
            self._addr_br = f"[IPv6:{client_addr}]"
        self._cap = LINE_MAX
        self._reply_max = LINE_MAX - 1
        self._username_size = USERNAME_SIZE
        self._strip_8bit = True
        self._dsn = config.dsn
        self._mf_error = MF_ERROR
        self._phase = PH_INIT
        self.kickcount = 0
        self.rcptfail = 0

    def _phase_name(self) -> str:
        """``enum smtp_phase`` (s->phase)."""
        return PHASE_NAMES[self._phase]

    def _reset_tx(self) -> None:
        """``smtp_session.c:smtp_message_reset(s, 0)``."""
        super()._reset_tx()
        self._evp_helo = ""

    def _message_reset(self, prepare: bool) -> None:
        """``smtp_session.c:smtp_message_reset()``: prepare copies the HELO name into the
        new envelope."""
        self._reset_tx()
        if prepare:
            self._evp_helo = self.helo[:HOST_NAME_MAX]

    def _rcpt_text(self) -> str:
        """``mailaddr_to_text(&s->evp.rcpt)``: ``user@domain``, empty for ``<>``."""
        u, d = self._ruser, self._rdomain
        return f"{u}@{d}" if (u or d) else ""

    def _io_tlsready(self) -> None:
        """5.x ``smtp_io()`` IO_TLSREADY: kickcount = 0, back to PHASE_INIT."""
        self.kickcount = 0
        self._phase = PH_INIT

    # ------------------------------------------------------------------------------------------
    # what 5.4.2 and 5.7.3 do differently
    # ------------------------------------------------------------------------------------------

    def _past_headers(self) -> bool:  # pragma: no cover - both releases override it
        """Body lines can take :meth:`_bulk_body`'s shortcut (no header logic pending)."""
        raise NotImplementedError

    def _body_line(self, line: bytes) -> None:  # pragma: no cover
        """``smtp_io()``: one message line (not the final ``"."``)."""
        raise NotImplementedError

    def _end_of_body(self) -> None:  # pragma: no cover
        """``smtp_io()``: the final ``"."``."""
        raise NotImplementedError

    def _helo_allowed(self) -> bool:  # pragma: no cover
        """``smtp_command()`` CMD_HELO/EHLO: the release's check before the argument."""
        raise NotImplementedError

    def _helo_flags_kept(self) -> int:  # pragma: no cover
        """``smtp_command()`` CMD_HELO/EHLO: the session flags that survive a HELO."""
        raise NotImplementedError

    def _parser_reset(self) -> None:  # pragma: no cover
        """``smtp_command()`` CMD_DATA before the filter: the header parser's reset."""
        raise NotImplementedError

    def _parse_envid(self, opt: str) -> bool:  # pragma: no cover
        """``smtp_parse_mail_args()`` ``ENVID=``: stored, or refused (False)."""
        raise NotImplementedError

    def _filter_event(self, event: str) -> None:
        """The one-way filter notifications (rset, commit, rollback): 5.7.3's
        ``smtp_filter_*()`` are in-process, nothing is sent (5.4.2 overrides)."""

    def _message_begin(self) -> None:  # pragma: no cover
        """The message file is open: the Received: header, STATE_BODY, 354."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------
    # smtp_io() IO_DATAIN
    # ------------------------------------------------------------------------------------------

    def _io_datain(self) -> None:
        """``smtp_session.c:smtp_io()`` IO_DATAIN (5.x): command lines, message lines,
        pipelining, then the kick."""
        buf = self._buf
        while True:
            if self._st == ST_BODY and not self._txerr and self._past_headers():
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
                line = c_string(line)
            if self._st == ST_BODY and line != b".":
                self._body_line(line)
                continue
            if buf:
                self._badinput("500 5.5.1 Invalid command: Pipelining not supported")
                return
            if self._st == ST_BODY:
                self._end_of_body()
                return
            self._command(line.decode("latin-1"))
            if self.flags & SF_KICK and not self.closed:
                self._free("kick")
            return

    # ------------------------------------------------------------------------------------------
    # smtp_command() and its helpers
    # ------------------------------------------------------------------------------------------

    def _command(self, line: str) -> None:
        """``smtp_session.c:smtp_command()`` of 5.4.2 / 5.7.3 (the phases decide)."""
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
        cmd, args = parse_command(line)
        phase = self._phase
        cfg = self.cfg
        not_allowed = "503 5.5.1 Invalid command: Command not allowed at this point."
        if cmd == CMD_HELO or cmd == CMD_EHLO:
            if not self._helo_allowed():
                return
            if args is None:
                self._reply("501 5.5.1 Invalid command: %s requires domain name"
                            % ("HELO" if cmd == CMD_HELO else "EHLO"))
                return
            if not valid_domainpart(args, self.cfg.variant):
                self._reply("501 5.5.4 Invalid command arguments: Invalid domain name")
                return
            self.helo = args
            self.flags &= self._helo_flags_kept()
            if cmd == CMD_EHLO:
                self.flags |= SF_EHLO | SF_8BITMIME
            self._message_reset(True)  # 5.7.3: drops an open transaction without rollback
            self._filter("helo", self.helo)
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
                self._message_reset(True)
                ok, user, domain, rest = self._mailaddr(args, True)
                if ok != 1:
                    self._reply("553 5.1.0: Sender address syntax error")
                    return
                self._sender = f"{user}@{domain}" if (user or domain) else ""
                if self._parse_mail_args(rest):
                    self._filter("mail", self._sender)
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
                if self._parse_rcpt_args(rest):
                    self._filter("rcpt", self._rcpt_text())
        elif cmd == CMD_RSET:
            if phase != PH_TRANSACTION and phase != PH_SETUP:
                self._reply(not_allowed)
                return
            self._filter_event("rset")
            if self._msgid:
                self._out.append(RollbackMessage(self._msgid))
            self._phase = PH_SETUP
            self._message_reset(False)
            self._reply("250 2.0.0: Reset state")
        elif cmd == CMD_DATA:
            if phase != PH_TRANSACTION:
                self._reply(not_allowed)
            elif self._rcptcount == 0:
                self._reply("503 5.5.4 Invalid command arguments: No recipient specified")
            else:
                self._parser_reset()
                self._filter("data", "")
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

    def _parse_mail_args(self, rest: str) -> bool:
        """5.x ``smtp_session.c:smtp_parse_mail_args()``."""
        dsn = self._dsn
        for opt in rest.split(" "):
            if not opt:
                continue
            o = opt.translate(ASCII_UPPER)
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
                if not self._parse_envid(opt):
                    return False
            else:
                self._reply(f"503 5.5.4 Invalid command arguments: Unsupported option {opt}")
                return False
        return True

    def _parse_rcpt_args(self, rest: str) -> bool:
        """5.x ``smtp_session.c:smtp_parse_rcpt_args()``."""
        dsn = self._dsn
        for opt in rest.split(" "):
            if not opt:
                continue
            o = opt.translate(ASCII_UPPER)
            if dsn and o.startswith("NOTIFY="):
                for p in o[7:].split(","):
                    self._dsn_notify |= NOTIFY_FLAGS.get(p, 0)
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

    def _filter(self, query: str, param: str) -> None:
        """5.7.3 ``smtp_filter_*()``: the filters are in-process, answered at once (5.4.2
        sends ``IMSG_MFA_REQ_*`` when it has an MFA)."""
        self._filter_response(query, "proceed", None, None)

    def _filter_response(self, query: str, decision: str, code: int | None,
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
                self._rcpt_failed()
                return
            self._request(ExpandRcpt(self._rcpt_text(), self._sender, self._dsn_notify,
                                     self._dsn_orcpt, self._dsn_ret, self._dsn_envid), W_RCPT)
        elif query == "data":
            if not ok:
                self._reply(f"{code or 530} {text if text is not None else 'Message rejected'}")
                return
            self._request(OpenMessage(self._msgid), W_OPEN)
        elif query == "eom":
            if not ok:  # the state stays STATE_BODY (only reachable with filters)
                self._reply(f"{code or 530} {text if text is not None else 'Message rejected'}")
                return
            self._message_end()

    def _rcpt_failed(self) -> None:
        """``s->rcptfail += 1`` (a recipient refused by lka or the filter): STATE_QUIT at
        SMTP_KICK_RCPTFAIL."""
        self.rcptfail += 1
        if self.rcptfail >= SMTP_KICK_RCPTFAIL:
            self._quit("too many failed RCPT")


    def _message_end(self) -> None:
        """5.x ``smtp_session.c:smtp_message_end()``."""
        self._phase = PH_SETUP
        if self._txerr & self._mf_error:
            if self._msgid:
                self._out.append(RollbackMessage(self._msgid))
            if self._txerr & MF_ERROR_SIZE:
                self._reply("554 5.3.4 Message too big for system: Transaction failed, message too big")
            else:  # pragma: no cover - msgcode is never set: "0 Message rejected" in the C
                self._reply("421 Message rejected")
            self._message_reset(False)
            self._st = ST_HELO
            return
        body = b"".join(self._body) if self._body is not None else None
        self._request(CommitMessage(self._msgid, self._odatalen, body, self._dlvto), W_COMMIT)


    # ------------------------------------------------------------------------------------------
    # smtp_session_imsg() and the callbacks
    # ------------------------------------------------------------------------------------------

    def _on_filter_result(self, ev: FilterResult) -> None:
        """5.4.2 ``smtp_session_imsg()`` IMSG_MFA_SMTP_RESPONSE → ``smtp_mfa_response()``."""
        self._filter_response(self._wphase, ev.decision, ev.code, ev.text)

    def _on_message_created(self, ev: MessageCreated) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_CREATE_MESSAGE (5.4.2) / IMSG_SMTP_MESSAGE_CREATE
        (5.7.3): PHASE_TRANSACTION and ``250 2.0.0: Ok``, or 421."""
        if ev.ok:
            self._msgid = ev.msgid & 0xFFFFFFFF
            self._rcptcount = 0
            self._phase = PH_TRANSACTION
            self._reply("250 2.0.0: Ok")
            return
        self._reply("421 4.3.0: Temporary Error")
        self._quit("queue failure")

    def _on_envelope_submitted(self, ev: EnvelopeSubmitted) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_SUBMIT_ENVELOPE: destcount++ or
        MF_QUEUE_ENVELOPE_FAIL."""
        if ev.ok:
            self._destcount += 1
        else:
            self._txerr |= MF_QUEUE_ENVELOPE_FAIL

    def _on_rcpt_result(self, ev: RcptResult) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_COMMIT_ENVELOPES (``ok``) and
        IMSG_LKA_EXPAND_RCPT (failures: lka's line as is)."""
        status = ev.status
        if status == "ok":
            if self._txerr & MF_QUEUE_ENVELOPE_FAIL:
                self._reply("421 4.3.0: Temporary failure")
                self._quit("envelope failure")
                return
            self._destcount = 0
            self._rcptcount += 1
            self.kickcount -= 1
            self._reply("250 2.1.5 Destination address valid: Recipient ok")
            return
        if status == "permfail":
            text = ev.text if ev.text is not None else "550 Invalid recipient"
        else:
            text = ev.text if ev.text is not None else "451 Temporary failure"
        self._reply(text)
        if status == "permfail":
            self._rcpt_failed()

    def _on_message_opened(self, ev: MessageOpened) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_MESSAGE_FILE (5.4.2) / IMSG_SMTP_MESSAGE_OPEN
        (5.7.3, then ``smtp_filter_fd()``)."""
        if not ev.ok:
            self._reply("421 4.3.0: Temporary Error")
            self._quit("queue failure")
            return
        self._date = ev.date
        self._message_begin()

    def _on_message_committed(self, ev: MessageCommitted) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_COMMIT_MESSAGE / IMSG_SMTP_MESSAGE_COMMIT: 250
        ... accepted and PHASE_SETUP, or 421 (``smtp_free()`` removes the message)."""
        if not ev.ok:
            self._filter_event("rollback")
            self._reply("421 4.3.0: Temporary failure")  # smtp_free() removes the message
            self._quit("commit failure")
            return
        self._filter_event("commit")
        self._reply(f"250 2.0.0: {self._msgid:08x} Message accepted for delivery")
        self.kickcount = 0
        self._phase = PH_SETUP
        self._message_reset(False)
        self.mailcount += 1
        self._st = ST_HELO

    def _on_auth_result(self, ev: AuthResult) -> None:
        """``smtp_session_imsg()`` IMSG_LKA_AUTHENTICATE (5.4.2: from the parent) /
        IMSG_SMTP_AUTHENTICATE."""
        status = ev.status
        if status == "ok":
            self.flags |= SF_AUTHENTICATED
            self.kickcount = 0
            self._reply("235 2.0.0: Authentication succeeded")
        elif status == "permfail":
            self._reply("535 Authentication failed")  # after smtp_auth_failure_pause()
        else:
            self._reply("421 4.3.0: Temporary failure")
        self._st = ST_HELO


class SmtpSession542(SmtpSession5):
    """OpenSMTPD 5.4.2's ``smtpd/smtp_session.c``: the MFA process at every phase."""

    __slots__ = ("_mfa",)

    def __init__(self, config: SessionConfig, *, client_addr: str = "127.0.0.1",
                 rdns: str = "localhost", local: bool = False) -> None:
        """``smtp_session.c:smtp_session()`` (5.4.2)."""
        super().__init__(config, client_addr=client_addr, rdns=rdns, local=local)
        self._mfa = config.filter_mode == "mfa"
        self._dsn = True  # 5.4.2 parses DSN options unconditionally
        self._mf_error = MF_ERROR_542

    def _connected(self) -> None:
        """``smtp_session.c:smtp_connected()``: IMSG_MFA_REQ_CONNECT (SF_MFACONNSENT) and
        ``smtp_wait_mfa()``; the banner comes with the answer."""
        if self._mfa:
            self.flags |= SF_MFACONNSENT
        self._filter("connect", self._rdns)

    def _free(self, reason: str | None) -> None:
        """``smtp_session.c:smtp_free()``: IMSG_QUEUE_REMOVE_MESSAGE for the open message,
        IMSG_MFA_EVENT_DISCONNECT while SF_MFACONNSENT survives, then close."""
        if self._msgid:
            self._out.append(RollbackMessage(self._msgid))
        if self._mfa and self.flags & SF_MFACONNSENT:
            self._out.append(FilterEvent("disconnect"))
        self._close(reason)

    def _filter(self, query: str, param: str) -> None:
        """``m_create(p_mfa, IMSG_MFA_REQ_*)`` + ``smtp_wait_mfa()``; without an MFA (the
        "5.4 without MFA" topology) answered in-process at once."""
        if self._mfa:
            self._wphase = query
            self._request(FilterQuery(query, param), W_FILTER)
            return
        super()._filter(query, param)

    def _filter_event(self, event: str) -> None:
        """``m_create(p_mfa, IMSG_MFA_EVENT_RSET / _COMMIT / _ROLLBACK)``: one-way."""
        if self._mfa:
            self._out.append(FilterEvent(event))

    def _check_mailaddr(self, user: str, domain: str, mailfrom: bool) -> tuple[int, str, str]:
        """5.4.2 ``smtp_mailaddr()``: valid parts, ``<>`` as a sender, or a bare
        ``postmaster`` recipient (given the listener's hostname)."""
        if valid_localpart(user) and valid_domainpart(domain, "5.4.2"):
            return 1, user, domain
        if mailfrom and not user and not domain:
            return 1, user, domain
        if not mailfrom and user.translate(ASCII_UPPER) == "POSTMASTER" and not domain:
            return 1, user, self.cfg.hostname
        return 0, user, domain

    def _helo_allowed(self) -> bool:
        """5.4.2 ``smtp_command()`` CMD_HELO/EHLO: once only (``Already indentified``, sic)."""
        if self._phase != PH_INIT:
            self._reply("503 5.5.1 Invalid command: Already indentified")
            return False
        return True

    def _helo_flags_kept(self) -> int:
        """5.4.2 ``s->flags &= SF_SECURE | SF_AUTHENTICATED | SF_VERIFIED``: also clears
        SF_MFACONNSENT (era-5.4.2-mfa.md §0.3)."""
        return SF_SECURE | SF_AUTHENTICATED | SF_VERIFIED

    def _parser_reset(self) -> None:
        """5.4.2 has no header parser."""

    def _parse_envid(self, opt: str) -> bool:
        """5.4.2 ``smtp_parse_mail_args()`` ``ENVID=``: ``strlcpy()`` truncates."""
        self._dsn_envid = opt[6:6 + DSN_ENVID_LEN]
        return True

    def _past_headers(self) -> bool:
        """5.4.2 does nothing with headers: every plain body line past what
        ``mda_check_loop()`` reads takes the shortcut."""
        return not self._headscan

    def _body_line(self, line: bytes) -> None:
        """5.4.2 ``smtp_io()`` body line + ``smtp_message_write()``: dot, 8th bit, size."""
        if line[:1] == b".":
            line = line[1:]
        if not self.flags & SF_8BITMIME:
            line = c_string(line.translate(_STRIP8))
        if self._txerr & MF_ERROR_542:
            return
        if self._headscan:
            self._loop_scan(line)
        n = len(line) + 1
        if self._datain + n > self._maxsize:
            self._txerr |= MF_ERROR_SIZE
            return
        self._datain += n
        self._odatalen += n
        if self._body is not None:
            self._body.append(line + b"\n")

    def _end_of_body(self) -> None:
        """5.4.2 ``smtp_io()`` end of message: IMSG_MFA_REQ_EOM (with the size read)."""
        self._filter("eom", str(self._datain))

    def _message_begin(self) -> None:
        """5.4.2 ``smtp_session_imsg()`` IMSG_QUEUE_MESSAGE_FILE: the Received: header,
        STATE_BODY, 354."""
        if self.cfg.keep_body:
            self._body = []
        self._headscan = True  # the lines mda_check_loop() reads start with the file
        f = self.flags
        with_ = self._received_with()
        ver, cipher, bits = self._tls_desc
        verify = "YES" if f & SF_VERIFIED else "NO"
        parts = [f"Received: from {self._evp_helo} ({self._rdns} {self._addr_br});\n\t"
                 f"by {self.cfg.hostname} ({SMTPD_NAME}) with {with_} id {self._msgid:08x};\n"]
        if f & SF_SECURE:
            parts.append(f"\tTLS version={ver} cipher={cipher} bits={bits} verify={verify};\n")
        if self._rcptcount == 1:
            parts.append(f"\tfor <{self._ruser}@{self._rdomain}>;\n")
        parts.append(f"\t{self._date}\n")
        self._emit("".join(parts).encode("latin-1", "replace"))
        self._st = ST_BODY
        self._reply('354 Enter mail, end with "." on a line by itself')


class SmtpSession573(SmtpSession5):
    """OpenSMTPD 5.7.3's ``smtpd/smtp_session.c``: in-process filters, the ``rfc2822.c``
    header parser."""

    __slots__ = ("_rfc2822", "_hdrdone", "_skiphdr")

    _hdrdone: bool
    _skiphdr: bool

    def __init__(self, config: SessionConfig, *, client_addr: str = "127.0.0.1",
                 rdns: str = "localhost", local: bool = False) -> None:
        """``smtp_session.c:smtp_session()`` (5.7.3): the rfc2822 parser and its callbacks
        set up before ``smtp_connected()``."""
        super().__init__(config, client_addr=client_addr, rdns=rdns, local=local)
        self._rfc2822 = p = Rfc2822Parser()
        p.header_default_callback(self._header_default_callback)
        p.header_callback(b"bcc", self._header_bcc_callback)
        p.header_callback(b"from", self._header_domain_append_callback)
        p.header_callback(b"to", self._header_domain_append_callback)
        p.header_callback(b"cc", self._header_domain_append_callback)
        p.body_callback(self._dataline_callback)

    def _connected(self) -> None:
        """``smtp_session.c:smtp_connected()``: SF_FILTERCONN, ``smtp_filter_connect()``."""
        self.flags |= SF_FILTERCONN
        self._filter("connect", self._rdns)

    def _free(self, reason: str | None) -> None:
        """``smtp_session.c:smtp_free()``: also ``rfc2822_parser_release()``."""
        self._rfc2822.release()
        super()._free(reason)

    def _reset_tx(self) -> None:
        """``smtp_session.c:smtp_message_reset()`` (5.7.3 also clears hdrdone)."""
        super()._reset_tx()
        self._hdrdone = False
        self._skiphdr = False

    def _check_mailaddr(self, user: str, domain: str, mailfrom: bool) -> tuple[int, str, str]:
        """5.7.3 ``smtp_mailaddr()``: valid parts, ``<>`` as a sender, or a user without a
        domain (a local user: given the listener's hostname)."""
        if valid_localpart(user) and valid_domainpart(domain, "5.7.3"):
            return 1, user, domain
        if mailfrom and not user and not domain:
            return 1, user, domain
        if not user:
            return 0, user, domain
        if not domain:
            return 1, user, self.cfg.hostname
        return 0, user, domain

    def _helo_allowed(self) -> bool:
        """5.7.3 ``smtp_command()`` CMD_HELO/EHLO: allowed in any phase."""
        return True

    def _helo_flags_kept(self) -> int:
        """5.7.3 ``s->flags &= SF_SECURE | SF_AUTHENTICATED | SF_VERIFIED | SF_FILTERCONN``."""
        return SF_SECURE | SF_AUTHENTICATED | SF_VERIFIED | SF_FILTERCONN

    def _parser_reset(self) -> None:
        """5.7.3 ``smtp_command()`` CMD_DATA: ``rfc2822_parser_reset()`` (in_hdr and the
        name survive)."""
        self._rfc2822.reset()

    def _parse_envid(self, opt: str) -> bool:
        """5.7.3 ``smtp_parse_mail_args()`` ``ENVID=``: too long is refused."""
        if len(opt) - 6 >= DSN_ENVID_LEN + 1:
            self._reply("503 5.5.4 Invalid command arguments: option too large, "
                        f"truncated: {opt[6:]}")
            return False
        self._dsn_envid = opt[6:6 + DSN_ENVID_LEN]
        return True

    def _past_headers(self) -> bool:
        """Past the headers: hdrdone, no header pending in the parser, no Bcc: skipped."""
        p = self._rfc2822
        return self._hdrdone and not p.in_hdrs and not p.in_hdr and not self._skiphdr

    def _body_line(self, line: bytes) -> None:
        """5.7.3 ``smtp_io()`` body line (Bcc stripping, 8th bit) + ``smtp_filter_dataline()``."""
        if line[:1] == b".":
            line = line[1:]
        if self._skiphdr and line[:1] and line[0] in C_ISSPACE:
            return
        self._skiphdr = False
        if not self._hdrdone and line[:4].lower() == b"bcc:":
            self._skiphdr = True
            return
        if not self.flags & SF_8BITMIME:
            line = c_string(line.translate(_STRIP8))
        if self._txerr & MF_ERROR:
            return
        if not line:
            self._hdrdone = True
        self._datain += len(line) + 1
        if self._datain > self._maxsize:
            self._txerr |= MF_ERROR_SIZE
            return
        if self._headscan:
            self._loop_scan(line)
        if not self._hdrdone:
            if line[:10].lower() == b"received: ":
                self._rcvcount += 1
            if self._rcvcount == MAX_HOPS_COUNT:
                self._txerr |= MF_ERROR_LOOP
                return
        if not self._rfc2822.feed(line):
            self._txerr |= MF_ERROR_MALFORMED

    def _end_of_body(self) -> None:
        """5.7.3 ``smtp_io()`` end of message (dataeom) → ``smtp_data_io_done()``."""
        self._data_io_done()

    def _data_io_done(self) -> None:
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
            self._message_reset(False)
            self._st = ST_HELO
            return
        self._filter("eom", str(self._odatalen))

    def _message_begin(self) -> None:
        """5.7.3 ``smtp_filter_fd()``: the Received: header, STATE_BODY, 354."""
        if self.cfg.keep_body:
            self._body = []
        self._headscan = True  # the lines mda_check_loop() reads start with the file
        f = self.flags
        with_ = self._received_with()
        ver, cipher, bits = self._tls_desc
        verify = "YES" if f & SF_VERIFIED else "NO"
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

    # ------------------------------------------------------------------------------------------
    # the rfc2822 parser's callbacks (smtp_session.c)
    # ------------------------------------------------------------------------------------------

    def _header_default_callback(self, name: bytes, lines: list[bytes]) -> None:
        """5.7.3 ``smtp_session.c:header_default_callback()``: the header as it came."""
        self._emit(name + b":" + b"".join(ln + b"\n" for ln in lines))

    def _header_bcc_callback(self, name: bytes, lines: list[bytes]) -> None:
        """5.7.3 ``smtp_session.c:header_bcc_callback()``: Bcc: dropped."""

    def _header_domain_append_callback(self, name: bytes, lines: list[bytes]) -> None:
        """5.7.3 ``smtp_session.c:header_domain_append_callback()`` (From, To, Cc)."""
        self._emit(header_domain_append(name, lines, self._hostb, APPEND_DOMAIN_BUFFER_SIZE))

    def _dataline_callback(self, line: bytes) -> None:
        """5.7.3 ``smtp_session.c:dataline_callback()``: a body line into the message file."""
        self._odatalen += len(line) + 1
        if self._body is not None:
            self._body.append(line + b"\n")
