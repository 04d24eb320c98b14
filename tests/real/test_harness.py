"""smtpd_sim.real: sink, scenario client and procstat (always), and the REAL daemon (only on request).

The tests marked ``real`` start the Debian OpenSMTPD 6.8.0p2 as root in a loopback-only
network namespace. They run only when asked for, with ``SMTPD_SIM_REAL=1`` or
``pytest -m real``; otherwise they are reported as skipped (never as passed). When asked
for, a missing prerequisite (root, ``ip``, the package) is a failure, not a skip.
``SMTPD_SIM_REAL_LONG=1`` adds the two retry scenarios (~9 minutes).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpd_sim.real import harness, procstat
from smtpd_sim.real.harness import (
    SMTPD_CONF,
    NetNamespace,
    RealDaemon,
    RealDaemonError,
    RealRun,
    check_prerequisites,
    running_smtpd_pids,
)
from smtpd_sim.real.scenarios import (
    SCENARIOS,
    DialogError,
    SmtpSession,
    get_scenario,
    run_scenario_client,
    scenario_names,
)
from smtpd_sim.real.sink import Sink, SinkError, rcpt_reply
from smtpd_sim.observe.traces import compare_hops, compare_replies, read_hops_csv

DATA = Path(__file__).resolve().parents[1] / "data" / "real-traces"
LONG = ("local-tempfail-retry", "relay-unreachable-retry")


def _real_requested(config: pytest.Config) -> bool:
    if os.environ.get("SMTPD_SIM_REAL") == "1":
        return True
    expr = str(config.getoption("markexpr", "") or "")
    return re.search(r"(?<!not )\breal\b", expr) is not None


@pytest.fixture
def real_requested(request: pytest.FixtureRequest) -> None:
    """Skip (visibly) unless the real-daemon tests were explicitly requested."""
    if not _real_requested(request.config):
        pytest.skip("real-daemon test: run with SMTPD_SIM_REAL=1 or pytest -m real (root, Debian)")


# ---------------------------------------------------------------------------- sink (no root needed)


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink(port=0)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def _session(port: int) -> SmtpSession:
    return SmtpSession(socket.create_connection(("127.0.0.1", port), 5), timeout=5)


def test_sink_answers_like_the_research_sink(sink: Sink) -> None:
    s = _session(sink.port)
    assert s.greeting.startswith("220 ")
    assert s.cmd("EHLO mx.local.test").startswith("250-")
    assert s.cmd("MAIL FROM:<sender@local.test>").startswith("250")
    assert s.cmd("RCPT TO:<reject-me@relay.test>").startswith("550")
    assert s.cmd("RCPT TO:<defer-me@relay.test>").startswith("451")
    assert s.cmd("RCPT TO:<user@relay.test>").startswith("250")
    assert s.cmd("DATA").startswith("354")
    assert s.data_body(["Subject: x", "", ".leading dot", "body"]).startswith("250")
    assert s.cmd("QUIT").startswith("221")
    s.close()
    assert sink.count == 1
    m = sink.messages[0]
    assert m.mail_from == "sender@local.test" and m.rcpt_tos == ["user@relay.test"]
    assert [a for a, _ in sink.rejected] == ["reject-me@relay.test", "defer-me@relay.test"]


def test_sink_rules_and_loopback_only() -> None:
    assert rcpt_reply("Reject.x@relay.test").startswith("550")
    assert rcpt_reply("deferred@relay.test").startswith("451")
    assert rcpt_reply("user@relay.test").startswith("250")
    with pytest.raises(SinkError, match="loopback"):
        Sink(port=0, host="10.0.0.1")


def test_sink_stop_hangs_up_and_frees_the_port(sink: Sink) -> None:
    s = _session(sink.port)
    port = sink.port
    sink.stop()
    assert not sink.running
    assert s.cmd("NOOP") in ("<EOF>", "<TIMEOUT>")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), 1)


def test_sink_port_in_use_is_a_clear_error(sink: Sink) -> None:
    with pytest.raises(SinkError, match="cannot listen"):
        Sink(port=sink.port).start()


# ---------------------------------------------------------------------------- scenario client


def test_scenario_registry() -> None:
    short = scenario_names()
    assert short[:6] == ["local-1rcpt", "local-3rcpt", "relay-1rcpt", "reject-rcpt", "protocol-errors",
                         "relay-permfail-bounce"]
    assert not set(LONG) & set(short)
    assert set(scenario_names(long=True)) == set(SCENARIOS)
    with pytest.raises(DialogError, match="long=True"):
        get_scenario("relay-unreachable-retry")
    with pytest.raises(DialogError, match="unknown scenario"):
        get_scenario("nope")


def test_scenario_client_runs_against_any_smtp_server(sink: Sink) -> None:
    """The same client drives another server (here the sink): research dialog shape."""
    d = run_scenario_client("local-1rcpt", "127.0.0.1", sink.port)
    ref = json.loads((DATA / "traces" / "local-1rcpt.dialog.json").read_text())
    assert d["name"] == "local-1rcpt" and len(d["sessions"]) == 1
    sess, ref_sess = d["sessions"][0], ref["sessions"][0]
    assert set(sess) == set(ref_sess)
    assert sess["client"][:4] == ref_sess["client"][:4] and sess["client"][-2:] == [".", "QUIT"]
    assert len(sess["replies"]) == len(ref_sess["replies"]) == 7
    assert sess["replies"][0] == sess["greeting"]
    assert {e["dir"] for e in sess["timeline"]} == {"C", "S"}
    assert sink.count == 1  # the sink accepted alice@local.test: it accepts anything not reject/defer


def test_scenario_client_connection_refused_is_a_dialog_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DialogError, match="cannot connect"):
        run_scenario_client("protocol-errors", "127.0.0.1", port, timeout=2)


def test_scenario_client_reports_a_silent_server() -> None:
    """A server that never answers: every read is bounded by the timeout, no hang."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        t0 = time.monotonic()
        d = run_scenario_client("reject-rcpt", "127.0.0.1", srv.getsockname()[1], timeout=0.2)
    assert d["sessions"][0]["greeting"] == "<TIMEOUT>"
    assert time.monotonic() - t0 < 5


# ---------------------------------------------------------------------------- procstat


def test_procstat_reads_own_process() -> None:
    a = procstat.read_cpu(os.getpid())
    sum(i * i for i in range(200000))
    b = procstat.read_cpu(os.getpid())
    assert b.utime + b.stime >= a.utime + a.stime >= 0
    assert (b - a).total >= 0
    assert procstat.process_name(os.getpid()) is None


def test_procstat_titles(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = {1: ["smtpd", "-d", "-f", "conf/smtpd.conf"], 2: ["smtpd: pony express"], 3: ["smtpd: klondike"],
            4: ["/usr/sbin/smtpd", "-x", "queue"], 5: ["sh", "-c", "/usr/libexec/opensmtpd/mail.maildir"]}
    monkeypatch.setattr(procstat, "cmdline", lambda pid: argv[pid])
    assert [procstat.process_name(p) for p in argv] == ["parent", "pony", "ca", None, None]
    assert procstat.TITLE_TO_PROC["lookup"] == "lka"


def test_procstat_errors() -> None:
    with pytest.raises(procstat.ProcStatError):
        procstat.read_cpu(2**22 + 12345)
    with pytest.raises(procstat.ProcStatError, match="not an smtpd parent"):
        procstat.smtpd_processes(os.getpid())


# ---------------------------------------------------------------------------- harness, no root


def _directives(text: str) -> list[str]:
    return [" ".join(ln.split()) for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def test_embedded_config_is_the_research_config() -> None:
    assert _directives(SMTPD_CONF) == _directives((DATA / "smtpd.conf").read_text())


def test_prerequisite_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(RealDaemonError, match="must run as root") as e:
        check_prerequisites()
    assert "\n" not in str(e.value)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real_which = harness._which
    monkeypatch.setattr(harness, "_which", lambda c: None if c == "ip" else real_which(c))
    with pytest.raises(RealDaemonError, match="'ip' not found"):
        check_prerequisites()


def test_run_helper_errors_and_timeouts() -> None:
    with pytest.raises(RealDaemonError, match="command not found"):
        harness._run(["/nonexistent/smtpd-sim-cmd"], timeout=5, what="probe")
    t0 = time.monotonic()
    with pytest.raises(RealDaemonError, match="did not finish within"):
        harness._run(["sleep", "5"], timeout=0.2, what="probe")
    assert time.monotonic() - t0 < 3
    with pytest.raises(RealDaemonError, match="exited 3"):
        harness._run(["sh", "-c", "echo boom >&2; exit 3"], timeout=5, what="probe")


def test_daemon_requires_context_manager(tmp_path: Path) -> None:
    with pytest.raises(RealDaemonError, match="context manager"):
        RealDaemon(tmp_path).start()


# ---------------------------------------------------------------------------- the real daemon


@pytest.fixture(scope="module")
def real_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RealRun]:
    """Every non-long scenario against fresh real daemons (once per module)."""
    if not _real_requested(request.config):
        pytest.skip("real-daemon test: run with SMTPD_SIM_REAL=1 or pytest -m real (root, Debian)")
    work = tmp_path_factory.mktemp("real")
    out = os.environ.get("SMTPD_SIM_REAL_OUT")
    return harness.run_real_scenarios(work, outdir=out)


@pytest.mark.real
def test_real_prerequisites(real_requested: None) -> None:
    check_prerequisites()  # raises a one-line RealDaemonError when the machine cannot do it


@pytest.mark.real
def test_real_netns_is_loopback_only(real_requested: None) -> None:
    check_prerequisites()
    with NetNamespace(f"{harness.NETNS_PREFIX}t{os.getpid()}") as ns:
        cp = subprocess.run(["ip", "-n", ns.name, "-o", "addr"], capture_output=True, text=True, timeout=10)
        assert all(" lo " in ln for ln in cp.stdout.splitlines())
        with pytest.raises(OSError):  # no route to anything but loopback
            ns.connect("192.0.2.1", 25, 1.0).close()
    assert not ns.path.exists()


@pytest.mark.real
@pytest.mark.parametrize("name", scenario_names())
def test_real_hops_match_reference(real_requested: None, real_runs: dict[str, RealRun], name: str) -> None:
    """Fresh real trace vs research CSV: same non-stat (from, to, imsg) multiset and per-channel order."""
    run = real_runs[name]
    c = compare_hops(read_hops_csv(DATA / "csv" / f"{name}.imsg.csv"), run.hops_df)
    assert c["multiset_equal"], f"only in reference {c['only_in_real']}, only now {c['only_in_sim']}"
    assert c["channel_order_equal"], c["channel_divergences"]
    assert (run.hops_df.phase == "startup").sum() == 6  # CONF_START/END to lka, pony, ca


@pytest.mark.real
@pytest.mark.parametrize("name", scenario_names())
def test_real_replies_match_reference(real_requested: None, real_runs: dict[str, RealRun], name: str) -> None:
    ref = json.loads((DATA / "traces" / f"{name}.dialog.json").read_text())
    c = compare_replies(ref, real_runs[name].dialogs)
    assert c["equal"], c["differences"]


@pytest.mark.real
def test_real_deliveries_and_cleanup(real_requested: None, real_runs: dict[str, RealRun]) -> None:
    for name in ("local-1rcpt", "local-3rcpt", "relay-1rcpt"):
        assert real_runs[name].notes["delivered_after_s"] is not None, name
    assert real_runs["relay-permfail-bounce"].notes["bounce_delivered_after_s"] is not None
    assert set(real_runs["local-1rcpt"].cpu) == {"parent", "ca", "control", "lka", "pony", "queue", "scheduler"}
    assert running_smtpd_pids() == []
    stale = list(harness.NETNS_DIR.glob(f"{harness.NETNS_PREFIX}*")) if harness.NETNS_DIR.exists() else []
    assert stale == []


@pytest.mark.real
@pytest.mark.parametrize("name", LONG)
def test_real_long_scenarios(real_requested: None, tmp_path: Path, name: str) -> None:
    if os.environ.get("SMTPD_SIM_REAL_LONG") != "1":
        pytest.skip("long real-daemon scenario: also set SMTPD_SIM_REAL_LONG=1 (~9 minutes)")
    with RealDaemon(tmp_path) as d:
        run = d.run_scenario(name, long=True)
    c = compare_hops(read_hops_csv(DATA / "csv" / f"{name}.imsg.csv"), run.hops_df)
    assert c["multiset_equal"], f"only in reference {c['only_in_real']}, only now {c['only_in_sim']}"
