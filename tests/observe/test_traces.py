"""smtpd_sim.observe.traces: the parser reproduces the research CSVs; writer round-trips; comparison finds edits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from smtpd_sim.observe.traces import (
    HOP_COLUMNS,
    SIM_HOP_COLUMNS,
    TraceError,
    as_observed,
    channel_sequences,
    compare_hops,
    compare_replies,
    hop_sequence,
    hops_to_csv,
    normalize_reply,
    parse_log,
    parse_log_file,
    read_hops_csv,
    to_chrome_trace,
    write_imsg_trace,
)

DATA = Path(__file__).parents[1] / "data" / "real-traces"
SCENARIOS = sorted(p.name[: -len(".log")] for p in (DATA / "traces").glob("*.log"))


def _hops(name: str) -> pd.DataFrame:
    return parse_log_file(DATA / "traces" / f"{name}.log")


def _sim_view(df: pd.DataFrame, handler: bool = True) -> pd.DataFrame:
    cols = list(SIM_HOP_COLUMNS) + (["handler_us"] if handler else [])
    return df[cols].copy()


def test_reference_data_present() -> None:
    assert len(SCENARIOS) == 22  # the research's 10 and the 12 past the 250 (issue 17)
    for name in SCENARIOS:
        assert (DATA / "csv" / f"{name}.imsg.csv").exists()


# ---------------------------------------------------------------------------- parse_log


@pytest.mark.parametrize("name", SCENARIOS)
def test_parse_log_reproduces_research_csv_text(name: str) -> None:
    """Byte-for-byte the research parser's CSV: same rows, order, columns and formatting."""
    assert hops_to_csv(_hops(name)).encode() == (DATA / "csv" / f"{name}.imsg.csv").read_bytes()


@pytest.mark.parametrize("name", SCENARIOS)
def test_parse_log_equals_research_csv_frame(name: str) -> None:
    pd.testing.assert_frame_equal(_hops(name), read_hops_csv(DATA / "csv" / f"{name}.imsg.csv"), check_exact=True)


def test_parse_log_counts_match_research_table() -> None:
    """real-daemon.md §5: local-1rcpt has 59 imsgs (31 non-stat, 4 passing an fd); startup has 6."""
    df = _hops("local-1rcpt")
    assert list(df.columns) == list(HOP_COLUMNS)
    sc = df[df.phase == "scenario"]
    assert len(sc) == 59
    assert (~sc.imsg_name.str.startswith("IMSG_STAT_")).sum() == 31
    assert sc.fd.notna().sum() == 4
    assert (df.phase == "startup").sum() == 6
    assert (df.phase == "shutdown").sum() == 0


def test_parse_log_parent_receives_come_from_mproc_lines() -> None:
    df = _hops("local-1rcpt")
    to_parent = df[df.to_proc == "parent"]
    assert set(to_parent.imsg_name) == {"IMSG_LKA_OPEN_FORWARD", "IMSG_MDA_FORK"}
    assert (to_parent.recv_traced == 0).all()
    assert (to_parent.time == to_parent.sent_time).all()
    assert to_parent.fd.isna().all() and to_parent.handler_us.isna().all()
    assert (df[df.to_proc != "parent"].recv_traced == 1).all()


def test_parse_log_small_synthetic() -> None:
    lines = [
        "garbage without timestamp",
        "100.000000 mproc: parent -> lka : 0 IMSG_CONF_START",
        "100.000100 imsg: lka <- parent: IMSG_CONF_START (len=0)",
        "101.000000 ### SCENARIO x BEGIN",
        "101.000010 mproc: pony -> queue : 12 IMSG_SMTP_MESSAGE_OPEN",
        "101.000020 mproc: lka -> parent : 4376 IMSG_LKA_OPEN_FORWARD",
        "101.000030 imsg: queue <- pony: IMSG_SMTP_MESSAGE_OPEN (len=12, fd=14)",
        "101.000040 profile-imsg: queue pony IMSG_SMTP_MESSAGE_OPEN 28 0.000002500",
        "101.000050 mproc: pony -> control : 46 IMSG_STAT_SET",
        "101.500000 ### SCENARIO x END",
        "101.600000 imsg: pony <- queue: IMSG_??? (255) (len=3)",
    ]
    df = parse_log(lines)
    assert list(df.phase) == ["startup", "scenario", "scenario", "shutdown"]
    assert list(df.time) == [-0.9999, 0.00002, 0.00003, 0.6]
    assert df.fd.iloc[2] == 14 and pd.isna(df.fd.iloc[1])
    assert df.handler_us.iloc[2] == 2.5
    assert df.sent_time.iloc[2] == 0.00001
    assert df.imsg_name.iloc[3] == "IMSG_??? (255)" and pd.isna(df.sent_time.iloc[3])
    assert "IMSG_STAT_SET" not in set(df.imsg_name)  # control drops it: no receive line


def test_parse_log_empty() -> None:
    df = parse_log([])
    assert list(df.columns) == list(HOP_COLUMNS) and len(df) == 0


# ---------------------------------------------------------------------------- write_imsg_trace


@pytest.mark.parametrize("name", SCENARIOS)
def test_write_then_parse_round_trips_research_hops(name: str) -> None:
    df = _hops(name)
    end = float(df.time.max()) + 1.0
    back = parse_log(write_imsg_trace(_sim_view(df), scenario=name, begin=0.0, end=end))
    pd.testing.assert_frame_equal(back[back.phase != "shutdown"].reset_index(drop=True),
                                  df[df.phase != "shutdown"].reset_index(drop=True), check_exact=True)


def test_written_lines_are_verbatim_real_lines() -> None:
    """Every imsg:/mproc: line written for local-1rcpt occurs in the real log."""
    real = {ln.split(" ", 1)[1].rstrip("\n") for ln in (DATA / "traces" / "local-1rcpt.log").open()}
    written = write_imsg_trace(_sim_view(_hops("local-1rcpt"), handler=False), begin=None)
    assert written and all(ln.split(" ", 1)[1] in real for ln in written)


def _sim_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": [0.001, 0.002, 0.004, 0.005, 0.006],
            "sent_time": [0.0005, 0.0015, 0.003, 0.0045, 0.0055],
            "from_proc": ["pony", "lka", "parent", "pony", "pony"],
            "to_proc": ["lka", "parent", "lka", "control", "control"],
            "imsg_name": ["IMSG_SMTP_EXPAND_RCPT", "IMSG_LKA_OPEN_FORWARD", "IMSG_LKA_OPEN_FORWARD",
                          "IMSG_STAT_INCREMENT", "IMSG_STAT_SET"],
            "len": [250, 4376, 4376, 46, 50],
            "fd": pd.array([pd.NA, 7, pd.NA, pd.NA, pd.NA], dtype="Int64"),
        }
    )


def test_write_imsg_trace_follows_real_daemon_rules() -> None:
    lines = write_imsg_trace(_sim_table(), scenario="t")
    bodies = [ln.split(" ", 1)[1] for ln in lines]
    assert bodies[0] == "### SCENARIO t BEGIN" and bodies[-1] == "### SCENARIO t END"
    assert "mproc: lka -> parent : 4376 IMSG_LKA_OPEN_FORWARD" in bodies
    assert not any(b.startswith("imsg: parent <-") for b in bodies)  # parent receives are not traced
    assert "imsg: control <- pony: IMSG_STAT_INCREMENT (len=46)" in bodies  # 6.8 traces stat imsgs
    assert not any(b.startswith("imsg: control <- pony: IMSG_STAT_SET") for b in bodies)
    assert "mproc: pony -> control : 50 IMSG_STAT_SET" in bodies
    back = parse_log(lines)
    assert list(back.imsg_name) == ["IMSG_SMTP_EXPAND_RCPT", "IMSG_LKA_OPEN_FORWARD", "IMSG_LKA_OPEN_FORWARD",
                                    "IMSG_STAT_INCREMENT"]
    parent = back[back.to_proc == "parent"].iloc[0]
    assert parent.time == parent.sent_time == 0.0015 and parent.recv_traced == 0 and pd.isna(parent.fd)
    assert (back.phase == "scenario").all()


def test_fd_minus_one_is_not_printed() -> None:
    """log_imsg() prints ", fd=" only when an fd is passed (LKA_OPEN_FORWARD without .forward: -1)."""
    t = _sim_table()
    t["fd"] = pd.array([-1, pd.NA, -1, pd.NA, pd.NA], dtype="Int64")
    assert "imsg: lka <- pony: IMSG_SMTP_EXPAND_RCPT (len=250)" in [ln.split(" ", 1)[1] for ln in write_imsg_trace(t)]


def test_chrome_trace_accepts_recorder_runs() -> None:
    runs = pd.DataFrame({"process": ["lka"], "start": [0.5], "cost": [0.25], "key": ["expand"]})
    xs = [e for e in to_chrome_trace(_sim_table(), runs)["traceEvents"] if e.get("cat") == "handler"]
    assert xs == [{"ph": "X", "name": "expand", "cat": "handler", "pid": 2, "tid": 1, "ts": 500000.0, "dur": 250000.0}]


def test_as_observed_and_missing_columns() -> None:
    assert len(as_observed(_sim_table())) == 4
    with pytest.raises(TraceError, match="lacks columns"):
        write_imsg_trace(_sim_table().drop(columns=["fd"]))


# ---------------------------------------------------------------------------- Chrome trace


def test_chrome_trace_structure() -> None:
    df = _hops("local-1rcpt")
    runs = pd.DataFrame({"process": ["pony", "queue"], "start": [0.001, 0.002], "end": [0.0015, 0.0031],
                         "label": ["smtp_io", "queue_imsg"]})
    tr = to_chrome_trace(df, handler_runs=runs)
    json.dumps(tr)  # serialisable
    ev = tr["traceEvents"]
    pid = {e["args"]["name"]: e["pid"] for e in ev if e["ph"] == "M" and e["name"] == "process_name"}
    assert {"parent", "lka", "queue", "scheduler", "pony", "control", "ca"} <= set(pid)
    assert len(set(pid.values())) == len(pid)  # one track per process
    with_sent = int(df.sent_time.notna().sum())
    outs = {e["bind_id"]: e for e in ev if e.get("flow_out")}
    ins = {e["bind_id"]: e for e in ev if e.get("flow_in")}
    assert len(outs) == len(ins) == with_sent and set(outs) == set(ins)
    for k, e in ins.items():  # every arrow goes from the sender's track to the receiver's, forward in time
        row = df.iloc[k]
        assert outs[k]["pid"] == pid[row.from_proc] and e["pid"] == pid[row.to_proc]
        assert outs[k]["ts"] <= e["ts"] and e["name"] == row.imsg_name
    hop_marks = [e for e in ev if e["ph"] == "X" and e["cat"] != "handler"]
    assert len(hop_marks) == len(df) + with_sent and all(e["dur"] == 0 for e in hop_marks)
    xs = [e for e in ev if e["ph"] == "X" and e["cat"] == "handler"]
    assert [x["name"] for x in xs] == ["smtp_io", "queue_imsg"]
    assert xs[1]["dur"] == pytest.approx(1100.0) and xs[0]["ts"] == pytest.approx(1000.0)
    assert xs[0]["pid"] == pid["pony"]
    fd_marks = [e for e in hop_marks if "fd" in e["args"] and not e["cat"].endswith(".send")]
    assert len(fd_marks) == int(df.fd.notna().sum())


# ---------------------------------------------------------------------------- compare_hops


def test_compare_identical() -> None:
    df = _hops("relay-permfail-bounce")
    c = compare_hops(df, df.copy())
    assert c["multiset_equal"] and c["sequence_equal"] and c["channel_order_equal"]
    assert c["sequence_ratio"] == 1.0 and c["first_divergence"] is None and c["edits"] == []
    assert c["only_in_real"] == [] and c["only_in_sim"] == []
    assert c["non_stat_counts"] == {"real": 63, "sim": 63}
    assert c["stat_counts"]["real"] == c["stat_counts"]["sim"] == 84


def _non_stat_index(df: pd.DataFrame, k: int) -> int:
    """Row label of the k-th non-stat scenario hop."""
    sel = df[(df.phase == "scenario") & ~df.imsg_name.str.startswith("IMSG_STAT_")]
    return int(sel.index[k])


def test_compare_dropped_imsg() -> None:
    real = _hops("local-1rcpt")
    k = 5
    dropped = real.drop(index=_non_stat_index(real, k))
    c = compare_hops(real, dropped)
    gone = hop_sequence(real)[k]
    assert not c["multiset_equal"]
    assert c["only_in_real"] == [{"hop": gone, "count": 1}] and c["only_in_sim"] == []
    assert c["first_divergence"]["index"] == k and c["first_divergence"]["real"] == gone
    assert c["sequence_ratio"] < 1.0
    assert any(e["op"] == "delete" and e["real"] == [gone] for e in c["edits"])
    assert c["non_stat_counts"] == {"real": 31, "sim": 30}


def test_compare_renamed_imsg() -> None:
    real = _hops("local-1rcpt")
    sim = real.copy()
    i = _non_stat_index(sim, 3)
    old = sim.at[i, "imsg_name"]
    sim.at[i, "imsg_name"] = "IMSG_SMTP_MESSAGE_ROLLBACK"
    c = compare_hops(real, sim)
    assert not c["multiset_equal"]
    fr, to = sim.at[i, "from_proc"], sim.at[i, "to_proc"]
    assert c["only_in_real"] == [{"hop": f"{fr}->{to} {old}", "count": 1}]
    assert c["only_in_sim"] == [{"hop": f"{fr}->{to} IMSG_SMTP_MESSAGE_ROLLBACK", "count": 1}]
    assert c["first_divergence"]["index"] == 3
    assert any(e["op"] == "replace" for e in c["edits"])
    assert not c["channel_order_equal"]


def test_compare_reordered_imsgs() -> None:
    real = _hops("local-1rcpt")
    seq = hop_sequence(real)
    # swap two adjacent non-stat hops on the same channel (pony->lka: GETNAMEINFO, GETADDRINFO)
    a, b = _non_stat_index(real, 0), _non_stat_index(real, 2)
    assert seq[0].startswith("pony->lka") and seq[2].startswith("pony->lka")
    rows = list(real.index)
    ia, ib = rows.index(a), rows.index(b)
    rows[ia], rows[ib] = rows[ib], rows[ia]
    sim = real.loc[rows]
    c = compare_hops(real, sim)
    assert c["multiset_equal"] and not c["sequence_equal"]
    assert c["sequence_ratio"] < 1.0
    assert c["first_divergence"] == {"index": 0, "real": seq[0], "sim": seq[2]}
    assert not c["channel_order_equal"]
    assert c["channel_divergences"][0]["channel"] == "pony->lka"


def test_compare_reordered_across_channels_keeps_channel_order() -> None:
    """Concurrent receivers interleaving differently: only the global order changes."""
    real = _hops("local-1rcpt")
    seq = hop_sequence(real)
    k = next(i for i in range(len(seq) - 1) if seq[i].split()[0] != seq[i + 1].split()[0])
    a, b = _non_stat_index(real, k), _non_stat_index(real, k + 1)
    rows = list(real.index)
    ia, ib = rows.index(a), rows.index(b)
    rows[ia], rows[ib] = rows[ib], rows[ia]
    c = compare_hops(real, real.loc[rows])
    assert c["multiset_equal"] and c["channel_order_equal"] and not c["sequence_equal"]
    assert c["first_divergence"]["index"] == k


def test_compare_stat_counts_and_phase_filter() -> None:
    real = _hops("local-1rcpt")
    stat_rows = real[(real.phase == "scenario") & real.imsg_name.str.startswith("IMSG_STAT_")].index[:2]
    c = compare_hops(real, real.drop(index=stat_rows))
    assert c["multiset_equal"]
    assert c["stat_counts"]["real"] == 28 and c["stat_counts"]["sim"] == 26
    no_startup = real[real.phase != "startup"]
    assert compare_hops(real, no_startup)["multiset_equal"]  # startup rows are not compared
    assert not compare_hops(real, no_startup, phase=None)["multiset_equal"]
    # a table without a phase column (e.g. raw simulator hops) is compared whole
    sim = real[real.phase == "scenario"].drop(columns=["phase"])
    assert compare_hops(real, sim)["multiset_equal"]


def test_channel_sequences() -> None:
    ch = channel_sequences(_hops("local-1rcpt"))
    assert ch["lka->parent"] == ["IMSG_LKA_OPEN_FORWARD"]
    assert ch["pony->parent"] == ["IMSG_MDA_FORK"]
    assert ch["parent->pony"] == ["IMSG_MDA_FORK", "IMSG_MDA_DONE"]


def test_compare_sim_side_through_as_observed() -> None:
    """The intended use: the simulator's hops go through the real daemon's trace rules."""
    real = _hops("relay-1rcpt")
    sim = real[real.phase == "scenario"][list(SIM_HOP_COLUMNS)]
    c = compare_hops(real, as_observed(sim, end=float(sim.time.max()) + 1))
    assert c["multiset_equal"] and c["sequence_equal"]


# ---------------------------------------------------------------------------- compare_replies


def _dialog(name: str) -> dict:
    return json.loads((DATA / "traces" / f"{name}.dialog.json").read_text())


def test_compare_replies_ignores_message_id() -> None:
    real = _dialog("local-1rcpt")
    sim = json.loads(json.dumps(real))
    replies = sim["sessions"][0]["replies"]
    k = next(i for i, r in enumerate(replies) if "Message accepted" in r)
    replies[k] = "250 2.0.0 0badcafe Message accepted for delivery"
    assert replies[k] != real["sessions"][0]["replies"][k]
    c = compare_replies(real, sim)
    assert c["equal"] and c["differences"] == [] and c["n_real"] == c["n_sim"] == 7
    assert normalize_reply(replies[k]) == "250 2.0.0 <msgid> Message accepted for delivery"


def test_compare_replies_reports_differences() -> None:
    real = _dialog("protocol-errors")["sessions"][0]["replies"]
    sim = list(real)
    sim[2] = "250 2.0.0 Ok"
    c = compare_replies(real, sim[:-1])
    assert not c["equal"]
    assert c["differences"][0] == {"index": 2, "real": real[2], "sim": "250 2.0.0 Ok"}
    assert c["differences"][-1] == {"index": len(real) - 1, "real": real[-1], "sim": None}
    assert normalize_reply("250 2.0.0 ed19a0f3 Message rejected") == "250 2.0.0 ed19a0f3 Message rejected"
