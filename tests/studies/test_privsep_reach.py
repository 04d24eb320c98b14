"""Issue 23: the privsep reach beyond the private key, each expectation with the C it comes from
(tag opensmtpd-5.4.2 / opensmtpd-5.7.3 under smtpd/, v6.8.0p2 under usr.sbin/smtpd/).

The answers come from smtpd_sim.studies.privsep_reach on the topologies and sites; the tests
below failed on the analysis before issue 23 (key in mta only with a relay pki, queue key in
queue only, no PRIVDEC, no root, no credentials, no steering, no control commands).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from smtpd_sim.cli import app
from smtpd_sim.spec.site import SiteSpec
from smtpd_sim.spec.topology import ERAS, load_topology
from smtpd_sim.studies.privsep import blast_radius, memory_disclosure, traffic_for
from smtpd_sim.studies.privsep_reach import reach, sender_flow, site_of

KEY = "tls-private-key"
QKEY = "queue-encryption-key"


def mbox_site() -> SiteSpec:
    """The common case with its local action delivering to mbox (`action "local" mbox`)."""
    data = site_of(None).model_dump()
    for d in data["domain"]:
        if d["action"] == "local":
            d["method"] = "mbox"
    return SiteSpec.model_validate(data)


def caps(era: str, proc: str, site: SiteSpec | None = None) -> set[str]:
    return set(reach(load_topology(era), proc, site)["capabilities"])


# ---- point 1: 5.4.2 mta holds the server's key on every outbound STARTTLS ------------------


@pytest.mark.parametrize("era", ["with-mfa", "without-mfa"])
def test_5_4_mta_holds_the_server_key_without_a_relay_pki(era: str) -> None:
    """mta_session.c:mta_start_tls(): certname = relay->pki_name, else s->helo, which
    mta_connect() sets to env->sc_hostname by default; lka.c:lka_imsg() PROC_MTA
    IMSG_LKA_SSL_INIT answers the pki's cert and key. No relay pki is needed."""
    r = memory_disclosure(load_topology(era), ["mta"])
    assert KEY in r.exposed_secrets  # unconditional: before issue 23 only "if a relay pki"
    assert KEY not in r.conditional_secrets


# ---- point 2: 6.8 queue key in every re-exec'd child ----------------------------------------


@pytest.mark.parametrize(("era", "holders"), [
    # 5.x smtpd.c:post_fork(): memset/explicit_bzero(env->sc_queue_key) unless PROC_QUEUE
    ("with-mfa", {"queue"}), ("pony", {"queue"}),
    # 6.8 smtpd.c:main(): every child re-execs and runs parse_config(); nothing zeroes the key
    ("pony-6.8", {"parent", "lka", "queue", "control", "scheduler", "pony", "ca"}),
])
def test_queue_key_holders(era: str, holders: set[str]) -> None:
    topo = load_topology(era)
    held = {p.name for p in topo.spec.process for h in p.secrets if h.item == QKEY and h.when == "serving"}
    assert held == holders
    exposed = {p for p in topo.processes if not topo.processes[p].root
               and QKEY in blast_radius(topo, p).conditional_secrets + blast_radius(topo, p).exposed_secrets}
    assert exposed == holders - {"parent"}


# ---- point 10: 5.7.3 ca decrypts too ----------------------------------------------------------


def test_5_7_ca_is_a_decryption_oracle_for_pony() -> None:
    """5.7.3 ca.c:ca_imsg() PROC_PONY block: case IMSG_CA_PRIVENC: case IMSG_CA_PRIVDEC."""
    r = blast_radius(load_topology("pony"), "pony")
    dec = [p for p in r.paths if p["imsg"] == "CA_PRIVDEC"]
    assert dec and dec[0]["capability"] == "private-key-decrypt-oracle"
    assert dec[0]["origin"] == "declared"
    assert {"private-key-oracle", "private-key-decrypt-oracle"} <= set(r.capabilities)


# ---- root -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("era", "proc", "root"), [
    # 5.x smtpd.c:forkmda(): the request names the backend (deliver->mode); maildir and mbox have
    # allow_root = 1 (delivery_maildir.c, delivery_mbox.c): whatever the site configures
    ("with-mfa", "mda", True), ("with-mfa", "queue", True), ("with-mfa", "lka", True),
    ("pony", "pony", True),
    # 5.x smtpd.c:parent_imsg(): MDA_FORK only from PROC_MDA / PROC_PONY
    ("with-mfa", "smtp", False), ("with-mfa", "mta", False), ("with-mfa", "control", False),
    # 6.8 forkmda(): uid 0 only for an mbox dispatcher; the common case has maildir only
    ("pony-6.8", "pony", False), ("pony-6.8", "lka", False),
])
def test_root_on_the_common_case(era: str, proc: str, root: bool) -> None:
    assert reach(load_topology(era), proc)["reach"]["root"]["reached"] is root


@pytest.mark.parametrize("proc", ["pony", "lka", "queue", "control", "scheduler", "ca"])
def test_6_8_any_child_is_root_when_an_mbox_action_exists(proc: str) -> None:
    """6.8 smtpd.c:parent_imsg() takes IMSG_MDA_FORK from any peer; forkmda() keeps uid 0 for an
    is_mbox dispatcher and mda_unpriv.c:mda_unpriv() runs /bin/sh -c deliver->mda_exec."""
    topo = load_topology("pony-6.8")
    r = reach(topo, proc, mbox_site())["reach"]["root"]
    assert r["reached"] is True
    # a channel to the parent is a direct fork request; the scheduler forges envelopes in queue
    # (queue_imsg() does not test the sender either), which pony turns into the request
    assert ([proc, "parent"] in r["fork_paths"]) is topo.graph.has_edge(proc, "parent")
    routes = {b["method"]: b for b in r["routes"]}
    assert routes["mbox"]["root"] and not routes["maildir"]["root"]
    assert "/bin/sh -c" in routes["mbox"]["as_root"]
    assert reach(topo, proc)["reach"]["root"]["reached"] is False  # maildir only: refused


def test_root_routes_name_their_backend_source() -> None:
    r = reach(load_topology("with-mfa"), "mda")["reach"]["root"]
    routes = {b["method"]: b for b in r["routes"]}
    assert routes["maildir"]["root"] and "delivery_maildir.c" in routes["maildir"]["source"]
    assert not routes["mda"]["root"] and not routes["mda"]["allow_root"]
    assert r["fork_paths"] == [["mda", "parent"]]


# ---- credentials and password oracles ----------------------------------------------------------


@pytest.mark.parametrize(("era", "proc", "want"), [
    # 5.4.2 smtp_session.c:smtp_rfc4954_auth_plain() -> lka IMSG_LKA_AUTHENTICATE -> parent
    ("with-mfa", "smtp", {"password-oracle", "system-password-oracle"}),
    # 5.4.2 mta.c:mta_query_secret() -> lka.c:lka_credentials() for any table and label
    ("with-mfa", "mta", {"read-relay-credentials"}),
    ("pony", "pony", {"password-oracle", "system-password-oracle", "read-relay-credentials"}),
    ("pony-6.8", "pony", {"password-oracle", "system-password-oracle", "read-relay-credentials"}),
])
def test_credentials(era: str, proc: str, want: set[str]) -> None:
    got = {p["capability"] for p in reach(load_topology(era), proc)["reach"]["credentials"]["paths"]}
    assert want <= got


def test_5_4_smtp_reaches_the_system_password_check_through_lka() -> None:
    """lka.c:lka_imsg() forwards IMSG_LKA_AUTHENTICATE to the parent when the listener has no
    auth table; smtpd.c:parent_imsg() accepts it from PROC_LKA only."""
    paths = [p["path"] for p in blast_radius(load_topology("with-mfa"), "smtp").paths
             if p["capability"] == "system-password-oracle"]
    assert paths == [["smtp", "lka", "parent"]]


def test_relay_credentials_disclosed_by_lka() -> None:
    e = [x for x in blast_radius(load_topology("pony"), "pony").exposures
         if x["secret"] == "relay-credentials" and x["holder"] == "lka"]
    assert e and "MTA_LOOKUP_CREDENTIALS" in e[0]["how"]


# ---- rule steering, availability ---------------------------------------------------------------


@pytest.mark.parametrize("era", ERAS)
def test_the_smtp_host_steers_the_ruleset(era: str) -> None:
    """ruleset.c trusts evp->flags (EF_AUTHENTICATED) and evp->ss the SMTP side sends."""
    topo = load_topology(era)
    steer = reach(topo, topo.host["smtp"])["reach"]["rule_steering"]
    assert any(p["imsg"] == "SMTP_EXPAND_RCPT" and p["origin"] == "observed" for p in steer)


@pytest.mark.parametrize("era", ERAS)
def test_every_child_stops_the_daemon(era: str) -> None:
    topo = load_topology(era)
    for p in topo.processes:
        av = reach(topo, p)["reach"]["availability"]
        assert av["stops_daemon"]
        assert av["crashable_peers"] == sorted(topo.graph.neighbors(p))


@pytest.mark.parametrize(("era", "shutdown"), [("with-mfa", True), ("pony", True), ("pony-6.8", False)])
def test_control_commands(era: str, shutdown: bool) -> None:
    """control.c IMSG_CTL_SHUTDOWN -> parent (5.x only), IMSG_CTL_PAUSE_MDA -> queue (all)."""
    got = {p["capability"] for p in reach(load_topology(era), "control")["reach"]["availability"]["commands"]}
    assert ("stop-daemon" in got) is shutdown
    assert "pause-deliveries" in got


# ---- secrets beyond the key ---------------------------------------------------------------------


@pytest.mark.parametrize("era", ERAS)
def test_heartbleed_reads_messages_and_passwords_in_every_era(era: str) -> None:
    r = memory_disclosure(load_topology(era))
    assert "message-data" in r.exposed_secrets
    assert "auth-passwords" in r.conditional_secrets


# ---- the sender address from the network to the root parent -------------------------------------


@pytest.mark.parametrize(("era", "chain"), [
    ("with-mfa", ["smtp", "lka", "queue", "mda", "parent"]),
    ("pony", ["pony", "lka", "queue", "pony", "parent"]),
    ("pony-6.8", ["pony", "lka", "queue", "pony", "parent"]),
])
def test_sender_flow_process_by_process(era: str, chain: list[str]) -> None:
    f = sender_flow(load_topology(era))
    assert [f["steps"][0]["from"]] + [s["to"] for s in f["steps"]] == chain
    assert f["steps"][-1]["imsg"] == "MDA_FORK"
    assert "smtp_mailaddr()" in f["entry"]["source"]


def test_sender_reaches_a_root_command_only_with_mbox() -> None:
    """6.8 mda_mbox.c:mda_mbox() runs mail.local -f <sender> as root (6.6.1p1: through /bin/sh)."""
    topo = load_topology("pony-6.8")
    assert sender_flow(topo)["root_sink_configured"] is False
    f = sender_flow(topo, mbox_site())
    assert f["root_sink_configured"] is True
    mbox = next(s for s in f["sinks"] if s["method"] == "mbox")
    assert mbox["runs_as"] == "root" and mbox["shell"] is False


def test_unmodelled_imsgs_are_declared_with_their_era_names() -> None:
    tr = traffic_for(load_topology("with-mfa"))
    assert ("mta", "lka", "MTA_LOOKUP_CREDENTIALS") in tr.unmodelled
    assert ("control", "parent", "CTL_SHUTDOWN") in tr.unmodelled
    assert not any(k == "CTL_SHUTDOWN" for (_s, _d, k) in traffic_for(load_topology("pony-6.8")).unmodelled)


# ---- CLI ---------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_compromise_carries_the_reach_categories() -> None:
    res = runner.invoke(app, ["privsep", "pony", "--compromise", "pony", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert set(d["reach"]) == {"entry", "root", "credentials", "rule_steering", "availability", "secrets"}
    assert d["reach"]["root"]["reached"] is True
    text = runner.invoke(app, ["privsep", "pony", "--compromise", "pony"]).output
    for word in ("root", "credentials", "rule steering", "availability", "secrets"):
        assert word in text


def test_cli_site_and_sender_flow(tmp_path) -> None:
    site = tmp_path / "mbox.toml"
    site.write_text('hostname = "mx.local.test"\n[[domain]]\nname = "local.test"\naction = "local"\n'
                    'method = "mbox"\n[[user]]\nname = "alice"\nuid = 1001\n')
    d = json.loads(runner.invoke(app, ["privsep", "pony-6.8", "--scenario", "sender-flow", "--site",
                                       str(site), "--json"]).stdout)
    assert d["root_sink_configured"] is True
    d = json.loads(runner.invoke(app, ["privsep", "pony-6.8", "--compromise", "lka", "--site",
                                       str(site), "--json"]).stdout)
    assert d["reach"]["root"]["reached"] is True
    bad = runner.invoke(app, ["privsep", "pony-6.8", "--compromise", "lka", "--site", "nowhere"])
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1


def test_cli_text_keeps_bracketed_words() -> None:
    """rich markup ate "[parent]" (the roles column) and the 5.x parent's title "[priv]"."""
    assert "[parent]" in runner.invoke(app, ["privsep", "with-mfa"]).output
    assert "[priv]" in runner.invoke(app, ["topology", "with-mfa"]).output


@pytest.mark.parametrize("era", ERAS)
def test_bounce_and_enqueue_sessions_are_local_submission(era: str) -> None:
    """bounce.c:bounce_drain() -> smtp.c:smtp_enqueue(): a session from the local listener; the
    probes deliver every message, so the queue's request is declared, not observed (5.x) or
    accepted from any sender (6.8); control's enqueue (smtpctl, sendmail) is not modelled."""
    topo = load_topology(era)
    for proc, kind in (("queue", "QUEUE_SMTP_SESSION"), ("control", "CTL_SMTP_SESSION")):
        steer = reach(topo, proc)["reach"]["rule_steering"]
        assert any(p["imsg"] == kind and p["capability"] == "local-submission" for p in steer), (proc, steer)
