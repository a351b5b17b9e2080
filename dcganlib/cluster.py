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
from .errors import ConfigError

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
    def workers(self) -> int:
        """The number of training processes (chief and workers)."""
        return sum(len(self.cluster.get(kind, ())) for kind in TRAINING_TASKS)

    @property
    def is_chief(self) -> bool:
        """TensorFlow's rule: the ``chief`` task when the cluster has one, else ``worker`` 0."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.index == 0

    @property
    def name(self) -> str:
        """``"worker 1 of 2"`` (or ``"chief of 3"``), for messages."""
        task = "chief" if self.task_type == "chief" else f"{self.task_type} {self.index}"
        return f"{task} of {self.workers}"


def worker_role(config: Config, environ: Optional[Mapping[str, str]] = None) -> Optional[WorkerRole]:
    """This process's :class:`WorkerRole` when ``config.strategy`` is ``"multi_worker"``, else None.

    Raises :class:`ConfigError` in one line, before anything is trained, when ``TF_CONFIG`` is absent or
    empty, is not JSON, lacks ``cluster`` or ``task``, lists an address that is not ``host:port``, names
    a task type other than ``chief``/``worker`` or one the cluster does not have, or an index out of range.
    """
    if config.strategy != "multi_worker":
        return None
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


__all__ = ["TF_CONFIG", "TRAINING_TASKS", "WorkerRole", "worker_role", "scratch_folder"]
