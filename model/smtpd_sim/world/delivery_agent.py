"""The local delivery agent the parent forks for each delivery (smtpd.c:forkmda()).

In 6.8 the child execs ``/bin/sh -c /usr/libexec/opensmtpd/mail.maildir`` as the user
(real-daemon.md §3); its CPU shows in the parent's cutime/cstime. It reads the message
from a pipe that the mda role fills, writes the maildir, and exits; the parent's
SIGCHLD handler (``parent_sig_handler()``) then reports the exit status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from smtpd_sim.kernel.process import Kernel, Process, ProcessCosts
from smtpd_sim.spec.world import WorldParams

Status = Literal["ok", "tempfail", "permfail"]

# sysexits.h codes mail.maildir exits with
EXIT_CODES = {"ok": 0, "tempfail": 75, "permfail": 77}


class DeliveryAgent:
    """One transient child process: runs its CPU/IO, waits for EOF on its stdin, exits."""

    def __init__(
        self,
        kernel: Kernel,
        serial: int,
        params: WorldParams,
        status: Status,
        on_exit: Callable[[DeliveryAgent], None],
        parent_vruntime: float = 0.0,
    ) -> None:
        self.proc = Process(kernel, f"mda-child-{serial}", ProcessCosts(), counted=False)
        self.proc.vruntime = parent_vruntime  # fork: the child starts where the parent is (CFS)
        self.status = status
        self.on_exit = on_exit
        self._worked = False
        self._eof = False
        self.exited = False
        # the child's own work: exec + write the maildir
        self.proc.post(self._work, params, key="agent")

    def _work(self, params: WorldParams) -> None:
        self.proc.charge(params.agent_cpu_s)
        self.proc.block(params.agent_io_s)
        self.proc.emit(self._worked_done, None)

    def _worked_done(self, _arg: object) -> None:
        self._worked = True
        self._maybe_exit()

    @property
    def delivering(self) -> bool:
        """It has the whole message and has not exited: the mailbox will be written whatever
        happens to the daemon (the child outlives it)."""
        return self._eof and not self.exited

    def eof(self) -> None:
        """The mda closed the pipe: the whole message has been written."""
        self._eof = True
        self._maybe_exit()

    def _maybe_exit(self) -> None:
        if self._worked and self._eof and not self.exited:
            self.exited = True
            self.on_exit(self)
