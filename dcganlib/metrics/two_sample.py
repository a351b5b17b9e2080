"""Classifier two-sample test (Lopez-Paz & Oquab 2017): can a CNN trained to tell real from candidate
images do it on images it has never seen?

A fresh CNN is trained on ``train_real`` (label 1) against ``train_candidate`` (label 0) and scored on
``test_real`` against ``test_candidate``. Under the null hypothesis (both sets drawn from one
distribution) the held-out accuracy is Binomial(n, ½)/n, whatever the classifier learned, so the test
is valid however it was trained; its *power* comes from a classifier that can see the differences
(depth, normalisation) and from many images. The classifier (:func:`build_classifier`):

    input (S×S×C, area-downsampled to at most 64 px)
    → [3×3 conv, batch norm, LeakyReLU 0.2] × 5 with :data:`WIDTHS` (8, 16, 32, 64, 64) filters,
      stride 1 in the first block (full-resolution texture), stride 2 in the others
    → global average pool → one logit (> 0 = "real")

trained with Adam (1e-3), binary cross-entropy, batch 64, a fixed number of epochs, in float32 on every
machine (so the verdict does not depend on the CPU's bf16 units). Reported: held-out accuracy with its
Wilson 95 % interval and the one-sided binomial p-value against chance (0.5), ROC AUC with its DeLong
95 % interval, the ROC curve, and the sample counts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import seeds
from ..pixels import as_float_images

MAX_SIZE = 64
WIDTHS = (8, 16, 32, 64, 64)
LEARNING_RATE = 1e-3
NEGATIVE_SLOPE = 0.2
DEFINITION = (
    f"classifier two-sample test (Lopez-Paz & Oquab 2017): a fresh CNN ({len(WIDTHS)} blocks of 3x3 conv + batch "
    f"norm + LeakyReLU {NEGATIVE_SLOPE}, {'-'.join(map(str, WIDTHS))} filters, stride 1 then 2; global average "
    f"pool; 1 logit; float32; images area-downsampled to at most {MAX_SIZE} px) trained with Adam "
    f"{LEARNING_RATE:g} on train_real vs train_candidate, scored on test_real vs test_candidate: accuracy (Wilson "
    "95% CI, one-sided binomial p-value against 0.5) and ROC AUC (DeLong 95% CI); 0.5 = indistinguishable, "
    "1.0 = perfectly separable"
)


def build_classifier(shape: tuple[int, ...], seed: int):
    """The CNN of the module docstring for images of ``shape`` (H, W, C), weights seeded by ``seed``,
    compiled with its optimizer and loss."""
    import keras

    model = _network(shape, seed)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return model


def _network(shape: tuple[int, ...], seed: int):
    """The classifier's layers and seeded initial weights, not compiled."""
    import keras

    from ..hardware import dtype_policy

    init_seeds = iter(range(seeds.int_seed(seed, "two-sample"), 2**31))
    with dtype_policy("float32"):
        inputs = keras.Input(shape=shape)
        x = inputs
        for block, filters in enumerate(WIDTHS):
            x = keras.layers.Conv2D(filters, 3, strides=1 if block == 0 else 2, padding="same", use_bias=False,
                                    kernel_initializer=keras.initializers.HeNormal(seed=next(init_seeds)))(x)
            x = keras.layers.BatchNormalization(momentum=0.9)(x)
            x = keras.layers.LeakyReLU(negative_slope=NEGATIVE_SLOPE)(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=next(init_seeds)))(x)
        return keras.Model(inputs, outputs, name="two_sample_classifier")


#: One compiled classifier per input shape, reused by every test of this process: its traced train and
#: predict functions are the costly part of a small test (≈ 1–2 s of graph building against ≈ 0.1 s of
#: training on 64 images), and every test loads fresh weights and a fresh optimizer state into it.
_TRAINERS: dict[tuple[int, ...], tuple[Any, list]] = {}


def _fresh_classifier(shape: tuple[int, ...], seed: int):
    """A classifier in exactly the state :func:`build_classifier` ``(shape, seed)`` starts in (seeded weights,
    zeroed batch-norm statistics, Adam at step 0), reusing this process's compiled one for ``shape``."""
    if shape not in _TRAINERS:
        model = build_classifier(shape, seed)
        model.optimizer.build(model.trainable_variables)
        _TRAINERS[shape] = model, [v.numpy() for v in model.optimizer.variables]
        return model
    model, optimizer_start = _TRAINERS[shape]
    model.set_weights(_network(shape, seed).get_weights())
    for variable, value in zip(model.optimizer.variables, optimizer_start):
        variable.assign(value)
    return model


def roc_auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> tuple[float, float]:
    """ROC AUC = P(score of a positive > score of a negative) (ties count ½), and its DeLong variance.

    DeLong, DeLong & Clarke-Pearson (1988): with the structural components
    V10_i = mean_j ψ(x_i, y_j) and V01_j = mean_i ψ(x_i, y_j), Var(AUC) = s²(V10)/m + s²(V01)/n.
    """
    x = np.asarray(positive_scores, dtype=np.float64)[:, None]
    y = np.asarray(negative_scores, dtype=np.float64)[None, :]
    psi = (x > y).astype(np.float64) + 0.5 * (x == y)
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    auc = float(psi.mean())
    var = (v10.var(ddof=1) / len(v10) if len(v10) > 1 else 0.0) + (v01.var(ddof=1) / len(v01) if len(v01) > 1 else 0.0)
    return auc, float(var)


def roc_curve(positive_scores: np.ndarray, negative_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every threshold, from (0, 0) to (1, 1)."""
    scores = np.concatenate([positive_scores, negative_scores]).astype(np.float64)
    labels = np.concatenate([np.ones(len(positive_scores)), np.zeros(len(negative_scores))])
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tpr = np.r_[0.0, np.cumsum(labels)[last_of_tie] / max(1, labels.sum())]
    fpr = np.r_[0.0, np.cumsum(1 - labels)[last_of_tie] / max(1, (1 - labels).sum())]
    return fpr, tpr


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95 % for the default ``z``)."""
    if trials == 0:
        return float("nan"), float("nan")
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def _downsampled(images: np.ndarray, max_size: int) -> np.ndarray:
    if max(images.shape[1:3]) <= max_size:
        return images
    import tensorflow as tf

    return np.concatenate([tf.image.resize(images[i:i + 512], (max_size, max_size), method="area").numpy()
                           for i in range(0, len(images), 512)])


def _epoch_batches(x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, rng: np.random.Generator):
    """``epochs`` passes over ``(x, y)``, each in a fresh order drawn from ``rng``, cut into batches of
    ``batch_size`` (each pass ends with its own smaller batch): one ``tf.data`` stream, so that one
    ``fit()`` call trains every epoch. A ``fit()`` per epoch would train on the same batches but pay
    Keras's set-up and tear-down of a call each time: about half of a call at test sizes. The stream holds
    the orders and gathers each batch when it is drawn, so the images are in memory once, not once a pass."""
    import tensorflow as tf

    images, labels = tf.constant(x), tf.constant(y)
    passes = [tf.data.Dataset.from_tensor_slices(rng.permutation(len(x))).batch(batch_size) for _ in range(epochs)]
    stream = passes[0]
    for more in passes[1:]:
        stream = stream.concatenate(more)
    return stream.map(lambda rows: (tf.gather(images, rows), tf.gather(labels, rows)))


def _scores(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The classifier's logits for ``images`` in inference mode, float64 ``(N,)``: the model called on batches
    of ``batch_size``, as ``predict()`` would, without building ``predict()``'s data pipeline per call."""
    return np.concatenate([np.asarray(model(images[i:i + batch_size], training=False))[:, 0]
                           for i in range(0, len(images), batch_size)]).astype(np.float64)


def two_sample_test(train_real: Any, train_candidate: Any, test_real: Any, test_candidate: Any, *, seed: int = 0,
                    epochs: int = 6, batch_size: int = 64, max_size: int = MAX_SIZE) -> dict[str, Any]:
    """Train the classifier on ``train_real`` vs ``train_candidate``, score ``test_real`` vs ``test_candidate``.

    Images: uint8 or ``[-1, 1]``, ``(N, H, W[, C])``, all of one shape. Deterministic for a given ``seed``
    (seeded weights, seeded shuffling on the "two-sample" stream, float32 CPU kernels). Returns accuracy,
    ``accuracy_ci95``, ``p_value`` (one-sided binomial, H0: accuracy = 0.5), ``auc``, ``auc_ci95``, the
    counts, and ``roc`` = {"fpr", "tpr"} for plotting.
    """
    from scipy import stats

    sets = [as_float_images(x, name) for x, name in ((train_real, "train_real"), (train_candidate, "train_candidate"),
                                                    (test_real, "test_real"), (test_candidate, "test_candidate"))]
    shape = sets[0].shape[1:]
    if any(s.shape[1:] != shape for s in sets):
        raise ValueError(f"the two-sample test needs images of one shape; got {[s.shape[1:] for s in sets]}")
    if min(len(s) for s in sets) < 4:
        raise ValueError(f"the two-sample test needs at least 4 images in each set; got {[len(s) for s in sets]}")
    sets = [_downsampled(s, max_size) for s in sets]
    train_real, train_candidate, test_real, test_candidate = sets
    x_train = np.concatenate([train_real, train_candidate])
    y_train = np.r_[np.ones(len(train_real)), np.zeros(len(train_candidate))].astype(np.float32)
    model = _fresh_classifier(tuple(x_train.shape[1:]), seed)
    model.fit(_epoch_batches(x_train, y_train, epochs, batch_size, seeds.rng(seed, "two-sample")),
              shuffle=False, verbose=0)
    real_scores, candidate_scores = (_scores(model, images) for images in (test_real, test_candidate))
    trials = len(real_scores) + len(candidate_scores)
    # balanced accuracy equals plain accuracy for equal test sets; it stays fair when they differ
    correct = int((real_scores > 0).sum() + (candidate_scores <= 0).sum())
    accuracy = 0.5 * (float(np.mean(real_scores > 0)) + float(np.mean(candidate_scores <= 0)))
    auc, var = roc_auc(real_scores, candidate_scores)
    half_width = 1.959964 * math.sqrt(var)
    fpr, tpr = roc_curve(real_scores, candidate_scores)
    return {
        "accuracy": accuracy,
        "accuracy_ci95": list(wilson_interval(correct, trials)),
        "p_value": float(stats.binomtest(correct, trials, 0.5, alternative="greater").pvalue),
        "auc": auc,
        "auc_ci95": [max(0.0, auc - half_width), min(1.0, auc + half_width)],
        "train_counts": {"real": int(len(train_real)), "candidate": int(len(train_candidate))},
        "test_counts": {"real": int(len(test_real)), "candidate": int(len(test_candidate))},
        "epochs": epochs,
        "image_size": int(train_real.shape[1]),
        "seed": seed,
        "roc": {"fpr": fpr, "tpr": tpr},
    }


__all__ = ["DEFINITION", "build_classifier", "two_sample_test", "roc_auc", "roc_curve", "wilson_interval"]
