"""The mta role (``mta.c`` relays, connectors, routes) against the real 6.8.0p2 daemon.

Sources of the expected values:

* relay-unreachable-retry (real-daemon.md §7, tests/data/real-traces/csv and traces/):
  connection refused at once, "Disabling route [] <-> 127.0.0.1 (localhost) for 15s",
  connector retry in 2 s, "No valid route", TempFail "Network error on destination MXs"
  11 s after the attempt began, route re-enabled at +15 s, retries at +400 s and +1600 s,
  delivery after ``smtpctl schedule all`` once the sink is up.
* relay-permfail-bounce (real-daemon.md §5): 550 at RCPT → IMSG_MTA_DELIVERY_PERMFAIL,
  a bounce delivered locally.
* relay drain (real-daemon.md §9): 600 queued messages to one destination drain at
  14.9 msg/s; 100 messages per session, one session at a time; envelopes held above
  ``task_hiwat`` 50 and released by ``task_release`` 10 at ``task_lowat`` 30.

The real traces' IMSG_CTL_* hops come from the ``smtpctl`` client the scenario driver ran
(``show queue``-style listings and ``schedule all`` through control); the simulation
models only the effect of ``schedule all`` (``SchedulerRole.schedule_all()``), so those
hops are left out of the comparisons.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from smtpd_sim.sim.faults import Fault, Faults
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import scenario_of
from smtpd_sim.spec.site import SiteSpec
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec

DATA = Path(__file__).parent.parent / "data" / "real-traces"

Hop = tuple[str, str, str]


def _real(name: str) -> list[Hop]:
    """Non-stat, non-smtpctl hops of a real scenario, in receive order."""
    with open(DATA / "csv" / f"{name}.imsg.csv", newline="") as fh:
        return [(r["from_proc"], r["to_proc"], r["imsg_name"]) for r in csv.DictReader(fh)
                if r["phase"] == "scenario"
                and not r["imsg_name"].startswith(("IMSG_STAT_", "IMSG_CTL_"))]


def _real_mta_stats(name: str) -> list[str]:
    """``ramstat: increment|decrement: mta.*`` lines of the raw log, between the markers."""
    out, on = [], False
    for line in (DATA / "traces" / f"{name}.log").read_text().splitlines():
        if f"SCENARIO {name} BEGIN" in line:
            on = True
        elif f"SCENARIO {name} END" in line:
            break
        elif on and "ramstat: " in line:
            words = line.split()
            if words[2] in ("increment:", "decrement:") and words[3].startswith("mta."):
                out.append(f"{words[2]} {words[3]}")
    return out


def _per_channel(seq: list[Hop]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for src, dst, name in seq:
        out.setdefault((src, dst), []).append(name)
    return out


def _workload(sessions: int = 1, *, sender: str = "sender@local.test", rate: float = 10.0,
              arrival: Arrival | None = None) -> WorkloadSpec:
    return WorkloadSpec(name="mta-test", sessions=sessions,
                        arrival=arrival or Arrival(process="fixed", rate_per_s=rate),
                        mix=Mix(messages=1, recipients=1, local_share=0.0, sender=sender))


def _sim(era: str, site: Any, workload: WorkloadSpec, faults: list[Fault] | None = None,
         **kw: Any) -> tuple[Simulation, float]:
    sim = Simulation(scenario_of(era, workload=workload, site=site, calibration="research-6.8"), **kw)
    sim.startup()
    t0 = sim.env.now
    if faults:
        Faults(sim, faults, t0)
    return sim, t0


def _hops(sim: Simulation, t0: float = 0.0) -> list[Hop]:
    return [(h[2], h[3], h[4]) for h in sim.recorder.hops if not h[8] and h[0] >= t0]


def _times(sim: Simulation, name: str, src: str | None = None) -> list[float]:
    return [h[0] for h in sim.recorder.hops
            if h[4] == name and (src is None or h[2] == src)]


def _events(sim: Simulation, event: str) -> list[tuple[float, Any]]:
    return [(e[0], e[4]) for e in sim.recorder.events if e[1] == event]


class _StatTap:
    """Stands in for the control role in its process: logs the mta's stat imsgs as
    ``ramstat`` does, then hands every imsg to the role (whose methods, compiled, cannot
    be wrapped)."""

    def __init__(self, control: Any, log: list[str]) -> None:
        self.control = control
        self.log = log
        self.name = control.name
        self.handlers = {kind: _StatTap._handle for kind in control.handlers}

    def _handle(self, m: Any) -> None:
        verb = {"STAT_INCREMENT": "increment", "STAT_DECREMENT": "decrement"}.get(m.kind)
        if verb is not None and m.src_role == "mta":
            self.log.append(f"{verb}: {m.payload[0]}")
        self.control.handlers[m.kind](self.control, m)


def _tap_stats(sim: Simulation) -> list[str]:
    """Record the mta role's stat imsgs as ``ramstat`` logs them (as control handles them)."""
    control = sim.roles["control"]
    log: list[str] = []
    control.proc.roles[control.name] = _StatTap(control, log)
    return log


# ---- relay target down: real-daemon.md §7 -------------------------------------------------


@pytest.fixture(scope="module")
def unreachable() -> dict[str, Any]:
    """The real relay-unreachable-retry scenario: sink down for 430 s, then up and
    ``smtpctl schedule all`` (431.5 s after BEGIN in the real run)."""
    sim, t0 = _sim("pony-6.8", "research", _workload(),
                   [Fault(kind="mx_down", start_s=0.0, duration_s=430.0)])
    stats = _tap_stats(sim)
    sim.start_clients()
    sim.run(t0 + 431.5)
    sim.roles["scheduler"].schedule_all()
    sim.run(t0 + 436.0)  # the real trace window ends 4.6 s after the schedule
    window = _hops(sim, t0)
    stats_window = list(stats)
    sim.run(t0 + 460.0)
    return {"sim": sim, "t0": t0, "hops": window, "stats": stats_window, "all_stats": stats}


def test_unreachable_relay_hops_equal_the_real_trace(unreachable: dict[str, Any]) -> None:
    real = _real("relay-unreachable-retry")
    assert Counter(unreachable["hops"]) == Counter(real)
    assert _per_channel(unreachable["hops"]) == _per_channel(real)


def test_unreachable_relay_mta_stats_equal_the_real_log(unreachable: dict[str, Any]) -> None:
    """The 49 mta.* stat imsgs of the real run (ramstat lines), in order: the relay,
    connector and domain go with the flush at +11 s, the route, source and host with the
    route's re-enabling at +15 s."""
    real = _real_mta_stats("relay-unreachable-retry")
    assert len(real) == 49
    assert unreachable["stats"] == real


def test_unreachable_relay_timeline(unreachable: dict[str, Any]) -> None:
    sim, t0 = unreachable["sim"], unreachable["t0"]
    transfers = _times(sim, "IMSG_QUEUE_TRANSFER")
    tempfails = _times(sim, "IMSG_MTA_DELIVERY_TEMPFAIL")
    assert len(transfers) == 3 and len(tempfails) == 2
    accepted = transfers[0]
    # attempts at +0, +400 (first retry) and the forced one at 431.5
    assert transfers[1] - accepted == pytest.approx(400.0, abs=1.0)
    assert transfers[2] - t0 == pytest.approx(431.5, abs=0.01)
    # each failed attempt is given up 11 s after it began (real: 11.013 s and 11.012 s)
    for t_start, t_fail in zip(transfers, tempfails, strict=False):
        assert t_fail - t_start == pytest.approx(11.0, abs=0.5)
    # route disabled for 15 s at the refused connection, "No valid route" 2 s later
    # (the connector retry), re-enabled at +15 s; twice
    disabled = _events(sim, "mta.route_disabled")
    assert [d for _t, d in disabled] == [("127.0.0.1", 15)] * 2
    assert [t - accepted for t, _d in disabled] == [pytest.approx(0.0, abs=0.01),
                                                     pytest.approx(400.0, abs=1.0)]
    no_route = [t for t, _d in _events(sim, "mta.no_route")]
    enabled = [t for t, _d in _events(sim, "mta.route_enabled")]
    assert [b - a for a, b in zip([t for t, _ in disabled], no_route, strict=True)] == [
        pytest.approx(2.0, abs=0.01)] * 2
    assert [b - a for a, b in zip([t for t, _ in disabled], enabled, strict=True)] == [
        pytest.approx(15.0, abs=0.01)] * 2
    assert [d for _t, d in _events(sim, "mta.flush")] == ["Network error on destination MXs"] * 2
    # len=46 in the real trace: 14 + the status text
    tf = [h for h in sim.recorder.hops if h[4] == "IMSG_MTA_DELIVERY_TEMPFAIL"]
    assert {h[6] for h in tf} == {46}
    # delivered about 42 ms after the message fd came (Nagle + delayed ACK; real 42.0 ms)
    t_fd = _times(sim, "IMSG_MTA_OPEN_MESSAGE", src="queue")[-1]
    t_ok = _times(sim, "IMSG_MTA_DELIVERY_OK")[-1]
    assert 0.038 < t_ok - t_fd < 0.046


def test_unreachable_relay_retry_series(unreachable: dict[str, Any]) -> None:
    """The scheduler's next tries after each TempFail: creation + 400·n² (real: "delay=389"
    then "delay=1189" after 11 s and 411 s, i.e. +400 s and +1600 s)."""
    sim = unreachable["sim"]
    (evpid, rec), = sim.ledger.records.items()
    created = math.floor(rec[1])
    assert [when - created for e, when in sim.ledger.retries if e == evpid] == [400.0, 1600.0]
    assert sim.ledger.summary()["delivered"] == 1
    assert sim.remote_mx.refused == 2


def test_unreachable_relay_everything_is_freed_after_the_keepalive(unreachable: dict[str, Any]) -> None:
    """After the 10 s hang-on of the delivering session every mta object is gone: each
    mta.* stat went back to 0 (the 7 teardown decrements fall after the real window)."""
    sim = unreachable["sim"]
    stats = sim.roles["control"].stats
    assert {k: v for k, v in stats.items() if k.startswith("mta.") and v} == {}
    mta = sim.roles["mta"]
    assert not (mta.relays or mta.sessions or mta.routes or mta.hosts or mta.domains)
    assert len(unreachable["all_stats"]) - len(unreachable["stats"]) == 7


def test_5_4_2_disables_a_failed_new_route_for_800_s() -> None:
    """opensmtpd-5.4.2 mta.c: penalty 2 at DELAY_ROUTE_BASE 200 s → 800 s (era-5.4.2-mfa.md
    §7.2); the relay still gives up after 11 s."""
    sim, t0 = _sim("with-mfa", "common-case", _workload(), [Fault(kind="mx_down")])
    sim.start_clients()
    sim.run(t0 + 30.0)
    assert [d for _t, d in _events(sim, "mta.route_disabled")] == [("192.0.2.25", 800)]
    fails = [h for h in sim.recorder.hops if h[4] == "IMSG_DELIVERY_TEMPFAIL" and h[2] == "mta"]
    assert len(fails) == 1
    assert fails[0][0] - _times(sim, "IMSG_MTA_TRANSFER", src="queue")[0] == pytest.approx(11.0, abs=0.5)


# ---- permanent failure at RCPT: the bounce -------------------------------------------------


def _permfail_run() -> tuple[Simulation, float]:
    sim, t0 = _sim("pony-6.8", "research", _workload(sender="alice@local.test"),
                   [Fault(kind="mx_reply", phase="rcpt", code=550)])
    sim.start_clients()
    sim.run_until_quiet(max_time=t0 + 60.0)
    return sim, t0


def test_permfail_at_rcpt_reports_permfail_and_bounces() -> None:
    sim, t0 = _permfail_run()
    hops = _hops(sim, t0)
    pf = [h for h in sim.recorder.hops if h[4] == "IMSG_MTA_DELIVERY_PERMFAIL"]
    assert len(pf) == 1 and pf[0][6] == 14 + len("550 5.0.0 simulated failure at rcpt")
    assert sim.ledger.summary()["bounced"] == 1
    assert sim.ledger.bounces_created == 1
    # the mta part and the bounce's start equal the real trace up to the enqueue socket
    real = _real("relay-permfail-bounce")
    cut = real.index(("pony", "queue", "IMSG_QUEUE_SMTP_SESSION")) + 1
    cut_sim = hops.index(("pony", "queue", "IMSG_QUEUE_SMTP_SESSION")) + 1
    assert Counter(hops[:cut_sim]) == Counter(real[:cut])


def test_permfail_bounce_hops_equal_the_real_trace() -> None:
    """The permanent failure, the bounce through pony's own SMTP server path and its local
    delivery: the same imsgs as the real 6.8.0p2 trace, in the same order on every channel."""
    sim, t0 = _permfail_run()
    real = _real("relay-permfail-bounce")
    assert Counter(_hops(sim, t0)) == Counter(real)
    assert _per_channel(_hops(sim, t0)) == _per_channel(real)


@pytest.mark.parametrize("phase,code,kind", [("mail", 550, "IMSG_MTA_DELIVERY_PERMFAIL"),
                                             ("rcpt", 451, "IMSG_MTA_DELIVERY_TEMPFAIL"),
                                             ("eom", 452, "IMSG_MTA_DELIVERY_TEMPFAIL")])
def test_reply_faults_map_to_delivery_results(phase: str, code: int, kind: str) -> None:
    sim, t0 = _sim("pony-6.8", "common-case", _workload(),
                   [Fault(kind="mx_reply", phase=phase, code=code, duration_s=5.0)])
    sim.start_clients()
    sim.run(t0 + 20.0)
    results = [h[4] for h in sim.recorder.hops
               if h[4].startswith("IMSG_MTA_DELIVERY_") and h[2] == "pony"]
    assert results == [kind]


# ---- drain to one destination: real-daemon.md §9 --------------------------------------------


@pytest.fixture(scope="module")
def drain() -> dict[str, Any]:
    """600 messages queued with the MTA paused (``smtpd -P mta``), then resumed."""
    n = 600
    sim, t0 = _sim("pony-6.8", "research", _workload(n, rate=500.0))
    sched = sim.roles["scheduler"]
    sched.mta_paused = True
    sim.start_clients()
    while sim.ledger.accepted_msgs < n:
        sim.run(sim.env.now + 0.5)
    t_resume = sim.env.now

    sched.resume("mta")  # smtpctl resume mta: IMSG_CTL_RESUME_MTA
    sim.run_until_quiet(max_time=t_resume + 600.0)
    return {"sim": sim, "n": n, "t_resume": t_resume}


def test_drain_rate_to_one_destination(drain: dict[str, Any]) -> None:
    """Measured 14.9 msg/s (600 messages in 40.3 s); 12-18 accepted."""
    sim = drain["sim"]
    ends = sorted(r[3] for r in sim.ledger.records.values() if r[3] is not None)
    assert len(ends) == drain["n"] == sim.ledger.summary()["delivered"]
    rate = drain["n"] / (ends[-1] - drain["t_resume"])
    assert 12.0 <= rate <= 18.0


def test_drain_runs_one_session_at_a_time_of_100_messages(drain: dict[str, Any]) -> None:
    """max_mail_per_session 100 → 6 sessions; a session (≈4.2 s) ends before
    conndelay_route (5 s) allows the next, discdelay_route (3 s) then delays it."""
    sim = drain["sim"]
    mx = sim.remote_mx
    assert mx.connections == 6
    assert mx.max_open == 1
    assert mx.stalls == drain["n"]
    oks = sorted(t for t, (_e, status, _x) in _events(sim, "mta.delivery") if status == "ok")
    first_session = oks[99] - oks[0]  # real: "100 messages in 4.4 s", ≈23 msg/s
    assert 3.8 < first_session < 4.6
    gap = oks[100] - oks[99]  # real: "then about 3 s with no connection"
    assert 2.5 < gap < 4.0


def test_drain_holds_above_hiwat_and_releases_at_lowat(drain: dict[str, Any]) -> None:
    sim = drain["sim"]
    mta = sim.roles["mta"]
    hops = sim.recorder.hops
    held = [h for h in hops if h[4] == "IMSG_MTA_DELIVERY_HOLD"]
    released = [h for h in hops if h[4] == "IMSG_MTA_HOLDQ_RELEASE"]
    assert len(held) == mta.holds > 0
    assert len(released) == len(mta.releases)
    # tasks on the relay when the first envelope was held: received - taken ≥ task_hiwat
    t_hold = held[0][0]
    received = sum(1 for h in hops if h[4] == "IMSG_QUEUE_TRANSFER" and h[0] < t_hold)
    taken = sum(1 for h in hops if h[4] == "IMSG_MTA_OPEN_MESSAGE" and h[3] == "queue" and h[0] < t_hold)
    assert received - taken >= 50
    # released task_release (10) at a time at task_lowat, everything once the relay empties
    ns = [n for _t, n in mta.releases]
    assert ns.count(10) >= (drain["n"] - 50) // 10 - 1
    assert set(ns) <= {10, 0, -1}
    assert sim.roles["scheduler"].backend.stats()["scheduler.ramqueue.hold"] == 0


# ---- MX preference, several addresses ------------------------------------------------------


def _mx_site(mx: list[str], a: dict[str, list[str]]) -> SiteSpec:
    return SiteSpec(
        hostname="mx.local.test",
        domain=[{"name": "relay.test", "action": "relay", "via": "mx"}],
        dns={"ptr": {"127.0.0.1": "localhost"}, "a": {"localhost": ["127.0.0.1"], **a},
             "mx": {"relay.test": mx}})


def test_mx_preference_order_and_failover_to_the_backup_mx() -> None:
    site = _mx_site(["mx1.relay.test", "mx2.relay.test"],
                    {"mx1.relay.test": ["192.0.2.1"], "mx2.relay.test": ["192.0.2.2"]})
    # both up: the lowest preference value only
    sim, t0 = _sim("pony-6.8", site, _workload(3, rate=1.0))
    sim.start_clients()
    sim.run_until_quiet(max_time=t0 + 100.0)
    assert sim.remote_mx.by_addr == {"192.0.2.1": 1}
    assert sim.ledger.summary()["delivered"] == 3
    # the primary refuses: its route is disabled, the connector's next try (conndelay_relay
    # 2 s later) finds it suspended and moves to the next preference level
    sim, t0 = _sim("pony-6.8", site, _workload())
    sim.remote_mx.down_addrs = {"192.0.2.1"}
    sim.start_clients()
    sim.run_until_quiet(max_time=t0 + 100.0)
    assert sim.remote_mx.refused == 1
    assert sim.remote_mx.by_addr == {"192.0.2.2": 1}
    assert sim.ledger.summary()["delivered"] == 1
    t_ok = _times(sim, "IMSG_MTA_DELIVERY_OK")[0]
    assert t_ok - _times(sim, "IMSG_QUEUE_TRANSFER")[0] == pytest.approx(2.0, abs=1.0)
    assert [d for _t, d in _events(sim, "mta.route_disabled")] == [("192.0.2.1", 15)]


def test_several_addresses_share_the_load() -> None:
    """One MX with two addresses at the same preference: the second connection goes to
    the route with the fewest connections."""
    site = _mx_site(["mx1.relay.test"], {"mx1.relay.test": ["192.0.2.1", "192.0.2.2"]})
    sim, t0 = _sim("pony-6.8", site, _workload(200, rate=500.0))
    sim.start_clients()
    sim.run_until_quiet(max_time=t0 + 600.0)
    assert sim.ledger.summary()["delivered"] == 200
    assert set(sim.remote_mx.by_addr) == {"192.0.2.1", "192.0.2.2"}
    assert sim.remote_mx.max_open >= 2


# ---- hoststat: deferred envelopes rescheduled when the domain answers again ----------------


def test_hoststat_reschedules_an_envelope_deferred_on_a_dead_domain(tmp_path: Path) -> None:
    """A delivery to relay.test records a hoststat entry; while the MX is down a new
    message is deferred ("Network error", cached in the hoststat); the next successful
    RCPT to relay.test sends IMSG_MTA_SCHEDULE for it, long before its +400 s retry."""
    arrivals = tmp_path / "arrivals.csv"
    arrivals.write_text("time\n0.1\n21\n70\n")
    wl = _workload(3, arrival=Arrival(process="replay", csv=str(arrivals)))
    sim, t0 = _sim("pony-6.8", "common-case", wl.model_copy(update={"duration_s": 100.0}),
                   [Fault(kind="mx_down", start_s=20.0, duration_s=40.0)])
    sim.start_clients()
    sim.run(t0 + 120.0)
    schedules = [h for h in sim.recorder.hops if h[4] == "IMSG_MTA_SCHEDULE"]
    assert len(schedules) == 1 and 70.0 < schedules[0][0] - t0 < 71.0
    assert _times(sim, "IMSG_QUEUE_ENVELOPE_SCHEDULE")
    assert sim.ledger.summary()["delivered"] == 3
    assert len(_times(sim, "IMSG_MTA_DELIVERY_TEMPFAIL")) == 1
