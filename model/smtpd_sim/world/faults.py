"""Where the world and the roles find the faults armed on a run (``smtpd_sim.sim.faults``)."""

from __future__ import annotations

from typing import Any


class FaultPort:
    """``armed`` is the run's faults once armed, else None (no fault: nothing is drawn)."""

    __slots__ = ("armed",)

    def __init__(self) -> None:
        self.armed: Any = None
