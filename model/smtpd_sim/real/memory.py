"""Memory of the real smtpd's processes: RSS, PSS and USS of each, idle and under a small load.

Why: the MFA post says the daemon started "too many processes"; what a process costs is
not its RSS (shared libc and binary pages are counted once per process) but its
unique pages (USS: freed when it exits) and its proportional share of the shared ones
(PSS: the sum over processes is what the daemon occupies). ``psutil`` reads them from
``/proc/<pid>/smaps_rollup`` (``Process.memory_full_info()``). The numbers are written
as data (``smtpd-sim real memory --out``) so the notebooks read them without root.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from smtpd_sim.real import procstat
from smtpd_sim.real.commands import RealDaemonError, command_env
from smtpd_sim.real.install import clear_maildir, set_maildir_broken
from smtpd_sim.real.load import LOCAL_USER, LoadResult, UntracedDaemon, environment

PROCESS_ORDER: tuple[str, ...] = ("parent", "ca", "control", "lka", "pony", "queue", "scheduler")


@dataclass(frozen=True)
class Memory:
    """Bytes of one process: resident (RSS), proportional (PSS), unique (USS)."""

    rss: int
    pss: int
    uss: int


def read_memory(pid: int) -> Memory:
    """RSS, PSS and USS of ``pid`` (psutil ``memory_full_info``; root reads any process)."""
    import psutil

    try:
        info = psutil.Process(pid).memory_full_info()
    except psutil.NoSuchProcess:
        raise procstat.ProcStatError(f"process {pid} exited before its memory was read") from None
    except psutil.AccessDenied:
        raise procstat.ProcStatError(f"no permission to read /proc/{pid}/smaps (run as root)") from None
    return Memory(rss=int(info.rss), pss=int(info.pss), uss=int(info.uss))


def snapshot(parent_pid: int) -> dict[str, Memory]:
    """Memory of every smtpd process (by trace name) of the daemon whose parent is ``parent_pid``."""
    out: dict[str, Memory] = {}
    for name, pid in procstat.smtpd_processes(parent_pid).items():
        try:
            out[name] = read_memory(pid)
        except procstat.ProcStatError:
            continue  # exited while we looked
    return out


def peak(samples: list[dict[str, Memory]]) -> dict[str, Memory]:
    """Per process, the largest RSS, PSS and USS seen over ``samples`` (each field apart)."""
    out: dict[str, Memory] = {}
    for name in {n for s in samples for n in s}:
        seen = [s[name] for s in samples if name in s]
        out[name] = Memory(max(m.rss for m in seen), max(m.pss for m in seen), max(m.uss for m in seen))
    return out


def totals(mem: dict[str, Memory]) -> Memory:
    """The sums over processes (PSS sums to the memory the daemon occupies; RSS double-counts)."""
    return Memory(sum(m.rss for m in mem.values()), sum(m.pss for m in mem.values()),
                  sum(m.uss for m in mem.values()))


def _table(mem: dict[str, Memory]) -> dict[str, dict[str, int]]:
    order = [p for p in PROCESS_ORDER if p in mem] + sorted(set(mem) - set(PROCESS_ORDER))
    return {p: asdict(mem[p]) for p in order}


def measure_memory(workdir: str | Path, *, concurrency: int = 4, duration: float = 5.0,
                   idle_s: float = 2.0, interval: float = 0.25, install: bool = False,
                   timeout_slack: float = 120.0,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """A fresh untraced daemon (the calibration's, :class:`UntracedDaemon`): memory of each
    process after ``idle_s`` idle, then its peak while ``concurrency`` closed-loop clients
    send local mail for ``duration`` s (``smtpd-sim real load-worker`` inside the
    namespace), sampled every ``interval`` s. Needs root; one JSON-ready dict."""
    say = progress or (lambda _text: None)
    with UntracedDaemon(workdir, install=install, trace_flags=()) as d:
        set_maildir_broken(LOCAL_USER, False)
        clear_maildir(LOCAL_USER)
        pid = d.start()
        try:
            time.sleep(idle_s)
            idle = snapshot(pid)
            say(f"idle: {len(idle)} processes, PSS {totals(idle).pss / 1e6:.1f} MB")
            cmd = [*d.netns.exec_prefix(), sys.executable, "-m", "smtpd_sim", "real", "load-worker",
                   "--pid", str(pid), "--mode", "local", "--concurrency", str(concurrency),
                   "--duration", str(duration)]
            worker = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      stdin=subprocess.DEVNULL, env=command_env())
            samples: list[dict[str, Memory]] = []
            deadline = time.monotonic() + duration + timeout_slack
            while worker.poll() is None and time.monotonic() < deadline:
                samples.append(snapshot(pid))
                time.sleep(interval)
            if worker.poll() is None:
                worker.kill()
                worker.wait(5)
                raise RealDaemonError(f"memory load c={concurrency}: the load worker did not finish")
            out, err = worker.communicate()
            if worker.returncode != 0:
                tail = (err or out).strip().splitlines()
                raise RealDaemonError(f"memory load c={concurrency}: worker exited {worker.returncode}: "
                                      f"{tail[-1] if tail else ''}")
            load = LoadResult(**json.loads(out.strip().splitlines()[-1]))
            loaded = peak(samples)
            say(f"under load: {len(samples)} samples, peak PSS {totals(loaded).pss / 1e6:.1f} MB, "
                f"{load.accepted} messages accepted")
        finally:
            d.stop()
        clear_maildir(LOCAL_USER)
    return {
        "how": {**environment(), "command": " ".join(d.command),
                "read": "psutil.Process(pid).memory_full_info(): rss, pss, uss (/proc/<pid>/smaps_rollup)",
                "idle_s": idle_s, "load": f"local mail, {concurrency} closed-loop clients, {duration:g} s",
                "interval_s": interval, "samples": len(samples)},
        "idle": _table(idle),
        "load_peak": _table(loaded),
        "load_run": {"accepted": load.accepted, "accepted_msg_s": load.accepted_msg_s,
                     "errors": load.errors, "concurrency": load.concurrency},
    }
