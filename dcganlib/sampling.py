"""Using a generator: the fixed grid noise, drawing samples, saving and loading ``generator.keras``, ``generate``.

Generated images are float32 ``[-1, 1]`` NHWC in memory and 8-bit PNGs on disk (:mod:`dcganlib.pixels`).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from . import runs, seeds
from .config import Config
from .errors import ConfigError, RunFolderError
from .files import atomic_path, remove_orphaned_temporaries, write_json
from .gan import copy_averaged_weights, make_optimizers, restore_newest
from .hardware import available_memory_bytes, dtype_policy, resolve_precision
from .images import save_grid
from .pixels import to_uint8
from .progress import Progress


def fixed_noise(config: Config, count: Optional[int] = None) -> np.ndarray:
    """The grid noise: float32 ``(count or config.grid_size, latent_dim)`` from N(0, I).

    A pure function of ``config.seed`` (stream "grid"), so every epoch's grid (and a resumed run's
    grids) shows the same ``z`` and the GIF frames are comparable.
    """
    rng = seeds.rng(config.seed, "grid")
    return rng.standard_normal((count or config.grid_size, config.latent_dim)).astype(np.float32)


def sample(generator: keras.Model, count: int, seed: int = 0, batch_size: int = 256,
           progress: Optional[Progress] = None) -> np.ndarray:
    """``count`` images from ``generator`` for ``z ~ N(0, I)`` of stream "sample" of ``seed``:
    float32 ``[-1, 1]`` ``(count, S, S, C)``. ``progress`` (optional) counts the images as batches finish."""
    latent_dim = int(generator.input_shape[-1])
    z = seeds.rng(seed, "sample").standard_normal((count, latent_dim)).astype(np.float32)
    return images_of(generator, z, batch_size, progress)


def images_of(generator: keras.Model, noise: np.ndarray, batch_size: int = 256,
              progress: Optional[Progress] = None) -> np.ndarray:
    """``generator`` in inference mode on ``noise`` ``(N, latent_dim)``, in batches: float32 ``[-1, 1]``
    ``(N, S, S, C)``."""
    parts = []
    for start in range(0, len(noise), batch_size):
        parts.append(np.asarray(generator(noise[start:start + batch_size], training=False), dtype=np.float32))
        if progress is not None:
            progress.update(len(parts[-1]))
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


def load_generator(run_dir: str | os.PathLike, epoch: Optional[int] = None) -> keras.Model:
    """The trained generator of a run: ``generator.keras`` (Keras safe mode; the best epoch's when the run
    tracked quality, :mod:`dcganlib.tracking`); for a run that has not finished (or lost that file), the best
    epoch's generator so far (``checkpoints/best-epoch_NNNN.keras``), else the newest readable checkpoint
    (:func:`dcganlib.gan.restore_newest`) restored into a generator rebuilt from ``config.json``.

    ``epoch`` asks for the generator of that epoch instead: the best-generator file of that epoch, or the
    checkpoint of that epoch (:class:`RunFolderError` listing the epochs on disk when there is neither).
    """
    run_dir = Path(run_dir)
    if epoch is not None:
        return _generator_of_epoch(run_dir, epoch)
    path = run_dir / runs.GENERATOR_FILE
    if path.exists():
        return _load_keras_file(path)
    best = runs.best_generators(run_dir)
    if best:
        return _load_keras_file(best[0][1])
    if not runs.checkpoints(run_dir) or not (run_dir / runs.CONFIG_FILE).exists():
        raise RunFolderError(f"no trained generator in {run_dir}: expected {runs.GENERATOR_FILE} or "
                             f"{runs.CONFIG_FILE} with {runs.CHECKPOINT_DIR}/; train into it first")
    return _generator_from_checkpoint(runs.read_config(run_dir), run_dir)


def saved_keras_version(path: str | os.PathLike) -> Optional[str]:
    """The Keras version a ``.keras`` file names in its ``metadata.json``; None when the file is not a
    readable Keras archive (damaged, cut short, or something else)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return str(json.loads(archive.read("metadata.json"))["keras_version"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def _load_keras_file(path: Path) -> keras.Model:
    """A ``.keras`` file loaded in safe mode; a failure is one :class:`RunFolderError` whose advice fits the
    cause and never risks a good file: a damaged file is renamed aside (not deleted), a file of another Keras
    version is kept for that version, a file carrying Python code is left to the user's judgement."""
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # whatever Keras raises for a damaged, foreign or unsafe file: one line
        text = str(exc).splitlines()[0] if str(exc) else ""
        saved = saved_keras_version(path)
        aside = (f"rename it aside (e.g. to {path.name}{runs.DAMAGED_SUFFIX}) and the command falls back to the "
                 "run's other generator files and checkpoints")
        if saved is None:
            advice = f"the file is damaged or not a Keras model: {aside}"
        elif "safe_mode" in text:
            advice = ("it carries Python code, which safe mode does not run: if you trust it, load it yourself "
                      f"with keras.models.load_model(path, safe_mode=False); otherwise {aside}")
        elif saved != keras.__version__:
            advice = (f"it was saved by Keras {saved} and this is Keras {keras.__version__}: the file is probably "
                      f"intact, keep it and load it with Keras {saved} (pip install keras=={saved})")
        else:
            advice = f"it was saved by this Keras version ({saved}) but does not load: {aside}"
        raise RunFolderError(f"cannot load {path}: {type(exc).__name__}: {text}; {advice}") from None


def epochs_on_disk(run_dir: str | os.PathLike) -> list[int]:
    """The epochs whose generator a run folder still holds (checkpoints and best-generator files), sorted."""
    return sorted({runs.checkpoint_epoch(p) for p in runs.checkpoints(run_dir)}
                  | {epoch for epoch, _ in runs.best_generators(run_dir)})


def _generator_of_epoch(run_dir: Path, epoch: int) -> keras.Model:
    best = dict(runs.best_generators(run_dir))
    if epoch in best:
        return _load_keras_file(best[epoch])
    if epoch not in {runs.checkpoint_epoch(p) for p in runs.checkpoints(run_dir)}:
        held = ", ".join(map(str, epochs_on_disk(run_dir))) or "none"
        raise RunFolderError(f"{run_dir} holds no generator of epoch {epoch} (a run keeps its newest checkpoints and "
                             f"its best epoch's generator); epochs on disk: {held}")
    return _generator_from_checkpoint(runs.read_config(run_dir), run_dir, epoch)


def _generator_from_checkpoint(config: Config, run_dir: Path, epoch: Optional[int] = None) -> keras.Model:
    """G rebuilt from ``config`` with the weights of the run's newest readable checkpoint (of ``epoch``
    when given; their moving average when ``config.ema > 0``)."""
    from . import models

    precision = resolve_precision(config)
    with dtype_policy(precision):
        generator = models.build_generator(config)
    purpose = f"load the generator of {run_dir}" + (f" at epoch {epoch}" if epoch is not None else "")
    if config.ema <= 0:
        restore_newest(run_dir, lambda: tf.train.Checkpoint(generator=generator), complete=False, purpose=purpose,
                       epoch=epoch)
        return generator
    # The averaged weights live in G's optimizer: restore it too, then read them out.
    g_optimizer, _ = make_optimizers(config, precision)
    g_optimizer.build(generator.trainable_variables)
    restore_newest(run_dir, lambda: tf.train.Checkpoint(generator=generator, g_optimizer=g_optimizer),
                   complete=False, purpose=purpose, epoch=epoch)
    averaged = keras.models.clone_model(generator)
    copy_averaged_weights(g_optimizer, generator, averaged)
    return averaged


#: The record ``generate`` keeps in its output folder: what it wrote there, written first with
#: ``"complete": false`` and again, last, with ``"complete": true`` (a killed generate is recognisable).
GENERATED_MANIFEST = runs.GENERATED_MANIFEST
#: ``generate --npy``: all generated images as one uint8 ``(N, S, S, C)`` array.
GENERATED_STACK = "generated.npy"
#: float32 values per image pixel while sampling (the batches and their concatenation) + the uint8 copy.
SAMPLE_BYTES_PER_VALUE = 2 * 4 + 1


def check_sample_memory(count: int, shape: tuple[int, ...], flag: str = "--count") -> None:
    """Refuse ``count`` images of ``shape`` (H, W, C) that would not fit in the memory available now:
    ``count × H × W × C ×`` :data:`SAMPLE_BYTES_PER_VALUE` bytes, estimated before anything is allocated."""
    need = count * int(np.prod(shape)) * SAMPLE_BYTES_PER_VALUE
    available = available_memory_bytes()
    if available is not None and need > available:
        raise ConfigError(f"{flag} {count} needs about {need / 1e9:.1f} GB of memory for images of "
                          f"{'x'.join(map(str, shape))} but {available / 1e9:.1f} GB are available; "
                          f"use a smaller {flag}")


def generate(run_dir: str | os.PathLike, count: int = 64, out_dir: Optional[str | os.PathLike] = None,
             seed: int = 0, grid: bool = False, overwrite: bool = False, npy: bool = False,
             epoch: Optional[int] = None) -> list[Path]:
    """Write ``count`` generated images as 8-bit PNGs ``generated_0000.png``… (and ``grid.png``), from the
    run's generator (:func:`load_generator`; ``epoch``: that epoch's).

    ``npy=True`` also writes them as one uint8 stack ``generated.npy`` of shape ``(count, S, S, C)``
    (values ``[0, 255]``, the PNGs' pixels) for augmentation pipelines: ``np.load(path)``.
    ``out_dir`` defaults to ``run_dir/generated``. It must be absent or empty; with ``overwrite=True`` it
    may be a folder of an earlier generate: the files that generate wrote there (listed in its
    :data:`GENERATED_MANIFEST`) are replaced, nothing else is touched. The manifest is rewritten last with
    ``"complete": true``. Returns the image paths (grid and stack excluded).
    """
    from PIL import Image

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"--count must be a positive integer, got {count!r}")
    seeds.check_seed(seed)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"run folder not found: {run_dir}")
    out = Path(out_dir) if out_dir is not None else run_dir / runs.GENERATED_DIR
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file; give a folder")
    generator = load_generator(run_dir, epoch)
    check_sample_memory(count, tuple(generator.output_shape[1:]))  # before anything of that size exists
    width = max(4, len(str(count - 1)))
    names = [f"generated_{index:0{width}d}.png" for index in range(count)] + (["grid.png"] if grid else []) + (
        [GENERATED_STACK] if npy else [])
    earlier = _check_generate_folder(out, names, overwrite)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create output folder {out}: {exc.strerror}") from None
    record = {"run_dir": str(run_dir), "count": count, "seed": seed, "grid": grid, "npy": npy}
    # Listed before anything is written: a generate killed from here on leaves a manifest naming every
    # file it may have written, marked incomplete.
    write_json(out / GENERATED_MANIFEST, {**record, "complete": False, "files": sorted(set(earlier) | set(names))})
    for name in set(earlier) - set(names):
        (out / name).unlink(missing_ok=True)
    with Progress(f"sampling {count} images", total=count, unit="images") as bar:
        pixels = to_uint8(sample(generator, count, seed=seed, progress=bar))
    paths = []
    with Progress(f"writing {count} PNGs to {out}", total=count, unit="files") as bar:
        for name, picture in zip(names, pixels):  # the PNGs' names come first
            path = out / name
            with atomic_path(path) as tmp:
                Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture).save(tmp, format="PNG")
            paths.append(path)
            bar.update()
    extras = []
    if npy:
        with atomic_path(out / GENERATED_STACK) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, pixels, allow_pickle=False)
        extras.append(f"{GENERATED_STACK} {tuple(pixels.shape)} uint8")
    if grid:
        save_grid(pixels, out / "grid.png")
        extras.append("grid.png")
    write_json(out / GENERATED_MANIFEST, {**record, "complete": True, "files": names})
    print(f"dcganlib: wrote {count} images of {pixels.shape[1]}x{pixels.shape[2]} to {out}"
          + (f" (and {', '.join(extras)})" if extras else ""))
    return paths


def _check_generate_folder(out: Path, names: list[str], overwrite: bool) -> list[str]:
    """The rules for generate's output folder (see :func:`generate`); the names an earlier generate wrote
    there (to be replaced), ``[]`` for a new or empty folder."""
    remove_orphaned_temporaries(out)  # half-written images of a killed generate
    present = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not present:
        return []
    if not overwrite:
        raise RunFolderError(f"output folder {out} is not empty ({len(present)} entries); pass --overwrite to "
                             "replace the images an earlier generate wrote there, or choose another --out")
    try:
        earlier = json.loads((out / GENERATED_MANIFEST).read_text())["files"]
        if not all(isinstance(n, str) and n == Path(n).name and n != GENERATED_MANIFEST for n in earlier):
            raise ValueError("a listed name is not a plain file name")
    except (OSError, ValueError, KeyError, TypeError):
        raise RunFolderError(f"refusing --overwrite of {out}: it has no readable {GENERATED_MANIFEST}, so it does "
                             "not hold images of generate; choose another --out") from None
    foreign = sorted(set(names) & set(present) - set(earlier))
    if foreign:
        raise RunFolderError(f"refusing --overwrite of {out}: {', '.join(foreign[:3])} would replace files that "
                             f"generate did not write (not in {GENERATED_MANIFEST}); move them or choose another --out")
    return list(earlier)


__all__ = [
    "GENERATED_MANIFEST", "GENERATED_STACK", "fixed_noise", "sample", "images_of", "save_grid_of", "save_generator",
    "load_generator", "epochs_on_disk", "check_sample_memory", "generate"
]
