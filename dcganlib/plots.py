"""Image grids, training GIFs and report figures.

* Grids and GIFs (:func:`images_to_grid`, :func:`save_grid`, :func:`make_gif`, :func:`make_run_gif`) use
  NumPy, Pillow and imageio only: the CLI's ``gif`` command does not pay for importing TensorFlow.
* Figures (:func:`plot_history`, :func:`plot_model_diagram`, :func:`plot_sample_grid`,
  :func:`plot_image_histograms`) are matplotlib figures made through ``pyplot`` so notebooks show them
  inline; :func:`save_figure` writes them to ``images/`` as PNG (≥ 150 dpi) and PDF under stable names.
  Without a display (a cluster node, CI) matplotlib is switched to the non-interactive Agg backend.

Images passed in are either float in ``[-1, 1]`` (the library's convention; mapped with
``round((x + 1) · 127.5)``, clipped) or already ``uint8`` in ``[0, 255]`` (used as they are), NHWC with
1 or 3 channels; ``(N, H, W)`` is read as grayscale. Every file is written atomically (a temporary
name in the same folder, then :func:`os.replace`), so a killed job never leaves half a PNG or GIF.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import matplotlib

# Pick Agg before pyplot loads when nothing can show a window; notebooks (ipykernel sets
# MPLBACKEND) and desktops keep their own backend.
if (
    sys.platform.startswith("linux")
    and not os.environ.get("MPLBACKEND")
    and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    and "ipykernel" not in sys.modules
):
    matplotlib.use("Agg")

import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin  # noqa: E402

from .errors import DataError, RunFolderError  # noqa: E402
from .files import atomic_path  # noqa: E402

#: PNG text key under which :func:`save_grid` records a drawn label, so :func:`make_gif` does not
#: draw a second one on the same frame.
LABEL_KEY = "dcganlib:label"
MIN_DPI = 150
_EPOCH_GRID = re.compile(r"^epoch_(\d+)\.png$")


# ------------------------------------------------------------------------------------------------
# files


# ------------------------------------------------------------------------------------------------
# grids
def _as_uint8_nhwc(images: Any) -> np.ndarray:
    array = np.asarray(images)
    if array.ndim == 2:
        array = array[None]
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise DataError(f"images must be (N, H, W), (N, H, W, 1) or (N, H, W, 3); got shape {array.shape}")
    if array.shape[0] == 0:
        raise DataError("no images to draw: the array is empty")
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"images must be float in [-1, 1] or uint8; got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise DataError("images contain NaN or Inf values (did training diverge?)")
    return np.clip(np.rint((array + 1.0) * 127.5), 0, 255).astype(np.uint8)


def images_to_grid(images: Any, rows: int | None = None) -> np.ndarray:
    """Tile images row by row into one uint8 picture.

    ``images``: ``(N, H, W[, C])`` float in ``[-1, 1]`` or uint8, C in {1, 3}. ``rows`` defaults to
    ``ceil(N / ceil(sqrt(N)))`` with ``ceil(sqrt(N))`` columns (36 → 6 × 6, 5 → 2 rows × 3).
    Returns uint8 ``(rows·H, cols·W)`` for grayscale or ``(rows·H, cols·W, 3)``; unused cells are 0.
    """
    array = _as_uint8_nhwc(images)
    n, height, width, channels = array.shape
    if rows is None:
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
    else:
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise DataError(f"rows must be a positive integer, got {rows!r}")
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


def save_grid(images: Any, path: str | os.PathLike, *, label: str | None = None,
              rows: int | None = None) -> Path:
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
def _read_frame(path: Path) -> tuple[np.ndarray, str | None]:
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


def make_gif(frame_paths: Sequence[str | os.PathLike], out: str | os.PathLike, *, frame_ms: int = 400,
             labels: Sequence[str] | None = None) -> Path:
    """Write the PNG frames as a GIF that loops forever, ``frame_ms`` milliseconds per frame.

    ``labels[i]`` is drawn in a strip above frame ``i`` unless that frame already carries a label
    written by :func:`save_grid`. Frames must all have the same size; grayscale frames stay
    grayscale. GIF stores durations in hundredths of a second, so ``frame_ms`` is rounded to 10 ms.
    (Pillow merges consecutive identical frames into one longer frame.)
    """
    paths = [Path(p) for p in frame_paths]
    if not paths:
        raise DataError(f"no frames given for the GIF {out}")
    if labels is not None and len(labels) != len(paths):
        raise DataError(f"{len(labels)} labels for {len(paths)} GIF frames; give one label per frame")
    if isinstance(frame_ms, bool) or not isinstance(frame_ms, int) or not 10 <= frame_ms <= 60_000:
        raise DataError(f"frame_ms must be an integer number of milliseconds in [10, 60000]; got {frame_ms!r}")
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


def epoch_grids(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``[(epoch, path), …]`` for ``run_dir/grids/epoch_*.png``, sorted by epoch number (not text)."""
    found = []
    grids = Path(run_dir) / "grids"
    if grids.is_dir():
        for path in grids.iterdir():
            match = _EPOCH_GRID.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return sorted(found)


def make_run_gif(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                 frame_ms: int | None = None) -> Path:
    """GIF of a run's per-epoch grids: ``grids/epoch_*.png`` → ``out`` (default ``run_dir/training.gif``).

    Frames are ordered by epoch number and labelled ``"epoch N"``; ``frame_ms`` defaults to the run's
    ``config.json`` ``gif_frame_ms`` (400 if the run has no config).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"run folder not found: {run_dir}")
    grids = epoch_grids(run_dir)
    if not grids:
        raise RunFolderError(f"no epoch grids in {run_dir / 'grids'} (expected epoch_0001.png, …); "
                             "train at least one epoch into this run folder first")
    if frame_ms is None:
        frame_ms = _run_frame_ms(run_dir)
    out = Path(out) if out is not None else run_dir / "training.gif"
    return make_gif([path for _, path in grids], out, frame_ms=frame_ms,
                    labels=[f"epoch {epoch}" for epoch, _ in grids])


def _run_frame_ms(run_dir: Path) -> int:
    config_path = run_dir / "config.json"
    if not config_path.exists():
        return 400
    try:
        value = json.loads(config_path.read_text()).get("gif_frame_ms", 400)
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise RunFolderError(f"{config_path} is not a valid config JSON object ({exc}); pass frame_ms "
                             "explicitly or repair the file") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RunFolderError(f"{config_path}: 'gif_frame_ms' must be an integer number of milliseconds, "
                             f"got {value!r}")
    return value


# ------------------------------------------------------------------------------------------------
# figures
def save_figure(fig: Figure, name: str, folder: str | os.PathLike = "images", *, dpi: int = MIN_DPI,
                close: bool = False) -> tuple[Path, Path]:
    """Write ``fig`` as ``folder/name.png`` (``dpi`` ≥ 150) and ``folder/name.pdf``; return both paths.

    File names are exactly ``name`` + suffix so a README can embed them; the PDF carries no creation
    date, so re-running a notebook does not produce a spurious diff. ``close=True`` releases the
    figure (scripts that make many figures); notebooks keep it open to show it.
    """
    stem = name[:-4] if name.lower().endswith((".png", ".pdf")) else name
    if not stem or Path(stem).name != stem:
        raise DataError(f"figure name must be a plain file name without folders, got {name!r}")
    if dpi < MIN_DPI:
        raise DataError(f"figures are written at ≥ {MIN_DPI} dpi for reports; got dpi={dpi}")
    folder = Path(folder)
    png, pdf = folder / f"{stem}.png", folder / f"{stem}.pdf"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    with atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
    if close:
        plt.close(fig)
    return png, pdf


def figure_and_axes(ax: Any, figsize: tuple[float, float]) -> tuple[Figure, Any]:
    """``(fig, ax)``: a new figure of ``figsize`` inches when ``ax`` is None, else ``ax`` and its figure
    (so every ``plot_*`` function can draw alone or into a panel of a larger figure)."""
    if ax is None:
        return plt.subplots(figsize=figsize)
    return ax.figure, ax


def plot_sample_grid(images: Any, title: str | None = None, *, rows: int | None = None,
                     ax: Any = None) -> Figure:
    """Show :func:`images_to_grid` of ``images`` (``[-1, 1]`` floats or uint8) without axes."""
    grid = images_to_grid(images, rows=rows)
    scale = 6.0 / max(grid.shape[:2])
    fig, ax = figure_and_axes(ax, (grid.shape[1] * scale, grid.shape[0] * scale + (0.4 if title else 0)))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def plot_image_histograms(images_by_name: Mapping[str, Any], *, bins: int = 64, log: bool = True,
                          ax: Any = None) -> Figure:
    """Overlaid intensity histograms (0–255 scale, density) of several image sets, e.g. per split.

    ``images_by_name``: ``{"train": uint8 or [-1, 1] array, …}``. A log y-axis (default) keeps the
    brain's intensities visible next to the large black background peak.
    """
    if not images_by_name:
        raise DataError("no image sets given for the histogram")
    fig, ax = figure_and_axes(ax, (6, 3.5))
    edges = np.linspace(0, 256, bins + 1)
    for name, images in images_by_name.items():
        values = _as_uint8_nhwc(images).ravel()
        ax.hist(values, bins=edges, density=True, histtype="step", linewidth=1.5, log=log,
                label=f"{name} (n={len(np.asarray(images))})")
    ax.set_xlabel("pixel intensity (0–255)")
    ax.set_ylabel("density")
    ax.set_xlim(0, 256)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# history
def _read_history(history: str | os.PathLike | Iterable[Mapping[str, Any]]) -> list[dict[str, float]]:
    if isinstance(history, (str, os.PathLike)):
        path = Path(history)
        try:
            with path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
        except FileNotFoundError:
            raise DataError(f"history file not found: {path} (a run writes history.csv after its first "
                            "epoch)") from None
        source = str(path)
    else:
        rows = [dict(row) for row in history]
        source = "history rows"
    if not rows:
        raise DataError(f"{source} holds no epochs yet")
    parsed = []
    for row in rows:
        values: dict[str, float] = {}
        for key, value in row.items():
            if key is None or value in (None, ""):
                continue
            try:
                values[key] = float(value)
            except (TypeError, ValueError):
                continue  # non-numeric columns (timestamps, notes) are not plotted
        parsed.append(values)
    missing = [key for key in ("d_loss", "g_loss") if not any(key in row for row in parsed)]
    if missing:
        found = sorted({key for row in parsed for key in row})
        raise DataError(f"{source} has no {' or '.join(missing)} column; found: {', '.join(found) or 'none'}")
    return parsed


def _series(rows: list[dict[str, float]], key: str) -> tuple[np.ndarray, np.ndarray]:
    epochs, values = [], []
    for index, row in enumerate(rows):
        if key in row:
            epochs.append(row.get("epoch", index + 1))
            values.append(row[key])
    return np.asarray(epochs), np.asarray(values)


def plot_history(history_csv_or_rows: str | os.PathLike | Iterable[Mapping[str, Any]]) -> Figure:
    """Training curves from ``history.csv`` (a path) or a list of per-epoch dicts.

    Panels: ``d_loss`` and ``g_loss``; discriminator accuracy on real (``d_acc_real``) and generated
    (``d_acc_fake``) images; and, when logged, the mean probabilities ``d_real`` = σ(D(x)) and
    ``d_fake`` = σ(D(G(z))). The x-axis is the ``epoch`` column as written (row number + 1 if absent).
    """
    rows = _read_history(history_csv_or_rows)
    has = {key for row in rows for key in row}
    panels = [("losses", ["d_loss", "g_loss"], "loss")]
    if has & {"d_acc_real", "d_acc_fake"}:
        panels.append(("discriminator accuracy", ["d_acc_real", "d_acc_fake"], "accuracy"))
    if has & {"d_real", "d_fake"}:
        panels.append(("mean discriminator output", ["d_real", "d_fake"], "σ(D(·))"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    labels = {"d_loss": "D loss", "g_loss": "G loss", "d_acc_real": "D accuracy, real",
              "d_acc_fake": "D accuracy, generated", "d_real": "σ(D(x)), real", "d_fake": "σ(D(G(z))), generated"}
    for ax, (title, keys, ylabel) in zip(axes[0], panels):
        for key in keys:
            epochs, values = _series(rows, key)
            if len(values):
                ax.plot(epochs, values, marker="o" if len(values) < 30 else None, markersize=3,
                        label=labels[key])
        if ylabel != "loss":
            ax.set_ylim(-0.02, 1.02)
            ax.axhline(0.5, color="0.7", linewidth=0.8, linestyle="--")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend(frameon=False, fontsize="small")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# model diagrams
_SHORT_TYPES = {
    "BatchNormalization": "BatchNorm",
    "Conv2DTranspose": "ConvTranspose",
    "UpSampling2D": "UpSample",
    "InputLayer": "Input",
}
_COLOURS = {
    "Input": "#e8e8e8", "Dense": "#f4c27a", "Conv2D": "#8ec5e8", "ConvTranspose": "#a6d99b",
    "UpSample": "#c9b6e4", "BatchNorm": "#f2e394", "Dropout": "#dddddd", "Reshape": "#eeeeee",
    "Flatten": "#eeeeee",
}


def _output_shape(layer: Any) -> tuple:
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):  # layers not yet called, or with several outputs
        return tuple(getattr(layer, "output_shape", ()) or ())


def model_summary_table(model: Any) -> list[dict[str, Any]]:
    """One row per layer: ``{"name", "type", "output_shape", "params"}``.

    ``output_shape`` has ``None`` for the batch axis; ``params`` counts every weight including batch
    norms' moving statistics, so the rows sum to ``model.count_params()``.
    """
    return [
        {
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": _output_shape(layer),
            "params": int(layer.count_params()) if layer.weights else 0,
        }
        for layer in model.layers
    ]


def _blocks(table: list[dict[str, Any]], group: bool) -> list[dict[str, Any]]:
    # Layers named "<block>_<part>" (the dcganlib models: block1_convT, block1_bn, block1_relu) are
    # drawn as one box; anything else gets its own box.
    blocks: list[dict[str, Any]] = []
    for row in table:
        key = row["name"].split("_")[0] if group else row["name"]
        kind = _SHORT_TYPES.get(row["type"], row["type"])
        if blocks and blocks[-1]["key"] == key:
            block = blocks[-1]
            block["types"].append(kind)
            block["params"] += row["params"]
            block["output_shape"] = row["output_shape"]
        else:
            blocks.append({"key": key, "types": [kind], "params": row["params"],
                           "output_shape": row["output_shape"]})
    return blocks


def _shape_text(shape: tuple) -> str:
    dims = [d for d in shape[1:]] if shape and shape[0] is None else list(shape)
    return " × ".join(str(d) for d in dims) if dims else "?"


def plot_model_diagram(model: Any, *, ax: Any = None, group: bool = True, title: str | None = None) -> Figure:
    """Draw a Keras model's layer stack as boxes, input at the top (no pydot or Graphviz needed).

    Each box shows the block name, its layer types, its output shape (without the batch axis) and its
    parameter count; the title gives the total (``model.count_params()``). With ``group=True`` layers
    sharing a ``"<block>_"`` name prefix are merged into one box. Pass ``ax`` to draw two models side
    by side.
    """
    blocks = _blocks(model_summary_table(model), group)
    n = len(blocks)
    fig, ax = figure_and_axes(ax, (6.4, 0.62 * n + 0.9))
    ax.set_xlim(0, 1)
    ax.set_ylim(n, -0.2)
    ax.set_axis_off()
    box_height = 0.72
    for i, block in enumerate(blocks):
        main = next((t for t in block["types"] if t in _COLOURS and t not in ("BatchNorm", "Dropout")),
                    block["types"][0])
        ax.add_patch(FancyBboxPatch((0.02, i + (1 - box_height) / 2), 0.96, box_height,
                                    boxstyle="round,pad=0,rounding_size=0.08", linewidth=0.8,
                                    edgecolor="0.35", facecolor=_COLOURS.get(main, "#f7f7f7")))
        centre = i + 0.5
        ax.text(0.05, centre - 0.13, block["key"], fontsize=9, fontweight="bold", va="center")
        ax.text(0.05, centre + 0.17, " → ".join(block["types"]), fontsize=7.5, va="center", color="0.2")
        ax.text(0.70, centre, _shape_text(block["output_shape"]), fontsize=8.5, va="center", ha="right",
                family="monospace")
        ax.text(0.96, centre, f"{block['params']:,}" if block["params"] else "–", fontsize=8.5,
                va="center", ha="right", family="monospace")
        if i:
            ax.annotate("", xy=(0.5, i + (1 - box_height) / 2), xytext=(0.5, i - (1 - box_height) / 2),
                        arrowprops=dict(arrowstyle="->", color="0.4", linewidth=0.8))
    ax.text(0.70, -0.08, "output shape", fontsize=7.5, ha="right", color="0.35")
    ax.text(0.96, -0.08, "parameters", fontsize=7.5, ha="right", color="0.35")
    total = int(model.count_params())
    ax.set_title(f"{title or model.name} — {total:,} parameters", fontsize=10)
    if ax is fig.axes[0] and len(fig.axes) == 1:
        fig.tight_layout()
    return fig



# ------------------------------------------------------------------------------------------------
# notebooks: the data chapter and live training grids
def plot_data_survey(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Stored image sizes and slice positions of a :func:`dcganlib.data.survey_files` listing.

    Left: number of files per stored size ``W×H`` (the 12 most common; files without a size, such as
    NIfTI, are counted as "volume / array"). Right: for each split (rows), the share of its files at
    each ``slice_N`` number (columns), so splits that cover different anatomy stand out; files whose
    names carry no slice number are left out and counted in the title.
    """
    if not rows:
        raise DataError("no files to summarise: the survey is empty")
    sizes: dict[str, int] = {}
    for row in rows:
        key = f"{row['width']}×{row['height']}" if row.get("width") else "volume / array"
        sizes[key] = sizes.get(key, 0) + 1
    common = sorted(sizes.items(), key=lambda item: -item[1])[:12]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={"width_ratios": [1, 2.2]})
    bars = left.barh([name for name, _ in common][::-1], [count for _, count in common][::-1], color="tab:gray")
    left.bar_label(bars, padding=2, fontsize="small")
    left.set_xlabel("files")
    left.set_title(f"stored image sizes ({len(rows)} files)", fontsize=10)
    numbered = [row for row in rows if row.get("slice") is not None]
    if numbered:
        splits = sorted({row["split"] for row in numbered}, key=["train", "validate", "test", ""].index)
        top = max(row["slice"] for row in numbered)
        share = np.zeros((len(splits), top + 1))
        for row in numbered:
            share[splits.index(row["split"]), row["slice"]] += 1
        counts = share.sum(axis=1)
        share /= counts[:, None]
        image = right.imshow(share, aspect="auto", cmap="viridis", vmin=0, interpolation="nearest",
                             extent=(-0.5, top + 0.5, len(splits) - 0.5, -0.5))
        right.set_yticks(range(len(splits)), [f"{s or 'all'} ({int(n)})" for s, n in zip(splits, counts)])
        fig.colorbar(image, ax=right, label="share of the split's files", pad=0.01)
    right.set_xlabel("slice number in the file name (position in the volume)")
    right.set_title(f"slice positions per split ({len(rows) - len(numbered)} files without a number)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_preprocessing(raw: Any, processed: Any, *, name: str = "") -> Figure:
    """Before/after panel of the data pipeline for one slice.

    ``raw``: the stored pixels (``(H, W)`` or ``(H, W, C)``, any dtype, shown with its own range);
    ``processed``: the same slice after :func:`dcganlib.data.decode_file` (uint8 ``(S, S[, C])``). Panels:
    the stored image, the resized and padded uint8 image, and the histogram of the network's input
    ``x = u8 / 127.5 − 1`` in ``[-1, 1]``.
    """
    raw = np.asarray(raw)
    processed = np.asarray(processed)
    if processed.ndim == 3 and processed.shape[-1] == 1:
        processed = processed[..., 0]
    if raw.ndim == 3 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    if processed.dtype != np.uint8 or processed.ndim not in (2, 3):
        raise DataError(f"processed must be one uint8 image (S, S) or (S, S, C); got {processed.dtype} {processed.shape}")
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1, 1.3]})
    gray = "gray" if raw.ndim == 2 else None
    axes[0].imshow(raw, cmap=gray, interpolation="nearest")
    axes[0].set_title(f"stored{(' ' + name) if name else ''}: {raw.shape[1]}×{raw.shape[0]} {raw.dtype}",
                      fontsize=9)
    axes[1].imshow(processed, cmap="gray" if processed.ndim == 2 else None, vmin=0, vmax=255,
                   interpolation="nearest")
    axes[1].set_title(f"resized + padded: {processed.shape[1]}×{processed.shape[0]} uint8", fontsize=9)
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    scaled = processed.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    axes[2].hist(scaled.ravel(), bins=np.linspace(-1, 1, 65), color="tab:blue", log=True)
    axes[2].set_xlim(-1.05, 1.05)
    axes[2].set_xlabel("network input x = u8 / 127.5 − 1")
    axes[2].set_ylabel("pixels (log)")
    axes[2].set_title(f"input range [{scaled.min():.2f}, {scaled.max():.2f}]", fontsize=9)
    fig.tight_layout()
    return fig


def show_epoch_grid(run_dir: str | os.PathLike, epoch: int, *, width: int | None = 320) -> Path | None:
    """Show ``run_dir/grids/epoch_NNNN.png`` inline in a notebook (IPython), ``width`` px wide.

    Outside IPython it prints the path instead. Returns the path, or None if that epoch has no grid.
    """
    path = Path(run_dir) / "grids" / f"epoch_{epoch:04d}.png"
    if not path.is_file():
        return None
    try:
        from IPython.display import Image as IPythonImage, display
    except ImportError:
        print(f"epoch {epoch}: {path}")
        return path
    display(IPythonImage(filename=str(path), width=width))
    return path


def grid_display_callback(run_dir: str | os.PathLike, *, every: int = 1, width: int | None = 320):
    """A Keras callback that shows the run's fixed-noise grid of every ``every``-th epoch and the last.

    Pass it to :func:`dcganlib.training.train` (``callbacks=[...]``): extra callbacks run after the
    library's own, so the grid of an epoch is on disk when the epoch ends. It is shown when the next
    epoch begins (or training ends), i.e. after Keras has printed the epoch's final progress line, so a
    notebook reads "epoch N: progress bar, grid". Keras is imported here, not at module level, so
    :mod:`dcganlib.plots` stays free of TensorFlow.
    """
    import keras

    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise DataError(f"every must be a positive integer number of epochs, got {every!r}")
    pending: list[int] = []  # the finished epoch whose grid is still to be shown

    def on_epoch_end(epoch: int, logs: Any = None) -> None:
        if (epoch + 1) % every == 0 or epoch + 1 == (callback.params or {}).get("epochs"):
            pending.append(epoch + 1)

    def show_pending(*_: Any) -> None:
        while pending:
            show_epoch_grid(run_dir, pending.pop(0), width=width)

    callback = keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end, on_epoch_begin=show_pending,
                                              on_train_end=show_pending)
    return callback


__all__ = [
    "LABEL_KEY",
    "images_to_grid",
    "add_label_strip",
    "save_grid",
    "make_gif",
    "epoch_grids",
    "make_run_gif",
    "save_figure",
    "plot_sample_grid",
    "plot_image_histograms",
    "plot_history",
    "model_summary_table",
    "plot_model_diagram",
    "plot_data_survey",
    "plot_preprocessing",
    "show_epoch_grid",
    "grid_display_callback",
]
