"""Every matplotlib figure: data, models, training curves and the evaluation — and :func:`save_figure`.

Figures are made through ``pyplot`` so notebooks show them inline; :func:`save_figure` writes them to
``images/`` as PNG (≥ 150 dpi) and PDF under stable names. Every ``plot_*`` that draws one panel takes
``ax=`` to draw into a panel of a larger figure. Without a display (a cluster node, CI) matplotlib is
switched to the non-interactive Agg backend. Images are float ``[-1, 1]`` or uint8 ``[0, 255]``
(:mod:`dcganlib.pixels`); grids come from :mod:`dcganlib.images`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import matplotlib

# Pick Agg before pyplot loads when nothing can show a window; notebooks (ipykernel sets
# MPLBACKEND) and desktops keep their own backend.
if (
    sys.platform.startswith("linux")
    and not os.environ.get("MPLBACKEND")
    and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    and "ipykernel" not in sys.modules
):
    matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from . import runs, seeds  # noqa: E402
from .errors import DataError  # noqa: E402
from .files import atomic_path  # noqa: E402
from .images import images_to_grid  # noqa: E402
from .pixels import as_float_images, as_uint8_images, to_float  # noqa: E402

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



# ------------------------------------------------------------------------------------------------
# data
def plot_sample_grid(images: Any, title: Optional[str] = None, *, rows: Optional[int] = None,
                     ax: Any = None) -> Figure:
    """Show :func:`images_to_grid` of ``images`` (``[-1, 1]`` floats or uint8) without axes."""
    grid = images_to_grid(images, rows=rows)
    scale = 6.0 / max(grid.shape[:2])
    fig, ax = figure_and_axes(ax, (grid.shape[1] * scale, grid.shape[0] * scale + (0.4 if title else 0)))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def plot_image_histograms(images_by_name: Mapping[str, Any], *, bins: int = 64, log: bool = True,
                          ax: Any = None) -> Figure:
    """Overlaid intensity histograms (0–255 scale, density) of several image sets, e.g. per split.

    ``images_by_name``: ``{"train": uint8 or [-1, 1] array, …}``. A log y-axis (default) keeps the
    brain's intensities visible next to the large black background peak.
    """
    if not images_by_name:
        raise ValueError("no image sets given for the histogram")
    fig, ax = figure_and_axes(ax, (6, 3.5))
    edges = np.linspace(0, 256, bins + 1)
    for name, images in images_by_name.items():
        values = as_uint8_images(images).ravel()
        ax.hist(values, bins=edges, density=True, histtype="step", linewidth=1.5, log=log,
                label=f"{name} (n={len(np.asarray(images))})")
    ax.set_xlabel("pixel intensity (0–255)")
    ax.set_ylabel("density")
    ax.set_xlim(0, 256)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_data_survey(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Stored image sizes and slice positions of a :func:`dcganlib.data.survey_files` listing.

    Left: number of files per stored size ``W×H`` (the 12 most common; files without a size, such as
    NIfTI, are counted as "volume / array"). Right: for each split (rows), the share of its files at
    each ``slice_N`` number (columns), so splits that cover different anatomy stand out; files whose
    names carry no slice number are left out and counted in the title.
    """
    if not rows:
        raise DataError("no files to summarise: the survey is empty")
    sizes: dict[str, int] = {}
    for row in rows:
        key = f"{row['width']}×{row['height']}" if row.get("width") else "volume / array"
        sizes[key] = sizes.get(key, 0) + 1
    common = sorted(sizes.items(), key=lambda item: -item[1])[:12]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={"width_ratios": [1, 2.2]})
    bars = left.barh([name for name, _ in common][::-1], [count for _, count in common][::-1], color="tab:gray")
    left.bar_label(bars, padding=2, fontsize="small")
    left.set_xlabel("files")
    left.set_title(f"stored image sizes ({len(rows)} files)", fontsize=10)
    numbered = [row for row in rows if row.get("slice") is not None]
    if numbered:
        splits = sorted({row["split"] for row in numbered}, key=["train", "validate", "test", ""].index)
        top = max(row["slice"] for row in numbered)
        share = np.zeros((len(splits), top + 1))
        for row in numbered:
            share[splits.index(row["split"]), row["slice"]] += 1
        counts = share.sum(axis=1)
        share /= counts[:, None]
        image = right.imshow(share, aspect="auto", cmap="viridis", vmin=0, interpolation="nearest",
                             extent=(-0.5, top + 0.5, len(splits) - 0.5, -0.5))
        right.set_yticks(range(len(splits)), [f"{s or 'all'} ({int(n)})" for s, n in zip(splits, counts)])
        fig.colorbar(image, ax=right, label="share of the split's files", pad=0.01)
    right.set_xlabel("slice number in the file name (position in the volume)")
    right.set_title(f"slice positions per split ({len(rows) - len(numbered)} files without a number)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_preprocessing(raw: Any, processed: Any, *, name: str = "") -> Figure:
    """Before/after panel of the data pipeline for one slice.

    ``raw``: the stored pixels (``(H, W)`` or ``(H, W, C)``, any dtype, shown with its own range);
    ``processed``: the same slice after :func:`dcganlib.data.decode_file` (uint8 ``(S, S[, C])``). Panels:
    the stored image, the resized and padded uint8 image, and the histogram of the network's input
    ``x = u8 / 127.5 − 1`` in ``[-1, 1]``.
    """
    raw = np.asarray(raw)
    processed = np.asarray(processed)
    if processed.ndim == 3 and processed.shape[-1] == 1:
        processed = processed[..., 0]
    if raw.ndim == 3 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    if processed.dtype != np.uint8 or processed.ndim not in (2, 3):
        raise ValueError(f"processed must be one uint8 image (S, S) or (S, S, C); got {processed.dtype} {processed.shape}")
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1, 1.3]})
    gray = "gray" if raw.ndim == 2 else None
    axes[0].imshow(raw, cmap=gray, interpolation="nearest")
    axes[0].set_title(f"stored{(' ' + name) if name else ''}: {raw.shape[1]}×{raw.shape[0]} {raw.dtype}",
                      fontsize=9)
    axes[1].imshow(processed, cmap="gray" if processed.ndim == 2 else None, vmin=0, vmax=255,
                   interpolation="nearest")
    axes[1].set_title(f"resized + padded: {processed.shape[1]}×{processed.shape[0]} uint8", fontsize=9)
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    scaled = to_float(processed)
    axes[2].hist(scaled.ravel(), bins=np.linspace(-1, 1, 65), color="tab:blue", log=True)
    axes[2].set_xlim(-1.05, 1.05)
    axes[2].set_xlabel("network input x = u8 / 127.5 − 1")
    axes[2].set_ylabel("pixels (log)")
    axes[2].set_title(f"input range [{scaled.min():.2f}, {scaled.max():.2f}]", fontsize=9)
    fig.tight_layout()
    return fig



# ------------------------------------------------------------------------------------------------
# training
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
        ax.legend(frameon=False, fontsize="small")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# model diagrams
_SHORT_TYPES = {
    "BatchNormalization": "BatchNorm",
    "Conv2DTranspose": "ConvTranspose",
    "UpSampling2D": "UpSample",
    "InputLayer": "Input",
}
_COLOURS = {
    "Input": "#e8e8e8", "Dense": "#f4c27a", "Conv2D": "#8ec5e8", "ConvTranspose": "#a6d99b",
    "UpSample": "#c9b6e4", "BatchNorm": "#f2e394", "Dropout": "#dddddd", "Reshape": "#eeeeee",
    "Flatten": "#eeeeee",
}


def _output_shape(layer: Any) -> tuple:
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):  # layers not yet called, or with several outputs
        return tuple(getattr(layer, "output_shape", ()) or ())


def model_summary_table(model: Any) -> list[dict[str, Any]]:
    """One row per layer: ``{"name", "type", "output_shape", "params"}``.

    ``output_shape`` has ``None`` for the batch axis; ``params`` counts every weight including batch
    norms' moving statistics, so the rows sum to ``model.count_params()``.
    """
    return [
        {
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": _output_shape(layer),
            "params": int(layer.count_params()) if layer.weights else 0,
        }
        for layer in model.layers
    ]


def _blocks(table: list[dict[str, Any]], group: bool) -> list[dict[str, Any]]:
    # Layers named "<block>_<part>" (the dcganlib models: block1_convT, block1_bn, block1_relu) are
    # drawn as one box; anything else gets its own box.
    blocks: list[dict[str, Any]] = []
    for row in table:
        key = row["name"].split("_")[0] if group else row["name"]
        kind = _SHORT_TYPES.get(row["type"], row["type"])
        if blocks and blocks[-1]["key"] == key:
            block = blocks[-1]
            block["types"].append(kind)
            block["params"] += row["params"]
            block["output_shape"] = row["output_shape"]
        else:
            blocks.append({"key": key, "types": [kind], "params": row["params"],
                           "output_shape": row["output_shape"]})
    return blocks


def _shape_text(shape: tuple) -> str:
    dims = [d for d in shape[1:]] if shape and shape[0] is None else list(shape)
    return " × ".join(str(d) for d in dims) if dims else "?"


def plot_model_diagram(model: Any, *, ax: Any = None, group: bool = True, title: Optional[str] = None) -> Figure:
    """Draw a Keras model's layer stack as boxes, input at the top (no pydot or Graphviz needed).

    Each box shows the block name, its layer types, its output shape (without the batch axis) and its
    parameter count; the title gives the total (``model.count_params()``). With ``group=True`` layers
    sharing a ``"<block>_"`` name prefix are merged into one box. Pass ``ax`` to draw two models side
    by side.
    """
    blocks = _blocks(model_summary_table(model), group)
    n = len(blocks)
    fig, ax = figure_and_axes(ax, (6.4, 0.62 * n + 0.9))
    ax.set_xlim(0, 1)
    ax.set_ylim(n, -0.2)
    ax.set_axis_off()
    box_height = 0.72
    for i, block in enumerate(blocks):
        main = next((t for t in block["types"] if t in _COLOURS and t not in ("BatchNorm", "Dropout")),
                    block["types"][0])
        ax.add_patch(FancyBboxPatch((0.02, i + (1 - box_height) / 2), 0.96, box_height,
                                    boxstyle="round,pad=0,rounding_size=0.08", linewidth=0.8,
                                    edgecolor="0.35", facecolor=_COLOURS.get(main, "#f7f7f7")))
        centre = i + 0.5
        ax.text(0.05, centre - 0.13, block["key"], fontsize=9, fontweight="bold", va="center")
        ax.text(0.05, centre + 0.17, " → ".join(block["types"]), fontsize=7.5, va="center", color="0.2")
        ax.text(0.70, centre, _shape_text(block["output_shape"]), fontsize=8.5, va="center", ha="right",
                family="monospace")
        ax.text(0.96, centre, f"{block['params']:,}" if block["params"] else "–", fontsize=8.5,
                va="center", ha="right", family="monospace")
        if i:
            ax.annotate("", xy=(0.5, i + (1 - box_height) / 2), xytext=(0.5, i - (1 - box_height) / 2),
                        arrowprops=dict(arrowstyle="->", color="0.4", linewidth=0.8))
    ax.text(0.70, -0.08, "output shape", fontsize=7.5, ha="right", color="0.35")
    ax.text(0.96, -0.08, "parameters", fontsize=7.5, ha="right", color="0.35")
    total = int(model.count_params())
    ax.set_title(f"{title or model.name} — {total:,} parameters", fontsize=10)
    if ax is fig.axes[0] and len(fig.axes) == 1:
        fig.tight_layout()
    return fig



# ------------------------------------------------------------------------------------------------
# evaluation
_GENERATED, _REAL_REFERENCE, _REFERENCE = "tab:orange", "tab:blue", "0.35"
_SETS = (("reference", "held-out real", _REFERENCE, "-"),
         ("stand_in", "real reference (unseen subjects)", _REAL_REFERENCE, "--"),
         ("generated", "generated", _GENERATED, "-"))


def _labelled(fig: Figure, ax: Any, xlabel: str, ylabel: str, title: str) -> Figure:
    """Axis labels, title and a frameless legend; the tightened figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def plot_ssim_histograms(generated_scores: Any, real_scores: Any, *, ax: Any = None) -> Figure:
    """Histograms of best-match SSIM against the reference set: generated vs the real reference (real
    images of unseen subjects in the generated images' place), means dashed."""
    fig, ax = figure_and_axes(ax, (6, 3.6))
    generated_scores, real_scores = np.asarray(generated_scores), np.asarray(real_scores)
    values = np.concatenate([generated_scores, real_scores])
    bins = np.linspace(min(0.0, float(values.min())), 1.0, 41)
    for scores, label, colour in ((real_scores, "real reference (unseen subjects)", _REAL_REFERENCE),
                                  (generated_scores, "generated", _GENERATED)):
        ax.hist(scores, bins=bins, density=True, alpha=0.5, color=colour,
                label=f"{label}: mean {scores.mean():.3f} (n={len(scores)})")
        ax.axvline(scores.mean(), color=colour, linestyle="--", linewidth=1)
    return _labelled(fig, ax, "best-match SSIM against the reference set", "density",
                     "Best-match SSIM (Wang et al. 2004, data range 2)")


def plot_diversity(values: Mapping[str, float], *, ax: Any = None) -> Figure:
    """Bars of mean pairwise SSIM per set, e.g. ``{"real reference": 0.31, "generated": 0.45}`` (lower = more diverse)."""
    fig, ax = figure_and_axes(ax, (5, 3.4))
    names = list(values)
    heights = [values[name] for name in names]
    colours = [_GENERATED if name == "generated" else _REAL_REFERENCE if name == "real reference" else _REFERENCE
               for name in names]
    bars = ax.bar(names, heights, color=colours)
    for bar, height in zip(bars, heights):
        ax.annotate(f"{height:.3f}", (bar.get_x() + bar.get_width() / 2, height), ha="center", va="bottom")
    ax.set_ylabel("mean pairwise SSIM")
    ax.set_ylim(0, max(1.0, max(heights) * 1.1))
    ax.set_title("Diversity (lower = more diverse)")
    fig.tight_layout()
    return fig


def plot_roc(tests: Mapping[str, Mapping[str, Any]], *, ax: Any = None) -> Figure:
    """ROC curves of the two-sample classifier: ``{"generated": test, "real_reference": test}`` (results of
    :func:`dcganlib.metrics.two_sample.two_sample_test`), chance dashed."""
    fig, ax = figure_and_axes(ax, (4.6, 4.4))
    for name, label, colour in (("real_reference", "real vs real (reference)", _REAL_REFERENCE),
                                ("generated", "real vs generated", _GENERATED)):
        if name not in tests:
            continue
        test = tests[name]
        low, high = test["auc_ci95"]
        ax.plot(test["roc"]["fpr"], test["roc"]["tpr"], color=colour,
                label=f"{label}: AUC {test['auc']:.3f} ({low:.2f}–{high:.2f}), accuracy {test['accuracy']:.3f}")
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="indistinguishable")
    ax.set_xlabel("false-positive rate (candidate called real)")
    ax.set_ylabel("true-positive rate (real called real)")
    ax.set_title("Two-sample classifier test (held-out images)", fontsize=10)
    ax.set_aspect("equal")
    ax.legend(frameon=False, fontsize="x-small", loc="lower right")
    fig.tight_layout()
    return fig


def plot_power_spectra(spectra: Mapping[str, np.ndarray], *, ax: Any = None) -> Figure:
    """Radially averaged power spectra (log scale) of the reference, the real reference (stand-in) and the
    generated images; the upper half of the frequencies, where the deviation is measured, shaded."""
    fig, ax = figure_and_axes(ax, (6, 3.8))
    for name, label, colour, style in _SETS:
        spectrum = np.asarray(spectra[name])
        ax.semilogy(np.arange(1, len(spectrum) + 1), spectrum, style, color=colour, label=label)
    top = len(np.asarray(spectra["reference"]))
    ax.axvspan(top // 2 + 1, top, color="0.9", zorder=0, label="measured: upper half")
    return _labelled(fig, ax, "spatial frequency (cycles per image)", "mean power", "Radially averaged power spectrum")


def plot_tissue_intensity(histograms: Mapping[str, np.ndarray], *, ax: Any = None) -> Figure:
    """Grey-level distributions inside tissue (pixels above 5 % of the range) of the reference, the real
    reference (stand-in) and the generated images; a set whose histogram is None has no tissue and is only
    named in the legend."""
    fig, ax = figure_and_axes(ax, (6, 3.6))
    levels = np.arange(256)
    for name, label, colour, style in _SETS:
        if histograms[name] is None:  # a set without tissue (all black): named in the legend, nothing to draw
            ax.plot([], [], style, color=colour, label=f"{label}: no tissue")
            continue
        ax.plot(levels, np.asarray(histograms[name]), style, color=colour, label=label, linewidth=1.2)
    ax.set_xlim(0, 255)
    return _labelled(fig, ax, "grey level (0–255)", "share of tissue pixels", "Intensities inside tissue")


def plot_feature_metrics(feature_metrics: Mapping[str, Any], *, ax: Any = None) -> Figure:
    """Precision, recall, density and coverage in the random-CNN feature space: generated beside the real
    reference (real images of unseen subjects in their place)."""
    fig, ax = figure_and_axes(ax, (6, 3.6))
    keys = ["precision", "recall", "density", "coverage"]
    x = np.arange(len(keys))
    for offset, (name, label, colour) in zip((-0.2, 0.2), (("real_reference", "real reference", _REAL_REFERENCE),
                                                          ("generated", "generated", _GENERATED))):
        heights = [feature_metrics[name][key] for key in keys]
        bars = ax.bar(x + offset, heights, width=0.38, color=colour, label=label)
        for bar, height in zip(bars, heights):
            ax.annotate(f"{height:.2f}", (bar.get_x() + bar.get_width() / 2, height), ha="center", va="bottom",
                        fontsize=8)
    ax.set_xticks(x, keys)
    ax.set_ylim(0, max(1.15, max(feature_metrics[n][k] for n in ("generated", "real_reference") for k in keys) * 1.15))
    ax.set_title(f"Fidelity and diversity in the {feature_metrics.get('space', 'feature')} space (k = 5)", fontsize=10)
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def plot_closest_pairs(generated: Any, train: Any, memorisation: Mapping[str, Any], count: int = 8) -> Figure:
    """The ``count`` generated images nearest (L2) to a training image (top row) above that training
    image (bottom row), each titled with its L2 and SSIM — copies would look identical.
    ``memorisation`` is a :func:`dcganlib.metrics.memorisation.memorisation_check` result for ``generated``."""
    from .metrics.ssim import ssim

    generated = as_float_images(generated, "generated")
    train = as_float_images(train, "train")
    nearest = memorisation["candidate_nearest"]
    order = np.argsort(nearest["l2"])[:count]
    fig, axes = plt.subplots(2, len(order), figsize=(1.6 * len(order), 3.7), squeeze=False)
    for column, index in enumerate(order):
        partner = int(nearest["l2_index"][index])
        score = ssim(generated[index:index + 1], train[partner:partner + 1])[0]
        pair = ((generated[index], f"gen {index}\nL2 {nearest['l2'][index]:.3f}"),
                (train[partner], f"train {partner}\nSSIM {score:.3f}"))
        for row, (image, title) in enumerate(pair):
            ax = axes[row, column]
            if image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            else:
                ax.imshow((image + 1) / 2, interpolation="nearest")
            ax.set_title(title, fontsize=7)
            ax.set_axis_off()
    threshold = memorisation["l2_threshold"]
    fig.suptitle(f"Generated images closest to a training image (top) and that image (bottom); "
                 f"real unseen subjects' 1st-percentile L2 = {threshold:.3f}", fontsize=8)
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
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def plot_gallery(generated: Any, real: Any, count: int = 36, seed: int = 0,
                 titles: tuple[str, str] = ("generated", "real (held-out, unseen subjects)")) -> Figure:
    """Two grids side by side: ``count`` random generated images and as many random real ones (stream "gallery")."""
    rng = seeds.rng(seed, "gallery")
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.3))
    for ax, images, title in zip(axes, (generated, real), titles):
        images = np.asarray(images)
        chosen = np.sort(rng.choice(len(images), min(count, len(images)), replace=False))
        plot_sample_grid(images[chosen], title=title, ax=ax)
    fig.tight_layout()
    return fig


def plot_split_samples(splits: Any, count: int = 16, seed: int = 0) -> Figure:
    """``count`` random images of each split of a :class:`~dcganlib.data.DatasetSplits`, one grid per split."""
    rng = seeds.rng(seed, "gallery")
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6))
    for ax, split in zip(axes, ("train", "validate", "test")):
        images = getattr(splits, split)
        chosen = np.sort(rng.choice(len(images), size=min(count, len(images)), replace=False))
        plot_sample_grid(images[chosen], title=f"{split}: {len(images)} images", ax=ax)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# quality against compute (dcganlib.tracking, dcganlib.curves)
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
    from .curves import group_by_recipe

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
    fig, axes = plt.subplots(len(rows), columns, figsize=(4.2 * columns, 4.5 * len(rows)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, row in enumerate(rows):
        for c, (title, path) in enumerate(row):
            with Image.open(path) as image:
                axes[r, c].imshow(np.asarray(image.convert("L")), cmap="gray", vmin=0, vmax=255)
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


__all__ = [
    "MIN_DPI", "save_figure", "figure_and_axes", "plot_sample_grid", "plot_image_histograms", "plot_data_survey",
    "plot_preprocessing", "plot_history", "model_summary_table", "plot_model_diagram", "plot_ssim_histograms",
    "plot_diversity", "plot_roc", "plot_power_spectra", "plot_tissue_intensity", "plot_feature_metrics",
    "plot_closest_pairs", "plot_ssim_over_epochs", "plot_gallery", "plot_split_samples", "QUALITY_LABELS",
    "plot_quality_history", "plot_quality_curves", "plot_budget_grids",
]
