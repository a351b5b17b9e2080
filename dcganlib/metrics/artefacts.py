"""Artefact checks the eye makes: the power spectrum (texture, blur, up-sampling patterns) and the
intensity distribution inside tissue (contrast, saturation).

* **Radially averaged power spectrum**: for each image the 2-D FFT power ``|F(u, v)|²`` of ``x`` in
  ``[-1, 1]`` (per channel, averaged), averaged over the ring of integer radius ``r = round(√(u² + v²))``
  for ``r = 1 … R`` with ``R = round(S/√2)``, the corner of the frequency plane (cycles per image), then
  averaged over the images. Up-sampling artefacts (checkerboards at ``(S/2, S/2)``, streaks at
  ``(S/2, 0)``) and missing detail (blur) live in the upper half of the frequencies; noise raises it.
  The figure :func:`spectrum_deviation` is ``mean_r |log10 P_a(r) − log10 P_b(r)|`` over ``r > R/2``:
  0.1 means the two spectra differ by a factor ≈ 1.26 there on average.
* **Tissue intensity**: the grey levels (uint8) of the pixels brighter than 5 % of the range
  (:data:`TISSUE_LEVEL`, the level below which the background lies), as a normalised histogram of 256
  bins; :func:`tissue_wasserstein` is the Wasserstein-1 distance between two such histograms in units
  of the full range (0–1): ``Σ_v |CDF_a(v) − CDF_b(v)| / 255``. It sees washed-out or saturated
  interiors and lost grey/white-matter contrast. A set without a tissue pixel (all black, or a
  constant below the tissue level: a collapsed generator) has an all-zero histogram, and its distance to
  any set is 1, the largest the distance takes (:data:`NO_TISSUE`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..pixels import TISSUE_LEVEL, as_float_images, as_uint8_images

_TISSUE_BELOW = int(np.floor(255 * TISSUE_LEVEL)) + 1  # grey levels 0..12 are background
SPECTRUM_DEFINITION = ("radially averaged 2-D power spectrum |FFT(x)|^2 of images in [-1, 1] (rings of integer radius "
                       "r = 1..R cycles per image, R = round(S/sqrt 2), channels and images averaged); deviation = "
                       "mean over r > R/2 of |log10 P_candidate(r) - log10 P_real(r)|")
INTENSITY_DEFINITION = (f"grey levels (uint8) of pixels above {TISSUE_LEVEL:.0%} of the range (tissue, levels "
                        f"{_TISSUE_BELOW} and up), as a 256-bin normalised "
                        "histogram; distance = Wasserstein-1 between the histograms, in units of the full range; "
                        "a set without any tissue pixel (e.g. all black) scores 1, the maximum, with a note")
#: The tissue distance of a set without a tissue pixel: the largest Wasserstein-1 in units of the range.
NO_TISSUE = 1.0


def radial_power_spectrum(images: Any, batch: int = 512) -> np.ndarray:
    """Mean radially averaged power spectrum for radii ``1 … R`` of square images ``(N, S, S[, C])``,
    ``R = round(S/√2)`` (the corner of the frequency plane, where a pixel-level checkerboard lives)."""
    images = as_float_images(images)
    n, height, width, _ = images.shape
    if height != width:
        raise ValueError(f"the power spectrum needs square images; got {height}x{width}")
    frequencies = np.fft.fftfreq(height) * height
    radius = np.rint(np.sqrt(frequencies[:, None] ** 2 + frequencies[None, :] ** 2)).astype(int)
    top = int(radius.max())
    power = np.zeros((height, width))
    for i in range(0, n, batch):
        spectrum = np.fft.fft2(images[i:i + batch].astype(np.float64), axes=(1, 2))
        power += (np.abs(spectrum) ** 2).mean(axis=-1).sum(axis=0)
    power /= max(n, 1)
    sums = np.bincount(radius.ravel(), weights=power.ravel(), minlength=top + 1)
    counts = np.bincount(radius.ravel(), minlength=top + 1)
    return sums[1:top + 1] / counts[1:top + 1]


def spectrum_deviation(candidate: np.ndarray, real: np.ndarray) -> float:
    """``mean |log10 P_candidate − log10 P_real|`` over the upper half of the radii, ``r > R/2`` (see module docstring)."""
    candidate, real = np.asarray(candidate, dtype=np.float64), np.asarray(real, dtype=np.float64)
    if candidate.shape != real.shape:
        raise ValueError(f"spectra of different lengths: {candidate.shape} and {real.shape}")
    upper = slice(len(real) // 2, None)  # radii r > R/2
    tiny = 1e-30
    return float(np.mean(np.abs(np.log10(candidate[upper] + tiny) - np.log10(real[upper] + tiny))))


def tissue_histogram(images: Any) -> np.ndarray:
    """Normalised 256-bin histogram of the tissue pixels' grey levels (zeros below the tissue level); all
    zeros when no pixel is tissue."""
    values = as_uint8_images(images).ravel()
    counts = np.bincount(values, minlength=256).astype(np.float64)
    counts[:_TISSUE_BELOW] = 0.0
    total = counts.sum()
    return counts / total if total else counts


def tissue_wasserstein(candidate_histogram: np.ndarray, real_histogram: np.ndarray) -> float:
    """Wasserstein-1 distance between two :func:`tissue_histogram` results, in units of the full range (0–1);
    :data:`NO_TISSUE` when either histogram is empty (a set without tissue)."""
    if not (np.sum(candidate_histogram) > 0 and np.sum(real_histogram) > 0):
        return NO_TISSUE
    return float(np.abs(np.cumsum(candidate_histogram) - np.cumsum(real_histogram)).sum() / 255.0)


__all__ = ["TISSUE_LEVEL", "NO_TISSUE", "SPECTRUM_DEFINITION", "INTENSITY_DEFINITION", "radial_power_spectrum",
           "spectrum_deviation", "tissue_histogram", "tissue_wasserstein"]
