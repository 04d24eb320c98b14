"""The workload (``scenarios/workloads/*.toml``): when clients arrive and what they send.

Validated with pydantic; the sessions it drives are in ``smtpd_sim.world.clients``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.spec.files import Strict, load_model, validate


class WorkloadError(SmtpdSimError):
    """An invalid workload file (one line)."""


class Arrival(Strict):
    """When sessions start."""

    process: Literal["poisson", "fixed", "replay", "closed"] = "poisson"
    rate_per_s: float = Field(default=50.0, gt=0)  # poisson / fixed
    csv: str = ""  # replay: a CSV with a `time` column (seconds), one row per session
    concurrency: int = Field(default=1, ge=1)  # closed: clients that reconnect at once
    max_open: int = Field(default=0, ge=0)  # open loop: at most this many sessions at once (0: no cap); others wait

    @model_validator(mode="after")
    def _replay_needs_csv(self) -> Arrival:
        if self.process == "replay" and not self.csv:
            raise ValueError("arrival.process = 'replay' needs arrival.csv")
        return self


class Mix(Strict):
    """What each session sends."""

    messages: int = Field(default=1, ge=1, le=1000)  # per session
    recipients: int = Field(default=1, ge=1, le=2000)  # per message
    local_share: float = Field(default=0.5, ge=0, le=1)  # probability a recipient is local
    size_bytes: int = Field(default=1024, ge=0)  # body size (mean for "exponential")
    size_distribution: Literal["fixed", "exponential"] = "fixed"
    local_users: list[str] = Field(default_factory=lambda: ["alice", "bob", "carol"])
    pick: Literal["random", "cycle"] = "random"  # cycle: local users in turn (deterministic probes)
    tls_share: float = Field(default=0.0, ge=0, le=1)  # sessions that connect to the STARTTLS listener and use it
    # misbehaving clients (shares of sessions, drawn from their own RNG stream)
    protocol_error_share: float = Field(default=0.0, ge=0, le=1)  # MAIL before EHLO, an unknown verb
    bad_rcpt_share: float = Field(default=0.0, ge=0, le=1)  # one unknown recipient before the real ones
    early_quit_share: float = Field(default=0.0, ge=0, le=1)  # QUIT right after EHLO
    local_domain: str = "local.test"
    relay_domain: str = "relay.test"
    sender: str = "sender@client.test"


class Remote(Strict):
    """The remote MX the relayed mail goes to (``smtpd_sim.world.remote_mx``)."""

    # offers STARTTLS: the mta's opportunistic TLS (mta_relay() sets RELAY_TLS_OPTIONAL for
    # MX relays, era-pony.md §3.4) then runs, with no ca traffic (no client pki)
    starttls: bool = False
    # certificates the MX presents, leaf included ("typ. c = 2", era-5.4.2-mfa.md §3, outbound variants)
    cert_chain: int = Field(default=2, ge=1, le=10)


class WorkloadSpec(Strict):
    name: str = "workload"
    description: str = ""
    arrival: Arrival = Field(default_factory=Arrival)
    mix: Mix = Field(default_factory=Mix)
    remote: Remote = Field(default_factory=Remote)
    sessions: int = Field(default=0, ge=0)  # stop arriving after this many (0 = use duration)
    duration_s: float = Field(default=10.0, gt=0)  # stop arriving after this time
    client_cpu_s: float = Field(default=0.0, ge=0)  # CPU per client event on the daemon's cores (load generator on the same host)
    client_addr: str = "127.0.0.1"
    helo: str = "client.local.test"


def load_workload(ref: str | Path) -> WorkloadSpec:
    """A workload by name (``scenarios/workloads/<name>.toml``) or path."""
    return load_model(ref, "workload", WorkloadSpec, WorkloadError)[1]


def parse_workload(data: dict[str, Any], where: str = "workload") -> WorkloadSpec:
    """A workload from an already-parsed table (a scenario's inline ``[workload]``)."""
    return validate(WorkloadSpec, data, where, WorkloadError)
