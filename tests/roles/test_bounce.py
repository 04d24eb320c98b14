"""The notices ``bounce.c`` writes (issue 17 item 7): 6.8's are a MIME DSN (RFC 3464:
multipart/mixed, a message/delivery-status part, the original message's headers), not
the plain text of 5.4.2. Read from 6.8.0p2 usr.sbin/smtpd/bounce.c ``bounce_next()``."""

from __future__ import annotations

from testkit import ScriptedClient

from smtpd_sim.roles.bounce import bounce_duration
from smtpd_sim.sim.simulation import Simulation
from smtpd_sim.spec.scenario import scenario_of
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec


def _notice(mail_from: str, rcpt: str, *, broken: str | None = None, era: str = "pony-6.8") -> dict[str, bytes]:
    """alice sends to bob; what each user's mailbox got (the notice goes to alice)."""
    wl = WorkloadSpec(sessions=1, arrival=Arrival(process="fixed", rate_per_s=10),
                      mix=Mix(local_share=1.0, local_users=["bob"], sender="alice@local.test"))
    sim = Simulation(scenario_of(era, workload=wl, site="research", calibration="traced-6.8"),
                     keep_body=True)
    got: dict[str, bytes] = {}
    sim.hooks.delivered = lambda _evpid, user, data: got.setdefault(user, data) is not None
    sim.startup()
    if broken:
        sim.site.broken["bob"] = broken
    client = ScriptedClient(sim, ["EHLO client.local.test\r\n", mail_from + "\r\n", rcpt + "\r\n", "DATA\r\n",
                                   "Subject: the original\r\n\r\nthe body line\r\n.\r\n", "QUIT\r\n"])
    sim.listener().connect(client)
    sim.run_until_quiet(max_time=sim.env.now + 60.0)
    return got


def test_failure_notice_is_a_mime_dsn() -> None:
    notice = _notice("MAIL FROM:<alice@local.test>", "RCPT TO:<bob@local.test>", broken="permfail")["alice"]
    text = notice.decode()
    assert "Subject: Delivery status notification: failed\n" in text
    assert "From: Mailer Daemon <MAILER-DAEMON@mx.local.test>\n" in text
    assert "MIME-Version: 1.0\n" in text
    assert "Content-Type: multipart/mixed;boundary=\"" in text
    assert "This is a MIME-encapsulated message." in text
    assert "    An error has occurred while attempting to deliver a message for\n" in text
    assert "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.local.test\n" in text
    assert "Final-Recipient: rfc822; bob@local.test\nAction: failed\nStatus: 5." in text  # ESC class 5
    assert "Content-Type: text/rfc822-headers\n" in text
    assert "Subject: the original\n" in text and "the body line\n" in text  # the whole message
    boundary = text.split("boundary=\"", 1)[1].split("\"", 1)[0]
    assert text.rstrip("\n").endswith(f"--{boundary}--")
    assert text.count(f"--{boundary}\n") == 3  # notification, delivery report, headers


def test_success_notice_with_ret_hdrs_carries_only_the_headers() -> None:
    """NOTIFY=SUCCESS after a local delivery: ``Action: delivered``, ``Status: 2.0.0``, and
    RET=HDRS stops the copy at the end of the headers."""
    got = _notice("MAIL FROM:<alice@local.test> RET=HDRS", "RCPT TO:<bob@local.test> NOTIFY=SUCCESS")
    text = got["alice"].decode()
    assert "Subject: Delivery status notification: delivered\n" in text
    assert "    Your message was successfully delivered to these recipients.\n" in text
    assert "Action: delivered\nStatus: 2.0.0\n" in text
    assert "Subject: the original\n" in text and "the body line" not in text
    assert "the body line" in got["bob"].decode()


def test_bounce_duration_units() -> None:
    assert [bounce_duration(d) for d in (1, 59, 60, 7200, 4 * 86400)] == \
        ["1 second", "59 seconds", "1 minute", "2 hours", "4 days"]


def test_573_failure_notice_is_its_mime_form() -> None:
    """5.7.3 bounce.c: no MIME-Version header, the subject says ``bounce_strtype()``
    (the mda's "exited abnormally"-style errorline starts with no 4/5, so 5.7.3's
    ``bounce_add()`` files it as a DSN), an Arrival-Date, a Diagnostic-Code from
    ``esc_description()``, the original as message/rfc822."""
    text = _notice("MAIL FROM:<alice@local.test>", "RCPT TO:<bob@local.test>", broken="permfail",
                   era="pony")["alice"].decode()
    assert "MIME-Version" not in text and "This is a MIME-encapsulated message." in text
    assert "please DO NOT REPLY to this e-mail.\n" in text
    assert "Reporting-MTA: dns; mx.local.test\nArrival-Date: " in text
    assert "\nDiagnostic-Code: smtp; " in text
    assert "Content-Type: message/rfc822\n" in text and "the body line\n" in text

