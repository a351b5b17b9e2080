"""Quality during training: the cheap figures every ``eval_every`` epochs, and the best generator kept.

Every ``config.eval_every`` epochs (and after the last), :class:`ValidationTracker` draws
:data:`SAMPLE_COUNT` images from the sampling generator (the EMA copy when the run keeps one) for one
fixed noise batch (stream "quality-noise"), quantises them to uint8 as every saved image is, and
measures them against the run's **validate split** with :func:`dcganlib.metrics.quality.quality_figures`
— the code ``evaluate`` runs, so the two agree on the same images. The figures become the epoch's
``history.csv`` columns :data:`COLUMNS` and ``val_score`` (below; NaN on epochs without a measurement)
and TensorBoard scalars; ``val_seconds`` is what the measurement cost (part of the epoch's ``seconds``).

Their **real reference** — as many training images (stream "quality-stand-in"; real images of other
subjects than the validate split's) measured the same way against the same validate images — is
computed once per session and stored in ``run.json`` under ``"quality"``.

**The best generator.** :data:`CRITERION` picks it: ``val_score``, the distance to real-image quality,

    val_score = ( Π_f max(1, ratio_f) )^(1/4),   ratio = FD / FD_real, spectrum / spectrum_real,
                                                         W1 / W1_real, recall_real / recall

the geometric mean over four figures of how many times worse than the real reference each is (a figure
at or beyond the real reference counts 1). 1.0 means every figure is as good as real images of other
subjects; 2.0, twice as far on average. Why these: the Fréchet distance moves with fidelity and
diversity together, but on its own it picked epochs whose images had salt-and-pepper texture (a
spectrum deviation twice the best epoch's) — the spectrum sees that texture, the tissue W1 washed-out
or saturated intensities, and recall the modes the Fréchet distance averages away. KID (near 0 and
unbiased, so its ratio is unstable) and precision (generated sets reach the reference early) are left
out. After each epoch that improves it, :class:`BestGeneratorKeeper` saves the sampling generator as
``checkpoints/best-epoch_NNNN.keras`` (:func:`dcganlib.runs.best_generator`) and ``train()`` exports
``generator.keras`` from it at the end; ``run.json`` names the epoch. ``evaluate`` grades that generator
by default. The validate split chooses it; ``evaluate`` grades on the validate *and* test splits, so
its ``metrics.json`` says that the choice and the grade share the validate images.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import keras
import numpy as np

from . import runs, seeds
from .files import atomic_path
from .metrics import prdc
from .metrics.quality import LOWER_IS_BETTER, RealSide, quality_figures
from .pixels import to_uint8
from .progress import note
from .sampling import images_of, save_generator

#: history.csv column → figure of :func:`dcganlib.metrics.quality.quality_figures`.
COLUMNS = {"val_fd": "frechet_distance", "val_kid": "kid", "val_precision": "precision", "val_recall": "recall",
           "val_spectrum": "spectrum", "val_tissue_w1": "tissue_w1"}
#: The column that chooses the best generator (lower is better; see the module docstring for why).
CRITERION = "val_score"
#: The figures :func:`quality_score` combines: column → True when the figure's ratio is value / reference
#: (a distance), False when it is reference / value (recall).
SCORE_FIGURES = {"val_fd": True, "val_spectrum": True, "val_tissue_w1": True, "val_recall": False}
#: Recall below this counts as this in the score (a collapsed generator's recall of 0 gives a finite score).
MIN_SCORED_RECALL = 1e-3
#: Generated images per measurement (and training images for the real reference), at most.
SAMPLE_COUNT = 512
#: Fewer validate images than this and there is no per-epoch figure (k-NN balls need k + 1 points each).
MIN_REFERENCE = 2 * (prdc.DEFAULT_K + 1)
#: The column of the measurement's cost in seconds.
SECONDS_COLUMN = "val_seconds"


def lower_is_better(column: str) -> bool:
    """Whether a smaller value of ``column`` (one of :data:`COLUMNS` or :data:`CRITERION`) is better."""
    return column == CRITERION or LOWER_IS_BETTER[COLUMNS[column]]


def quality_score(figures: dict[str, float], reference: dict[str, float]) -> float:
    """``val_score`` of the module docstring from the :data:`COLUMNS` of a measurement and of its real
    reference: ≥ 1, lower is better; NaN when a figure is missing or NaN."""
    ratios = []
    for column, distance in SCORE_FIGURES.items():
        value, real = float(figures.get(column, math.nan)), float(reference[column])
        if distance:
            ratios.append(value / real if real > 0 else math.inf)
        else:
            ratios.append(real / max(value, MIN_SCORED_RECALL))
    if any(math.isnan(r) for r in ratios):
        return math.nan
    return float(math.exp(sum(math.log(max(1.0, r)) for r in ratios) / len(ratios)))


@dataclass
class QualityProbe:
    """What a measurement needs, fixed for the whole run: the validate split's :class:`RealSide`, the
    noise, and the real reference's figures (``reference`` as :data:`COLUMNS`)."""

    side: RealSide
    noise: np.ndarray  # float32 (count, latent_dim)
    reference: dict[str, float]
    validate_count: int
    seed: int

    @property
    def count(self) -> int:
        return len(self.noise)

    def measure(self, generator: keras.Model) -> dict[str, float]:
        """The :data:`COLUMNS` and :data:`CRITERION` of ``generator``'s images for the fixed noise."""
        images = to_uint8(images_of(generator, self.noise))
        figures = columns_of(quality_figures(images, self.side, seed=self.seed))
        return {**figures, CRITERION: quality_score(figures, self.reference)}

    def describe(self) -> dict[str, Any]:
        """The ``run.json`` record: what was measured against what, and the real reference."""
        return {"criterion": CRITERION, "lower_is_better": lower_is_better(CRITERION),
                "reference_images": f"the validate split ({self.validate_count} images)",
                "generated_images": f"{self.count} from one fixed noise batch (stream 'quality-noise'), uint8",
                "real_reference_images": f"{self.count} training images (stream 'quality-stand-in'), measured the "
                                         "same way against the same validate images",
                "real_reference": self.reference}


def columns_of(figures: dict[str, float]) -> dict[str, float]:
    """:func:`quality_figures` output renamed to the history columns :data:`COLUMNS`."""
    return {column: float(figures[name]) for column, name in COLUMNS.items()}


def make_probe(validate: np.ndarray, train: np.ndarray, latent_dim: int, seed: int) -> Optional[QualityProbe]:
    """The probe of a run (uint8 splits), or None when the validate split has fewer than
    :data:`MIN_REFERENCE` images (then nothing is tracked and the last epoch's generator is exported)."""
    if len(validate) < MIN_REFERENCE:
        return None
    count = min(SAMPLE_COUNT, len(train))
    side = RealSide(validate)
    pick = np.sort(seeds.rng(seed, "quality-stand-in").choice(len(train), count, replace=False))
    reference = columns_of(quality_figures(train[pick], side, seed=seed))
    reference[CRITERION] = quality_score(reference, reference)  # 1.0: the real reference is at real quality
    noise = seeds.rng(seed, "quality-noise").standard_normal((count, latent_dim)).astype(np.float32)
    return QualityProbe(side, noise, reference, len(validate), seed)


def due(epoch: int, every: int, last: int) -> bool:
    """Whether epoch ``epoch`` (1-based) is measured: every ``every``-th and the run's ``last`` (0 = never)."""
    return every > 0 and (epoch % every == 0 or epoch == last)


class ValidationTracker(keras.callbacks.Callback):
    """Adds the :data:`COLUMNS`, :data:`CRITERION` and :data:`SECONDS_COLUMN` to the logs of every epoch :func:`due` (NaN on
    the others, so the CSV columns stay aligned). Place it before :class:`~dcganlib.callbacks.RunRecorder`,
    which writes the logs into ``history.csv``."""

    def __init__(self, probe: QualityProbe, every: int, last_epoch: int) -> None:
        super().__init__()
        self.probe, self.every, self.last_epoch = probe, every, last_epoch

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if logs is None:
            return
        if not due(epoch + 1, self.every, self.last_epoch):
            logs.update({column: math.nan for column in (*COLUMNS, CRITERION, SECONDS_COLUMN)})
            return
        started = time.perf_counter()
        logs.update(self.probe.measure(self.model.sampling_generator()))
        logs[SECONDS_COLUMN] = round(time.perf_counter() - started, 3)


def better(value: float, than: Optional[float], column: str = CRITERION) -> bool:
    """Whether ``value`` of ``column`` beats ``than`` (None: nothing yet); NaN never does."""
    if not math.isfinite(value):
        return False
    if than is None:
        return True
    return value < than if lower_is_better(column) else value > than


def best_row(history: Sequence[dict[str, float]], column: str = CRITERION) -> Optional[dict[str, float]]:
    """The row of ``history`` with the best finite ``column`` (the earliest of equals), or None."""
    best = None
    for row in history:
        if better(float(row.get(column, math.nan)), None if best is None else best[column], column):
            best = row
    return best


class BestGeneratorKeeper(keras.callbacks.Callback):
    """After each recorded epoch whose :data:`CRITERION` beats every earlier one: the sampling generator
    into ``checkpoints/best-epoch_NNNN.keras`` (the previous best file is deleted after), and the best
    epoch into ``best`` (read by the manifest). Place it after the recorder: the history row and the
    checkpoint of the epoch are on disk first, so a kill between the two leaves a best file no newer
    than the newest checkpoint."""

    def __init__(self, run_dir: Path, history: list[dict[str, float]], best: "BestSoFar") -> None:
        super().__init__()
        self.run_dir, self.history, self.best = run_dir, history, best

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        number = epoch + 1
        if not self.history or self.history[-1]["epoch"] != number:  # the recorder skipped a broken epoch
            return
        value = float(self.history[-1].get(CRITERION, math.nan))
        if better(value, self.best.value):
            self.best.save(self.model.sampling_generator(), self.run_dir, number, value)


@dataclass
class BestSoFar:
    """The best epoch of a run so far and its :data:`CRITERION` value (None before the first measurement)."""

    epoch: Optional[int] = None
    value: Optional[float] = None

    def save(self, generator: keras.Model, run_dir: Path, epoch: int, value: float) -> None:
        """``generator`` as the run's best (epoch ``epoch``), replacing the previous best file."""
        previous = runs.best_generators(run_dir)
        save_generator(generator, runs.best_generator_path(run_dir, epoch))
        for _, path in previous:
            if path != runs.best_generator_path(run_dir, epoch):
                path.unlink(missing_ok=True)
        self.epoch, self.value = epoch, value

    def record(self) -> dict[str, Any]:
        return {"best_epoch": self.epoch, "best_value": self.value}


def resume_best(run_dir: Path, history: Sequence[dict[str, float]], restored_epoch: int,
                generator: Optional[keras.Model] = None) -> BestSoFar:
    """The best so far of a resumed run whose kept rows are ``history`` (epochs ≤ ``restored_epoch``).

    The newest best file counts when its epoch has a kept row. Best files of epochs after the restored
    checkpoint (their rows are trained again) are deleted. When the best kept row is the restored epoch
    itself but no best file names it (the process was killed between the checkpoint and the best file),
    ``generator`` — the restored sampling generator — is saved as the best now.
    """
    rows = {int(row["epoch"]): row for row in history}
    best = BestSoFar()
    for epoch, path in runs.best_generators(run_dir):
        if epoch > restored_epoch or epoch not in rows:
            note(f"{path.name} belongs to an epoch after the restored checkpoint (epoch {restored_epoch}); deleted, "
                 "the epochs after it are trained again")
            path.unlink(missing_ok=True)
        elif best.epoch is None:
            best = BestSoFar(epoch, float(rows[epoch].get(CRITERION, math.nan)))
    top = best_row(history)
    if (top is not None and int(top["epoch"]) == restored_epoch and best.epoch != restored_epoch
            and better(float(top[CRITERION]), best.value) and generator is not None):
        best.save(generator, run_dir, restored_epoch, float(top[CRITERION]))
    return best


def export_best(run_dir: Path) -> Optional[int]:
    """Copy the best generator file to ``generator.keras`` (atomically); its epoch, or None if none."""
    found = runs.best_generators(run_dir)
    if not found:
        return None
    epoch, path = found[0]
    with atomic_path(run_dir / runs.GENERATOR_FILE) as temporary:
        shutil.copyfile(path, temporary)
    return epoch


__all__ = [
    "COLUMNS", "CRITERION", "SCORE_FIGURES", "quality_score", "SAMPLE_COUNT", "MIN_REFERENCE", "SECONDS_COLUMN",
    "QualityProbe", "make_probe", "columns_of", "due", "better", "best_row", "lower_is_better", "ValidationTracker",
    "BestGeneratorKeeper", "BestSoFar", "resume_best", "export_best"
]
