"""The SMTP client for relayed mail: ``mta.c`` around ``mta_session.c`` sessions.

``mta.c`` keeps a graph of reference-counted objects (``smtpd.h``), mirrored here (those
the session side uses too, ``Relay``, ``Task`` and ``Route``, without a leading underscore):

* ``Relay`` (``struct mta_relay``): one destination — a domain reached through its MXs,
  or a relay host (``relay host``/smarthost) — holding **tasks**; keyed like
  ``mta_relay_cmp()`` (domain, port, TLS mode).
* ``Task`` (``struct mta_task``): the envelopes of one message for one relay.
* ``_Domain`` (``struct mta_domain``): a name and its MX list (``mxs``, sorted by
  preference), shared by the relays to that name; ``_Host`` (``struct mta_host``): one
  address of an MX; ``_Source`` (``struct mta_source``): the NULL source (no ``source``
  table, so the kernel picks the local address).
* ``_Connector`` (``struct mta_connector``): relay × source; ``Route``
  (``struct mta_route``): source × host. Routes carry the connection limits and the
  penalties (a route whose first connection fails is disabled for a while).

``mta_drain()`` issues the lookups a relay lacks (MX through lka, limits in-process,
source in-process), then ``mta_connect()`` opens sessions on routes chosen by
``mta_find_route()`` within ``limit.c:limit_mta_set_defaults()``; each session's dialogue
with the remote MX is the pure FSM ``smtpd_sim.fsm.mta_session``, driven by the
``mta_session.c`` side of the role (:mod:`smtpd_sim.roles.mta_session`, owned by
:class:`MtaRole`, which keeps the imsg handlers). The limits are ``limit.c``'s
(:mod:`smtpd_sim.roles.limit`). The objects live and die by the C reference counts, which
is where the ``mta.*`` stat imsgs come from.

Time: ``mta.c`` reasons in whole seconds (``time(NULL)``) and runs its delays on
``runq.c`` queues (one evtimer per queue, jobs sorted by absolute second): ``RunQ`` in
:mod:`smtpd_sim.roles.runq`; :meth:`MtaRole.time` is ``time(NULL)``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from smtpd_sim.fsm import mta_session as mfsm
from smtpd_sim.fsm.envelope import Envelope
from smtpd_sim.fsm.mta_session import MTA_EXT_DSN
from smtpd_sim.kernel.message import Imsg
from smtpd_sim.roles.base import Role, handles
from smtpd_sim.roles.limit import LIMITS, MtaLimits
from smtpd_sim.roles.mta_session import Session, SessionEngine, dest_domain
from smtpd_sim.roles.runq import RunQ

if TYPE_CHECKING:
    from smtpd_sim.kernel.process import Process
    from smtpd_sim.roles.ports import Ports


# mta.c #defines (identical in 5.4.2, 5.7.3 and 6.8 unless a dict says otherwise)
DELAY_CHECK_SOURCE = 1
DELAY_CHECK_SOURCE_SLOW = 10
DELAY_CHECK_SOURCE_FAST = 0
DELAY_CHECK_LIMIT = 5
# route penalties: delay = DELAY_ROUTE_BASE * penalty², at most DELAY_ROUTE_MAX
# (5.4.2: 200 s and 4 h; 5.7.3/6.8: 15 s and 1 h)
DELAY_ROUTE_BASE = {"5.4.2": 200, "5.7.3": 15, "6.8": 15}
DELAY_ROUTE_MAX = {"5.4.2": 4 * 3600, "5.7.3": 3600, "6.8": 3600}
# mta_route_collect(): a new route whose first connection failed is disabled with
# penalty 2 (5.4.2) or 1 (5.7.3, 6.8): 800 s or 15 s (real-daemon.md §7: "for 15s")
NEW_ROUTE_PENALTY = {"5.4.2": 2, "5.7.3": 1, "6.8": 1}
HOSTSTAT_EXPIRE_DELAY = 4 * 3600  # mta.c
MTA_MAX_DEFERRED = 100  # config.c / parse.y: sc_mta_max_deferred default

# smtpd.h flags
HOST_IGNORE = 0x01
CONNECTOR_ERROR_FAMILY = 0x0001
CONNECTOR_ERROR_SOURCE = 0x0002
CONNECTOR_ERROR_MX = 0x0004
CONNECTOR_ERROR_ROUTE_NET = 0x0008
CONNECTOR_ERROR_ROUTE_SMTP = 0x0010
CONNECTOR_ERROR_ROUTE = 0x0018
CONNECTOR_ERROR_BLOCKED = 0x0020
CONNECTOR_ERROR = 0x00FF
CONNECTOR_LIMIT_HOST = 0x0100
CONNECTOR_LIMIT_ROUTE = 0x0200
CONNECTOR_LIMIT_SOURCE = 0x0400
CONNECTOR_LIMIT_RELAY = 0x0800
CONNECTOR_LIMIT_CONN = 0x1000
CONNECTOR_LIMIT_DOMAIN = 0x2000
CONNECTOR_NEW = 0x10000
CONNECTOR_WAIT = 0x20000
ROUTE_NEW = 0x01
ROUTE_RUNQ = 0x02
ROUTE_KEEPALIVE = 0x04
ROUTE_DISABLED = 0xF0
ROUTE_DISABLED_NET = 0x10
ROUTE_DISABLED_SMTP = 0x20
RELAY_WAIT_MX = 0x01
RELAY_WAIT_PREFERENCE = 0x02
RELAY_WAIT_SECRET = 0x04
RELAY_WAIT_LIMITS = 0x08
RELAY_WAIT_SOURCE = 0x10
RELAY_WAIT_CONNECTOR = 0x20
RELAY_WAITMASK = 0x7F
RELAY_ONHOLD = 0x01  # mta.c
RELAY_HOLDQ = 0x02
# dns.h
DNS_OK = 0
DNS_RETRY = 1
DNS_EINVAL = 2
DNS_ENONAME = 3
DNS_ENOTFOUND = 4

TEMPFAIL = mfsm.TEMPFAIL
PERMFAIL = mfsm.PERMFAIL

# time(NULL) is seconds since 1970: never 0, which mta.c uses as "never" (lastconn,
# lastmxquery...). The simulated clock starts at 0, so whole seconds are counted from here.
_EPOCH = 1_600_000_000

_DELIVERY_KIND = {"ok": "MTA_DELIVERY_OK", "tempfail": "MTA_DELIVERY_TEMPFAIL",
                  "permfail": "MTA_DELIVERY_PERMFAIL", "loop": "MTA_DELIVERY_LOOP"}


class _Host:
    """``struct mta_host``: one MX address."""

    __slots__ = ("addr", "ptrname", "lastptrquery", "ptr_waiters", "flags", "nconn", "lastconn",
                 "refcount")

    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.ptrname: str | None = None
        self.lastptrquery = 0
        self.ptr_waiters: list[Session] = []  # waitq on &h->ptrname
        self.flags = 0
        self.nconn = 0
        self.lastconn = 0
        self.refcount = 0


class _Mx:
    """``struct mta_mx``: one MX of a domain (a host and its preference)."""

    __slots__ = ("host", "mxname", "preference")

    def __init__(self, host: _Host, mxname: str, preference: int) -> None:
        self.host = host
        self.mxname = mxname
        self.preference = preference


class _Domain:
    """``struct mta_domain``: a domain (or, ``as_host``, a relay host name) and its MXs."""

    __slots__ = ("name", "as_host", "mxs", "mxstatus", "lastmxquery", "mx_waiters", "nconn",
                 "lastconn", "refcount")

    def __init__(self, name: str, as_host: bool) -> None:
        self.name = name
        self.as_host = as_host
        self.mxs: list[_Mx] = []
        self.mxstatus = DNS_OK
        self.lastmxquery = 0
        self.mx_waiters: list[Relay] = []  # waitq on &domain->mxs
        self.nconn = 0
        self.lastconn = 0
        self.refcount = 0


class _Source:
    """``struct mta_source``: the local address to connect from (NULL: any)."""

    __slots__ = ("sa", "nconn", "lastconn", "refcount")

    def __init__(self, sa: str | None) -> None:
        self.sa = sa
        self.nconn = 0
        self.lastconn = 0
        self.refcount = 0


class Route:
    """``struct mta_route``: source × host, with its connection counts and penalty."""

    __slots__ = ("id", "src", "dst", "flags", "nconn", "lastconn", "lastdisc", "nerror",
                 "penalty", "lastpenalty", "refcount")

    def __init__(self, rid: int, src: _Source, dst: _Host) -> None:
        self.id = rid
        self.src = src
        self.dst = dst
        self.flags = ROUTE_NEW
        self.nconn = 0
        self.lastconn = 0
        self.lastdisc = 0
        self.nerror = 0
        self.penalty = 0
        self.lastpenalty = 0
        self.refcount = 0


class _Connector:
    """``struct mta_connector``: relay × source."""

    __slots__ = ("relay", "source", "flags", "nconn", "lastconn")

    def __init__(self, relay: Relay, source: _Source) -> None:
        self.relay = relay
        self.source = source
        self.flags = CONNECTOR_NEW
        self.nconn = 0
        self.lastconn = 0


class Relay:
    """``struct mta_relay``: a destination and the tasks waiting for it."""

    __slots__ = ("id", "key", "domain", "port", "tls", "tasks", "ntask", "nconn", "nconn_ready",
                 "lastconn", "connectors", "status", "state", "fail", "failstr", "sourceloop",
                 "lastsource", "nextsource", "limits", "refcount")

    def __init__(self, rid: int, key: tuple[Any, ...], domain: _Domain, port: int, tls: str) -> None:
        self.id = rid
        self.key = key
        self.domain = domain
        self.port = port
        self.tls = tls
        self.tasks: deque[Task] = deque()
        self.ntask = 0
        self.nconn = 0
        self.nconn_ready = 0
        self.lastconn = 0
        self.connectors: dict[_Source, _Connector] = {}
        self.status = 0
        self.state = 0
        self.fail: str | None = None
        self.failstr = ""
        self.sourceloop = 0
        self.lastsource = 0
        self.nextsource = 0
        self.limits: MtaLimits | None = None
        self.refcount = 0


class Task:
    """``struct mta_task``: the envelopes of one message on one relay."""

    __slots__ = ("msgid", "sender", "envelopes", "size")

    def __init__(self, msgid: int, sender: str) -> None:
        self.msgid = msgid
        self.sender = sender
        self.envelopes: list[Envelope] = []
        self.size = 0  # fstat() of the message fd (IMSG_MTA_OPEN_MESSAGE)


class _HostStat:
    """``struct hoststat``: the last result for a domain and the envelopes deferred on it."""

    __slots__ = ("name", "error", "tm", "deferred")

    def __init__(self, name: str) -> None:
        self.name = name
        self.error = ""
        self.tm = 0
        self.deferred: dict[int, None] = {}


class MtaRole(Role):
    """``mta.c:mta_imsg()`` / ``mta_session.c:mta_session_imsg()`` (the session side is
    :class:`~smtpd_sim.roles.mta_session.SessionEngine`, owned here)."""

    name = "mta"

    def __init__(self, proc: Process, ports: Ports) -> None:
        super().__init__(proc, ports)
        self.rng = ports.rng("mta-ids")
        self.recorder = ports.recorder
        self.hostname = ports.site.hostname  # the HELO name (smtpd.conf hostname)
        self.remote_mx = ports.remote_mx
        self.world = ports.world
        self.era = self.behaviour.smtp_variant
        self.default_limits = LIMITS[self.era]  # sc_limits_dict "default"
        self.relays: dict[tuple[Any, ...], Relay] = {}
        self.domains: dict[tuple[str, bool], _Domain] = {}
        self.hosts: dict[str, _Host] = {}
        self.sources: dict[str | None, _Source] = {}
        self.routes: dict[tuple[_Source, _Host], Route] = {}
        self.wait_mx: dict[int, _Domain] = {}
        self.wait_smarthost: dict[int, Envelope] = {}
        self.hoststat: dict[str, _HostStat] = {}
        self.flush_evp: deque[tuple[str, dict[str, Any]]] = deque()
        self._flush_armed = False
        self.max_seen_conndelay_route = 0
        self.max_seen_discdelay_route = 0
        self._route_ids = 0
        self.runq_relay = RunQ(self, self._on_timeout, "mta.runq")
        self.runq_connector = RunQ(self, self._on_timeout, "mta.runq")
        self.runq_route = RunQ(self, self._on_timeout, "mta.runq")
        self.runq_hoststat = RunQ(self, self._on_timeout, "mta.runq")
        self.session_engine = SessionEngine(self)  # mta_session.c
        # what mta.c logs with log_info(), for reports and tests
        self.holds = 0  # envelopes sent back with IMSG_MTA_DELIVERY_HOLD
        self.releases: list[tuple[float, int]] = []  # IMSG_MTA_HOLDQ_RELEASE (time, n)

    def counters(self) -> dict[str, float]:
        """Outbound sessions and relays alive now, envelopes held back at the limits."""
        return {"sessions": len(self.sessions), "relays": len(self.relays), "holds": self.holds}

    def idle(self) -> bool:
        """No outbound session open and no relay alive (nothing left to deliver)."""
        return not self.sessions and not self.relays

    @property
    def sessions(self) -> dict[int, Session]:
        """The live sessions (``mta_session.c``): none left is part of ``Simulation.quiet()``."""
        return self.session_engine.sessions

    def uid(self) -> int:
        """``util.c:generate_uid()``."""
        return self.rng.getrandbits(64)

    def time(self) -> int:
        """``time(NULL)`` inside the running handler."""
        return _EPOCH + int(self.now)

    def _log(self, event: str, detail: Any, session: int = 0) -> None:
        """``log_info("smtp-out: ...")`` and the delivery log, as recorder events."""
        self.recorder.event(self.now, event, self.proc.name, session, detail,
                                       self.proc.cause)

    # ---- envelopes in ---------------------------------------------------------------------

    @handles("QUEUE_TRANSFER")
    def on_transfer(self, m: Imsg) -> None:
        """IMSG_QUEUE_TRANSFER (5.4.2 IMSG_MTA_TRANSFER) → ``mta.c:mta_imsg()`` →
        ``mta_handle_envelope()``."""
        evp: Envelope = m.payload["envelope"]
        self._handle_envelope(evp, None)

    def _query_smarthost(self, evp: Envelope) -> None:
        """``mta.c:mta_query_smarthost()`` (6.8): IMSG_MTA_LOOKUP_SMARTHOST to lka."""
        self.wait_smarthost[evp.id] = evp
        self.send("lka", "MTA_LOOKUP_SMARTHOST", {"id": evp.id, "domain": evp.dest.rpartition("@")[2]})

    @handles("MTA_LOOKUP_SMARTHOST")
    def on_smarthost(self, m: Imsg) -> None:
        """``mta.c:mta_imsg()`` IMSG_MTA_LOOKUP_SMARTHOST → ``mta_on_smarthost()``."""
        evp = self.wait_smarthost.pop(m.payload["id"], None)
        if evp is None:
            return
        if m.payload.get("status", "ok") != "ok":  # LKA_OK
            reason = "Cannot retrieve smarthost"
            self.send("queue", "MTA_DELIVERY_TEMPFAIL", {"evpid": evp.id, "reason": reason},
                      length=14 + len(reason))
            return
        self._handle_envelope(evp, evp.mta_relay_hostname)

    def _handle_envelope(self, evp: Envelope, smarthost: str | None) -> None:
        """``mta.c:mta_handle_envelope()`` (6.8; the IMSG_MTA_TRANSFER case of
        ``mta_imsg()`` in 5.x): relay, hold above ``task_hiwat``, task per msgid,
        envelope, ``mta_drain()``."""
        if self.behaviour.smarthost_lookup and evp.mta_relay_hostname and smarthost is None:
            self._query_smarthost(evp)
            return
        relay = self._relay(evp)
        # ignore if we don't know the limits yet
        if relay.limits is not None and relay.ntask >= relay.limits.task_hiwat:
            if not relay.state & RELAY_ONHOLD:
                self._log("mta.hiwat", relay.domain.name)  # "hiwat reached on %s: holding envelopes"
                relay.state |= RELAY_ONHOLD
        if relay.state & RELAY_ONHOLD:
            relay.state |= RELAY_HOLDQ
            self.holds += 1
            self.send("queue", "MTA_DELIVERY_HOLD", {"evpid": evp.id, "holdq": relay.id}, length=16)
            self._relay_unref(relay)
            return
        task = None
        msgid = evp.msgid
        for t in relay.tasks:
            if t.msgid == msgid:
                task = t
                break
        if task is None:
            task = Task(msgid, evp.sender)
            relay.ntask += 1
            relay.tasks.append(task)
            self.stat_increment("mta.task")
        task.envelopes.append(evp)
        self.stat_increment("mta.envelope")
        self._drain(relay)
        self._relay_unref(relay)

    # ---- the reference-counted objects -------------------------------------------------

    def _relay(self, evp: Envelope) -> Relay:
        """``mta.c:mta_relay()``: the relay for this envelope (``agent.mta.relay``: a relay
        host, or the dest domain's MXs when it names none), created on first use."""
        host = evp.mta_relay_hostname
        if host:
            domain = self._domain(host, True)
            portno = evp.mta_relay_port
        else:
            domain = self._domain(evp.dest.rpartition("@")[2], False)
            portno = 0
        tls = evp.mta_relay_tls
        key = (domain.name.lower(), domain.as_host, portno, tls)
        relay = self.relays.get(key)
        if relay is None:
            relay = Relay(self.uid(), key, domain, portno, tls)
            self.relays[key] = relay
            self.stat_increment("mta.relay")
        else:
            self._domain_unref(domain)  # from here
        relay.refcount += 1
        return relay

    def _relay_unref(self, relay: Relay) -> None:
        """``mta.c:mta_relay_unref()``: the last reference releases anything still held
        for it, frees its connectors and drops the domain."""
        relay.refcount -= 1
        if relay.refcount:
            return
        if relay.state & RELAY_HOLDQ:
            self._holdq_release(relay, 0)
        del self.relays[relay.key]
        for c in list(relay.connectors.values()):
            self._connector_free(c)
        relay.connectors.clear()
        self._domain_unref(relay.domain)
        self.stat_decrement("mta.relay")

    def _domain(self, name: str, as_host: bool) -> _Domain:
        """``mta.c:mta_domain()``."""
        key = (name.lower(), as_host)
        d = self.domains.get(key)
        if d is None:
            d = _Domain(name, as_host)
            self.domains[key] = d
            self.stat_increment("mta.domain")
        d.refcount += 1
        return d

    def _domain_unref(self, d: _Domain) -> None:
        """``mta.c:mta_domain_unref()``: with the domain go its MXs' host references."""
        d.refcount -= 1
        if d.refcount:
            return
        for mx in d.mxs:
            self._host_unref(mx.host)  # from IMSG_DNS_HOST
        d.mxs.clear()
        del self.domains[(d.name.lower(), d.as_host)]
        self.stat_decrement("mta.domain")

    def _host(self, addr: str) -> _Host:
        """``mta.c:mta_host()``."""
        h = self.hosts.get(addr)
        if h is None:
            h = _Host(addr)
            self.hosts[addr] = h
            self.stat_increment("mta.host")
        h.refcount += 1
        return h

    def _host_unref(self, h: _Host) -> None:
        """``mta.c:mta_host_unref()``."""
        h.refcount -= 1
        if h.refcount:
            return
        del self.hosts[h.addr]
        self.stat_decrement("mta.host")

    def _source(self, sa: str | None = None) -> _Source:
        """``mta.c:mta_source()``."""
        s = self.sources.get(sa)
        if s is None:
            s = _Source(sa)
            self.sources[sa] = s
            self.stat_increment("mta.source")
        s.refcount += 1
        return s

    def _source_unref(self, s: _Source) -> None:
        """``mta.c:mta_source_unref()``."""
        s.refcount -= 1
        if s.refcount:
            return
        del self.sources[s.sa]
        self.stat_decrement("mta.source")

    def _connector(self, relay: Relay, source: _Source) -> _Connector:
        """``mta.c:mta_connector()``."""
        c = relay.connectors.get(source)
        if c is None:
            c = _Connector(relay, source)
            source.refcount += 1  # mta_source_ref()
            relay.connectors[source] = c
            self.stat_increment("mta.connector")
        return c

    def _connector_free(self, c: _Connector) -> None:
        """``mta.c:mta_connector_free()``."""
        if c.flags & CONNECTOR_WAIT:
            self.runq_connector.cancel(c)
        self._source_unref(c.source)  # from constructor
        self.stat_decrement("mta.connector")

    def _route(self, src: _Source, dst: _Host) -> Route:
        """``mta.c:mta_route()``: a route kept alive on the runq is taken back from it."""
        r = self.routes.get((src, dst))
        if r is None:
            self._route_ids += 1
            r = Route(self._route_ids, src, dst)
            self.routes[(src, dst)] = r
            src.refcount += 1  # mta_source_ref()
            dst.refcount += 1  # mta_host_ref()
            self.stat_increment("mta.route")
        elif r.flags & ROUTE_RUNQ:
            r.flags &= ~(ROUTE_RUNQ | ROUTE_KEEPALIVE)
            self.runq_route.cancel(r)
            r.refcount -= 1  # from mta_route_unref()
        r.refcount += 1
        return r

    def _route_unref(self, r: Route) -> None:
        """``mta.c:mta_route_unref()``: unreferenced, a route is kept while its penalty or
        the connect/disconnect delays still apply, then discarded."""
        r.refcount -= 1
        if r.refcount:
            return
        now = self.time()
        sched = 0
        if r.penalty:
            delay = min(DELAY_ROUTE_BASE[self.era] * r.penalty * r.penalty, DELAY_ROUTE_MAX[self.era])
            sched = r.lastpenalty + delay
        elif not r.flags & ROUTE_KEEPALIVE:
            if r.lastconn + self.max_seen_conndelay_route > now:
                sched = r.lastconn + self.max_seen_conndelay_route
            if (r.lastdisc + self.max_seen_discdelay_route > now
                    and r.lastdisc + self.max_seen_discdelay_route < sched):
                sched = r.lastdisc + self.max_seen_discdelay_route
        if sched > now:
            r.flags |= ROUTE_RUNQ
            self.runq_route.schedule_at(sched, r)
            r.refcount += 1
            return
        del self.routes[(r.src, r.dst)]
        self._source_unref(r.src)  # from constructor
        self._host_unref(r.dst)  # from constructor
        self.stat_decrement("mta.route")

    # ---- drain, lookups ------------------------------------------------------------------

    def _drain(self, r: Relay) -> None:
        """``mta.c:mta_drain()``: flush a failing relay, else query what is missing, else
        (re)query the source now or schedule the relay on its runq."""
        if r.ntask == 0:
            return  # "all done"
        if r.fail is not None:
            self._flush(r, r.fail, r.failstr)
            return
        if r.domain.lastmxquery == 0:
            self._query_mx(r)
        if r.limits is None:
            self._query_limits(r)
        if r.status & RELAY_WAITMASK:
            return
        if r.nextsource <= self.time():
            self._query_source(r)
        else:
            self.runq_relay.schedule_at(r.nextsource, r)
            r.status |= RELAY_WAIT_CONNECTOR
            r.refcount += 1

    def _query_mx(self, r: Relay) -> None:
        """``mta.c:mta_query_mx()``: relays of one domain share one query (waitq);
        IMSG_MTA_DNS_HOST for a relay host, IMSG_MTA_DNS_MX for a domain."""
        if r.status & RELAY_WAIT_MX:
            return
        d = r.domain
        first = not d.mx_waiters  # waitq_wait()
        d.mx_waiters.append(r)
        if first:
            qid = self.uid()
            self.wait_mx[qid] = d
            if d.as_host:
                # len=19 for "127.0.0.1" in the real 6.8 trace: id + string + 1
                self.send("lka", "MTA_DNS_HOST", {"id": qid, "host": d.name}, length=10 + len(d.name))
            else:
                self.send("lka", "MTA_DNS_MX", {"id": qid, "domain": d.name}, length=14 + len(d.name))
        r.status |= RELAY_WAIT_MX
        r.refcount += 1

    def _query_limits(self, r: Relay) -> None:
        """``mta.c:mta_query_limits()``: the "default" limits (no per-domain limits in the
        site), in-process; remembers the largest route delays for ``mta_route_unref()``."""
        r.limits = lim = self.default_limits
        self.max_seen_conndelay_route = max(self.max_seen_conndelay_route, lim.conndelay_route)
        self.max_seen_discdelay_route = max(self.max_seen_discdelay_route, lim.discdelay_route)

    def _query_source(self, r: Relay) -> None:
        """``mta.c:mta_query_source()``: no source table → ``mta_on_source(relay,
        mta_source(NULL))`` at once."""
        r.sourceloop += 1
        r.refcount += 1
        self._on_source(r, self._source(None))

    @handles("MTA_DNS_HOST")
    def on_dns_host(self, m: Imsg) -> None:
        """``mta.c:mta_imsg()`` IMSG_MTA_DNS_HOST: one MX address, inserted by preference
        (stat mta.host on a new address)."""
        d = self.wait_mx.get(m.payload["id"])
        if d is None:
            return
        p = m.payload
        mx = _Mx(self._host(p["addr"]), p.get("mxname") or d.name, p["preference"])
        for i, imx in enumerate(d.mxs):
            if imx.preference > mx.preference:
                d.mxs.insert(i, mx)
                return
        d.mxs.append(mx)

    @handles("MTA_DNS_HOST_END")
    def on_dns_host_end(self, m: Imsg) -> None:
        """``mta.c:mta_imsg()`` IMSG_MTA_DNS_HOST_END → ``waitq_run()`` → ``mta_on_mx()``
        for each relay waiting on the domain."""
        d = self.wait_mx.pop(m.payload["id"], None)
        if d is None:
            return
        # the lka answers only "error" (no address / resolver failure): DNS_ENOTFOUND
        d.mxstatus = DNS_ENOTFOUND if m.payload["error"] else DNS_OK
        d.lastmxquery = self.time()
        waiters, d.mx_waiters = d.mx_waiters, []
        for r in waiters:
            self._on_mx(d, r)

    def _on_mx(self, d: _Domain, relay: Relay) -> None:
        """``mta.c:mta_on_mx()``: a failed lookup makes the relay fail, then drain."""
        if d.mxstatus == DNS_RETRY:
            relay.fail, relay.failstr = TEMPFAIL, "Temporary failure in MX lookup"
        elif d.mxstatus == DNS_EINVAL:
            relay.fail, relay.failstr = PERMFAIL, "Invalid domain name"
        elif d.mxstatus == DNS_ENONAME:
            relay.fail, relay.failstr = PERMFAIL, "Domain does not exist"
        elif d.mxstatus == DNS_ENOTFOUND:
            relay.fail = TEMPFAIL
            # "Host not found" for a relay host exists from 6.8 on
            relay.failstr = ("Host not found" if d.as_host and self.era == "6.8"
                             else "No MX found for domain")
        if d.mxstatus != DNS_OK:
            self._log("mta.mx_failed", relay.failstr)
        relay.status &= ~RELAY_WAIT_MX
        self._drain(relay)
        self._relay_unref(relay)  # from mta_query_mx()

    def _on_source(self, relay: Relay, source: _Source) -> None:
        """``mta.c:mta_on_source()``: connect through the connector; when every source has
        been tried without a route (``sourceloop``), the relay fails with the reason the
        connector errors give ("Network error on destination MXs" for disabled routes)."""
        relay.lastsource = self.time()
        delay = DELAY_CHECK_SOURCE_SLOW
        c = self._connector(relay, source)
        if c.flags & CONNECTOR_NEW:
            c.flags &= ~CONNECTOR_NEW
            delay = DELAY_CHECK_SOURCE
        self._connect(c)
        if not c.flags & CONNECTOR_ERROR:
            relay.sourceloop = 0
        else:
            delay = DELAY_CHECK_SOURCE_FAST
        self._source_unref(source)  # from constructor
        if not relay.connectors:
            relay.fail, relay.failstr = TEMPFAIL, "Could not retrieve source address"
        if len(relay.connectors) < relay.sourceloop:
            relay.fail = TEMPFAIL
            errmask = 0
            for cc in relay.connectors.values():
                errmask |= cc.flags
            if errmask & CONNECTOR_ERROR_ROUTE_SMTP:
                relay.failstr = "Destination seem to reject all mails"
            elif errmask & CONNECTOR_ERROR_ROUTE_NET:
                relay.failstr = "Network error on destination MXs"
            elif errmask & CONNECTOR_ERROR_MX:
                relay.failstr = "No MX found for destination"
            elif errmask & CONNECTOR_ERROR_FAMILY:
                relay.failstr = "Address family mismatch on destination MXs"
            elif errmask & CONNECTOR_ERROR_BLOCKED:
                relay.failstr = "All routes to destination blocked"
            else:
                relay.failstr = "No valid route to destination"
        relay.nextsource = relay.lastsource + delay
        relay.status &= ~RELAY_WAIT_SOURCE
        self._drain(relay)
        self._relay_unref(relay)  # from mta_query_source()

    # ---- connections ---------------------------------------------------------------------

    def _connect(self, c: _Connector) -> None:
        """``mta.c:mta_connect()``: open sessions while tasks outnumber ready connections
        (not more than half as many once above 2), within the domain/source/connector/
        relay limits and delays; else retry on the connector runq."""
        relay = c.relay
        lim = relay.limits
        assert lim is not None
        while True:
            if c.flags & CONNECTOR_ERROR:
                return  # "connector error"
            if c.flags & CONNECTOR_WAIT:
                self.runq_connector.cancel(c)  # "cancelling connector timeout"
                c.flags &= ~CONNECTOR_WAIT
            if relay.ntask == 0:
                return  # "no task for connector"
            if (relay.nconn_ready >= relay.ntask
                    or (relay.nconn > 2 and relay.nconn >= relay.ntask // 2)):
                return  # "enough connections already"
            limits = 0
            now = nextconn = self.time()
            d = relay.domain
            if d.lastconn + lim.conndelay_domain > nextconn:
                nextconn = d.lastconn + lim.conndelay_domain
            if d.nconn >= lim.maxconn_per_domain:
                limits |= CONNECTOR_LIMIT_DOMAIN
            src = c.source
            if src.lastconn + lim.conndelay_source > nextconn:
                nextconn = src.lastconn + lim.conndelay_source
            if src.nconn >= lim.maxconn_per_source:
                limits |= CONNECTOR_LIMIT_SOURCE
            if c.lastconn + lim.conndelay_connector > nextconn:
                nextconn = c.lastconn + lim.conndelay_connector
            if c.nconn >= lim.maxconn_per_connector:
                limits |= CONNECTOR_LIMIT_CONN
            if relay.lastconn + lim.conndelay_relay > nextconn:
                nextconn = relay.lastconn + lim.conndelay_relay  # "cannot use relay before"
            if relay.nconn >= lim.maxconn_per_relay:
                limits |= CONNECTOR_LIMIT_RELAY
            route = mx = None
            if not limits and nextconn <= now:
                route, mx, limits, nextconn = self._find_route(c, now, limits, nextconn)
            if route is None or mx is None:
                if c.flags & CONNECTOR_ERROR:
                    return  # "no route available: errors on connector"
                if limits:
                    nextconn = now + DELAY_CHECK_LIMIT  # "limits reached"
                c.flags |= CONNECTOR_WAIT  # "must wait a bit"
                self.runq_connector.schedule_at(nextconn, c)
                return
            t = self.time()
            c.nconn += 1
            c.lastconn = t
            relay.nconn += 1
            relay.lastconn = t
            d.nconn += 1
            d.lastconn = t
            route.nconn += 1
            route.lastconn = t
            route.src.nconn += 1
            route.src.lastconn = t
            route.dst.nconn += 1
            route.dst.lastconn = t
            self.session_engine.session(relay, route, mx.mxname)  # "this never fails synchronously"
            relay.refcount += 1

    def _find_route(self, c: _Connector, now: int, limits: int,
                    nextconn: int) -> tuple[Route | None, _Mx | None, int, int]:
        """``mta.c:mta_find_route()``: scan the MXs by increasing preference, stop at the
        first level with a usable route (or one that only has to wait), skip hosts and
        routes over their limits, in their delays, disabled, or not validated yet; take
        the route with the fewest connections. Returns (route, mx, limits, nextconn)."""
        lim = c.relay.limits
        assert lim is not None
        tm = 0
        limit_host = limit_route = suspended_route = family_mismatch = 0
        level = -1
        best: Route | None = None
        best_mx: _Mx | None = None
        seen = 0
        for mx in c.relay.domain.mxs:
            if mx.preference > level:
                if best is not None:
                    break  # use the current best MX
                if limit_host or limit_route or tm:
                    break  # valid MXs at this level, but they have to wait
                # (no backup relays: relay->backuppref is -1)
                level = mx.preference
            if mx.host.flags & HOST_IGNORE:
                continue
            seen += 1
            # (AF mismatch: the NULL source and AF_UNSPEC limits match every host)
            h = mx.host
            if h.nconn >= lim.maxconn_per_host:
                limit_host = 1
                continue
            if h.lastconn + lim.conndelay_host > now:
                if tm == 0 or h.lastconn + lim.conndelay_host < tm:
                    tm = h.lastconn + lim.conndelay_host
                continue
            route = self._route(c.source, h)
            if route.flags & ROUTE_DISABLED:
                suspended_route |= route.flags & ROUTE_DISABLED  # "suspend"
                self._route_unref(route)
                continue
            if route.nconn and route.flags & ROUTE_NEW:
                limit_route = 1  # "not validated yet"
                self._route_unref(route)
                continue
            if route.nconn >= lim.maxconn_per_route:
                limit_route = 1
                self._route_unref(route)
                continue
            if route.lastconn + lim.conndelay_route > now:
                if tm == 0 or route.lastconn + lim.conndelay_route < tm:
                    tm = route.lastconn + lim.conndelay_route  # "delay after connect"
                self._route_unref(route)
                continue
            if route.lastdisc + lim.discdelay_route > now:
                if tm == 0 or route.lastdisc + lim.discdelay_route < tm:
                    tm = route.lastdisc + lim.discdelay_route  # "delay after disconnect"
                self._route_unref(route)
                continue
            if best is not None and route.nconn >= best.nconn:
                self._route_unref(route)  # "current one is better"
                continue
            if best is not None:
                self._route_unref(best)
            best, best_mx = route, mx
        if best is not None:
            return best, best_mx, limits, nextconn
        if seen == 0:
            self._log("mta.no_mx", c.relay.domain.name)  # "No MX found for %s"
            c.flags |= CONNECTOR_ERROR_MX
        elif limit_route:
            limits |= CONNECTOR_LIMIT_ROUTE
        elif limit_host:
            limits |= CONNECTOR_LIMIT_HOST
        elif tm:
            nextconn = max(nextconn, tm)
        elif family_mismatch:
            c.flags |= CONNECTOR_ERROR_FAMILY
        elif suspended_route:
            self._log("mta.no_route", c.relay.domain.name)  # "No valid route for %s"
            if suspended_route & ROUTE_DISABLED_NET:
                c.flags |= CONNECTOR_ERROR_ROUTE_NET
            if suspended_route & ROUTE_DISABLED_SMTP:
                c.flags |= CONNECTOR_ERROR_ROUTE_SMTP
        return None, None, limits, nextconn

    def _on_timeout(self, runq: RunQ, arg: Any) -> None:
        """``mta.c:mta_on_timeout()`` for the relay, connector, route and hoststat runqs."""
        if runq is self.runq_relay:
            arg.status &= ~RELAY_WAIT_CONNECTOR
            self._drain(arg)
            self._relay_unref(arg)  # from mta_drain()
        elif runq is self.runq_connector:
            arg.flags &= ~CONNECTOR_WAIT
            self._connect(arg)
        elif runq is self.runq_route:
            arg.flags &= ~ROUTE_RUNQ
            self._route_enable(arg)
            self._route_unref(arg)
        elif runq is self.runq_hoststat:
            self._hoststat_remove_entry(arg)

    def _route_disable(self, route: Route, penalty: int, reason: int) -> None:
        """``mta.c:mta_route_disable()``: "Disabling route %s for %llus" (base·penalty²)."""
        route.penalty += penalty
        route.lastpenalty = self.time()
        delay = min(DELAY_ROUTE_BASE[self.era] * route.penalty * route.penalty,
                    DELAY_ROUTE_MAX[self.era])
        self._log("mta.route_disabled", (route.dst.addr, delay))
        if route.flags & ROUTE_DISABLED:
            self.runq_route.cancel(route)
        else:
            route.refcount += 1  # mta_route_ref()
        route.flags |= reason & ROUTE_DISABLED
        self.runq_route.schedule(delay, route)

    def _route_enable(self, route: Route) -> None:
        """``mta.c:mta_route_enable()``: "Enabling route" (a new route again); the
        penalty decreases by one (DELAY_QUADRATIC)."""
        if route.flags & ROUTE_DISABLED:
            self._log("mta.route_enabled", route.dst.addr)
            route.flags &= ~ROUTE_DISABLED
            route.flags |= ROUTE_NEW
            route.nerror = 0
        if route.penalty:
            route.penalty -= 1
            route.lastpenalty = self.time()

    def route_ok(self, relay: Relay, route: Route) -> None:
        """``mta.c:mta_route_ok()``: the first session that reaches READY validates a new
        route, and the connector may open more."""
        if not route.flags & ROUTE_NEW:
            return
        route.nerror = 0
        route.flags &= ~ROUTE_NEW
        self._connect(self._connector(relay, route.src))

    def route_collect(self, relay: Relay, route: Route) -> None:
        """``mta.c:mta_route_collect()``: a session ended; a new route whose first
        connection failed is disabled; the connector may reconnect."""
        relay.nconn -= 1
        relay.domain.nconn -= 1
        route.nconn -= 1
        route.src.nconn -= 1
        route.dst.nconn -= 1
        route.lastdisc = self.time()
        if route.flags & ROUTE_NEW:
            self._route_disable(route, NEW_ROUTE_PENALTY[self.era], ROUTE_DISABLED_NET)
        c = self._connector(relay, route.src)
        c.nconn -= 1
        self._connect(c)
        self._route_unref(route)  # from mta_find_route()
        self._relay_unref(relay)  # from mta_connect()

    def _holdq_release(self, relay: Relay, n: int) -> None:
        """IMSG_MTA_HOLDQ_RELEASE (5.4.2 IMSG_DELIVERY_RELEASE): up to ``n`` held
        envelopes of this relay back to the scheduler (0: all, -1: all, rescheduled)."""
        self.releases.append((self.now, n))
        self.send("queue", "MTA_HOLDQ_RELEASE", {"holdq": relay.id, "n": n}, length=12)

    def route_next_task(self, relay: Relay, route: Route) -> Task | None:
        """``mta.c:mta_route_next_task()``: the relay's first task; down at ``task_lowat``
        the hold ends and ``task_release`` held envelopes are asked back."""
        if not relay.tasks:
            return None
        task = relay.tasks.popleft()
        relay.ntask -= 1
        lim = relay.limits
        assert lim is not None
        if relay.ntask == lim.task_lowat:
            if relay.state & RELAY_ONHOLD:
                self._log("mta.lowat", relay.domain.name)  # "back to lowat on %s: releasing"
                relay.state &= ~RELAY_ONHOLD
            if relay.state & RELAY_HOLDQ:
                self._holdq_release(relay, lim.task_release)
        elif relay.ntask == 0 and relay.state & RELAY_HOLDQ:
            self._holdq_release(relay, 0)
        return task

    def _flush(self, relay: Relay, fail: str, error: str) -> None:
        """``mta.c:mta_flush()``: fail every task of the relay (deferred envelopes of a
        domain whose routes all failed are cached in its hoststat for a reschedule)."""
        self._log("mta.flush", error)
        n = 0
        while relay.tasks:
            task = relay.tasks.popleft()
            for e in task.envelopes:
                domain = dest_domain(e)
                if fail == TEMPFAIL and domain is not None:
                    r = sum(1 for c in relay.connectors.values() if c.flags & CONNECTOR_ERROR_ROUTE)
                    if len(relay.connectors) == r:
                        self.hoststat_cache(domain, e.id)
                self.delivery(fail, e, error)
                n += 1
        self.stat_decrement("mta.task", relay.ntask)
        self.stat_decrement("mta.envelope", n)
        relay.ntask = 0
        if relay.state & RELAY_HOLDQ:
            self._holdq_release(relay, -1)

    # ---- hoststat ------------------------------------------------------------------------

    def hoststat_update(self, host: str, error: str) -> None:
        """``mta.c:mta_hoststat_update()``: remember the last result for the domain (4 h)."""
        name = host.lower()
        hs = self.hoststat.get(name)
        if hs is None:
            hs = _HostStat(name)
            self.hoststat[name] = hs
        hs.error = error
        hs.tm = self.time()
        self.runq_hoststat.cancel(hs)
        self.runq_hoststat.schedule(HOSTSTAT_EXPIRE_DELAY, hs)

    def hoststat_cache(self, host: str, evpid: int) -> None:
        """``mta.c:mta_hoststat_cache()``: defer an envelope on a known domain."""
        hs = self.hoststat.get(host.lower())
        if hs is None or len(hs.deferred) >= MTA_MAX_DEFERRED:
            return
        hs.deferred[evpid] = None

    def hoststat_uncache(self, host: str, evpid: int) -> None:
        """``mta.c:mta_hoststat_uncache()``."""
        hs = self.hoststat.get(host.lower())
        if hs is not None:
            hs.deferred.pop(evpid, None)

    def hoststat_reschedule(self, host: str) -> None:
        """``mta.c:mta_hoststat_reschedule()``: the domain answers again, so its deferred
        envelopes are rescheduled now (IMSG_MTA_SCHEDULE each)."""
        hs = self.hoststat.get(host.lower())
        if hs is None:
            return
        while hs.deferred:
            evpid = next(iter(hs.deferred))
            del hs.deferred[evpid]
            self.send("queue", "MTA_SCHEDULE", {"evpid": evpid}, length=8)

    def _hoststat_remove_entry(self, hs: _HostStat) -> None:
        """``mta.c:mta_hoststat_remove_entry()`` (the 4 h expiry)."""
        hs.deferred.clear()
        self.hoststat.pop(hs.name, None)
        self.runq_hoststat.cancel(hs)

    # ---- sessions: mta_session.c:mta_session_imsg(), in roles/mta_session.py ---------------

    @handles("MTA_DNS_PTR", "GETNAMEINFO")
    def on_ptr(self, m: Imsg) -> None:
        """``mta_session.c:mta_session_imsg()`` IMSG_MTA_DNS_PTR / 6.8
        ``mta_getnameinfo_cb()``: the MX's name for the sessions waiting on it."""
        self.session_engine.on_ptr(m)

    @handles("MTA_TLS_INIT", "CERT_INIT")
    def on_tls_init(self, m: Imsg) -> None:
        """5.4.2/5.7.3 ``mta_session_imsg()`` IMSG_*_TLS_INIT / 6.8 ``mta_cert_init_cb()``:
        the session's client TLS handshake starts."""
        self.session_engine.on_tls_init(m)

    @handles("MTA_TLS_VERIFY", "CERT_VERIFY")
    def on_tls_verify(self, m: Imsg) -> None:
        """``mta_session_imsg()`` IMSG_MTA_TLS_VERIFY / 6.8 ``mta_cert_verify_cb()``: the
        peer certificate's verdict, the session goes on."""
        self.session_engine.on_tls_verify(m)

    @handles("MTA_OPEN_MESSAGE")
    def on_open_message(self, m: Imsg) -> None:
        """``mta_session.c:mta_session_imsg()`` IMSG_MTA_OPEN_MESSAGE [fd]: the message of
        the session's task, MAIL FROM next."""
        self.session_engine.on_open_message(m)

    # ---- results to the queue --------------------------------------------------------------

    def delivery(self, status: str, evp: Envelope, text: str, *, dsn: bool = False) -> None:
        """``mta.c:mta_delivery_log()`` + ``mta_delivery_notify()``: results leave one per
        event-loop iteration (``mta_delivery_flush_event()`` on an evtimer 0). ``dsn``: the
        session's remote announced DSN (``e->ext & MTA_EXT_DSN``); IMSG_MTA_DELIVERY_OK
        carries that ``ext`` (``m_add_int()``), the queue's cue for a success DSN."""
        self._log("mta.delivery", (evp.id, status, text))
        self.flush_evp.append((status, {"evpid": evp.id, "reason": text,
                                        "mta_ext": MTA_EXT_DSN if dsn else 0}))
        if not self._flush_armed:
            self._flush_armed = True
            self.proc.timer(0.0, self._flush_event, None, key="mta.flush")

    def _flush_event(self, _arg: object) -> None:
        """``mta.c:mta_delivery_flush_event()``: one IMSG_MTA_DELIVERY_* per call."""
        status, payload = self.flush_evp.popleft()
        kind = _DELIVERY_KIND[status]
        # len: 12 for OK (evpid + ext), 14 + the status text for TEMPFAIL/PERMFAIL
        # (46 for "Network error on destination MXs", 42 for "550 5.1.1 sink: no such
        # user" in the real 6.8 traces), 8 for LOOP
        length = None if status == "ok" else 8 if status == "loop" else 14 + len(payload["reason"])
        self.send("queue", kind, payload, length=length)
        if self.flush_evp:
            self.proc.timer(0.0, self._flush_event, None, key="mta.flush")
        else:
            self._flush_armed = False
