"""The shared facts: pixel conventions (uint8 ↔ [-1, 1]) and named random streams."""

import numpy as np
import pytest

from dcganlib import seeds
from dcganlib.pixels import as_float_images, as_uint8_images, stretch_contrast, to_float, to_uint8


# ------------------------------------------------------------------------------------------------
# pixels
def test_to_float_known_values_and_round_trip():
    levels = np.arange(256, dtype=np.uint8)
    floats = to_float(levels)
    assert floats.dtype == np.float32
    assert floats[0] == -1.0 and floats[255] == 1.0
    assert floats.min() >= -1.0 and floats.max() <= 1.0
    np.testing.assert_array_equal(to_uint8(floats), levels)


def test_to_uint8_clips_and_rounds():
    out = to_uint8(np.array([-3.0, -1.0, 0.0, 0.999, 1.0, 2.5], np.float32))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 0, 128, 255, 255, 255])


def test_to_float_rejects_float_input():
    with pytest.raises(TypeError, match="uint8"):
        to_float(np.zeros(3, np.float32))


def test_as_float_and_as_uint8_accept_either_convention_and_reject_misuse():
    u8 = np.array([[[0, 255], [128, 64]]], np.uint8)  # (1, 2, 2): gains a channel axis
    floats = as_float_images(u8)
    assert floats.shape == (1, 2, 2, 1) and floats.dtype == np.float32
    np.testing.assert_array_equal(as_uint8_images(floats)[..., 0], u8)
    np.testing.assert_array_equal(as_float_images(floats), floats)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        as_float_images(floats * 3)
    with pytest.raises(ValueError, match="NaN"):
        as_float_images(np.full((1, 2, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="shape"):
        as_float_images(np.zeros((1, 2, 2, 2), np.float32))
    with pytest.raises(TypeError, match="uint8"):
        as_float_images(np.zeros((1, 2, 2), np.complex64))


def test_stretch_contrast_maps_each_image_to_its_own_full_range():
    images = np.stack([np.linspace(-0.01, 0.02, 16).reshape(4, 4, 1), np.full((4, 4, 1), 0.3)]).astype(np.float32)
    out = stretch_contrast(images)
    assert out[0].min() == pytest.approx(-1.0) and out[0].max() == pytest.approx(1.0)
    np.testing.assert_array_equal(out[1], -1.0)  # a constant image has nothing to stretch


# ------------------------------------------------------------------------------------------------
# random streams
def test_streams_are_reproducible_independent_and_named():
    a, b = seeds.rng(7, "grid").standard_normal(5), seeds.rng(7, "grid").standard_normal(5)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, seeds.rng(7, "sample").standard_normal(5))  # another stream
    assert not np.allclose(a, seeds.rng(8, "grid").standard_normal(5))  # another seed
    assert not np.allclose(seeds.rng(7, "demo-subject", 1).random(3), seeds.rng(7, "demo-subject", 2).random(3))
    assert len({seeds.tag(name) for name in seeds.STREAMS}) == len(seeds.STREAMS)
    with pytest.raises(ValueError, match="unknown random stream 'gird'"):
        seeds.rng(7, "gird")
