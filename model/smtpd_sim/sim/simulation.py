"""One simulated daemon with its world, built from a resolved scenario.

Data flows one way: scenario (``smtpd_sim.spec.scenario.Scenario``) → topology graph →
this Simulation (SimPy environment, processes, channels, roles, world) → the recorder,
the ledger and the client log (``smtpd_sim.observe``) → results. Roles get ports
(``smtpd_sim.roles.ports``), never this object. Runs are driven by
``smtpd_sim.sim.runner``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from smtpd_sim.fsm.envelope import Envelope
from smtpd_sim.imsg import STAT_FIXED_LEN, STAT_KINDS, Vocabulary
from smtpd_sim.kernel.channel import Channel
from smtpd_sim.kernel.process import DEAD, IDLE, Kernel, Process, ProcessCosts
from smtpd_sim.kernel.sched import call_later
from smtpd_sim.observe.client_log import ClientLog
from smtpd_sim.observe.ledger import Ledger
from smtpd_sim.observe.recorder import Recorder
from smtpd_sim.observe.sketch import Sketch
from smtpd_sim.roles.ports import Hooks, Ports
from smtpd_sim.roles.registry import role_class
from smtpd_sim.spec.plugins import plugin_imsgs
from smtpd_sim.spec.scenario import Scenario
from smtpd_sim.world.clients import ClientFleet
from smtpd_sim.world.disk import Disk
from smtpd_sim.world.dns import Resolver
from smtpd_sim.world.faults import FaultPort
from smtpd_sim.world.filter_proc import FilterProcessor
from smtpd_sim.world.remote_mx import RemoteMx
from smtpd_sim.world.site import Site
from smtpd_sim.world.tables import Table, open_tables

STAT_PERIOD_S = 1.0  # config.c:config_done(): process_stat_event() every second (5.4.2)


class Simulation:
    """One simulated daemon with its world; deterministic for a given seed.

    ``rows``: record one row per hop and per handler run (traces, critical paths);
    ``stream``: keep no per-message history, so memory follows what is in flight
    (latencies go into sketches); ``keep_body``: keep the message bytes (a live server
    writes them out)."""

    def __init__(self, scenario: Scenario, *, rows: bool = True, stream: bool = False,
                 keep_body: bool = False) -> None:
        self.scenario = scenario
        self.topology = scenario.topology
        self.calibration = cal = scenario.calibration
        self.site = Site(scenario.site)
        self.workload = workload = scenario.workload
        self.seed = scenario.seed
        self.keep_body = keep_body
        self.stream = stream
        self.recorder = Recorder(rows=rows)
        self.kernel = Kernel(scenario.cores or cal.cores, policy=cal.cpu_policy, observer=self.recorder,
                             apart=STAT_KINDS)
        self.env = self.kernel.env
        self.vocab = Vocabulary(self.topology.spec.vocabulary, plugin_imsgs())
        self.world = cal.world
        self.resolver = Resolver(self.site, self.world.dns_latency_s)
        self.disk = Disk(cal.disk.cpu_s, cal.disk.wait_s)
        self.faults = FaultPort()  # armed by smtpd_sim.sim.faults
        self.remote_mx = RemoteMx(self.world)
        self.remote_mx.faults = self.faults  # the world and the roles find the faults in one place
        self.remote_mx.hook = self._remote_accepted
        self.remote_mx.on_delivered = lambda evpids: [self.ledger.world_delivery(e) for e in evpids]
        if workload is not None:
            self.remote_mx.starttls = workload.remote.starttls
            self.remote_mx.cert_chain = workload.remote.cert_chain
            self.remote_mx.dsn = workload.remote.dsn
        self.ledger = Ledger()
        self.clients = ClientLog(stream=stream)
        if stream:
            self.ledger.keep_delays = False
            self.ledger.delivery_delays = Sketch()
            self.remote_mx.keep_log = False
        self.hooks = Hooks()  # a live server's listeners (smtpd_sim.serve)
        self._channel_latency = cal.channel.latency_s
        self.down = False  # between a crash and the restart
        self.restarts = 0
        self.history: dict[str, dict[str, float]] = {}  # cpu/busy of dead incarnations
        self.disk_snapshot: dict[int, list[Envelope]] | None = None
        self.tables: dict[str, Table] = {}
        self._build_daemon()
        # a load generator on the daemon's own cores, if the workload says so: its CPU per
        # reply is the workload's client_cpu_s, its wake-up the calibration's [roles.client]
        # (measured with smtpd_sim.real.load, which is not a daemon role)
        self.client_proc: Process | None = None
        if workload is not None and workload.client_cpu_s > 0:
            client = cal.roles.get("client")
            self.client_proc = Process(self.kernel, "client", ProcessCosts(wake=client.wake_s if client else 0.0))
        self.fleet: ClientFleet | None = None

    def _build_daemon(self, disk: Any = None) -> None:
        """Fork the daemon: processes with their roles' costs, live socketpairs, roles.
        ``disk``: the on-disk queue a restarted daemon finds (``queue_timeout()``)."""
        spec = self.topology.spec
        cal = self.calibration
        self.procs: dict[str, Process] = {}
        for p in spec.process:
            self.procs[p.name] = Process(self.kernel, p.name, self._costs(p.roles))
        self.channels: list[Channel] = []
        for a, b in spec.channels:
            pa, pb = self.procs[a], self.procs[b]
            ch = Channel(self.kernel.clock, pa, pb, latency=self._channel_latency, per_byte=cal.channel.per_byte_s,
                         fd_cost=cal.channel.fd_s)
            pa.channels[pb] = ch
            pb.channels[pa] = ch
            self.channels.append(ch)
        self.hosts: dict[str, Process] = {r: self.procs[p] for r, p in self.topology.host.items()}
        # lka's table_open_all() at CONF_END: in-process tables, or forked table processes
        self.tables = open_tables(self.kernel, self._channel_latency, dict(self.scenario.tables))
        for t in self.tables.values():
            if t.proc is not None:
                self.procs[t.proc.name] = t.proc
        # 6.8 filter processors (forked by the parent at start; only lka talks to them)
        self.filter_procs = {f.name: FilterProcessor(self.kernel, f, self._channel_latency)
                             for f in spec.filter}
        ports = Ports(
            behaviour=self.topology.behaviour, vocab=self.vocab, hosts=self.hosts, site=self.site,
            world=self.world, ledger=self.ledger, recorder=self.recorder, disk=self.disk,
            resolver=self.resolver, remote_mx=self.remote_mx, faults=self.faults, hooks=self.hooks,
            rng=self.rng, tables=self.tables, filters=self.filter_procs,
            socketpair_latency_s=cal.channel.latency_s, keep_body=self.keep_body)
        self.roles: dict[str, Any] = {}
        for p in spec.process:
            proc = self.procs[p.name]
            for r in p.roles:
                role = role_class(r)(proc, ports)
                proc.add_role(role)
                self.roles[r] = role
        for fp in self.filter_procs.values():
            self.procs[fp.proc.name] = fp.proc
        for role in self.roles.values():
            role.start()
        if disk is not None:
            self.roles["queue"].load_from_disk(disk)
        if self.topology.behaviour.stat_buffers:
            for proc in self.procs.values():
                if "control" not in proc.roles:
                    proc.timer(STAT_PERIOD_S, self._stat_buffers, proc, key="stat.buffers")

    def _costs(self, roles: list[str]) -> ProcessCosts:
        """Each kind a role handles costs that role's figure (or its default); io keys too."""
        cal = self.calibration
        handler: dict[str, float] = {}
        wake = per_byte = default = 0.0
        for r in roles:
            rc = cal.roles.get(r)
            if rc is None:
                continue
            wake = max(wake, rc.wake_s)
            per_byte = max(per_byte, rc.per_byte_s)
            default = max(default, rc.default_s)
            for kind in role_class(r).handlers:
                handler.setdefault(kind, rc.handler.get(kind, rc.default_s))
            for key, v in rc.handler.items():
                handler.setdefault(key, v)
        return ProcessCosts(wake=wake, handler=handler, default=default, per_byte=per_byte)

    def rng(self, purpose: str) -> random.Random:
        """An independent, reproducible random stream per purpose (a restarted daemon
        draws fresh ids, as arc4random would: a new stream per incarnation)."""
        if self.restarts:
            return random.Random(f"{self.seed}:{purpose}:restart{self.restarts}")
        return random.Random(f"{self.seed}:{purpose}")

    def _remote_accepted(self, sender: str, rcpts: list[str], msgid: int) -> None:
        relayed = self.hooks.relayed
        if relayed is not None:
            relayed(sender, rcpts, self.disk.bodies.get(msgid, b""))

    # ---- what the clients see (world.clients.Server) -------------------------------------

    def listener(self) -> Any:
        """The smtp role of the running daemon (it changes at a restart)."""
        return self.roles["smtp"]

    # ---- a crash and the restart -------------------------------------------------------------

    def crash(self, process: str, restart_after_s: float) -> None:
        """A child dies; the parent's ``parent_imsg(NULL)`` → ``fatalx("process %s socket
        closed")``: every process of the daemon is gone, connections reset, what was not
        committed to /queue is lost for good; ``restart_after_s`` later the daemon starts
        again from its on-disk queue."""
        if self.down:
            return
        self.down = True
        for name, proc in self.procs.items():
            h = self.history.setdefault(name, {"cpu": 0.0, "busy": 0.0})
            h["cpu"] += proc.cpu_time
            h["busy"] += proc.busy_time
        self.roles["smtp"].reset_all("daemon stopped")
        self.ledger.crashed(self.roles["parent"].orphans())
        for proc in self.procs.values():
            proc.kill()
        disk = self.roles["queue"].disk_state()
        self.disk_snapshot = disk
        self.recorder.event(self.env.now, "crash", process, 0, restart_after_s, 0)
        call_later(self.env, restart_after_s, lambda _t: self._restart(disk))

    def _restart(self, disk: Any) -> None:
        self.restarts += 1
        self.down = False
        self._build_daemon(disk)
        self.recorder.event(self.env.now, "restart", "parent", 0, self.restarts, 0)

    def queued_on_disk(self) -> set[int]:
        """Every envelope id in /queue right now (the snapshot while the daemon is down)."""
        if self.down and self.disk_snapshot is not None:
            return {e.id for evps in self.disk_snapshot.values() for e in evps}
        return self.roles["queue"].committed_envelopes()

    # ---- what a run measured -----------------------------------------------------------------

    def process_totals(self) -> dict[str, dict[str, float]]:
        """CPU and busy time per process name, over every incarnation."""
        out = {}
        for name, proc in self.procs.items():
            h = self.history.get(name, {"cpu": 0.0, "busy": 0.0})
            out[name] = {"cpu": h["cpu"] + proc.cpu_time, "busy": h["busy"] + proc.busy_time}
        return out

    def counters(self) -> dict[str, dict[str, float]]:
        """What each role of the running daemon counted (``Role.counters()``), by role."""
        return {name: role.counters() for name, role in self.roles.items()}

    # ---- 5.4.2 background statistics -----------------------------------------------------------

    def _stat_buffers(self, proc: Process) -> None:
        """``config.c:process_stat_event()``: IMSG_STAT_SET ``buffer.<self>.<peer>`` for each
        non-NULL peer pointer it walks (p_mta missing, p_mda twice), then re-arm."""
        if proc.state is DEAD:
            return
        control = self.hosts["control"]
        name = self.vocab.name("STAT_SET")
        for peer in self.topology.behaviour.stat_set_peers:
            target = self.procs.get(peer)
            if target is None or target is proc or target not in proc.channels:
                continue
            key = f"buffer.{proc.name}.{peer}"
            proc.send(control, "control", "config", "STAT_SET", name, (key, 0),
                      STAT_FIXED_LEN + len(key), False)
            self.recorder.background += 1
        proc.timer(STAT_PERIOD_S, self._stat_buffers, proc, key="stat.buffers")

    # ---- the steps a runner takes --------------------------------------------------------------

    def startup(self) -> None:
        """Run the configuration exchange (CONF_START/CONF_END) and forget its counts."""
        env = self.env
        env.run(until=env.now + 1e-4)
        while not all(p.state is IDLE and not p.inbox for p in self.procs.values()):
            env.run(until=env.now + 1e-3)
        self.startup_hops = dict(self.recorder.hop_counts)
        self.recorder.reset_counts()

    def start_clients(self, at: float | None = None) -> None:
        """The workload's clients start arriving (at ``at``, default now)."""
        if self.workload is None:
            return
        self.fleet = ClientFleet(self.env, self.workload, self.seed, server=self, world=self.world,
                                 log=self.clients, faults=self.faults, cpu_proc=self.client_proc)
        self.fleet.start(self.env.now if at is None else at)

    def quiet(self) -> bool:
        """No client session open, every accepted envelope settled, no outbound session,
        every daemon process idle."""
        if self.fleet is not None and not self.fleet.idle:
            return False
        if self.down or not self.ledger.settled():
            return False
        mta = self.roles.get("mta")
        if mta is not None and not mta.idle():
            return False
        return all(p.state is IDLE and not p.inbox for p in self.procs.values())

    def run_until_quiet(self, max_time: float = 3600.0, step: float = 0.25,
                        on_step: Callable[[bool], None] | None = None) -> float:
        """Advance ``step`` by ``step`` (possibly past ``max_time``) until ``quiet()`` or
        ``max_time``; ``on_step(quiet)`` after each step."""
        env = self.env
        while env.now < max_time:
            env.run(until=env.now + step)
            quiet = self.quiet()
            if on_step is not None:
                on_step(quiet)
            if quiet:
                break
        return env.now

    def run(self, until: float) -> None:
        self.env.run(until=until)
