"""A 6.8 filter processor: the program ``filter NAME proc-exec "cmd"`` runs.

The parent forks it (``smtpd.c:fork_filter_process()``: a child that ``system("exec cmd")``s,
so two processes per filter); only lka talks to it, over its stdin/stdout with the text
protocol of ``lka_filter.c`` (``filter|0.6|...`` queries answered by ``filter-result|...|proceed``,
``report|0.6|...`` lines for the events it registered for). Lines are not imsgs: they are
counted apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smtpd_sim.kernel.process import Kernel, Process, ProcessCosts
from smtpd_sim.spec.topology import FilterSpec


class FilterProcessor:
    """One filter program as a simulated process."""

    def __init__(self, kernel: Kernel, spec: FilterSpec, latency: float) -> None:
        self.spec = spec
        self.latency = latency
        self.proc = Process(kernel, f"filter-{spec.name}",
                            ProcessCosts(handler={"filter.query": spec.query_cpu_s,
                                                  "filter.report": spec.report_cpu_s}))
        self.queries = 0
        self.reports = 0

    def query(self, line: str, answer: Callable[[str], Any], lka: Process) -> None:
        """A ``filter|...`` line from lka; the processor answers ``proceed`` after its work."""
        def handle(_arg: object) -> None:
            self.queries += 1
            self.proc.emit(lambda _a: lka.timer(self.latency, answer, "proceed", key="lka.filter"), None)
        self.proc.timer(self.latency, handle, line, key="filter.query")

    def report(self, line: str) -> None:
        """A ``report|...`` line: read and dropped."""
        def handle(_arg: object) -> None:
            self.reports += 1
        self.proc.timer(self.latency, handle, line, key="filter.report")
