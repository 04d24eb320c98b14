"""smtpd_sim.real.memory: RSS/PSS/USS read from /proc through psutil (no root for our own
process), peaks over samples, sums; and the memory the real 6.8 daemon was measured with
(tests/data/real-traces/memory.json, written by ``smtpd-sim real memory --out``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from smtpd_sim.real import memory, procstat
from smtpd_sim.real.memory import Memory

DATA = Path(__file__).parents[1] / "data" / "real-traces" / "memory.json"


def test_read_memory_of_this_process() -> None:
    m = memory.read_memory(os.getpid())
    # unique pages are part of the proportional share, which is part of what is resident
    assert 0 < m.uss <= m.pss <= m.rss


def test_read_memory_of_a_gone_process() -> None:
    with pytest.raises(procstat.ProcStatError, match="exited"):
        memory.read_memory(2**22 + 12345)


def test_peak_takes_each_field_apart_and_totals_sum() -> None:
    a = {"pony": Memory(10, 6, 4), "lka": Memory(8, 5, 3)}
    b = {"pony": Memory(9, 7, 3)}
    assert memory.peak([a, b]) == {"pony": Memory(10, 7, 4), "lka": Memory(8, 5, 3)}
    assert memory.totals(a) == Memory(18, 11, 7)


def test_recorded_memory_of_the_real_daemon() -> None:
    rec = json.loads(DATA.read_text())
    assert rec["how"]["smtpd"] == "6.8.0p2"
    for phase in ("idle", "load_peak"):
        procs = rec[phase]
        # the seven long-lived processes of 6.8 (era-pony.md §1.2, PROC_COUNT 7)
        assert sorted(procs) == sorted(memory.PROCESS_ORDER)
        for m in procs.values():
            assert 0 < m["uss"] <= m["pss"] <= m["rss"]
    assert rec["load_run"]["accepted"] > 0
