"""Scenarios: era + site + calibration + workload + faults + run settings, as one TOML file.

A scenario may reference its workload by name (``workload = "default"``) or inline it
(``[workload]`` table). Everything is validated; the resolved scenario (with the workload,
the topology, the site and the calibration spelled out) is embedded in every result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smtpd_sim.spec.calibration import load_calibration
from smtpd_sim.spec.files import read_toml, validate
from smtpd_sim.sim.faults import Fault
from smtpd_sim.spec.paths import scenario_dir
from smtpd_sim.tables.spec import TableSpec, check_table_names
from smtpd_sim.spec.topology import load_topology
from smtpd_sim.spec.site import load_site
from smtpd_sim.spec.workload import WorkloadSpec, load_workload, parse_workload


class ScenarioError(ValueError):
    """An invalid scenario file (one line)."""


class ScenarioSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "scenario"
    description: str = ""
    era: str = "pony-6.8"
    site: str = "common-case"
    calibration: str = "research-6.8"
    seed: int = 1
    workload: str | WorkloadSpec = "default"
    drain_s: float = Field(default=600.0, ge=0)  # keep simulating after the last arrival
    sample_s: float = Field(default=60.0, gt=0)  # time-series sampling period
    cores: int | None = Field(default=None, ge=1)
    fault: list[Fault] = Field(default_factory=list)
    # [tables.<name>]: the lka's tables (backend, costs) over the site's (model/tables/)
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


def resolve_scenario_path(ref: str | Path) -> Path:
    p = Path(ref)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise ScenarioError(f"{p}: no such scenario file")
        return p
    candidate = scenario_dir() / f"{ref}.toml"
    if not candidate.exists():
        raise ScenarioError(f"{ref}: unknown scenario (no {candidate.name} in the scenarios directory)")
    return candidate


def load_scenario(ref: str | Path) -> ScenarioSpec:
    """Load and validate a scenario; one-line errors name the file and the key."""
    path = resolve_scenario_path(ref)
    data = read_toml(path, "scenario", ScenarioError)
    try:
        spec = validate(ScenarioSpec, data, path, ScenarioError)
    except ScenarioError:
        raise
    except ValueError as e:  # a workload error raised inside the validator
        raise ScenarioError(f"{path}: {e}") from None
    # referenced parts must exist (clear errors now rather than mid-run)
    load_topology(spec.era)
    load_site(spec.site)
    load_calibration(spec.calibration)
    if isinstance(spec.workload, str):
        load_workload(spec.workload)
    return spec


def workload_of(spec: ScenarioSpec) -> WorkloadSpec:
    return spec.workload if isinstance(spec.workload, WorkloadSpec) else load_workload(spec.workload)


def resolved(spec: ScenarioSpec) -> dict[str, Any]:
    """The full configuration a result was produced with (desmod-style)."""
    topo = load_topology(spec.era)
    return {
        "scenario": spec.model_dump(mode="json", exclude={"workload"}),
        "workload": workload_of(spec).model_dump(mode="json"),
        "topology": topo.spec.model_dump(mode="json"),
        "site": load_site(spec.site).spec.model_dump(mode="json"),
        "calibration": load_calibration(spec.calibration).model_dump(mode="json"),
    }
