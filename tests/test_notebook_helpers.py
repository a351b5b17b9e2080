"""Library functions the notebooks call instead of defining their own: data survey and preprocessing
panel (01), live epoch grids (03), and a run that 04 can rely on (ensure_run)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dcganlib import callbacks, data, images, plots, runs, sampling, training
from dcganlib.config import Config, smoke_config
from dcganlib.errors import ConfigError, DataError


# ---- data: decode_file, survey_files --------------------------------------------------------------
def test_decode_file_matches_the_pipeline_resize_and_pad(tmp_path):
    # 40 wide, 20 high, all white: resized to 16x8 and padded with 4 black rows above and below.
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((20, 40), 255, np.uint8)).save(path)
    out = data.decode_file(path, smoke_config(image_size=16))
    assert out.shape == (1, 16, 16, 1) and out.dtype == np.uint8
    assert (out[0, :4] == 0).all() and (out[0, 12:] == 0).all()
    assert (out[0, 4:12] == 255).all()


def test_decode_file_refuses_missing_and_too_small_files(tmp_path):
    with pytest.raises(DataError, match="not a file"):
        data.decode_file(tmp_path / "absent.png", smoke_config(image_size=16))
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(small)
    with pytest.raises(DataError, match="smaller than image_size 16"):
        data.decode_file(small, smoke_config(image_size=16))


def test_survey_files_reads_sizes_splits_and_slice_numbers_from_headers(tmp_path):
    train = tmp_path / "keras_png_slices_train"
    test = tmp_path / "keras_png_slices_test"
    train.mkdir()
    test.mkdir()
    Image.fromarray(np.zeros((30, 20), np.uint8)).save(train / "case_001_slice_3.nii.png")
    Image.fromarray(np.zeros((24, 24), np.uint8)).save(test / "case_002_slice_11.nii.png")
    np.save(tmp_path / "volume.npy", np.zeros((2, 24, 24), np.uint8))
    rows = {row["path"]: row for row in data.survey_files(tmp_path)}
    assert rows["keras_png_slices_train/case_001_slice_3.nii.png"] == {
        "path": "keras_png_slices_train/case_001_slice_3.nii.png", "split": "train", "width": 20, "height": 30,
        "slice": 3}
    assert rows["keras_png_slices_test/case_002_slice_11.nii.png"]["slice"] == 11
    assert rows["volume.npy"] == {"path": "volume.npy", "split": "", "width": None, "height": None, "slice": None}
    with pytest.raises(DataError, match="does not exist"):
        data.survey_files(tmp_path / "nothing")


# ---- plots: survey and preprocessing figures -------------------------------------------------------
def test_plot_data_survey_counts_sizes_and_files_without_slice_numbers():
    rows = [{"path": f"a{i}", "split": "train", "width": 256, "height": 256, "slice": i} for i in range(5)]
    rows += [{"path": "v.nii.gz", "split": "", "width": None, "height": None, "slice": None}]
    rows += [{"path": f"b{i}", "split": "test", "width": 256, "height": 256, "slice": 4} for i in range(2)]
    fig = plots.plot_data_survey(rows)
    left, right = fig.axes[:2]
    bars = {label.get_text(): patch.get_width() for label, patch in zip(left.get_yticklabels(), left.patches)}
    assert bars == {"volume / array": 1, "256×256": 7}
    assert "(1 files without a number)" in right.get_title()
    assert [label.get_text() for label in right.get_yticklabels()] == ["train (5)", "test (2)"]
    share = right.images[0].get_array()
    np.testing.assert_allclose(share, [[0.2] * 5, [0, 0, 0, 0, 1]])  # rows sum to 1 per split
    with pytest.raises(DataError, match="empty"):
        plots.plot_data_survey([])


def test_plot_preprocessing_shows_stored_resized_and_the_input_range():
    raw = np.zeros((40, 20), np.uint8)
    processed = np.zeros((16, 16, 1), np.uint8)
    processed[4:12, 4:12] = 255
    fig = plots.plot_preprocessing(raw, processed, name="case_001")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "stored case_001: 20×40 uint8"
    assert titles[1] == "resized + padded: 16×16 uint8"
    assert titles[2] == "input range [-1.00, 1.00]"
    with pytest.raises(ValueError, match="uint8"):
        plots.plot_preprocessing(raw, processed.astype(np.float32))


# ---- live grids ---------------------------------------------------------------------------
@pytest.fixture
def shown(monkeypatch):
    """Collects the file names passed to IPython's display() instead of rendering them."""
    import IPython.display

    calls: list[str] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: calls.append(obj.filename))
    return calls


def fake_run_with_grids(root, epochs):
    for epoch in range(1, epochs + 1):
        images.save_grid(np.full((4, 8, 8, 1), epoch / epochs, np.float32), runs.grid_path(root, epoch))
    return root


def test_show_epoch_grid_displays_the_file_of_that_epoch(tmp_path, shown):
    run = fake_run_with_grids(tmp_path, 2)
    assert images.show_epoch_grid(run, 2) == runs.grid_path(run, 2)
    assert shown == [str(runs.grid_path(run, 2))]
    assert images.show_epoch_grid(run, 3) is None  # not trained yet: nothing shown
    assert len(shown) == 1


def test_grid_display_callback_shows_every_kth_and_the_last_epoch(tmp_path, shown):
    run = fake_run_with_grids(tmp_path, 5)
    callback = callbacks.grid_display_callback(run, every=2)
    callback.set_params({"epochs": 5})
    for epoch in range(5):
        callback.on_epoch_begin(epoch, {})
        callback.on_epoch_end(epoch, {})
        # shown when the next epoch begins (after Keras' progress line), not at the end of this one
        assert len(shown) == [0, 0, 1, 1, 2][epoch]
    callback.on_train_end({})
    assert shown == [str(runs.grid_path(run, e)) for e in (2, 4, 5)]
    with pytest.raises(ValueError, match="every"):
        callbacks.grid_display_callback(run, every=0)


# ---- training: ensure_run, with the grid callback inside a real fit() -----------------------------
@pytest.mark.slow
def test_ensure_run_trains_once_then_reuses_resumes_and_refuses_other_settings(demo_data_dir, tmp_path, shown):
    config = smoke_config(data=str(demo_data_dir), image_size=16, epochs=2, batch_size=16, max_images=32)
    run = tmp_path / "run"
    assert training.ensure_run(config, run, callbacks=[callbacks.grid_display_callback(run)]) == run
    assert shown == [str(runs.grid_path(run, 1)), str(runs.grid_path(run, 2))]
    generator = run / runs.GENERATOR_FILE
    stamp = generator.stat().st_mtime_ns

    assert training.ensure_run(config.replace(verbose=1), run) == run  # a finished run: nothing trained
    assert generator.stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="latent_dim: saved 32, asked 8"):
        training.ensure_run(config.replace(latent_dim=8), run)

    generator.unlink()  # as if killed after the last checkpoint: resumed, nothing retrained
    training.ensure_run(config, run)
    assert generator.is_file()
    assert [row["epoch"] for row in runs.read_history(run / runs.HISTORY_FILE)] == [1, 2]

    # evaluate.run_sets: what evaluate_run compares, for notebooks to plot without recomputing
    from dcganlib import evaluate
    from dcganlib.pixels import to_uint8

    sets, saved = evaluate.run_sets(run, seed=3)
    splits = data.load_dataset(config)
    assert sets.generated.dtype == np.uint8 and sets.generated.shape[1:] == (16, 16, 1)
    np.testing.assert_array_equal(sets.train, splits.train)
    np.testing.assert_array_equal(sets.heldout, np.concatenate([splits.validate, splits.test]))
    drawn = to_uint8(sampling.sample(sampling.load_generator(run), len(sets.generated_train) + len(sets.heldout), seed=3))
    np.testing.assert_array_equal(np.concatenate([sets.generated_train, sets.generated_heldout]), drawn)
    assert saved == Config.from_json(run / runs.CONFIG_FILE)


# ---- logic that used to live in notebook cells ------------------------------------------------------
def test_notebook_setup_reads_the_smoke_switch_and_keeps_the_presets_unless_given(monkeypatch):
    from dcganlib.config import default_config, notebook_setup

    monkeypatch.setenv("DCGANLIB_SMOKE", "1")
    smoke = notebook_setup(track_ssim=True)
    assert smoke.smoke and smoke.config == smoke_config(track_ssim=True)
    assert (str(smoke.run_dir), str(smoke.images)) == ("../runs/notebook-smoke", "../runs/smoke-images")
    monkeypatch.delenv("DCGANLIB_SMOKE")
    full = notebook_setup(image_size=None, epochs=7, run_dir="../runs/oasis")
    assert not full.smoke and full.config == default_config(epochs=7)  # None keeps the preset's image size
    # not the documented run (other epochs): its figures go beside its run folder, never to images/
    assert (str(full.run_dir), str(full.images)) == ("../runs/oasis", "../runs/oasis-images")
    assert not full.writes_report_figures


def test_middle_slice_is_the_median_slice_number_of_the_split():
    rows = [{"path": f"s{n}", "split": "train", "slice": n} for n in (7, 1, 30, 12, 3)]
    rows += [{"path": "t", "split": "test", "slice": 99}]
    assert data.middle_slice(rows)["slice"] == 7
    unnumbered = [{"path": f"f{i}", "split": "", "slice": None} for i in range(4)]
    assert data.middle_slice(unnumbered)["path"] == "f2"
    with pytest.raises(DataError, match="no train files"):
        data.middle_slice([{"path": "t", "split": "test", "slice": 1}])


def test_shared_subjects_lists_ids_in_two_splits():
    report = {"subjects": {"train": ["a", "b"], "validate": ["c"], "test": ["d"]}}
    assert data.shared_subjects(report) == []
    report["subjects"]["test"] = ["b", "d"]
    report["subjects"]["validate"] = ["c", "d"]
    assert data.shared_subjects(report) == ["b", "d"]


def test_plot_gallery_shows_seeded_random_picks_of_both_sets():
    from dcganlib import seeds

    generated = np.stack([np.full((8, 8, 1), v, np.uint8) for v in range(50)])
    real = np.stack([np.full((8, 8, 1), 200 + v, np.uint8) for v in range(10)])
    fig = plots.plot_gallery(generated, real, count=9, seed=4)
    rng = seeds.rng(4, "gallery")  # the same stream: first the generated picks, then the real ones
    for ax, pool, size in zip(fig.axes, (generated, real), (50, 10)):
        picked = np.sort(rng.choice(size, 9, replace=False))
        np.testing.assert_array_equal(ax.images[0].get_array(), images.images_to_grid(pool[picked]))
