"""The MFA ("filter") process of 5.4.2 (``mfa.c``, ``mfa_session.c``).

With no ``filter`` configured every query walks the empty ``"default"`` chain and is
answered OK in the same handler (``mfa_session.c:mfa_drain_query()``, era-5.4.2-mfa.md
§4.1); events get no answer. Its whole job per request: parse, allocate a query, walk
an empty list, send a fixed OK, free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smtpd_sim.kernel.message import Imsg
from smtpd_sim.roles.base import Role, handles

if TYPE_CHECKING:
    from smtpd_sim.kernel.process import Process
    from smtpd_sim.roles.ports import Ports

MFA_OK = 0  # smtpd.h: enum { MFA_OK, MFA_FAIL, MFA_CLOSE }


class MfaRole(Role):
    """``mfa.c:mfa_imsg()``."""

    name = "mfa"

    def __init__(self, proc: Process, ports: Ports) -> None:
        super().__init__(proc, ports)
        self.sessions: set[int] = set()
        self.queries = 0
        self.events = 0

    def counters(self) -> dict[str, float]:
        return {"queries": self.queries, "events": self.events, "sessions": len(self.sessions)}

    @handles("CONF_START", "CONF_END")
    def on_conf(self, m: Imsg) -> None:
        """IMSG_CONF_END → ``mfa_filter_init()``: no filter procs, ``mfa_ready()`` at once."""

    @handles("MFA_REQ_CONNECT")
    def on_req_connect(self, m: Imsg) -> None:
        """``mfa_session.c:mfa_filter_connect()``: new mfa session on the "default" chain."""
        self.sessions.add(m.payload["session"])
        self._answer(m)

    @handles("MFA_REQ_HELO", "MFA_REQ_MAIL", "MFA_REQ_RCPT", "MFA_REQ_DATA", "MFA_REQ_EOM")
    def on_req(self, m: Imsg) -> None:
        """``mfa_filter_line()`` / ``mfa_filter_mailaddr()`` / ``mfa_filter()`` /
        ``mfa_filter_eom()`` → ``mfa_query()`` → ``mfa_drain_query()``."""
        self._answer(m)

    def _answer(self, m: Imsg) -> None:
        """``mfa_drain_query()``: empty chain, QUERY_DONE, IMSG_MFA_SMTP_RESPONSE (MFA_OK, 0)."""
        self.queries += 1
        self.reply(m, "MFA_SMTP_RESPONSE", {"session": m.payload["session"], "status": MFA_OK,
                                            "code": 0, "phase": m.kind})

    @handles("MFA_EVENT_RSET", "MFA_EVENT_COMMIT", "MFA_EVENT_ROLLBACK")
    def on_event(self, m: Imsg) -> None:
        """``mfa_filter_event()``: QT_EVENT through the same empty chain, no answer."""
        self.events += 1

    @handles("MFA_EVENT_DISCONNECT")
    def on_disconnect(self, m: Imsg) -> None:
        """``mfa_filter_event(HOOK_DISCONNECT)`` frees the mfa session. Sessions that sent
        HELO/EHLO never get here (flag-mask bug, era-5.4.2-mfa.md §0.3): they leak."""
        self.events += 1
        self.sessions.discard(m.payload["session"])
