"""The embedded demo dataset: OASIS-like axial brain slices made from the MNI152 template in nilearn.

nilearn's wheel ships the MNI152 2009c T1 template (``mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz``,
197×233×189 voxels of 1 mm, skull-stripped, RAS). It is one brain, so each synthetic *subject* gets
its own random but smooth, anatomically plausible variation before slicing:

* a small 3-D pose change: in-plane rotation (±8°), tilt out of the axial plane (±3°), anisotropic
  scale (±8 %), shift (±6 mm);
* a smooth elastic in-plane displacement (cubic-spline field from 5×5 control points, up to ~3 mm)
  that drifts between the lowest and the highest slice;
* an intensity change: gamma (0.75–1.35), a smooth multiplicative bias field (±12 %) and a little
  noise inside the brain.

Each subject contributes up to 32 evenly spaced axial slices through the brain (like the OASIS course
data: ``case_001_slice_0.nii.png`` …), written as 8-bit PNGs with the brain centred on black and filling
~80 % of the frame, in the OASIS folder layout with subject-disjoint 80/10/10 splits::

    OUT/keras_png_slices_train/case_XXX_slice_Y.nii.png
    OUT/keras_png_slices_validate/…
    OUT/keras_png_slices_test/…
    OUT/demo.json                      # parameters and counts (written last: marks a complete build)

The same ``(count, size, seed)`` gives byte-identical files. Sampling is vectorised: one
``scipy.ndimage.map_coordinates`` call (linear) per subject over all its output pixels, subjects in
a thread pool (SciPy releases the GIL). Nothing is downloaded, ever.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import seeds
from ..config import Config
from ..errors import DataError
from ..files import atomic_path, remove_orphaned_temporaries, temporary_name, temporary_stem, write_text
from ..progress import Progress
from .cache import cache_root
from .discovery import OASIS_SPLITS

#: Bump when the generated images change, so cached builds are not reused.
DEMO_VERSION = "2"
#: The embedded dataset is one fixed dataset: ``config.seed`` does not change it (it only drives the
#: split of user data, shuffling, noise and initialisation), so runs with different seeds compare.
DEMO_SEED = 0
#: The seed of the second demo build whose new subjects stand in for generated images in evaluations.
RESAMPLE_SEED = 1
#: Side of the cached demo PNGs (the OASIS course size); larger ``image_size`` builds at that size.
DEMO_SIZE = 256
TEMPLATE_NAME = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
SLICES_PER_SUBJECT = 32
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)  # train, validate, test (of subjects)
#: The hidden folder a build writes into (``OUT/.demo-build.tmp-PID-TAG``) before its splits move into OUT.
_BUILD_STEM = "demo-build"
_BRAIN_FILL = 0.8  # fraction of the frame spanned by the brain's longest in-plane extent
_MARKER = "demo.json"


# ------------------------------------------------------------------------------------------------
# the template
def template_path() -> Path:
    """Path of the MNI152 T1 template inside the installed nilearn package (no download)."""
    import importlib.util

    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the demo dataset needs the 'nilearn' package (it ships the MNI152 template); "
                        "install it with: pip install 'nilearn>=0.11,<0.15'")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / TEMPLATE_NAME
    if not path.is_file():
        raise DataError(f"MNI152 template not found at {path}; reinstall nilearn "
                        "(pip install --force-reinstall 'nilearn>=0.11,<0.15')")
    return path


@dataclass(frozen=True)
class _Template:
    volume: np.ndarray  # float32 (X, Y, Z) in [0, 1], RAS, 1 mm voxels
    centre: tuple[float, float]  # brain bounding-box centre (x, y) in voxels
    extent_mm: float  # longest in-plane brain extent
    z_range: tuple[float, float]  # axial range of slices that hold a useful amount of brain


@lru_cache(maxsize=1)
def _load_template() -> _Template:
    import nibabel as nib

    image = nib.as_closest_canonical(nib.load(str(template_path())))
    volume = np.asarray(image.dataobj, dtype=np.float32) / 255.0
    brain = volume > 0.02
    xs, ys = np.nonzero(brain.any(axis=2))
    centre = ((xs.min() + xs.max()) / 2.0, (ys.min() + ys.max()) / 2.0)
    extent = float(max(xs.max() - xs.min(), ys.max() - ys.min()) + 1)
    area = brain.sum(axis=(0, 1))
    # Slices with under ~10 % of the largest cross-section are the skull-cap and brain-stem tips,
    # which OASIS-style datasets mostly leave out.
    useful = np.nonzero(area >= 0.1 * area.max())[0]
    return _Template(volume, centre, extent, (float(useful.min()), float(useful.max())))


# ------------------------------------------------------------------------------------------------
# one synthetic subject
def _smooth_field(rng: np.random.Generator, size: int, amplitude: float, knots: int = 5) -> np.ndarray:
    """A smooth random field (size, size): cubic-spline upsampling of knots×knots uniform values."""
    from scipy import ndimage

    coarse = rng.uniform(-amplitude, amplitude, size=(knots, knots)).astype(np.float32)
    return ndimage.zoom(coarse, size / knots, order=3, mode="nearest", grid_mode=True)[:size, :size]


def _render_subject(template: _Template, volume: np.ndarray, seed: int, subject: int, n_slices: int,
                    size: int) -> np.ndarray:
    """``n_slices`` axial slices of one randomised subject: uint8 (n_slices, size, size), brain on black."""
    from scipy import ndimage

    rng = seeds.rng(seed, "demo-subject", subject)
    mm_per_px = template.extent_mm / (_BRAIN_FILL * size)
    # float32 scalars throughout: float64 temporaries over ~2 M pixels per subject double the time.
    f32 = np.float32
    angle = np.deg2rad(rng.uniform(-8, 8))
    tilt_x, tilt_y = np.tan(np.deg2rad(rng.uniform(-3, 3, size=2))).astype(f32)
    scale_x, scale_y = rng.uniform(0.92, 1.08, size=2).astype(f32)
    shift = rng.uniform(-6, 6, size=2).astype(f32)
    field_lo = [_smooth_field(rng, size, 3.0) for _ in range(2)]
    field_hi = [_smooth_field(rng, size, 3.0) for _ in range(2)]
    gamma = f32(rng.uniform(0.75, 1.35))
    bias_a, bias_b = _smooth_field(rng, size, 0.12), _smooth_field(rng, size, 0.12)

    # Slice heights: evenly spaced through the brain, with a per-subject offset so subjects differ.
    z_lo, z_hi = template.z_range
    step = (z_hi - z_lo) / max(n_slices, 1)
    z = z_lo + step * (np.arange(n_slices) + 0.5) + rng.uniform(-0.5, 0.5) * step

    centre_px = (size - 1) / 2.0
    cols = (np.arange(size, dtype=np.float32) - centre_px) * mm_per_px  # towards the subject's right
    rows = (centre_px - np.arange(size, dtype=np.float32)) * mm_per_px  # towards anterior (image top)
    u, w = np.meshgrid(cols * scale_x, rows * scale_y)  # (size, size)
    cos, sin = f32(np.cos(angle)), f32(np.sin(angle))
    x_base = cos * u - sin * w + shift[0]
    y_base = sin * u + cos * w + shift[1]

    t = ((np.arange(n_slices) + 0.5) / n_slices).astype(np.float32)[:, None, None]
    coords = np.empty((3, n_slices, size, size), dtype=np.float32)
    x = x_base + f32(template.centre[0]) + (1 - t) * field_lo[0] + t * field_hi[0]
    y = y_base + f32(template.centre[1]) + (1 - t) * field_lo[1] + t * field_hi[1]
    coords[0] = x
    coords[1] = y
    x -= f32(template.centre[0])
    y -= f32(template.centre[1])
    x *= tilt_x
    y *= tilt_y
    x += y
    x += z.astype(f32)[:, None, None]
    coords[2] = x
    del x, y
    sampled = ndimage.map_coordinates(volume, coords.reshape(3, -1), order=1, mode="constant", cval=0.0,
                                      prefilter=False).reshape(n_slices, size, size)

    tissue = sampled > 0.02
    image = np.power(np.clip(sampled, 0.0, 1.0, out=sampled), gamma, out=sampled)
    image *= (1 - t) * bias_a + t * bias_b + f32(1.0)
    noise = rng.standard_normal(image.shape, dtype=f32)
    noise *= f32(0.015)
    image += noise
    image *= tissue  # background stays exactly black, like skull-stripped OASIS slices
    image *= f32(255.0)
    return np.clip(np.rint(image, out=image), 0, 255, out=image).astype(np.uint8)


def _antialiased_volume(template: _Template, size: int) -> np.ndarray:
    """The template blurred in-plane when a pixel spans several voxels (avoids aliasing at small sizes)."""
    from scipy import ndimage

    mm_per_px = template.extent_mm / (_BRAIN_FILL * size)
    if mm_per_px <= 1.25:
        return template.volume
    sigma = 0.45 * math.sqrt(mm_per_px**2 - 1.0)
    return ndimage.gaussian_filter(template.volume, sigma=(sigma, sigma, 0.0), mode="constant")


# ------------------------------------------------------------------------------------------------
# the dataset
def _plan(count: int, seed: int) -> tuple[list[int], dict[str, list[int]]]:
    """Slices per subject and a subject-disjoint split (lists of subject indices, sorted)."""
    n_subjects = max(math.ceil(count / SLICES_PER_SUBJECT), min(count, 10))
    base, extra = divmod(count, n_subjects)
    per_subject = [base + (1 if s < extra else 0) for s in range(n_subjects)]
    order = seeds.rng(seed, "demo-split").permutation(n_subjects)
    n_val = n_test = 0
    if n_subjects >= 3:
        n_val = max(1, round(SPLIT_FRACTIONS[1] * n_subjects))
        n_test = max(1, round(SPLIT_FRACTIONS[2] * n_subjects))
    splits = {
        "test": sorted(order[:n_test].tolist()),
        "validate": sorted(order[n_test:n_test + n_val].tolist()),
        "train": sorted(order[n_test + n_val:].tolist()),
    }
    return per_subject, splits


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG", optimize=False, compress_level=6)


def build_demo_dataset(out_dir: str | os.PathLike, count: int = 2000, size: int = 256, seed: int = 0) -> Path:
    """Write ``count`` OASIS-like brain slices (uint8 PNG, ``size``×``size``) into ``out_dir``.

    Layout: ``out_dir/keras_png_slices_{train,validate,test}/case_XXX_slice_Y.nii.png`` plus
    ``out_dir/demo.json``; splits are subject-disjoint (~80/10/10 of subjects). The same
    ``(count, size, seed)`` gives byte-identical files. If ``out_dir`` already holds the same build it
    is left as it is; any other existing dataset there raises :class:`DataError`.
    Returns ``out_dir``.
    """
    for name, value, low, high in (("count", count, 1, 200_000), ("size", size, 8, 1024),
                                   ("seed", seed, 0, 2**31 - 1)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise DataError(f"demo dataset: {name} must be an integer in [{low}, {high}]; got {value!r}")
    out = Path(out_dir).expanduser()
    params = {"version": DEMO_VERSION, "count": count, "size": size, "seed": seed}
    existing = read_demo_info(out)
    if existing is not None and all(existing.get(k) == v for k, v in params.items()):
        return out
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file; give a folder to write the demo dataset into")
    clashes = [d for d in [*OASIS_SPLITS.values(), _MARKER] if (out / d).exists()]
    if clashes:
        raise DataError(f"{out} already contains a different or incomplete dataset ({', '.join(clashes)}); "
                        "choose an empty folder or delete it first")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {out}: {exc.strerror}; choose another folder") from None
    remove_orphaned_temporaries(out, _BUILD_STEM)  # the build folders of killed runs

    start = time.perf_counter()
    template = _load_template()
    volume = _antialiased_volume(template, size)
    per_subject, splits = _plan(count, seed)
    split_of = {s: split for split, subjects in splits.items() for s in subjects}
    digits = max(3, len(str(len(per_subject))))
    # Everything goes into a hidden sibling first; the split folders appear only when complete.
    work = out / temporary_name(_BUILD_STEM)
    work.mkdir()
    try:
        for folder in OASIS_SPLITS.values():
            (work / folder).mkdir()

        def make(subject: int) -> None:
            slices = _render_subject(template, volume, seed, subject, per_subject[subject], size)
            folder = work / OASIS_SPLITS[split_of[subject]]
            for index, image in enumerate(slices):
                _write_png(folder / f"case_{subject + 1:0{digits}d}_slice_{index}.nii.png", image)

        workers = min(len(per_subject), os.cpu_count() or 1, 8)
        with Progress(f"building the demo dataset ({count} slices of {size} px)", total=len(per_subject),
                      unit="subjects") as bar, ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(make, range(len(per_subject))):
                bar.update()
        for folder in OASIS_SPLITS.values():
            os.replace(work / folder, out / folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    counts = {split: int(sum(per_subject[s] for s in subjects)) for split, subjects in splits.items()}
    info = {
        **params,
        "source": f"nilearn/datasets/data/{TEMPLATE_NAME}",
        "counts": counts,
        "subjects": {split: [f"case_{s + 1:0{digits}d}" for s in subjects] for split, subjects in splits.items()},
        "seconds": round(time.perf_counter() - start, 2),
    }
    write_text(out / _MARKER, json.dumps(info, indent=2) + "\n")
    return out


def read_demo_info(folder: str | os.PathLike) -> Optional[dict[str, Any]]:
    """The ``demo.json`` of a complete demo build in ``folder``, or None."""
    marker = Path(folder) / _MARKER
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def summary_line(folder: str | os.PathLike, seconds: Optional[float] = None) -> str:
    """One line describing a demo build: counts per split, size and build time."""
    info = read_demo_info(folder) or {}
    counts = info.get("counts", {})
    took = info.get("seconds") if seconds is None else seconds
    return (f"demo dataset in {folder}: {sum(counts.values())} slices of {info.get('size')}x{info.get('size')} px "
            f"(train {counts.get('train', 0)}, validate {counts.get('validate', 0)}, "
            f"test {counts.get('test', 0)}; {sum(len(v) for v in info.get('subjects', {}).values())} subjects, "
            f"seed {info.get('seed')}) in {took:.1f} s")


def ensure_demo_dataset(config: Config, seed: int = DEMO_SEED) -> Path:
    """Build (once) and return the demo dataset folder for ``config``, in the OASIS layout.

    Keyed by ``(config.demo_count, size, seed, DEMO_VERSION)`` where size is 256 px (or
    ``config.image_size`` if larger), under :func:`~dcganlib.data.cache.cache_root`. Training always uses
    ``DEMO_SEED``; the evaluation builds the same population with :data:`RESAMPLE_SEED` — new synthetic
    subjects, the real stand-ins of :mod:`dcganlib.references`.
    """
    size = max(DEMO_SIZE, config.image_size)
    name = f"mni152-demo-v{DEMO_VERSION}-n{config.demo_count}-s{size}-seed{seed}"
    return build_once(cache_root(config) / name, count=config.demo_count, size=size, seed=seed)


def build_once(final: Path, count: int, size: int, seed: int = DEMO_SEED) -> Path:
    """:func:`build_demo_dataset` into ``final`` unless a complete build is there already.

    The build happens in a temporary sibling folder that is renamed into place, under a file lock, so a
    killed build never leaves half a dataset and concurrent callers (parallel tests, two runs) build it
    once. A folder without ``demo.json`` is not a finished build and is replaced.
    """
    from filelock import FileLock

    if read_demo_info(final) is not None:
        return final
    root = final.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the cache folder {root} ({exc.strerror}); set cache_dir in the config "
                        "or DCGANLIB_CACHE to a writable folder") from None
    with FileLock(str(root / f"{final.name}.lock")):
        if read_demo_info(final) is not None:
            return final
        if final.exists():
            shutil.rmtree(final)
        for stale in root.iterdir():  # left by a killed build (we hold the lock, so no build is running)
            if temporary_stem(stale.name) == final.name:
                shutil.rmtree(stale, ignore_errors=True)
        work = root / temporary_name(final.name)
        work.mkdir()
        try:
            build_demo_dataset(work, count=count, size=size, seed=seed)
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final
