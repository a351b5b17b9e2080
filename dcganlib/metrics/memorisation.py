"""Does the generator copy training images? The nearest training image of every candidate image, compared
with how near real images of unseen subjects get.

Searching every training image by SSIM costs N × N_train exact SSIMs (minutes for OASIS-sized data), so
the search is two-stage: the nearest training images by L2 (root-mean-square pixel difference in
``[-1, 1]`` units, one matrix product), then exact SSIM against the :data:`SSIM_CANDIDATES` nearest of
them. An exact copy is always the L2-nearest image, so copies are never missed; the SSIM figure is
"the best SSIM among the 16 nearest by L2".
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
              f"{SSIM_CANDIDATES} nearest by L2; fraction_closer_than_real_l2 = share of images closer to a "
              f"training image than percentile {PERCENTILE:g} of the reference (real, unseen subjects) "
              "images' nearest distances")


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
    c_norms = (c * c).sum(1)
    nearest = np.empty((len(q), k), np.int64)
    for i in range(0, len(q), batch):  # ‖q − c‖² = ‖q‖² + ‖c‖² − 2 q·c, one float32 matmul per batch
        squared = c_norms[None, :] - 2.0 * (q[i:i + batch] @ c.T)
        part = np.argpartition(squared, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(squared, part, axis=1), axis=1)
        nearest[i:i + batch] = np.take_along_axis(part, order, axis=1)
    index = nearest[:, 0]
    # the distance to the neighbour is recomputed directly, so an exact copy reports exactly 0
    l2 = np.sqrt(np.mean((q.astype(np.float64) - c[index].astype(np.float64)) ** 2, axis=1))
    scores = np.concatenate([  # SSIM of each query with its k L2-nearest candidates, 64 queries at a time
        ssim(np.repeat(queries[i:i + 64], k, axis=0), candidates[nearest[i:i + 64].ravel()]).reshape(-1, k)
        for i in range(0, len(q), 64)])
    best = np.argmax(scores, axis=1)
    return {"ssim": scores[np.arange(len(q)), best].astype(np.float32),
            "ssim_index": nearest[np.arange(len(q)), best], "l2": l2.astype(np.float32), "l2_index": index}


def memorisation_check(candidate: Any, train: Any, baseline: Any, percentile: float = PERCENTILE,
                       baseline_nearest: Optional[dict[str, np.ndarray]] = None) -> dict[str, Any]:
    """Does ``candidate`` (generated images) copy ``train``?

    ``baseline`` are real images of subjects never trained on: their nearest training distances show how
    close an honest new image gets. Reported: the share of candidate images whose nearest-training L2 is
    below the ``percentile``-th percentile (default 1st) of the baseline's (``fraction_closer_than_real_l2``;
    ≈ percentile / 100 for a candidate drawn like the baseline), and the SSIM analogue above the
    (100 − percentile)-th percentile. Much above means copying. ``baseline_nearest`` reuses a search
    already made; arrays for plotting are under ``"candidate_nearest"`` and ``"baseline_nearest"``.
    """
    candidate = as_float_images(candidate, "candidate")
    if len(baseline) == 0:
        raise ValueError("the memorisation check needs real baseline images; the baseline set is empty")
    found = nearest_neighbours(candidate, train)
    real = baseline_nearest if baseline_nearest is not None else nearest_neighbours(baseline, train)
    l2_threshold = float(np.percentile(real["l2"], percentile))
    ssim_threshold = float(np.percentile(real["ssim"], 100 - percentile))
    flagged = np.nonzero(found["l2"] < l2_threshold)[0]
    return {
        "percentile": percentile,
        "l2_threshold": l2_threshold,
        "ssim_threshold": ssim_threshold,
        "fraction_closer_than_real_l2": float(np.mean(found["l2"] < l2_threshold)),
        "fraction_closer_than_real_ssim": float(np.mean(found["ssim"] > ssim_threshold)),
        "flagged_indices": flagged[np.argsort(found["l2"][flagged])][:50].tolist(),
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


__all__ = ["DEFINITION", "PERCENTILE", "SSIM_CANDIDATES", "nearest_neighbours", "memorisation_check"]
