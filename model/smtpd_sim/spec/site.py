"""The site: what smtpd.conf, /etc/passwd, aliases and ~/.forward say (the lka's tables).

The default site (``scenarios/sites/research.toml``) is the configuration the real
6.8.0p2 traces were taken with (research/real-traces/smtpd.conf): hostname
``mx.local.test``, local domain ``local.test`` (users alice, bob, carol, dave), relayed
domain ``relay.test`` through a smarthost, everything else refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.spec.files import Strict, load_model
from smtpd_sim.spec.limits import MAX_PORT
from smtpd_sim.spec.tables import TableSpec, check_table_names

# what the delivery agent does for a user (smtpd_sim.world.delivery_agent.Status)
Mailbox = Literal["ok", "tempfail", "permfail"]


class SiteError(SmtpdSimError):
    """An invalid site file (one line)."""


class Domain(Strict):
    """A `match ... for domain X action Y` rule."""

    name: str = Field(description="the domain the rule matches (`for domain X`)")
    action: Literal["local", "relay"] = Field(description="deliver to local users, or relay to another host")
    method: Literal["maildir", "mbox", "mda", "lmtp"] = Field(default="maildir", description="local: how the "
                                                              "delivery agent delivers")
    via: Literal["mx", "smarthost"] = Field(default="mx", description="relay: by MX lookup, or through "
                                            "`relay host smtp://host:port`")
    smarthost: str = Field(default="", description="host or host:port for via = smarthost")
    tls: Literal["optional", "plain", "required"] = Field(default="optional", description="relay: TLS to the "
                                                          "next hop (opportunistic by default for MX relays)")

    @model_validator(mode="after")
    def _smarthost(self) -> Domain:
        """``relay host smtp://host:port`` names a host and a TCP port (parse.y's relay URL)."""
        if self.action == "relay" and self.via == "smarthost" and not self.smarthost:
            raise ValueError("via = 'smarthost' needs smarthost = 'host:port'")
        if self.smarthost:
            host, colon, port = self.smarthost.partition(":")  # as the lka splits it (roles/lka.py _submit)
            bad_port = colon and not (port.isdigit() and 1 <= int(port) <= MAX_PORT)
            if not host or any(c.isspace() for c in host) or bad_port:
                raise ValueError(f"smarthost: {self.smarthost!r} is not host or host:port (port 1 to {MAX_PORT})")
        return self


class User(Strict):
    """A system user (getpwnam) with an optional ~/.forward and a mailbox state."""

    name: str = Field(pattern=r"^[a-z_][a-z0-9_.-]*$", description="login name (getpwnam)")
    # a uid_t; (uid_t)-1 means none
    uid: int = Field(default=1000, ge=0, le=4_294_967_294, description="user id", json_schema_extra={"unit": "-"})
    forward: list[str] = Field(default_factory=list, description="addresses in ~/.forward ([]: no file)")
    mailbox: Mailbox = Field(default="ok", description="what the delivery agent does for this user: deliver, "
                             "exit EX_TEMPFAIL, or fail permanently")


class DnsRecords(Strict):
    """Answers of the resolver (a hosts file or a DNS zone)."""

    ptr: dict[str, str] = Field(default_factory=lambda: {"127.0.0.1": "localhost"},
                                description="address -> name (reverse lookups)")
    a: dict[str, list[str]] = Field(default_factory=lambda: {"localhost": ["127.0.0.1"]},
                                    description="name -> addresses (forward lookups)")
    mx: dict[str, list[str]] = Field(default_factory=dict, description="domain -> MX host names, by preference")


class SiteSpec(Strict):
    """A site file: the daemon's configuration and the host's users, aliases and DNS."""

    description: str = Field(default="", description="one line saying what the site is "
                             "(`smtpd-sim scenarios` shows it)")
    # smtpd.conf `hostname`; the session's banner name (fsm SessionConfig: HOST_NAME_MAX, 255)
    hostname: str = Field(default="mx.local.test", min_length=1, max_length=255,
                          description="smtpd.conf `hostname`: the name in the banner and Received: headers")
    domain: list[Domain] = Field(default_factory=list, description="[[domain]]: `match ... for domain X "
                                 "action Y` rules")
    user: list[User] = Field(default_factory=list, description="[[user]]: the system users (getpwnam)")
    aliases: dict[str, list[str]] = Field(default_factory=dict, description="/etc/aliases: name -> addresses")
    subaddress_delimiter: str = Field(default="+", description="smtpd.conf `subaddressing-delimiter`: one "
                                      "printable character, not a space or '@'")
    dns: DnsRecords = Field(default_factory=DnsRecords, description="[dns]: what the resolver answers")
    tables: dict[str, TableSpec] = Field(default_factory=dict, description="[tables.<name>]: `table aliases "
                                         "sqlite:...` and its lookup costs (see section tables)")

    @field_validator("subaddress_delimiter")
    @classmethod
    def _delimiter(cls, v: str) -> str:
        """6.8.0p2 parse.y `subaddressing-delimiter`: one printable character, not a space or '@'."""
        if len(v) != 1:
            raise ValueError(f"{v!r}: must be one character (parse.y: subaddressing-delimiter)")
        if v.isspace() or not v.isprintable() or v == "@":
            raise ValueError(f"{v!r}: a space, '@' or an unprintable character cannot delimit a tag")
        return v

    @field_validator("tables")
    @classmethod
    def _tables(cls, v: dict[str, TableSpec]) -> dict[str, TableSpec]:
        return check_table_names(v)


def load_site(ref: str | Path | SiteSpec) -> SiteSpec:
    """Load a site by name (``scenarios/sites/<name>.toml``) or path (one already loaded, e.g.
    inline in a scenario, as is)."""
    if isinstance(ref, SiteSpec):
        return ref
    return load_model(ref, "site", SiteSpec, SiteError)[1]
