"""Privsep analysis: blast radius per era and process, Heartbleed, merge safety, the CLI.

Expected facts come from the research (section named beside each) and the C functions the
topology data cites; the answers come from running smtpd_sim.studies.privsep on the topologies.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from smtpd_sim.cli import app
from smtpd_sim.spec.site import SiteSpec
from smtpd_sim.spec.topology import ERAS, Topology, TopologySpec, load_topology
from smtpd_sim.studies.privsep import (
    blast_radius,
    memory_disclosure,
    merge_check,
    merge_topology,
    observe_traffic,
    observed_resolvers,
    privilege_table,
    site_of,
    traffic_for,
)
from smtpd_sim.studies.probe import run_probe

KEY = "tls-private-key"


def br(era: str, proc: str):
    return blast_radius(load_topology(era), proc)


# ---- blast radius, era by era ---------------------------------------------------------------

# (era, process) -> (key exposed?, capabilities that must be reached, capabilities that must not)
BLAST = {
    # era-5.4.2-mfa.md §1.1: smtp builds its SSL_CTX with the key; parent forks agents only for mda
    ("with-mfa", "smtp"): (True, {"write-queued-messages", "tls-cert-lookup"}, {"exec-as-any-user"}),
    # §1.1: the mfa holds nothing privileged; its only peer answer is MFA_SMTP_RESPONSE
    ("with-mfa", "mfa"): (False, set(), {"exec-as-any-user", "tls-cert-lookup", "write-queued-messages"}),
    # §1.1: lka keeps the PKI dict with keys, asks the parent for ~/.forward, submits envelopes
    ("with-mfa", "lka"): (True, {"open-forward-as-root", "forge-envelopes", "exec-as-any-user"}, set()),
    # §1.1: the parent forks delivery agents for mda (forkmda()); mda reads message fds from queue
    ("with-mfa", "mda"): (False, {"exec-as-any-user", "read-any-queued-message"}, {"tls-cert-lookup"}),
    # §1.1, §2 #51: lka answers IMSG_LKA_SSL_INIT from mta with the key PEM
    ("with-mfa", "mta"): (True, {"read-any-queued-message", "tls-cert-lookup"}, {"exec-as-any-user"}),
    # §1.1: queue hands envelopes to mda, which turns them into fork requests
    ("with-mfa", "queue"): (False, {"drive-local-delivery", "exec-as-any-user"}, {"tls-cert-lookup"}),
    ("with-mfa", "scheduler"): (False, {"schedule-deliveries"}, {"exec-as-any-user"}),
    ("with-mfa", "control"): (False, set(), {"exec-as-any-user"}),
    ("with-mfa", "parent"): (True, {"root"}, set()),
    # era-pony.md §4.2: 5.4 without MFA, same privileges
    ("without-mfa", "smtp"): (True, {"write-queued-messages"}, {"exec-as-any-user"}),
    ("without-mfa", "mda"): (False, {"exec-as-any-user"}, set()),
    ("without-mfa", "lka"): (True, {"open-forward-as-root"}, set()),
    # era-pony.md §1.1: pony holds a fake private key, asks ca for RSA ops, forks agents via parent
    ("pony", "pony"): (False, {"private-key-oracle", "exec-as-any-user", "read-any-queued-message"}, set()),
    # §1.1: ca is the only holder of private keys and serves only CA_PRIVENC/PRIVDEC
    ("pony", "ca"): (True, set(), {"exec-as-any-user", "private-key-oracle"}),
    # §1.1: "No private keys in 5.7.3" in lka
    ("pony", "lka"): (False, {"open-forward-as-root", "forge-envelopes"}, set()),
    ("pony", "parent"): (True, {"root"}, set()),
    ("pony", "scheduler"): (False, {"schedule-deliveries"}, {"exec-as-any-user"}),
    ("pony-6.8", "pony"): (False, {"private-key-oracle", "exec-as-any-user"}, set()),
    # 6.8's ca_imsg()/parent_imsg() switch on the type alone: ca may ask the parent to fork
    ("pony-6.8", "ca"): (True, {"exec-as-any-user"}, {"private-key-oracle"}),
    # 6.8 control reaches the parent's fork and klondike's key operations (no sender test)
    ("pony-6.8", "control"): (False, {"exec-as-any-user", "private-key-oracle"}, set()),
    # 5.7.3 parent_imsg() accepts only CTL_* from control (if (p->proc == PROC_CONTROL))
    ("pony", "control"): (False, set(), {"exec-as-any-user", "private-key-oracle"}),
    # era-pony.md §1.2: 6.8's lka keeps the PEM key bytes loaded in main() (never used)
    ("pony-6.8", "lka"): (True, {"open-forward-as-root"}, set()),
    ("pony-6.8", "queue"): (False, {"exec-as-any-user"}, {"private-key-oracle"}),
}


@pytest.mark.parametrize(("era", "proc"), sorted(BLAST))
def test_blast_radius(era: str, proc: str) -> None:
    key, must, must_not = BLAST[(era, proc)]
    r = br(era, proc)
    assert (KEY in r.exposed_secrets) is key, r.exposures
    assert must <= set(r.capabilities), r.capabilities
    assert not (must_not & set(r.capabilities)), r.capabilities


@pytest.mark.parametrize("era", ERAS)
def test_every_process_has_an_answer_and_the_root_parent_reaches_all(era: str) -> None:
    topo = load_topology(era)
    for name in topo.processes:
        r = blast_radius(topo, name)
        assert r.compromised == name
        assert name not in r.reachable_processes
    assert sorted(br(era, "parent").reachable_processes) == sorted(p for p in topo.processes if p != "parent")


def test_6_8_lka_key_is_dormant_and_5_4_lka_serves_it() -> None:
    """era-pony.md §1.2 (dormant PEM bytes) vs era-5.4.2-mfa.md §2 #51 (served to smtp)."""
    e68 = [e for e in br("pony-6.8", "lka").exposures if e["secret"] == KEY]
    assert [(e["holder"], e["form"]) for e in e68] == [("lka", "dormant")]
    e54 = [e for e in br("with-mfa", "smtp").exposures if e["secret"] == KEY]
    assert {e["holder"] for e in e54} == {"smtp", "lka"}  # its own SSL_CTX, and lka answers SSL_INIT


def test_queue_reaches_exec_through_mda_not_directly() -> None:
    """The parent accepts MDA_FORK from mda only (smtpd.c:parent_imsg()); queue gets there by
    steering mda with an envelope (IMSG_QUEUE_DELIVER), a two-step path."""
    r = br("with-mfa", "queue")
    paths = [p["path"] for p in r.paths if p["capability"] == "exec-as-any-user"]
    assert paths and all(p[:2] == ["queue", "mda"] and p[-1] == "parent" for p in paths)


@pytest.mark.parametrize("era", ["with-mfa", "without-mfa", "pony"])
def test_mda_fork_is_accepted_only_from_the_process_hosting_mda(era: str) -> None:
    """5.x smtpd.c:parent_imsg(): IMSG_PARENT_FORK_MDA / IMSG_MDA_FORK under
    ``if (p->proc == PROC_MDA)`` / ``PROC_PONY``; the model's probes show mda sending it."""
    topo = load_topology(era)
    senders = {src for (src, dst), kinds in traffic_for(topo).accepted.items()
               if dst == "parent" and "MDA_FORK" in kinds}
    assert senders == {topo.host["mda"]}


def test_6_8_parent_takes_mda_fork_from_every_peer() -> None:
    """6.8.0p2 smtpd.c:parent_imsg() switches on the type alone (checks_sender = false): every
    process with a channel to the parent may send IMSG_MDA_FORK."""
    topo = load_topology("pony-6.8")
    tr = traffic_for(topo)
    senders = {src for (src, dst), kinds in tr.accepted.items() if dst == "parent" and "MDA_FORK" in kinds}
    assert senders == set(topo.graph.neighbors("parent"))
    assert "MDA_FORK" not in tr.unchecked.get(("pony", "parent"), set())  # observed, not assumed


def test_key_in_lka_answer_matches_the_model() -> None:
    """The data says lka serves the key (served_by) exactly where the model's lka puts the PEM in
    its SMTP_TLS_INIT answer: observed as the answer's length on a STARTTLS probe."""
    from smtpd_sim.sim.simulation import Simulation
    from smtpd_sim.spec.scenario import scenario_of
    from smtpd_sim.studies.probe import probe_workload

    for era in ERAS:
        topo = load_topology(era)
        serves = any(h.served_by for h in topo.processes["lka"].secrets)
        w = probe_workload("local")
        w = w.model_copy(update={"mix": w.mix.model_copy(update={"tls_share": 1.0})})
        sim = Simulation(scenario_of(topo, workload=w, seed=1))
        sim.startup()
        sim.start_clients()
        sim.run_until_quiet(max_time=600.0)
        answers = [h for h in sim.recorder.hops
                   if h.from_proc == "lka" and h.kind in ("SMTP_TLS_INIT", "CERT_INIT")]
        assert answers
        cert_only = min(h.len for h in answers)
        plain = load_topology("pony")  # no key in the answer (era-pony.md §1.1)
        sim2 = Simulation(scenario_of(plain, workload=w, seed=1))
        sim2.startup()
        sim2.start_clients()
        sim2.run_until_quiet(max_time=600.0)
        pony_len = min(h.len for h in sim2.recorder.hops if h.from_proc == "lka" and h.kind == "SMTP_TLS_INIT")
        assert (cert_only > pony_len) is serves, era


# ---- Heartbleed -------------------------------------------------------------------------------


@pytest.mark.parametrize(("era", "exposed"), [("with-mfa", True), ("without-mfa", True),
                                              ("pony", False), ("pony-6.8", False)])
def test_heartbleed_exposes_keys_before_klondike_only(era: str, exposed: bool) -> None:
    """era-5.4.2-mfa.md §1.1 (smtp's SSL_CTX holds the key) vs era-pony.md §1.1/§1.2 (fake key in
    pony; 6.8 pony purges PURGE_PKI_KEYS at setup)."""
    r = memory_disclosure(load_topology(era))
    assert (KEY in r.exposed_secrets) is exposed
    assert r.reachable_processes == []
    assert set(r.compromised) == {p.name for p in load_topology(era).spec.process if p.network_facing}


# ---- merges ---------------------------------------------------------------------------------


def test_pony_merge_erases_no_kernel_boundary_and_saves_no_hops() -> None:
    """era-pony.md §3.6: smtp, mta, mda had no channels between them; same user and chroot."""
    r = merge_check(load_topology("without-mfa"), ["smtp", "mta", "mda"])
    assert r["processes"] == ["smtp", "mda", "mta"]
    assert not [b for b in r["erased_boundaries"] if b["enforced_by_kernel"]]
    assert r["hops_saved_per_message"] == {"local": 0, "relay": 0}
    # the price is reported: the network-facing side gains mda's fork request
    gained = [b for b in r["erased_boundaries"] if b["kind"] == "imsg" and b["held_by"] == "mda"]
    assert any("MDA_FORK" in i for b in gained for i in b["imsgs"])


@pytest.mark.parametrize("era", ["pony", "pony-6.8"])
def test_queue_merge_into_pony_is_unsafe(era: str) -> None:
    """queue runs as _smtpq chrooted to the spool (era-pony.md §1.1), pony as _smtpd in /var/empty."""
    r = merge_check(load_topology(era), ["smtp", "mta", "mda", "queue"])
    assert r["safe"] is False
    kinds = {b["kind"] for b in r["erased_boundaries"]}
    assert {"user", "chroot", "file"} <= kinds
    assert r["hops_saved_per_message"]["local"] > 0


@pytest.mark.parametrize("era", ["pony", "pony-6.8"])
def test_lka_merge_into_pony_is_unsafe(era: str) -> None:
    """lka has no chroot and opens the tables (era-pony.md §1.1)."""
    r = merge_check(load_topology(era), ["lka", "smtp"])
    assert r["safe"] is False
    deciding = [r["erased_boundaries"][i]["kind"] for i in r["deciding_boundaries"]]
    assert "chroot" in deciding and "file" in deciding
    if era == "pony-6.8":
        assert any(b["kind"] == "secret" and b["item"] == KEY for b in r["erased_boundaries"])


def test_killing_the_mfa_saves_its_13_hops() -> None:
    """era-5.4.2-mfa.md §3.5: 13 of the 41 local hops are smtp<->mfa; merging mfa into smtp
    turns exactly those into calls (cross-checked against the probe's per-type count)."""
    r = merge_check(load_topology("with-mfa"), ["smtp", "mfa"])
    mfa_hops = sum(n for name, n in run_probe("with-mfa", "local").by_type.items() if "_MFA_" in name)
    assert r["hops_saved_per_message"]["local"] == mfa_hops == 13
    assert r["safe"] is True


@pytest.mark.parametrize(("era", "roles"), [("pony", ["smtp", "queue"]), ("pony", ["smtp", "lka"]),
                                           ("pony-6.8", ["queue", "scheduler"]), ("with-mfa", ["smtp", "mfa"])])
def test_hops_saved_equal_the_hops_on_the_channels_that_become_calls(era: str, roles: list[str]) -> None:
    """Two methods agree: probes run on the merged topology vs the era's probe counted on the
    channels between the merged processes (nothing else in the flow changes)."""
    topo = load_topology(era)
    r = merge_check(topo, roles)
    a, b = r["processes"]
    for kind in ("local", "relay"):
        pairs = run_probe(era, kind).by_pair
        internal = pairs.get(f"{a}->{b}", 0) + pairs.get(f"{b}->{a}", 0)
        assert internal > 0
        assert r["hops_saved_per_message"][kind] == internal


def test_merging_klondike_back_into_pony_brings_heartbleed_back() -> None:
    """The reverse of the 5.7.3 split (era-pony.md §1.1): the key joins the network-facing process."""
    topo = load_topology("pony-6.8")
    r = merge_check(topo, ["smtp", "ca"])
    assert r["safe"] is False
    merged = merge_topology(topo, ["smtp", "ca"])
    assert KEY in memory_disclosure(merged).exposed_secrets
    assert "private-key-oracle" not in blast_radius(merged, "smtp").capabilities  # now a function call


def test_merging_into_the_root_parent_is_unsafe() -> None:
    r = merge_check(load_topology("pony"), ["parent", "smtp"])
    assert r["safe"] is False
    assert {"root", "user", "chroot"} <= {b["kind"] for b in r["erased_boundaries"]}


def test_merged_topology_is_valid_and_has_fewer_channels() -> None:
    t = load_topology("with-mfa")
    m = merge_topology(t, ["smtp", "mfa"])
    assert m.n_processes == t.n_processes - 1
    assert not m.graph.has_edge("smtp-mfa", "smtp-mfa")
    assert m.host["smtp"] == m.host["mfa"] == "smtp-mfa"
    assert m.n_channels < t.n_channels


# ---- a student's design -----------------------------------------------------------------------


def test_a_topology_built_from_a_dict_is_analysed_the_same_way() -> None:
    """Give mda its own key and watch compromise of mda expose it; the table lists it."""
    data = load_topology("pony-6.8").spec.model_dump()
    for p in data["process"]:
        if p["name"] == "pony":
            p["secrets"] = [{"item": KEY, "source": "exercise: the key back in pony"}]
    topo = Topology(TopologySpec.model_validate(data))
    assert KEY in memory_disclosure(topo).exposed_secrets
    rows = {r["process"]: r for r in privilege_table(topo)}
    assert rows["pony"]["secrets"][0]["item"] == KEY
    assert "parent" in rows["pony"]["peers_accept"]


def test_observed_traffic_is_deterministic() -> None:
    t = load_topology("pony")
    a, b = observe_traffic(t), observe_traffic(t)
    assert a.accepted == b.accepted and a.subtree == b.subtree


# ---- CLI -------------------------------------------------------------------------------------

runner = CliRunner()


def _json(*args: str) -> dict:
    res = runner.invoke(app, ["privsep", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_cli_compromise_json_shape() -> None:
    d = _json("pony-6.8", "--compromise", "pony")
    assert {"era", "compromised", "exposed_secrets", "reachable_processes", "capabilities"} <= set(d)
    assert d["era"] == "pony-6.8" and d["compromised"] == "pony"
    assert all(isinstance(d[k], list) for k in ("exposed_secrets", "reachable_processes", "capabilities"))


def test_cli_role_name_stands_for_its_process() -> None:
    assert _json("pony", "--compromise", "smtp")["compromised"] == "pony"


def test_cli_heartbleed_json() -> None:
    assert KEY in _json("with-mfa", "--scenario", "heartbleed")["exposed_secrets"]
    assert KEY not in _json("pony", "--scenario", "heartbleed")["exposed_secrets"]


def test_cli_merge_json_shape() -> None:
    d = _json("without-mfa", "--merge", "smtp,mta,mda")
    assert {"merge", "safe", "erased_boundaries", "hops_saved_per_message"} <= set(d)
    assert d["merge"] == ["smtp", "mta", "mda"] and d["safe"] is False  # MDA_FORK joins smtp
    assert [q["imsg"] for q in d["root_requests"]] == ["MDA_FORK"] and d["deciding_requests"] == [0]
    assert _json("pony", "--merge", "smtp,queue")["safe"] is False


def test_cli_table_and_json_table() -> None:
    res = runner.invoke(app, ["privsep", "with-mfa"])
    assert res.exit_code == 0
    assert "privilege model of with-mfa" in res.output and "_smtpq" in res.output
    d = _json("pony")
    assert {r["process"] for r in d["processes"]} == set(load_topology("pony").processes)


def test_cli_same_seed_same_bytes() -> None:
    a = runner.invoke(app, ["privsep", "pony", "--merge", "smtp,lka", "--json"]).stdout
    b = runner.invoke(app, ["privsep", "pony", "--merge", "smtp,lka", "--json"]).stdout
    assert a == b


@pytest.mark.parametrize("args", [
    ["nowhere"],
    ["pony", "--compromise", "nobody"],
    ["pony", "--merge", "smtp,bogus"],
    ["pony", "--merge", "mfa"],
    ["pony", "--scenario", "meltdown"],
    ["pony", "--merge", "smtp", "--compromise", "pony"],
])
def test_cli_bad_input_one_line_exit_2(args: list[str]) -> None:
    res = runner.invoke(app, ["privsep", *args])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and "error" in res.stderr
    assert "Traceback" not in res.output


# ---- the tables the analysis relies on stay consistent with the model's roles ---------------


def test_every_effect_names_a_kind_its_role_handles() -> None:
    from smtpd_sim.imsg import KINDS
    from smtpd_sim.roles.registry import ROLE_CLASSES
    from smtpd_sim.studies.privsep import DECLARED, EFFECTS
    from smtpd_sim.studies.privsep_facts import UNMODELLED

    unmodelled = {(u.kind, u.receiver) for u in UNMODELLED}
    for (kind, role), eff in EFFECTS.items():
        # a kind no role implements is declared with its IMSG names (privsep_facts.UNMODELLED);
        # once the model implements it, it must leave that list
        assert ((kind in KINDS and kind in ROLE_CLASSES[role].handlers)
                != ((kind, role) in unmodelled)), (kind, role)
        assert eff.source
    for _src, dst, kind, source in DECLARED:
        assert kind in KINDS and kind in ROLE_CLASSES[dst].handlers and source


@pytest.mark.parametrize("era", ERAS)
def test_every_privilege_fact_cites_a_source(era: str) -> None:
    for p in load_topology(era).spec.process:
        for h in [*p.secrets, *p.files]:
            assert any(tag in h.source for tag in (".c:", ".md", "§")), (p.name, h.item, h.source)


# ---- issue 23 finding 9: the fork request joins the network-facing process ----------------------


def mbox_site() -> SiteSpec:
    """The common case with its local action delivering to mbox (`action "local" mbox`)."""
    data = site_of(None).model_dump()
    for d in data["domain"]:
        if d["action"] == "local":
            d["method"] = "mbox"
    return SiteSpec.model_validate(data)


@pytest.mark.parametrize("era", ["with-mfa", "without-mfa"])
def test_5_4_merging_mda_into_smtp_moves_the_root_fork_request_to_the_network(era: str) -> None:
    """smtpd.c:parent_imsg() takes IMSG_PARENT_FORK_MDA only from PROC_MDA (5.4.2); forkmda()
    serves uid 0 for maildir and mbox (allow_root). Merged, the network-facing smtp sends it."""
    r = merge_check(load_topology(era), ["smtp", "mta", "mda"])
    assert r["safe"] is False and not r["already_one_process"]
    assert not [r["erased_boundaries"][i] for i in r["deciding_boundaries"]]  # decided by the request
    (q,) = r["root_requests"]
    assert (q["imsg"], q["name"], q["to"]) == ("MDA_FORK", "IMSG_PARENT_FORK_MDA", "parent")
    assert q["accepted_from_before"] == ["mda"] and q["exposure_before"] == "internal"
    assert q["new_to_network"] is True and r["deciding_requests"] == [0]
    assert q["uid0_methods"] == ["maildir", "mbox"]
    assert "PROC_MDA" in q["sender_test"]


def test_pony_already_hosts_smtp_mta_mda_with_the_fork_request() -> None:
    """5.7.3: parent_imsg() takes IMSG_MDA_FORK from PROC_PONY, the network-facing process: the
    merge is a no-op, and the answer says the era already has what makes it unsafe."""
    r = merge_check(load_topology("pony"), ["smtp", "mta", "mda"])
    assert r["already_one_process"] is True and r["erased_boundaries"] == []
    assert r["safe"] is False
    (q,) = r["root_requests"]
    assert q["name"] == "IMSG_MDA_FORK" and q["accepted_from_before"] == ["pony"]
    assert q["new_to_network"] is False and q["network_facing_after"] is True
    assert q["uid0_methods"] == ["maildir", "mbox"] and "PROC_PONY" in q["sender_test"]


def test_6_8_uid0_depends_on_the_configured_action() -> None:
    """6.8 forkmda() serves uid 0 only for an mbox dispatcher (dsp->u.local.is_mbox); any peer may
    send IMSG_MDA_FORK (parent_imsg() has no sender test)."""
    topo = load_topology("pony-6.8")
    plain = merge_check(topo, ["smtp", "mta", "mda"])
    (q,) = plain["root_requests"]
    assert q["uid0_methods"] == [] and plain["safe"] is False  # exec as any other user still decides
    assert set(q["accepted_unchecked_from"]) == {"ca", "control", "lka", "queue"}
    (q2,) = merge_check(topo, ["smtp", "mta", "mda"], site=mbox_site())["root_requests"]
    assert q2["uid0_methods"] == ["mbox"]


def test_merges_without_the_fork_request_are_not_decided_by_it() -> None:
    r = merge_check(load_topology("with-mfa"), ["smtp", "mfa"])
    assert r["root_requests"] == [] and r["safe"] is True


def test_cli_merge_prints_the_fork_request() -> None:
    out = " ".join(runner.invoke(app, ["privsep", "with-mfa", "--merge", "smtp,mta,mda"]).output.split())
    assert "unsafe" in out and "IMSG_PARENT_FORK_MDA" in out and "for the first time" in out
    out = " ".join(runner.invoke(app, ["privsep", "pony", "--merge", "smtp,mta,mda"]).output.split())
    assert "unsafe" in out and "already hosts them in one process" in out


# ---- issue 23 finding 8: lka parses DNS answers the attacker shapes -----------------------------


@pytest.mark.parametrize("era", [*ERAS, "pony-6.8-filters"])
def test_lka_parses_dns_answers_though_it_accepts_no_connection(era: str) -> None:
    """dns.c:dns_imsg() (5.x) / resolver.c:resolver_dispatch_request() (6.8) run libasr in lka
    for the network-facing process's PTR and MX lookups; lka.c:lka() has no chroot(). The
    topology's network_inputs facts must match what the model's runs show."""
    topo = load_topology(era)
    lka = topo.processes["lka"]
    assert lka.exposure == "parses-network-data" and not lka.network_facing and lka.chroot == ""
    assert set(observed_resolvers(topo)) == {p.name for p in topo.spec.process if p.network_inputs}
    asking = observed_resolvers(topo)["lka"]
    ptr = "GETNAMEINFO" if topo.spec.vocabulary == "6.8" else "SMTP_DNS_PTR"
    assert ptr in asking[topo.host["smtp"]]
    row = {r["process"]: r for r in privilege_table(topo)}["lka"]
    assert row["exposure"] == "parses-network-data" and row["resolves_for"] == asking


@pytest.mark.parametrize(("era", "via_lka"), [("with-mfa", True), ("without-mfa", True),
                                               ("pony", False), ("pony-6.8", True)])
def test_parser_overread_reaches_lka_and_its_key_where_it_holds_one(era: str, via_lka: bool) -> None:
    """5.4.2 lka serves the key PEM (IMSG_LKA_SSL_INIT); 5.7.3 lka loads certificates only; 6.8
    lka keeps the PEM bytes (purges only PURGE_LISTENERS, era-pony.md §1.2). Heartbleed (TLS)
    stays in the network-facing processes."""
    topo = load_topology(era)
    r = memory_disclosure(topo, scenario="parser-overread")
    assert "lka" in r.compromised and r.scenario == "parser-overread"
    assert any(e["secret"] == KEY and e["holder"] == "lka" for e in r.exposures) is via_lka
    assert "lka" not in memory_disclosure(topo).compromised
    assert {"relay-credentials", "auth-passwords"} <= set(r.conditional_secrets) | set(r.exposed_secrets)


def test_merging_into_lka_moves_secrets_towards_the_network() -> None:
    """queue (internal) joining lka (parses DNS answers): its files now sit in a process a DNS
    parser bug reaches, though neither was network-facing."""
    bounds = merge_check(load_topology("pony"), ["lka", "queue"])["erased_boundaries"]
    moved = [b for b in bounds if b["kind"] == "file" and b["held_by"] == "queue"]
    assert moved and all(b["moves_to_network"] and b["exposure"] == "parses-network-data" for b in moved)


def test_cli_parser_overread_and_dns_flag() -> None:
    assert "lka" in _json("pony-6.8", "--scenario", "parser-overread")["compromised"]
    assert KEY not in _json("pony-6.8", "--scenario", "heartbleed")["exposed_secrets"]
    out = runner.invoke(app, ["privsep", "with-mfa"]).output
    assert "DNS" in out
    d = _json("pony", "--compromise", "lka")
    assert d["reach"]["entry"]["exposure"] == "parses-network-data"
    assert _json("pony", "--compromise", "queue")["reach"]["entry"]["exposure"] == "internal"
