"""The mta limits (``limit.c:limit_mta_set_defaults()``) per era, and which the role uses."""

from __future__ import annotations

from typing import Any

from smtpd_sim.roles.limit import LIMITS, MtaLimits
from smtpd_sim.roles.mta import MtaRole
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import scenario_of

# limit.c:limit_mta_set_defaults() in OpenSMTPD 6.8.0p2 (usr.sbin/smtpd/limit.c)
DEFAULTS_6_8 = {
    "maxconn_per_host": 10, "maxconn_per_route": 5, "maxconn_per_source": 100,
    "maxconn_per_connector": 20, "maxconn_per_relay": 100, "maxconn_per_domain": 100,
    "conndelay_host": 0, "conndelay_route": 5, "conndelay_source": 0,
    "conndelay_connector": 0, "conndelay_relay": 2, "conndelay_domain": 0,
    "discdelay_route": 3,
    "max_mail_per_session": 100, "sessdelay_transaction": 0, "sessdelay_keepalive": 10,
    "max_failures_per_session": 25,
    "task_hiwat": 50, "task_lowat": 30, "task_release": 10,
}
# opensmtpd-5.4.2 and opensmtpd-5.7.3 smtpd/limit.c differ from 6.8.0p2 in two values only
DIFF_5_X = {"maxconn_per_source": 50, "sessdelay_transaction": 1}


def _values(limits: MtaLimits) -> dict[str, Any]:
    """The fields the C sets, read by name (a compiled dataclass may not support asdict())."""
    return {name: getattr(limits, name) for name in DEFAULTS_6_8}


def test_6_8_defaults_are_limit_mta_set_defaults() -> None:
    assert _values(LIMITS["6.8"]) == DEFAULTS_6_8
    assert LIMITS["6.8"] == MtaLimits()


def test_5_x_defaults_differ_in_maxconn_per_source_and_sessdelay_transaction() -> None:
    for era in ("5.4.2", "5.7.3"):
        assert _values(LIMITS[era]) == DEFAULTS_6_8 | DIFF_5_X


def test_each_era_relays_within_its_own_defaults() -> None:
    """``mta.c:mta_query_limits()``: no per-domain limits, so the "default" entry."""
    for topology, variant in (("with-mfa", "5.4.2"), ("pony", "5.7.3"), ("pony-6.8", "6.8")):
        mta = Simulation(scenario_of(topology)).roles["mta"]
        assert isinstance(mta, MtaRole)
        assert mta.default_limits is LIMITS[variant]
