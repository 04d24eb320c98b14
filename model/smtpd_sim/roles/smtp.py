"""The SMTP server (``smtp.c``, ``smtp_session.c``): sessions driven by the pure FSM.

The role owns the I/O and the imsgs; ``smtpd_sim.fsm.smtp_session`` decides every reply.
Before the banner the session resolves the client (5.x: one PTR through lka; 6.8:
FCrDNS, ``resolver_getnameinfo()`` then ``resolver_getaddrinfo()``). In 5.4.2 each
filter query of the FSM is a round trip to the mfa process; from 1a1f1ae5 on the
filter answers in-process (no query reaches the role).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smtpd_sim.errors import ModelError
from smtpd_sim.fsm import smtp_session as fsm
from smtpd_sim.fsm.envelope import Envelope, msgid_to_evpid
from smtpd_sim.kernel.message import Imsg
from smtpd_sim.roles.base import Role, handles
from smtpd_sim.roles.bounce import SocketPair

if TYPE_CHECKING:
    from smtpd_sim.kernel.process import Process
    from smtpd_sim.roles.ports import Ports

_MFA_QUERY = {
    "connect": "MFA_REQ_CONNECT", "helo": "MFA_REQ_HELO", "mail": "MFA_REQ_MAIL",
    "rcpt": "MFA_REQ_RCPT", "data": "MFA_REQ_DATA", "eom": "MFA_REQ_EOM",
}
_MFA_EVENT = {
    "rset": "MFA_EVENT_RSET", "commit": "MFA_EVENT_COMMIT", "rollback": "MFA_EVENT_ROLLBACK",
    "disconnect": "MFA_EVENT_DISCONNECT",
}


class _Session:
    """``struct smtp_session`` as far as the role needs it (the FSM holds the rest)."""

    __slots__ = ("id", "conn", "fsm", "rdns", "fcrdns", "msgid", "sender", "helo", "closed",
                 "t_connect", "bounce", "tls_listener", "last_cmd", "greeted", "pending_open", "rcpts",
                 "smtps")

    def __init__(self, sid: int, conn: Any, tls_listener: bool = False, smtps: bool = False) -> None:
        self.id = sid
        self.conn = conn
        self.fsm: fsm.SmtpSession | None = None
        self.rdns = "<unknown>"
        self.fcrdns = 0
        self.msgid = 0
        self.sender = ""
        self.helo = ""
        self.closed = False
        self.t_connect = 0.0
        self.bounce = False
        self.tls_listener = tls_listener
        self.last_cmd = ""  # verb of the last command line (filtered sessions' reports)
        self.greeted = False
        self.pending_open: Any = None
        self.rcpts = 0
        self.smtps = smtps  # the listener is `smtps` (F_SMTPS): TLS before the banner


class SmtpRole(Role):
    """``smtp.c:smtp_imsg()`` / ``smtp_session.c:smtp_session_imsg()``."""

    name = "smtp"

    def __init__(self, proc: Process, ports: Ports) -> None:
        super().__init__(proc, ports)
        b = self.behaviour
        # a 6.8 listener with `filter` (F_FILTERED): every phase through lka, reports to lka
        self.filtered = bool(ports.filters)
        self.hostname = ports.site.hostname
        self.world = ports.world
        self.ledger = ports.ledger
        self.recorder = ports.recorder
        self.disk = ports.disk
        self.hooks = ports.hooks  # a live server's wall-clock date (hooks.date)
        self.socketpair_latency = ports.socketpair_latency_s
        common: dict[str, Any] = {
            "variant": b.smtp_variant,
            "hostname": self.hostname,
            "filter_mode": "mfa" if b.filters == "mfa" else ("lka" if self.filtered else "none"),
            "keep_body": ports.keep_body,
        }
        # listeners (smtpd.conf `listen on`): a plain one, and one offering STARTTLS
        self.config = fsm.SessionConfig(**common)
        self.config_tls = fsm.SessionConfig(**common, tls=True)
        # `listen on ... smtps` (F_SMTPS), modelled for 6.8
        self.config_smtps = (fsm.SessionConfig(**common, smtps=True)
                             if b.smtp_variant == "6.8" else None)
        self.rng = ports.rng("smtp-ids")
        self.sessions: dict[int, _Session] = {}
        self.accepted = 0
        self._act = {
            fsm.Reply: self._a_reply,
            fsm.Disconnect: self._a_disconnect,
            fsm.FilterQuery: self._a_filter_query,
            fsm.FilterEvent: self._a_filter_event,
            fsm.CreateMessage: self._a_create,
            fsm.ExpandRcpt: self._a_expand,
            fsm.OpenMessage: self._a_open,
            fsm.CommitMessage: self._a_commit,
            fsm.RollbackMessage: self._a_rollback,
            fsm.StartTls: self._a_starttls,
        }

    def counters(self) -> dict[str, float]:
        """Messages accepted (``250 ... Message accepted``) and sessions open now."""
        return {"accepted": self.accepted, "sessions": len(self.sessions)}

    def reset_all(self, reason: str) -> None:
        """The daemon died (``fatalx()``): every client connection is reset."""
        for s in list(self.sessions.values()):
            s.conn.server_close(reason)

    @handles("CONF_START", "CONF_END")
    def on_conf(self, m: Imsg) -> None:
        """IMSG_CONF_END → ``smtp_setup_events()`` / ``smtp_configure()``: listen()."""

    # ---- the world side: a client connects and writes ------------------------------------

    def connect(self, conn: Any, tls: bool = False, smtps: bool = False) -> None:
        """A TCP connection reached a listening socket (called by the world); ``tls``
        selects the listener that offers STARTTLS, ``smtps`` the implicit-TLS one."""
        if smtps and self.config_smtps is None:
            raise ModelError(f"smtp: an SMTPS listener is modelled for 6.8 only, not "
                             f"{self.behaviour.smtp_variant}")
        self.proc.post(self._accept, (conn, tls, smtps), key="smtp.accept")

    def client_data(self, sid: int, data: bytes) -> None:
        """The client wrote ``data`` (one write) on session ``sid``."""
        self.proc.post(self._data, (sid, data), key="smtp.io")

    def client_gone(self, sid: int) -> None:
        """The client closed or reset the connection."""
        self.proc.post(self._gone, sid, key="smtp.io")

    def client_timeout(self, sid: int) -> None:
        """The session's io timer expired (``io_set_timeout(SMTPD_SESSION_TIMEOUT)``; the
        world keeps the clock of the socket)."""
        self.proc.post(self._timeout, sid, key="smtp.io")

    def tls_done(self, sid: int, ok: bool, version: str = "", cipher: str = "", bits: int = 0) -> None:
        """A real TLS handshake the world ran for ``start_tls`` ended (IO_TLSREADY or
        IO_ERROR): the protocol and cipher of the connection."""
        self.proc.post(self._tls_done, (sid, fsm.TlsResult(ok, version, cipher, bits)), key="smtp.tls")

    def _accept(self, arg: tuple[Any, bool, bool]) -> None:
        """``smtp.c:smtp_accept()`` → ``smtp_session.c:smtp_session()``, then the stats."""
        conn, tls, smtps = arg
        sid = self.rng.getrandbits(64)  # generate_uid()
        s = _Session(sid, conn, tls, smtps)
        s.t_connect = self.now
        self.sessions[sid] = s
        conn.attach(self, sid)
        if self.behaviour.resolver == "fcrdns":
            # resolver_getnameinfo(NI_NAMEREQD): IMSG_GETNAMEINFO through lka
            self.send("lka", "GETNAMEINFO", {"session": sid, "addr": conn.addr})
        else:
            # dns.c:dns_query_ptr(): IMSG_DNS_PTR / IMSG_SMTP_DNS_PTR
            self.send("lka", "SMTP_DNS_PTR", {"session": sid, "addr": conn.addr})
        self.stat_increment("smtp.session")
        self.stat_increment("smtp.session.inet4")

    @handles("QUEUE_SMTP_SESSION")
    def on_enqueue(self, m: Imsg) -> None:
        """``smtp.c:smtp_imsg()`` IMSG_QUEUE_SMTP_SESSION → ``smtp_enqueue()``: a socketpair
        and a local session on it (hostname preset: no DNS), the other end back to queue."""
        pair = SocketPair(self._hosts["queue"], self.socketpair_latency)
        sid = self.rng.getrandbits(64)
        s = _Session(sid, pair)
        s.bounce = True
        s.t_connect = self.now
        self.sessions[sid] = s
        pair.attach(self, sid)
        s.rdns, s.fcrdns = self.hostname, 1
        self.stat_increment("smtp.session")
        self.stat_increment("smtp.session.local")
        self.reply(m, "QUEUE_SMTP_SESSION", {"pair": pair}, length=0, fd=True)
        s.fsm = fsm.new_session(self.config, client_addr="local", rdns=s.rdns, local=True)
        self._run(s, s.fsm.start())

    @handles("SMTP_DNS_PTR")
    def on_dns_ptr(self, m: Imsg) -> None:
        """5.x ``smtp_session_imsg()`` IMSG_DNS_PTR: hostname or ``<unknown>`` → ``smtp_connected()``."""
        s = self.sessions.get(m.payload["session"])
        if s is None:
            return
        s.rdns = m.payload["name"] or "<unknown>"
        self._connected(s)

    @handles("GETNAMEINFO")
    def on_getnameinfo(self, m: Imsg) -> None:
        """6.8 ``smtp_getnameinfo_cb()``: no name → ``<unknown>`` and connect; else
        ``resolver_getaddrinfo()`` for forward confirmation."""
        s = self.sessions.get(m.payload["session"])
        if s is None:
            return
        name = m.payload["name"]
        if name is None:
            s.rdns, s.fcrdns = "<unknown>", 0
            self._connected(s)
            return
        s.rdns = name
        self.send("lka", "GETADDRINFO", {"session": s.id, "host": name})

    @handles("GETADDRINFO")
    def on_getaddrinfo(self, m: Imsg) -> None:
        """6.8 ``resolver.c:resolver_dispatch_result()``: one address of the answer."""

    @handles("GETADDRINFO_END")
    def on_getaddrinfo_end(self, m: Imsg) -> None:
        """6.8 ``smtp_getaddrinfo_cb()``: FCrDNS if one address equals the client's."""
        s = self.sessions.get(m.payload["session"])
        if s is None:
            return
        s.fcrdns = 1 if s.conn.addr in m.payload["addrs"] else 0
        self._connected(s)

    def _connected(self, s: _Session) -> None:
        """``smtp_session.c:smtp_lookup_servername()`` → ``smtp_connected()``: the FSM sends
        the banner (or, in 5.4.2, asks mfa first)."""
        config = self.config_tls if s.tls_listener else self.config
        if s.smtps and self.config_smtps is not None:
            config = self.config_smtps
        s.fsm = fsm.new_session(config, client_addr=s.conn.addr, rdns=s.rdns)
        if self.filtered:
            # smtp_connected(): smtp_filter_begin(), smtp_report_link_connect()
            self.send("lka", "FILTER_SMTP_BEGIN", {"session": s.id}, length=16)
            self._report(s, "LINK_CONNECT", 64)
        self._run(s, s.fsm.start())

    def _data(self, arg: tuple[int, bytes]) -> None:
        """``smtp_session.c:smtp_io()`` IO_DATAIN → ``smtp_command()`` / body lines."""
        sid, data = arg
        s = self.sessions.get(sid)
        if s is None or s.fsm is None or s.closed:
            return
        self.proc.charge(self.proc.costs.per_byte * len(data))
        if self.filtered:
            self._report_client(s, data)
        self._run(s, s.fsm.feed(data))

    def _gone(self, sid: int) -> None:
        """IO_DISCONNECTED / IO_ERROR → ``smtp_free()``."""
        s = self.sessions.get(sid)
        if s is None:
            return
        if s.fsm is not None and not s.closed:
            self._run(s, s.fsm.close())
        self._free(s)

    def _timeout(self, sid: int) -> None:
        """6.8 ``smtp_io()`` IO_TIMEOUT → ``smtp_free(s, "timeout")``: no reply, the socket
        is closed. (``smtp_report_timeout()``'s IMSG_REPORT_SMTP_TIMEOUT is not in the
        model's imsg vocabulary: a filtered listener does not report the timeout.)"""
        self._gone(sid)

    # ---- FSM actions -> imsgs and client writes ----------------------------------------------

    def _run(self, s: _Session, actions: list[Any]) -> None:
        act = self._act
        for a in actions:
            act[type(a)](s, a)

    # ---- 6.8 filtered sessions: reports (report_smtp.c) ------------------------------------

    def _report(self, s: _Session, what: str, length: int = 40) -> None:
        """``smtp_report_*()`` → ``report_smtp.c``: a one-way IMSG_REPORT_SMTP_* to lka."""
        self.send("lka", f"REPORT_SMTP_{what}", {"session": s.id}, length=length)

    def _report_client(self, s: _Session, data: bytes) -> None:
        """``smtp_command()`` → ``smtp_report_protocol_client()`` per command line; the
        final "." of a message too (``smtp_tx_dataline()``)."""
        body = s.fsm is not None and s.fsm.state == "STATE_BODY"
        for line in data.split(b"\n"):
            if not line.strip(b"\r"):
                continue
            if body:
                if line.rstrip(b"\r") == b".":
                    self._report(s, "PROTOCOL_CLIENT", 24)
                    body = False
                continue
            s.last_cmd = line[:4].upper().decode("ascii", "replace")
            self._report(s, "PROTOCOL_CLIENT", 24 + len(line))
            if s.last_cmd == "DATA":
                body = True

    def _report_reply(self, s: _Session, text: str) -> None:
        """``smtp_reply()``: PROTOCOL_SERVER per line, then the transaction reports its code
        implies for the last command (LINK_GREETING before the banner, LINK_IDENTIFY before
        the HELO/EHLO answer, from ``smtp_send_banner()`` / ``smtp_proceed_helo/ehlo()``)."""
        code = text[:1]
        if not s.greeted:
            s.greeted = True
            self._report(s, "LINK_GREETING", 40)
        elif s.last_cmd in ("HELO", "EHLO") and code == "2":
            self._report(s, "LINK_IDENTIFY", 40)
        for line in text.split("\n"):
            self._report(s, "PROTOCOL_SERVER", 24 + len(line))
        tx = s.msgid != 0
        cmd = s.last_cmd
        if code == "2" and tx and cmd == "MAIL":
            self._report(s, "TX_BEGIN", 28)
            self._report(s, "TX_MAIL", 60)
        elif code == "2" and tx and cmd == "RCPT":
            self._report(s, "TX_RCPT", 60)
        elif code == "3" and tx and cmd == "DATA":
            self._report(s, "TX_DATA", 32)
        elif code in ("4", "5") and tx:
            if cmd in ("MAIL", "RCPT"):
                self._report(s, "TX_MAIL" if cmd == "MAIL" else "TX_RCPT", 60)
            elif cmd == "DATA" and s.rcpts:
                self._report(s, "TX_DATA", 32)

    @handles("FILTER_SMTP_PROTOCOL")
    def on_filter_protocol(self, m: Imsg) -> None:
        """``smtp_session_imsg()`` IMSG_FILTER_SMTP_PROTOCOL: the chain's decision;
        ``smtp_report_filter_response()`` then proceed, reject or disconnect."""
        s = self._session_of(m)
        if s is None:
            return
        self._report(s, "FILTER_RESPONSE", 40)
        self._handle(s, fsm.FilterResult(m.payload["decision"]))

    @handles("FILTER_SMTP_DATA_BEGIN")
    def on_filter_data_begin(self, m: Imsg) -> None:
        """``smtp_filter_fd()``: the message now goes through lka's socketpair; 354."""
        s = self._session_of(m)
        if s is None or s.pending_open is None:
            return
        s.pending_open = None
        self._handle(s, fsm.MessageOpened(True, self.date_text()))

    def _a_reply(self, s: _Session, a: Any) -> None:
        """``smtp_session.c:smtp_reply()``: queue the reply on the client socket."""
        if self.filtered:
            self._report_reply(s, a.text)
        if a.text.startswith("250") and "Message accepted" in a.text:
            self.accepted += 1
            self.ledger.accepted(s.msgid, self.now, internal=s.bounce)
        self.recorder.event(self.now, "reply", self.proc.name, s.id, a.text[:3], self.proc.cause)
        self.proc.emit(s.conn.server_reply, a.text)

    def _a_disconnect(self, s: _Session, a: Any) -> None:
        """STATE_QUIT / errors: close after the output drains, then ``smtp_free()``. A 5.x
        kick (SF_KICK, ``SMTP_KICK_CMD`` commands without progress) counts
        ``stat_increment("smtp.kick")`` as ``smtp_command()`` sets the flag."""
        if a.reason == "kick":
            self.stat_increment("smtp.kick")
        s.closed = True
        self.proc.emit(s.conn.server_close, a.reason)
        self._free(s)

    def _free(self, s: _Session) -> None:
        """``smtp_session.c:smtp_free()`` (stat smtp.tls -1 if secured) → ``smtp.c:smtp_collect()``
        (stat smtp.session -1)."""
        if self.sessions.pop(s.id, None) is None:
            return
        s.closed = True
        if self.filtered and s.fsm is not None:
            self._report(s, "LINK_DISCONNECT", 16)  # smtp_report_link_disconnect()
            self.send("lka", "FILTER_SMTP_END", {"session": s.id}, length=8)  # smtp_filter_end()
        if s.fsm is not None and s.fsm.flags & fsm.SF_SECURE:
            self.stat_decrement("smtp.smtps" if s.smtps else "smtp.tls")
        self.stat_decrement("smtp.session")

    def _a_filter_query(self, s: _Session, a: Any) -> None:
        """5.4.2 ``smtp_session.c``: m_create(p_mfa, IMSG_MFA_REQ_*) then ``smtp_wait_mfa()``;
        6.8 filtered listener: ``smtp_query_filters()`` IMSG_FILTER_SMTP_PROTOCOL to lka."""
        if self.filtered:
            self.send("lka", "FILTER_SMTP_PROTOCOL", {"session": s.id, "phase": a.phase, "param": a.param},
                      length=24 + len(a.param))
            return
        kind = _MFA_QUERY[a.phase]
        self.send("mfa", kind, {"session": s.id, "param": a.param})

    def _a_filter_event(self, s: _Session, a: Any) -> None:
        """5.4.2 one-way IMSG_MFA_EVENT_* (RSET, COMMIT, ROLLBACK, DISCONNECT)."""
        self.send("mfa", _MFA_EVENT[a.event], {"session": s.id})

    @handles("MFA_SMTP_RESPONSE")
    def on_mfa_response(self, m: Imsg) -> None:
        """5.4.2 ``smtp_session.c:smtp_mfa_response()``."""
        s = self.sessions.get(m.payload["session"])
        if s is None or s.fsm is None:
            return
        ok = m.payload["status"] == 0
        self._handle(s, fsm.FilterResult("proceed" if ok else "reject"))

    def _a_create(self, s: _Session, a: Any) -> None:
        """``smtp_tx_create_message()`` (5.4.2: in ``smtp_mfa_response()`` MAIL)."""
        self.send("queue", "SMTP_MESSAGE_CREATE", {"session": s.id})

    @handles("SMTP_MESSAGE_CREATE")
    def on_message_create(self, m: Imsg) -> None:
        """``smtp_session_imsg()`` IMSG_SMTP_MESSAGE_CREATE: msgid or failure."""
        s = self._session_of(m)
        if s is None:
            return
        ok = m.payload["ok"]
        s.msgid = m.payload.get("msgid", 0) if ok else 0
        self._handle(s, fsm.MessageCreated(ok, s.msgid))

    def _a_expand(self, s: _Session, a: Any) -> None:
        """``smtp_tx_rcpt_to()``: the whole envelope to lka (IMSG_SMTP_EXPAND_RCPT), its id
        ``msgid_to_evpid(msgid)`` as IMSG_SMTP_MESSAGE_CREATE set it; the session id travels
        beside it in the payload (``m_add_id()``)."""
        s.sender = a.sender
        evp = Envelope()
        evp.id = msgid_to_evpid(s.msgid)
        evp.sender = a.sender
        evp.rcpt = a.rcpt
        evp.smtpname = self.hostname  # smtp_tx(): s->smtpname, the listener's hostname
        evp.helo = s.helo
        evp.hostname = s.rdns
        evp.dsn_notify = a.dsn_notify  # smtp_tx_rcpt_to(): NOTIFY=, ORCPT= of this RCPT
        evp.dsn_orcpt = a.dsn_orcpt or ""
        evp.dsn_ret = a.dsn_ret  # smtp_tx_mail_from(): RET=, ENVID= of the transaction
        evp.dsn_envid = a.dsn_envid
        self.send("lka", "SMTP_EXPAND_RCPT", {"session": s.id, "envelope": evp},
                  length=8 + evp.approx_size())

    @handles("QUEUE_ENVELOPE_SUBMIT")
    def on_envelope_submit(self, m: Imsg) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_ENVELOPE_SUBMIT: one envelope written (destcount++)."""
        s = self._session_of(m)
        if s is not None:
            if self.filtered and m.payload["ok"]:
                self._report(s, "TX_ENVELOPE", 24)  # smtp_report_tx_envelope()
            self._handle(s, fsm.EnvelopeSubmitted(m.payload["ok"], m.payload["evpid"]))

    @handles("QUEUE_ENVELOPE_COMMIT")
    def on_envelope_commit(self, m: Imsg) -> None:
        """``smtp_session_imsg()`` IMSG_QUEUE_ENVELOPE_COMMIT: ``250 2.1.5 ... Recipient ok``."""
        s = self._session_of(m)
        if s is not None:
            s.rcpts += 1
            self._handle(s, fsm.RcptResult("ok"))

    @handles("SMTP_EXPAND_RCPT")
    def on_expand_failed(self, m: Imsg) -> None:
        """``smtp_session_imsg()`` IMSG_SMTP_EXPAND_RCPT: lka refused the recipient."""
        s = self._session_of(m)
        if s is not None:
            self._handle(s, fsm.RcptResult(m.payload["status"], m.payload["text"]))

    def _a_open(self, s: _Session, a: Any) -> None:
        """``smtp_tx_open_message()``: IMSG_SMTP_MESSAGE_OPEN."""
        self.send("queue", "SMTP_MESSAGE_OPEN", {"session": s.id, "msgid": a.msgid})

    @handles("SMTP_MESSAGE_OPEN")
    def on_message_open(self, m: Imsg) -> None:
        """``smtp_session_imsg()`` IMSG_SMTP_MESSAGE_OPEN [fd] → ``smtp_message_fd()``: 354."""
        s = self._session_of(m)
        if s is None:
            return
        if self.filtered and m.payload["ok"]:
            # smtp_filter_data_begin(): the 354 waits for lka's data socketpair
            s.pending_open = True
            self.send("lka", "FILTER_SMTP_DATA_BEGIN", {"session": s.id}, length=8)
            return
        self._handle(s, fsm.MessageOpened(m.payload["ok"], self.date_text()))

    def date_text(self) -> str:
        """``time_to_text(time(NULL))`` for the Received: header ``smtp_message_begin()``
        writes: the wall clock of a live server (``hooks.date``), else the simulated
        clock with time 0 at the Unix epoch, UTC (deterministic; the same text length as
        today's dates while a run is under 10 days, so message sizes do not move)."""
        date = self.hooks.date
        return date() if date is not None else fsm.time_to_text(self.now)

    def _a_commit(self, s: _Session, a: Any) -> None:
        """``smtp_tx_commit()``: IMSG_SMTP_MESSAGE_COMMIT (body already in the queue file)."""
        if a.body is not None:
            self.disk.bodies[a.msgid] = a.body  # what smtp wrote through the queue's fd
        if a.delivered_to:
            self.disk.delivered_to[a.msgid] = a.delivered_to
        if not s.bounce:  # a client's message: its session and size, for the per-message table
            self.ledger.message_sent(a.msgid, s.id, a.size)
        self.send("queue", "SMTP_MESSAGE_COMMIT", {"session": s.id, "msgid": a.msgid, "size": a.size})
        if self.filtered:
            self.send("lka", "FILTER_SMTP_DATA_END", {"session": s.id}, length=8)  # smtp_filter_data_end()

    @handles("SMTP_MESSAGE_COMMIT")
    def on_message_commit(self, m: Imsg) -> None:
        """``smtp_session_imsg()`` IMSG_SMTP_MESSAGE_COMMIT: 250 ... accepted, or 421."""
        s = self._session_of(m)
        if s is None:
            return
        if self.filtered and m.payload["ok"]:
            self._report(s, "TX_COMMIT", 32)  # smtp_report_tx_commit()
            self._report(s, "TX_RESET", 24)  # smtp_report_tx_reset()
        s.rcpts = 0
        self._handle(s, fsm.MessageCommitted(m.payload["ok"]))

    def _a_rollback(self, s: _Session, a: Any) -> None:
        """``smtp_tx_rollback()``: IMSG_SMTP_MESSAGE_ROLLBACK (no answer)."""
        self.send("queue", "SMTP_MESSAGE_ROLLBACK", {"session": s.id, "msgid": a.msgid})
        s.rcpts = 0
        if self.filtered:
            self._report(s, "TX_ROLLBACK", 24)
            self._report(s, "TX_RESET", 24)
            self.send("lka", "FILTER_SMTP_DATA_END", {"session": s.id}, length=8)

    # ---- STARTTLS --------------------------------------------------------------------------

    def _a_starttls(self, s: _Session, a: Any) -> None:
        """After the ``220``: the certificate from lka (6.8 ``smtp_cert_init()`` IMSG_CERT_INIT,
        5.7.3 IMSG_SMTP_TLS_INIT, 5.4.2 IMSG_LKA_SSL_INIT in ``smtp_io()`` IO_LOWAT)."""
        kind = "CERT_INIT" if self.behaviour.smtp_variant == "6.8" else "SMTP_TLS_INIT"
        self.send("lka", kind, {"session": s.id, "name": self.hostname}, length=19)
        tls_begin = getattr(s.conn, "tls_begin", None)
        if tls_begin is not None:
            # a real socket: from here on its bytes are the client's handshake, kept unread
            self.proc.emit(lambda _a: tls_begin(), None)

    @handles("CERT_INIT", "SMTP_TLS_INIT")
    def on_cert_init(self, m: Imsg) -> None:
        """``smtp_cert_init_cb()`` / ``smtp_session_imsg()`` IMSG_*_TLS_INIT: ``io_start_tls()``;
        the ClientHello arrives a round trip after our 220 went out."""
        s = self._session_of(m)
        if s is None:
            return
        self.proc.timer(2 * self.world.net_latency_s, self._tls_handshake, s, key="smtp.tls")

    def _tls_handshake(self, s: _Session) -> None:
        """The server side of a full handshake (``ssl.c``: no session cache, no tickets):
        one private-key signature. With klondike it is ``ca.c:rsae_send_imsg()``: an imsg
        sent with ``m_flush()`` and a busy wait for the answer — all of pony stalls."""
        if s.closed or s.fsm is None:
            return
        w = self.world
        self.proc.charge(w.tls_handshake_cpu_s)
        if self.behaviour.key_engine == "ca":
            if w.tls_key_engine_broken:
                # rsae_priv_enc() finds no ex_data and falls back to the default method,
                # which has no key: "missing private key" (real-daemon.md §6)
                self._handle(s, fsm.TlsResult(False))
                return
            kind = "CA_RSA_PRIVENC" if self.behaviour.smtp_variant == "6.8" else "CA_PRIVENC"
            self.proc.call_sync(self._hosts["ca"], "ca", self.name, kind, self._name_of(kind),
                                {"id": s.id, "session": s.id}, 256, kind,
                                lambda _reply: self._tls_finished(s))
        else:
            self.proc.charge(w.tls_private_op_s)  # the key lives in this process (5.4.2)
            self._tls_finished(s)

    def _tls_finished(self, s: _Session) -> None:
        """The client's Finished comes back a round trip later: IO_TLSREADY."""
        def ready(_arg: object) -> None:
            if s.closed or s.fsm is None:
                return
            start_tls = getattr(s.conn, "start_tls", None)
            if start_tls is not None:
                # a real socket: the real handshake runs now and answers with tls_done()
                self.proc.emit(lambda _a: start_tls(), None)
                return
            self._tls_secured(s, fsm.TlsResult(True))
        self.proc.timer(2 * self.world.net_latency_s, ready, None, key="smtp.tls")

    def _tls_done(self, arg: tuple[int, Any]) -> None:
        """The real handshake's outcome (see :meth:`tls_done`): IO_TLSREADY, whose
        ``SSL_get_version()`` / ``SSL_get_cipher_name()`` go into the Received: header, or
        IO_ERROR → ``smtp_free()``."""
        sid, result = arg
        s = self.sessions.get(sid)
        if s is None or s.closed or s.fsm is None:
            return
        if result.ok:
            self._tls_secured(s, result)
        else:
            self._handle(s, result)

    def _tls_secured(self, s: _Session, result: Any) -> None:
        """``smtp_io()`` IO_TLSREADY → ``smtp_cert_verify()``: stat smtp.tls (smtp.smtps on
        an SMTPS listener), the session secured; the socket reads again."""
        self.stat_increment("smtp.smtps" if s.smtps else "smtp.tls")
        self._handle(s, result)
        tls_ready = getattr(s.conn, "tls_ready", None)
        if tls_ready is not None:
            self.proc.emit(lambda _a: tls_ready(), None)

    def _handle(self, s: _Session, event: object) -> None:
        """The session's FSM takes an answer (``smtp_session_imsg()`` and the callbacks);
        ``s`` has one (see :meth:`_session_of`)."""
        assert s.fsm is not None
        self._run(s, s.fsm.handle(event))

    def _session_of(self, m: Imsg) -> _Session | None:
        s = self.sessions.get(m.payload["session"])
        if s is None or s.fsm is None:
            return None
        return s
