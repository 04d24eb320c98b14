"""A streaming simulation: the same run as a recording one, with memory that follows what
is in flight rather than what has passed."""

from __future__ import annotations

import pytest

from smtpd_sim.kernel.sched import _COMPACT_MIN
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import scenario_of
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec
from smtpd_sim.studies.bench import bench_workload
from smtpd_sim.studies.load import run_load


def test_streaming_measures_the_same_run() -> None:
    wl = WorkloadSpec(name="mixed", sessions=400, duration_s=8.0, arrival=Arrival(process="poisson", rate_per_s=50),
                      mix=Mix(local_share=0.6, size_bytes=2048))
    exact, _ = run_load("pony-6.8", wl, seed=3)
    streamed, res = run_load("pony-6.8", wl, seed=3, stream=True)
    assert streamed.ledger == exact.ledger and streamed.accepted == exact.accepted
    assert streamed.idle_fraction == exact.idle_fraction and streamed.cpu_ms_per_msg == exact.cpu_ms_per_msg
    assert streamed.latency_mean_s == exact.latency_mean_s
    assert streamed.latency_p99_s == pytest.approx(exact.latency_p99_s, rel=1e-3)
    assert res.messages is None  # no per-message history kept
    sim = Simulation(scenario_of("pony-6.8", workload=wl, seed=3), stream=True)
    assert not sim.ledger.keep_delays and not sim.remote_mx.keep_log  # the remote MX counts only


def _peaks(messages: int) -> dict[str, int]:
    """The largest heap, ledger and in-flight count seen, sampled every simulated second."""
    sim = Simulation(scenario_of("pony-6.8", workload=bench_workload(messages), seed=1), rows=False, stream=True)
    sim.startup()
    sim.start_clients()
    led, env = sim.ledger, sim.env
    peak = {"heap": 0, "ledger": 0, "in_flight": 0}
    while env.now < 2.0 or not sim.quiet():
        env.run(until=env.now + 1.0)
        live = sum(1 for e in env._queue if not getattr(e[3], "cancelled", False))
        # cancelled timers wait for a compaction, at most _COMPACT_MIN of them or half the heap
        assert len(env._queue) <= max(2 * live, live + _COMPACT_MIN) + 1
        peak["heap"] = max(peak["heap"], live)
        peak["ledger"] = max(peak["ledger"], len(led.state) + len(led.accept_times) + len(led.world_deliveries))
        peak["in_flight"] = max(peak["in_flight"], led.in_flight)
    assert led.counts["delivered"] == messages and not led.state and not led.world_deliveries
    return peak


def test_memory_follows_what_is_in_flight_not_what_has_passed() -> None:
    # four times the messages at the same rate: the same load in flight, so the same
    # bookkeeping. Before timers were really cancelled, mta.c's hoststat expiry (re-armed
    # for 4 h at every relayed message) left one dead timer per message on the heap.
    small, big = _peaks(500), _peaks(2000)
    assert big["heap"] <= 1.5 * small["heap"] + 20, (small, big)
    assert big["ledger"] <= 1.5 * small["ledger"] + 20, (small, big)


def _delivered_messages(records: dict, until: float) -> int:
    """The per-record count the sweeps used before the ledger counted it as it went:
    messages whose every envelope was delivered by ``until``."""
    done: dict[int, bool] = {}
    for msgid, _acc, state, ended, _tf in records.values():
        done[msgid] = done.get(msgid, True) and state == "delivered" and ended is not None and ended <= until
    return sum(done.values())


def test_delivered_in_window_is_the_count_from_the_records() -> None:
    # several recipients, local and relayed, a load that leaves some deliveries after the
    # window: whole messages delivered by the end of the arrivals
    wl = WorkloadSpec(name="multi", sessions=300, duration_s=3.0, arrival=Arrival(process="poisson", rate_per_s=100),
                      mix=Mix(local_share=0.5, recipients=3, size_bytes=4096))
    m, res = run_load("pony-6.8", wl, seed=2)
    assert res.window is not None and res.messages is not None
    reference = _delivered_messages(res.messages, res.window.end)
    assert 0 < reference < m.accepted  # some, not all, made it within the window
    assert res.delivered_in_window == reference
