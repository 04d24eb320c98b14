"""The one scheduling primitive the kernel uses on top of SimPy: call ``fn(timer)`` later.

Generator processes cost SimPy several events per wake-up; the daemon model only needs
"run this callback at t + delay", so a tiny event object goes straight onto SimPy's
heap (``Environment.schedule``) and its single callback fires when popped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy

NORMAL = 1  # simpy.events.NORMAL


class Timer:
    """A minimal SimPy-compatible event: ``env.step()`` only reads ``callbacks`` and ``_ok``."""

    __slots__ = ("callbacks", "_ok", "arg", "cancelled")

    def __init__(self, fn: Callable[[Timer], Any], arg: Any = None) -> None:
        self.callbacks = (fn,)  # env.step() only iterates it
        self._ok = True
        self.arg = arg
        self.cancelled = False


def call_later(env: simpy.Environment, delay: float, fn: Callable[[Timer], Any], arg: Any = None) -> Timer:
    """Schedule ``fn(timer)`` at ``env.now + delay``; returns the timer (set ``cancelled`` to drop it)."""
    t = Timer(fn, arg)
    env.schedule(t, NORMAL, delay)
    return t
