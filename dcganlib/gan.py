"""The GAN as a ``keras.Model``: :class:`DCGAN` with its own ``train_step``, its optimizers and its checkpoint.

The train step (:meth:`DCGAN.train_step`) is the simultaneous update of the TensorFlow DCGAN tutorial:
one generator forward ``G(z)`` feeds both losses, the discriminator sees the real and the fake batch
in two calls (so its batch norms never mix real and fake statistics, Radford et al. §4), and both
networks are updated once from gradients taken at the same weights. ``fit()`` drives it
(:func:`dcganlib.training.train` adds the callbacks that fill a run folder).

Images inside are float32 in ``[-1, 1]``, NHWC.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Optional

import keras
import tensorflow as tf
from keras import ops

from . import losses, models, runs
from .augment import adaptive_augment, diff_augment, parse_policy
from .config import Config
from .errors import RunFolderError
from .hardware import dtype_policy
from .progress import note

#: Metrics of :class:`DCGAN`, in history.csv column order.
METRIC_NAMES = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "d_real", "d_fake")
#: The mean augmentation probability of an epoch, a metric of runs with adaptive augmentation.
AUGMENT_METRIC = "augment_p"
#: The mean L1 error of D's decoder on an epoch's real images, a metric of runs with ``d_reconstruct`` > 0.
RECONSTRUCTION_METRIC = "d_reconstruction"
#: The history column of :func:`dcganlib.losses.feature_matching_loss` when ``g_feature_matching`` > 0.
FEATURE_MATCHING_METRIC = "g_feature_matching_loss"
#: Adaptive augmentation's speed: the probability can move from 0 to 1 within this many real images
#: (1,000 steps at batch 32; Karras et al. use 500k images for datasets of 1k–100k images, too slow for
#: runs of a few hundred thousand images in all).
ADA_SPEED_IMAGES = 32_000


class DCGAN(keras.Model):
    """Generator and discriminator trained together by :meth:`fit` (one D and one G update per batch).

    ``generator``: ``(B, latent_dim)`` → ``(B, S, S, C)`` in ``[-1, 1]``; ``discriminator``:
    ``(B, S, S, C)`` → logits ``(B, 1)``. ``loss_pair`` is ``(generator_loss(fake_logits, real_logits),
    discriminator_loss(real_logits, fake_logits))`` from :func:`dcganlib.losses.get_loss_pair`.
    ``fit()`` takes batches of real images (float32 ``[-1, 1]``) and reports the means over the epoch of
    ``d_loss``, ``g_loss``, ``d_acc_real`` (fraction of real logits > 0), ``d_acc_fake`` (fraction of
    fake logits < 0), ``d_real`` (mean σ(D(x))) and ``d_fake`` (mean σ(D(G(z)))).

    The noise comes from a ``keras.random.SeedGenerator(seed)`` owned by the model, whose state is
    checkpointed, so a resumed run draws the noise an uninterrupted one would have drawn. Under several
    replicas each takes its rows of the global batch's draw (:meth:`sample_noise`), and the networks
    built in the strategy's scope synchronise their batch norms, so a step is the single-device step.

    ``ema > 0`` keeps an exponential moving average of G's trainable weights, ``w̄ ← β_t·w̄ + (1−β_t)·w``
    after every G update, with ``β_t`` from :func:`ema_decay` (constant ``ema``, or ramped up with
    ``ema_rampup``). It lives in G's optimizer (Keras' optimizer EMA), so it is checkpointed with
    ``g_optimizer`` and works under any distribution strategy; :meth:`sampling_generator` returns a copy
    of G holding ``w̄`` (and G's current batch-norm statistics) for grids, tracking and the exported
    ``generator.keras``. Training itself always uses the raw weights.

    ``r1_gamma`` / ``r2_gamma`` add the zero-centred gradient penalties ``γ/2 · E‖∇ₓD(x)‖²`` on the real
    (R1; Mescheder et al. 2018) and the generated (R2) images D sees to D's loss — every
    ``penalty_every``-th step only, multiplied by that number ("lazy regularisation", Karras et al. 2020),
    which keeps the double back-propagation cheap. ``penalty_rampup`` N > 0 scales both γ by
    ``min(1, t / N)`` at D's step ``t`` (0, 1, …): a warm-up in which a weak penalty lets D and G learn fast
    early, and the full one keeps later training improving.

    ``augment`` (e.g. ``"translation,cutout"``) passes every image D sees — real and fake, in both
    updates — through :func:`dcganlib.augment.diff_augment` with a fresh seed per call.

    ``decoder`` (FastGAN's self-supervised D, :func:`dcganlib.models.build_decoder`) redraws each real
    image D sees at half resolution from D's features; ``d_reconstruct · E|decoder(f(x)) − pool₂(x)|`` joins
    D's loss, and D's optimizer trains the decoder with D.

    ``feature_matching`` λ > 0 adds ``λ · feature_matching_loss(f(x), f(G(z)))`` to G's loss, ``f`` being D's
    deepest feature map (:func:`dcganlib.models.deepest_feature_side`) on the real and the generated batch D
    sees (two more forward passes of D, in training mode; the batch means are each replica's); D's loss is
    unchanged. Its mean is reported as ``g_feature_matching_loss``.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, *,
                 loss_pair: tuple[Callable, Callable], latent_dim: int, seed: int, ema: float = 0.0,
                 augment: str = "", r1_gamma: float = 0.0, r2_gamma: float = 0.0, penalty_every: int = 1,
                 ada_target: float = 0.0, decoder: Optional[keras.Model] = None, d_reconstruct: float = 0.0,
                 penalty_rampup: int = 0, feature_matching: float = 0.0, **kwargs: Any) -> None:
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
        self.augment = parse_policy(augment)
        self.ada_target = float(ada_target)
        # p of adaptive augmentation: each replica proposes p + its step, the variable takes the mean.
        self.augment_probability = (tf.Variable(0.0, trainable=False, name="augment_probability",
                                                aggregation=tf.VariableAggregation.MEAN)
                                    if self.ada_target > 0 else None)
        if self.augment_probability is not None:
            self.trackers[AUGMENT_METRIC] = keras.metrics.Mean(name=AUGMENT_METRIC)
        self.decoder = decoder
        self.d_reconstruct = float(d_reconstruct)
        self.discriminator_features = (None if decoder is None else
                                       models.discriminator_features(discriminator, decoder.input.shape[1]))
        if decoder is not None:
            self.trackers[RECONSTRUCTION_METRIC] = keras.metrics.Mean(name=RECONSTRUCTION_METRIC)
        self.feature_matching = float(feature_matching)
        self.matched_features = (models.discriminator_features(discriminator, models.deepest_feature_side(discriminator))
                                 if self.feature_matching > 0 else None)
        if self.matched_features is not None:
            self.trackers[FEATURE_MATCHING_METRIC] = keras.metrics.Mean(name=FEATURE_MATCHING_METRIC)
        self.r1_gamma, self.r2_gamma = float(r1_gamma), float(r2_gamma)
        self.penalty_every = int(penalty_every)
        self.penalty_rampup = int(penalty_rampup)
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
        d_optimizer.build(self.d_variables)

    @property
    def d_variables(self) -> list:
        """What D's optimizer trains: D's weights, and its decoder's when D is self-supervised."""
        decoder = self.decoder.trainable_variables if self.decoder is not None else []
        return self.discriminator.trainable_variables + decoder

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
        """The next ``(2,)`` seed of the model's generator, distinct per replica (for DiffAugment)."""
        seed = self.seed_generator.next()
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            replicas = tf.cast(context.num_replicas_in_sync, seed.dtype)
            replica = tf.cast(context.replica_id_in_sync_group, seed.dtype)
            seed = tf.stack([seed[0], seed[1] * replicas + replica])
        return seed

    def sample_noise(self, batch_size) -> tf.Tensor:
        """``z ~ N(0, I)``, float32 ``(batch_size, latent_dim)``, from the model's seed generator.

        Under a strategy with R replicas, ``batch_size`` is a replica's share of the global batch: every
        replica draws the noise of the whole global batch (R × ``batch_size`` rows, one seed) and keeps
        its own rows, replica r rows ``r·batch_size`` onwards, the same rows of the global batch that
        ``tf.distribute`` hands it of the real images. So the noise of a step is the one a single device
        draws for the global batch (the draw costs R times a replica's share, negligible beside the networks).
        """
        seed = self.seed_generator.next()
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        if replicas == 1:
            return tf.random.stateless_normal((batch_size, self.latent_dim), seed=seed, dtype=tf.float32)
        everyone = tf.random.stateless_normal((batch_size * replicas, self.latent_dim), seed=seed, dtype=tf.float32)
        start = tf.cast(context.replica_id_in_sync_group, tf.int32) * tf.cast(batch_size, tf.int32)
        return tf.slice(everyone, tf.stack([start, 0]), tf.stack([tf.cast(batch_size, tf.int32), self.latent_dim]))

    def augmented(self, images: tf.Tensor) -> tf.Tensor:
        """``T(images)``, ``T`` the DiffAugment policy with a fresh seed (identity when off). Under several
        replicas each draws its own parameters (its replica id folded into the seed): reproducible, but
        not the draws one device makes for the whole batch."""
        if self.augment_probability is not None:
            return adaptive_augment(images, self.augment, self._replica_seed(), self.augment_probability)
        if self.augment:
            return diff_augment(images, self.augment, self._replica_seed())
        return images

    def adapt_augmentation(self, real_logits: tf.Tensor, batch_size: tf.Tensor, replicas: int) -> None:
        """Adaptive augmentation's update: ``p ← clip(p + sign(E[sign D(x)] − target) · B / speed, 0, 1)``
        with ``E[sign D(x)]`` over the batch's (augmented) real images — D's overfitting signal ``r_t`` of
        Karras et al. 2020 (0: D cannot tell, 1: D is sure of every real image) — ``B`` the global batch and
        ``speed`` :data:`ADA_SPEED_IMAGES`."""
        signal = tf.reduce_mean(tf.sign(real_logits))
        step = tf.cast(batch_size * replicas, tf.float32) / ADA_SPEED_IMAGES
        moved = self.augment_probability + tf.sign(signal - self.ada_target) * step
        self.augment_probability.assign(tf.clip_by_value(moved, 0.0, 1.0))

    @property
    def lazy_penalty(self) -> bool:
        """Whether a gradient penalty is on and due only every ``penalty_every``-th step."""
        return bool(self.r1_gamma or self.r2_gamma) and self.penalty_every > 1

    def penalty_due(self) -> bool:
        """Whether this step's D update carries the gradient penalty: always when it is on every step; else
        when ``d_optimizer.iterations % penalty_every == 0``. Decided in Python before a step (eagerly, or by
        :meth:`make_train_function`'s dispatcher), never inside a traced step: a ``tf.cond`` around the
        penalty cannot run under a distribution strategy."""
        if not self.lazy_penalty:
            return True
        return int(self.d_optimizer.iterations.numpy()) % self.penalty_every == 0

    def make_train_function(self, force: bool = False) -> Callable:
        """Keras' compiled train step; with lazy regularisation, two of them — with and without the penalty —
        and a dispatcher that picks one before each step from ``d_optimizer.iterations``. A ``tf.cond``
        around the penalty cannot run under a distribution strategy: its gradients pass through the
        replicas' synchronised batch norms, a cross-replica sum that a conditional may not hold."""
        if not self.lazy_penalty:
            return super().make_train_function(force)
        if self.train_function is not None and not force:
            return self.train_function
        steps = {due: self._make_function(lambda data, due=due: self.step(data, due)) for due in (False, True)}

        def train_function(iterator: Any) -> Any:
            return steps[self.penalty_due()](iterator)

        self.train_function = train_function
        return train_function

    def discriminate_real(self, real_seen: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """D's logits for the real batch, and the decoder's L1 error ``E|decoder(f(x)) − pool₂(x)|`` on it
        (0 without a decoder): one forward pass of D gives both."""
        if self.decoder is None:
            return self.discriminator(real_seen, training=True), tf.constant(0.0)
        logits, features = self.discriminator_features(real_seen, training=True)
        redrawn = self.decoder(features, training=True)
        target = tf.nn.avg_pool2d(tf.cast(real_seen, tf.float32), ksize=2, strides=2, padding="VALID")
        return logits, tf.reduce_mean(tf.abs(tf.cast(redrawn, tf.float32) - target))

    def discriminate(self, real_seen: tf.Tensor, fake_seen: tf.Tensor,
                     penalty_due: bool = True) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """D's logits for the real and the generated batch it sees, the gradient penalty
        ``k · (r1_gamma/2 · E‖∇D(real)‖² + r2_gamma/2 · E‖∇D(fake)‖²)`` when ``penalty_due`` (k =
        ``penalty_every``), else 0, and the decoder's L1 error on the real batch (:meth:`discriminate_real`):
        float32 scalars, differentiable with respect to D's (and the decoder's) weights.

        The penalty differentiates the forward passes that give the logits (no third pass of D)."""
        if not (self.r1_gamma or self.r2_gamma) or not penalty_due:
            real_logits, reconstruction = self.discriminate_real(real_seen)
            return real_logits, self.discriminator(fake_seen, training=True), tf.constant(0.0), reconstruction
        seen = [tf.cast(real_seen, tf.float32), tf.cast(fake_seen, tf.float32)]
        with tf.GradientTape(persistent=bool(self.r1_gamma and self.r2_gamma),
                             watch_accessed_variables=False) as tape:
            tape.watch(seen)
            real_logits, reconstruction = self.discriminate_real(seen[0])
            logits = [real_logits, self.discriminator(seen[1], training=True)]
            # the sum of the logits: its gradient is each image's own ∇D (recorded here, inside the tape)
            sums = [tf.reduce_sum(tf.cast(batch, tf.float32)) for batch in logits]

        total = tf.constant(0.0)
        for gamma, i in ((self.r1_gamma, 0), (self.r2_gamma, 1)):
            if gamma:
                gradients = tape.gradient(sums[i], seen[i])
                total += gamma / 2.0 * tf.reduce_mean(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]))
        return logits[0], logits[1], total * float(self.penalty_every) * self.penalty_scale(), reconstruction

    def penalty_scale(self) -> tf.Tensor:
        """The warm-up factor of both penalties at D's current step ``t``: ``min(1, t / penalty_rampup)``
        (1 without a warm-up), a float32 scalar read from ``d_optimizer.iterations`` — checkpointed, so a
        resume continues the ramp where it stopped."""
        if self.penalty_rampup <= 0:
            return tf.constant(1.0)
        step = tf.cast(self.d_optimizer.iterations, tf.float32)
        return tf.minimum(1.0, step / float(self.penalty_rampup))

    def train_step(self, data):
        return self.step(data, self.penalty_due())

    def step(self, data: Any, penalty_due: bool) -> dict[str, tf.Tensor]:
        """One update of D then G on a batch of real images; ``penalty_due`` as :meth:`penalty_due` returns."""
        real = data[0] if isinstance(data, (tuple, list)) else data
        batch_size = tf.shape(real)[0]
        # Optimizers sum gradients over replicas, so each replica contributes (its mean loss) / replicas;
        # the sum is then the gradient of the global-batch mean.
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        z = self.sample_noise(batch_size)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(z, training=True)
            real_seen, fake_seen = self.augmented(real), self.augmented(fake)
            real_logits, fake_logits, penalty, reconstruction = self.discriminate(real_seen, fake_seen, penalty_due)
            d_loss = self.discriminator_loss(real_logits, fake_logits)
            g_loss = self.generator_loss(fake_logits, real_logits)
            # scale_loss multiplies by the dynamic loss scale under LossScaleOptimizer (float16);
            # apply() divides it out again and skips steps whose gradients overflowed.
            d_total = d_loss + penalty + self.d_reconstruct * reconstruction
            d_scaled = self.d_optimizer.scale_loss(d_total / replicas)
            g_total, matching = g_loss, None
            if self.matched_features is not None:
                matching = losses.feature_matching_loss(self.matched_features(real_seen, training=True)[1],
                                                        self.matched_features(fake_seen, training=True)[1])
                g_total = g_loss + self.feature_matching * matching
            g_scaled = self.g_optimizer.scale_loss(g_total / replicas)
        d_variables = self.d_variables
        g_variables = self.generator.trainable_variables
        d_gradients = d_tape.gradient(d_scaled, d_variables)
        g_gradients = g_tape.gradient(g_scaled, g_variables)
        self.d_optimizer.apply(d_gradients, d_variables)
        self.g_optimizer.apply(g_gradients, g_variables)

        real_logits = tf.cast(real_logits, tf.float32)
        fake_logits = tf.cast(fake_logits, tf.float32)
        if self.augment_probability is not None:
            self.adapt_augmentation(real_logits, batch_size, replicas)
        acc_real, acc_fake = losses.discriminator_accuracy(real_logits, fake_logits)
        values = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_acc_real": acc_real,
            "d_acc_fake": acc_fake,
            "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
            "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits)),
        }
        if self.augment_probability is not None:
            values[AUGMENT_METRIC] = tf.identity(self.augment_probability)
        if self.decoder is not None:
            values[RECONSTRUCTION_METRIC] = reconstruction
        if matching is not None:
            values[FEATURE_MATCHING_METRIC] = matching
        for name, value in values.items():
            self.trackers[name].update_state(value)
        results = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 reduces fit()'s logs over the workers with strategy.reduce(MEAN, value, axis=0),
            # which fails on scalars ("Invalid reduction dimension 0 for input with 0 dimensions",
            # tensorflow/tensorflow#72388): one-element vectors are averaged over the replicas into scalars.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results


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


def ema_decay(step: Any, ema: float, rampup: float) -> Any:
    """The EMA decay ``β_t`` of G's update number ``step`` (0-based), as numbers or tensors.

    ``rampup = 0``: ``β = ema`` from the second update on (the first copies the weights, ``β_0 = 0``).
    ``rampup > 0`` (Karras et al. 2020's ramp): the average's half-life, in steps, is
    ``h_t = min(h, rampup · t)`` with ``h = ln ½ / ln ema`` the half-life of ``ema``, and
    ``β_t = ½^(1 / h_t)`` (``β_0 = 0``): early in training the average spans the last ``rampup`` share of
    the steps taken, so it follows the fast-changing weights instead of dragging their first values along.
    """
    full = math.log(0.5) / math.log(ema)  # 0.5 ** (1 / full) == ema
    if isinstance(step, (int, float)):
        half_life = min(full, rampup * step) if rampup > 0 else (full if step > 0 else 0.0)
        return 0.5 ** (1.0 / half_life) if half_life > 0 else 0.0
    t = ops.cast(step, "float32")
    half_life = ops.minimum(full, rampup * t) if rampup > 0 else ops.where(t > 0, full, 0.0)
    return ops.where(half_life > 0, ops.power(0.5, 1.0 / ops.maximum(half_life, 1e-12)), 0.0)


class RampedEMAAdam(keras.optimizers.Adam):
    """Adam keeping Keras' moving average of its variables, with the decay of :func:`ema_decay`.

    Keras reads ``ema_momentum`` at every update; here it is the schedule evaluated at the optimizer's
    own step counter (the number of updates made so far), so the average is checkpointed and distributed
    exactly like Keras' constant-decay one.
    """

    def __init__(self, *, ema: float, ema_rampup: float, **kwargs: Any) -> None:
        super().__init__(use_ema=True, ema_momentum=ema, **kwargs)
        self.ema_rampup = float(ema_rampup)

    @property
    def ema_momentum(self):
        if not hasattr(self, "_iterations") or not hasattr(self, "ema_rampup"):  # during __init__
            return self.ema_cap
        return ops.cast(ema_decay(self.iterations, self.ema_cap, self.ema_rampup), "float32")

    @ema_momentum.setter
    def ema_momentum(self, value: float) -> None:
        self.ema_cap = value

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("use_ema", None)
        return {**config, "ema": self.ema_cap, "ema_momentum": self.ema_cap, "ema_rampup": self.ema_rampup}


def make_optimizers(config: Config, precision: str) -> tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
    """``(g_optimizer, d_optimizer)``: Adam with the config's rates and betas.

    ``config.ema > 0`` makes G's Adam keep the moving average of G's weights (:class:`RampedEMAAdam`,
    see :class:`DCGAN`). Under ``mixed_float16`` both are wrapped in ``LossScaleOptimizer`` (float16
    gradients underflow without it); ``mixed_bfloat16`` has float32's exponent range and needs no loss scaling.
    """
    optimizers = []
    for name, rate in (("g_adam", config.g_learning_rate), ("d_adam", config.d_learning_rate)):
        common = dict(learning_rate=rate, beta_1=config.beta_1, beta_2=config.beta_2, name=name)
        if name == "g_adam" and config.ema > 0:
            optimizer = RampedEMAAdam(ema=config.ema, ema_rampup=config.ema_rampup, **common)
        else:
            optimizer = keras.optimizers.Adam(**common)
        if precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name=f"{name}_loss_scale")
        optimizers.append(optimizer)
    return optimizers[0], optimizers[1]


def build_gan(config: Config, precision: str = "float32", jit_compile: bool = False) -> DCGAN:
    """Build G, D, the :class:`DCGAN` and its compiled optimizers for ``config``.

    Call inside ``strategy.scope()`` for distributed training. The networks are built under the Keras
    dtype policy ``precision`` (layers read it when they are created); the global policy is restored after.
    """
    with dtype_policy(precision):
        generator = models.build_generator(config)
        discriminator = models.build_discriminator(config)
        decoder = models.build_decoder(config) if config.d_reconstruct > 0 else None
    gan = DCGAN(generator, discriminator, loss_pair=losses.get_loss_pair(config), latent_dim=config.latent_dim,
                seed=config.seed, ema=config.ema, augment=config.augment, r1_gamma=config.r1_gamma,
                r2_gamma=config.r2_gamma, penalty_every=config.penalty_every, ada_target=config.ada_target,
                decoder=decoder, d_reconstruct=config.d_reconstruct, penalty_rampup=config.penalty_rampup,
                feature_matching=config.g_feature_matching, name="dcgan")
    g_optimizer, d_optimizer = make_optimizers(config, precision)
    gan.compile(g_optimizer, d_optimizer, jit_compile=jit_compile)
    return gan


def make_checkpoint(gan: DCGAN, epoch: tf.Variable) -> tf.train.Checkpoint:
    """A ``tf.train.Checkpoint`` of everything a resume needs: both networks (including batch-norm
    moving statistics), both optimizers (step counters and Adam moments), the epoch counter and the
    noise generator's state (and adaptive augmentation's probability when the run adapts it, D's decoder when
    D is self-supervised)."""
    extra = {} if gan.augment_probability is None else {"augment_probability": gan.augment_probability}
    if gan.decoder is not None:
        extra["decoder"] = gan.decoder
    return tf.train.Checkpoint(generator=gan.generator, discriminator=gan.discriminator,
                               g_optimizer=gan.g_optimizer, d_optimizer=gan.d_optimizer,
                               epoch=epoch, noise_seed=gan.seed_generator.state.value, **extra)


#: What restoring a checkpoint whose files are damaged raises (TensorFlow's read errors; a cut file's
#: OUT_OF_RANGE read surfaces as IndexError). Measured on cut, zero-filled, bit-flipped and random files.
UNREADABLE_ERRORS = (tf.errors.OpError, IndexError)
#: What restoring a sound checkpoint into objects of another structure raises: a missing or unmatched
#: object, a tensor of another shape or dtype. Checked before UNREADABLE_ERRORS (these are OpErrors too).
MISMATCH_ERRORS = (AssertionError, ValueError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError)


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", str(exc).strip())  # TensorFlow's op prefix
    return f"{type(exc).__name__}: {(text.splitlines() or [''])[0][:160]}"


def restore_newest(run_dir: str | os.PathLike, make_checkpoint: Callable[[], tf.train.Checkpoint], *,
                   complete: bool, purpose: str, advice: str = "", epoch: Optional[int] = None) -> str:
    """Restore the newest readable checkpoint of ``run_dir`` (:func:`dcganlib.runs.checkpoints`); its prefix.

    ``make_checkpoint()`` returns a fresh ``tf.train.Checkpoint`` of the objects to fill (a failed
    attempt may have filled some of them; the next attempt overwrites them all). ``complete=True``
    requires every object of it to be in the checkpoint (a resume), else the rest of the checkpoint is
    ignored (a generator alone). A checkpoint whose files cannot be read is reported in one line on
    stderr, ``dcganlib: checkpoint ckpt-4 is unreadable (…); falling back to ckpt-3``, and the next older
    one is tried. :class:`RunFolderError` when none is left (``purpose``, e.g. ``"resume RUN"``, says what
    failed, ``advice`` what to do), or at once when a readable checkpoint does not fit the objects: the
    older ones of the run have the same structure. ``epoch`` restricts the search to that epoch's checkpoint.
    """
    found = [prefix for prefix in runs.checkpoints(run_dir) if epoch is None or runs.checkpoint_epoch(prefix) == epoch]
    failures = []
    for index, prefix in enumerate(found):
        name = Path(prefix).name
        try:
            status = make_checkpoint().restore(prefix)
            if complete:
                status.assert_existing_objects_matched()
            else:
                status.expect_partial()
        except MISMATCH_ERRORS as exc:
            raise RunFolderError(
                f"cannot {purpose}: checkpoint {name} does not fit the networks and optimizers built from "
                f"{Path(run_dir) / runs.CONFIG_FILE} ({_first_line(exc)}); it was saved with other settings, e.g. "
                "another precision (mixed_float16 adds loss scaling to the optimizers, and precision auto picks it "
                "on a GPU): use the settings it was trained with") from None
        except UNREADABLE_ERRORS as exc:
            failures.append(f"{name}: {_first_line(exc)}")
            following = (f"falling back to {Path(found[index + 1]).name}" if index + 1 < len(found)
                         else "no older checkpoint is left")
            note(f"checkpoint {name} is unreadable ({_first_line(exc)}); {following}", kind=None)
            continue
        return prefix
    folder = Path(run_dir) / runs.CHECKPOINT_DIR
    problem = (f"none of the {len(failures)} checkpoints in {folder} can be read ({'; '.join(failures)})" if failures
               else f"no checkpoint in {folder}")
    raise RunFolderError(f"cannot {purpose}: {problem}" + (f"; {advice}" if advice else ""))


def set_learning_rate(optimizer: keras.optimizers.Optimizer, value: float) -> None:
    """Assign ``value`` to an optimizer's learning rate (through a LossScaleOptimizer wrapper)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    inner.learning_rate.assign(value)


__all__ = [
    "METRIC_NAMES", "RECONSTRUCTION_METRIC", "FEATURE_MATCHING_METRIC", "DCGAN", "ema_decay", "RampedEMAAdam", "copy_averaged_weights",
    "make_optimizers", "build_gan", "make_checkpoint", "UNREADABLE_ERRORS", "MISMATCH_ERRORS", "restore_newest",
    "set_learning_rate"
]
