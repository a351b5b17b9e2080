"""The cheap quality figures of a set of images against a real set: one code path for the per-epoch
tracker (:mod:`dcganlib.tracking`) and for ``evaluate`` (:mod:`dcganlib.evaluate`), so the two agree on
the same images.

* feature figures in the offline random-CNN feature space (:mod:`.features`): Fréchet distance of the
  Gaussian fits, KID (unbiased MMD² with the cubic kernel, :func:`.distances.kernel_distance`), and
  precision / recall / density / coverage with ``k`` nearest neighbours (:mod:`.prdc`);
* artefact figures (:mod:`.artefacts`): the high-frequency power-spectrum deviation and the
  Wasserstein-1 distance of the tissue intensities.

:class:`RealSide` holds what the real set contributes (its features and their statistics, its spectrum
and tissue histogram), computed once; the candidate's figures are then cheap: at 64 px, 512 candidate
images against 190 real ones take well under a second on a CPU.

Every figure depends on the sample sizes: compare a candidate only with another candidate of the same
size against the same :class:`RealSide` (the real reference is such a candidate: real images of other
subjects).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import artefacts, features as feature_space, prdc
from ..pixels import as_uint8_images
from .distances import feature_statistics, frechet_distance, kernel_distance

#: One random feature network for every evaluation, so figures compare across runs and epochs.
FEATURE_SEED = 0
#: Random subsets the KID is averaged over.
KID_SUBSETS = 50
#: The figures :func:`quality_figures` returns and whether lower or higher is better.
LOWER_IS_BETTER = {"frechet_distance": True, "kid": True, "precision": False, "recall": False,
                   "density": False, "coverage": False, "spectrum": True, "tissue_w1": True}


class RealSide:
    """The real set's part of every figure: its raw random-CNN features (``(N, 416)``), their
    standardised form and Gaussian fit, its radial power spectrum and its tissue histogram. ``real`` is
    uint8 or ``[-1, 1]`` ``(N, S, S, C)``."""

    def __init__(self, real: Any, seed: int = FEATURE_SEED) -> None:
        real = np.asarray(real)
        self.count = len(real)
        self.network = feature_space.network(real.shape[-1], seed)
        self.raw_features = self.network(real)
        self.features = feature_space.standardise(self.raw_features, self.raw_features)
        self.statistics = feature_statistics(self.features)
        self.spectrum = artefacts.radial_power_spectrum(real)
        self.histogram = artefacts.tissue_histogram(real)  # real images without tissue are bad input: it raises


def feature_figures(candidate: Any, side: RealSide, seed: int = 0) -> dict[str, float]:
    """``{"frechet_distance", "kid", "precision", "recall", "density", "coverage"}`` of ``candidate``
    (uint8 or ``[-1, 1]`` ``(M, S, S, C)``, M > ``prdc.DEFAULT_K``) against ``side``."""
    features = feature_space.standardise(side.network(candidate), side.raw_features)
    figures = {"frechet_distance": frechet_distance(*feature_statistics(features), *side.statistics),
               "kid": kernel_distance(features, side.features, subsets=KID_SUBSETS, seed=seed)["mean"]}
    measured = prdc.precision_recall_density_coverage(side.features, features)
    figures.update({k: measured[k] for k in ("precision", "recall", "density", "coverage")})
    return figures


#: The tissue W1 of a candidate without a single tissue pixel (a collapsed, all-black generator): the
#: largest distance the figure can take, all the mass moved across the full range.
NO_TISSUE_W1 = 1.0


def has_tissue(images: Any) -> bool:
    """True when at least one pixel is above :data:`artefacts.TISSUE_LEVEL` of the range."""
    return bool((as_uint8_images(images) > 255 * artefacts.TISSUE_LEVEL).any())


def artefact_figures(candidate: Any, side: RealSide) -> tuple[dict[str, float], np.ndarray, Optional[np.ndarray]]:
    """``({"spectrum", "tissue_w1"}, spectrum, histogram)`` of ``candidate`` against ``side``: the
    spectrum deviation, the tissue W1 distance (:data:`NO_TISSUE_W1` when ``candidate`` has no tissue,
    and then ``histogram`` is None), and the candidate's radial spectrum and tissue histogram."""
    spectrum = artefacts.radial_power_spectrum(candidate)
    histogram = artefacts.tissue_histogram(candidate) if has_tissue(candidate) else None
    w1 = NO_TISSUE_W1 if histogram is None else artefacts.tissue_wasserstein(histogram, side.histogram)
    return {"spectrum": artefacts.spectrum_deviation(spectrum, side.spectrum), "tissue_w1": w1}, spectrum, histogram


def quality_figures(candidate: Any, side: RealSide, seed: int = 0) -> dict[str, float]:
    """Every figure of :data:`LOWER_IS_BETTER` for ``candidate`` against ``side``."""
    return {**feature_figures(candidate, side, seed), **artefact_figures(candidate, side)[0]}


__all__ = [
    "FEATURE_SEED", "KID_SUBSETS", "LOWER_IS_BETTER", "NO_TISSUE_W1", "RealSide", "has_tissue", "feature_figures",
    "artefact_figures", "quality_figures"
]
