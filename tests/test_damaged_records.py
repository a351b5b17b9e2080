"""Damaged run records and user files inside run folders: every command recovers or refuses in one line,
never with a traceback, never by a silent repair, and never touches a file the user did not name.

One shared finished run (``finished_run``) is copied per case; nothing here trains a new run from
scratch (a resume that must redo an epoch trains that one epoch).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dcganlib import evaluate, manifest, runs
from dcganlib.errors import RunFolderError
from helpers import error_line, main, snapshot

USER_FILES = {"notes.txt": "my notes on this run", "grids/favourite.txt": "epoch 2 looks best",
              "generated/chosen.txt": "generated_0001 for the poster"}


@pytest.fixture
def run(finished_run, tmp_path) -> Path:
    """A copy of the shared finished run (2 epochs, checkpoints 1 and 2) with a user's files inside it."""
    copy = tmp_path / "run"
    shutil.copytree(finished_run.run_dir, copy)
    (copy / "generated").mkdir()
    (copy / "generated" / "generated_0000.png").write_bytes(b"an image generate wrote")
    (copy / "generated" / "generated.json").write_text(json.dumps({"complete": True, "files": ["generated_0000.png"]}))
    for name, text in USER_FILES.items():
        (copy / name).write_text(text)
    return copy


def user_files_intact(run: Path) -> None:
    for name, text in USER_FILES.items():
        assert (run / name).read_text() == text, name


def cut_last_row(run: Path) -> bytes:
    """Cut history.csv in the middle of its last row (a damaged copy); the damaged bytes."""
    path = run / runs.HISTORY_FILE
    text = path.read_bytes()
    damaged = text[: text.rindex(b"\n", 0, len(text) - 1) + 12]  # "2,<seconds>…" cut after 10 characters
    path.write_bytes(damaged)
    return damaged


# ---- defect 5: evaluate --out DIR/m.json and the user's figures in DIR ------------------------------------
def test_evaluate_out_never_replaces_the_users_files_beside_it(finished_run, tmp_path, capsys):
    images = tmp_path / "images.npy"
    np.save(images, np.zeros((40, 32, 32), np.uint8))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "gallery.png").write_bytes(b"my own gallery")
    (mine / "two_sample_roc.pdf").write_bytes(b"my own paper figure")
    before = snapshot(tmp_path)
    code, stderr = main("evaluate", "--images", images, "--out", mine / "m.json", capsys=capsys)
    assert code == 2 and error_line(stderr) == (
        f"dcganlib: error: --out {mine / 'm.json'} would write the figures beside it, and 2 of their names exist in "
        f"{mine} (e.g. two_sample_roc.pdf); pass --overwrite to replace them, or give --out a path in another "
        "folder")
    assert snapshot(tmp_path) == before and not (mine / "m.json").exists()
    assert "evaluate:" not in stderr  # refused before any work


# ---- defect 6: train --overwrite and a user's file in RUN/grids (or RUN/generated) ---------------------------
def test_overwrite_deletes_only_dcganlibs_own_grids(run):
    assert runs.describe_artefacts(run).startswith("config.json, run.json, split.json, history.csv, grids/ (2 files)")
    assert runs.describe_artefacts(run).endswith("generated/ (2 files)")
    runs.clear_run_folder(run)
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.name != runs.LOCK_FILE) == [
        "generated", "generated/chosen.txt", "grids", "grids/favourite.txt", "notes.txt"]
    user_files_intact(run)
    (run / "grids" / "favourite.txt").unlink()
    runs.clear_run_folder(run)  # with nothing of the user's left, the folder goes too
    assert not (run / "grids").exists()


# ---- defect 7: RUN/tensorboard or RUN/evaluation a regular file --------------------------------------------
@pytest.mark.parametrize("folder", ["tensorboard", "evaluation"])
def test_a_file_in_place_of_a_run_folder_is_refused_before_any_work(folder, run, capsys):
    target = run / folder
    if target.is_dir():
        shutil.rmtree(target)
    target.write_text("the user's file")
    before = snapshot(run)
    for command in (("train", "--out", run, "--resume", "--epochs", 3), ("evaluate", run)):
        code, stderr = main(*command, capsys=capsys)
        assert code == 2 and error_line(stderr) == (
            f"dcganlib: error: {target} is a file where dcganlib keeps the run's "
            f"{runs.RUN_FOLDERS[folder]} folder; move or rename that file (dcganlib does not delete files it did "
            "not write), then run the command again"), command
        assert "decoding" not in stderr and "evaluate:" not in stderr  # before any work
    assert snapshot(run) == before  # config.json included: not rewritten


# ---- defect 8: history.csv with a cut last row --------------------------------------------------------------
@pytest.mark.slow
def test_a_cut_last_history_row_is_kept_aside_and_the_epoch_trained_again(run, finished_run, capsys):
    damaged = cut_last_row(run)
    with pytest.warns(runs.DamagedRecordWarning, match="last row was cut short"):
        assert [row["epoch"] for row in runs.read_history(run / runs.HISTORY_FILE)] == [1]
    code, stderr = main("train", "--out", run, "--resume", capsys=capsys)
    assert code == 0, stderr[-3000:]
    last = damaged.decode().splitlines()[-1]
    assert (f"dcganlib: note: {run / 'history.csv'}: its last row was cut short ({last!r}); "
            "the file is kept aside as history.csv.damaged and the row dropped; training continues from ckpt-1 and "
            "redoes the epochs after it") in stderr
    assert (run / "history.csv.damaged").read_bytes() == damaged
    rows = runs.read_history(run / runs.HISTORY_FILE)
    reference = runs.read_history(finished_run.run_dir / runs.HISTORY_FILE)
    assert [row["epoch"] for row in rows] == [1, 2] and set(rows[1]) == set(reference[1])  # complete rows
    assert rows[1]["d_loss"] == reference[1]["d_loss"]  # epoch 2 trained again from ckpt-1: the same numbers
    user_files_intact(run)


def test_a_history_damaged_before_its_last_row_is_refused(run, capsys):
    lines = (run / runs.HISTORY_FILE).read_text().splitlines()
    lines[1] = lines[1][:5]
    (run / runs.HISTORY_FILE).write_text("\n".join(lines) + "\n")
    before = snapshot(run)
    code, stderr = main("train", "--out", run, "--resume", "--epochs", 3, capsys=capsys)
    assert code == 2 and error_line(stderr).startswith(f"dcganlib: error: {run / 'history.csv'} line 2: ")
    assert "only a cut last row can be recovered" in error_line(stderr) and snapshot(run) == before


# ---- defect 9: a finished run whose checkpoints/ was deleted ----------------------------------------------------
def test_a_finished_run_without_checkpoints_is_diagnosed_truly_and_advice_keeps_the_generator(run, capsys):
    shutil.rmtree(run / "checkpoints")
    before = snapshot(run)
    code, stderr = main("train", "--out", run, "--resume", "--epochs", 3, capsys=capsys)
    line = error_line(stderr)
    assert code == 2 and line == (
        f"dcganlib: error: cannot resume {run}: its checkpoints/ folder is gone, though history.csv records 2 epochs "
        "and generator.keras is there (checkpoints deleted to save space?); a resume needs the checkpoints, so keep "
        "this run as it is — generate and evaluate still use generator.keras — and train more in a new run with "
        "another --out")
    assert "--overwrite" not in line and "stopped before its first epoch" not in line
    assert snapshot(run) == before


# ---- defect 10: a damaged run.json ---------------------------------------------------------------------------
def test_a_damaged_run_json_is_reported_not_read_as_missing(run):
    (run / runs.RUN_MANIFEST_FILE).write_bytes(b'{"status": "finished", "sess')
    with pytest.raises(RunFolderError, match=r"run.json is not valid JSON .*; a --resume keeps it aside as "
                                             r"run.json.damaged"):
        manifest.read_manifest(run)
    assert manifest.manifest_problem(run).startswith(f"{run / 'run.json'} is not valid JSON (JSONDecodeError: ")
    assert manifest.read_manifest(run.parent / "nowhere") is None  # absent is not damage


@pytest.mark.slow
def test_a_resume_keeps_a_damaged_run_json_aside_and_says_so(run, capsys):
    damaged = b'{"status": "finished", "sess'
    (run / runs.RUN_MANIFEST_FILE).write_bytes(damaged)
    code, stderr = main("train", "--out", run, "--resume", "--epochs", 3, capsys=capsys)
    assert code == 0, stderr[-3000:]
    assert f"dcganlib: note: {run / 'run.json'} is not valid JSON (JSONDecodeError: " in stderr
    assert "kept aside as run.json.damaged, a new run.json is written (it records this session only)" in stderr
    assert (run / "run.json.damaged").read_bytes() == damaged
    record = json.loads((run / runs.RUN_MANIFEST_FILE).read_text())
    assert record["epochs_completed"] == 3 and [s["first_epoch"] for s in record["sessions"]] == [3]
    user_files_intact(run)


# ---- defect 11: refusals name the flags of the command, errors name the run's config.json -----------------
def test_config_errors_name_the_runs_config_file(run, capsys):
    (run / runs.CONFIG_FILE).write_text('{"epochs": "4"}')
    for command in (("evaluate", run), ("train", "--out", run, "--resume")):
        code, stderr = main(*command, capsys=capsys)
        assert code == 2 and error_line(stderr).endswith(
            f"config key 'epochs' must be int, got '4' (in {run / 'config.json'})"), command


def test_evaluate_refusals_name_only_flags_evaluate_has(tmp_path, capsys):
    from dcganlib import cli

    evaluate_flags = {a for action in cli.build_parser()._subparsers._group_actions[0].choices["evaluate"]._actions
                      for a in action.option_strings}
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"not a png")
    (tmp_path / "small").mkdir()
    from PIL import Image

    Image.fromarray(np.full((20, 20), 99, np.uint8)).save(tmp_path / "small" / "a.png")
    np.save(tmp_path / "images.npy", np.full((40, 32, 32), 120, np.uint8))
    for reference in ("bad", "small"):
        code, stderr = main("evaluate", "--images", tmp_path / "images.npy", "--reference", tmp_path / reference,
                            "--out", tmp_path / "m.json", capsys=capsys)
        line = error_line(stderr)
        named = {word.strip("(),;:'") for word in line.split() if word.startswith(("--", "(--"))}
        assert code == 2 and named <= evaluate_flags, (line, named - evaluate_flags)


# ================================================================================================
# fuzz: every damaged record x every command that reads a run folder
def _garbage(path: Path) -> None:
    path.write_bytes(b'{"truncated": [1, 2')


def _a_file_instead(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    path.write_text("a file of the user's, where a folder was")


def _damage_first_row(run: Path) -> None:
    lines = (run / runs.HISTORY_FILE).read_text().splitlines()
    (run / runs.HISTORY_FILE).write_text("\n".join([lines[0], lines[1][:5], *lines[2:]]) + "\n")


DAMAGES = {  # record: how it is damaged
    "history.csv": lambda run: cut_last_row(run),
    "history.csv ": _damage_first_row,  # damage before the last row: not recoverable
    "run.json": lambda run: _garbage(run / runs.RUN_MANIFEST_FILE),
    "split.json": lambda run: _garbage(run / runs.SPLIT_FILE),
    "config.json": lambda run: _garbage(run / runs.CONFIG_FILE),
    "tensorboard/": lambda run: _a_file_instead(run / runs.TENSORBOARD_DIR),
    "evaluation/": lambda run: _a_file_instead(run / runs.EVALUATION_DIR),
    "checkpoints/": lambda run: shutil.rmtree(run / runs.CHECKPOINT_DIR),
}
COMMANDS = {
    "train --resume": lambda run, out: ["train", "--out", run, "--resume"],
    "evaluate": lambda run, out: ["evaluate", run, "--out", out / "metrics.json"],
    "generate": lambda run, out: ["generate", run, "--count", 4, "--out", out / "generated"],
}
#: The records evaluate's figures read (the curves over epochs): only with these does evaluate draw here; the
#: other cases test the records, not the drawing, so they pass --no-figures.
FIGURE_RECORDS = {"history.csv", "history.csv "}
#: (record, command) → (exit code, a phrase of stderr: the note or the one error line)
EXPECTED = {
    ("history.csv", "train --resume"): (0, "its last row was cut short"),
    ("history.csv", "evaluate"): (0, "its last row was cut short"),
    ("history.csv", "generate"): (0, ""),
    ("history.csv ", "train --resume"): (2, "columns expected; the file is damaged"),
    ("history.csv ", "evaluate"): (2, "columns expected; the file is damaged"),
    ("history.csv ", "generate"): (0, ""),
    ("run.json", "train --resume"): (0, "kept aside as run.json.damaged"),
    ("run.json", "evaluate"): (0, "metrics.json records run_manifest null with this reason"),
    ("run.json", "generate"): (0, ""),
    ("split.json", "train --resume"): (0, "kept aside as split.json.damaged"),
    ("split.json", "evaluate"): (0, ""),
    ("split.json", "generate"): (0, ""),
    ("config.json", "train --resume"): (2, "config.json is not valid JSON"),
    ("config.json", "evaluate"): (2, "config.json is not valid JSON"),
    ("config.json", "generate"): (0, ""),  # generator.keras is all it reads
    ("tensorboard/", "train --resume"): (2, "is a file where dcganlib keeps the run's TensorBoard folder"),
    ("tensorboard/", "evaluate"): (2, "is a file where dcganlib keeps the run's TensorBoard folder"),
    ("tensorboard/", "generate"): (0, ""),
    ("evaluation/", "train --resume"): (2, "is a file where dcganlib keeps the run's evaluation folder"),
    ("evaluation/", "evaluate"): (2, "is a file where dcganlib keeps the run's evaluation folder"),
    ("evaluation/", "generate"): (0, ""),
    ("checkpoints/", "train --resume"): (2, "its checkpoints/ folder is gone, though history.csv records 2 epochs"),
    ("checkpoints/", "evaluate"): (0, ""),
    ("checkpoints/", "generate"): (0, ""),
}


def test_the_damage_table_covers_every_record_and_command():
    assert set(EXPECTED) == {(record, command) for record in DAMAGES for command in COMMANDS}


_FIGURES: dict[str, tuple] = {}


@pytest.fixture
def quick_evaluation(monkeypatch):
    """These cases test the records, not the figures: the figures of the run's first evaluation here (its
    two-sample classifier trained 1 epoch instead of 6) serve every later one, so each evaluate costs its
    sampling (and its drawing, in the cases of :data:`FIGURE_RECORDS`) only."""
    import copy

    compute = evaluate.evaluate_sets

    def evaluate_sets(sets, **options):
        if "figures" not in _FIGURES:
            _FIGURES["figures"] = compute(sets, **{**options, "two_sample_epochs": 1})
        return copy.deepcopy(_FIGURES["figures"])

    monkeypatch.setattr(evaluate, "evaluate_sets", evaluate_sets)


@pytest.mark.parametrize("record, command", list(EXPECTED), ids=lambda x: x)
def test_every_damaged_record_under_every_command(record, command, run, tmp_path, quick_evaluation, capsys):
    DAMAGES[record](run)
    before = snapshot(run)
    out = tmp_path / "out"
    argv = COMMANDS[command](run, out) + (["--no-figures"] if command == "evaluate" and record not in FIGURE_RECORDS
                                          else [])
    code, stderr = main(*argv, capsys=capsys)
    want_code, phrase = EXPECTED[(record, command)]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert code == want_code, stderr[-3000:]
    assert phrase in stderr, stderr[-3000:]
    if code == 2:
        error_line(stderr)
        assert snapshot(run) == before  # refused before anything was written
    user_files_intact(run)
    damaged = record.strip().rstrip("/")
    if damaged in before:  # a damaged file (or the user's file where a folder was): where it was, or kept aside
        after = snapshot(run)
        assert before[damaged] in (after.get(damaged), after.get(damaged + runs.DAMAGED_SUFFIX)), damaged


def test_evaluating_a_run_that_another_process_trains_says_so(run, quick_evaluation, capsys):
    import subprocess
    import sys

    hold = ("import sys, filelock; lock = filelock.FileLock(sys.argv[1], timeout=0); lock.acquire(); "
            "print('ready', flush=True); sys.stdin.read()")  # as a training process holds it, until stdin closes
    holder = subprocess.Popen([sys.executable, "-c", hold, str(run / runs.LOCK_FILE)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert runs.training_elsewhere(run)
        code, stderr = main("evaluate", run, "--no-figures", capsys=capsys)
    finally:
        holder.stdin.close()
        holder.wait(60)
    assert code == 0, stderr[-3000:]
    assert f"dcganlib: note: another process is training {run} now (it holds train.lock)" in stderr
    assert json.loads((run / "evaluation" / "metrics.json").read_text())["source"]["training_in_progress"] is True
    assert not runs.training_elsewhere(run)
