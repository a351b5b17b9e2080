"""``load_dataset``: the data named by a config → decoded, resized, split uint8 arrays and an audit.

The steps, each in its own module: find the files (:mod:`.discovery`), decode them once into the
cache (:mod:`.cache`, :mod:`.readers`), assign subjects to splits (:mod:`.splits`), and record where
every image came from in a JSON-able report (the run folder's ``split.json``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..config import Config
from ..errors import DataError
from ..files import write_json
from .cache import DecodedFiles, decode_all
from .discovery import OASIS_SPLITS, collect, collect_oasis, dicom_headers, find_oasis_root, order_series
from .readers import SUPPORTED, DicomHeader, is_supported
from .splits import split_groups, split_views, subject_ids, train_cap

_EXAMPLES = 10  # skipped files named in the report


class SkippedFilesWarning(UserWarning):
    """Some input files could not be read and were skipped (the count and examples are in the report)."""


@dataclass
class DatasetSplits:
    """Decoded, resized slices per split, as uint8 ``(N, S, S, C)`` arrays in ``[0, 255]``.

    ``validate``/``test`` may be empty ``(0, S, S, C)`` only when the data has too few subjects.
    ``groups[split]`` holds each image's subject id (or file, or file#slice; see ``report["grouping"]``).
    ``report`` is a JSON-able audit of where the data came from and how it was split.
    """

    train: np.ndarray
    validate: np.ndarray
    test: np.ndarray
    report: dict = field(default_factory=dict)
    groups: dict[str, np.ndarray] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """One line per empty held-out split: what it costs and how to fix it (``train`` prints them, so the
        problem shows before the training rather than at ``evaluate``). The demo dataset never has one."""
        oasis = self.report.get("layout") == "oasis"
        folders = " or ".join(OASIS_SPLITS[s] for s in ("validate", "test") if oasis and not len(getattr(self, s)))
        if len(self.validate) + len(self.test) == 0:
            where = f"no images in {folders}" if oasis else "too few subjects for val_fraction and test_fraction"
            fix = f"add subjects to {folders}" if oasis else "add subjects or raise the fractions"
            return [f"no held-out images ({where}): evaluate will need --reference FOLDER of real images of other "
                    f"subjects; or {fix}"]
        found = []
        for split in ("validate", "test"):
            if not len(getattr(self, split)):
                other = "test" if split == "validate" else "validate"
                where = f"no images in {OASIS_SPLITS[split]}" if oasis else "too few subjects for its fraction"
                found.append(f"the {split} split is empty ({where}): evaluate holds out only the "
                             f"{len(getattr(self, other))} {other} images"
                             + ("; the SSIM tracker compares with training images" if split == "validate" else ""))
        return found

    def save_report(self, path: str | os.PathLike) -> None:
        """Write :attr:`report` as indented JSON, atomically (the run folder's ``split.json``)."""
        write_json(path, self.report, sort_keys=True)


@dataclass
class _Source:
    path: Path  # what the user named (or the demo folder), resolved
    root: Path  # the folder file paths are relative to
    files: list[Path]
    others: list[tuple[str, str]]  # files that are not images: (relative path, reason)
    oasis: bool
    demo: bool
    dicom: dict[Path, DicomHeader] = field(default_factory=dict)  # headers of the DICOM files


def load_dataset(config: Config) -> DatasetSplits:
    """Load, decode, resize and split the data named by ``config.data`` (see the package docstring).

    Returns uint8 ``(N, S, S, C)`` arrays (``S = config.image_size``, ``C = config.channels``) per split
    and a JSON-able report. ``config.data = None`` loads the embedded demo dataset (built and cached on
    first use). Raises :class:`DataError` (one line, naming the path) for unusable data.
    """
    source = _find_source(config)
    decoded = decode_all(source.files, source.root, config)
    skipped = source.others + decoded.skipped
    _check_readable(decoded, source.files, skipped, source.path)
    relatives = [source.files[i].relative_to(source.root).as_posix() for i in decoded.file_index]
    report = _base_report(config, source, decoded, skipped)
    if source.oasis:
        split_names, groups, subjects = _oasis_splits(relatives, config, report)
    else:
        split_names, groups, subjects = _seeded_splits(relatives, decoded, source, config, report)
    arrays, labels = split_views(decoded.images, split_names, groups)
    keep = train_cap(len(arrays["train"]), config)
    train = arrays["train"] if keep is None else arrays["train"][keep]
    if keep is not None:
        labels["train"] = labels["train"][keep]
    report.update(
        counts={"train": int(len(train)), "validate": int(len(arrays["validate"])), "test": int(len(arrays["test"]))},
        train_before_cap=int(len(arrays["train"])),
        max_images=config.max_images,
        subjects=subjects,
        subject_counts={s: len(v) for s, v in subjects.items()},
    )
    if len(train) == 0:
        raise DataError(f"no training images in {source.path} after the split; add data to "
                        f"{OASIS_SPLITS['train'] if source.oasis else 'the folder'}")
    return DatasetSplits(train=train, validate=arrays["validate"], test=arrays["test"], report=report, groups=labels)


def _find_source(config: Config) -> _Source:
    """The files of ``config.data`` (or the demo dataset), with the layout they are in."""
    demo = config.data is None
    if demo:
        from .demo import ensure_demo_dataset

        path = ensure_demo_dataset(config)
    else:
        path = Path(config.data).expanduser()
        if not path.exists():
            raise DataError(f"data path {path} does not exist; pass a folder or file of {SUPPORTED} "
                            "(or leave 'data' unset for the embedded demo dataset)")
    path = path.resolve()
    if path.is_file():
        if not is_supported(path):
            raise DataError(f"{path} is not a supported file type; pass {SUPPORTED}")
        return _Source(path, path.parent, [path], [], oasis=False, demo=demo, dicom=dicom_headers([path]))
    oasis_root = find_oasis_root(path)
    if oasis_root is not None:
        files, others = collect_oasis(oasis_root)
        return _Source(path, oasis_root, files, others, oasis=True, demo=demo)
    files, others = collect(path)
    headers = dicom_headers(files)
    return _Source(path, path, order_series(files, headers), others, oasis=False, demo=demo, dicom=headers)


def _check_readable(decoded: DecodedFiles, files: Sequence[Path], skipped: list[tuple[str, str]],
                    where: Path) -> None:
    if len(decoded.images) == 0:
        if decoded.skipped:
            relative, reason = decoded.skipped[0]
            raise DataError(f"none of the {len(files)} image files in {where} could be read "
                            f"(e.g. {relative}: {reason}); check the files, or give a folder of readable images")
        raise DataError(f"the files in {where} hold no slices with tissue; check the data "
                        "(or the NIfTI axis, config key 'nifti_axis')")
    if skipped:
        relative, reason = skipped[0]
        warnings.warn(f"skipped {len(skipped)} unreadable or non-image file(s) under {where} "
                      f"(e.g. {relative}: {reason}); the list is in the split report",
                      SkippedFilesWarning, stacklevel=4)


def _base_report(config: Config, source: _Source, decoded: DecodedFiles,
                 skipped: list[tuple[str, str]]) -> dict[str, Any]:
    report: dict[str, Any] = {
        "source": "embedded MNI152 demo dataset" if source.demo else str(source.path),
        "path": str(source.path),
        "image_size": config.image_size,
        "channels": config.channels,
        "seed": config.seed,
        "files": {"found": len(source.files) + len(source.others),
                  "used": len(set(decoded.file_index.tolist())), "skipped": len(skipped),
                  "skipped_examples": [{"path": p, "reason": r} for p, r in skipped[:_EXAMPLES]]},
        "empty_slices_skipped": decoded.empty_slices,
        "decoded_cache_hit": decoded.cache_hit,
    }
    if source.demo:
        from .demo import read_demo_info

        info = read_demo_info(source.path) or {}
        report["demo"] = {k: info.get(k) for k in ("version", "count", "size", "seed")}
    return report


def _oasis_splits(relatives: list[str], config: Config,
                  report: dict[str, Any]) -> tuple[np.ndarray, list[str], dict[str, list[str]]]:
    """Splits as given by the OASIS folders; subjects recorded for the audit."""
    split_of_folder = {folder: split for split, folder in OASIS_SPLITS.items()}
    split_names = np.array([split_of_folder[r.split("/", 1)[0]] for r in relatives])
    ids, pattern = subject_ids(relatives, config)
    groups = ids or relatives
    report.update(layout="oasis", subject_regex=pattern, grouping="subject" if ids else "file",
                  split_rule="as given by the keras_png_slices_{train,validate,test} folders")
    subjects = {s: sorted({g for g, n in zip(groups, split_names) if n == s}) for s in OASIS_SPLITS}
    return split_names, groups, subjects


def _seeded_splits(relatives: list[str], decoded: DecodedFiles, source: _Source, config: Config,
                   report: dict[str, Any]) -> tuple[np.ndarray, list[str], dict[str, list[str]]]:
    """Groups (subjects, else files, else slices of a single file) assigned to splits by a seeded hash."""
    ids, pattern = subject_ids(relatives, config)
    dicom = {path.relative_to(source.root).as_posix(): header.subject for path, header in source.dicom.items()
             if header.subject}
    # Scanners name files by UID or number: the subject is in the header (used when it tells at least two
    # subjects apart; one subject's series is split like any other files, by file).
    if ids is None and len(set(dicom.values())) > 1:
        ids, pattern = [dicom.get(r, r) for r in relatives], "DICOM PatientID (else StudyInstanceUID)"
    if ids is not None:
        groups, grouping = ids, "subject"
    elif len(source.files) > 1:
        groups, grouping = relatives, "file"
    else:  # one volume or stack: the only way to get held-out data is by slice
        groups, grouping = [f"{r}#{s}" for r, s in zip(relatives, decoded.slice_index)], "slice"
    subjects = split_groups(groups, config)
    split_of_group = {g: s for s, members in subjects.items() for g in members}
    report.update(layout="file" if source.path.is_file() else "folder",
                  subject_regex=pattern, grouping=grouping,
                  val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                  split_rule="groups ordered by sha256(f'{seed}:{group}'); first test_fraction to test, "
                             "next val_fraction to validate, rest to train")
    return np.array([split_of_group[g] for g in groups]), groups, subjects


__all__ = ["DatasetSplits", "SkippedFilesWarning", "load_dataset"]
