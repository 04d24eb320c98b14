"""Platform data (scenarios/platform/*.toml): pledge per era and process, fds, trust model.

The expected facts are those read from the C (tags opensmtpd-5.4.2, opensmtpd-5.7.3,
v6.8.0p2); each assertion fails if the data file says otherwise.
"""

from __future__ import annotations

import pytest

from smtpd_sim.imsg import VOCABULARIES
from smtpd_sim.spec.files import validate
from smtpd_sim.spec.platform import (
    FdFile,
    PlatformError,
    PledgeFile,
    load_fds,
    load_pledge,
    load_trust,
)
from smtpd_sim.spec.topology import load_topology


def test_files_load_and_cover_every_era() -> None:
    p, f, t = load_pledge(), load_fds(), load_trust()
    assert {e.vocabulary for e in p.era} == set(VOCABULARIES)
    assert {x.vocabulary for x in t.payload} == set(VOCABULARIES)
    assert {x.vocabulary for x in t.commands} == set(VOCABULARIES)
    assert f.fd and all(x.source for x in f.fd)


def test_no_pledge_before_openbsd_5_9() -> None:
    # git grep -i pledge finds nothing at opensmtpd-5.4.2 nor opensmtpd-5.7.3
    p = load_pledge()
    assert not p.era_of("5.4.2").pledge_in_tree and not p.era_of("5.7.3").pledge_in_tree
    assert not [s for s in p.stage if s.vocabulary != "6.8"]


def test_every_6_8_process_pledges_and_lka_drops_proc_exec_at_conf_end() -> None:
    p = load_pledge()
    six = [s for s in p.stage if s.vocabulary == "6.8"]
    procs = {pr.name for pr in load_topology("pony-6.8").spec.process}
    assert {s.process for s in six} == procs
    lka = {s.stage: set(s.promises) for s in six if s.process == "lka"}
    assert lka["setup"] - lka["serving"] == {"proc", "exec"} and lka["serving"] < lka["setup"]
    assert "lka_imsg() case IMSG_CONF_END" in next(s.source for s in six if s.process == "lka"
                                                  and s.stage == "serving")
    pony = next(s for s in six if s.process == "pony")
    assert pony.promises == ["stdio", "inet", "unix", "recvfd", "sendfd"]
    assert {s.process for s in six if s.promises == ["stdio"]} == {"scheduler", "ca"}
    assert all("HAVE_PLEDGE" in s.source for s in six)


def test_platforms() -> None:
    p = load_pledge()
    assert p.platform_named("linux").name == "linux-portable"
    assert p.platform_named("openbsd").enforces_pledge
    assert not p.platform_named("linux-portable").enforces_pledge
    with pytest.raises(PlatformError, match="unknown platform 'solaris'"):
        p.platform_named("solaris")


def test_bad_promise_and_stage_in_era_without_pledge_are_one_line_errors() -> None:
    data = load_pledge().model_dump()
    data["stage"][0]["promises"] = ["stdio", "teleport"]
    with pytest.raises(PlatformError, match=r"pledge\.toml: stage\[0\]: .*unknown pledge promise 'teleport'"):
        validate(PledgeFile, data, "pledge.toml", PlatformError)
    data = load_pledge().model_dump()
    data["stage"][0]["vocabulary"] = "5.7.3"
    with pytest.raises(PlatformError, match="an era whose tree has no pledge"):
        validate(PledgeFile, data, "pledge.toml", PlatformError)


def test_fd_data() -> None:
    f = load_fds()
    per_channel = [x for x in f.fd if x.per_channel]
    assert [x.imsg for x in per_channel] == ["IMSG_SETUP_PEER"] and per_channel[0].vocabularies == ["6.8"]
    forward = {x.imsg for x in f.fd if x.kind == "LKA_OPEN_FORWARD"}
    assert forward == {"IMSG_PARENT_FORWARD_OPEN", "IMSG_LKA_OPEN_FORWARD"}
    data = f.model_dump()
    data["fd"][0]["kind"] = "NOT_A_KIND"
    with pytest.raises(PlatformError, match="unknown imsg kind 'NOT_A_KIND'"):
        validate(FdFile, data, "fds.toml", PlatformError)


def test_control_commands_extracted_from_the_c() -> None:
    t = load_trust()
    rows = {c.vocabulary: c.rows for c in t.commands}
    # only the enqueue session is open to every local user; everything else tests euid 0
    assert [n for n, root, _ in rows["5.4.2"] if not root] == ["IMSG_SMTP_ENQUEUE_FD"]
    assert [n for n, root, _ in rows["6.8"] if not root] == ["IMSG_CTL_SMTP_SESSION"]
    assert len(rows["6.8"]) == 32 and len(rows["5.7.3"]) == 34
    assert all(c.socket_mode == "0666" for c in t.control)
