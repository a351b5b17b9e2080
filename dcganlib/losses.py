"""GAN losses as generator/discriminator pairs, computed on discriminator logits.

Notation: ``D(x)`` is the discriminator's *logit* for a real image, ``D(G(z))`` for a generated one,
``σ`` the logistic sigmoid and ``softplus(t) = log(1 + e^t)``. Every function

* casts the logits to float32 first (safe under ``mixed_float16`` / ``mixed_bfloat16``);
* accepts logits of shape ``(B,)`` or ``(B, 1)``;
* returns a float32 scalar: the mean over the batch (each discriminator loss is the *sum* of its real
  and fake means, as in the formulas below).

The BCE pair uses ``-log σ(t) = softplus(-t)`` and ``-log(1 - σ(t)) = softplus(t)``, which stay finite
for logits of any magnitude, where ``log(sigmoid(t))`` underflows to ``-inf`` near ``t = -100``.

Pairs (select one with ``config.loss`` through :func:`get_loss_pair`):

* ``"bce"`` — non-saturating GAN, Goodfellow et al. 2014 (arXiv:1406.2661), with optional one-sided
  label smoothing (Salimans et al. 2016, arXiv:1606.03498);
* ``"lsgan"`` — least squares GAN, Mao et al. 2017 (arXiv:1611.04076), a-b-c = 0-1-1 coding;
* ``"hinge"`` — hinge GAN, Lim & Ye 2017 (arXiv:1705.02894), Miyato et al. 2018 (arXiv:1802.05957);
* ``"rpgan"`` — relativistic pairing GAN, Jolicoeur-Martineau 2019 (arXiv:1807.00734), the loss of
  R3GAN (Huang et al. 2024, arXiv:2501.05441): each real logit is compared with the fake logit drawn
  beside it.

Every generator loss is ``generator_loss(fake_logits, real_logits=None)`` (only the relativistic one
reads the real logits), every discriminator loss ``discriminator_loss(real_logits, fake_logits)``.
"""

from __future__ import annotations

import functools
from typing import Callable

from keras import ops

from .config import Config
from .errors import ConfigError

GeneratorLoss = Callable[..., object]
DiscriminatorLoss = Callable[[object, object], object]


def _float32(logits):
    return ops.cast(logits, "float32")


# ------------------------------------------------------------------------------------------------
# non-saturating binary cross-entropy
def bce_generator_loss(fake_logits, real_logits=None):
    """Non-saturating generator loss (Goodfellow et al. 2014, §3):

    ``L_G = E_z[ -log σ(D(G(z))) ] = E_z[ softplus(-D(G(z))) ]``

    Goodfellow et al. propose it instead of minimising ``log(1 - σ(D(G(z))))``, whose gradient
    vanishes exactly when the discriminator confidently rejects the samples (early training).
    """
    return ops.mean(ops.softplus(-_float32(fake_logits)))


def bce_discriminator_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
    """Discriminator binary cross-entropy with one-sided label smoothing:

    ``L_D = E_x[ -t log σ(D(x)) - (1-t) log(1-σ(D(x))) ] + E_z[ -log(1-σ(D(G(z)))) ]``
    with real target ``t = 1 - label_smoothing`` (Salimans et al. 2016, §3.4; only the real side is
    smoothed, since smoothing the fake side rewards the generator for samples D already rejects).
    In softplus form: ``E_x[ t·softplus(-D(x)) + (1-t)·softplus(D(x)) ] + E_z[ softplus(D(G(z))) ]``.
    With ``label_smoothing=0`` it is ``-log σ(D(x)) - log(1 - σ(D(G(z))))``; both logits 0 give
    ``2 log 2``.
    """
    if not 0.0 <= float(label_smoothing) < 1.0:
        raise ConfigError(f"label_smoothing must be in [0, 1); got {label_smoothing!r}")
    real = _float32(real_logits)
    fake = _float32(fake_logits)
    target = 1.0 - float(label_smoothing)
    real_loss = ops.mean(target * ops.softplus(-real) + (1.0 - target) * ops.softplus(real))
    fake_loss = ops.mean(ops.softplus(fake))
    return real_loss + fake_loss


def feature_matching_loss(real_features, fake_features):
    """Feature matching (Salimans et al. 2016, §3.1): ``mean over positions and channels of
    (E_x f(x) − E_z f(G(z)))²``, the batch means of D's features ``f`` (any shape ``(B, …)``) on the real and
    the generated batch; float32, ≥ 0. The real side is a target: no gradient flows into it."""
    real = ops.stop_gradient(ops.mean(ops.cast(real_features, "float32"), axis=0))
    fake = ops.mean(ops.cast(fake_features, "float32"), axis=0)
    return ops.mean(ops.square(real - fake))


# ------------------------------------------------------------------------------------------------
# least squares
def lsgan_generator_loss(fake_logits, real_logits=None):
    """Least-squares generator loss (Mao et al. 2017, eq. 2 with c = 1):

    ``L_G = ½ E_z[ (D(G(z)) - 1)² ]``
    """
    fake = _float32(fake_logits)
    return 0.5 * ops.mean(ops.square(fake - 1.0))


def lsgan_discriminator_loss(real_logits, fake_logits):
    """Least-squares discriminator loss (Mao et al. 2017, eq. 2 with a = 0, b = 1):

    ``L_D = ½ E_x[ (D(x) - 1)² ] + ½ E_z[ D(G(z))² ]``

    The raw (unbounded) output is regressed onto the targets, so no sigmoid is applied.
    """
    real = _float32(real_logits)
    fake = _float32(fake_logits)
    return 0.5 * ops.mean(ops.square(real - 1.0)) + 0.5 * ops.mean(ops.square(fake))


# ------------------------------------------------------------------------------------------------
# hinge
def hinge_generator_loss(fake_logits, real_logits=None):
    """Hinge-GAN generator loss (Lim & Ye 2017; Miyato et al. 2018, eq. 17):

    ``L_G = -E_z[ D(G(z)) ]``
    """
    return -ops.mean(_float32(fake_logits))


def hinge_discriminator_loss(real_logits, fake_logits):
    """Hinge discriminator loss (Lim & Ye 2017; Miyato et al. 2018, eq. 16):

    ``L_D = E_x[ max(0, 1 - D(x)) ] + E_z[ max(0, 1 + D(G(z))) ]``

    Samples already beyond the margin (``D(x) ≥ 1`` or ``D(G(z)) ≤ -1``) contribute no gradient.
    """
    real = _float32(real_logits)
    fake = _float32(fake_logits)
    return ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))


# ------------------------------------------------------------------------------------------------
# relativistic pairing
def rpgan_generator_loss(fake_logits, real_logits):
    """Relativistic pairing generator loss (Jolicoeur-Martineau 2019; R3GAN, Huang et al. 2024):

    ``L_G = E[ softplus(D(x) − D(G(z))) ]`` over pairs of a real and a generated image (the i-th of each
    batch): G gains where its sample scores above the real one beside it.
    """
    return ops.mean(ops.softplus(_flat(real_logits) - _flat(fake_logits)))


def rpgan_discriminator_loss(real_logits, fake_logits):
    """Relativistic pairing discriminator loss: ``L_D = E[ softplus(D(G(z)) − D(x)) ]``.

    Both logits 0 give ``log 2``. Only the *difference* of the two logits matters, so D cannot win by
    shifting every score; combined with the R1 and R2 penalties it has a unique equilibrium (Huang et al.).
    """
    return ops.mean(ops.softplus(_flat(fake_logits) - _flat(real_logits)))


def _flat(logits):
    return ops.reshape(_float32(logits), (-1,))


# ------------------------------------------------------------------------------------------------
LOSS_PAIRS: dict[str, tuple[GeneratorLoss, DiscriminatorLoss]] = {
    "bce": (bce_generator_loss, bce_discriminator_loss),
    "lsgan": (lsgan_generator_loss, lsgan_discriminator_loss),
    "hinge": (hinge_generator_loss, hinge_discriminator_loss),
    "rpgan": (rpgan_generator_loss, rpgan_discriminator_loss),
}


def get_loss_pair(config: Config) -> tuple[GeneratorLoss, DiscriminatorLoss]:
    """``(generator_loss(fake_logits, real_logits), discriminator_loss(real_logits, fake_logits))`` for
    ``config.loss`` (see the module docstring).

    For ``"bce"`` the discriminator loss carries ``config.label_smoothing``; the config already
    refuses smoothing for the other losses.
    """
    try:
        generator_loss, discriminator_loss = LOSS_PAIRS[config.loss]
    except KeyError:
        raise ConfigError(
            f"config key 'loss' must be one of {', '.join(LOSS_PAIRS)}; got {config.loss!r}"
        ) from None
    if config.loss == "bce" and config.label_smoothing:
        discriminator_loss = functools.partial(bce_discriminator_loss, label_smoothing=config.label_smoothing)
    return generator_loss, discriminator_loss


def discriminator_accuracy(real_logits, fake_logits) -> tuple[object, object]:
    """``(accuracy on real, accuracy on fake)``: fractions with ``D(x) > 0`` and ``D(G(z)) < 0``.

    A logit of 0 is σ = 0.5, the decision boundary for all three losses.
    """
    real = _float32(real_logits)
    fake = _float32(fake_logits)
    return (ops.mean(ops.cast(real > 0.0, "float32")), ops.mean(ops.cast(fake < 0.0, "float32")))


__all__ = [
    "bce_generator_loss",
    "bce_discriminator_loss",
    "lsgan_generator_loss",
    "lsgan_discriminator_loss",
    "hinge_generator_loss",
    "hinge_discriminator_loss",
    "rpgan_generator_loss",
    "rpgan_discriminator_loss",
    "LOSS_PAIRS",
    "get_loss_pair",
    "discriminator_accuracy",
    "feature_matching_loss",
]
