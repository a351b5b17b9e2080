"""Training: the GAN as a ``keras.Model``, the callbacks that fill a run folder, :func:`train`, sampling.

A run folder holds everything needed to watch, resume and use a run::

    config.json        the Config of the run (atomic JSON)
    split.json         the data audit of dcganlib.data (sources, per-split subjects and counts)
    history.csv        one row per finished epoch: epoch, seconds, every metric (rewritten atomically)
    grids/epoch_0001.png  generator output for the SAME fixed noise every epoch, labelled "epoch N"
    training.gif       the grids as an animation (rebuilt at the end of train())
    checkpoints/       tf.train.CheckpointManager: G, D, both optimizers, epoch, noise RNG state
    generator.keras    the final generator (Keras format, loaded with safe_mode=True)
    train.lock         held while a process trains into the folder

The train step (:meth:`DCGAN.train_step`) is the simultaneous update of the TensorFlow DCGAN tutorial:
one generator forward ``G(z)`` feeds both losses, the discriminator sees the real and the fake batch
in two calls (so its batch norms never mix real and fake statistics, Radford et al. §4), and both
networks are updated once from gradients taken at the same weights.

Images inside are float32 in ``[-1, 1]``, NHWC; everything written to disk is uint8.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import tensorflow as tf
import keras

from .config import Config
from .errors import ConfigError, DivergenceError, RunFolderError
from .files import atomic_path, write_text

CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
HISTORY_FILE = "history.csv"
GRIDS_DIR = "grids"
GIF_FILE = "training.gif"
CHECKPOINT_DIR = "checkpoints"
GENERATOR_FILE = "generator.keras"
LOCK_FILE = "train.lock"
#: Everything train() writes; --overwrite deletes exactly these and nothing else.
RUN_ARTEFACTS = (CONFIG_FILE, SPLIT_FILE, HISTORY_FILE, GRIDS_DIR, GIF_FILE, CHECKPOINT_DIR, GENERATOR_FILE,
                 "metrics.json", "evaluation", "generated")
#: Metrics of :class:`DCGAN`, in history.csv column order.
METRIC_NAMES = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "d_real", "d_fake")
#: Real validation images the SSIM tracker compares with every epoch (its cost grows linearly).
SSIM_REFERENCE_SIZE = 256

# Measured on this project's 2-core AMD EPYC VM (AVX-512 + AVX512_BF16, no AMX), this module's step run
# by fit(), 64 px, batch 64, default widths, 6 interleaved repeats of 8 steps (the VM's CPU share
# fluctuates, so the spread is wide): images/s median (best)
#   float32 74 (134) · float32 + XLA 50 (78) · mixed_bfloat16 107 (194) · mixed_bfloat16 + XLA 50 (55).
# XLA is slower on this CPU (as issue 6 found for the tutorial step: 52 vs 70), so it is off by default
# on CPU; bf16 is ~1.45x float32, so "auto" picks it on CPUs with native bf16.
_DEFAULT_JIT_COMPILE_CPU = False


# ================================================================================================
# hardware choices
def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: we cannot tell, so assume no bf16 units
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_supports_bf16() -> bool:
    """True if the CPU has native bfloat16 arithmetic (AVX512_BF16 or AMX-BF16)."""
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def resolve_precision(config: Config) -> str:
    """The Keras dtype policy name for ``config.precision``.

    ``"auto"``: ``mixed_float16`` when a GPU is visible (loss scaling is applied by the train step);
    ``mixed_bfloat16`` on a CPU with native bf16 (AVX512_BF16 / AMX), where it measured faster than
    float32 for this step; otherwise ``float32``. Explicit names are returned unchanged.
    """
    if config.precision != "auto":
        return config.precision
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    if cpu_supports_bf16():
        return "mixed_bfloat16"
    return "float32"


def resolve_strategy(config: Config) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy for ``config.strategy``.

    * ``"auto"``: ``MirroredStrategy`` over all GPUs when more than one is visible, else the default
      one-device strategy;
    * ``"default"``: the default strategy;
    * ``"mirrored"``: ``MirroredStrategy`` over every GPU, or, without GPUs, over every logical CPU device
      (which is how the tests exercise the multi-replica path);
    * ``"multi_worker"``: ``MultiWorkerMirroredStrategy``, configured by the ``TF_CONFIG`` environment
      variable (one process per machine, the same command on each).
    """
    gpus = tuple(d.name for d in tf.config.list_logical_devices("GPU"))
    if config.strategy == "auto":
        return _mirrored(gpus) if len(gpus) > 1 else tf.distribute.get_strategy()
    if config.strategy == "default":
        return tf.distribute.get_strategy()
    if config.strategy == "mirrored":
        return _mirrored(gpus or tuple(d.name for d in tf.config.list_logical_devices("CPU")))
    if config.strategy == "multi_worker":
        return _multi_worker()
    raise ConfigError(f"config key 'strategy' must be auto, default, mirrored or multi_worker; "
                      f"got {config.strategy!r}")


# One strategy object per device set and process: a second MirroredStrategy over the same devices
# reuses collective-op instance keys and aborts with "Shape mismatch in the collective instance"
# (e.g. a notebook calling train() twice).
@lru_cache(maxsize=None)
def _mirrored(devices: tuple[str, ...]) -> tf.distribute.Strategy:
    return tf.distribute.MirroredStrategy(list(devices))


@lru_cache(maxsize=None)
def _multi_worker() -> tf.distribute.Strategy:
    return tf.distribute.MultiWorkerMirroredStrategy()


def resolve_jit_compile(config: Config) -> bool:
    """``config.jit_compile``, or when None: XLA on GPU, and on CPU whatever measured faster here."""
    if config.jit_compile is not None:
        return config.jit_compile
    if tf.config.list_physical_devices("GPU"):
        return True
    return _DEFAULT_JIT_COMPILE_CPU


def resolve_verbose(config: Config) -> int:
    """Keras verbosity: ``config.verbose``, or a progress bar in a terminal and one line per epoch otherwise."""
    if config.verbose is not None:
        return config.verbose
    return 1 if sys.stdout.isatty() else 2


def fixed_noise(config: Config, count: Optional[int] = None) -> np.ndarray:
    """The grid noise: float32 ``(count or config.grid_size, latent_dim)`` from N(0, I).

    A pure function of ``config.seed``, so every epoch's grid (and a resumed run's grids) shows the
    same ``z`` and the GIF frames are comparable.
    """
    rng = np.random.default_rng([config.seed, 0x6772696420])  # a stream of its own: "grid "
    return rng.standard_normal((count or config.grid_size, config.latent_dim)).astype(np.float32)


# ================================================================================================
# the model
class DCGAN(keras.Model):
    """Generator and discriminator trained together by :meth:`fit` (one D and one G update per batch).

    ``generator``: ``(B, latent_dim)`` → ``(B, S, S, C)`` in ``[-1, 1]``; ``discriminator``:
    ``(B, S, S, C)`` → logits ``(B, 1)``. ``loss_pair`` is ``(generator_loss(fake_logits),
    discriminator_loss(real_logits, fake_logits))`` from :func:`dcganlib.losses.get_loss_pair`.
    ``fit()`` takes batches of real images (float32 ``[-1, 1]``) and reports the means over the epoch of
    ``d_loss``, ``g_loss``, ``d_acc_real`` (fraction of real logits > 0), ``d_acc_fake`` (fraction of
    fake logits < 0), ``d_real`` (mean σ(D(x))) and ``d_fake`` (mean σ(D(G(z)))).

    The noise comes from a ``keras.random.SeedGenerator(seed)`` owned by the model, whose state is
    checkpointed, so a resumed run draws the noise an uninterrupted one would have drawn.

    ``ema > 0`` keeps an exponential moving average of G's trainable weights, ``w̄ ← ema·w̄ + (1−ema)·w``
    after every G update (Keras' optimizer EMA, so it is checkpointed with ``g_optimizer`` and works
    under any distribution strategy); :meth:`sampling_generator` returns a copy of G holding ``w̄``
    (and G's current batch-norm statistics) for grids, tracking and the exported ``generator.keras``.
    Training itself always uses the raw weights.

    ``augment`` (e.g. ``"translation,cutout"``) passes every image D sees — real and fake, in both
    updates — through :func:`dcganlib.augment.diff_augment` with a fresh seed per call.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, *,
                 loss_pair: tuple[Callable, Callable], latent_dim: int, seed: int, ema: float = 0.0,
                 augment: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.generator_loss, self.discriminator_loss = loss_pair
        self.latent_dim = int(latent_dim)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in METRIC_NAMES}
        self.g_optimizer: Optional[keras.optimizers.Optimizer] = None
        self.d_optimizer: Optional[keras.optimizers.Optimizer] = None
        self.ema = float(ema)
        from .augment import parse_policy

        self.augment = parse_policy(augment)
        # A second G whose weights are overwritten with the averages on demand (never trained).
        self.averaged_generator = keras.models.clone_model(generator) if self.ema > 0 else None
        self.built = True  # both sub-models are functional models, built at construction

    def compile(self, g_optimizer: keras.optimizers.Optimizer, d_optimizer: keras.optimizers.Optimizer,
                *, jit_compile: bool = False, **kwargs: Any) -> None:
        """Attach one optimizer per network and build their slot variables now.

        Building before any checkpoint restore matters: ``tf.train.Checkpoint`` only restores Adam's
        moments into slots that exist (otherwise the restore is deferred and silently partial).
        """
        super().compile(jit_compile=jit_compile, **kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    def sampling_generator(self) -> keras.Model:
        """The generator to sample from: G itself, or (``ema > 0``) the copy refreshed with G's averages."""
        if self.averaged_generator is None:
            return self.generator
        copy_averaged_weights(self.g_optimizer, self.generator, self.averaged_generator)
        return self.averaged_generator

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        # Listing the trackers here makes fit() reset them at the start of every epoch.
        return list(self.trackers.values())

    def call(self, z, training: bool = False):
        """``G(z)``: ``(B, latent_dim)`` → images ``(B, S, S, C)`` in ``[-1, 1]``."""
        return self.generator(z, training=training)

    def _replica_seed(self) -> tf.Tensor:
        """The next ``(2,)`` seed of the model's generator, distinct per replica (see sample_noise)."""
        seed = self.seed_generator.next()
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            replicas = tf.cast(context.num_replicas_in_sync, seed.dtype)
            replica = tf.cast(context.replica_id_in_sync_group, seed.dtype)
            seed = tf.stack([seed[0], seed[1] * replicas + replica])
        return seed

    def sample_noise(self, batch_size) -> tf.Tensor:
        """``z ~ N(0, I)``, float32 ``(batch_size, latent_dim)``, from the model's seed generator.

        Under a multi-replica strategy every replica folds its replica id into the seed: the seed
        generator's state is mirrored, so without it all replicas would draw the same ``z``.
        """
        return tf.random.stateless_normal((batch_size, self.latent_dim), seed=self._replica_seed(),
                                          dtype=tf.float32)

    def discriminate(self, images: tf.Tensor) -> tf.Tensor:
        """``D(T(images))`` in training mode, ``T`` the DiffAugment policy (identity when off)."""
        if self.augment:
            from .augment import diff_augment

            images = diff_augment(images, self.augment, self._replica_seed())
        return self.discriminator(images, training=True)

    def train_step(self, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        batch_size = tf.shape(real)[0]
        # Optimizers sum gradients over replicas, so each replica contributes (its mean loss) / replicas;
        # the sum is then the gradient of the global-batch mean.
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        z = self.sample_noise(batch_size)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(z, training=True)
            real_logits = self.discriminate(real)
            fake_logits = self.discriminate(fake)
            d_loss = self.discriminator_loss(real_logits, fake_logits)
            g_loss = self.generator_loss(fake_logits)
            # scale_loss multiplies by the dynamic loss scale under LossScaleOptimizer (float16);
            # apply() divides it out again and skips steps whose gradients overflowed.
            d_scaled = self.d_optimizer.scale_loss(d_loss / replicas)
            g_scaled = self.g_optimizer.scale_loss(g_loss / replicas)
        d_variables = self.discriminator.trainable_variables
        g_variables = self.generator.trainable_variables
        d_gradients = d_tape.gradient(d_scaled, d_variables)
        g_gradients = g_tape.gradient(g_scaled, g_variables)
        self.d_optimizer.apply(d_gradients, d_variables)
        self.g_optimizer.apply(g_gradients, g_variables)

        real_logits = tf.cast(real_logits, tf.float32)
        fake_logits = tf.cast(fake_logits, tf.float32)
        values = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_acc_real": tf.reduce_mean(tf.cast(real_logits > 0.0, tf.float32)),
            "d_acc_fake": tf.reduce_mean(tf.cast(fake_logits < 0.0, tf.float32)),
            "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
            "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits)),
        }
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


def copy_averaged_weights(g_optimizer: keras.optimizers.Optimizer, generator: keras.Model,
                          target: keras.Model) -> None:
    """Set ``target`` (same architecture as ``generator``) to the optimizer's moving averages of
    ``generator``'s trainable weights, and to ``generator``'s non-trainable ones (batch-norm moving
    mean/variance, which the optimizer does not average)."""
    inner = getattr(g_optimizer, "inner_optimizer", g_optimizer)
    # Keras keeps the averages in build() order, i.e. generator.trainable_variables order; there is no
    # public accessor in Keras 3.15.
    averages = inner._model_variables_moving_average
    for variable, average in zip(target.trainable_variables, averages, strict=True):
        variable.assign(average)
    for variable, source in zip(target.non_trainable_variables, generator.non_trainable_variables, strict=True):
        variable.assign(source)


def make_optimizers(config: Config, precision: str) -> tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
    """``(g_optimizer, d_optimizer)``: Adam with the config's rates and betas.

    ``config.ema > 0`` makes G's Adam keep the moving average of G's weights (see :class:`DCGAN`).
    Under ``mixed_float16`` both are wrapped in ``LossScaleOptimizer`` (float16 gradients underflow
    without it); ``mixed_bfloat16`` has float32's exponent range and needs no loss scaling.
    """
    optimizers = []
    for name, rate in (("g_adam", config.g_learning_rate), ("d_adam", config.d_learning_rate)):
        ema = {"use_ema": True, "ema_momentum": config.ema} if name == "g_adam" and config.ema > 0 else {}
        optimizer = keras.optimizers.Adam(learning_rate=rate, beta_1=config.beta_1, beta_2=config.beta_2,
                                          name=name, **ema)
        if precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name=f"{name}_loss_scale")
        optimizers.append(optimizer)
    return optimizers[0], optimizers[1]


def build_gan(config: Config, precision: str = "float32", jit_compile: bool = False) -> DCGAN:
    """Build G, D, the :class:`DCGAN` and its compiled optimizers for ``config``.

    Call inside ``strategy.scope()`` for distributed training; sets the global Keras dtype policy to
    ``precision`` first (layers read it when they are created).
    """
    from . import losses, models

    keras.mixed_precision.set_dtype_policy(precision)
    generator = models.build_generator(config)
    discriminator = models.build_discriminator(config)
    gan = DCGAN(generator, discriminator, loss_pair=losses.get_loss_pair(config), latent_dim=config.latent_dim,
                seed=config.seed, ema=config.ema, augment=config.augment, name="dcgan")
    g_optimizer, d_optimizer = make_optimizers(config, precision)
    gan.compile(g_optimizer, d_optimizer, jit_compile=jit_compile)
    return gan


def make_checkpoint(gan: DCGAN, epoch: tf.Variable) -> tf.train.Checkpoint:
    """A ``tf.train.Checkpoint`` of everything a resume needs: both networks (including batch-norm
    moving statistics), both optimizers (step counters and Adam moments), the epoch counter and the
    noise generator's state."""
    return tf.train.Checkpoint(generator=gan.generator, discriminator=gan.discriminator,
                               g_optimizer=gan.g_optimizer, d_optimizer=gan.d_optimizer,
                               epoch=epoch, noise_seed=gan.seed_generator.state.value)


# ================================================================================================
# small file helpers


def read_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a ``history.csv`` as dicts of floats (``epoch`` as int); ``[]`` if the file is absent."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with open(path, newline="") as handle:
        for raw in csv.DictReader(handle):
            row: dict[str, float] = {}
            for key, value in raw.items():
                if key is None or value in (None, ""):
                    continue
                row[key] = int(value) if key == "epoch" else float(value)
            rows.append(row)
    return rows


def write_history(path: str | os.PathLike, rows: Sequence[dict[str, float]]) -> None:
    """Write rows atomically: ``epoch`` first, then ``seconds``, then the metrics in first-seen order."""
    columns: list[str] = ["epoch"]
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(float(v)) if k != "epoch" else int(v)) for k, v in row.items()})
    write_text(path, buffer.getvalue())


# ================================================================================================
# callbacks
class DivergenceGuard(keras.callbacks.Callback):
    """Stop training at the first non-finite ``d_loss`` / ``g_loss`` and remember where it happened.

    Unlike ``keras.callbacks.TerminateOnNaN`` it records the epoch (1-based) and step so :func:`train`
    can raise :class:`DivergenceError` naming them, and the checkpoint callback skips the broken epoch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.diverged_at: Optional[tuple[int, int]] = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.diverged_at is not None or not logs:
            return
        for name in ("d_loss", "g_loss"):
            if name in logs and not math.isfinite(float(logs[name])):
                self.diverged_at = (self._epoch, batch + 1)
                self.model.stop_training = True
                return


class StopRequest(keras.callbacks.Callback):
    """Stop after the current step when SIGINT/SIGTERM arrives (the cluster pre-empting the job).

    The interrupted epoch is not checkpointed; ``--resume`` redoes it from the last checkpoint.
    """

    def __init__(self) -> None:
        super().__init__()
        self.signal_name: Optional[str] = None

    def request(self, signum, frame=None) -> None:
        self.signal_name = signal.Signals(signum).name
        if self.model is not None:
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        if self.signal_name is not None:
            self.model.stop_training = True


class RunRecorder(keras.callbacks.Callback):
    """Per finished epoch: the fixed-noise grid, the history row, then (every k epochs) the checkpoint.

    One callback, in that order, so that a process killed at any point leaves a consistent folder: the
    checkpoint is the last thing written, and a resume drops history rows newer than the checkpoint.
    """

    def __init__(self, run_dir: Path, config: Config, manager: tf.train.CheckpointManager,
                 epoch_variable: tf.Variable, history: list[dict[str, float]],
                 guards: Sequence[Any] = ()) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.config = config
        self.manager = manager
        self.epoch_variable = epoch_variable
        self.history = history
        self.guards = guards
        self.noise = fixed_noise(config)
        self._started = 0.0

    def _stopped_early(self) -> bool:
        return any(getattr(g, "diverged_at", None) or getattr(g, "signal_name", None) for g in self.guards)

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self._stopped_early():  # a partial or broken epoch: keep the last good state on disk
            return
        number = epoch + 1
        save_grid_of(self.model.sampling_generator(), self.noise, grid_path(self.run_dir, number), label=f"epoch {number}")
        row: dict[str, float] = {"epoch": number, "seconds": round(time.perf_counter() - self._started, 3)}
        for key, value in (logs or {}).items():
            row[key] = float(value)
        self.history[:] = [r for r in self.history if r["epoch"] < number] + [row]
        write_history(self.run_dir / HISTORY_FILE, self.history)
        self.epoch_variable.assign(number)
        if number % self.config.checkpoint_every == 0 or number == self.config.epochs:
            self.manager.save(checkpoint_number=number)


class UnlessStopped(keras.callbacks.Callback):
    """Run ``inner``'s epoch hooks only while no guard has stopped training (a NaN epoch's images are NaN)."""

    def __init__(self, inner: keras.callbacks.Callback, guards: Sequence[Any]) -> None:
        super().__init__()
        self.inner = inner
        self.guards = guards

    def _stopped(self) -> bool:
        return any(getattr(g, "diverged_at", None) or getattr(g, "signal_name", None) for g in self.guards)

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
        if not self._stopped():
            self.inner.on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        self.inner.on_train_end(logs)


def grid_path(run_dir: str | os.PathLike, epoch: int) -> Path:
    """``run_dir/grids/epoch_0001.png`` for epoch 1."""
    return Path(run_dir) / GRIDS_DIR / f"epoch_{epoch:04d}.png"


def save_grid_of(generator: keras.Model, noise: np.ndarray, path: Path, label: Optional[str] = None) -> Path:
    """Run ``generator`` in inference mode on ``noise`` and save the images as one grid PNG."""
    from . import plots

    images = generator(noise, training=False)
    return plots.save_grid(np.asarray(images, dtype=np.float32), path, label=label)


# ================================================================================================
# run folder
@dataclass
class TrainResult:
    """What :func:`train` returns: the folder, the full history, the trained generator (the averaged
    copy when ``config.ema > 0``, i.e. what ``generator.keras`` holds), epochs done."""

    run_dir: Path
    history: list[dict[str, float]]
    generator: keras.Model
    epochs_completed: int
    precision: str = "float32"
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def latest_checkpoint(run_dir: str | os.PathLike) -> Optional[str]:
    """Path prefix of the newest complete checkpoint in ``run_dir/checkpoints``, or None."""
    return tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR))


def _contents(run_dir: Path) -> list[str]:
    if not run_dir.exists():
        return []
    return sorted(p.name for p in run_dir.iterdir() if p.name != LOCK_FILE)


def _check_run_folder(config: Config, run_dir: Path, resume: bool, overwrite: bool, force: bool) -> None:
    """Every rule about the run folder, checked before any data is read or graph built."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: resume continues the run in "
                          f"{run_dir}, overwrite deletes it; pass one of them")
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"run folder {run_dir} exists and is a file; choose another --out")
    contents = _contents(run_dir)
    if resume:
        saved = run_dir / CONFIG_FILE
        if not saved.exists():
            raise RunFolderError(f"nothing to resume in {run_dir}: no {CONFIG_FILE}; "
                                 "drop --resume to start a new run there")
        differences = Config.from_json(saved).diff(config)
        if differences and not force:
            named = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in sorted(differences.items()))
            raise ConfigError(f"--resume with settings that differ from {saved} ({named}); "
                              "drop those options, or pass --force to continue with the new values")
        if latest_checkpoint(run_dir) is None:
            raise RunFolderError(f"cannot resume {run_dir}: no checkpoint in {run_dir / CHECKPOINT_DIR} "
                                 "(the run stopped before its first epoch finished); "
                                 "start it again with --overwrite")
    elif contents and not overwrite:
        raise RunFolderError(f"run folder {run_dir} already exists and is not empty; pass --resume to "
                             "continue it, --overwrite to delete it and start afresh, or choose another --out")
    elif contents and overwrite and CONFIG_FILE not in contents:
        raise RunFolderError(f"refusing --overwrite of {run_dir}: it holds files but no {CONFIG_FILE}, so it "
                             "does not look like a dcganlib run folder; choose another --out")


def _clear_run_folder(run_dir: Path) -> None:
    for name in RUN_ARTEFACTS:
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


@contextlib.contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    import filelock

    lock = filelock.FileLock(str(run_dir / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise RunFolderError(f"another process is training into {run_dir} (it holds {run_dir / LOCK_FILE}); "
                             "wait for it to finish or choose another --out") from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _dtype_policy() -> Iterator[None]:
    """Restore the global Keras dtype policy on exit (train() sets it for its models only)."""
    previous = keras.mixed_precision.dtype_policy()
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


@contextlib.contextmanager
def _stop_on_signals(stopper: StopRequest) -> Iterator[None]:
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


def _ssim_tracker(config: Config, splits: Any) -> Optional[keras.callbacks.Callback]:
    """The evaluation module's per-epoch SSIM tracker on held-out real images (validation split)."""
    if not config.track_ssim:
        return None
    try:
        from .metrics import QualityTracker
    except ImportError:  # the evaluation module is optional for training
        return None
    from .data import to_float

    reference = splits.validate if len(splits.validate) else splits.train
    return QualityTracker(to_float(reference), seed=config.seed, reference_count=SSIM_REFERENCE_SIZE)


# ================================================================================================
def train(config: Config, run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
          force: bool = False, callbacks: Optional[Sequence[keras.callbacks.Callback]] = None,
          lr_scale: float = 1.0) -> TrainResult:
    """Train a DCGAN on ``config.data`` (or the embedded demo) into ``run_dir``; see the module docstring.

    * A new run needs an empty or absent ``run_dir``; ``overwrite=True`` deletes the run artefacts of an
      existing one first; ``resume=True`` restores the latest checkpoint and trains up to
      ``config.epochs`` in total (a run already there returns at once).
    * ``force=True`` lets a resume continue with settings that differ from the saved ``config.json``
      (e.g. a lower learning rate after a divergence); the new config is saved.
    * ``lr_scale`` multiplies both learning rates of ``config`` (after the resume check, so a resume needs
      no ``force`` for it): ``train(saved_config, run_dir, resume=True, lr_scale=0.5)`` continues a
      diverged run from its last good checkpoint at half the rates, and saves them in ``config.json``.
    * ``callbacks`` are extra Keras callbacks, run after the library's own.

    Raises :class:`ConfigError` / :class:`RunFolderError` / :class:`DataError` before any training for a
    problem the user can fix (including too little free disk for the checkpoints), and
    :class:`DivergenceError` if a loss becomes NaN/Inf (the last good checkpoint stays on disk; resume
    with ``lr_scale`` < 1).
    """
    from . import data, models, plots

    started = time.perf_counter()
    run_dir = Path(run_dir)
    models.check_image_size(config.image_size)
    _check_run_folder(config, run_dir, resume, overwrite, force)
    scaled = _scale_learning_rates(config, lr_scale)  # a bad scale fails here, before the folder is touched
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create run folder {run_dir}: {exc.strerror}; choose another --out") from None
    if not os.access(run_dir, os.W_OK):
        raise RunFolderError(f"run folder {run_dir} is not writable; choose another --out")

    with _run_lock(run_dir):
        # Re-check under the lock: another process may have written here since the first look.
        _check_run_folder(config, run_dir, resume, overwrite, force)
        config = scaled
        _remove_stale_temporaries(run_dir)  # a killed writer's temp files; nobody else writes here now
        splits = data.load_dataset(config)
        n_train = len(splits.train)
        if config.batch_size > n_train:
            raise ConfigError(f"batch_size {config.batch_size} is larger than the {n_train} training images; "
                              f"use --batch-size {max(1, min(64, n_train))} or fewer, or add data")

        precision = resolve_precision(config)
        strategy = resolve_strategy(config)
        jit_compile = resolve_jit_compile(config)
        keras.utils.set_random_seed(config.seed)

        with _dtype_policy(), strategy.scope():
            gan = build_gan(config, precision, jit_compile)
            _check_free_disk(config, run_dir, gan, resume=resume, overwrite=overwrite)
            if overwrite and not resume:  # only once everything is known to work: a typo must not cost a run
                _clear_run_folder(run_dir)
            epoch_variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            checkpoint = make_checkpoint(gan, epoch_variable)
            manager = tf.train.CheckpointManager(checkpoint, str(run_dir / CHECKPOINT_DIR),
                                                 max_to_keep=config.keep_checkpoints,
                                                 checkpoint_name="ckpt")
            initial_epoch = 0
            history: list[dict[str, float]] = []
            if resume:
                checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
                initial_epoch = int(epoch_variable.numpy())
                # The optimizers' learning rates are checkpointed too; the config (maybe changed with
                # --force) decides them.
                _set_learning_rate(gan.g_optimizer, config.g_learning_rate)
                _set_learning_rate(gan.d_optimizer, config.d_learning_rate)
                history = [r for r in read_history(run_dir / HISTORY_FILE) if r["epoch"] <= initial_epoch]

            config.to_json(run_dir / CONFIG_FILE)
            splits.save_report(run_dir / SPLIT_FILE)

            if initial_epoch >= config.epochs:
                print(f"dcganlib: {run_dir} has already trained {initial_epoch} epochs "
                      f"(the run's total is {config.epochs}); nothing to do. Pass a larger --epochs to continue.")
                generator = gan.sampling_generator()
                _finish(generator, run_dir, config, plots)
                return TrainResult(run_dir, history, generator, initial_epoch, precision,
                                   time.perf_counter() - started)

            steps = n_train // config.batch_size  # make_tf_dataset drops the last partial batch
            dataset = epoch_stream(data.make_tf_dataset(splits.train, config.batch_size, seed=config.seed),
                                   steps, initial_epoch)

            guard = DivergenceGuard()
            stopper = StopRequest()
            own: list[keras.callbacks.Callback] = [guard, stopper]
            tracker = _ssim_tracker(config, splits)
            if tracker is not None:  # before the recorder, so its logs land in history.csv
                own.append(UnlessStopped(tracker, guards=(guard, stopper)))
            own.append(RunRecorder(run_dir, config, manager, epoch_variable, history, guards=(guard, stopper)))
            with _stop_on_signals(stopper):
                gan.fit(dataset, epochs=config.epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                        shuffle=False, verbose=resolve_verbose(config), callbacks=own + list(callbacks or []))

        if guard.diverged_at is not None:
            epoch, step = guard.diverged_at
            last = latest_checkpoint(run_dir)
            kept = f"the last good checkpoint ({Path(last).name}) is intact" if last else "no checkpoint was saved yet"
            raise DivergenceError(
                f"training diverged: a loss became NaN/Inf at epoch {epoch}, step {step}; {kept}. "
                f"Continue from it at half the learning rates: --resume --lr-scale 0.5 --out {run_dir}")
        if stopper.signal_name is not None:
            done = history[-1]["epoch"] if history else initial_epoch
            last = latest_checkpoint(run_dir)
            kept = f"last checkpoint {Path(last).name}" if last else "no checkpoint yet"
            print(f"dcganlib: stopped by {stopper.signal_name} after epoch {done} ({kept}); "
                  f"continue with --resume --out {run_dir}", file=sys.stderr)
            raise KeyboardInterrupt
        generator = gan.sampling_generator()
        _finish(generator, run_dir, config, plots)
        completed = history[-1]["epoch"] if history else initial_epoch
        return TrainResult(run_dir, history, generator, completed, precision, time.perf_counter() - started)


def _scale_learning_rates(config: Config, scale: float) -> Config:
    """``config`` with ``g_learning_rate`` and ``d_learning_rate`` multiplied by ``scale`` (> 0)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < math.inf:
        raise ConfigError(f"--lr-scale must be a positive number such as 0.5, got {scale!r}")
    if scale == 1:
        return config
    return config.replace(g_learning_rate=config.g_learning_rate * scale,
                          d_learning_rate=config.d_learning_rate * scale)


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Delete what a killed writer leaves: ``.NAME.tmp-PID.EXT`` siblings of atomically written files,
    ``config.json.tmp``, and TensorFlow's ``ckpt-N_temp`` folders. Called under the run lock only."""
    for folder in (run_dir, run_dir / GRIDS_DIR, run_dir / CHECKPOINT_DIR):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = path.name
            stale = (name.startswith(".") and ".tmp-" in name) or name == CONFIG_FILE + ".tmp" or (
                folder.name == CHECKPOINT_DIR and name.endswith("_temp"))
            if stale and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif stale:
                path.unlink(missing_ok=True)


def _variable_bytes(variables: Sequence[Any]) -> int:
    return sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in variables)


def _folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _check_free_disk(config: Config, run_dir: Path, gan: DCGAN, *, resume: bool, overwrite: bool) -> None:
    """Refuse to start a run whose checkpoints cannot fit on the run folder's disk.

    needed = (keep_checkpoints + 1) × checkpoint + generator file + epochs × raw grid, where a checkpoint
    holds every variable of G, D and both optimizers (Adam keeps two moments per weight) and the ``+ 1``
    is the new checkpoint written before the oldest is deleted. Space the run will free counts as
    available: its old checkpoints on a resume, all of its artefacts on an overwrite.
    """
    checkpoint = _variable_bytes(gan.generator.weights + gan.discriminator.weights
                                 + gan.g_optimizer.variables + gan.d_optimizer.variables)
    generator = _variable_bytes(gan.generator.weights)
    grids = config.epochs * config.grid_size * config.image_size ** 2 * config.channels
    needed = (config.keep_checkpoints + 1) * checkpoint + generator + grids
    reclaimable = 0
    if overwrite and not resume:
        reclaimable = sum(_folder_bytes(run_dir / name) for name in RUN_ARTEFACTS)
    elif resume:
        reclaimable = _folder_bytes(run_dir / CHECKPOINT_DIR)
    free = shutil.disk_usage(run_dir).free + reclaimable
    if needed > free:
        raise RunFolderError(
            f"not enough free disk for {run_dir}: {config.keep_checkpoints} kept checkpoints + 1 being written "
            f"({checkpoint / 1e6:.1f} MB each), the generator and the grids need about {needed / 1e6:.1f} MB, "
            f"but only {free / 1e6:.1f} MB are free; free some space, lower keep_checkpoints, or choose another --out")


def _set_learning_rate(optimizer: keras.optimizers.Optimizer, value: float) -> None:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    inner.learning_rate.assign(value)


def epoch_stream(dataset: tf.data.Dataset, steps_per_epoch: int, initial_epoch: int = 0) -> tf.data.Dataset:
    """One endless stream of epochs (``dataset`` repeated), starting at epoch ``initial_epoch``.

    A seeded ``tf.data`` shuffle draws a new order for every iterator created on it, and ``fit()``
    creates a varying number of them (two per epoch in Keras 3.15, one more under a distribution
    strategy). Handing ``fit()`` one repeated stream with ``steps_per_epoch`` makes it keep a single
    iterator for the whole run, so epoch ``e``'s order depends on ``(seed, e)`` only, and skipping
    the batches of the finished epochs puts a resumed run on exactly the orders an uninterrupted run
    sees. (Skipping costs one pass over the uint8 batches per finished epoch, no training.)
    """
    return dataset.repeat().skip(initial_epoch * steps_per_epoch)


def _finish(generator: keras.Model, run_dir: Path, config: Config, plots: Any) -> None:
    save_generator(generator, run_dir / GENERATOR_FILE)
    if plots.epoch_grids(run_dir):
        plots.make_run_gif(run_dir, frame_ms=config.gif_frame_ms)


def save_generator(generator: keras.Model, path: str | os.PathLike) -> Path:
    """``generator.save`` to a temporary ``.keras`` name, then an atomic rename onto ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        generator.save(tmp)
    return path


# ================================================================================================
# using a trained run
def load_generator(run_dir: str | os.PathLike) -> keras.Model:
    """The trained generator of a run: ``generator.keras`` (Keras safe mode), or, for a run that has not
    finished, the latest checkpoint restored into a generator rebuilt from ``config.json``."""
    from . import models

    run_dir = Path(run_dir)
    path = run_dir / GENERATOR_FILE
    if path.exists():
        try:
            return keras.models.load_model(path, safe_mode=True, compile=False)
        except Exception as exc:  # a damaged file must not become a TF traceback
            raise RunFolderError(f"cannot load {path}: {type(exc).__name__}: {str(exc).splitlines()[0]}; "
                                 "delete it to fall back to the latest checkpoint") from None
    last = latest_checkpoint(run_dir) if (run_dir / CHECKPOINT_DIR).is_dir() else None
    if last is None or not (run_dir / CONFIG_FILE).exists():
        raise RunFolderError(f"no trained generator in {run_dir}: expected {GENERATOR_FILE} or "
                             f"{CONFIG_FILE} with {CHECKPOINT_DIR}/; train into it first")
    config = Config.from_json(run_dir / CONFIG_FILE)
    precision = resolve_precision(config)
    with _dtype_policy():
        keras.mixed_precision.set_dtype_policy(precision)
        generator = models.build_generator(config)
        if config.ema <= 0:
            tf.train.Checkpoint(generator=generator).restore(last).expect_partial()
            return generator
        # The averaged weights live in G's optimizer: restore it too, then read them out.
        g_optimizer, _ = make_optimizers(config, precision)
        g_optimizer.build(generator.trainable_variables)
        tf.train.Checkpoint(generator=generator, g_optimizer=g_optimizer).restore(last).expect_partial()
        averaged = keras.models.clone_model(generator)
        copy_averaged_weights(g_optimizer, generator, averaged)
    return averaged


def sample(generator: keras.Model, count: int, seed: int = 0, batch_size: int = 256) -> np.ndarray:
    """``count`` images from ``generator`` for ``z ~ N(0, I)`` drawn with ``seed``: float32 ``[-1, 1]`` NHWC."""
    latent_dim = int(generator.input_shape[-1])
    z = np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)
    parts = [np.asarray(generator(z[i:i + batch_size], training=False), dtype=np.float32)
             for i in range(0, count, batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0,) + tuple(generator.output_shape[1:]), np.float32)


def generate(run_dir: str | os.PathLike, count: int = 64, out_dir: Optional[str | os.PathLike] = None,
             seed: int = 0, grid: bool = False) -> list[Path]:
    """Write ``count`` generated images as 8-bit PNGs ``generated_0000.png``… (and ``grid.png``).

    ``out_dir`` defaults to ``run_dir/generated``. Returns the image paths (grid excluded).
    """
    from PIL import Image

    from . import plots

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"--count must be a positive integer, got {count!r}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"run folder not found: {run_dir}")
    generator = load_generator(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "generated"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create output folder {out}: {exc.strerror}") from None
    images = sample(generator, count, seed=seed)
    pixels = np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    width = max(4, len(str(count - 1)))
    paths = []
    for index, picture in enumerate(pixels):
        path = out / f"generated_{index:0{width}d}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture).save(tmp, format="PNG")
        paths.append(path)
    if grid:
        plots.save_grid(pixels, out / "grid.png")
    print(f"dcganlib: wrote {count} images of {pixels.shape[1]}x{pixels.shape[2]} to {out}"
          + (" (and grid.png)" if grid else ""))
    return paths


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
    saved = run_dir / CONFIG_FILE
    if saved.is_file():
        differences = Config.from_json(saved).diff(config)
        if differences:
            named = "; ".join(f"{k}: saved {a!r}, asked {b!r}" for k, (a, b) in sorted(differences.items()))
            raise ConfigError(f"{run_dir} holds a run with other settings ({named}); use another run folder "
                              "or delete it")
        if (run_dir / GENERATOR_FILE).is_file():
            return run_dir
        if latest_checkpoint(run_dir) is not None:
            return train(config, run_dir, resume=True, callbacks=callbacks).run_dir
    return train(config, run_dir, callbacks=callbacks).run_dir


__all__ = [
    "DCGAN",
    "TrainResult",
    "train",
    "ensure_run",
    "build_gan",
    "make_optimizers",
    "make_checkpoint",
    "load_generator",
    "generate",
    "sample",
    "fixed_noise",
    "resolve_precision",
    "resolve_strategy",
    "resolve_jit_compile",
    "resolve_verbose",
    "cpu_supports_bf16",
    "read_history",
    "write_history",
    "DivergenceGuard",
    "RunRecorder",
    "METRIC_NAMES",
]
