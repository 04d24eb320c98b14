"""A scenario run as one figure: the queue over time and acceptance → delivery times
(``run.png`` of ``smtpd-sim run``)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from smtpd_sim.figures.style import plt


def run_figure(res: Any, samples: Any, messages: Any, delays: Any = None) -> Figure:
    """A scenario run: the queue over time (with the daemon's down periods) and the time
    from acceptance to delivery (per message, or from the ``delays`` sketch of a
    streaming run)."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
    ax = axes[0]
    t = samples["time"] / 3600.0 if len(samples) else []
    if len(samples):
        ax.plot(t, samples["queued"], label="accepted, not yet settled")
        ax.plot(t, samples["pending"], label="waiting for a retry (scheduler pending)")
        ax.plot(t, samples["inflight"], label="in flight")
        down = samples["down"] > 0
        if down.any():
            ax.fill_between(t, 0, max(1, samples["queued"].max()), where=down, color="red", alpha=0.15,
                            label="daemon down")
    faults = res.config.get("scenario", {}).get("fault", []) if getattr(res, "config", None) else []
    for k, f in enumerate(faults):
        start = f["start_s"] / 3600.0
        end = min(f["start_s"] + f["duration_s"], samples["time"].max() if len(samples) else 0) / 3600.0
        if f["kind"] == "crash":
            ax.axvline(start, color="red", lw=1, ls="--")
            ax.text(start, ax.get_ylim()[1] * 0.95, f" crash {f['process']}", color="red", fontsize=7, va="top")
        elif end - start < 23:  # whole-run faults (rates) are listed in the legend only
            ax.axvspan(start, max(end, start + 0.05), color=f"C{3 + k % 6}", alpha=0.12)
            ax.text(start, ax.get_ylim()[1] * (0.88 - 0.06 * (k % 4)), f" {f['kind']}", fontsize=7)
    ax.set_xlabel("simulated hours")
    ax.set_ylabel("envelopes")
    ax.set_title(f"{res.name}: queue over time ({res.era}, seed {res.seed})")
    ax.legend(fontsize=8)
    ax = axes[1]
    done = messages[messages["state"] == "delivered"] if len(messages) else messages
    import numpy as np

    weights = None
    d = np.zeros(0)
    if delays is not None and len(delays):
        pairs = delays.counts()
        d = np.clip(np.array([v for v, _n in pairs]), 1e-4, None)
        weights = [n for _v, n in pairs]
    elif len(done):
        d = (done["ended_at"] - done["accepted_at"]).clip(lower=1e-4).to_numpy()
    if len(d):
        bins = np.logspace(np.log10(max(d.min(), 1e-4)), np.log10(max(d.max(), 1e-3)) + 0.01, 40)
        ax.hist(d, bins=bins, weights=weights, color="#4f81bd")
        ax.set_xscale("log")
    ax.set_xlabel("acceptance → delivery (s, log scale)")
    ax.set_ylabel("envelopes")
    led = res.ledger
    ax.set_title(f"accepted {led['accepted']}, delivered {led['delivered']}, bounced {led['bounced']}, "
                 f"expired {led['expired']}, queued {led['queued']}, lost {led['lost']}", fontsize=10)
    fig.tight_layout()
    return fig
