"""The mta role's ``mta_session.c`` side: outbound SMTP sessions, their I/O and imsgs.

``mta.c:mta_connect()`` opens a session on a route (``mta_session()``). The session asks
for the MX's PTR (one query per host, shared), connects, and speaks SMTP through the pure
FSM :mod:`smtpd_sim.fsm.mta_session`, whose actions are carried out here: lines to the
remote MX, IMSG_MTA_OPEN_MESSAGE for a task's fd, the TLS certificate imsgs, the hangon
runq, the per-envelope results (``mta_flush_task()``) and ``mta_free()``.

:class:`SessionEngine` is owned by :class:`~smtpd_sim.roles.mta.MtaRole`, whose imsg
handlers hand it the session imsgs; it calls back into ``mta.c`` for what ``smtpd.h``
declares between the two files (``mta_route_ok()``, ``mta_route_collect()``,
``mta_route_next_task()``, ``mta_delivery_log()``/``_notify()``, ``mta_hoststat_*()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smtpd_sim.fsm import mta_session as mfsm
from smtpd_sim.kernel.message import Imsg
from smtpd_sim.roles.runq import RunQ

if TYPE_CHECKING:
    from smtpd_sim.fsm.envelope import Envelope
    from smtpd_sim.roles.mta import MtaRole, Relay, Route, Task

_TLS = {"optional": mfsm.TLS_OPPORTUNISTIC, "plain": mfsm.TLS_PLAIN, "required": mfsm.TLS_STARTTLS}


def dest_domain(evp: Envelope | str) -> str | None:
    """``strchr(e->dest, '@') + 1`` of an envelope, or of its ``dest`` itself."""
    dest = evp if isinstance(evp, str) else evp.dest
    at = dest.find("@")
    return dest[at + 1:] if at >= 0 else None


class Session:
    """``struct mta_session`` as far as ``mta.c`` and the I/O need it (the FSM holds the
    dialogue)."""

    __slots__ = ("id", "relay", "route", "mxname", "fsm", "conn", "io", "task", "ready",
                 "hangon", "rcpt_reply", "waiting_fd")

    def __init__(self, sid: int, relay: Relay, route: Route, mxname: str) -> None:
        self.id = sid
        self.relay = relay
        self.route = route
        self.mxname = mxname
        self.fsm: mfsm.MtaSession | None = None
        self.conn: Any = None
        self.io = 0  # which connection attempt the replies belong to
        self.task: Task | None = None
        self.ready = False
        self.hangon = False  # MTA_HANGON: on the hangon runq
        self.rcpt_reply = False  # the line being handled answers a RCPT
        self.waiting_fd = False  # MTA_WAIT for IMSG_MTA_OPEN_MESSAGE


class SessionEngine:
    """The ``mta_session.c`` globals of the mta role: the live sessions, those waiting for
    their message fd (``wait_fd``) and the ``hangon`` runq."""

    def __init__(self, mta: MtaRole) -> None:
        """``mta_session.c:mta_session_init()``: the wait tree of fds, the hangon runq."""
        self.mta = mta
        self.sessions: dict[int, Session] = {}
        self.wait_fd: dict[int, Session] = {}
        self.hangon = RunQ(mta, self._on_hangon, "mta.timer")

    def session(self, relay: Relay, route: Route, mxname: str) -> None:
        """``mta_session.c:mta_session()``: stat mta.session; the MX's PTR first (one query
        per host, shared: IMSG_MTA_DNS_PTR, 6.8 IMSG_GETNAMEINFO), else ``mta_start()`` on
        an evtimer 0 "to always notify the relay asynchronously"."""
        s = Session(self.mta.uid(), relay, route, mxname)
        self.sessions[s.id] = s
        self.mta.stat_increment("mta.session")
        h = route.dst
        if h.ptrname is not None or h.lastptrquery:
            self.mta.proc.timer(0.0, self._start, s, key="mta.start")
            return
        first = not h.ptr_waiters  # waitq_wait(&route->dst->ptrname, ...)
        h.ptr_waiters.append(s)
        if first:
            if self.mta.behaviour.resolver == "fcrdns":
                self.mta.send("lka", "GETNAMEINFO", {"session": s.id, "addr": h.addr})
            else:
                self.mta.send("lka", "MTA_DNS_PTR", {"session": s.id, "addr": h.addr})

    def on_ptr(self, m: Imsg) -> None:
        """``mta_session.c:mta_session_imsg()`` IMSG_MTA_DNS_PTR / 6.8
        ``mta_getnameinfo_cb()``: the host's name, then ``waitq_run()`` →
        ``mta_on_ptr()`` → ``mta_connect()`` for each waiting session."""
        s = self.sessions.get(m.payload["session"])
        h = s.route.dst if s is not None else self.mta.hosts.get(m.payload["addr"])
        if h is None:
            return
        h.lastptrquery = self.mta.time()
        if m.payload["name"]:
            h.ptrname = m.payload["name"]
        waiters, h.ptr_waiters = h.ptr_waiters, []
        for w in waiters:
            self._connect(w)

    def _start(self, s: Session) -> None:
        """``mta_session.c:mta_start()``."""
        if s.id in self.sessions:
            self._connect(s)

    def _connect(self, s: Session) -> None:
        """``mta_session.c:mta_connect()``: helo = the hostname; the FSM decides how to
        connect (attempt, port, TLS) and the relay's limits bound the session."""
        r = s.relay
        lim = r.limits
        assert lim is not None
        s.fsm = mfsm.MtaSession(mfsm.MtaSessionConfig(
            helo=self.mta.hostname, tls=_TLS[r.tls], era=self.mta.era, port=r.port,
            max_mail_per_session=lim.max_mail_per_session,
            max_failures_per_session=lim.max_failures_per_session,
            sessdelay_transaction=lim.sessdelay_transaction,
            sessdelay_keepalive=lim.sessdelay_keepalive))
        self._run(s, s.fsm.start())

    def _open(self, s: Session) -> None:
        """``io_connect()`` to the route's host: the remote accepts (or refuses) after a
        network round trip; replies of an earlier attempt are ignored."""
        if s.conn is not None:
            s.conn.close()
            s.conn = None
        s.io += 1
        token = s.io
        addr = s.route.dst.addr
        port = s.relay.port or 25  # mta_connect(): the relay's port, else 25 (smtp)
        proc = self.mta.proc

        def connected(_arg: object) -> None:
            if s.id not in self.sessions or s.io != token or s.fsm is None:
                return
            conn = self.mta.remote_mx.connect(
                proc, lambda line: self._io_datain(s, token, line), addr=addr, port=port)
            if conn is None:
                self._run(s, s.fsm.error("Connection refused"))  # IO_ERROR ECONNREFUSED
                return
            s.conn = conn
            self._run(s, s.fsm.connected())

        proc.timer(self.mta.world.remote_latency_s * 2, connected, None, key="mta.io")

    def _io_datain(self, s: Session, token: int, line: str) -> None:
        """``mta_session.c:mta_io()`` IO_DATAIN → ``mta_response()``; for a RCPT reply,
        the hoststat bookkeeping of ``mta_response()`` MTA_RCPT."""
        fsm = s.fsm
        if fsm is None or s.id not in self.sessions or token != s.io:
            return
        rcpt = False
        if (fsm.state == mfsm.MTA_RCPT and fsm.expect and fsm.cur < len(fsm.envs)
                and not (len(line) > 3 and line[3] == "-")):
            e = fsm.envs[fsm.cur]
            domain = dest_domain(e[1])
            if domain is not None:
                self.mta.hoststat_uncache(domain, e[0])
                if line[:1] == "2":
                    self.mta.hoststat_reschedule(domain)
            rcpt = line[:1] != "2"
        s.rcpt_reply = rcpt
        self._run(s, fsm.receive(line))
        s.rcpt_reply = False

    def _run(self, s: Session, actions: list[Any]) -> None:
        """Carry out the FSM's actions in order."""
        i, n = 0, len(actions)
        while i < n:
            a = actions[i]
            t = type(a)
            if t is mfsm.Result:
                j = i + 1
                while j < n and type(actions[j]) is mfsm.Result:
                    j += 1
                self._results(s, actions[i:j])
                i = j
                continue
            i += 1
            if t is mfsm.Send:
                conn = s.conn
                if conn is not None:
                    self.mta.proc.emit(conn.send, a.line)
            elif t is mfsm.SendBody:
                conn, task = s.conn, s.task
                if conn is not None:
                    msgid = task.msgid if task else 0
                    evpids = [e.id for e in task.envelopes] if task else []
                    def send_body(size: int, c: Any = conn, m: int = msgid,
                                  ev: list[int] = evpids) -> None:
                        c.send_body(size, m, ev)

                    self.mta.proc.emit(send_body, a.size)
            elif t is mfsm.NeedTask:
                self._next_task(s)
            elif t is mfsm.Ready:
                # mta_enter_state(MTA_READY) the first time: nconn_ready++, mta_route_ok()
                s.ready = True
                s.relay.nconn_ready += 1
                self.mta.route_ok(s.relay, s.route)
            elif t is mfsm.Wait:
                s.hangon = True  # MTA_HANGON: runq_schedule(hangon, delay, s)
                self.hangon.schedule(max(1, int(a.seconds)), s)
            elif t is mfsm.Close:
                self._free(s)
            elif t is mfsm.Connect:
                self._open(s)
            elif t is mfsm.StartTls:
                self._start_tls(s)

    # ---- outbound TLS --------------------------------------------------------------------

    def _start_tls(self, s: Session) -> None:
        """``mta_session.c:mta_start_tls()`` (5.4.2 IMSG_LKA_SSL_INIT, 5.7.3
        IMSG_MTA_TLS_INIT) / 6.8 ``mta_cert_init()`` (IMSG_CERT_INIT): ask the lka for the
        relay's client certificate, named by the relay pki or the helo name; none is
        configured, so the answer is a failure and the handshake goes on without one —
        no ca traffic (era-pony.md §3.4, era-5.4.2-mfa.md §3 outbound variants)."""
        kind = "CERT_INIT" if self.mta.era == "6.8" else "MTA_TLS_INIT"
        self.mta.send("lka", kind, {"session": s.id, "io": s.io,
                                    "name": self.mta.hostname, "client": True})

    def on_tls_init(self, m: Imsg) -> None:
        """5.4.2/5.7.3 ``mta_session_imsg()`` IMSG_*_TLS_INIT (``ssl_mta_init()``,
        ``io_start_tls()``) / 6.8 ``mta_cert_init_cb()``: the client handshake — a
        round trip to the MX for the server's flight, the client's key exchange on our
        CPU, then the server certificate goes to the lka for verification."""
        s = self.sessions.get(m.payload["session"])
        if s is None or s.fsm is None or s.io != m.payload["io"]:
            return
        rtt = 2 * self.mta.world.remote_latency_s
        self.mta.proc.timer(rtt, self._tls_handshake, s, key="mta.tls")

    def _tls_handshake(self, s: Session) -> None:
        """``mta_session.c:mta_io()`` IO_TLSREADY → ``mta_verify_certificate()`` (6.8
        ``cert_verify()``): the peer's chain to the lka, one imsg per certificate. On a
        client ``SSL_get_peer_cert_chain()`` includes the leaf, so with c certificates
        sent by the MX: 5.4.2 and 5.7.3 VERIFY_CERT (the leaf) + VERIFY_CHAIN × c
        (``sk_X509_num(xchain)``); 6.8 CERT_CERTIFICATE × (c+1) (``cert_count = 1`` plus
        ``sk_X509_num(xchain)``) — then VERIFY (6.8 CERT_VERIFY) and wait for the answer.
        +5+c hops in all three releases (era-pony.md said +4+c for 5.7.3/6.8: the C wins)."""
        if s.fsm is None or s.id not in self.sessions:
            return
        self.mta.proc.charge(self.mta.world.tls_handshake_cpu_s)
        c = s.conn.offers.cert_chain if s.conn is not None else self.mta.remote_mx.cert_chain
        ref = {"session": s.id, "io": s.io}
        if self.mta.era == "6.8":
            for _ in range(1 + c):  # cert.c:cert_verify(): cert_count = 1 + sk_X509_num(xchain)
                self.mta.send("lka", "CERT_CERTIFICATE", ref)
            self.mta.send("lka", "CERT_VERIFY", ref)
            return
        self.mta.send("lka", "MTA_TLS_VERIFY_CERT", ref)
        for _ in range(c):  # one per sk_X509_value(xchain, i), i < sk_X509_num(xchain)
            self.mta.send("lka", "MTA_TLS_VERIFY_CHAIN", ref)
        self.mta.send("lka", "MTA_TLS_VERIFY", ref)

    def on_tls_verify(self, m: Imsg) -> None:
        """``mta_session_imsg()`` IMSG_MTA_TLS_VERIFY / 6.8 ``mta_cert_verify_cb()``: the
        result; the session goes on with EHLO over TLS (MTA_EHLO)."""
        s = self.sessions.get(m.payload["session"])
        if s is None or s.fsm is None or s.io != m.payload["io"]:
            return
        self._run(s, s.fsm.tls_result(True, verified=bool(m.payload.get("valid", True))))

    def _on_hangon(self, _runq: RunQ, s: Session) -> None:
        """``mta_session.c:mta_on_timeout()``: hangon++, MTA_READY again."""
        s.hangon = False
        if s.fsm is not None and s.id in self.sessions:
            self._run(s, s.fsm.timer())

    def _next_task(self, s: Session) -> None:
        """``mta_enter_state()`` MTA_READY: ``mta_route_next_task()``; a task → stat
        mta.task.running and IMSG_MTA_OPEN_MESSAGE (5.4.2 IMSG_QUEUE_MESSAGE_FD) for its
        fd; none → the FSM hangs on or quits."""
        assert s.fsm is not None
        task = self.mta.route_next_task(s.relay, s.route)
        if task is None:
            self._run(s, s.fsm.task(None, nconn=s.relay.nconn))
            return
        s.task = task
        self.mta.stat_increment("mta.task.running")
        s.waiting_fd = True
        self.wait_fd[s.id] = s
        self.mta.send("queue", "MTA_OPEN_MESSAGE", {"session": s.id, "msgid": task.msgid})

    def on_open_message(self, m: Imsg) -> None:
        """``mta_session.c:mta_session_imsg()`` IMSG_MTA_OPEN_MESSAGE [fd]: MAIL FROM (or
        the fd/size/loop failures the FSM reports); a freed session is a zombie."""
        s = self.wait_fd.pop(m.payload["session"], None)
        if s is None:
            return
        s.waiting_fd = False
        if s.id not in self.sessions or s.task is None or s.fsm is None:
            return
        t = s.task
        t.size = m.payload.get("size", t.size)  # fstat() of the message fd
        task = mfsm.MtaTask(msgid=t.msgid, sender=t.sender,
                            envelopes=[(e.id, e.dest, e.dsn_notify, e.dsn_orcpt) for e in t.envelopes],
                            size=t.size, dsn_ret=t.envelopes[0].dsn_ret if t.envelopes else 0,
                            dsn_envid=t.envelopes[0].dsn_envid if t.envelopes else "")
        self._run(s, s.fsm.task(task, nconn=s.relay.nconn, fd_ok=m.payload["ok"]))

    def _results(self, s: Session, results: list[Any]) -> None:
        """The FSM's per-envelope outcomes: a failed RCPT is reported alone
        (``mta_response()`` MTA_RCPT); the rest is ``mta_flush_task()``: log, notify,
        hoststat, then stat mta.envelope −n and, once the task is empty,
        mta.task.running and mta.task."""
        t = s.task
        if t is None:
            return
        if s.rcpt_reply and results:
            s.rcpt_reply = False
            r0 = results[0]
            results = results[1:]
            evp = self._take(t, r0.evpid)
            if evp is not None:
                self.mta.stat_decrement("mta.envelope")
                domain = dest_domain(evp)
                self.mta.delivery(r0.status, evp, r0.text, dsn=r0.dsn)
                if domain is not None:
                    self.mta.hoststat_update(domain, r0.text)
            if not t.envelopes and not results:
                # mta_flush_task(s, IMSG_MTA_DELIVERY_OK, "No envelope", 0, 0): its loop finds
                # no envelope and stat_decrement("mta.envelope", 0) runs (5.4.2 sends it: real
                # relay-permfail-bounce trace, tests/data/real-traces-5.4.2)
                self.mta.stat_decrement("mta.envelope", 0, zero=True)
                self._task_done(s)
                return
        if not results:
            return
        cache = results[0].text == "Too many consecutive errors, closing connection"
        n = 0
        for r in results:
            evp = self._take(t, r.evpid)
            if evp is None:
                continue
            self.mta.delivery(r.status, evp, r.text, dsn=r.dsn)
            domain = dest_domain(evp)
            if domain is not None:
                self.mta.hoststat_update(domain, r.text)
                if cache:
                    self.mta.hoststat_cache(domain, evp.id)
            n += 1
        self.mta.stat_decrement("mta.envelope", n)
        if not t.envelopes:
            self._task_done(s)

    @staticmethod
    def _take(t: Task, evpid: int) -> Envelope | None:
        """The envelope ``evpid`` out of the task (``TAILQ_REMOVE(&task->envelopes, e)``)."""
        for i, e in enumerate(t.envelopes):
            if e.id == evpid:
                return t.envelopes.pop(i)
        return None

    def _task_done(self, s: Session) -> None:
        """The end of ``mta_flush_task()``: the task is freed."""
        s.task = None
        self.mta.stat_decrement("mta.task.running")
        self.mta.stat_decrement("mta.task")

    def _free(self, s: Session) -> None:
        """``mta_session.c:mta_free()``: a task still held (its fd was being fetched when
        the connection failed) is tempfailed with the error, as ``mta_error()`` does;
        then stat mta.session and ``mta_route_collect()``."""
        if self.sessions.pop(s.id, None) is None:
            return
        relay = s.relay
        if s.task is not None and s.task.envelopes:
            fsm = s.fsm
            text = (fsm.orphan_text or fsm.close_reason) if fsm is not None else ""
            self._results(s, [mfsm.Result(e.id, mfsm.TEMPFAIL, text or "session closed")
                              for e in s.task.envelopes])
        if s.ready:
            relay.nconn_ready -= 1
        if s.hangon:
            s.hangon = False
            self.hangon.cancel(s)
        if s.conn is not None:
            s.conn.close()
            s.conn = None
        self.mta.stat_decrement("mta.session")
        self.mta.route_collect(relay, s.route)
