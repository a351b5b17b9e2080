"""Several machines: which worker this process is, read from ``TF_CONFIG`` (no TensorFlow imported here).

``"strategy": "multi_worker"`` trains with ``tf.distribute.MultiWorkerMirroredStrategy``: the same
command runs on every machine, each with a ``TF_CONFIG`` environment variable naming all workers and
its own place among them::

    {"cluster": {"worker": ["node1:12345", "node2:12345"]}, "task": {"type": "worker", "index": 0}}

TensorFlow reads it when the strategy is created, and gives a malformed one a traceback or a wait for
workers that never come; :func:`worker_role` checks it first and names the problem in one line. The
chief (the ``"chief"`` task if the cluster has one, else worker 0, TensorFlow's rule) is the one
process that writes the run folder; the others train along and write only their share of each
checkpoint, into a :func:`scratch_folder` they delete (README, "Several machines").
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional

from .config import Config
from .errors import ConfigError, WorkerLostError

#: The environment variable TensorFlow reads the cluster from.
TF_CONFIG = "TF_CONFIG"
#: The task types MultiWorkerMirroredStrategy trains with (parameter servers and evaluators are other strategies).
TRAINING_TASKS = ("chief", "worker")
_ADDRESS = re.compile(r"^\S+:\d{1,5}$")


@dataclass(frozen=True)
class WorkerRole:
    """This process in a cluster of ``TF_CONFIG``: its task type and index, and every task's address."""

    task_type: str
    index: int
    cluster: Mapping[str, tuple[str, ...]]

    @property
    def distributed(self) -> bool:
        """True for a worker of a multi-worker cluster, False for :data:`SINGLE_PROCESS`."""
        return self.task_type in TRAINING_TASKS

    @property
    def workers(self) -> int:
        """The number of training processes (chief and workers; 1 for a single process)."""
        return sum(len(self.cluster.get(kind, ())) for kind in TRAINING_TASKS) if self.distributed else 1

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run folder: the only process, or TensorFlow's rule in a cluster —
        the ``chief`` task when the cluster has one, else ``worker`` 0."""
        if not self.distributed:
            return True
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.index == 0

    @property
    def name(self) -> str:
        """``"worker 1 of 2"`` (or ``"chief of 3"``, ``"the only process"``), for messages."""
        if not self.distributed:
            return "the only process"
        task = "chief" if self.task_type == "chief" else f"{self.task_type} {self.index}"
        return f"{task} of {self.workers}"


#: The role of a run that is not part of a cluster: it alone trains and writes the run folder.
SINGLE_PROCESS = WorkerRole("single", 0, {})


def worker_role(config: Config, environ: Optional[Mapping[str, str]] = None) -> WorkerRole:
    """This process's :class:`WorkerRole` when ``config.strategy`` is ``"multi_worker"``, else
    :data:`SINGLE_PROCESS`.

    Raises :class:`ConfigError` in one line, before anything is trained, when ``TF_CONFIG`` is absent or
    empty, is not JSON, lacks ``cluster`` or ``task``, lists an address that is not ``host:port``, names
    a task type other than ``chief``/``worker`` or one the cluster does not have, or an index out of range.
    """
    if config.strategy != "multi_worker":
        return SINGLE_PROCESS
    text = (os.environ if environ is None else environ).get(TF_CONFIG, "").strip()
    example = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["node1:12345", "node2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}\' (README, "Several machines")')
    if not text:
        raise ConfigError(f"strategy multi_worker needs the {TF_CONFIG} environment variable on every worker, "
                          f"naming all workers and this one's index; {example}")
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{TF_CONFIG} is not valid JSON ({exc}); {example}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{TF_CONFIG} must be a JSON object with 'cluster' and 'task'; got {text[:80]!r}")
    for key in ("cluster", "task"):
        if not isinstance(spec.get(key), dict) or not spec[key]:
            raise ConfigError(f"{TF_CONFIG} has no '{key}' object; {example}")
    cluster: dict[str, tuple[str, ...]] = {}
    for kind, addresses in spec["cluster"].items():
        if not isinstance(addresses, list) or not addresses:
            raise ConfigError(f"{TF_CONFIG} cluster '{kind}' must be a non-empty list of \"host:port\" addresses; "
                              f"got {addresses!r}")
        wrong = [a for a in addresses if not isinstance(a, str) or not _ADDRESS.match(a)]
        if wrong:
            raise ConfigError(f"{TF_CONFIG} cluster '{kind}' lists {wrong[0]!r}, not a \"host:port\" address")
        cluster[kind] = tuple(addresses)
    others = sorted(set(cluster) - set(TRAINING_TASKS))
    if others:
        raise ConfigError(f"{TF_CONFIG} cluster has task type(s) {', '.join(others)}; strategy multi_worker "
                          "trains with 'chief' and 'worker' tasks only")
    if len(cluster.get("chief", ())) > 1:
        raise ConfigError(f"{TF_CONFIG} cluster lists {len(cluster['chief'])} chiefs; there can be one")
    task_type, index = spec["task"].get("type"), spec["task"].get("index", 0)
    if task_type not in cluster:
        raise ConfigError(f"{TF_CONFIG} task type {task_type!r} is not in its cluster (which has "
                          f"{', '.join(sorted(cluster))})")
    if isinstance(index, bool) or not isinstance(index, int):
        raise ConfigError(f"{TF_CONFIG} task index must be a whole number; got {index!r}")
    if not 0 <= index < len(cluster[task_type]):
        raise ConfigError(f"{TF_CONFIG} task index {index} is out of range: the cluster has "
                          f"{len(cluster[task_type])} {task_type} task(s), indices 0 to {len(cluster[task_type]) - 1}")
    return WorkerRole(task_type, index, cluster)


@contextlib.contextmanager
def scratch_folder(role: WorkerRole) -> Iterator[Path]:
    """A fresh folder on this machine's temporary disk (``TMPDIR``) for a non-chief worker's checkpoint
    share, deleted on exit (TensorFlow's multi-worker pattern: every worker saves, only the chief keeps)."""
    folder = Path(tempfile.mkdtemp(prefix=f"dcganlib-{role.task_type}{role.index}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


#: First words of the lines of a TensorFlow collective error that are its graph trace, not its message.
_TRACE_LINES = ("Graph execution error", "Detected at node", "File ", "[[", ":UNKNOWN:")


def worker_lost_errors() -> tuple[type, ...]:
    """What a collective op raises when another worker died or cannot be reached: TensorFlow's coordination
    service reports a task that stopped sending heartbeats (about 10 s after a SIGKILL), or the gRPC
    connection to a dead worker is refused, as UnavailableError; a collective past its timeout as
    DeadlineExceededError. (A function: this module imports no TensorFlow until a cluster needs it.)"""
    import tensorflow as tf

    return (tf.errors.UnavailableError, tf.errors.DeadlineExceededError)


def _collective_failure(exc: BaseException) -> str:
    """The line of a TensorFlow collective error that says what happened (the rest is its graph trace)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if not line.startswith(_TRACE_LINES):
            following = lines[index + 1] if line.endswith(":") and index + 1 < len(lines) else ""
            return f"{type(exc).__name__}: {line} {following}".strip()[:300]
    return type(exc).__name__


@contextlib.contextmanager
def stop_when_worker_lost(role: WorkerRole, run_dir: Path) -> Iterator[None]:
    """In a cluster, turn a collective op failing because another worker is gone into one
    :class:`WorkerLostError` naming the checkpoint to resume from, instead of a graph traceback (a single
    process has no other worker to lose: nothing is caught)."""
    if not role.distributed:
        yield
        return
    from . import runs

    try:
        yield
    except worker_lost_errors() as exc:
        then = (f"restart every worker with --resume --out {run_dir}" if runs.latest_checkpoint(run_dir) else
                f"start every worker again with --overwrite --out {run_dir}")
        raise WorkerLostError(f"{role.name} lost contact with the other workers ({_collective_failure(exc)}); "
                              f"training stopped (a worker that refused to start says why in its own output); "
                              f"{runs.checkpoint_kept(run_dir)}; {then}") from None


__all__ = ["SINGLE_PROCESS", "TF_CONFIG", "TRAINING_TASKS", "WorkerRole", "worker_role", "scratch_folder",
           "stop_when_worker_lost", "worker_lost_errors"]
