"""Metrics: SSIM definition and batching, best match, diversity, two-sample test, Fréchet/KID, memorisation."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from dcganlib import callbacks, metrics, seeds
from dcganlib.metrics import artefacts, features, memorisation, prdc
from dcganlib.errors import DataError


def smooth_images(count, size=24, channels=1, seed=0, shift=0.0):
    """Blurry random fields in [-1, 1]: image-like (local correlations), unlike white noise."""
    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.normal(size=(count, size, size, channels)), sigma=(0, 2, 2, 0)) * 4 + shift
    return np.clip(field, -1, 1).astype(np.float32)


def blobs(count, size=16, seed=0):
    """Bright discs of random position/radius on a dark background: a tiny 'real' dataset."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.full((count, size, size, 1), -1.0, np.float32)
    for i in range(count):
        cy, cx = rng.uniform(4, size - 4, 2)
        r = rng.uniform(2.5, 5)
        out[i, ..., 0] = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, 0.8, -1.0)
    return out


def skimage_ssim(x, y):
    return structural_similarity(x.astype(np.float64), y.astype(np.float64), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=2, channel_axis=-1)


# ------------------------------------------------------------------------------------------------
def test_ssim_of_image_with_itself_is_one():
    x = smooth_images(4)
    np.testing.assert_allclose(metrics.ssim(x, x), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.diag(metrics.ssim_matrix(x, x)), 1.0, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matrix_matches_skimage_and_tf_to_1e5(channels):
    a = smooth_images(5, size=27, channels=channels, seed=1)
    b = smooth_images(4, size=27, channels=channels, seed=2)
    matrix = metrics.ssim_matrix(a, b, batch=2)  # batch 2 of 5: exercises chunking and padding
    expected = np.array([[skimage_ssim(x, y) for y in b] for x in a])
    assert matrix.shape == (5, 4) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix, expected, atol=1e-5)
    np.testing.assert_allclose(np.diag(matrix[:4]), metrics.ssim(a[:4], b), atol=1e-5)
    # the values span a real range, so agreement is not trivial
    assert expected.max() - expected.min() > 0.05


def test_ssim_accepts_uint8_and_rejects_wrong_range():
    x = smooth_images(2)
    u8 = np.rint((x + 1) * 127.5).astype(np.uint8)
    np.testing.assert_allclose(metrics.ssim_matrix(u8, u8), metrics.ssim_matrix(u8 / 127.5 - 1, u8 / 127.5 - 1),
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        metrics.ssim_matrix(x * 255, x)
    with pytest.raises(ValueError, match="at least 11"):
        metrics.ssim_matrix(np.zeros((1, 8, 8, 1), np.float32), np.zeros((1, 8, 8, 1), np.float32))


def test_max_val_matters():
    """The documented bug: max_val=1 on [-1, 1] data gives a different (wrong) number."""
    import tensorflow as tf

    a, b = smooth_images(1, seed=3), smooth_images(1, seed=4)
    wrong = float(tf.image.ssim(a, b, max_val=1.0)[0])
    assert abs(float(metrics.ssim(a, b)[0]) - wrong) > 1e-3


def test_best_match_picks_the_right_reference():
    reference = smooth_images(6, seed=5)
    rng = np.random.default_rng(0)
    targets = np.array([4, 0, 2])
    queries = np.clip(reference[targets] + rng.normal(0, 0.05, reference[targets].shape), -1, 1)
    best = metrics.best_match_ssim(queries, reference)
    np.testing.assert_array_equal(best.index, targets)
    assert best.scores.shape == (3,) and np.all(best.scores > 0.8)
    summary = best.summary()
    assert summary["count"] == 3 and summary["max"] == pytest.approx(float(best.scores.max()))


def test_diversity_of_identical_images_is_one_and_lower_for_different_images():
    same = np.repeat(smooth_images(1, seed=6), 5, axis=0)
    assert metrics.mean_pairwise_ssim(same) == pytest.approx(1.0, abs=1e-6)
    assert metrics.mean_pairwise_ssim(smooth_images(5, seed=7)) < 0.5


def test_diversity_standard_error_follows_its_definition_and_predicts_the_spread_of_fresh_draws():
    from dcganlib.metrics.ssim import ssim_matrix

    images = blobs(30, seed=11)
    result = metrics.pairwise_ssim(images)
    matrix = ssim_matrix(images, images).astype(np.float64)
    rows = (matrix.sum(axis=1) - np.diag(matrix)) / 29
    assert result.count == 30 and result.mean == pytest.approx(metrics.mean_pairwise_ssim(images))
    assert result.standard_error == pytest.approx(2 * rows.std(ddof=1) / np.sqrt(30), rel=1e-9)
    # Identical images: every pair scores 1, nothing varies.
    same = metrics.pairwise_ssim(np.repeat(images[:1], 5, axis=0))
    assert same.mean == pytest.approx(1.0, abs=1e-6) and same.standard_error == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(metrics.pairwise_ssim(images[:2]).standard_error)  # one pair: no spread to estimate
    # The claim users rely on: the error of one set predicts how far the mean moves on a fresh draw of images
    # from the same population. Twelve disjoint sets of 30 discs: the spread of their means and the typical
    # reported error agree within a factor of 1.6 (chance, with 12 draws, puts them within about 1.3).
    draws = [metrics.pairwise_ssim(blobs(30, seed=100 + k)) for k in range(12)]
    spread = np.std([d.mean for d in draws], ddof=1)
    typical = float(np.sqrt(np.mean([d.standard_error ** 2 for d in draws])))
    assert 1 / 1.6 < spread / typical < 1.6, (spread, typical)


def test_paired_ssim_is_seeded_and_pairs_distinct_partners():
    gen, real = smooth_images(4, seed=8), smooth_images(6, seed=9)
    first, second = metrics.paired_ssim(gen, real, seed=1), metrics.paired_ssim(gen, real, seed=1)
    np.testing.assert_array_equal(first["scores"], second["scores"])
    assert first["count"] == 4 and -1 <= first["mean"] <= 1
    # every score is the SSIM of gen[i] with some real image
    matrix = metrics.ssim_matrix(gen, real)
    for i, value in enumerate(first["scores"]):
        assert np.min(np.abs(matrix[i] - value)) < 1e-5


def test_ms_ssim_reports_not_applicable_below_161_px():
    result = metrics.ms_ssim_diversity(smooth_images(3, size=64))
    assert result["available"] is False and "161" in result["reason"]


def test_ms_ssim_at_161_px_is_one_for_copies_and_matches_tensorflow():
    import tensorflow as tf

    same = np.repeat(smooth_images(1, size=161, seed=12), 3, axis=0)
    result = metrics.ms_ssim_diversity(same, pairs=8, seed=0)
    assert result["available"] is True and result["pairs"] == 8 and result["undefined_pairs"] == 0
    assert result["mean"] == pytest.approx(1.0, abs=1e-5)
    different = smooth_images(4, size=161, seed=13) * 0.5 + 0.25  # positive structure terms: defined
    spread = metrics.ms_ssim_diversity(different, pairs=6, seed=1)
    assert spread["mean"] < 0.9
    # the mean is over the finite pairs of tf.image.ssim_multiscale(max_val=2) on the drawn pairs
    rng = seeds.rng(1, "ms-ssim-pairs")
    first = rng.integers(0, 4, size=6)
    second = (first + rng.integers(1, 4, size=6)) % 4
    values = tf.image.ssim_multiscale(different[first], different[second], max_val=2.0).numpy()
    assert spread["mean"] == pytest.approx(float(values[np.isfinite(values)].mean()), abs=1e-6)


# ------------------------------------------------------------------------------------------------
def test_two_sample_test_is_near_chance_on_four_quarters_of_one_set():
    real = blobs(320, seed=1)
    result = metrics.two_sample_test(real[:80], real[80:160], real[160:240], real[240:], seed=0, epochs=5)
    for low, high in (result["auc_ci95"], result["accuracy_ci95"]):
        assert low <= 0.5 <= high
    assert result["p_value"] > 0.01
    assert result["test_counts"] == {"real": 80, "candidate": 80} and result["train_counts"]["candidate"] == 80


def test_two_sample_test_separates_real_from_noise_and_is_deterministic():
    real = blobs(160, seed=2)
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)
    first = metrics.two_sample_test(real[:80], noise[:80], real[80:], noise[80:], seed=3, epochs=3)
    assert first["auc"] > 0.95 and first["accuracy"] > 0.9 and first["p_value"] < 1e-6
    assert first["auc_ci95"][0] <= first["auc"] <= first["auc_ci95"][1]
    second = metrics.two_sample_test(real[:80], noise[:80], real[80:], noise[80:], seed=3, epochs=3)
    assert second["auc"] == first["auc"] and second["accuracy"] == first["accuracy"]


def test_a_reused_two_sample_classifier_scores_exactly_like_a_fresh_one(monkeypatch):
    # The compiled classifier is kept per image shape; each test loads fresh seeded weights, batch-norm
    # statistics and Adam state into it. A state left over from the previous test would change the scores.
    monkeypatch.setattr(metrics.two_sample, "_TRAINERS", {})
    real = blobs(96, seed=4)
    noise = np.random.default_rng(1).uniform(-1, 1, real.shape).astype(np.float32)
    # one distribution on both sides: the ROC curve follows the exact order of the scores
    fresh = metrics.two_sample_test(real[:24], real[24:48], real[48:72], real[72:], seed=5, epochs=2)
    other = metrics.two_sample_test(noise[:48], real[:48], noise[48:], real[48:], seed=6, epochs=2)
    assert len(metrics.two_sample._TRAINERS) == 1 and other["auc"] != fresh["auc"]
    reused = metrics.two_sample_test(real[:24], real[24:48], real[48:72], real[72:], seed=5, epochs=2)
    np.testing.assert_array_equal(reused["roc"]["fpr"], fresh["roc"]["fpr"])
    np.testing.assert_array_equal(reused["roc"]["tpr"], fresh["roc"]["tpr"])
    assert {k: v for k, v in reused.items() if k != "roc"} == {k: v for k, v in fresh.items() if k != "roc"}


def test_two_sample_training_is_one_fit_per_epoch_on_a_fresh_order_in_one_call():
    """The classifier trains in one ``fit()`` over every epoch's batches: the same updates as a ``fit()`` per
    epoch on that epoch's order (each pass ending with its own smaller batch), and the same scores as
    ``predict()`` — checked against that slower procedure, score for score."""
    real = blobs(100, seed=7)
    other = np.clip(real[::-1] + np.random.default_rng(2).normal(0, 0.1, real.shape), -1, 1).astype(np.float32)
    result = metrics.two_sample_test(real[:60], other[:60], real[60:], other[60:], seed=4, epochs=3, batch_size=16)

    x = np.concatenate([real[:60], other[:60]])
    y = np.r_[np.ones(60), np.zeros(60)].astype(np.float32)  # 120 images: 7 batches of 16 and one of 8 a pass
    model = metrics.two_sample._fresh_classifier(x.shape[1:], 4)
    rng = seeds.rng(4, "two-sample")
    for _ in range(3):
        order = rng.permutation(len(x))
        model.fit(x[order], y[order], batch_size=16, epochs=1, shuffle=False, verbose=0)
    real_scores, other_scores = (model.predict(images, batch_size=256, verbose=0)[:, 0] for images in
                                 (real[60:], other[60:]))
    fpr, tpr = metrics.two_sample.roc_curve(real_scores, other_scores)
    np.testing.assert_array_equal(result["roc"]["fpr"], fpr)
    np.testing.assert_array_equal(result["roc"]["tpr"], tpr)
    assert result["auc"] == metrics.two_sample.roc_auc(real_scores, other_scores)[0]
    assert len(fpr) > 40  # 80 held-out scores, nearly all distinct: the comparison has something to see


def test_the_two_sample_classifier_is_deep_normalised_and_leaky():
    import keras

    model = metrics.two_sample.build_classifier((64, 64, 1), seed=0)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") >= 4 and kinds.count("BatchNormalization") == kinds.count("Conv2D")
    assert kinds.count("LeakyReLU") == kinds.count("Conv2D")
    assert model.output_shape == (None, 1) and model.layers[1].strides == (1, 1)  # full-resolution first block
    assert isinstance(model.optimizer, keras.optimizers.Adam)


def test_roc_auc_known_values_and_delong_variance():
    auc, var = metrics.roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0]))
    assert auc == 1.0 and var == 0.0
    auc, _ = metrics.roc_auc(np.array([1.0, 3.0]), np.array([2.0, 2.0]))
    assert auc == 0.5
    auc, _ = metrics.roc_auc(np.array([2.0]), np.array([2.0]))  # ties count one half
    assert auc == 0.5
    fpr, tpr = metrics.roc_curve(np.array([3.0, 1.0]), np.array([2.0, 0.0]))
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1.0, 1.0])


# ------------------------------------------------------------------------------------------------
def test_frechet_distance_closed_forms():
    mu = np.array([0.5, -1.0, 2.0])
    cov = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]])
    assert metrics.frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)
    # diagonal covariances: ‖μ1 − μ2‖² + Σ (√a − √b)²
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu2 = np.array([1.5, 0.0, 2.0])
    expected = np.sum((mu - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert metrics.frechet_distance(mu, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)
    # 1-D: (μ1 − μ2)² + (σ1 − σ2)²
    assert metrics.frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9.0 + 1.0)
    # singular covariance (rank 1) still gives the exact value
    assert metrics.frechet_distance(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2), np.diag([4.0, 0.0])) == \
        pytest.approx(1.0, abs=1e-6)


def test_frechet_distance_of_sample_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3))
    y = rng.normal(size=(4000, 3)) * 2 + 1
    value = metrics.frechet_distance(*metrics.feature_statistics(x), *metrics.feature_statistics(y))
    assert value == pytest.approx(3 * 1 + 3 * (2 - 1) ** 2, rel=0.1)


def test_kid_near_zero_for_same_distribution_and_positive_for_shifted():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    same = metrics.kernel_distance(x, y, subsets=20, subset_size=200)
    shifted = metrics.kernel_distance(x, y + 1.0, subsets=20, subset_size=200)
    assert abs(same["mean"]) < 0.01
    assert shifted["mean"] > 0.1
    assert shifted["subset_size"] == 200


def test_inception_preprocessing_size_channels_and_range():
    x = smooth_images(2, size=16)
    x[0] = 0.25  # a flat image stays flat and keeps its value after bilinear resizing
    out = metrics.inception_preprocess(x)
    assert out.shape == (2, 299, 299, 3) and out.dtype == np.float32
    assert out.min() >= -1 and out.max() <= 1
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    np.testing.assert_allclose(out[0], 0.25, atol=1e-6)


def test_fid_is_skipped_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    result = metrics.fid_kid(smooth_images(2), smooth_images(2))
    assert result["available"] is False and "not found" in result["reason"]
    with pytest.raises(DataError, match="not found"):
        metrics.find_inception_weights(tmp_path / "missing.h5")


# ------------------------------------------------------------------------------------------------
def test_memorisation_flags_an_exact_copy_of_a_training_image():
    train = smooth_images(30, seed=10)
    heldout = smooth_images(20, seed=11)
    generated = np.concatenate([smooth_images(5, seed=12), train[7:8]])
    result = metrics.memorisation_check(generated, train, heldout)
    assert result["flagged_indices"][0] == 5  # the copy is flagged, and listed first (closest)
    assert result["flagged_indices_l2"][0] == 5
    # the flagged list is the headline's: exactly the images below its ratio threshold, lowest ratio first
    ratios = result["candidate_nearest"]["neighbour_ratio"]
    below = [i for i in np.argsort(ratios, kind="stable") if ratios[i] < result["ratio_threshold"]]
    assert result["flagged_indices"] == below
    assert len(below) == round(result["fraction_closer_than_real_local"] * len(generated))
    assert result["l2_threshold"] > 0
    assert result["fraction_closer_than_real_l2"] >= 1 / 6
    assert result["candidate_nearest"]["l2"][5] < result["baseline_nearest"]["l2"].min()
    gen = result["candidate_nearest"]
    assert gen["l2"][5] == 0.0 and gen["l2_index"][5] == 7 and gen["ssim_index"][5] == 7
    assert gen["ssim"][5] == pytest.approx(1.0, abs=1e-6)
    # the local figure flags it too: ratio 0, below every real image's
    assert gen["neighbour_ratio"][5] == 0 and result["ratio_threshold"] > 0
    assert result["fraction_closer_than_real_local"] >= 1 / 6


def test_neighbour_distance_is_the_rms_difference_to_the_nearest_other_training_image():
    train = np.stack([np.full((12, 12, 1), v, np.float32) for v in (0.0, 0.1, 0.5, 0.5)])
    np.testing.assert_allclose(memorisation.neighbour_distances(train, [0, 1, 2, 3, 1]), [0.1, 0.1, 0, 0, 0.1],
                               atol=1e-7)
    assert memorisation.neighbour_distances(train[:1], [0]).tolist() == [np.inf]  # no other image
    queries = np.stack([np.full((12, 12, 1), v, np.float32) for v in (0.04, 0.35, 0.0)])
    ratios = memorisation.neighbour_ratios(memorisation.nearest_neighbours(queries, train), train)
    # 0.04 / 0.1; near a training image that has a duplicate (spacing 0): never closer; an exact copy: 0
    np.testing.assert_allclose(ratios, [0.4, np.inf, 0.0], atol=1e-6)
    # a single training image has no spacing: refused, not every image (and no copy) at ratio 0
    with pytest.raises(ValueError, match="at least two training images"):
        memorisation.neighbour_ratios(memorisation.nearest_neighbours(queries, train[:1]), train[:1])


def discs(count, rng, radii=(2, 12), size=32):
    """Textured discs of random radius on black, near the centre: a set whose small members are close to
    every other small member, as small cerebellar slices are."""
    yy, xx = np.mgrid[:size, :size]
    out = np.full((count, size, size, 1), -1.0, np.float32)
    for image in out:
        radius, (cy, cx) = rng.uniform(*radii), size / 2 + rng.uniform(-3, 3, 2)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
        image[..., 0][inside] = rng.uniform(-0.2, 0.8) + 0.15 * rng.standard_normal(inside.sum())
    return np.clip(out, -1, 1)


def test_the_local_figure_flags_copies_but_not_new_small_images_where_one_l2_threshold_does():
    rng = np.random.default_rng(2)
    train, heldout, unseen = discs(300, rng), discs(100, rng), discs(100, rng)
    small = discs(100, rng, radii=(2, 5))  # new images, all from the crowded small end
    copies = np.concatenate([train[:20], unseen[20:]])  # a fifth copied, ...
    near = np.clip(copies + rng.normal(0, 0.05, copies.shape), -1, 1).astype(np.float32)  # ... or with noise
    check = {name: metrics.memorisation_check(images, train, heldout)
             for name, images in (("real", unseen), ("small", small), ("copies", copies), ("near", near))}
    local = {name: result["fraction_closer_than_real_local"] for name, result in check.items()}
    assert local["real"] <= 0.04 and local["small"] <= 0.04  # ~1 % for new images, wherever they lie
    assert local["copies"] >= 0.2 and local["near"] >= 0.2  # every copy
    assert check["small"]["fraction_closer_than_real_l2"] >= 0.2  # the global L2 threshold calls a fifth copies
    # metrics.json's list of flagged images is the headline's: the copies, not the small new images
    assert set(range(20)) <= set(check["copies"]["flagged_indices"])
    assert len(check["small"]["flagged_indices"]) <= 4 and len(check["small"]["flagged_indices_l2"]) >= 20


def test_nearest_l2_is_rms_difference():
    a = np.full((1, 12, 12, 1), 0.5, np.float32)
    b = np.concatenate([np.full((1, 12, 12, 1), -0.5, np.float32), np.full((1, 12, 12, 1), 0.25, np.float32)])
    result = metrics.nearest_neighbours(a, b)
    assert result["l2_index"][0] == 1 and result["l2"][0] == pytest.approx(0.25)


# ------------------------------------------------------------------------------------------------
def test_quality_tracker_writes_logs_from_the_models_generator():
    import keras

    class Holder(keras.Model):  # stands in for the DCGAN: only .generator is used
        def __init__(self, generator):
            super().__init__()
            self.generator = generator

    inputs = keras.Input((4,))
    flat = keras.layers.Dense(16 * 16, kernel_initializer=keras.initializers.GlorotUniform(seed=0))(inputs)
    images = keras.layers.Reshape((16, 16, 1))(keras.layers.Activation("tanh")(flat))
    generator = keras.Model(inputs, images)
    reference = blobs(20, seed=4)
    tracker = callbacks.QualityTracker(reference, sample_count=8, seed=1, every=2)
    tracker.set_model(Holder(generator))
    tracker.set_params({"epochs": 4})
    logs = [{} for _ in range(4)]
    for epoch, log in enumerate(logs):
        tracker.on_epoch_end(epoch, log)
    assert np.isfinite(logs[0]["ssim_best_match"]) and np.isnan(logs[2]["ssim_best_match"])
    assert np.isfinite(logs[1]["ssim_diversity"]) and np.isfinite(logs[3]["ssim_diversity"])
    # the same fixed noise each time: the untrained generator gives the same figures
    assert logs[0] == logs[1]
    sample = np.asarray(generator(tracker.noise()))
    expected = metrics.best_match_ssim(sample, reference).scores.mean()
    assert logs[0]["ssim_best_match"] == pytest.approx(float(expected), abs=1e-6)
    assert tracker.noise().shape == (8, 4) and 0 < tracker.reference_diversity < 1


# ------------------------------------------------------------------------------------------------
# feature space, precision/recall/density/coverage, spectrum and intensity
def test_random_features_are_fixed_for_a_seed_and_see_texture():
    images = smooth_images(6, size=40)
    network = features.RandomFeatures(1, seed=0)
    out = network(images)
    assert out.shape == (6, network.dimension) and network.dimension == 416 and out.dtype == np.float64
    np.testing.assert_array_equal(out, features.RandomFeatures(1, seed=0)(images))
    assert not np.allclose(out, features.RandomFeatures(1, seed=1)(images))
    standardised = features.standardise(out, out)
    np.testing.assert_allclose(standardised.mean(axis=0), 0, atol=1e-9)
    # One shared network per (channels, seed), traced once for every batch and image size; an image's
    # features do not depend on the batch it came in.
    shared = features.network(1, 7)
    assert features.network(1, 7) is shared and features.network(1, 8) is not shared
    whole = shared(np.concatenate([images, images[:1]]), batch=4)
    np.testing.assert_allclose(whole, np.concatenate([shared(images[:3]), shared(images[3:]), shared(images[:1])]),
                               rtol=1e-5, atol=1e-6)
    shared(smooth_images(5, size=64))
    assert shared._compiled().experimental_get_tracing_count() == 1
    # a 1-px blur of one half moves it far further from the other half than the halves differ
    many = smooth_images(80, size=32, seed=3)
    blurred = gaussian_filter(many[40:], sigma=(0, 1, 1, 0))
    first, second, third = (network(x) for x in (many[:40], many[40:], blurred))
    reference = features.standardise(first, first)

    def distance(other):  # KID: unbiased, so ≈ 0 for two samples of one distribution even at n = 40
        return metrics.kernel_distance(features.standardise(other, first), reference, subsets=20, seed=0)["mean"]
    assert distance(third) > 0.2 and abs(distance(second)) < 0.05


def test_prdc_known_values():
    grid = np.array([[x, y] for x in range(6) for y in range(6)], dtype=float)
    same = prdc.precision_recall_density_coverage(grid, grid + 1e-9, k=3)
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0, abs=0.35)
    far = prdc.precision_recall_density_coverage(grid, grid + 100.0, k=3)
    assert far == {**far, "precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # fakes on one corner point only: faithful (precision 1) but covering almost nothing
    corner = prdc.precision_recall_density_coverage(grid, np.zeros((10, 2)) + 1e-3, k=3)
    assert corner["precision"] == 1.0 and corner["coverage"] < 0.2 and corner["recall"] < 0.2
    with pytest.raises(ValueError, match="k = 5"):
        prdc.precision_recall_density_coverage(grid[:4], grid[:4])


def test_radial_spectrum_puts_a_pure_wave_at_its_frequency_and_deviation_is_a_log_ratio():
    size = 32
    x = np.arange(size)
    wave = np.tile(0.5 * np.cos(2 * np.pi * 5 * x / size), (size, 1))[None, ..., None].astype(np.float32)
    spectrum = artefacts.radial_power_spectrum(wave)
    assert len(spectrum) == round(size / np.sqrt(2))
    assert np.argmax(spectrum) == 4  # radius 5 is index 4 (radii start at 1)
    base = artefacts.radial_power_spectrum(smooth_images(4, size=size))
    assert artefacts.spectrum_deviation(base, base) == 0.0
    assert artefacts.spectrum_deviation(base * 10.0, base) == pytest.approx(1.0)


def test_checkerboard_power_is_at_the_corner_of_the_frequency_plane():
    size = 16
    yy, xx = np.mgrid[:size, :size]
    board = np.where((yy + xx) % 2 == 0, 0.5, -0.5)[None, ..., None].astype(np.float32)
    spectrum = artefacts.radial_power_spectrum(board)
    assert np.argmax(spectrum) == len(spectrum) - 1


def test_tissue_wasserstein_is_the_shift_of_the_grey_levels():
    base = np.full((2, 8, 8, 1), 100, np.uint8)
    base[:, :4] = 0  # background, not tissue
    shifted = base.copy()
    shifted[:, 4:] = 110
    hist_a, hist_b = artefacts.tissue_histogram(base), artefacts.tissue_histogram(shifted)
    assert hist_a.sum() == pytest.approx(1.0) and hist_a[100] == 1.0
    assert artefacts.tissue_wasserstein(hist_b, hist_a) == pytest.approx(10 / 255)
    # A set without tissue (a collapsed generator's black images) has a defined, worst distance.
    empty = artefacts.tissue_histogram(np.zeros((1, 8, 8), np.uint8))
    assert not empty.any() and artefacts.tissue_wasserstein(empty, hist_a) == artefacts.NO_TISSUE == 1.0


@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")  # Keras, on the foreign file
def test_inception_weights_of_another_model_are_one_line(tmp_path):
    import keras

    other = tmp_path / "other.weights.h5"  # a real HDF5 file, with the weights of some other network
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(other)
    with pytest.raises(DataError, match=rf"cannot load InceptionV3 weights from {other}: .*; pass Keras' "):
        metrics.inception.inception_features(np.zeros((1, 16, 16, 1), np.float32), other)
