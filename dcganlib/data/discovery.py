"""Finding the input files: folder walks, the OASIS course layout, and header-only surveys.

* Folders are searched recursively; hidden files and folders and the ``keras_png_slices_seg_*`` mask
  folders are ignored; files are sorted by path so every listing is reproducible.
* DICOM files (found by suffix or by their ``DICM`` preamble) keep the path order across folders; inside a
  folder they are ordered as a scanner stacks them (:func:`order_series`): by series, then position along
  the slice normal (ImagePositionPatient), else InstanceNumber.
* The OASIS course layout is a folder holding ``keras_png_slices_{train,validate,test}/``
  (:data:`OASIS_SPLITS`), at the given path or one level below it. The embedded demo dataset is written
  in the same layout.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..errors import DataError
from .readers import (DICOM_SUFFIXES, IMAGE_SUFFIXES, NIFTI_SUFFIXES, NUMPY_SUFFIXES, PIL_ERRORS, SUPPORTED,
                      DicomHeader, dicom_header, is_dicom, is_supported, suffix_of)

#: Split name → folder name of the OASIS course layout, in the order train, validate, test.
OASIS_SPLITS = {"train": "keras_png_slices_train", "validate": "keras_png_slices_validate",
                "test": "keras_png_slices_test"}
_MASK_FOLDERS = "keras_png_slices_seg"
_SLICE_NUMBER = re.compile(r"slice_?(\d+)", re.IGNORECASE)


def walk(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder``, sorted; ``keras_png_slices_seg_*`` mask folders are skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not d.startswith(_MASK_FOLDERS))
        found.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted(found)


def find_oasis_root(folder: Path) -> Optional[Path]:
    """The folder holding ``keras_png_slices_train`` (``folder`` itself or one level down), if any."""
    candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for candidate in candidates:
        if (candidate / OASIS_SPLITS["train"]).is_dir():
            return candidate
    return None


def split_supported(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """``(supported files, [(relative path, reason), …] for the other files)`` under ``folder``."""
    everything = walk(folder)
    files = [p for p in everything if is_supported(p)]
    others = [(p.relative_to(folder).as_posix(), f"not a supported file type ({suffix_of(p) or 'no suffix'})")
              for p in everything if not is_supported(p)]
    return files, others


def collect(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """:func:`split_supported`, with a clear :class:`DataError` for an empty folder or one without images."""
    files, others = split_supported(folder)
    if not files and not others:
        raise DataError(f"data folder {folder} is empty; put {SUPPORTED} in it")
    if not files:
        raise DataError(f"no image files in {folder} ({len(others)} other files, e.g. {others[0][0]}); "
                        f"supported: {SUPPORTED}")
    return files, others


def collect_oasis(root: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Supported files of the OASIS split folders under ``root`` (an empty validate/test folder is fine)."""
    files: list[Path] = []
    others: list[tuple[str, str]] = []
    for folder in OASIS_SPLITS.values():
        if (root / folder).is_dir():
            found, other = split_supported(root / folder)
            files += found
            others += [(f"{folder}/{relative}", reason) for relative, reason in other]
    if not files:
        raise DataError(f"the OASIS folders in {root} hold no image files; expected PNGs in "
                        f"{OASIS_SPLITS['train']}/")
    return files, others


def dicom_headers(files: Sequence[Path]) -> dict[Path, DicomHeader]:
    """The headers of the DICOM files among ``files`` (suffix ``.dcm``/``.dicom`` or the ``DICM`` preamble;
    the pixels are not read); a file pydicom cannot parse is left out (decoding skips it with the reason)."""
    known = IMAGE_SUFFIXES + NUMPY_SUFFIXES + NIFTI_SUFFIXES
    found = {}
    for path in files:
        suffix = suffix_of(path)
        if suffix in DICOM_SUFFIXES or (suffix not in known and is_dicom(path)):
            header = dicom_header(path)
            if header is not None:
                found[path] = header
    return found


def order_series(files: Sequence[Path], headers: Mapping[Path, DicomHeader]) -> list[Path]:
    """``files`` with the DICOM files of each folder reordered among themselves as their series stack: by
    SeriesInstanceUID, then position along the slice normal, else InstanceNumber, then name. Other files
    keep their places."""
    places: dict[Path, list[int]] = {}
    for index, path in enumerate(files):
        if path in headers:
            places.setdefault(path.parent, []).append(index)

    def key(path: Path) -> tuple:
        header = headers[path]
        return (header.series, header.position is None, header.position or 0.0, header.instance is None,
                header.instance or 0, path.name)

    ordered = list(files)
    for indices in places.values():
        for index, path in zip(indices, sorted((files[i] for i in indices), key=key)):
            ordered[index] = path
    return ordered


def survey_files(path: str | os.PathLike) -> list[dict[str, Any]]:
    """One row per supported file under ``path``, read from headers only (no pixel is decoded).

    Row: ``{"path": relative posix path, "split": "train" | "validate" | "test" for the OASIS folders
    else "", "width", "height": stored size in pixels (None for .npy / NIfTI / unreadable files),
    "slice": the number in a ``slice_N`` file name or None}``. Used to summarise stored image sizes and
    slice positions.
    """
    from PIL import Image

    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"data path {root} does not exist")
    files = [root] if root.is_file() else [p for p in walk(root) if is_supported(p)]
    split_of_folder = {folder: split for split, folder in OASIS_SPLITS.items()}
    rows = []
    for file in files:
        relative = file.name if file == root else file.relative_to(root).as_posix()
        width = height = None
        if suffix_of(file) in IMAGE_SUFFIXES:
            try:
                with Image.open(file) as image:  # lazy: reads the header only
                    width, height = image.size
            except PIL_ERRORS:
                pass  # unreadable files are counted by load_dataset; the survey just has no size
        match = _SLICE_NUMBER.search(file.name)
        rows.append({"path": relative,
                     "split": next((split_of_folder[p] for p in Path(relative).parts[:-1] if p in split_of_folder), ""),
                     "width": width, "height": height, "slice": int(match.group(1)) if match else None})
    return rows


def middle_slice(rows: Sequence[dict[str, Any]], split: str = "train") -> dict[str, Any]:
    """The survey row at the middle of the brain: the median slice number of ``split`` (or of files
    outside the OASIS folders), or the middle file when names carry no slice numbers."""
    candidates = [row for row in rows if row["split"] in (split, "")]
    if not candidates:
        raise DataError(f"no {split} files in the survey")
    numbered = sorted((row for row in candidates if row["slice"] is not None), key=lambda row: row["slice"])
    pool = numbered or candidates
    return pool[len(pool) // 2]


__all__ = ["OASIS_SPLITS", "walk", "dicom_headers", "order_series",
           "find_oasis_root", "split_supported", "collect", "collect_oasis",
           "survey_files", "middle_slice"]
