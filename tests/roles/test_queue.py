"""The queue role (``queue.c``): its bounces are ``Envelope.make_bounce()``, so the DSN
NOTIFY check is the C's (smtpd.h: DSN_SUCCESS 0x01, DSN_FAILURE 0x02, DSN_DELAY 0x04,
DSN_NEVER 0x08; ``queue_bounce()`` returns early on ``dsn_notify & DSN_NEVER``).

The simulated clients never send NOTIFY, so these tests speak SMTP to the smtp role
themselves, then the mda fails the delivery for good (a broken mailbox)."""

from __future__ import annotations

import pytest
from testkit import ScriptedClient

from smtpd_sim.fsm.envelope import D_BOUNCE, DSN_NEVER, DSN_SUCCESS, Envelope
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import scenario_of
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec


def _permfail_with_notify(notify: str | None) -> Simulation:
    """alice sends one message to bob, whose mailbox fails for good, RCPT TO with
    ``NOTIFY=<notify>`` (or none)."""
    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=1.0, local_users=["bob"], sender="alice@local.test"))
    sim = Simulation(scenario_of("pony-6.8", workload=wl, site="research", calibration="traced-6.8"))
    sim.startup()
    sim.site.broken["bob"] = "permfail"
    rcpt = "RCPT TO:<bob@local.test>" + (f" NOTIFY={notify}" if notify else "")
    client = ScriptedClient(sim, ["EHLO client.local.test\r\n", "MAIL FROM:<alice@local.test>\r\n",
                                   rcpt + "\r\n", "DATA\r\n", "Subject: x\r\n\r\nhello\r\n.\r\n",
                                   "QUIT\r\n"])
    sim.listener().connect(client)
    sim.run_until_quiet(max_time=sim.env.now + 60.0)
    assert any(r.startswith("250 2.0.0") for r in client.replies), client.replies  # accepted
    assert sim.ledger.summary()["accepted"] == 1
    return sim


def test_notify_never_gets_no_bounce() -> None:
    """NOTIFY=NEVER (0x08): ``queue_bounce()`` makes no bounce of the failed envelope."""
    sim = _permfail_with_notify("NEVER")
    assert sim.ledger.bounces_created == 0
    assert sim.roles["control"].stats.get("queue.bounce", 0) == 0


@pytest.mark.parametrize("notify", ["SUCCESS", "FAILURE", None])
def test_other_notify_still_bounces_on_failure(notify: str | None) -> None:
    """NOTIFY=SUCCESS (0x01) is no reason to drop the failure bounce (the role used to test
    bit 0x01 as if it were DSN_NEVER); FAILURE and no NOTIFY bounce as well."""
    sim = _permfail_with_notify(notify)
    assert sim.ledger.bounces_created == 1
    assert sim.roles["control"].stats["queue.bounce"] == 1


def test_bounce_envelope_is_make_bounce_of_the_failed_one() -> None:
    """What the queue writes for the bounce is an ``Envelope`` of type D_BOUNCE in the
    same message, the failure's errorline copied, the original's DSN flags kept."""
    queue_writes: list[Envelope] = []
    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=1.0, local_users=["bob"], sender="alice@local.test"))
    sim = Simulation(scenario_of("pony-6.8", workload=wl, site="research", calibration="traced-6.8"))
    sim.startup()
    sim.site.broken["bob"] = "permfail"
    client = ScriptedClient(sim, ["EHLO client.local.test\r\n", "MAIL FROM:<alice@local.test>\r\n",
                                   "RCPT TO:<bob@local.test> NOTIFY=SUCCESS\r\n", "DATA\r\n",
                                   "Subject: x\r\n\r\nhello\r\n.\r\n", "QUIT\r\n"])
    sim.listener().connect(client)
    queue = sim.roles["queue"]
    # stop before the bounce is delivered: just past the permanent failure
    while sim.ledger.bounces_created == 0 and sim.env.now < 30.0:
        sim.run(sim.env.now + 0.001)
    for msg in queue.messages.values():
        queue_writes.extend(msg.envelopes.values())
    (b,) = [e for e in queue_writes if e.type == D_BOUNCE]
    assert b.sender == "alice@local.test" and b.rcpt == "bob@local.test"
    assert b.dest == "bob@local.test" and b.mda_user == "bob"
    assert b.dsn_notify == DSN_SUCCESS and not b.dsn_notify & DSN_NEVER
    assert b.errorline and b.retry == 0
    assert b.smtpname == sim.site.hostname


# ---- DSN success notices (issue 17 item 2) ------------------------------------------------
# 6.8 queue.c queue_imsg() IMSG_MDA_DELIVERY_OK / IMSG_MTA_DELIVERY_OK (5.7.3 the same,
# 5.4.2 IMSG_DELIVERY_OK with p->proc): if (evp.dsn_notify & DSN_SUCCESS) a B_DELIVERED
# (5.x B_DSN) bounce — always after a local delivery; after a relay only when
# (mta_ext & MTA_EXT_DSN) == 0 (bounce.mta_without_dsn = 1): a remote that announced DSN got
# NOTIFY= on its RCPT TO and notifies the sender itself.

def _deliver_with_notify(rcpt: str, notify: str | None, *, era: str = "pony-6.8",
                         site: str = "research", remote_dsn: bool = False) -> Simulation:
    """alice sends one message to ``rcpt`` (delivered fine), RCPT TO with ``NOTIFY=<notify>``."""
    from smtpd_sim.spec.workload import Remote

    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=1.0, local_users=["bob"], sender="alice@local.test"),
                      remote=Remote(dsn=remote_dsn))
    sim = Simulation(scenario_of(era, workload=wl, site=site, calibration="traced-6.8"))
    sim.startup()
    line = f"RCPT TO:<{rcpt}>" + (f" NOTIFY={notify}" if notify else "")
    client = ScriptedClient(sim, ["EHLO client.local.test\r\n", "MAIL FROM:<alice@local.test>\r\n",
                                   line + "\r\n", "DATA\r\n", "Subject: x\r\n\r\nhello\r\n.\r\n",
                                   "QUIT\r\n"])
    sim.listener().connect(client)
    sim.run_until_quiet(max_time=sim.env.now + 60.0)
    assert sim.ledger.summary()["accepted"] == 1, client.replies
    return sim


@pytest.mark.parametrize("era", ["with-mfa", "pony", "pony-6.8"])
@pytest.mark.parametrize(("notify", "notices"), [("SUCCESS", 1), ("SUCCESS,FAILURE", 1), ("FAILURE", 0),
                                                  (None, 0), ("NEVER", 0)])
def test_local_delivery_with_notify_success_sends_a_success_notice(era: str, notify: str | None,
                                                                   notices: int) -> None:
    sim = _deliver_with_notify("bob@local.test", notify, era=era)
    assert sim.ledger.summary()["delivered"] >= 1
    assert sim.ledger.bounces_created == notices
    assert sim.roles["control"].stats.get("queue.bounce", 0) == notices
    # the notice is delivered to alice (a local sender here)
    assert [r for r, _t in sim.ledger.bounce_results.values()] == ["ok"] * notices


@pytest.mark.parametrize("era", ["with-mfa", "pony", "pony-6.8"])
@pytest.mark.parametrize(("remote_dsn", "notices"), [(False, 1), (True, 0)])
def test_relayed_success_notice_only_when_the_remote_lacks_dsn(era: str, remote_dsn: bool, notices: int) -> None:
    """MX relay (common-case site) with NOTIFY=SUCCESS: the queue makes the notice itself
    only if the remote's EHLO did not announce DSN."""
    sim = _deliver_with_notify("carol@relay.test", "SUCCESS", era=era, site="common-case",
                               remote_dsn=remote_dsn)
    assert sim.ledger.bounces_created == notices
    assert sim.roles["control"].stats.get("queue.bounce", 0) == notices


def test_dsn_parameters_reach_a_remote_that_announces_dsn() -> None:
    """RET=/ENVID= of the MAIL FROM and NOTIFY=/ORCPT= of the RCPT travel in the envelope
    (smtp_tx_mail_from(), smtp_tx_rcpt_to()) and the mta passes them on to a remote that
    announced DSN (mta_session.c MTA_MAIL / MTA_RCPT). The real 6.8.0p2 daemon's sink got
    exactly these (tests/data/real-traces/traces/dsn-success-relay-dsn.dialog.json notes)."""
    from smtpd_sim.spec.workload import Remote

    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=1.0, local_users=["bob"], sender="bob@local.test"),
                      remote=Remote(dsn=True))
    sim = Simulation(scenario_of("pony-6.8", workload=wl, site="common-case", calibration="traced-6.8"))
    sim.startup()
    client = ScriptedClient(sim, [
        "EHLO client.local.test\r\n", "MAIL FROM:<bob@local.test> RET=HDRS ENVID=dsn-success-relay-dsn\r\n",
        "RCPT TO:<user@relay.test> NOTIFY=SUCCESS ORCPT=rfc822;user@relay.test\r\n", "DATA\r\n",
        "Subject: x\r\n\r\nhello\r\n.\r\n", "QUIT\r\n"])
    sim.listener().connect(client)
    sim.run_until_quiet(max_time=sim.env.now + 60.0)
    assert sim.remote_mx.accepted_params == [["RET=HDRS", "ENVID=dsn-success-relay-dsn", "NOTIFY=SUCCESS",
                                              "ORCPT=rfc822;user@relay.test"]]
    assert sim.ledger.bounces_created == 0  # the remote notifies, not us
