"""The scheduler role (``scheduler.c``): the stats of one ``scheduler_timeout()``."""

from __future__ import annotations

import pytest

from smtpd_sim.fsm.ramqueue import Tick
from smtpd_sim.fsm.scheduler_backend import Batch
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import scenario_of

# The stat of an update batch (envelopes rescheduled in the backend, nothing sent):
# 5.4.2 scheduler.c:scheduler_process_update() stat_increment("scheduler.envelope.update");
# 5.7.3 and 6.8 scheduler_timeout() stat_increment("scheduler.envelope.updated", d_updated).
UPDATE_STAT = {"with-mfa": "scheduler.envelope.update", "pony": "scheduler.envelope.updated",
               "pony-6.8": "scheduler.envelope.updated"}


@pytest.mark.parametrize("era", list(UPDATE_STAT))
def test_update_batch_stat_name(era: str) -> None:
    sim = Simulation(scenario_of(era))
    sim.startup()
    sim.run_until_quiet(max_time=sim.env.now + 5.0)
    sched = sim.roles["scheduler"]
    batch = Batch("update", [1 << 32 | 1, 1 << 32 | 2], ["update", "update"], 0.0)

    def fire(_arg: object) -> None:  # one firing whose batch is two updates, in the scheduler's loop
        sched._tick(Tick([batch], None), sched.backend.stats())

    sched.proc.timer(0.0, fire, None, key="scheduler.timeout")
    sim.run(sim.env.now + 1.0)
    stats = sim.roles["control"].stats
    assert stats.get(UPDATE_STAT[era]) == 2
    other = ({"scheduler.envelope.update", "scheduler.envelope.updated"} - {UPDATE_STAT[era]}).pop()
    assert other not in stats
