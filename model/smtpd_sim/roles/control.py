"""The control process (``control.c``): the stat backend every IMSG_STAT_* lands in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from smtpd_sim.kernel.message import Imsg
from smtpd_sim.roles.base import Role, handles

if TYPE_CHECKING:
    from smtpd_sim.kernel.process import Process
    from smtpd_sim.roles.ports import Ports


class ControlRole(Role):
    """``control.c:control_imsg()`` with the ``ram`` stat backend (``stat_ramstat.c``)."""

    name = "control"

    def __init__(self, proc: Process, ports: Ports) -> None:
        super().__init__(proc, ports)
        self.stats: dict[str, int] = {}

    def counters(self) -> dict[str, float]:
        """The ram stat backend's values (``smtpctl show stats``)."""
        return dict(self.stats)

    @handles("STAT_INCREMENT")
    def on_stat_increment(self, m: Imsg) -> None:
        """``control_imsg()`` IMSG_STAT_INCREMENT → ``stat_backend->increment()``."""
        key, value = m.payload
        self.stats[key] = self.stats.get(key, 0) + value

    @handles("STAT_DECREMENT")
    def on_stat_decrement(self, m: Imsg) -> None:
        """``control_imsg()`` IMSG_STAT_DECREMENT → ``stat_backend->decrement()``."""
        key, value = m.payload
        self.stats[key] = self.stats.get(key, 0) - value

    @handles("STAT_SET")
    def on_stat_set(self, m: Imsg) -> None:
        """``control_imsg()`` IMSG_STAT_SET → ``stat_backend->set()``."""
        key, value = m.payload
        self.stats[key] = value
