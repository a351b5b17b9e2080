"""Using a generator: the fixed grid noise, drawing samples, saving and loading ``generator.keras``, ``generate``.

Generated images are float32 ``[-1, 1]`` NHWC in memory and 8-bit PNGs on disk (:mod:`dcganlib.pixels`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from . import runs, seeds
from .config import Config
from .errors import ConfigError, RunFolderError
from .files import atomic_path
from .gan import copy_averaged_weights, make_optimizers
from .hardware import dtype_policy, resolve_precision
from .images import save_grid
from .pixels import to_uint8


def fixed_noise(config: Config, count: Optional[int] = None) -> np.ndarray:
    """The grid noise: float32 ``(count or config.grid_size, latent_dim)`` from N(0, I).

    A pure function of ``config.seed`` (stream "grid"), so every epoch's grid (and a resumed run's
    grids) shows the same ``z`` and the GIF frames are comparable.
    """
    rng = seeds.rng(config.seed, "grid")
    return rng.standard_normal((count or config.grid_size, config.latent_dim)).astype(np.float32)


def sample(generator: keras.Model, count: int, seed: int = 0, batch_size: int = 256) -> np.ndarray:
    """``count`` images from ``generator`` for ``z ~ N(0, I)`` of stream "sample" of ``seed``:
    float32 ``[-1, 1]`` ``(count, S, S, C)``."""
    latent_dim = int(generator.input_shape[-1])
    z = seeds.rng(seed, "sample").standard_normal((count, latent_dim)).astype(np.float32)
    parts = [np.asarray(generator(z[i:i + batch_size], training=False), dtype=np.float32)
             for i in range(0, count, batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0,) + tuple(generator.output_shape[1:]), np.float32)


def save_grid_of(generator: keras.Model, noise: np.ndarray, path: Path, label: Optional[str] = None) -> Path:
    """Run ``generator`` in inference mode on ``noise`` and save the images as one grid PNG."""
    images = generator(noise, training=False)
    return save_grid(np.asarray(images, dtype=np.float32), path, label=label)


def save_generator(generator: keras.Model, path: str | os.PathLike) -> Path:
    """``generator.save`` to a temporary ``.keras`` name, then an atomic rename onto ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        generator.save(tmp)
    return path


def load_generator(run_dir: str | os.PathLike) -> keras.Model:
    """The trained generator of a run: ``generator.keras`` (Keras safe mode), or, for a run that has not
    finished, the latest checkpoint restored into a generator rebuilt from ``config.json``."""
    run_dir = Path(run_dir)
    path = run_dir / runs.GENERATOR_FILE
    if path.exists():
        try:
            return keras.models.load_model(path, safe_mode=True, compile=False)
        except Exception as exc:  # whatever Keras raises for a damaged or unsafe file: one line, not a traceback
            raise RunFolderError(f"cannot load {path}: {type(exc).__name__}: {str(exc).splitlines()[0]}; "
                                 "delete it to fall back to the latest checkpoint") from None
    last = runs.latest_checkpoint(run_dir)
    if last is None or not (run_dir / runs.CONFIG_FILE).exists():
        raise RunFolderError(f"no trained generator in {run_dir}: expected {runs.GENERATOR_FILE} or "
                             f"{runs.CONFIG_FILE} with {runs.CHECKPOINT_DIR}/; train into it first")
    return _generator_from_checkpoint(runs.read_config(run_dir), last)


def _generator_from_checkpoint(config: Config, checkpoint: str) -> keras.Model:
    """G rebuilt from ``config`` with the checkpoint's weights (its moving average when ``config.ema > 0``)."""
    from . import models

    precision = resolve_precision(config)
    with dtype_policy(precision):
        generator = models.build_generator(config)
    if config.ema <= 0:
        tf.train.Checkpoint(generator=generator).restore(checkpoint).expect_partial()
        return generator
    # The averaged weights live in G's optimizer: restore it too, then read them out.
    g_optimizer, _ = make_optimizers(config, precision)
    g_optimizer.build(generator.trainable_variables)
    tf.train.Checkpoint(generator=generator, g_optimizer=g_optimizer).restore(checkpoint).expect_partial()
    averaged = keras.models.clone_model(generator)
    copy_averaged_weights(g_optimizer, generator, averaged)
    return averaged


def generate(run_dir: str | os.PathLike, count: int = 64, out_dir: Optional[str | os.PathLike] = None,
             seed: int = 0, grid: bool = False) -> list[Path]:
    """Write ``count`` generated images as 8-bit PNGs ``generated_0000.png``… (and ``grid.png``).

    ``out_dir`` defaults to ``run_dir/generated``. Returns the image paths (grid excluded).
    """
    from PIL import Image

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"--count must be a positive integer, got {count!r}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"run folder not found: {run_dir}")
    generator = load_generator(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / runs.GENERATED_DIR
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create output folder {out}: {exc.strerror}") from None
    pixels = to_uint8(sample(generator, count, seed=seed))
    width = max(4, len(str(count - 1)))
    paths = []
    for index, picture in enumerate(pixels):
        path = out / f"generated_{index:0{width}d}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture).save(tmp, format="PNG")
        paths.append(path)
    if grid:
        save_grid(pixels, out / "grid.png")
    print(f"dcganlib: wrote {count} images of {pixels.shape[1]}x{pixels.shape[2]} to {out}"
          + (" (and grid.png)" if grid else ""))
    return paths


__all__ = ["fixed_noise", "sample", "save_grid_of", "save_generator", "load_generator", "generate"]
