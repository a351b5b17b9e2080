"""User-facing errors.

Everything a user can cause (a wrong path, a bad config value, unreadable data) is raised as a
:class:`DcganlibError` subclass *before* TensorFlow sees it. The CLI prints ``str(error)`` as one line
and exits with ``error.exit_code``; it never shows a traceback for these.
"""

from __future__ import annotations


class DcganlibError(Exception):
    """Base class: a problem the user can fix. The message names the path/key and what to do."""

    exit_code = 2


class ConfigError(DcganlibError):
    """An invalid configuration value, an unknown key, or a config that clashes with a run folder."""


class DataError(DcganlibError):
    """Missing, empty, unreadable or unsuitable input data."""


class RunFolderError(DcganlibError):
    """A run folder that cannot be used: exists without --resume/--overwrite, locked, unwritable."""


class WorkerLostError(DcganlibError):
    """Training on several machines stopped because another worker died or became unreachable; the last
    checkpoint is intact and every worker resumes from it with ``--resume``."""

    exit_code = 4


class DivergenceError(DcganlibError):
    """Training produced a NaN or Inf loss; the last good checkpoint is intact."""

    exit_code = 3
