"""Queueing models built out of kernel processes, for ``test_theory.py``.

Every model here uses only the kernel's public pieces (``Kernel``, ``Process``,
``Channel``, ``call_later``) the way the daemon model does; nothing is re-implemented.

How a queueing station maps onto the kernel
--------------------------------------------
* A **station** (single FIFO server) is one ``Process`` with a core of its own: a customer
  is one inbox item, its service time is drawn in the handler and spent with
  ``proc.charge(s)`` (the handler-table cost is 0).  The kernel takes *everything* in the
  inbox when the process gets a core and runs it back to back, each item starting where the
  previous one ended (``proc.cursor``); what arrives meanwhile waits for the next run, which
  starts the instant the current one ends.  That is a work-conserving FIFO single server, so
  the end of a customer's handler (``proc.cursor`` after the charge) is its departure time.
* What a handler *sends* (``proc.send``/``proc.emit``) only leaves when the whole run ends
  (the write buffers are flushed after the batch).  A customer forwarded over a channel thus
  departs at the end of its *batch*, not of its own service.  Open and closed networks take
  a ``handoff`` argument:

  - ``"handler"``: the customer moves on when its own handler ends
    (``call_later(env, proc.cursor - env.now, next.post ...)``): the product-form (Jackson,
    MVA) assumption.
  - ``"channel"``: the customer is an imsg sent over a zero-latency ``Channel`` and leaves
    with the flush at the end of the run: what the daemon model does.
* **M/M/c** is ``Cpu(cores=c)`` itself: each customer is its own transient process with one
  item of Exp(mu) CPU.  The CPU's queue of processes is the M/M/c waiting line.  (``c``
  single-threaded worker processes fed round-robin would be ``c`` separate queues, not M/M/c.)

Random streams: one ``random.Random`` per purpose (arrivals, each *named* station's
services), so the i-th customer a station serves gets the same service time whatever the
handoff mode or the other stations: common random numbers for paired comparisons.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field
from typing import Any

from smtpd_sim.kernel.channel import Channel
from smtpd_sim.kernel.process import Kernel, Process, ProcessCosts
from smtpd_sim.kernel.sched import call_later
from smtpd_sim.observe.recorder import Recorder

# Student-t 0.975 quantiles by degrees of freedom
T975 = {4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 11: 2.201, 14: 2.145,
        19: 2.093, 29: 2.045}


def ci(xs: list[float]) -> tuple[float, float]:
    """Mean and Student-t 95 % half-width of independent replications."""
    m = statistics.fmean(xs)
    h = T975[len(xs) - 1] * statistics.stdev(xs) / len(xs) ** 0.5
    return m, h


# ---- deterministic anchor ------------------------------------------------------------------


class _Bouncer:
    """A role that sends every PING straight back until ``limit`` hops have been made."""

    name = "pp"

    def __init__(self, proc: Process, limit: int) -> None:
        self.proc = proc
        self.peer: Process | None = None
        self.limit = limit
        self.handlers = {"PING": _Bouncer.on_ping}

    def on_ping(self, m: Any) -> None:
        n = m.payload + 1  # hops made so far, this one included
        if n < self.limit:
            assert self.peer is not None
            self.proc.send(self.peer, "pp", "pp", "PING", "IMSG_PING", n, 0, False)


def ping_pong(hops: int, latency: float, cost: float, *,
              policy: str = "fifo") -> tuple[Kernel, dict[str, Process]]:
    """Two processes bounce one imsg ``hops`` times over a channel; each imsg handler costs
    ``cost``; the opening io event (``key="start"``) costs nothing.  Runs to the end;
    returns the kernel and the two processes by name."""
    k = Kernel(cores=2, policy=policy, observer=Recorder())  # type: ignore[arg-type]
    a = Process(k, "a", ProcessCosts(handler={"start": 0.0}, default=cost))
    b = Process(k, "b", ProcessCosts(handler={"start": 0.0}, default=cost))
    ch = Channel(k.clock, a, b, latency=latency)
    a.channels[b] = ch
    b.channels[a] = ch
    ra, rb = _Bouncer(a, hops), _Bouncer(b, hops)
    ra.peer, rb.peer = b, a
    a.add_role(ra)
    b.add_role(rb)
    a.post(lambda _x: a.send(b, "pp", "pp", "PING", "IMSG_PING", 0, 0, False), None, "start")
    k.env.run()
    return k, {"a": a, "b": b}


# ---- open networks of single-server stations --------------------------------------------------


@dataclass
class OpenResult:
    """One replication of an open network of single-server stations in series."""

    W: float  # mean sojourn: arrival -> end of the last station's handler (after warm-up)
    W_reply: float  # arrival -> when the last station's output leaves (end of its run)
    T: float  # simulated time when the last customer left
    X: float  # departures per unit time
    busy: list[float]  # busy_time / T per station
    cpu: list[float]  # cpu_time / T per station
    served: list[float]  # drawn service time / T per station
    runs: list[int]  # event-loop runs per station
    # with trace=True: per station, (customer, service time, handler end) in service order
    trace: list[list[tuple[int, float, float]]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # with trace=True


class _Customer:
    __slots__ = ("idx", "t0")

    def __init__(self, idx: int, t0: float) -> None:
        self.idx = idx
        self.t0 = t0


class _Station:
    """Role of one station: serve a customer (Exp service charged as CPU), pass it on."""

    name = "q"

    def __init__(self, net: Any, name: str, proc: Process, mu: float, seed: int) -> None:
        self.net = net
        self.proc = proc
        self.mu = mu
        self.rng = random.Random(f"{seed}:service:{name}")
        self.served = 0.0
        self.next: Process | None = None
        self.trace: list[tuple[int, float, float]] | None = None
        self.handlers = {"CUST": _Station.on_imsg}

    def on_imsg(self, m: Any) -> None:
        self.serve(m.payload)

    def serve(self, c: _Customer) -> None:
        s = self.rng.expovariate(self.mu)
        self.served += s
        proc = self.proc
        proc.charge(s)  # the cursor is now the end of this customer's service
        if self.trace is not None:
            self.trace.append((c.idx, s, proc.cursor))
        self.leave(c)

    def leave(self, c: _Customer) -> None:
        nxt = self.next
        proc = self.proc
        if nxt is None:
            self.net.done(c, proc.cursor)
            proc.emit(self.net.replied, c)  # the reply leaves when the run ends
        else:
            self.forward(c, nxt)

    def forward(self, c: _Customer, nxt: Process) -> None:
        proc = self.proc
        if self.net.handoff == "channel":
            proc.send(nxt, "q", "q", "CUST", "IMSG_CUST", c, 0, False)
        else:
            role = nxt.roles["q"]
            call_later(proc.env, proc.cursor - proc.env.now,
                       lambda _t: nxt.post(role.serve, c, "cust"))


class _OpenNet:
    def __init__(self, lam: float, mus: list[float], names: list[str], n: int, seed: int,
                 handoff: str, policy: str, warmup: float, trace: bool) -> None:
        if handoff not in ("handler", "channel"):
            raise ValueError(f"handoff must be 'handler' or 'channel', not {handoff!r}")
        self.handoff = handoff
        # a core per station: the stations are independent servers
        self.k = Kernel(cores=len(mus), policy=policy, observer=Recorder(rows=False))  # type: ignore[arg-type]
        self.procs = [Process(self.k, nm, ProcessCosts()) for nm in names]
        self.roles = [_Station(self, nm, p, mu, seed)
                      for nm, p, mu in zip(names, self.procs, mus, strict=True)]
        for p, r in zip(self.procs, self.roles, strict=True):
            p.add_role(r)
            if trace:
                r.trace = []
        for a, b, r in zip(self.procs, self.procs[1:], self.roles, strict=False):
            ch = Channel(self.k.clock, a, b, latency=0.0)
            a.channels[b] = ch
            b.channels[a] = ch
            r.next = b
        self.lam = lam
        self.n = n
        self.skip = int(n * warmup)
        self.arr = random.Random(f"{seed}:arrivals")
        self.arrivals: list[float] | None = [] if trace else None
        self.sojourn: list[float] = []
        self.reply: list[float] = []
        self.departures = 0

    def done(self, c: _Customer, t: float) -> None:
        self.departures += 1
        if c.idx >= self.skip:
            self.sojourn.append(t - c.t0)

    def replied(self, c: _Customer) -> None:
        if c.idx >= self.skip:
            self.reply.append(self.k.env.now - c.t0)

    def _arrive(self, t: Any) -> None:
        idx = t.arg
        env = self.k.env
        if self.arrivals is not None:
            self.arrivals.append(env.now)
        self.procs[0].post(self.roles[0].serve, _Customer(idx, env.now), "cust")
        if idx + 1 < self.n:
            call_later(env, self.arr.expovariate(self.lam), self._arrive, idx + 1)

    def run(self) -> OpenResult:
        env = self.k.env
        call_later(env, self.arr.expovariate(self.lam), self._arrive, 0)
        env.run()
        T = env.now
        return OpenResult(
            W=statistics.fmean(self.sojourn),
            W_reply=statistics.fmean(self.reply),
            T=T,
            X=self.departures / T,
            busy=[p.busy_time / T for p in self.procs],
            cpu=[p.cpu_time / T for p in self.procs],
            served=[r.served / T for r in self.roles],
            runs=[p.runs for p in self.procs],
            trace=[r.trace for r in self.roles if r.trace is not None],
            arrivals=self.arrivals or [],
        )


def open_series(lam: float, mus: list[float], n: int, seed: int, *,
                names: list[str] | None = None, handoff: str = "handler", policy: str = "fifo",
                warmup: float = 0.1, trace: bool = False) -> OpenResult:
    """Poisson(lam) arrivals through single-server stations with Exp(``mus``) services in
    series (one station: M/M/1).  ``n`` customers; the first ``warmup`` share is not
    measured; the run ends when the last customer has left."""
    names = names or [f"s{i}" for i in range(len(mus))]
    return _OpenNet(lam, mus, names, n, seed, handoff, policy, warmup, trace).run()


# ---- M/M/c: the CPU's cores are the servers --------------------------------------------------


@dataclass
class MmcResult:
    W: float  # mean sojourn after warm-up
    util: float  # CPU time of all customer processes / (c * T)
    T: float
    # with trace=True: (arrival, service time, end) per customer, in arrival order
    trace: list[tuple[float, float, float]] = field(default_factory=list)


def mmc_on_cores(lam: float, mu: float, c: int, n: int, seed: int, *, policy: str = "fifo",
                 warmup: float = 0.1, trace: bool = False) -> MmcResult:
    """Each customer is a transient process with one item of Exp(mu) CPU on ``Cpu(cores=c)``;
    it exits (leaves ``alive``) when its run is over."""
    k = Kernel(cores=c, policy=policy, observer=Recorder(rows=False))  # type: ignore[arg-type]
    env = k.env
    arr = random.Random(f"{seed}:arrivals")
    svc = random.Random(f"{seed}:service")
    skip = int(n * warmup)
    sojourn: list[float] = []
    rows: dict[int, tuple[float, float, float]] = {}
    cpu = [0.0]
    alive: dict[str, Process] = {}

    def exit_(p: Process) -> None:
        cpu[0] += p.cpu_time  # the kernel's own accounting of the run that just ended
        del alive[p.name]

    def arrive(t: Any) -> None:
        idx = t.arg
        p = alive[f"c{idx}"] = Process(k, f"c{idx}", ProcessCosts())
        t0 = env.now

        def serve(_x: Any) -> None:
            # drawn when the customer gets its core: the i-th customer served gets draw i
            s = svc.expovariate(mu)
            p.charge(s)
            if idx >= skip:
                sojourn.append(p.cursor - t0)
            if trace:
                rows[idx] = (t0, s, p.cursor)
            p.emit(exit_, p)

        p.post(serve, None, "cust")
        if idx + 1 < n:
            call_later(env, arr.expovariate(lam), arrive, idx + 1)

    call_later(env, arr.expovariate(lam), arrive, 0)
    env.run()
    T = env.now
    assert not alive, "every customer process has exited"
    return MmcResult(W=statistics.fmean(sojourn), util=cpu[0] / (c * T), T=T,
                     trace=[rows[i] for i in sorted(rows)])


# ---- closed cyclic network ------------------------------------------------------------------------


@dataclass
class ClosedResult:
    X: float  # cycles completed per unit time over the measured window
    R: float  # mean cycle time of the cycles started in the window
    util: list[float]  # cpu_time / window per station


class _ClosedStation(_Station):
    def leave(self, c: _Customer) -> None:
        nxt = self.next
        assert nxt is not None
        if nxt is self.net.procs[0]:
            self.net.cycle(c, self.proc.cursor)
        self.forward(c, nxt)


class _ClosedNet:
    def __init__(self, D: list[float], N: int, horizon: float, seed: int, handoff: str,
                 warmup: float) -> None:
        if handoff not in ("handler", "channel"):
            raise ValueError(f"handoff must be 'handler' or 'channel', not {handoff!r}")
        self.handoff = handoff
        self.k = Kernel(cores=len(D), policy="fifo", observer=Recorder(rows=False))
        self.procs = [Process(self.k, f"s{i}", ProcessCosts()) for i in range(len(D))]
        self.roles = [_ClosedStation(self, f"s{i}", p, 1.0 / d, seed)
                      for i, (p, d) in enumerate(zip(self.procs, D, strict=True))]
        for i, (p, r) in enumerate(zip(self.procs, self.roles, strict=True)):
            p.add_role(r)
            q = self.procs[(i + 1) % len(D)]
            ch = Channel(self.k.clock, p, q, latency=0.0)
            p.channels[q] = ch
            q.channels[p] = ch
            r.next = q
        self.N = N
        self.horizon = horizon
        self.t_warm = horizon * warmup
        self.cycles: list[float] = []
        self.completed = 0

    def cycle(self, c: _Customer, t_end: float) -> None:
        if self.t_warm < t_end <= self.horizon:
            self.completed += 1
            if c.t0 >= self.t_warm:
                self.cycles.append(t_end - c.t0)
        c.t0 = t_end

    def run(self) -> ClosedResult:
        env = self.k.env
        for i in range(self.N):
            self.procs[0].post(self.roles[0].serve, _Customer(i, 0.0), "cust")
        env.run(until=self.t_warm)
        cpu0 = [p.cpu_time for p in self.procs]
        env.run(until=self.horizon)
        span = self.horizon - self.t_warm
        return ClosedResult(
            X=self.completed / span,
            R=statistics.fmean(self.cycles),
            # cpu_time is added when a run ends: a run in progress at either edge of the
            # window is off by at most one service time
            util=[(p.cpu_time - c0) / span for p, c0 in zip(self.procs, cpu0, strict=True)],
        )


def closed_cycle(D: list[float], N: int, horizon: float, seed: int, *, handoff: str = "handler",
                 warmup: float = 0.1) -> ClosedResult:
    """``N`` customers cycle through single-server stations with Exp demands ``D`` (Z = 0);
    measured from ``warmup * horizon`` to ``horizon``."""
    return _ClosedNet(D, N, horizon, seed, handoff, warmup).run()
