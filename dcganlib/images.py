"""Image grids, the training GIF, and showing a grid inline — Pillow and imageio only, no matplotlib.

The CLI's ``gif`` command and every epoch's grid go through here, so they never pay for importing
matplotlib or TensorFlow. Images passed in are float ``[-1, 1]`` or uint8 ``[0, 255]``, NHWC with 1 or 3
channels (``(N, H, W)`` is grayscale; :func:`dcganlib.pixels.as_uint8_images`). Every file is written
atomically (:mod:`dcganlib.files`), so a killed job never leaves half a PNG or GIF.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from . import runs
from .config import GIF_FRAME_MS_RANGE, Config
from .errors import DataError, RunFolderError
from .files import atomic_path
from .pixels import as_uint8_images

#: PNG text key under which :func:`save_grid` records a drawn label, so :func:`make_gif` does not
#: draw a second one on the same frame.
LABEL_KEY = "dcganlib:label"


# ------------------------------------------------------------------------------------------------
# grids
def images_to_grid(images: Any, rows: Optional[int] = None) -> np.ndarray:
    """Tile images row by row into one uint8 picture.

    ``images``: ``(N, H, W[, C])`` float in ``[-1, 1]`` or uint8, C in {1, 3}. ``rows`` defaults to
    ``ceil(N / ceil(sqrt(N)))`` with ``ceil(sqrt(N))`` columns (36 → 6 × 6, 5 → 2 rows × 3).
    Returns uint8 ``(rows·H, cols·W)`` for grayscale or ``(rows·H, cols·W, 3)``; unused cells are 0.
    """
    array = as_uint8_images(images)
    n, height, width, channels = array.shape
    if rows is None:
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
    else:
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"rows must be a positive integer, got {rows!r}")
        cols = math.ceil(n / rows)
    grid = np.zeros((rows * height, cols * width, channels), dtype=np.uint8)
    for index in range(min(n, rows * cols)):
        r, c = divmod(index, cols)
        grid[r * height:(r + 1) * height, c * width:(c + 1) * width] = array[index]
    return grid[..., 0] if channels == 1 else grid


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def add_label_strip(picture: np.ndarray, text: str) -> np.ndarray:
    """Return ``picture`` (uint8 ``(H, W)`` or ``(H, W, 3)``) with a black strip on top holding ``text``.

    The strip is ``max(12, round(0.07 · W))`` pixels high; the font shrinks until the text fits.
    """
    picture = np.asarray(picture, dtype=np.uint8)
    width = picture.shape[1]
    strip = max(12, round(0.07 * width))
    mode = "L" if picture.ndim == 2 else "RGB"
    canvas = Image.new(mode, (width, picture.shape[0] + strip), color=0)
    canvas.paste(Image.fromarray(picture, mode=mode), (0, strip))
    draw = ImageDraw.Draw(canvas)
    size = max(6, round(strip * 0.75))
    font = _font(size)
    while size > 6 and draw.textlength(text, font=font) > width - 4:
        size -= 1
        font = _font(size)
    white = 255 if mode == "L" else (255, 255, 255)
    draw.text((3, strip / 2), text, fill=white, font=font, anchor="lm")
    return np.asarray(canvas)


def save_grid(images: Any, path: str | os.PathLike, *, label: Optional[str] = None,
              rows: Optional[int] = None) -> Path:
    """Write :func:`images_to_grid` of ``images`` as a PNG (atomically); return the path.

    ``label`` (e.g. ``"epoch 3"``) is drawn in a strip above the grid and recorded in the PNG's text
    chunk :data:`LABEL_KEY`, so a GIF made from these grids is not labelled twice.
    """
    path = Path(path)
    picture = images_to_grid(images, rows=rows)
    info = PngImagePlugin.PngInfo()
    if label:
        picture = add_label_strip(picture, label)
        info.add_text(LABEL_KEY, label)
    with atomic_path(path) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG", pnginfo=info)
    return path


# ------------------------------------------------------------------------------------------------
# GIFs
def _read_frame(path: Path) -> tuple[np.ndarray, Optional[str]]:
    try:
        with Image.open(path) as image:
            image.load()
            existing = image.info.get(LABEL_KEY)
            gray = image.mode in ("L", "LA", "I", "I;16", "1") or (image.mode == "P" and _gray_palette(image))
            return np.asarray(image.convert("L" if gray else "RGB")), existing
    except FileNotFoundError:
        raise DataError(f"GIF frame not found: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read GIF frame {path}: {exc}") from None


def _gray_palette(image: Image.Image) -> bool:
    palette = np.asarray(image.convert("RGB"))
    return bool((palette[..., 0] == palette[..., 1]).all() and (palette[..., 1] == palette[..., 2]).all())


def make_gif(frame_paths: Sequence[str | os.PathLike], out: str | os.PathLike, *, frame_ms: int = Config.gif_frame_ms,
             labels: Optional[Sequence[str]] = None) -> Path:
    """Write the PNG frames as a GIF that loops forever, ``frame_ms`` milliseconds per frame.

    ``labels[i]`` is drawn in a strip above frame ``i`` unless that frame already carries a label
    written by :func:`save_grid`. Frames must all have the same size; grayscale frames stay
    grayscale. GIF stores durations in hundredths of a second, so ``frame_ms`` is rounded to 10 ms.
    (Pillow merges consecutive identical frames into one longer frame.)
    """
    paths = [Path(p) for p in frame_paths]
    if not paths:
        raise ValueError(f"no frames given for the GIF {out}")
    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"{len(labels)} labels for {len(paths)} GIF frames; give one label per frame")
    low, high = GIF_FRAME_MS_RANGE
    if isinstance(frame_ms, bool) or not isinstance(frame_ms, int) or not low <= frame_ms <= high:
        raise DataError(f"frame_ms must be an integer number of milliseconds in [{low}, {high}]; got {frame_ms!r}")
    frames = []
    for index, path in enumerate(paths):
        frame, existing = _read_frame(path)
        if labels is not None and labels[index] and existing is None:
            frame = add_label_strip(frame, labels[index])
        frames.append(frame)
    if any(f.ndim == 3 for f in frames):  # one colour frame makes the whole GIF colour
        frames = [np.repeat(f[..., None], 3, axis=-1) if f.ndim == 2 else f for f in frames]
    for path, frame in zip(paths, frames):
        if frame.shape != frames[0].shape:
            raise DataError(f"GIF frame {path} is {frame.shape[1]}×{frame.shape[0]} px but {paths[0]} is "
                            f"{frames[0].shape[1]}×{frames[0].shape[0]}; all frames must have one size")
    out = Path(out)
    with atomic_path(out) as tmp:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", is_batch=True, duration=frame_ms, loop=0)
    return out


def make_run_gif(run_dir: str | os.PathLike, out: Optional[str | os.PathLike] = None,
                 frame_ms: Optional[int] = None) -> Path:
    """GIF of a run's per-epoch grids: ``grids/epoch_*.png`` → ``out`` (default ``run_dir/training.gif``).

    Frames are ordered by epoch number and labelled ``"epoch N"``; ``frame_ms`` defaults to the run's
    ``config.json`` ``gif_frame_ms`` (400 if the run has no config).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"run folder not found: {run_dir}")
    grids = runs.epoch_grids(run_dir)
    if not grids:
        raise RunFolderError(f"no epoch grids in {run_dir / runs.GRIDS_DIR} (expected epoch_0001.png, …); "
                             "train at least one epoch into this run folder first")
    if frame_ms is None:  # the run's setting; a folder of grids without a config gets the default
        has_config = (run_dir / runs.CONFIG_FILE).exists()
        frame_ms = runs.read_config(run_dir).gif_frame_ms if has_config else Config.gif_frame_ms
    out = Path(out) if out is not None else run_dir / runs.GIF_FILE
    return make_gif([path for _, path in grids], out, frame_ms=frame_ms,
                    labels=[f"epoch {epoch}" for epoch, _ in grids])


# ------------------------------------------------------------------------------------------------
# notebooks
def show_epoch_grid(run_dir: str | os.PathLike, epoch: int, *, width: Optional[int] = 320) -> Optional[Path]:
    """Show ``run_dir/grids/epoch_NNNN.png`` inline in a notebook (IPython), ``width`` px wide.

    Outside IPython it prints the path instead. Returns the path, or None if that epoch has no grid.
    """
    path = runs.grid_path(run_dir, epoch)
    if not path.is_file():
        return None
    try:
        from IPython.display import Image as IPythonImage, display
    except ImportError:
        print(f"epoch {epoch}: {path}")
        return path
    display(IPythonImage(filename=str(path), width=width))
    return path


__all__ = ["LABEL_KEY", "images_to_grid", "add_label_strip", "save_grid", "make_gif", "make_run_gif", "show_epoch_grid"]
