"""The simulated event loop: read-all-available, flush-after-run, FIFO, blocking, CPU."""

from __future__ import annotations

from typing import Any

import pytest

from smtpd_sim.kernel.channel import Channel
from smtpd_sim.kernel.process import Kernel, ModelError, Process, ProcessCosts
from smtpd_sim.kernel.sched import call_later


class Echo:
    """A role that records what it handles and optionally answers."""

    name = "echo"

    def __init__(self, proc: Process, peer: Process | None = None, answer: bool = False) -> None:
        self.proc = proc
        self.peer = peer
        self.answer = answer
        self.seen: list[tuple[float, str, Any]] = []
        self.handlers = {"PING": Echo.on_ping, "PONG": Echo.on_ping}

    def on_ping(self, m: Any) -> None:
        self.seen.append((m.dst.cursor, m.kind, m.payload))
        if self.answer and self.peer is not None:
            self.proc.send(self.peer, "echo", "echo", "PONG", "IMSG_PONG", m.payload, 8, False)


def wire(kernel: Kernel, latency: float = 1e-3, cost: float = 0.0, wake: float = 0.0):
    a = Process(kernel, "a", ProcessCosts(wake=wake, default=cost))
    b = Process(kernel, "b", ProcessCosts(wake=wake, default=cost))
    ch = Channel(kernel.clock, a, b, latency=latency)
    a.channels[b] = ch
    b.channels[a] = ch
    ra, rb = Echo(a, b), Echo(b, a)
    a.add_role(ra)
    b.add_role(rb)
    return a, b, ra, rb


def test_a_message_arrives_after_the_channel_latency(kernel: Kernel) -> None:
    a, b, ra, rb = wire(kernel, latency=2e-3)
    a.post(lambda _x: a.send(b, "echo", "echo", "PING", "IMSG_PING", 1, 8, False), None, "io")
    kernel.env.run()
    assert rb.seen == [(pytest.approx(2e-3), "PING", 1)]


def test_sends_leave_when_the_run_ends_not_when_composed(kernel: Kernel) -> None:
    """m_compose() only queues; the write happens after the handlers (cost 5 ms)."""
    a, b, ra, rb = wire(kernel, latency=1e-3, cost=5e-3)
    a.post(lambda _x: a.send(b, "echo", "echo", "PING", "IMSG_PING", 1, 8, False), None, "io")
    kernel.env.run()
    received = kernel.observer.hops[0].time  # when b dispatched it
    assert received == pytest.approx(5e-3 + 1e-3)  # a's run ends at 5 ms, then 1 ms latency
    assert kernel.observer.hops[0].sent_time == pytest.approx(5e-3)  # composed at the end of a's handler


def test_everything_read_at_wakeup_is_handled_in_one_run(kernel: Kernel) -> None:
    a, b, ra, rb = wire(kernel, latency=1e-3, cost=1e-3)

    def burst(_x: object) -> None:
        for i in range(3):
            a.send(b, "echo", "echo", "PING", "IMSG_PING", i, 8, False)

    a.post(burst, None, "io")
    kernel.env.run()
    assert [p for _t, _k, p in rb.seen] == [0, 1, 2]  # FIFO
    assert b.runs == 1  # one wake-up for the three imsgs
    # handled back to back on b's virtual clock: 1 ms apart
    ts = [t for t, _k, _p in rb.seen]
    assert ts[1] - ts[0] == pytest.approx(1e-3) and ts[2] - ts[1] == pytest.approx(1e-3)


def test_fifo_is_kept_when_a_small_write_follows_a_large_one(kernel: Kernel) -> None:
    a = Process(kernel, "a")
    b = Process(kernel, "b")
    ch = Channel(kernel.clock, a, b, latency=1e-3, per_byte=1e-6)
    a.channels[b] = ch
    b.channels[a] = ch
    rb = Echo(b)
    b.add_role(rb)
    a.add_role(Echo(a))

    def first(_x: object) -> None:
        a.send(b, "echo", "echo", "PING", "IMSG_PING", "big", 10_000, False)

    def second(_x: object) -> None:
        a.send(b, "echo", "echo", "PING", "IMSG_PING", "small", 1, False)

    a.post(first, None, "io")
    kernel.env.run(until=1e-9)
    a.post(second, None, "io")
    kernel.env.run()
    assert [p for _t, _k, p in rb.seen] == ["big", "small"]


def test_a_pair_without_a_socketpair_is_a_model_error(kernel: Kernel) -> None:
    a = Process(kernel, "a")
    c = Process(kernel, "c")
    with pytest.raises(ModelError, match="no channel between a and c"):
        a.send(c, "echo", "echo", "PING", "IMSG_PING", 0, 8, False)


def test_blocking_io_keeps_the_process_busy_but_frees_the_core() -> None:
    k = Kernel(cores=1, policy="fifo")
    a = Process(k, "a", ProcessCosts(default=1e-3))
    other = Process(k, "other", ProcessCosts(default=1e-3))
    done: list[tuple[str, float]] = []
    a.post(lambda _x: (a.block(10e-3), done.append(("a", a.cursor))), None, "io")
    other.post(lambda _x: done.append(("other", other.cursor)), None, "io")
    k.env.run()
    # 'other' ran while 'a' waited on its fsync: one core was enough (the cursor inside a
    # handler already includes that handler's cost)
    assert done == [("a", pytest.approx(1e-3)), ("other", pytest.approx(2e-3))]
    assert a.busy_time == pytest.approx(11e-3)
    assert a.cpu_time == pytest.approx(1e-3)


def test_processes_share_the_cores() -> None:
    k = Kernel(cores=1, policy="fifo")
    ps = [Process(k, f"p{i}", ProcessCosts(default=2e-3)) for i in range(3)]
    ends: list[float] = []
    for p in ps:
        p.post(lambda _x, p=p: ends.append(p.cursor), None, "io")
    k.env.run()
    assert k.env.now == pytest.approx(6e-3)  # three 2-ms runs, one after the other
    assert sorted(p.cpu_time for p in ps) == [pytest.approx(2e-3)] * 3


def test_a_synchronous_request_blocks_the_whole_process() -> None:
    """pony -> ca during a TLS handshake (ca.c:rsae_send_imsg()): pony spins on its core
    and handles nothing else until the answer is back."""
    k = Kernel(cores=2, policy="fifo")
    pony = Process(k, "pony", ProcessCosts(default=10e-6))
    ca = Process(k, "ca", ProcessCosts(default=1e-3))  # the private-key operation
    lka = Process(k, "lka")
    for x, y in ((pony, ca), (pony, lka)):
        ch = Channel(k.clock, x, y, latency=10e-6)
        x.channels[y] = ch
        y.channels[x] = ch
    order: list[str] = []

    class Ca:
        name = "ca"
        handlers = {"CA_RSA_PRIVENC": lambda self, m: ca.send(pony, "smtp", "ca", "CA_RSA_PRIVENC",
                                                               "IMSG_CA_RSA_PRIVENC", None, 256, False)}

    class Smtp:
        name = "smtp"
        handlers = {"X": lambda self, m: order.append(f"other imsg at {pony.cursor * 1e3:.3f}")}

    ca.add_role(Ca())
    pony.add_role(Smtp())

    def handshake(_x: object) -> None:
        order.append("handshake")
        pony.call_sync(ca, "ca", "smtp", "CA_RSA_PRIVENC", "IMSG_CA_RSA_PRIVENC", None, 256,
                       "CA_RSA_PRIVENC", lambda reply: order.append(f"key op back at {pony.cursor * 1e3:.3f}"))

    class Lka:
        name = "lka"
        handlers: dict = {}

    lka.add_role(Lka())
    pony.post(handshake, None, "io")
    # an imsg from lka arrives while pony waits for ca
    lka.post(lambda _x: lka.send(pony, "smtp", "lka", "X", "IMSG_X", None, 8, False), None, "io")
    k.env.run()
    assert order[0] == "handshake"
    # 10 us handler, 10 us to ca, 1 ms key op, 10 us back, 10 us to handle the answer
    assert order[1] == "key op back at 1.040"
    assert order[2].startswith("other imsg")  # only after the synchronous reply
    assert pony.cpu_time > 1e-3  # it busy-waited on its core


def test_fair_policy_runs_the_process_with_least_cpu_first() -> None:
    k = Kernel(cores=1, policy="fair")
    hog = Process(k, "hog", ProcessCosts(default=1e-3))
    light = Process(k, "light", ProcessCosts(default=1e-3))
    hog.vruntime = 5e-3
    order: list[str] = []
    # both become runnable at the same instant (two events at t = 1 ms)
    call_later(k.env, 1e-3, lambda _t: hog.post(lambda _x: order.append("hog"), None, "io"))
    call_later(k.env, 1e-3, lambda _t: light.post(lambda _x: order.append("light"), None, "io"))
    k.env.run()
    assert order == ["light", "hog"]


def test_same_inputs_same_timeline() -> None:
    def once() -> list[float]:
        k = Kernel(cores=1, policy="fair")
        a, b, ra, rb = wire(k, latency=1e-3, cost=1e-4, wake=1e-5)
        ra.answer = rb.answer = True
        a.post(lambda _x: a.send(b, "echo", "echo", "PING", "IMSG_PING", 0, 8, False), None, "io")
        k.env.run(until=0.05)
        return [t for t, _k, _p in ra.seen + rb.seen]

    assert once() == once()
