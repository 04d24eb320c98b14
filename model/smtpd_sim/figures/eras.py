"""Figures of the eras side by side (the notebooks): process graphs, sequence diagrams,
hops by channel, idle time, latency with confidence intervals, sweeps, processes and memory.

Each function takes what ``smtpd_sim.studies.experiments`` (or ``smtpd_sim.spec.topology``) returns and gives
back a matplotlib ``Figure``; nothing here runs the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator

from smtpd_sim.figures.style import (
    MFA_COLOR,
    MFA_HATCH,
    USER_COLORS,
    USER_DEFAULT,
    era_color,
    plt,
    save,
)
from smtpd_sim.figures.style import new_axes as _new_axes
from smtpd_sim.spec.topology import Topology, load_topology
from smtpd_sim.studies.experiments import Difference
from smtpd_sim.studies.probe import ProbeTrace

save_figure = save  # the notebooks' name for it

__all__ = ["MFA_COLOR", "MFA_HATCH", "USER_COLORS", "USER_DEFAULT", "era_color", "plt", "save_figure"]


# ---- 1. process graphs ----------------------------------------------------------------------


def draw_topology(topo: Topology | str, ax: Axes | None = None) -> Figure:
    """One era's processes (roles, user, chroot) and live channels. Fill colour is the
    user (root red), a thick border marks network-facing processes, the MFA is hatched."""
    topo = load_topology(topo) if isinstance(topo, str) else topo
    fig, ax = _new_axes(ax, (6, 6))
    g = topo.graph
    pos = nx.circular_layout(g)
    mfa = topo.host.get("mfa")
    nx.draw_networkx_edges(g, pos, ax=ax, edge_color="#999999", width=1.0)
    if mfa is not None:
        mfa_edges = [e for e in g.edges if mfa in e]
        nx.draw_networkx_edges(g, pos, edgelist=mfa_edges, ax=ax, edge_color=MFA_COLOR, width=2.0)
    for p in topo.spec.process:
        x, y = pos[p.name]
        label = f"{p.name}\n[{', '.join(p.roles)}]\n{p.user}" + (f"\n{p.chroot}" if p.chroot else "")
        ax.text(x, y, label, ha="center", va="center", fontsize=7,
                bbox={"boxstyle": "round,pad=0.3",
                      "facecolor": USER_COLORS.get(p.user, USER_DEFAULT),
                      "edgecolor": MFA_COLOR if p.name == mfa else "black",
                      "linewidth": 2.5 if p.network_facing else 0.8,
                      "hatch": MFA_HATCH if p.name == mfa else None})
    ax.set_title(f"{topo.name} ({topo.spec.version}): {topo.n_processes} processes, "
                 f"{topo.n_channels} channels", fontsize=10)
    ax.set_xlim(-1.45, 1.45)
    ax.set_ylim(-1.35, 1.35)
    ax.set_axis_off()
    return fig


def topology_figure(eras: Sequence[str]) -> Figure:
    """The eras' process graphs side by side (two per row), with a legend."""
    n = len(eras)
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 6.5 * rows), squeeze=False)
    for i, era in enumerate(eras):
        draw_topology(era, axes[i // cols][i % cols])
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].set_axis_off()
    handles = [Patch(facecolor=USER_COLORS["root"], edgecolor="black", label="runs as root"),
               Patch(facecolor=USER_DEFAULT, edgecolor="black", label="_smtpd"),
               Patch(facecolor=USER_COLORS["_smtpq"], edgecolor="black", label="_smtpq (queue)"),
               Patch(facecolor="white", edgecolor="black", linewidth=2.5, label="network-facing"),
               Patch(facecolor="white", edgecolor=MFA_COLOR, hatch=MFA_HATCH, label="MFA and its channels")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9)
    fig.suptitle("Process graphs: boxes are processes [roles] user chroot, lines are live socketpairs")
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    return fig


# ---- 2. sequence diagrams -------------------------------------------------------------------


def _lanes(trace: ProbeTrace, show_stat: bool) -> list[str]:
    """Client, the process it talks to, then the other processes the session touched in
    topology order (the MFA right after smtp when there is one)."""
    hops = trace.hops if show_stat else trace.hops[~trace.hops["stat"].astype(bool)]
    used = set(hops["from_proc"]) | set(hops["to_proc"])
    first = [trace.smtp] + ([trace.mfa] if trace.mfa in used else [])
    rest = [p for p in trace.processes if p in used and p not in first]
    return ["client"] + first + rest + sorted(used - set(trace.processes) - set(first))


def _trace_end(trace: ProbeTrace, show_stat: bool) -> float:
    hops = trace.hops if show_stat else trace.hops[~trace.hops["stat"].astype(bool)]
    return max(hops["time"].max() if len(hops) else 0.0,
               trace.replies["time"].max() if len(trace.replies) else 0.0)


def draw_sequence(trace: ProbeTrace, ax: Axes | None = None, *, show_stat: bool = False) -> Figure:
    """A sequence diagram of one probe session: one lane per process, time going down,
    one arrow per imsg (send → receive), smtp<->mfa imsgs in red, SMTP replies dashed
    to the client lane. Stat imsgs to control are drawn faint only with ``show_stat``."""
    lanes = _lanes(trace, show_stat)
    x = {p: i for i, p in enumerate(lanes)}
    fig, ax = _new_axes(ax, (7, 10))
    hops = trace.hops
    if not show_stat:
        hops = hops[~hops["stat"].astype(bool)]
    t_end = _trace_end(trace, show_stat) * 1e3
    for p in lanes:
        ax.axvline(x[p], color="#bbbbbb", lw=0.8, zorder=0)
    mfa_n = 0
    labels = _Labels(ax, len(lanes), t_end)
    for h in hops.itertuples(index=False):
        is_mfa = trace.mfa is not None and trace.mfa in (h.from_proc, h.to_proc)
        mfa_n += int(is_mfa and not h.stat)
        color = MFA_COLOR if is_mfa else ("#cccccc" if h.stat else "#333333")
        ax.annotate("", xy=(x[h.to_proc], h.time * 1e3), xytext=(x[h.from_proc], h.sent_time * 1e3),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 1.6 if is_mfa else 0.8,
                                "shrinkA": 0, "shrinkB": 0})
        if not h.stat:
            name = str(h.imsg_name).removeprefix("IMSG_")
            mid = (x[h.from_proc] + x[h.to_proc]) / 2
            y = labels.place(mid, (h.sent_time + h.time) / 2 * 1e3, len(name))
            if y is not None:
                ax.text(mid, y, name, fontsize=5.5, ha="center", va="bottom", color=color)
    for r in trace.replies.itertuples(index=False):
        ax.annotate("", xy=(x["client"], r.time * 1e3), xytext=(x[trace.smtp], r.time * 1e3),
                    arrowprops={"arrowstyle": "->", "color": "#2c7bb6", "ls": "--", "lw": 1.0})
        text = f"{r.code} ({r.step})"
        y = labels.place(x["client"] + 0.05 + len(text) * labels.char / 2, r.time * 1e3, len(text))
        if y is not None:
            ax.text(x["client"] + 0.05, y, text, fontsize=5.5, va="bottom", color="#2c7bb6")
    ax.set_xticks(range(len(lanes)), lanes, rotation=30, ha="right")
    ax.set_xlim(-0.5, len(lanes) - 0.5)
    ax.set_ylim(t_end * 1.02 + 0.01, -0.02 * t_end - 0.01)
    ax.set_ylabel("ms since the daemon's first action for the session")
    title = f"{trace.era}: {len(trace.hops[~trace.hops['stat'].astype(bool)])} imsgs"
    if trace.mfa is not None:
        title += f", {mfa_n} of them smtp<->mfa (red)"
    if labels.omitted:
        title += f"\n({labels.omitted} labels of arrows drawn too close together left out)"
    ax.set_title(title, fontsize=10)
    return fig


class _Labels:
    """Where imsg names go on a sequence diagram so that none overprints another: a label
    that would overlap one already placed moves down a line or two, else is left out."""

    def __init__(self, ax: Axes, n_lanes: int, t_end_ms: float) -> None:
        fig = ax.get_figure()
        assert isinstance(fig, Figure)
        w_in, h_in = fig.get_size_inches()
        box = ax.get_position()
        lane_in = max(box.width * w_in / max(n_lanes, 1), 1e-3)
        self.char = 5.5 * 0.62 / 72 / lane_in  # one character at 5.5 pt, in lanes
        self.line = (t_end_ms * 1.04 + 0.02) * (5.5 * 1.3 / 72) / max(box.height * h_in, 1e-3)
        self.placed: list[tuple[float, float, float]] = []  # (left, right, y)
        self.omitted = 0

    def place(self, mid: float, y: float, chars: int) -> float | None:
        half = chars * self.char / 2
        for k in range(3):
            yy = y + k * self.line
            if all(right <= mid - half or left >= mid + half or abs(py - yy) >= self.line
                   for left, right, py in self.placed):
                self.placed.append((mid - half, mid + half, yy))
                return yy
        self.omitted += 1
        return None


def sequence_figure(traces: Sequence[ProbeTrace], *, show_stat: bool = False) -> Figure:
    """Sequence diagrams of several eras side by side, on the same time scale."""
    fig, axes = plt.subplots(1, len(traces), figsize=(7.5 * len(traces), 11), squeeze=False,
                             sharey=True)
    for ax, tr in zip(axes[0], traces, strict=True):
        draw_sequence(tr, ax, show_stat=show_stat)
    t_end = max(_trace_end(tr, show_stat) for tr in traces) * 1e3
    axes[0][0].set_ylim(t_end * 1.02 + 0.01, -0.02 * t_end - 0.01)
    fig.suptitle("One local message, one recipient: every imsg (arrows) and SMTP reply (dashed)")
    fig.tight_layout()
    return fig


# ---- 3. hops --------------------------------------------------------------------------------


def hops_figure(table: pd.DataFrame, summary: pd.DataFrame | None = None) -> Figure:
    """Stacked bars of non-stat hops by channel per era (``experiments.hop_table``), one
    panel per (kind, messages) in the table; MFA channels hatched red, the MFA share of
    each bar written above it. ``messages > 1`` panels show hops per message (the session
    divided by its messages)."""
    groups = list(table.groupby(["kind", "recipients", "messages"], sort=False))
    fig, axes = plt.subplots(1, len(groups), figsize=(7 * len(groups), 6), squeeze=False)
    channels = sorted({c for c in table["channel"] if not table[table["channel"] == c]["mfa"].any()})
    cmap = plt.get_cmap("tab20")
    palette = [cmap(i) for i in range(20) if i not in (6, 7)]  # tab20's reds: kept for the MFA
    colors = {c: palette[i % len(palette)] for i, c in enumerate(channels)}
    for ax, ((kind, rcpts, msgs), g) in zip(axes[0], groups, strict=True):
        eras = list(dict.fromkeys(g["era"]))
        for i, era in enumerate(eras):
            rows = g[g["era"] == era].sort_values(["mfa", "channel"], ascending=[False, True])
            bottom = 0.0
            for r in rows.itertuples(index=False):
                v = r.hops / msgs
                ax.bar(i, v, 0.6, bottom=bottom,
                       color=MFA_COLOR if r.mfa else colors[r.channel],
                       hatch=MFA_HATCH if r.mfa else None, edgecolor="white" if not r.mfa else "black",
                       label=f"{r.channel} (MFA)" if r.mfa else r.channel)
                bottom += v
            mfa = rows[rows["mfa"]]["hops"].sum() / msgs
            text = f"{bottom:g}" + (f"\nMFA {mfa:g} = {mfa / bottom:.0%}" if mfa else "")
            ax.text(i, bottom + 0.5, text, ha="center", va="bottom", fontsize=9)
        ax.set_xticks(range(len(eras)), eras, rotation=15)
        ax.set_ylabel("imsgs crossing a process boundary (non-stat)")
        per = "message" if msgs == 1 else f"message (session of {msgs}, divided)"
        ax.set_title(f"Hops per {per}, {kind}, {rcpts} recipient(s)", fontsize=10)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.15)
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="center right", fontsize=7, title="channel")
    fig.tight_layout(rect=(0, 0, 0.83, 1))
    return fig


# ---- 4. idle time ---------------------------------------------------------------------------


def idle_figure(idle: pd.DataFrame) -> Figure:
    """Busy fraction (1 - idle) of each process under load, one panel per era
    (``experiments.idle_table``), busiest first; the MFA in red."""
    eras = list(dict.fromkeys(idle["era"]))
    fig, axes = plt.subplots(1, len(eras), figsize=(4.2 * len(eras), 4.5), squeeze=False, sharex=True)
    for ax, era in zip(axes[0], eras, strict=True):
        g = idle[idle["era"] == era].sort_values("busy")
        bars = ax.barh(list(g["process"]), list(g["busy"] * 100), color=era_color(era))
        for bar, p in zip(bars, g["process"], strict=True):
            if p == "mfa":
                bar.set_facecolor(MFA_COLOR)
                bar.set_hatch(MFA_HATCH)
                bar.set_edgecolor("black")
        for i, r in enumerate(g.itertuples(index=False)):
            ax.text(r.busy * 100, i, f" idle {r.idle:.2%}", va="center", fontsize=7)
        ax.set_title(era, fontsize=10)
        ax.set_xlabel("busy % of the run (1 - idle fraction)")
    xmax = float(idle["busy"].max()) * 100
    axes[0][0].set_xlim(0, xmax * 1.6 if xmax > 0 else 1)
    fig.suptitle("How busy each process is under load (same clients in every era)")
    fig.tight_layout()
    return fig


# ---- 5. latency -----------------------------------------------------------------------------


def interval_bars(ax: Axes, ci: pd.DataFrame, label: str = "era", *, scale: float = 1e3,
                  fmt: str = "{:.3f}") -> None:
    """Bars of ``mean`` with error bars ``low``..``high`` (an ``experiments.intervals``
    frame), one per ``label`` value, values multiplied by ``scale``."""
    names = list(ci[label])
    means = ci["mean"] * scale
    err = [(ci["mean"] - ci["low"]) * scale, (ci["high"] - ci["mean"]) * scale]
    ax.bar(range(len(names)), means, 0.6, yerr=err, capsize=5,
           color=[era_color(str(n)) for n in names])
    for i, m in enumerate(means):
        ax.text(i, m, fmt.format(m) + "\n", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=15)
    ax.set_ylim(0, float(((ci["high"]) * scale).max()) * 1.2)


def latency_figure(latency_ci: pd.DataFrame, session_ci: pd.DataFrame,
                   differences: Sequence[Difference] = ()) -> Figure:
    """DATA-end→250 and session latency per era with their intervals; and for each
    ``Difference`` the paired (common random numbers) interval next to the interval the
    same runs would give if the eras had not shared seeds."""
    n = 3 if differences else 2
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4.8))
    n_reps = int(latency_ci["n"].max())
    interval_bars(axes[0], latency_ci)
    axes[0].set_ylabel("ms")
    axes[0].set_title(f"DATA-end → 250, mean of {n_reps} replications ± 95% CI", fontsize=10)
    interval_bars(axes[1], session_ci)
    axes[1].set_ylabel("ms")
    axes[1].set_title("Session (connect → close), mean ± 95% CI", fontsize=10)
    if differences:
        ax = axes[2]
        for i, d in enumerate(differences):
            for k, (iv, lab, col) in enumerate(((d.paired, "paired seeds (CRN)", "#2c7bb6"),
                                                (d.independent, "as if independent seeds", "#999999"))):
                rel = 100 * iv.half_width / abs(iv.mean) if iv.mean else float("nan")
                y = i + (0.2 if k == 0 else -0.2)
                ax.barh(y, rel, 0.38, color=col, label=lab if i == 0 else None)
                ax.text(rel, y, f" ±{iv.half_width * 1e3:.4f} ms ({rel:.1f}%)", va="center", fontsize=7)
        ax.set_yticks(range(len(differences)),
                      [f"{d.metric.removesuffix('_s')}: {d.era} − {d.baseline}\n"
                       f"= {d.paired.mean * 1e3:+.3f} ms ({d.relative:+.0%})" for d in differences],
                      fontsize=8)
        ax.set_xlabel("95% CI half-width, % of the difference")
        ax.set_xlim(0, ax.get_xlim()[1] * 1.6)
        ax.set_title("The MFA's cost, and how precisely CRN measures it", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def sweep_figure(ci: pd.DataFrame, x: str, *, ax: Axes | None = None, title: str = "",
                 xlabel: str = "", ylabel: str = "ms", scale: float = 1e3, logx: bool = False,
                 logy: bool = False) -> Figure:
    """One line per era with its confidence band over a swept parameter ``x`` (an
    ``experiments.intervals(df, ["era", x], metric)`` frame)."""
    fig, ax = _new_axes(ax, (6, 4.5))
    for era, g in ci.groupby("era", sort=False):
        g = g.sort_values(x)
        ax.plot(g[x], g["mean"] * scale, "o-", color=era_color(str(era)), label=str(era), ms=4)
        if g["low"].notna().any():
            ax.fill_between(g[x], g["low"] * scale, g["high"] * scale, color=era_color(str(era)),
                            alpha=0.2)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    for axis, on in ((ax.xaxis, logx), (ax.yaxis, logy)):
        if on:  # plain numbers at 1, 2, 5 × 10ⁿ (0.001, 20), not 10⁻³ or 3×10¹
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
            axis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# ---- 6. processes and memory ----------------------------------------------------------------


def resources_figure(res: pd.DataFrame, load: pd.DataFrame | None = None) -> Figure:
    """Long-lived processes (daemon + filter processors) and channels, and memory as
    processes × RSS, per era (``experiments.era_resources``); with ``load`` (the second
    table of ``experiments.load_tables``) the peak number of delivery agents the parent
    had forked at once is stacked on the processes."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    eras = list(res["era"])
    xs = range(len(eras))
    colors = [era_color(e) for e in eras]
    ax = axes[0]
    ax.bar([i - 0.2 for i in xs], res["daemon_processes"], 0.4, color=colors, label="daemon processes")
    ax.bar([i - 0.2 for i in xs], res["filter_processes"], 0.4, bottom=res["daemon_processes"],
           color=colors, alpha=0.4, hatch="..", label="filter processor processes")
    tops = list(res["processes"])
    if load is not None:
        peak = load.set_index("era")["peak_children"]
        kids = [float(peak.get(e, 0)) for e in eras]
        ax.bar([i - 0.2 for i in xs], kids, 0.4, bottom=tops, color="white", edgecolor="black",
               hatch="xx", label="delivery agents at once (peak under load)")
        tops = [t + k for t, k in zip(tops, kids, strict=True)]
    ax.bar([i + 0.2 for i in xs], res["channels"], 0.4, color="#cccccc", edgecolor="black",
           label="live socketpairs")
    for i, r in enumerate(res.itertuples(index=False)):
        text = f"{r.processes}" + (f"+{tops[i] - r.processes:g}" if tops[i] != r.processes else "")
        ax.text(i - 0.2, tops[i], text, ha="center", va="bottom", fontsize=9)
        ax.text(i + 0.2, r.channels, f"{r.channels}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(list(xs), eras, rotation=15)
    ax.set_title("Long-lived processes and channels", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[1]
    mb = res["memory_bytes"] / 1e6
    ax.bar(list(xs), mb, 0.6, color=colors)
    for i, m in enumerate(mb):
        ax.text(i, m, f"{m:.0f} MB", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(list(xs), eras, rotation=15)
    ax.set_ylabel("MB")
    ax.set_title("Resident memory of the daemon's processes (Σ RSS)", fontsize=10)
    fig.tight_layout()
    return fig


# ---- headline -------------------------------------------------------------------------------


def headline_figure(summary: pd.DataFrame, latency_ci: pd.DataFrame,
                    baseline: str = "without-mfa") -> Figure:
    """The README figure: hops per message by era with the smtp<->mfa part hatched and
    its share (``experiments.hop_summary``), and DATA-end→250 latency with 95% intervals;
    the title states the MFA era's share and its latency relative to ``baseline``, from
    the values drawn."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    ax = axes[0]
    eras = list(summary["era"])
    for i, r in enumerate(summary.itertuples(index=False)):
        other = r.hops_per_message - r.mfa_hops_per_session / r.messages
        mfa = r.mfa_hops_per_session / r.messages
        ax.bar(i, other, 0.6, color=era_color(r.era))
        if mfa:
            ax.bar(i, mfa, 0.6, bottom=other, color=MFA_COLOR, hatch=MFA_HATCH, edgecolor="black",
                   label="smtp<->mfa" if i == 0 or "smtp<->mfa" not in
                   ax.get_legend_handles_labels()[1] else None)
        label = f"{r.hops_per_message:g}" + (f"\n(MFA {r.mfa_share:.0%})" if mfa else "")
        ax.text(i, r.hops_per_message, label, ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(eras)), eras, rotation=15)
    ax.set_ylabel("non-stat imsgs per message")
    first = summary.iloc[0]
    ax.set_title(f"Hops per {first['kind']} message ({first['recipients']} recipient(s))", fontsize=10)
    ax.set_ylim(0, float(summary["hops_per_message"].max()) * 1.25)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper right")
    interval_bars(axes[1], latency_ci)
    axes[1].set_ylabel("ms")
    axes[1].set_title(f"DATA-end → 250 under load, mean ± 95% CI ({int(latency_ci['n'].max())} seeds)",
                      fontsize=10)
    fig.suptitle(_headline_title(summary, latency_ci, baseline))
    fig.tight_layout()
    return fig


def _headline_title(summary: pd.DataFrame, latency_ci: pd.DataFrame, baseline: str) -> str:
    with_mfa = summary[summary["mfa_hops_per_session"] > 0]
    if with_mfa.empty:
        return "Hops per message and DATA-end → 250 latency by era"
    r = with_mfa.iloc[0]
    text = f"Why we killed the MFA process: in {r['era']} it takes {r['mfa_share']:.0%} of the hops"
    lat = latency_ci.set_index("era")["mean"]
    if r["era"] in lat.index and baseline in lat.index and lat[baseline] > 0:
        text += f" and DATA-end → 250 is {lat[r['era']] / lat[baseline] - 1:+.0%} vs {baseline}"
    return text
