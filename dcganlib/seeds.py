"""Named random streams: every NumPy random draw of dcganlib comes from :func:`rng`.

One ``seed`` (the config's, or an evaluation's ``--seed``) feeds many independent choices. Each
choice draws from its own stream, ``rng(seed, name)``, so adding draws to one stream never shifts
another (the fixed grid noise stays the same when the evaluation samples more images, say). A
stream's generator is ``numpy.random.default_rng([seed, tag(name), *keys])`` where ``tag`` is the
first 8 bytes of the SHA-256 of the name: reproducible across machines and NumPy versions that keep
``default_rng``'s seeding.

TensorFlow-side randomness (weight initialisation, the training noise, DiffAugment) is seeded in
:mod:`dcganlib.models` and :class:`dcganlib.gan.DCGAN` from the same config seed.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .errors import ConfigError

#: Seeds are integers in [0, MAX_SEED] (what every API that takes a seed, Keras' too, accepts).
MAX_SEED = 2**31 - 1

#: Every stream, with what it draws. A name not listed here is a programming error.
STREAMS = {
    "grid": "the fixed noise of the per-epoch grids (and of the GIF frames)",
    "sample": "the noise of images drawn by generate / evaluate",
    "train-cap": "which training images max_images keeps",
    "tracker-reference": "the real images the per-epoch SSIM tracker compares with",
    "tracker-noise": "the per-epoch SSIM tracker's fixed noise",
    "quality-noise": "the fixed noise of the per-epoch quality figures (dcganlib.tracking)",
    "quality-stand-in": "the training images that give the per-epoch quality figures their real reference",
    "paired-ssim": "the real partner of each image in paired SSIM",
    "diversity-subset": "the subset a diversity measure uses when a set is larger than its cap",
    "ms-ssim-pairs": "the random pairs of MS-SSIM diversity",
    "two-sample": "the two-sample test's subsets, folds and weight initialisation",
    "kernel-subsets": "the subsets of the kernel (KID-style) distance",
    "features": "the weights of the fixed random feature network",
    "evaluation-split": "how evaluation divides held-out real images into roles",
    "gallery": "which images a gallery figure shows",
    "demo-split": "the subject split of the embedded demo dataset",
    "demo-subject": "the pose, warp and intensity of one synthetic demo subject",
    "bench-images": "the synthetic images the benchmark times SSIM on",
}


def check_seed(seed: object, flag: str = "--seed") -> int:
    """``seed`` if it is an integer in ``[0, MAX_SEED]``, else :class:`ConfigError` naming ``flag``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{flag} must be an integer in [0, {MAX_SEED}]; got {seed!r}")
    return seed


def tag(name: str) -> int:
    """The 64-bit number that identifies stream ``name`` (first 8 bytes of its SHA-256)."""
    if name not in STREAMS:
        raise ValueError(f"unknown random stream {name!r}; known: {', '.join(STREAMS)}")
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def rng(seed: int, name: str, *keys: int) -> np.random.Generator:
    """The random stream ``name`` of ``seed`` (``keys`` index a family of streams, e.g. a subject)."""
    return np.random.default_rng([int(seed), tag(name), *(int(k) for k in keys)])


def int_seed(seed: int, name: str) -> int:
    """One integer in ``[0, 2**31)`` from stream ``name``, for APIs that take an int seed (Keras)."""
    return int(rng(seed, name).integers(0, 2**31 - 1))


__all__ = ["STREAMS", "MAX_SEED", "check_seed", "tag", "rng", "int_seed"]
