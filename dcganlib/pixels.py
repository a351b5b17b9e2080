"""The pixel conventions, defined here and nowhere else.

* On disk, in the decoded cache and in every PNG/GIF dcganlib writes, images are **uint8 in [0, 255]**.
* Inside the networks, the losses and the metrics they are **float32 in [-1, 1]**, NHWC:
  ``x = u8 / 127.5 − 1`` (:func:`to_float`) and back ``u8 = clip(round((x + 1) · 127.5), 0, 255)``
  (:func:`to_uint8`); a generator's ``tanh`` output is already in that range.

Images *read from files a user made* (``evaluate --images``) keep the value range they were saved in
(:data:`GENERATED_VALUES_RULE`): uint8 as is, uint16 through :func:`uint16_to_uint8`, float through
:func:`range_to_uint8` from a declared or detected range (:func:`detect_value_range`). Nothing is
stretched, so the same images score the same whatever format they were saved in.

Functions that accept "images" take either convention and coerce with :func:`as_float_images` or
:func:`as_uint8_images`; ``(N, H, W)`` is read as grayscale. Wrong shapes or dtypes are programmer
errors (``ValueError``/``TypeError``); code that reads *user* files checks them before calling these.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

#: ``x = u8 / UINT8_SCALE − 1``: 255 maps to +1, 0 to −1.
UINT8_SCALE = np.float32(127.5)


def to_float(images_u8: Any) -> np.ndarray:
    """uint8 ``[0, 255]`` → float32 ``[-1, 1]`` via ``x / 127.5 − 1`` (any shape)."""
    array = np.asarray(images_u8)
    if array.dtype != np.uint8:
        raise TypeError(f"to_float expects uint8 images in [0, 255]; got dtype {array.dtype}")
    return array.astype(np.float32) / UINT8_SCALE - np.float32(1.0)


def to_uint8(images: Any) -> np.ndarray:
    """float ``[-1, 1]`` → uint8 ``[0, 255]`` via ``round((x + 1) · 127.5)``, clipped (any shape)."""
    array = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint((array + np.float32(1.0)) * UINT8_SCALE), 0, 255).astype(np.uint8)


#: ``--value-range`` name → the float range it declares.
#: Intensities above this share of the full range count as tissue, not background: for the NIfTI slice filter
#: (data.readers) and the tissue-intensity figure (metrics.artefacts).
TISSUE_LEVEL = 0.05
VALUE_RANGES = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0)}
#: Float values this far outside a range still count as inside it (rounding), and are clipped.
RANGE_TOLERANCE = 1e-3
GENERATED_VALUES_RULE = (
    "generated images are read with the value range they were saved in, never stretched: uint8 as is, uint16 as "
    "round(v/257), bool as 0/255, other integers only when within [0, 255]; float by the declared --value-range "
    "(-1,1: round((x+1)*127.5); 0,1: round(x*255)), else detected: all values within [-1, 1] with some below 0 "
    "-> [-1, 1]; all within [0, 1] is ambiguous and refused without --value-range; NaN/Inf refused; "
    "(N,H,W), (N,H,W,1), (N,1,H,W) and RGB(A) accepted (colour -> ITU-R 601 luma)")


def uint16_to_uint8(values: Any) -> np.ndarray:
    """uint16 ``[0, 65535]`` → uint8 via ``round(v / 257)`` (65535 → 255; ``u8 · 257`` round-trips exactly)."""
    array = np.asarray(values)
    if array.dtype != np.uint16:
        raise TypeError(f"uint16_to_uint8 expects uint16 values; got dtype {array.dtype}")
    return np.rint(array.astype(np.float64) / 257.0).astype(np.uint8)


def range_to_uint8(values: Any, value_range: tuple[float, float]) -> np.ndarray:
    """Float values in ``value_range = (low, high)`` → uint8 via ``round((x − low) / (high − low) · 255)``,
    clipped: ``(-1, 1)`` is :func:`to_uint8`, ``(0, 1)`` is ``round(x · 255)``."""
    low, high = (float(v) for v in value_range)
    array = np.asarray(values, dtype=np.float64)
    return np.clip(np.rint((array - low) / (high - low) * 255.0), 0, 255).astype(np.uint8)


def detect_value_range(low: float, high: float) -> Optional[tuple[float, float]]:
    """The range of float images whose values span ``[low, high]``: ``(-1, 1)`` when they lie within it
    (:data:`RANGE_TOLERANCE`) and some are clearly below 0 (under ``-RANGE_TOLERANCE``, so float noise
    around 0 in ``[0, 1]`` images decides nothing); None when they fit ``[0, 1]`` too (ambiguous) or
    neither range."""
    tolerance = RANGE_TOLERANCE
    if low >= -1 - tolerance and high <= 1 + tolerance and low < -tolerance:
        return VALUE_RANGES["-1,1"]
    return None


def tensor_to_float(batch_u8: Any) -> Any:
    """:func:`to_float` as TensorFlow ops, for input pipelines (a uint8 tensor → float32 ``[-1, 1]``)."""
    import tensorflow as tf

    return tf.cast(batch_u8, tf.float32) / UINT8_SCALE - 1.0


def _as_nhwc(images: Any, name: str) -> np.ndarray:
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise ValueError(f"{name} must be (N, H, W), (N, H, W, 1) or (N, H, W, 3); got shape {array.shape}")
    if array.dtype != np.uint8 and not (np.issubdtype(array.dtype, np.floating)
                                        or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must be uint8 [0, 255] or float [-1, 1]; got dtype {array.dtype}")
    return array


def _check_float_range(array: np.ndarray, name: str) -> None:
    if not array.size:
        return
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or Inf values (did training diverge?)")
    low, high = float(array.min()), float(array.max())
    if low < -1.001 or high > 1.001:
        raise ValueError(f"{name} must be float in [-1, 1] (or uint8); got values in [{low:.3g}, {high:.3g}]")


def as_float_images(images: Any, name: str = "images") -> np.ndarray:
    """``images`` as float32 NHWC in ``[-1, 1]``.

    uint8 goes through :func:`to_float`; float input must already lie in ``[-1, 1]`` (a tolerance of
    1e-3 absorbs rounding; values are then clipped) and be finite. ``(N, H, W)`` gains a channel axis.
    """
    array = _as_nhwc(images, name)
    if array.dtype == np.uint8:
        return to_float(array)
    array = array.astype(np.float32)
    _check_float_range(array, name)
    return np.clip(array, -1.0, 1.0)


def as_uint8_images(images: Any, name: str = "images") -> np.ndarray:
    """``images`` as uint8 NHWC in ``[0, 255]``: uint8 unchanged, float ``[-1, 1]`` through :func:`to_uint8`.

    A single ``(H, W)`` image becomes ``(1, H, W, 1)``. Raises ``ValueError`` for an empty array.
    """
    array = np.asarray(images)
    if array.ndim == 2:
        array = array[None]
    array = _as_nhwc(array, name)
    if array.shape[0] == 0:
        raise ValueError(f"no {name} to draw: the array is empty")
    if array.dtype == np.uint8:
        return array
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or Inf values (did training diverge?)")
    return to_uint8(array)


def stretch_contrast(images: Any) -> np.ndarray:
    """Each image linearly mapped from its own ``[min, max]`` onto ``[-1, 1]`` (float32 NHWC).

    For looking at outputs with a tiny range, such as an untrained generator's; a constant image
    stays at −1. Never used on images that are measured.
    """
    array = np.asarray(images, dtype=np.float32)
    axes = tuple(range(1, array.ndim))
    low = array.min(axis=axes, keepdims=True)
    span = array.max(axis=axes, keepdims=True) - low
    return np.where(span > 0, (array - low) / np.where(span > 0, span, 1.0) * 2.0 - 1.0, -1.0).astype(np.float32)


__all__ = ["TISSUE_LEVEL", "UINT8_SCALE", "VALUE_RANGES", "RANGE_TOLERANCE", "GENERATED_VALUES_RULE", "uint16_to_uint8",
           "range_to_uint8", "detect_value_range",
           "to_float", "to_uint8", "tensor_to_float", "as_float_images", "as_uint8_images",
           "stretch_contrast"]
