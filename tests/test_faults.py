"""Fault injection: training killed, stopped or diverging at chosen moments, and every bad input or config.

:func:`arm_fault` patches one library or TensorFlow hook so that the process SIGKILLs itself, signals
itself, poisons a weight or waits at an exact point (a step, the middle of a checkpoint save, the middle of
an atomic file write), so every fault lands at the same place on every run. Kills and the two-process
lock test run ``python -m dcganlib`` in a process of their own armed by :func:`run_with_fault`: a fork
of a server process that imported this file (tests/forkserver.py: a fresh TensorFlow runtime without
another 4-second import); SIGINT, NaN and every resume run the command line in this process (``cli.main``:
the same code, without another TensorFlow start-up). Every resumed run must end identical to one
uninterrupted reference run: same history metrics, grids, checkpoint and generator, bit for bit.

Refusals of bad settings, inputs and folders (no fault needed) live with the CLI tests (test_cli).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")

from dcganlib import callbacks, cli, runs, sampling  # noqa: E402
from dcganlib.gan import METRIC_NAMES  # noqa: E402
from dcganlib.config import Config, smoke_config  # noqa: E402
from dcganlib.errors import DivergenceError  # noqa: E402
from forkserver import Forked, ForkServer  # noqa: E402
from helpers import dead_pid, error_line, main, snapshot, write_slices  # noqa: E402

EPOCHS = 4  # 40 training images, batch 16: 2 steps per epoch
KEEP = 2  # checkpoints kept, fewer than EPOCHS so that old ones are deleted during the run
TESTS = Path(__file__).resolve().parent


# ================================================================================================
# the fault, armed inside the training subprocess
def run_with_fault(spec: str, argv: list[str]) -> int:
    """Run ``python -m dcganlib ARGV`` with the fault ``spec`` armed (see :func:`arm_fault`); the exit code."""
    arm_fault(spec)
    return cli.main(argv)


def arm_fault(spec: str, patch=setattr) -> None:
    """Patch one hook so that the fault ``spec`` happens; ``patch`` is ``setattr`` or pytest's
    ``monkeypatch.setattr`` (in this process, undone after the test).

    ``spec`` (epochs E and steps S are 1-based, as in the messages):

    * ``none`` — no fault (for a signal sent from outside);
    * ``kill-at-step:E:S`` — SIGKILL after step S of epoch E (mid-epoch);
    * ``signal-at-step:E:S:NAME`` — send SIGINT/SIGTERM to itself after step S of epoch E;
    * ``nan-at-step:E:S`` — set D's logit kernel to NaN before step S of epoch E;
    * ``pause-at-step:E:S:DIR`` — after step S of epoch E create ``DIR/paused``, wait for ``DIR/release``;
    * ``kill-in-checkpoint:E:data`` — SIGKILL inside checkpoint E's save once TensorFlow has written its
      data files (the data file then cut to half, as a kill during the write leaves it) and before the
      state file ``checkpoint`` names it;
    * ``kill-in-checkpoint:E:state`` — SIGKILL right after the state file names checkpoint E, before
      the oldest checkpoint is deleted;
    * ``kill-in-replace:NAME:K`` — SIGKILL during the K-th atomic write of a file called NAME: its
      temporary sibling half written, the rename onto NAME not done;
    * ``fill-disk-after-epoch:E:BYTES:FILE`` — once epoch E is recorded, write FILE (on the run's disk)
      until only BYTES are free;
    * ``disk-full-in:E:grid|checkpoint`` — the grid or the checkpoint save of epoch E fails as on a full
      disk (for machines where no small file system can be mounted).
    """
    from tensorflow.python.checkpoint import checkpoint_management

    kind, *args = spec.split(":")

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def at_step(epoch: str, step: str, action, before: bool = False) -> None:
        hook = "on_train_batch_begin" if before else "on_train_batch_end"
        original = getattr(callbacks.DivergenceGuard, hook)
        fired = []

        def patched(self, batch, logs=None):
            original(self, batch, logs)
            if not fired and (self._epoch, batch + 1) == (int(epoch), int(step)):
                fired.append(True)
                action(self.model)

        patch(callbacks.DivergenceGuard, hook, patched)

    if kind == "none":
        pass
    elif kind == "kill-at-step":
        at_step(*args, lambda model: die())
    elif kind == "signal-at-step":
        at_step(args[0], args[1], lambda model: os.kill(os.getpid(), getattr(signal, args[2])))
    elif kind == "nan-at-step":
        def poison(model):
            kernel = model.discriminator.get_layer("logit").kernel
            kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))
        at_step(*args, poison, before=True)
    elif kind == "pause-at-step":
        folder = Path(args[2])

        def pause(model):
            (folder / "paused").touch()
            while not (folder / "release").exists():
                time.sleep(0.05)
        at_step(args[0], args[1], pause)
    elif kind == "kill-in-checkpoint":
        epoch, stage = int(args[0]), args[1]
        manager_class = checkpoint_management.CheckpointManager
        save, record_state = manager_class.save, manager_class._record_state
        saving = {}

        def patched_save(self, checkpoint_number=None, *a, **k):
            saving["number"] = int(checkpoint_number)
            return save(self, checkpoint_number, *a, **k)

        def patched_record_state(self):
            if saving.get("number") == epoch and stage == "data":
                data_file = Path(f"{self._prefix}-{epoch}.data-00000-of-00001")
                data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
                die()
            record_state(self)
            if saving.get("number") == epoch and stage == "state":
                die()

        patch(manager_class, "save", patched_save)
        patch(manager_class, "_record_state", patched_record_state)
    elif kind == "kill-in-replace":
        name, nth = args[0], int(args[1])
        replace, seen = os.replace, []

        def patched_replace(source, destination, *a, **k):
            if Path(destination).name == name:
                seen.append(destination)
                if len(seen) == nth:
                    source = Path(source)
                    source.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
                    die()
            return replace(source, destination, *a, **k)

        patch(os, "replace", patched_replace)
    elif kind == "fill-disk-after-epoch":
        epoch, left, filler = int(args[0]), int(args[1]), Path(args[2])
        record = callbacks.RunRecorder.on_epoch_end

        def fill_after(self, index, logs=None):
            record(self, index, logs)
            if index + 1 == epoch:
                free = os.statvfs(filler.parent)
                filler.write_bytes(b"\0" * max(free.f_bavail * free.f_frsize - left, 0))
        patch(callbacks.RunRecorder, "on_epoch_end", fill_after)
    elif kind == "disk-full-in":
        epoch, writer = int(args[0]), args[1]
        record, save_grid = callbacks.RunRecorder.on_epoch_end, callbacks.save_grid_of
        current = {}

        def remember_epoch(self, index, logs=None):
            current["epoch"] = index + 1
            if writer == "checkpoint" and index + 1 == epoch:
                def full(*a, **k):
                    raise tf.errors.ResourceExhaustedError(None, None, "SaveV2: No space left on device")
                self.manager.save = full
            record(self, index, logs)

        def grid_on_full_disk(*a, **k):
            if writer == "grid" and current.get("epoch") == epoch:
                raise OSError(28, os.strerror(28), str(a[2]))
            return save_grid(*a, **k)
        patch(callbacks.RunRecorder, "on_epoch_end", remember_epoch)
        patch(callbacks, "save_grid_of", grid_on_full_disk)
    else:
        raise ValueError(f"unknown fault {spec!r}")


# ================================================================================================
# helpers
def start(spec: str, *args: str, cwd: Path) -> Forked:
    """``python -m dcganlib ARGS`` with the fault ``spec`` armed, in the background; output in cwd/*.log.
    A fork of this module's :class:`ForkServer` (a fresh process without another TensorFlow import)."""
    global _SERVER
    if _SERVER is None:
        _SERVER = ForkServer("test_faults:run_with_fault",
                             dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""))
    return _SERVER.start(spec, list(args), cwd=cwd, env={"DCGANLIB_CACHE": str(cwd / "cache")},
                         stdout=cwd / "stdout.log", stderr=cwd / "stderr.log")


_SERVER: Optional[ForkServer] = None


@pytest.fixture(scope="module", autouse=True)
def _fork_server_closed_after_the_module():
    yield
    global _SERVER
    if _SERVER is not None:
        _SERVER.close()
        _SERVER = None


def finish(process: Forked, cwd: Path, timeout: float = 900) -> tuple[int, str]:
    """Wait for ``process``; its exit code (-9 for SIGKILL) and its stderr."""
    code = process.wait(timeout=timeout)
    return code, (cwd / "stderr.log").read_text()


def run_faulty(spec: str, *args: str, cwd: Path) -> tuple[int, str]:
    return finish(start(spec, *args, cwd=cwd), cwd)


def wait_for(condition, process: Forked, cwd: Path, timeout: float = 900) -> None:
    """Poll ``condition()`` while ``process`` runs; fail with its stderr if it ends or times out first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None and time.monotonic() < deadline, (cwd / "stderr.log").read_text()[-3000:]
        time.sleep(0.05)


def leftovers(run: Path) -> list[str]:
    """Temporary files or folders a killed writer could leave behind."""
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if ".tmp" in p.name or p.name.endswith("_temp"))


def history_lines(run: Path) -> dict[int, str]:
    lines = (run / runs.HISTORY_FILE).read_text().splitlines()[1:]
    return {int(line.split(",")[0]): line for line in lines}


def checkpoint_number(run: Path) -> int:
    last = runs.latest_checkpoint(run)
    return int(last.rsplit("-", 1)[1]) if last else 0


def model_variables(checkpoint: str) -> dict[str, np.ndarray]:
    """Everything of a checkpoint that defines the training state (not TF's own save counter)."""
    reader = tf.train.load_checkpoint(checkpoint)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith(("generator/", "discriminator/", "g_optimizer/", "d_optimizer/", "epoch/",
                                "noise_seed/"))}


def generated(run: Path) -> np.ndarray:
    """Four images from the run's saved generator (loaded as users load it)."""
    z = np.random.default_rng(0).standard_normal((4, 32)).astype("float32")
    return sampling.load_generator(run)(z, training=False).numpy()


@functools.lru_cache(maxsize=None)
def generated_once(run: Path) -> np.ndarray:
    """:func:`generated` for the read-only reference run, loaded once per session."""
    return generated(run)


def assert_same_run(run: Path, reference: Path, epochs: int = EPOCHS, lr_scaled: bool = False) -> None:
    """``run`` is complete, readable, free of temporaries and identical to the uninterrupted ``reference``."""
    rows, expected = runs.read_history(run / "history.csv"), runs.read_history(reference / "history.csv")
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))  # no gap, no duplicate
    lines = (run / "history.csv").read_text().splitlines()
    assert len(lines) == epochs + 1 and len({line.count(",") for line in lines}) == 1
    if not lr_scaled:
        for row, want in zip(rows, expected):
            assert {k: row[k] for k in METRIC_NAMES} == {k: want[k] for k in METRIC_NAMES}, row
    names = [f"epoch_{e:04d}.png" for e in range(1, epochs + 1)]
    assert sorted(p.name for p in (run / "grids").iterdir()) == names
    for name in names:
        with Image.open(run / "grids" / name) as grid:
            pixels = np.asarray(grid)  # decodes the whole file: a truncated PNG raises here
        if not lr_scaled:
            np.testing.assert_array_equal(pixels, np.asarray(Image.open(reference / "grids" / name)), err_msg=name)
    with Image.open(run / "training.gif") as gif:
        assert gif.n_frames == epochs
    assert checkpoint_number(run) == epochs
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(
        p.name for p in (reference / "checkpoints").iterdir())
    got = model_variables(runs.latest_checkpoint(run))
    assert all(np.isfinite(v).all() for v in got.values() if v.dtype.kind == "f")
    if not lr_scaled:
        want = model_variables(runs.latest_checkpoint(reference))
        assert got.keys() == want.keys()
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    images = generated(run)
    assert np.isfinite(images).all()
    if not lr_scaled:
        np.testing.assert_array_equal(images, generated_once(reference))
    Config.from_json(run / "config.json")
    assert leftovers(run) == []


# ================================================================================================
# fixtures
@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Data, a config file (4 epochs, 2 checkpoints kept) and one uninterrupted reference run."""
    root = tmp_path_factory.mktemp("faults")
    slices = write_slices(root / "slices")
    config_file = root / "config.json"
    smoke_config(data=str(slices), epochs=EPOCHS, keep_checkpoints=KEEP, seed=3).to_json(config_file)
    reference = root / "reference"
    assert cli.main(["train", "--config", str(config_file), "--out", str(reference)]) == 0
    return root, config_file, reference


# ================================================================================================
# SIGKILL at several points, then --resume
KILLS = {
    # spec: (history rows the killed run leaves, its last complete checkpoint)
    "kill-at-step:2:1": (1, 1),  # mid-epoch
    "kill-in-checkpoint:3:data": (3, 2),  # checkpoint 3 half written, not yet recorded
    "kill-in-checkpoint:3:state": (3, 3),  # checkpoint 3 complete, checkpoint 1 not yet deleted
    "kill-in-replace:history.csv:2": (1, 1),  # epoch 2's history row half written
    "kill-in-replace:generator.keras:1": (4, 4),  # the final generator half written
}
# An epoch's grid goes through the same atomic writer (files.atomic_path) just before its history row, so a
# kill inside it leaves what the kill inside the history row leaves (a half-written temporary, the epoch
# unrecorded): assert_same_run checks every grid of the resumed run against the reference's.


@pytest.mark.slow
@pytest.mark.parametrize("spec", list(KILLS))
def test_sigkill_then_resume_continues_from_the_last_complete_checkpoint(spec, setup, tmp_path, capsys):
    _, config_file, reference = setup
    run = tmp_path / "run"
    code, stderr = run_faulty(spec, "train", "--config", config_file, "--out", run, cwd=tmp_path)
    assert code == -signal.SIGKILL, stderr[-3000:]
    rows, last = KILLS[spec]
    assert sorted(history_lines(run)) == list(range(1, rows + 1))
    assert checkpoint_number(run) == last
    assert not (run / "generator.keras").exists()
    if spec.startswith("kill-in-replace"):
        assert len(leftovers(run)) == 1  # the half-written temporary, never the real name
    kept = {e: line for e, line in history_lines(run).items() if e <= last}

    code, stderr = main("train", "--out", run, "--resume", capsys=capsys)
    assert code == 0, stderr
    assert_same_run(run, reference)
    # Rows up to the checkpoint are kept verbatim (their wall-clock seconds too): nothing was retrained.
    assert {e: line for e, line in history_lines(run).items() if e <= last} == kept


# ================================================================================================
# SIGTERM and SIGINT
@pytest.mark.slow
def test_sigterm_from_outside_stops_cleanly_and_resume_completes(setup, tmp_path, capsys):
    _, config_file, reference = setup
    run = tmp_path / "run"
    # Far more epochs than the signal will allow: it lands wherever training happens to be.
    process = start("none", "train", "--config", config_file, "--out", run, "--epochs", 500, cwd=tmp_path)
    wait_for(lambda: (run / "history.csv").exists(), process, tmp_path)
    process.send_signal(signal.SIGTERM)
    code, stderr = finish(process, tmp_path)
    assert code == 130, stderr[-3000:]
    done = max(history_lines(run))
    assert f"dcganlib: stopped by SIGTERM after epoch {done}; the last checkpoint ckpt-{done} in {run} is intact; " \
           f"continue with --resume --out {run}" in stderr
    assert "Traceback" not in stderr
    assert sorted(history_lines(run)) == list(range(1, done + 1)) and checkpoint_number(run) == done
    assert leftovers(run) == []

    # Resume to EPOCHS or one more epoch, whichever is more: the result matches the reference run.
    target = max(EPOCHS, done + 1)
    code, stderr = main("train", "--out", run, "--resume", "--epochs", target, capsys=capsys)
    assert code == 0, stderr
    rows = runs.read_history(run / "history.csv")
    assert [r["epoch"] for r in rows] == list(range(1, target + 1))
    for row, want in zip(rows, runs.read_history(reference / "history.csv")):
        assert {k: row[k] for k in METRIC_NAMES} == {k: want[k] for k in METRIC_NAMES}
    assert checkpoint_number(run) == target and (run / "generator.keras").is_file() and leftovers(run) == []


@pytest.mark.slow
def test_sigint_mid_epoch_keeps_the_last_checkpoint_and_resume_completes(setup, tmp_path, capsys, monkeypatch):
    _, config_file, reference = setup
    run = tmp_path / "run"
    with monkeypatch.context() as patches:  # Ctrl-C in this very process, during epoch 3
        arm_fault("signal-at-step:3:1:SIGINT", patches.setattr)
        code, stderr = main("train", "--config", config_file, "--out", run, capsys=capsys)
    assert code == 130, stderr[-3000:]
    assert (f"stopped by SIGINT after epoch 2; the last checkpoint ckpt-2 in {run} is intact; continue with "
            f"--resume --out {run}") in stderr
    assert sorted(history_lines(run)) == [1, 2] and checkpoint_number(run) == 2
    assert not (run / "grids" / "epoch_0003.png").exists()  # the half epoch left nothing behind
    code, stderr = main("train", "--out", run, "--resume", capsys=capsys)
    assert code == 0, stderr
    assert_same_run(run, reference)


# ================================================================================================
# divergence
@pytest.mark.slow
def test_nan_names_epoch_and_step_keeps_the_checkpoint_and_lr_scale_recovers(setup, tmp_path, capsys, monkeypatch):
    _, config_file, reference = setup
    run = tmp_path / "run"
    with monkeypatch.context() as patches:
        arm_fault("nan-at-step:2:2", patches.setattr)
        code, stderr = main("train", "--config", config_file, "--out", run, capsys=capsys)
    assert code == DivergenceError.exit_code == 3, stderr[-3000:]
    assert error_line(stderr) == (
        "dcganlib: error: training diverged: a loss became NaN/Inf at epoch 2, step 2; the last "
        f"checkpoint ckpt-1 in {run} is intact. Continue from it at half the learning rates: --resume --lr-scale 0.5 "
        f"--out {run}")
    assert sorted(history_lines(run)) == [1] and checkpoint_number(run) == 1
    first_row = history_lines(run)[1]
    assert sorted(p.name for p in (run / "grids").iterdir()) == ["epoch_0001.png"]
    # The kept checkpoint holds exactly the epoch-1 weights: it redraws the reference run's epoch-1 grid.
    config = Config.from_json(run / "config.json")
    redrawn = sampling.save_grid_of(sampling.load_generator(run), sampling.fixed_noise(config),
                                    tmp_path / "redrawn.png", label="epoch 1")
    np.testing.assert_array_equal(np.asarray(Image.open(redrawn)),
                                  np.asarray(Image.open(reference / "grids" / "epoch_0001.png")))

    code, stderr = main("train", "--out", run, "--resume", "--lr-scale", "0.5", capsys=capsys)
    assert code == 0, stderr
    assert_same_run(run, reference, lr_scaled=True)
    saved = json.loads((run / "config.json").read_text())
    assert saved["g_learning_rate"] == saved["d_learning_rate"] == pytest.approx(config.g_learning_rate / 2)
    last = runs.latest_checkpoint(run)
    for name in ("g_optimizer", "d_optimizer"):  # the optimizers really ran at the new rate
        rate = tf.train.load_variable(last, f"{name}/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE")
        assert rate == pytest.approx(config.g_learning_rate / 2)
    assert history_lines(run)[1] == first_row  # the good epoch before the NaN is kept verbatim


# ================================================================================================
# two processes on one run folder
@pytest.mark.slow
def test_a_second_process_cannot_write_a_folder_in_use(setup, tmp_path, capsys):
    _, config_file, reference = setup
    run = tmp_path / "run"
    process = start(f"pause-at-step:2:1:{tmp_path}", "train", "--config", config_file, "--out", run, cwd=tmp_path)
    try:
        wait_for((tmp_path / "paused").exists, process, tmp_path)
        before = snapshot(run)
        code, stderr = main("train", "--config", config_file, "--out", run, "--overwrite", capsys=capsys)
        assert code == 2
        assert error_line(stderr) == (f"dcganlib: error: another process is training into {run} (it holds "
                                      f"{run / 'train.lock'}); wait for it to finish or choose another --out")
        assert snapshot(run) == before
    finally:
        (tmp_path / "release").touch()
    code, stderr = finish(process, tmp_path)
    assert code == 0, stderr[-3000:]
    assert_same_run(run, reference)


# ================================================================================================
# a full disk
@pytest.fixture
def small_disk(tmp_path):
    """A 32 MB tmpfs to fill (mounted when running as root, unmounted after); None where mounting is not
    allowed (the test then makes the writer fail as on a full disk)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)],
                                                    capture_output=True).returncode == 0
    try:
        yield disk if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.slow
@pytest.mark.parametrize("writer, bytes_left", [("grid", 0), ("checkpoint", 256 * 1024)])
def test_disk_full_stops_training_in_one_line_and_resume_completes(writer, bytes_left, setup, small_disk, tmp_path,
                                                                   capsys, monkeypatch):
    """Epoch 3's grid (nothing left) or checkpoint (room for the grid and the row, not the checkpoint) meets a
    full disk: one line, the folder as it was after epoch 2 (plus epoch 3's finished grid and row), no
    temporaries; once space is freed, --resume ends identical to the uninterrupted run."""
    _, config_file, reference = setup
    run = (small_disk or tmp_path) / "run"
    filler = (small_disk or tmp_path) / "filler"
    spec = (f"fill-disk-after-epoch:2:{bytes_left}:{filler}" if small_disk is not None
            else f"disk-full-in:3:{writer}")
    with monkeypatch.context() as patches:
        arm_fault(spec, patches.setattr)
        code, stderr = main("train", "--config", config_file, "--out", run, capsys=capsys)
    assert code == 2, stderr[-3000:]
    line = error_line(stderr)
    assert line.startswith(f"dcganlib: error: disk full in {run} (")
    assert "No space left on device" in line
    assert (f"): training stopped; the last checkpoint ckpt-2 in {run} is intact, and so is every finished file; "
            "the run needs about ") in line and line.endswith(f"are free now): free some and continue with --resume --out {run}")
    needed = float(line.split("needs about ")[1].split(" MB")[0])
    checkpoint = sum(p.stat().st_size for p in (reference / "checkpoints").glob("ckpt-4.*")) / 1e6
    assert checkpoint <= needed <= 3 * checkpoint  # the next checkpoint, the generator and the grids
    assert checkpoint_number(run) == 2 and leftovers(run) == []
    assert sorted(history_lines(run)) == ([1, 2, 3] if writer == "checkpoint" else [1, 2])
    for epoch in (1, 2):  # the finished epochs are untouched: the same files as the uninterrupted run's
        assert history_lines(run)[epoch].split(",")[2:] == history_lines(reference)[epoch].split(",")[2:]
        assert (run / "grids" / f"epoch_{epoch:04d}.png").read_bytes() == \
            (reference / "grids" / f"epoch_{epoch:04d}.png").read_bytes()
    assert model_variables(runs.latest_checkpoint(run)).keys() == model_variables(
        str(reference / "checkpoints" / "ckpt-4")).keys()

    filler.unlink(missing_ok=True)
    code, stderr = main("train", "--out", run, "--resume", capsys=capsys)
    assert code == 0, stderr[-3000:]
    assert_same_run(run, reference)


# ================================================================================================
# damaged run folders: the newest checkpoint cut, zeroed or deleted, the state file gone
def damage(run: Path, how: str) -> None:
    """Damage checkpoint 2 of a copy of the finished run (2 epochs) the way a crash or a bad disk does."""
    folder = run / "checkpoints"
    data, index = folder / "ckpt-2.data-00000-of-00001", folder / "ckpt-2.index"
    if how == "cut-data":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    elif how == "zero-index":
        index.write_bytes(b"\0" * index.stat().st_size)
    elif how == "zero-data":
        data.write_bytes(b"\0" * data.stat().st_size)
    elif how == "deleted":
        data.unlink()
        index.unlink()
    elif how == "no-state-file":
        (folder / "checkpoint").unlink()
    else:
        raise ValueError(how)


@pytest.fixture
def damaged_copy(finished_run, tmp_path):
    """A copy of the shared finished run (checkpoints 1 and 2) to damage."""
    run = tmp_path / "run"
    shutil.copytree(finished_run.run_dir, run)
    return run


DAMAGE = {  # how: the fallback line on stderr (None: nothing is unreadable, nothing said)
    "cut-data": "dcganlib: checkpoint ckpt-2 is unreadable (IndexError: Read less bytes than requested); "
                "falling back to ckpt-1",
    "zero-index": "dcganlib: checkpoint ckpt-2 is unreadable (OpError: not an sstable (bad magic number)); "
                  "falling back to ckpt-1",
    "zero-data": "dcganlib: checkpoint ckpt-2 is unreadable (OpError: The length checksum does not match",
    "deleted": None,
    "no-state-file": None,
}


@pytest.mark.slow
@pytest.mark.parametrize("how", list(DAMAGE))
def test_resume_falls_back_to_the_newest_readable_checkpoint(how, damaged_copy, finished_run, capsys):
    run = damaged_copy
    damage(run, how)
    code, stderr = main("train", "--out", run, "--resume", capsys=capsys)
    assert code == 0, stderr[-3000:]
    if DAMAGE[how] is None:
        assert "unreadable" not in stderr
    else:
        assert [line for line in stderr.splitlines() if "unreadable" in line] == [
            line for line in stderr.splitlines() if line.startswith(DAMAGE[how])]
        assert DAMAGE[how] in stderr
    # The run continued from the checkpoint it could read, and ends where the undamaged run ended, bit for bit.
    redone = how not in ("no-state-file",)
    reference = finished_run.run_dir
    assert [r["epoch"] for r in runs.read_history(run / "history.csv")] == [1, 2]
    for row, want in zip(runs.read_history(run / "history.csv"), runs.read_history(reference / "history.csv")):
        assert {k: row[k] for k in METRIC_NAMES} == {k: want[k] for k in METRIC_NAMES}
    assert (history_lines(run)[2] != history_lines(reference)[2]) == redone  # the seconds column of a redone epoch
    got = model_variables(str(run / "checkpoints" / "ckpt-2"))
    want = model_variables(str(reference / "checkpoints" / "ckpt-2"))
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    # TensorFlow's state file names the checkpoints again, so the manager keeps rotating them.
    assert runs.latest_checkpoint(run) == str(run / "checkpoints" / "ckpt-2")
    assert 'model_checkpoint_path: "ckpt-2"' in (run / "checkpoints" / "checkpoint").read_text()


@pytest.mark.parametrize("how", ["cut-data", "zero-index", "deleted", "no-state-file"])
def test_generate_falls_back_to_the_newest_readable_checkpoint(how, damaged_copy, finished_run, tmp_path, capsys):
    run = damaged_copy
    (run / "generator.keras").unlink()  # generate must rebuild the generator from the checkpoints
    for _, path in runs.best_generators(run):  # (the best epoch's file comes before them)
        path.unlink()
    damage(run, how)
    code, stderr = main("generate", run, "--count", 2, "--out", tmp_path / "images", capsys=capsys)
    assert code == 0, stderr[-3000:]
    assert ("falling back to ckpt-1" in stderr) == (DAMAGE[how] is not None)
    newest_readable = "ckpt-2" if how == "no-state-file" else "ckpt-1"
    # The images are those of the checkpoint it could read (ckpt-1: epoch 1's weights, not the final ones).
    only = tmp_path / "only"
    shutil.copytree(finished_run.run_dir, only)
    (only / "generator.keras").unlink()
    for path in (only / "checkpoints").iterdir():  # the best epoch's file goes too
        if not path.name.startswith(f"{newest_readable}."):
            path.unlink()
    code, stderr = main("generate", only, "--count", 2, "--out", tmp_path / "expected", capsys=capsys)
    assert code == 0, stderr[-3000:]
    for name in ("generated_0000.png", "generated_0001.png"):
        assert (tmp_path / "images" / name).read_bytes() == (tmp_path / "expected" / name).read_bytes()
    if newest_readable == "ckpt-1":  # and epoch 2's weights would have given other images
        code, _ = main("generate", finished_run.run_dir, "--epoch", 2, "--count", 2, "--out", tmp_path / "final",
                       capsys=capsys)
        assert code == 0
        assert (tmp_path / "final" / name).read_bytes() != (tmp_path / "images" / name).read_bytes()


@pytest.mark.slow
def test_evaluate_falls_back_and_removes_a_killed_evaluates_temporaries(damaged_copy, tmp_path, capsys):
    run = damaged_copy
    for path in [run / "generator.keras", *run.glob("checkpoints/best-epoch_*.keras")]:  # so that it restores
        path.unlink()
    damage(run, "cut-data")
    figures = run / "evaluation"
    figures.mkdir()
    orphan = figures / f".roc.tmp-{dead_pid()}-0badc0de.png"  # what a SIGKILLed evaluate leaves
    writing = figures / f".roc.tmp-{os.getpid()}-12345678.pdf"  # a live writer's: kept
    orphan.write_bytes(b"half a figure")
    writing.write_bytes(b"being written")
    code, stderr = main("evaluate", run, "--out", tmp_path / "metrics.json", capsys=capsys)
    assert code == 0, stderr[-3000:]
    assert DAMAGE["cut-data"] in stderr
    assert not orphan.exists() and writing.exists()
    assert json.loads((tmp_path / "metrics.json").read_text())["figures"]
