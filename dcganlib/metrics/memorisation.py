"""Does the generator copy training images? The nearest training image of every candidate image, compared
with how near real images of unseen subjects get.

Searching every training image by SSIM costs N × N_train exact SSIMs (minutes for OASIS-sized data), so
the search is two-stage: the nearest training images by L2 (root-mean-square pixel difference in
``[-1, 1]`` units, one matrix product), then exact SSIM against the :data:`SSIM_CANDIDATES` nearest of
them. An exact copy is always the L2-nearest image, so copies are never missed; the SSIM figure is
"the best SSIM among the 16 nearest by L2".

How near is too near depends on where in the data an image lies: two small cerebellar slices, mostly
background, are closer in L2 than any two whole-brain slices, copies or not, so one global distance
threshold calls small slices copies. The headline figure therefore measures each image's nearest training
distance in units of *that* training image's distance to its own nearest other training image (its
"neighbour ratio": below 1 is Alaa et al. 2022's "unauthentic" sample, "How faithful is your synthetic
data?"), and counts the images whose ratio is below the 1st percentile of real images of unseen subjects'
ratios: about 1 % for honest new images wherever they lie, every exact or near copy (ratio ≈ 0). The
global figure (closer in L2, or in SSIM, than the 1st percentile of the real images' nearest distances)
is kept beside it.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..pixels import as_float_images
from .ssim import ssim

SSIM_CANDIDATES = 16
#: The baseline's percentile of nearest distances a candidate must beat to count as closer than real.
PERCENTILE = 1.0
DEFINITION = (f"nearest training image by L2 (RMS pixel difference in [-1, 1] units) and by SSIM among the "
              f"{SSIM_CANDIDATES} nearest by L2; neighbour ratio = nearest training L2 / that training image's L2 "
              "to its nearest other training image; fraction_closer_than_real_local = share of images whose "
              f"neighbour ratio is below percentile {PERCENTILE:g} of the reference (real, unseen subjects) images' "
              "ratios; fraction_closer_than_real_l2 = share of images closer to a training image than percentile "
              f"{PERCENTILE:g} of the reference images' nearest distances; flagged_indices = the images the "
              "headline counts (neighbour ratio below the threshold), lowest ratio first, at most 50; "
              "flagged_indices_l2 = those the L2 figure counts, nearest first")


def _nearest_by_l2(q: np.ndarray, c: np.ndarray, k: int, batch: int) -> np.ndarray:
    """Indices ``(len(q), k)`` of the ``k`` rows of ``c`` nearest to each row of ``q`` (flat float32 images),
    nearest first."""
    c_norms = (c * c).sum(1)
    nearest = np.empty((len(q), k), np.int64)
    for i in range(0, len(q), batch):  # ‖q − c‖² = ‖q‖² + ‖c‖² − 2 q·c, one float32 matmul per batch
        squared = c_norms[None, :] - 2.0 * (q[i:i + batch] @ c.T)
        part = np.argpartition(squared, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(squared, part, axis=1), axis=1)
        nearest[i:i + batch] = np.take_along_axis(part, order, axis=1)
    return nearest


def _rms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise RMS difference in float64: recomputed directly rather than taken from the search, so an exact
    copy reports exactly 0."""
    return np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, axis=1))


def nearest_neighbours(queries: Any, candidates: Any, *, ssim_candidates: int = SSIM_CANDIDATES,
                       batch: int = 256) -> dict[str, np.ndarray]:
    """For each query image its nearest candidate image by L2 (smallest) and by SSIM (highest among the
    ``ssim_candidates`` nearest by L2).

    L2 is the root-mean-square pixel difference in ``[-1, 1]`` units (0 = identical, 2 = opposite).
    Returns ``{"ssim", "ssim_index", "l2", "l2_index"}`` arrays of length N_queries.
    """
    queries = as_float_images(queries, "queries")
    candidates = as_float_images(candidates, "candidates")
    if len(candidates) == 0:
        raise ValueError("nearest-neighbour search needs at least one candidate image")
    k = min(ssim_candidates, len(candidates))
    q = queries.reshape(len(queries), -1)
    c = candidates.reshape(len(candidates), -1)
    nearest = _nearest_by_l2(q, c, k, batch)
    index = nearest[:, 0]
    l2 = _rms(q, c[index])
    scores = np.concatenate([  # SSIM of each query with its k L2-nearest candidates, 64 queries at a time
        ssim(np.repeat(queries[i:i + 64], k, axis=0), candidates[nearest[i:i + 64].ravel()]).reshape(-1, k)
        for i in range(0, len(q), 64)])
    best = np.argmax(scores, axis=1)
    return {"ssim": scores[np.arange(len(q)), best].astype(np.float32),
            "ssim_index": nearest[np.arange(len(q)), best], "l2": l2.astype(np.float32), "l2_index": index}


def neighbour_distances(train: Any, indices: Any, batch: int = 256) -> np.ndarray:
    """For each training image ``train[i]``, ``i`` in ``indices``, the L2 (RMS pixel difference in
    ``[-1, 1]`` units) to its nearest *other* training image: ``(len(indices),)`` float64, 0 when it has a
    duplicate, ``inf`` when it is the only one. Costs ``u × len(train)`` distances for the ``u`` distinct
    indices, not all pairs."""
    train = as_float_images(train, "train")
    flat = train.reshape(len(train), -1)
    wanted, position = np.unique(np.asarray(indices, dtype=np.int64).reshape(-1), return_inverse=True)
    if len(flat) < 2:
        return np.full(len(position), np.inf)
    # its two nearest: itself and the nearest other (either first; a duplicate is at 0 either way)
    two = _nearest_by_l2(flat[wanted], flat, 2, batch)
    other = np.where(two[:, 0] == wanted, two[:, 1], two[:, 0])
    return _rms(flat[wanted], flat[other])[position]


def neighbour_ratios(nearest: dict[str, np.ndarray], train: Any) -> np.ndarray:
    """Per image, its nearest training distance (``nearest``: a :func:`nearest_neighbours` result against
    ``train``) over that training image's own distance to its nearest other training image: ``(N,)``
    float64 ≥ 0, 0 for an exact copy. Below 1: closer to the training image than any other training image
    is (Alaa et al. 2022's "unauthentic" sample). Needs two training images or more: alone, a training image
    has no spacing, every ratio would be 0 and its percentile threshold too, so not even a copy would count."""
    if len(train) < 2:
        raise ValueError(f"neighbour ratios need at least two training images; got {len(train)}")
    own = neighbour_distances(train, nearest["l2_index"])
    l2 = nearest["l2"].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(l2 == 0, 0.0, l2 / own)


def memorisation_check(candidate: Any, train: Any, baseline: Any, percentile: float = PERCENTILE,
                       baseline_nearest: Optional[dict[str, np.ndarray]] = None) -> dict[str, Any]:
    """Does ``candidate`` (generated images) copy ``train``?

    ``baseline`` are real images of subjects never trained on: their nearest training distances show how
    close an honest new image gets. Reported: the share of candidate images whose nearest-training L2 is
    below the ``percentile``-th percentile (default 1st) of the baseline's (``fraction_closer_than_real_l2``;
    ≈ percentile / 100 for a candidate drawn like the baseline), and the SSIM analogue above the
    (100 − percentile)-th percentile. Much above means copying. The headline,
    ``fraction_closer_than_real_local``, is the same with each distance in units of the local spacing of the
    training set (:func:`neighbour_ratios`, below the baseline's ``percentile``-th percentile of them,
    ``ratio_threshold``): it does not call small, mostly-background images copies for being small.
    ``flagged_indices`` lists the images the headline counts (lowest ratio first), ``flagged_indices_l2``
    those the L2 figure counts (nearest first); at most 50 each.
    ``baseline_nearest`` reuses a search already made (its ``"neighbour_ratio"`` is added when missing);
    arrays for plotting, each with ``"neighbour_ratio"``, are under ``"candidate_nearest"`` and
    ``"baseline_nearest"``.
    """
    candidate = as_float_images(candidate, "candidate")
    if len(baseline) == 0:
        raise ValueError("the memorisation check needs real baseline images; the baseline set is empty")
    found = nearest_neighbours(candidate, train)
    found["neighbour_ratio"] = neighbour_ratios(found, train)
    real = baseline_nearest if baseline_nearest is not None else nearest_neighbours(baseline, train)
    if "neighbour_ratio" not in real:
        real["neighbour_ratio"] = neighbour_ratios(real, train)
    ratio_threshold = float(np.percentile(real["neighbour_ratio"], percentile))
    l2_threshold = float(np.percentile(real["l2"], percentile))
    ssim_threshold = float(np.percentile(real["ssim"], 100 - percentile))
    close_local, close_l2 = found["neighbour_ratio"] < ratio_threshold, found["l2"] < l2_threshold
    flagged, flagged_l2 = np.nonzero(close_local)[0], np.nonzero(close_l2)[0]
    return {
        "fraction_closer_than_real_local": float(np.mean(close_local)),
        "percentile": percentile,
        "ratio_threshold": ratio_threshold,
        "l2_threshold": l2_threshold,
        "ssim_threshold": ssim_threshold,
        "fraction_closer_than_real_l2": float(np.mean(close_l2)),
        "fraction_closer_than_real_ssim": float(np.mean(found["ssim"] > ssim_threshold)),
        "flagged_indices": flagged[np.argsort(found["neighbour_ratio"][flagged], kind="stable")][:50].tolist(),
        "flagged_indices_l2": flagged_l2[np.argsort(found["l2"][flagged_l2], kind="stable")][:50].tolist(),
        "candidate_nearest_l2_median": float(np.median(found["l2"])),
        "baseline_nearest_l2_median": float(np.median(real["l2"])),
        "candidate_nearest_ssim_median": float(np.median(found["ssim"])),
        "baseline_nearest_ssim_median": float(np.median(real["ssim"])),
        "candidate_count": int(len(candidate)),
        "baseline_count": int(len(real["l2"])),
        "train_count": int(len(train)),
        "candidate_nearest": found,
        "baseline_nearest": real,
    }


__all__ = ["DEFINITION", "PERCENTILE", "SSIM_CANDIDATES", "nearest_neighbours", "neighbour_distances",
           "neighbour_ratios", "memorisation_check"]
