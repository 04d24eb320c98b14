"""``smtpd-sim real validate``: the same scenarios against the real OpenSMTPD and the simulator.

For each scenario a fresh real 6.8.0p2 daemon (``smtpd_sim.real``, loopback network namespace)
and a fresh ``smtpd-sim serve`` (the pony-6.8 topology with the ``traced-6.8`` calibration,
the research site, in real time) are driven by the very same SMTP client. Per scenario:

* the multiset of non-stat (from, to, imsg) hops — must be equal;
* the ordered sequence — similarity reported (two real runs differ too: processes woken
  by the same write race for the CPU), and the order within each channel;
* the stat hops (IMSG_STAT_*) — counts reported;
* every SMTP reply — must be equal except the 8-hex message id.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from smtpd_sim.observe.metrics import trace_hops
from smtpd_sim.observe.traces import as_observed, compare_hops, compare_replies
from smtpd_sim.real.daemon import SINKS
from smtpd_sim.real.scenarios import ScenarioEnv, run_scenario_client, scenario_names
from smtpd_sim.serve.server import LiveServer
from smtpd_sim.spec.scenario import DEFAULT_ERA, RESEARCH_SITE
from smtpd_sim.world.remote_mx import Profile

SETTLE_S = 1.5  # the real harness lets the daemon settle this long before the END marker
SINK_REPLIES = {"reject": "550 5.1.1 rejected by the sink", "defer": "451 4.3.0 deferred by the sink"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def research_sink(rcpt: str) -> str | None:
    """research/real-traces/tools/sink.py: 550 for local parts starting with ``reject``,
    451 for ``defer``, else accept."""
    local = rcpt.partition("@")[0]
    for prefix, reply in SINK_REPLIES.items():
        if local.startswith(prefix):
            return reply
    return None


class SimServerThread:
    """A LiveServer on free loopback ports, its asyncio loop in a background thread."""

    def __init__(self, *, calibration: str = "traced-6.8", site: str = RESEARCH_SITE, era: str = DEFAULT_ERA) -> None:
        self.server = LiveServer(era, site=site, calibration=calibration, rows=True)
        sim = self.server.sim
        sim.remote_mx.rcpt_policy = research_sink
        sim.remote_mx.down = True  # the harness starts the sink only when a scenario wants it
        for port, dsn, chain in SINKS.values():  # what each sink of the real harness offers
            sim.remote_mx.profiles[("", port)] = Profile(starttls=chain > 0, cert_chain=chain or 2, dsn=dsn)
        self.port, self.tls_port = _free_port(), _free_port()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        ready = asyncio.Event()

        async def main() -> None:
            task = asyncio.ensure_future(self.server.serve("127.0.0.1", self.port, self.tls_port, ready))
            await ready.wait()
            self._ready.set()
            await task

        try:
            self.loop.run_until_complete(main())
        except (asyncio.CancelledError, RuntimeError):
            pass
        # let the cancelled tasks (the pump) finish cancelling
        pending = asyncio.all_tasks(self.loop)
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    def __enter__(self) -> SimServerThread:
        self.thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the simulated server did not start listening")
        return self

    def __exit__(self, *exc: object) -> None:
        def stop() -> None:
            for t in asyncio.all_tasks(self.loop):
                t.cancel()
        self.loop.call_soon_threadsafe(stop)
        self.thread.join(5)
        if not self.loop.is_closed() and not self.loop.is_running():
            self.loop.close()

    def call(self, fn: Any) -> Any:
        """Run ``fn`` in the server's thread, with the simulation brought to now; wait."""
        done = threading.Event()
        box: list[Any] = []

        def go() -> None:
            try:
                self.server.event(lambda: box.append(fn()))
            finally:
                done.set()

        self.loop.call_soon_threadsafe(go)
        done.wait(10)
        return box[0] if box else None


class SimEnv(ScenarioEnv):
    """The scenario's operator actions, applied to the simulation."""

    def __init__(self, st: SimServerThread) -> None:
        self.st = st
        self.marks: dict[str, float] = {}

    def mark(self, text: str) -> None:
        self.marks[text] = self.st.call(lambda: self.st.server.sim.env.now)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def maildir_count(self, user: str) -> int:
        return int(self.st.call(lambda: self.st.server.per_user.get(user, 0)))

    def wait_maildir(self, user: str, above: int, timeout: float) -> float | None:
        return self._wait(lambda: self.maildir_count(user) > above, timeout)

    # the simulation has one remote MX: every named sink of the real harness is it
    def sink_count(self, which: str = "relay") -> int:
        return int(self.st.call(lambda: self.st.server.sim.remote_mx.accepted_count))

    def wait_sink(self, above: int, timeout: float, which: str = "relay") -> float | None:
        return self._wait(lambda: self.sink_count(which) > above, timeout)

    def sink_start(self, which: str = "relay") -> None:
        self.st.call(lambda: setattr(self.st.server.sim.remote_mx, "down", False))

    def sink_stop(self, which: str = "relay") -> None:
        self.st.call(lambda: setattr(self.st.server.sim.remote_mx, "down", True))

    def sink_params(self, which: str = "relay") -> list[list[str]] | None:
        return list(self.st.call(lambda: list(self.st.server.sim.remote_mx.accepted_params)))

    def schedule_all(self) -> None:
        self.st.call(lambda: self.st.server.sim.roles["scheduler"].schedule_all())

    def set_maildir_broken(self, user: str, broken: bool) -> None:
        def go() -> None:
            self.st.server.sim.site.broken[user] = "tempfail" if broken else "ok"
        self.st.call(go)

    @staticmethod
    def _wait(pred: Any, timeout: float) -> float | None:
        end = time.time() + timeout
        while time.time() < end:
            if pred():
                return time.time()
            time.sleep(0.02)
        return None


@dataclass
class ScenarioCheck:
    """The comparison of one scenario."""

    name: str
    hops: dict[str, Any]
    replies: dict[str, Any]
    real_s: float
    sim_s: float

    @property
    def ok(self) -> bool:
        return bool(self.hops["multiset_equal"] and self.replies["equal"])


def run_sim_scenario(name: str, *, long: bool = False, era: str = DEFAULT_ERA) -> tuple[pd.DataFrame, dict[str, Any], float]:
    """The scenario against a fresh simulated server of ``era`` (default the 6.8 one the
    real harness runs): (observed hop table, dialog, seconds)."""
    t0 = time.monotonic()
    with SimServerThread(era=era) as st:
        env = SimEnv(st)
        time.sleep(0.2)
        env.mark("BEGIN")
        dialog = run_scenario_client(name, "127.0.0.1", st.port, tls_port=st.tls_port, env=env, long=long)
        time.sleep(SETTLE_S)
        env.mark("END")
        rows = st.call(lambda: list(st.server.sim.recorder.hops))
    begin, end = env.marks["BEGIN"], env.marks["END"]
    df = trace_hops([h for h in rows if begin <= h.time <= end])
    observed = as_observed(df, scenario=name, begin=begin, end=end)
    return observed, dialog, time.monotonic() - t0


def validate(names: list[str] | None = None, *, long: bool = False, workdir: Path | None = None,
             out: Any = sys.stdout) -> list[ScenarioCheck]:
    """Run every scenario on both sides and compare."""
    from smtpd_sim.real.daemon import RealDaemon
    from smtpd_sim.real.runs import run_scenario

    names = names or scenario_names(long=long)
    checks: list[ScenarioCheck] = []
    workdir = workdir or Path("results") / "validate-real"
    with RealDaemon(workdir) as d:
        for name in names:
            t0 = time.monotonic()
            real = run_scenario(d, name, long=long)
            real_s = time.monotonic() - t0
            sim_df, sim_dialog, sim_s = run_sim_scenario(name, long=long)
            checks.append(ScenarioCheck(name, compare_hops(real.hops_df, sim_df),
                                        compare_replies(real.dialogs, sim_dialog), real_s, sim_s))
            print(f"  {name}: real {real_s:.1f} s, sim {sim_s:.1f} s", file=out, flush=True)
    return checks


def print_table(checks: list[ScenarioCheck], out: Any = sys.stdout) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="smtpd-sim vs the real OpenSMTPD 6.8.0p2 (same clients)")
    for col in ("scenario", "non-stat hops real/sim", "multiset", "sequence ratio", "per-channel order",
                "stat hops real/sim", "replies", "result"):
        t.add_column(col)
    for c in checks:
        h, r = c.hops, c.replies
        t.add_row(
            c.name,
            f"{h['non_stat_counts']['real']}/{h['non_stat_counts']['sim']}",
            "equal" if h["multiset_equal"] else f"DIFF -{len(h['only_in_real'])} +{len(h['only_in_sim'])}",
            f"{h['sequence_ratio']:.3f}",
            "equal" if h["channel_order_equal"] else "differs",
            f"{h['stat_counts']['real']}/{h['stat_counts']['sim']}",
            "equal" if r["equal"] else f"{len(r['differences'])} differ",
            "[green]ok[/]" if c.ok else "[red]MISMATCH[/]",
        )
    Console(file=out, width=140).print(t)
    for c in checks:
        if not c.hops["multiset_equal"]:
            real, sim = ([f"{r['hop']} x{r['count']}" for r in c.hops[k]] for k in ("only_in_real", "only_in_sim"))
            print(f"{c.name}: only in real {', '.join(real) or '-'}; only in sim {', '.join(sim) or '-'}", file=out)
        for d in c.replies["differences"][:5]:
            print(f"{c.name}: reply {d['index']}: real {d['real']!r} / sim {d['sim']!r}", file=out)
