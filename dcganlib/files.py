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
import errno
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator, Optional

from .errors import ConfigError

#: Errors of a full disk or an exhausted quota.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
#: Their messages, as TensorFlow's errors carry them (SaveV2 raises ResourceExhaustedError, UnknownError or a
#: plain OpError, depending on where the write failed, with the OS text inside).
_DISK_FULL_TEXTS = tuple(os.strerror(number) for number in DISK_FULL_ERRNOS)


def disk_full_reason(exc: BaseException) -> Optional[str]:
    """``"No space left on device"`` (or the quota's text) when ``exc`` is a write failing on a full disk: an
    ``OSError`` with a disk-full errno, or another error (TensorFlow's) whose message carries that text."""
    if isinstance(exc, OSError):
        return exc.strerror if exc.errno in DISK_FULL_ERRNOS else None
    found = [text for text in _DISK_FULL_TEXTS if text in str(exc)]
    return found[0] if found else None


__all__ = ["DISK_FULL_ERRNOS", "disk_full_reason", "atomic_path", "write_text", "write_json", "temporary_name",
           "temporary_stem", "remove_orphaned_temporaries", "check_output_file"]

#: ``.STEM.tmp-PID-TAG…``: a temporary of :func:`temporary_name`, with the id of the process writing it.
_TEMPORARY = re.compile(r"^\.(?P<stem>.+?)\.tmp-(?P<pid>\d+)-")


def temporary_name(stem: str) -> str:
    """``.stem.tmp-<pid>-<random>``: the name of a temporary file or folder this process writes."""
    return f".{stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def temporary_stem(name: str) -> Optional[str]:
    """The final name's stem when ``name`` is a temporary of :func:`temporary_name` (any process's), else None."""
    match = _TEMPORARY.match(name)
    return match.group("stem") if match else None


def temporary_sibling(path: Path) -> Path:
    """``folder/.stem.tmp-<pid>-<random>.suffix`` next to ``path``; matched by the ``*.tmp*`` ignore rules."""
    return path.with_name(temporary_name(path.stem) + path.suffix)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_orphaned_temporaries(folder: str | os.PathLike, stem: Optional[str] = None) -> list[Path]:
    """Delete the temporaries (:func:`temporary_name`) in ``folder`` whose writer process is dead: what a
    killed command leaves. ``stem`` limits it to the temporaries of one final name. Returns what was removed.

    A temporary of a live process on this machine is kept (another command may be writing it). The
    process id is only meaningful on this machine: on a file system shared between machines, run one
    writer per folder (``train`` holds a lock; ``generate``, ``evaluate`` and ``demo-data`` do not).
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        match = _TEMPORARY.match(path.name)
        if not match or (stem is not None and match.group("stem") != stem) or _process_alive(int(match.group("pid"))):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def check_output_file(path: str | os.PathLike, *, overwrite: bool, flag: str = "--out") -> Path:
    """Refuse, before any work, an output file the command could not or should not write: a folder, an
    existing file without ``overwrite``, a place under a file or in a folder that is not writable.
    :class:`~dcganlib.errors.ConfigError` names ``flag`` and what to do."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; give the name of a file")
    if path.exists() and not overwrite:
        raise ConfigError(f"{flag} {path} already exists; pass --overwrite to replace it, or choose another name")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{flag} {path} cannot be created: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK):
        raise ConfigError(f"{flag} {path} cannot be created: {ancestor} is not writable")
    return path


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
