"""dcganlib.files: the one atomic-write helper every module uses."""

import json
import os

import pytest

from dcganlib import files


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
