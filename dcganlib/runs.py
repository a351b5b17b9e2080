"""The run folder: its file names, its history, the rules for creating, resuming and overwriting it.

A run folder holds everything needed to watch, resume and use a run (no TensorFlow is imported here,
so ``gif``, ``--help`` and every check before training answer at once)::

    config.json        the Config of the run (atomic JSON)
    run.json           how it ran: resolved precision, devices, versions, times, speed (dcganlib.manifest)
    split.json         the data audit of dcganlib.data (sources, per-split subjects and counts)
    history.csv        one row per finished epoch: epoch, seconds, every metric (rewritten atomically)
    grids/epoch_0001.png  generator output for the SAME fixed noise every epoch, labelled "epoch N"
    training.gif       the grids as an animation (rebuilt at the end of train())
    checkpoints/       tf.train.CheckpointManager: G, D, both optimizers, epoch, noise RNG state;
                       best-epoch_0012.keras: the sampling generator of the best epoch so far (dcganlib.tracking)
    generator.keras    the final generator (Keras format, loaded with safe_mode=True)
    tensorboard/       TensorBoard event files: history metrics, losses every N steps, grids (dcganlib.summaries)
    evaluation/        metrics.json and figures of ``python -m dcganlib evaluate``
    generated/         images of ``python -m dcganlib generate`` (the default --out)
    train.lock         held while a process trains into the folder

A damaged record is never repaired silently nor overwritten: a resume keeps it aside as ``NAME.damaged`` and
says so (:func:`recover_records`; history.csv: :mod:`dcganlib.history`); other damage is refused in one line.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import Iterator, Optional, Sequence

from .config import Config, read_saved_config
from .errors import ConfigError, RunFolderError
from .files import atomic_path, temporary_stem, write_text
# history.csv has its own module; these names stay reachable as runs.X, the run folder's vocabulary
from .history import (DAMAGED_SUFFIX, DamagedRecordWarning, _parse_history, history_column, history_damage,
                      read_history, write_history)


CONFIG_FILE = "config.json"
RUN_MANIFEST_FILE = "run.json"
SPLIT_FILE = "split.json"
HISTORY_FILE = "history.csv"
GRIDS_DIR = "grids"
GIF_FILE = "training.gif"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_NAME = "ckpt"  # checkpoints are checkpoints/ckpt-<epoch>.{index,data-*}
CHECKPOINT_STATE_FILE = "checkpoint"  # TensorFlow's text file naming the latest checkpoint
GENERATOR_FILE = "generator.keras"
TENSORBOARD_DIR = "tensorboard"
EVALUATION_DIR = "evaluation"
METRICS_FILE = "metrics.json"
GENERATED_DIR = "generated"
GENERATED_MANIFEST = "generated.json"  # what generate wrote in its output folder ("files": plain names)
LOCK_FILE = "train.lock"
#: Stems of the figures ``evaluate`` writes (each as .png and .pdf) beside its metrics.json.
EVALUATION_FIGURES = ("two_sample_roc", "power_spectrum", "tissue_intensity", "feature_metrics", "ssim_histograms",
                      "diversity", "closest_pairs", "gallery", "ssim_over_epochs", "history")
FIGURE_SUFFIXES = (".png", ".pdf")
#: Folders of a run and what they hold: a regular file in their place is refused, never deleted.
RUN_FOLDERS = {GRIDS_DIR: "grids", CHECKPOINT_DIR: "checkpoints", TENSORBOARD_DIR: "TensorBoard",
               EVALUATION_DIR: "evaluation"}
#: Everything train() and the commands after it write; --overwrite deletes exactly these and nothing else.
RUN_ARTEFACTS = (CONFIG_FILE, RUN_MANIFEST_FILE, SPLIT_FILE, HISTORY_FILE, GRIDS_DIR, GIF_FILE, CHECKPOINT_DIR,
                 GENERATOR_FILE, TENSORBOARD_DIR, METRICS_FILE, EVALUATION_DIR, GENERATED_DIR)
_EPOCH_GRID = re.compile(r"^epoch_(\d+)\.png$")
_BEST_GENERATOR = re.compile(r"^best-epoch_(\d+)\.keras$")
_CHECKPOINT_INDEX = re.compile(rf"^{CHECKPOINT_NAME}-(\d+)\.index$")
_CHECKPOINT_DATA = re.compile(rf"^{CHECKPOINT_NAME}-(\d+)\.data-(\d+)-of-(\d+)$")
_STATE_LINE = re.compile(r'^model_checkpoint_path:\s*"(.*)"\s*$', re.MULTILINE)


# ------------------------------------------------------------------------------------------------
# names inside a run folder
def grid_path(run_dir: str | os.PathLike, epoch: int) -> Path:
    """``run_dir/grids/epoch_0001.png`` for epoch 1."""
    return Path(run_dir) / GRIDS_DIR / f"epoch_{epoch:04d}.png"


def epoch_grids(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``[(epoch, path), …]`` for ``run_dir/grids/epoch_*.png``, sorted by epoch number (not text)."""
    found = []
    grids = Path(run_dir) / GRIDS_DIR
    if grids.is_dir():
        for path in grids.iterdir():
            match = _EPOCH_GRID.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return sorted(found)


def evaluation_dir(run_dir: str | os.PathLike, epoch: Optional[int] = None) -> Path:
    """``run_dir/evaluation`` (the generator.keras evaluation), or ``run_dir/evaluation/epoch_0042`` for epoch 42's."""
    folder = Path(run_dir) / EVALUATION_DIR
    return folder if epoch is None else folder / f"epoch_{epoch:04d}"


def best_generator_path(run_dir: str | os.PathLike, epoch: int) -> Path:
    """``run_dir/checkpoints/best-epoch_0012.keras``: the best generator so far, of epoch 12."""
    return Path(run_dir) / CHECKPOINT_DIR / f"best-epoch_{epoch:04d}.keras"


def best_generators(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``[(epoch, path), …]`` of the best-generator files in ``run_dir/checkpoints``, newest epoch first
    (normally one; two only when a process died between writing the new one and deleting the old)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    found = [(int(m.group(1)), folder / m.group(0)) for m in
             (_BEST_GENERATOR.match(name) for name in (os.listdir(folder) if folder.is_dir() else ())) if m]
    return sorted(found, reverse=True)


def checkpoints(run_dir: str | os.PathLike) -> list[str]:
    """Path prefixes of the complete-looking checkpoints in ``run_dir/checkpoints``, newest first.

    Found on disk, not through TensorFlow's state file: ``ckpt-N.index`` plus every data shard
    ``ckpt-N.data-0000K-of-0000M`` it needs, so a deleted or damaged state file ``checkpoints/checkpoint``
    loses nothing. TensorFlow names a checkpoint in that state file only after its files are complete;
    when the state file names ``ckpt-K``, a ``ckpt-N`` with N > K is a save that was interrupted and is
    left out. Whether TensorFlow can read a listed checkpoint is decided by the restore
    (:func:`dcganlib.gan.restore_newest`, which falls back to the next older one).
    """
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    names = {path.name for path in folder.iterdir()}
    shards: dict[int, tuple[set[int], int]] = {}
    for name in names:
        match = _CHECKPOINT_DATA.match(name)
        if match:
            number, shard, total = (int(group) for group in match.groups())
            shards.setdefault(number, (set(), total))[0].add(shard)
    recorded = _recorded_latest(folder)
    found = []
    for name in names:
        match = _CHECKPOINT_INDEX.match(name)
        if not match:
            continue
        number = int(match.group(1))
        present, total = shards.get(number, (set(), 0))
        if total and present == set(range(total)) and (recorded is None or number <= recorded):
            found.append(number)
    return [str(folder / f"{CHECKPOINT_NAME}-{number}") for number in sorted(found, reverse=True)]


def _recorded_latest(folder: Path) -> Optional[int]:
    """The number of the checkpoint TensorFlow's state file names as latest, or None (no or damaged file)."""
    try:
        state = (folder / CHECKPOINT_STATE_FILE).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    match = _STATE_LINE.search(state)
    name = Path(match.group(1)).name if match else ""
    number = re.fullmatch(rf"{CHECKPOINT_NAME}-(\d+)", name)
    return int(number.group(1)) if number else None


def latest_checkpoint(run_dir: str | os.PathLike) -> Optional[str]:
    """Path prefix of the newest checkpoint of :func:`checkpoints`, or None."""
    found = checkpoints(run_dir)
    return found[0] if found else None


def record_checkpoints(run_dir: str | os.PathLike, newest: str | os.PathLike) -> None:
    """Rewrite TensorFlow's state file ``checkpoints/checkpoint`` to name ``newest`` as the latest and track
    the checkpoints on disk up to it, oldest first (the ones ``tf.train.CheckpointManager`` then rotates).

    Called after a resume restored ``newest`` (a no-op when the state file names it already): a deleted
    state file is rebuilt, and newer checkpoints that could not be read are no longer tracked (the run overwrites them when it reaches their epochs). Paths
    are relative, as TensorFlow writes them, so the run folder can be moved.
    """
    folder = Path(run_dir) / CHECKPOINT_DIR
    last = checkpoint_epoch(newest)
    if _recorded_latest(folder) == last:
        return  # TensorFlow's own record is right: leave it as it is
    kept = [Path(p).name for p in reversed(checkpoints(run_dir)) if checkpoint_epoch(p) <= last]
    if Path(newest).name not in kept:
        kept.append(Path(newest).name)
    times = [(folder / f"{name}.index").stat().st_mtime for name in kept]
    lines = [f'model_checkpoint_path: "{Path(newest).name}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in kept]
    lines += [f"all_model_checkpoint_timestamps: {stamp!r}" for stamp in times]
    # The manager tracks (and so may delete) only checkpoints younger than this time.
    lines.append(f"last_preserved_timestamp: {min(times) - 1.0!r}")
    write_text(folder / CHECKPOINT_STATE_FILE, "\n".join(lines) + "\n")


def checkpoint_epoch(prefix: str | os.PathLike) -> int:
    """The epoch a checkpoint prefix ``…/ckpt-N`` was saved after: N."""
    return int(Path(prefix).name.rsplit("-", 1)[1])


def read_config(run_dir: str | os.PathLike) -> Config:
    """The run's saved ``config.json`` (validated); :class:`RunFolderError` when the folder has none."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunFolderError(f"{run_dir} has no {CONFIG_FILE}; is it a run folder written by "
                             "'python -m dcganlib train'?")
    return read_saved_config(path)[0]


# ------------------------------------------------------------------------------------------------
# rules for the folder
def _contents(run_dir: Path) -> list[str]:
    if not run_dir.exists():
        return []
    return sorted(p.name for p in run_dir.iterdir() if p.name != LOCK_FILE)


def check_run_folder(config: Config, run_dir: Path, resume: bool, overwrite: bool, force: bool, *,
                     writer: bool = True) -> None:
    """Every rule about the run folder, checked before any data is read or graph built.

    ``writer=False`` is a worker of a multi-worker run other than the chief: it never writes the folder
    and only reads it on a resume (the saved config, the checkpoints), so the rules about what a new run
    may find there are the chief's, which may have created the folder already.
    """
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: resume continues the run in "
                          f"{run_dir}, overwrite deletes it; pass one of them")
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"run folder {run_dir} exists and is a file; choose another --out")
    contents = _contents(run_dir)
    check_run_subfolders(run_dir, [GRIDS_DIR, CHECKPOINT_DIR, TENSORBOARD_DIR, EVALUATION_DIR])
    if resume:
        saved = run_dir / CONFIG_FILE
        if not saved.exists():
            raise RunFolderError(f"nothing to resume in {run_dir}: no {CONFIG_FILE}; "
                                 "drop --resume to start a new run there")
        saved_config, missing = read_saved_config(saved)
        architecture = saved_config.architecture_diff(config, missing)
        if architecture:
            lacking = [key for key in architecture if key in missing]
            raise ConfigError(
                f"--resume cannot change the networks of the run in {run_dir} "
                f"({saved_config.describe_diff(config, missing=missing, only=architecture)}): its checkpoints "
                "fit only the saved ones, so not even --force continues; drop those options, or train a new run "
                "with another --out"
                + (f" ({', '.join(lacking)} missing from {saved}: add the value the run was trained with)"
                   if lacking else ""))
        differences = saved_config.describe_diff(config, ("saved", "now"), missing=missing)
        if differences and not force:
            raise ConfigError(f"--resume with settings that differ from {saved} ({differences}); "
                              "drop those options, or pass --force to continue with the new values")
        history = run_dir / HISTORY_FILE
        # A damaged history is refused now, not after the data is loaded (a cut last row is recovered).
        rows = _parse_history(history)[0] if history.is_file() else []
        if latest_checkpoint(run_dir) is None:
            raise RunFolderError(_no_checkpoint(run_dir, rows))
    elif not writer:
        return
    elif contents and not overwrite:
        raise RunFolderError(f"run folder {run_dir} already exists and is not empty; pass --resume to "
                             "continue it, --overwrite to delete it and start afresh, or choose another --out")
    elif contents and overwrite and CONFIG_FILE not in contents:
        raise RunFolderError(f"refusing --overwrite of {run_dir}: it holds files but no {CONFIG_FILE}, so it "
                             "does not look like a dcganlib run folder; choose another --out")


def _no_checkpoint(run_dir: Path, rows: Sequence[dict[str, float]]) -> str:
    """Why a run without a checkpoint cannot be resumed, and advice that keeps what it has."""
    folder = run_dir / CHECKPOINT_DIR
    if not rows:
        return (f"cannot resume {run_dir}: no checkpoint in {folder} (the run stopped before its first epoch "
                f"finished); start it again with --overwrite, which deletes {describe_artefacts(run_dir)}")
    where = f"no checkpoint in {folder}" if folder.is_dir() else f"its {CHECKPOINT_DIR}/ folder is gone"
    epochs = int(rows[-1]["epoch"])
    if (run_dir / GENERATOR_FILE).is_file():
        return (f"cannot resume {run_dir}: {where}, though history.csv records {epochs} epochs and "
                f"{GENERATOR_FILE} is there (checkpoints deleted to save space?); a resume needs the checkpoints, "
                f"so keep this run as it is — generate and evaluate still use {GENERATOR_FILE} — and train more "
                "in a new run with another --out")
    return (f"cannot resume {run_dir}: {where}, though history.csv records {epochs} epochs (deleted or lost?); "
            "without a checkpoint or generator these epochs cannot continue: restore the checkpoints from a "
            "backup, or start a new run with another --out (the records here stay)")


def check_run_subfolders(run_dir: Path, names: Sequence[str]) -> None:
    """Refuse, before any work, a regular file where the run keeps one of the folders ``names``
    (:data:`RUN_FOLDERS`): dcganlib did not write it, so it neither deletes nor writes into it."""
    for name in names:
        target = run_dir / name
        if target.exists() and not target.is_dir():
            raise RunFolderError(f"{target} is a file where dcganlib keeps the run's {RUN_FOLDERS[name]} folder; "
                                 "move or rename that file (dcganlib does not delete files it did not write), "
                                 "then run the command again")


def own_files(run_dir: Path, name: str) -> list[Path]:
    """The files dcganlib wrote in the run's folder ``name`` that :func:`clear_run_folder` deletes:
    ``epoch_NNNN.png`` in ``grids/``; metrics.json and the figures in ``evaluation/``; in ``generated/`` the
    files its ``generated.json`` lists, and that record; every file of ``checkpoints/`` and ``tensorboard/``.
    Temporaries of killed writers count."""
    folder = run_dir / name
    if not folder.is_dir():
        return []
    if name == GRIDS_DIR:
        return [path for _, path in epoch_grids(run_dir)] + _temporaries(folder)
    if name in (EVALUATION_DIR, GENERATED_DIR):
        names = ({METRICS_FILE} | {stem + suffix for stem in EVALUATION_FIGURES for suffix in FIGURE_SUFFIXES}
                 if name == EVALUATION_DIR else _generated_names(folder))
        return sorted(p for p in folder.iterdir() if p.name in names and p.is_file()) + _temporaries(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _generated_names(folder: Path) -> set[str]:
    """The plain file names ``generate`` lists in ``folder/generated.json``, and that record; none when it is
    absent or unreadable (then nothing there is known to be dcganlib's)."""
    import json

    try:
        listed = json.loads((folder / GENERATED_MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    if not isinstance(listed, list):
        return set()
    return {GENERATED_MANIFEST} | {n for n in listed if isinstance(n, str) and n == Path(n).name}


def _temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(".") and ".tmp-" in p.name and p.is_file())


def describe_artefacts(run_dir: Path) -> str:
    """The run artefacts in ``run_dir`` as one phrase, ``"config.json, history.csv, grids/ (3 files)"``:
    what :func:`clear_run_folder` (``--overwrite``) would delete."""
    parts = []
    for name in RUN_ARTEFACTS:
        target = run_dir / name
        if target.is_dir():
            parts.append(f"{name}/ ({len(own_files(run_dir, name))} files)")
        elif target.exists():
            parts.append(name)
    return ", ".join(parts) if parts else "nothing"


def create_run_folder(run_dir: Path) -> None:
    """Create ``run_dir`` (and its parents) and check that it is writable."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create run folder {run_dir}: {exc.strerror}; choose another --out") from None
    if not os.access(run_dir, os.W_OK):
        raise RunFolderError(f"run folder {run_dir} is not writable; choose another --out")


def clear_run_folder(run_dir: Path) -> None:
    """Delete the run artefacts (:data:`RUN_ARTEFACTS`) and nothing else: in ``grids/``, ``evaluation/`` and
    ``generated/`` only the files dcganlib names (:func:`own_files`), so a user's file kept there stays
    (with its folder)."""
    for name in RUN_ARTEFACTS:
        target = run_dir / name
        if name in (GRIDS_DIR, EVALUATION_DIR, GENERATED_DIR) and target.is_dir():
            for path in own_files(run_dir, name):
                path.unlink()
            with contextlib.suppress(OSError):  # not empty: the user's files stay
                target.rmdir()
        elif target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def keep_aside(path: Path) -> Path:
    """Copy a damaged record to ``NAME.damaged`` (``NAME.damaged-2`` … when that exists: an earlier
    damaged copy is never replaced); the copy's path."""
    target = path.with_name(path.name + DAMAGED_SUFFIX)
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}{DAMAGED_SUFFIX}-{number}")
    with atomic_path(target) as tmp:
        shutil.copy2(path, tmp)
    return target


def json_record_problem(path: Path) -> Optional[str]:
    """Why the JSON record ``path`` (run.json, split.json) cannot be read, or None when it reads as a JSON
    object or is absent."""
    import json

    try:
        value = json.loads(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    except (ValueError, UnicodeDecodeError) as exc:
        return f"is not valid JSON ({type(exc).__name__}: {str(exc)[:80]})"
    return None if isinstance(value, dict) else f"holds a JSON {type(value).__name__}, not an object"


def recover_records(run_dir: Path) -> list[str]:
    """Before a resume trains (under the run lock): keep damaged records aside and say so, one note each.

    * ``run.json`` / ``split.json`` that cannot be read are moved to ``NAME.damaged``; the resume writes
      new ones (run.json then holds this session only).
    * ``history.csv`` whose last row was cut short is copied to ``history.csv.damaged`` and rewritten
      without that row; TensorFlow's state file is pointed at the newest checkpoint not after the last
      complete row, so the resume trains that epoch again and the history has one complete row per epoch.
    """
    notes = []
    for name in (RUN_MANIFEST_FILE, SPLIT_FILE):
        path = run_dir / name
        if path.is_dir():
            raise RunFolderError(f"{path} is a folder where dcganlib keeps a file; move or rename it, then run the "
                                 "command again")
        problem = json_record_problem(path)
        if problem is not None:
            kept = keep_aside(path)
            path.unlink()
            notes.append(f"{path} {problem}; kept aside as {kept.name}, a new {name} is written"
                         + (" (it records this session only)" if name == RUN_MANIFEST_FILE else ""))
    history = run_dir / HISTORY_FILE
    rows, cut = _parse_history(history) if history.is_file() else ([], None)
    if cut is not None:
        kept = keep_aside(history)
        write_history(history, rows)
        last = int(rows[-1]["epoch"]) if rows else 0
        newest = latest_checkpoint(run_dir)
        usable = [p for p in checkpoints(run_dir) if checkpoint_epoch(p) <= last]
        if usable:
            then = f"training continues from {Path(usable[0]).name} and redoes the epochs after it"
            if checkpoint_epoch(newest) > checkpoint_epoch(usable[0]):
                record_checkpoints(run_dir, usable[0])  # the newer checkpoints are trained again, then replaced
        elif newest is not None:
            then = (f"no checkpoint up to epoch {last} is kept, so training continues from {Path(newest).name} and "
                    f"history.csv has no row for epochs {last + 1}-{checkpoint_epoch(newest)}")
        else:
            then = "there is no checkpoint to continue from"
        notes.append(f"{history}: its last row was cut short ({cut[:40]!r}); the file is kept aside as {kept.name} "
                     f"and the row dropped; {then}")
    return notes


def remove_stale_temporaries(run_dir: Path) -> None:
    """Delete what a killed writer leaves: ``.NAME.tmp-PID-TAG.EXT`` siblings of atomically written files
    (:mod:`dcganlib.files`) and TensorFlow's ``ckpt-N_temp`` folders. Call it under the run lock only."""
    for folder in (run_dir, run_dir / GRIDS_DIR, run_dir / CHECKPOINT_DIR):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = path.name
            stale = temporary_stem(name) is not None or (folder.name == CHECKPOINT_DIR and name.endswith("_temp"))
            if stale and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif stale:
                path.unlink(missing_ok=True)


def checkpoint_kept(run_dir: str | os.PathLike) -> str:
    """The sentence every stop says about what a resume continues from: ``the last checkpoint ckpt-N in RUN
    is intact`` (or that there is none yet)."""
    last = latest_checkpoint(run_dir)
    return f"the last checkpoint {Path(last).name} in {run_dir} is intact" if last else "no checkpoint was saved yet"


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir/train.lock`` (an OS file lock: released when the process dies, even by SIGKILL)."""
    import filelock

    lock = filelock.FileLock(str(run_dir / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise RunFolderError(f"another process is training into {run_dir} (it holds {run_dir / LOCK_FILE}); "
                             "wait for it to finish or choose another --out") from None
    try:
        yield
    finally:
        lock.release()


def training_elsewhere(run_dir: Path) -> bool:
    """Whether another process trains into ``run_dir`` now (holds its ``train.lock``): tried without
    waiting and released at once; False without a lock file (none is created)."""
    import filelock

    path = run_dir / LOCK_FILE
    if not path.is_file():
        return False
    lock = filelock.FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        return True
    lock.release()
    return False


__all__ = ["CONFIG_FILE", "RUN_MANIFEST_FILE", "SPLIT_FILE", "HISTORY_FILE", "GRIDS_DIR", "GIF_FILE",
           "CHECKPOINT_DIR", "CHECKPOINT_NAME", "TENSORBOARD_DIR", "DAMAGED_SUFFIX", "EVALUATION_FIGURES",
           "FIGURE_SUFFIXES", "RUN_FOLDERS", "DamagedRecordWarning", "check_run_subfolders", "own_files",
           "keep_aside", "json_record_problem", "recover_records", "history_damage", "training_elsewhere",
           "GENERATOR_FILE", "EVALUATION_DIR", "METRICS_FILE", "GENERATED_DIR", "GENERATED_MANIFEST", "LOCK_FILE",
           "RUN_ARTEFACTS", "grid_path", "epoch_grids", "checkpoints", "latest_checkpoint", "checkpoint_epoch",
           "record_checkpoints", "read_config", "read_history", "write_history", "history_column",
           "check_run_folder", "describe_artefacts", "create_run_folder", "clear_run_folder",
           "remove_stale_temporaries", "checkpoint_kept", "run_lock"]
