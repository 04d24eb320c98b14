"""tests/data/real-traces-5.4.2/bench.json: its summary and memory tables are the medians of
its runs (so the MFA notebook may read either), and the runs are what smtpd_sim.real.load
records for the two daemons (no root, nothing started)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from smtpd_sim.real.load import LoadResult

BENCH = Path(__file__).parents[1] / "data" / "real-traces-5.4.2" / "bench.json"
PROCS = {"5.4.2p1": {"parent", "smtp", "mfa", "lka", "queue", "mda", "mta", "control", "scheduler"},
         "6.8.0p2": {"parent", "pony", "lka", "queue", "control", "scheduler", "ca"}}


@pytest.fixture(scope="module")
def bench() -> dict[str, Any]:
    return json.loads(BENCH.read_text())


def _med(xs: list[float]) -> float:
    return round(statistics.median(xs), 4)


def test_runs_are_load_results_of_both_daemons(bench: dict[str, Any]) -> None:
    fields = set(LoadResult.__dataclass_fields__)
    for r in bench["runs"]:
        rec = {k: v for k, v in r.items() if k not in ("daemon", "repeat")}
        assert set(rec) == fields
        LoadResult(**rec)
        assert set(r["memory_kib"]["idle"]) == PROCS[r["daemon"]]
        assert set(r["cpu_ms_per_msg"]) == PROCS[r["daemon"]] | {"parent-children", "client"}
        assert r["errors"] == 0 and r["accepted"] > 0
    keys = {(r["daemon"], r["mode"], r["concurrency"]) for r in bench["runs"]}
    assert keys == {(d, m, c) for d in PROCS for m in ("local", "relay") for c in (1, 4)}
    assert {h["smtpd"] for h in bench["how"]["5.4.2p1"]} == {"5.4.2p1"}
    assert {h["smtpd"] for h in bench["how"]["6.8.0p2"]} == {"6.8.0p2"}


def test_summary_is_the_median_of_the_runs(bench: dict[str, Any]) -> None:
    for s in bench["summary"]:
        rs = [r for r in bench["runs"] if (r["daemon"], r["mode"], r["concurrency"])
              == (s["daemon"], s["mode"], s["concurrency"])]
        assert s["runs"] == len(rs) >= 3
        assert s["accepted_msg_s"] == _med([r["accepted_msg_s"] for r in rs])
        assert s["smtpd_cpu_ms_per_msg"] == _med(
            [sum(v for k, v in r["cpu_ms_per_msg"].items() if k != "client") for r in rs])
        for p, v in s["cpu_ms_per_msg"].items():
            assert v == _med([r["cpu_ms_per_msg"][p] for r in rs])
        assert s["other_cores"] == _med([r["other_cores"] for r in rs])


def test_memory_is_the_median_of_the_runs(bench: dict[str, Any]) -> None:
    for m in bench["memory"]:
        rs = [r for r in bench["runs"] if r["daemon"] == m["daemon"]]
        assert set(m["pss_kib"]) == PROCS[m["daemon"]]
        for kind in ("pss", "uss", "rss"):
            for p, v in m[f"{kind}_kib"].items():
                assert v == _med([r["memory_kib"][m["when"]][p][kind] for r in rs])
        for p in m["pss_kib"]:
            assert m["rss_kib"][p] >= m["pss_kib"][p] >= m["uss_kib"][p] > 0
