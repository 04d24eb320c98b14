"""A scenario run as one figure: the queue over time and acceptance → delivery times
(``run.png`` of ``smtpd-sim run``).

A run shorter than a few ``sample_s`` has too few queue samples for a curve (a 5-minute
run sampled every 300 s has one). The figure then adapts rather than draws an empty or
two-point line: the samples are marked, the backlog (accepted, not yet settled) is drawn
exactly from the per-message table when the run kept one, and a note in the panel says
so (:func:`few_samples_note`, which ``smtpd-sim run`` also prints).
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from smtpd_sim.figures.style import plt

# fewer queue samples than this make no readable curve: the figure marks them and draws
# the backlog from the per-message table instead (a presentation threshold, not a model one)
MIN_SAMPLES = 10


def few_samples_note(n_samples: int, sample_s: float | None, simulated_s: float, *,
                     has_messages: bool) -> str | None:
    """One line when the run has fewer than :data:`MIN_SAMPLES` queue samples, else None."""
    if n_samples >= MIN_SAMPLES:
        return None
    every = f" (one every {sample_s:g} s)" if sample_s else ""
    how = ("the backlog is drawn from messages.csv" if has_messages
           else "a streaming run keeps no messages to draw it from")
    hint = (f"; sample_s <= {simulated_s / MIN_SAMPLES:.3g} s gives a curve"
            if simulated_s > 0 else "")
    return (f"run.png: {n_samples} queue sample{'s' if n_samples != 1 else ''}{every} in "
            f"{simulated_s:g} simulated s, too few for a curve: {how}{hint}")


def backlog_steps(messages: Any) -> tuple[Any, Any]:
    """Accepted, not yet settled envelopes over time, exactly, from the per-message table:
    +1 at each ``accepted_at``, -1 at each ``ended_at`` (times and counts of the steps)."""
    import numpy as np

    if "kind" in messages:
        messages = messages[messages["kind"] != "bounce"]  # the daemon's own bounces: not accepted mail
    if not len(messages):
        return np.zeros(0), np.zeros(0)
    ups = messages["accepted_at"].to_numpy(dtype=float)
    downs = messages["ended_at"].dropna().to_numpy(dtype=float)
    times = np.concatenate([ups, downs])
    deltas = np.concatenate([np.ones(len(ups)), -np.ones(len(downs))])
    order = np.lexsort((-deltas, times))  # at one instant, arrivals before departures
    return times[order], np.cumsum(deltas[order])


def run_figure(res: Any, samples: Any, messages: Any, delays: Any = None) -> Figure:
    """A scenario run: the queue over time (with the daemon's down periods) and the time
    from acceptance to delivery (per message, or from the ``delays`` sketch of a
    streaming run)."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
    ax = axes[0]
    t = samples["time"] / 3600.0 if len(samples) else []
    cfg = getattr(res, "config", None) or {}
    note = few_samples_note(len(samples), cfg.get("scenario", {}).get("sample_s"),
                            float(getattr(res, "simulated_s", 0.0) or 0.0), has_messages=len(messages) > 0)
    mark = "o" if note else None
    if note and len(messages):
        st, sn = backlog_steps(messages)
        ax.step(st / 3600.0, sn, where="post", color="C0", alpha=0.6, lw=1,
                label="accepted, not yet settled (per message)")
    if len(samples):
        ax.plot(t, samples["queued"], marker=mark, label="accepted, not yet settled")
        ax.plot(t, samples["pending"], marker=mark, label="waiting for a retry (scheduler pending)")
        ax.plot(t, samples["inflight"], marker=mark, label="in flight")
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
    if note:
        short = note.split(": ", 1)[1].split(": ", 1)
        ax.text(0.99, 0.62, f"{short[0]}:\n{short[1].split('; ')[0]}", transform=ax.transAxes, fontsize=7,
                ha="right", va="top", color="0.3")
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
