"""The lka's tables at run time: looked up in-process, or through a forked table process.

In 6.8 a backend compiled into the daemon (``static``, ``db``) is looked up inside the
lka; any other is a program ``/usr/libexec/opensmtpd/table-<backend>`` (the
OpenSMTPD-extras: ldap, mysql, postgres, redis, socketmap, sqlite) that the lka forks
at IMSG_CONF_END (``lka.c:lka_imsg()`` → ``table_open_all()`` → ``table_proc.c:
table_proc_open()`` → ``smtpd.c:fork_proc_backend()``: a blocking socketpair on the
child's stdin) and talks to with PROC_TABLE_* imsgs (backends and their costs:
``smtpd_sim.spec.backends``).

Those lookups are synchronous: ``table_proc.c:table_proc_lookup()`` composes
PROC_TABLE_LOOKUP and calls ``table_proc_call()``, which ``imsg_flush()``es and loops
on ``imsg_read()`` until PROC_TABLE_OK comes back. The socket is blocking, so the lka
sleeps in ``read()``: it holds no core, but handles nothing else until the answer is in
(its other imsgs wait in the socket buffers). The table process itself
(``api/table_api.c`` in the extras) serves one request at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from smtpd_sim.errors import ModelError
from smtpd_sim.kernel.process import Kernel, Process, ProcessCosts
from smtpd_sim.kernel.sched import call_later
from smtpd_sim.spec.backends import TableParams, get_backend

if TYPE_CHECKING:
    from smtpd_sim.spec.tables import TableSpec


class Table:
    """One open table as the lka sees it; counts what it was asked."""

    external = False
    proc: Process | None = None

    def __init__(self, name: str, backend: str, params: TableParams) -> None:
        self.name = name
        self.backend = backend
        self.params = params
        self.lookups = 0
        self.waited_s = 0.0  # total round-trip time of the lookups (request out -> answer in)
        self.blocked_s = 0.0  # of which the lka spent blocked (synchronous lookups)

    def lookup(self, lka: Process, key: str) -> None:
        """``table.c:table_lookup()`` from inside an lka handler: charge its cost to ``lka``."""
        raise NotImplementedError

    def lookup_async(self, lka: Process, key: str, done: Callable[[], Any]) -> None:
        """What-if (not 6.8): send the lookup and return; ``done()`` runs in ``lka`` when the
        answer is back."""
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """What the table did during the run."""
        return {"table": self.name, "backend": self.backend, "external": self.external,
                "lookups": self.lookups, "round_trip_s": self.waited_s, "lka_blocked_s": self.blocked_s,
                "blocking": self.params.blocking,
                "cpu_s": self.params.cpu_s, "lookup_s": self.params.lookup_s, "lka_cpu_s": self.params.lka_cpu_s,
                "concurrency": self.params.concurrency, "source": self.params.source}


class InprocTable(Table):
    """``static`` / ``db``: the lookup runs inside the lka's handler (CPU), plus any
    blocking file read (``lookup_s``, off-CPU)."""

    def lookup(self, lka: Process, key: str) -> None:
        self.lookups += 1
        lka.charge(self.params.cpu_s)
        if self.params.lookup_s:
            lka.block(self.params.lookup_s)
            self.waited_s += self.params.lookup_s
            self.blocked_s += self.params.lookup_s


class TableProcess(Table):
    """A forked ``table-<backend>`` process (``table_proc.c``) and the server behind it.

    One lookup: PROC_TABLE_LOOKUP crosses the socketpair (channel latency), the table
    process spends ``cpu_s`` on a core (its handler, ``api/table_api.c:
    table_msg_dispatch()``), then waits ``lookup_s`` on its backend server, which serves
    ``concurrency`` lookups at once and queues the rest first come first served;
    PROC_TABLE_OK crosses back. The lka spends ``lka_cpu_s`` composing, writing and reading
    (its handler's CPU), and blocks (off-CPU) for the whole round trip. The
    table process's CPU is run on the simulated cores (it competes with the daemon); the
    lka's wait is computed when the request leaves, assuming the table process gets a
    core at once (its delay waiting for a core is not added to the lka's wait).
    PROC_TABLE_* are not mproc imsgs (no ``-T imsg`` line): they are counted here, not
    as hops.
    """

    external = True

    def __init__(self, kernel: Kernel, latency: float, name: str, backend: str, params: TableParams) -> None:
        super().__init__(name, backend, params)
        self.env = kernel.env
        self.latency = latency
        self.proc = Process(kernel, f"table-{name}",
                            ProcessCosts(handler={"table.lookup": params.cpu_s}))
        self._slots = [0.0] * params.concurrency  # busy-until time of each server slot
        self.server_queued = 0  # lookups that found every slot busy
        self.server_wait_s = 0.0
        self.served = 0

    def lookup(self, lka: Process, key: str) -> None:
        self.lookups += 1
        p = self.params
        lka.charge(p.lka_cpu_s)  # table_proc_lookup(): imsg_create/close, imsg_flush, the reads
        # the request leaves when the lka's handler reaches this point, after any earlier
        # synchronous wait in the same run (lka is single-threaded and was blocked)
        sent = lka.cursor + lka.io_wait
        wait = self._round_trip(sent, key) - sent
        lka.block(wait)
        self.waited_s += wait
        self.blocked_s += wait

    def lookup_async(self, lka: Process, key: str, done: Callable[[], Any]) -> None:
        self.lookups += 1
        lka.charge(self.params.lka_cpu_s)
        sent = lka.cursor
        back = self._round_trip(sent, key)
        self.waited_s += back - sent
        call_later(self.env, back - self.env.now, lambda _t: lka.post(lambda _a: done(), None, "table.reply"))

    def _round_trip(self, sent: float, key: str) -> float:
        """When the answer to a request sent at ``sent`` is back at the lka: the socketpair,
        the table process's CPU, the server (FCFS over ``concurrency`` slots), back."""
        p = self.params
        at_server = sent + self.latency + p.cpu_s
        i = min(range(len(self._slots)), key=self._slots.__getitem__)
        start = max(at_server, self._slots[i])
        if start > at_server:
            self.server_queued += 1
            self.server_wait_s += start - at_server
        self._slots[i] = start + p.lookup_s
        call_later(self.env, sent + self.latency - self.env.now,
                   lambda _t: self.proc.post(self._serve, key, "table.lookup"))
        return self._slots[i] + self.latency

    def _serve(self, _key: str) -> None:
        """``table_api.c:table_msg_dispatch()`` PROC_TABLE_LOOKUP: the handler's CPU."""
        self.served += 1

    def stats(self) -> dict[str, Any]:
        d = super().stats()
        d.update({"process": self.proc.name if self.proc else None, "server_queued": self.server_queued,
                  "server_wait_s": self.server_wait_s})
        return d


def open_table(kernel: Kernel, latency: float, name: str, spec: TableSpec) -> Table:
    """``table.c:table_open()``: an in-process table, or a forked table process."""
    backend = get_backend(spec.backend)
    params = backend.resolve(spec)
    if backend.external:
        return TableProcess(kernel, latency, name, backend.name, params)
    return InprocTable(name, backend.name, params)


def open_tables(kernel: Kernel, latency: float, specs: dict[str, TableSpec]) -> dict[str, Table]:
    """``table_open_all()`` at IMSG_CONF_END: one Table per configured table (name order);
    ``latency``: the lka's socketpair to a table process."""
    try:
        return {name: open_table(kernel, latency, name, specs[name]) for name in sorted(specs)}
    except ValueError as e:  # one line for the CLI (ModelError is a user error there)
        raise ModelError(f"tables: {str(e).splitlines()[0]}") from None
