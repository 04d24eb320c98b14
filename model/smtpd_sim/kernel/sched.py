"""The kernel's one door to SimPy's internals: call ``fn(timer)`` later, on SimPy's heap.

Generator processes cost SimPy several events per wake-up; the daemon model only needs
"run this callback at t + delay", so a tiny event object goes straight onto SimPy's
heap (``Environment.schedule``) and its single callback fires when popped. Nothing else
in the package touches SimPy's private attributes (``_now``, ``_queue``, ``_eid``): the
channel, the CPU and the processes go through :class:`Clock`.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heapify, heappop, heappush
from typing import Any

import simpy

URGENT = 0  # simpy.events.URGENT
NORMAL = 1  # simpy.events.NORMAL


class Timer:
    """A minimal SimPy-compatible event: ``env.step()`` only reads ``callbacks`` and ``_ok``."""

    __slots__ = ("callbacks", "_ok", "arg", "cancelled")

    def __init__(self, fn: Callable[[Timer], Any], arg: Any = None) -> None:
        self.callbacks: Any = (fn,)  # env.step() only iterates it; None once fired
        self._ok = True
        self.arg = arg
        self.cancelled = False


def call_later(env: simpy.Environment, delay: float, fn: Callable[[Timer], Any], arg: Any = None) -> Timer:
    """Schedule ``fn(timer)`` at ``env.now + delay``; returns the timer (``cancel()`` drops it)."""
    t = Timer(fn, arg)
    schedule(env, t, NORMAL, delay)
    return t


# compact the heap once this many cancelled timers may sit in it, and they are half of it
_COMPACT_MIN = 256


def cancel(env: Environment, timer: Timer) -> None:
    """``evtimer_del()``: the timer will not fire. Cancelled timers are dropped from the heap
    once they are half of it, so a timer re-armed for every message does not keep the
    memory of every message until its old deadline. The rest pop in the same order:
    entries are totally ordered by (time, priority, eid)."""
    if timer.cancelled or timer.callbacks is None:  # cancelled already, or fired
        return
    timer.cancelled = True
    timer.callbacks = ()  # popped before a compaction, it runs nothing
    env.cancelled += 1  # an upper bound: some may have been popped since
    queue: list[Any] = env._queue
    if env.cancelled > _COMPACT_MIN and 2 * env.cancelled > len(queue):
        queue[:] = [e for e in queue if not (e[3].__class__ is Timer and e[3].cancelled)]
        heapify(queue)
        env.cancelled = 0


def schedule(env: simpy.Environment, event: Timer, priority: int, delay: float) -> None:
    """``env.schedule(event, priority, delay)`` for a :class:`Timer` (the same heap entry)."""
    queue: list[Any] = env._queue
    heappush(queue, (env._now + delay, priority, next(env._eid), event))


class Clock:
    """SimPy's time and event heap, as the channel, the CPU and the processes use them:
    ``at()`` pushes the same heap entry ``env.schedule()`` would (one eid each), without
    the call layers, because it runs once or twice per imsg."""

    __slots__ = ("env", "_queue", "_eid")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self._queue: list[Any] = env._queue
        self._eid: Any = env._eid

    @property
    def now(self) -> float:
        return self.env._now  # type: ignore[no-any-return]

    def at(self, t: float, timer: Timer, priority: int = NORMAL) -> None:
        """Fire ``timer`` at absolute time ``t`` (not before now)."""
        heappush(self._queue, (t, priority, next(self._eid), timer))

    def later(self, delay: float, timer: Timer, priority: int = NORMAL) -> None:
        """Fire ``timer`` ``delay`` seconds from now."""
        heappush(self._queue, (self.env._now + delay, priority, next(self._eid), timer))

    def idle_now(self) -> bool:
        """No other event is due at this instant (so nothing else can become runnable)."""
        queue = self._queue
        return not queue or queue[0][0] > self.env._now


class Environment(simpy.Environment):
    """SimPy's environment with a tighter loop for ``run(until=<number>)``.

    It pops and fires events exactly as ``simpy.Environment.step()`` does, in the same
    order (it takes the eid SimPy's own *until* event would take and stops where that
    event would sort), without the per-step method call and exception frames. Anything
    else (``run()``, ``run(until=event)``) is SimPy's own code.
    """

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self.cancelled = 0  # cancelled timers that may still be on the heap (cancel())

    def run(self, until: Any = None) -> Any:
        if until is None or isinstance(until, simpy.Event):
            return super().run(until)
        at = until if isinstance(until, int) else float(until)
        now = self._now
        if at <= now:
            raise ValueError(f"until ({at}) must be greater than the current simulation time")
        t_stop = now + (at - now)  # what schedule(until, URGENT, at - now) would store
        eid_stop = next(self._eid)
        queue = self._queue
        pop = heappop
        timer_cls = Timer
        while queue:
            head = queue[0]
            t = head[0]
            if t > t_stop or (t == t_stop and (head[1] > URGENT or head[2] > eid_stop)):
                break
            pop(queue)  # the head itself
            self._now = t
            event: Any = head[3]
            callbacks, event.callbacks = event.callbacks, None
            if event.__class__ is timer_cls:  # the kernel's own: ok by construction
                if callbacks:  # its one callback, or () once cancelled
                    callbacks[0](event)
                continue
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                exc = type(event._value)(*event._value.args)
                exc.__cause__ = event._value
                raise exc
        self._now = t_stop
        return None
