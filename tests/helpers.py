"""Small builders and checks shared by several test modules (imported as ``helpers``; pytest puts tests/ on the path)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 32


def skip_graph_rewrites() -> None:
    """Run TensorFlow's graphs as traced, without Grappler's rewrites (``disable_meta_optimizer``): the tests'
    tiny runs take a few steps each, and rewriting each new train step's graph cost more than the rewrites
    save. The rewrites are meant to keep the numbers (up to float rounding); every process whose numbers a test
    compares calls this (the processes that run tests, tests/forkserver.py's server). Users' runs keep them."""
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def write_slices(root: Path, counts=(40, 8, 8), size: int = SIZE, seed: int = 0) -> Path:
    """A tiny OASIS-layout folder of bright ellipses on black (one "subject" per image)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    case = 0
    for split, count in zip(("train", "validate", "test"), counts):
        folder = root / f"keras_png_slices_{split}"
        folder.mkdir(parents=True)
        for _ in range(count):
            ry, rx = rng.uniform(0.2, 0.45, 2) * size
            cy, cx = size / 2 + rng.uniform(-2, 2, 2)
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            picture = (inside * rng.uniform(120, 250)).astype(np.uint8)
            Image.fromarray(picture).save(folder / f"case_{case:03d}_slice_0.nii.png")
            case += 1
    return root


def tiny_config(data: Path, **changes):
    """The tiny training config of the tests: 32 px, smoke widths, batch 16, 2 epochs, seed 3, SSIM tracker on."""
    from dcganlib.config import smoke_config

    base = dict(data=str(data), image_size=SIZE, max_images=None, batch_size=16, epochs=2, seed=3,
                verbose=0, track_ssim=True, keep_checkpoints=5)
    base.update(changes)
    return smoke_config(**base)


def main(*args, capsys) -> tuple[int, str]:
    """``python -m dcganlib ARGS`` in this process: exit code and the lines it printed to stderr."""
    from dcganlib import cli

    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def error_line(stderr: str) -> str:
    """The CLI's one ``dcganlib: error:`` line (and there is exactly one, with no traceback)."""
    lines = [line for line in stderr.splitlines() if line.startswith("dcganlib: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


#: Why a bfloat16 test is skipped where :func:`dcganlib.hardware.bfloat16_would_crash` (a crash would take the
#: test process with it).
BFLOAT16_CRASH = ("ONEDNN_MAX_CPU_ISA holds oneDNN below AVX-512 on a CPU with bf16 units: TensorFlow crashes on "
                  "bfloat16 there (dcganlib refuses precision mixed_bfloat16 in one line)")


def dead_pid() -> int:
    """The id of a process that has exited and been reaped: what a killed writer's temporaries carry."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (the lock file excluded: it is empty and only ever created)."""
    from dcganlib.runs import LOCK_FILE

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != LOCK_FILE}


#: An Abseil/glog record as TensorFlow prints it ("I0000 00:00:1796179047.467518   11771 port.cc:153] …").
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]")
ABSL_BANNER = "All log messages before absl::InitializeLog()"


def tensorflow_log_lines(text: str) -> list[str]:
    """The TensorFlow C++ log records (and Abseil's banner) in ``text``: none may reach a user's terminal."""
    return [line for line in text.splitlines() if TF_LOG_LINE.match(line) or ABSL_BANNER in line]


def write_dicom_series(folder: Path, patient: str, slices: int = 6, size: int = 40, *, suffix: str = "",
                       seed: int = 0, slope: float = 2.0, intercept: float = -1000.0, window=None,
                       photometric: str = "MONOCHROME2", frames: int = 0) -> Path:
    """A CT-like DICOM series of ``patient`` written with pydicom: an ellipse whose stored values are
    ``(HU - intercept) / slope``, files named by number in *reverse* slice order (so only
    ImagePositionPatient orders them), uncompressed. ``window=(center, width)`` adds a VOI window;
    ``frames`` > 0 writes one multi-frame file instead. Returns ``folder``."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    study, series = generate_uid(), generate_uid()

    def slice_values(index: int) -> np.ndarray:
        radius = size * (0.25 + 0.15 * np.sin(np.pi * (index + 1) / (slices + 1)))
        inside = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) <= radius ** 2
        hu = np.where(inside, 40.0 + 20 * rng.standard_normal((size, size)), -1000.0)
        return np.rint((hu - intercept) / slope).astype(np.uint16)

    def dataset(pixels: np.ndarray, index: int) -> Dataset:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = patient, study, series, "CT"
        ds.InstanceNumber = index + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, 2.5 * index]
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        if window is not None:
            ds.WindowCenter, ds.WindowWidth = window
        if pixels.ndim == 3:
            ds.NumberOfFrames = len(pixels)
        ds.PixelData = pixels.tobytes()
        return ds

    volume = np.stack([slice_values(i) for i in range(slices)])
    if frames:
        dataset(volume, 0).save_as(folder / f"volume{suffix}", enforce_file_format=True)
        return folder
    for index in range(slices):
        dataset(volume[index], index).save_as(folder / f"{slices - index:04d}{suffix}", enforce_file_format=True)
    return folder
