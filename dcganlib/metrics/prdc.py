"""Fidelity and diversity as separate numbers: improved precision/recall and density/coverage.

Both work on feature vectors (``(N, D)`` arrays, e.g. :mod:`.features`) with k-nearest-neighbour
balls: ``B(x, r_k(x))`` is the ball around a sample reaching its k-th nearest neighbour in its own set.

* **precision** (Kynkäänniemi et al. 2019): the share of generated samples inside the union of the real
  balls — generated images that look like *some* real image (fidelity);
* **recall**: the share of real samples inside the union of the generated balls — how much of the real
  variety the generator covers (diversity);
* **density** (Naeem et al. 2020): ``(1 / kM) Σ_j Σ_i 1[y_j ∈ B(x_i, r_k(x_i))]`` — how many real balls
  each generated sample falls into, relative to k; ≈ 1 for matching distributions, robust to real
  outliers, can exceed 1;
* **coverage**: the share of real samples whose ball contains at least one generated sample.

Euclidean distances; ``k = 5`` by default (Naeem et al.'s choice; Kynkäänniemi et al. used 3). Values
depend on N and k, so they are only compared at equal sample sizes (evaluate does that).
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_K = 5
DEFINITION = (f"precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020) with "
              f"k = {DEFAULT_K} nearest neighbours, Euclidean distances")


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(squared, 0.0)


def _radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance of every sample to its k-th nearest neighbour within its own set (itself excluded)."""
    distances = _squared_distances(features, features)
    np.fill_diagonal(distances, np.inf)
    return np.sqrt(np.partition(distances, k - 1, axis=1)[:, k - 1])


def precision_recall_density_coverage(real: Any, fake: Any, k: int = DEFAULT_K) -> dict[str, float]:
    """``{"precision", "recall", "density", "coverage", "k", "real_count", "fake_count"}`` of two feature sets."""
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"two (N, D) feature arrays of equal D are needed; got {real.shape} and {fake.shape}")
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"k = {k} needs more than {k} samples in each set; got {len(real)} and {len(fake)}")
    real_radii = _radii(real, k)
    fake_radii = _radii(fake, k)
    cross = np.sqrt(_squared_distances(real, fake))  # (real, fake)
    inside_real_balls = cross < real_radii[:, None]  # fake j inside real ball i
    precision = float(inside_real_balls.any(axis=0).mean())
    recall = float((cross < fake_radii[None, :]).any(axis=1).mean())
    density = float(inside_real_balls.sum() / (k * len(fake)))
    coverage = float((cross.min(axis=1) < real_radii).mean())
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage, "k": k,
            "real_count": int(len(real)), "fake_count": int(len(fake))}


__all__ = ["DEFAULT_K", "DEFINITION", "precision_recall_density_coverage"]
