"""Does the generator copy training images? Nearest training image of every generated and held-out image."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..pixels import as_float_images
from .ssim_family import best_match_ssim


def nearest_neighbours(queries: Any, candidates: Any, batch: Optional[int] = None) -> dict[str, np.ndarray]:
    """For each query image its nearest candidate image by SSIM (highest) and by L2 (smallest).

    L2 is the root-mean-square pixel difference in ``[-1, 1]`` units (0 = identical, 2 = opposite).
    Returns ``{"ssim", "ssim_index", "l2", "l2_index"}`` arrays of length N_queries.
    """
    queries = as_float_images(queries, "queries")
    candidates = as_float_images(candidates, "candidates")
    if len(candidates) == 0:
        raise ValueError("nearest-neighbour search needs at least one candidate image")
    best = best_match_ssim(queries, candidates, batch=batch)
    q = queries.reshape(len(queries), -1)
    c = candidates.reshape(len(candidates), -1)
    # ‖q − c‖² = ‖q‖² + ‖c‖² − 2 q·c as one float32 matmul picks the neighbour; the distance to it is
    # then recomputed directly, so an exact copy reports exactly 0.
    squared = (q * q).sum(1)[:, None] + (c * c).sum(1)[None, :] - 2.0 * (q @ c.T)
    index = np.argmin(squared, axis=1)
    l2 = np.sqrt(np.mean((q.astype(np.float64) - c[index].astype(np.float64)) ** 2, axis=1))
    return {"ssim": best.scores, "ssim_index": best.index, "l2": l2.astype(np.float32), "l2_index": index.astype(np.int64)}


def memorisation_check(generated: Any, train: Any, heldout: Any, percentile: float = 1.0,
                       batch: Optional[int] = None) -> dict[str, Any]:
    """Does the generator copy training images?

    Finds every generated and every held-out real image's nearest *training* image (SSIM and L2,
    see :func:`nearest_neighbours`). Held-out real images were never trained on, so their nearest
    distances show how close an honest new image gets. Reported: the fraction of generated images
    whose nearest-training L2 is below the ``percentile``-th percentile (default 1st) of the held-out
    ones (``fraction_closer_than_real_l2``), and the SSIM analogue above the (100 − percentile)-th
    percentile. Well below ~percentile/100 is normal; much above means copying.
    Arrays for plotting are under ``"generated_nearest"`` and ``"heldout_nearest"``.
    """
    generated = as_float_images(generated, "generated")
    heldout = as_float_images(heldout, "held-out images")
    if len(heldout) == 0:
        raise ValueError("the memorisation check needs held-out real images; the held-out set is empty")
    gen = nearest_neighbours(generated, train, batch=batch)
    real = nearest_neighbours(heldout, train, batch=batch)
    l2_threshold = float(np.percentile(real["l2"], percentile))
    ssim_threshold = float(np.percentile(real["ssim"], 100 - percentile))
    flagged = np.nonzero(gen["l2"] < l2_threshold)[0]
    return {
        "percentile": percentile,
        "l2_threshold": l2_threshold,
        "ssim_threshold": ssim_threshold,
        "fraction_closer_than_real_l2": float(np.mean(gen["l2"] < l2_threshold)),
        "fraction_closer_than_real_ssim": float(np.mean(gen["ssim"] > ssim_threshold)),
        "flagged_indices": flagged[np.argsort(gen["l2"][flagged])][:50].tolist(),
        "generated_nearest_l2_median": float(np.median(gen["l2"])),
        "heldout_nearest_l2_median": float(np.median(real["l2"])),
        "generated_nearest_ssim_median": float(np.median(gen["ssim"])),
        "heldout_nearest_ssim_median": float(np.median(real["ssim"])),
        "generated_count": int(len(generated)),
        "heldout_count": int(len(heldout)),
        "train_count": int(len(train)),
        "generated_nearest": gen,
        "heldout_nearest": real,
    }


__all__ = ["nearest_neighbours", "memorisation_check"]
