"""TensorBoard event files of a run, ``RUN/tensorboard/``: what is written, and how a resume keeps the curves
free of duplicates.  ``tensorboard --logdir runs/`` shows every run folder as one TensorBoard run.

Tags and their steps:

* ``epoch/<column>`` — every ``history.csv`` metric of an epoch (``seconds``, the losses, D's accuracies
  and outputs, the SSIM tracker's figures when measured) at step = epoch (1, 2, …);
* ``steps/d_loss``, ``steps/g_loss`` — the mean over the last ``tensorboard_every_steps`` steps, at
  step = global step = (epoch − 1) × steps per epoch + step within the epoch (1-based);
* ``grid`` — the epoch's fixed-noise grid (the PNG in ``grids/``) at step = epoch;
* ``evaluation/<figure>`` — the figures of ``evaluate`` at step = the epochs the generator trained.

Training events go to files ending ``.training``, evaluation events to files ending ``.evaluation``.

**Resume.** A killed run may have written events for epochs after its last checkpoint, which the resume
trains again. Before training, :func:`truncate_training_events` rewrites every training event file
without the summaries of those epochs (per-epoch tags: step > restored epoch; per-step tags: step >
restored epoch × steps per epoch), so every step of every curve is in the files once. (TensorBoard
itself would hide the stale points when it sees a step go backwards, but only in its display; other
readers of the files would see both.) A re-evaluation likewise replaces the figures at its step.
The step numbering assumes the steps per epoch stay the same across a resume (a ``--force`` resume
with another batch size stretches the per-step axis from then on).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import tensorflow as tf
from tensorflow.core.util import event_pb2

from . import runs
from .config import Config
from .files import remove_orphaned_temporaries, temporary_name

TRAINING_SUFFIX = ".training"
EVALUATION_SUFFIX = ".evaluation"
EPOCH_PREFIX = "epoch/"
STEP_PREFIX = "steps/"
GRID_TAG = "grid"
EVALUATION_PREFIX = "evaluation/"
#: Losses logged every N steps (the names of DCGAN's metrics).
STEP_LOSSES = ("d_loss", "g_loss")
_REWRITE_STEM = "rewrite"  # a rewrite in progress: .rewrite.tmp-PID-TAG, no "tfevents", so TensorBoard skips it


def open_writer(folder: str | os.PathLike, suffix: str = TRAINING_SUFFIX) -> tf.summary.SummaryWriter:
    """A new event file in ``folder`` (created), named ``events.out.tfevents.<time>.<host>.<pid>…<suffix>``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return tf.summary.create_file_writer(str(folder), filename_suffix=suffix)


def read_png(path: str | os.PathLike) -> tf.Tensor:
    """A PNG file as a uint8 ``(1, H, W, C)`` batch for ``tf.summary.image``."""
    return tf.io.decode_png(tf.io.read_file(str(path)))[None]


def write_epoch(writer: tf.summary.SummaryWriter, row: Mapping[str, float], grid_png: str | os.PathLike | None) -> None:
    """One finished epoch: every finite value of its ``history.csv`` ``row`` as ``epoch/<column>`` and the
    grid PNG as ``grid``, at step = ``row["epoch"]``."""
    epoch = int(row["epoch"])
    with writer.as_default(step=epoch):
        for key, value in row.items():
            if key != "epoch" and math.isfinite(float(value)):
                tf.summary.scalar(EPOCH_PREFIX + key, float(value))
        if grid_png is not None and Path(grid_png).is_file():
            tf.summary.image(GRID_TAG, read_png(grid_png))
    writer.flush()


def write_steps(writer: tf.summary.SummaryWriter, step: int, values: Mapping[str, float]) -> None:
    """``steps/<name>`` scalars at global step ``step``."""
    with writer.as_default(step=step):
        for name, value in values.items():
            tf.summary.scalar(STEP_PREFIX + name, float(value))


class StepWindow:
    """Means over windows of steps, recovered from Keras' epoch-to-date means.

    ``fit()`` reports after step k of an epoch the mean ``m_k`` of the epoch's first k values; the mean of
    steps j+1 … k is therefore ``(k·m_k − j·m_j) / (k − j)``. :meth:`close` returns it for the window
    since the previous call (or the epoch's start, :meth:`reset`).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.means: dict[str, float] = {}

    def close(self, count: int, means: Mapping[str, float]) -> dict[str, float]:
        """``count`` = steps of the epoch so far, ``means`` = their epoch-to-date means."""
        width = count - self.count
        if width <= 0:
            raise ValueError(f"step count must grow: {self.count} then {count}")
        window = {name: (count * float(mean) - self.count * self.means.get(name, 0.0)) / width
                  for name, mean in means.items()}
        self.count, self.means = count, {name: float(mean) for name, mean in means.items()}
        return window


# ------------------------------------------------------------------------------------------------
# reading and rewriting event files
def event_files(folder: str | os.PathLike, suffix: str = "") -> list[Path]:
    """The event files in ``folder`` (those ending ``suffix``), oldest name first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if "tfevents" in p.name and p.name.endswith(suffix) and p.is_file())


def read_events(path: str | os.PathLike) -> tuple[list[Any], bool]:
    """``(events, complete)``: the ``Event`` protos of one file; ``complete`` is False when the file ends in
    a partly written record (a writer killed mid-record), whose readable events are still returned."""
    events = []
    try:
        # tf.data rather than tf.compat.v1.train.summary_iterator, which prints a deprecation warning
        for record in tf.data.TFRecordDataset(str(path)):
            events.append(event_pb2.Event.FromString(record.numpy()))
    except tf.errors.DataLossError:
        return events, False
    return events, True


def scalars(folder: str | os.PathLike, suffix: str = "") -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), …]}`` of every scalar summary in the folder's event files, in file order."""
    found: dict[str, list[tuple[int, float]]] = {}
    for path in event_files(folder, suffix):
        for event in read_events(path)[0]:
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    found.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return found


def images(folder: str | os.PathLike, suffix: str = "") -> dict[str, list[int]]:
    """``{tag: [step, …]}`` of every image summary in the folder's event files, in file order."""
    found: dict[str, list[int]] = {}
    for path in event_files(folder, suffix):
        for event in read_events(path)[0]:
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "images":
                    found.setdefault(value.tag, []).append(event.step)
    return found


def _rewrite(path: Path, keep: Callable[[Any], bool]) -> int:
    """Rewrite one event file with only the events ``keep`` accepts (atomically), or delete it when no
    summary is left; the number of events dropped."""
    events, complete = read_events(path)
    kept = [event for event in events if keep(event)]
    dropped = len(events) - len(kept)
    if dropped == 0 and complete:
        return 0
    if not any(event.summary.value for event in kept):  # only the file-version header would remain
        path.unlink()
        return dropped
    tmp = path.with_name(temporary_name(_REWRITE_STEM))
    try:
        with tf.io.TFRecordWriter(str(tmp)) as records:
            for event in kept:
                records.write(event.SerializeToString())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return dropped


def _summary_steps_at_most(limits: Callable[[str], int]) -> Callable[[Any], bool]:
    def keep(event: Any) -> bool:
        return all(event.step <= limits(value.tag) for value in event.summary.value)
    return keep


def remove_rewrite_leftovers(folder: str | os.PathLike) -> None:
    """Delete what a rewrite killed half-way left behind (rewrites of live processes are kept)."""
    remove_orphaned_temporaries(folder, stem=_REWRITE_STEM)


def truncate_training_events(folder: str | os.PathLike, epoch: int, steps_per_epoch: int) -> int:
    """Drop the training summaries after ``epoch`` (see the module docstring); return how many were dropped."""
    remove_rewrite_leftovers(folder)
    keep = _summary_steps_at_most(
        lambda tag: epoch * steps_per_epoch if tag.startswith(STEP_PREFIX) else epoch)
    return sum(_rewrite(path, keep) for path in event_files(folder, TRAINING_SUFFIX))


def write_evaluation_figures(folder: str | os.PathLike, step: int, figures: Iterable[tuple[str, Path]]) -> None:
    """The evaluation's figures (``(name, png path)``) as ``evaluation/<name>`` images at ``step``,
    replacing those an earlier evaluation wrote at the same step."""
    figures = list(figures)
    remove_rewrite_leftovers(folder)
    for path in event_files(folder, EVALUATION_SUFFIX):
        _rewrite(path, lambda event: not (event.step == step and len(event.summary.value) > 0))
    writer = open_writer(folder, EVALUATION_SUFFIX)
    with writer.as_default(step=step):
        for name, png in figures:
            tf.summary.image(EVALUATION_PREFIX + name, read_png(png))
    writer.close()


def log_evaluation(run_dir: str | os.PathLike, config: Config, figures: Iterable[str | os.PathLike]) -> None:
    """``evaluate``'s figures (PNG paths) into ``run_dir/tensorboard`` as ``evaluation/<file stem>`` at the
    run's last epoch; nothing when the run's ``config.tensorboard`` is off."""
    if not config.tensorboard:
        return
    history = runs.read_history(Path(run_dir) / runs.HISTORY_FILE)
    step = int(history[-1]["epoch"]) if history else 0
    write_evaluation_figures(Path(run_dir) / runs.TENSORBOARD_DIR, step, [(Path(p).stem, Path(p)) for p in figures])


__all__ = ["TRAINING_SUFFIX", "EVALUATION_SUFFIX", "EPOCH_PREFIX", "STEP_PREFIX", "GRID_TAG", "EVALUATION_PREFIX",
           "STEP_LOSSES", "open_writer", "read_png", "write_epoch", "write_steps", "StepWindow", "event_files",
           "read_events", "scalars", "images", "truncate_training_events", "remove_rewrite_leftovers",
           "write_evaluation_figures", "log_evaluation"]
