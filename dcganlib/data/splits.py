"""Subjects and splits: who a slice belongs to, and which split each subject goes to.

* The OASIS course layout keeps its own splits (``keras_png_slices_{train,validate,test}``).
* Anything else is split by ``config.seed`` into train / validate / test with ``config.val_fraction`` /
  ``config.test_fraction`` of the *groups*. A group is a subject when file names carry an id
  (``config.subject_regex`` group 1 searched in the relative path, else OASIS ``case_001_…`` or AKOA
  ``OAI9000099_…`` when every file matches, :data:`SUBJECT_PATTERNS`), else a file (a volume or stack
  stays whole), else — with a single file — a slice. Groups are ordered by a SHA-256 of ``seed:id``, so
  the split does not depend on directory listing order and no subject is in two splits.
* ``config.max_images`` caps the train split afterwards (a seeded random subset, stream "train-cap").
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .. import seeds
from ..config import Config
from ..errors import ConfigError, DataError
from .discovery import OASIS_SPLITS

#: Filename patterns (searched in the file name) whose group 1 is a subject id, tried in order.
SUBJECT_PATTERNS = {"oasis": r"^(case_\d+)_slice_", "akoa": r"^(OAI\d+)"}
SPLIT_NAMES = tuple(OASIS_SPLITS)  # ("train", "validate", "test")


def subject_ids(relatives: Sequence[str], config: Config) -> tuple[Optional[list[str]], Optional[str]]:
    """Subject id per file (relative posix paths) and the pattern used; ``(None, None)`` when names carry none."""
    if config.subject_regex is not None:
        return _ids_from_regex(relatives, config.subject_regex), config.subject_regex
    names = [r.rsplit("/", 1)[-1] for r in relatives]
    for pattern in SUBJECT_PATTERNS.values():
        matches = [re.search(pattern, name) for name in names]
        if names and all(matches):
            return [m.group(1) for m in matches], pattern
    return None, None


def _ids_from_regex(relatives: Sequence[str], regex: str) -> list[str]:
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise ConfigError(f"config key 'subject_regex' is not a valid regular expression: {exc}") from None
    if pattern.groups < 1:
        raise ConfigError(f"config key 'subject_regex' {regex!r} needs a group, "
                          r"e.g. '(sub-\d+)', whose text is the subject id")
    ids = []
    for relative in relatives:
        match = pattern.search(relative)
        if match is None or not match.group(1):
            matched = sum(pattern.search(r) is not None for r in relatives)
            raise DataError(f"subject_regex '{regex}' matches {matched} of {len(relatives)} "
                            f"files (e.g. not {relative!r}); it is searched in paths relative to the "
                            "data folder and group 1 must capture the subject id — fix the regex")
        ids.append(match.group(1))
    return ids


def split_groups(groups: Sequence[str], config: Config) -> dict[str, list[str]]:
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


def split_views(images: np.ndarray, split_names: np.ndarray,
                groups: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``({split: images}, {split: group id of each image})``, the images as views of ``images``, in their
    original order within a split.

    The rows of ``images`` are reordered in place so each split is contiguous (they already are in the
    OASIS layout), so the splits need no second copy of the images (boolean indexing made one).
    """
    rank = {name: i for i, name in enumerate(SPLIT_NAMES)}
    keys = np.array([rank[name] for name in split_names], dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    _permute_rows(images, order)
    ordered_groups = np.asarray(groups, dtype=object)[order]
    bounds = np.searchsorted(keys[order], np.arange(len(SPLIT_NAMES) + 1))
    views = {name: images[bounds[i]:bounds[i + 1]] for i, name in enumerate(SPLIT_NAMES)}
    labels = {name: ordered_groups[bounds[i]:bounds[i + 1]] for i, name in enumerate(SPLIT_NAMES)}
    return views, labels


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


def train_cap(count: int, config: Config) -> Optional[np.ndarray]:
    """Indices (sorted) of the training images ``config.max_images`` keeps, or None to keep all ``count``."""
    if config.max_images is None or count <= config.max_images:
        return None
    return np.sort(seeds.rng(config.seed, "train-cap").choice(count, config.max_images, replace=False))


def shared_subjects(report: Mapping[str, Any]) -> list[str]:
    """Subject ids that appear in more than one split of a split report (``split.json``); ``[]`` is the rule."""
    subjects = {split: set(names) for split, names in report["subjects"].items()}
    shared: set[str] = set()
    for i, first in enumerate(SPLIT_NAMES):
        for second in SPLIT_NAMES[i + 1:]:
            shared |= subjects.get(first, set()) & subjects.get(second, set())
    return sorted(shared)


__all__ = ["SUBJECT_PATTERNS", "SPLIT_NAMES", "subject_ids", "split_groups", "split_views", "train_cap",
           "shared_subjects"]
