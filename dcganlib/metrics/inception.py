"""FID and KID on ImageNet InceptionV3 features — only with weights already on disk, never downloaded."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import DataError
from ..pixels import as_float_images
from .distances import feature_statistics, frechet_distance, kernel_distance

# Where Keras caches the ImageNet InceptionV3 weights without the classifier head.
INCEPTION_WEIGHTS_NAME = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_SIZE = 299



def find_inception_weights(path: Optional[str | os.PathLike] = None) -> tuple[Optional[Path], str]:
    """Locate InceptionV3 ImageNet weights without downloading: ``path`` if given, else the Keras cache.

    Returns ``(path, "")`` or ``(None, reason)``. The cache file is
    ``$KERAS_HOME/models/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`` (KERAS_HOME defaults
    to ``~/.keras``).
    """
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise DataError(f"--inception-weights {path}: " + ("is a folder" if path.is_dir() else "file not found"))
        if not _is_hdf5(path):  # checked here: Keras would fail only after the whole evaluation, with a traceback
            raise DataError(f"--inception-weights {path} is not an HDF5 file (no HDF5 signature); pass Keras' "
                            f"InceptionV3 weights file, {INCEPTION_WEIGHTS_NAME}")
        return path, ""
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    cached = home / "models" / INCEPTION_WEIGHTS_NAME
    if cached.is_file():
        return cached, ""
    return None, (f"InceptionV3 weights not found ({cached} is absent and no --inception-weights FILE was "
                  "given); FID/KID skipped — dcganlib never downloads at run time")


#: The first bytes of an HDF5 file's superblock; it sits at byte 0, 512, 1024, 2048, … (after a user block).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path: Path) -> bool:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        offset = 0
        while offset + len(HDF5_SIGNATURE) <= size:
            handle.seek(offset)
            if handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def inception_preprocess(images: Any, batch: int = 64):
    """Images → the InceptionV3 input: ``(N, 299, 299, 3)`` float32 in ``[-1, 1]``.

    Bilinear resize to 299 px; grayscale replicated to 3 channels. ``[-1, 1]`` is what
    ``keras.applications.inception_v3.preprocess_input`` produces from ``[0, 255]``, and it is
    already the library's range, so values pass unchanged.
    """
    import tensorflow as tf

    images = as_float_images(images)
    out = []
    for i in range(0, len(images), batch):
        x = tf.image.resize(tf.constant(images[i:i + batch]), (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        out.append(tf.clip_by_value(x, -1.0, 1.0).numpy())
    return np.concatenate(out) if out else np.zeros((0, INCEPTION_SIZE, INCEPTION_SIZE, 3), np.float32)


def inception_features(images: Any, weights: str | os.PathLike, batch: int = 32) -> np.ndarray:
    """InceptionV3 (ImageNet, no top, global average pool) features ``(N, 2048)`` float64."""
    import keras

    try:
        model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=str(weights),
                                               input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    except (ValueError, OSError) as exc:  # an HDF5 file holding other weights, or a damaged one
        raise DataError(f"cannot load InceptionV3 weights from {weights}: {(str(exc).splitlines() or [''])[0]}; "
                        f"pass Keras' {INCEPTION_WEIGHTS_NAME}") from None
    images = as_float_images(images)
    features = [model.predict(inception_preprocess(images[i:i + batch]), verbose=0)
                for i in range(0, len(images), batch)]
    return np.concatenate(features).astype(np.float64)


def fid_kid(real: Any, generated: Any, weights: Optional[str | os.PathLike] = None, seed: int = 0) -> dict[str, Any]:
    """FID and KID on InceptionV3 features, or ``{"available": False, "reason": ...}`` without weights.

    Never downloads: ``weights`` is a file, else the Keras cache is used if present (see
    :func:`find_inception_weights`).
    """
    path, reason = find_inception_weights(weights)
    if path is None:
        return {"available": False, "reason": reason}
    started = time.perf_counter()
    real_features = inception_features(real, path)
    generated_features = inception_features(generated, path)
    fid = frechet_distance(*feature_statistics(real_features), *feature_statistics(generated_features))
    kid = kernel_distance(real_features, generated_features, seed=seed)
    return {"available": True, "weights": str(path), "fid": fid, "kid": kid, "real_count": len(real_features),
            "generated_count": len(generated_features), "seconds": time.perf_counter() - started,
            "definition": "InceptionV3 (ImageNet) global-average-pool features of images resized bilinearly to "
                          "299 px, gray replicated to 3 channels, range [-1, 1]; FID = Fréchet distance of "
                          "Gaussian fits; KID = unbiased MMD² with kernel (x·y/2048 + 1)³ over subsets"}


__all__ = ["INCEPTION_WEIGHTS_NAME", "INCEPTION_SIZE", "find_inception_weights", "inception_preprocess",
           "inception_features", "fid_kid"]
