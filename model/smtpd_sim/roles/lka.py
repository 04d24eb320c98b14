"""The lookup agent (``lka.c``, ``lka_session.c``, ``dns.c`` / 6.8 ``resolver.c``).

Rules and recipient expansion (aliases, getpwnam, ~/.forward through the parent),
DNS for the smtp and mta roles, userinfo for the mda. Table lookups run in-process
(their CPU is part of the handler's cost) unless a ``[tables.aliases]`` backend is
configured (model/tables/: in-process cost, or a table process the lka blocks on);
DNS is asynchronous (libasr).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from smtpd_sim.fsm.envelope import D_MDA, D_MTA, Envelope
from smtpd_sim.imsg import PAYLOAD_LEN
from smtpd_sim.kernel.message import Imsg
from smtpd_sim.roles.base import Role, handles

if TYPE_CHECKING:
    from smtpd_sim.kernel.process import Process
    from smtpd_sim.roles.ports import Ports

LKA_OK, LKA_TEMPFAIL, LKA_PERMFAIL = "ok", "tempfail", "permfail"
EXPAND_DEPTH = 10  # lka_session.c: EXPAND_DEPTH


class _Session:
    """``struct lka_session``: one recipient being expanded."""

    __slots__ = ("id", "m", "envelope", "nodes", "deliveries", "error", "errormsg", "waiting",
                 "seen", "nid", "fwd")

    def __init__(self, m: Imsg) -> None:
        self.m = m
        self.id: int = m.payload["session"]
        self.envelope: Envelope = m.payload["envelope"]
        # (type, value, depth, forwarding user, ctx, node id, key): see LkaRole._insert()
        self.nodes: deque[tuple[str, Any, int, str | None, int | None, int, tuple[Any, ...]]] = deque()
        self.deliveries: list[Envelope] = []
        self.error: str | None = None
        self.errormsg: str | None = None
        self.waiting = False
        self.seen: set[tuple[Any, ...]] = set()  # keys of the expand tree's realuser=0 nodes
        self.nid = 0
        self.fwd: tuple[int | None, tuple[Any, ...]] = (None, ())  # lks->node: ctx, key


class LkaRole(Role):
    """``lka.c:lka_imsg()``."""

    name = "lka"

    def __init__(self, proc: Process, ports: Ports) -> None:
        super().__init__(proc, ports)
        self._certs: dict[tuple[str, int], int] = {}  # peer certificates stored per TLS session
        self.site = ports.site
        self.dns = ports.resolver
        self.filters = ports.filters
        self.sessions: dict[int, _Session] = {}
        self.forward_requests = 0
        # the dispatcher's `alias <aliases>` table, if the site/scenario configures one
        self.alias_table = ports.tables.get("aliases")

    @handles("CONF_START", "CONF_END")
    def on_conf(self, m: Imsg) -> None:
        """IMSG_CONF_END → ``table_open_all()``, then reads from smtp/mta/mda are enabled."""

    # ---- resolver --------------------------------------------------------------------

    @handles("SMTP_DNS_PTR", "MTA_DNS_PTR", "GETNAMEINFO")
    def on_ptr(self, m: Imsg) -> None:
        """5.x ``dns.c:dns_imsg()`` IMSG_DNS_PTR → ``getnameinfo_async()``; 6.8
        ``resolver.c:resolver_dispatch_request()`` IMSG_GETNAMEINFO. Answered from
        ``dns_dispatch_ptr()`` / ``resolver_getnameinfo_cb()``."""
        self.dns.ptr(self.proc, m.payload["addr"],
                     lambda name: self.reply(m, m.kind, {**m.payload, "name": name}))

    @handles("GETADDRINFO")
    def on_getaddrinfo(self, m: Imsg) -> None:
        """6.8 ``resolver_dispatch_request()`` IMSG_GETADDRINFO → one IMSG_GETADDRINFO per
        result and IMSG_GETADDRINFO_END (``resolver_getaddrinfo_cb()``)."""
        def done(addrs: list[str]) -> None:
            for a in addrs:
                self.reply(m, "GETADDRINFO", {**m.payload, "addr": a})
            self.reply(m, "GETADDRINFO_END", {**m.payload, "addrs": addrs})
        self.dns.addrinfo(self.proc, m.payload["host"], done)

    @handles("MTA_DNS_MX")
    def on_dns_mx(self, m: Imsg) -> None:
        """``dns.c:dns_imsg()`` IMSG_MTA_DNS_MX → ``res_query_async(T_MX)`` then
        ``getaddrinfo_async()`` per MX; ``dns_dispatch_host()`` sends one MTA_DNS_HOST per
        address and MTA_DNS_HOST_END."""
        def done(hosts: list[tuple[str, int]] | None) -> None:
            for addr, pref in hosts or ():
                self.reply(m, "MTA_DNS_HOST", {**m.payload, "addr": addr, "preference": pref})
            self.reply(m, "MTA_DNS_HOST_END", {**m.payload, "error": hosts is None or not hosts})
        self.dns.mx(self.proc, m.payload["domain"], done)

    @handles("MTA_DNS_HOST")
    def on_dns_host(self, m: Imsg) -> None:
        """``dns.c:dns_imsg()`` IMSG_MTA_DNS_HOST (``relay host``): A/AAAA of one host."""
        def done(addrs: list[str]) -> None:
            for a in addrs:
                self.reply(m, "MTA_DNS_HOST", {**m.payload, "addr": a, "preference": -1})
            self.reply(m, "MTA_DNS_HOST_END", {**m.payload, "error": not addrs})
        host = m.payload["host"]
        if host[:1].isdigit():
            # an address literal: dns_imsg() answers at once, no resolver round trip
            done([host])
        else:
            self.dns.addrinfo(self.proc, host, done)

    @handles("CERT_INIT", "SMTP_TLS_INIT", "MTA_TLS_INIT")
    def on_cert_init(self, m: Imsg) -> None:
        """6.8 ``cert.c`` / ``lka.c:lka_imsg()`` IMSG_CERT_INIT (5.7.3 IMSG_SMTP_TLS_INIT, 5.4.2
        IMSG_LKA_SSL_INIT): the certificate of the pki named by the listener — in 5.4.2
        the private key PEM travels with it (era-5.4.2-mfa.md §2 #51)."""
        if m.payload.get("client"):
            # the mta asks for a client certificate: no relay pki is configured, so the
            # lookup fails (CA_FAIL) and the mta goes on without one (lka.c, cert.c)
            self.reply(m, m.kind, {**m.payload, "status": "fail", "key": False}, length=self._fail_len(m.kind))
            return
        with_key = self.behaviour.key_engine == "none"
        self.reply(m, m.kind, {**m.payload, "status": "ok", "key": with_key},
                   length=1151 + (1704 if with_key else 0))

    @staticmethod
    def _fail_len(kind: str) -> int:
        """A failed certificate lookup carries no certificate: the fixed part only
        (``struct ca_cert_resp_msg`` / 6.8 ``cert.c`` reply: reqid, status, name)."""
        return PAYLOAD_LEN.get(kind, 0) or 19

    @handles("MTA_TLS_VERIFY_CERT", "MTA_TLS_VERIFY_CHAIN", "CERT_CERTIFICATE")
    def on_tls_certificate(self, m: Imsg) -> None:
        """``lka.c:lka_imsg()`` IMSG_*_TLS_VERIFY_CERT/_CHAIN (6.8 ``cert.c`` IMSG_CERT_CERTIFICATE):
        the peer's certificates are stored until the verify request; no answer."""
        key = (m.src_role, m.payload["session"])
        self._certs[key] = self._certs.get(key, 0) + 1

    @handles("MTA_TLS_VERIFY", "CERT_VERIFY")
    def on_tls_verify(self, m: Imsg) -> None:
        """``lka.c:lka_certificate_verify()`` (6.8 ``cert_do_verify()``): verify the stored
        chain against the CA bundle and answer."""
        n = self._certs.pop((m.src_role, m.payload["session"]), 0)
        self.reply(m, m.kind, {**m.payload, "valid": n > 0}, length=PAYLOAD_LEN.get(m.kind, 0) or 12)

    # ---- 6.8 filters (lka_filter.c, report_smtp.c) -----------------------------------------

    @handles("LKA_PROCESSOR_FORK")
    def on_processor_fork(self, m: Imsg) -> None:
        """``lka.c:lka_imsg()`` IMSG_LKA_PROCESSOR_FORK → ``lka_proc_forked()``: ask the parent
        for the processor's stderr (``lka_proc_errfd()``); then the config/register dialogue
        on its stdin/stdout (text lines)."""
        self.send("parent", "LKA_PROCESSOR_ERRFD", {"name": m.payload["name"]}, length=m.length)

    @handles("LKA_PROCESSOR_ERRFD")
    def on_processor_errfd(self, m: Imsg) -> None:
        """``lka.c:lka_imsg()`` IMSG_LKA_PROCESSOR_ERRFD [fd] → ``lka_proc_errfd()`` (the
        processor's stderr read and logged), then ``shutdown(fd, SHUT_WR)``: nothing is
        sent; the processor is now fully set up."""

    @handles("FILTER_SMTP_BEGIN", "FILTER_SMTP_END", "FILTER_SMTP_DATA_END")
    def on_filter_session(self, m: Imsg) -> None:
        """``lka_filter.c:lka_filter_begin()`` / ``_end()`` / ``_data_end()``: session bookkeeping."""

    @handles("FILTER_SMTP_DATA_BEGIN")
    def on_filter_data_begin(self, m: Imsg) -> None:
        """``lka_filter_data_begin()``: a socketpair the message lines go through, its pony
        end passed back [fd]."""
        self.reply(m, "FILTER_SMTP_DATA_BEGIN", {"session": m.payload["session"]}, length=12, fd=True)

    @handles("FILTER_SMTP_PROTOCOL")
    def on_filter_protocol(self, m: Imsg) -> None:
        """``lka_filter.c:lka_filter_protocol()`` → ``filter_protocol()``: walk the chain; a
        processor registered for the phase gets a ``filter|0.6|...`` line and its
        ``filter-result`` decides; with nobody registered the answer is immediate
        (``filter_result_proceed()``)."""
        p = m.payload
        chain = [fp for fp in self.filters.values() if p["phase"] in fp.spec.phases]

        def step(i: int, decision: str) -> None:
            if decision != "proceed" or i == len(chain):
                self.reply(m, "FILTER_SMTP_PROTOCOL", {"session": p["session"], "phase": p["phase"],
                                                      "decision": decision}, length=24)
                return
            chain[i].query(f"filter|0.6|smtp-in|{p['phase']}|{p['session']:016x}",
                           lambda d: step(i + 1, d), self.proc)

        step(0, "proceed")

    @handles(*(f"REPORT_SMTP_{k}" for k in (
        "LINK_CONNECT", "LINK_DISCONNECT", "LINK_GREETING", "LINK_IDENTIFY", "LINK_TLS", "TX_RESET",
        "TX_BEGIN", "TX_MAIL", "TX_RCPT", "TX_ENVELOPE", "TX_DATA", "TX_COMMIT", "TX_ROLLBACK",
        "PROTOCOL_CLIENT", "PROTOCOL_SERVER", "FILTER_RESPONSE")))
    def on_report(self, m: Imsg) -> None:
        """``lka.c:lka_imsg()`` IMSG_REPORT_SMTP_* → ``lka_report_smtp_*()``: a
        ``report|0.6|...`` line to every processor that registered for reports."""
        for fp in self.filters.values():
            if fp.spec.reports:
                fp.report(f"report|0.6|smtp-in|{m.kind}")

    @handles("MTA_LOOKUP_SMARTHOST")
    def on_lookup_smarthost(self, m: Imsg) -> None:
        """6.8 ``lka.c:lka_imsg()`` IMSG_MTA_LOOKUP_SMARTHOST: the relay host of the
        dispatcher, from a table if configured (in-process)."""
        self.reply(m, "MTA_LOOKUP_SMARTHOST", {**m.payload, "status": LKA_OK})

    # ---- recipient expansion -------------------------------------------------------------

    @handles("SMTP_EXPAND_RCPT")
    def on_expand_rcpt(self, m: Imsg) -> None:
        """``lka_session.c:lka_session()``: insert the RCPT as an EXPAND_ADDRESS node and
        run ``lka_resume()``."""
        s = _Session(m)
        self.sessions[s.id] = s
        self._insert(s, "address", s.envelope.rcpt, 0, None, None)
        self._resume(s)

    @staticmethod
    def _insert(s: _Session, kind: str, value: str, depth: int, parent: str | None,
                ctx: int | None) -> None:
        """``expand.c:expand_insert()``: a node is dropped if the tree holds one equal by
        ``expand_cmp()`` — same type, sameuser, realuser, value, and the same nearest
        EXPAND_ADDRESS ancestor of its parent (``ctx``: the address node's id, None at the
        root). ``sameuser``: a username forwarded by that same user. A username node that
        ``getpwnam()`` resolved gets ``realuser = 1`` in the tree (:meth:`_expand_username`),
        so later nodes (inserted with 0) no longer match it: that is why a .forward loop
        (erin -> frank -> erin) runs until ``EXPAND_DEPTH``."""
        sameuser = kind == "username" and parent is not None and parent == value
        key = (kind, value, sameuser, ctx)
        if key in s.seen:
            return
        s.seen.add(key)
        s.nid += 1
        s.nodes.append((kind, value, depth, parent, ctx, s.nid, key))

    def _expansion_problem(self) -> str | None:
        """The errormsg of an expansion that failed (too deep, or to an empty delivery list):
        6.8 ``lka_session.c`` sets "524 5.2.4 Mailing list expansion problem"; 5.4.2 and 5.7.3
        set none, so ``lka_resume()`` sends its default "550 Invalid recipient" (the real
        5.4.2p1 forward-loop trace, tests/data/real-traces-5.4.2)."""
        return "524 5.2.4 Mailing list expansion problem" if self.behaviour.smtp_variant == "6.8" else None

    def _resume(self, s: _Session) -> None:
        """``lka_session.c:lka_resume()``: expand nodes until one waits on the parent or
        the list is empty, then submit the delivery list to queue or report the error."""
        while s.error is None and s.nodes:
            node = s.nodes.popleft()
            self._expand(s, *node)
            if s.waiting:
                return
        if s.error is None and not s.deliveries:
            s.error, s.errormsg = LKA_PERMFAIL, self._expansion_problem()
        del self.sessions[s.id]
        if s.error is not None:
            text = s.errormsg or ("550 Invalid recipient" if s.error == LKA_PERMFAIL
                                  else "451 Temporary failure")
            self.reply(s.m, "SMTP_EXPAND_RCPT", {"session": s.id, "status": s.error, "text": text},
                       length=12 + len(text) + 1)
            return
        for evp in s.deliveries:
            self.send("queue", "LKA_ENVELOPE_SUBMIT",
                      {"session": s.id, "envelope": evp, "reply_to": s.m.src_role},
                      length=9 + evp.approx_size())
        self.send("queue", "LKA_ENVELOPE_COMMIT", {"session": s.id, "reply_to": s.m.src_role})

    def _expand(self, s: _Session, kind: str, value: Any, depth: int, parent: str | None,
                ctx: int | None, nid: int, key: tuple[Any, ...]) -> None:
        """``lka_session.c:lka_expand()`` for EXPAND_ADDRESS and EXPAND_USERNAME nodes."""
        if depth >= EXPAND_DEPTH:
            s.error, s.errormsg = LKA_PERMFAIL, self._expansion_problem()
            return
        if kind == "address":
            local, _, domain = value.rpartition("@")
            rule = self.site.match(domain)  # ruleset.c:ruleset_match()
            if rule is None:
                s.error = LKA_PERMFAIL
                return
            if rule.action == "relay":
                self._submit(s, value, rule, None)
                return
            self._insert(s, "username", local.lower(), depth + 1, None, nid)
            return
        # EXPAND_USERNAME: aliases, then getpwnam, then ~/.forward
        user = value
        table = self.alias_table
        if parent is None and table is not None:
            if not table.params.blocking:  # what-if: the lookup goes out, the session waits
                s.waiting = True
                self._alias_lookups_async(s, user, depth, ctx, key)
                return
            if not self._alias_lookups(s, user):
                return
        self._expand_username(s, user, depth, parent, ctx, key)

    def _expand_username(self, s: _Session, user: str, depth: int, parent: str | None,
                         ctx: int | None, key: tuple[Any, ...]) -> None:
        """The rest of EXPAND_USERNAME once the alias table has answered."""
        if parent is None and user in self.site.aliases:  # aliases.c:aliases_get()
            for target in self.site.aliases[user]:
                target = target if "@" in target else f"{target}@{self._local_domain()}"
                self._insert(s, "address", target, depth + 1, None, ctx)
            return
        realuser = self.site.local_user(user)
        info = self.site.userinfo(realuser) if realuser else None
        if info is None:  # table_lookup(userbase, K_USERINFO) == 0
            s.error = LKA_PERMFAIL
            return
        s.seen.discard(key)  # xn->realuser = 1: the tree's node no longer equals new ones
        if parent == realuser:  # sameuser and the parent was forwarded: submit
            self._submit(s, f"{realuser}@{self._local_domain()}", self.site.match(self._local_domain()), realuser)
            return
        # no aliases found, query forward file: IMSG_LKA_OPEN_FORWARD to the parent
        s.waiting = True
        s.fwd = (ctx, key)  # lks->node = xn (its nearest address ancestor, for the .forward's nodes)
        self.forward_requests += 1
        self.send("parent", "LKA_OPEN_FORWARD",
                  {"session": s.id, "user": realuser, "uid": info.uid, "depth": depth})

    def _alias_lookups(self, s: _Session, user: str) -> bool:
        """``aliases.c:aliases_get()``: with an alias table configured every (non-sameuser)
        username is looked up in it, hit or miss; a tagged one (``user+tag``) first with its
        tag, then without unless that matched. Each ``table_lookup()`` costs what its
        backend says (model/tables/: a synchronous table process blocks the lka). False
        when a backend that errs on a missing key made ``lka_expand()`` tempfail."""
        table = self.alias_table
        assert table is not None
        hit = user in self.site.aliases
        table.lookup(self.proc, user)
        delim = self.site.spec.subaddress_delimiter
        if not hit and table.params.miss_tempfails:
            s.error, s.errormsg = LKA_TEMPFAIL, "424 4.2.4 Mailing list expansion problem"
            return False
        if delim and delim in user and not hit:
            table.lookup(self.proc, user.split(delim, 1)[0])
        return True

    def _alias_lookups_async(self, s: _Session, user: str, depth: int, ctx: int | None,
                             key: tuple[Any, ...]) -> None:
        """Not 6.8: the same lookups as :meth:`_alias_lookups` sent without blocking (a
        table with ``blocking = false``); the session goes on when the answers are in,
        the lka serves other work meanwhile."""
        table = self.alias_table
        assert table is not None
        hit = user in self.site.aliases
        delim = self.site.spec.subaddress_delimiter
        keys = [user] + ([user.split(delim, 1)[0]] if delim and delim in user and not hit else [])

        def answered(i: int) -> None:
            if self.sessions.get(s.id) is not s:
                return
            if not hit and table.params.miss_tempfails:
                s.error, s.errormsg = LKA_TEMPFAIL, "424 4.2.4 Mailing list expansion problem"
            elif i + 1 < len(keys):
                table.lookup_async(self.proc, keys[i + 1], lambda: answered(i + 1))
                return
            else:
                s.waiting = False
                self._expand_username(s, user, depth, None, ctx, key)
                if s.waiting:
                    return
            s.waiting = False
            self._resume(s)

        table.lookup_async(self.proc, keys[0], lambda: answered(0))

    def _local_domain(self) -> str:
        for d in self.site.domains.values():
            if d.action == "local":
                return d.name
        return self.site.hostname

    @handles("LKA_OPEN_FORWARD")
    def on_forward_reply(self, m: Imsg) -> None:
        """``lka_session.c:lka_session_forward_reply()``: no .forward → deliver to the
        user (``lka_submit()``); otherwise each line becomes a node."""
        req = m.payload
        s = self.sessions.get(req["session"])
        if s is None:
            return
        s.waiting = False
        user = req["user"]
        if req["status"] != 1:
            s.error = LKA_TEMPFAIL if req["status"] == -1 else LKA_PERMFAIL
        elif not req["forward"]:
            self._submit(s, f"{user}@{self._local_domain()}", self.site.match(self._local_domain()), user)
        else:
            info = self.site.userinfo(user)
            ctx = s.fwd[0]
            for target in info.forward if info else ():
                if "@" not in target:
                    self._insert(s, "username", target, req["depth"] + 1, user, ctx)
                else:
                    local, _, dom = target.rpartition("@")
                    rule = self.site.match(dom)
                    if rule is not None and rule.action == "local" and local == user:
                        self._insert(s, "username", local, req["depth"] + 1, user, ctx)
                    else:
                        self._insert(s, "address", target, req["depth"] + 1, user, ctx)
        self._resume(s)

    def _submit(self, s: _Session, dest: str, rule: Any, user: str | None) -> None:
        """``lka_session.c:lka_submit()``: a copy of the session's envelope for the delivery
        list, with its dest and agent: ``agent.mta.relay`` (the rule's relay host, none for
        MX delivery) or ``agent.mda`` (the local user, the method)."""
        evp = s.envelope.copy()
        evp.dest = dest
        if rule.action == "relay":
            evp.type = D_MTA
            if rule.via == "smarthost":  # `relay host smtp://h:p`, parsed into a relayhost
                host, _, port = rule.smarthost.partition(":")
                evp.mta_relay_hostname = host
                evp.mta_relay_port = int(port or 0)
            evp.mta_relay_tls = rule.tls
        else:
            evp.type = D_MDA
            evp.mda_user = user or ""
            evp.mda_method = rule.method
        s.deliveries.append(evp)

    # ---- mda / mta lookups ----------------------------------------------------------------------

    @handles("MDA_LOOKUP_USERINFO")
    def on_userinfo(self, m: Imsg) -> None:
        """``lka.c:lka_userinfo()``: K_USERINFO lookup in the user base table."""
        info = self.site.userinfo(m.payload["user"])
        self.reply(m, "MDA_LOOKUP_USERINFO",
                   {**m.payload, "status": LKA_OK if info else LKA_PERMFAIL,
                    "uid": info.uid if info else -1})
