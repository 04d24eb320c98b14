"""The runq (``runq.c``) on the mta role's clock: jobs by absolute second, one evtimer.

Semantics read from 6.8.0p2 ``runq.c`` (5.4.2 and 5.7.3 order and run jobs the same way):
``runq_schedule_at()`` inserts a job after those due at the same second,
``runq_timeout()`` runs every job due when it fires (one scheduled from a callback too),
``runq_cancel()`` / ``runq_pending()`` find a job by its argument.
"""

from __future__ import annotations

from typing import Any

from smtpd_sim.roles.mta import MtaRole
from smtpd_sim.roles.runq import RunQ
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import scenario_of


def _runq(ran: list[tuple[Any, int]],
          also: dict[str, str] | None = None) -> tuple[Simulation, RunQ]:
    """A runq on a fresh pony-6.8 mta role; its callback logs (arg, time(NULL)) and, for an
    arg in ``also``, schedules that other arg due at once."""
    sim = Simulation(scenario_of("pony-6.8"))
    sim.startup()
    mta = sim.roles["mta"]
    assert isinstance(mta, MtaRole)

    def cb(runq: RunQ, arg: Any) -> None:
        ran.append((arg, mta.time()))
        if also and arg in also:
            runq.schedule(0, also[arg])

    return sim, RunQ(mta, cb, "test.runq")


def test_jobs_run_by_second_then_in_the_order_they_were_scheduled() -> None:
    ran: list[tuple[Any, int]] = []
    sim, q = _runq(ran)
    t0 = q.role.time()
    q.schedule_at(t0 + 3, "a")
    q.schedule_at(t0 + 1, "b")
    q.schedule_at(t0 + 1, "c")
    q.schedule(2, "d")
    assert [a for _w, a in q.jobs] == ["b", "c", "d", "a"]
    sim.run(sim.env.now + 5)
    assert [a for a, _t in ran] == ["b", "c", "d", "a"]
    assert all(t >= t0 + {"a": 3, "b": 1, "c": 1, "d": 2}[a] for a, t in ran)
    assert not q.jobs and q.ev is None


def test_a_job_scheduled_by_a_callback_and_due_runs_in_the_same_pass() -> None:
    ran: list[tuple[Any, int]] = []
    sim, q = _runq(ran, also={"a": "a2"})
    q.schedule(1, "a")
    sim.run(sim.env.now + 3)
    assert [a for a, _t in ran] == ["a", "a2"]
    assert ran[0][1] == ran[1][1]


def test_cancel_and_pending_find_a_job_by_its_argument() -> None:
    ran: list[tuple[Any, int]] = []
    sim, q = _runq(ran)
    t0 = q.role.time()
    first, second = object(), object()
    q.schedule_at(t0 + 1, first)
    q.schedule_at(t0 + 2, second)
    assert q.pending(first) == t0 + 1 and q.pending(second) == t0 + 2
    assert q.cancel(first)  # the first job: the evtimer is re-armed for the second
    assert not q.cancel(first)
    assert q.pending(first) is None
    sim.run(sim.env.now + 1.5)
    assert ran == []
    sim.run(sim.env.now + 1.5)
    assert [a for a, _t in ran] == [second]
