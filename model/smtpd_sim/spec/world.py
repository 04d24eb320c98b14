"""Costs of the world outside the daemon: network, resolver, disk, delivery agent, remote MX.

Every default names where it was measured; a calibration file overrides them.
"""

from __future__ import annotations

from pydantic import Field

from smtpd_sim.spec.files import Strict
from smtpd_sim.spec.limits import MAX_COST_S


class WorldParams(Strict):
    """Latencies and CPU costs of what the daemon talks to (seconds)."""

    # loopback TCP one way, client <-> daemon (research/real-traces/traces/*.dialog.json
    # timelines: ~30 us between a server line and the client's next line, both ways)
    net_latency_s: float = Field(default=15e-6, ge=0, le=MAX_COST_S,
                                 description="one-way network latency between a client and the daemon")
    # asr lookups answered from /etc/hosts (real-traces: GETNAMEINFO answered in ~40 us)
    dns_latency_s: float = Field(default=20e-6, ge=0, le=MAX_COST_S,
                                 description="time the resolver takes to answer a lookup")
    # smtpd.c:forkmda(): fork() in the parent (CPU of the parent)
    fork_cpu_s: float = Field(default=150e-6, ge=0, le=MAX_COST_S,
                              description="the parent's CPU to fork a delivery agent (smtpd.c:forkmda())")
    # the delivery agent child: fork + /bin/sh + mail.maildir (real-daemon.md §9:
    # parent children 1.97 ms CPU per message at c=4) and its maildir fsync
    agent_cpu_s: float = Field(default=1.97e-3, ge=0, le=MAX_COST_S,
                               description="CPU of one local delivery agent (fork, /bin/sh, mail.maildir)")
    agent_io_s: float = Field(default=150e-6, ge=0, le=MAX_COST_S,
                              description="the delivery agent's off-CPU wait to write and fsync the maildir file")
    # TLS server handshake (TLS 1.2 full handshake, no resumption: ssl.c disables session
    # caches and tickets): the symmetric/ECDHE work besides the private-key operation
    # (assumed: openssl speed ecdhp256 ~0.1 ms + record setup; a calibration overrides it)
    tls_handshake_cpu_s: float = Field(default=0.3e-3, ge=0, le=MAX_COST_S,
                                       description="CPU of a TLS server handshake besides the private-key operation")
    # the private-key operation when the process holding the key does it itself (5.4.2's
    # smtp); with klondike it is ca's IMSG_CA_*PRIV* handler cost (roles.ca in a calibration)
    tls_private_op_s: float = Field(default=1.5e-3, ge=0, le=MAX_COST_S,
                                    description="CPU of the private-key operation when the process holding "
                                    "the key does it (5.4.2's smtp)")
    # Debian 12's 6.8.0p2 with OpenSSL 3 loses the key engine's ex_data: no IMSG_CA_* is
    # ever sent and every server handshake fails (real-daemon.md §6, upstream #1171/#1239)
    tls_key_engine_broken: bool = Field(default=False, description="no private-key operation ever reaches ca "
                                        "and every server handshake fails (Debian 12's 6.8.0p2, OpenSSL 3)")
    # the remote MX: one-way network latency and its own processing per reply
    remote_latency_s: float = Field(default=100e-6, ge=0, le=MAX_COST_S,
                                    description="one-way network latency to the remote MX")
    remote_reply_s: float = Field(default=50e-6, ge=0, le=MAX_COST_S,
                                  description="the remote MX's processing time per reply")
