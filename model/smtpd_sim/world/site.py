"""The site as the daemon's lookups see it: smtpd.conf rules, /etc/passwd, aliases, DNS
records, and the state of each mailbox (an operator may break or repair one during a run).

The data comes from a site file (``smtpd_sim.spec.site``); this object answers the lka's
and the parent's lookups and keeps what changes while the simulation runs.
"""

from __future__ import annotations

from smtpd_sim.spec.site import Domain, Mailbox, SiteSpec, User


class Site:
    """Lookups the lka and parent roles make against the site's tables."""

    def __init__(self, spec: SiteSpec) -> None:
        self.spec = spec
        self.hostname = spec.hostname
        self.domains = {d.name.lower(): d for d in spec.domain}
        self.users = {u.name: u for u in spec.user}
        self.aliases = {k.lower(): v for k, v in spec.aliases.items()}
        self.dns = spec.dns
        self.broken: dict[str, Mailbox] = {}  # user -> "ok" | "tempfail" | "permfail" overrides

    def match(self, domain: str) -> Domain | None:
        """``ruleset.c:ruleset_match()`` reduced to `for domain` rules; None = no rule."""
        return self.domains.get(domain.lower())

    def local_user(self, local: str) -> str | None:
        """Strip the sub-address (`alice+tag` → `alice`) as ``lka_expand()`` does."""
        user = local.split(self.spec.subaddress_delimiter, 1)[0].lower() if local else local
        return user

    def mailbox(self, name: str) -> Mailbox:
        """What the delivery agent will do for this user now (an operator may break or
        repair a maildir during a run: ``broken``)."""
        if name in self.broken:
            return self.broken[name]
        u = self.users.get(name)
        return u.mailbox if u is not None else "permfail"

    def userinfo(self, name: str) -> User | None:
        """``table_getpwnam`` K_USERINFO lookup."""
        return self.users.get(name)
