"""Training a run: :func:`train` (and :func:`ensure_run` for notebooks) — data, GAN, callbacks, ``fit()``.

A run reads its data (:mod:`dcganlib.data`), builds the :class:`~dcganlib.gan.DCGAN` for the hardware
(:mod:`dcganlib.hardware`), restores the latest checkpoint on a resume, and lets ``fit()`` drive the
train step while the callbacks (:mod:`dcganlib.callbacks`) fill the run folder (:mod:`dcganlib.runs`)
epoch by epoch. At the end it exports ``generator.keras`` and the GIF of the grids.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from . import data, disk, runs, summaries, tracking
from .callbacks import (DivergenceGuard, LearningRateDecay, ManifestUpdater, QualityTracker, RunRecorder, StopRequest, StopState,
                        TensorBoardLogger, UnlessStopped, stop_on_signals)
from .cluster import WorkerRole, scratch_folder, stop_when_worker_lost, worker_role
from .config import Config, read_saved_config
from .errors import ConfigError, DivergenceError
from .gan import DCGAN, build_gan, make_checkpoint, restore_newest, set_learning_rate
from .hardware import resolve_jit_compile, resolve_precision, resolve_strategy
from .images import make_run_gif
from .manifest import RunManifest
from .models import check_image_size
from .pixels import to_float
from .progress import note
from .sampling import load_generator, save_generator

#: Real validation images the SSIM tracker compares with every epoch (its cost grows linearly).
SSIM_REFERENCE_SIZE = 256


@dataclass
class TrainResult:
    """What :func:`train` returns: the folder, the full history, the trained generator — what
    ``generator.keras`` holds: the best epoch's (``best_epoch``) when the run tracked quality, else the
    last epoch's; the averaged copy when ``config.ema > 0`` —, epochs done, the precision used and the
    wall-clock seconds of the call."""

    run_dir: Path
    history: list[dict[str, float]]
    generator: keras.Model
    epochs_completed: int
    precision: str = "float32"
    seconds: float = 0.0
    best_epoch: Optional[int] = None


def resolve_verbose(config: Config) -> int:
    """Keras verbosity: ``config.verbose``, or a progress bar in a terminal and one line per epoch otherwise."""
    if config.verbose is not None:
        return config.verbose
    return 1 if sys.stdout.isatty() else 2


def train(config: Config, run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
          force: bool = False, callbacks: Optional[Sequence[keras.callbacks.Callback]] = None,
          lr_scale: float = 1.0) -> TrainResult:
    """Train a DCGAN on ``config.data`` (or the embedded demo) into ``run_dir`` (layout: :mod:`dcganlib.runs`).

    * A new run needs an empty or absent ``run_dir``; ``overwrite=True`` deletes the run artefacts of an
      existing one first; ``resume=True`` restores the latest checkpoint and trains up to
      ``config.epochs`` in total (a run already there returns at once).
    * ``force=True`` lets a resume continue with settings that differ from the saved ``config.json``
      (e.g. a lower learning rate after a divergence); the new config is saved.
    * ``lr_scale`` multiplies both learning rates of ``config`` (after the resume check, so a resume needs
      no ``force`` for it): ``train(saved_config, run_dir, resume=True, lr_scale=0.5)`` continues a
      diverged run from its last good checkpoint at half the rates, and saves them in ``config.json``.
    * ``callbacks`` are extra Keras callbacks, run after the library's own.
    * ``config.strategy == "multi_worker"``: this process is one worker of the cluster in ``TF_CONFIG``
      (:mod:`dcganlib.cluster`), started with the same arguments as the others. The chief writes
      ``run_dir`` as above; the others write nothing there (they read it on a resume) and save their share
      of each checkpoint into a scratch folder they delete. A worker that dies stops the others with
      :class:`WorkerLostError`; every worker then resumes with ``resume=True``.

    Raises :class:`ConfigError` / :class:`RunFolderError` / :class:`DataError` before any training for a
    problem the user can fix (including too little free disk for the checkpoints), and
    :class:`DivergenceError` if a loss becomes NaN/Inf (the last good checkpoint stays on disk; resume
    with ``lr_scale`` < 1), :class:`WorkerLostError` when another worker of a multi-worker run is gone.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    role = worker_role(config)  # a bad TF_CONFIG fails here, before TensorFlow waits for workers
    check_image_size(config.image_size)
    runs.check_run_folder(config, run_dir, resume, overwrite, force, writer=role.is_chief)
    scaled = scale_learning_rates(config, lr_scale)  # a bad scale fails here, before the folder is touched
    # Before TensorFlow runs anything: MultiWorkerMirroredStrategy configures this process's collective
    # ops, and waits here until every worker has started.
    strategy = resolve_strategy(config)
    _check_replicas(config, strategy)
    precision, jit_compile = resolve_precision(config), resolve_jit_compile(config)  # refused here, not after the data
    with contextlib.ExitStack() as held:
        held.enter_context(stop_when_worker_lost(role, run_dir))  # in a cluster, a dead worker stops the rest
        checkpoint_dir = _claim_folder(config, run_dir, role, held, resume=resume, overwrite=overwrite, force=force)
        config = scaled
        splits = _load_training_data(config)
        for message in splits.notes() if role.is_chief else ():
            note(message)
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            gan = build_gan(config, precision, jit_compile)
            needed = _make_room(gan, config, run_dir, role, resume=resume, overwrite=overwrite)
        with disk.stop_when_disk_full(run_dir, needed) if role.is_chief else contextlib.nullcontext():
            with strategy.scope():
                history, initial_epoch = _train_epochs(gan, config, splits, run_dir, checkpoint_dir, role, callbacks,
                                                       resume=resume, precision=precision, strategy=strategy,
                                                       jit_compile=jit_compile)
            generator, best_epoch = gan.sampling_generator(), None
            if role.is_chief:  # still under the lock: nobody else writes here meanwhile
                generator, best_epoch = _finish(generator, run_dir, config)
    completed = history[-1]["epoch"] if history else initial_epoch
    return TrainResult(run_dir, history, generator, completed, precision, time.perf_counter() - started, best_epoch)


def _claim_folder(config: Config, run_dir: Path, role: WorkerRole, held: contextlib.ExitStack, *, resume: bool,
                  overwrite: bool, force: bool) -> Path:
    """The chief creates and locks the run folder (held until ``held`` closes), checks it again under the lock,
    removes a killed writer's temporaries and recovers damaged records on a resume; another worker of a
    cluster gets a scratch folder for its share of each checkpoint. Returns the checkpoint folder."""
    if not role.is_chief:
        return held.enter_context(scratch_folder(role)) / runs.CHECKPOINT_DIR
    runs.create_run_folder(run_dir)
    held.enter_context(runs.run_lock(run_dir))
    # Re-check under the lock: another process may have written here since the first look.
    runs.check_run_folder(config, run_dir, resume, overwrite, force)
    runs.remove_stale_temporaries(run_dir)  # a killed writer's temp files; nobody else writes here now
    for message in runs.recover_records(run_dir) if resume else ():  # damaged records kept aside, said
        note(message)
    return run_dir / runs.CHECKPOINT_DIR


def _make_room(gan: DCGAN, config: Config, run_dir: Path, role: WorkerRole, *, resume: bool,
               overwrite: bool) -> int:
    """The chief refuses a run whose files cannot fit on the disk, then (``overwrite``, once everything is known
    to work: a typo must not cost a run) clears the old run. Returns the bytes the whole run needs."""
    checkpoint_bytes, generator_bytes = _checkpoint_bytes(gan), _variable_bytes(gan.generator.weights)
    if role.is_chief:
        disk.check_free_disk(config, run_dir, checkpoint_bytes, generator_bytes, resume=resume, overwrite=overwrite)
        if overwrite and not resume:
            runs.clear_run_folder(run_dir)
    return disk.disk_needed(config, checkpoint_bytes, generator_bytes)


def _train_epochs(gan: DCGAN, config: Config, splits: data.DatasetSplits, run_dir: Path, checkpoint_dir: Path,
                  role: WorkerRole, callbacks: Optional[Sequence[keras.callbacks.Callback]], *, resume: bool,
                  precision: str, strategy: tf.distribute.Strategy,
                  jit_compile: bool) -> tuple[list[dict[str, float]], int]:
    """Restore the latest checkpoint on a resume, then ``fit()`` the missing epochs with the run's records kept
    (the chief's). Returns the history and the epoch training started from."""
    epoch_variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    # Restore before the manager reads the state file: the restore may rewrite it (fallback).
    history = _restore(gan, epoch_variable, config, run_dir, role.is_chief) if resume else []
    # Every worker saves; a non-chief keeps only the one being written (then deletes it).
    manager = tf.train.CheckpointManager(make_checkpoint(gan, epoch_variable), str(checkpoint_dir),
                                         max_to_keep=config.keep_checkpoints if role.is_chief else 1,
                                         checkpoint_name=runs.CHECKPOINT_NAME)
    initial_epoch = int(epoch_variable.numpy())
    if initial_epoch >= config.epochs:  # a finished run's records stay as they are
        if role.is_chief and _saved_config_differs(run_dir, config):  # unless --force changed settings
            config.to_json(run_dir / runs.CONFIG_FILE)
        if role.is_chief:
            note(f"{run_dir} has already trained {initial_epoch} epochs (the run's total is {config.epochs}); "
                 "nothing to do. Pass a larger --epochs to continue.", kind=None)
        return history, initial_epoch
    if role.is_chief:
        config.to_json(run_dir / runs.CONFIG_FILE)
        splits.save_report(run_dir / runs.SPLIT_FILE)
    manifest = RunManifest(run_dir, config, precision=precision, strategy=strategy, jit_compile=jit_compile,
                           first_epoch=initial_epoch + 1,
                           images_per_epoch=steps_per_epoch(splits, config) * config.batch_size,
                           ) if role.is_chief else None
    if manifest is not None:
        manifest.record(history)
    state = _fit(gan, config, splits, run_dir, manager, epoch_variable, history, initial_epoch, callbacks, role,
                 manifest)
    if manifest is not None:
        manifest.record(history, _status(state, history, config))
    _raise_if_stopped(state, history, initial_epoch, run_dir)
    return history, initial_epoch


def _saved_config_differs(run_dir: Path, config: Config) -> bool:
    """Whether ``config.json`` in ``run_dir`` holds other values (or lacks keys) than ``config``."""
    try:
        saved, missing = read_saved_config(run_dir / runs.CONFIG_FILE)
    except ConfigError:
        return True
    return bool(missing) or saved != config


def _check_replicas(config: Config, strategy: tf.distribute.Strategy) -> None:
    """The global batch must split evenly over the replicas (each takes the same rows of noise and images)."""
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        lower = config.batch_size - config.batch_size % replicas
        which = " (workers × devices each)" if config.strategy == "multi_worker" else ""
        raise ConfigError(f"batch_size {config.batch_size} does not split evenly over the {replicas} replicas of "
                          f"strategy {config.strategy}{which}; use a multiple of {replicas}, "
                          f"e.g. --batch-size {max(lower, replicas)}")


def scale_learning_rates(config: Config, scale: float) -> Config:
    """``config`` with ``g_learning_rate`` and ``d_learning_rate`` multiplied by ``scale`` (> 0)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < math.inf:
        raise ConfigError(f"--lr-scale must be a positive number such as 0.5, got {scale!r}")
    if scale == 1:
        return config
    try:
        return config.replace(g_learning_rate=config.g_learning_rate * scale,
                              d_learning_rate=config.d_learning_rate * scale)
    except ConfigError as exc:
        raise ConfigError(f"--lr-scale {scale} is too large: {exc}") from None


def _load_training_data(config: Config) -> data.DatasetSplits:
    """The run's data, with the one check that needs it: a batch must fit in the train split."""
    splits = data.load_dataset(config)
    n_train = len(splits.train)
    if config.batch_size > n_train:
        raise ConfigError(f"batch_size {config.batch_size} is larger than the {n_train} training images; "
                          f"use --batch-size {max(1, min(64, n_train))} or fewer, or add data")
    return splits


def _variable_bytes(variables: Sequence[Any]) -> int:
    return sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in variables)


def _checkpoint_bytes(gan: DCGAN) -> int:
    """A checkpoint holds every variable of G, D and both optimizers (Adam keeps two moments per weight)."""
    return _variable_bytes(gan.generator.weights + gan.discriminator.weights
                           + gan.g_optimizer.variables + gan.d_optimizer.variables)


def _restore(gan: DCGAN, epoch_variable: tf.Variable, config: Config, run_dir: Path,
             writer: bool = True) -> list[dict[str, float]]:
    """Restore the newest readable checkpoint (older ones when it is damaged) and (``writer``: not a
    non-chief worker, which only reads the folder) make the state file name it; return the history rows up
    to its epoch (later rows are redone)."""
    restored = restore_newest(run_dir, lambda: make_checkpoint(gan, epoch_variable), complete=True,
                              purpose=f"resume {run_dir}",
                              advice="start it again with --overwrite, which deletes "
                                     f"{runs.describe_artefacts(run_dir)}")
    # The optimizers' learning rates are checkpointed too; the config (maybe changed with --force or
    # --lr-scale) decides them.
    set_learning_rate(gan.g_optimizer, config.g_learning_rate)
    set_learning_rate(gan.d_optimizer, config.d_learning_rate)
    epoch = int(epoch_variable.numpy())
    history = [row for row in runs.read_history(run_dir / runs.HISTORY_FILE) if row["epoch"] <= epoch]
    if writer:
        runs.record_checkpoints(run_dir, restored)
    return history


def steps_per_epoch(splits: data.DatasetSplits, config: Config) -> int:
    """Training steps of an epoch: full batches of the train split (``epoch_stream`` drops the last partial one)."""
    return len(splits.train) // config.batch_size


def _status(state: StopState, history: list[dict[str, float]], config: Config) -> str:
    """The manifest status after ``fit()`` returned: diverged, finished, or stopped (a signal, a callback)."""
    if state.diverged_at is not None:
        return "diverged"
    if state.signal_name is not None:
        return "stopped"
    return "finished" if history and history[-1]["epoch"] >= config.epochs else "stopped"


def _fit(gan: DCGAN, config: Config, splits: data.DatasetSplits, run_dir: Path,
         manager: tf.train.CheckpointManager, epoch_variable: tf.Variable, history: list[dict[str, float]],
         initial_epoch: int, extra: Optional[Sequence[keras.callbacks.Callback]], role: WorkerRole,
         manifest: Optional[RunManifest]) -> StopState:
    """``gan.fit()`` from ``initial_epoch`` to ``config.epochs`` with the library's callbacks; how it stopped.
    A non-chief worker of a multi-worker run (``role``) trains and saves its checkpoint share but writes
    nothing into the run folder (no grid, history, run.json, TensorBoard, SSIM figures; ``manifest`` None)."""
    steps = steps_per_epoch(splits, config)
    dataset = data.epoch_stream(splits.train, config.batch_size, steps, seed=config.seed, initial_epoch=initial_epoch,
                                mirror=config.mirror)
    state = StopState()
    stopper = StopRequest(state)
    chief = role.is_chief  # only the chief of a multi-worker run writes the run folder
    own: list[keras.callbacks.Callback] = [DivergenceGuard(state), stopper]
    if config.lr_decay:
        own.append(LearningRateDecay(config))
    if config.track_ssim and chief:  # before the recorder, so its figures land in history.csv
        reference = splits.validate if len(splits.validate) else splits.train
        tracker = QualityTracker(to_float(reference), seed=config.seed, reference_count=SSIM_REFERENCE_SIZE)
        own.append(UnlessStopped(tracker, state))
    probe = _quality_probe(config, splits) if chief else None
    if probe is not None:  # before the recorder, so its figures land in history.csv
        own.append(UnlessStopped(tracking.ValidationTracker(probe, config.eval_every, config.epochs), state))
    own.append(RunRecorder(run_dir, config, manager, epoch_variable, history, state, chief=chief))
    quality = lambda: None  # noqa: E731 - the manifest's record of tracked quality
    if probe is not None:
        best = (tracking.resume_best(run_dir, history, initial_epoch, gan.sampling_generator()) if initial_epoch
                else tracking.BestSoFar())
        own.append(tracking.BestGeneratorKeeper(run_dir, history, best))
        quality = lambda: {**probe.describe(), **best.record(), "eval_every": config.eval_every}  # noqa: E731
    if manifest is not None:
        own.append(ManifestUpdater(manifest, history, state, quality))
    if config.tensorboard and chief:
        # A killed run may have logged epochs after its checkpoint; they are trained again now.
        summaries.truncate_training_events(run_dir / runs.TENSORBOARD_DIR, initial_epoch, steps)
        own.append(TensorBoardLogger(run_dir, history, state, steps, config.tensorboard_every_steps))
    with stop_on_signals(stopper):
        gan.fit(dataset, epochs=config.epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                shuffle=False, verbose=resolve_verbose(config) if chief else 0, callbacks=own + list(extra or []))
    return state


def _quality_probe(config: Config, splits: data.DatasetSplits) -> Optional[tracking.QualityProbe]:
    """The per-epoch quality probe of the run (None when ``eval_every`` is 0 or the validate split is too small,
    with a note saying so)."""
    if not config.eval_every:
        return None
    probe = tracking.make_probe(splits.validate, splits.train, config.latent_dim, config.seed)
    if probe is None:
        note(f"the validate split has {len(splits.validate)} images, fewer than the {tracking.MIN_REFERENCE} the "
             "per-epoch quality figures need: none are tracked and the last epoch's generator is exported")
    return probe


def _raise_if_stopped(state: StopState, history: list[dict[str, float]], initial_epoch: int, run_dir: Path) -> None:
    """A divergence becomes :class:`DivergenceError`; a signal a one-line note and ``KeyboardInterrupt``."""
    if state.diverged_at is not None:
        epoch, step = state.diverged_at
        raise DivergenceError(
            f"training diverged: a loss became NaN/Inf at epoch {epoch}, step {step}; {runs.checkpoint_kept(run_dir)}. "
            f"Continue from it at half the learning rates: --resume --lr-scale 0.5 --out {run_dir}")
    if state.signal_name is not None:
        done = history[-1]["epoch"] if history else initial_epoch
        note(f"stopped by {state.signal_name} after epoch {done}; {runs.checkpoint_kept(run_dir)}; "
             f"continue with --resume --out {run_dir}", kind=None)
        raise KeyboardInterrupt


def _finish(generator: keras.Model, run_dir: Path, config: Config) -> tuple[keras.Model, Optional[int]]:
    """``generator.keras`` from the best epoch's generator when the run tracks quality (else ``generator``,
    the last epoch's), and the GIF of the grids; the exported generator and the best epoch (or None)."""
    best_epoch = tracking.export_best(run_dir) if config.eval_every else None
    if best_epoch is None:
        save_generator(generator, run_dir / runs.GENERATOR_FILE)
    else:
        generator = load_generator(run_dir)
    if runs.epoch_grids(run_dir):
        make_run_gif(run_dir, frame_ms=config.gif_frame_ms)
    return generator, best_epoch


def ensure_run(config: Config, run_dir: str | os.PathLike,
               callbacks: Optional[Sequence[keras.callbacks.Callback]] = None) -> Path:
    """A finished run of ``config`` in ``run_dir``: the folder as it is if it holds one, else train it.

    * ``generator.keras`` and ``config.json`` present: nothing is trained; the saved config must equal
      ``config`` up to ``epochs``/``verbose`` (else :class:`ConfigError` naming the differences);
    * ``config.json`` and a checkpoint but no final generator (an interrupted run): resumed;
    * absent or empty folder: trained from scratch. Any other content raises :class:`RunFolderError`
      (never deleted).

    Lets a notebook evaluate the run an earlier notebook trained, or train it itself when run alone.
    """
    run_dir = Path(run_dir)
    saved = run_dir / runs.CONFIG_FILE
    if saved.is_file():
        saved_config, missing = read_saved_config(saved)
        differences = saved_config.describe_diff(config, ("saved", "asked"), missing=missing)
        if differences:
            raise ConfigError(f"{run_dir} holds a run with other settings ({differences}); use another run "
                              "folder or delete it")
        if (run_dir / runs.GENERATOR_FILE).is_file():
            return run_dir
        if runs.latest_checkpoint(run_dir) is not None:
            return train(config, run_dir, resume=True, callbacks=callbacks).run_dir
    return train(config, run_dir, callbacks=callbacks).run_dir


__all__ = ["TrainResult", "train", "ensure_run", "scale_learning_rates", "resolve_verbose", "steps_per_epoch",
           "SSIM_REFERENCE_SIZE"]
