"""smtpd_sim.observe.traces.parse_log on 5.4.2's trace dialect (smtpd.c of opensmtpd-5.4.2p1):
the parent's receives are traced, profile-imsg prints milliseconds; and the committed
5.4.2 CSVs are what the parser makes of the committed logs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from smtpd_sim.observe.traces import hops_to_csv, parse_log, parse_log_file, read_hops_csv

DATA = Path(__file__).parents[1] / "data" / "real-traces-5.4.2"

LOG = [
    "100.000000 ### SCENARIO x BEGIN",
    "100.000010 mproc: lka -> parent : 1080 IMSG_PARENT_FORWARD_OPEN",
    "100.000020 imsg: parent <- lka: IMSG_PARENT_FORWARD_OPEN (len=1080)",
    "100.000030 profile-imsg: parent lka IMSG_PARENT_FORWARD_OPEN 1096 0.040300",
    "100.000040 mproc: parent -> lka : 1080 IMSG_PARENT_FORWARD_OPEN",
    "100.000050 imsg: lka <- parent: IMSG_PARENT_FORWARD_OPEN (len=1080, fd=7)",
    "100.000060 profile-imsg: lka parent IMSG_PARENT_FORWARD_OPEN 1096 2.269349",
    "100.000070 ### SCENARIO x END",
]


def test_542_dialect_parent_receives_and_millisecond_profiles() -> None:
    df = parse_log(LOG, parent_traced=True, profile_ms=True)
    assert list(zip(df["from_proc"], df["to_proc"], df["recv_traced"], strict=True)) == [
        ("lka", "parent", 1), ("parent", "lka", 1)]
    assert df["sent_time"].tolist() == [pytest.approx(10e-6), pytest.approx(40e-6)]
    # "0.040300" = 0 ms + 40300 ns; "2.269349" = 2 ms + 269349 ns
    assert df["handler_us"].tolist() == [40.3, 2269.3]
    assert df["fd"].tolist()[1] == 7


def test_6_8_reading_of_the_same_log_differs() -> None:
    """Read as 6.8 the parent receive counts twice (mproc row + imsg row) and a handler of
    a millisecond or more is read as seconds (under 1 ms both readings agree: 0 + ns)."""
    df = parse_log(LOG)
    assert len(df) == 3 and df["recv_traced"].tolist() == [0, 1, 1]
    assert df["handler_us"].tolist()[1] == 40.3
    assert math.isclose(df["handler_us"].tolist()[2], 2_000_269.3)


@pytest.mark.parametrize("csv", sorted((DATA / "csv").glob("*.imsg.csv")), ids=lambda p: p.name.split(".")[0])
def test_committed_542_csvs_are_the_parse_of_the_committed_logs(csv: Path) -> None:
    log = DATA / "traces" / csv.name.replace(".imsg.csv", ".log")
    df = parse_log_file(log, parent_traced=True, profile_ms=True)
    assert hops_to_csv(df) == csv.read_bytes().decode()
    assert read_hops_csv(csv)["imsg_name"].tolist() == df["imsg_name"].tolist()
