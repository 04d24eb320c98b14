"""Per-process CPU time of a running smtpd, read from ``/proc/<pid>/stat``.

Why: the simulator's CPU costs are calibrated against the real daemon (real-daemon.md
§9: utime+stime per process, plus cutime+cstime of the parent for its MDA children).
Each smtpd child sets its title (``smtpd: pony express``, 5.4.2 ``smtpd: filter`` ...); the parent keeps its
argv under ``-d``. Titles map to the names the traces use (era-pony.md §1.2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# ps title suffix after "smtpd: " -> process name in traces: 6.8 (era-pony.md §1.2) and
# 5.4.2 (smtpd.c:proc_title() -> proc_name() of opensmtpd-5.4.2p1); the shared titles agree
TITLE_TO_PROC: dict[str, str] = {
    "klondike": "ca",
    "control": "control",
    "lookup": "lka",
    "pony express": "pony",
    "queue": "queue",
    "scheduler": "scheduler",
    "smtp": "smtp",
    "filter": "mfa",
    "delivery": "mda",
    "transfer": "mta",
    "[priv]": "parent",  # 5.4.2: smtpd.c:main() -> config_process(PROC_PARENT) retitles the parent too
}

_PROC = Path("/proc")


class ProcStatError(RuntimeError):
    """A process vanished or /proc could not be read (one-line message)."""


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds of one process: its own (utime, stime) and its reaped children's."""

    utime: float
    stime: float
    cutime: float
    cstime: float

    @property
    def own(self) -> float:
        """utime + stime."""
        return self.utime + self.stime

    @property
    def children(self) -> float:
        """cutime + cstime (for the parent: the MDA children it forked and reaped)."""
        return self.cutime + self.cstime

    @property
    def total(self) -> float:
        """Own plus children's CPU seconds."""
        return self.own + self.children

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.utime - other.utime, self.stime - other.stime,
                        self.cutime - other.cutime, self.cstime - other.cstime)


def _ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the ``(comm)`` field (comm may hold spaces)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError as e:
        raise ProcStatError(f"cannot read /proc/{pid}/stat: {e.strerror or e}") from e
    return raw[raw.rindex(")") + 2 :].split()


def read_cpu(pid: int) -> CpuTimes:
    """utime, stime, cutime, cstime of ``pid`` in seconds (proc(5) fields 14-17)."""
    f = _stat_fields(pid)
    hz = _ticks()
    # after "(comm)": f[0] is field 3 (state), so field n is f[n - 3]
    return CpuTimes(int(f[11]) / hz, int(f[12]) / hz, int(f[13]) / hz, int(f[14]) / hz)


def parent_pid_of(pid: int) -> int:
    """The PPid of ``pid``."""
    return int(_stat_fields(pid)[1])


def cmdline(pid: int) -> list[str]:
    """argv of ``pid`` (a retitled process shows its title as argv[0], NUL padding removed)."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError as e:
        raise ProcStatError(f"cannot read /proc/{pid}/cmdline: {e.strerror or e}") from e
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def process_name(pid: int) -> str | None:
    """Trace name (parent, lka, pony, ...) of an smtpd process, None if not smtpd."""
    try:
        argv = cmdline(pid)
    except ProcStatError:
        return None
    if not argv:
        return None
    first = argv[0].strip()
    if first.startswith("smtpd: "):
        return TITLE_TO_PROC.get(first[len("smtpd: ") :].strip())
    if os.path.basename(first) == "smtpd":
        return "parent" if "-x" not in argv else None  # "-x proc" = a child before its setproctitle
    return None


def _pids() -> list[int]:
    return [int(p.name) for p in _PROC.iterdir() if p.name.isdigit()]


def smtpd_processes(parent_pid: int | None = None) -> dict[str, int]:
    """Trace name -> pid of a running smtpd: ``parent_pid`` and its children with smtpd titles.

    Without ``parent_pid`` the first smtpd parent found is used. Raises
    :class:`ProcStatError` when there is none.
    """
    if parent_pid is None:
        parents = [p for p in _pids() if process_name(p) == "parent"]
        if not parents:
            raise ProcStatError("no running smtpd parent process found in /proc")
        parent_pid = min(parents)
    if process_name(parent_pid) != "parent":
        raise ProcStatError(f"pid {parent_pid} is not an smtpd parent process")
    out = {"parent": parent_pid}
    for pid in _pids():
        try:
            if pid != parent_pid and parent_pid_of(pid) == parent_pid:
                name = process_name(pid)
                if name is not None:
                    out[name] = pid
        except ProcStatError:
            continue  # exited while we looked
    return out


def snapshot(parent_pid: int | None = None) -> dict[str, CpuTimes]:
    """CPU times of every smtpd process (by trace name) at this instant."""
    out: dict[str, CpuTimes] = {}
    for name, pid in smtpd_processes(parent_pid).items():
        try:
            out[name] = read_cpu(pid)
        except ProcStatError:
            continue
    return out


def delta(after: dict[str, CpuTimes], before: dict[str, CpuTimes]) -> dict[str, CpuTimes]:
    """Per-process CPU used between two snapshots (processes present in both)."""
    return {k: after[k] - before[k] for k in after if k in before}


@dataclass(frozen=True)
class Memory:
    """Resident memory of one process in KiB, from ``/proc/<pid>/smaps_rollup``: RSS, PSS
    (shared pages divided among their sharers) and USS (pages only this process maps:
    Private_Clean + Private_Dirty + Private_Hugetlb, as psutil's ``memory_full_info()``)."""

    rss_kib: int
    pss_kib: int
    uss_kib: int


def read_memory(pid: int) -> Memory:
    """RSS, PSS and USS of ``pid`` (kernel >= 4.14 for smaps_rollup)."""
    try:
        text = (_PROC / str(pid) / "smaps_rollup").read_text()
    except OSError as e:
        raise ProcStatError(f"cannot read /proc/{pid}/smaps_rollup: {e.strerror or e}") from e
    kib: dict[str, int] = {}
    for ln in text.splitlines():
        key, _, rest = ln.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            kib[key.strip()] = int(parts[0])
    if "Rss" not in kib or "Pss" not in kib:
        raise ProcStatError(f"/proc/{pid}/smaps_rollup has no Rss/Pss lines")
    uss = kib.get("Private_Clean", 0) + kib.get("Private_Dirty", 0) + kib.get("Private_Hugetlb", 0)
    return Memory(rss_kib=kib["Rss"], pss_kib=kib["Pss"], uss_kib=uss)


def memory_snapshot(parent_pid: int | None = None) -> dict[str, Memory]:
    """Memory of every smtpd process (by trace name) at this instant."""
    out: dict[str, Memory] = {}
    for name, pid in smtpd_processes(parent_pid).items():
        try:
            out[name] = read_memory(pid)
        except ProcStatError:
            continue
    return out
