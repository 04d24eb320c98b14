"""smtpd_sim.real.procstat: per-process CPU and smtpd process titles from /proc (no root)."""

from __future__ import annotations

import mmap
import os

import pytest

from smtpd_sim.real import procstat


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


def test_procstat_names_542_titles(monkeypatch: pytest.MonkeyPatch) -> None:
    """5.4.2 retitles the parent too (config_process(PROC_PARENT): "[priv]") and its children
    by smtpd.c:proc_title(); they map to proc_name()'s trace names."""
    titles = ["[priv]", "smtp", "filter", "lookup", "queue", "delivery", "transfer", "control", "scheduler"]
    argv = {i: [f"smtpd: {t}"] for i, t in enumerate(titles)}
    monkeypatch.setattr(procstat, "cmdline", lambda pid: argv[pid])
    assert [procstat.process_name(p) for p in argv] == [
        "parent", "smtp", "mfa", "lka", "queue", "mda", "mta", "control", "scheduler"]


def test_procstat_memory_of_own_process() -> None:
    """RSS >= PSS >= USS > 0 (smaps_rollup); a buffer this process alone touches grows its USS."""
    a = procstat.read_memory(os.getpid())
    assert a.rss_kib >= a.pss_kib >= a.uss_kib > 0
    # fresh anonymous pages (mmap), not heap memory malloc may already hold resident from
    # earlier tests (in a long pytest run a 16 MB bytearray reused such memory: USS unchanged)
    buf = mmap.mmap(-1, 16 * 1024 * 1024)
    for i in range(0, len(buf), 4096):
        buf[i] = 1
    b = procstat.read_memory(os.getpid())
    assert b.uss_kib - a.uss_kib >= 12 * 1024
    buf.close()
    with pytest.raises(procstat.ProcStatError):
        procstat.read_memory(2**22 + 12345)
