"""The services a simulation hands its roles (ports), instead of the simulation itself.

A role's ``__init__`` takes the few it uses and keeps no reference to the rest, so what a
role can reach is written in its constructor: the base class keeps the routing (which
process hosts which role, the era's imsg names and behaviour switches); the others pick
the ledger, the disk, the resolver, the remote MX, the site, the tables, random streams,
the recorder... The world's objects are shared: a fault that fills the disk is seen by
the queue at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smtpd_sim.fsm.envelope import Envelope
    from smtpd_sim.imsg import Vocabulary
    from smtpd_sim.kernel.process import Process
    from smtpd_sim.observe.ledger import Ledger
    from smtpd_sim.observe.recorder import Recorder
    from smtpd_sim.spec.topology import Behaviour
    from smtpd_sim.spec.world import WorldParams
    from smtpd_sim.world.disk import Disk
    from smtpd_sim.world.dns import Resolver
    from smtpd_sim.world.faults import FaultPort
    from smtpd_sim.world.filter_proc import FilterProcessor
    from smtpd_sim.world.remote_mx import RemoteMx
    from smtpd_sim.world.site import Site
    from smtpd_sim.world.tables import Table


class Hooks:
    """What a live server wants to hear (``smtpd_sim.serve``); None: nobody listens.

    ``delivered(evpid, user, data)``: a delivery agent writes the mailbox (``mail.maildir``
    before it exits); False means the write failed and the child exits EX_TEMPFAIL.
    ``relayed``: the remote MX accepted a message. The queue's file operations, done for
    real by a live server inside the handler (so smtp's 250 follows them):
    ``committed(msgid, envelopes, body)`` = ``queue_fs.c:queue_fs_message_commit()``
    (False: the commit fails, as when the rename fails), ``envelope_written(evp)`` =
    ``queue_fs_envelope_update()`` / ``queue_fs_envelope_create()`` into a committed
    message, ``envelope_deleted(evpid)`` = ``queue_fs_envelope_delete()``. ``date()``: the
    ``time_to_text(time(NULL))`` of a Received: header from the wall clock (None: the
    simulated clock, see ``SmtpRole.date_text``)."""

    __slots__ = ("delivered", "relayed", "committed", "envelope_written", "envelope_deleted", "date")

    def __init__(self) -> None:
        self.delivered: Callable[[int, str, bytes], bool] | None = None
        self.relayed: Callable[[str, list[str], bytes], None] | None = None
        self.committed: Callable[[int, list[Envelope], bytes], bool] | None = None
        self.envelope_written: Callable[[Envelope], None] | None = None
        self.envelope_deleted: Callable[[int], None] | None = None
        self.date: Callable[[], str] | None = None


class Ports:
    """Everything a role may be handed; see each role's ``__init__`` for what it takes."""

    def __init__(
        self,
        *,
        behaviour: Behaviour,
        vocab: Vocabulary,
        hosts: Mapping[str, Process],
        site: Site,
        world: WorldParams,
        ledger: Ledger,
        recorder: Recorder,
        disk: Disk,
        resolver: Resolver,
        remote_mx: RemoteMx,
        faults: FaultPort,
        hooks: Hooks,
        rng: Callable[[str], random.Random],
        tables: Mapping[str, Table],
        filters: Mapping[str, FilterProcessor],
        socketpair_latency_s: float,
        keep_body: bool,
    ) -> None:
        self.behaviour = behaviour
        self.vocab = vocab
        self.hosts = hosts
        self.site = site
        self.world = world
        self.ledger = ledger
        self.recorder = recorder
        self.disk = disk
        self.resolver = resolver
        self.remote_mx = remote_mx
        self.faults = faults
        self.hooks = hooks
        self.rng = rng
        self.tables = tables
        self.filters = filters  # 6.8 filter processors, by name (lka talks to them)
        self.socketpair_latency_s = socketpair_latency_s  # smtp_enqueue()'s socketpair
        self.keep_body = keep_body  # message bytes are kept (a live server writes them out)
