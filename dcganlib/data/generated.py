"""Generated images as they were saved (``evaluate --images``): read with their stored dtype and values and
converted to uint8 by :data:`dcganlib.pixels.GENERATED_VALUES_RULE`, decided for the whole set — never
scaled per file like training data — so one image set scores the same in every format.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import DataError
from .discovery import walk
from .loading import SkippedFilesWarning
from .readers import (IMAGE_SUFFIXES, NUMPY_SUFFIXES, UnreadableFile, _load_numpy, _pil_frame_to_uint8, _pil_frames,
                      fit, suffix_of, to_channels)


def read_values(path: Path) -> list[np.ndarray]:
    """The images of a PNG/JPEG/TIFF/BMP or ``.npy`` file with their stored dtype and values, as planes
    ``(H, W)`` or ``(H, W, 3|4)``: 16-bit grey stays uint16, 32-bit float stays float."""
    suffix = suffix_of(path)
    if suffix in NUMPY_SUFFIXES:
        return list(_load_numpy(path))
    if suffix not in IMAGE_SUFFIXES:
        raise UnreadableFile("not an image file (generated images are PNG/JPEG/TIFF/BMP or .npy)")
    planes = []
    for frame in _pil_frames(path):
        if frame.mode.startswith("I;16"):
            planes.append(np.asarray(frame).astype(np.uint16))
        elif frame.mode in ("I", "F"):
            planes.append(np.asarray(frame))
        else:
            planes.append(_pil_frame_to_uint8(frame))
    return planes


def values_to_uint8(planes: list[np.ndarray], value_range: Optional[str], where: Path,
                    labels: Optional[Sequence[str]] = None) -> list[np.ndarray]:
    """Planes of one image set → uint8 by :data:`dcganlib.pixels.GENERATED_VALUES_RULE`, decided for the
    whole set (``value_range``: a key of :data:`~dcganlib.pixels.VALUE_RANGES` or None to detect).
    :class:`DataError` for NaN/Inf (naming ``labels[i]`` of the first such plane, default ``image i``),
    values outside the declared range and an ambiguous float range."""
    from ..pixels import RANGE_TOLERANCE, VALUE_RANGES, detect_value_range, range_to_uint8, uint16_to_uint8

    floats = [i for i, plane in enumerate(planes) if plane.dtype.kind == "f"]
    for index, plane in enumerate(planes):
        if plane.dtype.kind == "f" and not np.isfinite(plane).all():
            count = sum(int((~np.isfinite(planes[i])).sum()) for i in floats)
            row, column = (int(v) for v in np.argwhere(~np.isfinite(plane))[0][:2])
            label = labels[index] if labels is not None else f"image {index}"
            raise DataError(f"{where} holds {count} NaN/Inf values (the first in {label}, row {row}, "
                            f"column {column}); remove those images or replace the values")
    declared = VALUE_RANGES[value_range] if value_range is not None else None
    chosen = declared
    if floats:
        low = min(float(planes[i].min()) for i in floats)
        high = max(float(planes[i].max()) for i in floats)
        inside = declared is not None and declared[0] - RANGE_TOLERANCE <= low and high <= declared[1] + RANGE_TOLERANCE
        if declared is not None and not inside:
            raise DataError(f"{where} holds float values in [{low:.4g}, {high:.4g}], outside --value-range "
                            f"{value_range}; pass the range the images were saved in")
        chosen = declared or detect_value_range(low, high)
        if chosen is None and -RANGE_TOLERANCE <= low and high <= 1 + RANGE_TOLERANCE:
            raise DataError(f"{where} holds float values in [{low:.4g}, {high:.4g}], which fit both [-1, 1] and "
                            "[0, 1]; say which with --value-range 0,1 or --value-range=-1,1")
        if chosen is None:
            raise DataError(f"{where} holds float values in [{low:.4g}, {high:.4g}]; generated float images must "
                            "lie in [-1, 1] or [0, 1] (--value-range); save them as uint8, uint16 or in one of "
                            "those ranges")
    converted = []
    for plane in planes:
        if plane.dtype == np.uint8:
            converted.append(plane)
        elif plane.dtype == np.bool_:
            converted.append(plane.astype(np.uint8) * 255)
        elif plane.dtype == np.uint16:
            converted.append(uint16_to_uint8(plane))
        elif plane.dtype.kind == "f":
            converted.append(range_to_uint8(plane, chosen))
        elif plane.min() >= 0 and plane.max() <= 255:
            converted.append(plane.astype(np.uint8))
        else:
            raise DataError(f"{where} holds {plane.dtype} values in [{plane.min()}, {plane.max()}]; save generated "
                            "images as uint8, uint16, or float in [-1, 1] or [0, 1]")
    return converted


def read_generated(path: str | os.PathLike, value_range: Optional[str] = None) -> np.ndarray:
    """Every image under ``path`` (a folder of PNG/JPEG/TIFF/BMP files or ``.npy`` stacks, or one such file),
    as uint8 ``(N, S, S, 1)`` at the size ``S`` of the first image (others are fitted like training data).

    Values keep the range they were saved in (:data:`dcganlib.pixels.GENERATED_VALUES_RULE`; ``value_range``
    ``"-1,1"`` or ``"0,1"`` declares it for float images), so one image set scores the same in every format.
    Files that cannot be read are skipped with a warning naming the count and the first one.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"--images {path} does not exist; pass a folder of generated PNGs or a .npy stack")
    files = [path] if path.is_file() else [p for p in walk(path) if suffix_of(p) in IMAGE_SUFFIXES + NUMPY_SUFFIXES]
    if not files:
        raise DataError(f"no image files in {path} (the folder is empty or holds other files); pass a folder of "
                        "generated PNGs or a .npy stack")
    planes: list[np.ndarray] = []
    labels: list[str] = []  # where each image came from, for the NaN refusal
    skipped: list[tuple[Path, str]] = []
    for file in files:
        try:
            found = read_values(file)
        except UnreadableFile as exc:
            skipped.append((file, str(exc)))
            continue
        planes += found
        labels += [f"image {i}" if file == path else f"image {i} of {file.relative_to(path)}"
                   for i in range(len(found))]
    if not planes:
        file, reason = skipped[0]
        raise DataError(f"no readable image in {path} (e.g. {file}: {reason}); pass a folder of generated PNGs or "
                        "a .npy stack")
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable or non-image file(s) under {path} (e.g. {skipped[0][0]}: "
                      f"{skipped[0][1]})", SkippedFilesWarning, stacklevel=2)
    planes = values_to_uint8(planes, value_range, path, labels)
    size = max(planes[0].shape[:2])
    if size < 16:
        raise DataError(f"the images in {path} are {size} px; the evaluation needs at least 16 px")
    smaller = [plane.shape[:2] for plane in planes if max(plane.shape[:2]) < size]
    if smaller:
        raise DataError(f"{len(smaller)} images in {path} are smaller than the first one ({size} px, e.g. "
                        f"{smaller[0][1]}x{smaller[0][0]}); give images of one size")
    return np.stack([fit(to_channels(plane, 1), size) for plane in planes])


__all__ = ["read_values", "values_to_uint8", "read_generated"]
