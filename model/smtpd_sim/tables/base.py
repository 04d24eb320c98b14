"""What a table backend is, and the two ways the lka reaches one.

In 6.8 (``table.c:table_create()``) a backend is either compiled into the daemon —
``static`` (``file:``/inline tables), ``db`` (Berkeley DB), ``getpwnam`` — and looked up
inside the lka, or it is a program ``/usr/libexec/opensmtpd/table-<backend>`` (the
OpenSMTPD-extras: ldap, mysql, postgres, redis, socketmap, sqlite) that the lka forks
at IMSG_CONF_END (``lka.c:lka_imsg()`` → ``table_open_all()`` → ``table_proc.c:
table_proc_open()`` → ``smtpd.c:fork_proc_backend()``: a blocking socketpair on the
child's stdin) and talks to with PROC_TABLE_* imsgs.

Those lookups are synchronous: ``table_proc.c:table_proc_lookup()`` composes
PROC_TABLE_LOOKUP and calls ``table_proc_call()``, which ``imsg_flush()``es and loops
on ``imsg_read()`` until PROC_TABLE_OK comes back. The socket is blocking, so the lka
sleeps in ``read()``: it holds no core, but handles nothing else until the answer is in
(its other imsgs wait in the socket buffers). The table process itself
(``api/table_api.c`` in the extras) serves one request at a time.

A plugin subclasses :class:`Backend` (or builds an instance) and registers it in the
``smtpd_sim.tables`` entry-point group; nothing in the core changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smtpd_sim.kernel.process import Process, ProcessCosts
from smtpd_sim.kernel.sched import call_later

if TYPE_CHECKING:
    from smtpd_sim.tables.spec import TableSpec


@dataclass(frozen=True)
class TableParams:
    """The resolved costs of one table (the spec's values, else the backend's defaults)."""

    cpu_s: float
    lookup_s: float
    concurrency: int
    source: str
    lka_cpu_s: float = 0.0
    miss_tempfails: bool = False
    blocking: bool = True


class Backend:
    """A table backend: its kind and its default costs, each with a source.

    ``external``: True for a table process the lka forks (``table_proc.c``), False for a
    backend compiled into the daemon (the lookup runs in the lka's own handler).
    ``lookup_s = None``: no measured default, the configuration must give one.
    """

    name: str = ""
    external: bool = True
    description: str = ""
    cpu_s: float = 0.0
    lookup_s: float | None = None
    concurrency: int = 1
    lka_cpu_s: float = 0.0
    source: str = ""

    def defaults(self) -> dict[str, Any]:
        """cpu_s, lookup_s, concurrency, lka_cpu_s and source; backends whose figures live
        in a data file override this to read it lazily."""
        return {"cpu_s": self.cpu_s, "lookup_s": self.lookup_s, "concurrency": self.concurrency,
                "lka_cpu_s": self.lka_cpu_s, "source": self.source}

    def resolve(self, spec: TableSpec) -> TableParams:
        """Fill the fields the configuration left unset from the backend's defaults."""
        d = self.defaults()
        if not spec.blocking and not self.external:
            raise ValueError(f"table backend {self.name!r} is looked up inside the lka: blocking = false "
                             f"applies to table processes only")
        if spec.lookup_s is None and d["lookup_s"] is None:
            raise ValueError(f"table backend {self.name!r} has no measured lookup cost: set lookup_s")
        set_by_user = [k for k in ("cpu_s", "lookup_s", "concurrency", "lka_cpu_s") if getattr(spec, k) is not None]
        source = d["source"] if not set_by_user else f"user parameter ({', '.join(set_by_user)}); else {d['source']}"
        return TableParams(
            cpu_s=d["cpu_s"] if spec.cpu_s is None else spec.cpu_s,
            lookup_s=d["lookup_s"] if spec.lookup_s is None else spec.lookup_s,
            concurrency=d["concurrency"] if spec.concurrency is None else spec.concurrency,
            lka_cpu_s=d["lka_cpu_s"] if spec.lka_cpu_s is None else spec.lka_cpu_s,
            source=source,
            miss_tempfails=spec.miss_tempfails,
            blocking=spec.blocking,
        )

    def open(self, sim: Any, name: str, spec: TableSpec) -> Table:
        """``table.c:table_open()``: an in-process table, or a forked table process."""
        params = self.resolve(spec)
        if self.external:
            return TableProcess(sim, name, self.name, params)
        return InprocTable(name, self.name, params)


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

    def __init__(self, sim: Any, name: str, backend: str, params: TableParams) -> None:
        super().__init__(name, backend, params)
        self.env = sim.env
        self.latency = sim._channel_latency
        self.proc = Process(sim.kernel, f"table-{name}",
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


def open_tables(sim: Any, specs: dict[str, TableSpec]) -> dict[str, Table]:
    """``table_open_all()`` at IMSG_CONF_END: one Table per configured table (name order)."""
    from smtpd_sim.kernel.process import ModelError
    from smtpd_sim.tables.registry import get_backend

    try:
        return {name: get_backend(specs[name].backend).open(sim, name, specs[name]) for name in sorted(specs)}
    except ValueError as e:  # one line for the CLI (ModelError is a user error there)
        raise ModelError(f"tables: {str(e).splitlines()[0]}") from None
