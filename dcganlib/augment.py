"""Differentiable augmentation for the discriminator's inputs (DiffAugment, Zhao et al. 2020).

With a few thousand training slices the discriminator memorises the real set and its gradients stop
being useful to G. DiffAugment applies the *same kind* of random transform to every image D sees —
real and generated, in the D and in the G update — and, because each transform is differentiable with
respect to the pixels, G still receives gradients through it. D never sees an un-augmented image, so
G is not pushed to reproduce the augmentations.

Policies (``Config.augment``, comma-separated, applied in this order):

* ``color`` — per image, brightness ``x + b`` with ``b ~ U(-0.5, 0.5)`` and contrast
  ``(x − mean) · c + mean`` with ``c ~ U(0.5, 1.5)``; (the saturation part of the paper's policy is
  left out: the images are grayscale);
* ``translation`` — per image, an integer shift of up to ``1/8`` of the side in each direction, the
  uncovered border filled with black (``-1``, the background of the slices);
* ``cutout`` — per image, a square of half the side at a random centre set to ``0`` (mid-grey).

Images are float32 NHWC in ``[-1, 1]``; outputs have the same shape (values may leave ``[-1, 1]``
after ``color``, as in the paper). Randomness is stateless: ``seed`` is a ``(2,)`` int tensor, so the
model's checkpointed seed generator makes augmentation reproducible and resumable.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from .config import AUGMENTATIONS as POLICIES
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(policy: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"translation,cutout"`` → ``("translation", "cutout")`` in canonical order; unknown names raise
    ``ValueError`` naming the valid ones (Config turns that into a ConfigError)."""
    if not policy:
        return ()
    names = [p.strip() for p in (policy.split(",") if isinstance(policy, str) else policy) if p.strip()]
    unknown = sorted(set(names) - set(POLICIES))
    if unknown:
        raise ValueError(f"unknown augmentation(s) {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
    return tuple(p for p in POLICIES if p in names)


def _split(seed: tf.Tensor, count: int) -> list[tf.Tensor]:
    return list(tf.unstack(tf.random.experimental.stateless_split(seed, num=count)))


def color(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Random brightness then contrast per image (see module docstring)."""
    s1, s2 = _split(seed, 2)
    shape = tf.stack([tf.shape(images)[0], 1, 1, 1])
    brightness = tf.random.stateless_uniform(shape, s1, -0.5, 0.5)  # the paper's x + (U(0,1) − 0.5) on [-1, 1]
    images = images + brightness
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    contrast = tf.random.stateless_uniform(shape, s2, 0.5, 1.5)
    return (images - mean) * contrast + mean


def translation(images: tf.Tensor, seed: tf.Tensor, ratio: float = TRANSLATION_RATIO) -> tf.Tensor:
    """Shift each image by integers ``(dy, dx)`` in ``[-ratio·S, ratio·S]``, filling with ``-1``."""
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    sy, sx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    s1, s2 = _split(seed, 2)
    dy = tf.random.stateless_uniform([batch, 1, 1], s1, -sy, sy + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([batch, 1, 1], s2, -sx, sx + 1, dtype=tf.int32)
    # Output pixel (y, x) reads input pixel (y - dy, x - dx) of the image padded by (sy, sx) with -1:
    # a gather, so the gradient flows to the pixels that were read.
    padded = tf.pad(images, [[0, 0], [sy, sy], [sx, sx], [0, 0]], constant_values=-1.0)
    rows = tf.range(height)[None, :, None] - dy + sy  # (B, H, 1)
    cols = tf.range(width)[None, None, :] - dx + sx  # (B, 1, W)
    rows = tf.broadcast_to(rows, [batch, height, width])
    cols = tf.broadcast_to(cols, [batch, height, width])
    index = tf.stack([rows, cols], axis=-1)  # (B, H, W, 2)
    return tf.gather_nd(padded, index, batch_dims=1)


def cutout(images: tf.Tensor, seed: tf.Tensor, ratio: float = CUTOUT_RATIO) -> tf.Tensor:
    """Set a ``ratio·S`` square at a random centre of each image to 0 (mid-grey)."""
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    ch, cw = int(height * ratio + 0.5), int(width * ratio + 0.5)
    s1, s2 = _split(seed, 2)
    cy = tf.random.stateless_uniform([batch, 1, 1], s1, 0, height + (1 - ch % 2), dtype=tf.int32)
    cx = tf.random.stateless_uniform([batch, 1, 1], s2, 0, width + (1 - cw % 2), dtype=tf.int32)
    ys = tf.range(height)[None, :, None]
    xs = tf.range(width)[None, None, :]
    inside = ((ys >= cy - ch // 2) & (ys < cy - ch // 2 + ch)) & ((xs >= cx - cw // 2) & (xs < cx - cw // 2 + cw))
    keep = tf.cast(tf.logical_not(inside), images.dtype)[..., None]
    return images * keep


_FUNCTIONS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(images: tf.Tensor, policy: str | Sequence[str] | None, seed: tf.Tensor) -> tf.Tensor:
    """Apply the policies of ``policy`` (see module docstring) to a batch; identity for an empty policy."""
    names = parse_policy(policy)
    if not names:
        return images
    images = tf.cast(images, tf.float32)
    for name, part in zip(names, _split(tf.cast(seed, tf.int32), len(names))):
        images = _FUNCTIONS[name](images, part)
    return images


def adaptive_augment(images: tf.Tensor, policy: str | Sequence[str] | None, seed: tf.Tensor,
                     probability: tf.Tensor) -> tf.Tensor:
    """Each policy of ``policy`` (in the order of :func:`diff_augment`) applied to each image with
    ``probability`` ``p`` in ``[0, 1]``, independently per image and policy (adaptive discriminator
    augmentation, Karras et al. 2020). Below ``p ≈ 0.8`` the augmented distribution still determines the
    clean one, so G is not pushed to reproduce the augmentations ("non-leaking"); ``p = 1`` is
    :func:`diff_augment`. Gradients flow to the pixels of the branch each image took."""
    names = parse_policy(policy)
    if not names:
        return images
    images = tf.cast(images, tf.float32)
    probability = tf.cast(probability, tf.float32)
    for name, part in zip(names, _split(tf.cast(seed, tf.int32), len(names))):
        apply_seed, draw_seed = _split(part, 2)
        chosen = tf.random.stateless_uniform(tf.stack([tf.shape(images)[0], 1, 1, 1]), draw_seed) < probability
        images = tf.where(chosen, _FUNCTIONS[name](images, apply_seed), images)
    return images


__all__ = ["POLICIES", "parse_policy", "diff_augment", "adaptive_augment", "color", "translation", "cutout"]
