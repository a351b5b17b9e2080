"""The run manifest ``run.json``: how a run actually ran — what ``auto`` chose, on which machine and
software, when, and how fast.

``config.json`` says what was asked (``"precision": "auto"``); ``run.json`` says what happened, so two
runs of one config on two machines can be told apart. :func:`dcganlib.training.train` writes it when
training starts, after every epoch and at the end (atomically, :mod:`dcganlib.files`);
``evaluate`` copies it into ``metrics.json``. Layout::

    {
      "status": "finished",            # running | finished | stopped (a signal) | diverged | interrupted
      "epochs_completed": 30, "epochs_total": 30,
      "started_at": "2026-01-01T10:00:00Z", "updated_at": "…", "finished_at": "…" or null,
      "seconds_per_epoch": 21.7,        # of the latest session: median of history.csv's "seconds"
      "images_per_second": 73.7,        # images per epoch (steps × batch size) / seconds_per_epoch
      "hardware": {"precision": "mixed_bfloat16", "precision_config": "auto", "strategy": "…",
                   "replicas": 1, "xla": false, "devices": ["/…/device:CPU:0"],
                   "cpu": {"model": "…", "logical_cpus": 2, "flags": ["avx2", "avx512_bf16", …]},
                   "gpus": [{"name": "/physical_device:GPU:0", "model": "…", "compute_capability": "8.0"}]},
      "software": {"python": "3.11.9", "tensorflow": "2.21.0", "keras": "3.12.0", "numpy": "2.1.3",
                   "dcganlib": "0.1.0", "git_commit": "…" or null, "platform": "Linux-…"},
      "sessions": [ … one entry per train() call that trained: the same fields for its epochs … ],
      "quality": {"criterion": "val_fd", "best_epoch": 37, "best_value": 41.2, "real_reference": {…}, …}
    }                                   # (runs that track quality: dcganlib.tracking)

A resume adds a session (it may run on another machine); a session that never recorded its end
(killed) is marked ``"interrupted"`` by the next one. Times are UTC, ISO 8601.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

from . import runs
from .config import Config
from .errors import RunFolderError
from .files import write_json

#: CPU features that decide precision and speed (``/proc/cpuinfo`` names); run.json lists those present.
RELEVANT_CPU_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                      "amx_tile", "amx_bf16", "amx_int8")
STATUSES = ("running", "finished", "stopped", "diverged", "interrupted")


def utc_now() -> str:
    """The current time as ``2026-01-01T10:00:00Z`` (UTC, whole seconds)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def git_commit() -> Optional[str]:
    """The commit dcganlib runs from, when it runs from a git checkout (``git rev-parse HEAD``); else None.

    Local only (no network); None without a ``.git`` next to the package, without ``git`` on the PATH,
    or when git fails for any reason.
    """
    root = Path(__file__).resolve().parent.parent
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():  # a file in a worktree, a folder in a clone
        return None
    try:
        done = subprocess.run([git, "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def software() -> dict[str, Any]:
    """Versions of Python, TensorFlow, Keras, NumPy and dcganlib, the git commit and the platform."""
    import keras
    import numpy as np
    import tensorflow as tf

    from . import __version__

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "dcganlib": __version__, "git_commit": git_commit(),
            "platform": platform.platform()}


def _gpus() -> list[dict[str, Any]]:
    import tensorflow as tf

    found = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        found.append({"name": device.name, "model": details.get("device_name"),
                      "compute_capability": ".".join(map(str, capability)) if capability else None})
    return found


def _replica_devices(strategy: Any) -> list[str]:
    """The devices the strategy trains on (the default strategy: TensorFlow's default placement)."""
    import tensorflow as tf

    try:
        return list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy has no device list; ops go to the first GPU, else the CPU
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return [devices[0].name]


def _strategy_name(strategy: Any) -> str:
    """``MirroredStrategy``, ``MultiWorkerMirroredStrategy`` …, or ``default`` (one device, no distribution)."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"  # its class is CollectiveAllReduceStrategy, the name nobody asked for
    name = type(strategy).__name__
    return "default" if type(strategy) is type(tf.distribute.get_strategy()) and name.startswith("_") else name


def cpu_record() -> dict[str, Any]:
    """The CPU as run.json and ``bench`` describe it: model, logical CPUs, the :data:`RELEVANT_CPU_FLAGS` present,
    and the ``ONEDNN_MAX_CPU_ISA`` cap on the instructions TensorFlow's kernels use (None: no cap)."""
    from .hardware import cpu_flags, cpu_model, onednn_isa_cap

    return {"model": cpu_model(), "logical_cpus": os.cpu_count(),
            "flags": [flag for flag in RELEVANT_CPU_FLAGS if flag in cpu_flags()], "onednn_max_cpu_isa": onednn_isa_cap()}


def hardware(config: Config, precision: str, strategy: Any, jit_compile: bool) -> dict[str, Any]:
    """What the run trains with: the resolved precision, the strategy and its replicas and devices, XLA,
    the CPU (:func:`cpu_record`) and the GPUs (model, capability)."""
    return {
        "precision": precision,
        "precision_config": config.precision,
        "strategy": _strategy_name(strategy),
        "replicas": int(strategy.num_replicas_in_sync),
        "xla": bool(jit_compile),
        "devices": _replica_devices(strategy),
        "cpu": cpu_record(),
        "gpus": _gpus(),
    }


def manifest_problem(run_dir: str | os.PathLike) -> Optional[str]:
    """Why the run's ``run.json`` cannot be read (``"… is not valid JSON (…)"``), or None when it reads or
    there is none."""
    path = Path(run_dir) / runs.RUN_MANIFEST_FILE
    problem = runs.json_record_problem(path)
    return None if problem is None else f"{path} {problem}"


def read_manifest(run_dir: str | os.PathLike) -> Optional[dict[str, Any]]:
    """The run's ``run.json`` as a dict, or None when there is none (a run from before manifests).

    A damaged one is never read as missing: :class:`RunFolderError` says what is wrong (a resume keeps it
    aside as ``run.json.damaged`` first, :func:`dcganlib.runs.recover_records`; ``evaluate`` records the
    problem, :func:`manifest_problem`)."""
    problem = manifest_problem(run_dir)
    if problem is not None:
        raise RunFolderError(f"{problem}; a --resume keeps it aside as {runs.RUN_MANIFEST_FILE}"
                             f"{runs.DAMAGED_SUFFIX} and starts a new one")
    path = Path(run_dir) / runs.RUN_MANIFEST_FILE
    return json.loads(path.read_bytes()) if path.is_file() else None


class RunManifest:
    """The manifest of one ``train()`` call (a session) in ``run_dir``; earlier sessions are kept.

    ``images_per_epoch`` = steps per epoch × global batch size; ``first_epoch`` = the first epoch this
    session trains (1 for a new run).
    """

    def __init__(self, run_dir: Path, config: Config, *, precision: str, strategy: Any, jit_compile: bool,
                 images_per_epoch: int, first_epoch: int) -> None:
        self.path = Path(run_dir) / runs.RUN_MANIFEST_FILE
        self.config = config
        self.images_per_epoch = int(images_per_epoch)
        self.quality: Optional[dict[str, Any]] = None
        previous = read_manifest(run_dir) or {}
        self.sessions: list[dict[str, Any]] = [
            {**session, "status": "interrupted"} if session.get("status") == "running" else session
            for session in previous.get("sessions", []) if isinstance(session, dict)]
        # A resume redoes the epochs after its checkpoint: earlier sessions keep only what still stands.
        self.sessions = [{**s, "last_epoch": min(s["last_epoch"], first_epoch - 1)}
                         if isinstance(s.get("last_epoch"), int) else s
                         for s in self.sessions if s.get("first_epoch", 1) < first_epoch]
        self.session: dict[str, Any] = {
            "started_at": utc_now(), "ended_at": None, "status": "running",
            "first_epoch": first_epoch, "last_epoch": None,
            "seconds_per_epoch": None, "images_per_second": None, "images_per_epoch": self.images_per_epoch,
            "hardware": hardware(config, precision, strategy, jit_compile), "software": software(),
        }

    def record(self, history: Sequence[dict[str, float]], status: str = "running",
               quality: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """Update this session from ``history`` (the run's rows so far) and write ``run.json``; return it.
        ``quality`` (:mod:`dcganlib.tracking`: the criterion, the best epoch, the real reference) is kept
        from the previous call when not given."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        first = self.session["first_epoch"]
        seconds = [row["seconds"] for row in history if row["epoch"] >= first and "seconds" in row]
        session = self.session
        session["status"] = status
        session["last_epoch"] = max((int(row["epoch"]) for row in history if row["epoch"] >= first), default=None)
        if seconds:
            session["seconds_per_epoch"] = round(statistics.median(seconds), 3)
            session["images_per_second"] = round(self.images_per_epoch / session["seconds_per_epoch"], 2)
        if status != "running":
            session["ended_at"] = utc_now()
        sessions = self.sessions + [session]
        completed = int(history[-1]["epoch"]) if history else first - 1
        manifest = {
            "status": status,
            "epochs_completed": completed,
            "epochs_total": self.config.epochs,
            "started_at": sessions[0]["started_at"],
            "updated_at": utc_now(),
            "finished_at": session["ended_at"] if status == "finished" else None,
            "seconds_per_epoch": session["seconds_per_epoch"],
            "images_per_second": session["images_per_second"],
            "hardware": session["hardware"],
            "software": session["software"],
            "sessions": sessions,
        }
        if quality is not None:
            self.quality = quality
        if self.quality is not None:
            manifest["quality"] = self.quality
        write_json(self.path, manifest)
        return manifest


__all__ = [
    "RELEVANT_CPU_FLAGS", "STATUSES", "utc_now", "git_commit", "software", "cpu_record", "hardware", "read_manifest",
    "manifest_problem", "RunManifest"
]
