"""The explorer's data (studies.explore): every fact is what the model's own studies say
(probes, privsep, compare), the hop counts match the research, and the page renders from it
alone (figures.explorer). No browser here: tests/figures/test_explorer_browser.py drives one."""

from __future__ import annotations

import re
from typing import Any

import pytest

from smtpd_sim.figures.explorer import MAX_BYTES, render_explorer
from smtpd_sim.roles.registry import role_class
from smtpd_sim.spec.topology import ERAS, load_topology
from smtpd_sim.studies.explore import MESSAGE_KINDS, explore_data, message_trace
from smtpd_sim.studies.explore_csource import INTERNAL_RUNS, SOURCE_TAGS, _doc
from smtpd_sim.studies.privsep import memory_disclosure, merge_check
from smtpd_sim.studies.privsep_reach import reach
from smtpd_sim.studies.probe import run_probe

# research/era-5.4.2-mfa.md, end-to-end per message: "41 local / 39 relay, MFA share 13";
# research/real-daemon.md local-1rcpt: 31 non-stat imsgs on the real 6.8.0p2 (era-pony.md's
# era table: "31 (verified)")
EXPECTED_LOCAL_HOPS = {"with-mfa": 41, "pony-6.8": 31}
EXPECTED_MFA_HOPS = {"with-mfa": 13}


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return explore_data()


def _era(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in data["eras"] if e["era"] == name)


@pytest.mark.parametrize("era", list(EXPECTED_LOCAL_HOPS))
def test_local_message_hops_are_the_probes_in_its_order(data: dict[str, Any], era: str) -> None:
    m = _era(data, era)["messages"]["local"]
    probe = run_probe(load_topology(era), "local")
    assert m["n_hops"] == probe.hops == EXPECTED_LOCAL_HOPS[era]
    assert [(h["from"], h["to"], h["imsg"]) for h in m["hops"]] == probe.sequence
    assert m["n_mfa"] == EXPECTED_MFA_HOPS.get(era, 0)
    assert all(h["t_recv"] >= h["t"] for h in m["hops"])


def test_every_era_has_the_three_messages_and_the_bounce_bounced(data: dict[str, Any]) -> None:
    assert [e["era"] for e in data["eras"]] == [*ERAS, "pony-6.8-filters"]
    for e in data["eras"]:
        assert tuple(e["messages"]) == MESSAGE_KINDS
        b = e["messages"]["bounce"]
        assert b["ledger"]["bounced"] == 1 and b["n_hops"] > e["messages"]["relay"]["n_hops"]
        assert any(r["session"] for r in b["replies"])  # the bounce's own smtp session


def test_replies_carry_their_causal_hops_as_compare_counts_them(data: dict[str, Any]) -> None:
    for e in data["compare"]["eras"]:
        m = _era(data, e["era"])["messages"]["local"]
        assert e["hops_per_message"]["local"] == m["n_hops"]  # the page's run and compare's probe agree
        by_step = {r["step"]: r for r in m["replies"]}
        for step, hops in e["critical_path_hops"].items():
            assert len(by_step[step]["hops"]) == hops
            assert by_step[step]["round_trips"] == e["round_trips"][step]


def test_marks_mfa_in_with_mfa_fcrdns_in_68(data: dict[str, Any]) -> None:
    mfa = _era(data, "with-mfa")["messages"]["local"]["hops"]
    assert all({h["from"], h["to"]} == {"smtp", "mfa"} for h in mfa if "mfa" in h["marks"])
    six = _era(data, "pony-6.8")["messages"]["local"]["hops"]
    dns = [h["imsg"] for h in six if "fcrdns" in h["marks"]]
    assert dns and all(n.startswith(("IMSG_GETNAMEINFO", "IMSG_GETADDRINFO")) for n in dns)
    assert not any("fcrdns" in h["marks"] for h in mfa)  # 5.4.2 asks one PTR (IMSG_DNS_PTR), no FCrDNS
    assert not any("filter" in h["marks"] for h in six)
    # README (issue 14's measurement): one 6.8 filter raises a one-message session from 31 to 86 imsgs
    filt = _era(data, "pony-6.8-filters")["messages"]["local"]
    assert filt["n_hops"] == 86 and filt["n_filter"] > 0 and filt["filter_lines"] > 0
    assert all(h["from"] in ("pony", "lka") and h["to"] in ("pony", "lka") for h in filt["hops"] if "filter" in h["marks"])


def test_answers_point_back_at_their_request(data: dict[str, Any]) -> None:
    hops = _era(data, "pony-6.8")["messages"]["local"]["hops"]
    answers = [h for h in hops if h["answer_to"] is not None]
    assert answers
    for h in answers:
        q = hops[h["answer_to"]]
        assert (q["kind"], q["from"], q["to"]) == (h["kind"], h["to"], h["from"]) and q["i"] < h["i"]
    assert hops[1]["answer_to"] == 0  # GETNAMEINFO answered


@pytest.mark.parametrize("era", [*ERAS, "pony-6.8-filters"])
def test_links_point_at_the_eras_tag_and_every_hop_names_its_c_functions(data: dict[str, Any], era: str) -> None:
    e = _era(data, era)
    tag, folder = SOURCE_TAGS[load_topology(era).spec.vocabulary]
    assert (e["tag"], e["src_folder"]) == (tag, folder)
    for kind, m in e["messages"].items():
        for h in m["hops"]:
            for side in ("sender", "handler"):
                f = h[side]
                assert f["name"], (era, kind, h["imsg"], side)
                # the definition's line, from explore_csource.json (recorded with git grep)
                assert re.fullmatch(rf"https://github\.com/OpenSMTPD/OpenSMTPD/blob/{re.escape(tag)}/"
                                    rf"{re.escape(folder)}[a-z_0-9/]+\.c#L\d+", f["url"]), f["url"]


def test_internal_runs_name_real_methods_that_name_a_c_function() -> None:
    for key, (role, method) in INTERNAL_RUNS.items():
        fn = getattr(role_class(role), method)
        assert re.search(r"``[a-z_0-9.]*:?[a-z_0-9]+\(\)``", _doc(fn, role_class(role))), key


@pytest.mark.parametrize("era", list(ERAS))
def test_compromises_are_privseps(data: dict[str, Any], era: str) -> None:
    topo = load_topology(era)
    c = _era(data, era)["compromise"]
    for p in topo.spec.process:
        r = reach(topo, p.name)
        assert c["processes"][p.name]["code"]["exposed_secrets"] == r["exposed_secrets"]
        assert c["processes"][p.name]["code"]["reachable_processes"] == r["reachable_processes"]
        assert c["processes"][p.name]["memory"]["exposed_secrets"] == memory_disclosure(topo, [p.name]).exposed_secrets
    assert c["heartbleed"]["exposed_secrets"] == memory_disclosure(topo, None, "heartbleed").exposed_secrets


def test_heartbleed_key_in_klondike_from_573(data: dict[str, Any]) -> None:
    # research/era-pony.md: klondike (ca) holds the key from 5.7.3 on; 5.4.2's smtp held it
    assert "tls-private-key" in _era(data, "with-mfa")["compromise"]["heartbleed"]["exposed_secrets"]
    for era in ("pony", "pony-6.8"):
        assert "tls-private-key" not in _era(data, era)["compromise"]["heartbleed"]["exposed_secrets"]


def test_merges_are_privsep_merge(data: dict[str, Any]) -> None:
    e = _era(data, "with-mfa")
    assert [m["merge"] for m in e["merges"]] == [["smtp", "mta", "mda"], ["smtp", "lka"],
                                                 ["queue", "scheduler"], ["smtp", "mfa"]]
    m = e["merges"][3]
    ref = merge_check(load_topology("with-mfa"), ["smtp", "mfa"])
    assert (m["safe"], m["hops_saved_per_message"]) == (ref["safe"], ref["hops_saved_per_message"])
    assert m["hops_saved_per_message"]["local"] == EXPECTED_MFA_HOPS["with-mfa"]  # every smtp<->mfa hop


def test_exercise_answers_are_computed(data: dict[str, Any]) -> None:
    ex = {x["id"]: x for x in data["exercises"]}
    two = {e: run_probe(load_topology(e), "local", recipients=2).hops for e in ("with-mfa", "without-mfa")}
    assert ex["mfa-two-rcpt"]["answer"] == [str(two["with-mfa"] - two["without-mfa"])]
    assert ex["mfa-share"]["answer"] == [str(EXPECTED_MFA_HOPS["with-mfa"])]
    assert "ca" in ex["klondike"]["answer"]
    assert 5 <= len(data["tour"]) <= 8
    assert all(s["era"] in ERAS for s in data["tour"])


def test_page_is_self_contained_small_and_deterministic(data: dict[str, Any]) -> None:
    html = render_explorer(data)
    assert len(html.encode()) <= MAX_BYTES
    assert render_explorer(data) == html
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)  # nothing loaded from outside
    urls = set(re.findall(r"https?://[^\s\"'<>\\]+", html))
    assert urls and all(u.startswith("https://github.com/OpenSMTPD/OpenSMTPD/blob/") or u == "http://www.w3.org/2000/svg"
                        for u in urls), sorted(urls)[:5]
    assert "</script" not in html.split('id="explore-data">', 1)[1].split("</script>", 1)[0]


def test_same_seed_same_data() -> None:
    topo = load_topology("pony-6.8")
    assert message_trace(topo, "bounce") == message_trace(topo, "bounce")


def test_hops_carry_their_payload_as_the_role_sent_it(data: dict[str, Any]) -> None:
    """The payload summary is the recorder's (observe.recorder.payload_summary) of what the
    sending role put in the imsg: the queue's answer to a submit carries the new evpid."""
    hops = _era(data, "pony-6.8")["messages"]["local"]["hops"]
    by = {h["imsg"]: h for h in hops}
    assert "envelope=Envelope(rcpt='alice@local.test')" in by["IMSG_SMTP_EXPAND_RCPT"]["payload"]
    answer = [h for h in hops if h["imsg"] == "IMSG_QUEUE_ENVELOPE_SUBMIT" and h["to"] == "pony"]
    assert answer and "evpid=" in answer[0]["payload"] and "ok=True" in answer[0]["payload"]
    assert all(len(h["payload"]) <= 160 for h in hops)
