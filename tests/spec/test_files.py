"""Reading and validating the data files: the bounds are where they say (the largest value
passes, the next one does not), messages name the file, the key, the range and the value,
and errors found once the parts are resolved (a crash of a process the era lacks) are one
line too."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtpd_sim.spec.faults import Fault
from smtpd_sim.spec.files import validate
from smtpd_sim.spec.limits import MAX_RATE_PER_S, MAX_SEED, MAX_TIME_S
from smtpd_sim.spec.scenario import ScenarioError, load_scenario, resolve_scenario, scenario_of
from smtpd_sim.spec.workload import WorkloadError, WorkloadSpec


def _scenario(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(("text", "ok"), [
    (f"[workload]\nduration_s = 1\n[workload.arrival]\nrate_per_s = {MAX_RATE_PER_S}\n", True),
    (f"[workload]\nduration_s = 1\n[workload.arrival]\nrate_per_s = {MAX_RATE_PER_S + 1}\n", False),
    (f"seed = {MAX_SEED}\n", True),
    (f"seed = {-1}\n", False),
    (f"drain_s = {MAX_TIME_S}\n", True),
    (f"drain_s = {MAX_TIME_S * 1.01}\n", False),
    ("cores = 1024\n", True),
    ("cores = 1025\n", False),
    ('[[fault]]\nkind = "mx_down"\nduration_s = inf\n', True),  # inf: to the end of the run
    ('[[fault]]\nkind = "mx_down"\nduration_s = -inf\n', False),
])
def test_bounds_are_inclusive_and_finite(tmp_path: Path, text: str, ok: bool) -> None:
    path = _scenario(tmp_path, text)
    if ok:
        load_scenario(path)
    else:
        with pytest.raises(ScenarioError) as e:
            load_scenario(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_range_error_names_the_key_the_value_and_the_range(tmp_path: Path) -> None:
    path = _scenario(tmp_path, "[workload]\nduration_s = 1e12\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert str(e.value) == (f"{path}: workload.duration_s: Input should be less than or equal to 2678400 "
                            "(got 1000000000000.0; allowed: 0 < x <= 2.6784e+06)")


def test_an_unknown_key_names_the_nearest_one() -> None:
    with pytest.raises(WorkloadError) as e:
        validate(WorkloadSpec, {"arrival": {"rate_pers": 5}}, "w.toml", WorkloadError)
    assert str(e.value) == "w.toml: arrival.rate_pers: unknown key (did you mean rate_per_s?)"


def test_the_work_a_workload_offers_is_bounded() -> None:
    WorkloadSpec(duration_s=1000, arrival={"rate_per_s": 1000})  # 10^6 sessions: fine
    with pytest.raises(ValueError, match="recipients offered"):
        WorkloadSpec(duration_s=MAX_TIME_S, arrival={"rate_per_s": 1000})
    # `sessions` caps the arrivals: a high rate over a long window is fine with a cap
    WorkloadSpec(duration_s=MAX_TIME_S, sessions=1000, arrival={"rate_per_s": 1000})


def test_a_crash_of_a_process_the_era_lacks_is_one_line(tmp_path: Path) -> None:
    path = _scenario(tmp_path, 'era = "pony"\n[[fault]]\nkind = "crash"\nprocess = "mfa"\n')
    with pytest.raises(ScenarioError) as e:
        resolve_scenario(path)
    assert str(e.value).startswith(f"{path}: fault[0].process: no child process 'mfa' in era pony")
    # the same from parts (no file): the scenario's name instead
    with pytest.raises(ScenarioError, match="fault\\[0\\].process"):
        scenario_of("pony", faults=[Fault(kind="crash", process="mfa")])
    # and it is a crash of an existing child that passes
    scenario_of("with-mfa", faults=[Fault(kind="crash", process="mfa")])


def test_a_part_error_names_the_scenario_key(tmp_path: Path) -> None:
    path = _scenario(tmp_path, 'site = "mars"\n')
    with pytest.raises(ScenarioError) as e:
        resolve_scenario(path)
    assert str(e.value).startswith(f"{path}: site: mars: unknown site")


def test_a_too_big_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    with path.open("wb") as fh:
        fh.truncate(17 * 1024 * 1024)  # sparse: nothing written
    with pytest.raises(ScenarioError, match="too big for a scenario file"):
        load_scenario(path)
