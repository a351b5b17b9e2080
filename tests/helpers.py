"""Small data builders shared by several test modules (imported as ``helpers``; pytest puts tests/ on the path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 32


def write_slices(root: Path, counts=(40, 8, 8), size: int = SIZE, seed: int = 0) -> Path:
    """A tiny OASIS-layout folder of bright ellipses on black (one "subject" per image)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    case = 0
    for split, count in zip(("train", "validate", "test"), counts):
        folder = root / f"keras_png_slices_{split}"
        folder.mkdir(parents=True)
        for _ in range(count):
            ry, rx = rng.uniform(0.2, 0.45, 2) * size
            cy, cx = size / 2 + rng.uniform(-2, 2, 2)
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            picture = (inside * rng.uniform(120, 250)).astype(np.uint8)
            Image.fromarray(picture).save(folder / f"case_{case:03d}_slice_0.nii.png")
            case += 1
    return root
