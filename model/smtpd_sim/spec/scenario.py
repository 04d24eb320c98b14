"""Scenarios: era + site + calibration + workload + faults + run settings, resolved once.

A scenario file (``scenarios/<name>.toml``) names its parts or inlines them (a
``[workload]`` table); :func:`resolve_scenario` loads and validates every part once and
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

from pydantic import Field, field_validator

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.spec.calibration import Calibration, load_calibration
from smtpd_sim.spec.faults import Fault
from smtpd_sim.spec.files import Strict, read_toml, resolve, validate
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


class ScenarioError(SmtpdSimError):
    """An invalid scenario file (one line)."""


class ScenarioSpec(Strict):
    """A scenario file as written: parts by name (or the workload inline)."""

    name: str = "scenario"
    description: str = ""
    era: str = DEFAULT_ERA
    site: str = DEFAULT_SITE
    calibration: str = DEFAULT_CALIBRATION
    seed: int = 1
    workload: str | WorkloadSpec = DEFAULT_WORKLOAD
    drain_s: float = Field(default=600.0, ge=0)  # keep simulating after the last arrival
    sample_s: float = Field(default=60.0, gt=0)  # time-series sampling period
    cores: int | None = Field(default=None, ge=1)
    fault: list[Fault] = Field(default_factory=list)
    # [tables.<name>]: the lka's tables (backend, costs) over the site's (spec/tables.py)
    tables: dict[str, TableSpec] = Field(default_factory=dict)

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
            scen = self.spec.model_dump(mode="json", exclude={"workload"})
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


def load_scenario(ref: str | Path) -> ScenarioSpec:
    """Read and validate a scenario file (its parts are not loaded: :func:`resolve_scenario`)."""
    path = scenario_path(ref)
    data = read_toml(path, "scenario", ScenarioError)
    return validate(ScenarioSpec, data, path, ScenarioError)


def resolve_scenario(ref: str | Path | ScenarioSpec) -> Scenario:
    """Load a scenario and every part it names, once; one-line errors name the file and the key."""
    spec = ref if isinstance(ref, ScenarioSpec) else load_scenario(ref)
    site = load_site(spec.site)
    workload = spec.workload if isinstance(spec.workload, WorkloadSpec) else load_workload(spec.workload)
    return Scenario(
        name=spec.name, topology=load_topology(spec.era), calibration=load_calibration(spec.calibration),
        site=site, workload=workload, seed=spec.seed, cores=spec.cores,
        tables=merge_tables(site.tables, dict(spec.tables)), faults=tuple(spec.fault),
        drain_s=spec.drain_s, sample_s=spec.sample_s, spec=spec)


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
    return Scenario(
        name=name or (wl.name if wl is not None else topo.name), topology=topo, calibration=cal,
        site=site_spec, workload=wl, seed=seed, cores=cores,
        tables=merge_tables(site_spec.tables, dict(tables or {})), faults=tuple(faults))
