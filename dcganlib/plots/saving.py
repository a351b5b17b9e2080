"""Writing figures for a report (:func:`save_figure`: PNG ≥ 150 dpi and PDF under stable names), and the
panel helper every ``plot_*`` shares."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from ..files import atomic_path

MIN_DPI = 150


# ------------------------------------------------------------------------------------------------
# saving and panels
def save_figure(fig: Figure, name: str, folder: str | os.PathLike = "images", *, dpi: int = MIN_DPI,
                close: bool = False) -> tuple[Path, Path]:
    """Write ``fig`` as ``folder/name.png`` (``dpi`` ≥ 150) and ``folder/name.pdf``; return both paths.

    File names are exactly ``name`` + suffix so a README can embed them; the PDF carries no creation
    date, so re-running a notebook does not produce a spurious diff. ``close=True`` releases the
    figure (scripts that make many figures); notebooks keep it open to show it.
    """
    stem = name[:-4] if name.lower().endswith((".png", ".pdf")) else name
    if not stem or Path(stem).name != stem:
        raise ValueError(f"figure name must be a plain file name without folders, got {name!r}")
    if dpi < MIN_DPI:
        raise ValueError(f"figures are written at ≥ {MIN_DPI} dpi for reports; got dpi={dpi}")
    folder = Path(folder)
    png, pdf = folder / f"{stem}.png", folder / f"{stem}.pdf"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    with atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
    if close:
        plt.close(fig)
    return png, pdf


def figure_and_axes(ax: Any, figsize: tuple[float, float]) -> tuple[Figure, Any]:
    """``(fig, ax)``: a new figure of ``figsize`` inches when ``ax`` is None, else ``ax`` and its figure
    (so every ``plot_*`` function can draw alone or into a panel of a larger figure)."""
    if ax is None:
        return plt.subplots(figsize=figsize)
    return ax.figure, ax


def legend_outside(ax: Any, *, below: bool = False) -> None:
    """A frameless legend beside the axes (``below``: under its x label, for panels side by side), never over
    the data."""
    if below:
        ax.legend(frameon=False, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), borderaxespad=0)
    else:
        ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
