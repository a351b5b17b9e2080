"""``history.csv``, one row per finished epoch: reading it (a last row cut short is left out with a
warning; any other damage is refused naming the file, row and column), writing it atomically, and one
column of it. No TensorFlow here.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from pathlib import Path
from typing import Optional, Sequence

from .errors import RunFolderError
from .files import write_text

#: A damaged run record is kept aside under its name plus this suffix (``history.csv.damaged``).
DAMAGED_SUFFIX = ".damaged"


class DamagedRecordWarning(UserWarning):
    """A run record was damaged; what was left out or kept aside is in the message."""


def _parse_history(path: Path) -> tuple[list[dict[str, float]], Optional[str]]:
    """``(rows, cut)``: the complete rows of a ``history.csv`` and, when its last row was cut short (the
    file does not end with the newline every write ends with, or the row lacks cells), that row's text.
    Damage anywhere else raises :class:`RunFolderError` naming the file, row and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:  # a folder in its place, no permission
        raise RunFolderError(f"cannot read {path}: {exc.strerror}; it must be the run's history file") from None
    except UnicodeDecodeError:
        raise RunFolderError(f"{path} is not text; the file is damaged (delete it only if you do not need its "
                             "records: a resume cannot rebuild them)") from None
    lines = text.splitlines()
    if not lines:
        return [], None
    header = next(csv.reader([lines[0]]))
    cut = None
    if len(lines) > 1 and (not text.endswith("\n") or len(next(csv.reader([lines[-1]]))) != len(header)):
        cut, lines = lines[-1], lines[:-1]
    rows = []
    for line, raw in enumerate(csv.DictReader(lines), start=2):
        row: dict[str, float] = {}
        for key, value in raw.items():
            if key is None or value is None:
                raise RunFolderError(f"{path} line {line}: {len(header)} columns expected; the file is damaged "
                                     "(only a cut last row can be recovered)")
            if value == "":
                continue
            try:
                row[key] = int(value) if key == "epoch" else float(value)
            except ValueError:
                raise RunFolderError(f"{path} line {line}: column {key!r} holds {value!r}, not a number; "
                                     "the file is damaged (only a cut last row can be recovered)") from None
        rows.append(row)
    return rows, cut


def read_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a ``history.csv`` as dicts of floats (``epoch`` as int); ``[]`` if the file is absent.

    Empty cells are left out of their row. A last row cut short (a damaged copy, a full disk outside
    dcganlib) is left out with a :class:`DamagedRecordWarning`; ``--resume`` keeps the file aside and trains
    that epoch again (:func:`recover_records`). Any other damage raises :class:`RunFolderError` naming
    the file, row and column (history.csv is written only by dcganlib).
    """
    path = Path(path)
    if not path.exists():
        return []
    rows, cut = _parse_history(path)
    if cut is not None:
        warnings.warn(_cut_row(path, cut), DamagedRecordWarning, stacklevel=2)
    return rows


def _cut_row(path: Path, cut: str) -> str:
    return (f"{path}: its last row was cut short ({cut[:40]!r}) and is left out; a --resume keeps the file aside "
            f"as {path.name}{DAMAGED_SUFFIX} and trains that epoch again")


def history_damage(path: str | os.PathLike) -> Optional[str]:
    """What :func:`read_history` would warn about ``path`` (a cut last row), or None; other damage raises."""
    path = Path(path)
    cut = _parse_history(path)[1] if path.is_file() else None
    return None if cut is None else _cut_row(path, cut)


def write_history(path: str | os.PathLike, rows: Sequence[dict[str, float]]) -> None:
    """Write rows atomically: ``epoch`` first, then ``seconds``, then the metrics in first-seen order."""
    columns: list[str] = ["epoch"]
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(float(v)) if k != "epoch" else int(v)) for k, v in row.items()})
    write_text(path, buffer.getvalue())


def history_column(rows: Sequence[dict[str, float]], key: str) -> tuple[list[float], list[float]]:
    """``(epochs, values)`` of the rows that have a finite ``key`` (the tracker leaves NaN on skipped epochs)."""
    epochs, values = [], []
    for index, row in enumerate(rows):
        value = row.get(key)
        if value is not None and math.isfinite(value):
            epochs.append(row.get("epoch", index + 1))
            values.append(value)
    return epochs, values


__all__ = ["DAMAGED_SUFFIX", "DamagedRecordWarning", "read_history", "history_damage", "write_history",
           "history_column"]
