"""The workload (``scenarios/workloads/*.toml``): when clients arrive and what they send.

Validated with pydantic; the sessions it drives are in ``smtpd_sim.world.clients``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.spec.files import Strict, load_model, validate
from smtpd_sim.spec.limits import (
    MAX_CLIENTS,
    MAX_COST_S,
    MAX_RATE_PER_S,
    MAX_SESSIONS,
    MAX_SIZE_BYTES,
    MAX_TIME_S,
)


class WorkloadError(SmtpdSimError):
    """An invalid workload file (one line)."""


class Arrival(Strict):
    """When sessions start."""

    process: Literal["poisson", "fixed", "replay", "closed"] = Field(
        default="poisson", description="poisson: exponential gaps at rate_per_s; fixed: evenly spaced at "
        "rate_per_s; replay: the times in csv; closed: `concurrency` clients that reconnect as soon as a "
        "session ends")
    rate_per_s: float = Field(default=50.0, gt=0, le=MAX_RATE_PER_S,
                              description="new sessions per second (poisson and fixed)")
    csv: str = Field(default="", description="replay: a CSV file with a `time` column (seconds from the start), "
                     "one row per session")
    times: list[float] = Field(default_factory=list, max_length=MAX_SESSIONS,
                               description="replay: the session start times themselves (seconds from the "
                               "start), instead of csv; a sweep ships a replay's csv to its workers this way",
                               json_schema_extra={"unit": "s"})
    concurrency: int = Field(default=1, ge=1, le=MAX_CLIENTS, description="closed: clients connected at once, "
                             "each reconnecting when its session ends", json_schema_extra={"unit": "clients"})
    max_open: int = Field(default=0, ge=0, le=MAX_CLIENTS, description="open loop: at most this many sessions "
                          "at once, the others wait (0: no cap)", json_schema_extra={"unit": "sessions"})

    @model_validator(mode="after")
    def _replay_needs_csv(self) -> Arrival:
        if self.process == "replay" and not self.times:
            if not self.csv:
                raise ValueError("arrival.process = 'replay' needs arrival.csv (or arrival.times)")
            check_replay_csv(self.csv)
        bad = next((t for t in self.times if not 0 <= t <= MAX_TIME_S), None)
        if bad is not None:
            raise ValueError(f"arrival.times: {bad!r} outside 0 <= x <= {MAX_TIME_S:g}")
        return self


def read_replay_csv(path: str) -> list[float]:
    """The session start times of a replay CSV (its ``time`` column), sorted."""
    with open(path, newline="", encoding="utf-8") as fh:
        return sorted(float(row["time"]) for row in csv.DictReader(fh))


def check_replay_csv(path: str) -> None:
    """A replay CSV the clients can read (``smtpd_sim.world.clients`` opens it): a ``time``
    column of finite seconds >= 0, at most MAX_SESSIONS rows; else a one-line ValueError."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if "time" not in (reader.fieldnames or []):
                raise ValueError(f"arrival.csv {path}: no `time` column (got {reader.fieldnames})")
            for i, row in enumerate(reader, start=2):
                try:
                    t = float(row["time"] or "")
                except ValueError:
                    raise ValueError(f"arrival.csv {path}: line {i}: time {row['time']!r} is not a number") from None
                if not (0 <= t <= MAX_TIME_S):
                    raise ValueError(f"arrival.csv {path}: line {i}: time {t!r} outside 0 <= x <= {MAX_TIME_S:g}")
                if i > MAX_SESSIONS + 1:
                    raise ValueError(f"arrival.csv {path}: more than {MAX_SESSIONS:.0e} sessions")
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"arrival.csv {path}: cannot read it ({getattr(e, 'strerror', None) or e})") from None


class Mix(Strict):
    """What each session sends."""

    messages: int = Field(default=1, ge=1, le=1000, description="messages sent in each session",
                          json_schema_extra={"unit": "messages"})
    recipients: int = Field(default=1, ge=1, le=2000, description="recipients (RCPT TO) of each message",
                            json_schema_extra={"unit": "recipients"})
    recipients_max: int = Field(default=0, ge=0, le=2000, description="above recipients: each message "
                                "has recipients..recipients_max recipients, uniformly, drawn from their own "
                                "RNG stream (0: always recipients)", json_schema_extra={"unit": "recipients"})
    local_share: float = Field(default=0.5, ge=0, le=1, description="probability that a recipient is a local "
                               "user (else a relayed address)")
    size_bytes: int = Field(default=1024, ge=0, le=MAX_SIZE_BYTES, description="message body size (the mean "
                            "for size_distribution = exponential)")
    size_distribution: Literal["fixed", "exponential"] = Field(default="fixed", description="body sizes: all "
                                                               "size_bytes, or exponential with that mean")
    local_users: list[str] = Field(default_factory=lambda: ["alice", "bob", "carol"],
                                   description="the local users recipients are drawn from (users of the site)")
    pick: Literal["random", "cycle"] = Field(default="random", description="how local users are picked: at "
                                             "random, or in turn (deterministic probes)")
    tls_share: float = Field(default=0.0, ge=0, le=1, description="share of sessions that connect to the "
                             "STARTTLS listener and use it")
    # misbehaving clients (shares of sessions, drawn from their own RNG stream)
    protocol_error_share: float = Field(default=0.0, ge=0, le=1, description="share of sessions that misbehave: "
                                        "MAIL before EHLO, an unknown verb")
    bad_rcpt_share: float = Field(default=0.0, ge=0, le=1, description="share of sessions that give one unknown "
                                  "recipient before the real ones")
    early_quit_share: float = Field(default=0.0, ge=0, le=1, description="share of sessions that QUIT right "
                                    "after EHLO")
    local_domain: str = Field(default="local.test", description="domain of the local recipients' addresses")
    relay_domain: str = Field(default="relay.test", description="domain of the relayed recipients' addresses")
    relay_domains: list[str] = Field(default_factory=list, description="when given, each relayed recipient's "
                                     "domain is drawn from these, uniformly (their own RNG stream), instead "
                                     "of relay_domain; the site must relay and resolve each")
    sender: str = Field(default="sender@client.test", description="MAIL FROM address of every message")

    @model_validator(mode="after")
    def _someone_local(self) -> Mix:
        if self.local_share > 0 and not self.local_users:  # the clients draw from it (random.choice)
            raise ValueError("local_users: empty, but local_share > 0 sends to local users (name one, "
                             "or set local_share = 0)")
        if self.recipients_max and self.recipients_max < self.recipients:
            raise ValueError(f"recipients_max: {self.recipients_max} is below recipients "
                             f"({self.recipients}); give 0 or at least recipients")
        return self

    @property
    def most_recipients(self) -> int:
        """The most recipients a message can have."""
        return max(self.recipients, self.recipients_max)


class Remote(Strict):
    """The remote MX the relayed mail goes to (``smtpd_sim.world.remote_mx``)."""

    # offers STARTTLS: the mta's opportunistic TLS (mta_relay() sets RELAY_TLS_OPTIONAL for
    # MX relays, era-pony.md §3.4) then runs, with no ca traffic (no client pki)
    starttls: bool = Field(default=False, description="the remote MX offers STARTTLS (the mta then uses "
                           "opportunistic TLS)")
    # certificates the MX presents, leaf included ("typ. c = 2", era-5.4.2-mfa.md §3, outbound variants)
    cert_chain: int = Field(default=2, ge=1, le=10, description="certificates the remote MX presents, leaf "
                            "included", json_schema_extra={"unit": "certificates"})
    # announces DSN in its EHLO reply: the mta then sends NOTIFY=/ORCPT= and the queue
    # leaves a success notice to the MX (queue.c IMSG_MTA_DELIVERY_OK, MTA_EXT_DSN)
    dsn: bool = Field(default=False, description="the remote MX announces DSN (RFC 3461) in its EHLO "
                      "reply")


class WorkloadSpec(Strict):
    """A workload file: arrivals, what each session sends, the remote MX."""

    name: str = Field(default="workload", description="the workload's name")
    description: str = Field(default="", description="one line saying what the load is "
                             "(`smtpd-sim scenarios` shows it)")
    arrival: Arrival = Field(default_factory=Arrival, description="[arrival]: when sessions start")
    mix: Mix = Field(default_factory=Mix, description="[mix]: what each session sends")
    remote: Remote = Field(default_factory=Remote, description="[remote]: the remote MX relayed mail goes to")
    sessions: int = Field(default=0, ge=0, le=MAX_SESSIONS, description="stop arriving after this many "
                          "sessions (0: arrive for duration_s)", json_schema_extra={"unit": "sessions"})
    duration_s: float = Field(default=10.0, gt=0, le=MAX_TIME_S, description="arrival window")
    client_cpu_s: float = Field(default=0.0, ge=0, le=MAX_COST_S, description="CPU per client event on the "
                                "daemon's cores (a load generator on the same host)")
    client_addr: str = Field(default="127.0.0.1", description="the clients' IP address (what the daemon's "
                             "resolver looks up)")
    helo: str = Field(default="client.local.test", description="the name the clients give in EHLO")

    @model_validator(mode="after")
    def _finite_work(self) -> WorkloadSpec:
        """An open loop offers rate x duration sessions (``sessions`` caps them); with the
        messages and recipients of each, at most MAX_SESSIONS recipients a run."""
        if self.arrival.process not in ("poisson", "fixed"):
            return self
        sessions = self.arrival.rate_per_s * self.duration_s
        if self.sessions:
            sessions = min(sessions, self.sessions)
        offered = sessions * self.mix.messages * self.mix.most_recipients
        if offered > MAX_SESSIONS:
            raise ValueError(
                f"arrival.rate_per_s x duration_s (or sessions) x mix.messages x mix.recipients = "
                f"{offered:.3g} recipients offered; at most {MAX_SESSIONS:.0e} a run (lower one of them)")
        return self


def load_workload(ref: str | Path) -> WorkloadSpec:
    """A workload by name (``scenarios/workloads/<name>.toml``) or path."""
    return load_model(ref, "workload", WorkloadSpec, WorkloadError)[1]


def parse_workload(data: dict[str, Any], where: str = "workload") -> WorkloadSpec:
    """A workload from an already-parsed table (a scenario's inline ``[workload]``)."""
    return validate(WorkloadSpec, data, where, WorkloadError)
