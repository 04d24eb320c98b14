"""Factorial sweeps over any scenario key, run in-process or on Dask (``dask.distributed``).

A sweep varies keys of the *resolved* scenario, each addressed by a dotted path:
top-level scenario keys (``era``, ``cores``, ``calibration``, ``site``, ``drain_s``),
``workload.<path>`` into the workload (``workload.arrival.rate_per_s``,
``workload.mix.local_share``), ``calibration.<path>`` into the calibration's costs
(``calibration.roles.queue.default_s``) and ``site.<path>`` into the site. Every point of
the full factorial is validated before anything runs. Replication ``r`` of every point
uses seed ``seed + r`` (common random numbers: the same clients at every point).

Each (point, replication) is one :func:`smtpd_sim.studies.load.run_load` measurement over the
workload's arrival window (throughput, latency, per-process utilisation and CPU), with the
ledger checked after the drain (``drain_s``); the result is one tidy table, one row per
point x replication, with the resolved config of the point as a JSON column. (Not
``smtpd_sim.studies.run.run_scenario``: it reports busy time over the whole run, drain included, which
dilutes utilisation; capacity is about the loaded window. Fault scenarios are refused.)

A point travels to the workers fully resolved: scenario, workload, site, calibration *and*
topology as plain data, so a worker started in another directory (or on another machine)
needs no file the sweep named. Dask and pyarrow are the ``sweep`` extra, imported only here
and only when a sweep runs (:func:`require_extra`).
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.observe.stats import mean_interval
from smtpd_sim.spec.calibration import Calibration, load_calibration
from smtpd_sim.spec.scenario import Scenario, ScenarioSpec, scenario_of
from smtpd_sim.spec.site import SiteSpec, load_site
from smtpd_sim.spec.tables import TABLE_NAMES, TableSpec
from smtpd_sim.spec.topology import Topology, TopologySpec, load_topology
from smtpd_sim.spec.workload import WorkloadSpec, load_workload, read_replay_csv
from smtpd_sim.studies.load import run_load

# Scenario keys that name a document the sweep can also address inside (``key.<path>``).
REFERENCES = ("workload", "calibration", "site")
# Scenario keys a sweep sets itself (seeds come from --seed and --replications).
NOT_VARIED = {"seed": "seed is set by the sweep's seed and replications, not by --vary",
              "fault": "fault lists cannot be varied (sweeps measure capacity without faults)"}
LEDGER_KEYS = ("accepted", "delivered", "bounced", "expired", "queued", "lost", "duplicated")


class SweepError(SmtpdSimError):
    """An invalid sweep design (one line)."""


# How long a sweep on an existing scheduler waits for its first worker (--wait-workers).
WAIT_WORKERS_S = 60.0


def require_extra(*, dask: bool) -> None:
    """The ``sweep`` extra is installed: pyarrow (the Parquet table) and, when the sweep runs
    on a cluster (``dask``), ``dask.distributed``; else one line saying what to install.
    Checked before anything runs, so a long sweep never fails at its end."""
    needed = [("pyarrow", "pyarrow")] + ([("distributed", "dask.distributed")] if dask else [])
    for module, what in needed:
        try:
            __import__(module)
        except ImportError:
            raise SweepError(f"smtpd-sim sweep needs {what}, which is in the 'sweep' extra: "
                             "pip install 'smtpd-sim[sweep]'") from None


@dataclass(frozen=True)
class Factor:
    """One varied key and its levels, in the order given."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Point:
    """One design point, fully resolved and validated (plain data: it travels to workers)."""

    index: int
    values: dict[str, Any]
    scenario: dict[str, Any]  # the scenario's keys, workload inline
    calibration: dict[str, Any]
    site: dict[str, Any]
    topology: dict[str, Any]  # the era's topology (a TopologySpec): no file to read on a worker
    stream: bool = False  # no per-message history (Simulation(stream=True)): p99 from a sketch


@dataclass
class SweepPlan:
    """A validated design: the factors, the points, the seeds."""

    name: str
    factors: list[Factor]
    points: list[Point]
    seed: int
    replications: int
    base: dict[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [f.key for f in self.factors]

    def tasks(self) -> list[tuple[Point, int, int]]:
        """(point, replication, seed) for every run, point-major."""
        return [(p, r, self.seed + r) for p in self.points for r in range(self.replications)]


# ---- the design ---------------------------------------------------------------------------------


def parse_value(raw: str) -> Any:
    """A level as typed on the command line: bool, int, float, else the string itself."""
    s = raw.strip()
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def parse_vary(text: str) -> Factor:
    """``key=v1,v2,...`` -> Factor (levels parsed with :func:`parse_value`)."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SweepError(f"--vary {text!r}: expected key=v1,v2,...")
    raw = [v for v in rest.split(",") if v.strip()]
    if not raw:
        raise SweepError(f"--vary {key}: no values given")
    values = [parse_value(v) for v in raw]
    if any(isinstance(v, str) for v in values):
        values = [v.strip() for v in raw]  # one type per column: all strings
    if len(set(map(repr, values))) != len(values):
        raise SweepError(f"--vary {key}: a value is repeated")
    return Factor(key, tuple(values))


def expand(factors: Sequence[Factor]) -> list[dict[str, Any]]:
    """The full factorial: every combination of levels, the first factor varying slowest."""
    keys = [f.key for f in factors]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise SweepError(f"--vary {dup}: given twice")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(f.values for f in factors))]


def default_scenario() -> ScenarioSpec:
    """The embedded default scenario (era pony-6.8, workload ``default``): what
    ``smtpd-sim sweep default`` means when no ``default.toml`` scenario file exists."""
    return ScenarioSpec(name="default")


def _document(ref: str, value: Any) -> dict[str, Any]:
    """The document a reference key names (a workload, a calibration, a site)."""
    if ref == "workload":
        wl = value if isinstance(value, WorkloadSpec) else load_workload(value)
        return wl.model_dump(mode="json")
    if ref == "calibration":
        return load_calibration(value).model_dump(mode="json")
    return load_site(value).model_dump(mode="json")


def _leaf_paths(doc: Any, prefix: str) -> list[str]:
    if isinstance(doc, dict):
        out = []
        for k, v in doc.items():
            out.extend(_leaf_paths(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or [prefix]
    return [prefix]


def _unknown(key: str, known: Iterable[str]) -> SweepError:
    near = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    if not near:
        tail = key.rsplit(".", 1)[-1]
        near = [k for k in known if k.rsplit(".", 1)[-1] == tail][:1]
    hint = f" (did you mean {near[0]}?)" if near else ""
    return SweepError(f"--vary {key}: unknown scenario key{hint}")


def _set_path(doc: dict[str, Any], key: str, path: list[str], value: Any, known: list[str]) -> None:
    """Set ``value`` at ``path`` in ``doc``; a missing table on the way is created (free-form
    maps such as ``tables`` or ``calibration.roles``): the models' ``extra="forbid"`` then
    rejects what does not exist, and the caller turns that into an unknown-key line."""
    node: Any = doc
    for part in path[:-1]:
        if not isinstance(node, dict):
            raise _unknown(key, known)
        if part not in node or node[part] is None:
            node[part] = {}
        node = node[part]
    last = path[-1]
    if not isinstance(node, dict):
        raise _unknown(key, known)
    old = node.get(last)
    if last in node and isinstance(old, dict):
        raise SweepError(f"--vary {key}: is a table, not a value (vary one of its keys)")
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    node[last] = value


def _validation_line(e: ValidationError, prefix: str) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    return f"{prefix}{loc}: {msg}" if loc else f"{prefix.rstrip('.')}: {msg}"


def _invalid(e: ValidationError, prefix: str, where: str, values: dict[str, Any], known: list[str]) -> SweepError:
    """One line for a model's validation error: an unknown key names the --vary key that
    made it, with a "did you mean"; any other error names the point and the value."""
    err = e.errors()[0]
    loc = prefix + ".".join(str(x) for x in err["loc"])
    if err["type"] == "extra_forbidden":
        culprit = next((k for k in values if k == loc or k.startswith(loc + ".")), loc)
        return _unknown(culprit, known)
    return SweepError(f"{where}: " + _validation_line(e, prefix))


_MODELS: dict[str, Any] = {"workload": WorkloadSpec, "calibration": Calibration, "site": SiteSpec}


def _scenario_document(spec: ScenarioSpec) -> dict[str, Any]:
    """The scenario's keys as plain data; ``tables`` keeps only the fields that were set
    (``smtpd_sim.spec.tables.merge_tables`` lays them over the site's table field by field)."""
    doc = spec.model_dump(mode="json", exclude={"workload", "tables"})
    doc["workload"] = spec.workload if isinstance(spec.workload, str) else spec.workload.model_dump(mode="json")
    tables = getattr(spec, "tables", None)
    if tables is not None:
        doc["tables"] = {n: t.model_dump(mode="json", exclude_unset=True) for n, t in tables.items()}
    return doc


def resolve_point(base: ScenarioSpec, index: int, values: dict[str, Any]) -> Point:
    """Apply one assignment to the base scenario and validate everything it refers to;
    errors are one line naming the key and the value."""
    scen = _scenario_document(base)
    where = f"point {index} ({', '.join(f'{k}={v}' for k, v in values.items())})"
    inner: dict[str, list[tuple[str, list[str], Any]]] = {r: [] for r in REFERENCES}
    for key, value in values.items():
        head, *rest = key.split(".")
        if head in NOT_VARIED:
            raise SweepError(f"--vary {key}: {NOT_VARIED[head]}")
        if rest and head in REFERENCES:
            inner[head].append((key, rest, value))
        elif head not in scen or (rest and not isinstance(scen[head], dict)):
            raise _unknown(key, _known_keys(base))
        elif rest:
            _set_path(scen, key, [head, *rest], value, _known_keys(base))
        else:
            if isinstance(scen[head], dict):
                raise SweepError(f"--vary {key}: is a table, not a value (vary one of its keys)")
            scen[head] = value
    docs: dict[str, dict[str, Any]] = {}
    for ref in REFERENCES:
        current = scen[ref]
        if isinstance(current, dict):
            doc = json.loads(json.dumps(current))
        else:
            try:
                doc = _document(ref, current)
            except (ValueError, FileNotFoundError) as e:  # an unknown name, one line
                raise SweepError(f"--vary {ref}={current}: {str(e).splitlines()[0]}") from None
        known = [f"{ref}.{p}" for p in _leaf_paths(doc, "")]
        for key, path, value in inner[ref]:
            _set_path(doc, key, path, value, known)
        try:
            _MODELS[ref].model_validate(doc)
        except ValidationError as e:
            raise _invalid(e, f"{ref}.", where, values, known) from None
        docs[ref] = doc
    arrival = docs["workload"].get("arrival", {})
    if arrival.get("process") == "replay" and not arrival.get("times") and arrival.get("csv"):
        # the replay's times travel with the point, not its path: a worker may run elsewhere
        arrival["times"] = read_replay_csv(arrival["csv"])
    scen["workload"] = docs["workload"]
    try:
        spec = ScenarioSpec.model_validate(scen)
    except ValidationError as e:
        raise _invalid(e, "", where, values, _known_keys(base)) from None
    except ValueError as e:  # a validator's own one-line error
        raise SweepError(f"{where}: {str(e).splitlines()[0]}") from None
    try:
        topology = load_topology(spec.era).spec.model_dump(mode="json")
    except (ValueError, FileNotFoundError) as e:
        raise SweepError(f"{where}: {str(e).splitlines()[0]}") from None
    if spec.fault:
        raise SweepError(f"{base.name}: has [[fault]] entries; a sweep measures capacity without faults "
                         "(use `smtpd-sim run` for a fault scenario)")
    scen_out = _scenario_document(spec)
    scen_out["workload"] = docs["workload"]
    return Point(index, dict(values), scen_out, docs["calibration"], docs["site"], topology)


def _known_keys(base: ScenarioSpec) -> list[str]:
    """Every key a sweep can address in ``base`` (for "did you mean" hints)."""
    known = [k for k in ScenarioSpec.model_fields if k not in NOT_VARIED]
    wl = base.workload if isinstance(base.workload, WorkloadSpec) else base.workload
    known += [f"workload.{p}" for p in _leaf_paths(_document("workload", wl), "")]
    known += [f"calibration.{p}" for p in _leaf_paths(_document("calibration", base.calibration), "")]
    known += [f"site.{p}" for p in _leaf_paths(_document("site", base.site), "")]
    known += [f"tables.{n}.{f}" for n in TABLE_NAMES for f in TableSpec.model_fields]
    return known


def plan_sweep(base: ScenarioSpec, factors: Sequence[Factor], *, replications: int = 1,
               seed: int | None = None, stream: bool = False) -> SweepPlan:
    """Expand and validate the whole design before anything runs. ``stream``: every run
    keeps no per-message history, so its memory follows what is in flight."""
    if replications < 1:
        raise SweepError(f"--replications: must be at least 1, got {replications}")
    points = [resolve_point(base, i, values) for i, values in enumerate(expand(factors))]
    if stream:
        points = [replace(p, stream=True) for p in points]
    return SweepPlan(name=base.name, factors=list(factors), points=points,
                     seed=base.seed if seed is None else seed, replications=replications)


# ---- one run --------------------------------------------------------------------------------------


def point_config(point: Point) -> dict[str, Any]:
    """The full configuration a point ran with (desmod-style, like ``Scenario.config()``)."""
    scen = {k: v for k, v in point.scenario.items() if k != "workload"}
    return {
        "scenario": scen,
        "workload": point.scenario["workload"],
        "topology": point.topology,
        "site": point.site,
        "calibration": point.calibration,
        "varied": point.values,
        "stream": point.stream,
    }


def point_scenario(point: Point, seed: int) -> Scenario:
    """The scenario of one point and seed, built from the point's plain data alone (the era's
    topology too: no file is read, whatever the worker's directory)."""
    spec = ScenarioSpec.model_validate(point.scenario)
    wl = spec.workload if isinstance(spec.workload, WorkloadSpec) else load_workload(spec.workload)
    return scenario_of(_topology(point), workload=wl, seed=seed, calibration=Calibration.model_validate(point.calibration),
                       site=SiteSpec.model_validate(point.site), cores=spec.cores, tables=spec.tables,
                       name=spec.name)


def run_task(task: tuple[Point, int, int]) -> dict[str, Any]:
    """Run one (point, replication, seed) and measure it: one row of the results table.
    Plain data in, plain data out, so a Dask worker on another machine can run it."""
    point, replication, seed = task
    m, res = run_load(point_scenario(point, seed), drain_s=point.scenario["drain_s"], stream=point.stream)
    delivered_msgs = res.delivered_in_window  # every envelope delivered by the window's end
    util = {p: 1.0 - v for p, v in m.idle_fraction.items()}
    bottleneck = max(sorted(util), key=lambda p: util[p]) if util else ""
    cpu_total_s = sum(m.cpu_ms_per_msg.values()) * max(m.accepted, 1) / 1e3  # run_load divides by max(accepted, 1)
    row: dict[str, Any] = {"point": point.index, "replication": replication, "seed": seed}
    row.update(point.values)
    row.update({
        "era_run": point.scenario["era"],
        "n_cores": m.cores,
        "window_s": m.duration_s,
        "accepted_msg_s": m.throughput_msg_s,
        "delivered_msg_s": delivered_msgs / m.duration_s if m.duration_s else 0.0,
        "latency_mean_s": _nan(m.latency_mean_s),
        "latency_p99_s": _nan(m.latency_p99_s),
        "session_mean_s": _nan(m.session_mean_s),
        "bottleneck": bottleneck,
        "bottleneck_util": util.get(bottleneck, math.nan),
        "cores_util": cpu_total_s / (m.duration_s * m.cores) if m.duration_s else math.nan,
    })
    for p in sorted(util):
        row[f"util.{p}"] = util[p]
        row[f"idle.{p}"] = m.idle_fraction[p]
    for p in sorted(m.cpu_ms_per_msg):
        row[f"cpu_ms.{p}"] = m.cpu_ms_per_msg[p]
    for k in LEDGER_KEYS:
        row[f"ledger.{k}"] = int(m.ledger.get(k, 0))
    row["config"] = json.dumps(point_config(point), sort_keys=True, separators=(",", ":"))
    return row


def _topology(point: Point) -> Topology:
    """The point's topology, built from its data."""
    return Topology(TopologySpec.model_validate(point.topology))


def run_task_on_worker(task: tuple[Point, int, int]) -> tuple[dict[str, Any], str]:
    """:func:`run_task` on a Dask worker, with the address of the worker that ran it (so the
    sweep records the workers that did the work, not those present at the start)."""
    from distributed import get_worker

    return run_task(task), get_worker().address


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


# ---- running the design ---------------------------------------------------------------------------


@dataclass
class SweepRun:
    """The table and how it was produced (wall time is kept out of the table so the same
    seed gives the same table)."""

    table: pd.DataFrame
    plan: SweepPlan
    wall_s: float
    workers: int  # the workers that ran at least one task (0: in this process)
    where: str  # "in-process", "LocalCluster" or the scheduler address
    worker_addresses: list[str] = field(default_factory=list)  # those workers, sorted
    dashboard: str | None = None  # the Dask dashboard's link, when there was one

    @property
    def points_per_s(self) -> float:
        return len(self.plan.points) / self.wall_s if self.wall_s else math.nan

    @property
    def runs_per_s(self) -> float:
        return len(self.table) / self.wall_s if self.wall_s else math.nan


def _dashboard_link(client: Any) -> str | None:
    """The scheduler's dashboard link, or None when it serves none (no bokeh, or disabled)."""
    try:
        return client.dashboard_link or None
    except (KeyError, AttributeError, TypeError):  # no "dashboard" among the scheduler's services
        return None


def run_sweep(plan: SweepPlan, *, workers: int | None = None, scheduler: str | None = None,
              progress: Callable[[int, int], None] | None = None,
              wait_workers_s: float = WAIT_WORKERS_S, dashboard: bool = True,
              notify: Callable[[str], None] | None = None) -> SweepRun:
    """Run every (point, replication): in this process when ``workers == 0``, on an existing
    Dask cluster when ``scheduler`` is given, else on a LocalCluster of ``workers`` processes
    (default: one per core), one thread each (the model is pure Python: threads would
    share the GIL).

    On a scheduler, waits at most ``wait_workers_s`` for a first worker, else a one-line
    :class:`SweepError`. ``dashboard``: a LocalCluster serves Dask's dashboard on a free port,
    and ``notify`` is told its link (or the scheduler's) before the work starts."""
    tasks = plan.tasks()
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    if scheduler is None and workers == 0:
        for i, task in enumerate(tasks):
            rows.append(run_task(task))
            if progress:
                progress(i + 1, len(tasks))
        wall = time.perf_counter() - t0
        return SweepRun(to_table(rows, plan), plan, wall, 0, "in-process")
    require_extra(dask=True)
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as e:
            raise SweepError(f"--scheduler {scheduler}: cannot connect ({str(e).splitlines()[0]})") from None
        where = scheduler
    else:
        n = workers if workers is not None else (os.cpu_count() or 1)
        if n < 0:
            raise SweepError(f"--workers: must be 0 or more, got {n}")
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0" if dashboard else None, silence_logs=50)
        client = Client(cluster)
        where = "LocalCluster"
    ran: set[str] = set()
    try:
        link = _dashboard_link(client) if dashboard else None
        if notify and link:
            notify(f"Dask dashboard: {link}")
        if scheduler is not None:
            try:
                client.wait_for_workers(1, timeout=wait_workers_s)
            except TimeoutError:  # dask's TimeoutError is the builtin's
                raise SweepError(f"--scheduler {scheduler}: no worker joined within {wait_workers_s:g} s "
                                 f"(start one: dask worker {scheduler}; or --wait-workers)") from None
        # imports and topology building once per worker, before the clock starts
        client.run(warm_worker, _distinct(p.topology for p in plan.points))
        t0 = time.perf_counter()  # the cluster is up: time the work, not the start-up
        # longest first (Dask runs tasks in submission order): the last tasks to finish are
        # then short ones, and the workers run out of work at about the same time
        futures = client.map(run_task_on_worker, sorted(tasks, key=expected_work, reverse=True), pure=False)
        for i, fut in enumerate(as_completed(futures)):
            row, address = fut.result()
            rows.append(row)
            ran.add(address)
            if progress:
                progress(i + 1, len(tasks))
        wall = time.perf_counter() - t0
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return SweepRun(to_table(rows, plan), plan, wall, len(ran), where, sorted(ran), link)


def _distinct(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each document once (by content), in first-seen order."""
    seen: dict[str, dict[str, Any]] = {}
    for d in docs:
        seen.setdefault(json.dumps(d, sort_keys=True), d)
    return list(seen.values())


def expected_work(task: tuple[Point, int, int]) -> float:
    """A rough cost of one run for ordering only: client messages x recipients it offers."""
    wl = task[0].scenario["workload"]
    arrival, mix = wl["arrival"], wl["mix"]
    if arrival["process"] == "closed":
        sessions = float(arrival["concurrency"]) * wl["duration_s"] * 100.0  # ~100 sessions/s per client
    elif arrival["process"] == "replay":
        sessions = float(wl["sessions"] or 1)
    else:
        sessions = arrival["rate_per_s"] * wl["duration_s"]
    if wl["sessions"]:
        sessions = min(sessions, wl["sessions"])
    return sessions * mix["messages"] * mix["recipients"]


def warm_worker(topologies: list[dict[str, Any]]) -> int:
    """Build the topologies a sweep uses from their data (run once on each worker; importing
    this module imported the model). No file is read: the worker's directory does not matter."""
    for doc in topologies:
        Topology(TopologySpec.model_validate(doc))
    return os.getpid()


def to_table(rows: list[dict[str, Any]], plan: SweepPlan) -> pd.DataFrame:
    """Rows in design order (point, replication) whatever order they finished in; the
    per-process columns of every era present (NaN where an era has no such process)."""
    rows = sorted(rows, key=lambda r: (r["point"], r["replication"]))
    df = pd.DataFrame.from_records(rows)
    head = ["point", "replication", "seed", *plan.keys]
    fixed = ["era_run", "n_cores", "window_s", "accepted_msg_s", "delivered_msg_s", "latency_mean_s",
             "latency_p99_s", "session_mean_s", "bottleneck", "bottleneck_util", "cores_util"]
    groups = [sorted(c for c in df.columns if c.startswith(p)) for p in ("util.", "idle.", "cpu_ms.")]
    ledger = [f"ledger.{k}" for k in LEDGER_KEYS]
    cols = [*head, *fixed, *(c for g in groups for c in g), *ledger, "config"]
    return df[cols].reset_index(drop=True)


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """The tidy table as Parquet (deterministic: same table, same bytes; pyarrow is the
    ``sweep`` extra)."""
    require_extra(dask=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False, engine="pyarrow", compression="zstd")
    return path


# ---- statistics -----------------------------------------------------------------------------------


def mean_ci(xs: Iterable[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its t-based confidence interval (NaN half-width for
    fewer than two finite values)."""
    iv = mean_interval((float(x) for x in xs if x is not None), level)
    return iv.mean, iv.half_width


SUMMARY_METRICS = ("accepted_msg_s", "delivered_msg_s", "latency_mean_s", "latency_p99_s",
                   "bottleneck_util", "cores_util")


def summarize(df: pd.DataFrame, keys: Sequence[str], level: float = 0.95) -> pd.DataFrame:
    """One row per point: the varied values, n, mean and CI half-width of each metric,
    and the bottleneck process (the most frequent over the replications)."""
    out = []
    for point, g in df.groupby("point", sort=True):
        row: dict[str, Any] = {"point": point, **{k: g[k].iloc[0] for k in keys}, "n": len(g)}
        for m in SUMMARY_METRICS:
            mean, half = mean_ci(g[m], level)
            row[f"{m}_mean"] = mean
            row[f"{m}_ci"] = half
        counts = g["bottleneck"].value_counts()
        top = sorted(counts[counts == counts.max()].index)[0]
        row["bottleneck"] = top
        for c in (c for c in g.columns if c.startswith("util.")):
            row[c] = g[c].mean()
        out.append(row)
    return pd.DataFrame.from_records(out)
