"""The ``tf.data`` input pipeline: uint8 arrays in memory → shuffled float32 ``[-1, 1]`` batches for ``fit()``."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..pixels import tensor_to_float


def _host_images(images_u8: np.ndarray, caller: str):
    """The uint8 ``(N, S, S, C)`` images as one host tensor: captured by the map function (not a per-element
    ``from_tensor_slices`` pipeline), and a plain tensor rather than a ``tf.Variable`` so a
    distribution-strategy scope around the caller does not turn it into a mirrored variable."""
    import tensorflow as tf

    images = np.asarray(images_u8)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise TypeError(f"{caller} expects uint8 images (N, S, S, C); got {images.dtype} {images.shape}")
    with tf.device("/CPU:0"):
        return tf.convert_to_tensor(images)


def _gathered(index_batches, store, mirrored: bool = False):
    """Batches of indices → float32 ``[-1, 1]`` image batches: one vectorised gather + cast + scale per
    batch, so per-image Python/graph overhead never limits training; prefetched. With ``mirrored``, index
    ``i + N`` (``N`` images in ``store``) is image ``i`` flipped left to right."""
    import tensorflow as tf

    count = int(store.shape[0])

    @tf.autograph.experimental.do_not_convert
    def gather(index):
        if not mirrored:
            return tensor_to_float(tf.gather(store, index))
        images = tf.gather(store, index % count)
        flip = tf.reshape(index >= count, [-1, 1, 1, 1])
        return tensor_to_float(tf.where(flip, tf.reverse(images, axis=[2]), images))

    return index_batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE)


def make_tf_dataset(images_u8: np.ndarray, batch_size: int, *, seed: int, shuffle: bool = True,
                    drop_remainder: bool = True):
    """Batches of float32 ``[-1, 1]`` images ``(B, S, S, C)`` from uint8 ``(N, S, S, C)``, prefetched.

    The images stay one uint8 tensor on the host; the dataset shuffles *indices* (seeded, reshuffled
    each epoch), batches them and gathers + casts + scales a whole batch in one vectorised op.
    """
    import tensorflow as tf

    store = _host_images(images_u8, "make_tf_dataset")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    count = int(store.shape[0])
    if count == 0 or (drop_remainder and count < batch_size):
        raise DataError(f"only {count} images for batch_size {batch_size}; lower batch_size (--batch-size) "
                        "or add images (see max_images)")
    indices = tf.data.Dataset.range(count)
    if shuffle:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    return _gathered(indices.batch(batch_size, drop_remainder=drop_remainder), store)


def epoch_stream(images_u8: np.ndarray, batch_size: int, steps_per_epoch: int, *, seed: int,
                 initial_epoch: int = 0, mirror: bool = False):
    """The endless batches ``fit()`` trains on: epoch after epoch from ``initial_epoch`` (0-based), each
    ``steps_per_epoch`` full batches of float32 ``[-1, 1]`` images ``(B, S, S, C)`` in that epoch's order.

    ``mirror``: each image of an epoch is flipped left to right with probability 1/2, drawn per epoch like the
    order (stateless, seeded with ``(e, seed)``), so a left-right mirror image is as likely as the image
    (StyleGAN's ``--mirror``; the config key ``mirror``).

    Epoch ``e``'s order is a stateless shuffle of the indices seeded with ``(seed, e)``
    (``tf.random.experimental.stateless_shuffle``): it depends on nothing else. Not on how many iterators
    ``fit()`` creates (Keras 3.15 makes two per epoch, one more under a distribution strategy), and not on
    ``tf.distribute`` rewriting the pipeline to split each batch over workers (a stateful seeded shuffle
    restarts its stream there: the workers of a multi-worker run would see other orders than one process);
    a resumed run starts at its epoch's order directly.
    """
    import tensorflow as tf

    store = _host_images(images_u8, "epoch_stream")
    count = int(store.shape[0])
    if steps_per_epoch < 1 or steps_per_epoch * batch_size > count:
        raise DataError(f"{count} images cannot fill {steps_per_epoch} batches of {batch_size}; lower batch_size "
                        "(--batch-size) or add images (see max_images)")
    used = steps_per_epoch * batch_size

    @tf.autograph.experimental.do_not_convert
    def epoch_indices(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64),
                                                         seed=tf.stack([tf.constant(seed, tf.int64), epoch]))[:used]
        if mirror:  # its own stream: (epoch, seed), the order's seed reversed
            flips = tf.random.stateless_uniform([used], seed=tf.stack([epoch, tf.constant(seed, tf.int64)])) < 0.5
            order += tf.cast(flips, tf.int64) * count
        return tf.data.Dataset.from_tensor_slices(order)

    indices = tf.data.Dataset.counter(start=initial_epoch).flat_map(epoch_indices)
    return _gathered(indices.batch(batch_size, drop_remainder=True), store, mirrored=mirror)


__all__ = ["make_tf_dataset", "epoch_stream"]
