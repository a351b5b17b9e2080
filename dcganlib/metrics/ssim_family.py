"""The SSIM family of figures: best-match SSIM, paired SSIM, diversity (mean pairwise SSIM) and MS-SSIM.

All use the SSIM of :mod:`dcganlib.metrics.ssim` (Wang et al. 2004, data range 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import seeds
from ..pixels import as_float_images
from .ssim import MS_SSIM_MIN_SIZE, SSIM_DATA_RANGE, ssim, ssim_matrix


@dataclass(frozen=True)
class BestMatch:
    """Best-match SSIM: for each query image, its highest SSIM over a reference set."""

    scores: np.ndarray  # (N,) float32: max_j SSIM(query_i, reference_j)
    index: np.ndarray  # (N,) int64: the argmax j into the reference set

    def summary(self) -> dict[str, float]:
        """``{"mean", "median", "max", "min", "count"}`` of :attr:`scores`."""
        if len(self.scores) == 0:
            return {"mean": float("nan"), "median": float("nan"), "max": float("nan"), "min": float("nan"),
                    "count": 0}
        return {"mean": float(np.mean(self.scores)), "median": float(np.median(self.scores)),
                "max": float(np.max(self.scores)), "min": float(np.min(self.scores)),
                "count": int(len(self.scores))}


def best_match_ssim(generated: Any, reference: Any, batch: Optional[int] = None) -> BestMatch:
    """For each image of ``generated`` (N, H, W[, C]), the highest SSIM against any ``reference`` image.

    Use held-out real images as the reference; run the same on other held-out real images for the
    calibration (what a perfect generator would score). SSIM as in the module docstring.
    """
    reference = as_float_images(reference, "reference")
    if len(reference) == 0:
        raise ValueError("best-match SSIM needs at least one reference image; the reference set is empty")
    matrix = ssim_matrix(generated, reference, batch=batch)
    index = np.argmax(matrix, axis=1)
    return BestMatch(scores=matrix[np.arange(len(matrix)), index].astype(np.float32), index=index.astype(np.int64))


def paired_ssim(generated: Any, real: Any, seed: int = 0) -> dict[str, Any]:
    """SSIM of generated image i with a randomly drawn real image (the course projects' "mean SSIM").

    Real partners are a seeded permutation of ``real`` (drawn with replacement only when there are
    fewer real than generated images). Returns ``{"mean", "median", "std", "count", "scores"}``.
    It measures little (two real patients also score low); it is reported only for comparability.
    """
    generated = as_float_images(generated, "generated")
    real = as_float_images(real, "real")
    if len(generated) == 0 or len(real) == 0:
        raise ValueError("paired SSIM needs generated and real images; one of the sets is empty")
    rng = seeds.rng(seed, "paired-ssim")
    if len(real) >= len(generated):
        partners = rng.permutation(len(real))[: len(generated)]
    else:
        partners = rng.integers(0, len(real), size=len(generated))
    scores = ssim(generated, real[partners])
    return {"mean": float(scores.mean()), "median": float(np.median(scores)), "std": float(scores.std()),
            "count": int(len(scores)), "scores": scores}


#: Two means closer than this many combined standard errors, ``sqrt(se_a² + se_b²)``, are not shown to differ.
NOISE_STANDARD_ERRORS = 2.0


@dataclass(frozen=True)
class PairwiseSsim:
    """Diversity of one set: the mean SSIM over its distinct pairs and that mean's sampling error."""

    mean: float  # (1 / (n (n - 1))) * sum over i != j of SSIM(x_i, x_j); in [-1, 1], identical images give 1
    standard_error: float  # 2 * sd_i(r_i) / sqrt(n), r_i = mean_j!=i SSIM(x_i, x_j); nan for fewer than 3 images
    count: int  # n, the images the pairs come from (after the max_images cap)


def pairwise_ssim(images: Any, max_images: Optional[int] = None, seed: int = 0,
                  batch: Optional[int] = None) -> PairwiseSsim:
    """Diversity: the mean SSIM over all distinct pairs (i ≠ j) of one set, with its standard error.

    Lower means more diverse. Compare generated with real: mode collapse shows as generated ≫ real.
    ``max_images`` draws a seeded subset first (the cost grows with N²).

    The mean is a U-statistic of order 2, so its variance over draws of the n images is, to first order,
    ``4 Var(h1) / n`` with ``h1(x) = E_y SSIM(x, y)`` (Hoeffding 1948). ``h1(x_i)`` is estimated by the row
    mean ``r_i``, hence ``standard_error = 2 sd(r) / sqrt(n)``. Two sets whose means differ by less than
    :data:`NOISE_STANDARD_ERRORS` combined errors are not shown to differ.
    """
    images = as_float_images(images)
    if max_images is not None and len(images) > max_images:
        pick = seeds.rng(seed, "diversity-subset").choice(len(images), max_images, replace=False)
        images = images[np.sort(pick)]
    if len(images) < 2:
        raise ValueError(f"diversity needs at least 2 images, got {len(images)}")
    matrix = ssim_matrix(images, images, batch=batch).astype(np.float64)
    n = len(images)
    rows = (matrix.sum(axis=1) - np.diag(matrix)) / (n - 1)
    error = 2.0 * float(rows.std(ddof=1)) / np.sqrt(n) if n > 2 else float("nan")
    return PairwiseSsim(mean=float(rows.mean()), standard_error=error, count=n)


def mean_pairwise_ssim(images: Any, max_images: Optional[int] = None, seed: int = 0,
                       batch: Optional[int] = None) -> float:
    """The mean of :func:`pairwise_ssim` alone (the per-epoch tracking's ``ssim_diversity``)."""
    return pairwise_ssim(images, max_images=max_images, seed=seed, batch=batch).mean


def ms_ssim_diversity(images: Any, pairs: int = 200, seed: int = 0) -> dict[str, Any]:
    """Mean MS-SSIM (Wang et al. 2003, 5 scales, ``tf.image.ssim_multiscale(max_val=2)``) over random
    distinct pairs of one set — the diversity measure of Odena et al. 2017.

    Needs images of at least 161 px (the fifth scale must still hold the 11-px window); smaller images
    return ``{"available": False, "reason": ...}``. MS-SSIM raises negative contrast-structure terms
    to fractional powers, which is undefined; such pairs are counted in ``"undefined_pairs"`` and
    left out of the mean rather than hidden.
    """
    import tensorflow as tf

    images = as_float_images(images)
    side = min(images.shape[1:3])
    if side < MS_SSIM_MIN_SIZE:
        return {"available": False,
                "reason": f"images are {images.shape[1]}x{images.shape[2]} px; 5-scale MS-SSIM with an "
                          f"11-px window needs at least {MS_SSIM_MIN_SIZE} px"}
    if len(images) < 2:
        raise ValueError(f"MS-SSIM diversity needs at least 2 images, got {len(images)}")
    rng = seeds.rng(seed, "ms-ssim-pairs")
    first = rng.integers(0, len(images), size=pairs)
    second = (first + rng.integers(1, len(images), size=pairs)) % len(images)  # never the same image
    values = []
    for i in range(0, pairs, 64):
        values.append(tf.image.ssim_multiscale(tf.constant(images[first[i:i + 64]]),
                                               tf.constant(images[second[i:i + 64]]),
                                               max_val=SSIM_DATA_RANGE).numpy())
    values = np.concatenate(values)
    finite = np.isfinite(values)
    return {"available": True, "mean": float(values[finite].mean()) if finite.any() else float("nan"),
            "pairs": int(pairs), "undefined_pairs": int((~finite).sum()),
            "definition": "tf.image.ssim_multiscale(a, b, max_val=2.0), 5 scales, power factors "
                          "(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)"}


__all__ = [
    "NOISE_STANDARD_ERRORS", "BestMatch", "PairwiseSsim", "best_match_ssim", "paired_ssim", "pairwise_ssim",
    "mean_pairwise_ssim", "ms_ssim_diversity"
]
