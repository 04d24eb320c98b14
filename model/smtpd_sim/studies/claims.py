"""The MFA post's claims put to the model (notebooks/why-we-killed-mfa.ipynb): what the MFA
answered, how idle it is for a range of handler costs, how busy smtp/mta/mda are near the
knee of the 2-core box, the released order of the process changes step by step, the
round trips filters cost in 5.4.2, 5.7.3 and 6.8, and klondike's price with replications.

Each function runs the model (``run_load``, ``run_probe``) and returns a DataFrame; no
number here is looked up from a table (hop counts of the intermediate trees come out of
running the role code on topologies merged in memory by ``studies.privsep.merge_topology``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from smtpd_sim.spec.calibration import Calibration, RoleCosts, load_calibration
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION, DEFAULT_SITE
from smtpd_sim.spec.topology import Topology, TopologySpec, load_topology
from smtpd_sim.spec.workload import Arrival, Mix, WorkloadSpec, load_workload
from smtpd_sim.studies.experiments import paired_difference, workload_variant
from smtpd_sim.studies.load import run_load
from smtpd_sim.studies.privsep import merge_topology
from smtpd_sim.studies.probe import probe_scenario, run_probe

PONY_ROLES = ["smtp", "mta", "mda"]  # merged into pony (1c0c4874, era-pony.md §0)
# the reply the client waits for at each filter phase (smtp_session.c, era-pony.md §5)
STEP_PHASE = {"banner": "connect", "EHLO": "helo", "MAIL FROM": "mail", "RCPT TO": "rcpt",
              "DATA": "data", "end of data": "commit", "QUIT": "quit"}


def _wl(workload: WorkloadSpec | str) -> WorkloadSpec:
    return load_workload(workload) if isinstance(workload, str) else workload


# ---- what the MFA answered --------------------------------------------------------------------


def mfa_answers(workload: WorkloadSpec | str, *, seed: int = 1,
                calibration: Calibration | str = DEFAULT_CALIBRATION) -> dict[str, int]:
    """One with-mfa load run: the MFA's queries, the answers smtp received and how many were
    not MFA_OK, the events it was told about, beside the messages accepted and the replies
    in which the daemon said no (5xx: lka's or smtp's own decision, not the MFA's)."""
    m, res = run_load("with-mfa", _wl(workload), seed=seed, calibration=calibration, rows=True)
    smtp, mfa = res.counters["smtp"], res.counters["mfa"]
    replies = [str(e.detail) for e in res.events if e.event == "reply"]
    return {"accepted": m.accepted, "queries": int(mfa["queries"]), "events": int(mfa["events"]),
            "answers": int(smtp["mfa_answers"]), "not_ok": int(smtp["mfa_refusals"]),
            "replies": len(replies), "replies_5xx": sum(r.startswith("5") for r in replies)}


# ---- the MFA's idle fraction as its handler cost varies ---------------------------------------


def with_role_cost(calibration: Calibration | str, role: str, default_s: float) -> Calibration:
    """A calibration where ``role``'s handlers cost ``default_s`` per item (the rest unchanged)."""
    cal = load_calibration(calibration)
    old = cal.roles.get(role, RoleCosts())
    roles = {**cal.roles, role: RoleCosts.model_validate({**old.model_dump(), "default_s": default_s})}
    return cal.model_copy(update={"roles": roles, "name": f"{cal.name}+{role}{default_s:g}s"})


def mfa_cost_sweep(costs_s: Sequence[float], workload: WorkloadSpec | str, seeds: Sequence[int], *,
                   calibration: Calibration | str = DEFAULT_CALIBRATION) -> pd.DataFrame:
    """Per MFA handler cost and seed: the MFA's and smtp's idle fractions, and the session
    time with the MFA minus without it (same seed: the same clients)."""
    wl = _wl(workload)
    rows = []
    for s in seeds:
        base, _ = run_load("without-mfa", wl, seed=s, calibration=calibration)
        for c in costs_s:
            m, _ = run_load("with-mfa", wl, seed=s, calibration=with_role_cost(calibration, "mfa", c))
            rows.append({"mfa_cost_s": c, "seed": s, "mfa_idle": m.idle_fraction["mfa"],
                         "smtp_idle": m.idle_fraction["smtp"],
                         "session_extra_s": m.session_mean_s - base.session_mean_s,
                         "session_extra_rel": m.session_mean_s / base.session_mean_s - 1})
    return pd.DataFrame(rows)


def measured_mfa_cost(bench: dict[str, Any], trace: pd.DataFrame, *,
                      calibration: Calibration | str = DEFAULT_CALIBRATION,
                      mode: str = "local", concurrency: int = 1) -> dict[str, float]:
    """The MFA's cost per imsg on the real 5.4.2p1, three ways, from recorded data:

    * ``handler_s``: the mean handler run time of the imsgs it received in a traced run
      (``profile-imsg``, the ``handler_us`` column of ``trace``): the handler alone;
    * ``raw_s``: its CPU per message (utime+stime, ``bench["summary"]``, the median of the
      runs of ``mode``/``concurrency``) over the imsgs it received per message in ``trace``
      (its scenario phase, one message): handler, wake-up, read and write;
    * ``per_imsg_s``: ``raw_s`` divided by how much the busy host inflated CPU in the same
      runs (``host_factor``: the 6.8.0p2 daemon measured beside it, against the CPU per
      message the calibration was fitted on, over the processes both count)."""
    def row(daemon: str) -> dict[str, Any]:
        for r in bench["summary"]:
            if (r["daemon"], r["mode"], r["concurrency"]) == (daemon, mode, concurrency):
                return r
        raise ValueError(f"bench: no {daemon} {mode} c={concurrency} summary")

    sc = trace[trace["phase"] == "scenario"]
    to_mfa = sc[sc["to_proc"] == "mfa"]
    per_msg = len(to_mfa)
    if per_msg == 0:
        raise ValueError("the trace has no imsg to the MFA")
    cpu = float(row("5.4.2p1")["cpu_ms_per_msg"]["mfa"]) * 1e-3
    ref = load_calibration(calibration).measured.get(f"{mode}_c{concurrency}_cpu_ms_per_msg", {})
    seen = row("6.8.0p2")["cpu_ms_per_msg"]
    both = [p for p in ("control", "lka", "pony", "scheduler") if p in ref and p in seen]  # type: ignore[operator]
    if not both:
        raise ValueError(f"calibration has no measured {mode} c={concurrency} CPU to compare with")
    factor = sum(float(seen[p]) for p in both) / sum(float(ref[p]) for p in both)  # type: ignore[index]
    raw = cpu / per_msg
    return {"imsgs_per_msg": per_msg, "cpu_s_per_msg": cpu, "handler_s": float(to_mfa["handler_us"].mean()) * 1e-6,
            "raw_s": raw, "host_factor": factor, "per_imsg_s": raw / factor}


# ---- near saturation ----------------------------------------------------------------------------


def busy_sweep(era: str, workload: WorkloadSpec | str, rates_per_s: Sequence[float], *, seed: int = 1,
               calibration: Calibration | str = DEFAULT_CALIBRATION) -> pd.DataFrame:
    """Per arrival rate: offered and accepted msg/s, session time, the busy fraction of each
    process and the CPU of the whole box (processes + forked delivery agents) in cores."""
    wl = _wl(workload)
    cal = load_calibration(calibration)
    rows = []
    for r in rates_per_s:
        m, _ = run_load(era, workload_variant(wl, rate_per_s=r), seed=seed, calibration=cal)
        cpu_s = sum(m.cpu_ms_per_msg.values()) * m.accepted / 1e3
        row: dict[str, Any] = {"rate_per_s": r, "offered_msg_s": r * wl.mix.messages,
                               "accepted_msg_s": m.throughput_msg_s, "session_mean_s": m.session_mean_s,
                               "cores_used": cpu_s / m.duration_s if m.duration_s else 0.0,
                               "cores": cal.cores}
        row.update({f"busy_{p}": 1.0 - idle for p, idle in m.idle_fraction.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def knee(sweep: pd.DataFrame, *, keep_up: float = 0.95, slow: float | None = None) -> float:
    """The highest rate of a ``busy_sweep`` at which the daemon still keeps up: it accepts at
    least ``keep_up`` of what is offered (and, with ``slow``, sessions take less than
    ``slow`` times as long as at the lowest rate)."""
    ok = sweep["accepted_msg_s"] >= keep_up * sweep["offered_msg_s"]
    if slow is not None:
        ok &= sweep["session_mean_s"] < slow * sweep.iloc[0]["session_mean_s"]
    if not ok.any():
        raise ValueError("the daemon keeps up at none of these rates")
    return float(sweep[ok]["rate_per_s"].max())


# ---- history, step by step ----------------------------------------------------------------------


def _named(topo: Topology, name: str, version: str, title: str) -> Topology:
    data = topo.spec.model_dump()
    data.update(name=name, version=version, title=title)
    return Topology(TopologySpec.model_validate(data))


def history_topologies() -> dict[str, Topology]:
    """The trees in the order they landed (era-pony.md §0), and the counterfactual:
    5.4.2; smtp+mta+mda merged with the MFA still separate (1c0c4874, 2014-04-04); the MFA
    removed (1a1f1ae5, 2014-04-09); klondike added (e47c13db, 2014-05-01; 5.7.3's layout);
    and ``without-mfa``, the MFA removed without the merge, which never existed."""
    merged = merge_topology(load_topology("with-mfa"), PONY_ROLES)
    zapped = merge_topology(load_topology("without-mfa"), PONY_ROLES)
    return {
        "5.4.2": load_topology("with-mfa"),
        "pony + MFA": _named(merged, "pony-mfa", "1c0c4874", "smtp, mta, mda merged; MFA separate"),
        "MFA removed": _named(zapped, "pony-no-ca", "1a1f1ae5", "pony, no MFA, no klondike"),
        "klondike (5.7.3)": load_topology("pony"),
        "without-mfa (never shipped)": load_topology("without-mfa"),
    }


def _boundary_hops(topo: Topology, kind: str, tls: bool = False) -> int:
    """Non-stat imsgs of one probe message that cross a process boundary."""
    wl = None
    if tls:
        wl = WorkloadSpec(name="probe-tls", sessions=1, arrival=Arrival(process="fixed", rate_per_s=10.0),
                          mix=Mix(messages=1, recipients=1, local_share=1.0 if kind == "local" else 0.0,
                                  local_users=["alice", "bob", "carol"], pick="cycle", tls_share=1.0))
    p = run_probe(probe_scenario(topo, kind, workload=wl), kind)
    return sum(n for pair, n in p.by_pair.items() if pair.split("->")[0] != pair.split("->")[1])


def history_table(steps: dict[str, Topology] | None = None) -> pd.DataFrame:
    """Per step: long-lived processes, live channels, hops of a local, a relayed and a
    STARTTLS local message, and the change from the step before (the counterfactual row is
    compared with 5.4.2)."""
    steps = steps or history_topologies()
    rows = []
    for label, topo in steps.items():
        rows.append({"step": label, "tree": topo.spec.version, "processes": topo.n_processes,
                     "channels": topo.n_channels, "hops_local": _boundary_hops(topo, "local"),
                     "hops_relay": _boundary_hops(topo, "relay"),
                     "hops_local_starttls": _boundary_hops(topo, "local", tls=True)})
    df = pd.DataFrame(rows)
    cols = ["processes", "channels", "hops_local", "hops_relay", "hops_local_starttls"]
    prev = df[cols].shift(1)
    cf = df["step"].str.startswith("without-mfa")
    prev.loc[cf] = df.loc[df.index[0], cols].to_numpy()
    for c in cols:
        df[f"Δ{c}"] = (df[c] - prev[c]).astype("Int64")
    return df


# ---- asking and hearing "proceed": 5.4.2, 5.7.3, 6.8 ------------------------------------------


def filter_round_trips() -> pd.DataFrame:
    """Per SMTP reply: the imsgs on the client's critical path that filtering adds, in 5.4.2
    (with-mfa − without-mfa), 5.7.3 (filters linked into pony: none cross a boundary) and
    6.8 with a filtered listener (pony-6.8-filters − pony-6.8), and whether 6.8's filter
    process subscribed to that phase."""
    crit = {era: {c["step"]: c["hops"] for c in run_probe(era).critical_path}
            for era in ("with-mfa", "without-mfa", "pony", "pony-6.8", "pony-6.8-filters")}
    phases = {ph for f in load_topology("pony-6.8-filters").spec.filter for ph in f.phases}
    rows = []
    for step in crit["with-mfa"]:
        phase = STEP_PHASE.get(step, step)
        rows.append({"reply to": step, "phase": phase,
                     "5.4.2 MFA": crit["with-mfa"][step] - crit["without-mfa"][step],
                     "5.7.3 in pony": crit["pony"][step] - crit["without-mfa"][step],
                     "6.8 filtered": crit["pony-6.8-filters"][step] - crit["pony-6.8"][step],
                     "6.8 filter subscribed": phase in phases})
    return pd.DataFrame(rows)


# ---- klondike's price ---------------------------------------------------------------------------


def without_klondike(topo: Topology) -> Topology:
    """The same era with the private key back in pony: pony signs itself (the model's
    ``key_engine = "none"`` path, as 5.4.2's smtp did)."""
    data = topo.spec.model_dump()
    data["name"] = f"{topo.name}-no-klondike"
    data["behaviour"]["key_engine"] = "none"
    smtp = topo.host["smtp"]
    for p in data["process"]:
        if p["name"] == smtp:  # it signs itself: the key stays in its memory while it serves
            p["secrets"] = [*p["secrets"], {"item": "tls-private-key",
                                            "source": "counterfactual: the key in pony (5.4.2's smtp)"}]
    return Topology(TopologySpec.model_validate(data))


def klondike_cost(tls_shares: Sequence[float], seeds: Sequence[int], *, era: str = "pony-6.8",
                  concurrency: int = 16, duration_s: float = 2.0,
                  calibration: Calibration | str = DEFAULT_CALIBRATION) -> pd.DataFrame:
    """Per STARTTLS share: accepted msg/s and session time with klondike and with the key in
    pony, paired by seed (closed loop of ``concurrency`` clients, local mail); the paired
    relative change of throughput with its 95 % interval."""
    variants = {"klondike": load_topology(era), "key in pony": without_klondike(load_topology(era))}
    rows = []
    for share in tls_shares:
        wl = WorkloadSpec(name=f"tls-{share:g}", duration_s=duration_s,
                          arrival=Arrival(process="closed", concurrency=concurrency),
                          mix=Mix(messages=1, recipients=1, local_share=1.0, tls_share=share))
        for s in seeds:
            for name, topo in variants.items():
                m, _ = run_load(topo, wl, seed=s, calibration=calibration, site=DEFAULT_SITE, drain_s=5.0)
                rows.append({"tls_share": share, "seed": s, "era": name,
                             "throughput_msg_s": m.throughput_msg_s, "session_mean_s": m.session_mean_s})
    return pd.DataFrame(rows)


def klondike_table(cost: pd.DataFrame) -> pd.DataFrame:
    """Per STARTTLS share, from ``klondike_cost``: the paired throughput change (klondike −
    key in pony) relative to the key-in-pony mean, with its interval, and the range over seeds."""
    rows = []
    for share, g in cost.groupby("tls_share", sort=True):
        d = paired_difference(g, "throughput_msg_s", "klondike", "key in pony")
        base = g[g["era"] == "key in pony"]["throughput_msg_s"].mean()
        k = g[g["era"] == "klondike"].set_index("seed")["throughput_msg_s"]
        b = g[g["era"] == "key in pony"].set_index("seed")["throughput_msg_s"]
        per_seed = (k / b - 1).dropna()
        rows.append({"tls_share": share, "n": d.paired.n, "change": d.relative,
                     "low": d.paired.low / base, "high": d.paired.high / base,
                     "seed_min": float(per_seed.min()), "seed_max": float(per_seed.max())})
    return pd.DataFrame(rows)
