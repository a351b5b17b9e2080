"""DiffAugment: each policy does what its docstring says, is seeded, and lets gradients through."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from dcganlib import augment, training  # noqa: E402
from dcganlib.config import smoke_config  # noqa: E402
from dcganlib.errors import ConfigError  # noqa: E402

SEED = tf.constant([3, 4], tf.int32)


def dot_images(count=6, size=16):
    """Black images with one white pixel at (5, 6): shifts are easy to read off."""
    images = -np.ones((count, size, size, 1), np.float32)
    images[:, 5, 6, 0] = 1.0
    return tf.constant(images)


def test_policy_parsing_and_config_validation():
    assert augment.parse_policy("cutout, translation") == ("translation", "cutout")
    assert augment.parse_policy("") == ()
    with pytest.raises(ValueError, match="flip"):
        augment.parse_policy("flip")
    with pytest.raises(ConfigError, match="augment"):
        smoke_config(augment="translation,flip")


def test_empty_policy_is_the_identity():
    images = dot_images()
    assert augment.diff_augment(images, "", SEED) is images


def test_translation_moves_content_by_at_most_one_eighth_and_fills_black():
    images = dot_images(count=32)
    out = augment.translation(images, SEED).numpy()
    assert out.shape == images.shape
    shifts = set()
    for picture in out[..., 0]:
        bright = np.argwhere(picture > 0)
        if len(bright):  # the dot may be shifted out of view only if the shift exceeds its margin
            (y, x), = bright
            shifts.add((y - 5, x - 6))
        assert set(np.unique(picture)) <= {-1.0, 1.0}  # pure shift: no interpolation, border is -1
    assert all(abs(dy) <= 2 and abs(dx) <= 2 for dy, dx in shifts)  # 16 px · 1/8 = 2
    assert len(shifts) > 5  # really random per image


def test_cutout_zeroes_one_square_of_half_the_side():
    images = tf.ones((8, 16, 16, 1))
    out = augment.cutout(images, SEED).numpy()[..., 0]
    for picture in out:
        zeros = np.argwhere(picture == 0)
        assert 0 < len(zeros) <= 64  # an 8x8 square, clipped at the border
        height = zeros[:, 0].max() - zeros[:, 0].min() + 1
        width = zeros[:, 1].max() - zeros[:, 1].min() + 1
        assert len(zeros) == height * width and height <= 8 and width <= 8
        assert set(np.unique(picture)) <= {0.0, 1.0}


def test_color_changes_brightness_and_contrast_within_the_stated_ranges():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, (64, 8, 8, 1)).astype(np.float32))
    out = augment.color(images, SEED).numpy()
    x = images.numpy()
    # brightness b then contrast c around the brightened mean: out - mean(out) = c * (x - mean(x))
    c = (out - out.mean(axis=(1, 2, 3), keepdims=True)).std(axis=(1, 2, 3)) / x.std(axis=(1, 2, 3))
    b = out.mean(axis=(1, 2, 3)) - x.mean(axis=(1, 2, 3))
    assert np.all((c >= 0.5 - 1e-5) & (c <= 1.5 + 1e-5)) and c.std() > 0.1
    assert np.all(np.abs(b) <= 0.5 + 1e-5) and b.std() > 0.1


def test_augmentation_is_seeded_and_differentiable():
    images = tf.Variable(tf.random.stateless_uniform((4, 16, 16, 1), [0, 1], -1, 1))
    policy = "color,translation,cutout"
    np.testing.assert_array_equal(augment.diff_augment(images, policy, SEED).numpy(),
                                  augment.diff_augment(images, policy, SEED).numpy())
    assert not np.array_equal(augment.diff_augment(images, policy, SEED).numpy(),
                              augment.diff_augment(images, policy, SEED + 1).numpy())
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(augment.diff_augment(images, policy, SEED))
    gradient = tape.gradient(loss, images).numpy()
    assert np.isfinite(gradient).all() and np.count_nonzero(gradient) > gradient.size // 4


def test_a_train_step_with_augmentation_updates_both_networks():
    gan = training.build_gan(smoke_config(augment="translation,cutout"))
    assert gan.augment == ("translation", "cutout")
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 1)).astype("float32"))
    g_before = gan.generator.trainable_variables[0].numpy().copy()
    d_before = gan.discriminator.trainable_variables[0].numpy().copy()
    logs = gan.train_step(real)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert not np.array_equal(g_before, gan.generator.trainable_variables[0].numpy())
    assert not np.array_equal(d_before, gan.discriminator.trainable_variables[0].numpy())
