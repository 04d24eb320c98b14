"""The site: what smtpd.conf, /etc/passwd, aliases and ~/.forward say (the lka's tables).

The default site (``scenarios/sites/research.toml``) is the configuration the real
6.8.0p2 traces were taken with (research/real-traces/smtpd.conf): hostname
``mx.local.test``, local domain ``local.test`` (users alice, bob, carol, dave), relayed
domain ``relay.test`` through a smarthost, everything else refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smtpd_sim.spec.files import load_model
from smtpd_sim.tables.spec import TableSpec, check_table_names

# what the delivery agent does for a user (smtpd_sim.world.delivery_agent.Status)
Mailbox = Literal["ok", "tempfail", "permfail"]


class SiteError(ValueError):
    """An invalid site file (one line)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Domain(_Strict):
    """A `match ... for domain X action Y` rule."""

    name: str
    action: Literal["local", "relay"]
    method: Literal["maildir", "mbox", "mda", "lmtp"] = "maildir"
    via: Literal["mx", "smarthost"] = "mx"  # relay: MX lookup, or `relay host smtp://h:p`
    smarthost: str = ""  # host:port for via = "smarthost"
    tls: Literal["optional", "plain", "required"] = "optional"  # opportunistic by default for MX relays


class User(_Strict):
    """A system user (getpwnam) with an optional ~/.forward and a mailbox state."""

    name: str = Field(pattern=r"^[a-z_][a-z0-9_.-]*$")
    uid: int = 1000
    forward: list[str] = Field(default_factory=list)  # addresses in ~/.forward; [] = no file
    mailbox: Mailbox = "ok"  # what the delivery agent will do


class DnsRecords(_Strict):
    """Answers of the resolver (a hosts file or a DNS zone)."""

    ptr: dict[str, str] = Field(default_factory=lambda: {"127.0.0.1": "localhost"})
    a: dict[str, list[str]] = Field(default_factory=lambda: {"localhost": ["127.0.0.1"]})
    mx: dict[str, list[str]] = Field(default_factory=dict)  # domain -> MX host names (by preference)


class SiteSpec(_Strict):
    hostname: str = "mx.local.test"
    domain: list[Domain] = Field(default_factory=list)
    user: list[User] = Field(default_factory=list)
    aliases: dict[str, list[str]] = Field(default_factory=dict)
    subaddress_delimiter: str = "+"
    dns: DnsRecords = Field(default_factory=DnsRecords)
    tables: dict[str, TableSpec] = Field(default_factory=dict)  # `table aliases sqlite:...` (model/tables/)

    @field_validator("tables")
    @classmethod
    def _tables(cls, v: dict[str, TableSpec]) -> dict[str, TableSpec]:
        return check_table_names(v)


class Site:
    """Lookups the lka and parent roles make against the site's tables."""

    def __init__(self, spec: SiteSpec, path: Path | None = None) -> None:
        self.spec = spec
        self.path = path
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


def load_site(ref: str | Path = "research") -> Site:
    """Load a site by name (``scenarios/sites/<name>.toml``) or path."""
    p, spec = load_model(ref, "sites", "site", SiteSpec, SiteError)
    return Site(spec, p)
