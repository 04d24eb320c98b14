"""The sweep figures (``smtpd-sim sweep``, the capacity notebook): throughput against
latency, the saturation knee, and which process saturates first."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

LOAD_KEYS = ("workload.arrival.rate_per_s", "workload.arrival.concurrency")
AXIS_LABELS = {"workload.arrival.rate_per_s": "offered sessions/s (workload.arrival.rate_per_s)",
               "workload.arrival.concurrency": "clients (workload.arrival.concurrency)"}


def load_axis(keys: Sequence[str], df: pd.DataFrame) -> str | None:
    """The factor plotted on the x axis: the arrival rate or concurrency if varied, else
    the first numeric factor."""
    for k in LOAD_KEYS:
        if k in keys:
            return k
    for k in keys:
        if pd.api.types.is_numeric_dtype(df[k]) and not pd.api.types.is_bool_dtype(df[k]):
            return k
    return None


def _series(summary: pd.DataFrame, keys: Sequence[str], x: str | None) -> list[tuple[str, pd.DataFrame]]:
    rest = [k for k in keys if k != x and summary[k].nunique() > 1]  # constant factors label nothing
    if not rest:
        return [("", summary)]
    out = []
    for vals, g in summary.groupby(rest, sort=False):
        vals = vals if isinstance(vals, tuple) else (vals,)
        out.append((", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(rest, vals, strict=True)), g))
    return out


def _new_figure(w: float = 7.5, h: float = 4.8) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def figure_throughput_latency(summary: pd.DataFrame, keys: Sequence[str]) -> Any:
    """Mean DATA-end -> 250 latency against accepted throughput, one line per series."""
    x = load_axis(keys, summary)
    fig = _new_figure()
    ax = fig.add_subplot()
    for label, g in _series(summary, keys, x):
        g = g.sort_values(x) if x else g
        ax.errorbar(g["accepted_msg_s_mean"], g["latency_mean_s_mean"] * 1e3,
                    xerr=g["accepted_msg_s_ci"].fillna(0), yerr=(g["latency_mean_s_ci"] * 1e3).fillna(0),
                    marker="o", capsize=3, label=label or None)
    ax.set_ylim(bottom=0)  # linear: the hockey stick of a queue approaching saturation
    ax.set_xlabel("accepted throughput (msg/s)")
    ax.set_ylabel("mean latency, end of DATA to 250 (ms)")
    ax.set_title("Throughput vs latency")
    ax.grid(alpha=0.3)
    if len(_series(summary, keys, x)) > 1:
        ax.legend(fontsize=8)
    return fig


def figure_knee(summary: pd.DataFrame, keys: Sequence[str]) -> Any:
    """Accepted throughput against the offered load (the saturation knee) with 95 % CIs;
    the identity line is what an unsaturated daemon would accept."""
    x = load_axis(keys, summary)
    fig = _new_figure()
    ax = fig.add_subplot()
    if x is None:
        ax.bar(range(len(summary)), summary["accepted_msg_s_mean"], yerr=summary["accepted_msg_s_ci"].fillna(0))
        ax.set_xticks(range(len(summary)), [str(p) for p in summary["point"]])
        ax.set_xlabel("point")
    else:
        for label, g in _series(summary, keys, x):
            g = g.sort_values(x)
            ax.errorbar(g[x], g["accepted_msg_s_mean"], yerr=g["accepted_msg_s_ci"].fillna(0),
                        marker="o", capsize=3, label=label or None)
        if x == "workload.arrival.rate_per_s":
            lim = [0, float(summary[x].max())]
            ax.plot(lim, lim, ls=":", color="grey", label="offered sessions/s")
        ax.set_xlabel(AXIS_LABELS.get(x, x))
        if len(ax.get_legend_handles_labels()[0]) > 1:
            ax.legend(fontsize=8)
    ax.set_ylabel("accepted throughput (msg/s)")
    ax.set_title("Saturation knee")
    ax.grid(alpha=0.3)
    return fig


def figure_bottleneck(summary: pd.DataFrame, keys: Sequence[str]) -> Any:
    """Utilisation (busy fraction of the window) of every process at every point; the
    busiest process at the highest load is the bottleneck."""
    x = load_axis(keys, summary)
    series = _series(summary, keys, x)
    procs = sorted(c for c in summary.columns if c.startswith("util.") and summary[c].notna().any())
    fig = _new_figure(4.2 * min(len(series), 3) + 1.5, 4.2 * math.ceil(len(series) / 3))
    axes = fig.subplots(math.ceil(len(series) / 3), min(len(series), 3), squeeze=False).ravel()
    for ax, (label, g) in zip(axes, series, strict=False):
        g = g.sort_values(x) if x else g
        xs = g[x] if x else g["point"]
        for i, c in enumerate(procs):  # one colour per process name in every panel
            if g[c].notna().any():
                ax.plot(xs, g[c], marker=".", color=f"C{i % 10}", ls="-" if i < 10 else "-.",
                        label=c.removeprefix("util."))
        ax.plot(xs, g["cores_util_mean"], ls="--", color="black", label="all cores")
        ax.set_ylim(0, 1.05)
        ax.set_title(label or "utilisation", fontsize=9)
        ax.set_xlabel(AXIS_LABELS.get(x, x) if x else "point")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("busy fraction of the window")
    axes[0].legend(fontsize=7, ncol=2)
    for ax in axes[len(series):]:
        ax.set_visible(False)
    fig.suptitle("Which process saturates first")
    return fig


def write_figures(summary: pd.DataFrame, keys: Sequence[str], out: Path, prefix: str = "sweep-") -> list[Path]:
    """The three sweep figures as PNG files in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in (("throughput-latency", figure_throughput_latency), ("knee", figure_knee),
                       ("bottleneck", figure_bottleneck)):
        p = out / f"{prefix}{name}.png"
        make(summary, keys).savefig(p, dpi=110)
        paths.append(p)
    return paths
