"""``python -m dcganlib`` as a user runs it: exit codes, one-line refusals, the files commands leave.

A few commands run as real subprocesses (``--help``, ``train --smoke`` as CI runs it, a refusal from a
fresh process); everything else calls ``cli.main`` in this process — the same code without another
TensorFlow start-up. Every refusal asserts the one ``dcganlib: error:`` line, exit code 2, and that the
files already there are unchanged (sha256 before and after).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcganlib import runs
from dcganlib.config import smoke_config
from helpers import dead_pid, error_line, main, snapshot, tensorflow_log_lines, write_slices

KEEP = 2  # checkpoints the refusal tests' config keeps


def cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    # As from a new shell: no TF_CPP_MIN_LOG_LEVEL (dcganlib keeps TensorFlow quiet itself).
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "DCGANLIB_VERBOSE")}
    env.update(CUDA_VISIBLE_DEVICES="", DCGANLIB_CACHE=str(cwd / "cache"))  # the demo dataset is built in tmp_path
    return subprocess.run([sys.executable, "-m", "dcganlib", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_help_lists_the_commands(tmp_path):
    done = cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    for command in ("train", "generate", "gif", "evaluate", "bench", "demo-data"):
        assert command in done.stdout


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """``train --smoke`` on the embedded demo data, as CI runs it."""
    cwd = tmp_path_factory.mktemp("cli")
    done = cli("train", "--smoke", "--out", "runs/smoke", cwd=cwd)
    return cwd, done


def test_train_smoke_writes_a_run(smoke_run):
    cwd, done = smoke_run
    assert done.returncode == 0, done.stderr[-3000:]
    run = cwd / "runs" / "smoke"
    for name in ("config.json", "split.json", "history.csv", "training.gif", "generator.keras"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["image_size"] == 32 and config["epochs"] == 2 and config["data"] is None
    assert (run / "history.csv").read_text().count("\n") == 3  # header + 2 epochs
    assert sorted(p.name for p in (run / "grids").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]


def test_train_shows_no_tensorflow_log_lines_but_progress(smoke_run):
    cwd, done = smoke_run
    assert tensorflow_log_lines(done.stderr) == [], done.stderr
    # The first run builds the demo dataset and decodes it: one line each (stderr is not a terminal here).
    assert re.search(r"^dcganlib: building the demo dataset \(120 slices of 256 px\): 10/10 subjects, done in ",
                     done.stderr, re.MULTILINE), done.stderr
    assert re.search(r"^dcganlib: decoding 120 files under .* at 32 px: 120/120 files, done in ", done.stderr,
                     re.MULTILINE), done.stderr


def test_evaluate_shows_no_tensorflow_log_lines_but_progress_and_records_the_run(finished_run, tmp_path):
    from dcganlib import summaries

    run = tmp_path / "run"
    shutil.copytree(finished_run.run_dir, run)
    done = cli("evaluate", run, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert tensorflow_log_lines(done.stderr) == [], done.stderr
    # One progress line per stage, for the generated images and for the real reference.
    assert re.search(r"^dcganlib: evaluate: sampling \d+ images: (\d+)/\1 images, done in", done.stderr,
                     re.MULTILINE), done.stderr
    for stage in ("two sample test", "feature metrics", "artefacts", "ssim family", "memorisation"):
        for whose in ("generated images", "real reference"):
            assert f"dcganlib: evaluate: {stage} of the {whose}: done in " in done.stderr, (stage, whose)
    assert "dcganlib: evaluate: figures: done in " in done.stderr
    # metrics.json says what trained the generator; TensorBoard holds the figures at the run's last epoch.
    metrics = json.loads((run / runs.EVALUATION_DIR / runs.METRICS_FILE).read_text())
    assert metrics["run_manifest"] == json.loads((run / runs.RUN_MANIFEST_FILE).read_text())
    logged = summaries.images(run / runs.TENSORBOARD_DIR, summaries.EVALUATION_SUFFIX)
    assert set(logged) == {f"evaluation/{Path(name).stem}" for name in metrics["figures"]}
    assert all(steps == [2] for steps in logged.values()), logged


def test_train_again_is_refused_then_resume_adds_one_epoch(smoke_run, capsys, monkeypatch):
    cwd, _ = smoke_run
    monkeypatch.setenv("DCGANLIB_CACHE", str(cwd / "cache"))  # the demo build of the subprocess
    run = cwd / "runs" / "smoke"
    code, stderr = main("train", "--smoke", "--out", run, capsys=capsys)
    assert code == 2
    assert "--resume" in stderr and "--overwrite" in stderr and "Traceback" not in stderr
    code, stderr = main("train", "--out", run, "--resume", "--epochs", "3", capsys=capsys)
    assert code == 0, stderr[-3000:]
    lines = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["epoch", "1", "2", "3"]
    capsys.readouterr()
    from dcganlib import cli as cli_module

    records = {name: (run / name).stat().st_mtime_ns for name in ("config.json", "split.json", "run.json")}
    assert cli_module.main(["train", "--out", str(run), "--resume", "--epochs", "3"]) == 0
    captured = capsys.readouterr()  # a message, not a result: stderr
    assert "nothing to do" in captured.err and "nothing to do" not in captured.out
    assert {name: (run / name).stat().st_mtime_ns for name in records} == records  # nothing rewritten


def test_generate_and_gif_commands(finished_run, tmp_path, capsys):
    code, stderr = main("generate", finished_run.run_dir, "--count", "3", "--out", tmp_path / "gen", "--grid",
                        capsys=capsys)
    assert code == 0, stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == [
        "generated.json", "generated_0000.png", "generated_0001.png", "generated_0002.png", "grid.png"]
    manifest = json.loads((tmp_path / "gen" / "generated.json").read_text())
    assert manifest["complete"] is True and manifest["files"] == [
        "generated_0000.png", "generated_0001.png", "generated_0002.png", "grid.png"]
    image = np.asarray(Image.open(tmp_path / "gen" / "generated_0000.png"))
    assert image.dtype == np.uint8 and image.shape == (32, 32)
    code, stderr = main("gif", finished_run.run_dir, "--out", tmp_path / "again.gif", "--frame-ms", "100",
                        capsys=capsys)
    assert code == 0, stderr[-3000:]
    with Image.open(tmp_path / "again.gif") as frames:
        assert frames.n_frames >= 2 and frames.info["duration"] == 100


# ---- which settings a train command line resolves to (in-process, nothing trained) ----------------
def resolved(*argv: str, cwd: Path):
    from dcganlib import cli as cli_module

    return cli_module.train_config(cli_module.build_parser().parse_args(["train", "--out", str(cwd / "run"), *argv]))


def test_presets_and_flags_resolve_to_the_documented_settings(config_file, tmp_path):
    default = resolved(cwd=tmp_path)
    assert (default.generator, default.g_filters, default.d_filters, default.batch_size, default.ema,
            default.ema_rampup, default.epochs, default.image_size) == ("resize", 32, 16, 32, 0.998, 0.05, 39, 64)
    assert (default.r1_gamma, default.penalty_every, default.r2_gamma, default.penalty_rampup) == (0.025, 4, 0.0, 3900)
    paper = resolved("--preset", "radford", cwd=tmp_path)
    assert (paper.generator, paper.g_filters, paper.d_filters, paper.batch_size, paper.ema, paper.r1_gamma,
            paper.epochs) == ("radford", 64, 64, 64, 0.0, 0.0, 20)
    assert resolved("--smoke", cwd=tmp_path) == resolved("--preset", "smoke", cwd=tmp_path)
    long = resolved("--preset", "long", cwd=tmp_path)  # the default recipe, 4x the steps
    assert long == default.replace(epochs=4 * default.epochs)
    assert resolved("--preset", "radford", "--epochs", "3", "--generator", "resize", cwd=tmp_path).replace() == \
        paper.replace(epochs=3, generator="resize")
    config_file = tmp_path / "partial.json"
    config_file.write_text(json.dumps({"g_filters": 48}))
    from_file = resolved("--config", str(config_file), cwd=tmp_path)
    assert from_file == default.replace(g_filters=48)


def test_contradictory_base_choices_are_one_line_errors(config_file, tmp_path):
    from dcganlib import cli as cli_module

    config_file = tmp_path / "c.json"
    config_file.write_text("{}")
    for argv in (["--smoke", "--preset", "radford"], ["--config", str(config_file), "--preset", "default"]):
        with pytest.raises(cli_module.DcganlibError, match="give one of them"):
            resolved(*argv, cwd=tmp_path)
    done = cli("train", "--preset", "radford", "--smoke", "--out", "x", cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("dcganlib: error: --smoke and --preset radford")


# ================================================================================================
# refusals: every bad config, input or folder is refused before anything is written or deleted
@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    """A config file for 40/8/8 ellipse slices: 4 epochs, 2 checkpoints kept, seed 3."""
    root = tmp_path_factory.mktemp("refusals")
    slices = write_slices(root / "slices")
    path = root / "config.json"
    smoke_config(data=str(slices), epochs=4, keep_checkpoints=KEEP, seed=3).to_json(path)
    return path


@pytest.fixture
def existing_run(finished_run, tmp_path):
    """A copy of the shared finished run, and the hashes of its files."""
    run = tmp_path / "existing"
    shutil.copytree(finished_run.run_dir, run)
    return run, snapshot(run)


def test_generate_on_a_missing_run_folder_is_refused(tmp_path, capsys):
    code, stderr = main("generate", tmp_path / "runs" / "none", capsys=capsys)
    assert code == 2 and "run folder not found" in error_line(stderr)


def test_overwrite_refuses_a_folder_that_is_not_a_run(config_file, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    code, stderr = main("train", "--config", config_file, "--out", folder, "--overwrite", capsys=capsys)
    assert code == 2 and "does not look like a dcganlib run" in error_line(stderr)
    assert (folder / "thesis.tex").read_text() == "precious"


def test_overwrite_with_a_bad_setting_keeps_the_old_run_and_a_good_one_replaces_it(existing_run, config_file,
                                                                                    capsys):
    run, before = existing_run
    code, stderr = main("train", "--config", config_file, "--out", run, "--overwrite", "--batch-size", 64,
                        capsys=capsys)
    assert code == 2 and "batch_size 64" in error_line(stderr)
    assert snapshot(run) == before
    code, stderr = main("train", "--config", config_file, "--out", run, "--overwrite", "--epochs", 1, capsys=capsys)
    assert code == 0, stderr
    assert [r["epoch"] for r in runs.read_history(run / "history.csv")] == [1]
    assert sorted(p.name for p in (run / "grids").iterdir()) == ["epoch_0001.png"]


def write_json(path: Path, values: dict) -> Path:
    path.write_text(json.dumps(values))
    return path


def test_unknown_config_key_is_refused(config_file, tmp_path, capsys):
    values = json.loads(config_file.read_text()) | {"learning_rate": 0.1}
    code, stderr = main("train", "--config", write_json(tmp_path / "c.json", values), "--out", tmp_path / "run",
                        capsys=capsys)
    assert code == 2
    assert error_line(stderr).startswith("dcganlib: error: unknown config key(s): learning_rate; valid keys are: ")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("change, message", [
    ({"batch_size": "16"}, "config key 'batch_size' must be int, got '16'"),
    ({"image_size": 30}, "image_size 30"),
    ({"image_size": 4}, "config key 'image_size' must be in [8, 1024]; got 4"),
    ({"g_learning_rate": 0}, "config key 'g_learning_rate' must be in (0.0, 1.0]; got 0"),
    ({"grid_size": 10}, "config key 'grid_size' must be a square number"),
])
def test_invalid_config_values_are_refused(config_file, change, message, tmp_path, capsys):
    values = json.loads(config_file.read_text()) | change
    code, stderr = main("train", "--config", write_json(tmp_path / "c.json", values), "--out", tmp_path / "run",
                        capsys=capsys)
    assert code == 2 and message in error_line(stderr)
    assert not (tmp_path / "run").exists()


def test_invalid_image_size_names_the_supported_ones(config_file, tmp_path, capsys):
    code, stderr = main("train", "--config", config_file, "--image-size", 30, "--out", tmp_path / "run",
                        capsys=capsys)
    assert code == 2 and "nearest supported: 28, 32" in error_line(stderr)
    assert not (tmp_path / "run").exists()


def test_batch_larger_than_the_data_is_refused_before_training(config_file, tmp_path, capsys):
    code, stderr = main("train", "--config", config_file, "--batch-size", 41, "--out", tmp_path / "run",
                        capsys=capsys)
    assert code == 2
    assert error_line(stderr) == ("dcganlib: error: batch_size 41 is larger than the 40 training images; "
                                  "use --batch-size 40 or fewer, or add data")
    assert [p.name for p in (tmp_path / "run").iterdir()] == [runs.LOCK_FILE]  # nothing else written


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders, so chmod cannot make one unwritable")
def test_unwritable_output_folder_is_refused(config_file, tmp_path, capsys):
    locked = tmp_path / "read_only"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, stderr = main("train", "--config", config_file, "--out", locked / "run", capsys=capsys)
        assert code == 2 and f"cannot create run folder {locked / 'run'}: Permission denied" in error_line(stderr)
        code, stderr = main("train", "--config", config_file, "--out", locked, capsys=capsys)
        assert code == 2 and f"run folder {locked} is not writable; choose another --out" in error_line(stderr)
    finally:
        locked.chmod(0o755)


def test_output_folder_inside_a_file_is_refused(config_file, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    code, stderr = main("train", "--config", config_file, "--out", tmp_path / "notes.txt" / "run", capsys=capsys)
    assert code == 2
    assert error_line(stderr) == (f"dcganlib: error: cannot create run folder {tmp_path / 'notes.txt' / 'run'}: "
                                  "Not a directory; choose another --out")
    code, stderr = main("train", "--config", config_file, "--out", tmp_path / "notes.txt", capsys=capsys)
    assert code == 2 and "exists and is a file" in error_line(stderr)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def fake_free_disk(monkeypatch, free: int) -> None:
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=free))


def test_not_enough_free_disk_is_refused_with_the_numbers(config_file, finished_run, tmp_path, capsys,
                                                           monkeypatch):
    reference = finished_run.run_dir
    fake_free_disk(monkeypatch, 1_000_000)
    code, stderr = main("train", "--config", config_file, "--out", tmp_path / "run", capsys=capsys)
    assert code == 2
    line = error_line(stderr)
    assert line.startswith(f"dcganlib: error: not enough free disk for {tmp_path / 'run'}: 2 kept checkpoints + 1 "
                           "being written (")
    assert line.endswith("but only 1.0 MB are free; free some space, lower keep_checkpoints, or choose another --out")
    assert not (tmp_path / "run" / "config.json").exists()
    # The estimate is honest: at least what the reference run's checkpoints and generator take, at most twice.
    each = float(line.split("written (")[1].split(" MB")[0])
    needed = float(line.split("need about ")[1].split(" MB")[0])
    checkpoint = sum(p.stat().st_size for p in (reference / "checkpoints").glob("ckpt-2.*")) / 1e6
    on_disk = KEEP * checkpoint + (reference / "generator.keras").stat().st_size / 1e6
    assert checkpoint <= each * 1.05 and on_disk <= needed <= 2 * on_disk + 0.5, (each, needed, checkpoint, on_disk)
    # With that much space the same run starts (and the check counts what --overwrite will free).
    fake_free_disk(monkeypatch, int(needed * 1e6) + 100_000)
    code, stderr = main("train", "--config", config_file, "--out", tmp_path / "run", "--epochs", 1, capsys=capsys)
    assert code == 0, stderr


def test_not_enough_disk_for_an_overwrite_keeps_the_old_run(config_file, existing_run, capsys, monkeypatch):
    run, before = existing_run
    fake_free_disk(monkeypatch, 0)
    code, stderr = main("train", "--config", config_file, "--out", run, "--overwrite", capsys=capsys)
    assert code == 2 and "not enough free disk" in error_line(stderr)
    assert snapshot(run) == before


def test_existing_run_folder_is_never_overwritten_silently(config_file, existing_run, capsys):
    run, before = existing_run
    code, stderr = main("train", "--config", config_file, "--out", run, capsys=capsys)
    assert code == 2
    assert error_line(stderr) == (f"dcganlib: error: run folder {run} already exists and is not empty; pass --resume "
                                  "to continue it, --overwrite to delete it and start afresh, or choose another --out")
    code, stderr = main("train", "--config", config_file, "--out", run, "--resume", "--overwrite", capsys=capsys)
    assert code == 2 and "--resume and --overwrite contradict each other" in error_line(stderr)
    assert snapshot(run) == before


def test_resume_with_a_different_config_names_every_differing_key(existing_run, capsys):
    run, before = existing_run
    code, stderr = main("train", "--out", run, "--resume", "--batch-size", 8, "--seed", 4, "--epochs", 6,
                        capsys=capsys)
    assert code == 2
    assert error_line(stderr) == (f"dcganlib: error: --resume with settings that differ from {run / 'config.json'} "
                                  "(batch_size: saved 16, now 8; seed: saved 3, now 4); drop those options, or pass "
                                  "--force to continue with the new values")
    assert snapshot(run) == before


@pytest.mark.parametrize("scale, message", [
    ("0", "--lr-scale must be a positive number such as 0.5, got 0.0"),
    ("nan", "--lr-scale must be a positive number such as 0.5, got nan"),
    ("10000", "config key 'g_learning_rate' must be in (0.0, 1.0]; got 2.0"),
])
def test_bad_lr_scale_is_refused(scale, message, existing_run, capsys):
    run, before = existing_run
    code, stderr = main("train", "--out", run, "--resume", "--epochs", 5, "--lr-scale", scale, capsys=capsys)
    assert code == 2 and message in error_line(stderr)
    assert snapshot(run) == before


# ================================================================================================
# safe loading: no code from a data file, a model file or a config file runs
class _TouchOnUnpickle:
    """Unpickling this object creates a file: proof that a loader executed code from the data."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_npy_holding_pickled_objects_is_never_unpickled(config_file, tmp_path, capsys):
    marker = tmp_path / "code_ran"
    evil = tmp_path / "slices.npy"
    np.save(evil, np.array([_TouchOnUnpickle(marker)], dtype=object), allow_pickle=True)
    code, stderr = main("train", "--config", config_file, "--data", evil, "--out", tmp_path / "run", capsys=capsys)
    assert code == 2
    line = error_line(stderr)
    assert "none of the 1 image files" in line and "slices.npy" in line and "allow_pickle=False" in line
    assert not marker.exists()


def test_generator_file_with_python_code_is_refused(existing_run, capsys):
    import keras

    run, _ = existing_run
    marker = run.parent / "code_ran"
    inputs = keras.Input((32,))
    # The path is a constant inside the lambda's code, so Keras can serialise it (it cannot serialise closures).
    touch = eval(f"lambda z: z + float(__import__('pathlib').Path({str(marker)!r}).touch() is None)")
    outputs = keras.layers.Lambda(touch)(inputs)
    keras.Model(inputs, outputs).save(run / "generator.keras")
    marker.unlink()  # building the model ran the lambda once; loading must not
    code, stderr = main("generate", run, "--count", 2, capsys=capsys)
    assert code == 2
    line = error_line(stderr)
    assert line.startswith(f"dcganlib: error: cannot load {run / 'generator.keras'}: ValueError: ")
    assert "it carries Python code, which safe mode does not run" in line and "delete" not in line
    assert not marker.exists() and not (run / "generated").exists()


@pytest.mark.parametrize("content, message", [
    ('{"epochs": "4"}', "config key 'epochs' must be int, got '4'"),
    ('{"epochs": 4, "exec": "import os"}', "unknown config key(s): exec"),
    ("\x80\x04\x95 pickled", "is not valid JSON"),
    ("[1, 2]", "config must be a JSON object of key/value pairs, got list"),
])
def test_run_config_with_wrong_content_is_refused(content, message, existing_run, capsys):
    run, _ = existing_run
    (run / "config.json").write_text(content)
    # so that generate must rebuild the generator from config.json: no exported or best-epoch generator
    for path in [run / "generator.keras", *run.glob("checkpoints/best-epoch_*.keras")]:
        path.unlink()
    before = snapshot(run)
    for command in (("train", "--out", run, "--resume"), ("generate", run)):
        code, stderr = main(*command, capsys=capsys)
        assert code == 2 and message in error_line(stderr), command
    assert snapshot(run) == before


# ================================================================================================
# damaged run folders (issue 16): one line, exit code 2, nothing changed
def refusal(*argv, folder: Path, capsys) -> tuple[str, str]:
    """Run the command line; assert exit code 2, one ``dcganlib: error:`` line and ``folder`` unchanged
    (sha256 of every file); return that line and all of stderr."""
    before = snapshot(folder)
    code, stderr = main(*argv, capsys=capsys)
    assert code == 2, stderr[-3000:]
    line = error_line(stderr)
    assert snapshot(folder) == before
    return line, stderr


def test_resume_without_a_readable_checkpoint_names_what_overwrite_would_delete(existing_run, capsys):
    run, _ = existing_run
    for path in (run / "checkpoints").glob("*.index"):
        path.write_bytes(b"\0" * path.stat().st_size)
    line, stderr = refusal("train", "--out", run, "--resume", folder=run, capsys=capsys)
    assert [text for text in stderr.splitlines() if "unreadable" in text] == [
        "dcganlib: checkpoint ckpt-2 is unreadable (OpError: not an sstable (bad magic number)); falling back to ckpt-1",
        "dcganlib: checkpoint ckpt-1 is unreadable (OpError: not an sstable (bad magic number)); "
        "no older checkpoint is left"]
    assert line == (
        f"dcganlib: error: cannot resume {run}: none of the 2 checkpoints in {run / 'checkpoints'} can be read "
        "(ckpt-2: OpError: not an sstable (bad magic number); ckpt-1: OpError: not an sstable (bad magic number)); "
        "start it again with --overwrite, which deletes config.json, run.json, split.json, history.csv, grids/ "
        "(2 files), training.gif, checkpoints/ (6 files), generator.keras, tensorboard/ (1 files)")


def test_resume_without_any_checkpoint_names_what_overwrite_would_delete(existing_run, capsys):
    run, _ = existing_run  # as a run killed in its first epoch leaves it: no checkpoint, no history row
    for name in ("checkpoints", "grids", "tensorboard"):
        shutil.rmtree(run / name)
    (run / "checkpoints").mkdir()
    for name in ("history.csv", "training.gif", "generator.keras"):
        (run / name).unlink()
    line, _ = refusal("train", "--out", run, "--resume", folder=run, capsys=capsys)
    assert line == (
        f"dcganlib: error: cannot resume {run}: no checkpoint in {run / 'checkpoints'} (the run stopped before its "
        "first epoch finished); start it again with --overwrite, which deletes config.json, run.json, split.json, "
        "checkpoints/ (0 files)")


@pytest.mark.parametrize("argv, keys", [
    (["--image-size", "64"], "image_size: saved 32, now 64"),
    (["--generator", "radford"], "generator: saved 'resize', now 'radford'"),
])
def test_resume_into_other_networks_is_refused_even_with_force(argv, keys, existing_run, capsys):
    run, _ = existing_run
    line, _ = refusal("train", "--out", run, "--resume", "--force", *argv, folder=run, capsys=capsys)
    assert line == (
        f"dcganlib: error: --resume cannot change the networks of the run in {run} ({keys}): its checkpoints fit "
        "only the saved ones, so not even --force continues; drop those options, or train a new run with another "
        "--out")


def test_a_checkpoint_that_does_not_fit_is_named_not_called_unreadable(existing_run, capsys):
    run, _ = existing_run  # float32 checkpoints; mixed_float16 wraps both optimizers in loss scaling
    line, stderr = refusal("train", "--out", run, "--resume", "--force", "--precision", "mixed_float16", folder=run,
                           capsys=capsys)
    assert line.startswith(f"dcganlib: error: cannot resume {run}: checkpoint ckpt-2 does not fit the networks and "
                           f"optimizers built from {run / 'config.json'} (")
    assert line.endswith("; it was saved with other settings, e.g. another precision (mixed_float16 adds loss "
                         "scaling to the optimizers, and precision auto picks it on a GPU): use the settings it was "
                         "trained with")
    assert "unreadable" not in stderr and "falling back" not in stderr


def test_a_key_missing_from_the_saved_config_is_a_difference(existing_run, capsys):
    run, _ = existing_run
    saved = json.loads((run / "config.json").read_text())
    del saved["latent_dim"]  # an architecture key: refused even with --force
    write_json(run / "config.json", saved)
    line, _ = refusal("train", "--out", run, "--resume", "--force", folder=run, capsys=capsys)
    assert line == (
        f"dcganlib: error: --resume cannot change the networks of the run in {run} (latent_dim: saved (missing), "
        "now 100): its checkpoints fit only the saved ones, so not even --force continues; drop those options, or "
        f"train a new run with another --out (latent_dim missing from {run / 'config.json'}: add the value the run "
        "was trained with)")
    saved["latent_dim"] = 32
    del saved["beta_2"]  # a training setting: a difference --force accepts
    write_json(run / "config.json", saved)
    line, _ = refusal("train", "--out", run, "--resume", folder=run, capsys=capsys)
    assert line == (
        f"dcganlib: error: --resume with settings that differ from {run / 'config.json'} (beta_2: saved (missing), "
        "now 0.999); drop those options, or pass --force to continue with the new values")
    code, stderr = main("train", "--out", run, "--resume", "--force", capsys=capsys)
    assert code == 0, stderr[-3000:]  # the run is complete: nothing trained, the full config saved
    assert json.loads((run / "config.json").read_text())["beta_2"] == 0.999


def test_a_generator_file_of_another_keras_version_is_kept_with_advice_for_that_version(existing_run, capsys):
    import zipfile

    run, _ = existing_run
    path = run / "generator.keras"
    with zipfile.ZipFile(path) as archive:  # the same model, as a future Keras would save it: another version,
        members = {name: archive.read(name) for name in archive.namelist()}  # and a layer this one lacks
    metadata = json.loads(members["metadata.json"])
    metadata["keras_version"] = "9.0.0"
    members["metadata.json"] = json.dumps(metadata).encode()
    members["config.json"] = members["config.json"].replace(b'"class_name": "Dense"', b'"class_name": "DenseV9"', 1)
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    line, _ = refusal("generate", run, "--count", 2, folder=run, capsys=capsys)
    assert "it was saved by Keras 9.0.0 and this is Keras" in line and "the file is probably intact, keep it" in line
    assert "rename" not in line and "delete" not in line


@pytest.mark.parametrize("damage", ["zeros", "cut"])
def test_a_damaged_generator_file_is_one_line(damage, existing_run, capsys):
    run, _ = existing_run
    path = run / "generator.keras"
    path.write_bytes(b"\0" * 1000 if damage == "zeros" else path.read_bytes()[:1000])
    line, _ = refusal("generate", run, "--count", 2, folder=run, capsys=capsys)
    assert line.startswith(f"dcganlib: error: cannot load {path}: ")
    assert line.endswith("the file is damaged or not a Keras model: rename it aside (e.g. to generator.keras.damaged) "
                         "and the command falls back to the run's other generator files and checkpoints")
    assert not (run / "generated").exists()


def test_a_damaged_history_is_one_line(existing_run, capsys):
    run, _ = existing_run
    lines = (run / "history.csv").read_text().splitlines()
    lines[2] = lines[2].replace(lines[2].split(",")[2], "oops", 1)
    (run / "history.csv").write_text("\n".join(lines) + "\n")
    line, _ = refusal("train", "--out", run, "--resume", "--epochs", 3, folder=run, capsys=capsys)
    assert f"{run / 'history.csv'} line 3: column " in line and "holds 'oops', not a number; the file is damaged" in line


@pytest.mark.parametrize("content, message", [
    ('{"g_learning_rate": NaN}', "config key 'g_learning_rate' must be a finite number; got nan"),
    ('{"beta_1": Infinity}', "config key 'beta_1' must be a finite number; got inf"),
    ('{"d_dropout": -Infinity}', "config key 'd_dropout' must be a finite number; got -inf"),
    ('"smoke"', "config must be a JSON object of key/value pairs, got str"),
    ("", "is not valid JSON"),
])
def test_config_file_with_non_finite_or_non_object_content_is_refused(content, message, tmp_path, capsys):
    (tmp_path / "c.json").write_text(content)
    code, stderr = main("train", "--config", tmp_path / "c.json", "--out", tmp_path / "run", capsys=capsys)
    assert code == 2 and message in error_line(stderr)
    assert not (tmp_path / "run").exists()


def test_config_that_is_a_folder_is_refused(tmp_path, capsys):
    code, stderr = main("train", "--config", tmp_path, "--out", tmp_path / "run", capsys=capsys)
    assert code == 2
    assert error_line(stderr) == f"dcganlib: error: config file {tmp_path} is a folder; pass the JSON file inside it"


# ---- generate never overwrites what it did not write -----------------------------------------------
def generated_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_generate_into_a_non_empty_folder_needs_overwrite_and_replaces_only_its_own_files(finished_run, tmp_path,
                                                                                           capsys):
    out = tmp_path / "out"
    code, stderr = main("generate", finished_run.run_dir, "--count", 10, "--out", out, capsys=capsys)
    assert code == 0, stderr[-3000:]
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    line, _ = refusal("generate", finished_run.run_dir, "--count", 3, "--out", out, folder=out, capsys=capsys)
    assert line == (f"dcganlib: error: output folder {out} is not empty (12 entries); pass --overwrite to replace the "
                    "images an earlier generate wrote there, or choose another --out")
    code, stderr = main("generate", finished_run.run_dir, "--count", 3, "--seed", 1, "--out", out, "--overwrite",
                        capsys=capsys)
    assert code == 0, stderr[-3000:]
    # 3 new images, none of the 10 old ones left over, the user's file untouched.
    assert generated_names(out) == ["generated.json", "generated_0000.png", "generated_0001.png",
                                    "generated_0002.png", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "generated_0000.png").read_bytes() != before["generated_0000.png"]
    manifest = json.loads((out / "generated.json").read_text())
    assert manifest["complete"] is True and manifest["seed"] == 1 and len(manifest["files"]) == 3


def test_generate_overwrite_refuses_folders_and_files_it_did_not_write(finished_run, tmp_path, capsys):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "grid.png").write_bytes(b"my own grid")
    line, _ = refusal("generate", finished_run.run_dir, "--count", 2, "--out", foreign, "--overwrite", "--grid",
                      folder=foreign, capsys=capsys)
    assert line == (f"dcganlib: error: refusing --overwrite of {foreign}: it has no readable generated.json, so it "
                    "does not hold images of generate; choose another --out")
    code, _ = main("generate", finished_run.run_dir, "--count", 2, "--out", tmp_path / "mixed", capsys=capsys)
    assert code == 0
    (tmp_path / "mixed" / "grid.png").write_bytes(b"my own grid")  # a file of the user's next to generate's
    line, _ = refusal("generate", finished_run.run_dir, "--count", 2, "--out", tmp_path / "mixed", "--overwrite",
                      "--grid", folder=tmp_path / "mixed", capsys=capsys)
    assert "grid.png would replace files that generate did not write" in line
    (tmp_path / "file").write_text("x")
    code, stderr = main("generate", finished_run.run_dir, "--out", tmp_path / "file", capsys=capsys)
    assert code == 2 and error_line(stderr) == f"dcganlib: error: --out {tmp_path / 'file'} is a file; give a folder"


def test_an_interrupted_generate_is_marked_incomplete_and_overwrite_cleans_it(finished_run, tmp_path, capsys,
                                                                            monkeypatch):
    from dcganlib import sampling

    out = tmp_path / "out"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C after the images, before the grid and the final manifest

    with monkeypatch.context() as patches:
        patches.setattr(sampling, "save_grid", interrupted)
        code, _ = main("generate", finished_run.run_dir, "--count", 4, "--out", out, "--grid", capsys=capsys)
    assert code == 130
    manifest = json.loads((out / "generated.json").read_text())
    assert manifest["complete"] is False
    assert manifest["files"] == [f"generated_{i:04d}.png" for i in range(4)] + ["grid.png"]
    (out / f".generated_0003.tmp-{dead_pid()}-0badc0de.png").write_bytes(b"half")  # as a SIGKILL leaves it
    code, stderr = main("generate", finished_run.run_dir, "--count", 2, "--out", out, "--overwrite", capsys=capsys)
    assert code == 0, stderr[-3000:]
    assert generated_names(out) == ["generated.json", "generated_0000.png", "generated_0001.png"]
    assert json.loads((out / "generated.json").read_text())["complete"] is True


def test_generate_refuses_a_count_that_does_not_fit_in_memory(finished_run, tmp_path, capsys):
    code, stderr = main("generate", finished_run.run_dir, "--count", 10**9, "--out", tmp_path / "out", capsys=capsys)
    assert code == 2
    line = error_line(stderr)
    assert line.startswith("dcganlib: error: --count 1000000000 needs about 9216.0 GB of memory for images of "
                           "32x32x1 but ") and line.endswith(" GB are available; use a smaller --count")
    assert not (tmp_path / "out").exists()


# ---- gif and the held-out splits ---------------------------------------------------------------------
def test_gif_names_its_flag_and_never_replaces_a_file_unasked(finished_run, tmp_path, capsys):
    code, stderr = main("gif", finished_run.run_dir, "--frame-ms", 0, "--out", tmp_path / "a.gif", capsys=capsys)
    assert code == 2
    assert error_line(stderr) == ("dcganlib: error: --frame-ms must be a whole number of milliseconds in [10, 60000]; "
                                  "got 0")
    mine = tmp_path / "mine.gif"
    mine.write_bytes(b"GIF89a mine")
    code, stderr = main("gif", finished_run.run_dir, "--out", mine, capsys=capsys)
    assert code == 2
    assert error_line(stderr) == (f"dcganlib: error: --out {mine} already exists; pass --overwrite to replace it, "
                                  "or choose another name")
    assert mine.read_bytes() == b"GIF89a mine"
    code, stderr = main("gif", finished_run.run_dir, "--out", mine, "--overwrite", capsys=capsys)
    assert code == 0, stderr[-3000:]
    with Image.open(mine) as gif:
        assert gif.n_frames == 2


@pytest.mark.parametrize("counts, note", [
    ((40, 0, 0), "dcganlib: note: no held-out images (no images in keras_png_slices_validate or "
                 "keras_png_slices_test): evaluate will need --reference FOLDER of real images of other subjects; "
                 "or add subjects to keras_png_slices_validate or keras_png_slices_test"),
    ((40, 8, 0), "dcganlib: note: the test split is empty (no images in keras_png_slices_test): evaluate holds out "
                 "only the 8 validate images"),
])
def test_an_empty_oasis_split_is_reported_at_train_time(counts, note, tmp_path, capsys):
    data = write_slices(tmp_path / "data", counts=counts)
    config = tmp_path / "c.json"
    smoke_config(data=str(data), epochs=1).to_json(config)
    code, stderr = main("train", "--config", config, "--out", tmp_path / "run", capsys=capsys)
    assert code == 0, stderr[-3000:]
    from dcganlib.tracking import MIN_REFERENCE

    untracked = (f"dcganlib: note: the validate split has {counts[1]} images, fewer than the {MIN_REFERENCE} the "
                 "per-epoch quality figures need: none are tracked and the last epoch's generator is exported")
    assert [line for line in stderr.splitlines() if "note:" in line] == [note, untracked]


# ================================================================================================
# a table-driven fuzz of every command's flags: odd values are one line, exit code 2, and change nothing
INT_BAD = ("-1", "1000000000000", "nan", "abc", "1.5", "")  # and "0" where zero is meaningless
PATHS = ("DIR", "FILE", "MISSING")  # an existing non-empty folder, an existing text file, a path that does not exist


def fuzz_cases():
    """``(command argv with FLAG placeholder, flag, bad values)``; RUN, DATA, DIR, FILE, MISSING, EMPTY are
    paths inside the sandbox."""
    ints = {"demo-data OUT_NEW": ["--count", "--size"], "demo-data OUT_NEW ": ["--seed"],
            "train --data DATA --out NEW": ["--image-size", "--epochs", "--batch-size", "--max-images"],
            "train --data DATA --out NEW ": ["--seed"],
            "generate RUN --out NEW": ["--count"], "generate RUN --out NEW ": ["--seed"],
            "gif RUN --out NEW.gif": ["--frame-ms"], "evaluate RUN --out NEW.json ": ["--seed"],
            "bench": ["--image-size", "--batch-size", "--steps", "--repeats", "--memory-count"],
            "bench ": ["--ssim-count"]}
    cases = []
    for argv, flags in ints.items():
        zero_ok = argv.endswith(" ")  # seeds and --ssim-count take 0
        for flag in flags:
            cases += [(argv.split() + [flag, value], flag) for value in INT_BAD + (() if zero_ok else ("0",))]
    for value in ("0", "-1", "1e12", "nan", "inf", "abc"):
        cases.append((["train", "--data", "DATA", "--out", "NEW", "--lr-scale", value], "--lr-scale"))
    for argv, flag in (("train --data DATA --out NEW --generator", "--generator"),
                       ("train --data DATA --out NEW --loss", "--loss"),
                       ("train --data DATA --out NEW --precision", "--precision"),
                       ("train --data DATA --out NEW --preset", "--preset"), ("bench --preset", "--preset"),
                       ("bench --precision", "--precision")):
        cases += [(argv.split() + [value], flag) for value in ("", "nan", "DIR", "0")]
    paths = {"train --out NEW --data": ("--data", PATHS + ("EMPTY",)), "train --data DATA --out": ("--out", ("DIR", "FILE")),
             "train --data DATA --out NEW --config": ("--config", PATHS + ("EMPTY",)),
             "bench --config": ("--config", PATHS + ("EMPTY",)),
             "generate": ("run_dir", PATHS + ("EMPTY",)), "generate RUN --out": ("--out", ("DIR", "FILE")),
             "gif": ("run_dir", PATHS + ("EMPTY",)), "gif RUN --out": ("--out", ("DIR", "FILE", "FILE/x.gif")),
             "demo-data": ("out_dir", ("FILE", "FILE/sub")),
             "evaluate": ("run_dir", PATHS + ("EMPTY",)), "evaluate RUN --out": ("--out", ("DIR", "FILE", "FILE/x.json")),
             "evaluate RUN --out NEW.json --inception-weights": ("--inception-weights", PATHS),
             "evaluate RUN --out NEW.json --reference": ("--reference", PATHS + ("EMPTY",)),
             "evaluate --out NEW.json --images": ("--images", PATHS + ("EMPTY",))}
    for argv, (flag, values) in paths.items():
        cases += [(argv.split() + [value], flag) for value in values]
    return cases


@pytest.fixture(scope="module")
def sandbox(finished_run, tmp_path_factory):
    """A folder of things a user points commands at: a run, its data, a non-empty folder, an empty one, a file."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(finished_run.run_dir, root / "run")
    write_slices(root / "data", counts=(20, 4, 4))
    (root / "dir").mkdir()
    (root / "dir" / "thesis.tex").write_text("precious")
    (root / "empty").mkdir()
    (root / "file.txt").write_text("not an image, not JSON, not a run")
    return root


def resolve(argv: list[str], root: Path) -> list[str]:
    names = {"RUN": root / "run", "DATA": root / "data", "DIR": root / "dir", "EMPTY": root / "empty",
             "FILE": root / "file.txt", "MISSING": root / "missing", "NEW": root / "new", "OUT_NEW": root / "new_out"}
    resolved = []
    for arg in argv:
        head, _, tail = arg.partition("/")
        stem, dot, suffix = head.partition(".")
        base = names.get(stem)
        resolved.append(arg if base is None else str(base) + dot + suffix + (f"/{tail}" if tail else ""))
    return resolved


@pytest.mark.parametrize("argv, flag", fuzz_cases(), ids=lambda x: " ".join(x) if isinstance(x, list) else x)
def test_fuzzed_flags_are_one_line_and_change_nothing(argv, flag, sandbox, capsys):
    before = snapshot(sandbox)
    argv = resolve(argv, sandbox)
    code, stderr = main(*argv, capsys=capsys)
    assert code == 2, (argv, stderr[-2000:])
    line = error_line(stderr)
    assert len(stderr.strip().splitlines()) == 1, stderr  # nothing else either: no usage, no warning
    key = flag.lstrip("-").replace("-", "_")
    named = (flag, key, key.replace("_", " "), argv[-1] or "''")
    assert any(name in line for name in named), (line, named)  # it says what was wrong
    assert snapshot(sandbox) == before
    assert not (sandbox / "new").exists() or not any(p.is_file() and p.name != runs.LOCK_FILE
                                                     for p in (sandbox / "new").rglob("*"))
    assert not (sandbox / "new_out").exists() and not (sandbox / "new.json").exists()


def test_evaluate_refuses_a_bad_out_or_weights_file_before_evaluating(existing_run, tmp_path, capsys):
    run, _ = existing_run
    weights = tmp_path / "inception.h5"
    weights.write_bytes(b"<html>a login page saved as .h5</html>")
    line, _ = refusal("evaluate", run, "--inception-weights", weights, folder=run, capsys=capsys)
    assert line == (f"dcganlib: error: --inception-weights {weights} is not an HDF5 file (no HDF5 signature); pass "
                    "Keras' InceptionV3 weights file, inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")
    line, _ = refusal("evaluate", run, "--out", tmp_path, folder=run, capsys=capsys)
    assert line == f"dcganlib: error: --out {tmp_path} is a folder; give the name of a file"
    (tmp_path / "metrics.json").write_text("{}")  # the user's, from another run
    line, _ = refusal("evaluate", run, "--out", tmp_path / "metrics.json", folder=run, capsys=capsys)
    assert line == (f"dcganlib: error: --out {tmp_path / 'metrics.json'} already exists; pass --overwrite to replace "
                    "it, or choose another name")
    assert (tmp_path / "metrics.json").read_text() == "{}" and not (run / "evaluation").exists()  # nothing evaluated


def test_bench_times_a_config_file_or_a_preset_not_both(tmp_path, capsys):
    config = tmp_path / "recipe.json"
    config.write_text('{"g_widths": "512,128,48,16"}')
    code, stderr = main("bench", "--config", str(config), "--preset", "radford", capsys=capsys)
    assert code == 2
    assert error_line(stderr) == ("dcganlib: error: --config FILE and --preset both choose the networks to time; "
                                  "give one of them")
