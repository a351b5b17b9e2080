"""Atomic file writes, shared by every module that leaves something on disk.

A cluster job can be killed at any instruction. Every file dcganlib writes (config.json, history.csv,
split.json, grids, GIFs, figures, generator.keras, cached arrays, metrics.json) is therefore written to a
temporary sibling first and moved onto its final name with :func:`os.replace`, which is atomic on POSIX
and Windows within one file system: a reader sees the old file or the new one, never half of one. The
temporary name starts with a dot, carries the process id and a random tag (two processes writing the same
file never share a temporary), and keeps the final suffix because matplotlib, PIL, imageio, numpy and
Keras pick the format from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

__all__ = ["atomic_path", "write_text", "write_json"]


def temporary_sibling(path: Path) -> Path:
    """``folder/.stem.tmp-<pid>-<random>.suffix`` next to ``path``; matched by the ``*.tmp*`` ignore rules."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write instead of ``path``; move it onto ``path`` when the block succeeds.

    The parent folder is created. If the block raises (or the process is interrupted by an exception),
    the temporary file or folder is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str, *, fsync: bool = True) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically; ``fsync`` before the rename so a
    power cut cannot leave a renamed but empty file."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
    return path


def write_json(path: str | os.PathLike, payload: Any, *, sort_keys: bool = False) -> Path:
    """Write ``payload`` as indented JSON plus a final newline, atomically.

    ``allow_nan=False``: NaN/Inf are not JSON, so a caller must turn them into ``null`` (or a string) first
    instead of silently producing a file other tools cannot read.
    """
    text = json.dumps(payload, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n"
    return write_text(path, text)
