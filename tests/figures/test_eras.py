"""Notebook figures: each returns a Figure whose artists carry the numbers it was given."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Annotation

from smtpd_sim.figures.eras import (
    MFA_COLOR,
    MFA_HATCH,
    draw_sequence,
    draw_topology,
    era_color,
    headline_figure,
    hops_figure,
    idle_figure,
    latency_figure,
    resources_figure,
    save_figure,
    sequence_figure,
    sweep_figure,
    topology_figure,
)
from smtpd_sim.spec.topology import load_topology
from smtpd_sim.studies.experiments import (
    Difference,
    Interval,
    era_resources,
    hop_summary,
    hop_table,
    probe_trace,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


def _bars(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_draw_topology_one_box_per_process_and_mfa_marked() -> None:
    fig = draw_topology("with-mfa")
    ax = fig.axes[0]
    topo = load_topology("with-mfa")
    labels = [t.get_text() for t in ax.texts]
    assert len(labels) == len(topo.spec.process)
    assert any(lab.startswith("mfa\n[mfa]") for lab in labels)
    mfa_box = next(t for t in ax.texts if t.get_text().startswith("mfa"))
    assert mfa_box.get_bbox_patch().get_hatch() == MFA_HATCH
    assert "9 processes, 23 channels" in ax.get_title()  # era-5.4.2-mfa.md §1.1, §1.2


def test_topology_figure_has_a_panel_per_era() -> None:
    eras = ["with-mfa", "without-mfa", "pony", "pony-6.8"]
    fig = topology_figure(eras)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [t.split(" ")[0] for t in titled] == eras
    assert fig.legends


def test_sequence_diagram_draws_every_imsg_and_reply() -> None:
    tr = probe_trace("with-mfa")
    fig = draw_sequence(tr)
    ax = fig.axes[0]
    arrows = [c for c in ax.get_children() if isinstance(c, Annotation)]
    non_stat = tr.hops[~tr.hops["stat"].astype(bool)]
    assert len(arrows) == len(non_stat) + len(tr.replies)
    red = [a for a in arrows if a.arrow_patch.get_edgecolor()[:3] == pytest.approx(
        tuple(int(MFA_COLOR[i:i + 2], 16) / 255 for i in (1, 3, 5)))]
    n_mfa = int(((non_stat["from_proc"] == "mfa") | (non_stat["to_proc"] == "mfa")).sum())
    assert len(red) == n_mfa > 0
    assert f"{n_mfa} of them smtp<->mfa" in ax.get_title()
    lanes = [t.get_text() for t in ax.get_xticklabels()]
    assert lanes[:3] == ["client", "smtp", "mfa"] and "control" not in lanes
    assert "control" in [t.get_text() for t in draw_sequence(tr, show_stat=True).axes[0].get_xticklabels()]


def test_sequence_figure_shares_the_time_axis() -> None:
    fig = sequence_figure([probe_trace("with-mfa"), probe_trace("pony")])
    a, b = fig.axes
    assert a.get_ylim() == b.get_ylim()
    assert a.get_ylim()[0] > a.get_ylim()[1]  # time goes down
    assert "pony" in b.get_title() and "mfa" not in b.get_title()
    assert [t.get_text() for t in b.get_xticklabels()][:2] == ["client", "pony"]


def test_hops_figure_stacks_to_the_totals_with_mfa_hatched() -> None:
    t = pd.concat([hop_table(["with-mfa", "pony"]), hop_table(["with-mfa"], messages=2)])
    fig = hops_figure(t)
    ax1, ax2 = fig.axes[:2]
    for ax, msgs in ((ax1, 1), (ax2, 2)):
        g = t[t["messages"] == msgs]
        heights = {}
        for bar in _bars(ax):
            x = round(bar.get_x() + bar.get_width() / 2)
            heights[x] = heights.get(x, 0.0) + bar.get_height()
        eras = list(dict.fromkeys(g["era"]))
        for i, era in enumerate(eras):
            assert heights[i] == pytest.approx(g[g["era"] == era]["hops"].sum() / msgs)
    hatched = [b for b in _bars(ax1) if b.get_hatch() == MFA_HATCH]
    assert len(hatched) == 1  # only with-mfa has an MFA channel
    assert hatched[0].get_height() == t[(t["messages"] == 1) & t["mfa"]]["hops"].sum()
    assert any("MFA" in s for s in _texts(fig))


def test_idle_figure_marks_mfa_and_writes_idle_fractions() -> None:
    idle = pd.DataFrame({"era": ["with-mfa"] * 3 + ["pony"] * 2,
                         "process": ["queue", "mfa", "smtp", "queue", "pony"],
                         "idle": [0.8, 0.99, 0.9, 0.8, 0.88]})
    idle["busy"] = 1 - idle["idle"]
    fig = idle_figure(idle)
    assert len(fig.axes) == 2
    bars = _bars(fig.axes[0])
    assert len(bars) == 3
    assert [b.get_hatch() for b in bars].count(MFA_HATCH) == 1
    assert " idle 99.00%" in _texts(fig)
    assert max(b.get_width() for b in bars) == pytest.approx(20.0)


def _ci(values: dict[str, float], n: int = 5) -> pd.DataFrame:
    return pd.DataFrame([{"era": e, "mean": v, "low": v * 0.9, "high": v * 1.1, "n": n}
                         for e, v in values.items()])


def test_latency_figure_bars_error_bars_and_differences() -> None:
    lat = _ci({"with-mfa": 0.4e-3, "without-mfa": 0.3e-3})
    ses = _ci({"with-mfa": 2.2e-3, "without-mfa": 1.8e-3})
    d = Difference("latency_mean_s", "with-mfa", "without-mfa",
                   Interval(1e-4, 0.9e-4, 1.1e-4, 5), Interval(1e-4, 0.5e-4, 1.5e-4, 5), 1 / 3)
    fig = latency_figure(lat, ses, [d])
    assert len(fig.axes) == 3
    heights = [b.get_height() for b in _bars(fig.axes[0])]
    assert heights == pytest.approx([0.4, 0.3])
    assert "5 replications" in fig.axes[0].get_title()
    widths = sorted(b.get_width() for b in _bars(fig.axes[2]))
    assert widths == pytest.approx([10.0, 50.0])  # half-widths as % of the difference
    assert any("+33%" in t.get_text() for t in fig.axes[2].get_yticklabels())
    assert len(latency_figure(lat, ses).axes) == 2


def test_sweep_figure_one_line_per_era_with_bands() -> None:
    ci = pd.DataFrame({"era": ["a", "a", "b", "b"], "x": [1e-6, 1e-3, 1e-6, 1e-3],
                       "mean": [1e-3, 2e-3, 1e-3, 3e-3], "low": [0.9e-3] * 4, "high": [3.1e-3] * 4})
    fig = sweep_figure(ci, "x", logx=True, title="t")
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    assert list(ax.lines[1].get_ydata()) == pytest.approx([1.0, 3.0])
    assert len(ax.collections) == 2
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_resources_figure_from_topologies() -> None:
    res = era_resources(["with-mfa", "pony"])
    fig = resources_figure(res)
    texts = _texts(fig)
    assert "72 MB" in texts and "56 MB" in texts  # 9 and 7 processes x 8 MB (real-daemon.md §3)
    assert "9" in texts and "7" in texts
    load = pd.DataFrame({"era": ["with-mfa", "pony"], "peak_children": [3, 2]})
    texts = _texts(resources_figure(res, load))
    assert "9+3" in texts and "7+2" in texts
    hatched = [b for b in _bars(resources_figure(res, load).axes[0]) if b.get_hatch() == "xx"]
    assert [b.get_height() for b in hatched] == [3, 2]


def test_headline_title_is_computed_from_the_values() -> None:
    summary = hop_summary(["with-mfa", "without-mfa"])
    lat = _ci({"with-mfa": 0.375e-3, "without-mfa": 0.3e-3})
    fig = headline_figure(summary, lat)
    title = fig.texts[0].get_text()
    share = summary.set_index("era").loc["with-mfa", "mfa_share"]
    assert f"{share:.0%} of the hops" in title
    assert "+25% vs without-mfa" in title
    hatched = [b for b in _bars(fig.axes[0]) if b.get_hatch() == MFA_HATCH]
    assert len(hatched) == 1
    assert hatched[0].get_height() == summary.set_index("era").loc["with-mfa", "mfa_hops_per_session"]


def test_era_colors_and_save(tmp_path) -> None:
    assert era_color("with-mfa") != era_color("pony")
    assert era_color("unknown-era") == "#777777"
    p = save_figure(draw_topology("pony"), tmp_path / "sub" / "x.png")
    assert p.exists() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sequence_labels_never_overprint() -> None:
    # issue 22: the MFA's request and answer labels overprinted each other in mfa-sequence.png
    fig = sequence_figure([probe_trace("with-mfa"), probe_trace("pony")])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.texts if not isinstance(t, Annotation)]
        assert len(boxes) > 20
        overlaps = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]
                    if a.overlaps(b) and a.intersection(a, b).width > 1 and a.intersection(a, b).height > 1]
        assert overlaps == []


def test_sweep_figure_log_ticks_are_plain_numbers() -> None:
    ci = pd.DataFrame({"era": ["a", "a"], "x": [1e-6, 1e-3], "mean": [20e-3, 40e-3],
                       "low": [19e-3, 39e-3], "high": [21e-3, 41e-3]})
    fig = sweep_figure(ci, "x", logx=True, logy=True)
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
    assert labels and not any("times" in t or "^" in t or "$" in t for t in labels)
    assert "0.001" in labels
