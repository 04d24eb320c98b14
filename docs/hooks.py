"""MkDocs hooks: pages made from the repository at build time, so they cannot drift.

* ``reference/scenario.md`` is written from ``smtpd_sim.spec.reference.reference_markdown()``
  (every scenario key: type, unit, default, range, description), not kept by hand;
* the notebooks under ``notebooks/`` (outside ``docs/``) are added to the site as they are
  committed, outputs included; mkdocs-jupyter renders them without running them;
* ``explorer.html``, the teaching page, is built by running the model
  (``smtpd_sim.studies.explore`` and ``smtpd_sim.figures.explorer``, what ``smtpd-sim
  explore`` writes) and embedded by ``explorer.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("why-we-killed-mfa.ipynb", "capacity-planning.ipynb", "privsep.ipynb")
SCENARIO_PAGE = "reference/scenario.md"

SCENARIO_INTRO = """\
# Scenario reference

Every key a scenario file (`scenarios/*.toml`) may set, with its type, unit, default and
allowed range. This page is generated at build time from the code that validates scenarios
(`smtpd_sim.spec.reference.reference_markdown()`), so it says what the code accepts.
A key out of range, or one that does not exist, is refused in one line naming the file,
the key, the allowed range and the nearest valid key (exit status 2).

"""


EXPLORER_PAGE = "explorer.html"


def _this_checkout() -> None:
    """Import ``smtpd_sim`` from this checkout (``model/``), whatever else is installed."""
    model = str(ROOT / "model")
    if model not in sys.path:
        sys.path.insert(0, model)
    from smtpd_sim.native import prepare

    prepare()  # as the command does: a compiled module older than its source is never used


def _explorer_html() -> str:
    """The teaching page, built from simulation runs of this checkout's model (four eras)."""
    _this_checkout()
    from smtpd_sim.figures.explorer import render_explorer
    from smtpd_sim.studies.explore import explore_data

    return render_explorer(explore_data())


def _scenario_reference() -> str:
    """The scenario page's Markdown, from this checkout's package (``model/``), whatever
    else is installed: the page describes the code being documented."""
    _this_checkout()
    from smtpd_sim.spec.reference import reference_markdown

    body = reference_markdown().strip() + "\n"
    if body.startswith("# "):  # the function titles its own page
        return body
    return SCENARIO_INTRO + body


# before mkdocs-jupyter's on_files (priority 0), which picks the .ipynb files up
@event_priority(100)
def on_files(files: Files, config: Any) -> Files:
    """Add the generated scenario reference and the committed notebooks to the site."""
    files.append(File.generated(config, SCENARIO_PAGE, content=_scenario_reference()))
    files.append(File.generated(config, EXPLORER_PAGE, content=_explorer_html()))
    for name in NOTEBOOKS:
        src = ROOT / "notebooks" / name
        if not src.is_file():
            raise FileNotFoundError(f"docs: notebook {src.relative_to(ROOT)} is missing")
        # a File rooted at the checkout (not File.generated): mkdocs-jupyter wraps it and
        # finds the notebook through src_dir
        files.append(File(f"notebooks/{name}", src_dir=str(ROOT), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files
