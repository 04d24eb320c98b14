"""The SMTP client for relayed mail (``mta.c`` relays/routes/connectors, ``mta_session.c``).

``mta.c`` groups envelopes into tasks (one per message) on relays (one per destination
domain or smarthost), resolves the MX through lka, opens sessions on routes within the
limits of ``limit.c:limit_mta_set_defaults()``; each session's dialogue with the remote
MX is the pure FSM ``model.fsm.mta_session``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from model.fsm import mta_session as mfsm
from model.imsg import Imsg
from model.roles.base import Role, handles

# limit.c:limit_mta_set_defaults()
MAXCONN_PER_ROUTE = 5
MAX_MAIL_PER_SESSION = 100
TASK_HIWAT = 50
TASK_LOWAT = 30
TASK_RELEASE = 10


class _Relay:
    """``struct mta_relay``: a destination (domain via MX, or a smarthost) and its tasks."""

    __slots__ = ("id", "key", "domain", "via", "host", "port", "tls", "tasks", "ntask",
                 "nconn", "sessions", "mxs", "mx_state", "ready")

    def __init__(self, rid: int, key: tuple[str, str, str], relay: dict[str, Any]) -> None:
        self.id = rid
        self.key = key
        self.domain = relay["domain"]
        self.via = relay["via"]
        host, _, port = relay.get("smarthost", "").partition(":")
        self.host = host
        self.port = int(port or 25)
        self.tls = relay.get("tls", "optional")
        self.tasks: deque[_Task] = deque()
        self.ntask = 0
        self.nconn = 0
        self.sessions: set[_Session] = set()
        self.mxs: list[tuple[str, int]] = []
        self.mx_state = "new"  # new -> querying -> ready | error
        self.ready = False


class _Task:
    """``struct mta_task``: the envelopes of one message on one relay."""

    __slots__ = ("msgid", "sender", "envelopes", "size")

    def __init__(self, msgid: int, sender: str) -> None:
        self.msgid = msgid
        self.sender = sender
        self.envelopes: list[dict[str, Any]] = []
        self.size = 0


class _Session:
    """``struct mta_session``: one outbound connection."""

    __slots__ = ("id", "relay", "addr", "fsm", "conn", "task", "timer")

    def __init__(self, sid: int, relay: _Relay, addr: str) -> None:
        self.id = sid
        self.relay = relay
        self.addr = addr
        self.fsm: mfsm.MtaSession | None = None
        self.conn: Any = None
        self.task: _Task | None = None
        self.timer: Any = None


class MtaRole(Role):
    """``mta.c:mta_imsg()`` / ``mta_session.c:mta_session_imsg()``."""

    name = "mta"

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.rng = self.sim.rng("mta-ids")
        self.relays: dict[tuple[str, str, str], _Relay] = {}
        self.hosts: dict[str, str | None] = {}  # address -> PTR name (mta_host ptrname)
        self.sessions: dict[int, _Session] = {}
        self.pending_smarthost: dict[int, dict[str, Any]] = {}
        self.flush_queue: deque[tuple[str, dict[str, Any]]] = deque()
        self._flush_armed = False

    def _uid(self) -> int:
        return self.rng.getrandbits(64)

    # ---- envelopes in ---------------------------------------------------------------------

    @handles("QUEUE_TRANSFER")
    def on_transfer(self, m: Imsg) -> None:
        """IMSG_QUEUE_TRANSFER → ``mta.c:mta_handle_envelope()``."""
        evp = m.payload["envelope"]
        relay = evp["relay"]
        if self.behaviour.smarthost_lookup and relay["via"] == "smarthost":
            # mta_query_smarthost(): IMSG_MTA_LOOKUP_SMARTHOST, then mta_on_smarthost()
            rid = self._uid()
            self.pending_smarthost[rid] = evp
            self.send("lka", "MTA_LOOKUP_SMARTHOST", {"id": rid, "domain": relay["domain"]})
            return
        self._handle_envelope(evp)

    @handles("MTA_LOOKUP_SMARTHOST")
    def on_smarthost(self, m: Imsg) -> None:
        """``mta.c:mta_on_smarthost()``."""
        evp = self.pending_smarthost.pop(m.payload["id"], None)
        if evp is not None:
            self._handle_envelope(evp)

    def _handle_envelope(self, evp: dict[str, Any]) -> None:
        """``mta.c:mta_handle_envelope()``: relay, task per msgid, envelope, ``mta_drain()``."""
        r = evp["relay"]
        key = (r["domain"], r["via"], r.get("smarthost", ""))
        relay = self.relays.get(key)
        if relay is None:
            relay = _Relay(self._uid(), key, r)
            self.relays[key] = relay
            self.stat_increment("mta.domain")  # mta_domain()
            self.stat_increment("mta.relay")  # mta_relay()
        task = next((t for t in relay.tasks if t.msgid == evp["msgid"]), None)
        if task is None:
            task = _Task(evp["msgid"], evp.get("sender", ""))
            relay.tasks.append(task)
            relay.ntask += 1
            self.stat_increment("mta.task")
        task.envelopes.append(evp)
        task.size = max(task.size, evp.get("size", 0))
        self.stat_increment("mta.envelope")
        self._drain(relay)

    # ---- lookups ----------------------------------------------------------------------------

    def _drain(self, relay: _Relay) -> None:
        """``mta.c:mta_drain()``: MX first, then connections while tasks outnumber them."""
        if relay.mx_state == "new":
            relay.mx_state = "querying"
            if relay.via == "smarthost":
                # mta_query_mx() for a relay host: IMSG_MTA_DNS_HOST
                self.send("lka", "MTA_DNS_HOST", {"id": relay.id, "host": relay.host},
                          length=16 + len(relay.host))
            else:
                self.send("lka", "MTA_DNS_MX", {"id": relay.id, "domain": relay.domain},
                          length=14 + len(relay.domain))
            return
        if relay.mx_state != "ready":
            return
        if not relay.ready:
            # mta_query_source(): no source table → mta_source(NULL) at once
            relay.ready = True
            self.stat_increment("mta.source")
            self.stat_increment("mta.connector")  # mta_connector()
        # mta.c:mta_connect(): open while ready sessions < tasks, within the route limit
        while relay.tasks and relay.nconn < min(len(relay.tasks), MAXCONN_PER_ROUTE):
            self._connect(relay)
            if relay.nconn > 2 and relay.nconn >= len(relay.tasks) / 2:
                break

    def _relay_by_id(self, rid: int) -> _Relay | None:
        for r in self.relays.values():
            if r.id == rid:
                return r
        return None

    @handles("MTA_DNS_HOST")
    def on_dns_host(self, m: Imsg) -> None:
        """IMSG_MTA_DNS_HOST: one address of an MX (``mta_host()``, stat mta.host)."""
        relay = self._relay_by_id(m.payload["id"])
        if relay is None:
            return
        addr = m.payload["addr"]
        if addr not in self.hosts:
            self.hosts[addr] = None
            self.stat_increment("mta.host")
        relay.mxs.append((addr, m.payload["preference"]))

    @handles("MTA_DNS_HOST_END")
    def on_dns_host_end(self, m: Imsg) -> None:
        """IMSG_MTA_DNS_HOST_END → ``mta.c:mta_on_mx()`` → ``mta_drain()``."""
        relay = self._relay_by_id(m.payload["id"])
        if relay is None:
            return
        if m.payload["error"] or not relay.mxs:
            relay.mx_state = "error"
            self._flush_relay(relay, "tempfail", "No MX found for domain")
            return
        relay.mxs.sort(key=lambda x: x[1])
        relay.mx_state = "ready"
        self._drain(relay)

    # ---- sessions ---------------------------------------------------------------------------

    def _connect(self, relay: _Relay) -> None:
        """``mta.c:mta_connect()`` → ``mta_find_route()`` (stat mta.route) →
        ``mta_session.c:mta_session()`` (stat mta.session), PTR of the MX first."""
        addr = relay.mxs[0][0]
        s = _Session(self._uid(), relay, addr)
        self.sessions[s.id] = s
        relay.sessions.add(s)
        relay.nconn += 1
        self.stat_increment("mta.route")
        self.stat_increment("mta.session")
        if self.hosts.get(addr) is None:
            if self.behaviour.resolver == "fcrdns":
                self.send("lka", "GETNAMEINFO", {"session": s.id, "addr": addr})
            else:
                self.send("lka", "MTA_DNS_PTR", {"session": s.id, "addr": addr})
        else:
            self._tcp_connect(s)

    @handles("MTA_DNS_PTR", "GETNAMEINFO")
    def on_ptr(self, m: Imsg) -> None:
        """``mta_session.c:mta_on_ptr()`` → ``mta_connect()``."""
        s = self.sessions.get(m.payload["session"])
        if s is None:
            return
        self.hosts[s.addr] = m.payload["name"] or s.addr
        self._tcp_connect(s)

    def _tcp_connect(self, s: _Session) -> None:
        """``mta_session.c:mta_connect()``: the FSM decides how (attempt, port, TLS)."""
        r = s.relay
        tls = {"optional": mfsm.TLS_OPPORTUNISTIC, "plain": mfsm.TLS_PLAIN,
               "required": mfsm.TLS_STARTTLS}[r.tls]
        s.fsm = mfsm.MtaSession(mfsm.MtaSessionConfig(
            helo=self.sim.site.hostname, tls=tls, era=self.behaviour.smtp_variant,
            port=r.port if r.via == "smarthost" else 0))
        self._run(s, s.fsm.start())

    def _remote_line(self, s: _Session, line: str) -> None:
        """``mta_session.c:mta_io()`` IO_DATAIN → ``mta_response()``."""
        if s.fsm is None or s.id not in self.sessions:
            return
        self._run(s, s.fsm.receive(line))

    def _run(self, s: _Session, actions: list[Any]) -> None:
        for a in actions:
            t = type(a)
            if t is mfsm.Send:
                self.proc.emit(lambda line, c=s.conn: c.send(line), a.line)
            elif t is mfsm.SendBody:
                self.proc.emit(lambda size, c=s.conn, ss=s: c.send_body(
                    size, ss.task.msgid if ss.task else 0,
                    [e["id"] for e in ss.task.envelopes] if ss.task else []), a.size)
            elif t is mfsm.NeedTask:
                self._next_task(s)
            elif t is mfsm.Result:
                self._result(s, a)
            elif t is mfsm.Wait:
                s.timer = self.proc.timer(a.seconds, lambda _x, ss=s: self._timer(ss), None, key="mta.timer")
            elif t is mfsm.Close:
                self._free(s)
            elif t is mfsm.Connect:
                self._open(s, a)
            elif t is mfsm.StartTls:
                # outbound TLS (issue 8): not offered by the simulated MX yet -> fail over
                self._run(s, s.fsm.tls_result(False, reason="TLS not supported by the model"))
            elif t is mfsm.Ready:
                pass  # mta_route_ok(): the route works (no route penalties to clear yet)

    def _open(self, s: _Session, a: Any) -> None:
        """``io_connect()``: the remote accepts (or refuses) after a network round trip."""
        proc = self.proc

        def connected(_arg: object) -> None:
            if s.id not in self.sessions:
                return
            conn = self.sim.remote_mx.connect(proc, lambda line: self._remote_line(s, line))
            if conn is None:  # connection refused
                self._run(s, s.fsm.error("Connection refused"))
                return
            s.conn = conn
            self._run(s, s.fsm.connected())

        proc.timer(self.sim.world.remote_latency_s * 2, connected, None, key="mta.io")

    def _timer(self, s: _Session) -> None:
        if s.fsm is not None and s.id in self.sessions:
            self._run(s, s.fsm.timer())

    def _next_task(self, s: _Session) -> None:
        """MTA_READY: take the relay's next task and ask queue for its message fd
        (IMSG_MTA_OPEN_MESSAGE, stat mta.task.running), or report none."""
        relay = s.relay
        if not relay.tasks:
            self._run(s, s.fsm.task(None, nconn=relay.nconn))
            return
        task = relay.tasks.popleft()
        relay.ntask -= 1
        s.task = task
        self.stat_increment("mta.task.running")
        self.send("queue", "MTA_OPEN_MESSAGE", {"session": s.id, "msgid": task.msgid})

    @handles("MTA_OPEN_MESSAGE")
    def on_open_message(self, m: Imsg) -> None:
        """``mta_session.c:mta_session_imsg()`` IMSG_MTA_OPEN_MESSAGE [fd]: start MAIL FROM."""
        s = self.sessions.get(m.payload["session"])
        if s is None or s.task is None:
            return
        t = s.task
        task = mfsm.MtaTask(msgid=t.msgid, sender=t.sender,
                            envelopes=[(e["id"], e["dest"]) for e in t.envelopes], size=t.size)
        self._run(s, s.fsm.task(task, nconn=s.relay.nconn, fd_ok=m.payload["ok"]))

    def _result(self, s: _Session, a: Any) -> None:
        """``mta_session.c:mta_flush_task()`` per envelope: log and ``mta_delivery_notify()``."""
        t = s.task
        if t is None:
            return
        evp = next((e for e in t.envelopes if e["id"] == a.evpid), None)
        if evp is None:
            return
        t.envelopes.remove(evp)
        self.stat_decrement("mta.envelope")
        self._notify(a.status, evp, a.text)
        if not t.envelopes:
            self._task_done(s)

    def _task_done(self, s: _Session) -> None:
        s.task = None
        self.stat_decrement("mta.task.running")
        self.stat_decrement("mta.task")

    def _notify(self, status: str, evp: dict[str, Any], text: str) -> None:
        """``mta.c:mta_delivery_notify()``: results leave one per event-loop iteration
        (``mta_delivery_flush_event()`` on an evtimer)."""
        self.flush_queue.append((status, {"evpid": evp["id"], "reason": text}))
        if not self._flush_armed:
            self._flush_armed = True
            self.proc.timer(0.0, self._flush_event, None, key="mta.flush")

    def _flush_event(self, _arg: object) -> None:
        """``mta.c:mta_delivery_flush_event()``: one IMSG_MTA_DELIVERY_* per call."""
        status, payload = self.flush_queue.popleft()
        kind = {"ok": "MTA_DELIVERY_OK", "tempfail": "MTA_DELIVERY_TEMPFAIL",
                "permfail": "MTA_DELIVERY_PERMFAIL", "loop": "MTA_DELIVERY_LOOP"}[status]
        length = None if status == "ok" else 13 + len(payload["reason"])
        self.send("queue", kind, payload, length=length)
        if self.flush_queue:
            self.proc.timer(0.0, self._flush_event, None, key="mta.flush")
        else:
            self._flush_armed = False

    def _flush_relay(self, relay: _Relay, status: str, text: str) -> None:
        """``mta.c:mta_flush()``: fail every task of a relay."""
        while relay.tasks:
            t = relay.tasks.popleft()
            for evp in t.envelopes:
                self.stat_decrement("mta.envelope")
                self._notify(status, evp, text)
            self.stat_decrement("mta.task")
        relay.ntask = 0
        self._maybe_collect(relay)

    def _free(self, s: _Session) -> None:
        """``mta_session.c:mta_free()`` → ``mta_route_collect()`` and the unrefs."""
        if self.sessions.pop(s.id, None) is None:
            return
        relay = s.relay
        relay.sessions.discard(s)
        relay.nconn -= 1
        self.stat_decrement("mta.session")
        self.stat_decrement("mta.route")
        if relay.tasks:
            self._drain(relay)
        self._maybe_collect(relay)

    def _maybe_collect(self, relay: _Relay) -> None:
        """The relay, its connector/source, hosts and domain go with the last reference."""
        if relay.sessions or relay.tasks:
            return
        del self.relays[relay.key]
        if relay.ready:
            self.stat_decrement("mta.source")
            self.stat_decrement("mta.connector")
        for addr, _pref in relay.mxs:
            if addr in self.hosts:
                del self.hosts[addr]
                self.stat_decrement("mta.host")
        self.stat_decrement("mta.domain")
        self.stat_decrement("mta.relay")
