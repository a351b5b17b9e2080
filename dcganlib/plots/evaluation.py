"""Chapter 4's figures: every evaluation figure beside its real reference (:mod:`dcganlib.evaluate`)."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from .. import seeds
from ..metrics.prdc import DEFAULT_K
from ..pixels import as_float_images
from .saving import figure_and_axes, legend_outside
from .data import plot_sample_grid

_GENERATED, _REAL_REFERENCE, _REFERENCE = "tab:orange", "tab:blue", "0.35"
_SETS = (("reference", "held-out real", _REFERENCE, "-"),
         ("stand_in", "real reference (unseen subjects)", _REAL_REFERENCE, "--"),
         ("generated", "generated", _GENERATED, "-"))


def _labelled(fig: Figure, ax: Any, xlabel: str, ylabel: str, title: str) -> Figure:
    """Axis labels, title and a frameless legend beside the axes; the tightened figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    legend_outside(ax)
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


def plot_diversity(values: Mapping[str, float], *, errors: Optional[Mapping[str, float]] = None,
                   ax: Any = None) -> Figure:
    """Bars of mean pairwise SSIM per set, e.g. ``{"real reference": 0.31, "generated": 0.45}`` (lower = more
    diverse); ``errors`` (same keys) draws ± 2 standard errors as whiskers and prints ± 1 beside the value."""
    fig, ax = figure_and_axes(ax, (5, 3.4))
    names = list(values)
    heights = [values[name] for name in names]
    spread = [errors[name] for name in names] if errors else None
    colours = [_GENERATED if name == "generated" else _REAL_REFERENCE if name == "real reference" else _REFERENCE
               for name in names]
    bars = ax.bar(names, heights, color=colours,
                  yerr=None if spread is None else [2 * e for e in spread], capsize=6)
    for i, (bar, height) in enumerate(zip(bars, heights)):
        label = f"{height:.3f}" + ("" if spread is None else f" ± {spread[i]:.3f}")
        top = height + (0 if spread is None else 2 * spread[i])
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, top), ha="center", va="bottom")
    ax.set_ylabel("mean pairwise SSIM")
    ax.set_ylim(0, max(1.0, max(heights) * 1.1))
    ax.set_title("Diversity (lower = more diverse)" + ("" if spread is None else "; whiskers ± 2 standard errors"),
                 fontsize=10)
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
    ax.legend(frameon=False, fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    return fig


def plot_power_spectra(spectra: Mapping[str, np.ndarray], *, ax: Any = None, ratio: bool = True) -> Figure:
    """Radially averaged power spectra (log scale) of the reference, the real reference (stand-in) and the
    generated images; the upper half of the frequencies, where the deviation is measured, shaded.

    ``ratio`` (a figure of its own, ``ax`` None) adds a panel below: each set's power divided by the held-out
    reference's at every frequency (log scale, 1 = the same power), so a several-fold excess of texture is
    visible where the spectra's many decades hide it."""
    if ax is None and ratio:
        fig, (ax, below) = plt.subplots(2, 1, figsize=(7.6, 6.2), sharex=True, height_ratios=(3, 2))
    else:
        (fig, ax), below = figure_and_axes(ax, (7.6, 3.8)), None
    reference = np.asarray(spectra["reference"], dtype=float)
    frequencies = np.arange(1, len(reference) + 1)
    top = len(reference)
    for name, label, colour, style in _SETS:
        spectrum = np.asarray(spectra[name], dtype=float)
        ax.semilogy(frequencies, spectrum, style, color=colour, label=label)
        if below is not None and name != "reference":
            below.semilogy(frequencies, spectrum / reference, style, color=colour, label=f"{label} / held-out real")
    for axis in (ax, below) if below is not None else (ax,):
        axis.axvspan(top // 2 + 1, top, color="0.9", zorder=0, label="measured: upper half")
    if below is None:
        return _labelled(fig, ax, "spatial frequency (cycles per image)", "mean power",
                         "Radially averaged power spectrum")
    below.axhline(1.0, color="0.5", linewidth=0.8)
    below.set_ylabel("power ratio to held-out real")
    _labelled(fig, below, "spatial frequency (cycles per image)", "power ratio to held-out real",
              "Ratio to the held-out real spectrum (1 = the same power)")
    return _labelled(fig, ax, "", "mean power", "Radially averaged power spectrum")


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
    ax.set_title(f"Fidelity and diversity in the {feature_metrics.get('space', 'feature')} space "
                 f"(k = {DEFAULT_K})", fontsize=10)
    legend_outside(ax)
    fig.tight_layout()
    return fig


def plot_closest_pairs(generated: Any, train: Any, memorisation: Mapping[str, Any], count: int = 8) -> Figure:
    """The ``count`` generated images nearest to a training image *for where they lie* (lowest
    ``neighbour_ratio``: nearest L2 over that training image's L2 to its own nearest training neighbour; top
    row) above that training image (bottom row), each titled with its L2, ratio and SSIM — copies would look
    identical. ``memorisation`` is a :func:`dcganlib.metrics.memorisation.memorisation_check` result for
    ``generated``."""
    from ..metrics.ssim import ssim

    generated = as_float_images(generated, "generated")
    train = as_float_images(train, "train")
    nearest = memorisation["candidate_nearest"]
    order = np.argsort(nearest["neighbour_ratio"], kind="stable")[:count]
    fig, axes = plt.subplots(2, len(order), figsize=(1.6 * len(order), 3.8), squeeze=False)
    for column, index in enumerate(order):
        partner = int(nearest["l2_index"][index])
        score = ssim(generated[index:index + 1], train[partner:partner + 1])[0]
        pair = ((generated[index], f"gen {index}\nL2 {nearest['l2'][index]:.3f}, "
                                   f"ratio {nearest['neighbour_ratio'][index]:.2f}"),
                (train[partner], f"train {partner}\nSSIM {score:.3f}"))
        for row, (image, title) in enumerate(pair):
            ax = axes[row, column]
            if image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            else:
                ax.imshow((image + 1) / 2, interpolation="nearest")
            ax.set_title(title, fontsize=7)
            ax.set_axis_off()
    threshold, percentile = memorisation["ratio_threshold"], memorisation["percentile"]
    share = memorisation["fraction_closer_than_real_local"]
    fig.suptitle("Generated images nearest to a training image for where they lie (top) and that image (bottom); ratio = "
                 "L2 / that image's L2 to its own nearest training neighbour.\nThreshold: ratio "
                 f"{threshold:.2f}, which only {percentile:g} % of real images of unseen subjects get below; "
                 f"{share:.1%} of generated images are below it (far more would mean copying)", fontsize=8)
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
