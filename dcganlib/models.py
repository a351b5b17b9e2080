"""DCGAN generators and discriminator (Radford, Metz & Chintala 2015, arXiv:1511.06434), Keras 3.

Every model is a functional ``keras.Model`` built from a :class:`~dcganlib.config.Config`:

* :func:`build_generator` — ``z`` ``(B, latent_dim)`` → images ``(B, S, S, C)`` float32 in ``[-1, 1]``.
  ``config.generator == "radford"`` upsamples with transposed convolutions (kernel 4, stride 2);
  ``"resize"`` upsamples with nearest-neighbour resizing followed by a 3×3 convolution, which avoids
  the checkerboard artefacts of transposed convolutions (Odena, Dumoulin & Olah 2016,
  https://distill.pub/2016/deconv-checkerboard/); ``generator_upsample`` picks nearest, bilinear or sub-pixel
  (a convolution at the low resolution whose channels become 2×2 pixels, :func:`_subpixel`).
* :func:`build_discriminator` — images ``(B, S, S, C)`` in ``[-1, 1]`` → logits ``(B, 1)`` float32
  (no sigmoid: the losses work on logits for numerical stability).
* ``generator == "residual"`` / ``discriminator == "residual"``: R3GAN's networks (Huang et al. 2024) on a CPU
  budget — one residual block of two 3×3 convolutions per side, no normalisation, Fixup's initialisation
  (:func:`_residual_generator`, :func:`_residual_discriminator`).

Sizes. Every image side ``S = base · 2**k`` with ``base`` in {4, 5, 6, 7} and ``k ≥ 2`` is supported,
16 to 1024 (16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, …, 1024; see
:data:`SUPPORTED_SIZES`). The generator starts at ``base × base`` and doubles ``k`` times; the
discriminator halves ``k`` times down to ``base × base``. Depth therefore grows with size.

Widths follow Radford et al.: the generator's last hidden block has ``g_filters`` channels and each
block towards the input doubles it (64 px, ``g_filters=64``: 512-256-128-64); the discriminator's first
block has ``d_filters`` and each deeper block doubles it (64-128-256-512). The multiplier is capped at
:data:`MAX_WIDTH_MULTIPLIER` (8×) so that 256 px and larger models stay a sane size.

Details shared by both networks (Radford et al. §3–4):

* weights ``N(0, 0.02)``, batch-norm ``gamma ~ N(1, 0.02)``, seeded from ``config.seed`` so the same
  config always builds the same initial weights;
* no bias before a batch norm (``use_bias=False``): the norm's ``beta`` already is one;
* no batch norm on the generator's output layer nor on the discriminator's input layer;
* under a strategy with several replicas (built in its scope) the batch norms are synchronised: they
  normalise with the statistics of the global batch, as one device would (README, "Several machines");
* batch-norm momentum 0.9 and epsilon 1e-5 (PyTorch's defaults, which the DCGAN reference code used):
  Keras' 0.99 lets the moving statistics that ``training=False`` sampling uses lag far behind in a
  short run.

Mixed precision: hidden layers follow the global ``keras.mixed_precision`` policy; the generator's
``tanh`` and the discriminator's logit layer are float32 so the losses are always computed in float32.

Parameter counts at 64 px (1 channel, ``latent_dim=100``; measured with ``count_params()``, including the
batch norms' non-trainable moving statistics), for the paper's widths 64 (``radford_config()``), widths 32
(the default generator) and 16 (the default discriminator):

=========================  =====================  =====================  =====================
model                      widths 64 (moving)     widths 32 (moving)     widths 16 (moving)
=========================  =====================  =====================  =====================
generator radford           3,576,577  (1,920)     1,100,161  (960)
generator resize            2,371,905  (1,920)       798,881  (960)
discriminator               2,765,377  (1,792)       694,561  (896)         175,249  (448)
=========================  =====================  =====================  =====================

(The ``conv_transpose`` start has exactly as many parameters as ``dense``: a ``base × base`` valid
transposed convolution of a 1×1 map is the same linear map as the dense projection.)
"""

from __future__ import annotations

from typing import Iterator, Optional

import keras
import tensorflow as tf
from keras import layers

from .config import Config, parse_widths
from .errors import ConfigError

#: Odd factors an image side may have; together with a power of two ≥ 4 they give every size.
BASES: tuple[int, ...] = (4, 5, 6, 7)
MIN_SIZE = 16
MAX_SIZE = 1024
#: Widths grow by 2× per block up to this multiple of ``g_filters`` / ``d_filters``.
MAX_WIDTH_MULTIPLIER = 8

#: Every supported square image side, ascending.
SUPPORTED_SIZES: tuple[int, ...] = tuple(
    sorted(
        base * 2**k
        for base in BASES
        for k in range(2, 12)
        if MIN_SIZE <= base * 2**k <= MAX_SIZE
    )
)

_INIT_STD = 0.02
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5
# Offsets keep the generator's and the discriminator's initialisation seeds apart.
_G_SEED_OFFSET = 1_000
_D_SEED_OFFSET = 2_000
_DECODER_SEED_OFFSET = 3_000
_D_STEM_SEED_OFFSET = 4_000


# ------------------------------------------------------------------------------------------------
# sizes
def check_image_size(size: int) -> None:
    """Raise :class:`ConfigError` unless ``size`` is in :data:`SUPPORTED_SIZES`.

    The message names the nearest supported sizes below and above, e.g. 30 → "nearest supported: 28, 32".
    """
    if isinstance(size, bool) or not isinstance(size, int):
        raise ConfigError(f"image_size must be an integer, got {size!r}")
    if size in SUPPORTED_SIZES:
        return
    below = [s for s in SUPPORTED_SIZES if s < size]
    above = [s for s in SUPPORTED_SIZES if s > size]
    nearest = ([below[-1]] if below else []) + ([above[0]] if above else [])
    raise ConfigError(
        f"image_size {size} is not supported (sides must be 4, 5, 6 or 7 × a power of two, "
        f"{MIN_SIZE}–{MAX_SIZE}); nearest supported: {', '.join(map(str, nearest))}"
    )


def size_plan(size: int) -> tuple[int, int]:
    """``(base, doublings)`` with ``size == base * 2**doublings``, base in {4, 5, 6, 7}.

    ``doublings`` is the number of stride-2 stages in each network (64 → (4, 4); 28 → (7, 2)).
    """
    check_image_size(size)
    # size / 4 = (base / 4) · 2**k with base / 4 in [1, 2): k is the position of its highest bit
    doublings = (size // BASES[0]).bit_length() - 1
    return size >> doublings, doublings


def _width(filters: int, power: int) -> int:
    return filters * min(2**power, MAX_WIDTH_MULTIPLIER)


def generator_widths(config: Config) -> list[int]:
    """Channels of the generator's hidden blocks from the start block to the last hidden one: ``config.g_widths``
    when set (one width per block; another count raises :class:`ConfigError`), else ``g_filters`` doubling
    towards the input."""
    base, doublings = size_plan(config.image_size)
    given = parse_widths(config.g_widths)
    if given:
        if len(given) != doublings:
            sides = ", ".join(str(base * 2**i) for i in range(doublings))
            raise ConfigError(f"config key 'g_widths' lists {len(given)} widths, but a {config.image_size} px "
                              f"generator has {doublings} hidden blocks (at {sides} px): give one width each")
        return list(given)
    return [_width(config.g_filters, doublings - 1 - i) for i in range(doublings)]


def discriminator_widths(config: Config) -> list[int]:
    """Channels of the discriminator's strided blocks from the input side to the deepest one."""
    _, doublings = size_plan(config.image_size)
    return [_width(config.d_filters, i) for i in range(doublings)]


# ------------------------------------------------------------------------------------------------
# building blocks
def _seeds(start: int) -> Iterator[int]:
    # Keras warns when one seeded initializer object is reused, and would give every layer the
    # same draw: hand each layer its own seed instead.
    seed = start
    while True:
        yield seed
        seed += 1


def _kernel_init(seeds: Iterator[int]) -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(mean=0.0, stddev=_INIT_STD, seed=next(seeds))


def _batch_norm(seeds: Iterator[int], name: str) -> layers.BatchNormalization:
    # Built under a strategy with several replicas (in its scope), the norm takes its batch statistics
    # over the global batch (an all-reduce per call), so each replica normalises exactly as one device
    # would on the whole batch and the distributed update equals the single-device one.
    return layers.BatchNormalization(
        synchronized=tf.distribute.get_strategy().num_replicas_in_sync > 1,
        momentum=_BN_MOMENTUM,
        epsilon=_BN_EPSILON,
        gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=_INIT_STD, seed=next(seeds)),
        name=name,
    )


def _activation(kind: str, name: str) -> layers.Layer:
    if kind == "relu":
        return layers.ReLU(name=name)
    if kind == "leaky_relu":
        return layers.LeakyReLU(negative_slope=0.2, name=name)
    if kind == "elu":
        return layers.ELU(name=name)
    raise ConfigError(f"config key 'generator_activation' must be relu, leaky_relu or elu; got {kind!r}")


def _excitation(low, high, seeds: Iterator[int], name: str):
    """FastGAN's skip-layer excitation (Liu et al. 2021, eq. 1): ``high · σ(W₂ · act(W₁ · pool₄(low)))`` —
    ``low`` average-pooled to about 4×4 (windows of ``side // 4``), a 'valid' convolution over the whole pooled
    map to one vector of ``high``'s width, LeakyReLU(0.1), a 1×1 convolution and a sigmoid give one gate per
    channel of ``high`` and image. A coarse block thereby
    scales the channels of a fine one directly (a style-like modulation, and a short path for gradients)."""
    pool = low.shape[1] // 4
    gate = layers.AveragePooling2D(pool, name=f"{name}_pool")(low) if pool > 1 else low
    gate = layers.Conv2D(high.shape[-1], kernel_size=gate.shape[1], padding="valid",
                         kernel_initializer=_kernel_init(seeds), name=f"{name}_conv4")(gate)
    gate = layers.LeakyReLU(negative_slope=0.1, name=f"{name}_lrelu")(gate)
    gate = layers.Conv2D(high.shape[-1], kernel_size=1, kernel_initializer=_kernel_init(seeds),
                         name=f"{name}_conv1")(gate)
    gate = layers.Activation("sigmoid", name=f"{name}_sigmoid")(gate)
    return layers.Multiply(name=f"{name}_gate")([high, gate])


def _subpixel(x, filters: int, seeds: Iterator[int], name: str, use_bias: bool, dtype: Optional[str] = None):
    """Sub-pixel ×2 upsampling (Shi et al. 2016): a 3×3 convolution at the input's resolution to ``4 · filters``
    channels, each pixel's channels ``(a·2 + b)·filters + c`` placed at ``(2h + a, 2w + b)`` of a ``filters``-wide
    map: ``(B, H, W, ·)`` → ``(B, 2H, 2W, filters)``. Each of the four output phases has weights of its own, so the
    new frequencies need not vanish at the Nyquist limit as after nearest upsampling (whose 2×2 copies are a
    low-pass filter with a zero there). Initialised by ICNR (Aitken et al. 2017): the four phases start with one
    kernel, so the block starts as nearest upsampling of a convolution, without checkerboards."""
    height, width = x.shape[1], x.shape[2]
    conv = layers.Conv2D(4 * filters, kernel_size=3, padding="same", use_bias=use_bias,
                         kernel_initializer=_kernel_init(seeds), dtype=dtype, name=f"{name}_subpixel_conv")
    x = conv(x)
    conv.kernel.assign(keras.ops.tile(conv.kernel[..., :filters], (1, 1, 1, 4)))  # ICNR: every phase = phase 0
    if use_bias:
        conv.bias.assign(keras.ops.tile(conv.bias[:filters], (4,)))
    x = layers.Reshape((height, width, 2, 2, filters), name=f"{name}_subpixel_split")(x)
    x = layers.Permute((1, 3, 2, 4, 5), name=f"{name}_subpixel_interleave")(x)  # (h, a, w, b, c)
    return layers.Reshape((2 * height, 2 * width, filters), name=f"{name}_subpixel_merge")(x)


def _project(z, config: Config, base: int, width: int, initializer: keras.initializers.Initializer):
    """G's start, ``(B, latent_dim)`` → ``(B, base, base, width)`` without a bias: ``config.generator_start``
    ``"dense"`` (a dense layer, reshaped) or ``"conv_transpose"`` (``z`` as a 1×1 map through a ``base × base``
    'valid' transposed convolution: the same linear map)."""
    if config.generator_start == "dense":
        x = layers.Dense(base * base * width, use_bias=False, kernel_initializer=initializer, name="project")(z)
        return layers.Reshape((base, base, width), name="project_reshape")(x)
    if config.generator_start == "conv_transpose":
        x = layers.Reshape((1, 1, config.latent_dim), name="z_as_map")(z)
        return layers.Conv2DTranspose(width, kernel_size=base, strides=1, padding="valid", use_bias=False,
                                      kernel_initializer=initializer, name="project")(x)
    raise ConfigError(f"config key 'generator_start' must be dense or conv_transpose; got {config.generator_start!r}")


# ------------------------------------------------------------------------------------------------
# generator
def build_generator(config: Config) -> keras.Model:
    """The DCGAN generator: ``(B, latent_dim)`` → ``(B, S, S, channels)`` float32 in ``[-1, 1]``.

    Start (``config.generator_start``): ``"dense"`` projects ``z`` with a dense layer to
    ``base × base × widths[0]`` and reshapes; ``"conv_transpose"`` reshapes ``z`` to a 1×1 map and
    applies a ``base × base`` 'valid' transposed convolution (the original DCGAN code's start).
    Both are followed by batch norm and the activation (``config.generator_activation``).

    Upsampling (``config.generator``): ``"radford"`` uses ``Conv2DTranspose(kernel 4, stride 2,
    'same')``; ``"resize"`` uses ``UpSampling2D(2, config.generator_upsample)`` (nearest, as Odena et al.
    recommend, or bilinear) then ``Conv2D(3, 'same')``, or with ``generator_upsample == "subpixel"`` a
    ``Conv2D(3, 'same')`` to four times the width rearranged into 2×2 pixels (:func:`_subpixel`). Hidden
    blocks are conv → batch norm → activation; the last one maps to ``config.channels`` with a bias and
    ``tanh`` (float32 under any mixed-precision policy). ``config.g_head_filters`` > 0 makes the last
    upsampling a hidden block of that width at full resolution, followed by a ``Conv2D(3, 'same')`` to
    ``config.channels``. ``config.g_excitation`` gates every hidden block of side ≥ 16 (the head block
    included) by the block of a quarter of its side (:func:`_excitation`; at 64 px: 4 → 16 and 8 → 32, and
    16 → 64 with a head). ``config.g_bfloat16_rounding`` passes the start's activation and every hidden
    block's convolution and activation through :class:`BFloat16Rounding`.
    """
    if config.generator == "residual":
        return _residual_generator(config)
    base, doublings = size_plan(config.image_size)
    widths = generator_widths(config)
    seeds = _seeds(config.seed + _G_SEED_OFFSET)
    act = config.generator_activation

    def rounded(x, name: str):
        return BFloat16Rounding(name=f"{name}_bf16_rounding")(x) if config.g_bfloat16_rounding else x

    z = keras.Input(shape=(config.latent_dim,), name="z")
    x = _project(z, config, base, widths[0], _kernel_init(seeds))
    x = _batch_norm(seeds, "project_bn")(x)
    x = rounded(_activation(act, f"project_{act}")(x), "project")
    features = [x]  # each hidden block's output, by number of doublings from the start

    def excite(x, name: str):
        if not config.g_excitation or len(features) < 2 or x.shape[1] < 16:
            return x
        return _excitation(features[-2], x, seeds, f"{name}_excitation")

    def conv3(x, filters: int, name: str, use_bias: bool, dtype: Optional[str] = None):
        return layers.Conv2D(filters, kernel_size=3, padding="same", use_bias=use_bias,
                             kernel_initializer=_kernel_init(seeds), dtype=dtype, name=f"{name}_conv")(x)

    def upsample(x, filters: int, name: str, use_bias: bool, dtype: Optional[str] = None):
        if config.generator == "radford":
            return layers.Conv2DTranspose(filters, kernel_size=4, strides=2, padding="same", use_bias=use_bias,
                                          kernel_initializer=_kernel_init(seeds), dtype=dtype,
                                          name=f"{name}_convT")(x)
        if config.generator == "resize" and config.generator_upsample == "subpixel":
            return _subpixel(x, filters, seeds, name, use_bias, dtype)
        if config.generator == "resize":
            x = layers.UpSampling2D(2, interpolation=config.generator_upsample, name=f"{name}_upsample")(x)
            return conv3(x, filters, name, use_bias, dtype)
        raise ConfigError(f"config key 'generator' must be radford or resize; got {config.generator!r}")

    for i, filters in enumerate(widths[1:], start=1):
        x = rounded(upsample(x, filters, f"block{i}", use_bias=False), f"block{i}_conv")
        x = _batch_norm(seeds, f"block{i}_bn")(x)
        x = rounded(_activation(act, f"block{i}_{act}")(x), f"block{i}")
        x = excite(x, f"block{i}")
        features.append(x)

    # The output convolution and tanh in float32, so that the losses and the saved images never see
    # bfloat16/float16 rounding: a bfloat16 pre-activation has 8 significant bits, ≈ 0.2–0.4 grey levels
    # apart after tanh, which gave the generated tissue histogram a comb of alternating uint8 bins.
    if config.g_head_filters:
        # A hidden block at full resolution: without it each output pixel is one 3×3 convolution of a
        # nearest-upsampled map, so neighbouring pixels share their features and fine texture has no
        # weights of its own.
        x = rounded(upsample(x, config.g_head_filters, "head", use_bias=False), "head_conv")
        x = _batch_norm(seeds, "head_bn")(x)
        x = rounded(_activation(act, f"head_{act}")(x), "head")
        x = excite(x, "head")
        x = conv3(x, config.channels, "output", use_bias=True, dtype="float32")
    else:
        x = upsample(x, config.channels, "output", use_bias=True, dtype="float32")
    image = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    model = keras.Model(z, image, name=f"generator_{config.generator}")
    _check_output(model, (config.image_size, config.image_size, config.channels))
    return model


@keras.saving.register_keras_serializable(package="dcganlib")
class BFloat16Rounding(layers.Layer):
    """``x`` rounded to the nearest bfloat16 (8 significant bits: an error of at most 2⁻⁸ of the value) on the
    forward pass, in ``x``'s own dtype; the gradient passes unrounded (straight through):
    ``x + stop_gradient(round(x) − x)``. No weights. A no-op on bfloat16 inputs.

    Why: mixed_bfloat16 training rounds G's activations like this. In float32, G with this rounding had a tracked
    score level with mixed_bfloat16 training at the default budget (two seeds), where float32 without it was
    behind (docs/recipes.md, "Float32 against bfloat16"). It costs two casts per rounded tensor. Under a
    mixed policy the layer computes in that policy's dtype like any other (bfloat16: nothing left to round).
    """

    def call(self, x):
        return x + tf.stop_gradient(tf.cast(tf.cast(x, tf.bfloat16), x.dtype) - x)


@keras.saving.register_keras_serializable(package="dcganlib")
class MinibatchStddev(layers.Layer):
    """Minibatch standard deviation (Karras et al. 2018, §3): ``(B, H, W, C)`` → ``(B, H, W, C + 1)``.

    The images are split into groups of ``group_size`` (image ``i`` in group ``i mod B/group_size``; a batch
    that ``group_size`` does not divide is one group); the appended map holds, for every image of a group,
    ``mean over (h, w, c) of sqrt(Var_group[x] + 1e-8)`` — how much the group's images differ. A generator
    whose images all look alike gives D a low value it can tell from a real batch's, so D pushes G towards
    the data's variety. Computed in float32. Under several replicas the groups form within each replica's
    share of the batch: the same statistic, over other groups than one device would form.
    """

    def __init__(self, group_size: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        self.group_size = int(group_size)

    def call(self, x):
        shape = tf.shape(x)
        batch = shape[0]
        group = tf.where(batch % self.group_size == 0, self.group_size, batch)
        y = tf.reshape(tf.cast(x, tf.float32), tf.stack([group, -1, shape[1], shape[2], shape[3]]))
        spread = tf.sqrt(tf.reduce_mean(tf.square(y - tf.reduce_mean(y, axis=0)), axis=0) + 1e-8)
        per_group = tf.reduce_mean(spread, axis=[1, 2, 3])  # (B / group,)
        stat = tf.tile(tf.reshape(per_group, [1, -1, 1, 1, 1]), tf.stack([group, 1, shape[1], shape[2], 1]))
        stat = tf.reshape(stat, tf.stack([batch, shape[1], shape[2], 1]))
        return tf.concat([x, tf.cast(stat, x.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}


# ------------------------------------------------------------------------------------------------
# discriminator
def build_discriminator(config: Config) -> keras.Model:
    """The DCGAN discriminator: ``(B, S, S, channels)`` in ``[-1, 1]`` → logits ``(B, 1)`` float32.

    ``config.d_stem_filters`` > 0 starts with a stem: ``Conv2D(d_stem_filters, kernel 3, stride 1, 'same')`` at
    full resolution (bias, no batch norm; spectrally normalised when ``d_norm`` is) → LeakyReLU(0.2), so that D
    sees pixel-level texture before the first stride-2 convolution can alias it. Then ``doublings`` blocks of
    ``Conv2D(kernel 4, stride 2, 'same')`` → normalisation (``config.d_norm``) → LeakyReLU(0.2) → optional
    ``Dropout(config.d_dropout)``; no pooling and no hidden dense layers. The ``base × base`` feature map is
    flattened into one ``Dense(1)`` logit (equivalent to Radford's final ``base × base`` 'valid' convolution),
    computed in float32. No sigmoid: apply ``keras.ops.sigmoid`` for a probability. ``config.d_minibatch_std``
    > 0 appends a :class:`MinibatchStddev` map over groups of that many images to the ``base × base`` features
    before the logit.

    ``d_norm``: ``"batch"`` — batch norm on every block but the first (Radford et al.); ``"spectral"`` —
    every convolution and the logit layer wrapped in ``keras.layers.SpectralNormalization`` (one power
    iteration per step; Miyato et al. 2018), which divides the kernel by its largest singular value so
    each layer is 1-Lipschitz, and no batch norm (D then treats every image on its own); ``"spectral_batch"``
    — both; ``"none"`` — neither.
    """
    if config.discriminator == "residual":
        return _residual_discriminator(config)
    size = config.image_size
    base, doublings = size_plan(size)
    seeds = _seeds(config.seed + _D_SEED_OFFSET)
    spectral = config.d_norm in ("spectral", "spectral_batch")
    batch_norm = config.d_norm in ("batch", "spectral_batch")

    def normalised(layer: layers.Layer, dtype: Optional[str] = None) -> layers.Layer:
        if not spectral:
            return layer
        return layers.SpectralNormalization(layer, power_iterations=1, name=f"{layer.name}_sn",
                                            **({"dtype": dtype} if dtype else {}))

    image = keras.Input(shape=(size, size, config.channels), name="image")
    x = image
    if config.d_stem_filters:  # its own seeds, so that D's other initial weights do not move
        x = normalised(layers.Conv2D(config.d_stem_filters, kernel_size=3, strides=1, padding="same",
                                     kernel_initializer=_kernel_init(_seeds(config.seed + _D_STEM_SEED_OFFSET)),
                                     name="stem_conv"))(x)
        x = layers.LeakyReLU(negative_slope=0.2, name="stem_leaky_relu")(x)
    for i, filters in enumerate(discriminator_widths(config), start=1):
        normed = batch_norm and i > 1
        x = normalised(layers.Conv2D(filters, kernel_size=4, strides=2, padding="same", use_bias=not normed,
                                     kernel_initializer=_kernel_init(seeds), name=f"block{i}_conv"))(x)
        if normed:
            x = _batch_norm(seeds, f"block{i}_bn")(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"block{i}_leaky_relu")(x)
        if config.d_dropout > 0:
            x = layers.Dropout(config.d_dropout, seed=next(seeds), name=f"block{i}_dropout")(x)
    if config.d_minibatch_std:
        x = MinibatchStddev(config.d_minibatch_std, name="minibatch_stddev")(x)
    x = layers.Flatten(name="flatten")(x)
    logit = normalised(layers.Dense(1, kernel_initializer=_kernel_init(seeds), dtype="float32", name="logit"),
                       dtype="float32")(x)
    model = keras.Model(image, logit, name="discriminator")
    _check_output(model, (1,))
    return model


# ------------------------------------------------------------------------------------------------
# residual networks (R3GAN's design on a CPU budget)
#: Gains of the activations for He initialisation: the factor that keeps a signal's second moment through
#: ``act(W x)`` when ``W ~ N(0, gain² / fan_in)`` (He et al. 2015; leaky ReLU with slope a: √(2 / (1 + a²))).
RESIDUAL_GAINS = {"relu": 2 ** 0.5, "leaky_relu": (2 / (1 + 0.2 ** 2)) ** 0.5}


def residual_widths(config: Config) -> tuple[list[int], list[int]]:
    """Channels of the residual networks' stages, by side from ``base`` up to ``S`` (G) and from ``S`` down to
    ``base`` (D): G's are :func:`generator_widths` and, at full resolution, half the last of them (at least 8);
    D's are :func:`discriminator_widths` with its first width repeated at full resolution (64 px, widths 32 and
    16: G 256-128-64-32-16, D 16-16-32-64-128)."""
    g = generator_widths(config)
    d = discriminator_widths(config)
    return g + [max(g[-1] // 2, 8)], [d[0]] + d


def _he_init(seeds: Iterator[int], gain: float) -> keras.initializers.Initializer:
    return keras.initializers.VarianceScaling(scale=gain ** 2, mode="fan_in", distribution="untruncated_normal",
                                              seed=next(seeds))


def _to_width(x, width: int, seeds: Iterator[int], name: str):
    """A residual network's transition between sides: a 1×1 convolution (He-initialised, no bias) to ``width``
    channels, or ``x`` itself when it has them."""
    if width == x.shape[-1]:
        return x
    return layers.Conv2D(width, kernel_size=1, use_bias=False, kernel_initializer=_he_init(seeds, 1.0),
                         name=f"{name}_transition")(x)


def _residual_block(x, act: str, blocks: int, seeds: Iterator[int], name: str):
    """``x + conv₃ₓ₃(act(conv₃ₓ₃(x) + b))``, width kept. No normalisation; instead a Fixup-style start
    (Zhang et al. 2019, as R3GAN does): the first convolution He-initialised with the activation's gain times
    ``blocks^(-1/2)`` (``L^(-1/(2m-2))`` for ``L`` blocks of ``m = 2`` layers), the last one zero, so every block
    starts as the identity and the network's output variance does not grow with its depth. (R3GAN's blocks
    are inverted bottlenecks with grouped 3×3 convolutions; TensorFlow runs grouped convolutions on a CPU
    through a path 50–150× slower than a plain one, so these use two plain 3×3 convolutions.)"""
    width = x.shape[-1]
    y = layers.Conv2D(width, kernel_size=3, padding="same", use_bias=True,
                      kernel_initializer=_he_init(seeds, RESIDUAL_GAINS[act] * blocks ** -0.5), name=f"{name}_conv1")(x)
    y = _activation(act, f"{name}_{act}")(y)
    y = layers.Conv2D(width, kernel_size=3, padding="same", use_bias=False, kernel_initializer="zeros",
                      name=f"{name}_conv2")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def _residual_generator(config: Config) -> keras.Model:
    """``generator == "residual"``: ``z`` → dense projection to ``base × base × w₀`` → a residual block
    (:func:`_residual_block`) at each side from ``base`` to ``S``, each side after the first reached by a 1×1
    convolution to the side's width (when it changes) and ×2 upsampling (``generator_upsample``: nearest, or
    bilinear — R3GAN's low-pass interpolation) → a 1×1 convolution to ``channels`` → ``tanh`` (float32). No
    normalisation anywhere (R3GAN, Huang et al. 2024); widths :func:`residual_widths`."""
    base, _ = size_plan(config.image_size)
    widths, _ = residual_widths(config)
    seeds = _seeds(config.seed + _G_SEED_OFFSET)
    act = config.generator_activation
    z = keras.Input(shape=(config.latent_dim,), name="z")
    x = _project(z, config, base, widths[0], _he_init(seeds, 1.0))
    for i, width in enumerate(widths):
        if i:
            x = _to_width(x, width, seeds, f"stage{i}")
            x = layers.UpSampling2D(2, interpolation=config.generator_upsample, name=f"stage{i}_upsample")(x)
        x = _residual_block(x, act, len(widths), seeds, f"stage{i}")
    x = layers.Conv2D(config.channels, kernel_size=1, use_bias=True, kernel_initializer=_he_init(seeds, 1.0),
                      dtype="float32", name="output_conv")(x)
    image = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    model = keras.Model(z, image, name="generator_residual")
    _check_output(model, (config.image_size, config.image_size, config.channels))
    return model


def _residual_discriminator(config: Config) -> keras.Model:
    """``discriminator == "residual"``: a 1×1 convolution from ``channels`` to ``w₀`` → at each side from ``S``
    down to ``base`` a residual block (:func:`_residual_block`, LeakyReLU(0.2)), each side after the first reached
    by 2×2 average pooling (a low-pass filter before subsampling) and a 1×1 convolution to the side's width (when
    it changes) → (``d_minibatch_std``) → flatten → ``Dense(1)`` logit (float32). No normalisation (R3GAN, Huang
    et al. 2024), so every image is judged on its own; widths :func:`residual_widths`. At side ``2·base`` the last
    layer is a block's output of width ``discriminator_widths[doublings − 2]``, which
    :func:`discriminator_features` hands to the self-supervised decoder."""
    size = config.image_size
    _, widths = residual_widths(config)
    seeds = _seeds(config.seed + _D_SEED_OFFSET)
    image = keras.Input(shape=(size, size, config.channels), name="image")
    x = layers.Conv2D(widths[0], kernel_size=1, use_bias=True, kernel_initializer=_he_init(seeds, 1.0),
                      name="extract")(image)
    for i, width in enumerate(widths):
        if i:
            x = layers.AveragePooling2D(2, name=f"stage{i}_pool")(x)
            x = _to_width(x, width, seeds, f"stage{i}")
        x = _residual_block(x, "leaky_relu", len(widths), seeds, f"stage{i}")
    if config.d_minibatch_std:
        x = MinibatchStddev(config.d_minibatch_std, name="minibatch_stddev")(x)
    x = layers.Flatten(name="flatten")(x)
    logit = layers.Dense(1, kernel_initializer=_he_init(seeds, 1.0), dtype="float32", name="logit")(x)
    model = keras.Model(image, logit, name="discriminator_residual")
    _check_output(model, (1,))
    return model


# ------------------------------------------------------------------------------------------------
# self-supervised discriminator (FastGAN)
def deepest_feature_side(discriminator: keras.Model) -> int:
    """The side of D's smallest feature map (its last block's: 4 at any size with the default widths), whose
    features :func:`dcganlib.losses.feature_matching_loss` matches."""
    return min(int(layer.output.shape[1]) for layer in discriminator.layers[1:] if len(layer.output.shape) == 4)


def discriminator_features(discriminator: keras.Model, side: int) -> keras.Model:
    """``D`` with a second output: ``(B, S, S, C)`` → ``[logits (B, 1), features (B, side, side, width)]``, the
    features being the output of D's block of that side (its last layer with that side: the activation, or
    the dropout after it). It shares D's layers and weights (a view of the same graph), so training through
    it trains D. :func:`build_decoder` reads the block of side ``2·base`` (8×8 at 64 px)."""
    block = [layer for layer in discriminator.layers[1:] if len(layer.output.shape) == 4
             and layer.output.shape[1] == side]
    if not block:
        raise ValueError(f"{discriminator.name} has no feature map of side {side}")
    return keras.Model(discriminator.inputs, [discriminator.outputs[0], block[-1].output],
                       name="discriminator_features")


def build_decoder(config: Config) -> keras.Model:
    """FastGAN's self-supervision of D (Liu et al. 2021, §3.2), whole-image part: a small decoder from D's
    :func:`discriminator_features` ``(B, 2·base, 2·base, w)`` to the real image at half resolution
    ``(B, S/2, S/2, C)`` float32 in ``[-1, 1]``. ``doublings − 2`` blocks of nearest ×2 upsampling → 3×3 conv →
    batch norm → LeakyReLU(0.2), each halving the width (at least 8), then a 3×3 conv and ``tanh`` (float32).
    D must keep what describes the image in its features to let the decoder redraw it, which regularises D
    on a small dataset; trained on real images only, with the L1 loss of ``config.d_reconstruct``. (FastGAN also
    reconstructs a random crop from finer features, with a perceptual loss: no pretrained network is offline.)
    """
    base, doublings = size_plan(config.image_size)
    width = discriminator_widths(config)[doublings - 2]
    seeds = _seeds(config.seed + _DECODER_SEED_OFFSET)
    features = keras.Input(shape=(2 * base, 2 * base, width), name="features")
    x = features
    for i in range(1, doublings - 1):
        width = max(width // 2, 8)
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"decoder{i}_upsample")(x)
        x = layers.Conv2D(width, kernel_size=3, padding="same", use_bias=False, kernel_initializer=_kernel_init(seeds),
                          name=f"decoder{i}_conv")(x)
        x = _batch_norm(seeds, f"decoder{i}_bn")(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"decoder{i}_leaky_relu")(x)
    x = layers.Conv2D(config.channels, kernel_size=3, padding="same", kernel_initializer=_kernel_init(seeds),
                      dtype="float32", name="decoder_output_conv")(x)
    image = layers.Activation("tanh", dtype="float32", name="decoder_tanh")(x)
    model = keras.Model(features, image, name="decoder")
    _check_output(model, (config.image_size // 2, config.image_size // 2, config.channels))
    return model


def _check_output(model: keras.Model, expected: tuple[int, ...]) -> None:
    # A wrong size plan would otherwise surface as a shape error deep inside the first train step.
    got = tuple(model.output.shape[1:])
    if got != expected:
        raise AssertionError(f"{model.name} builds output {got}, expected {expected}")


def build_models(config: Config) -> tuple[keras.Model, keras.Model]:
    """``(build_generator(config), build_discriminator(config))``."""
    return build_generator(config), build_discriminator(config)


__all__: list[str] = [
    "SUPPORTED_SIZES",
    "BASES",
    "MAX_WIDTH_MULTIPLIER",
    "check_image_size",
    "size_plan",
    "generator_widths",
    "discriminator_widths",
    "build_generator",
    "build_discriminator",
    "build_models",
]
