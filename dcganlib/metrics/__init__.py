"""Image-quality metrics for GAN samples, one module per measure; :mod:`dcganlib.evaluate` runs them all.

* :mod:`.ssim`         — the SSIM engine (Wang et al. 2004, data range 2): pairs and all-pairs matrices;
* :mod:`.ssim_family`  — best-match SSIM, paired SSIM, diversity (mean pairwise SSIM), MS-SSIM;
* :mod:`.two_sample`   — classifier two-sample test with accuracy/AUC confidence intervals;
* :mod:`.distances`    — Fréchet and kernel (MMD²) distances between feature sets;
* :mod:`.inception`    — FID/KID on InceptionV3 features, only from local weights;
* :mod:`.memorisation` — nearest training image of every generated and held-out image.

Inputs are images as uint8 ``[0, 255]`` or float ``[-1, 1]``, ``(N, H, W[, C])`` (:mod:`dcganlib.pixels`).
"""

from .distances import feature_statistics, frechet_distance, kernel_distance
from .inception import fid_kid, find_inception_weights, inception_features, inception_preprocess
from .memorisation import memorisation_check, nearest_neighbours
from .ssim import SSIM_DEFINITION, ssim, ssim_matrix
from .ssim_family import (BestMatch, PairwiseSsim, best_match_ssim, mean_pairwise_ssim, ms_ssim_diversity, paired_ssim,
                          pairwise_ssim)
from .two_sample import roc_auc, roc_curve, two_sample_test

__all__ = ["SSIM_DEFINITION", "ssim", "ssim_matrix", "BestMatch", "best_match_ssim", "paired_ssim",
           "pairwise_ssim", "PairwiseSsim", "mean_pairwise_ssim", "ms_ssim_diversity",
           "two_sample_test", "roc_auc", "roc_curve",
           "feature_statistics", "frechet_distance", "kernel_distance", "find_inception_weights",
           "inception_preprocess", "inception_features", "fid_kid", "nearest_neighbours", "memorisation_check"]
