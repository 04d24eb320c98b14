"""What the simulated clients saw: the DATA-end → 250 latency of each message, the length
of each session, the connections refused while the daemon was down.

In a streaming run the samples go into sketches (percentiles within 0.1 %) instead of
lists, so memory follows what is in flight, not what has passed.
"""

from __future__ import annotations

from smtpd_sim.observe.sketch import Sketch


class ClientLog:
    """The clients' side of a run's observations."""

    def __init__(self, *, stream: bool = False) -> None:
        self.latency: list[float] | Sketch = Sketch() if stream else []
        self.sessions: list[float] | Sketch = Sketch() if stream else []
        self.refused = 0
