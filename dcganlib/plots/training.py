"""Chapter 3's figures: losses and D's accuracy per epoch, the SSIM tracker, the quality figures per epoch
against their real reference, and quality against compute across recipes (:mod:`dcganlib.curves`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from .. import runs
from ..errors import DataError
from .saving import figure_and_axes, legend_outside

def _history_rows(history: str | os.PathLike | Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, float]], str]:
    """Rows of a history — a history.csv path (read by :func:`dcganlib.runs.read_history`) or the rows
    themselves (``TrainResult.history``) — and a name for messages."""
    if isinstance(history, (str, os.PathLike)):
        path = Path(history)
        if not path.is_file():
            raise DataError(f"history file not found: {path} (a run writes history.csv after its first epoch)")
        return runs.read_history(path), str(path)
    return [dict(row) for row in history], "history rows"


def plot_history(history_csv_or_rows: str | os.PathLike | Iterable[Mapping[str, Any]]) -> Figure:
    """Training curves from ``history.csv`` (a path) or a list of per-epoch dicts.

    Panels: ``d_loss`` and ``g_loss``; discriminator accuracy on real (``d_acc_real``) and generated
    (``d_acc_fake``) images; and, when logged, the mean probabilities ``d_real`` = σ(D(x)) and
    ``d_fake`` = σ(D(G(z))). The x-axis is the ``epoch`` column as written (row number + 1 if absent).
    """
    rows, source = _history_rows(history_csv_or_rows)
    if not rows:
        raise DataError(f"{source} holds no epochs yet")
    has = {key for row in rows for key in row}
    missing = [key for key in ("d_loss", "g_loss") if key not in has]
    if missing:
        raise DataError(f"{source} has no {' or '.join(missing)} column; found: {', '.join(sorted(has)) or 'none'}")
    panels = [("losses", ["d_loss", "g_loss"], "loss")]
    if has & {"d_acc_real", "d_acc_fake"}:
        panels.append(("discriminator accuracy", ["d_acc_real", "d_acc_fake"], "accuracy"))
    if has & {"d_real", "d_fake"}:
        panels.append(("mean discriminator output", ["d_real", "d_fake"], "σ(D(·))"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    labels = {"d_loss": "D loss", "g_loss": "G loss", "d_acc_real": "D accuracy, real",
              "d_acc_fake": "D accuracy, generated", "d_real": "σ(D(x)), real", "d_fake": "σ(D(G(z))), generated"}
    for ax, (title, keys, ylabel) in zip(axes[0], panels):
        for key in keys:
            epochs, values = runs.history_column(rows, key)
            if len(values):
                ax.plot(epochs, values, marker="o" if len(values) < 30 else None, markersize=3,
                        label=labels[key])
        if ylabel != "loss":
            ax.set_ylim(-0.02, 1.02)
            ax.axhline(0.5, color="0.7", linewidth=0.8, linestyle="--")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        legend_outside(ax, below=True)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_ssim_over_epochs(history: Any, *, ax: Any = None) -> Figure:
    """``ssim_best_match`` and ``ssim_diversity`` per epoch from a history.csv path or rows (NaN gaps skipped).

    The training tracker's trend on 64 fixed-noise samples — the course projects' "SSIM over epochs" plot,
    not a quality verdict.
    """
    rows, _ = _history_rows(history)
    fig, ax = figure_and_axes(ax, (6, 3.6))
    for key, label in (("ssim_best_match", "best-match SSIM (generated vs real)"),
                       ("ssim_diversity", "diversity: mean pairwise SSIM of generated")):
        epochs, values = runs.history_column(rows, key)
        if values:
            ax.plot(epochs, values, marker="o" if len(values) < 30 else None, markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("SSIM")
    ax.set_title("SSIM during training (tracker: 64 fixed-noise samples)")
    ax.grid(alpha=0.3)
    legend_outside(ax)
    fig.tight_layout()
    return fig


QUALITY_LABELS = {"val_score": "distance to real quality (val_score; 1 = real)",
                  "val_fd": "Fréchet distance (random-CNN)", "val_kid": "KID (random-CNN)",
                  "val_precision": "precision (k=5)", "val_recall": "recall (k=5)",
                  "val_spectrum": "high-frequency spectrum deviation", "val_tissue_w1": "tissue intensity W1"}
#: Figures whose values span decades: drawn on a log axis.
_LOG_FIGURES = ("val_score", "val_fd", "val_kid", "val_spectrum", "val_tissue_w1")


def plot_quality_history(history: str | os.PathLike | Iterable[Mapping[str, Any]],
                         reference: Mapping[str, float], best_epoch: Optional[int] = None) -> Figure:
    """One run's tracked figures (``history.csv``'s ``val_*`` columns) against the epoch, each with its real
    reference (``run.json``'s ``quality.real_reference``) as a dashed line and the best epoch marked."""
    rows, source = _history_rows(history)
    columns = [c for c in QUALITY_LABELS if any(c in row for row in rows)]
    if not columns:
        raise DataError(f"{source} has no quality columns (val_*): the run tracked none (eval_every 0)")
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.2), squeeze=False)
    for ax in axes.ravel()[len(columns):]:
        ax.axis("off")
    for ax, column in zip(axes.ravel(), columns):
        epochs, values = runs.history_column(rows, column)
        ax.plot(epochs, values, color="C0", linewidth=1.2, label="generated (EMA G)")
        if column in reference:
            ax.axhline(reference[column], color="C2", linestyle="--", linewidth=1.2, label="real reference")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="0.5", linestyle=":", linewidth=1, label=f"best epoch ({best_epoch})")
        _quality_axis(ax, column, "epoch", values, reference.get(column))
    _shared_legend(fig, axes[0, 0])
    return fig


def plot_quality_curves(curves: Sequence[Any], *, x: str = "images", budgets: Sequence[int] = ()) -> Figure:
    """Recipes' tracked figures against compute: ``x`` = ``"images"`` (images seen) or ``"seconds"``
    (wall-clock); one colour per recipe, a thin line per seed and a thick one for the mean over seeds
    (on the first seed's grid), the real reference (mean over the runs) dashed, ``budgets`` (images) as
    vertical lines. ``curves`` are :class:`dcganlib.curves.Curve` objects."""
    from ..curves import group_by_recipe

    if x not in ("images", "seconds"):
        raise ValueError(f"x must be 'images' or 'seconds', got {x!r}")
    groups = group_by_recipe(curves)
    fig, axes = plt.subplots(2, 4, figsize=(16, 7), squeeze=False)
    for ax in axes.ravel()[len(QUALITY_LABELS):]:
        ax.axis("off")
    for ax, column in zip(axes.ravel(), QUALITY_LABELS):
        for colour, (recipe, group) in enumerate(groups.items()):
            for curve in group:
                ax.plot(getattr(curve, x), curve.values[column], color=f"C{colour}", linewidth=0.5, alpha=0.5)
            length = min(len(c.values[column]) for c in group)
            mean = np.mean([c.values[column][:length] for c in group], axis=0)
            ax.plot(getattr(group[0], x)[:length], mean, color=f"C{colour}", linewidth=1.6,
                    label=f"{recipe} ({len(group)} seed{'s' if len(group) > 1 else ''})")
        reference = np.mean([c.reference[column] for c in curves])
        ax.axhline(reference, color="black", linestyle="--", linewidth=1.1, label="real reference")
        for budget in budgets if x == "images" else ():
            ax.axvline(budget, color="0.6", linestyle=":", linewidth=1)
        _quality_axis(ax, column, "images seen" if x == "images" else "wall-clock seconds",
                      np.concatenate([c.values[column] for c in curves]), reference)
    _shared_legend(fig, axes[0, 0])
    return fig


def plot_budget_grids(rows: Sequence[Sequence[tuple[str, str | os.PathLike]]]) -> Figure:
    """Image files in a table of panels, one row per recipe, one column per budget, each titled
    (:func:`dcganlib.curves.budget_grids`: the fixed-noise grid exported at each budget)."""
    from PIL import Image

    if not rows:
        raise DataError("no grid to show: no run reached the budgets, or its grids/ are gone")
    columns = max(len(row) for row in rows)
    # about one screen pixel per image pixel at the 150 dpi of save_figure (a 6×6 grid of 64 px images is
    # 384 px): sharper and several times smaller files than a smoothed upsampling
    fig, axes = plt.subplots(len(rows), columns, figsize=(2.8 * columns, 3.0 * len(rows)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, row in enumerate(rows):
        for c, (title, path) in enumerate(row):
            with Image.open(path) as image:
                axes[r, c].imshow(np.asarray(image.convert("L")), cmap="gray", vmin=0, vmax=255,
                                 interpolation="nearest")
            axes[r, c].set_title(title, fontsize="small")
    fig.tight_layout()
    return fig


def _quality_axis(ax: Any, column: str, xlabel: str, values: Any, reference: Optional[float]) -> None:
    """Title, label and scale of one quality panel. Log panels stop at 3× the 90th percentile of the values
    (or of the reference): the first epochs' figures are orders of magnitude off and would flatten the rest."""
    ax.set_title(QUALITY_LABELS[column], fontsize="medium")
    ax.set_xlabel(xlabel)
    if column in _LOG_FIGURES:
        ax.set_yscale("log")
        finite = np.asarray(values, dtype=float)
        finite = finite[np.isfinite(finite) & (finite > 0)]
        tops = [3 * np.percentile(finite, 90)] if len(finite) else []
        tops += [3 * reference] if reference is not None and reference > 0 else []
        if tops:
            ax.set_ylim(top=max(tops))
    else:
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)


def _shared_legend(fig: Figure, ax: Any) -> None:
    """One legend for all panels, below them (never over the data)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), frameon=False, fontsize="small")
