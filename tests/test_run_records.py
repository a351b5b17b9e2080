"""The records a run leaves for people and tools: ``run.json`` checked against the real environment, and
the TensorBoard event files read back (scalars, one grid per epoch, no duplicate step after a resume).
"""

from __future__ import annotations

import json
import platform
import shutil
import statistics
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

import dcganlib  # noqa: E402
from dcganlib import hardware, manifest, runs, sampling, summaries, training  # noqa: E402
from dcganlib.config import Config  # noqa: E402
from helpers import tiny_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ------------------------------------------------------------------------------------------------
# run.json
def test_manifest_records_the_machine_software_and_speed_of_the_run(finished_run):
    record = json.loads((finished_run.run_dir / runs.RUN_MANIFEST_FILE).read_text())
    config = runs.read_config(finished_run.run_dir)
    history = runs.read_history(finished_run.run_dir / runs.HISTORY_FILE)
    assert record["status"] == "finished" and record["epochs_completed"] == 2 == record["epochs_total"]
    assert _time(record["started_at"]) <= _time(record["finished_at"]) == _time(record["updated_at"])

    hw = record["hardware"]
    assert hw["precision"] == finished_run.precision == hardware.resolve_precision(config)
    assert hw["precision_config"] == config.precision
    assert hw["strategy"] == "default" and hw["replicas"] == 1 and hw["xla"] is False
    assert hw["devices"] == ["/device:CPU:0"]  # no GPU in the tests (CUDA_VISIBLE_DEVICES="")
    assert hw["gpus"] == [] == tf.config.list_physical_devices("GPU")
    flags = hardware.cpu_flags()
    assert hw["cpu"]["flags"] == [f for f in manifest.RELEVANT_CPU_FLAGS if f in flags]
    assert hw["cpu"]["model"] == hardware.cpu_model() and hw["cpu"]["logical_cpus"] >= 1

    sw = record["software"]
    assert sw == {"python": platform.python_version(), "tensorflow": tf.__version__,
                  "keras": keras.__version__, "numpy": np.__version__, "dcganlib": dcganlib.__version__,
                  "git_commit": sw["git_commit"], "platform": platform.platform()}
    if (ROOT / ".git").exists() and shutil.which("git"):
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert sw["git_commit"] == head.stdout.strip()
    else:
        assert sw["git_commit"] is None

    # Speed: the median of history.csv's epoch times; images = full batches of the train split.
    [session] = record["sessions"]
    images_per_epoch = (40 // config.batch_size) * config.batch_size
    assert session["images_per_epoch"] == images_per_epoch
    assert record["seconds_per_epoch"] == pytest.approx(statistics.median(r["seconds"] for r in history), abs=1e-3)
    assert record["images_per_second"] == pytest.approx(images_per_epoch / record["seconds_per_epoch"], rel=1e-3)
    assert session["first_epoch"] == 1 and session["last_epoch"] == 2 and session["status"] == "finished"
    assert session["hardware"] == hw and session["software"] == sw


def test_git_commit_is_none_outside_a_checkout(monkeypatch, tmp_path):
    monkeypatch.setattr(manifest, "__file__", str(tmp_path / "dcganlib" / "manifest.py"))
    assert manifest.git_commit() is None


# ------------------------------------------------------------------------------------------------
# TensorBoard
def test_tensorboard_holds_every_history_metric_and_one_grid_per_epoch(finished_run):
    folder = finished_run.run_dir / runs.TENSORBOARD_DIR
    history = runs.read_history(finished_run.run_dir / runs.HISTORY_FILE)
    scalars = summaries.scalars(folder)
    for row in history:
        for key, value in row.items():
            if key != "epoch":
                assert (row["epoch"], pytest.approx(value, rel=1e-6)) in scalars[f"epoch/{key}"], key
    assert {f"epoch/{k}" for k in history[0] if k != "epoch"} | {"steps/d_loss", "steps/g_loss"} == set(scalars)
    # 2 steps per epoch (40 images, batch 16), losses every 10 steps: one point at each epoch's end, which
    # is then the epoch's mean loss.
    assert scalars["steps/d_loss"] == [(2, pytest.approx(history[0]["d_loss"], rel=1e-5)),
                                       (4, pytest.approx(history[1]["d_loss"], rel=1e-5))]
    assert summaries.images(folder) == {"grid": [1, 2]}
    # The image is the grid PNG of its epoch, pixel for pixel.
    for event in summaries.read_events(summaries.event_files(folder)[0])[0]:
        for value in event.summary.value:
            if value.tag == "grid" and event.step == 2:
                png = tf.make_ndarray(value.tensor)[2]
                np.testing.assert_array_equal(tf.io.decode_png(png).numpy()[..., 0],
                                              np.asarray(Image.open(runs.grid_path(finished_run.run_dir, 2))))


def test_step_window_recovers_window_means_from_epoch_to_date_means():
    values = [4.0, 2.0, 6.0, 1.0, 3.0]
    running = np.cumsum(values) / np.arange(1, 6)
    window = summaries.StepWindow()
    assert window.close(2, {"d_loss": running[1]}) == {"d_loss": pytest.approx(3.0)}
    assert window.close(3, {"d_loss": running[2]}) == {"d_loss": pytest.approx(6.0)}
    assert window.close(5, {"d_loss": running[4]}) == {"d_loss": pytest.approx(2.0)}
    window.reset()
    assert window.close(1, {"d_loss": 7.0}) == {"d_loss": pytest.approx(7.0)}
    with pytest.raises(ValueError):
        window.close(1, {"d_loss": 7.0})


def _pretend_killed_after_epoch(run_dir: Path, checkpoint: int) -> None:
    """The folder as a run killed after its last epoch's events, with ``ckpt-<checkpoint>`` its newest
    checkpoint: later checkpoints and the final generator gone, run.json still 'running'."""
    folder = run_dir / runs.CHECKPOINT_DIR
    for path in folder.glob(f"{runs.CHECKPOINT_NAME}-*"):
        if int(path.name.split("-")[1].split(".")[0]) > checkpoint:
            path.unlink()
    (folder / runs.CHECKPOINT_STATE_FILE).write_text(
        f'model_checkpoint_path: "{runs.CHECKPOINT_NAME}-{checkpoint}"\n'
        f'all_model_checkpoint_paths: "{runs.CHECKPOINT_NAME}-{checkpoint}"\n')
    (run_dir / runs.GENERATOR_FILE).unlink()
    record = json.loads((run_dir / runs.RUN_MANIFEST_FILE).read_text())
    record["sessions"][-1]["status"] = "running"
    (run_dir / runs.RUN_MANIFEST_FILE).write_text(json.dumps(record))


def test_resume_continues_the_curves_without_duplicate_steps(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run.run_dir, run_dir)
    _pretend_killed_after_epoch(run_dir, checkpoint=1)  # epoch 2's events are on disk, its checkpoint not
    # A writer killed mid-record leaves a torn last record; the resume drops it too.
    with open(summaries.event_files(run_dir / runs.TENSORBOARD_DIR)[0], "ab") as handle:
        handle.write(b"\x10\x00\x00\x00\x00\x00\x00\x00torn")
    data = Path(Config.from_json(run_dir / runs.CONFIG_FILE).data)
    training.train(tiny_config(data, epochs=3), run_dir, resume=True)

    folder = run_dir / runs.TENSORBOARD_DIR
    history = runs.read_history(run_dir / runs.HISTORY_FILE)
    scalars = summaries.scalars(folder)
    for tag, points in scalars.items():
        steps = [step for step, _ in points]
        assert steps == sorted(set(steps)), (tag, steps)  # each step once, in order over the files
        expected = [2, 4, 6] if tag.startswith("steps/") else [1, 2, 3]
        assert steps == expected, tag
    # Epoch 2 shows the resumed run's values (the same seeds and batches: equal to the killed ones'),
    # and those of history.csv.
    for epoch, value in scalars["epoch/d_loss"]:
        assert value == pytest.approx(history[epoch - 1]["d_loss"], rel=1e-6)
    assert summaries.images(folder) == {"grid": [1, 2, 3]}
    assert not list(folder.glob(".rewrite.tmp-*"))

    record = json.loads((run_dir / runs.RUN_MANIFEST_FILE).read_text())
    first, second = record["sessions"]
    assert first["status"] == "interrupted" and (first["first_epoch"], first["last_epoch"]) == (1, 1)
    assert second["status"] == "finished" and (second["first_epoch"], second["last_epoch"]) == (2, 3)
    assert record["status"] == "finished" and record["epochs_completed"] == 3
    assert record["started_at"] == first["started_at"] and _time(second["started_at"]) >= _time(first["started_at"])


def test_no_tensorboard_flag_and_a_resume_may_switch_logging(finished_run):
    from dcganlib import cli

    args = cli.build_parser().parse_args(["train", "--smoke", "--no-tensorboard"])
    assert cli.train_config(args).tensorboard is False
    assert cli.train_config(cli.build_parser().parse_args(["train", "--smoke"])).tensorboard is True
    saved = runs.read_config(finished_run.run_dir)
    # Logging is not a training setting: a resume may turn it off or on without --force.
    assert saved.describe_diff(saved.replace(tensorboard=False, tensorboard_every_steps=3)) == ""


def test_generate_npy_stack_holds_the_png_pixels(finished_run, tmp_path):
    paths = sampling.generate(finished_run.run_dir, count=5, out_dir=tmp_path / "gen", seed=2, npy=True)
    stack = np.load(tmp_path / "gen" / sampling.GENERATED_STACK, allow_pickle=False)
    assert stack.dtype == np.uint8 and stack.shape == (5, 32, 32, 1)
    for index, path in enumerate(paths):
        np.testing.assert_array_equal(stack[index, ..., 0], np.asarray(Image.open(path)))


# ------------------------------------------------------------------------------------------------
# evaluate (the command itself: test_cli)
def test_a_re_evaluation_replaces_its_figures_at_its_step(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run.run_dir, run_dir)
    figures = [runs.grid_path(run_dir, 1), runs.grid_path(run_dir, 2)]  # any PNGs will do
    config = runs.read_config(run_dir)
    for _ in range(2):
        summaries.log_evaluation(run_dir, config, figures)
    logged = summaries.images(run_dir / runs.TENSORBOARD_DIR, summaries.EVALUATION_SUFFIX)
    assert logged == {"evaluation/epoch_0001": [2], "evaluation/epoch_0002": [2]}  # the run's last epoch, once
    assert summaries.images(run_dir / runs.TENSORBOARD_DIR, summaries.TRAINING_SUFFIX) == {"grid": [1, 2]}
    summaries.log_evaluation(run_dir, config.replace(tensorboard=False), figures)  # off: nothing more
    # The first evaluation's file, left without summaries, is gone.
    assert len(summaries.event_files(run_dir / runs.TENSORBOARD_DIR, summaries.EVALUATION_SUFFIX)) == 1
