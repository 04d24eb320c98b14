"""Privsep on a platform (issue 23): pledge vs none, fds crossing channels, the trust model.

Facts come from the C (scenarios/platform/*.toml cite each); the answers are computed by
smtpd_sim.studies.privsep_platform on the era topologies.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from smtpd_sim.cli import app
from smtpd_sim.spec import platform as platform_spec
from smtpd_sim.spec.topology import ERAS, load_topology
from smtpd_sim.studies import privsep_platform as pp
from smtpd_sim.studies.privsep import merge_topology

runner = CliRunner()


def actions(era: str, proc: str, plat: str, stage: str = "serving") -> dict[str, bool]:
    return {a["action"]: a["allowed"] for a in pp.own_actions(load_topology(era), proc, plat, stage)["actions"]}


@pytest.mark.parametrize("era", ["with-mfa", "without-mfa", "pony"])
def test_no_pledge_in_5x_so_the_platform_changes_nothing(era: str) -> None:
    topo = load_topology(era)
    for p in topo.spec.process:
        bsd = pp.platform_blast(topo, p.name, "openbsd")
        lin = pp.platform_blast(topo, p.name, "linux-portable")
        assert bsd["promises"] is None and not bsd["enforced"]
        assert bsd["removed_by_pledge"] == [] and bsd["actions_removed"] == []
        assert [i["possible"] for i in bsd["reach"]] == [i["possible"] for i in lin["reach"]]


def test_6_8_pony_under_openbsd_cannot_exec_or_open_files_but_can_connect() -> None:
    bsd, lin = actions("pony-6.8", "pony", "openbsd"), actions("pony-6.8", "pony", "linux")
    assert not bsd["exec"] and not bsd["read-files"] and not bsd["create-files"] and not bsd["resolve-names"]
    assert bsd["connect-network"] and bsd["receive-fd"] and bsd["connect-unix"]
    assert all(lin.values())  # the portable build: only chroot and uid bound it
    # the smtp role's pledge is the pony's: resolving the role finds the same process
    assert actions("pony-6.8", "smtp", "openbsd") == bsd


def test_parent_escapes_pledge_by_exec() -> None:
    r = pp.own_actions(load_topology("pony-6.8"), "parent", "openbsd")
    assert r["exec_escape"]
    ptrace = next(a for a in r["actions"] if a["action"] == "ptrace")
    assert ptrace["allowed"] and ptrace["via_exec"]


def test_lka_can_exec_only_before_conf_end() -> None:
    assert actions("pony-6.8", "lka", "openbsd", "setup")["exec"]
    assert not actions("pony-6.8", "lka", "openbsd", "serving")["exec"]


def test_pledge_stops_ca_sending_the_key_off_the_host() -> None:
    r = pp.platform_blast(load_topology("pony-6.8"), "ca", "openbsd")
    assert "send tls-private-key off the host directly" in r["removed_by_pledge"]
    assert any(i["item"].startswith("read secret tls-private-key") and i["possible"] for i in r["reach"])
    # the parent still forks an agent for it: the effect does not need the pipe fd back
    assert any(i["item"].startswith("exec-as-any-user via ca -> parent") and i["possible"] for i in r["reach"])
    assert any(i["item"].startswith("open-forward-as-root via ca") for i in r["reach"]
               if not i["possible"])  # the .forward is an fd, and ca has no recvfd


def test_scheduler_stdio_cannot_take_the_message_fds() -> None:
    r = pp.platform_blast(load_topology("pony-6.8"), "scheduler", "openbsd")
    removed = r["removed_by_pledge"]
    assert any("read-any-queued-message" in x for x in removed)
    kept = [i["item"] for i in r["reach"] if i["possible"]]
    assert any(x.startswith("schedule-deliveries") for x in kept)  # imsgs alone need only stdio


def test_more_promises_in_the_data_change_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    data = platform_spec.load_pledge()
    stages = [s.model_copy(update={"promises": ["stdio", "inet"]}) if s.process == "ca" else s
              for s in data.stage]
    monkeypatch.setattr(pp, "load_pledge", lambda: data.model_copy(update={"stage": stages}))
    r = pp.platform_blast(load_topology("pony-6.8"), "ca", "openbsd")
    assert "send tls-private-key off the host directly" not in r["removed_by_pledge"]


def test_merged_process_has_no_pledge() -> None:
    merged = merge_topology(load_topology("pony-6.8"), ["lka", "queue"])
    name = merged.host["lka"]
    assert pp.promises_at(merged, name) is None
    assert not any(r["from"] == "queue" or r["to"] == "queue" for r in pp.fd_passing(merged)
                   if r["imsg"] != "IMSG_SETUP_PEER")


# ---- fds -----------------------------------------------------------------------------------


def test_setup_peer_sockets_are_passed_in_6_8_only() -> None:
    six = load_topology("pony-6.8")
    peers = [r for r in pp.fd_passing(six) if r["imsg"] == "IMSG_SETUP_PEER"]
    non_parent = [c for c in six.spec.channels if "parent" not in c]
    assert len(peers) == 2 * len(non_parent) and all(r["from"] == "parent" for r in peers)
    for era in ("with-mfa", "pony"):
        topo = load_topology(era)
        assert not [r for r in pp.fd_passing(topo) if r["imsg"] == "IMSG_SETUP_PEER"]
        assert pp.fds_without_passing(topo)


def test_fd_routes_per_era() -> None:
    def routes(era: str) -> set[tuple[str, str, str]]:
        return {(r["from"], r["to"], r["imsg"]) for r in pp.fd_passing(load_topology(era))}

    assert ("parent", "mda", "IMSG_PARENT_FORK_MDA") in routes("with-mfa")
    assert ("parent", "lka", "IMSG_PARENT_FORWARD_OPEN") in routes("with-mfa")
    assert ("queue", "smtp", "IMSG_QUEUE_MESSAGE_FILE") in routes("with-mfa")
    assert ("queue", "mfa", "IMSG_QUEUE_MESSAGE_FILE") not in routes("without-mfa")  # no mfa process
    assert ("parent", "pony", "IMSG_MDA_FORK") in routes("pony")
    assert ("queue", "pony", "IMSG_MTA_OPEN_MESSAGE") in routes("pony-6.8")
    assert ("parent", "lka", "IMSG_LKA_PROCESSOR_FORK") not in routes("pony-6.8")
    assert ("parent", "lka", "IMSG_LKA_PROCESSOR_FORK") in routes("pony-6.8-filters")
    assert ("lka", "pony", "IMSG_FILTER_SMTP_DATA_BEGIN") in routes("pony-6.8-filters")


@pytest.mark.parametrize("era", ["pony-6.8", "pony-6.8-filters"])
def test_every_pledged_fd_receiver_holds_recvfd(era: str) -> None:
    assert pp.fd_receivers_lacking_recvfd(load_topology(era)) == []


# ---- trust ---------------------------------------------------------------------------------


def test_sender_checks_per_era() -> None:
    five = pp.trust_model(load_topology("with-mfa"))
    assert five["any_sender_processes"] == ["scheduler"]
    six = pp.trust_model(load_topology("pony-6.8"))
    assert set(six["any_sender_processes"]) == set(load_topology("pony-6.8").processes)
    assert five["payload"]["encoding"] == "typed" and six["payload"]["encoding"] == "untyped"


def test_trusted_answers_and_who_else_may_send_them() -> None:
    def parent_fork(era: str) -> dict:
        tm = pp.trust_model(load_topology(era))
        parent = next(r for r in tm["processes"] if r["process"] == "parent")
        return next(a for a in parent["trusted_answers"] if a["kind"] == "MDA_FORK")

    assert parent_fork("with-mfa")["from"] == "mda" and parent_fork("with-mfa")["also_from"] == []
    six = parent_fork("pony-6.8")
    assert six["from"] == "pony" and "ca" in six["also_from"] and "scheduler" not in six["also_from"]
    tm = pp.trust_model(load_topology("pony-6.8"))
    pony = next(r for r in tm["processes"] if r["process"] == "pony")
    assert any(a["kind"] == "MDA_LOOKUP_USERINFO" and a["from"] == "lka" for a in pony["trusted_answers"])


def test_control_socket_and_filter_processors() -> None:
    tm = pp.trust_model(load_topology("pony-6.8-filters"))
    c = tm["control"]
    assert c["world_writable"] and c["any_local_user"] == ["IMSG_CTL_SMTP_SESSION"]
    assert len(c["root_only"]) == c["commands"] - 1
    (f,) = tm["filter_processors"]
    assert f["talks_to"] == "lka" and not f["pledged"] and "ca" in f["same_user_as"]
    assert f["lka_trusts"] and "fatalx" in f["lka_trusts"][0]["check"]
    assert pp.trust_model(load_topology("pony-6.8"))["filter_processors"] == []


# ---- CLI -----------------------------------------------------------------------------------


def test_cli_platform_json_and_text() -> None:
    r = runner.invoke(app, ["privsep", "pony-6.8", "--compromise", "pony", "--platform", "openbsd", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)["platform_blast"]
    assert d["enforced"] and "exec" in d["actions_removed"]
    r = runner.invoke(app, ["privsep", "pony-6.8", "--compromise", "pony", "--platform", "linux", "--json"])
    assert json.loads(r.stdout)["platform_blast"]["actions_removed"] == []
    r = runner.invoke(app, ["privsep", "pony-6.8", "--platform", "openbsd"])
    assert r.exit_code == 0 and "setup: stdio" in r.stdout and "pledge enforced" in r.stdout


def test_cli_fds_trust_and_topology_json() -> None:
    r = runner.invoke(app, ["privsep", "pony-6.8", "--fds", "--trust", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["fds"] and d["trust"]["control"]["socket_mode"] == "0666"
    r = runner.invoke(app, ["topology", "pony-6.8", "--json"])
    assert any(x["imsg"] == "IMSG_SETUP_PEER" for x in json.loads(r.stdout)["fds"])
    r = runner.invoke(app, ["topology", "with-mfa"])
    assert "IMSG_PARENT_FORK_MDA" in r.stdout


@pytest.mark.parametrize("args", [["--platform", "solaris"], ["--platform", "openbsd", "--stage", "later"],
                                  ["--fds", "--merge", "smtp,mta"], ["--stage", "setup"], ["--compromise", "nobody", "--platform", "openbsd"]])
def test_cli_bad_input_one_line_exit_2(args: list[str]) -> None:
    r = runner.invoke(app, ["privsep", "pony-6.8", *args])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1


def test_all_eras_answer() -> None:
    for era in (*ERAS, "pony-6.8-filters"):
        topo = load_topology(era)
        assert pp.pledge_table(topo, "openbsd")["processes"]
        assert pp.trust_model(topo)["processes"]


def test_filter_processor_compromise() -> None:
    topo = load_topology("pony-6.8-filters")
    r = pp.filter_blast(topo, "filter:example", "openbsd")
    assert r["promises"] is None and not r["enforced"] and r["actions_removed"] == []
    assert r["user"] == "_smtpd" and "ca" in r["same_user_as"] and r["chroot"] is None
    assert any(i["kind"] == "availability" for i in r["reach"])
    assert "connect, mail, rcpt, commit" in next(i["item"] for i in r["reach"] if i["kind"] == "exfiltrate")
    out = runner.invoke(app, ["privsep", "pony-6.8-filters", "--compromise", "filter:example", "--platform",
                              "openbsd", "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["platform_blast"]["compromised"] == "filter:example"
    bad = runner.invoke(app, ["privsep", "pony-6.8", "--compromise", "filter:example", "--platform", "openbsd"])
    assert bad.exit_code == 2 and "no filter processor" in bad.stderr
