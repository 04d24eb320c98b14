"""Delayed jobs on whole seconds: ``runq.c``.

A runq holds jobs ``(when, arg)`` sorted by absolute second (``time(NULL)``) and one
evtimer armed for the first job; when it fires, every job that is due is handed to the
runq's callback. ``mta.c`` keeps four (relay, connector, route, hoststat) and
``mta_session.c`` one (hangon), all on the mta role's clock (:meth:`MtaRole.time`).

The API is 6.8's; in 5.4.2/5.7.3 ``runq_schedule()`` takes the absolute second (6.8
``runq_schedule_at()``), ``runq_delay()`` the delay, and a job may carry its own callback,
which the mta passes as NULL: jobs are ordered and run the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smtpd_sim.kernel.sched import Timer, cancel

if TYPE_CHECKING:
    from smtpd_sim.roles.mta import MtaRole


class RunQ:
    """``struct runq``: jobs ``(when, arg)`` sorted by absolute second, one evtimer armed for
    the first one (``runq_reset()``: ``when - time(NULL)`` whole seconds from now)."""

    __slots__ = ("role", "cb", "key", "jobs", "gen", "ev", "active")

    def __init__(self, role: MtaRole, cb: Any, key: str) -> None:
        """``runq_init()``: ``cb(runq, arg)`` runs each due job; ``key`` names the timer."""
        self.role = role
        self.cb = cb
        self.key = key
        self.jobs: list[tuple[int, Any]] = []
        self.gen = 0
        self.ev: Timer | None = None  # the armed evtimer
        self.active = False

    def _reset(self) -> None:
        """``runq_reset()``."""
        if not self.jobs:
            return
        delay = max(0, self.jobs[0][0] - self.role.time())
        self.gen += 1
        self.ev = self.role.proc.timer(float(delay), self._timeout, self.gen, key=self.key)

    def _del(self) -> None:
        """``evtimer_del()``: the armed timer does not fire; if it fired already and waits
        in the process's inbox, the generation makes it a no-op (libevent drops an active
        event that is deleted)."""
        if self.ev is not None:
            cancel(self.role.proc.env, self.ev)
            self.ev = None
        self.gen += 1

    def _timeout(self, gen: int) -> None:
        """``runq_timeout()``: run every job that is due, then re-arm."""
        if gen != self.gen:
            return
        self.ev = None
        self.active = True
        now = self.role.time()
        while self.jobs and self.jobs[0][0] <= now:
            _when, arg = self.jobs.pop(0)
            self.cb(self, arg)
        self.active = False
        self._reset()

    def schedule(self, delay: int, arg: Any) -> None:
        """``runq_schedule()``."""
        self.schedule_at(self.role.time() + delay, arg)

    def schedule_at(self, when: int, arg: Any) -> None:
        """``runq_schedule_at()``: after the jobs due at the same second."""
        i = len(self.jobs)
        for j, (w, _a) in enumerate(self.jobs):
            if w > when:
                i = j
                break
        self.jobs.insert(i, (when, arg))
        if not self.active and i == 0:
            self._del()
            self._reset()

    def cancel(self, arg: Any) -> bool:
        """``runq_cancel()``."""
        for i, (_w, a) in enumerate(self.jobs):
            if a is arg:
                del self.jobs[i]
                if not self.active and i == 0:
                    self._del()
                    self._reset()
                return True
        return False

    def pending(self, arg: Any) -> int | None:
        """``runq_pending()``: when the job for ``arg`` is due, or None."""
        for w, a in self.jobs:
            if a is arg:
                return w
        return None
