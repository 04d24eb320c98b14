"""An example role shipped as a plugin: ``spamd``, a process that reloads a blocklist.

It shows the ``smtpd_sim.roles`` entry-point group at work: a topology may host
``roles = ["spamd"]`` in a process of its own, and the process's CPU, idle time and memory
show in ``smtpd-sim compare`` like the daemon's own. Nobody sends it imsgs (a real
integration would add a filter or table talking to it), so like 5.4.2's MFA it mostly
sits idle: a lesson in what an extra process costs.
"""

from __future__ import annotations

from typing import ClassVar

from smtpd_sim.roles.base import Role

__all__ = ["SpamdRole"]


class SpamdRole(Role):
    """Reloads its blocklist every ``period_s`` seconds, spending ``reload_cpu_s`` of CPU."""

    name = "spamd"
    imsgs: ClassVar[dict[str, str]] = {}  # kinds it sends or handles: none
    period_s = 60.0  # user parameter: blocklist refresh period
    reload_cpu_s = 0.02  # user parameter: CPU to parse and index the blocklist

    def start(self) -> None:
        self.reloads = 0
        self.proc.timer(self.period_s, self._reload, None, key="spamd.reload")

    def counters(self) -> dict[str, float]:
        """What it did (``Role.counters()``: how reports read a role)."""
        return {"reloads": self.reloads}

    def _reload(self, _arg: object) -> None:
        self.reloads += 1
        self.proc.charge(self.reload_cpu_s)
        self.proc.timer(self.period_s, self._reload, None, key="spamd.reload")
