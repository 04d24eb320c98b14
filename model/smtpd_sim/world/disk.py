"""The queue's file system (queue_fs.c): each operation blocks the calling process."""

from __future__ import annotations

from smtpd_sim.kernel.process import Process

OPS = ("mkdir", "open", "rename", "unlink", "fsync")


class Disk:
    """Charges each syscall's kernel CPU (stime) and its off-CPU wait to the caller."""

    def __init__(self, cpu_s: dict[str, float], wait_s: dict[str, float]) -> None:
        for k in (*cpu_s, *wait_s):
            if k not in OPS:
                raise ValueError(f"unknown file-system operation {k!r} (expected one of {OPS})")
        self.cpu = {k: cpu_s.get(k, 0.0) for k in OPS}
        self.wait = {k: wait_s.get(k, 0.0) for k in OPS}
        self.ops: dict[str, int] = dict.fromkeys(OPS, 0)
        self.full = False  # fault injection: queue_fs.c:fsqueue_check_space() fails
        # what the message files hold, by msgid (only with the message bytes kept: a live
        # server writes them out; else the FSM counts bytes without keeping them)
        self.bodies: dict[int, bytes] = {}
        # the "Delivered-To: " header lines of a message file, by msgid (kept always, for
        # messages that have one: what mda.c:mda_check_loop() reads)
        self.delivered_to: dict[int, tuple[bytes, ...]] = {}

    def op(self, proc: Process, *kinds: str) -> None:
        """Do the named syscalls in ``proc``'s current handler (e.g. ``op(p, "open", "fsync")``)."""
        cpu = wait = 0.0
        ops = self.ops
        for k in kinds:
            cpu += self.cpu[k]
            wait += self.wait[k]
            ops[k] += 1
        if cpu:
            proc.charge(cpu)
        if wait:
            proc.block(wait)
