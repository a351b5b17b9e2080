"""Chapter 1's figures: samples, intensity histograms, the file survey, preprocessing, samples per split."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from .. import seeds
from ..errors import DataError
from ..images import images_to_grid
from ..pixels import as_uint8_images, to_float
from .saving import figure_and_axes, legend_outside

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
    legend_outside(ax)
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
