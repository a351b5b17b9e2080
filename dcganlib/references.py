"""Which real images play which role in an evaluation — and the real stand-ins that give every figure the
value *real* images reach when measured the same way.

A figure such as "two-sample AUC 0.93" or "Fréchet distance 41" means nothing alone: subjects differ,
sample sizes bias every estimate, and a metric may not reach its ideal value even for real images. So
every figure is computed twice, once with the generated images and once with **real images of subjects
the generator never saw put exactly where the generated images go** (the stand-in), at the same sample
sizes. The reader sees "generated 0.99 — real reference 0.52".

Roles (:class:`EvaluationSets`, all uint8 ``(N, S, S, C)``):

* ``train`` — what the generator was trained on: the classifier's real training side and the
  memorisation search;
* ``heldout`` — real images of unseen subjects: the classifier's real test side;
* ``reference`` — what every held-out figure compares with (``heldout`` or a half of it);
* ``stand_in`` — real images of yet other unseen subjects, scored against ``reference`` like the
  generated images (which are cut to the same count);
* ``reference_test`` — the four sets of the real-vs-real two-sample test.

How the stand-ins are made (``method``):

* ``"demo-resample"`` — the run trained on the embedded demo dataset, whose generator can make new
  subjects: a second demo build with :data:`~dcganlib.data.demo.RESAMPLE_SEED` and twice the slices
  (same population, new synthetic subjects), its subjects divided into two seeded halves. Half A plays
  the generated images on the classifier's training side; as many images as the held-out set, drawn at
  random from half B's subjects, play them on the held-out side — independent draws across many
  subjects, like generated images. The reference is the run's own held-out images. Every count equals
  the generated test's.
* ``"subject-halves"`` — any other data: the train split and the held-out images are each divided *by
  subject* into two seeded halves A and B (stream "evaluation-split"). The real-vs-real two-sample test
  trains on train-A vs train-B and tests held-out-A vs held-out-B (half the generated test's counts);
  the held-out figures compare generated images and held-out-B alike with held-out-A.

The classifier's training side is capped at :data:`TRAIN_CAP` images per class (a seeded subset), so an
OASIS-sized evaluation stays within minutes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import seeds
from .config import Config
from .errors import DataError

TRAIN_CAP = 3000


@dataclass
class EvaluationSets:
    """Every image an evaluation uses (uint8), the generated ones included, and how they were chosen."""

    generated_train: np.ndarray  # the classifier's generated training side
    generated_heldout: np.ndarray  # the classifier's generated test side; its first len(stand_in) for the figures
    train: np.ndarray
    classifier_train: np.ndarray  # the classifier's real training side (train, capped, as many as generated_train)
    heldout: np.ndarray
    reference: np.ndarray
    stand_in: np.ndarray
    reference_test: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # train real, train stand-in, test real, test stand-in
    method: str
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def generated(self) -> np.ndarray:
        """The generated images of the held-out figures: as many as the stand-in."""
        return self.generated_heldout[: len(self.stand_in)]

    def counts(self) -> dict[str, Any]:
        return {"generated_train": len(self.generated_train), "generated_heldout": len(self.generated_heldout),
                "generated_figures": len(self.generated), "train": len(self.train),
                "classifier_train": len(self.classifier_train), "heldout": len(self.heldout),
                "reference": len(self.reference), "stand_in": len(self.stand_in),
                "reference_test": {"train_real": len(self.reference_test[0]),
                                   "train_stand_in": len(self.reference_test[1]),
                                   "test_real": len(self.reference_test[2]),
                                   "test_stand_in": len(self.reference_test[3])}}


@dataclass
class RealRoles:
    """The real images of an evaluation before any image is generated (uint8), with the sizes to generate."""

    train: np.ndarray
    classifier_train: np.ndarray  # train, capped at TRAIN_CAP
    heldout: np.ndarray
    reference: np.ndarray
    stand_in: np.ndarray
    reference_test: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    method: str
    sources: dict[str, str]

    def with_generated(self, generated: np.ndarray) -> EvaluationSets:
        """The full sets, ``generated`` (uint8, at least :attr:`generated_needed`) split into the two sides."""
        n_train = len(self.classifier_train)
        if len(generated) < self.generated_needed:
            raise ValueError(f"{self.generated_needed} generated images are needed, got {len(generated)}")
        return EvaluationSets(generated[:n_train], generated[n_train:self.generated_needed], self.train,
                              self.classifier_train, self.heldout, self.reference, self.stand_in, self.reference_test,
                              self.method, self.sources)

    @property
    def generated_needed(self) -> int:
        return len(self.classifier_train) + len(self.heldout)

    def limited_to(self, count: int) -> "RealRoles":
        """These roles cut so that ``count`` generated images suffice (for ``evaluate --images``): at most half
        of them on the classifier's test side, the rest on its training side; the stand-in and, for
        "demo-resample", the references shrink with them so every comparison keeps equal counts."""
        if count >= self.generated_needed:
            return self
        n_heldout = min(len(self.heldout), count // 2)
        n_train = min(len(self.classifier_train), count - n_heldout)
        if min(n_heldout, n_train) < 4:
            raise DataError(f"{count} generated images are too few to evaluate; give at least 16")
        heldout = self.heldout[:n_heldout]
        stand_in = self.stand_in[:n_heldout]
        if self.method == "demo-resample":
            reference_test = (self.reference_test[0][:n_train], self.reference_test[1][:n_train], heldout, stand_in)
            reference = heldout
        else:
            reference_test, reference = self.reference_test, self.reference
        return RealRoles(self.train, self.classifier_train[:n_train], heldout, reference, stand_in, reference_test,
                         self.method, self.sources)


# keys of the "evaluation-split" stream, one per random choice
_TRAIN_HALVES, _HELDOUT_HALVES, _CAP, _STAND_IN_HALVES, _STAND_IN_DRAW = 1, 2, 3, 4, 5


def _halves(groups: np.ndarray, seed: int, key: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (A, B) dividing images by their group (subject) into two seeded halves of the groups;
    with a single group the images themselves are divided."""
    unique = np.array(sorted(set(groups.tolist())), dtype=object)
    rng = seeds.rng(seed, "evaluation-split", key)
    if len(unique) < 2:
        order = rng.permutation(len(groups))
        mask = np.zeros(len(groups), bool)
        mask[order[: len(groups) // 2]] = True
        return mask, ~mask
    chosen = set(unique[rng.permutation(len(unique))[: len(unique) // 2]].tolist())
    mask = np.array([g in chosen for g in groups.tolist()])
    return mask, ~mask


def _cap(images: np.ndarray, cap: int, seed: int, key: int = 0) -> np.ndarray:
    """At most ``cap`` of ``images``: a seeded subset in their original order."""
    if len(images) <= cap:
        return images
    keep = np.sort(seeds.rng(seed, "evaluation-split", _CAP, key).choice(len(images), cap, replace=False))
    return images[keep]


def _equal(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays cut to the length of the shortest."""
    n = min(len(a) for a in arrays)
    return [a[:n] for a in arrays]


def resample_roles(train: np.ndarray, heldout: np.ndarray, other: Any, seed: int, description: str) -> RealRoles:
    """Roles whose stand-ins come from ``other``, a second sample of the same population (a
    :class:`~dcganlib.data.DatasetSplits` of new subjects, every split used): its subjects are divided into
    two seeded halves; half A stands in on the classifier's training side, and as many images as the
    held-out set, drawn at random from half B's subjects, stand in on the held-out side. Drawn across many
    subjects, the held-out stand-in is like the generated images (independent draws, not a few subjects'
    slices). Every count equals the generated test's."""
    images = np.concatenate([other.train, other.validate, other.test])
    groups = np.concatenate([other.groups[s] for s in ("train", "validate", "test")])
    half_a, half_b = _halves(groups, seed, _STAND_IN_HALVES)
    pool = images[half_b]
    if len(pool) < len(heldout):
        raise DataError(f"the real stand-in has {len(pool)} images of unseen subjects for {len(heldout)} held-out ones")
    pick = np.sort(seeds.rng(seed, "evaluation-split", _STAND_IN_DRAW).choice(len(pool), len(heldout), replace=False))
    classifier_train, stand_in_train = _equal(_cap(train, TRAIN_CAP, seed, 0), _cap(images[half_a], TRAIN_CAP, seed, 1))
    stand_in = pool[pick]
    return RealRoles(train, classifier_train, heldout, heldout, stand_in,
                     (classifier_train, stand_in_train, heldout, stand_in), "demo-resample",
                     {"stand_in": description})


def demo_resample_roles(config: Config, train: np.ndarray, heldout: np.ndarray, seed: int) -> RealRoles:
    """Roles for a run on the embedded demo data: stand-ins from a second demo build of twice the size
    (see module docstring)."""
    from .data import load_dataset
    from .data.demo import RESAMPLE_SEED, ensure_demo_dataset

    resample = config.replace(demo_count=2 * config.demo_count, max_images=None)
    folder = ensure_demo_dataset(resample, seed=RESAMPLE_SEED)
    other = load_dataset(resample.replace(data=str(folder)))
    return resample_roles(train, heldout, other, seed,
                          f"a second build of the embedded demo dataset with seed {RESAMPLE_SEED} and twice the slices "
                          f"(new synthetic subjects of the same population, {folder.name}), its subjects divided into "
                          "two seeded halves: half A stands in for the generated images on the classifier's training "
                          "side; as many images as the held-out set, drawn at random from half B's subjects, on the "
                          "held-out side")


def subject_halves_roles(train: np.ndarray, train_groups: np.ndarray, heldout: np.ndarray,
                         heldout_groups: np.ndarray, seed: int) -> RealRoles:
    """Roles for any data: halves of the subjects of the train and held-out sets (see module docstring)."""
    if len(train) < 4:  # halves for the two-sample test; ≥ 2 for the memorisation check's spacing
        raise DataError(f"the evaluation needs at least 4 images in the train split; got {len(train)} (the "
                        "memorisation check and the real-vs-real two-sample test read them); give more real data")
    if len(heldout) < 4:
        raise DataError(f"the evaluation needs held-out real images of at least two subjects; got {len(heldout)} "
                        "images; pass --reference PATH with real images of subjects the generator never saw")
    train_a, train_b = _halves(train_groups, seed, _TRAIN_HALVES)
    held_a, held_b = _halves(heldout_groups, seed, _HELDOUT_HALVES)
    train_real, train_stand_in = _equal(_cap(train[train_a], TRAIN_CAP // 2, seed, 2),
                                        _cap(train[train_b], TRAIN_CAP // 2, seed, 3))
    reference, stand_in = _equal(heldout[held_a], heldout[held_b])
    description = ("real images of unseen subjects: the held-out images divided by subject into two seeded halves "
                   "A and B; held-out figures compare generated images and half B alike with half A; the "
                   "real-vs-real two-sample test trains on train-split half A vs half B and tests held-out A vs B")
    return RealRoles(train, _cap(train, TRAIN_CAP, seed, 0), heldout, reference, stand_in,
                     (train_real, train_stand_in, reference, stand_in), "subject-halves", {"stand_in": description})


def real_roles(config: Config, reference: Optional[str | os.PathLike], seed: int) -> RealRoles:
    """The real roles for images of ``config`` (a run's config, or one describing real data to compare with).

    ``reference`` (a path) replaces the held-out images by every image under it. The sources of every
    role are described in ``sources``.
    """
    from .data import load_dataset

    splits = load_dataset(config)
    data_name = "the embedded demo dataset" if config.data is None else str(config.data)
    sources = {"train": f"the train split of {data_name} ({splits.report.get('grouping')} groups)"}
    if reference is not None:
        path = Path(reference).expanduser()
        if not path.exists():
            raise DataError(f"--reference {path} does not exist; pass a folder or file of real images")
        other = load_dataset(config.replace(data=str(path), max_images=None))
        heldout = np.concatenate([other.train, other.validate, other.test])
        groups = np.concatenate([other.groups[s] for s in ("train", "validate", "test")])
        sources["heldout"] = f"every image under {path}"
        roles = subject_halves_roles(splits.train, splits.groups["train"], heldout, groups, seed)
    else:
        heldout = np.concatenate([splits.validate, splits.test])
        groups = np.concatenate([splits.groups["validate"], splits.groups["test"]])
        sources["heldout"] = f"the validate and test splits of {data_name} (subjects the generator never saw)"
        if config.data is None:
            roles = demo_resample_roles(config, splits.train, heldout, seed)
        else:
            if len(heldout) == 0:
                raise DataError(f"{data_name} has no validate or test images (too few subjects to hold any out); "
                                "pass --reference PATH with real images of other subjects")
            roles = subject_halves_roles(splits.train, splits.groups["train"], heldout, groups, seed)
    roles.sources = {**sources, **roles.sources,
                     "reference": "the held-out images" if roles.method == "demo-resample" else "held-out half A"}
    return roles


__all__ = ["TRAIN_CAP", "EvaluationSets", "RealRoles", "real_roles", "resample_roles", "demo_resample_roles",
           "subject_halves_roles"]
