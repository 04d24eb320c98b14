"""STARTTLS: the hops each era adds, klondike's synchronous round trip, Debian's broken engine."""

from __future__ import annotations

import pytest

from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.calibration import load_calibration
from smtpd_sim.spec.scenario import scenario_of
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec
from smtpd_sim.studies.probe import run_probe


def _tls_run(era: str, calibration: str = "research-6.8", site: str = "common-case") -> Simulation:
    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=1.0, local_users=["alice"], tls_share=1.0))
    sim = Simulation(scenario_of(era, workload=wl, calibration=calibration, site=site))
    sim.startup()
    sim.start_clients()
    sim.run_until_quiet(60)
    return sim


# STARTTLS on the inbound session, no client certificate:
#   5.4.2        +2 IMSG_LKA_SSL_INIT (cert + key from lka) +2 MFA for the second EHLO
#                (era-5.4.2-mfa.md §3.1.1)
#   without-mfa  +2 (era-pony.md §4.2: "without the ca split STARTTLS costs +2")
#   5.7.3, 6.8   +4: TLS_INIT/CERT_INIT both ways + CA_*PRIV* both ways, the latter
#                synchronous (era-pony.md §3.1, §3.7)
TLS_ADDS = {"with-mfa": 4, "without-mfa": 2, "pony": 4, "pony-6.8": 4}


@pytest.mark.parametrize("era", list(TLS_ADDS))
def test_starttls_adds_the_researchs_hops(era: str) -> None:
    sim = _tls_run(era)
    plain = run_probe(era, "local").hops
    assert sum(sim.recorder.hop_counts.values()) - plain == TLS_ADDS[era]
    assert sim.ledger.summary()["delivered"] == 1


def test_klondike_round_trip_is_synchronous_in_pony() -> None:
    sim = _tls_run("pony-6.8")
    counts = sim.recorder.hop_counts
    assert counts[("pony", "ca", "IMSG_CA_RSA_PRIVENC")] == 1
    assert counts[("ca", "pony", "IMSG_CA_RSA_PRIVENC")] == 1
    pony = sim.procs["pony"]
    # pony spun on its core for the whole key operation (ca's 1.5 ms handler)
    ca_cost = load_calibration("research-6.8").roles["ca"].handler["CA_RSA_PRIVENC"]
    assert pony.cpu_time > ca_cost


def test_5_4_2_keeps_the_key_in_smtp() -> None:
    sim = _tls_run("with-mfa")
    assert not any("CA_" in k[2] for k in sim.recorder.hop_counts)
    assert ("lka", "smtp", "IMSG_LKA_SSL_INIT") in sim.recorder.hop_counts


def test_debian_openssl3_engine_fails_the_handshake_without_ca_traffic() -> None:
    """real-daemon.md §6: the traced Debian daemon logged CERT_INIT both ways, no IMSG_CA_*,
    and the session was dropped (starttls-local-1rcpt: 7 non-stat imsgs)."""
    sim = _tls_run("pony-6.8", calibration="traced-6.8", site="research")
    counts = sim.recorder.hop_counts
    assert not any("CA_" in k[2] for k in counts)
    assert counts[("pony", "lka", "IMSG_CERT_INIT")] == 1
    assert sum(counts.values()) == 7
    assert sim.ledger.summary()["accepted"] == 0


# Opportunistic STARTTLS on the outbound session (the remote MX offers it, c certificates
# in its chain, no client pki). On a client SSL_get_peer_cert_chain() includes the leaf:
#   5.4.2        +5+c: LKA_SSL_INIT both ways (CA_FAIL), VERIFY_CERT, VERIFY_CHAIN x c,
#                VERIFY both ways (era-5.4.2-mfa.md §3, outbound variants;
#                mta_session.c:mta_verify_certificate())
#   5.7.3        +5+c: MTA_TLS_INIT both ways, VERIFY_CERT, VERIFY_CHAIN x c (5.7.3
#                mta_session.c:mta_verify_certificate(): cert_count = sk_X509_num(xchain),
#                one VERIFY_CHAIN each), VERIFY both ways
#   6.8          +5+c: CERT_INIT x2, CERT_CERTIFICATE x (1+c) (6.8 cert.c:cert_verify():
#                cert_count = 1, += sk_X509_num(xchain)), CERT_VERIFY x2
# era-pony.md §3.4/§3.7 say +4+c for 5.7.3 and 6.8 (VERIFY_CHAIN x (c-1), CERTIFICATE x c)
# and this test used to copy it: the C wins over the note (issue 17, item 4).
# And never any ca traffic: the client handshake signs nothing.
def _outbound(era: str, starttls: bool, chain: int) -> Simulation:
    from smtpd_sim.spec.workload import Remote

    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=0.0), remote=Remote(starttls=starttls, cert_chain=chain))
    sim = Simulation(scenario_of(era, workload=wl))
    sim.startup()
    sim.start_clients()
    sim.run_until_quiet(60)
    return sim


@pytest.mark.parametrize("chain", [1, 2, 3])
@pytest.mark.parametrize(("era", "base"), [("with-mfa", 5), ("without-mfa", 5), ("pony", 5), ("pony-6.8", 5)])
def test_outbound_starttls_adds_the_researchs_hops(era: str, base: int, chain: int) -> None:
    plain, tls = _outbound(era, False, chain), _outbound(era, True, chain)
    hops = lambda s: s.recorder.hop_counts  # noqa: E731
    assert sum(hops(tls).values()) - sum(hops(plain).values()) == base + chain
    assert tls.remote_mx.tls_sessions == 1 and plain.remote_mx.tls_sessions == 0
    assert tls.ledger.summary()["delivered"] == 1
    assert not any("ca" in (src, dst) for src, dst, _ in hops(tls))  # no key operation


def test_outbound_starttls_names_per_era() -> None:
    names = lambda s: {n for (_a, _b, n) in s.recorder.hop_counts}  # noqa: E731
    assert {"IMSG_CERT_INIT", "IMSG_CERT_CERTIFICATE", "IMSG_CERT_VERIFY"} <= names(_outbound("pony-6.8", True, 2))
    assert {"IMSG_MTA_TLS_INIT", "IMSG_MTA_TLS_VERIFY_CERT", "IMSG_MTA_TLS_VERIFY"} <= names(_outbound("pony", True, 2))
    assert {"IMSG_LKA_SSL_INIT", "IMSG_LKA_SSL_VERIFY_CHAIN"} <= names(_outbound("with-mfa", True, 2))
