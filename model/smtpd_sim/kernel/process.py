"""A simulated OS process: a single-threaded libevent loop with an inbox.

What the model reproduces (era-5.4.2-mfa.md §1.4, era-pony.md §1.1):

* On EV_READ a process reads what is available and handles **all** complete imsgs
  (``mproc.c:mproc_dispatch()``); here a *run* takes every item in the inbox at the
  moment it gets a core, runs their handlers back to back, each advancing a virtual
  cursor by its CPU cost.
* ``m_compose()``/``m_close()`` only append to the peer's write buffer and arm EV_WRITE;
  the ``sendmsg()`` happens in a later loop iteration. Here the write buffers are
  flushed when the run ends, one write per peer, peers in the order they were first
  written to (the order EV_WRITE was armed).
* Blocking system calls inside a handler (``fsync()`` of an envelope, ``rename()``,
  ``fork()``) keep the process busy without using a core (``io_wait``).
* ``ca.c:rsae_send_imsg()`` sends with ``m_flush()`` and then busy-waits in
  ``imsg_read()`` for the answer: ``call_sync`` sends at once and keeps the core
  until the reply comes back; the rest of the batch waits.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from heapq import heappush
from typing import TYPE_CHECKING, Any

from smtpd_sim.errors import ModelError
from smtpd_sim.kernel.cpu import Cpu, Policy
from smtpd_sim.kernel.message import Imsg
from smtpd_sim.kernel.observer import Observer
from smtpd_sim.kernel.sched import NORMAL, Clock, Environment, Timer, call_later

if TYPE_CHECKING:
    from smtpd_sim.kernel.channel import Channel

__all__ = ["DEAD", "IDLE", "IOWAIT", "READY", "RUNNING", "Io", "Kernel", "ModelError", "Process",
           "ProcessCosts"]

IDLE, READY, RUNNING, IOWAIT, DEAD = "idle", "ready", "running", "iowait", "dead"


class Kernel:
    """The SimPy environment, the CPU cores, the observer and the id counter of one run.

    ``apart``: imsg kinds counted apart from the others (the daemon's statistics)."""

    __slots__ = ("env", "clock", "cpu", "observer", "apart", "_ids")

    def __init__(self, cores: int, *, policy: Policy = "fifo", observer: Observer | None = None,
                 apart: frozenset[str] = frozenset()) -> None:
        self.env = Environment()
        self.clock = Clock(self.env)
        self.cpu = Cpu(self.clock, cores, policy)
        self.observer = observer if observer is not None else Observer()
        self.apart = apart
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)


class Io:
    """A non-imsg event for a process: client bytes, a timer, a DNS answer, SIGCHLD."""

    __slots__ = ("fn", "arg", "key", "id", "cause")

    def __init__(self, fn: Callable[[Any], Any], arg: Any, key: str, ident: int, cause: int) -> None:
        self.fn = fn
        self.arg = arg
        self.key = key
        self.id = ident
        self.cause = cause


class ProcessCosts:
    """CPU cost model of one process (seconds).

    ``wake``: one event-loop iteration (epoll_wait return, read/write syscalls).
    ``handler``: per item key (imsg kind or io key); ``default`` for the rest.
    ``per_byte``: added per payload byte of an imsg handled.
    """

    __slots__ = ("wake", "handler", "default", "per_byte")

    def __init__(
        self,
        wake: float = 0.0,
        handler: dict[str, float] | None = None,
        default: float = 0.0,
        per_byte: float = 0.0,
    ) -> None:
        self.wake = wake
        self.handler = dict(handler or {})
        self.default = default
        self.per_byte = per_byte


class Process:
    """One simulated process hosting one or more roles."""

    def __init__(self, kernel: Kernel, name: str, costs: ProcessCosts | None = None, *,
                 counted: bool = True) -> None:
        self.kernel = kernel
        self.env = kernel.env
        self.clock = kernel.clock
        self.cpu = kernel.cpu
        self.rec = kernel.observer
        self._apart = kernel.apart
        self.name = name
        self.costs = costs or ProcessCosts()
        self.roles: dict[str, Any] = {}
        self.channels: dict[Process, Channel] = {}
        self.inbox: deque[Imsg | Io] = deque()
        self.state = IDLE
        self.outbuf: dict[Process, list[Imsg]] = {}
        self.outio: list[tuple[Callable[[Any], Any], Any]] = []
        self.cursor = 0.0
        self.cause = 0
        self.io_wait = 0.0
        self.cpu_time = 0.0
        self.vruntime = 0.0  # what the "fair" CPU policy orders by (CFS)
        self.busy_time = 0.0
        self.run_start = 0.0
        self.runs = 0
        self.handled = 0
        self._remaining = 0
        self._local: deque[Imsg] = deque()
        self.sync: tuple[str, Callable[[Imsg], Any]] | None = None
        self._holds_core = False
        self._cpu_done_cb = self._cpu_done
        self._on_delivery_cb = self.on_delivery
        self._finish_cb = self._finish
        self._fire_cb = self._fire
        # the end of a run: one Timer per process, re-armed each run (a process holds at
        # most one core, so at most one end of run is pending; kill() lets it fire)
        self._done_timer = Timer(self._cpu_done_cb)
        self._done_cbs = self._done_timer.callbacks
        # Clock.at() inlined where it runs once per run (the same heap entry, one eid each)
        self._queue = self.clock._queue
        self._eid = self.clock._eid
        # a transient process (a delivery agent) receives no imsgs: no counters kept for it,
        # so the observer does not grow with every fork
        self._counts, self._stat_counts = self.rec.counters(name) if counted else ({}, {})
        self._rows = self.rec.rows
        self._next_id = kernel._ids.__next__

    def __repr__(self) -> str:
        return f"<Process {self.name} {self.state}>"

    # ---- wiring -------------------------------------------------------------------

    def add_role(self, role: Any) -> None:
        self.roles[role.name] = role

    # ---- input ----------------------------------------------------------------------

    def on_delivery(self, timer: Timer) -> None:
        """A channel delivered a batch of imsgs (one read's worth)."""
        if self.state is DEAD:
            return
        imsgs = timer.arg
        if self.sync is not None:
            self._sync_delivery(imsgs)
            return
        self.inbox.extend(imsgs)
        if self.state is IDLE:
            self.state = READY
            self.cpu.request(self)

    def post(self, fn: Callable[[Any], Any], arg: Any, key: str, cause: int = 0) -> None:
        """An io event for this process, now (client data, DNS answer, timer...)."""
        if self.state is DEAD:
            return
        self.inbox.append(Io(fn, arg, key, self._next_id(), cause))
        if self.state is IDLE:
            self.state = READY
            self.cpu.request(self)

    def timer(self, delay: float, fn: Callable[[Any], Any], arg: Any = None, key: str = "timer") -> Timer:
        """An evtimer: ``delay`` after the current handler's virtual time (or now, outside a
        run) the process wakes up and runs ``fn(arg)``."""
        now = self.clock.now
        start = self.cursor if self.state is RUNNING else now
        return call_later(self.env, start - now + delay, self._fire_cb, (fn, arg, key, self.cause))

    def _fire(self, timer: Timer) -> None:
        """An evtimer went off (a cancel()led one never gets here)."""
        fn, arg, key, cause = timer.arg
        self.post(fn, arg, key, cause)

    # ---- the event loop ---------------------------------------------------------------

    def run(self) -> None:
        """Called by the CPU when this process gets a core."""
        if self.state is DEAD:
            self.cpu.release()
            return
        now = self.clock.now
        self.state = RUNNING
        self.run_start = now
        self.runs += 1
        self.cursor = now + self.costs.wake
        self._remaining = len(self.inbox)
        self._holds_core = True
        self._loop()

    def _loop(self) -> None:
        inbox = self.inbox
        local = self._local
        dispatch = self._dispatch
        while self._remaining:
            self._remaining -= 1
            dispatch(inbox.popleft())
            if local:
                while local:
                    dispatch(local.popleft())
            if self.sync is not None:
                return  # spinning on the CPU until the synchronous reply arrives
        timer = self._done_timer
        timer.callbacks = self._done_cbs
        heappush(self._queue, (self.cursor, NORMAL, next(self._eid), timer))

    def _dispatch(self, item: Imsg | Io) -> None:
        costs = self.costs
        t = self.cursor
        self.handled += 1
        if item.__class__ is Imsg:
            key = item.kind
            cost = costs.handler.get(key, costs.default)
            if costs.per_byte:
                cost += costs.per_byte * item.length
            src_proc = item.src
            if src_proc is not self:  # roles sharing a process call each other: not a hop
                by_src = (self._stat_counts if item.stat else self._counts)
                src = src_proc.name
                names = by_src.get(src)
                if names is None:
                    names = by_src[src] = {}
                names[item.name] = names.get(item.name, 0) + 1
                if self._rows:
                    self.rec.hop(t, item.t_sent, src, self.name, item.name, key, item.length, item.fd,
                                 item.stat, item.id, item.cause)
                    if self.rec.payloads is not None:
                        self.rec.payload(item.id, item.payload)
                    self.rec.run(self.name, t, cost, key, item.id, item.cause, True)
            elif self._rows:
                self.rec.run(self.name, t, cost, key, item.id, item.cause, False)
            self.cursor = t + cost
            self.cause = item.id
            role = self.roles[item.dst_role]
            try:
                handler = role.handlers[key]
            except KeyError:
                raise ModelError(
                    f"{self.name}: role {role.name} has no handler for {item.name} from {item.src.name}"
                ) from None
            handler(role, item)
        else:
            assert isinstance(item, Io)
            key = item.key
            cost = costs.handler.get(key, costs.default)
            if self._rows:
                self.rec.run(self.name, t, cost, key, item.id, item.cause, False)
            self.cursor = t + cost
            self.cause = item.id
            item.fn(item.arg)

    def charge(self, seconds: float) -> None:
        """Extra CPU spent by the current handler (a fork, a parse, a copy...)."""
        self.cursor += seconds

    def block(self, seconds: float) -> None:
        """Blocking I/O inside the current handler (fsync, rename): busy but off-CPU."""
        self.io_wait += seconds

    def _cpu_done(self, _t: Timer) -> None:
        if self.state is DEAD:
            if self._holds_core:
                self._holds_core = False
                self.cpu.release()
            return
        self._holds_core = False
        now = self.clock.now
        ran = now - self.run_start
        self.cpu_time += ran
        self.vruntime += ran
        self.cpu.release()
        if self.io_wait:
            wait, self.io_wait = self.io_wait, 0.0
            self.state = IOWAIT
            call_later(self.env, wait, self._finish_cb)
            return
        # _finish(None), inlined: this runs once per run
        if self.state is DEAD:  # killed by whatever the released core ran
            return
        if self.outbuf or self.outio:
            self.flush()
        self.busy_time += now - self.run_start
        if self.inbox:
            self.state = READY
            self.cpu.request(self)
        else:
            self.state = IDLE

    def _finish(self, _t: Timer | None) -> None:
        if self.state is DEAD:
            return
        self.flush()
        self.busy_time += self.clock.now - self.run_start
        if self.inbox:
            self.state = READY
            self.cpu.request(self)
        else:
            self.state = IDLE

    def flush(self) -> None:
        """Write every buffered imsg (one write per peer) and every outgoing io."""
        if self.outbuf:
            out, self.outbuf = self.outbuf, {}
            for peer, imsgs in out.items():
                self.channels[peer].transmit(peer, imsgs)
        if self.outio:
            outio, self.outio = self.outio, []
            for fn, arg in outio:
                fn(arg)

    # ---- output -------------------------------------------------------------------------

    def send(self, dst: Process, dst_role: str, src_role: str, kind: str, name: str,
             payload: Any, length: int, fd: bool) -> Imsg:
        """Queue an imsg for ``dst`` (``m_compose()``): it leaves when this run ends."""
        m = Imsg(kind, name, self, dst, src_role, dst_role, payload, length, fd,
                 kind in self._apart, self._next_id(), self.cause, self.cursor)
        if dst is self:
            # roles hosted by the same process call each other directly: no channel, no hop
            self._local.append(m)
            return m
        buf = self.outbuf.get(dst)  # not try/except: the first imsg to a peer in a run is
        if buf is None:                # the common case, and a raised KeyError costs a traceback
            if dst not in self.channels:
                raise ModelError(
                    f"no channel between {self.name} and {dst.name} for {name} "
                    f"(the topology has no socketpair for this pair)"
                ) from None
            buf = self.outbuf[dst] = []
        buf.append(m)
        return m

    def emit(self, fn: Callable[[Any], Any], arg: Any) -> None:
        """Something leaves towards the world (a reply line, a TCP write) when this run ends."""
        self.outio.append((fn, arg))

    def call_sync(self, dst: Process, dst_role: str, src_role: str, kind: str, name: str,
                  payload: Any, length: int, reply_kind: str,
                  continuation: Callable[[Imsg], Any]) -> None:
        """Send now (``m_flush()``) and spin on the CPU until ``reply_kind`` comes back."""
        if dst is self:
            raise ModelError(f"{self.name}: a synchronous request to itself ({name}): a merged "
                             f"key engine must use key_engine = \"none\"")
        if dst not in self.channels:
            raise ModelError(f"no channel between {self.name} and {dst.name} for {name}")
        m = Imsg(kind, name, self, dst, src_role, dst_role, payload, length, False,
                 False, self._next_id(), self.cause, self.cursor)
        channel = self.channels[dst]
        self.sync = (reply_kind, continuation)
        clock = self.clock
        clock.later(self.cursor - clock.now, Timer(lambda _t: channel.transmit(dst, [m])))

    def _sync_delivery(self, imsgs: list[Imsg]) -> None:
        assert self.sync is not None
        reply_kind, continuation = self.sync
        reply = None
        for m in imsgs:
            if reply is None and m.kind == reply_kind:
                reply = m
            else:
                self.inbox.append(m)
        if reply is None:
            return
        self.sync = None
        self.cursor = self.clock.now
        # the reply is read inline by the spinning process (rsae_send_imsg())
        costs = self.costs
        cost = costs.handler.get(reply.kind, costs.default) + costs.per_byte * reply.length
        rec = self.rec
        names = self._counts.setdefault(reply.src.name, {})
        names[reply.name] = names.get(reply.name, 0) + 1
        if self._rows:
            rec.hop(self.cursor, reply.t_sent, reply.src.name, self.name, reply.name, reply.kind,
                    reply.length, reply.fd, reply.stat, reply.id, reply.cause)
            if rec.payloads is not None:
                rec.payload(reply.id, reply.payload)
            rec.run(self.name, self.cursor, cost, reply.kind, reply.id, reply.cause, True)
        self.cursor += cost
        self.cause = reply.id
        continuation(reply)
        self._loop()

    # ---- failure ----------------------------------------------------------------------

    def kill(self) -> None:
        """The process dies: its inbox and buffers are lost, deliveries are dropped. A core
        it holds is given back when its current run would have ended (or now, if it was
        spinning on a synchronous request)."""
        if self.sync is not None and self._holds_core:
            self.sync = None
            self._holds_core = False
            self.cpu.release()
        self.state = DEAD
        self.inbox.clear()
        self.outbuf.clear()
        self.outio.clear()
