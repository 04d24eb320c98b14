"""A message's life after 250: retries, expiry, delay warnings (faults: tests/sim/test_faults.py)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import scenario_of
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec

REAL = Path(__file__).parent.parent / "data" / "real-traces" / "csv"


def _one(user: str, site: str = "research", sender: str = "sender@local.test") -> WorkloadSpec:
    return WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                        mix=Mix(local_share=1.0, local_users=[user], sender=sender))


def _real(name: str) -> list[tuple[str, str, str]]:
    with open(REAL / f"{name}.imsg.csv", newline="") as fh:
        return [(r["from_proc"], r["to_proc"], r["imsg_name"]) for r in csv.DictReader(fh)
                if r["phase"] == "scenario" and not r["imsg_name"].startswith(("IMSG_STAT_", "IMSG_CTL_"))]


def test_local_tempfail_retries_like_the_real_daemon() -> None:
    """real-daemon.md §7 / local-tempfail-retry: dave's maildir is broken; the MDA is retried
    at t+10, +40, +89.1 (creation + 10·n², whole seconds); at t+100 the maildir is fixed
    and `smtpctl schedule all` delivers at once. The imsgs (smtpctl's CTL_* left out:
    only their effect is modelled) equal the real trace's."""
    sim = Simulation(scenario_of("pony-6.8", workload=_one("dave"), site="research", calibration="traced-6.8"))
    sim.startup()
    t0 = sim.env.now
    sim.start_clients()
    sim.run(t0 + 100.0)
    sim.site.broken["dave"] = "ok"
    sim.roles["scheduler"].schedule_all()
    sim.run_until_quiet(t0 + 200.0)
    hops = [(h[2], h[3], h[4]) for h in sim.recorder.hops if not h[8]]
    assert Counter(hops) == Counter(_real("local-tempfail-retry"))
    tries = [h[0] for h in sim.recorder.hops if h[4] == "IMSG_SCHED_ENVELOPE_DELIVER"]
    assert len(tries) == 5
    first = tries[0]  # the immediate first attempt, right after acceptance
    for got, want in zip(tries[1:4], (10.0, 40.0, 90.0), strict=True):
        # whole-second clock: the real daemon's third retry came at +89.1
        assert want - 1.0 <= got - first <= want + 0.05, (got - first, want)
    assert 100.0 <= tries[4] - t0 < 100.1
    assert sim.ledger.summary()["delivered"] == 1


def _stuck_relay(era: str, hours: float) -> Simulation:
    """One relayed message whose MX never answers, run for ``hours``."""
    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=0.0, sender="alice@local.test"))
    sim = Simulation(scenario_of(era, workload=wl, site="common-case"), rows=False)
    sim.remote_mx.down = True
    sim.ledger.keep_delays = True
    sim.startup()
    sim.start_clients()
    sim.run(sim.env.now + hours * 3600)
    return sim


def test_delay_warning_then_expiry_after_four_days_with_their_bounces() -> None:
    """scheduler.c: the delay warning goes out on the tempfail whose *next* try is at or past
    creation + 4 h (sc_bounce_warn): MTA tries at +400, +1600, +3600, +6400, +10000 s, so it
    is the failure at +10000 s (plus the 11 s the connector takes to give up), next try
    +14400. A bounce to the sender, delivered to alice's mailbox. SMTPD_QUEUE_EXPIRY 4 days:
    the envelope expires ("Envelope expired", a second bounce) and is settled."""
    sim = _stuck_relay("pony-6.8", 24 * 4 + 2)
    led = sim.ledger
    assert led.warnings == 1
    (evpid, t_warn), = led.warning_times
    assert 10000 <= t_warn <= 10000 + 30
    s = led.summary()
    assert s["expired"] == 1 and s["queued"] == 0 and s["lost"] == 0
    assert led.bounces_created == 2 and led.bounces_sent == 2  # warning + expiry, to alice
    assert s["delivered"] == 0 and s["accepted"] == 1  # the bounces are the daemon's own mail
    # the next tries on the way: exactly creation + 400·n² (real-daemon.md §7) — relative to
    # the creation second — up to the first point past the 4-day expiry, which never runs
    creation = min(t for _e, t in led.retries) - 400
    series = [round(t - creation) for _e, t in led.retries]
    assert series == [400 * n * n for n in range(1, 31)]
    assert series[-1] > 4 * 86400 > series[-2]
