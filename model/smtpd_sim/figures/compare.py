"""The headline comparison of the eras as one figure (``smtpd-sim compare --plot``)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from smtpd_sim.figures.style import era_color, plt


def compare_figure(result: dict[str, Any]) -> Figure:
    """Six panels: hops per message (MFA part marked), processes and channels, round trips
    per SMTP reply, DATA-end→250 latency, idle fraction per process, CPU per message."""
    eras = result["eras"]
    names = [e["era"] for e in eras]
    colors = [era_color(n) for n in names]
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    fig.suptitle(
        f"OpenSMTPD process layouts compared (workload '{result['workload']}', seed {result['seed']}, "
        f"{result['cores']} cores)", fontsize=13)

    ax = axes[0][0]
    x = range(len(names))
    w = 0.38
    local = [e["hops_per_message"]["local"] for e in eras]
    relay = [e["hops_per_message"]["relay"] for e in eras]
    mfa = [e["mfa_hops_per_message"] for e in eras]
    ax.bar([i - w / 2 for i in x], local, w, color=colors, label="local recipient")
    ax.bar([i - w / 2 for i in x], mfa, w, color="none", edgecolor="black", hatch="//",
           label="smtp<->mfa (acknowledging it does not care)")
    ax.bar([i + w / 2 for i in x], relay, w, color=colors, alpha=0.55, label="relay recipient")
    for i, (a, b) in enumerate(zip(local, relay, strict=True)):
        ax.text(i - w / 2, a + 0.5, str(a), ha="center", fontsize=9)
        ax.text(i + w / 2, b + 0.5, str(b), ha="center", fontsize=9)
    ax.set_xticks(list(x), names)
    ax.set_ylabel("imsgs crossing a process boundary")
    ax.set_title("Hops per message (1 recipient, end to end)")
    ax.legend(fontsize=8, loc="upper right")

    ax = axes[0][1]
    procs = [e["processes"] for e in eras]
    chans = [e["channels"] for e in eras]
    ax.bar([i - w / 2 for i in x], procs, w, color=colors, label="long-lived processes")
    ax.bar([i + w / 2 for i in x], chans, w, color=colors, alpha=0.55, label="live socketpairs")
    for i, (a, b) in enumerate(zip(procs, chans, strict=True)):
        ax.text(i - w / 2, a + 0.3, str(a), ha="center", fontsize=9)
        ax.text(i + w / 2, b + 0.3, str(b), ha="center", fontsize=9)
    ax.set_xticks(list(x), names)
    ax.set_title("Processes and channels")
    ax.legend(fontsize=8)

    ax = axes[0][2]
    steps = list(eras[0]["round_trips"])
    sw = 0.8 / len(eras)
    for k, e in enumerate(eras):
        ax.bar([i + k * sw for i in range(len(steps))], [e["round_trips"].get(s, 0) for s in steps], sw,
               color=era_color(e["era"]), label=e["era"])
    ax.set_xticks([i + 0.4 - sw / 2 for i in range(len(steps))], steps, rotation=30, ha="right")
    ax.set_ylabel("imsg round trips before the reply")
    ax.set_title("Critical path of each SMTP reply (local recipient)")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    mean = [e["latency_s"]["mean"] * 1e3 for e in eras]
    p99 = [e["latency_s"]["p99"] * 1e3 for e in eras]
    ax.bar([i - w / 2 for i in x], mean, w, color=colors, label="mean")
    ax.bar([i + w / 2 for i in x], p99, w, color=colors, alpha=0.55, label="p99")
    for i, (a, b) in enumerate(zip(mean, p99, strict=True)):
        ax.text(i - w / 2, a, f"{a:.3f}", ha="center", va="bottom", fontsize=8)
        ax.text(i + w / 2, b, f"{b:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), names)
    ax.set_ylabel("ms")
    ax.set_title("DATA-end → 250 latency under load")
    ax.set_ylim(0, max(p99 + [1e-9]) * 1.3)  # room for the labels and the legend
    ax.legend(fontsize=8, loc="upper right", ncol=2)

    ax = axes[1][1]
    allp: list[str] = []
    for e in eras:
        for p in e["idle_fraction"]:
            if p not in allp:
                allp.append(p)
    pw = 0.8 / len(eras)
    for k, e in enumerate(eras):
        ys = [1 - e["idle_fraction"].get(p, float("nan")) for p in allp]
        ax.bar([i + k * pw for i in range(len(allp))], ys, pw, color=era_color(e["era"]), label=e["era"])
    ax.set_xticks([i + 0.4 - pw / 2 for i in range(len(allp))], allp, rotation=30, ha="right")
    ax.set_ylabel("busy fraction (1 - idle)")
    rate = max(e["throughput_msg_s"] for e in eras)
    ax.set_title(f"How busy each process is at {rate:.0f} accepted msg/s (a light load)" if
                 max(1 - v for e in eras for v in e["idle_fraction"].values()) < 0.2 else
                 f"How busy each process is at {rate:.0f} accepted msg/s")
    ax.legend(fontsize=8)

    ax = axes[1][2]
    bottoms = [0.0] * len(eras)
    keys: list[str] = []
    for e in eras:
        for p in e["cpu_ms_per_message"]:
            if p not in keys:
                keys.append(p)
    cmap = plt.get_cmap("tab20")
    for j, p in enumerate(keys):
        vals = [e["cpu_ms_per_message"].get(p, 0.0) for e in eras]
        ax.bar(list(x), vals, 0.6, bottom=bottoms, color=cmap(j % 20), label=p)
        bottoms = [b + v for b, v in zip(bottoms, vals, strict=True)]
    ax.set_xticks(list(x), names)
    ax.set_ylabel("CPU ms per accepted message")
    ax.set_title("CPU per message, by process")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))

    fig.tight_layout()
    return fig
