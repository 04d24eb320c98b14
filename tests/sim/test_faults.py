"""Faults on a running daemon: nothing accepted is lost, nothing is delivered twice except
what a crash between a delivery and the removal of its envelope re-delivers (as the real
daemon does: ``queue.c`` deletes the envelope only on IMSG_*_DELIVERY_OK)."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from smtpd_sim.kernel.sched import call_later
from smtpd_sim.sim.faults import Fault, Faults
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import scenario_of
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec

# the profiles are registered in tests/conftest.py: `make test` runs "fault-schedule",
# `make soak` (SMTPD_SIM_SOAK=1) runs "fault-schedule-soak"
FAULT_PROFILE = "fault-schedule-soak" if os.environ.get("SMTPD_SIM_SOAK") else "fault-schedule"
ERAS = ("pony-6.8", "pony", "with-mfa", "without-mfa")
KINDS = ("mx_down", "mx_reply", "dns_failure", "disk_full", "agent_tempfail", "client_vanish", "mx_slow")


class Watch:
    """What the world saw, counted apart from the ledger: every delivery of every envelope,
    and at each crash the envelopes then both still in /queue and already delivered (or
    in a delivery agent's hands): the only ones a restart may deliver again."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.audit: list[tuple[int, int]] = []
        sim.ledger.audit = self.audit  # every world delivery, never forgotten
        self.exposed: Counter[int] = Counter()  # evpid -> crashes it was exposed to
        self.crashes = 0
        crash = sim.crash

        def crashed(process: str, restart_after_s: float) -> None:
            if not sim.down:
                self.crashes += 1
                on_disk = sim.roles["queue"].committed_envelopes()
                handed = {req.payload["evpid"] for req, _a in sim.roles["parent"].children.values()}
                for e in on_disk & (handed | {e for e, _i in self.audit}):
                    self.exposed[e] += 1
            crash(process, restart_after_s)

        sim.crash = crashed  # type: ignore[method-assign]

    def check(self) -> dict[str, Any]:
        """The ledger's accounting against what was watched; returns its summary."""
        sim = self.sim
        s = sim.ledger.summary(sim.queued_on_disk(), crashes=True)
        assert s["lost"] == 0, s
        assert s["accepted"] == s["delivered"] + s["bounced"] + s["expired"] + s["queued"], s
        repeats = {e: n - 1 for e, n in Counter(e for e, _i in self.audit).items() if n > 1}
        assert s["duplicated"] == 0, (s, repeats)
        # the ledger missed no repeat, and each one followed a crash that found the envelope
        # delivered (or being delivered) and not yet removed
        assert sum(repeats.values()) == s["redelivered_after_crash"], (s, repeats)
        for e, n in repeats.items():
            assert n <= self.exposed[e], (hex(e), n, self.exposed[e])
        if not self.crashes:
            assert s["redelivered_after_crash"] == 0
        return s


def _fault_run(era: str, seed: int, recipients: int, local_share: float,
               faults: list[tuple[str, float, float, float]], crashes: list[tuple[int, float, float]],
               watch_sim: Any = None) -> tuple[Simulation, Watch, dict[str, Any]]:
    """One small run (15 s of arrivals) under the faults and the crashes (of the
    ``which``-th child by name, restarted ``restart`` s later), to quiet; the checks of
    :class:`Watch` and that everything settled. ``watch_sim(sim)``: called before the run."""
    wl = WorkloadSpec(duration_s=15, arrival=Arrival(rate_per_s=4.0),
                      mix=Mix(recipients=recipients, local_share=local_share, sender="alice@local.test"))
    sim = Simulation(scenario_of(era, workload=wl, seed=seed), rows=False)
    sim.startup()
    t0 = sim.env.now
    children = sorted(p for p in sim.procs if p != "parent")
    specs = []
    for kind, start, dur, rate in faults:
        kw: dict[str, Any] = {"kind": kind, "start_s": start, "duration_s": dur, "rate": rate}
        if kind == "mx_reply":
            kw.update(code=550 if rate > 0.5 else 451,
                      phase=("connect", "ehlo", "mail", "rcpt", "data", "eom")[int(dur) % 6])
        if kind == "mx_slow":
            kw.update(delay_s=1.0)
        specs.append(Fault(**kw))
    for which, start, restart in crashes:
        specs.append(Fault(kind="crash", process=children[which % len(children)], start_s=start,
                           restart_after_s=restart))
    watch = Watch(sim)
    if watch_sim is not None:
        watch_sim(sim)
    Faults(sim, specs, t0)
    sim.start_clients(t0)
    sim.run_until_quiet(t0 + 4 * 3600, step=1.0)
    s = watch.check()
    assert s["queued"] == 0 and sim.quiet(), s  # the faults are over: everything settles
    return sim, watch, s


# a RCPT refused with 550 for every recipient, the replies 1 s slow: the second recipient's
# bounce envelope reaches bounce_add() while a bounce session sends the first one's notice
# (seen failing: "evp:… not in the ramqueue", the notice's envelopes reported twice)
BOUNCE_DURING_SESSION = {
    "era": "pony-6.8", "seed": 1, "recipients": 2, "local_share": 0.0,
    "faults": [("mx_reply", 0.0, 39.0, 1.0), ("mx_slow", 0.0, 13.0, 1.0)],
}


@settings(settings.get_profile(FAULT_PROFILE))
@given(
    era=st.sampled_from(ERAS),
    seed=st.integers(1, 10_000),
    recipients=st.integers(1, 3),
    local_share=st.sampled_from((0.0, 0.5, 1.0)),
    faults=st.lists(st.tuples(st.sampled_from(KINDS), st.floats(0, 30), st.floats(1, 60), st.floats(0.05, 1.0)),
                    max_size=4),
    crashes=st.lists(st.tuples(st.integers(0, 20), st.floats(0, 30), st.sampled_from((0.0, 0.001, 0.5, 2.0))),
                     min_size=1, max_size=4),
)
@example(**BOUNCE_DURING_SESSION, crashes=[(0, 0.0, 0.0)])  # "ca" dies at once, restarts at once
def test_any_fault_schedule_loses_nothing_and_delivers_once(
        era: str, seed: int, recipients: int, local_share: float,
        faults: list[tuple[str, float, float, float]], crashes: list[tuple[int, float, float]]) -> None:
    """Whatever the faults (and crashes of any child, restarted at once or later), every
    accepted envelope ends delivered, bounced, expired or still in the queue, the counts
    balance, and each is delivered once but for crash redeliveries. Small runs (15 s of
    arrivals), so that many schedules fit in the suite."""
    _sim, watch, s = _fault_run(era, seed, recipients, local_share, faults, crashes)
    event(f"crashes: {watch.crashes if watch.crashes < 3 else '3+'}")
    event("a crash redelivered" if s["redelivered_after_crash"] else "no redelivery")


def test_a_bounce_envelope_added_while_its_notice_is_being_sent_gets_a_notice_of_its_own() -> None:
    """``bounce.c:bounce_next_message()`` takes the message out of the ``messages`` tree
    (``SPLAY_REMOVE``) when a session starts sending it: a bounce envelope of the same
    message added meanwhile starts a new bounce message, sent after. Each bounce envelope
    is reported once (no crash needed: this failed before with the scheduler told twice)."""
    late: list[int] = []  # bounce envelopes added while a session sends their message's notice

    def watch_sim(sim: Simulation) -> None:
        bounces = sim.roles["queue"].bounces
        add = bounces.add

        def added(evp: Any) -> None:
            if any(x.msg is not None and x.msg.msgid == evp.msgid for x in bounces.sessions):
                late.append(evp.id)
            add(evp)

        try:
            bounces.add = added
        except AttributeError:  # the compiled (mypyc) class: methods cannot be replaced
            watched.append(False)

    watched: list[bool] = []
    sim, _watch, s = _fault_run(**BOUNCE_DURING_SESSION, crashes=[], watch_sim=watch_sim)
    # whether the schedule still makes the late case is watched in pure Python only; the
    # checks below (no envelope reported twice, the accounting balances) run in both
    assert late or watched == [False], "the schedule no longer adds a bounce envelope to a message being sent"
    assert s["bounced"] > 0 and s["duplicated"] == 0, s
    assert sim.roles["queue"].bounces.nmessage == 0


# ---- the two ways a crash re-delivers, each made to happen -----------------------------------

def _one_message(local_share: float) -> Simulation:
    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=local_share, local_users=["bob"], sender="alice@local.test"))
    sim = Simulation(scenario_of("pony-6.8", workload=wl), rows=False)
    sim.startup()
    return sim


def test_a_crash_between_the_remote_250_and_the_removal_redelivers() -> None:
    """The remote MX took the message (250 on its way back); the daemon dies before the
    mta's IMSG_MTA_DELIVERY_OK reaches the queue: the envelope is still in /queue, the
    restarted daemon sends it again. A redelivery after a crash, not a duplicate."""
    sim = _one_message(0.0)
    watch = Watch(sim)
    mx_accepted = sim.remote_mx.on_delivered
    assert mx_accepted is not None
    crashed: list[float] = []

    def accepted(evpids: list[int]) -> None:
        mx_accepted(evpids)
        if not crashed:  # the next instant: the 250 has not reached the mta yet
            crashed.append(sim.env.now)
            call_later(sim.env, 1e-6, lambda _t: sim.crash("lka", 1.0))

    sim.remote_mx.on_delivered = accepted
    sim.start_clients()
    sim.run_until_quiet(sim.env.now + 3600)
    s = watch.check()
    assert crashed and sim.restarts == 1
    assert s["delivered"] == 1 and s["redelivered_after_crash"] == 1 and s["duplicated"] == 0
    assert sim.remote_mx.accepted_count == 2


def test_an_agent_that_outlives_the_daemon_writes_the_mailbox_and_the_restart_redelivers() -> None:
    """The mda has written the whole message into the agent's pipe; the daemon dies: the
    agent (its own session, ``forkmda()``'s ``setsid()``) still writes the mailbox, and the
    restarted daemon (at once) finds the envelope in /queue and delivers it again."""
    sim = _one_message(1.0)
    watch = Watch(sim)
    parent = sim.roles["parent"]
    crashed: list[list[int]] = []

    def poll(_t: object) -> None:
        orphans = parent.orphans()
        if orphans:
            crashed.append(orphans)
            sim.crash("queue", 0.0)
        elif not crashed:
            call_later(sim.env, 1e-5, poll)

    sim.start_clients()
    call_later(sim.env, 0.0, poll)
    sim.run_until_quiet(sim.env.now + 3600)
    s = watch.check()
    assert crashed and sim.restarts == 1
    assert s["delivered"] == 1 and s["redelivered_after_crash"] == 1 and s["duplicated"] == 0
    assert sim.ledger.orphans == {} and not sim.ledger.world_deliveries


def test_a_run_without_crash_faults_reports_no_redelivery_count() -> None:
    """The count exists where a crash can happen: a run without crash faults reports the
    ledger it always did."""
    from smtpd_sim.sim.runner import Runner

    wl = WorkloadSpec(duration_s=2, arrival=Arrival(rate_per_s=5.0), mix=Mix(local_share=0.5))
    plain = Runner(scenario_of("pony-6.8", workload=wl))
    plain.start()
    plain.drain(600)
    assert "redelivered_after_crash" not in plain.result().ledger
    crashy = Runner(scenario_of("pony-6.8", workload=wl, faults=[Fault(kind="crash", process="lka", start_s=1)]))
    crashy.start()
    crashy.drain(600)
    led = crashy.result().ledger
    assert list(led)[-2:] == ["duplicated", "redelivered_after_crash"] and led["duplicated"] == 0


def test_the_simulation_refuses_an_unknown_crash_as_a_model_error() -> None:
    """Code that arms faults on a scenario it built itself still gets one line, not a bare ValueError."""
    import pytest

    from smtpd_sim.errors import ModelError

    sim = Simulation(scenario_of("pony"))
    with pytest.raises(ModelError, match="no process 'mfa'"):
        Faults(sim, [Fault(kind="crash", process="mfa")], 0.0)
