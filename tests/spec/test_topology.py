"""Topologies as data: the four eras' processes and channels, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtpd_sim.spec.topology import ERAS, TopologyError, load_topology

# research/era-5.4.2-mfa.md §1.2 (23 channels), era-pony.md §4.2 (20), §1.1 / §1.2 (15)
EXPECTED = {
    "with-mfa": (9, 23),
    "without-mfa": (8, 20),
    "pony": (7, 15),
    "pony-6.8": (7, 15),
}


@pytest.mark.parametrize("era", ERAS)
def test_process_and_channel_counts(era: str) -> None:
    t = load_topology(era)
    assert (t.n_processes, t.n_channels) == EXPECTED[era]
    assert t.graph.number_of_nodes() == EXPECTED[era][0]


def test_mfa_talks_only_to_parent_smtp_control() -> None:
    """era-5.4.2-mfa.md §1.2: no mfa-queue channel (the MFA's fd code is dead)."""
    g = load_topology("with-mfa").graph
    assert sorted(g.neighbors("mfa")) == ["control", "parent", "smtp"]


def test_pony_hosts_smtp_mta_mda_and_no_smtp_mta_mda_channels_ever() -> None:
    pony = load_topology("pony")
    assert pony.host["smtp"] == pony.host["mta"] == pony.host["mda"] == "pony"
    old = load_topology("with-mfa").graph
    for a, b in (("smtp", "mta"), ("smtp", "mda"), ("mta", "mda")):
        assert not old.has_edge(a, b)  # era-pony.md §3.6


def test_only_the_parent_is_root_and_lka_is_not_chrooted() -> None:
    for era in ERAS:
        t = load_topology(era)
        assert [p.name for p in t.spec.process if p.root] == ["parent"]
        assert t.processes["lka"].chroot == ""


def test_dot_output_lists_every_channel() -> None:
    dot = load_topology("pony-6.8").to_dot()
    assert dot.startswith('graph "pony-6.8"')
    assert dot.count(" -- ") == 15


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "broken.toml"
    p.write_text(text)
    return p


BASE = (Path(__file__).parents[2] / "scenarios" / "topologies" / "pony-6.8.toml").read_text()


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda s: s.replace('roles = ["ca"]', 'roles = ["klondike"]'), "unknown role 'klondike'"),
        (lambda s: s.replace('["pony", "ca"]', '["pony", "nowhere"]'), "goes to 'nowhere', which is not a process"),
        (lambda s: s.replace('["lka", "pony"],', ""), "role 'smtp' (pony) needs a channel to role 'lka' (lka)"),
        (lambda s: s.replace("cores", "cores") + "\nbogus = 1\n", "unknown key"),
        (lambda s: s.replace('user = "_smtpq"', ""), "missing key"),
        (lambda s: s + "\n[[[", "not valid TOML"),
    ],
)
def test_broken_files_give_one_clear_line(tmp_path: Path, mutation, message: str) -> None:
    path = _write(tmp_path, mutation(BASE))
    with pytest.raises(TopologyError) as e:
        load_topology(path)
    text = str(e.value)
    assert "\n" not in text
    assert str(path) in text
    assert message in text


def test_unknown_era_names_the_known_ones() -> None:
    with pytest.raises(TopologyError, match="unknown era.*with-mfa, without-mfa, pony, pony-6.8"):
        load_topology("sendmail")
