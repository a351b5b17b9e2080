"""The embedded MNI152 demo dataset: layout, subject-disjoint splits, determinism, caching, CLI."""

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcganlib.config import Config, smoke_config
from dcganlib.data import OASIS_SPLITS, load_dataset, make_tf_dataset
from dcganlib.data.demo import (DEMO_VERSION, build_demo_dataset, ensure_demo_dataset, read_demo_info,
                           template_path)
from dcganlib.errors import DataError

NAME = re.compile(r"^(case_\d{3})_slice_(\d+)\.nii\.png$")


def files_by_split(root):
    return {split: sorted(p.name for p in (root / folder).iterdir()) for split, folder in OASIS_SPLITS.items()}


def file_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_template_ships_inside_nilearn():
    path = template_path()
    assert path.is_file() and path.parts[-4:-1] == ("nilearn", "datasets", "data")


def test_layout_names_counts_and_subject_disjoint_splits(demo_data_dir):
    files = files_by_split(demo_data_dir)
    assert sum(len(v) for v in files.values()) == 120
    assert all(NAME.match(name) for names in files.values() for name in names)
    subjects = {split: {NAME.match(n).group(1) for n in names} for split, names in files.items()}
    assert len(subjects["validate"]) >= 1 and len(subjects["test"]) >= 1
    assert not (subjects["train"] & subjects["validate"] or subjects["train"] & subjects["test"]
                or subjects["validate"] & subjects["test"])
    info = read_demo_info(demo_data_dir)
    assert info["version"] == DEMO_VERSION and info["count"] == 120 and info["size"] == 64
    assert info["counts"] == {split: len(names) for split, names in files.items()}


def test_slices_look_like_oasis(demo_data_dir):
    images = np.stack([np.asarray(Image.open(p)) for p in sorted(demo_data_dir.rglob("*.png"))])
    assert images.shape == (120, 64, 64) and images.dtype == np.uint8
    # black background around a centred brain: borders dark, centre mostly tissue on mid slices
    assert images[:, 0, :].max() == 0 and images[:, :, 0].max() == 0
    assert np.median((images > 0).mean(axis=(1, 2))) > 0.3
    assert images.max() > 200


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    first = build_demo_dataset(tmp_path / "a", count=30, size=64, seed=3)
    second = build_demo_dataset(tmp_path / "b", count=30, size=64, seed=3)
    other = build_demo_dataset(tmp_path / "c", count=30, size=64, seed=4)
    assert file_bytes(first) == file_bytes(second)
    assert len(file_bytes(first)) == 30
    other_bytes = file_bytes(other)
    assert other_bytes.keys() != file_bytes(first).keys() or other_bytes != file_bytes(first)
    common = set(other_bytes) & set(file_bytes(first))
    assert any(other_bytes[k] != file_bytes(first)[k] for k in common)


def test_rebuilding_with_same_settings_is_a_no_op_and_other_settings_refused(tmp_path):
    out = build_demo_dataset(tmp_path / "d", count=20, size=32, seed=0)
    stamp = (out / "demo.json").stat().st_mtime_ns
    build_demo_dataset(out, count=20, size=32, seed=0)
    assert (out / "demo.json").stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match=r"already contains a different or incomplete dataset .*choose an empty folder"):
        build_demo_dataset(out, count=21, size=32, seed=0)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no build leftovers


def test_a_killed_build_leaves_nothing_the_next_build_keeps(tmp_path):
    from helpers import dead_pid

    out = tmp_path / "d"
    out.mkdir()
    killed = out / f".demo-build.tmp-{dead_pid()}-0badc0de"  # what a killed demo-data leaves
    (killed / "keras_png_slices_train").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    build_demo_dataset(out, count=20, size=32, seed=0)
    assert sorted(p.name for p in out.iterdir()) == ["demo.json", "keras_png_slices_test", "keras_png_slices_train",
                                                     "keras_png_slices_validate", "notes.txt"]
    with pytest.raises(DataError, match=r"notes.txt is a file; give a folder"):
        build_demo_dataset(out / "notes.txt", count=20, size=32, seed=0)


def test_bad_arguments_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="count must be an integer"):
        build_demo_dataset(tmp_path / "x", count=0)


def test_ensure_builds_once_into_the_cache_even_when_called_concurrently(tmp_path):
    config = Config(demo_count=20, cache_dir=str(tmp_path / "cache"))
    results = []
    threads = [threading.Thread(target=lambda: results.append(ensure_demo_dataset(config))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    folder = results[0]
    assert folder.parent == tmp_path / "cache" and folder.name.startswith(f"mni152-demo-v{DEMO_VERSION}-n20-s256")
    assert sum(len(v) for v in files_by_split(folder).values()) == 20
    # only the finished dataset and its lock file remain: no half-built temp folders
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([folder.name, folder.name + ".lock"])


def test_ensure_discards_a_killed_build(tmp_path):
    config = Config(demo_count=12, cache_dir=str(tmp_path))
    name = f"mni152-demo-v{DEMO_VERSION}-n12-s256-seed0"
    from dcganlib.files import temporary_name

    (tmp_path / temporary_name(name) / "keras_png_slices_train").mkdir(parents=True)  # a killed build
    (tmp_path / name / "keras_png_slices_train").mkdir(parents=True)  # no demo.json: not finished
    folder = ensure_demo_dataset(config)
    assert sum(len(v) for v in files_by_split(folder).values()) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, name + ".lock"]


def test_load_dataset_without_data_uses_the_demo_set(tmp_path):
    data = load_dataset(smoke_config(cache_dir=str(tmp_path / "cache")))
    assert data.report["source"] == "embedded MNI152 demo dataset" and data.report["layout"] == "oasis"
    assert data.report["demo"] == {"version": DEMO_VERSION, "count": 120, "size": 256, "seed": 0}
    assert data.train.shape == (64, 32, 32, 1)  # smoke: max_images=64, 32 px
    assert len(data.validate) > 0 and len(data.test) > 0
    assert data.report["counts"]["train"] + data.report["counts"]["validate"] + data.report["counts"]["test"] \
        <= 120


@pytest.mark.slow
def test_cli_demo_data_then_load_gives_batches_in_range(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, DCGANLIB_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "dcganlib", "demo-data", str(out), "--count", "40", "--size", "64"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert "\n" not in line and re.search(r"40 slices of 64x64 px \(train \d+, validate \d+, test \d+;", line)
    assert sum(len(v) for v in files_by_split(Path(out)).values()) == 40
    data = load_dataset(Config(data=str(out), image_size=32, cache_dir=str(tmp_path / "cache")))
    batch = next(iter(make_tf_dataset(data.train, 8, seed=0))).numpy()
    assert batch.shape == (8, 32, 32, 1) and batch.dtype == np.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0 and batch.min() == -1.0
