"""Disk space of a run: what a whole run needs, the check before it starts, and a full disk during training
turned into one line that says what is intact and how much to free. No TensorFlow here.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator

from .config import Config
from .errors import RunFolderError
from .files import disk_full_reason
from .runs import CHECKPOINT_DIR, GRIDS_DIR, RUN_ARTEFACTS, checkpoint_kept, remove_stale_temporaries


@contextlib.contextmanager
def stop_when_disk_full(run_dir: Path, needed: int) -> Iterator[None]:
    """Turn a full disk at any write of the block (grid, history.csv, checkpoint, config.json, generator,
    GIF) into one :class:`RunFolderError` naming the folder and the space the run needs (``needed`` bytes in
    all, :func:`disk_needed`). The write that failed left its final name untouched (atomic writes;
    TensorFlow names a checkpoint only once it is complete); its temporaries are deleted here (call it under
    the run lock) to give the space back. Any other error passes through unchanged."""
    try:
        yield
    except Exception as exc:  # an OSError, or TensorFlow's OpError from a checkpoint save; others re-raised
        reason = disk_full_reason(exc)
        if reason is None:
            raise
        remove_stale_temporaries(run_dir)
        have = folder_bytes(run_dir / CHECKPOINT_DIR) + folder_bytes(run_dir / GRIDS_DIR)
        free = shutil.disk_usage(run_dir).free
        raise RunFolderError(
            f"disk full in {run_dir} ({reason}): training stopped; {checkpoint_kept(run_dir)}, and so is every "
            f"finished file; the run needs about {max(needed - have, 0) / 1e6:.1f} MB free to finish "
            f"({free / 1e6:.1f} MB are free now): free some and continue with --resume --out {run_dir}") from None


def folder_bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (0 if absent)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def disk_needed(config: Config, checkpoint_bytes: int, generator_bytes: int) -> int:
    """Bytes a whole run takes on disk: (keep_checkpoints + 1) × checkpoint + generator file + epochs × raw
    grid; the ``+ 1`` is the new checkpoint written before the oldest is deleted."""
    grids = config.epochs * config.grid_size * config.image_size ** 2 * config.channels
    return (config.keep_checkpoints + 1) * checkpoint_bytes + generator_bytes + grids


def check_free_disk(config: Config, run_dir: Path, checkpoint_bytes: int, generator_bytes: int, *,
                    resume: bool, overwrite: bool) -> None:
    """Refuse to start a run whose checkpoints cannot fit on the run folder's disk (:func:`disk_needed`).

    Space the run will free counts as available: its old checkpoints on a resume, all of its artefacts on
    an overwrite.
    """
    needed = disk_needed(config, checkpoint_bytes, generator_bytes)
    reclaimable = 0
    if overwrite and not resume:
        reclaimable = sum(folder_bytes(run_dir / name) for name in RUN_ARTEFACTS)
    elif resume:
        reclaimable = folder_bytes(run_dir / CHECKPOINT_DIR)
    free = shutil.disk_usage(run_dir).free + reclaimable
    if needed > free:
        raise RunFolderError(
            f"not enough free disk for {run_dir}: {config.keep_checkpoints} kept checkpoints + 1 being written "
            f"({checkpoint_bytes / 1e6:.1f} MB each), the generator and the grids need about {needed / 1e6:.1f} MB, "
            f"but only {free / 1e6:.1f} MB are free; free some space, lower keep_checkpoints, or choose another --out")


__all__ = ["stop_when_disk_full", "folder_bytes", "disk_needed", "check_free_disk"]
