"""DICOM input: pydicom's own bundled files (nothing downloads) and series written by the tests — values,
slice order, subjects, refusals, and a training run end to end on a series folder."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402

from dcganlib.config import Config  # noqa: E402
from dcganlib.data import SkippedFilesWarning, decode_file, load_dataset  # noqa: E402
from dcganlib.data.readers import robust_uint8  # noqa: E402
from dcganlib.errors import DataError  # noqa: E402
from helpers import error_line, main, write_dicom_series  # noqa: E402


def cfg(data, tmp_path, **changes):
    values = dict(data=str(data), image_size=32, cache_dir=str(tmp_path / "cache"))
    values.update(changes)
    return Config(**values)


def bundled(name: str, folder: Path, as_name: str = "") -> Path:
    """A copy of one of pydicom's bundled test files (the local copy: get_testdata_file never downloads these)."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(get_testdata_file(name), folder / (as_name or name)))


def window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """The DICOM linear window, computed independently of dcganlib."""
    low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    out = np.where(values <= low, 0.0, np.where(values > high, 255.0,
                                                ((values - (center - 0.5)) / (width - 1) + 0.5) * 255))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def test_bundled_mr_is_windowed_and_its_compressed_copies_decode_alike(tmp_path):
    path = bundled("MR_small.dcm", tmp_path / "d", as_name="IM0001")  # no suffix: found by its preamble
    dataset = pydicom.dcmread(path)
    assert (dataset.WindowCenter, dataset.WindowWidth) == (600, 1600)
    got = decode_file(path, cfg(path, tmp_path, image_size=64))
    assert got.shape == (1, 64, 64, 1)
    np.testing.assert_array_equal(got[0, ..., 0], window(dataset.pixel_array.astype(np.float64), 600, 1600))
    for name in ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"):  # lossless: the same pixels
        np.testing.assert_array_equal(decode_file(bundled(name, tmp_path / "c"), cfg(path, tmp_path, image_size=64)),
                                      got, err_msg=name)


def test_bundled_ct_is_rescaled_to_hounsfield_then_scaled_by_percentiles(tmp_path):
    path = bundled("CT_small.dcm", tmp_path)
    dataset = pydicom.dcmread(path)
    assert (float(dataset.RescaleSlope), float(dataset.RescaleIntercept)) == (1.0, -1024.0)
    assert "WindowCenter" not in dataset
    got = decode_file(path, cfg(path, tmp_path, image_size=128))
    hounsfield = dataset.pixel_array.astype(np.float32) - 1024
    np.testing.assert_array_equal(got[0, ..., 0], robust_uint8(hounsfield))


def test_bundled_multiframe_file_gives_one_slice_per_frame(tmp_path):
    path = bundled("SC_rgb_rle_2frame.dcm", tmp_path)  # RGB, RLE, 2 frames of 100 x 100
    got = decode_file(path, cfg(path, tmp_path, image_size=100, channels=3))
    np.testing.assert_array_equal(got, pydicom.dcmread(path).pixel_array)
    assert decode_file(path, cfg(path, tmp_path, image_size=100)).shape == (2, 100, 100, 1)


def test_a_written_multiframe_volume_gives_its_frames_in_order(tmp_path):
    series = write_dicom_series(tmp_path / "series", "P1", window=(40, 400))
    volume = write_dicom_series(tmp_path / "volume", "P1", window=(40, 400), frames=1)  # the same 6 slices
    one = load_dataset(cfg(volume, tmp_path, image_size=40, val_fraction=0, test_fraction=0))
    assert one.report["files"]["found"] == 1 and len(one.train) == 6
    np.testing.assert_array_equal(one.train, load_dataset(cfg(series, tmp_path, image_size=40, val_fraction=0,
                                                              test_fraction=0)).train)


def test_a_compressed_file_without_its_decoder_names_the_package(tmp_path):
    try:
        import pylibjpeg  # noqa: F401
        pytest.skip("pylibjpeg is installed: the 12-bit JPEG decodes")
    except ImportError:
        pass
    path = bundled("JPEG-lossy.dcm", tmp_path)  # JPEG Extended, 12 bits: Pillow cannot decode it
    with pytest.raises(DataError) as caught:
        decode_file(path, cfg(path, tmp_path))
    assert str(caught.value) == (f"cannot decode {path}: its transfer syntax JPEG Extended (Process 2 and 4) needs a "
                                 "decoder that is not installed; install it with: pip install pylibjpeg "
                                 "pylibjpeg-libjpeg")


def test_damaged_and_pixel_less_dicom_files_are_skipped_and_counted(tmp_path):
    folder = write_dicom_series(tmp_path / "d", "P1", slices=4)
    bundled("MR_truncated.dcm", folder, "truncated.dcm")  # pixel data cut short
    bundled("rtplan.dcm", folder, "plan")  # a DICOM file without pixels (found by its preamble)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(cfg(folder, tmp_path, val_fraction=0, test_fraction=0))
    assert len(data.train) == 4
    assert [str(w.message).split(" (e.g.")[0] for w in caught if w.category is SkippedFilesWarning] == [
        f"skipped 2 unreadable or non-image file(s) under {folder}"]
    reasons = {row["path"]: row["reason"] for row in data.report["files"]["skipped_examples"]}
    assert reasons["plan"] == "a DICOM file without pixel data (e.g. a report or a structure set)"
    assert reasons["truncated.dcm"].startswith("DICOM pixel data is damaged (ValueError: The number of bytes")


def test_series_slices_are_ordered_by_position_rescaled_windowed_and_monochrome1_inverted(tmp_path):
    plain = write_dicom_series(tmp_path / "plain", "P1", slope=2.0, intercept=-1000.0, window=(40, 400))
    data = load_dataset(cfg(plain, tmp_path, image_size=40, val_fraction=0, test_fraction=0))
    files = sorted(plain.iterdir())  # 0001 … 0006: the names run against the slice positions
    expected = []
    for path in reversed(files):  # position 0 mm is file 0006
        dataset = pydicom.dcmread(path)
        hounsfield = dataset.pixel_array.astype(np.float64) * 2.0 - 1000.0
        expected.append(window(hounsfield, 40, 400))
    np.testing.assert_array_equal(data.train[..., 0], np.stack(expected))
    inverted = write_dicom_series(tmp_path / "inv", "P1", window=(40, 400), photometric="MONOCHROME1")
    got = load_dataset(cfg(inverted, tmp_path, image_size=40, val_fraction=0, test_fraction=0)).train
    np.testing.assert_array_equal(got, 255 - data.train)


def test_subjects_come_from_patient_id_so_no_patient_straddles_splits(tmp_path):
    root = tmp_path / "scans"
    for number in range(6):  # folders and files named without any subject id
        write_dicom_series(root / f"{number:02d}", f"PAT{number % 5}", slices=3, seed=number)  # PAT0 twice
    data = load_dataset(cfg(root, tmp_path, val_fraction=0.2, test_fraction=0.2))
    report = data.report
    assert report["grouping"] == "subject" and report["subject_regex"] == "DICOM PatientID (else StudyInstanceUID)"
    assert sorted(sum(report["subjects"].values(), [])) == [f"PAT{i}" for i in range(5)]
    assert report["subject_counts"] == {"test": 1, "validate": 1, "train": 3}
    assert sorted(np.concatenate(list(data.groups.values())).tolist()).count("PAT0") == 6


def test_a_dicom_header_declaring_a_huge_image_is_refused(tmp_path):
    folder = write_dicom_series(tmp_path / "d", "P1", slices=1)
    path = next(folder.iterdir())
    dataset = pydicom.dcmread(path)
    dataset.Rows = dataset.Columns = 9000  # 81 M pixels declared, 3 kB stored
    dataset.save_as(path)
    with pytest.raises(DataError, match="a possible decompression bomb"):
        load_dataset(cfg(folder, tmp_path))


@pytest.mark.slow
def test_training_runs_end_to_end_on_a_dicom_series_folder(tmp_path, capsys):
    root = tmp_path / "scans"
    for number in range(6):
        write_dicom_series(root / f"series{number}", f"PAT{number}", slices=8, seed=number, window=(40, 400))
    code, stderr = main("train", "--smoke", "--data", root, "--out", tmp_path / "run", "--max-images", "32",
                        capsys=capsys)
    assert code == 0, stderr[-3000:]
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["grouping"] == "subject" and split["counts"] == {"train": 32, "validate": 8, "test": 8}
    assert (tmp_path / "run" / "generator.keras").is_file()
    code, stderr = main("train", "--data", root / "series0" / "0001", "--out", tmp_path / "x", "--smoke",
                        capsys=capsys)  # one slice: too few for a batch, said in one line
    assert code == 2 and error_line(stderr) == ("dcganlib: error: batch_size 16 is larger than the 1 training "
                                                "images; use --batch-size 1 or fewer, or add data")


@pytest.mark.slow
def test_training_runs_end_to_end_on_pydicoms_bundled_files(tmp_path):
    from dcganlib import training
    from helpers import tiny_config

    folder = tmp_path / "bundled"
    for name in ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                 "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm", "liver_1frame.dcm"):
        bundled(name, folder)
    result = training.train(tiny_config(folder, batch_size=4, val_fraction=0.0, test_fraction=0.0,
                                        track_ssim=False), tmp_path / "run")
    assert result.epochs_completed == 2 and (tmp_path / "run" / "generator.keras").is_file()
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["files"] == {"found": 8, "used": 8, "skipped": 0, "skipped_examples": []}
    assert split["grouping"] == "subject" and sorted(split["subjects"]["train"]) == ["1CT1", "4MR1", "99000"]
