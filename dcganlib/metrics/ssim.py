"""The SSIM engine: exact SSIM of Wang et al. (2004) for pairs and, batched, for every pair of two sets.

**SSIM everywhere in dcganlib** is Wang et al. (2004), "Image quality assessment: from error
visibility to structural similarity": an 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03,
computed on images in ``[-1, 1]`` with data range L = 2 (so C1 = (0.01·2)², C2 = (0.03·2)²), averaged
over the 'valid' window positions and then over channels. This is exactly
``tf.image.ssim(a, b, max_val=2.0)`` and ``skimage.metrics.structural_similarity(a, b,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2)``. (``max_val=1`` on
``[-1, 1]`` data — a common bug — shrinks C1 and C2 four-fold and inflates nothing but noise.)

Images may be given as uint8 ``[0, 255]`` or float in ``[-1, 1]``, shaped ``(N, H, W)`` or
``(N, H, W, C)`` (:func:`dcganlib.pixels.as_float_images`).

Speed: :func:`ssim_matrix` computes all Na × Nb SSIM values without a Python loop over pairs. Only
the cross term σ_ab = G * (a·b) − μ_a μ_b is pairwise; the Gaussian filter is separable, so the
horizontal pass is one batched matrix product over the 11 taps of every row window
(``(H·W', Na, 11) @ (H·W', 11, Nb)``) and the vertical pass plus the SSIM map and its mean are one
XLA-fused kernel (timings: README, Performance).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..pixels import as_float_images

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
    f"SSIM of Wang et al. 2004: {SSIM_FILTER_SIZE}x{SSIM_FILTER_SIZE} Gaussian window, sigma {SSIM_FILTER_SIGMA}, "
    f"K1 {SSIM_K1}, K2 {SSIM_K2}, images in [-1, 1] with data range {SSIM_DATA_RANGE:g} (tf.image.ssim(a, b, "
    f"max_val={SSIM_DATA_RANGE}) == skimage structural_similarity(a, b, gaussian_weights=True, "
    f"sigma={SSIM_FILTER_SIGMA}, use_sample_covariance=False, data_range={SSIM_DATA_RANGE:g})); mean over valid "
    "window positions, then over channels."
)

# Per-step memory of ssim_matrix: the (H·W', batch, chunk_b) products tensor, and the row windows of a
# reference chunk. At 64 px and 1,000 references the first gives ~55 images per step, which measured
# ~2x faster than 16 (fewer, larger matmuls) while staying well inside a laptop's memory.
_PRODUCTS_BUDGET_BYTES = 768 * 2**20
_WINDOWS_BUDGET_BYTES = 256 * 2**20



# ------------------------------------------------------------------------------------------------
def _check_ssim_pair(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"{names[0]} {a.shape[1:]} and {names[1]} {b.shape[1:]} must have the same "
                        "(H, W, C) to compare them")
    if min(a.shape[1:3]) < SSIM_FILTER_SIZE:
        raise ValueError(f"SSIM needs images of at least {SSIM_FILTER_SIZE}x{SSIM_FILTER_SIZE} px "
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
        raise ValueError(f"ssim compares a[i] with b[i]: got {len(a)} and {len(b)} images "
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


__all__ = ["SSIM_FILTER_SIZE", "SSIM_FILTER_SIGMA", "SSIM_K1", "SSIM_K2", "SSIM_DATA_RANGE", "MS_SSIM_MIN_SIZE",
           "SSIM_DEFINITION", "ssim", "ssim_matrix"]
