"""dcganlib.files: the one atomic-write helper every module uses."""

import json
import os

import pytest

from dcganlib import files
from helpers import dead_pid


def test_write_text_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "history.csv"
    files.write_text(target, "a,b\n1,2\n")
    files.write_text(target, "a,b\n3,4\n")
    assert target.read_text() == "a,b\n3,4\n"
    assert [p.name for p in target.parent.iterdir()] == ["history.csv"]


def test_failed_write_keeps_old_content_and_removes_temporary(tmp_path):
    target = tmp_path / "grid.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as tmp:
            assert tmp.parent == target.parent and tmp.suffix == ".png" and tmp.name.startswith(".grid.tmp-")
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]


def test_temporary_folders_are_cleaned_too(tmp_path):
    target = tmp_path / "generator.keras"
    with pytest.raises(OSError):
        with files.atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "part").write_text("x")
            raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_two_writers_get_distinct_temporaries(tmp_path):
    target = tmp_path / "config.json"
    with files.atomic_path(target) as first, files.atomic_path(target) as second:
        assert first != second
        first.write_text("1")
        second.write_text("2")
    assert target.read_text() == "1"  # the outer block finished last


def test_write_json_round_trips_and_refuses_nan(tmp_path):
    target = tmp_path / "metrics.json"
    files.write_json(target, {"b": 1, "a": [0.5, None]}, sort_keys=True)
    assert target.read_text().startswith('{\n  "a"') and target.read_text().endswith("}\n")
    assert json.loads(target.read_text()) == {"a": [0.5, None], "b": 1}
    with pytest.raises(ValueError):
        files.write_json(target, {"x": float("nan")})
    assert json.loads(target.read_text())["b"] == 1  # unchanged after the refused write
    assert len(os.listdir(tmp_path)) == 1


def test_orphaned_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = dead_pid()
    orphan_file = tmp_path / f".ssim_histograms.tmp-{dead}-0a1b2c3d.png"
    orphan_folder = tmp_path / f".demo-build.tmp-{dead}-ffee0011"
    live = tmp_path / f".roc.tmp-{os.getpid()}-12345678.pdf"  # this process: still writing it
    mine = [tmp_path / "roc.png", tmp_path / ".hidden", tmp_path / f".notes.tmp-x-{dead}.txt"]
    orphan_file.write_bytes(b"half a figure")
    (orphan_folder / "keras_png_slices_train").mkdir(parents=True)
    for path in [live, *mine]:
        path.write_text("keep")
    assert files.remove_orphaned_temporaries(tmp_path, stem="demo-build") == [orphan_folder]
    assert sorted(files.remove_orphaned_temporaries(tmp_path)) == [orphan_file]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [live, *mine])


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "is a folder; give the name of a file"),
    (lambda p: p.write_text("{}"), "already exists; pass --overwrite to replace it, or choose another name"),
])
def test_output_file_checks_happen_before_any_work(make, message, tmp_path):
    from dcganlib.errors import ConfigError

    target = tmp_path / "metrics.json"
    make(target)
    with pytest.raises(ConfigError, match=message):
        files.check_output_file(target, overwrite=False)
    (tmp_path / "notes").write_text("x")
    with pytest.raises(ConfigError, match=f"cannot be created: {tmp_path / 'notes'} is a file"):
        files.check_output_file(tmp_path / "notes" / "deep" / "metrics.json", overwrite=True)
    assert files.check_output_file(tmp_path / "new" / "deep" / "m.json", overwrite=False) == \
        tmp_path / "new" / "deep" / "m.json"
    assert not (tmp_path / "new").exists()  # checked, not created
