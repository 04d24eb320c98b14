"""A channel is one AF_UNIX socketpair between two simulated processes.

One flush of a process's write buffer to a peer (``mproc.c:mproc_dispatch()`` →
``msgbuf_write2()``) becomes one delivery after ``latency + per_byte * bytes``;
deliveries keep FIFO order per direction even when a small write follows a large one.
A passed file descriptor (SCM_RIGHTS) adds ``fd_cost``.
"""

from __future__ import annotations

from heapq import heappush
from typing import TYPE_CHECKING

from smtpd_sim.kernel.message import HEADER_SIZE
from smtpd_sim.kernel.sched import NORMAL, Clock, Timer

if TYPE_CHECKING:
    from smtpd_sim.kernel.message import Imsg
    from smtpd_sim.kernel.process import Process


class Channel:
    """Bidirectional socketpair with per-direction FIFO delivery."""

    __slots__ = ("clock", "a", "b", "latency", "per_byte", "fd_cost", "_last_a", "_last_b", "sent",
                 "bytes", "_queue", "_eid")

    def __init__(
        self,
        clock: Clock,
        a: Process,
        b: Process,
        *,
        latency: float,
        per_byte: float = 0.0,
        fd_cost: float = 0.0,
    ) -> None:
        self.clock = clock
        self.a = a
        self.b = b
        self.latency = latency
        self.per_byte = per_byte
        self.fd_cost = fd_cost
        self._last_a = 0.0  # last delivery time towards a
        self._last_b = 0.0  # ... and towards b
        self._queue = clock._queue  # Clock.at() inlined: one heap entry per write, as before
        self._eid = clock._eid
        self.sent = 0
        self.bytes = 0

    def peer(self, proc: Process) -> Process:
        return self.b if proc is self.a else self.a

    def transmit(self, dst: Process, imsgs: list[Imsg]) -> None:
        """Write a batch of imsgs (one buffer flush) towards ``dst``."""
        n = len(imsgs)
        nbytes = HEADER_SIZE * n
        fds = 0
        for m in imsgs:
            nbytes += m.length
            if m.fd:
                fds += 1
        self.sent += n
        self.bytes += nbytes
        t = self.clock.now + self.latency
        if self.per_byte:
            t += self.per_byte * nbytes
        if fds:
            t += self.fd_cost * fds
        if dst is self.a:
            if t < self._last_a:
                t = self._last_a
            self._last_a = t
        else:
            if t < self._last_b:
                t = self._last_b
            self._last_b = t
        heappush(self._queue, (t, NORMAL, next(self._eid), Timer(dst._on_delivery_cb, imsgs)))
