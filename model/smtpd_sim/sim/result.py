"""What a run leaves behind: its tables, counters and resolved configuration, so that
reports, files and figures need no live simulation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smtpd_sim.observe.recorder import EventRow, HopRow, RunRow
from smtpd_sim.observe.sketch import Samples


@dataclass(frozen=True)
class ProcessWindow:
    """One process over a window: busy (handling, CPU or blocked) and CPU seconds, event-loop
    runs and items handled."""

    busy: float
    cpu: float
    runs: int
    handled: int


@dataclass(frozen=True)
class Window:
    """What the daemon did between ``start`` and ``end`` (simulated seconds): per process,
    per accepted message, and what the clients saw up to ``end``."""

    start: float
    end: float
    processes: dict[str, ProcessWindow]
    client: ProcessWindow | None  # the load generator on the daemon's cores, if any
    accepted: int
    children_cpu: float  # the parent's delivery agents (cutime + cstime)
    forks: int
    latency: Samples  # DATA-end -> 250, every message so far
    sessions: Samples  # session lengths so far
    background_stat_hops: int  # IMSG_STAT_SET of the 5.4.2 1-s timers, so far

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass
class RunResult:
    """A finished run: the ledger, counters, recorder tables, client samples, config.

    ``hops``/``runs``/``events`` are empty unless the run recorded rows; ``messages``
    (per accepted envelope: msgid, accepted at, state, ended at, tempfails) is None for a
    streaming run."""

    name: str
    era: str
    seed: int
    t0: float  # when the clients started (after the daemon's start-up)
    end: float
    config: dict[str, Any]
    ledger: dict[str, int]
    tempfails: int
    warnings: int
    bounces: dict[str, int]
    restarts: int
    refused_sessions: int
    accepted_messages: int
    delivered_in_window: int
    counters: dict[str, dict[str, float]]  # by role (Role.counters())
    processes: dict[str, dict[str, float]]  # cpu and busy seconds, every incarnation
    cores: int
    filter_lines: int  # lines lka exchanged with 6.8 filter processors (not imsgs)
    tables: dict[str, dict[str, Any]]  # what each of the lka's tables did (Table.stats())
    hop_counts: dict[tuple[str, str, str], int]
    stat_counts: dict[tuple[str, str, str], int]
    hops: list[HopRow] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    messages: dict[int, list[Any]] | None = None
    delivery_delays: Samples = field(default_factory=list)
    latency: Samples = field(default_factory=list)
    sessions: Samples = field(default_factory=list)
    samples: list[tuple[Any, ...]] = field(default_factory=list)  # the time series, if sampled
    window: Window | None = None

    @property
    def simulated_s(self) -> float:
        return self.end - self.t0
