"""``smtpd-sim trace`` and ``run --trace``: the simulator's runs written as the real daemon's
``-T imsg`` log and as Chrome trace JSON, readable by the same parser as real traces."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from smtpd_sim.cli import app
from smtpd_sim.observe.traces import compare_hops, parse_log_file

DATA = Path(__file__).parents[1] / "data" / "real-traces"
runner = CliRunner()


def test_trace_log_parses_back_and_matches_the_real_daemon(tmp_path: Path) -> None:
    """The written log goes through the real-trace parser; its scenario hops equal the real
    6.8.0p2 local-1rcpt trace as a multiset and per channel (real-traces/traces/local-1rcpt.log)."""
    log, chrome = tmp_path / "t.log", tmp_path / "t.json"
    r = runner.invoke(app, ["trace", "pony-6.8", "--imsg", str(log), "--chrome", str(chrome)])
    assert r.exit_code == 0, r.output
    sim = parse_log_file(log)
    real = parse_log_file(DATA / "traces" / "local-1rcpt.log")
    c = compare_hops(real, sim)
    assert c["multiset_equal"], (c["only_in_real"], c["only_in_sim"])
    assert c["channel_order_equal"], c["channel_divergences"]
    assert c["non_stat_counts"]["sim"] == 31  # era-pony.md §3.5 / real-daemon.md: 31 local
    events = json.loads(chrome.read_text())["traceEvents"]
    names = {e["args"]["name"] for e in events if e.get("name") == "process_name"}
    assert {"pony", "lka", "queue", "scheduler", "control", "parent", "ca"} <= names
    assert any(e.get("cat") == "handler" and e["dur"] > 0 for e in events)


def test_trace_with_mfa_shows_the_mfa_round_trips() -> None:
    r = runner.invoke(app, ["trace", "with-mfa"])
    assert r.exit_code == 0
    to_mfa = [ln for ln in r.output.splitlines() if "imsg: mfa <- smtp" in ln]
    assert len(to_mfa) >= 6  # one query per SMTP phase (era-5.4.2-mfa.md §3.5)


def test_trace_bad_kind_is_one_line_exit_2() -> None:
    r = runner.invoke(app, ["trace", "pony-6.8", "--kind", "nope"])
    assert r.exit_code == 2
    assert "--kind" in r.output and "Traceback" not in r.output


def test_run_trace_writes_both_files(tmp_path: Path) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text('name = "tiny"\ndrain_s = 30\n[workload]\nname = "tiny"\nsessions = 3\n'
                    '[workload.arrival]\nprocess = "fixed"\nrate_per_s = 10\n')
    r = runner.invoke(app, ["run", str(scen), "--out", str(tmp_path / "out"), "--trace", "--json"])
    assert r.exit_code == 0, r.output
    hops = parse_log_file(tmp_path / "out" / "imsg.log")
    assert (hops["imsg_name"] == "IMSG_SMTP_MESSAGE_COMMIT").sum() == 2 * 3  # pony->queue, queue->pony
    assert json.loads((tmp_path / "out" / "trace.json").read_text())["traceEvents"]
