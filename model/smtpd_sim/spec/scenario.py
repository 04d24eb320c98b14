"""Scenarios: era + site + calibration + workload + faults + run settings, resolved once.

A scenario file (``scenarios/<name>.toml``) names its parts or inlines them (a
``[workload]``, ``[site]`` or ``[calibration]`` table); a part named by a relative file
name is found next to the scenario file, whatever the current directory; :func:`resolve_scenario` loads and validates every part once and
returns a :class:`Scenario`, the object everything downstream takes (the simulation,
the runner, the studies). Code that builds a run from parts calls :func:`scenario_of`,
where the defaults are written once. The resolved configuration (every part spelled
out) is embedded in every result (:meth:`Scenario.config`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.spec.calibration import Calibration, load_calibration
from smtpd_sim.spec.faults import Fault
from smtpd_sim.spec.files import (
    Strict,
    read_toml,
    rebase_paths,
    relative_to,
    resolve,
    validate,
)
from smtpd_sim.spec.limits import MAX_CORES, MAX_SAMPLES, MAX_SEED, MAX_TIME_S
from smtpd_sim.spec.site import SiteSpec, load_site
from smtpd_sim.spec.tables import TableSpec, check_table_names, merge_tables
from smtpd_sim.spec.topology import Topology, load_topology
from smtpd_sim.spec.workload import WorkloadSpec, load_workload, parse_workload

# The defaults, written once: the era checked against the real daemon, the research's
# common-case site, the calibration measured on the real 6.8.0p2, the default workload.
DEFAULT_ERA = "pony-6.8"
DEFAULT_SITE = "common-case"
DEFAULT_CALIBRATION = "research-6.8"
DEFAULT_WORKLOAD = "default"
# The site the real 6.8.0p2 traces were taken with (research/real-traces/smtpd.conf): what
# the live server, the validation and the calibration against the real daemon use.
RESEARCH_SITE = "research"
# A closed loop's clients reconnect as soon as a session ends; the client <-> daemon
# latency is what makes a session take simulated time (1 ns: well above a double's
# resolution, 0.5 ns, at MAX_TIME_S).
MIN_CLOSED_LOOP_LATENCY_S = 1e-9


class ScenarioError(SmtpdSimError):
    """An invalid scenario file (one line)."""


class ScenarioSpec(Strict):
    """A scenario file as written: parts by name or file, or inline (``--set`` on a part's
    key inlines it: spec/overrides.py)."""

    name: str = Field(default="scenario", description="the scenario's name; also its results directory's "
                      "(results/<name>-<seed>)")
    description: str = Field(default="", description="one line saying what the scenario studies "
                             "(`smtpd-sim scenarios` shows it)")
    era: str = Field(default=DEFAULT_ERA, description="the daemon's process layout: an era name "
                     "(scenarios/topologies/<name>.toml, see section topology) or a .toml file")
    site: str | SiteSpec = Field(default=DEFAULT_SITE, description="smtpd.conf, users, aliases and DNS: a site name "
                      "(scenarios/sites/<name>.toml, see section site) or a .toml file, or an inline [site] table")
    calibration: str | Calibration = Field(default=DEFAULT_CALIBRATION, description="CPU costs and latencies: a calibration "
                             "name (scenarios/calibration/<name>.toml, see section calibration), a .toml file, or an inline [calibration] table")
    seed: int = Field(default=1, ge=0, le=MAX_SEED, description="random seed (same seed, same bytes)",
                      json_schema_extra={"unit": "-"})
    workload: str | WorkloadSpec = Field(default=DEFAULT_WORKLOAD, description="what the clients do: a workload "
                                         "name (scenarios/workloads/<name>.toml), a .toml file, or an inline "
                                         "[workload] table (see section workload)")
    drain_s: float = Field(default=600.0, ge=0, le=MAX_TIME_S,
                           description="keep simulating this long after the last arrival (queued mail, retries)")
    sample_s: float = Field(default=60.0, gt=0, le=MAX_TIME_S, description="time-series sampling period")
    cores: int | None = Field(default=None, ge=1, le=MAX_CORES, description="CPU cores of the simulated host "
                              "(unset: the calibration's cores)", json_schema_extra={"unit": "cores"})
    fault: list[Fault] = Field(default_factory=list, description="[[fault]] tables: faults injected at times or "
                               "with rates (see section fault)")
    # [tables.<name>]: the lka's tables (backend, costs) over the site's (spec/tables.py)
    tables: dict[str, TableSpec] = Field(default_factory=dict, description="[tables.<name>]: the lka's tables "
                                         "(backend, lookup costs), field by field over the site's (see section "
                                         "tables)")
    _source: str = PrivateAttr(default="")  # the file it was read from (for errors found later)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip(" .") or any(c in v for c in "/\\\0"):
            raise ValueError(f"{v!r}: a scenario name names its results directory: "
                             "no '/', '\\' or NUL, not empty or only dots")
        return v

    @field_validator("workload", mode="before")
    @classmethod
    def _workload(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return parse_workload(v, "workload")
        return v

    @field_validator("tables")
    @classmethod
    def _tables(cls, v: dict[str, TableSpec]) -> dict[str, TableSpec]:
        return check_table_names(v)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A scenario resolved once: every part loaded and validated, the defaults filled in.

    ``tables``: the site's tables with the scenario's fields on top. ``cores`` None: the
    calibration's. ``spec``: the document it was resolved from (its names, for
    :meth:`config`)."""

    name: str
    topology: Topology
    calibration: Calibration
    site: SiteSpec
    workload: WorkloadSpec | None = None
    seed: int = 1
    cores: int | None = None
    tables: Mapping[str, TableSpec] = dataclasses.field(default_factory=dict)
    faults: tuple[Fault, ...] = ()
    drain_s: float = 600.0
    sample_s: float = 60.0
    spec: ScenarioSpec | None = None

    @property
    def era(self) -> str:
        return self.topology.name

    def replace(self, **changes: Any) -> Scenario:
        """A copy with some fields changed (``seed=2``, ``workload=...``)."""
        return dataclasses.replace(self, **changes)

    def config(self) -> dict[str, Any]:
        """The full configuration a result was produced with (desmod-style)."""
        if self.spec is not None:
            # parts inline (a table, or a --set key in them): their data are their own sections below
            inline = {k for k in ("site", "calibration") if not isinstance(getattr(self.spec, k), str)}
            scen = self.spec.model_dump(mode="json", exclude={"workload", *inline})
        else:
            # built from parts (scenario_of): the site was given as data, it has no name
            scen = {"name": self.name, "era": self.era, "site": None, "calibration": self.calibration.name,
                    "seed": self.seed, "cores": self.cores}
        return {
            "scenario": scen,
            "workload": self.workload.model_dump(mode="json") if self.workload is not None else None,
            "topology": self.topology.spec.model_dump(mode="json"),
            "site": self.site.model_dump(mode="json"),
            "calibration": self.calibration.model_dump(mode="json"),
        }


def scenario_path(ref: str | Path) -> Path:
    """The file of a scenario given by name (``scenarios/<name>.toml``) or path."""
    return resolve(ref, "scenario", ScenarioError, lambda r, c: (
        f"{r}: unknown scenario (no {c.name} in the scenarios directory)"))


# The parts a scenario may inline, and their models (for errors naming <part>.<key>).
INLINE_PARTS: dict[str, type[Strict]] = {"workload": WorkloadSpec, "site": SiteSpec, "calibration": Calibration}


def load_scenario(ref: str | Path) -> ScenarioSpec:
    """Read and validate a scenario file (its parts are not loaded: :func:`resolve_scenario`).
    The files it names (parts, an inline workload's replay CSV) are relative to its directory:
    they are rewritten here so that they open from the current directory."""
    path = scenario_path(ref)
    data = read_toml(path, "scenario", ScenarioError)
    for key in ("era", *INLINE_PARTS):
        if key in data:
            data[key] = relative_to(data[key], path.parent)
    if isinstance(data.get("workload"), dict):
        rebase_paths(data["workload"], "workload", path.parent)
    for key, model in INLINE_PARTS.items():
        if isinstance(data.get(key), dict):  # errors inside it name the file and <part>.<key>
            validate(model, data[key], path, ScenarioError, prefix=f"{key}.")
    spec = validate(ScenarioSpec, data, path, ScenarioError)
    spec._source = str(path)
    return spec


def check_scenario(scen: Scenario, where: str | Path) -> Scenario:
    """What only the resolved parts can tell: each crash fault names a child process of
    the era, an ``agent_tempfail`` user is a user of the site, a closed loop's sessions take
    simulated time, and the run's time series stays finite. Errors are one-line
    :class:`ScenarioError` naming ``where`` and the key."""
    procs = [p for p in scen.topology.processes if p != "parent"]
    users = [u.name for u in scen.site.user]
    for i, f in enumerate(scen.faults):
        if f.kind == "crash" and f.process not in procs:
            raise ScenarioError(f"{where}: fault[{i}].process: no child process {f.process!r} in era "
                                f"{scen.era} (expected one of {', '.join(procs)})")
        if f.kind == "agent_tempfail" and f.user and f.user not in users:
            raise ScenarioError(f"{where}: fault[{i}].user: {f.user!r} is not a user of the site "
                                f"(expected one of {', '.join(users)}, or no user for everyone)")
    if scen.workload is not None and scen.workload.arrival.process == "closed" \
            and scen.calibration.world.net_latency_s < MIN_CLOSED_LOOP_LATENCY_S:
        # measured: with every latency 0 a closed-loop session takes no simulated time, the
        # clients reconnect at the same instant forever and the run never ends (and a latency
        # below a float's resolution at a month of simulated time is the same as 0)
        raise ScenarioError(f"{where}: workload.arrival.process = 'closed' needs calibration "
                            f"{scen.calibration.name}'s world.net_latency_s >= {MIN_CLOSED_LOOP_LATENCY_S:g} "
                            f"(got {scen.calibration.world.net_latency_s:g}): a session must take time")
    if scen.workload is not None:
        samples = (scen.workload.duration_s + scen.drain_s) / scen.sample_s
        if samples > MAX_SAMPLES:
            raise ScenarioError(f"{where}: sample_s: {scen.sample_s:g} s gives {samples:.3g} samples over "
                                f"workload.duration_s + drain_s; at most {MAX_SAMPLES:.0e} (raise sample_s)")
    return scen


def resolve_scenario(ref: str | Path | ScenarioSpec) -> Scenario:
    """Load a scenario and every part it names, once; one-line errors name the file and the key."""
    spec = ref if isinstance(ref, ScenarioSpec) else load_scenario(ref)
    where = spec._source or spec.name

    def part(key: str, load: Any, value: Any) -> Any:
        try:
            return load(value)
        except SmtpdSimError as e:  # the scenario's file and key first, then what the part says
            raise ScenarioError(f"{where}: {key}: {str(e).splitlines()[0]}") from None

    site = spec.site if isinstance(spec.site, SiteSpec) else part("site", load_site, spec.site)
    cal = spec.calibration if isinstance(spec.calibration, Calibration) else part(
        "calibration", load_calibration, spec.calibration)
    workload = spec.workload if isinstance(spec.workload, WorkloadSpec) else part("workload", load_workload,
                                                                                  spec.workload)
    return check_scenario(Scenario(
        name=spec.name, topology=part("era", load_topology, spec.era),
        calibration=cal,
        site=site, workload=workload, seed=spec.seed, cores=spec.cores,
        tables=part("tables", lambda t: merge_tables(site.tables, t), dict(spec.tables)),
        faults=tuple(spec.fault), drain_s=spec.drain_s, sample_s=spec.sample_s, spec=spec), where)


def scenario_of(
    era: str | Path | Topology = DEFAULT_ERA,
    *,
    workload: str | Path | WorkloadSpec | None = None,
    calibration: str | Path | Calibration = DEFAULT_CALIBRATION,
    site: str | Path | SiteSpec = DEFAULT_SITE,
    seed: int = 1,
    cores: int | None = None,
    tables: Mapping[str, TableSpec] | None = None,
    faults: Sequence[Fault] = (),
    name: str | None = None,
) -> Scenario:
    """A scenario from parts, each a name, a path or an object (no file of its own)."""
    topo = era if isinstance(era, Topology) else load_topology(era)
    cal = calibration if isinstance(calibration, Calibration) else load_calibration(calibration)
    site_spec = site if isinstance(site, SiteSpec) else load_site(site)
    wl = workload if workload is None or isinstance(workload, WorkloadSpec) else load_workload(workload)
    scen = Scenario(
        name=name or (wl.name if wl is not None else topo.name), topology=topo, calibration=cal,
        site=site_spec, workload=wl, seed=seed, cores=cores,
        tables=merge_tables(site_spec.tables, dict(tables or {})), faults=tuple(faults))
    return check_scenario(scen, scen.name)
