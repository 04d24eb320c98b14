"""The resolver lka talks to (libasr, async): hosts-file or DNS answers after a latency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smtpd_sim.kernel.process import Process
from smtpd_sim.world.site import Site


class Resolver:
    """Answers PTR, A and MX queries from the site's records; the answer is an io event for lka."""

    def __init__(self, site: Site, latency: float) -> None:
        self.site = site
        self.latency = latency
        self.queries = 0
        self.failing = False  # a DNS outage (fault injection)

    def _answer(self, proc: Process, fn: Callable[[Any], Any], value: Any) -> None:
        self.queries += 1
        proc.timer(self.latency, fn, value, key="lka.dns")

    def ptr(self, proc: Process, addr: str, fn: Callable[[Any], Any]) -> None:
        """``getnameinfo_async()``: name or None."""
        name = None if self.failing else self.site.dns.ptr.get(addr)
        self._answer(proc, fn, name)

    def addrinfo(self, proc: Process, host: str, fn: Callable[[Any], Any]) -> None:
        """``getaddrinfo_async()``: list of addresses (empty = not found)."""
        addrs = [] if self.failing else list(self.site.dns.a.get(host, []))
        self._answer(proc, fn, addrs)

    def mx(self, proc: Process, domain: str, fn: Callable[[Any], Any]) -> None:
        """``res_query_async(T_MX)`` then ``getaddrinfo_async()`` per MX: [(addr, pref)] or None on error."""
        if self.failing:
            self._answer(proc, fn, None)
            return
        hosts = self.site.dns.mx.get(domain)
        if hosts is None:
            hosts = [domain]  # no MX: the domain itself, preference 0 (dns.c:dns_dispatch_mx())
        out = []
        for pref, h in enumerate(hosts):
            for a in self.site.dns.a.get(h, []):
                out.append((a, pref * 10))
        self._answer(proc, fn, out)
