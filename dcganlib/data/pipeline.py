"""The ``tf.data`` input pipeline: uint8 arrays in memory → shuffled float32 ``[-1, 1]`` batches for ``fit()``."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..pixels import tensor_to_float


def make_tf_dataset(images_u8: np.ndarray, batch_size: int, *, seed: int, shuffle: bool = True,
                    drop_remainder: bool = True):
    """Batches of float32 ``[-1, 1]`` images ``(B, S, S, C)`` from uint8 ``(N, S, S, C)``, prefetched.

    The images stay one uint8 tensor on the host; the dataset shuffles *indices* (seeded, reshuffled
    each epoch), batches them and gathers + casts + scales a whole batch in one vectorised op, so
    per-image Python/graph overhead never limits training and the graph holds no huge constant.
    """
    import tensorflow as tf

    images = np.asarray(images_u8)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise TypeError(f"make_tf_dataset expects uint8 images (N, S, S, C); got {images.dtype} {images.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    count = len(images)
    if count == 0 or (drop_remainder and count < batch_size):
        raise DataError(f"only {count} images for batch_size {batch_size}; lower batch_size (--batch-size) "
                        "or add images (see max_images)")
    with tf.device("/CPU:0"):
        # One host tensor, captured by the map function (not a per-element from_tensor_slices
        # pipeline); a plain tensor rather than a tf.Variable so a distribution-strategy scope around
        # this call does not turn it into a mirrored variable.
        store = tf.convert_to_tensor(images)
    indices = tf.data.Dataset.range(count)
    if shuffle:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    batches = indices.batch(batch_size, drop_remainder=drop_remainder)

    @tf.autograph.experimental.do_not_convert
    def gather(index):
        return tensor_to_float(tf.gather(store, index))

    dataset = batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def epoch_stream(dataset, steps_per_epoch: int, initial_epoch: int = 0):
    """One endless stream of epochs (``dataset`` repeated), starting at epoch ``initial_epoch``.

    A seeded ``tf.data`` shuffle draws a new order for every iterator created on it, and ``fit()``
    creates a varying number of them (two per epoch in Keras 3.15, one more under a distribution
    strategy). Handing ``fit()`` one repeated stream with ``steps_per_epoch`` makes it keep a single
    iterator for the whole run, so epoch ``e``'s order depends on ``(seed, e)`` only, and skipping
    the batches of the finished epochs puts a resumed run on exactly the orders an uninterrupted run
    sees. (Skipping costs one pass over the uint8 batches per finished epoch, no training.)
    """
    return dataset.repeat().skip(initial_epoch * steps_per_epoch)


__all__ = ["make_tf_dataset", "epoch_stream"]
