"""Readers, layouts, subject-level splits, the tf.data pipeline and bad inputs, on tiny files in tmp_path."""

import json
import os
import random
import struct
import warnings
import zlib

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from dcganlib.config import Config
from dcganlib.data import SkippedFilesWarning, epoch_stream, load_dataset, make_tf_dataset
from dcganlib.pixels import to_uint8
from dcganlib.errors import ConfigError, DataError


def cfg(data, tmp_path, **changes):
    """A config reading ``data`` with its caches inside ``tmp_path``."""
    values = dict(data=str(data), image_size=16, cache_dir=str(tmp_path / "cache"))
    values.update(changes)
    return Config(**values)


def save_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def gradient(size=16):
    """A deterministic 8-bit pattern whose every pixel differs from its neighbours."""
    return ((np.arange(size * size).reshape(size, size) * 7) % 256).astype(np.uint8)


# ------------------------------------------------------------------------------------------------
# image readers
def test_png_folder_keeps_8bit_values_at_target_size(tmp_path):
    for s in range(3):
        save_png(tmp_path / "d" / f"img{s}.png", gradient())
    data = load_dataset(cfg(tmp_path / "d", tmp_path, val_fraction=0.0, test_fraction=0.0))
    assert data.train.shape == (3, 16, 16, 1) and data.train.dtype == np.uint8
    np.testing.assert_array_equal(data.train[0, ..., 0], gradient())
    assert data.validate.shape == (0, 16, 16, 1) and data.test.shape == (0, 16, 16, 1)


def test_resize_keeps_aspect_ratio_by_padding_with_black(tmp_path):
    tall = np.full((32, 16), 200, np.uint8)  # H=32, W=16 -> 16x8 centred in a 16x16 frame
    save_png(tmp_path / "d" / "tall.png", tall)
    image = load_dataset(cfg(tmp_path / "d", tmp_path)).train[0, ..., 0]
    assert np.all(image[:, 4:12] == 200)
    assert np.all(image[:, :4] == 0) and np.all(image[:, 12:] == 0)


def test_16bit_png_is_scaled_per_image_to_full_range(tmp_path):
    image16 = np.full((16, 16), 1000, np.uint16)
    image16[:, 8:] = 4000
    path = tmp_path / "d" / "deep.png"
    path.parent.mkdir()
    Image.fromarray(image16).save(path)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit file
    out = load_dataset(cfg(tmp_path / "d", tmp_path)).train[0, ..., 0]
    np.testing.assert_array_equal(out[:, :8], 0)
    np.testing.assert_array_equal(out[:, 8:], 255)


def test_rgb_and_rgba_become_one_luma_channel(tmp_path):
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    rgba = np.concatenate([red, np.zeros((16, 16, 1), np.uint8)], axis=-1)
    rgba[:, 8:, 3] = 255  # left half transparent -> black background
    save_png(tmp_path / "d" / "a_rgb.png", red)
    save_png(tmp_path / "d" / "b_rgba.png", rgba)
    data = load_dataset(cfg(tmp_path / "d", tmp_path, val_fraction=0.0, test_fraction=0.0))
    by_name = dict(zip(["a_rgb", "b_rgba"], data.train[..., 0]))
    assert data.train.shape == (2, 16, 16, 1)
    np.testing.assert_array_equal(by_name["a_rgb"], 76)  # round(0.299 * 255)
    np.testing.assert_array_equal(by_name["b_rgba"][:, :8], 0)
    np.testing.assert_array_equal(by_name["b_rgba"][:, 8:], 76)


def test_channels_3_keeps_colour_and_repeats_grey(tmp_path):
    colour = np.zeros((32, 32, 3), np.uint8)  # resized 32 -> 16 as one RGB image
    colour[..., 1] = 180
    save_png(tmp_path / "d" / "a.png", colour)
    save_png(tmp_path / "d" / "b.png", np.full((16, 16), 90, np.uint8))
    data = load_dataset(cfg(tmp_path / "d", tmp_path, channels=3, val_fraction=0.0, test_fraction=0.0))
    assert data.train.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(data.train[0, 0, 0], [0, 180, 0])
    np.testing.assert_array_equal(data.train[1, 0, 0], [90, 90, 90])


def test_jpeg_and_multipage_16bit_tiff(tmp_path):
    save_png(tmp_path / "d" / "photo.jpg", np.full((16, 16), 128, np.uint8))
    arrays = [np.full((16, 16), v, np.uint16) for v in (100, 300, 900)]
    for array in arrays:
        array[:4] = 0  # a dark band, so each page's percentile scale runs from 0 to its level
    pages = [Image.fromarray(a) for a in arrays]
    pages[0].save(tmp_path / "d" / "stack.tif", save_all=True, append_images=pages[1:])
    data = load_dataset(cfg(tmp_path / "d", tmp_path, val_fraction=0.0, test_fraction=0.0))
    assert data.report["files"]["used"] == 2
    assert len(data.train) == 4  # 1 JPEG + 3 TIFF pages
    assert abs(int(data.train[0, 8, 8, 0]) - 128) <= 2  # JPEG is lossy
    np.testing.assert_array_equal(data.train[1:, 8, 8, 0], 255)
    np.testing.assert_array_equal(data.train[1:, 0, 0, 0], 0)


def test_npy_slice_and_stack(tmp_path):
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "d" / "one.npy", gradient())
    stack = np.stack([np.full((16, 16), v, np.float32) for v in (0.0, 1.0, 2.0, 3.0)])
    np.save(tmp_path / "d" / "stack.npy", stack)
    data = load_dataset(cfg(tmp_path / "d", tmp_path, val_fraction=0.0, test_fraction=0.0))
    assert len(data.train) == 5
    np.testing.assert_array_equal(data.train[0, ..., 0], gradient())  # uint8 slice kept as is
    # float stack: scaled over the whole stack, 0 -> 0 and the largest value -> 255
    assert [int(v) for v in data.train[1:, 0, 0, 0]] == [0, 85, 170, 255]


@pytest.mark.parametrize("layout", ["N,H,W", "N,H,W,1", "N,1,H,W"])
def test_npy_stacks_in_keras_and_pytorch_layouts_are_read_alike(layout, tmp_path):
    from dcganlib.data import decode_file

    stack = np.stack([gradient(), 255 - gradient(), np.roll(gradient(), 3)]).astype(np.float32) / 255 * 2 - 1
    saved = {"N,H,W": stack, "N,H,W,1": stack[..., None], "N,1,H,W": stack[:, None]}[layout]
    np.save(tmp_path / "stack.npy", saved)
    got = decode_file(tmp_path / "stack.npy", cfg(tmp_path / "stack.npy", tmp_path))
    np.save(tmp_path / "plain.npy", stack)
    assert got.shape == (3, 16, 16, 1)
    np.testing.assert_array_equal(got, decode_file(tmp_path / "plain.npy", cfg(tmp_path / "plain.npy", tmp_path)))


def nifti(path, data, affine=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))
    return path


def test_nifti_axial_slices_skip_empty_and_reorient_to_ras(tmp_path):
    volume = np.zeros((16, 16, 10), np.float32)
    volume[2:14, 2:14, 3:8] = 100.0  # tissue only in axial slices 3..7
    volume[6:10, 2:4, 3:8] = 400.0  # bright blob at low array-y
    # LPS affine: array y grows towards posterior, so the blob is anterior and must end at the top.
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    nifti(tmp_path / "d" / "sub1.nii.gz", volume, lps)
    data = load_dataset(cfg(tmp_path / "d", tmp_path))
    assert data.report["empty_slices_skipped"] == 5
    # a single volume can only be split by slice
    assert data.report["grouping"] == "slice" and data.report["counts"] == {"train": 3, "validate": 1, "test": 1}
    slice_ = np.concatenate([data.train, data.validate, data.test])[0, ..., 0]
    assert slice_[2:4, 6:10].min() == 255  # blob at the top rows (anterior up)
    assert slice_[12:14, 6:10].max() < 255
    assert slice_[0, 0] == 0


def test_nifti_non_square_voxels_are_resampled(tmp_path):
    volume = np.tile(np.arange(1, 17, dtype=np.float32)[:, None, None], (1, 8, 4))  # no background
    affine = np.diag([1.0, 2.0, 1.0, 1.0])  # 16 mm x 16 mm in-plane, 8 voxels of 2 mm along y
    nifti(tmp_path / "d" / "aniso.nii", volume, affine)
    data = load_dataset(cfg(tmp_path / "d", tmp_path, val_fraction=0.0, test_fraction=0.0))
    # a square 16 mm field of view -> fills the frame once voxels are square: no black padding rows,
    # every row is the same left-to-right (x) ramp
    assert data.train.shape == (4, 16, 16, 1)
    image = data.train[0, ..., 0]
    np.testing.assert_array_equal(image, np.broadcast_to(image[8], (16, 16)))
    assert image[0, 0] == 0 and image[0, -1] == 255


def test_nifti_4d_is_a_clear_error(tmp_path):
    path = nifti(tmp_path / "d" / "bold.nii.gz", np.ones((16, 16, 4, 3), np.float32))
    with pytest.raises(DataError, match=r"bold\.nii\.gz is a 4-D NIfTI.*pass 3-D volumes"):
        load_dataset(cfg(path, tmp_path))


def test_nifti_4d_with_one_volume_is_accepted(tmp_path):
    volume = np.zeros((16, 16, 3, 1), np.float32)
    volume[4:12, 4:12] = 10.0
    path = nifti(tmp_path / "d" / "single.nii.gz", volume)
    assert len(load_dataset(cfg(path, tmp_path, val_fraction=0.0, test_fraction=0.0)).train) == 3


# ------------------------------------------------------------------------------------------------
# layouts and splits
def test_oasis_layout_uses_given_splits_and_ignores_masks(tmp_path):
    root = tmp_path / "keras_png_slices_data"
    layout = {"keras_png_slices_train": [1, 2, 3], "keras_png_slices_validate": [4], "keras_png_slices_test": [5]}
    for folder, cases in layout.items():
        for case in cases:
            for i in range(2):
                save_png(root / folder / f"case_{case:03d}_slice_{i}.nii.png", gradient())
    for folder in ("keras_png_slices_seg_train", "keras_png_slices_seg_test"):
        save_png(root / folder / "seg_001_slice_0.nii.png", np.zeros((16, 16), np.uint8))
    data = load_dataset(cfg(tmp_path, tmp_path))  # one level above the split folders also works
    assert data.report["layout"] == "oasis"
    assert data.report["counts"] == {"train": 6, "validate": 2, "test": 2}
    assert data.report["subjects"] == {"train": ["case_001", "case_002", "case_003"],
                                       "validate": ["case_004"], "test": ["case_005"]}
    assert data.report["files"]["skipped"] == 0


def subject_split(data):
    return {k: set(v) for k, v in data.report["subjects"].items()}


def test_folder_split_is_by_subject_and_stable(tmp_path, make_png_folder):
    folder = make_png_folder(subjects=10, slices=3, size=16)
    config = cfg(folder, tmp_path, val_fraction=0.2, test_fraction=0.2)
    first = load_dataset(config)
    assert first.report["grouping"] == "subject" and first.report["subject_regex"] == r"^(case_\d+)_slice_"
    subjects = subject_split(first)
    assert [len(subjects[s]) for s in ("train", "validate", "test")] == [6, 2, 2]
    assert not (subjects["train"] & subjects["validate"] or subjects["train"] & subjects["test"]
                or subjects["validate"] & subjects["test"])
    assert first.report["counts"] == {"train": 18, "validate": 6, "test": 6}
    again = load_dataset(config.replace(cache_dir=str(tmp_path / "other_cache")))
    assert subject_split(again) == subjects
    np.testing.assert_array_equal(again.train, first.train)
    other_seed = load_dataset(config.replace(seed=7))
    assert subject_split(other_seed) != subjects


def test_split_does_not_depend_on_file_creation_order(tmp_path):
    names = [f"case_{s:03d}_slice_{i}.nii.png" for s in range(1, 9) for i in range(2)]
    splits = []
    for attempt, order in enumerate([names, random.Random(3).sample(names, len(names))]):
        for name in order:
            save_png(tmp_path / f"run{attempt}" / name, gradient())
        splits.append(subject_split(load_dataset(cfg(tmp_path / f"run{attempt}", tmp_path))))
    assert splits[0] == splits[1]


def test_akoa_names_give_subject_ids(tmp_path):
    for subject in ("OAI9000099", "OAI9001234", "OAI9005678"):
        for side in ("LEFT", "RIGHT"):
            save_png(tmp_path / "d" / f"{subject}_BaseLine_3_de3d1_SAG_3D_DESS_WE_{side}.nii.gz_idx_0.png",
                     gradient())
    data = load_dataset(cfg(tmp_path / "d", tmp_path, val_fraction=0.34, test_fraction=0.34))
    assert set().union(*subject_split(data).values()) == {"OAI9000099", "OAI9001234", "OAI9005678"}
    assert all(len(v) == 1 for v in subject_split(data).values())


def test_user_subject_regex_searches_relative_path(tmp_path):
    for subject in range(4):
        for i in range(2):
            save_png(tmp_path / "d" / f"sub-{subject:02d}" / f"img{i}.png", gradient())
    data = load_dataset(cfg(tmp_path / "d", tmp_path, subject_regex=r"(sub-\d+)/", val_fraction=0.25,
                            test_fraction=0.25))
    assert set().union(*subject_split(data).values()) == {"sub-00", "sub-01", "sub-02", "sub-03"}
    assert data.report["counts"] == {"train": 4, "validate": 2, "test": 2}


def test_files_without_subject_ids_are_split_by_file(tmp_path):
    for i in range(10):
        save_png(tmp_path / "d" / f"scan{i}.png", gradient())
    data = load_dataset(cfg(tmp_path / "d", tmp_path))
    assert data.report["grouping"] == "file"
    assert data.report["counts"] == {"train": 8, "validate": 1, "test": 1}


def test_max_images_caps_only_the_train_split(tmp_path, make_png_folder):
    folder = make_png_folder(subjects=10, slices=3, size=16)
    data = load_dataset(cfg(folder, tmp_path, max_images=5))
    assert data.report["counts"]["train"] == 5 and data.report["train_before_cap"] == 24
    assert len(data.validate) == 3 and len(data.test) == 3


def test_save_report_writes_json_atomically(tmp_path, make_png_folder):
    data = load_dataset(cfg(make_png_folder(subjects=5), tmp_path))
    target = tmp_path / "run" / "split.json"
    target.parent.mkdir()
    data.save_report(target)
    assert json.loads(target.read_text()) == json.loads(json.dumps(data.report))
    assert sorted(p.name for p in target.parent.iterdir()) == ["split.json"]  # no temp file left


def test_decoded_cache_is_reused_and_invalidated_by_changes(tmp_path, make_png_folder):
    folder = make_png_folder(subjects=3, slices=2, size=16)
    config = cfg(folder, tmp_path)
    assert load_dataset(config).report["decoded_cache_hit"] is False
    assert load_dataset(config).report["decoded_cache_hit"] is True
    save_png(folder / "case_001_slice_0.nii.png", np.zeros((16, 16), np.uint8))
    os.utime(folder / "case_001_slice_0.nii.png", ns=(1, 1))  # a different mtime whatever the clock
    changed = load_dataset(config)
    assert changed.report["decoded_cache_hit"] is False
    assert any(np.all(image == 0) for image in np.concatenate([changed.train, changed.validate, changed.test]))


# ------------------------------------------------------------------------------------------------
# tf.data pipeline
def test_make_tf_dataset_batches_are_float32_in_range_and_cover_the_data():
    images = np.arange(20 * 8 * 8, dtype=np.int64).reshape(20, 8, 8, 1) % 256
    images = images.astype(np.uint8)
    images[0] = 0
    images[1] = 255
    batches = list(make_tf_dataset(images, 4, seed=1))
    assert len(batches) == 5
    for batch in batches:
        assert batch.shape == (4, 8, 8, 1) and batch.dtype.name == "float32"
    stacked = np.concatenate([b.numpy() for b in batches])
    assert stacked.min() == -1.0 and stacked.max() == 1.0
    # every image exactly once per epoch, unchanged by the float round trip
    assert sorted(to_uint8(stacked).reshape(20, -1).tolist()) == sorted(images.reshape(20, -1).tolist())


def test_make_tf_dataset_is_seeded_and_reshuffles_each_epoch():
    images = np.repeat(np.arange(32, dtype=np.uint8)[:, None, None, None], 2, axis=1).repeat(2, axis=2)

    def epoch_orders(dataset, epochs=2):
        return [[int(v) for b in dataset for v in to_uint8(b.numpy())[:, 0, 0, 0]] for _ in range(epochs)]

    first = epoch_orders(make_tf_dataset(images, 8, seed=5))
    second = epoch_orders(make_tf_dataset(images, 8, seed=5))
    assert first == second
    assert first[0] != first[1]
    assert epoch_orders(make_tf_dataset(images, 8, seed=5, shuffle=False), 1)[0] == list(range(32))


def test_epoch_stream_orders_depend_on_the_seed_and_the_epoch_only():
    """Epoch e's order is the same however the stream is started (a resume starts at e directly) or
    iterated; every epoch is a permutation (its first steps × batch images), and epochs differ."""
    images = np.repeat(np.arange(30, dtype=np.uint8)[:, None, None, None], 2, axis=1).repeat(2, axis=2)

    def orders(stream, epochs: int) -> list[list[int]]:
        values = [int(v) for b in stream.take(epochs * 3) for v in to_uint8(b.numpy())[:, 0, 0, 0]]
        return [values[i * 24:(i + 1) * 24] for i in range(epochs)]

    run = orders(epoch_stream(images, 8, 3, seed=5), 3)  # 3 steps of 8: 24 of the 30 images per epoch
    assert orders(epoch_stream(images, 8, 3, seed=5), 3) == run
    assert orders(epoch_stream(images, 8, 3, seed=5, initial_epoch=2), 1) == run[2:]
    assert all(len(set(order)) == 24 and set(order) <= set(range(30)) for order in run)
    assert run[0] != run[1] != run[2]
    assert orders(epoch_stream(images, 8, 3, seed=6), 1)[0] != run[0]
    with pytest.raises(DataError, match="30 images cannot fill 4 batches of 8"):
        epoch_stream(images, 8, 4, seed=5)


def test_mirror_flips_about_half_of_each_epoch_the_same_way_however_the_stream_starts():
    """mirror: each epoch holds the same images as without it (its order is the same), each left to right
    flipped or not; about half are flipped, other images in other epochs; a resume draws the same flips."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 4, 4, 1), dtype=np.uint8)

    def epochs(stream, count: int) -> list[np.ndarray]:
        values = np.concatenate([to_uint8(b.numpy()) for b in stream.take(count * 4)])
        return [values[i * 32:(i + 1) * 32] for i in range(count)]

    plain = epochs(epoch_stream(images, 8, 4, seed=5), 3)
    mirrored = epochs(epoch_stream(images, 8, 4, seed=5, mirror=True), 3)
    flipped = []
    for unflipped, seen in zip(plain, mirrored):
        same = np.all(seen == unflipped, axis=(1, 2, 3))
        mirror = np.all(seen == unflipped[:, :, ::-1], axis=(1, 2, 3))
        assert np.all(same | mirror)  # every image is the epoch's image, flipped or not
        flipped.append(mirror & ~same)
    assert all(8 <= f.sum() <= 24 for f in flipped)  # 32 images, p = 1/2
    assert not np.array_equal(flipped[0], flipped[1])
    again = epochs(epoch_stream(images, 8, 4, seed=5, mirror=True, initial_epoch=2), 1)
    np.testing.assert_array_equal(again[0], mirrored[2])


def test_make_tf_dataset_keeps_remainder_when_asked():
    images = np.zeros((10, 4, 4, 1), np.uint8)
    sizes = [int(b.shape[0]) for b in make_tf_dataset(images, 4, seed=0, drop_remainder=False)]
    assert sizes == [4, 4, 2]


def test_make_tf_dataset_with_fewer_images_than_a_batch_is_a_clear_error():
    with pytest.raises(DataError, match="only 3 images for batch_size 8"):
        make_tf_dataset(np.zeros((3, 4, 4, 1), np.uint8), 8, seed=0)


# ------------------------------------------------------------------------------------------------
# bad input
def test_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"data path .*nowhere does not exist"):
        load_dataset(cfg(tmp_path / "nowhere", tmp_path))


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"data folder .*empty is empty"):
        load_dataset(cfg(tmp_path / "empty", tmp_path))


def test_folder_without_images(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"no image files in .*notes\.txt"):
        load_dataset(cfg(tmp_path / "d", tmp_path))


def write_bad_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.png").write_bytes(b"")
    (folder / "text.png").write_text("not a png")
    good = save_png(folder / "full.png", gradient()).read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "full.png").unlink()
    (folder / "broken.nii.gz").write_bytes(b"\x1f\x8b garbage")
    (folder / "pickle.npy").write_bytes(b"\x93NUMPY garbage")


def test_bad_files_among_good_ones_are_skipped_with_one_warning(tmp_path):
    folder = tmp_path / "d"
    write_bad_files(folder)
    (folder / "readme.txt").write_text("x")
    for i in range(3):
        save_png(folder / f"good{i}.png", gradient())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(cfg(folder, tmp_path, val_fraction=0.0, test_fraction=0.0))
    skipped_warnings = [w for w in caught if issubclass(w.category, SkippedFilesWarning)]
    assert len(skipped_warnings) == 1
    assert "skipped 6 " in str(skipped_warnings[0].message)
    assert len(data.train) == 3
    report = data.report["files"]
    assert report["skipped"] == 6 and report["used"] == 3
    reasons = {e["path"]: e["reason"] for e in report["skipped_examples"]}
    assert reasons["zero.png"] == "empty file (0 bytes)"
    assert "truncated" in reasons["truncated.png"]
    assert "not a supported file type" in reasons["readme.txt"]


def test_only_bad_files_is_an_error(tmp_path):
    write_bad_files(tmp_path / "d")
    with pytest.raises(DataError, match=r"none of the 5 image files in .* could be read"):
        load_dataset(cfg(tmp_path / "d", tmp_path))


def test_images_smaller_than_target_are_an_error(tmp_path):
    save_png(tmp_path / "d" / "big.png", np.zeros((32, 32), np.uint8))
    save_png(tmp_path / "d" / "small.png", np.zeros((12, 10), np.uint8))
    with pytest.raises(DataError, match=r"1 of 2 files .*smaller than image_size 16 .*small\.png: 12x10.*"
                                        r"image_size <= 12"):
        load_dataset(cfg(tmp_path / "d", tmp_path))


def test_subject_regex_matching_nothing(tmp_path, make_png_folder):
    folder = make_png_folder(subjects=2)
    with pytest.raises(DataError, match=r"subject_regex 'patient_\(\\d\+\)' matches 0 of 6 files"):
        load_dataset(cfg(folder, tmp_path, subject_regex=r"patient_(\d+)"))


def test_subject_regex_without_group(tmp_path, make_png_folder):
    with pytest.raises(ConfigError, match="needs a group"):
        load_dataset(cfg(make_png_folder(subjects=2), tmp_path, subject_regex=r"case_\d+"))


def png_bomb(path, width=100_000, height=100_000):
    """A tiny PNG whose header declares width x height pixels (a decompression bomb's signature)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_is_refused(tmp_path):
    save_png(tmp_path / "d" / "good.png", gradient())
    png_bomb(tmp_path / "d" / "bomb.png")
    with pytest.raises(DataError, match=r"refusing .*bomb\.png: .*10000000000 pixels.*decompression bomb.*remove"):
        load_dataset(cfg(tmp_path / "d", tmp_path))


def test_nifti_declaring_a_huge_volume_is_refused(tmp_path):
    header = nib.Nifti1Header()
    header.set_data_shape((2000, 2000, 2000))
    header.set_data_dtype(np.uint8)
    path = tmp_path / "d" / "huge.nii"
    path.parent.mkdir()
    with open(path, "wb") as handle:  # the header only: loading the voxels would need 8 GB
        header.write_to(handle)
        handle.write(b"\0" * 4)
    with pytest.raises(DataError, match=r"refusing .*huge\.nii: .*2000x2000x2000 voxels.*decompression bomb"):
        load_dataset(cfg(path, tmp_path))


def test_unsupported_single_file(tmp_path):
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(DataError, match=r"x\.csv is not a supported file type"):
        load_dataset(cfg(tmp_path / "x.csv", tmp_path))
