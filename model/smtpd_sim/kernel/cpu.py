"""CPU cores shared by every simulated process (daemon processes, delivery agents, clients).

A process that has work asks for a core; it keeps the core for the CPU part of one
event-loop iteration (all the handlers it runs on what it read) and gives it back.
Two dispatch policies decide who gets a core:

* ``fifo``: first come, first served; a free core is taken at once.
* ``fair``: the OS looks at everything that became runnable at the same instant and
  picks the process with the smallest virtual runtime (CFS: CPU used so far; a forked
  child starts from its parent's, ``place_entity()``), so processes that mostly sleep
  go first. Ties keep arrival order.
  Requests are collected until all events of the current instant have fired
  (a dispatch at a lower priority than SimPy's NORMAL), then cores are handed out.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import TYPE_CHECKING, Literal

from smtpd_sim.kernel.sched import Clock, Timer

if TYPE_CHECKING:
    from smtpd_sim.kernel.process import Process

Policy = Literal["fifo", "fair"]
POLICIES = ("fifo", "fair")
_AFTER_NORMAL = 2  # SimPy priority that sorts after NORMAL (1) at the same time


class Cpu:
    """N identical cores shared by all simulated processes."""

    __slots__ = ("clock", "cores", "free", "policy", "_is_fifo", "_fifo", "_heap", "_seq", "_pending",
                 "_timer", "_timer_cbs")

    def __init__(self, clock: Clock, cores: int, policy: Policy = "fifo") -> None:
        if cores < 1:
            raise ValueError(f"cores must be >= 1, got {cores}")
        if policy not in POLICIES:
            raise ValueError(f"unknown CPU policy {policy!r} (expected one of {POLICIES})")
        self.clock = clock
        self.cores = cores
        self.free = cores
        self.policy = policy
        self._is_fifo = policy == "fifo"
        self._fifo: deque[Process] = deque()
        self._heap: list[tuple[float, int, Process]] = []
        self._seq = itertools.count()
        self._pending = False
        # the deferred dispatch: one Timer, re-armed (at most one is pending: _pending)
        self._timer = Timer(self._dispatch)
        self._timer_cbs = self._timer.callbacks

    def request(self, proc: Process) -> None:
        """The process has work: give it a core (now, or when one frees up)."""
        if self._is_fifo:
            if self.free:
                self.free -= 1
                proc.run()
            else:
                self._fifo.append(proc)
            return
        heap = self._heap
        if self.free and not heap and not self._pending:
            # nobody else can become runnable at this instant unless another event is
            # due now: then the choice is trivial and needs no deferred dispatch
            clock = self.clock
            queue = clock._queue  # Clock.idle_now() inlined (once per delivery)
            if not queue or queue[0][0] > clock.now:
                self.free -= 1
                proc.run()
                return
        heapq.heappush(heap, (proc.vruntime, next(self._seq), proc))
        if self.free and not self._pending:
            self._pending = True
            self._timer.callbacks = self._timer_cbs
            self.clock.later(0.0, self._timer, _AFTER_NORMAL)

    def _dispatch(self, _timer: Timer) -> None:
        self._pending = False
        heap = self._heap
        while self.free and heap:
            self.free -= 1
            heapq.heappop(heap)[2].run()

    def release(self) -> None:
        """A core is free again: hand it to the next waiting process, if any."""
        if self._is_fifo:
            if self._fifo:
                self._fifo.popleft().run()
                return
            self.free += 1
            return
        self.free += 1
        if self._heap and not self._pending:
            self._pending = True
            self._timer.callbacks = self._timer_cbs
            self.clock.later(0.0, self._timer, _AFTER_NORMAL)

    @property
    def waiting(self) -> int:
        """Processes waiting for a core."""
        return len(self._fifo) + len(self._heap)
