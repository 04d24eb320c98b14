"""messages.csv: one row per accepted envelope (then per bounce envelope) with what it takes
to see why a message was slow; all of it from the run, and the run unchanged by recording it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import smtpd_sim.studies.run as study
from smtpd_sim.studies.messages import LEDGER_COLUMNS, MESSAGE_COLUMNS, domain_of
from smtpd_sim.studies.run import messages_frame, run_scenario, write_results

SCENARIO = '''name = "slow"
era = "pony-6.8"
seed = 3
drain_s = 3600
sample_s = 30
[workload]
duration_s = 300
[workload.arrival]
rate_per_s = 0.5
[workload.mix]
recipients = 2
local_share = 0.5
size_bytes = 1024
sender = "alice@local.test"
[[fault]]
kind = "mx_down"
start_s = 30
duration_s = 120
[[fault]]
kind = "mx_reply"
phase = "rcpt"
code = 550
rate = 0.1
[[fault]]
kind = "crash"
process = "queue"
start_s = 100
restart_after_s = 30
'''


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object, pd.DataFrame]:
    sc = tmp_path_factory.mktemp("m") / "slow.toml"
    sc.write_text(SCENARIO)
    summary, res = run_scenario(sc)
    return summary, res, messages_frame(res, summary.envelopes)


def test_columns_ledger_first_then_the_new_ones(run: tuple) -> None:
    _s, _r, m = run
    assert tuple(m.columns) == MESSAGE_COLUMNS and MESSAGE_COLUMNS[:6] == LEDGER_COLUMNS


def test_client_rows_kind_domain_size_recipients_session(run: tuple) -> None:
    summary, _r, m = run
    c = m[m["kind"] != "bounce"]
    assert len(c) == summary.ledger["accepted"]
    assert set(zip(c["kind"], c["domain"], strict=True)) == {("local", "local.test"), ("relay", "relay.test")}
    # one size per message, the body plus the headers smtp adds (Received:), for 1024-byte bodies
    assert (c.groupby("msgid")["size"].nunique() == 1).all() and (c["size"] > 1024).all()
    per_msg = c.groupby("msgid").agg(n=("evpid", "size"), rcpts=("recipients", "first"),
                                     sessions=("session", "nunique"))
    assert (per_msg["n"] == per_msg["rcpts"]).all() and (per_msg["rcpts"] == 2).all()
    assert (per_msg["sessions"] == 1).all()
    assert c["session"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert c["session"].nunique() == len(per_msg)  # one message per session in this workload


def test_attempts_waits_and_errors_explain_the_slow_ones(run: tuple) -> None:
    summary, _r, m = run
    assert summary.crashes == 1 and summary.restarts >= 1  # envelopes read back from disk too
    c = m[m["kind"] != "bounce"]
    done = c[c["state"].isin(["delivered", "bounced"])]
    assert (done["attempts"] == done["tempfails"] + 1).all()
    assert (done["queue_wait_s"] >= 0).all()
    assert (done["queue_wait_s"] <= done["ended_at"] - done["accepted_at"]).all()
    retried = c[c["tempfails"] > 0]
    assert len(retried) > 0 and (retried["kind"] == "relay").all()  # the MX was down, not the mailboxes
    assert retried["last_error"].str.len().gt(0).all()
    # the slow ones are the retried ones: their delays are longer than any first-try delivery
    first = done[done["tempfails"] == 0]
    assert (retried["ended_at"] - retried["accepted_at"]).min() > (first["ended_at"] - first["accepted_at"]).max()
    bounced = c[c["state"] == "bounced"]
    assert len(bounced) == summary.ledger["bounced"] > 0
    assert bounced["last_error"].str.startswith("550").all()
    assert sum(c["tempfails"]) <= summary.tempfails


def test_bounce_rows_are_the_bounces_the_queue_made(run: tuple) -> None:
    summary, _r, m = run
    b = m[m["kind"] == "bounce"]
    assert len(b) == summary.bounces["generated"] > 0
    assert (b["state"] == "sent").sum() == summary.bounces["delivered"]
    assert set(b["domain"]) == {domain_of("alice@local.test")}  # back to the sender
    assert b[["size", "recipients", "session", "queue_wait_s"]].isna().all().all()
    bounced_msgs = set(m.loc[(m["kind"] != "bounce") & (m["state"] == "bounced"), "msgid"])
    assert set(b["msgid"]) <= bounced_msgs


def test_recording_changes_nothing_in_the_run(run: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary, res, m = run
    monkeypatch.setattr(study, "install_log", lambda ledger, hooks: None)
    sc = tmp_path / "slow.toml"
    sc.write_text(SCENARIO)
    bare, bare_res = run_scenario(sc)
    assert bare.envelopes is None
    keep = {k: v for k, v in summary.summary().items() if k != "wall_s"}
    assert keep == {k: v for k, v in bare.summary().items() if k != "wall_s"}
    assert res.hop_counts == bare_res.hop_counts and res.samples == bare_res.samples
    plain = messages_frame(bare_res)
    client = m[m["kind"] != "bounce"].reset_index(drop=True)
    pd.testing.assert_frame_equal(client[list(LEDGER_COLUMNS)], plain[list(LEDGER_COLUMNS)])
    assert plain[["kind", "session", "attempts"]].iloc[:, :2].isna().all().all()  # no log: left empty


def test_written_csv_and_a_streaming_run(run: tuple, tmp_path: Path) -> None:
    summary, res, m = run
    write_results(summary, res, tmp_path / "out")
    csv = pd.read_csv(tmp_path / "out" / "messages.csv", dtype={"evpid": str, "msgid": str, "session": str})
    assert list(csv.columns) == list(MESSAGE_COLUMNS) and len(csv) == len(m)
    assert "envelopes" not in (tmp_path / "out" / "summary.json").read_text()
    sc = tmp_path / "slow.toml"
    sc.write_text(SCENARIO)
    streamed, sres = run_scenario(sc, stream=True)
    assert streamed.envelopes is None and sres.messages is None
    empty = messages_frame(sres, streamed.envelopes)
    assert len(empty) == 0 and tuple(empty.columns) == MESSAGE_COLUMNS
