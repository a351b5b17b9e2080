"""Read medical image slices from disk, split them by subject, and feed them to ``tf.data``.

Inputs (``config.data``; ``None`` = the embedded MNI152 demo set, see :mod:`dcganlib.demo`):

* folders (searched recursively, hidden files ignored) or single files of
  PNG / JPEG / TIFF / BMP (8- or 16-bit, gray, RGB, RGBA, palette; multi-page TIFF = a stack),
  ``.npy`` (one 2-D slice ``(H, W)``, a stack ``(N, H, W)``, or ``(…, H, W, 3|4)`` colour),
  NIfTI ``.nii`` / ``.nii.gz`` (3-D volume, reoriented to RAS with ``nibabel.as_closest_canonical``,
  cut along ``config.nifti_axis``; 2 = axial);
* 8-bit images keep their grey levels. Anything else (16-bit, float, NIfTI) is scaled per file (per
  volume) from its 0.5th percentile to the 99.5th percentile of the voxels above it, clipped, to uint8;
* colour becomes one grey channel (ITU-R 601 luma; alpha composited onto black) unless
  ``config.channels == 3``; grey becomes RGB by repetition;
* NIfTI slices with under 2 % tissue (voxels above 5 % of the range) are skipped; non-square voxels are
  resampled to square pixels.

Every slice is resized so its longest side is ``config.image_size`` (Lanczos; aspect kept) and padded
with black to a square. An image whose longest side is *smaller* than ``image_size`` is an error
(upsampling would feed blurred data to the GAN silently); a file whose header declares more than
:data:`MAX_IMAGE_PIXELS` pixels is refused as a possible decompression bomb (an error, not a skip).
Unreadable, truncated, empty or non-image files among readable ones are skipped and counted in one
:class:`SkippedFilesWarning` and in the report.

Layouts and splits:

* the OASIS course layout (``keras_png_slices_{train,validate,test}/``; the ``keras_png_slices_seg_*``
  masks are ignored) keeps its splits;
* anything else is split by ``config.seed`` into train / validate / test with ``config.val_fraction`` /
  ``config.test_fraction`` of the *groups*. A group is a subject when file names carry an id
  (``config.subject_regex`` group 1 searched in the relative path, else OASIS ``case_001_…`` or AKOA
  ``OAI9000099_…`` when every file matches), else a file (a volume or stack stays whole), else —
  with a single file — a slice. Groups are ordered by a SHA-256 of ``seed:id``, so the split does not
  depend on directory listing order and no subject is in two splits.
* ``config.max_images`` caps the train split after splitting (a seeded random subset).

Files are decoded once (thread pool) and cached as uint8 ``.npy`` under ``<cache>/decoded/``, keyed
by the file list, sizes, mtimes and the decoding settings. In the library images are float32 NHWC in
``[-1, 1]``: ``x = u8 / 127.5 - 1`` (:func:`to_float`, :func:`to_uint8`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .config import Config
from .errors import ConfigError, DataError
from .files import atomic_path, write_json, write_text

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NUMPY_SUFFIXES = (".npy",)
NIFTI_SUFFIXES = (".nii", ".nii.gz")
SUPPORTED = "PNG/JPEG/TIFF/BMP images, .npy arrays or NIfTI .nii/.nii.gz volumes"
OASIS_SPLITS = {"train": "keras_png_slices_train", "validate": "keras_png_slices_validate",
                "test": "keras_png_slices_test"}
#: Filename patterns (searched in the file name) whose group 1 is a subject id, tried in order.
SUBJECT_PATTERNS = {"oasis": r"^(case_\d+)_slice_", "akoa": r"^(OAI\d+)"}
#: Larger images are refused before decoding (Pillow's own default guard is 89 M pixels).
MAX_IMAGE_PIXELS = 8192 * 8192
#: Larger NIfTI volumes are refused from their header (a small .nii.gz can inflate to many GB).
MAX_NIFTI_VOXELS = 512**3
TISSUE_LEVEL = 0.05  # normalised intensity above which a NIfTI voxel counts as tissue
MIN_TISSUE_FRACTION = 0.02  # NIfTI slices with less tissue than this are dropped
PERCENTILES = (0.5, 99.5)
CACHE_VERSION = "1"
MAX_CACHE_BYTES = 2 * 1024**3  # do not write decoded caches larger than this to disk
_EXAMPLES = 10


class SkippedFilesWarning(UserWarning):
    """Some input files could not be read and were skipped (the count and examples are in the report)."""


@dataclass
class DatasetSplits:
    """Decoded, resized slices per split, as uint8 ``(N, S, S, C)`` arrays in ``[0, 255]``.

    ``validate``/``test`` may be empty ``(0, S, S, C)`` only when the data has too few subjects.
    ``report`` is a JSON-able audit of where the data came from and how it was split.
    """

    train: np.ndarray
    validate: np.ndarray
    test: np.ndarray
    report: dict = field(default_factory=dict)

    def save_report(self, path: str | os.PathLike) -> None:
        """Write :attr:`report` as indented JSON, atomically (the run folder's ``split.json``)."""
        write_json(path, self.report, sort_keys=True)


# ------------------------------------------------------------------------------------------------
# value conversions
def to_float(images_u8: Any) -> np.ndarray:
    """uint8 ``[0, 255]`` → float32 ``[-1, 1]`` via ``x / 127.5 - 1`` (any shape)."""
    array = np.asarray(images_u8)
    if array.dtype != np.uint8:
        raise TypeError(f"to_float expects uint8 images in [0, 255]; got dtype {array.dtype}")
    return array.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def to_uint8(images: Any) -> np.ndarray:
    """float ``[-1, 1]`` → uint8 ``[0, 255]`` via ``round((x + 1) · 127.5)``, clipped (any shape)."""
    array = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint((array + np.float32(1.0)) * np.float32(127.5)), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------
# decoding one file into slices
class _Unreadable(Exception):
    """A file that is skipped (with a reason) rather than stopping the load."""


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _robust_uint8(values: np.ndarray) -> np.ndarray:
    """Scale to uint8: low = 0.5th percentile; high = 99.5th percentile of the values above low."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise _Unreadable("no finite values")
    low = float(np.percentile(finite, PERCENTILES[0]))
    above = finite[finite > low]
    high = float(np.percentile(above, PERCENTILES[1])) if above.size else low
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    scaled = (np.nan_to_num(values.astype(np.float32), nan=low, posinf=high, neginf=low) - low) / (high - low)
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def _to_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) or (H, W, 3|4) uint8 → (H, W, channels); alpha composites onto black, RGB→gray is luma."""
    if array.ndim == 2:
        return array[..., None] if channels == 1 else np.repeat(array[..., None], 3, axis=-1)
    rgb = array[..., :3].astype(np.float32)
    if array.shape[-1] == 4:
        rgb *= array[..., 3:4].astype(np.float32) / 255.0
    if channels == 3:
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None]


def _pil_frame_to_uint8(frame: Any) -> np.ndarray:
    """A Pillow frame → uint8 (H, W) or (H, W, 3|4)."""
    mode = frame.mode
    if mode in ("L", "RGB", "RGBA"):
        return np.asarray(frame)
    if mode == "1":
        return np.asarray(frame, dtype=np.uint8) * 255
    if mode == "LA":
        la = np.asarray(frame).astype(np.float32)
        return np.rint(la[..., 0] * la[..., 1] / 255.0).astype(np.uint8)
    if mode == "P":
        return np.asarray(frame.convert("RGBA" if "transparency" in frame.info else "RGB"))
    if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float grey
        return _robust_uint8(np.asarray(frame).astype(np.float32))
    return np.asarray(frame.convert("RGB"))


def _read_image(path: Path) -> list[np.ndarray]:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    def check_size(width: int, height: int) -> None:
        # Checked from the header, before any pixel is decompressed.
        if width * height > MAX_IMAGE_PIXELS:
            raise DataError(f"refusing {path}: it declares {width}x{height} = {width * height} pixels, more "
                            f"than the limit of {MAX_IMAGE_PIXELS} (a possible decompression bomb); "
                            "remove the file or downscale it")

    try:
        with Image.open(path) as image:
            check_size(*image.size)
            frames = []
            for frame in ImageSequence.Iterator(image):
                check_size(*frame.size)  # TIFF pages may each declare their own size
                frame.load()
                frames.append(_pil_frame_to_uint8(frame))
            return frames
    except Image.DecompressionBombError as exc:  # raised by Image.open before our own check
        raise DataError(f"refusing {path}: {exc} (Pillow's decompression bomb guard); remove the file or "
                        "downscale it") from None
    except UnidentifiedImageError:
        raise _Unreadable("not a readable image") from None
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as exc:
        raise _Unreadable(f"corrupt or truncated ({exc})") from None


def _read_numpy(path: Path) -> list[np.ndarray]:
    try:
        array = np.load(path, allow_pickle=False)  # never unpickle: .npy files may come from anywhere
    except (OSError, ValueError, EOFError) as exc:
        raise _Unreadable(f"not a readable .npy array ({exc})") from None
    if not isinstance(array, np.ndarray) or array.size == 0 or array.dtype.kind not in "buif":
        raise _Unreadable("empty or non-numeric array")
    colour = array.ndim >= 3 and array.shape[-1] in (3, 4) and array.shape[-2] > 4
    if array.ndim == 2 or (array.ndim == 3 and colour):
        array = array[None]
    elif not (array.ndim == 3 or (array.ndim == 4 and colour)):
        raise _Unreadable(f"array of shape {array.shape}; expected (H, W), (N, H, W) or (N, H, W, 3|4)")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        array = _robust_uint8(array)
    return list(array)


def _read_nifti(path: Path, axis: int) -> tuple[list[np.ndarray], int]:
    """Slices (uint8, square pixels) with tissue along ``axis`` of the RAS volume, and the number dropped."""
    import nibabel as nib
    from PIL import Image

    try:
        image = nib.load(str(path))
        shape = image.shape
        if len(shape) == 4 and shape[3] == 1:
            image = image.slicer[..., 0]
            shape = image.shape
        if len(shape) != 3:
            raise DataError(f"{path} is a {len(shape)}-D NIfTI image of shape {tuple(shape)}; pass 3-D volumes "
                            "(split a 4-D series into one volume per time point, e.g. with nibabel)")
        if math.prod(shape) > MAX_NIFTI_VOXELS:
            raise DataError(f"refusing {path}: its header declares {shape[0]}x{shape[1]}x{shape[2]} voxels, more "
                            f"than the limit of {MAX_NIFTI_VOXELS} (a possible decompression bomb); "
                            "remove the file or crop/downsample the volume")
        image = nib.as_closest_canonical(image)
        volume = np.asarray(image.get_fdata(dtype=np.float32))
        zooms = image.header.get_zooms()[:3]
    except DataError:
        raise
    except Exception as exc:  # nibabel raises many types for damaged headers/gzip streams
        raise _Unreadable(f"not a readable NIfTI volume ({type(exc).__name__}: {exc})") from None
    volume = _robust_uint8(volume)
    tissue = (volume > round(255 * TISSUE_LEVEL)).mean(axis=tuple(a for a in range(3) if a != axis))
    keep = np.nonzero(tissue >= MIN_TISSUE_FRACTION)[0]
    in_plane = [zooms[a] for a in range(3) if a != axis]
    slices = []
    for index in keep:
        # rot90: the second in-plane axis (A or S in RAS) points up, as radiologists view slices.
        plane = np.rot90(np.take(volume, index, axis=axis))
        row_mm, col_mm = in_plane[1], in_plane[0]
        if abs(row_mm - col_mm) > 0.01 * max(row_mm, col_mm):
            height = max(1, round(plane.shape[0] * row_mm / min(row_mm, col_mm)))
            width = max(1, round(plane.shape[1] * col_mm / min(row_mm, col_mm)))
            plane = np.asarray(Image.fromarray(np.ascontiguousarray(plane)).resize((width, height),
                                                                                   Image.Resampling.BILINEAR))
        slices.append(np.ascontiguousarray(plane))
    return slices, int(volume.shape[axis] - len(keep))


def _fit(array: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 with max(H, W) >= size → (size, size, C): Lanczos resize keeping aspect, black pad."""
    from PIL import Image

    height, width = array.shape[:2]
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    if (new_h, new_w) != (height, width):
        source = Image.fromarray(np.ascontiguousarray(array if array.shape[-1] == 3 else array[..., 0]))
        array = np.asarray(source.resize((new_w, new_h), Image.Resampling.LANCZOS)).reshape(new_h, new_w, -1)
    out = np.zeros((size, size, array.shape[-1]), np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top:top + new_h, left:left + new_w] = array
    return out


@dataclass
class _Decoded:
    slices: list[np.ndarray]  # (S, S, C) uint8
    empty_slices: int = 0
    too_small: Optional[tuple[int, int]] = None  # (H, W) of the first slice smaller than the target


def _decode(path: Path, size: int, channels: int, axis: int) -> _Decoded:
    suffix = _suffix(path)
    if path.stat().st_size == 0:
        raise _Unreadable("empty file (0 bytes)")
    empty = 0
    try:
        if suffix in NIFTI_SUFFIXES:
            raw, empty = _read_nifti(path, axis)
        elif suffix in NUMPY_SUFFIXES:
            raw = _read_numpy(path)
        else:
            raw = _read_image(path)
    except (DataError, _Unreadable):
        raise
    except Exception as exc:  # decoders raise struct.error, IndexError, … on malformed files: skip them
        raise _Unreadable(f"could not be decoded ({type(exc).__name__}: {exc})") from None
    result = _Decoded([], empty)
    for plane in raw:
        if max(plane.shape[:2]) < size:
            result.too_small = plane.shape[:2]
            return result
        result.slices.append(_fit(_to_channels(plane, channels), size))
    return result


# ------------------------------------------------------------------------------------------------
# finding files
def _is_supported(path: Path) -> bool:
    return _suffix(path) in IMAGE_SUFFIXES + NUMPY_SUFFIXES + NIFTI_SUFFIXES


def _walk(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder``, sorted; ``keras_png_slices_seg_*`` mask folders are skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not d.startswith("keras_png_slices_seg"))
        found.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted(found)


def _find_oasis_root(folder: Path) -> Optional[Path]:
    """The folder holding ``keras_png_slices_train`` (``folder`` itself or one level down), if any."""
    candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for candidate in candidates:
        if (candidate / OASIS_SPLITS["train"]).is_dir():
            return candidate
    return None


# ------------------------------------------------------------------------------------------------
# decoding many files, with an on-disk cache
def _cache_dir(config: Config) -> Path:
    from .demo import cache_root

    return cache_root(config) / "decoded"


def _signature(files: Sequence[Path], root: Path, config: Config) -> str:
    digest = hashlib.sha256()
    digest.update(f"{CACHE_VERSION}|{config.image_size}|{config.channels}|{config.nifti_axis}|"
                  f"{MAX_IMAGE_PIXELS}|{root.resolve()}\n".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)


@dataclass
class _DecodedFiles:
    images: np.ndarray  # uint8 (M, S, S, C)
    file_index: np.ndarray  # int (M,) index into files
    slice_index: np.ndarray  # int (M,) slice number within its file
    skipped: list[tuple[str, str]]  # (relative path, reason)
    empty_slices: int
    cache_hit: bool = False


def _decode_all(files: Sequence[Path], root: Path, config: Config) -> _DecodedFiles:
    """Decode ``files`` (thread pool) into one uint8 array, reusing the on-disk cache when valid."""
    size, channels = config.image_size, config.channels
    key = _signature(files, root, config)
    cache = _cache_dir(config)
    array_path, meta_path = cache / f"{key}.npy", cache / f"{key}.json"
    try:
        meta = json.loads(meta_path.read_text())
        images = np.load(array_path, allow_pickle=False)
        if images.shape[0] == len(meta["file_index"]) and images.shape[1:] == (size, size, channels):
            return _DecodedFiles(images, np.asarray(meta["file_index"], np.int64),
                                np.asarray(meta["slice_index"], np.int64),
                                [tuple(s) for s in meta["skipped"]], meta["empty_slices"], cache_hit=True)
    except (OSError, ValueError, KeyError):
        pass  # no cache or a damaged one: decode again

    def work(path: Path):
        try:
            return _decode(path, size, channels, config.nifti_axis)
        except _Unreadable as exc:
            return str(exc)

    skipped: list[tuple[str, str]] = []
    too_small: list[tuple[Path, tuple[int, int]]] = []
    file_index, slice_index, empty = [], [], 0
    # Slices go into one uint8 array as the workers hand them over (in file order) and are dropped at
    # once, so decoding peaks near the images' uint8 size, not twice it (a list of every slice, then
    # np.stack). One slice per file is exact for folders of 2-D images; stacks and volumes grow it.
    images = np.empty((max(1, len(files)), size, size, channels), np.uint8)
    count = 0
    workers = min(8, os.cpu_count() or 1, max(1, len(files)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for index, (path, result) in enumerate(zip(files, pool.map(work, files))):
            relative = path.relative_to(root).as_posix()
            if isinstance(result, str):
                skipped.append((relative, result))
                continue
            empty += result.empty_slices
            if result.too_small is not None:
                too_small.append((path, result.too_small))
                continue
            if count + len(result.slices) > len(images):
                grown = np.empty((max(2 * len(images), count + len(result.slices)),) + images.shape[1:], np.uint8)
                grown[:count] = images[:count]
                images = grown
            for plane in result.slices:
                images[count] = plane
                count += 1
            file_index.extend([index] * len(result.slices))
            slice_index.extend(range(len(result.slices)))
            result.slices.clear()
    parts = count > 0
    images = images[:count] if count else np.zeros((0, size, size, channels), np.uint8)
    if too_small:
        smallest = min(max(shape) for _, shape in too_small)
        path, (height, width) = too_small[0]
        raise DataError(f"{len(too_small)} of {len(files)} files in {root} hold images smaller than image_size "
                        f"{size} (e.g. {path}: {height}x{width} px); use image_size <= {smallest} "
                        "(--image-size) or remove the small images — dcganlib does not upsample")
    decoded = _DecodedFiles(images, np.asarray(file_index, np.int64), np.asarray(slice_index, np.int64),
                           skipped, empty)
    if parts and images.nbytes <= MAX_CACHE_BYTES:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            _atomic_save_npy(array_path, images)
            write_text(meta_path, json.dumps({
                "file_index": file_index, "slice_index": slice_index, "skipped": skipped,
                "empty_slices": empty}))
        except OSError as exc:  # a read-only cache only costs speed
            warnings.warn(f"could not write the decoded-image cache in {cache} ({exc}); "
                          "set cache_dir or DCGANLIB_CACHE to a writable folder", stacklevel=3)
    return decoded


# ------------------------------------------------------------------------------------------------
# subjects and splits
def _subject_ids(relatives: Sequence[str], config: Config) -> tuple[Optional[list[str]], Optional[str]]:
    """Subject id per file and the pattern used, or ``(None, None)`` when the names carry no ids."""
    if config.subject_regex is not None:
        try:
            pattern = re.compile(config.subject_regex)
        except re.error as exc:
            raise ConfigError(f"config key 'subject_regex' is not a valid regular expression: {exc}") from None
        if pattern.groups < 1:
            raise ConfigError(f"config key 'subject_regex' {config.subject_regex!r} needs a group, "
                              r"e.g. '(sub-\d+)', whose text is the subject id")
        ids = []
        for relative in relatives:
            match = pattern.search(relative)
            if match is None or not match.group(1):
                matched = sum(pattern.search(r) is not None for r in relatives)
                raise DataError(f"subject_regex '{config.subject_regex}' matches {matched} of {len(relatives)} "
                                f"files (e.g. not {relative!r}); it is searched in paths relative to the "
                                "data folder and group 1 must capture the subject id — fix the regex")
            ids.append(match.group(1))
        return ids, config.subject_regex
    names = [r.rsplit("/", 1)[-1] for r in relatives]
    for pattern in SUBJECT_PATTERNS.values():
        matches = [re.search(pattern, name) for name in names]
        if names and all(matches):
            return [m.group(1) for m in matches], pattern
    return None, None


def _split_groups(groups: Sequence[str], config: Config) -> dict[str, list[str]]:
    """Assign unique group ids to splits by a seeded hash order (independent of listing order)."""
    unique = sorted(set(groups))
    order = sorted(unique, key=lambda g: hashlib.sha256(f"{config.seed}:{g}".encode()).hexdigest())
    n = len(order)

    def share(fraction: float) -> int:
        if fraction <= 0 or n < 3:
            return 0
        return max(1, int(math.floor(fraction * n + 0.5)))

    n_test, n_val = share(config.test_fraction), share(config.val_fraction)
    while n_test + n_val >= n and (n_test or n_val):  # always keep a group for training
        if n_val >= n_test and n_val:
            n_val -= 1
        else:
            n_test -= 1
    return {"test": sorted(order[:n_test]), "validate": sorted(order[n_test:n_test + n_val]),
            "train": sorted(order[n_test + n_val:])}


def _empty(config: Config) -> np.ndarray:
    return np.zeros((0, config.image_size, config.image_size, config.channels), np.uint8)


def _split_views(images: np.ndarray, split_names: np.ndarray, config: Config) -> dict[str, np.ndarray]:
    """``{split: images of that split}`` as views of ``images``, in their original order within a split.

    The rows of ``images`` are reordered in place so each split is contiguous (they already are in the
    OASIS layout), so the splits need no second copy of the images (boolean indexing made one).
    """
    if not len(split_names):
        return {s: _empty(config) for s in OASIS_SPLITS}
    rank = {name: i for i, name in enumerate(OASIS_SPLITS)}
    keys = np.array([rank[name] for name in split_names])
    order = np.argsort(keys, kind="stable")
    _permute_rows(images, order)
    bounds = np.searchsorted(keys[order], np.arange(len(OASIS_SPLITS) + 1))
    return {name: images[bounds[i]:bounds[i + 1]] for i, name in enumerate(OASIS_SPLITS)}


def _permute_rows(array: np.ndarray, order: np.ndarray) -> None:
    """In place: ``array[i] = old array[order[i]]``, following each cycle with one spare row."""
    if np.array_equal(order, np.arange(len(order))):
        return
    placed = np.zeros(len(order), dtype=bool)
    spare = np.empty_like(array[0])
    for start in range(len(order)):
        if placed[start]:
            continue
        spare[...] = array[start]
        i = start
        while True:
            placed[i] = True
            j = order[i]
            if j == start:
                array[i] = spare
                break
            array[i] = array[j]
            i = j


def _cap_train(train: np.ndarray, config: Config) -> np.ndarray:
    if config.max_images is None or len(train) <= config.max_images:
        return train
    keep = np.sort(np.random.default_rng(config.seed).choice(len(train), config.max_images, replace=False))
    return train[keep]


# ------------------------------------------------------------------------------------------------
# the entry point
def _collect(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Supported files and (relative path, reason) for the other files, with clear errors for none."""
    everything = _walk(folder)
    if not everything:
        raise DataError(f"data folder {folder} is empty; put {SUPPORTED} in it")
    files = [p for p in everything if _is_supported(p)]
    others = [(p.relative_to(folder).as_posix(), f"not a supported file type ({_suffix(p) or 'no suffix'})")
              for p in everything if not _is_supported(p)]
    if not files:
        raise DataError(f"no image files in {folder} ({len(everything)} other files, e.g. {others[0][0]}); "
                        f"supported: {SUPPORTED}")
    return files, others


def _check_readable(decoded: _DecodedFiles, files: Sequence[Path], skipped: list[tuple[str, str]],
                    where: Path) -> None:
    if len(decoded.images) == 0:
        if decoded.skipped:
            relative, reason = decoded.skipped[0]
            raise DataError(f"none of the {len(files)} image files in {where} could be read "
                            f"(e.g. {relative}: {reason}); check the files or point --data elsewhere")
        raise DataError(f"the files in {where} hold no slices with tissue; check the data "
                        "(or the NIfTI axis, config key 'nifti_axis')")
    if skipped:
        relative, reason = skipped[0]
        warnings.warn(f"skipped {len(skipped)} unreadable or non-image file(s) under {where} "
                      f"(e.g. {relative}: {reason}); the list is in the split report",
                      SkippedFilesWarning, stacklevel=3)


def load_dataset(config: Config) -> DatasetSplits:
    """Load, decode, resize and split the data named by ``config.data`` (see the module docstring).

    Returns uint8 ``(N, S, S, C)`` arrays (``S = config.image_size``, ``C = config.channels``) per split
    and a JSON-able report. ``config.data = None`` loads the embedded demo dataset (built and cached on
    first use). Raises :class:`DataError` (one line, naming the path) for unusable data.
    """
    demo = config.data is None
    if demo:
        from .demo import ensure_demo_dataset

        source = ensure_demo_dataset(config)
    else:
        source = Path(config.data).expanduser()
        if not source.exists():
            raise DataError(f"data path {source} does not exist; pass a folder or file of {SUPPORTED} "
                            "(or leave 'data' unset for the embedded demo dataset)")
    source = source.resolve()

    if source.is_file():
        root, files, others = source.parent, [source], []
        if not _is_supported(source):
            raise DataError(f"{source} is not a supported file type; pass {SUPPORTED}")
        oasis_root = None
    else:
        oasis_root = _find_oasis_root(source)
        root = oasis_root or source
        if oasis_root is not None:
            files, others = [], []
            for folder in OASIS_SPLITS.values():
                if (root / folder).is_dir():
                    found, other = _collect_quiet(root / folder)
                    files += found
                    others += [(f"{folder}/{rel}", reason) for rel, reason in other]
            if not files:
                raise DataError(f"the OASIS folders in {root} hold no image files; expected PNGs in "
                                f"{OASIS_SPLITS['train']}/")
        else:
            files, others = _collect(root)

    decoded = _decode_all(files, root, config)
    skipped = others + decoded.skipped
    _check_readable(decoded, files, skipped, source)

    relatives = [p.relative_to(root).as_posix() for p in files]
    report: dict[str, Any] = {
        "source": "embedded MNI152 demo dataset" if demo else str(source),
        "path": str(source),
        "image_size": config.image_size,
        "channels": config.channels,
        "seed": config.seed,
        "files": {"found": len(files) + len(others), "used": len(set(decoded.file_index.tolist())),
                  "skipped": len(skipped),
                  "skipped_examples": [{"path": p, "reason": r} for p, r in skipped[:_EXAMPLES]]},
        "empty_slices_skipped": decoded.empty_slices,
        "decoded_cache_hit": decoded.cache_hit,
    }
    if demo:
        from .demo import read_demo_info

        info = read_demo_info(source) or {}
        report["demo"] = {k: info.get(k) for k in ("version", "count", "size", "seed")}
    used_relatives = [relatives[i] for i in decoded.file_index]

    if oasis_root is not None:
        split_of_file = [r.split("/", 1)[0] for r in used_relatives]
        names = {folder: split for split, folder in OASIS_SPLITS.items()}
        split_names = np.array([names[s] for s in split_of_file])
        ids, pattern = _subject_ids(used_relatives, config)
        groups = ids or used_relatives
        report.update(layout="oasis", subject_regex=pattern, grouping="subject" if ids else "file",
                      split_rule="as given by the keras_png_slices_{train,validate,test} folders")
        subjects = {s: sorted({g for g, n in zip(groups, split_names) if n == s}) for s in OASIS_SPLITS}
    else:
        ids, pattern = _subject_ids(used_relatives, config)
        multi_file = len(files) > 1
        if ids is not None:
            groups, grouping = ids, "subject"
        elif multi_file:
            groups, grouping = used_relatives, "file"
        else:  # one volume or stack: the only way to get held-out data is by slice
            groups, grouping = [f"{r}#{s}" for r, s in zip(used_relatives, decoded.slice_index)], "slice"
        subjects = _split_groups(groups, config)
        split_of_group = {g: s for s, members in subjects.items() for g in members}
        split_names = np.array([split_of_group[g] for g in groups])
        report.update(layout="file" if source.is_file() else "folder", subject_regex=pattern, grouping=grouping,
                      val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                      split_rule="groups ordered by sha256(f'{seed}:{group}'); first test_fraction to test, "
                                 "next val_fraction to validate, rest to train")

    arrays = _split_views(decoded.images, split_names, config)
    train = _cap_train(arrays["train"], config)
    report.update(
        counts={"train": int(len(train)), "validate": int(len(arrays["validate"])), "test": int(len(arrays["test"]))},
        train_before_cap=int(len(arrays["train"])),
        max_images=config.max_images,
        subjects=subjects,
        subject_counts={s: len(v) for s, v in subjects.items()},
    )
    if len(train) == 0:
        raise DataError(f"no training images in {source} after the split; add data to "
                        f"{OASIS_SPLITS['train'] if oasis_root else 'the folder'}")
    return DatasetSplits(train=train, validate=arrays["validate"], test=arrays["test"], report=report)


def _collect_quiet(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Like :func:`_collect` but an empty split folder is allowed (OASIS validate/test)."""
    everything = _walk(folder)
    files = [p for p in everything if _is_supported(p)]
    others = [(p.relative_to(folder).as_posix(), f"not a supported file type ({_suffix(p) or 'no suffix'})")
              for p in everything if not _is_supported(p)]
    return files, others


# ------------------------------------------------------------------------------------------------
# tf.data
def make_tf_dataset(images_u8: np.ndarray, batch_size: int, *, seed: int, shuffle: bool = True,
                    drop_remainder: bool = True):
    """Batches of float32 ``[-1, 1]`` images ``(B, S, S, C)`` from uint8 ``(N, S, S, C)``, prefetched.

    The images stay one uint8 tensor on the host; the dataset shuffles *indices* (seeded, reshuffled
    each epoch), batches them and gathers + casts + scales a whole batch in one vectorised op, so
    per-image Python/graph overhead never limits training and the graph holds no huge constant.
    """
    import tensorflow as tf

    images = np.asarray(images_u8)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(f"make_tf_dataset expects uint8 images (N, S, S, C); got {images.dtype} {images.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"config key 'batch_size' must be a positive integer; got {batch_size!r}")
    count = len(images)
    if count == 0 or (drop_remainder and count < batch_size):
        raise DataError(f"only {count} images for batch_size {batch_size}; lower batch_size (--batch-size) "
                        "or add images (see max_images)")
    with tf.device("/CPU:0"):
        # One host tensor, captured by the map function (not a per-element from_tensor_slices
        # pipeline); a plain tensor rather than a tf.Variable so a distribution-strategy scope around
        # this call does not turn it into a mirrored variable.
        store = tf.convert_to_tensor(images)
    indices = tf.data.Dataset.range(count)
    if shuffle:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    batches = indices.batch(batch_size, drop_remainder=drop_remainder)

    @tf.autograph.experimental.do_not_convert
    def gather(index):
        batch = tf.gather(store, index)
        return tf.cast(batch, tf.float32) / 127.5 - 1.0

    dataset = batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


# ------------------------------------------------------------------------------------------------
# looking at the data (notebook 01)
_SLICE_NUMBER = re.compile(r"slice_?(\d+)", re.IGNORECASE)


def decode_file(path: str | os.PathLike, config: Config) -> np.ndarray:
    """One file decoded exactly as :func:`load_dataset` decodes it: uint8 ``(N, S, S, C)`` in ``[0, 255]``.

    ``S = config.image_size``, ``C = config.channels``; N is 1 for a plain image, the number of kept
    slices for a stack or NIfTI volume. Raises :class:`DataError` for a missing, unreadable or too
    small file (what :func:`load_dataset` would skip or refuse).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path} is not a file; pass one of {SUPPORTED}")
    try:
        decoded = _decode(path, config.image_size, config.channels, config.nifti_axis)
    except _Unreadable as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if decoded.too_small is not None:
        height, width = decoded.too_small
        raise DataError(f"{path} is {width}x{height} px, smaller than image_size {config.image_size}; "
                        "lower image_size (images are never upsampled)")
    if not decoded.slices:
        raise DataError(f"{path} holds no slice with tissue")
    return np.stack(decoded.slices)


def survey_files(path: str | os.PathLike) -> list[dict[str, Any]]:
    """One row per supported file under ``path``, read from headers only (no pixel is decoded).

    Row: ``{"path": relative posix path, "split": "train" | "validate" | "test" for the OASIS folders
    else "", "width", "height": stored size in pixels (None for .npy / NIfTI), "slice": the number in a
    ``slice_N`` file name or None}``. Used to summarise stored image sizes and slice positions.
    """
    from PIL import Image

    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"data path {root} does not exist")
    files = [root] if root.is_file() else [p for p in _walk(root) if _is_supported(p)]
    split_of_folder = {folder: split for split, folder in OASIS_SPLITS.items()}
    rows = []
    for file in files:
        relative = file.name if file == root else file.relative_to(root).as_posix()
        width = height = None
        if _suffix(file) in IMAGE_SUFFIXES:
            try:
                with Image.open(file) as image:  # lazy: reads the header only
                    width, height = image.size
            except (OSError, SyntaxError, ValueError):
                pass  # unreadable files are counted by load_dataset; the survey just has no size
        match = _SLICE_NUMBER.search(file.name)
        rows.append({"path": relative,
                     "split": next((split_of_folder[p] for p in Path(relative).parts[:-1] if p in split_of_folder), ""),
                     "width": width, "height": height, "slice": int(match.group(1)) if match else None})
    return rows
