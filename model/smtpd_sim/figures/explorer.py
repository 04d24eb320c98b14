"""The teaching page as one self-contained HTML file: the template, stylesheet and script
under ``figures/explorer_assets/`` with the model's data (``studies.explore``) inlined.

No network, no build step, no CDN: the file opens from disk in any current browser.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

ASSETS = "explorer_assets"
MAX_BYTES = 5_000_000  # issue 20: the page stays under 5 MB


class ExplorerTooLarge(ValueError):
    """The page would pass ``MAX_BYTES``."""


def _asset(name: str) -> str:
    return files("smtpd_sim.figures").joinpath(ASSETS, name).read_text(encoding="utf-8")


def _json_for_script(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``</``, no ``<!--``."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_explorer(data: dict[str, Any]) -> str:
    """The page's HTML: template with the CSS, the JS and the data inlined."""
    html = _asset("explorer.html")
    for slot, text in (("/*STYLE*/", _asset("explorer.css")), ("/*SCRIPT*/", _asset("explorer.js")),
                       ("/*DATA*/", _json_for_script(data))):
        if slot not in html:
            raise ValueError(f"explorer template: no {slot} slot")
        html = html.replace(slot, text, 1)
    size = len(html.encode("utf-8"))
    if size > MAX_BYTES:
        raise ExplorerTooLarge(f"the explorer page would be {size} bytes (at most {MAX_BYTES})")
    return html


def write_explorer(data: dict[str, Any], path: str | Path) -> Path:
    """Write the page to ``path`` (UTF-8); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_explorer(data), encoding="utf-8")
    return out
