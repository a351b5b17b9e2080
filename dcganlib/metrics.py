"""Image-quality metrics for GAN samples: the SSIM family, diversity, a two-sample classifier test,
Fréchet/kernel distances, and a memorisation check.

**SSIM everywhere in dcganlib** is Wang et al. (2004), "Image quality assessment: from error
visibility to structural similarity": an 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03,
computed on images in ``[-1, 1]`` with data range L = 2 (so C1 = (0.01·2)², C2 = (0.03·2)²), averaged
over the 'valid' window positions and then over channels. This is exactly
``tf.image.ssim(a, b, max_val=2.0)`` and ``skimage.metrics.structural_similarity(a, b,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2)``. (``max_val=1`` on
``[-1, 1]`` data — a common bug — shrinks C1 and C2 four-fold and inflates nothing but noise.)

Images may be given as uint8 ``[0, 255]`` (mapped with ``x / 127.5 - 1``) or float in ``[-1, 1]``,
shaped ``(N, H, W)`` or ``(N, H, W, C)``; every function converts them with :func:`as_float_images`.

Speed: :func:`ssim_matrix` computes all Na × Nb SSIM values without a Python loop over pairs. Only
the cross term σ_ab = G * (a·b) − μ_a μ_b is pairwise; the Gaussian filter is separable, so the
horizontal pass is one batched matrix product over the 11 taps of every row window
(``(H·W', Na, 11) @ (H·W', 11, Nb)``) and the vertical pass plus the SSIM map and its mean are one
XLA-fused kernel. 1,000 × 1,000 images of 64×64 take ≈ 5 s on 2 CPU cores (see the README).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import keras
import numpy as np

from .errors import DataError

# Wang et al. 2004 constants, fixed library-wide so every number is comparable.
SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_DATA_RANGE = 2.0  # images live in [-1, 1]
_C1 = (SSIM_K1 * SSIM_DATA_RANGE) ** 2
_C2 = (SSIM_K2 * SSIM_DATA_RANGE) ** 2

#: Sides below this cannot use the 5-scale MS-SSIM of Wang et al. 2003 with an 11-px window:
#: the coarsest scale (side / 16) must still hold one 11-px window → side > 160.
MS_SSIM_MIN_SIZE = 161

SSIM_DEFINITION = (
    "SSIM of Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, images in [-1, 1] "
    "with data range 2 (tf.image.ssim(a, b, max_val=2.0) == skimage structural_similarity(a, b, "
    "gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2)); mean over valid "
    "window positions, then over channels."
)

# Where Keras caches the ImageNet InceptionV3 weights without the classifier head.
INCEPTION_WEIGHTS_NAME = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_SIZE = 299

# Per-step memory of ssim_matrix: the (H·W', batch, chunk_b) products tensor, and the row windows of a
# reference chunk. At 64 px and 1,000 references the first gives ~55 images per step, which measured
# ~2x faster than 16 (fewer, larger matmuls) while staying well inside a laptop's memory.
_PRODUCTS_BUDGET_BYTES = 768 * 2**20
_WINDOWS_BUDGET_BYTES = 256 * 2**20


# ------------------------------------------------------------------------------------------------
# input handling
def as_float_images(images: Any, name: str = "images") -> np.ndarray:
    """Return ``images`` as float32 NHWC in ``[-1, 1]``.

    uint8 input is mapped with ``x / 127.5 - 1``; float input must already lie in ``[-1, 1]``
    (a tolerance of 1e-3 absorbs rounding; values are then clipped). ``(N, H, W)`` gains a channel.
    """
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise DataError(f"{name} must be (N, H, W), (N, H, W, 1) or (N, H, W, 3); got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 127.5 - 1.0
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataError(f"{name} must be uint8 [0, 255] or float [-1, 1]; got dtype {array.dtype}")
    array = array.astype(np.float32)
    if array.size:
        if not np.isfinite(array).all():
            raise DataError(f"{name} contain NaN or Inf values (did training diverge?)")
        low, high = float(array.min()), float(array.max())
        if low < -1.001 or high > 1.001:
            raise DataError(f"{name} must be float in [-1, 1] (or uint8); got values in [{low:.3g}, {high:.3g}]")
    return np.clip(array, -1.0, 1.0)


def _check_ssim_pair(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.shape[1:] != b.shape[1:]:
        raise DataError(f"{names[0]} {a.shape[1:]} and {names[1]} {b.shape[1:]} must have the same "
                        "(H, W, C) to compare them")
    if min(a.shape[1:3]) < SSIM_FILTER_SIZE:
        raise DataError(f"SSIM needs images of at least {SSIM_FILTER_SIZE}x{SSIM_FILTER_SIZE} px "
                        f"(the Gaussian window); got {a.shape[1]}x{a.shape[2]}")


def _gaussian_taps() -> np.ndarray:
    offsets = np.arange(SSIM_FILTER_SIZE, dtype=np.float64) - (SSIM_FILTER_SIZE - 1) / 2
    taps = np.exp(-(offsets**2) / (2 * SSIM_FILTER_SIGMA**2))
    return (taps / taps.sum()).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# SSIM
def ssim(a: Any, b: Any) -> np.ndarray:
    """SSIM of image ``a[i]`` with ``b[i]`` for every i: ``(N,)`` float32 (see the module docstring).

    ``a``, ``b``: ``(N, H, W[, C])`` uint8 or float in ``[-1, 1]``, H, W ≥ 11. ``ssim(x, x) == 1``.
    """
    import tensorflow as tf

    a, b = as_float_images(a, "a"), as_float_images(b, "b")
    _check_ssim_pair(a, b, ("a", "b"))
    if len(a) != len(b):
        raise DataError(f"ssim compares a[i] with b[i]: got {len(a)} and {len(b)} images "
                        "(use ssim_matrix for all pairs)")
    out = [tf.image.ssim(tf.constant(a[i:i + 512]), tf.constant(b[i:i + 512]), max_val=SSIM_DATA_RANGE,
                         filter_size=SSIM_FILTER_SIZE, filter_sigma=SSIM_FILTER_SIGMA,
                         k1=SSIM_K1, k2=SSIM_K2).numpy()
           for i in range(0, len(a), 512)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0,), np.float32)


def _window_stats(planes: np.ndarray):
    """Gaussian-filtered mean and variance of ``(N, H, W)`` planes, 'valid' → ``(H', W', N)`` each."""
    import tensorflow as tf

    taps = _gaussian_taps()
    rows = tf.constant(taps.reshape(1, -1, 1, 1))
    cols = tf.constant(taps.reshape(-1, 1, 1, 1))

    def blur(x):
        x = tf.nn.conv2d(x, rows, 1, "VALID")
        return tf.nn.conv2d(x, cols, 1, "VALID")

    x = tf.constant(planes[..., None])
    mean = blur(x)
    var = blur(x * x) - mean * mean
    return tf.transpose(mean[..., 0], [1, 2, 0]), tf.transpose(var[..., 0], [1, 2, 0])


def _row_windows(planes: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` → ``(H·W', N, 11)``: every horizontal 11-px window, for the batched product."""
    n, h, w = planes.shape
    width = w - SSIM_FILTER_SIZE + 1
    windows = np.lib.stride_tricks.sliding_window_view(planes, SSIM_FILTER_SIZE, axis=2)  # N,H,W',11
    return np.ascontiguousarray(windows.reshape(n, h * width, SSIM_FILTER_SIZE).transpose(1, 0, 2))


_ssim_kernels: dict[str, Any] = {}


def _ssim_chunk_fn():
    """The compiled pairwise kernel, built once per process. Shapes are read at run time so the
    function is traced once; XLA keeps one compiled program per block shape, and blocks are padded
    to a single shape per ssim_matrix call."""
    if "block" in _ssim_kernels:
        return _ssim_kernels["block"]
    import tensorflow as tf

    taps = _gaussian_taps()

    @tf.function(jit_compile=True, reduce_retracing=True)
    def ssim_block(rows_a, rows_b, mean_a, cmean_a, lum_a, var_a, mean_b, cmean_b, lum_b, var_b):
        # horizontal Gaussian pass of a'_i·b'_j for every pair: one batched matmul over the 11 taps
        products = tf.matmul(rows_a, rows_b, transpose_b=True)  # (H·W', ca, cb)
        valid, width = tf.shape(mean_a)[0], tf.shape(mean_a)[1]
        products = tf.reshape(products, [-1, width, tf.shape(rows_a)[1], tf.shape(rows_b)[1]])
        smoothed = taps[0] * products[0:valid]
        for k in range(1, SSIM_FILTER_SIZE):  # vertical pass; XLA fuses it with the map below
            smoothed = smoothed + taps[k] * products[k:k + valid]
        covariance = smoothed - cmean_a[:, :, :, None] * cmean_b[:, :, None, :]
        numerator = (2.0 * mean_a[:, :, :, None] * mean_b[:, :, None, :] + _C1) * (2.0 * covariance + _C2)
        denominator = ((lum_a[:, :, :, None] + lum_b[:, :, None, :])
                       * (var_a[:, :, :, None] + var_b[:, :, None, :]))
        return tf.reduce_mean(numerator / denominator, axis=[0, 1])

    _ssim_kernels["block"] = ssim_block
    return ssim_block


def _pad(array: np.ndarray, axis: int, count: int, value: float = 0.0) -> np.ndarray:
    if count == 0:
        return array
    width = [(0, 0)] * array.ndim
    width[axis] = (0, count)
    return np.pad(array, width, constant_values=value)


def _pairwise_plane(a: np.ndarray, b: np.ndarray, batch: Optional[int]) -> np.ndarray:
    """All-pairs SSIM of single-channel planes ``a (Na, H, W)``, ``b (Nb, H, W)`` → ``(Na, Nb)``."""
    na, h, w = a.shape
    nb = b.shape[0]
    positions = h * (w - SSIM_FILTER_SIZE + 1)
    taps = _gaussian_taps()
    # σ_ab = G*(ab) − μ_a μ_b is unchanged when each image is shifted by a constant (G sums to 1),
    # so mean-free images are multiplied: much less float32 cancellation than raw a·b.
    a_shift = a.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)
    b_shift = b.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)
    mean_a, var_a = (t.numpy() for t in _window_stats(a))
    mean_b, var_b = (t.numpy() for t in _window_stats(b))
    stats_a = (mean_a, mean_a - a_shift, mean_a * mean_a + _C1, var_a + _C2)
    stats_b = (mean_b, mean_b - b_shift, mean_b * mean_b, var_b)
    rows_a = _row_windows(a - a_shift[:, None, None]) * taps  # the horizontal weights ride on a

    # chunk sizes from a memory budget: row windows of a b-chunk, then the (H·W', ca, cb) products
    chunk_b = int(max(1, min(nb, _WINDOWS_BUDGET_BYTES // (positions * SSIM_FILTER_SIZE * 4))))
    if batch is None:
        batch = _PRODUCTS_BUDGET_BYTES // (positions * chunk_b * 4)
    batch = int(max(1, min(batch, na)))
    kernel = _ssim_chunk_fn()
    result = np.empty((na, nb), dtype=np.float32)
    for j0 in range(0, nb, chunk_b):
        j1 = min(nb, j0 + chunk_b)
        pad_b = chunk_b - (j1 - j0)  # pad every call to one shape, so XLA compiles once
        rows_b = _pad(_row_windows(b[j0:j1] - b_shift[j0:j1, None, None]), 1, pad_b)
        block_b = [_pad(s[:, :, j0:j1], 2, pad_b) for s in stats_b]
        for i0 in range(0, na, batch):
            i1 = min(na, i0 + batch)
            pad_a = batch - (i1 - i0)
            block_a = [_pad(s[:, :, i0:i1], 2, pad_a, 1.0) for s in stats_a]
            block = kernel(_pad(rows_a[:, i0:i1], 1, pad_a), rows_b, *block_a, *block_b).numpy()
            result[i0:i1, j0:j1] = block[: i1 - i0, : j1 - j0]
    return result


def ssim_matrix(a: Any, b: Any, batch: Optional[int] = None) -> np.ndarray:
    """SSIM of every image of ``a`` with every image of ``b``: ``(Na, Nb)`` float32 in [-1, 1].

    ``a``, ``b``: ``(N, H, W[, C])`` uint8 or float in ``[-1, 1]``, same H, W, C (≥ 11 px). Exactly
    ``tf.image.ssim(a[i], b[j], max_val=2.0)`` (Wang et al. 2004, see the module docstring),
    computed batched: ``batch`` images of ``a`` per step (default: from a ~768 MB memory budget).
    Multi-channel images: the mean of the per-channel SSIMs, as in ``tf.image.ssim``.
    """
    a, b = as_float_images(a, "a"), as_float_images(b, "b")
    _check_ssim_pair(a, b, ("a", "b"))
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    channels = a.shape[-1]
    total = np.zeros((len(a), len(b)), dtype=np.float32)
    for c in range(channels):
        total += _pairwise_plane(np.ascontiguousarray(a[..., c]), np.ascontiguousarray(b[..., c]), batch)
    return total / channels


# ------------------------------------------------------------------------------------------------
# the SSIM family
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
        raise DataError("best-match SSIM needs at least one reference image; the reference set is empty")
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
        raise DataError("paired SSIM needs generated and real images; one of the sets is empty")
    rng = np.random.default_rng([seed, 0x70616972])  # "pair"
    if len(real) >= len(generated):
        partners = rng.permutation(len(real))[: len(generated)]
    else:
        partners = rng.integers(0, len(real), size=len(generated))
    scores = ssim(generated, real[partners])
    return {"mean": float(scores.mean()), "median": float(np.median(scores)), "std": float(scores.std()),
            "count": int(len(scores)), "scores": scores}


def pairwise_ssim(images: Any, batch: Optional[int] = None) -> np.ndarray:
    """SSIM of every image with every other image of one set: ``(N, N)`` float32, diagonal 1."""
    images = as_float_images(images)
    return ssim_matrix(images, images, batch=batch)


def mean_pairwise_ssim(images: Any, max_images: Optional[int] = None, seed: int = 0,
                       batch: Optional[int] = None) -> float:
    """Diversity: the mean SSIM over all distinct pairs (i ≠ j) of one set; identical images give 1.

    Lower means more diverse. Compare generated with real: mode collapse shows as generated ≫ real.
    ``max_images`` draws a seeded subset first (the cost grows with N²).
    """
    images = as_float_images(images)
    if max_images is not None and len(images) > max_images:
        pick = np.random.default_rng([seed, 0x64697673]).choice(len(images), max_images, replace=False)
        images = images[np.sort(pick)]
    if len(images) < 2:
        raise DataError(f"diversity needs at least 2 images, got {len(images)}")
    matrix = ssim_matrix(images, images, batch=batch).astype(np.float64)
    n = len(images)
    return float((matrix.sum() - np.trace(matrix)) / (n * (n - 1)))


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
        raise DataError(f"MS-SSIM diversity needs at least 2 images, got {len(images)}")
    rng = np.random.default_rng([seed, 0x6d737373])
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


# ------------------------------------------------------------------------------------------------
# two-sample classifier test
def _two_sample_classifier(shape: tuple[int, ...], seed: int):
    import keras

    def init(offset: int):
        return keras.initializers.GlorotUniform(seed=seed * 16 + offset)

    inputs = keras.Input(shape=shape)
    x = inputs
    for k, filters in enumerate((16, 32, 64)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", kernel_initializer=init(k))(x)
        x = keras.layers.LeakyReLU(negative_slope=0.2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, kernel_initializer=init(7))(x)  # logit: > 0 means "real"
    model = keras.Model(inputs, outputs, name="two_sample_classifier")
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return model


def roc_auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> tuple[float, float]:
    """ROC AUC = P(score of a positive > score of a negative) (ties count ½), and its DeLong variance.

    DeLong, DeLong & Clarke-Pearson (1988): with the structural components
    V10_i = mean_j ψ(x_i, y_j) and V01_j = mean_i ψ(x_i, y_j), Var(AUC) = s²(V10)/m + s²(V01)/n.
    """
    x = np.asarray(positive_scores, dtype=np.float64)[:, None]
    y = np.asarray(negative_scores, dtype=np.float64)[None, :]
    psi = (x > y).astype(np.float64) + 0.5 * (x == y)
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    auc = float(psi.mean())
    var = (v10.var(ddof=1) / len(v10) if len(v10) > 1 else 0.0) + (v01.var(ddof=1) / len(v01) if len(v01) > 1 else 0.0)
    return auc, float(var)


def roc_curve(positive_scores: np.ndarray, negative_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every threshold, from (0, 0) to (1, 1)."""
    scores = np.concatenate([positive_scores, negative_scores]).astype(np.float64)
    labels = np.concatenate([np.ones(len(positive_scores)), np.zeros(len(negative_scores))])
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tpr = np.r_[0.0, np.cumsum(labels)[last_of_tie] / max(1, labels.sum())]
    fpr = np.r_[0.0, np.cumsum(1 - labels)[last_of_tie] / max(1, (1 - labels).sum())]
    return fpr, tpr


def _wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    if trials == 0:
        return float("nan"), float("nan")
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def two_sample_test(real: Any, generated: Any, seed: int = 0, *, epochs: int = 10, batch_size: int = 32,
                    max_size: int = 64) -> dict[str, Any]:
    """Classifier two-sample test: can a fresh small CNN tell ``real`` from ``generated``?

    Both sets are cut to the same size n (seeded), each halved; a 3-conv CNN (16/32/64 filters, stride
    2, LeakyReLU, global average pool, one logit) is trained for ``epochs`` on the first halves (Adam
    1e-3, binary cross-entropy) and scored on the unseen second halves. Images larger than
    ``max_size`` are area-downsampled to it first (the test stays seconds on a CPU).

    Returns held-out ``accuracy`` (logit > 0 = "real") with a 95 % Wilson interval, ``auc`` (ROC
    AUC, real = positive) with a 95 % DeLong interval (normal approximation, clipped to [0, 1]),
    the sample counts, and ``roc`` = {"fpr", "tpr"} arrays for plotting. 0.5 = indistinguishable,
    1.0 = perfectly separable. Deterministic for a given ``seed`` (seeded weights and shuffling).
    """
    import tensorflow as tf

    real = as_float_images(real, "real")
    generated = as_float_images(generated, "generated")
    if real.shape[1:] != generated.shape[1:]:
        raise DataError(f"real {real.shape[1:]} and generated {generated.shape[1:]} images differ in shape")
    n = min(len(real), len(generated))
    if n < 8:
        raise DataError(f"the two-sample test needs at least 8 real and 8 generated images; got {len(real)} "
                        f"and {len(generated)}")
    rng = np.random.default_rng([seed, 0x74777374])
    real = real[rng.permutation(len(real))[:n]]
    generated = generated[rng.permutation(len(generated))[:n]]
    if max(real.shape[1:3]) > max_size:
        def shrink(x):
            return tf.image.resize(x, (max_size, max_size), method="area").numpy()
        real, generated = shrink(real), shrink(generated)
    half = n // 2
    x_train = np.concatenate([real[:half], generated[:half]])
    y_train = np.r_[np.ones(half), np.zeros(half)].astype(np.float32)
    x_test = np.concatenate([real[half:], generated[half:]])

    model = _two_sample_classifier(real.shape[1:], seed)
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        model.fit(x_train[order], y_train[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    logits = model.predict(x_test, batch_size=256, verbose=0)[:, 0].astype(np.float64)
    real_scores, generated_scores = logits[: n - half], logits[n - half:]
    correct = int((real_scores > 0).sum() + (generated_scores <= 0).sum())
    auc, var = roc_auc(real_scores, generated_scores)
    half_width = 1.959964 * math.sqrt(var)
    fpr, tpr = roc_curve(real_scores, generated_scores)
    return {
        "accuracy": correct / len(logits),
        "accuracy_ci95": list(_wilson_interval(correct, len(logits))),
        "auc": auc,
        "auc_ci95": [max(0.0, auc - half_width), min(1.0, auc + half_width)],
        "train_per_class": half,
        "test_per_class": n - half,
        "epochs": epochs,
        "image_size": int(real.shape[1]),
        "seed": seed,
        "method": "fresh CNN (3 stride-2 convs 16/32/64, LeakyReLU 0.2, global average pool, 1 logit), "
                  "Adam 1e-3, trained on half of each set, scored on the other half; accuracy CI: Wilson; "
                  "AUC CI: DeLong (normal approximation)",
        "roc": {"fpr": fpr, "tpr": tpr},
    }


# ------------------------------------------------------------------------------------------------
# Fréchet and kernel distances
def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (float64, ``N - 1`` normalisation) of ``(N, D)`` features."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise DataError(f"features must be (N >= 2, D); got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: Any, cov1: Any, mu2: Any, cov2: Any) -> float:
    """Fréchet (2-Wasserstein) distance² between N(mu1, cov1) and N(mu2, cov2):

    ``‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)`` (Dowson & Landau 1982; FID of Heusel et al. 2017 when
    the features are InceptionV3 pool features). The matrix square root is scipy's ``sqrtm``; round-off
    imaginary parts are dropped, and a near-singular product is regularised with 1e-6·I (as is usual
    for FID) only when the plain root is not finite. Returns a float ≥ 0.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, dtype=np.float64)), np.atleast_2d(np.asarray(cov2, dtype=np.float64))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (len(mu1), len(mu1)):
        raise DataError(f"Fréchet distance needs means (D,) and covariances (D, D) of equal D; got {mu1.shape}, "
                        f"{cov1.shape}, {mu2.shape}, {cov2.shape}")
    with warnings.catch_warnings():  # singular products are expected (rank-deficient features); handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov1 @ cov2)
        if not np.isfinite(root).all():
            offset = np.eye(len(mu1)) * 1e-6
            root = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    if np.iscomplexobj(root):
        scale = max(1.0, float(np.abs(root).max()))
        if np.abs(root.imag).max() > 1e-3 * scale:
            raise DataError("Fréchet distance: the covariance product has a large imaginary square root "
                            "(too few samples for the feature dimension?)")
        root = root.real
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(root))
    return max(0.0, value)


def kernel_inception_distance(features1: Any, features2: Any, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> dict[str, float]:
    """Unbiased MMD² with the cubic polynomial kernel k(x, y) = (xᵀy / D + 1)³ (Bińkowski et al. 2018),
    averaged over ``subsets`` random subsets of ``min(subset_size, N1, N2)`` samples from each set.

    KID when the features are InceptionV3 pool features. Returns ``{"mean", "std", "subsets",
    "subset_size"}``; ≈ 0 for samples of one distribution (it can be slightly negative: unbiased).
    """
    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise DataError(f"KID needs two (N, D) feature arrays of equal D; got {f1.shape} and {f2.shape}")
    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise DataError("KID needs at least 2 samples in each set")
    dim = f1.shape[1]
    rng = np.random.default_rng([seed, 0x6b6964])
    values = []
    for _ in range(subsets):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        kxx = (x @ x.T / dim + 1) ** 3
        kyy = (y @ y.T / dim + 1) ** 3
        kxy = (x @ y.T / dim + 1) ** 3
        values.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                      - 2 * kxy.mean())
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "subsets": subsets, "subset_size": m}


def find_inception_weights(path: Optional[str | os.PathLike] = None) -> tuple[Optional[Path], str]:
    """Locate InceptionV3 ImageNet weights without downloading: ``path`` if given, else the Keras cache.

    Returns ``(path, "")`` or ``(None, reason)``. The cache file is
    ``$KERAS_HOME/models/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`` (KERAS_HOME defaults
    to ``~/.keras``).
    """
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise DataError(f"--inception-weights {path}: file not found")
        return path, ""
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    cached = home / "models" / INCEPTION_WEIGHTS_NAME
    if cached.is_file():
        return cached, ""
    return None, (f"InceptionV3 weights not found ({cached} is absent and no --inception-weights FILE was "
                  "given); FID/KID skipped — dcganlib never downloads at run time")


def inception_preprocess(images: Any, batch: int = 64):
    """Images → the InceptionV3 input: ``(N, 299, 299, 3)`` float32 in ``[-1, 1]``.

    Bilinear resize to 299 px; grayscale replicated to 3 channels. ``[-1, 1]`` is what
    ``keras.applications.inception_v3.preprocess_input`` produces from ``[0, 255]``, and it is
    already the library's range, so values pass unchanged.
    """
    import tensorflow as tf

    images = as_float_images(images)
    out = []
    for i in range(0, len(images), batch):
        x = tf.image.resize(tf.constant(images[i:i + batch]), (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        out.append(tf.clip_by_value(x, -1.0, 1.0).numpy())
    return np.concatenate(out) if out else np.zeros((0, INCEPTION_SIZE, INCEPTION_SIZE, 3), np.float32)


def inception_features(images: Any, weights: str | os.PathLike, batch: int = 32) -> np.ndarray:
    """InceptionV3 (ImageNet, no top, global average pool) features ``(N, 2048)`` float64."""
    import keras

    model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=str(weights),
                                           input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    images = as_float_images(images)
    features = [model.predict(inception_preprocess(images[i:i + batch]), verbose=0)
                for i in range(0, len(images), batch)]
    return np.concatenate(features).astype(np.float64)


def fid_kid(real: Any, generated: Any, weights: Optional[str | os.PathLike] = None, seed: int = 0) -> dict[str, Any]:
    """FID and KID on InceptionV3 features, or ``{"available": False, "reason": ...}`` without weights.

    Never downloads: ``weights`` is a file, else the Keras cache is used if present (see
    :func:`find_inception_weights`).
    """
    path, reason = find_inception_weights(weights)
    if path is None:
        return {"available": False, "reason": reason}
    started = time.perf_counter()
    real_features = inception_features(real, path)
    generated_features = inception_features(generated, path)
    fid = frechet_distance(*feature_statistics(real_features), *feature_statistics(generated_features))
    kid = kernel_inception_distance(real_features, generated_features, seed=seed)
    return {"available": True, "weights": str(path), "fid": fid, "kid": kid, "real_count": len(real_features),
            "generated_count": len(generated_features), "seconds": time.perf_counter() - started,
            "definition": "InceptionV3 (ImageNet) global-average-pool features of images resized bilinearly to "
                          "299 px, gray replicated to 3 channels, range [-1, 1]; FID = Fréchet distance of "
                          "Gaussian fits; KID = unbiased MMD² with kernel (x·y/2048 + 1)³ over subsets"}


# ------------------------------------------------------------------------------------------------
# memorisation
def nearest_neighbours(queries: Any, candidates: Any, batch: Optional[int] = None) -> dict[str, np.ndarray]:
    """For each query image its nearest candidate image by SSIM (highest) and by L2 (smallest).

    L2 is the root-mean-square pixel difference in ``[-1, 1]`` units (0 = identical, 2 = opposite).
    Returns ``{"ssim", "ssim_index", "l2", "l2_index"}`` arrays of length N_queries.
    """
    queries = as_float_images(queries, "queries")
    candidates = as_float_images(candidates, "candidates")
    if len(candidates) == 0:
        raise DataError("nearest-neighbour search needs at least one candidate image")
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
        raise DataError("the memorisation check needs held-out real images; the held-out set is empty")
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


# ------------------------------------------------------------------------------------------------
# during training
class QualityTracker(keras.callbacks.Callback):
    """Per-epoch image quality on a fixed sample, written into the epoch's ``logs``.

    Every ``every`` epochs (and always after the first) the model's ``generator`` turns one fixed
    noise batch (``sample_count`` × ``latent_dim``, seeded) into images, and the tracker adds
    ``logs["ssim_best_match"]`` (mean best-match SSIM against a fixed real ``reference`` of at most
    ``reference_count`` images) and ``logs["ssim_diversity"]`` (mean pairwise SSIM of the generated
    sample; compare with the real reference's, stored as :attr:`reference_diversity`). Other epochs
    get NaN, so CSV columns stay aligned. Place it *before* CSVLogger-like callbacks in the list.
    ``latent_dim=None`` reads it from the generator's input. ≈ 0.1–0.3 s per epoch at 64 px.
    """

    def __init__(self, reference: Any, latent_dim: Optional[int] = None, sample_count: int = 64, seed: int = 0,
                 every: int = 1, reference_count: int = 256) -> None:
        super().__init__()
        reference = as_float_images(reference, "reference")
        if len(reference) == 0:
            raise DataError("QualityTracker needs at least one real reference image")
        if every < 1 or sample_count < 2:
            raise DataError(f"QualityTracker: every must be >= 1 and sample_count >= 2; got {every}, {sample_count}")
        if len(reference) > reference_count:
            pick = np.random.default_rng([seed, 0x71747263]).choice(len(reference), reference_count, replace=False)
            reference = reference[np.sort(pick)]
        self.reference = reference
        self.latent_dim = latent_dim
        self.sample_count = sample_count
        self.seed = seed
        self.every = every
        self._noise: Optional[np.ndarray] = None
        self.reference_diversity = mean_pairwise_ssim(reference) if len(reference) > 1 else float("nan")

    def _generator(self):
        if hasattr(self.model, "sampling_generator"):  # a DCGAN: its EMA copy when it keeps one
            return self.model.sampling_generator()
        generator = getattr(self.model, "generator", None)
        if generator is None:
            raise DataError("QualityTracker must be attached to a model with a .generator (dcganlib DCGAN)")
        return generator

    def noise(self) -> np.ndarray:
        if self._noise is None:
            dim = self.latent_dim or int(self._generator().input_shape[-1])
            self._noise = np.random.default_rng([self.seed, 0x7a]).standard_normal(
                (self.sample_count, dim)).astype(np.float32)
        return self._noise

    def measure(self) -> dict[str, float]:
        """Generate the fixed sample now and return the two figures."""
        images = np.asarray(self._generator()(self.noise(), training=False), dtype=np.float32)
        images = np.clip(images, -1.0, 1.0)
        return {"ssim_best_match": float(best_match_ssim(images, self.reference).scores.mean()),
                "ssim_diversity": mean_pairwise_ssim(images)}

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if logs is None:
            return
        if epoch == 0 or (epoch + 1) % self.every == 0 or epoch == (self.params or {}).get("epochs", 0) - 1:
            logs.update(self.measure())
        else:
            logs.update({"ssim_best_match": float("nan"), "ssim_diversity": float("nan")})
