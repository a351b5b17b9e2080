"""Progress of the long steps outside ``fit()``: a bar in a terminal, one line per stage in logs and notebooks.

``fit()`` already shows Keras' progress bar in a terminal and one line per epoch otherwise
(:func:`dcganlib.training.resolve_verbose`); this does the same for the demo-dataset build, the first
decode of a data folder, every evaluation stage and ``generate``::

    with Progress("decoding 2000 files", total=2000, unit="files") as bar:
        for ...:
            bar.update()          # in a terminal: "dcganlib: decoding 2000 files [#####.....] 1000/2000 files 1.2 s"
    with Progress("two-sample test"):
        ...                       # in a log: "dcganlib: two-sample test: done in 8.4 s"

Everything goes to stderr (stdout stays the commands' results: tables, JSON, summaries). A terminal
(``stderr.isatty()``) gets one line redrawn with ``\\r`` at most every 0.1 s and ended with its time; any
other stream (a log file, CI, a notebook) gets one line when the stage ends. ``DCGANLIB_PROGRESS=0``
silences both. No TensorFlow here, so the data modules can use it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Optional, TextIO

#: ``DCGANLIB_PROGRESS=0`` turns every progress line off.
PROGRESS_ENV = "DCGANLIB_PROGRESS"
BAR_WIDTH = 24
REDRAW_SECONDS = 0.1


def note(message: str, *, kind: Optional[str] = "note") -> None:
    """The one way library code tells the user something: ``dcganlib: note: MESSAGE`` on stderr (``kind``
    None: ``dcganlib: MESSAGE``). Results go to stdout; everything said about the work goes here. Conditions
    a calling program may want to filter stay Python warnings with their own category
    (``SkippedFilesWarning``, ``DamagedRecordWarning``)."""
    prefix = f"dcganlib: {kind}: " if kind else "dcganlib: "
    print(prefix + message, file=sys.stderr, flush=True)


def progress_enabled() -> bool:
    """False when ``$DCGANLIB_PROGRESS`` is ``0``/``false``/``no``."""
    return os.environ.get(PROGRESS_ENV, "").strip().lower() not in ("0", "false", "no")


class Progress:
    """One stage of work: ``label``, optionally ``total`` units of ``unit`` counted by :meth:`update`.

    Use it as a context manager. ``enabled=False`` (or ``DCGANLIB_PROGRESS=0``) prints nothing; ``stream``
    defaults to ``sys.stderr`` at the time of the call. A stage that raises ends the bar's line (in a
    terminal) so the error starts on a fresh line, and prints no "done" line.
    """

    def __init__(self, label: str, total: Optional[int] = None, *, unit: str = "", enabled: bool = True,
                 stream: Optional[TextIO] = None) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.count = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and progress_enabled() and self.stream is not None
        self.terminal = self.enabled and _isatty(self.stream)
        self.started = 0.0
        self.seconds = 0.0
        self._drawn = 0.0

    def __enter__(self) -> "Progress":
        self.started = time.perf_counter()
        if self.terminal:
            self._draw(force=True)
        return self

    def update(self, count: int = 1) -> None:
        """Count ``count`` more units done."""
        self.count += count
        if self.terminal:
            self._draw()

    def __exit__(self, kind, value, traceback) -> None:
        self.seconds = time.perf_counter() - self.started
        if not self.enabled:
            return
        if kind is not None:
            if self.terminal:
                self.stream.write("\n")
                self.stream.flush()
            return
        if self.terminal:
            self._draw(force=True, end=f" done in {self.seconds:.1f} s\n")
        else:
            counts = f"{self._counts()}, " if self._counts() else ""
            self.stream.write(f"dcganlib: {self.label}: {counts}done in {self.seconds:.1f} s\n")
            self.stream.flush()

    # ------------------------------------------------------------------------------------------
    def _counts(self) -> str:
        """``"120/2000 files"``, ``"120 files"`` without a total, ``""`` when nothing was counted."""
        done = f"{self.count}/{self.total}" if self.total is not None else (str(self.count) if self.count else "")
        return f"{done} {self.unit}".rstrip() if done else ""

    def _draw(self, force: bool = False, end: str = "") -> None:
        now = time.perf_counter()
        if not force and now - self._drawn < REDRAW_SECONDS:
            return
        self._drawn = now
        bar = ""
        if self.total:
            filled = min(BAR_WIDTH, BAR_WIDTH * self.count // self.total)
            bar = f" [{'#' * filled}{'.' * (BAR_WIDTH - filled)}]"
        counts = self._counts()
        elapsed = f"{now - self.started:.1f} s"
        # \033[K clears what a longer earlier drawing left at the end of the line
        self.stream.write(f"\rdcganlib: {self.label}{bar} {counts + ' ' if counts else ''}{elapsed}\033[K{end}")
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


__all__ = ["PROGRESS_ENV", "Progress", "note", "progress_enabled"]
