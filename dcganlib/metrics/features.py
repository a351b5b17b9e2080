"""An offline feature space: a fixed, randomly initialised CNN (no download, no training).

Fréchet distance, KID and precision/recall/density/coverage need images embedded in a feature space.
The usual one, ImageNet InceptionV3, needs downloaded weights and was trained on photographs. Random
convolutional networks are a usable alternative for comparing image distributions (Lee, Kim & Lee
2022, "Do we need pretrained networks for GAN evaluation? Random networks ..." arXiv:2208.09218):
their filters respond to local structure and texture at every scale without any training.

The network (:class:`RandomFeatures`): images are area-resized to 64×64 (larger ones downsampled,
smaller ones upsampled), then five 3×3 convolutions of 16, 32, 32, 64 and 64 filters with
He-normal weights drawn from the seed's "features" stream (fixed for a given seed, on every machine),
each followed by LeakyReLU(0.2); the last four stride 2. The features are, for every layer's output,
the spatial mean and standard deviation of each channel — 2 × 208 = 416 numbers per image, texture
statistics from the finest scale (64 px) to the coarsest (4 px). Feature ``i`` is then standardised
with the mean and standard deviation of the *real* set it is compared against, so every dimension
counts alike in the Euclidean distances of precision/recall.

The numbers are only comparable within dcganlib's feature space (``random-cnn-v1``): they are never
called FID.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .. import seeds
from ..pixels import as_float_images

FEATURE_SPACE = "random-cnn-v1"
FEATURE_SIZE = 64
WIDTHS = (16, 32, 32, 64, 64)
STRIDES = (1, 2, 2, 2, 2)
DEFINITION = (
    f"dcganlib random-CNN feature space ({FEATURE_SPACE}; Lee et al. 2022): images area-resized to "
    f"{FEATURE_SIZE}x{FEATURE_SIZE}, {len(WIDTHS)} 3x3 convolutions ({', '.join(map(str, WIDTHS))} filters, strides "
    f"{', '.join(map(str, STRIDES))}; He-normal weights from a fixed seed; LeakyReLU 0.2); per layer and channel "
    f"the spatial mean and standard deviation ({2 * sum(WIDTHS)} features), standardised with the real set's mean "
    "and standard deviation. Not InceptionV3: not an FID."
)


class RandomFeatures:
    """The fixed random CNN of the module docstring; ``seed`` picks its weights (default 0).

    Build it with :func:`network`, which keeps one per ``(channels, seed)`` in the process: the weights are a
    function of the seed alone, and its graph is traced once, for any batch and image size."""

    def __init__(self, channels: int, seed: int = 0) -> None:
        rng = seeds.rng(seed, "features")
        self.kernels = []
        fan_in_channels = channels
        for width in WIDTHS:
            fan_in = 9 * fan_in_channels
            self.kernels.append((rng.standard_normal((3, 3, fan_in_channels, width)) * np.sqrt(2.0 / fan_in))
                                .astype(np.float32))
            fan_in_channels = width
        self.channels = channels
        self._function = None

    @property
    def dimension(self) -> int:
        return 2 * sum(WIDTHS)

    def _compiled(self):
        if self._function is None:
            import tensorflow as tf

            kernels = [tf.constant(k) for k in self.kernels]

            # One signature for every batch and image size: one trace per network, where shape-specialised
            # traces cost a new one for each set size and each last partial batch.
            @tf.function(input_signature=[tf.TensorSpec((None, None, None, self.channels), tf.float32)])
            def embed(x):
                x = tf.image.resize(x, (FEATURE_SIZE, FEATURE_SIZE), method="area", antialias=True)
                parts = []
                for kernel, stride in zip(kernels, STRIDES):
                    x = tf.nn.leaky_relu(tf.nn.conv2d(x, kernel, stride, "SAME"), alpha=0.2)
                    mean, variance = tf.nn.moments(x, axes=[1, 2])
                    parts += [mean, tf.sqrt(variance + 1e-8)]
                return tf.concat(parts, axis=1)

            self._function = embed
        return self._function

    def __call__(self, images: Any, batch: int = 256) -> np.ndarray:
        """``(N, D)`` float64 raw features of images (uint8 or ``[-1, 1]``, ``(N, H, W[, C])``)."""
        images = as_float_images(images)
        if images.shape[-1] != self.channels:
            raise ValueError(f"RandomFeatures was built for {self.channels} channel(s); got {images.shape[-1]}")
        embed = self._compiled()
        out = [embed(images[i:i + batch]).numpy() for i in range(0, len(images), batch)]
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, self.dimension))


@functools.lru_cache(maxsize=None)
def network(channels: int, seed: int = 0) -> RandomFeatures:
    """The process's one :class:`RandomFeatures` for ``(channels, seed)``: a fixed network, so every
    measurement shares it and its traced graph."""
    return RandomFeatures(channels, seed)


def standardise(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(features − mean) / std`` with the per-dimension mean and standard deviation of ``reference``
    (dimensions constant in the reference are left centred, not scaled)."""
    mean = reference.mean(axis=0)
    std = reference.std(axis=0)
    return (features - mean) / np.where(std > 1e-12, std, 1.0)


__all__ = ["FEATURE_SPACE", "DEFINITION", "RandomFeatures", "network", "standardise"]
