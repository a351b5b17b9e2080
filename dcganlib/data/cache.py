"""Decoding many files at once, with an on-disk cache of the result.

Files are decoded in a thread pool (PIL, NumPy, nibabel and SciPy release the GIL) straight into one
preallocated uint8 array, so decoding peaks near the images' own uint8 size. The array is then cached as
``<cache>/decoded/<key>.npy`` with a ``<key>.json`` of per-slice file indices, keyed by the file list,
sizes, mtimes and the decoding settings: every later load of the same files is one ``np.load``.

``<cache>`` is :func:`cache_root`: ``config.cache_dir``, else ``$DCGANLIB_CACHE``, else
``~/.cache/dcganlib`` (the embedded demo dataset is built there too).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..config import Config
from ..errors import DataError
from ..files import atomic_path, write_text
from ..progress import Progress
from .readers import MAX_IMAGE_PIXELS, DecodedFile, UnreadableFile, decode

CACHE_VERSION = "2"  # 2: .npy layouts (N, H, W, 1) / (N, 1, H, W) and DICOM are read
MAX_CACHE_BYTES = 2 * 1024**3  # do not write decoded caches larger than this to disk


def cache_root(config: Optional[Config] = None) -> Path:
    """Where dcganlib caches data: ``config.cache_dir``, else ``$DCGANLIB_CACHE``, else ``~/.cache/dcganlib``."""
    if config is not None and config.cache_dir:
        return Path(config.cache_dir).expanduser()
    if os.environ.get("DCGANLIB_CACHE"):
        return Path(os.environ["DCGANLIB_CACHE"]).expanduser()
    return Path.home() / ".cache" / "dcganlib"


@dataclass
class DecodedFiles:
    images: np.ndarray  # uint8 (M, S, S, C)
    file_index: np.ndarray  # int (M,) index into files
    slice_index: np.ndarray  # int (M,) slice number within its file
    skipped: list[tuple[str, str]]  # (relative path, reason)
    empty_slices: int
    cache_hit: bool = False


def decode_all(files: Sequence[Path], root: Path, config: Config) -> DecodedFiles:
    """Decode ``files`` (paths under ``root``) at the config's size and channels, reusing the cache when valid.

    Unreadable files are listed in ``skipped``; images smaller than ``image_size`` raise :class:`DataError`.
    """
    key = _signature(files, root, config)
    folder = cache_root(config) / "decoded"
    cached = _read_cache(folder, key, config)
    if cached is not None:
        return cached
    decoded, too_small = _decode_files(files, root, config)
    if too_small:
        _refuse_small_images(too_small, len(files), root, config.image_size)
    if len(decoded.images) and decoded.images.nbytes <= MAX_CACHE_BYTES:
        _write_cache(folder, key, decoded)
    return decoded


def _signature(files: Sequence[Path], root: Path, config: Config) -> str:
    digest = hashlib.sha256()
    digest.update(f"{CACHE_VERSION}|{config.image_size}|{config.channels}|{config.nifti_axis}|"
                  f"{MAX_IMAGE_PIXELS}|{root.resolve()}\n".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _read_cache(folder: Path, key: str, config: Config) -> Optional[DecodedFiles]:
    """The cached decode of ``key``, or None when there is none or it does not fit (then it is redone)."""
    shape = (config.image_size, config.image_size, config.channels)
    try:
        meta = json.loads((folder / f"{key}.json").read_text())
        images = np.load(folder / f"{key}.npy", allow_pickle=False)
    except (OSError, ValueError, EOFError):  # absent, or damaged by a full disk or a killed writer
        return None
    if not isinstance(meta, dict) or not {"file_index", "slice_index", "skipped", "empty_slices"} <= set(meta):
        return None
    if images.shape[0] != len(meta["file_index"]) or images.shape[1:] != shape:
        return None
    return DecodedFiles(images, np.asarray(meta["file_index"], np.int64), np.asarray(meta["slice_index"], np.int64),
                        [tuple(s) for s in meta["skipped"]], meta["empty_slices"], cache_hit=True)


def _decode_files(files: Sequence[Path], root: Path,
                  config: Config) -> tuple[DecodedFiles, list[tuple[Path, tuple[int, int]]]]:
    """Decode in a thread pool into one growing uint8 array; also return the files that were too small."""
    size, channels = config.image_size, config.channels

    def work(path: Path) -> DecodedFile | str:
        try:
            return decode(path, size, channels, config.nifti_axis)
        except UnreadableFile as exc:
            return str(exc)

    skipped: list[tuple[str, str]] = []
    too_small: list[tuple[Path, tuple[int, int]]] = []
    file_index: list[int] = []
    slice_index: list[int] = []
    empty = 0
    # One slice per file is exact for folders of 2-D images; stacks and volumes grow the array. Slices are
    # copied in as the workers hand them over (in file order) and dropped at once.
    images = np.empty((max(1, len(files)), size, size, channels), np.uint8)
    count = 0
    workers = min(8, os.cpu_count() or 1, max(1, len(files)))
    label = f"decoding {len(files)} files under {root} at {size} px"
    with Progress(label, total=len(files), unit="files") as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        for index, (path, result) in enumerate(zip(files, pool.map(work, files))):
            bar.update()
            if isinstance(result, str):
                skipped.append((path.relative_to(root).as_posix(), result))
                continue
            empty += result.empty_slices
            if result.too_small is not None:
                too_small.append((path, result.too_small))
                continue
            images = _grown(images, count + len(result.slices), count)
            images[count:count + len(result.slices)] = result.slices
            count += len(result.slices)
            file_index.extend([index] * len(result.slices))
            slice_index.extend(range(len(result.slices)))
            result.slices.clear()
    images = images[:count] if count else np.zeros((0, size, size, channels), np.uint8)
    return DecodedFiles(images, np.asarray(file_index, np.int64), np.asarray(slice_index, np.int64), skipped,
                        empty), too_small


def _grown(images: np.ndarray, needed: int, used: int) -> np.ndarray:
    """``images`` if it holds ``needed`` rows, else a copy of its first ``used`` rows with room doubled."""
    if needed <= len(images):
        return images
    grown = np.empty((max(2 * len(images), needed),) + images.shape[1:], np.uint8)
    grown[:used] = images[:used]
    return grown


def _refuse_small_images(too_small: list[tuple[Path, tuple[int, int]]], total: int, root: Path, size: int) -> None:
    smallest = min(max(shape) for _, shape in too_small)
    path, (height, width) = too_small[0]
    raise DataError(f"{len(too_small)} of {total} files in {root} hold images smaller than image_size "
                    f"{size} (e.g. {path}: {height}x{width} px); use image_size <= {smallest} "
                    "or remove the small images — dcganlib does not upsample")


def _write_cache(folder: Path, key: str, decoded: DecodedFiles) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / f"{key}.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, decoded.images, allow_pickle=False)
        write_text(folder / f"{key}.json", json.dumps({
            "file_index": decoded.file_index.tolist(), "slice_index": decoded.slice_index.tolist(),
            "skipped": decoded.skipped, "empty_slices": decoded.empty_slices}))
    except OSError as exc:  # a read-only or full cache only costs speed
        warnings.warn(f"could not write the decoded-image cache in {folder} ({exc}); "
                      "set cache_dir or DCGANLIB_CACHE to a writable folder", stacklevel=4)


__all__ = ["cache_root", "decode_all", "DecodedFiles", "CACHE_VERSION"]
