"""The one run path: start-up → faults → clients → window → drain, and the result.

Every study runs the model through a :class:`Runner` (compare, run, sweep, calibrate,
bench, privsep, the notebooks, the live server), so a run starts and ends the same way
everywhere; each picks the steps it needs and how finely it watches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from smtpd_sim.observe.sketch import snapshot
from smtpd_sim.sim.faults import Faults
from smtpd_sim.sim.result import ProcessWindow, RunResult, Window
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import Scenario

PROBE_MAX_S = 600.0  # a probe that is not quiet after 10 simulated minutes is stuck


class Runner:
    """One run of a resolved scenario (``rows``/``stream``/``keep_body``: see
    :class:`~smtpd_sim.sim.simulation.Simulation`)."""

    def __init__(self, scenario: Scenario, *, rows: bool = False, stream: bool = False,
                 keep_body: bool = False) -> None:
        self.scenario = scenario
        self.sim = Simulation(scenario, rows=rows, stream=stream, keep_body=keep_body)
        self.t0 = 0.0
        self.faults: Faults | None = None
        self.samples: list[tuple[Any, ...]] = []
        self.window: Window | None = None

    @property
    def now(self) -> float:
        return self.sim.env.now

    # ---- the steps ------------------------------------------------------------------------

    def start(self, *, clients: bool = True, pause: Sequence[str] = ()) -> float:
        """The daemon's start-up (its counts forgotten), the scenario's faults armed from
        then on, ``smtpd -P`` pauses, and the clients; returns when they start (``t0``)."""
        sim = self.sim
        sim.startup()
        self.t0 = t0 = sim.env.now
        for agent in pause:
            sim.roles["scheduler"].start_paused(agent)
        if self.scenario.faults:
            self.faults = Faults(sim, list(self.scenario.faults), t0)
        if clients:
            sim.start_clients(t0)
        return t0

    def start_clients(self) -> None:
        """The clients start now (after ``start(clients=False)``: e.g. once a clock is read)."""
        self.sim.start_clients()

    def run_to(self, until: float) -> None:
        """Advance to ``until`` in one go."""
        self.sim.env.run(until=until)

    def measure(self, until: float) -> Window:
        """Advance to ``until`` and return what happened meanwhile (the load window, with no
        crash in it: the per-process figures are differences of one incarnation's); the
        ledger counts messages delivered by ``until`` as delivered in the window."""
        sim = self.sim
        start = sim.env.now
        before = self._snap()
        sim.ledger.window_end = until
        sim.env.run(until=until)
        after = self._snap()
        procs = {n: _delta(after[0][n], before[0][n]) for n in before[0]}
        client = _delta(after[1], before[1]) if before[1] is not None and after[1] is not None else None
        stat_set = sum(n for (_s, _d, name), n in sim.recorder.stat_counts.items() if name.endswith("STAT_SET"))
        self.window = Window(
            start=start, end=sim.env.now, processes=procs, client=client,
            accepted=after[2] - before[2], children_cpu=after[3] - before[3], forks=after[4] - before[4],
            latency=snapshot(sim.clients.latency), sessions=snapshot(sim.clients.sessions),
            background_stat_hops=stat_set)
        return self.window

    def _snap(self) -> tuple[dict[str, ProcessWindow], ProcessWindow | None, int, float, int]:
        sim = self.sim
        procs = {n: ProcessWindow(p.busy_time, p.cpu_time, p.runs, p.handled) for n, p in sim.procs.items()}
        c = sim.client_proc
        client = ProcessWindow(c.busy_time, c.cpu_time, c.runs, c.handled) if c is not None else None
        parent = sim.roles["parent"].counters()
        return procs, client, sim.ledger.accepted_msgs, parent["children_cpu_s"], int(parent["forks"])

    def drain(self, until: float, *, step: float = 0.25,
              on_step: Callable[[bool], None] | None = None) -> None:
        """Advance ``step`` by ``step`` (possibly past ``until``) until the daemon is quiet
        (``Simulation.quiet()``) or ``until`` is reached; ``on_step(quiet)`` after each."""
        self.sim.run_until_quiet(until, step, on_step)

    def sample(self, end: float, *, every: float, quiet_after: float,
               progress: Callable[[float, float], None] | None = None) -> None:
        """Advance to ``end`` sampling the queue every ``every`` seconds (the time series of
        ``smtpd-sim run``); stop early once past ``quiet_after`` and quiet."""
        sim = self.sim
        env = sim.env
        t0 = self.t0
        while env.now < end:
            env.run(until=min(end, env.now + every))
            self.samples.append(self._sample())
            if progress:
                progress(env.now - t0, end - t0)
            if env.now >= quiet_after and sim.quiet():
                break

    def _sample(self) -> tuple[Any, ...]:
        sim = self.sim
        led = sim.ledger
        c = sim.roles["scheduler"].counters() if not sim.down else {}
        return (sim.env.now - self.t0, led.in_flight, c.get("pending", 0), c.get("inflight", 0), c.get("held", 0),
                led.accepted_msgs,
                led.counts["delivered"], led.counts["bounced"], led.counts["expired"],
                sim.fleet.open if sim.fleet else 0, int(sim.down))

    # ---- the result -------------------------------------------------------------------------

    def result(self) -> RunResult:
        """Everything the run measured, detached from the simulation."""
        sim = self.sim
        led = sim.ledger
        rec = sim.recorder
        counters = sim.counters()
        return RunResult(
            name=self.scenario.name, era=self.scenario.era, seed=self.scenario.seed,
            t0=self.t0, end=sim.env.now, config=self.scenario.config(),
            ledger=led.summary(sim.queued_on_disk(), crashes=any(f.kind == "crash" for f in self.scenario.faults)),
            tempfails=led.tempfails, warnings=led.warnings,
            bounces={"generated": led.bounces_created, "delivered": led.bounces_sent,
                     "failed": led.bounces_failed,
                     "double_bounces_dropped": int(counters["queue"]["double_bounces"])},
            restarts=sim.restarts, refused_sessions=sim.clients.refused,
            accepted_messages=led.accepted_msgs, delivered_in_window=led.delivered_in_window,
            counters=counters, processes=sim.process_totals(), cores=sim.kernel.cpu.cores,
            filter_lines=sum(fp.queries + fp.reports for fp in sim.filter_procs.values()),
            tables={name: table.stats() for name, table in sim.tables.items()},
            hop_counts=rec.hop_counts, stat_counts=rec.stat_counts,
            hops=list(rec.hops), runs=list(rec.runs), events=list(rec.events),
            messages=None if sim.stream else led.records,
            delivery_delays=led.delivery_delays, latency=sim.clients.latency, sessions=sim.clients.sessions,
            samples=self.samples, window=self.window)


def _delta(after: ProcessWindow, before: ProcessWindow) -> ProcessWindow:
    return ProcessWindow(after.busy - before.busy, after.cpu - before.cpu, after.runs - before.runs,
                         after.handled - before.handled)


def probe(scenario: Scenario, *, rows: bool = True, payloads: bool = False) -> Runner:
    """A probe: the scenario's few sessions run to quiescence (at most ``PROBE_MAX_S``);
    ``payloads`` also keeps a summary of each hop's payload (``sim.recorder.payloads``)."""
    runner = Runner(scenario, rows=rows)
    if payloads and rows:
        runner.sim.recorder.payloads = {}
    runner.start()
    runner.drain(PROBE_MAX_S)
    return runner
