"""Figures of the MFA post's claims (studies.claims): busy fractions up to the knee of the
box, the process changes step by step, the real daemon's memory per process, klondike's
price with intervals; and the provenance line every notebook figure carries."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from smtpd_sim.figures.style import MFA_COLOR, MFA_HATCH, era_color, plt

ROLE_COLORS = {"smtp": "#4f81bd", "mta": "#9bbb59", "mda": "#f79646", "mfa": MFA_COLOR,
               "queue": "#555555", "lka": "#8064a2", "parent": "#c4bd97", "control": "#93cddd",
               "scheduler": "#948a54"}


def provenance(fig: Figure, text: str) -> Figure:
    """Write where the figure's numbers come from in small type under it (the axes move up
    to make room: about two lines of 7 pt)."""
    height = fig.get_size_inches()[1]
    fig.subplots_adjust(bottom=fig.subplotpars.bottom + 0.32 / height)
    fig.text(0.005, 0.004, text, fontsize=7, color="#444444", ha="left", va="bottom", wrap=True)
    return fig


def busy_figure(sweep: pd.DataFrame, knee_rate: float, processes: Sequence[str], era: str) -> Figure:
    """Left: the busy fraction of ``processes`` against the arrival rate, the knee marked;
    right: what the box delivers (accepted vs offered msg/s) and the cores it uses."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.6))
    for p in processes:
        col = f"busy_{p}"
        if col in sweep:
            a1.plot(sweep["rate_per_s"], sweep[col] * 100, "o-", ms=4, label=p,
                    color=ROLE_COLORS.get(p, "#777777"), lw=2.2 if p in ("smtp", "mta", "mda") else 1.0)
    for ax in (a1, a2):
        ax.axvline(knee_rate, color="#999999", ls=":", lw=1)
        ax.grid(alpha=0.3)
        ax.set_xlabel("SMTP sessions per second (Poisson)")
    a1.text(knee_rate, 97, " knee", color="#777777", fontsize=8, va="top")
    a1.set_ylabel("busy, % of the run")
    a1.set_ylim(0, 100)
    a1.set_title(f"{era}: how busy each process is as the 2-core box fills up", fontsize=10)
    a1.legend(fontsize=8, ncol=2)
    a2.plot(sweep["rate_per_s"], sweep["offered_msg_s"], "--", color="#999999", label="offered msg/s")
    a2.plot(sweep["rate_per_s"], sweep["accepted_msg_s"], "o-", color=era_color(era), label="accepted msg/s")
    a2.set_ylabel("messages per second")
    tw = a2.twinx()
    tw.plot(sweep["rate_per_s"], sweep["cores_used"], "s-", color="#c0504d", ms=3, label="cores used")
    tw.set_ylim(0, float(sweep["cores"].max()) * 1.05)
    tw.set_ylabel("cores used (of the box's 2)")
    h1, l1 = a2.get_legend_handles_labels()
    h2, l2 = tw.get_legend_handles_labels()
    a2.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    a2.set_title(f"{era}: offered vs accepted messages, and the CPU the box uses", fontsize=10)
    fig.tight_layout()
    return fig


def history_figure(table: pd.DataFrame) -> Figure:
    """Processes, channels and hops per local message at each step of ``claims.history_table``,
    the counterfactual (a step label starting with ``without-mfa``) hatched."""
    cols = [("processes", "long-lived processes"), ("channels", "live socketpairs"),
            ("hops_local", "imsgs per local message")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    steps = list(table["step"])
    for ax, (col, title) in zip(axes, cols, strict=True):
        for i, r in enumerate(table.itertuples(index=False)):
            cf = str(r.step).startswith("without-mfa")
            v = getattr(r, col)
            ax.bar(i, v, 0.65, color="#dddddd" if cf else "#4f81bd", hatch=MFA_HATCH if cf else None,
                   edgecolor="#777777")
            d = getattr(r, f"Δ{col}")
            txt = f"{v}" + ("" if pd.isna(d) else f"\n({int(d):+d})")
            ax.text(i, v, txt, ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(steps)), [s.replace(" (", "\n(") for s in steps], fontsize=7.5,
                      rotation=20, ha="right")
        ax.set_ylim(0, float(table[col].max()) * 1.3)
        ax.set_title(title, fontsize=10)
    fig.suptitle("Each step as it landed (2014), and the never-shipped without-mfa (hatched; "
                 "its change is against 5.4.2)", fontsize=11)
    fig.tight_layout()
    return fig


def memory_figure(panels: Sequence[tuple[str, dict[str, dict[str, float]]]], title: str) -> Figure:
    """One panel per (title, {process: {"rss", "pss", "uss"} in bytes}): the three bars of
    each process, and the sums in the panel's title (PSS sums to what the daemon occupies)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.4), sharey=True, squeeze=False)
    kinds = [("rss", "RSS (resident, shared pages counted in full)", "#cccccc"),
             ("pss", "PSS (shared pages split between their users)", "#4f81bd"),
             ("uss", "USS (pages only this process has)", "#2c4d75")]
    top = max(v["rss"] for _t, tab in panels for v in tab.values()) / 1e6
    for ax, (label, tab) in zip(axes[0], panels, strict=True):
        procs = list(tab)
        w = 0.27
        for k, (key, name, col) in enumerate(kinds):
            ax.bar([i + (k - 1) * w for i in range(len(procs))], [tab[p][key] / 1e6 for p in procs], w,
                   color=col, label=name)
        tot = {key: sum(tab[p][key] for p in procs) / 1e6 for key, _n, _c in kinds}
        ax.set_xticks(range(len(procs)), procs, rotation=25, fontsize=8)
        ax.set_title(f"{label}\nΣ RSS {tot['rss']:.1f} MB, Σ PSS {tot['pss']:.1f} MB, Σ USS {tot['uss']:.1f} MB",
                     fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylim(0, top * 1.45)
    axes[0][0].set_ylabel("MB")
    axes[0][0].legend(fontsize=7, loc="upper left", ncol=2)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def klondike_figure(table: pd.DataFrame) -> Figure:
    """Klondike's throughput change against the key in pony per STARTTLS share: paired
    mean with its 95 % interval, and the range over seeds (``claims.klondike_table``)."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    x = table["tls_share"] * 100
    ax.axhline(0, color="#999999", lw=0.8)
    ax.errorbar(x, table["change"] * 100, yerr=[(table["change"] - table["low"]) * 100,
                                                 (table["high"] - table["change"]) * 100],
                fmt="o-", color=era_color("pony-6.8"), capsize=4, label="paired mean, 95 % CI")
    ax.fill_between(x, table["seed_min"] * 100, table["seed_max"] * 100, color=era_color("pony-6.8"),
                    alpha=0.15, label="range over seeds")
    ax.set_xlabel("sessions using STARTTLS, %")
    ax.set_ylabel("throughput change, %")
    n = int(table["n"].max())
    ax.set_title(f"pony-6.8 with klondike vs the key in pony: throughput ({n} seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
