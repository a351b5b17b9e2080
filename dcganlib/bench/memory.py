"""Memory and SSIM costs: the peak RSS of decoding and of loading back the decoded-image cache (child
processes, so each peak is the load's own), the bench PNG folder, and the time of a best-match SSIM search."""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

from .. import seeds
from . import PNG_SIZE, SSIM_SIZE
from ..config import default_config

def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def bench_png_folder(count: int, size: int = PNG_SIZE, root: Optional[Path] = None) -> Path:
    """The demo dataset as ``count`` PNGs of ``size`` px in the OASIS layout, built once under
    ``root`` (default ``<dcganlib cache>/bench``)."""
    from ..data.cache import cache_root
    from ..data.demo import build_once

    root = Path(root) if root is not None else cache_root() / "bench"
    return build_once(root / f"pngs-n{count}-s{size}", count=count, size=size)


def _png_count(steps: int, batch_size: int) -> int:
    """PNGs to build so the train split (~80 % of subjects) holds at least ``steps × batch_size`` images."""
    return max(64, math.ceil(steps * batch_size / 0.7) + 64)


def _memory_probe(folder: str, cache_dir: str, image_size: int) -> dict[str, float]:
    """Load ``folder`` at ``image_size`` with the decoded cache in ``cache_dir``; RSS before and peak after."""
    from ..data import load_dataset

    config = default_config(data=folder, image_size=image_size, cache_dir=cache_dir)
    before = _current_rss_mb()
    start = time.perf_counter()
    splits = load_dataset(config)
    seconds = time.perf_counter() - start
    images = len(splits.train) + len(splits.validate) + len(splits.test)
    nbytes = splits.train.nbytes + splits.validate.nbytes + splits.test.nbytes
    return {"start_rss_mb": before, "peak_rss_mb": peak_rss_mb(), "seconds": seconds, "images": images,
            "uint8_mb": nbytes / 1e6, "cache_hit": bool(splits.report["decoded_cache_hit"])}


def _run_probe(folder: Path, cache_dir: Path, image_size: int) -> dict[str, float]:
    code = ("import json, sys; from dcganlib.bench.memory import _memory_probe; "
            "print(json.dumps(_memory_probe(sys.argv[1], sys.argv[2], int(sys.argv[3]))))")
    done = subprocess.run([sys.executable, "-c", code, str(folder), str(cache_dir), str(image_size)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_cache_memory(count: int = 10_000, image_size: int = PNG_SIZE,
                         png_root: Optional[Path] = None) -> dict[str, float]:
    """Peak RSS of decoding ``count`` PNGs at ``image_size`` (and of loading them back from the cache).

    Returns MB figures: ``uint8_mb`` (N·S·S bytes), ``decode_peak_rss_mb`` / ``cached_peak_rss_mb``
    (peak RSS of a child process), ``*_above_start_mb`` (peak minus the child's RSS before loading, i.e.
    what the images cost) and their ratios to ``uint8_mb``.
    """
    folder = bench_png_folder(count, max(PNG_SIZE, image_size), png_root)
    with tempfile.TemporaryDirectory(prefix="dcganlib-bench-memory-") as cache:
        decode = _run_probe(folder, Path(cache), image_size)
        cached = _run_probe(folder, Path(cache), image_size)
    result: dict[str, float] = {"memory_images": decode["images"], "memory_image_size": image_size,
                                "uint8_mb": decode["uint8_mb"]}
    for name, probe in (("decode", decode), ("cached", cached)):
        above = probe["peak_rss_mb"] - probe["start_rss_mb"]
        result.update({f"{name}_peak_rss_mb": probe["peak_rss_mb"], f"{name}_start_rss_mb": probe["start_rss_mb"],
                       f"{name}_above_start_mb": above, f"{name}_over_uint8": above / decode["uint8_mb"],
                       f"{name}_seconds": probe["seconds"]})
    result["cached_hit"] = bool(cached["cache_hit"])
    return result


def time_best_match_ssim(count: int = 1000, size: int = SSIM_SIZE, seed: int = 0) -> float:
    """Seconds for :func:`dcganlib.metrics.best_match_ssim` of ``count`` against ``count`` images of
    ``size``² (smooth random images in ``[-1, 1]``: the cost does not depend on the content)."""
    from scipy.ndimage import gaussian_filter

    from ..metrics import best_match_ssim

    rng = seeds.rng(seed, "bench-images")
    noise = rng.standard_normal((2 * count, size, size)).astype(np.float32)
    smooth = gaussian_filter(noise, sigma=(0, 2, 2))
    images = np.tanh(smooth / smooth.std())[..., None].astype(np.float32)
    best_match_ssim(images[:2], images[count:count + 2])  # warm-up (graph tracing)
    start = time.perf_counter()
    best_match_ssim(images[:count], images[count:])
    return time.perf_counter() - start
