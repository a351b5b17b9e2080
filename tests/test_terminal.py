"""What the user's terminal shows: no TensorFlow log lines unless asked for, our warnings, progress lines.

The subprocess tests start fresh interpreters with an environment as a new shell has it (no
``TF_CPP_MIN_LOG_LEVEL``); the CLI's own runs (``train --smoke``, ``evaluate``) are checked in test_cli.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from dcganlib import terminal
from dcganlib.progress import PROGRESS_ENV, Progress
from helpers import tensorflow_log_lines

def fresh_pythons(*runs: tuple[str, dict[str, str]]) -> list[subprocess.CompletedProcess]:
    """``python -c code`` for each ``(code, env)``, all at once, each with the environment of a new shell (no
    TF_CPP_MIN_LOG_LEVEL) plus its ``env``; their results in order. Started together, their TensorFlow
    imports overlap instead of queueing."""
    base = {k: v for k, v in os.environ.items()
            if k not in (terminal.LEVEL_ENV, terminal.VERBOSE_ENV, PROGRESS_ENV)}
    started = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**base, "CUDA_VISIBLE_DEVICES": "", **env}, text=True) for code, env in runs]
    outputs = [process.communicate(timeout=300) for process in started]  # sets each returncode
    return [subprocess.CompletedProcess(process.args, process.returncode, *output)
            for process, output in zip(started, outputs)]


SAMPLE = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796179047.467518   11771 port.cc:153] oneDNN custom operations are on.
I0000 00:00:1796179047.842908   11771 cpu_feature_guard.cc:227] This TensorFlow binary is optimized
To enable the following instructions: AVX2 AVX512F, in other operations, rebuild TensorFlow.
W0000 00:00:1796179047.900000   11771 some_module.cc:12] a warning
E0000 00:00:1796179053.702182   11771 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)
dcganlib: a line of ours
"""


@pytest.mark.parametrize("level, kept", [
    (0, ["WARNING:", "I0000", "I0000", "To", "W0000", "E0000", "dcganlib:"]),
    (1, ["To", "W0000", "E0000", "dcganlib:"]),
    (2, ["To", "E0000", "dcganlib:"]),
    (3, ["To", "dcganlib:"]),
])
def test_filter_drops_only_the_records_below_the_level(level, kept):
    # A line that does not start a record is never dropped (here the continuation of an INFO record,
    # which TensorFlow itself hides at levels >= 1): nothing but log records can be lost.
    lines = terminal.filter_log_text(SAMPLE, level).splitlines()
    assert [line.split(" ")[0] for line in lines] == kept
    assert terminal.filter_log_text(SAMPLE, 0) == SAMPLE


def test_filtered_stderr_catches_what_cpp_writes_to_the_file_descriptor(capfd):
    with terminal.filtered_stderr(3):
        os.write(2, b"I0000 00:00:1796179047.467518   11771 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"not a log record\n")
    err = capfd.readouterr().err
    assert err == "not a log record\n"


def test_set_verbose_gives_tensorflow_its_own_defaults_back(monkeypatch):
    monkeypatch.delenv(terminal.LEVEL_ENV, raising=False)
    monkeypatch.delenv(terminal.VERBOSE_ENV, raising=False)
    monkeypatch.setattr(terminal, "_level_set_by_us", False)
    terminal.quiet_tensorflow()  # TensorFlow is imported already in this process: only the variable
    assert os.environ[terminal.LEVEL_ENV] == str(terminal.QUIET_LEVEL)
    terminal.set_verbose()
    assert terminal.LEVEL_ENV not in os.environ and terminal.verbose_requested()
    # A level the user chose is never replaced, verbose or not.
    monkeypatch.setenv(terminal.LEVEL_ENV, "1")
    monkeypatch.delenv(terminal.VERBOSE_ENV)
    terminal.quiet_tensorflow()
    terminal.set_verbose()
    assert os.environ[terminal.LEVEL_ENV] == "1"


IMPORT_AND_LIST_DEVICES = "import tensorflow as tf; tf.config.list_physical_devices(); print('imported')"


def test_importing_dcganlib_first_keeps_tensorflow_quiet_and_our_warnings_visible():
    """Against TensorFlow on its own in a fresh process: every C++ log line it prints is gone after
    ``import dcganlib``, while Python warnings and a level the user sets (or ``DCGANLIB_VERBOSE=1``)
    bring back exactly TensorFlow's own behaviour."""
    raw, quiet, user_level, verbose = fresh_pythons(
        (IMPORT_AND_LIST_DEVICES, {}),
        ("import dcganlib, warnings; " + IMPORT_AND_LIST_DEVICES + "; warnings.warn('dcganlib: a warning of ours')",
         {}),
        ("import dcganlib; " + IMPORT_AND_LIST_DEVICES, {"TF_CPP_MIN_LOG_LEVEL": "0"}),
        ("import dcganlib; " + IMPORT_AND_LIST_DEVICES, {"DCGANLIB_VERBOSE": "1"}))
    for done in (raw, quiet, user_level, verbose):
        assert done.returncode == 0 and done.stdout.strip() == "imported", done.stderr[-2000:]
    assert tensorflow_log_lines(quiet.stderr) == [], quiet.stderr
    assert "UserWarning: dcganlib: a warning of ours" in quiet.stderr
    baseline = tensorflow_log_lines(raw.stderr)
    if not baseline:
        pytest.skip("TensorFlow prints no log lines on this machine: nothing to compare verbose output with")

    def sources(lines):  # "port.cc:153" etc.: timestamps and thread ids differ between processes
        return sorted(re.sub(r"^\S+ \S+\s+\d+ ", "", line).split("]")[0] for line in lines)
    assert sources(tensorflow_log_lines(user_level.stderr)) == sources(baseline)
    assert sources(tensorflow_log_lines(verbose.stderr)) == sources(baseline)


# ------------------------------------------------------------------------------------------------
# progress
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_line_per_stage_in_a_log():
    stream = io.StringIO()
    with Progress("decoding 3 files", total=3, unit="files", stream=stream) as bar:
        for _ in range(3):
            bar.update()
    with Progress("two-sample test", stream=stream):
        pass
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    assert re.fullmatch(r"dcganlib: decoding 3 files: 3/3 files, done in \d+\.\d s", lines[0])
    assert re.fullmatch(r"dcganlib: two-sample test: done in \d+\.\d s", lines[1])


def test_progress_redraws_one_bar_in_a_terminal_and_ends_its_line():
    stream = Terminal()
    with Progress("sampling 4 images", total=4, unit="images", stream=stream) as bar:
        bar.update(2)
        bar.update(2)
    text = stream.getvalue()
    assert text.startswith("\rdcganlib: sampling 4 images [") and text.endswith("\n") and text.count("\n") == 1
    final = text.split("\r")[-1]
    assert "[" + "#" * 24 + "] 4/4 images" in final and " done in " in final


def test_progress_of_a_failed_stage_ends_the_line_and_claims_nothing():
    stream, log = Terminal(), io.StringIO()
    with pytest.raises(RuntimeError):
        with Progress("a stage", total=2, stream=stream), Progress("a stage", stream=log):
            raise RuntimeError("boom")
    assert stream.getvalue().endswith("\n") and "done" not in stream.getvalue()
    assert log.getvalue() == ""


def test_progress_can_be_switched_off(monkeypatch):
    stream = Terminal()
    monkeypatch.setenv(PROGRESS_ENV, "0")
    with Progress("a stage", total=1, stream=stream) as bar:
        bar.update()
    with Progress("another", stream=stream, enabled=True):
        pass
    assert stream.getvalue() == ""


def test_first_decode_of_a_folder_reports_progress_and_a_cached_load_does_not(make_png_folder, tmp_path, capsys):
    from dcganlib.config import smoke_config
    from dcganlib.data import load_dataset

    folder = make_png_folder(subjects=6, slices=2, size=32)
    config = smoke_config(data=str(folder), image_size=32, cache_dir=str(tmp_path / "cache"))
    capsys.readouterr()
    load_dataset(config)
    first = capsys.readouterr().err
    assert re.search(r"dcganlib: decoding 12 files under \S+ at 32 px: 12/12 files, done in \d", first), first
    load_dataset(config)
    assert "decoding" not in capsys.readouterr().err


def test_demo_build_reports_progress_per_subject(tmp_path, capsys):
    from dcganlib.data.demo import build_demo_dataset

    build_demo_dataset(tmp_path / "demo", count=40, size=32, seed=0)
    err = capsys.readouterr().err
    assert re.search(r"dcganlib: building the demo dataset \(40 slices of 32 px\): 10/10 subjects, done in", err), err
