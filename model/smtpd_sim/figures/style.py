"""What every figure shares: the eras' colours, the processes' colours by user, the MFA's
mark, and writing a figure out (the CLI, the notebooks and the docs use the same)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

ERA_COLORS = {"with-mfa": "#c0504d", "without-mfa": "#f79646", "pony": "#4f81bd", "pony-6.8": "#2c4d75",
              "pony-6.8-filters": "#8064a2"}
MFA_COLOR = "#c0504d"
USER_COLORS = {"root": "#f4cccc", "_smtpq": "#d9ead3"}  # any other user: USER_DEFAULT
USER_DEFAULT = "#cfe2f3"
MFA_HATCH = "//"


def era_color(era: str) -> str:
    """The colour an era has in every figure (grey for an era of the user's own)."""
    return ERA_COLORS.get(era, "#777777")


def save(fig: Figure, path: str | Path) -> Path:
    """Write a figure as PNG (parents created) and close it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax``'s figure and ``ax``, or a new figure of ``figsize`` with one axes."""
    if ax is not None:
        fig = ax.get_figure()
        assert isinstance(fig, Figure)
        return fig, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax
