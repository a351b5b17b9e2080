"""Quality during training (dcganlib.tracking): per-epoch figures, the best generator kept and exported,
resume, evaluate --epoch; and the recipe levers that came with it (adaptive augmentation, lr decay)."""

import json
import math
import re
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcganlib import runs, tracking
from dcganlib.metrics import quality
from helpers import error_line, main, tiny_config, write_slices


class _BreakGenerator(keras.callbacks.Callback):
    """After every step of the given epochs (1-based), G's weights are replaced, so that epoch's images are
    known whatever training did: ``"noise"``, large random weights (saturated salt-and-pepper noise), or
    ``"white"``, zero kernels and biases of 3 (tanh 3: white images, far from the data and from noise)."""

    def __init__(self, spoil):
        super().__init__()
        self.spoil = dict(spoil)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        kind = self.spoil.get(self._epoch)
        for index, variable in enumerate(self.model.generator.trainable_weights if kind else ()):
            if kind == "noise":
                value = tf.random.stateless_normal(variable.shape, (index, batch), stddev=5.0)
            else:
                value = tf.fill(variable.shape, 3.0 if variable.path.endswith("bias") else 0.0)
            variable.assign(tf.cast(value, variable.dtype))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_slices(tmp_path_factory.mktemp("tracking_data"), counts=(48, 16, 12))


@pytest.fixture(scope="module")
def spoiled_run(tmp_path_factory, data):
    """3 epochs without EMA: epoch 2 ends as noise, epoch 3 as white images, far worse than noise."""
    from dcganlib import training

    config = tiny_config(data, epochs=3, ema=0.0, track_ssim=False)
    result = training.train(config, tmp_path_factory.mktemp("spoiled") / "run", callbacks=[_BreakGenerator({2: "noise", 3: "white"})])
    return config, result


def record_of(result):
    return json.loads((result.run_dir / runs.RUN_MANIFEST_FILE).read_text())["quality"]


def _history(run_dir):
    return runs.read_history(run_dir / runs.HISTORY_FILE)


def test_every_epoch_has_the_figures_and_run_json_the_real_reference(spoiled_run):
    _, result = spoiled_run
    rows = _history(result.run_dir)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    for row in rows:
        assert all(math.isfinite(row[column]) for column in (*tracking.COLUMNS, tracking.CRITERION,
                                                              tracking.SECONDS_COLUMN))
        assert row["val_score"] == pytest.approx(tracking.quality_score(row, record_of(result)["real_reference"]))
        assert 0 <= row["val_precision"] <= 1 and 0 <= row["val_recall"] <= 1 and row["val_fd"] >= 0
    record = record_of(result)
    assert record["criterion"] == tracking.CRITERION == "val_score"
    reference = record["real_reference"]
    assert set(reference) == {*tracking.COLUMNS, "val_score"} and reference["val_score"] == 1.0
    # real images against real images of other subjects: far better than an untrained generator's figures
    assert reference["val_fd"] < rows[0]["val_fd"] and reference["val_recall"] > 0.5


def test_the_exported_generator_is_the_best_epoch_not_the_last(spoiled_run):
    config, result = spoiled_run
    rows = _history(result.run_dir)
    best = min(rows, key=lambda row: row["val_score"])
    assert best["epoch"] < 3 and rows[-1]["val_fd"] > 2 * best["val_fd"]  # white images: the last epoch is worse
    assert rows[-1]["val_score"] > best["val_score"]
    record = record_of(result)
    assert record["best_epoch"] == best["epoch"] and record["best_value"] == pytest.approx(best["val_score"])
    assert [epoch for epoch, _ in runs.best_generators(result.run_dir)] == [best["epoch"]]

    from dcganlib.sampling import load_generator

    exported = load_generator(result.run_dir)
    z = np.random.default_rng(0).standard_normal((8, config.latent_dim)).astype(np.float32)
    of_best = load_generator(result.run_dir, epoch=int(best["epoch"]))
    np.testing.assert_array_equal(exported(z), of_best(z))
    np.testing.assert_array_equal(exported(z), result.generator(z))  # train() returns what it exported
    assert result.best_epoch == best["epoch"]
    assert not np.allclose(exported(z), load_generator(result.run_dir, epoch=3)(z))  # the last epoch's G
    # the exported generator measures exactly what its epoch's history row says
    probe = tracking.make_probe(*_validate_and_train(config), config.latent_dim, config.seed)
    measured = probe.measure(exported)
    for column in (*tracking.COLUMNS, tracking.CRITERION):
        assert measured[column] == pytest.approx(best[column], rel=1e-9), column


def _validate_and_train(config):
    from dcganlib import data

    splits = data.load_dataset(config)
    return splits.validate, splits.train


def test_tracked_figures_are_evaluates_figures_for_the_same_images(spoiled_run):
    """evaluate.measure and the tracker run one code path: same images, same reference → same numbers."""
    from dcganlib import evaluate
    from dcganlib.pixels import to_uint8
    from dcganlib.sampling import images_of, load_generator

    config, result = spoiled_run
    validate, train = _validate_and_train(config)
    probe = tracking.make_probe(validate, train, config.latent_dim, config.seed)
    images = to_uint8(images_of(load_generator(result.run_dir), probe.noise))
    side = evaluate.ReferenceSide(validate, train)
    figures, _ = evaluate.measure(train[:16], images[:16], validate, images, side, len(images),
                                  seed=config.seed, epochs=1)
    tracked = probe.measure(load_generator(result.run_dir))
    assert figures["feature_metrics"]["frechet_distance"] == pytest.approx(tracked["val_fd"], rel=1e-9)
    assert figures["feature_metrics"]["kid"] == pytest.approx(tracked["val_kid"], rel=1e-9)
    assert figures["feature_metrics"]["precision"] == tracked["val_precision"]
    assert figures["feature_metrics"]["recall"] == tracked["val_recall"]
    assert figures["spectrum"] == pytest.approx(tracked["val_spectrum"], rel=1e-9)
    assert figures["tissue_intensity"] == pytest.approx(tracked["val_tissue_w1"], rel=1e-9)


def test_a_resume_keeps_the_rows_and_the_best_so_far(spoiled_run, tmp_path):
    from dcganlib import training

    config, result = spoiled_run
    run_dir = tmp_path / "run"
    shutil.copytree(result.run_dir, run_dir)
    before = _history(run_dir)
    best_epoch = json.loads((run_dir / runs.RUN_MANIFEST_FILE).read_text())["quality"]["best_epoch"]
    # epoch 4 ends as white images again: it cannot become the best
    training.train(config.replace(epochs=4), run_dir, resume=True, callbacks=[_BreakGenerator({4: "white"})])
    after = _history(run_dir)
    assert [row["epoch"] for row in after] == [1, 2, 3, 4]
    for old, new in zip(before, after):
        assert old == new  # the rows of the first session are kept as they were
    assert all(math.isfinite(after[-1][column]) for column in tracking.COLUMNS)
    record = json.loads((run_dir / runs.RUN_MANIFEST_FILE).read_text())["quality"]
    assert record["best_epoch"] == best_epoch
    assert [epoch for epoch, _ in runs.best_generators(run_dir)] == [best_epoch]


def test_resume_best_repairs_a_kill_between_checkpoint_and_best_file(tmp_path):
    """The restored epoch is the best kept row but no best file names it: it becomes the best file now;
    a best file of an epoch after the restored checkpoint is deleted."""
    run_dir = tmp_path / "run"
    (run_dir / runs.CHECKPOINT_DIR).mkdir(parents=True)
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4)])
    tracking.BestSoFar().save(generator, run_dir, 1, 9.0)
    runs.best_generator_path(run_dir, 5).write_bytes(b"from epochs that are trained again")
    history = [{"epoch": 1, "val_score": 9.0}, {"epoch": 2, "val_score": math.nan}, {"epoch": 3, "val_score": 4.0}]
    best = tracking.resume_best(run_dir, history, 3, generator)
    assert (best.epoch, best.value) == (3, 4.0)
    assert [epoch for epoch, _ in runs.best_generators(run_dir)] == [3]
    # a later, worse row changes nothing
    assert tracking.resume_best(run_dir, history + [{"epoch": 4, "val_score": 6.0}], 4, generator).epoch == 3


def test_better_and_best_row_follow_each_figures_direction():
    assert tracking.better(1.0, 2.0, "val_fd") and not tracking.better(2.0, 1.0, "val_fd")
    assert tracking.better(0.9, 0.5, "val_recall") and not tracking.better(math.nan, None)
    rows = [{"epoch": 1, "val_score": 5.0}, {"epoch": 2, "val_score": 3.0}, {"epoch": 3, "val_score": 3.0}]
    assert tracking.best_row(rows)["epoch"] == 2
    assert tracking.best_row([{"epoch": 1, "val_recall": 0.2}, {"epoch": 2, "val_recall": 0.7}], "val_recall")["epoch"] == 2


def test_the_score_is_the_geometric_mean_of_how_far_each_figure_is_from_real():
    reference = {"val_fd": 50.0, "val_spectrum": 0.01, "val_tissue_w1": 0.02, "val_recall": 0.9}
    assert tracking.quality_score(reference, reference) == 1.0
    worse = {"val_fd": 100.0, "val_spectrum": 0.04, "val_tissue_w1": 0.01, "val_recall": 0.45}
    # ratios 2, 4, 1 (better than real counts 1), 2 -> (2 * 4 * 1 * 2) ** (1/4) = 2
    assert tracking.quality_score(worse, reference) == pytest.approx(2.0)
    assert math.isfinite(tracking.quality_score({**worse, "val_recall": 0.0}, reference))  # collapsed: finite
    assert math.isnan(tracking.quality_score({**worse, "val_fd": math.nan}, reference))
    assert [tracking.due(e, 3, 7) for e in range(1, 8)] == [False, False, True, False, False, True, True]
    assert not any(tracking.due(e, 0, 7) for e in range(1, 8))


def test_no_tissue_is_the_worst_tissue_figure_not_a_crash():
    side = quality.RealSide(np.full((12, 32, 32, 1), 200, np.uint8))
    figures, _, histogram = quality.artefact_figures(np.zeros((12, 32, 32, 1), np.uint8), side)
    assert histogram is None and figures["tissue_w1"] == quality.NO_TISSUE_W1


def test_evaluate_epoch_grades_that_epoch_and_refuses_one_not_on_disk(spoiled_run, capsys):
    _, result = spoiled_run
    code, err = main("evaluate", result.run_dir, "--epoch", 9, capsys=capsys)
    line = error_line(err)
    assert code == 2 and "no generator of epoch 9" in line and "epochs on disk: 1, 2, 3" in line
    code, err = main("evaluate", "--images", result.run_dir, "--epoch", 2, capsys=capsys)
    assert code == 2 and "--epoch" in error_line(err)


def test_graded_generator_says_which_and_whether_its_choosers_grade_it():
    manifest = {"epochs_completed": 9, "quality": {"best_epoch": 4, "criterion": "val_fd",
                                                   "reference_images": "the validate split (16 images)",
                                                   "eval_every": 1}}
    from dcganlib.evaluate import graded_generator

    assert graded_generator(manifest, None, False)["epoch"] == 4
    assert graded_generator(manifest, None, False)["choosing_images_also_grade"].startswith("yes")
    assert graded_generator(manifest, None, True)["choosing_images_also_grade"].startswith("no")
    assert graded_generator(manifest, 7, False) == {"epoch": 7, "chosen_by": "asked for (--epoch)"}
    assert graded_generator({"epochs_completed": 9}, None, False)["epoch"] == 9


def test_kernel_distance_is_the_same_with_and_without_the_whole_kernel_matrices(monkeypatch):
    from dcganlib.metrics import distances

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((60, 8)), rng.standard_normal((40, 8)) + 0.3
    cached = distances.kernel_distance(a, b, subsets=7, subset_size=30)
    monkeypatch.setattr(distances, "GRAM_CACHE_MAX", 0)
    assert distances.kernel_distance(a, b, subsets=7, subset_size=30)["mean"] == pytest.approx(cached["mean"], rel=1e-12)


# ---- the recipe levers ----------------------------------------------------------------------------------
def test_adaptive_augment_is_identity_at_p0_and_diffaugment_at_p1():
    from dcganlib.augment import adaptive_augment, diff_augment

    images = tf.random.stateless_uniform((6, 16, 16, 1), (1, 2), -1, 1)
    seed = tf.constant([3, 4])
    np.testing.assert_array_equal(adaptive_augment(images, "translation,cutout", seed, 0.0), images)
    once = adaptive_augment(images, "translation", seed, 1.0)
    assert not np.allclose(once, images)
    np.testing.assert_array_equal(once, adaptive_augment(images, "translation", seed, 1.0))  # stateless
    big = tf.random.stateless_uniform((200, 16, 16, 1), (1, 2), -1, 1)
    half = adaptive_augment(big, "cutout", seed, 0.5).numpy()
    changed = np.mean([not np.array_equal(half[i], big.numpy()[i]) for i in range(200)])
    assert 0.4 < changed < 0.6  # each image drawn on its own
    full = diff_augment(big, "cutout", seed).numpy()
    assert np.mean([not np.array_equal(full[i], big.numpy()[i]) for i in range(200)]) == 1.0


def test_ada_probability_follows_discriminator_overfitting():
    from dcganlib.gan import ADA_SPEED_IMAGES, build_gan

    gan = build_gan(tiny_config(".", augment="translation", ada_target=0.6))
    sure = tf.ones((32, 1))  # D calls every real image real: overfitting signal 1 > 0.6
    gan.adapt_augmentation(sure, tf.constant(32), 1)
    assert float(gan.augment_probability) == pytest.approx(32 / ADA_SPEED_IMAGES)
    for _ in range(3):
        gan.adapt_augmentation(-sure, tf.constant(32), 1)  # D unsure: p falls, never below 0
    assert float(gan.augment_probability) == 0.0


def test_learning_rate_decays_linearly_to_its_final_value(data, tmp_path):
    from dcganlib import training
    from dcganlib.callbacks import decayed_rate

    assert decayed_rate(1.0, 0.9, 0, 10) == 1.0 and decayed_rate(1.0, 0.9, 9, 10) == pytest.approx(0.1)
    config = tiny_config(data, epochs=3, lr_decay=0.5, eval_every=0, track_ssim=False)
    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(
        (float(record.model.g_optimizer.learning_rate), float(record.model.d_optimizer.learning_rate))))
    result = training.train(config, tmp_path / "run", callbacks=[record])
    assert result.epochs_completed == 3
    rate = config.g_learning_rate
    np.testing.assert_allclose(seen, [(rate, rate), (0.75 * rate, 0.75 * rate), (0.5 * rate, 0.5 * rate)], rtol=1e-6)
    from dcganlib.sampling import load_generator

    load_generator(tmp_path / "run")  # eval_every 0: the last epoch's generator is exported
    assert runs.best_generators(tmp_path / "run") == []


# ---- curves of quality against compute -----------------------------------------------------------------
def test_curves_read_a_run_and_give_each_figure_at_a_budget(spoiled_run, tmp_path):
    from dcganlib import curves, plots

    _, result = spoiled_run
    run_dir = tmp_path / "spoiled-s3"  # recipe "spoiled", seed from config.json
    shutil.copytree(result.run_dir, run_dir)
    curve = curves.read_curve(run_dir)
    rows = _history(run_dir)
    per_epoch = json.loads((run_dir / runs.RUN_MANIFEST_FILE).read_text())["sessions"][-1]["images_per_epoch"]
    assert (curve.recipe, curve.seed) == ("spoiled", 3)
    assert list(curve.epochs) == [1, 2, 3] and list(curve.images) == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert curve.seconds[-1] == pytest.approx(sum(row["seconds"] for row in rows))
    assert curve.at(per_epoch - 1) is None
    assert curve.at(3 * per_epoch + 1) is None  # past the last epoch: never the last epoch's figures again
    best = min(rows, key=lambda row: row["val_score"])  # epoch 1 or 2: epoch 3 is white images
    assert curve.at(3 * per_epoch)["epoch"] == best["epoch"]  # what a run stopped there exports
    assert curve.at(per_epoch)["val_fd"] == rows[0]["val_fd"]
    assert list(curve.values["val_score"]) == [row["val_score"] for row in rows]
    table = curves.budget_table([curve], [per_epoch, 3 * per_epoch, 9 * per_epoch])  # 9x: not reached, no row
    assert [row["epoch"] for row in table] == [[1], [best["epoch"]]]
    assert table[1]["val_recall"]["mean"] == best["val_recall"]
    assert table[0]["val_fd"]["real_reference"] == curve.reference["val_fd"]
    text = curves.markdown_table(table)
    assert text.count("\n") == 4 and "val_score" in text.splitlines()[0] and f"{3 * per_epoch:,}" in text and "real reference" in text
    assert len(plots.plot_quality_curves([curve], budgets=[per_epoch]).axes) == 8
    assert len(plots.plot_quality_curves([curve], x="seconds").axes) == 8
    record = json.loads((run_dir / runs.RUN_MANIFEST_FILE).read_text())["quality"]
    assert len(plots.plot_quality_history(run_dir / runs.HISTORY_FILE, record["real_reference"], 2).axes) == 8
    # what the images look like at each budget: the grid of the epoch exported there, never epoch 3's white
    grids = curves.budget_grids([curve], [per_epoch, 3 * per_epoch, 9 * per_epoch])  # 9x: not reached, left out
    assert [[path.name for _, path in row] for row in grids] == [
        ["epoch_0001.png", f"epoch_{best['epoch']:04d}.png"]]
    assert grids[0][1][0] == f"spoiled (seed 3)\n{3 * per_epoch:,} images: epoch {best['epoch']}"
    assert len(plots.plot_budget_grids(grids).axes) == 2


def test_curves_refuse_a_run_without_tracked_quality(spoiled_run, tmp_path):
    from dcganlib import curves
    from dcganlib.errors import RunFolderError

    run_dir = tmp_path / "run"
    shutil.copytree(spoiled_run[1].run_dir, run_dir)
    manifest = json.loads((run_dir / runs.RUN_MANIFEST_FILE).read_text())
    del manifest["quality"]
    (run_dir / runs.RUN_MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(RunFolderError, match="tracked no quality"):
        curves.read_curve(run_dir)


def test_curves_command_prints_the_table_writes_the_figures_and_never_overwrites_unasked(spoiled_run, tmp_path,
                                                                                           capsys, monkeypatch):
    from dcganlib import cli, curves
    from helpers import error_line

    run_dir = tmp_path / "spoiled-s3"
    shutil.copytree(spoiled_run[1].run_dir, run_dir)
    per_epoch = json.loads((run_dir / runs.RUN_MANIFEST_FILE).read_text())["sessions"][-1]["images_per_epoch"]
    out = tmp_path / "curves"
    capsys.readouterr()
    assert cli.main(["curves", str(run_dir), "--budget", str(per_epoch), "--budget", str(3 * per_epoch),
                     "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| recipe | images seen |") and table.count("| spoiled |") == 2
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([f"{name}.{suffix}" for name in ("quality_budget_grids", "quality_curves_images",
                                                              "quality_curves_seconds") for suffix in ("pdf", "png")]
                             + ["quality_curves.json", "quality_curves.md"])
    assert (out / "quality_curves.md").read_text() == table  # the printed table, kept for a report
    rows = curves.read_budget_table(out / "quality_curves.json")  # the same rows, for code (notebook 04)
    assert [row["budget_images"] for row in rows] == [per_epoch, 3 * per_epoch] and rows[0]["recipe"] == "spoiled"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # With a row at the default budget and a longer one, the rule's verdict follows the table.
    import dataclasses

    from dcganlib import config as config_module

    one_epoch = dataclasses.replace(config_module.default_config(), epochs=1)
    monkeypatch.setattr(config_module, "default_config", lambda: one_epoch)
    assert cli.main(["curves", str(run_dir), "--budget", str(per_epoch), "--budget", str(3 * per_epoch)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(table) and "Against the default budget (1 epochs), per recipe:" in printed
    assert re.search(r"\nspoiled \(seed 3\): Training 3× as long (improves every|does not improve)", printed), printed
    assert cli.main(["curves", str(run_dir), "--out", str(out)]) == 2
    assert "--overwrite" in error_line(capsys.readouterr().err)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
