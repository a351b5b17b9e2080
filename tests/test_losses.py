"""Loss pairs against hand-computed values, stability at extreme logits, gradient directions."""

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from dcganlib.config import Config  # noqa: E402
from dcganlib.errors import ConfigError  # noqa: E402
from dcganlib.losses import (  # noqa: E402
    bce_discriminator_loss,
    bce_generator_loss,
    discriminator_accuracy,
    get_loss_pair,
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    rpgan_discriminator_loss,
    rpgan_generator_loss,
)

LOG2 = math.log(2.0)


def value(tensor) -> float:
    array = np.asarray(tensor)
    assert array.shape == () and array.dtype == np.float32
    return float(array)


def logits(*values) -> tf.Tensor:
    return tf.constant([[v] for v in values], dtype=tf.float32)  # (B, 1) like the discriminator


# ------------------------------------------------------------------------------------------------
# BCE
def test_bce_at_zero_logits_is_log2_per_term():
    zero = logits(0.0, 0.0)
    assert value(bce_generator_loss(zero)) == pytest.approx(LOG2, rel=1e-6)
    assert value(bce_discriminator_loss(zero, zero)) == pytest.approx(2 * LOG2, rel=1e-6)


def test_bce_known_values():
    # real logits 2 and -1, fake logits -3 and 1:
    # real term: mean(-log σ(2), -log σ(-1)) = mean(log(1+e^-2), log(1+e^1))
    #          = mean(0.126928, 1.313262) = 0.720095
    # fake term: mean(-log(1-σ(-3)), -log(1-σ(1))) = mean(log(1+e^-3), log(1+e^1))
    #          = mean(0.048587, 1.313262) = 0.680924
    real, fake = logits(2.0, -1.0), logits(-3.0, 1.0)
    assert value(bce_discriminator_loss(real, fake)) == pytest.approx(0.720095 + 0.680924, abs=1e-5)
    # generator: mean(-log σ(-3), -log σ(1)) = mean(log(1+e^3), log(1+e^-1)) = mean(3.048587, 0.313262)
    assert value(bce_generator_loss(fake)) == pytest.approx((3.048587 + 0.313262) / 2, abs=1e-5)


def test_bce_label_smoothing_is_one_sided():
    # ε = 0.1, real logit 3, fake logit 0:
    # real: 0.9·softplus(-3) + 0.1·softplus(3) = 0.9·0.048587 + 0.1·3.048587 = 0.348587
    # fake: softplus(0) = log 2 (unchanged by smoothing)
    loss = bce_discriminator_loss(logits(3.0), logits(0.0), label_smoothing=0.1)
    assert value(loss) == pytest.approx(0.348587 + LOG2, abs=1e-5)
    # a smoothed discriminator is penalised for over-confidence on real images
    confident = logits(20.0)
    assert value(bce_discriminator_loss(confident, logits(-20.0), label_smoothing=0.1)) == pytest.approx(
        0.1 * 20.0, abs=1e-4
    )
    with pytest.raises(ConfigError, match="label_smoothing"):
        bce_discriminator_loss(logits(0.0), logits(0.0), label_smoothing=1.0)


# ------------------------------------------------------------------------------------------------
# least squares and hinge
def test_lsgan_known_values():
    real, fake = logits(2.0, 0.0), logits(0.5, -1.0)
    # D: ½·mean((2-1)², (0-1)²) + ½·mean(0.5², (-1)²) = ½·1 + ½·0.625 = 0.8125
    assert value(lsgan_discriminator_loss(real, fake)) == pytest.approx(0.8125, abs=1e-6)
    # G: ½·mean((0.5-1)², (-1-1)²) = ½·(0.25 + 4)/2 = 1.0625
    assert value(lsgan_generator_loss(fake)) == pytest.approx(1.0625, abs=1e-6)


def test_hinge_known_values():
    real, fake = logits(2.0, 0.5), logits(-3.0, 0.25)
    # D: mean(relu(1-2), relu(1-0.5)) + mean(relu(1-3), relu(1+0.25)) = 0.25 + 0.625 = 0.875
    assert value(hinge_discriminator_loss(real, fake)) == pytest.approx(0.875, abs=1e-6)
    # G: -mean(-3, 0.25) = 1.375
    assert value(hinge_generator_loss(fake)) == pytest.approx(1.375, abs=1e-6)


def test_rpgan_known_values_compare_each_real_logit_with_its_fake_partner():
    real, fake = logits(2.0, 0.0), logits(0.0, 2.0)
    softplus = lambda t: math.log1p(math.exp(t))  # noqa: E731
    # D: mean(softplus(0 - 2), softplus(2 - 0)); G: mean(softplus(2 - 0), softplus(0 - 2)) — pairs, not means
    expected = (softplus(-2.0) + softplus(2.0)) / 2
    assert value(rpgan_discriminator_loss(real, fake)) == pytest.approx(expected, abs=1e-6)
    assert value(rpgan_generator_loss(fake, real)) == pytest.approx(expected, abs=1e-6)
    assert value(rpgan_discriminator_loss(logits(0.0), logits(0.0))) == pytest.approx(LOG2, abs=1e-6)
    # shifting every logit by the same amount changes nothing: only differences count
    assert value(rpgan_discriminator_loss(logits(5.0, 3.0), logits(3.0, 5.0))) == pytest.approx(expected, abs=1e-6)
    # pairing matters: the same logits in another order give another loss
    assert value(rpgan_discriminator_loss(logits(2.0, 0.0), logits(2.0, 0.0))) == pytest.approx(LOG2, abs=1e-6)


def test_rpgan_gradients_raise_real_and_lower_fake_logits():
    real = tf.Variable(logits(0.3, -0.2))
    fake = tf.Variable(logits(0.4, 0.1))
    with tf.GradientTape(persistent=True) as tape:
        loss_d = rpgan_discriminator_loss(real, fake)
        loss_g = rpgan_generator_loss(fake, real)
    assert (tape.gradient(loss_d, real).numpy() < 0).all() and (tape.gradient(loss_d, fake).numpy() > 0).all()
    assert (tape.gradient(loss_g, fake).numpy() < 0).all()


# ------------------------------------------------------------------------------------------------
# properties shared by every pair
PAIRS = [
    (bce_generator_loss, bce_discriminator_loss),
    (lsgan_generator_loss, lsgan_discriminator_loss),
    (hinge_generator_loss, hinge_discriminator_loss),
]


@pytest.mark.parametrize("g_loss, d_loss", PAIRS)
def test_finite_at_extreme_logits(g_loss, d_loss):
    extreme = logits(100.0, -100.0)
    assert math.isfinite(value(g_loss(extreme)))
    assert math.isfinite(value(d_loss(extreme, extreme)))
    # BCE at ±100 must be the exact asymptote, not inf/0 from log(sigmoid)
    if g_loss is bce_generator_loss:
        assert value(g_loss(logits(-100.0))) == pytest.approx(100.0, rel=1e-6)
        assert value(d_loss(logits(-100.0), logits(100.0))) == pytest.approx(200.0, rel=1e-6)


@pytest.mark.parametrize("g_loss, d_loss", PAIRS)
def test_gradient_directions(g_loss, d_loss):
    # D lowers its loss by raising D(x) and lowering D(G(z)); G by raising D(G(z)).
    real = tf.Variable(logits(0.3, -0.2))
    fake = tf.Variable(logits(0.4, 0.1))  # positive, so every pair pushes it down
    with tf.GradientTape(persistent=True) as tape:
        loss_d = d_loss(real, fake)
        loss_g = g_loss(fake)
    assert (tape.gradient(loss_d, real).numpy() < 0).all()
    assert (tape.gradient(loss_d, fake).numpy() > 0).all()
    assert (tape.gradient(loss_g, fake).numpy() < 0).all()


@pytest.mark.parametrize("g_loss, d_loss", PAIRS)
def test_low_precision_logits_give_float32_and_flat_shape_works(g_loss, d_loss):
    flat = tf.constant([0.5, -0.5], dtype=tf.float32)
    column = tf.reshape(flat, (2, 1))
    half = tf.cast(column, tf.bfloat16)
    assert value(g_loss(flat)) == pytest.approx(value(g_loss(column)))
    assert value(d_loss(flat, flat)) == pytest.approx(value(d_loss(column, column)))
    assert value(g_loss(half)) == pytest.approx(value(g_loss(column)), abs=1e-6)  # ±0.5 exact in bf16


# ------------------------------------------------------------------------------------------------
def test_get_loss_pair_follows_config_and_generator_losses_take_the_real_logits_too():
    for name in ("bce", "lsgan", "hinge"):  # the non-relativistic ones ignore them
        g_loss, _ = get_loss_pair(Config(loss=name))
        assert value(g_loss(logits(0.5), logits(3.0))) == value(g_loss(logits(0.5)))
    assert get_loss_pair(Config(loss="rpgan")) == (rpgan_generator_loss, rpgan_discriminator_loss)


def test_get_loss_pair_follows_config():
    assert get_loss_pair(Config(loss="lsgan")) == (lsgan_generator_loss, lsgan_discriminator_loss)
    assert get_loss_pair(Config(loss="hinge")) == (hinge_generator_loss, hinge_discriminator_loss)
    assert get_loss_pair(Config()) == (bce_generator_loss, bce_discriminator_loss)
    g_loss, d_loss = get_loss_pair(Config(loss="bce", label_smoothing=0.1))
    assert g_loss is bce_generator_loss
    assert value(d_loss(logits(3.0), logits(0.0))) == pytest.approx(0.348587 + LOG2, abs=1e-5)


def test_discriminator_accuracy():
    acc_real, acc_fake = discriminator_accuracy(logits(1.0, -1.0, 2.0, 0.5), logits(-1.0, 1.0, 3.0, 2.0))
    assert value(acc_real) == pytest.approx(0.75)
    assert value(acc_fake) == pytest.approx(0.25)


def test_feature_matching_is_the_squared_distance_of_the_batch_means_with_the_real_side_fixed():
    from dcganlib.losses import feature_matching_loss

    rng = np.random.default_rng(4)
    real = tf.constant(rng.normal(0, 1, (6, 2, 2, 3)).astype("float32"))
    fake = tf.constant(rng.normal(0.5, 1, (4, 2, 2, 3)).astype("float32"))  # batch sizes may differ
    want = np.mean((real.numpy().mean(axis=0) - fake.numpy().mean(axis=0)) ** 2)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([real, fake])
        loss = feature_matching_loss(real, fake)
    assert value(loss) == pytest.approx(want, rel=1e-6) and loss.dtype == tf.float32
    assert tape.gradient(loss, real) is None  # a target, not a variable
    grad = 2 * (fake.numpy().mean(axis=0) - real.numpy().mean(axis=0)) / (2 * 2 * 3) / 4
    np.testing.assert_allclose(tape.gradient(loss, fake).numpy(), np.broadcast_to(grad, (4, 2, 2, 3)), rtol=1e-5)
    assert value(feature_matching_loss(real, tf.cast(real, tf.bfloat16))) == pytest.approx(0.0, abs=1e-4)
