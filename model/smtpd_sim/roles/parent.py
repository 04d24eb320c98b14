"""The privileged parent (``smtpd.c``): config, ~/.forward opens, forks of delivery agents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smtpd_sim.kernel.message import Imsg
from smtpd_sim.roles.base import Role, handles
from smtpd_sim.world.delivery_agent import EXIT_CODES, DeliveryAgent

if TYPE_CHECKING:
    from smtpd_sim.kernel.process import Process
    from smtpd_sim.roles.ports import Ports


class ParentRole(Role):
    """``smtpd.c:parent_imsg()`` and friends; runs as root, never chrooted."""

    name = "parent"

    def __init__(self, proc: Process, ports: Ports) -> None:
        super().__init__(proc, ports)
        self.children: dict[int, tuple[Imsg, DeliveryAgent]] = {}
        self.forks = 0
        self.max_children = 0
        self.children_cpu = 0.0  # what the real parent sees as cutime + cstime
        self.filters = tuple(ports.filters)  # processor names (forked at start)
        self.disk = ports.disk
        self.site = ports.site
        self.world = ports.world
        self.faults = ports.faults
        self.ledger = ports.ledger
        self.hooks = ports.hooks

    def counters(self) -> dict[str, float]:
        """Delivery agents forked, the most alive at once, their CPU (cutime + cstime)."""
        return {"forks": self.forks, "max_children": self.max_children, "children_cpu_s": self.children_cpu}

    def start(self) -> None:
        """``smtpd.c:parent_send_config()`` on an evtimer 0 after start-up: CONF_START and
        CONF_END to each process that is configured by imsg (5.4.2: lka, mfa, smtp;
        5.7.3/6.8: lka, pony, ca). Config itself is inherited by fork/re-exec."""
        self.proc.timer(0.0, self._send_config, None, key="parent.config")

    def _send_config(self, _arg: object) -> None:
        # smtpd.c:fork_filter_processes(): each processor's stdin/stdout to lka
        for name in self.filters:
            self.send("lka", "LKA_PROCESSOR_FORK", {"name": name}, length=len(name) + 1, fd=True)
        order = ["lka", "mfa", "smtp"] if self.behaviour.filters == "mfa" else ["lka", "smtp", "ca"]
        # parent_send_config_lka(), parent_send_config_mfa()/_pony(), parent_send_config_smtp()/_ca()
        for role in order:
            if role not in self._hosts:
                continue
            self.send(role, "CONF_START")
            self.send(role, "CONF_END")

    @handles("LKA_PROCESSOR_ERRFD")
    def on_processor_errfd(self, m: Imsg) -> None:
        """``parent_imsg()`` IMSG_LKA_PROCESSOR_ERRFD: the processor's stderr to lka."""
        self.reply(m, "LKA_PROCESSOR_ERRFD", m.payload, length=m.length, fd=True)

    @handles("LKA_OPEN_FORWARD")
    def on_forward_open(self, m: Imsg) -> None:
        """``smtpd.c:parent_imsg()`` IMSG_LKA_OPEN_FORWARD → ``parent_forward_open()``:
        stat the home directory and open ``~user/.forward`` as root; pass the fd (or -1)."""
        req = m.payload
        self.disk.op(self.proc, "open")
        user = self.site.userinfo(req["user"])
        has_file = bool(user and user.forward)
        self.reply(m, "LKA_OPEN_FORWARD", {**req, "status": 1, "forward": has_file}, fd=has_file)

    @handles("MDA_FORK")
    def on_mda_fork(self, m: Imsg) -> None:
        """``smtpd.c:forkmda()``: pipe, capture file, fork; the child becomes the user and
        execs the delivery method; the parent answers with the pipe's write end."""
        deliver = m.payload
        self.proc.charge(self.world.fork_cpu_s)
        self.forks += 1
        status = self.site.mailbox(deliver["user"])
        faults = self.faults.armed
        if status == "ok" and faults is not None and faults.active("agent_tempfail", user=deliver["user"]):
            status = "tempfail"  # mail.maildir exits EX_TEMPFAIL (a full or broken mailbox)
        evpid = deliver["evpid"]
        on_exit = self._child_exited
        if status == "ok":
            # the mailbox is written before the child exits: a delivery the world sees even
            # if the daemon dies before it learns about it (made by this incarnation)
            def on_exit(agent: DeliveryAgent, evpid: int = evpid, d: dict[str, Any] = deliver,
                        epoch: int = self.ledger.epoch) -> None:
                if self._write_mailbox(d):
                    self.ledger.world_delivery(evpid, epoch)
                else:
                    agent.status = "tempfail"  # mail.maildir: err(EX_TEMPFAIL, NULL)
                self._child_exited(agent)
        agent = DeliveryAgent(self.proc.kernel, self.forks, self.world, status, on_exit,
                              self.proc.vruntime + (self.proc.cursor - self.proc.run_start))
        self.children[deliver["session"]] = (m, agent)
        self.max_children = max(self.max_children, len(self.children))
        self.reply(m, "MDA_FORK", {"session": deliver["session"], "agent": agent}, fd=True)

    def _write_mailbox(self, d: dict[str, Any]) -> bool:
        """What ``mail.maildir`` does before it exits 0: with a live server listening, the
        message with mda.c's "Return-Path: <sender>" and "Delivered-To: rcpt" lines on top
        is written for real; False if that write failed."""
        hook = self.hooks.delivered
        if hook is None:
            return True
        body = self.disk.bodies.get(d["evpid"] >> 32, b"")
        head = f"Return-Path: <{d['sender']}>\nDelivered-To: {d['rcpt']}\n".encode()
        return hook(d["evpid"], d["user"], head + body)

    def orphans(self) -> list[int]:
        """The envelopes whose agent will still write the mailbox if the daemon dies now: it
        has read the whole message from its pipe, and nothing stops it when the parent dies
        (``forkmda()``'s child is in its own session, ``setsid()``; ``parent_imsg(NULL)``'s
        ``fatalx()`` is a plain ``exit(1)`` that signals no child)."""
        return [req.payload["evpid"] for req, agent in self.children.values()
                if agent.status == "ok" and agent.delivering]

    def _child_exited(self, agent: DeliveryAgent) -> None:
        # SIGCHLD: handled by the parent's event loop (parent_sig_handler())
        self.proc.post(self._sigchld, agent, key="parent.sigchld")

    def _sigchld(self, agent: DeliveryAgent) -> None:
        """``smtpd.c:parent_sig_handler()``: waitpid(), build the cause, IMSG_MDA_DONE with
        the captured-output fd to the mda."""
        for session, (req, a) in list(self.children.items()):
            if a is agent:
                del self.children[session]
                self.children_cpu += agent.proc.cpu_time
                status = agent.status
                cause = "exited okay" if status == "ok" else "exited abnormally"
                self.reply(req, "MDA_DONE", {"session": session, "status": status,
                                             "exit": EXIT_CODES[status], "cause": cause}, fd=True)
                return
