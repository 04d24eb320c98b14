"""The imsg as it travels: one message on a socketpair between two simulated processes.

What it says (the kind, the era's ``IMSG_*`` name, the payload) is the roles' business
(``smtpd_sim.imsg`` holds the vocabulary); the kernel only carries it, counts it and
charges for its bytes.
"""

from __future__ import annotations

from typing import Any

# imsg.h: struct imsg_hdr is 16 bytes (type, len, flags, peerid, pid); `len=` in traces
# is the payload only (era-pony.md §6.2).
HEADER_SIZE = 16


class Imsg:
    """One imsg in flight: kind, real name, endpoints, payload, size, fd flag, causality."""

    __slots__ = (
        "kind", "name", "src", "dst", "src_role", "dst_role", "payload", "length", "fd",
        "stat", "id", "cause", "t_sent",
    )
    # ``id`` is given by the sending process from its kernel's counter, so ids (and
    # everything derived from them) are identical for two runs with the same seed.
    # ``stat``: counted apart (the daemon's IMSG_STAT_* statistics, Kernel.apart).

    def __init__(
        self,
        kind: str,
        name: str,
        src: Any,
        dst: Any,
        src_role: str,
        dst_role: str,
        payload: Any,
        length: int,
        fd: bool,
        stat: bool,
        ident: int,
        cause: int,
        t_sent: float,
    ) -> None:
        self.kind = kind
        self.name = name
        self.src = src
        self.dst = dst
        self.src_role = src_role
        self.dst_role = dst_role
        self.payload = payload
        self.length = length
        self.fd = fd
        self.stat = stat
        self.id = ident
        self.cause = cause
        self.t_sent = t_sent

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Imsg {self.src.name}->{self.dst.name} {self.name} len={self.length}>"
