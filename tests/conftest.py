"""Shared fixtures: a fresh kernel for kernel tests; a fake plugin installation.

Before any test imports the model: a compiled hot path older than its sources is dropped
(an edit is never shadowed by old machine code), and ``SMTPD_SIM_PURE=1`` selects the
pure-Python modules (importing the package itself does neither)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from smtpd_sim import native

native.prepare()

from smtpd_sim.kernel.process import Kernel  # noqa: E402
from smtpd_sim.observe.recorder import Recorder  # noqa: E402

# The fault-schedule property (tests/sim/test_faults.py): each example is a small run (15 s
# of arrivals), 200 of them in `make test`; `make soak` (SMTPD_SIM_SOAK=1) runs many more.
settings.register_profile("fault-schedule", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fault-schedule-soak", settings.get_profile("fault-schedule"), max_examples=5000)


@pytest.fixture
def kernel() -> Kernel:
    """Two cores, first come first served, every hop and run recorded."""
    return Kernel(cores=2, policy="fifo", observer=Recorder())


EXAMPLE_PLUGIN = Path(__file__).parent.parent / "extras" / "smtpd-sim-table-example"


@pytest.fixture
def fake_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """``install(name, entry_points_txt)``: what ``pip install`` leaves in site-packages for
    a distribution (a .dist-info with METADATA and entry_points.txt, all importlib.metadata
    reads), in a temporary site directory put on ``sys.path`` together with the example
    plugin's sources. The plugin registries are re-read before and after the test."""
    from smtpd_sim.spec.backends import backends
    from smtpd_sim.spec.plugins import plugin_roles

    site = tmp_path / "site-packages"

    def install(name: str, entry_points: str) -> None:
        d = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
        d.mkdir(parents=True)
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
        (d / "entry_points.txt").write_text(entry_points)
        monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN / "src"))
        monkeypatch.syspath_prepend(str(site))

    backends(refresh=True)
    plugin_roles(refresh=True)
    yield install
    monkeypatch.undo()
    backends(refresh=True)
    plugin_roles(refresh=True)
