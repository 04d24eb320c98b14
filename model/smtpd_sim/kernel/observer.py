"""What the kernel tells whoever watches a run (``smtpd_sim.observe.recorder``).

On the hot path a receiving process only bumps counters it was handed once (per sender,
per imsg name); with rows on it also reports one row per hop and per handler run.
This base class watches nothing: a bare kernel (tests, benchmarks) needs no recorder.
"""

from __future__ import annotations

from typing import Any


class Observer:
    """Counters and rows of one run; this base keeps none."""

    def __init__(self) -> None:
        self.rows = False
        # with rows on, a dict here asks for each hop's payload (the explorer shows them)
        self.payloads: dict[int, str] | None = None

    def counters(self, dst: str) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
        """The (counted, counted apart) ``{from: {imsg name: n}}`` dicts ``dst`` increments."""
        return {}, {}

    def hop(self, t: float, sent: float, src: str, dst: str, name: str, kind: str, length: int,
            fd: bool, stat: bool, ident: int, cause: int) -> None:
        """An imsg from another process was dispatched at ``t`` (rows only)."""

    def payload(self, ident: int, payload: Any) -> None:
        """The payload of hop ``ident`` as it was dispatched (rows and ``payloads`` only)."""

    def run(self, proc: str, start: float, cost: float, key: str, ident: int, cause: int,
            is_hop: bool) -> None:
        """A handler started at ``start`` and took ``cost`` of CPU (rows only)."""
