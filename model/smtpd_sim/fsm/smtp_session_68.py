"""OpenSMTPD 6.8.0p2's ``usr.sbin/smtpd/smtp_session.c`` (1.428): :class:`SmtpSession68`.

Checked reply for reply against the real daemon (``research/real-daemon.md`` §8 and the
recorded dialogs).  No phase enum: a session is identified once ``s->helo`` is set and in a
transaction while ``s->tx`` exists; no kick counters; every command goes through
``smtp_filter_phase()``, which consults lka (``filter_mode="lka"``, a filtered listener) or
proceeds at once to the ``smtp_proceed_*()`` of the ``commands[]`` table.  Message lines go
through the ``rfc5322.c`` parser (:class:`~smtpd_sim.fsm.rfc5322.Rfc5322Parser`, one per
transaction): ``550 5.7.1 ... not RFC 2822 compliant``, loop detection, Bcc stripping,
``@domain`` appended to To/Cc/From addresses, Date: / Message-ID: added on a local listener.
"""

from __future__ import annotations

from smtpd_sim.fsm.address import (
    ASCII_UPPER,
    LINE_MAX,
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
    AuthResult,
    CommitMessage,
    CreateMessage,
    EnvelopeSubmitted,
    ExpandRcpt,
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
    NOTIFY_FLAGS,
    SF_8BITMIME,
    SF_AUTHENTICATED,
    SF_EHLO,
    SF_SECURE,
    SF_VERIFIED,
    SMTP_LINE_MAX,
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

__all__ = ["SmtpSession68"]

IOBUF_MAX = 65536  # iobuf.c 6.8 IOBUF_MAX: io_new() -> iobuf_init(0, 0)
REPLY_MAX = 4095  # smtp_session.c 6.8 smtp_reply(): buf[LINE_MAX*2], truncated at 4095 bytes
USERNAME_SIZE = 256  # s->username[SMTPD_MAXMAILADDRSIZE]
APPEND_DOMAIN_BUFFER_SIZE = SMTP_LINE_MAX  # smtp_session.c 6.8 APPEND_DOMAIN_BUFFER_SIZE

# ---- enum smtp_tx error (tx->error: one value at a time) ------------------------------------
TX_OK, TX_ERROR_ENVELOPE, TX_ERROR_SIZE, TX_ERROR_IO, TX_ERROR_LOOP, TX_ERROR_MALFORMED, \
    TX_ERROR_RESOURCES, TX_ERROR_INTERNAL = range(8)

# smtp_tx_dataline(): the headers rewritten (To, Cc, From) and those whose lines are not copied
_HDR_ADDR = frozenset((b"to", b"cc", b"from"))
_HDR_SKIP_CONT = frozenset((b"bcc", b"to", b"cc", b"from"))


class SmtpSession68(SmtpSession):
    """``struct smtp_session`` and ``struct smtp_tx`` of 6.8 and the functions of its
    ``smtp_session.c``."""

    __slots__ = ("_lka", "_wparam", "_tx", "_parser", "_has_date", "_has_mid", "_uid")

    _tx: bool  # s->tx exists
    _parser: Rfc5322Parser  # tx->parser (a new one per transaction, smtp_tx())
    _has_date: bool
    _has_mid: bool

    def __init__(self, config: SessionConfig, *, client_addr: str = "127.0.0.1",
                 rdns: str = "localhost", local: bool = False) -> None:
        """``smtp_session.c:smtp_session()`` (6.8)."""
        super().__init__(config, client_addr=client_addr, rdns=rdns, local=local)
        self._cap = IOBUF_MAX
        self._reply_max = REPLY_MAX
        self._username_size = USERNAME_SIZE
        self._strip_8bit = False
        self._dsn = config.dsn
        self._lka = config.filter_mode == "lka"
        self._wparam: str | None = ""
        self._uid = 0
        self._parser = Rfc5322Parser()

    def _phase_name(self) -> str:
        """Derived: INIT until identified, TRANSACTION while ``s->tx`` exists, else SETUP."""
        if self._tx:
            return "PHASE_TRANSACTION"
        return "PHASE_SETUP" if self.helo else "PHASE_INIT"

    def _connected(self) -> None:
        """``smtp_session.c:smtp_connected()``: the FILTER_CONNECT phase, then the banner
        (``smtp_proceed_connected()``)."""
        self._filter_phase("connect", self._addr)

    def _reset_tx(self) -> None:
        """``smtp_session.c:smtp_tx_free()``: no transaction."""
        super()._reset_tx()
        self._tx = False
        self._has_date = False
        self._has_mid = False

    def _check_mailaddr(self, user: str, domain: str, mailfrom: bool) -> tuple[int, str, str]:
        """6.8 ``smtp_mailaddr()``: ``<>`` only as a sender; a local part required; no
        domain → the listener's hostname; the domain checked."""
        if mailfrom and not user and not domain:
            return 1, user, domain
        if not user or not valid_localpart(user):
            return 0, user, domain
        if not domain:
            domain = self.cfg.hostname
        if not valid_domainpart(domain, "6.8"):
            return 0, user, domain
        return 1, user, domain

    def _io_tlsready(self) -> None:
        """6.8 ``smtp_io()`` IO_TLSREADY: ``s->helo[0] = '\\0'`` (EHLO again)."""
        self.helo = ""

    def _auth_login(self, arg: str | None) -> None:
        """6.8 ``smtp_rfc4954_auth_login()``: ``AUTH LOGIN <username>`` goes straight to
        the username step."""
        if self._st == ST_HELO and arg:
            self._st = ST_AUTH_USERNAME
            self._auth_login(arg)
            return
        super()._auth_login(arg)

    # ------------------------------------------------------------------------------------------
    # smtp_io() IO_DATAIN
    # ------------------------------------------------------------------------------------------

    def _io_datain(self) -> None:
        """``smtp_session.c:smtp_io()`` IO_DATAIN: command lines, message lines, pipelining."""
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
                line = c_string(line)
            eom = False
            if self._st == ST_BODY:
                if line != b".":
                    self._datain += len(line) + 1
                    if self._datain > self._maxsize:
                        self._txerr = TX_ERROR_SIZE
                eom = self._tx_dataline(line)
                if not eom:
                    continue
            if buf:
                self._badinput("500 5.5.1 Invalid command: Pipelining not supported")
                return
            if eom:
                self._filter_phase("commit", "")  # smtp_tx_eom()
                return
            if len(line) >= LINE_MAX:
                self._badinput("500 5.0.0 Command line too long")
                return
            self._command(line.decode("latin-1"))
            return

    # ------------------------------------------------------------------------------------------
    # smtp_command() and the smtp_check_*() / smtp_proceed_*() functions
    # ------------------------------------------------------------------------------------------

    def _command(self, line: str) -> None:
        """``smtp_session.c:smtp_command()``."""
        st = self._st
        if st == ST_AUTH_INIT:
            self._auth_plain(line)
            return
        if st == ST_AUTH_USERNAME or st == ST_AUTH_PASSWORD:
            self._auth_login(line)
            return
        cmd, args = parse_command(line)
        if cmd == CMD_HELO or cmd == CMD_EHLO:
            if self._check_helo(cmd, args):
                self._filter_phase("helo" if cmd == CMD_HELO else "ehlo", args)
        elif cmd == CMD_STARTTLS:
            if self._check_starttls(args):
                self._filter_phase("starttls", None)
        elif cmd == CMD_AUTH:
            if self._check_auth(args):
                self._filter_phase("auth", args)
        elif cmd == CMD_MAIL_FROM:
            if self._check_mail_from(args):
                self._filter_phase("mail", args)
        elif cmd == CMD_RCPT_TO:
            if self._check_rcpt_to(args):
                self._filter_phase("rcpt", args)
        elif cmd == CMD_RSET:
            if self._check_noparam(args):
                if not self.helo:
                    self._reply("503 5.5.1 Invalid command: Command not allowed at this point.")
                else:
                    self._filter_phase("rset", None)
        elif cmd == CMD_DATA:
            if self._check_noparam(args):
                if not self._tx:
                    self._reply("503 5.5.1 Invalid command: Command not allowed at this point.")
                elif self._rcptcount == 0:
                    self._reply("503 5.5.4 Invalid command arguments: No recipient specified")
                else:
                    self._filter_phase("data", None)
        elif cmd == CMD_QUIT:
            if self._check_noparam(args):
                self._filter_phase("quit", None)
        elif cmd == CMD_NOOP:
            if self._check_noparam(args):
                self._filter_phase("noop", None)
        elif cmd == CMD_HELP:
            if self._check_noparam(args):
                self._proceed("help", None)
        elif cmd == CMD_WIZ:
            if self._check_noparam(args):
                self._proceed("wiz", None)
        else:
            self._reply("500 5.5.1 Invalid command: Command unrecognized")

    def _check_noparam(self, args: str | None) -> bool:
        """``smtp_check_noparam()``."""
        if args is not None:
            self._reply("500 5.5.4 Invalid command arguments: command does not accept arguments.")
            return False
        return True

    def _check_helo(self, cmd: int, args: str | None) -> bool:
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

    def _check_starttls(self, args: str | None) -> bool:
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

    def _check_auth(self, args: str | None) -> bool:
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

    def _check_mail_from(self, args: str | None) -> bool:
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

    def _check_rcpt_to(self, args: str | None) -> bool:
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

    def _filter_phase(self, phase: str, param: str | None) -> None:
        """``smtp_session.c:smtp_filter_phase()``: ask lka on a filtered listener,
        else proceed at once."""
        self._wphase = phase
        self._wparam = param
        if self._lka:
            self._request(FilterQuery(phase, param if param is not None else ""), W_FILTER)
            return
        self._proceed(phase, param)

    def _proceed(self, phase: str, param: str | None) -> None:
        """The ``smtp_proceed_*()`` of a phase (the ``commands[]`` table)."""
        if phase == "connect":
            if self.cfg.smtps:
                # smtp_proceed_connected(): F_SMTPS → smtp_cert_init(), the banner after the handshake
                self._request(StartTls(), W_TLS)
            else:
                self._banner()  # smtp_proceed_connected()
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
            self._proceed_mail_from(param)
        elif phase == "rcpt":
            self._tx_rcpt_to(param)
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
            self._message_end()

    def _proceed_mail_from(self, args: str | None) -> None:
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
            o = opt.translate(ASCII_UPPER)
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

    def _tx_rcpt_to(self, args: str | None) -> None:
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
            o = opt.translate(ASCII_UPPER)
            if dsn and o.startswith("NOTIFY="):
                for p in o[7:].split(","):
                    self._dsn_notify |= NOTIFY_FLAGS.get(p, 0)
                if self._dsn_notify & DSN_NEVER and \
                        self._dsn_notify & (DSN_SUCCESS | DSN_FAILURE | DSN_DELAY):
                    self._reply("553 NOTIFY option NEVER cannot be combined with other options")
                    return
            elif dsn and o.startswith("ORCPT="):
                val = opt[6:]
                if val[:7].translate(ASCII_UPPER) == "RFC822;":
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
                                 self._dsn_orcpt, self._dsn_ret, self._dsn_envid), W_RCPT)

    def _message_begin(self) -> None:
        """``smtp_session.c:smtp_message_begin()``: 354, the Received: header, STATE_BODY."""
        self._reply('354 Enter mail, end with "." on a line by itself')
        if self.cfg.keep_body:
            self._body = []
        parts = ["Received: "]
        parts.append(f"from {self.helo} ({self._rdns} {self._addr_br})")
        f = self.flags
        parts.append(f"\n\tby {self.cfg.hostname} ({SMTPD_NAME}) with {self._received_with()} "
                     f"id {self._msgid:08x}")
        if f & SF_SECURE:
            ver, cipher, bits = self._tls_desc
            parts.append(f" ({ver}:{cipher}:{bits}:{'YES' if f & SF_VERIFIED else 'NO'})")
        if self._rcptcount == 1:
            parts.append(f"\n\tfor <{self._ruser}@{self._rdomain}>")
        parts.append(f";\n\t{self._date}\n")
        self._emit("".join(parts).encode("latin-1", "replace"))
        self._st = ST_BODY

    def _tx_dataline(self, line: bytes) -> bool:
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
                elif hl == b"delivered-to":
                    self._loop_scan(hdr + b":" + (parser.value or b""))
                emit(hdr + b":" + (parser.value or b"") + b"\n")
            elif r == RFC5322_HEADER_CONT:
                if parser.hdr.lower() not in _HDR_SKIP_CONT:
                    emit((parser.value or b"") + b"\n")
            elif r == RFC5322_HEADER_END:
                if parser.hdr.lower() in _HDR_ADDR:
                    value = parser.value
                    emit(header_domain_append(parser.hdr, value.split(b"\n") if value is not None
                                              else None, self._hostb, APPEND_DOMAIN_BUFFER_SIZE))
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

    def _message_end(self) -> None:
        """``smtp_session.c:smtp_message_end()``: commit, or the error reply and rollback."""
        err = self._txerr
        if err == TX_OK:
            body = b"".join(self._body) if self._body is not None else None
            self._request(CommitMessage(self._msgid, self._odatalen, body, self._dlvto), W_COMMIT)
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
        self._rollback_tx()

    def _rollback_tx(self) -> None:
        """``smtp_tx_rollback()`` + ``smtp_tx_free()`` + STATE_HELO."""
        if self._msgid:
            self._out.append(RollbackMessage(self._msgid))
        self._reset_tx()
        self._st = ST_HELO

    # ------------------------------------------------------------------------------------------
    # smtp_session_imsg() and the callbacks
    # ------------------------------------------------------------------------------------------

    def _on_filter_result(self, ev: FilterResult) -> None:
        """``smtp_session_imsg()`` IMSG_FILTER_SMTP_PROTOCOL: proceed, or the filter's
        reply (then ``smtp_proceed_rollback()`` at commit, or the end)."""
        decision = ev.decision
        phase = self._wphase
        if decision == "proceed":
            self._proceed(phase, self._wparam)
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
            self._rollback_tx()  # smtp_proceed_rollback()

    def _on_message_created(self, ev: MessageCreated) -> None:
        """``smtp_session_imsg()`` IMSG_SMTP_MESSAGE_CREATE: ``250 2.0.0 Ok``, or 421."""
        if ev.ok:
            self._msgid = ev.msgid & 0xFFFFFFFF
            self._rcptcount = 0
            self._reply("250 2.0.0 Ok")
            return
        self._reply("421 4.3.0 Temporary Error")
        self._reset_tx()
        self._quit("queue failure")

    def _on_envelope_submitted(self, ev: EnvelopeSubmitted) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_ENVELOPE_SUBMIT: destcount++ or TX_ERROR_ENVELOPE."""
        if ev.ok:
            self._destcount += 1
        else:
            self._txerr = TX_ERROR_ENVELOPE

    def _on_rcpt_result(self, ev: RcptResult) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_ENVELOPE_COMMIT (``ok``) and
        IMSG_SMTP_EXPAND_RCPT (failures: lka's line + ``: <user@domain>``)."""
        status = ev.status
        if status == "ok":
            if self._txerr == TX_ERROR_ENVELOPE:
                self._reply("421 4.3.0 Temporary failure")
                self._quit("envelope failure")
                return
            self._destcount = 0
            self._rcptcount += 1
            self._reply("250 2.1.5 Destination address valid: Recipient ok")
            return
        if status == "permfail":
            text = ev.text if ev.text is not None else "550 Invalid recipient"
        else:
            text = ev.text if ev.text is not None else "451 Temporary failure"
        tmp = ""
        if self._ruser:
            tmp = self._ruser + ("@" + self._rdomain if self._rdomain else "")
        self._reply(f"{text}: <{tmp}>")

    def _on_message_opened(self, ev: MessageOpened) -> None:
        """``smtp_session_imsg()`` IMSG_SMTP_MESSAGE_OPEN → ``smtp_message_fd()``."""
        if not ev.ok:
            self._reply("421 4.3.0 Temporary Error")
            self._quit("queue failure")
            return
        self._date = ev.date
        self._message_begin()

    def _on_message_committed(self, ev: MessageCommitted) -> None:
        """``smtp_session_imsg()`` IMSG_SMTP_MESSAGE_COMMIT: 250 ... accepted, or 421
        (``smtp_tx_free()`` only: the queue owns a failed commit)."""
        if not ev.ok:
            self._reply("421 4.3.0 Temporary failure")
            self._reset_tx()  # smtp_tx_free(): no rollback at 6.8
            self._quit("commit failure")
            return
        self._reply(f"250 2.0.0 {self._msgid:08x} Message accepted for delivery")
        self._reset_tx()
        self.mailcount += 1
        self._st = ST_HELO

    def _on_auth_result(self, ev: AuthResult) -> None:
        """``smtp_session_imsg()`` IMSG_SMTP_AUTHENTICATE."""
        status = ev.status
        if status == "ok":
            self.flags |= SF_AUTHENTICATED
            self._reply("235 2.0.0 Authentication succeeded")
        elif status == "permfail":
            self._reply("535 Authentication failed")  # after smtp_auth_failure_pause()
        else:
            self._reply("421 4.3.0 Temporary failure")
        self._st = ST_HELO
