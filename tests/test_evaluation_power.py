"""The evaluation can tell — at the embedded demo dataset's sample sizes (2000 slices: ~1620 train, ~380
held-out images), on 32 px images to keep CI quick.

Three builds of the demo population stand in for a data set and its generators: seed 0 is the "run's" data
(train split + held-out splits), seed 1 supplies the real reference exactly as ``evaluate`` makes it
(:func:`dcganlib.references.resample_roles`), and seed 2 — real images of yet other subjects — plays a
*perfect* generator. A perfect generator must score near the real reference on every figure; each known
degradation of it must be caught by the two-sample test (AUC ≥ 0.9) and move the figure that should see it.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from dcganlib.config import smoke_config
from dcganlib.data import load_dataset
from dcganlib.data.demo import build_demo_dataset
from dcganlib.evaluate import ReferenceSide, measure
from dcganlib.metrics import memorisation_check
from dcganlib.pixels import to_float, to_uint8
from dcganlib.references import resample_roles

SIZE = 32

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    """Roles from builds 0 and 1 (as ``evaluate`` makes them), the reference side, the real reference's
    figures, and build 2's images arranged like generated ones by the same rule."""
    root = tmp_path_factory.mktemp("population")

    def load(seed, count):
        folder = build_demo_dataset(root / f"seed{seed}", count=count, size=64, seed=seed)
        return load_dataset(smoke_config(data=str(folder), image_size=SIZE, max_images=None,
                                         cache_dir=str(root / "cache")))

    data = load(0, 2000)
    heldout = np.concatenate([data.validate, data.test])
    roles = resample_roles(data.train, heldout, load(1, 4000), seed=0, description="demo build 1")
    perfect = resample_roles(data.train, heldout, load(2, 4000), seed=0, description="demo build 2")
    side = ReferenceSide(roles.reference, roles.train)
    count = len(roles.stand_in)
    reference, _ = measure(*roles.reference_test, side, count)
    return roles, side, count, reference, (perfect.reference_test[1], perfect.stand_in)


_computed: dict[str, dict] = {}


def figures_of(population, transform):
    """Every figure of the perfect generator's images passed through ``transform`` (computed once per name)."""
    if transform.__name__ not in _computed:
        roles, side, count, _, (train, test) = population
        _computed[transform.__name__], _ = measure(roles.classifier_train, transform(train), roles.heldout,
                                                   transform(test, held_out=True), side, count)
    return _computed[transform.__name__]


def test_sample_sizes_are_the_demo_datasets(population):
    roles, _, count, reference, _ = population
    assert 1500 <= len(roles.classifier_train) <= 1700 and 330 <= len(roles.heldout) <= 420
    assert reference["two_sample_test"]["test_counts"] == {"real": len(roles.heldout), "candidate": count}


def test_a_perfect_generator_scores_near_the_real_reference_on_every_figure(population):
    reference = population[3]
    def perfect(images, held_out=False):
        return images

    got = figures_of(population, perfect)
    assert abs(got["two_sample_test"]["auc"] - reference["two_sample_test"]["auc"]) <= 0.1
    assert got["two_sample_test"]["auc"] < 0.7 and reference["two_sample_test"]["auc"] < 0.7
    assert abs(got["two_sample_test"]["accuracy"] - reference["two_sample_test"]["accuracy"]) <= 0.08
    features, real_features = got["feature_metrics"], reference["feature_metrics"]
    assert features["frechet_distance"] <= 1.5 * real_features["frechet_distance"]
    # KID of independent real samples spreads by about ±0.03 at these sizes (5 draws: -0.007 … 0.058)
    assert features["kid"] <= real_features["kid"] + 0.05
    for key in ("precision", "recall", "density", "coverage"):
        assert abs(features[key] - real_features[key]) <= 0.12, key
    assert got["spectrum"] <= max(2 * reference["spectrum"], 0.02)
    assert got["tissue_intensity"] <= max(2 * reference["tissue_intensity"], 0.01)
    assert abs(got["best_match_ssim"]["mean"] - reference["best_match_ssim"]["mean"]) <= 0.03
    assert abs(got["diversity"] / reference["diversity"] - 1) <= 0.05
    assert got["memorisation"]["fraction_closer_than_real_l2"] <= 0.05
    assert got["memorisation"]["fraction_closer_than_real_local"] <= 0.05


def test_a_generator_that_copies_a_tenth_of_its_images_is_flagged(population):
    roles, side, count, reference, (_, test) = population
    candidate = test[:count].copy()
    copied = np.random.default_rng(0).choice(len(roles.train), count // 10, replace=False)
    candidate[::10][:len(copied)] = roles.train[copied]
    check = memorisation_check(candidate, side.train, side.reference, baseline_nearest=side.nearest)
    assert check["fraction_closer_than_real_local"] >= 0.09 >= reference["memorisation"]["fraction_closer_than_real_local"]


def blur(images, held_out=False):
    return to_uint8(gaussian_filter(to_float(images), sigma=(0, 1, 1, 0)))


def noise(images, held_out=False):
    rng = np.random.default_rng(2 if held_out else 1)
    return to_uint8(np.clip(to_float(images) + rng.normal(0.0, 0.05, images.shape), -1, 1))


def checkerboard(images, held_out=False):
    yy, xx = np.mgrid[:images.shape[1], :images.shape[2]]
    pattern = np.where((yy + xx) % 2 == 0, 0.05, -0.05)[None, :, :, None]
    return to_uint8(np.clip(to_float(images) + pattern, -1, 1))


@pytest.mark.parametrize("degrade", [blur, noise, checkerboard], ids=lambda f: f.__name__)
def test_each_texture_degradation_is_detected_and_moves_the_spectrum(population, degrade):
    reference = population[3]
    got = figures_of(population, degrade)
    assert got["two_sample_test"]["auc"] >= 0.9 and got["two_sample_test"]["p_value"] < 1e-6
    assert got["spectrum"] >= 3 * reference["spectrum"] and got["spectrum"] >= 0.03


def test_noise_also_moves_the_tissue_intensities(population):
    reference = population[3]
    assert figures_of(population, noise)["tissue_intensity"] >= 2 * reference["tissue_intensity"]


def test_a_collapsed_generator_is_detected_and_loses_diversity_and_recall(population):
    reference = population[3]
    ten = population[4][0][:10]  # the same ten images, whatever the noise

    def collapse(images, held_out=False):
        return np.resize(ten, images.shape)

    got = figures_of(population, collapse)
    assert got["two_sample_test"]["auc"] >= 0.9
    assert got["diversity"] >= 1.2 * reference["diversity"]
    assert got["feature_metrics"]["recall"] <= 0.5 * reference["feature_metrics"]["recall"]
    assert got["feature_metrics"]["coverage"] <= 0.5 * reference["feature_metrics"]["coverage"]
