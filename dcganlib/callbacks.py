"""The Keras callbacks of a training run: stop on NaN or a signal, record each epoch, track SSIM, show grids.

:func:`dcganlib.training.train` hands ``fit()`` these, in this order:

1. :class:`DivergenceGuard` — stops at the first non-finite loss and remembers where;
2. :class:`StopRequest` — stops after the current step when SIGINT/SIGTERM arrives;
3. :class:`QualityTracker` (``track_ssim``), wrapped in :class:`UnlessStopped` — adds the per-epoch
   SSIM figures to the epoch's logs, before the recorder writes them;
4. :class:`RunRecorder` — writes the epoch's grid, history row and checkpoint;
5. :class:`ManifestUpdater` — the epoch's timing into ``run.json`` (:mod:`dcganlib.manifest`);
6. :class:`TensorBoardLogger` (``tensorboard``) — losses every N steps, the epoch's row and grid
   (:mod:`dcganlib.summaries`);
7. the caller's callbacks, e.g. :func:`grid_display_callback` in a notebook.

The first two share one :class:`StopState`; the others read it to leave a broken or partial epoch off disk.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import keras
import numpy as np
import tensorflow as tf

from . import runs, seeds, summaries
from .config import Config
from .gan import set_learning_rate
from .manifest import RunManifest
from .metrics.ssim_family import best_match_ssim, mean_pairwise_ssim
from .pixels import as_float_images
from .sampling import fixed_noise, save_grid_of


@dataclass
class StopState:
    """Why training stopped early, if it did: a non-finite loss (epoch, step; 1-based) or a signal's name."""

    diverged_at: Optional[tuple[int, int]] = None
    signal_name: Optional[str] = None

    @property
    def stopped(self) -> bool:
        return self.diverged_at is not None or self.signal_name is not None


class DivergenceGuard(keras.callbacks.Callback):
    """Stop training at the first non-finite ``d_loss`` / ``g_loss`` and record where in ``state``.

    Unlike ``keras.callbacks.TerminateOnNaN`` it records the epoch (1-based) and step so :func:`train`
    can raise :class:`~dcganlib.errors.DivergenceError` naming them, and the recorder skips the broken epoch.
    """

    def __init__(self, state: Optional[StopState] = None) -> None:
        super().__init__()
        self.state = state if state is not None else StopState()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.state.diverged_at is not None or not logs:
            return
        for name in ("d_loss", "g_loss"):
            if name in logs and not math.isfinite(float(logs[name])):
                self.state.diverged_at = (self._epoch, batch + 1)
                self.model.stop_training = True
                return


class StopRequest(keras.callbacks.Callback):
    """Stop after the current step when SIGINT/SIGTERM arrives (the cluster pre-empting the job).

    The interrupted epoch is not checkpointed; ``--resume`` redoes it from the last checkpoint.
    """

    def __init__(self, state: Optional[StopState] = None) -> None:
        super().__init__()
        self.state = state if state is not None else StopState()

    def request(self, signum, frame=None) -> None:
        self.state.signal_name = signal.Signals(signum).name
        if self.model is not None:
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        if self.state.signal_name is not None:
            self.model.stop_training = True


@contextlib.contextmanager
def stop_on_signals(stopper: StopRequest) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``stopper`` while the block runs (main thread only; restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, stopper.request)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class RunRecorder(keras.callbacks.Callback):
    """Per finished epoch: the fixed-noise grid, the history row, then (every k epochs) the checkpoint.

    One callback, in that order, so that a process killed at any point leaves a consistent folder: the
    checkpoint is the last thing written, and a resume drops history rows newer than the checkpoint.

    ``chief=False`` is a worker of a multi-worker run other than the chief: it writes no grid and no
    history, and takes part in every checkpoint save (TensorFlow's multi-worker pattern: every worker
    saves) into its ``manager``'s scratch folder, which it deletes right after.
    """

    def __init__(self, run_dir: Path, config: Config, manager: tf.train.CheckpointManager,
                 epoch_variable: tf.Variable, history: list[dict[str, float]], state: StopState, *,
                 chief: bool = True) -> None:
        super().__init__()
        self.chief = chief
        self.run_dir = run_dir
        self.config = config
        self.manager = manager
        self.epoch_variable = epoch_variable
        self.history = history
        self.state = state
        self.noise = fixed_noise(config)
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.state.stopped:  # a partial or broken epoch: keep the last good state on disk
            return
        number = epoch + 1
        if self.chief:
            save_grid_of(self.model.sampling_generator(), self.noise, runs.grid_path(self.run_dir, number),
                         label=f"epoch {number}")
        row: dict[str, float] = {"epoch": number, "seconds": round(time.perf_counter() - self._started, 3)}
        for key, value in (logs or {}).items():
            row[key] = float(value)
        self.history[:] = [r for r in self.history if r["epoch"] < number] + [row]
        if self.chief:
            runs.write_history(self.run_dir / runs.HISTORY_FILE, self.history)
        self.epoch_variable.assign(number)
        if number % self.config.checkpoint_every == 0 or number == self.config.epochs:
            self.manager.save(checkpoint_number=number)
            if not self.chief:
                shutil.rmtree(self.manager.directory, ignore_errors=True)


class ManifestUpdater(keras.callbacks.Callback):
    """After each recorded epoch: ``run.json`` from the run's ``history`` (the rows :class:`RunRecorder` keeps)
    and ``quality()`` (the tracked-quality record, None when the run tracks none)."""

    def __init__(self, manifest: RunManifest, history: list[dict[str, float]], state: StopState,
                 quality: Callable[[], Optional[dict[str, Any]]] = lambda: None) -> None:
        super().__init__()
        self.manifest = manifest
        self.history = history
        self.state = state
        self.quality = quality

    def on_epoch_end(self, epoch, logs=None):
        if not self.state.stopped:
            self.manifest.record(self.history, quality=self.quality())


class TensorBoardLogger(keras.callbacks.Callback):
    """TensorBoard events of training into ``run_dir/tensorboard`` (tags and steps: :mod:`dcganlib.summaries`).

    Every ``every_steps`` steps (and at an epoch's last step) the mean ``d_loss``/``g_loss`` of the
    steps since the last point; after each recorded epoch the epoch's ``history`` row and grid. Place
    it after :class:`RunRecorder`, whose row and grid it reads. ``steps_per_epoch`` numbers the steps.
    """

    def __init__(self, run_dir: Path, history: list[dict[str, float]], state: StopState, steps_per_epoch: int,
                 every_steps: int) -> None:
        super().__init__()
        self.run_dir, self.history, self.state = run_dir, history, state
        self.steps_per_epoch, self.every_steps = steps_per_epoch, every_steps
        self.window = summaries.StepWindow()
        self.writer: Optional[tf.summary.SummaryWriter] = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.writer = summaries.open_writer(self.run_dir / runs.TENSORBOARD_DIR)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self.window.reset()

    def on_train_batch_end(self, batch, logs=None):
        count = batch + 1
        if self.state.stopped or not logs or (count % self.every_steps and count != self.steps_per_epoch):
            return
        means = {name: float(logs[name]) for name in summaries.STEP_LOSSES if name in logs}
        summaries.write_steps(self.writer, self._epoch * self.steps_per_epoch + count, self.window.close(count, means))

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        if self.state.stopped or not self.history or self.history[-1]["epoch"] != number:
            return
        summaries.write_epoch(self.writer, self.history[-1], runs.grid_path(self.run_dir, number))

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()


def decayed_rate(rate: float, decay: float, epoch: int, epochs: int) -> float:
    """The learning rate of 0-based ``epoch`` of ``epochs`` under linear decay: ``rate · (1 − decay · epoch /
    (epochs − 1))``, i.e. ``rate`` in the first epoch and ``(1 − decay) · rate`` in the last."""
    return rate * (1.0 - decay * epoch / max(epochs - 1, 1))


class LearningRateDecay(keras.callbacks.Callback):
    """Sets both optimizers' learning rates at the start of every epoch (:func:`decayed_rate`), so a resumed
    run continues the schedule of an uninterrupted one."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config

    def on_epoch_begin(self, epoch, logs=None):
        c = self.config
        set_learning_rate(self.model.g_optimizer, decayed_rate(c.g_learning_rate, c.lr_decay, epoch, c.epochs))
        set_learning_rate(self.model.d_optimizer, decayed_rate(c.d_learning_rate, c.lr_decay, epoch, c.epochs))


class UnlessStopped(keras.callbacks.Callback):
    """Run ``inner``'s epoch-end hook only while training has not stopped (a NaN epoch's images are NaN)."""

    def __init__(self, inner: keras.callbacks.Callback, state: StopState) -> None:
        super().__init__()
        self.inner = inner
        self.state = state

    def set_model(self, model):
        super().set_model(model)
        self.inner.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self.inner.set_params(params)

    def on_train_begin(self, logs=None):
        self.inner.on_train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        self.inner.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if not self.state.stopped:
            self.inner.on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        self.inner.on_train_end(logs)


class QualityTracker(keras.callbacks.Callback):
    """Per-epoch SSIM of a fixed generated sample, written into the epoch's ``logs`` (history.csv columns).

    Every ``every`` epochs (and always after the first and the last) the model's generator turns one
    fixed noise batch (``sample_count`` × ``latent_dim``, stream "tracker-noise") into images, and the
    tracker adds ``logs["ssim_best_match"]`` (mean best-match SSIM against a fixed real ``reference`` of
    at most ``reference_count`` images, stream "tracker-reference") and ``logs["ssim_diversity"]``
    (mean pairwise SSIM of the generated sample; compare with the real reference's, stored as
    :attr:`reference_diversity`). Other epochs get NaN, so CSV columns stay aligned. Place it *before*
    the recorder. ``latent_dim=None`` reads it from the generator's input. ≈ 0.1–0.3 s per epoch at 64 px.

    It is the course projects' "SSIM over epochs" curve: a cheap trend on a small sample, not a verdict
    on quality (``python -m dcganlib evaluate`` gives that).
    """

    def __init__(self, reference: Any, latent_dim: Optional[int] = None, sample_count: int = 64, seed: int = 0,
                 every: int = 1, reference_count: int = 256) -> None:
        super().__init__()
        reference = as_float_images(reference, "reference")
        if len(reference) == 0:
            raise ValueError("QualityTracker needs at least one real reference image")
        if every < 1 or sample_count < 2:
            raise ValueError(f"QualityTracker: every must be >= 1 and sample_count >= 2; got {every}, {sample_count}")
        if len(reference) > reference_count:
            pick = seeds.rng(seed, "tracker-reference").choice(len(reference), reference_count, replace=False)
            reference = reference[np.sort(pick)]
        self.reference = reference
        self.latent_dim = latent_dim
        self.sample_count = sample_count
        self.seed = seed
        self.every = every
        self._noise: Optional[np.ndarray] = None
        self.reference_diversity = mean_pairwise_ssim(reference) if len(reference) > 1 else float("nan")

    def _generator(self) -> keras.Model:
        # A DCGAN samples from sampling_generator() (its EMA copy when it keeps one); any model with a
        # .generator works too.
        sampler = getattr(self.model, "sampling_generator", None)
        if sampler is not None:
            return sampler()
        generator = getattr(self.model, "generator", None)
        if generator is None:
            raise TypeError("QualityTracker must be attached to a model with a .generator (dcganlib DCGAN)")
        return generator

    def noise(self) -> np.ndarray:
        if self._noise is None:
            dim = self.latent_dim or int(self._generator().input_shape[-1])
            self._noise = seeds.rng(self.seed, "tracker-noise").standard_normal(
                (self.sample_count, dim)).astype(np.float32)
        return self._noise

    def measure(self) -> dict[str, float]:
        """Generate the fixed sample now and return the two figures."""
        images = np.asarray(self._generator()(self.noise(), training=False), dtype=np.float32)
        images = np.clip(images, -1.0, 1.0)
        return {"ssim_best_match": float(best_match_ssim(images, self.reference).scores.mean()),
                "ssim_diversity": mean_pairwise_ssim(images)}

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if logs is None:
            return
        if epoch == 0 or (epoch + 1) % self.every == 0 or epoch == (self.params or {}).get("epochs", 0) - 1:
            logs.update(self.measure())
        else:
            logs.update({"ssim_best_match": float("nan"), "ssim_diversity": float("nan")})


def grid_display_callback(run_dir: str | Path, *, every: int = 1, width: Optional[int] = 320):
    """A callback that shows the run's fixed-noise grid of every ``every``-th epoch and the last, inline.

    Pass it to :func:`dcganlib.training.train` (``callbacks=[...]``): extra callbacks run after the
    library's own, so the grid of an epoch is on disk when the epoch ends. It is shown when the next
    epoch begins (or training ends), i.e. after Keras has printed the epoch's final progress line, so a
    notebook reads "epoch N: progress bar, grid".
    """
    from .images import show_epoch_grid

    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer number of epochs, got {every!r}")
    pending: list[int] = []  # the finished epoch whose grid is still to be shown

    def on_epoch_end(epoch: int, logs: Any = None) -> None:
        if (epoch + 1) % every == 0 or epoch + 1 == (callback.params or {}).get("epochs"):
            pending.append(epoch + 1)

    def show_pending(*_: Any) -> None:
        while pending:
            show_epoch_grid(run_dir, pending.pop(0), width=width)

    callback = keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end, on_epoch_begin=show_pending,
                                              on_train_end=show_pending)
    return callback


__all__ = ["StopState", "DivergenceGuard", "StopRequest", "stop_on_signals", "RunRecorder", "ManifestUpdater",
           "LearningRateDecay", "decayed_rate",
           "TensorBoardLogger", "UnlessStopped",
           "QualityTracker", "grid_display_callback"]
