"""``python -m dcganlib`` as a user runs it: subprocesses, exit codes, the files they leave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import write_slices


def cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               DCGANLIB_CACHE=str(cwd / "cache"))  # the demo dataset is built inside tmp_path
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


def test_train_again_is_refused_then_resume_adds_one_epoch(smoke_run):
    cwd, _ = smoke_run
    again = cli("train", "--smoke", "--out", "runs/smoke", cwd=cwd)
    assert again.returncode == 2
    assert "--resume" in again.stderr and "--overwrite" in again.stderr and "Traceback" not in again.stderr
    resumed = cli("train", "--out", "runs/smoke", "--resume", "--epochs", "3", cwd=cwd)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    lines = (cwd / "runs" / "smoke" / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["epoch", "1", "2", "3"]
    done = cli("train", "--out", "runs/smoke", "--resume", "--epochs", "3", cwd=cwd)
    assert done.returncode == 0 and "nothing to do" in done.stdout


def test_generate_and_gif_commands(smoke_run):
    cwd, _ = smoke_run
    done = cli("generate", "runs/smoke", "--count", "3", "--out", "gen", "--grid", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (cwd / "gen").iterdir()) == [
        "generated_0000.png", "generated_0001.png", "generated_0002.png", "grid.png"]
    image = np.asarray(Image.open(cwd / "gen" / "generated_0000.png"))
    assert image.dtype == np.uint8 and image.shape == (32, 32)
    gif = cli("gif", "runs/smoke", "--out", "again.gif", "--frame-ms", "100", cwd=cwd)
    assert gif.returncode == 0, gif.stderr[-3000:]
    with Image.open(cwd / "again.gif") as frames:
        assert frames.n_frames >= 2 and frames.info["duration"] == 100


def test_train_on_a_folder_and_fail_fast_messages(tmp_path):
    data = write_slices(tmp_path / "slices")
    bad = cli("train", "--smoke", "--data", data, "--out", "runs/a", "--batch-size", "100", cwd=tmp_path)
    assert bad.returncode == 2 and "batch_size 100" in bad.stderr and "Traceback" not in bad.stderr
    missing = cli("generate", "runs/none", cwd=tmp_path)
    assert missing.returncode == 2 and "run folder not found" in missing.stderr
    size = cli("train", "--smoke", "--data", data, "--out", "runs/b", "--image-size", "30", cwd=tmp_path)
    assert size.returncode == 2 and "nearest supported: 28, 32" in size.stderr


# ---- which settings a train command line resolves to (in-process, nothing trained) ----------------
def resolved(*argv: str, cwd: Path):
    from dcganlib import cli as cli_module

    return cli_module.train_config(cli_module.build_parser().parse_args(["train", "--out", str(cwd / "run"), *argv]))


def test_presets_and_flags_resolve_to_the_documented_settings(tmp_path):
    default = resolved(cwd=tmp_path)
    assert (default.generator, default.g_filters, default.d_filters, default.epochs, default.image_size) == \
        ("resize", 32, 32, 30, 64)
    paper = resolved("--preset", "radford", cwd=tmp_path)
    assert (paper.generator, paper.g_filters, paper.d_filters, paper.epochs) == ("radford", 64, 64, 20)
    assert resolved("--smoke", cwd=tmp_path) == resolved("--preset", "smoke", cwd=tmp_path)
    assert resolved("--preset", "radford", "--epochs", "3", "--generator", "resize", cwd=tmp_path).replace() == \
        paper.replace(epochs=3, generator="resize")
    config_file = tmp_path / "partial.json"
    config_file.write_text(json.dumps({"g_filters": 48}))
    from_file = resolved("--config", str(config_file), cwd=tmp_path)
    assert from_file == default.replace(g_filters=48)


def test_contradictory_base_choices_are_one_line_errors(tmp_path):
    from dcganlib import cli as cli_module

    config_file = tmp_path / "c.json"
    config_file.write_text("{}")
    for argv in (["--smoke", "--preset", "radford"], ["--config", str(config_file), "--preset", "default"]):
        with pytest.raises(cli_module.DcganlibError, match="give one of them"):
            resolved(*argv, cwd=tmp_path)
    done = cli("train", "--preset", "radford", "--smoke", "--out", "x", cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("dcganlib: error: --smoke and --preset radford")
