"""The mta limits: ``limit.c`` and ``struct mta_limits`` (``smtpd.h``).

``limit_mta_set_defaults()`` fills the "default" entry of ``sc_limits_dict``, the limits
of every relay (the sites modelled here configure no per-domain ``limit mta``); the mta
role reads them in ``mta.c:mta_query_limits()``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MtaLimits:
    """``struct mta_limits`` as ``limit.c:limit_mta_set_defaults()`` fills it (6.8.0p2);
    ``family`` is left out: it is AF_UNSPEC, which every host matches."""

    maxconn_per_host: int = 10
    maxconn_per_route: int = 5
    maxconn_per_source: int = 100
    maxconn_per_connector: int = 20
    maxconn_per_relay: int = 100
    maxconn_per_domain: int = 100
    conndelay_host: int = 0
    conndelay_route: int = 5
    conndelay_source: int = 0
    conndelay_connector: int = 0
    conndelay_relay: int = 2
    conndelay_domain: int = 0
    discdelay_route: int = 3
    max_mail_per_session: int = 100
    sessdelay_transaction: int = 0
    sessdelay_keepalive: int = 10
    max_failures_per_session: int = 25
    task_hiwat: int = 50
    task_lowat: int = 30
    task_release: int = 10


# limit.c:limit_mta_set_defaults() per era: opensmtpd-5.4.2 and -5.7.3 have
# maxconn_per_source 50 and sessdelay_transaction 1; 6.8.0p2 has 100 and 0.
LIMITS: dict[str, MtaLimits] = {
    "5.4.2": MtaLimits(maxconn_per_source=50, sessdelay_transaction=1),
    "5.7.3": MtaLimits(maxconn_per_source=50, sessdelay_transaction=1),
    "6.8": MtaLimits(),
}
