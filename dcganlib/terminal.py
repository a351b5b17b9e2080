"""What reaches the user's terminal from TensorFlow: by default nothing; all of it with ``--verbose``.

TensorFlow 2.21 logs from C++ through Abseil, in two ways (measured with ``TF_CPP_MIN_LOG_LEVEL`` 0–3):

1. **while its shared libraries load** — ``port.cc`` "oneDNN custom operations are on", ``cudart_stub.cc``
   "Could not find cuda drivers", each preceded by Abseil's banner "WARNING: All log messages before
   absl::InitializeLog() is called are written to STDERR". Abseil sends every message to stderr until
   ``InitializeLog()`` runs, and TensorFlow applies ``TF_CPP_MIN_LOG_LEVEL`` only later, so no value of
   the variable hides these lines, and no Abseil flag or environment variable reaches them either;
2. **afterwards** — ``cpu_feature_guard`` (INFO) at import, ``failed call to cuInit`` (ERROR) when the
   devices are first listed on a machine without a CUDA driver, Grappler's "remapper failed" (ERROR) at
   the first train step (a TensorFlow bug, harmless: README, "A quiet terminal"). These honour
   ``TF_CPP_MIN_LOG_LEVEL``: 0 shows all, 1 hides INFO, 2 also WARNING, 3 also ERROR.

So :func:`quiet_tensorflow` (called when ``dcganlib`` is imported, i.e. before TensorFlow) sets
``TF_CPP_MIN_LOG_LEVEL=3`` unless the user set it, and runs the first ``import tensorflow`` with the
process's stderr (file descriptor 2) captured; the captured text goes back to stderr without the Abseil
records below that level. TensorFlow's real failures reach Python as exceptions, which are untouched,
and so are dcganlib's own warnings (Python ``warnings``) and everything printed outside that import.

``--verbose`` (every CLI command) or ``DCGANLIB_VERBOSE=1`` turns all of this off: TensorFlow logs as it
does on its own. Importing TensorFlow *before* dcganlib leaves its load-time lines on the terminal.
One case loses output: a process that TensorFlow kills *during* its import (an abort, e.g. a CPU without
the instructions the wheel needs) dies before the captured text is written back; ``--verbose`` shows it.
The Python logger ``tensorflow`` is set to ERROR unless the user gave it a level.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import logging
import os
import re
import sys
import tempfile
from typing import Iterator, Optional

#: TensorFlow's own variable: the lowest severity its C++ code prints (0 INFO … 3 FATAL only).
LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
#: ``DCGANLIB_VERBOSE=1`` shows TensorFlow's log lines (the same as ``--verbose``).
VERBOSE_ENV = "DCGANLIB_VERBOSE"
#: The level dcganlib sets when the user has not: only FATAL lines, which end the process anyway.
QUIET_LEVEL = 3

# An Abseil/glog record: severity letter, MMDD, time, thread id, file:line] — e.g.
# "I0000 00:00:1796179047.467518   11771 port.cc:153] oneDNN custom operations are on."
_RECORD = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\s\]]+:\d+\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def verbose_requested() -> bool:
    """True when ``$DCGANLIB_VERBOSE`` is ``1``/``true``/``yes`` (case-insensitive)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes")


def min_log_level() -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as TensorFlow reads it: an integer, 0 when unset or not a number."""
    try:
        return int(os.environ.get(LEVEL_ENV, "0"))
    except ValueError:
        return 0


def filter_log_text(text: str, level: int) -> str:
    """``text`` without the Abseil log records of severity below ``level`` (0 INFO, 1 WARNING, 2 ERROR, 3 FATAL).

    Only lines that *start* a record are dropped (and Abseil's "before InitializeLog" banner, at ``level``
    >= 1: a WARNING about logging itself); any other line is kept as it is, even if it continues a dropped
    record, so nothing that is not a log record can be lost. (TensorFlow's one multi-line record at
    import, ``cpu_feature_guard``, is INFO that it already hides itself at level >= 1.)
    """
    kept = []
    for line in text.splitlines(keepends=True):
        record = _RECORD.match(line)
        if record is not None and _SEVERITY[record.group(1)] < level:
            continue
        if record is None and line.rstrip("\r\n") == _BANNER and level >= 1:
            continue
        kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def filtered_stderr(level: int) -> Iterator[None]:
    """Capture file descriptor 2 while the block runs (C++ writes there directly), then write what was
    captured back to stderr through :func:`filter_log_text`. Without a usable fd 2 it does nothing."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    stream = sys.stderr
    with tempfile.TemporaryFile() as capture:
        if stream is not None:
            stream.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            if stream is not None:
                stream.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = filter_log_text(capture.read().decode("utf-8", errors="replace"), level)
            if kept and stream is not None:
                stream.write(kept)
                stream.flush()


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of ``tensorflow`` inside :func:`filtered_stderr`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        # The module keeps the real loader: importlib.resources and friends ask it for files.
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with filtered_stderr(min_log_level()):
            self.loader.exec_module(module)
        python_logger = logging.getLogger("tensorflow")
        if python_logger.level == logging.NOTSET:  # the user has not chosen a level: TF's Python warnings off
            python_logger.setLevel(logging.ERROR)


class _QuietImportFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders and hands it to :class:`_QuietLoader`, once."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        uninstall()
        for finder in sys.meta_path:  # the finders that would have found it without us
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


_finder: Optional[_QuietImportFinder] = None
_level_set_by_us = False


def quiet_tensorflow() -> None:
    """Keep TensorFlow's log lines off the terminal (see the module docstring); a no-op when
    :func:`verbose_requested`. Call it before TensorFlow is imported (``import dcganlib`` does)."""
    global _finder, _level_set_by_us
    if verbose_requested():
        return
    if LEVEL_ENV not in os.environ:
        os.environ[LEVEL_ENV] = str(QUIET_LEVEL)
        _level_set_by_us = True
    if _finder is None and "tensorflow" not in sys.modules:
        _finder = _QuietImportFinder()
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Stop filtering the TensorFlow import (it happens at most once anyway)."""
    global _finder
    if _finder is not None and _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    _finder = None


def set_verbose() -> None:
    """Undo :func:`quiet_tensorflow` (``--verbose``): TensorFlow logs as it does on its own. Effective for
    what TensorFlow prints after this call; a ``TF_CPP_MIN_LOG_LEVEL`` the user set stays."""
    global _level_set_by_us
    os.environ[VERBOSE_ENV] = "1"  # child processes (bench's memory probe) log alike
    uninstall()
    if _level_set_by_us:
        os.environ.pop(LEVEL_ENV, None)
        _level_set_by_us = False


__all__ = ["LEVEL_ENV", "VERBOSE_ENV", "QUIET_LEVEL", "verbose_requested", "min_log_level", "filter_log_text",
           "filtered_stderr", "quiet_tensorflow", "uninstall", "set_verbose"]
