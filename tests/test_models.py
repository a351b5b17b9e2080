"""Shapes, parameter counts, initialisation and precision of the DCGAN models (tiny widths)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dcganlib.config import Config, radford_config  # noqa: E402
from dcganlib.errors import ConfigError  # noqa: E402
from dcganlib.hardware import bfloat16_would_crash  # noqa: E402
from helpers import BFLOAT16_CRASH  # noqa: E402
from dcganlib.models import (  # noqa: E402
    SUPPORTED_SIZES,
    MinibatchStddev,
    build_decoder,
    build_discriminator,
    build_generator,
    check_image_size,
    discriminator_features,
    discriminator_widths,
    generator_widths,
    residual_widths,
    size_plan,
)

TINY = dict(latent_dim=8, g_filters=4, d_filters=4, generator="radford", precision="float32")


def tiny(**changes) -> Config:
    return Config(**{**TINY, **changes})


# ------------------------------------------------------------------------------------------------
# sizes
def test_supported_sizes_are_base_times_power_of_two():
    for size in (16, 20, 24, 28, 32, 48, 64, 96, 128, 256, 512, 1024):
        assert size in SUPPORTED_SIZES
    for size in (8, 12, 30, 36, 100, 1000):
        assert size not in SUPPORTED_SIZES
    assert list(SUPPORTED_SIZES) == sorted(set(SUPPORTED_SIZES))
    for size in SUPPORTED_SIZES:
        base, doublings = size_plan(size)
        assert base in (4, 5, 6, 7) and doublings >= 2 and base * 2**doublings == size


@pytest.mark.parametrize("size, plan", [(16, (4, 2)), (28, (7, 2)), (48, (6, 3)), (64, (4, 4)), (80, (5, 4))])
def test_size_plan(size, plan):
    assert size_plan(size) == plan


@pytest.mark.parametrize(
    "size, nearest",
    [(30, "nearest supported: 28, 32"), (100, "nearest supported: 96, 112"), (8, "nearest supported: 16")],
)
def test_unsupported_size_names_nearest(size, nearest):
    with pytest.raises(ConfigError) as info:
        check_image_size(size)
    message = str(info.value)
    assert f"image_size {size} is not supported" in message
    assert message.endswith(nearest)
    assert "\n" not in message


def test_builders_reject_unsupported_size_before_tensorflow():
    with pytest.raises(ConfigError, match="nearest supported: 28, 32"):
        build_generator(tiny(image_size=30))
    with pytest.raises(ConfigError, match="nearest supported: 28, 32"):
        build_discriminator(tiny(image_size=30))


def test_widths_follow_radford_and_are_capped():
    paper = radford_config()  # 64 px, g_filters = d_filters = 64
    assert generator_widths(paper) == [512, 256, 128, 64]
    assert discriminator_widths(paper) == [64, 128, 256, 512]
    assert generator_widths(Config()) == [256, 128, 64, 32]  # the default halves the paper's widths
    assert discriminator_widths(Config()) == [16, 32, 64, 128]  # D at half G's width (README, Ablation)
    # 256 px: six doublings, but the multiplier stops at 8×
    assert generator_widths(paper.replace(image_size=256)) == [512, 512, 512, 256, 128, 64]
    assert discriminator_widths(paper.replace(image_size=256)) == [64, 128, 256, 512, 512, 512]


# ------------------------------------------------------------------------------------------------
# shapes
@pytest.mark.parametrize("size", [16, 28, 32, 64, 128])
@pytest.mark.parametrize("generator", ["radford", "resize"])
@pytest.mark.parametrize("start", ["dense", "conv_transpose"])
@pytest.mark.parametrize("channels", [1, 3])
def test_generator_output_shape(size, generator, start, channels):
    config = tiny(image_size=size, generator=generator, generator_start=start, channels=channels)
    model = build_generator(config)
    assert tuple(model.input.shape) == (None, 8)
    assert tuple(model.output.shape) == (None, size, size, channels)


@pytest.mark.parametrize("size", [20, 48, 56, 96, 256, 1024])
def test_less_common_and_large_sizes_build(size):
    # build only (symbolic shapes): the start block is base × base and depth grows with the size
    base, doublings = size_plan(size)
    config = tiny(image_size=size, generator="resize" if size > 256 else "radford")
    generator, discriminator = build_generator(config), build_discriminator(config)
    assert tuple(generator.output.shape) == (None, size, size, 1)
    assert tuple(generator.get_layer("project_bn").output.shape) == (None, base, base, generator_widths(config)[0])
    assert tuple(discriminator.output.shape) == (None, 1)
    assert tuple(discriminator.get_layer("flatten").input.shape)[1:3] == (base, base)
    convs = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == doublings


@pytest.mark.parametrize("size", [16, 28, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_discriminator_output_shape(size, channels):
    model = build_discriminator(tiny(image_size=size, channels=channels))
    assert tuple(model.input.shape) == (None, size, size, channels)
    assert tuple(model.output.shape) == (None, 1)


@pytest.mark.parametrize(
    "changes",
    [
        dict(image_size=28, channels=3, generator="radford", generator_start="conv_transpose"),
        dict(image_size=32, channels=1, generator="resize", generator_activation="leaky_relu"),
        dict(image_size=16, channels=3, generator="resize", generator_activation="elu", d_dropout=0.3),
    ],
)
def test_forward_pass_batch_of_two(changes):
    config = tiny(**changes)
    generator, discriminator = build_generator(config), build_discriminator(config)
    z = np.random.default_rng(0).standard_normal((2, config.latent_dim)).astype("float32")
    images = keras.ops.convert_to_numpy(generator(z, training=True))
    size = config.image_size
    assert images.shape == (2, size, size, config.channels) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    logits = keras.ops.convert_to_numpy(discriminator(images, training=True))
    assert logits.shape == (2, 1) and logits.dtype == np.float32 and np.isfinite(logits).all()


# ------------------------------------------------------------------------------------------------
# parameter counts
def test_parameter_counts_by_hand_16px():
    config = tiny(image_size=16)  # base 4, two doublings; latent 8, widths 4 → G 8-4, D 4-8
    # generator (dense start):
    #   project Dense 8 → 4·4·8, no bias            8·128           = 1024
    #   project_bn over 8 channels: γ, β, mean, var 4·8             =   32
    #   block1 ConvTranspose 4×4, 8 → 4, no bias    4·4·8·4         =  512
    #   block1_bn over 4 channels                   4·4             =   16
    #   output ConvTranspose 4×4, 4 → 1, with bias  4·4·4·1 + 1     =   65
    #                                                         total = 1649
    assert build_generator(config).count_params() == 1649
    # the 1×1 transposed start is the same linear map: ConvT 4×4 over 8 → 8 has 4·4·8·8 = 1024 weights
    assert build_generator(config.replace(generator_start="conv_transpose")).count_params() == 1649
    # resize generator: 3×3 convs instead of 4×4 transposed ones
    #   1024 + 32 + (3·3·8·4 = 288) + 16 + (3·3·4·1 + 1 = 37)     = 1397
    assert build_generator(config.replace(generator="resize")).count_params() == 1397
    # a hidden block of width 2 at full resolution (g_head_filters) before a 3×3 output conv:
    #   resize:  1024 + 32 + 288 + 16 + (3·3·4·2 = 72) + (4·2 = 8) + (3·3·2·1 + 1 = 19) = 1459
    #   radford: 1024 + 32 + 512 + 16 + (4·4·4·2 = 128) + 8 + 19                      = 1739
    with_head = build_generator(config.replace(generator="resize", g_head_filters=2))
    assert with_head.count_params() == 1459
    assert tuple(with_head.get_layer("head_conv").output.shape) == (None, 16, 16, 2)
    assert build_generator(config.replace(g_head_filters=2)).count_params() == 1739
    # discriminator:
    #   block1 Conv 4×4, 1 → 4, with bias (no BN)   4·4·1·4 + 4     =   68
    #   block2 Conv 4×4, 4 → 8, no bias             4·4·4·8         =  512
    #   block2_bn over 8 channels                   4·8             =   32
    #   logit Dense 4·4·8 → 1 with bias             128 + 1         =  129
    #                                                         total =  741
    assert build_discriminator(config).count_params() == 741


def test_parameter_counts_64px_defaults():
    # the figures documented in dcganlib/models.py and the README
    paper = radford_config()
    assert build_generator(paper).count_params() == 3_576_577
    assert build_generator(paper.replace(generator="resize")).count_params() == 2_371_905
    assert build_discriminator(paper).count_params() == 2_765_377
    default = Config()  # resize generator at width 32, discriminator at width 16
    assert build_generator(default).count_params() == 798_881
    assert build_generator(default.replace(generator="radford")).count_params() == 1_100_161
    assert build_discriminator(default).count_params() == 175_249
    assert build_discriminator(default.replace(d_filters=32)).count_params() == 694_561


def test_dropout_adds_layers_but_no_parameters():
    plain = build_discriminator(tiny(image_size=32))
    dropped = build_discriminator(tiny(image_size=32, d_dropout=0.25))
    assert dropped.count_params() == plain.count_params()
    rates = [layer.rate for layer in dropped.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates == [0.25, 0.25, 0.25]


# ------------------------------------------------------------------------------------------------
# initialisation
def test_initial_weights_are_normal_0_02():
    config = Config(image_size=32, g_filters=32, d_filters=32, latent_dim=64, generator="radford")
    generator, discriminator = build_generator(config), build_discriminator(config)
    project = generator.get_layer("project").kernel.numpy()  # 64 × 4·4·128 = 131,072 draws
    assert abs(project.std() - 0.02) < 0.001 and abs(project.mean()) < 0.001
    conv = discriminator.get_layer("block2_conv").kernel.numpy()  # 4·4·32·64 = 32,768 draws
    assert abs(conv.std() - 0.02) < 0.001
    gamma = generator.get_layer("project_bn").gamma.numpy()
    assert abs(gamma.mean() - 1.0) < 0.01 and 0.005 < gamma.std() < 0.04
    assert not np.allclose(gamma, 1.0)
    # no bias before a batch norm; biases only where nothing normalises after them
    assert generator.get_layer("project").bias is None
    assert generator.get_layer("block1_convT").bias is None
    assert generator.get_layer("output_convT").bias is not None


def test_same_seed_same_weights_and_layers_draw_independently():
    config = tiny(image_size=16)
    a, b = build_generator(config), build_generator(config)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    other = build_generator(config.replace(seed=config.seed + 1))
    assert not np.array_equal(a.get_layer("project").kernel.numpy(), other.get_layer("project").kernel.numpy())
    # distinct seeds per layer: the first 16 draws of two layers differ
    k1 = a.get_layer("block1_convT").kernel.numpy().ravel()[:16]
    k2 = a.get_layer("output_convT").kernel.numpy().ravel()[:16]
    assert not np.allclose(k1, k2)


# ------------------------------------------------------------------------------------------------
# mixed precision
@pytest.fixture
def bfloat16_policy():
    if bfloat16_would_crash():
        pytest.skip(BFLOAT16_CRASH)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_outputs_are_float32_under_mixed_bfloat16(bfloat16_policy):
    config = tiny(image_size=16)
    generator, discriminator = build_generator(config), build_discriminator(config)
    assert generator.get_layer("block1_convT").compute_dtype == "bfloat16"
    z = np.random.default_rng(1).standard_normal((2, 8)).astype("float32") * 10
    images = generator(z, training=False)
    assert keras.backend.standardize_dtype(images.dtype) == "float32"
    values = keras.ops.convert_to_numpy(images)
    assert values.min() >= -1.0 and values.max() <= 1.0
    logits = discriminator(images, training=False)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert tuple(logits.shape) == (2, 1)


@pytest.mark.parametrize("generator_kind, head", [("radford", 0), ("resize", 0), ("resize", 4), ("residual", 0)])
def test_generator_output_is_not_rounded_to_bfloat16(bfloat16_policy, generator_kind, head):
    # A bfloat16 pre-activation leaves only 8 significant bits before tanh, which printed a comb of
    # alternating uint8 bins into the generated intensity histogram: the output conv computes in float32.
    generator = build_generator(tiny(image_size=16, generator=generator_kind, g_head_filters=head))
    output_conv = next(layer for layer in generator.layers if layer.name.startswith("output_conv"))
    assert output_conv.compute_dtype == "float32"
    z = np.random.default_rng(3).standard_normal((4, 8)).astype("float32") * 10
    pre_tanh = keras.Model(generator.input, output_conv.output)(z, training=False)
    values = keras.ops.convert_to_numpy(pre_tanh).ravel()
    as_bf16 = keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.cast(values, "bfloat16"), "float32"))
    assert np.mean(values != as_bf16) > 0.9  # float32 values are almost never bfloat16-representable
    images = keras.ops.convert_to_numpy(generator(z, training=False)).ravel()
    np.testing.assert_allclose(images, np.tanh(values), rtol=1e-5, atol=1e-6)


def test_save_and_load_round_trip_gives_identical_outputs(tmp_path):
    config = tiny(image_size=16, generator="resize", generator_activation="leaky_relu")
    generator = build_generator(config)
    path = tmp_path / "generator.keras"
    generator.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    z = np.random.default_rng(2).standard_normal((2, 8)).astype("float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(generator(z, training=False)),
        keras.ops.convert_to_numpy(loaded(z, training=False)),
    )


def test_resize_generator_upsampling_comes_from_the_config():
    nearest = build_generator(tiny(image_size=16, generator="resize"))
    bilinear = build_generator(tiny(image_size=16, generator="resize", generator_upsample="bilinear"))
    kinds = {layer.interpolation for layer in bilinear.layers if isinstance(layer, keras.layers.UpSampling2D)}
    assert kinds == {"bilinear"}
    assert {layer.interpolation for layer in nearest.layers if isinstance(layer, keras.layers.UpSampling2D)} == \
        {"nearest"}
    assert bilinear.count_params() == nearest.count_params()  # interpolation has no weights
    with pytest.raises(ConfigError, match="generator_upsample"):
        tiny(generator_upsample="bicubic")


def test_subpixel_upsampling_interleaves_phases_and_starts_as_nearest():
    config = tiny(image_size=16, generator="resize", generator_upsample="subpixel")
    generator = build_generator(config)
    assert not any(isinstance(layer, keras.layers.UpSampling2D) for layer in generator.layers)
    convs = [layer for layer in generator.layers if layer.name.endswith("_subpixel_conv")]
    assert [layer.name for layer in convs] == ["block1_subpixel_conv", "output_subpixel_conv"]
    # a sub-pixel conv has the weights of the nearest path's 3x3 conv times four (one kernel per phase)
    nearest = build_generator(tiny(image_size=16, generator="resize"))
    assert convs[0].kernel.shape == (3, 3, 8, 4 * 4) and convs[1].kernel.shape == (3, 3, 4, 4 * 1)
    assert nearest.get_layer("block1_conv").kernel.shape == (3, 3, 8, 4)
    # ICNR: the four phases start with one kernel, so the output starts as 2x2 copies (nearest upsampling)
    z = np.random.default_rng(0).standard_normal((3, 8)).astype("float32")
    start = keras.ops.convert_to_numpy(generator(z, training=False))
    assert start.shape == (3, 16, 16, 1) and start.std() > 0
    for a in (0, 1):
        for b in (0, 1):
            np.testing.assert_array_equal(start[:, a::2, b::2], start[:, ::2, ::2])
    # the interleave: channel (a·2 + b) of the output conv lands on pixel (2h + a, 2w + b)
    output = generator.get_layer("output_subpixel_conv")
    output.kernel.assign(np.zeros(output.kernel.shape, "float32"))
    output.bias.assign(np.array([0.1, 0.2, 0.3, 0.4], "float32"))
    image = keras.ops.convert_to_numpy(generator(z, training=False))
    for a in (0, 1):
        for b in (0, 1):
            np.testing.assert_allclose(image[:, a::2, b::2], np.tanh(0.1 * (a * 2 + b + 1)), rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# spectral normalisation of D
def test_spectral_norm_bounds_every_layers_largest_singular_value():
    config = tiny(image_size=16, d_norm="spectral")
    discriminator = build_discriminator(config)
    wrapped = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.SpectralNormalization)]
    assert len(wrapped) == 3  # two strided convolutions at 16 px and the logit layer
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in discriminator.layers)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 1)).astype("float32")
    for layer in wrapped:  # large weights, so that an unnormalised layer would be far above 1
        layer.layer.kernel.assign(layer.layer.kernel * 100.0)
    for _ in range(30):  # one power iteration per training call: u converges to the top singular vector
        discriminator(images, training=True)
    for layer in wrapped:
        matrix = np.reshape(layer.layer.kernel.numpy(), (-1, layer.layer.kernel.shape[-1]))
        assert np.linalg.svd(matrix, compute_uv=False)[0] == pytest.approx(1.0, abs=0.02), layer.name
    both = build_discriminator(tiny(image_size=16, d_norm="spectral_batch"))
    kinds = {type(layer).__name__ for layer in both.layers}
    assert {"SpectralNormalization", "BatchNormalization"} <= kinds
    plain = build_discriminator(tiny(image_size=16, d_norm="none"))
    assert not {"SpectralNormalization", "BatchNormalization"} & {type(layer).__name__ for layer in plain.layers}
    with pytest.raises(ConfigError, match="d_norm"):
        tiny(d_norm="layer")


# ------------------------------------------------------------------------------------------------
# which config keys decide the networks (a resume may not change them: config.ARCHITECTURE_KEYS)
#: One other valid value per config key, from TINY at 32 px; every key of Config must be here.
OTHER_VALUES = {
    "data": "slices", "image_size": 64, "channels": 3, "max_images": 10, "subject_regex": "(case_\\d+)",
    "val_fraction": 0.2, "test_fraction": 0.2, "nifti_axis": 1, "demo_count": 50, "cache_dir": "cache",
    "generator": "resize", "generator_upsample": "bilinear", "generator_start": "conv_transpose",
    "generator_activation": "elu", "latent_dim": 16, "g_filters": 8, "g_head_filters": 8, "d_filters": 8,
    "d_dropout": 0.3,
    "loss": "hinge", "label_smoothing": 0.1, "g_learning_rate": 1e-3, "d_learning_rate": 1e-3, "beta_1": 0.9,
    "beta_2": 0.99, "ema": 0.99, "ema_rampup": 0.05, "d_norm": "spectral", "r1_gamma": 0.1, "r2_gamma": 0.1,
    "penalty_every": 4, "augment": "translation", "batch_size": 8, "epochs": 3, "seed": 7,
    "precision": "mixed_bfloat16", "jit_compile": True, "strategy": "default", "grid_size": 4,
    "checkpoint_every": 2, "keep_checkpoints": 1, "gif_frame_ms": 100, "track_ssim": False, "verbose": 1,
    "tensorboard": False, "tensorboard_every_steps": 5, "eval_every": 3, "lr_decay": 0.5,
    "g_widths": "12,6,3", "g_excitation": True, "d_reconstruct": 1.0, "d_minibatch_std": 4, "d_stem_filters": 4,
    "g_bfloat16_rounding": True, "g_feature_matching": 2.0,
    "penalty_rampup": 100,
    "mirror": True,
    "discriminator": "dcgan",  # "residual" needs d_norm "none": checked in test_residual_networks_are_architecture
    "ada_target": 0.0,  # needs augment: checked on its own in test_ada_adds_its_probability_to_the_checkpoint
}


def network_structure(config: Config) -> list:
    """G's and D's layer configs (without initializer seeds and dtype policies, which are no architecture)
    and the names and shapes of G's optimizer variables (the EMA averages live there)."""
    from dcganlib.gan import make_optimizers

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("seed", "dtype")}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        return value

    generator, discriminator = build_generator(config), build_discriminator(config)
    decoder = strip(build_decoder(config).get_config()) if config.d_reconstruct > 0 else None
    g_optimizer, _ = make_optimizers(config, "float32")
    g_optimizer.build(generator.trainable_variables)
    return [strip(generator.get_config()), strip(discriminator.get_config()), decoder,
            [(v.path, tuple(v.shape)) for v in g_optimizer.variables]]


def test_ada_adds_its_probability_to_the_checkpoint():
    """ada_target is a switch key: turning it on adds a variable to the checkpoint, another target does not."""
    import tensorflow as tf

    from dcganlib.gan import build_gan, make_checkpoint

    def checkpointed(config):
        return sorted(make_checkpoint(build_gan(config), tf.Variable(0))._trackable_children())

    base = tiny(image_size=32, augment="translation")
    on, other = base.replace(ada_target=0.6), base.replace(ada_target=0.7)
    assert base.architecture_diff(on) == ["ada_target"] and on.architecture_diff(other) == []
    assert set(checkpointed(on)) - set(checkpointed(base)) == {"augment_probability"}
    assert checkpointed(on) == checkpointed(other)


def test_architecture_keys_are_exactly_those_that_change_the_networks():
    from dataclasses import fields

    from dcganlib.config import ARCHITECTURE_KEYS, SWITCH_KEYS

    assert set(OTHER_VALUES) == {f.name for f in fields(Config)}  # a new key must be classified here
    for base in (tiny(image_size=32, generator="resize"), tiny(image_size=32, generator="radford")):
        structure = network_structure(base)
        changes = [{key: value} for key, value in OTHER_VALUES.items()]
        changes += [{"generator": "radford"}, {"generator": "residual"}, {"label_smoothing": 0.1, "loss": "bce"},
                    {"loss": "lsgan"}]
        for change in changes:
            other = base.replace(**change)
            differs = network_structure(other) != structure
            assert differs == bool(base.architecture_diff(other)), (base.generator, change)
            if differs:
                assert base.architecture_diff(other) == sorted(change), (base.generator, change)
            assert set(base.architecture_diff(other)) <= set(ARCHITECTURE_KEYS + SWITCH_KEYS)
    # A switch key matters only when the feature turns on or off: another dropout rate or EMA decay is a
    # training setting, with the same layers and the same variables (the checkpoint fits).
    for key, on, other_on in (("d_dropout", 0.3, 0.5), ("ema", 0.99, 0.999), ("d_reconstruct", 1.0, 2.0),
                               ("d_minibatch_std", 2, 4)):
        first, second = base.replace(**{key: on}), base.replace(**{key: other_on})
        assert first.architecture_diff(second) == []
        one, two = network_structure(first), network_structure(second)
        assert [layer["class_name"] for layer in one[1]["layers"]] == \
            [layer["class_name"] for layer in two[1]["layers"]] and one[2:] == two[2:]


# ------------------------------------------------------------------------------------------------
# bfloat16 rounding in a float32 generator
def test_bfloat16_rounding_rounds_forward_passes_gradients_and_leaves_bfloat16_alone():
    import tensorflow as tf

    from dcganlib.models import BFloat16Rounding

    layer = BFloat16Rounding()
    x = tf.constant(np.random.default_rng(0).normal(0, 3, (4, 5)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.range(5, dtype=tf.float32))
    want = tf.cast(tf.cast(x, tf.bfloat16), tf.float32).numpy()
    np.testing.assert_array_equal(y.numpy(), want)
    assert y.dtype == tf.float32 and np.any(want != x.numpy())  # really rounded
    assert np.max(np.abs(want - x.numpy()) / np.abs(x.numpy())) <= 2.0 ** -8  # to the nearest of 8 significant bits
    np.testing.assert_array_equal(tape.gradient(loss, x).numpy(), np.tile(np.arange(5, dtype="float32"), (4, 1)))
    b = tf.cast(x, tf.bfloat16)
    np.testing.assert_array_equal(layer(b).numpy(), b.numpy())


@pytest.mark.parametrize("generator", ["resize", "radford"])
def test_bfloat16_rounding_rounds_every_hidden_block_and_nothing_else(generator, tmp_path):
    plain = build_generator(tiny(image_size=32, generator=generator, g_head_filters=4))
    rounded = build_generator(tiny(image_size=32, generator=generator, g_head_filters=4, g_bfloat16_rounding=True))
    names = [layer.name for layer in rounded.layers if layer.name.endswith("_bf16_rounding")]
    # the start's activation; each hidden block's (and the head's) convolution and activation; not the output
    blocks = ("block1", "block2", "head")
    assert names == ["project_bf16_rounding"] + [f"{block}{part}_bf16_rounding" for block in blocks
                                                 for part in ("_conv", "")]
    assert [w.shape for w in rounded.weights] == [w.shape for w in plain.weights]  # no weights of its own
    z = np.random.default_rng(1).standard_normal((3, plain.input.shape[1])).astype("float32")
    a, b = plain(z, training=False).numpy(), rounded(z, training=False).numpy()  # same seeds, same weights
    assert 0 < np.max(np.abs(a - b)) < 0.05
    rounded.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded(z, training=False).numpy(), b)


# ------------------------------------------------------------------------------------------------
# channel schedule, skip-layer excitation, self-supervised D (FastGAN)
def test_g_widths_set_every_block_and_must_fit_the_size():
    config = tiny(image_size=32, generator="resize", g_widths="12,6,3")
    assert generator_widths(config) == [12, 6, 3]
    generator = build_generator(config)
    assert [layer.output.shape[-1] for layer in generator.layers if layer.name.endswith("_bn")] == [12, 6, 3]
    assert generator.output.shape[1:] == (32, 32, 1)
    with pytest.raises(ConfigError, match=r"lists 2 widths, but a 32 px generator has 3 hidden blocks \(at 4, 8, 16"):
        build_generator(tiny(image_size=32, g_widths="12,6"))
    for bad in ("12;6;3", "wide", "12,0,3", "12,,3", "12,6,5000"):
        with pytest.raises(ConfigError, match="g_widths"):
            tiny(g_widths=bad)


def test_skip_layer_excitation_scales_each_channel_of_a_fine_block_by_a_gate_from_a_coarse_one():
    generator = build_generator(tiny(image_size=64, generator="resize", g_excitation=True, g_head_filters=4))
    gates = sorted(layer.name for layer in generator.layers if layer.name.endswith("_excitation_gate"))
    assert gates == ["block2_excitation_gate", "block3_excitation_gate", "head_excitation_gate"]
    # block 3 (32 px) by block 1 (8 px): pooled 2×2 to 4×4, a 4×4 valid conv, LeakyReLU(0.1), 1×1 conv, sigmoid
    probe = keras.Model(generator.input, [generator.get_layer(name).output for name in
                                          ("block1_relu", "block3_relu", "block3_excitation_gate")])
    z = np.random.default_rng(0).normal(size=(3, 8)).astype("float32")
    low, high, gated = (t.numpy() for t in probe(z))
    w4, b4 = (v.numpy() for v in generator.get_layer("block3_excitation_conv4").weights)
    w1, b1 = (v.numpy() for v in generator.get_layer("block3_excitation_conv1").weights)
    pooled = low.reshape(3, 4, 2, 4, 2, -1).mean(axis=(2, 4))
    hidden = np.einsum("bhwc,hwcd->bd", pooled, w4) + b4
    hidden = np.where(hidden > 0, hidden, 0.1 * hidden)
    gate = 1 / (1 + np.exp(-(hidden @ w1[0, 0] + b1)))
    np.testing.assert_allclose(gated, high * gate[:, None, None, :], rtol=1e-4, atol=1e-6)
    # sides 7·2^k: the pooled map of a 7 px block is 7×7 and the conv spans it
    assert build_generator(tiny(image_size=56, generator="resize", g_excitation=True)).output.shape[1:] == (56, 56, 1)


def test_decoder_reads_ds_second_deepest_block_and_redraws_half_resolution():
    config = tiny(image_size=64, d_reconstruct=1.0)  # D widths 4, 8, 16, 32 at 32, 16, 8, 4 px
    discriminator, decoder = build_discriminator(config), build_decoder(config)
    assert tuple(decoder.input.shape[1:]) == (8, 8, 16) and tuple(decoder.output.shape[1:]) == (32, 32, 1)
    view = discriminator_features(discriminator, 8)
    assert [v.path for v in view.trainable_variables] == [v.path for v in discriminator.trainable_variables]
    x = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 1)).astype("float32")
    logits, features = view(x)
    np.testing.assert_allclose(logits.numpy(), discriminator(x).numpy(), rtol=1e-6)
    assert tuple(features.shape) == (2, 8, 8, 16)
    assert np.all(np.abs(decoder(features).numpy()) <= 1.0)
    for size, side in ((16, 8), (28, 14), (128, 64)):
        assert build_decoder(tiny(image_size=size, d_reconstruct=1.0)).output.shape[1] == side


def test_minibatch_stddev_appends_each_groups_mean_spread():
    x = np.random.default_rng(2).normal(size=(4, 3, 3, 2)).astype("float32")
    out = MinibatchStddev(2)(x).numpy()
    assert out.shape == (4, 3, 3, 3)
    np.testing.assert_array_equal(out[..., :2], x)
    for members in ([0, 2], [1, 3]):  # image i in group i mod (B / group_size)
        want = np.sqrt(x[members].var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(out[members, ..., 2], want, rtol=1e-5)
    odd = MinibatchStddev(2)(x[:3]).numpy()  # 2 does not divide 3: one group
    np.testing.assert_allclose(odd[..., 2], np.sqrt(x[:3].var(axis=0) + 1e-8).mean(), rtol=1e-5)
    same = MinibatchStddev(4)(np.repeat(x[:1], 4, axis=0)).numpy()
    np.testing.assert_allclose(same[..., 2], 1e-4, rtol=1e-3)  # no spread: sqrt(1e-8)
    plain, with_std = (build_discriminator(tiny(image_size=32, d_minibatch_std=k)) for k in (0, 4))
    assert with_std.count_params() - plain.count_params() == 4 * 4  # one more 4×4 map into the logit


def test_d_stem_sees_full_resolution_before_the_first_stride_and_leaves_the_rest_of_d_as_it_was():
    plain, stem = (build_discriminator(tiny(image_size=32, d_filters=8, d_stem_filters=k)) for k in (0, 4))
    conv = stem.get_layer("stem_conv")
    assert conv.strides == (1, 1) and conv.kernel_size == (3, 3) and tuple(conv.output.shape[1:]) == (32, 32, 4)
    assert stem.layers[1] is conv and stem.get_layer("block1_conv").input.shape[-1] == 4
    # the stem's 3×3×1×4 kernel and bias, and block 1 reads 4 channels instead of 1 (4×4×3×8 more weights)
    assert stem.count_params() - plain.count_params() == (9 * 4 + 4) + 4 * 4 * 3 * 8
    for name in ("block2_conv", "block3_conv", "logit"):  # D's other initial weights do not move
        for a, b in zip(plain.get_layer(name).get_weights(), stem.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    # one pixel-level change moves the stem's output at that pixel and its 3×3 neighbourhood only
    x = np.zeros((1, 32, 32, 1), "float32")
    y = x.copy()
    y[0, 10, 11, 0] = 1.0
    features = keras.Model(stem.input, conv.output)
    moved = np.any(features(y).numpy() != features(x).numpy(), axis=(0, 3))
    assert moved[9:12, 10:13].all() and moved.sum() == 9
    with pytest.raises(ConfigError, match="d_stem_filters"):
        tiny(d_stem_filters=-1)


# ------------------------------------------------------------------------------------------------
# residual networks (R3GAN's design)
def residual(**changes) -> Config:
    return tiny(**{"generator": "residual", "discriminator": "residual", "d_norm": "none", **changes})


@pytest.mark.parametrize("size", [16, 28, 64, 80])
@pytest.mark.parametrize("channels", [1, 3])
def test_residual_networks_build_every_size_with_one_block_per_side(size, channels):
    config = residual(image_size=size, channels=channels)
    generator, discriminator = build_generator(config), build_discriminator(config)
    base, doublings = size_plan(size)
    g_widths, d_widths = residual_widths(config)
    assert g_widths == generator_widths(config) + [max(generator_widths(config)[-1] // 2, 8)]
    assert d_widths == [discriminator_widths(config)[0]] + discriminator_widths(config)
    adds = [layer for layer in generator.layers if layer.name.endswith("_add")]
    assert [tuple(a.output.shape[1:]) for a in adds] == [(base * 2**i, base * 2**i, w) for i, w in enumerate(g_widths)]
    adds = [layer for layer in discriminator.layers if layer.name.endswith("_add")]
    assert [tuple(a.output.shape[1:]) for a in adds] == [(size // 2**i, size // 2**i, w) for i, w in enumerate(d_widths)]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in generator.layers + discriminator.layers)
    x = np.random.default_rng(0).standard_normal((2, 8)).astype("float32")
    images = keras.ops.convert_to_numpy(generator(x))
    assert images.shape == (2, size, size, channels) and np.abs(images).max() <= 1.0
    assert tuple(discriminator(images).shape) == (2, 1)
    transposed = build_generator(config.replace(generator_start="conv_transpose"))
    assert tuple(transposed.output.shape[1:]) == (size, size, channels)
    assert transposed.count_params() == generator.count_params()  # the same linear map as the dense start


def test_each_residual_block_starts_as_the_identity_and_learns_a_change():
    """The last convolution of every block starts at zero (Fixup), so at initialisation each block passes its
    input through unchanged, whatever the depth; the gradient still reaches that convolution."""
    import tensorflow as tf

    generator = build_generator(residual(image_size=32))
    z = np.random.default_rng(1).standard_normal((3, 8)).astype("float32")
    for layer in (layer for layer in generator.layers if layer.name.endswith("_add")):
        skip, branch = layer.input
        probe = keras.Model(generator.input, [skip, branch])
        skip_value, branch_value = (keras.ops.convert_to_numpy(t) for t in probe(z))
        assert np.abs(skip_value).max() > 0 and np.all(branch_value == 0)
    last = generator.get_layer("stage1_conv2")
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(generator(z) ** 2)
    gradient = tape.gradient(loss, last.kernel)
    assert float(tf.reduce_max(tf.abs(gradient))) > 0


def test_residual_first_convolutions_are_he_scaled_by_the_depth():
    """conv1 of each block: std = gain / sqrt(fan_in) / sqrt(blocks) (the Fixup scaling for two layers)."""
    from dcganlib.models import RESIDUAL_GAINS

    config = residual(image_size=64, g_filters=16, generator_activation="leaky_relu")
    generator = build_generator(config)
    blocks = len(residual_widths(config)[0])
    kernel = keras.ops.convert_to_numpy(generator.get_layer("stage1_conv1").kernel)  # 3×3×64→64 at 8 px
    want = RESIDUAL_GAINS["leaky_relu"] / np.sqrt(kernel[..., 0].size) / np.sqrt(blocks)
    assert abs(kernel.std() / want - 1) < 0.05
    assert np.all(keras.ops.convert_to_numpy(generator.get_layer("stage1_conv2").kernel) == 0)


def test_residual_d_feeds_the_decoder_and_the_minibatch_stddev():
    config = residual(image_size=64, d_reconstruct=1.0, d_minibatch_std=2)
    discriminator, decoder = build_discriminator(config), build_decoder(config)
    logits, features = discriminator_features(discriminator, 8)(np.zeros((2, 64, 64, 1), "float32"))
    assert tuple(features.shape) == tuple((2, *decoder.input.shape[1:])) and tuple(logits.shape) == (2, 1)
    assert discriminator.get_layer("minibatch_stddev").output.shape[-1] == residual_widths(config)[1][-1] + 1


def test_residual_networks_are_architecture_and_refuse_keys_they_do_not_have():
    base = tiny(image_size=32, generator="resize")
    both = base.replace(generator="residual", discriminator="residual", d_norm="none")
    assert base.architecture_diff(both) == ["d_norm", "discriminator", "generator"]
    assert network_structure(both) != network_structure(base.replace(generator="residual", d_norm="none"))
    for change, key in (({"d_norm": "batch"}, "d_norm"), ({"d_stem_filters": 4}, "d_stem_filters"),
                        ({"d_dropout": 0.1}, "d_dropout"), ({"g_head_filters": 4}, "g_head_filters"),
                        ({"g_excitation": True}, "g_excitation"),
                        ({"g_bfloat16_rounding": True}, "g_bfloat16_rounding"),
                        ({"generator_upsample": "subpixel"}, "generator_upsample"),
                        ({"generator_activation": "elu"}, "generator_activation")):
        with pytest.raises(ConfigError, match=key):
            residual(**change)
    with pytest.raises(ConfigError, match="discriminator"):
        tiny(discriminator="resnet")


def test_residual_generator_saves_and_loads_with_identical_outputs(tmp_path):
    generator = build_generator(residual(image_size=16, generator_upsample="bilinear"))
    generator.save(tmp_path / "generator.keras")
    loaded = keras.saving.load_model(tmp_path / "generator.keras", safe_mode=True)
    z = np.random.default_rng(2).standard_normal((2, 8)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(generator(z)), keras.ops.convert_to_numpy(loaded(z)))
