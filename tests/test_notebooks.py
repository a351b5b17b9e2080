"""The notebooks as a student meets them: a visible mode, prose that cannot go stale, committed outputs
that stay small and quiet, figures that never overwrite images/ by accident, and verdicts printed from
results (dcganlib.report)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dcganlib import report
from dcganlib.config import REPORT_IMAGES, default_config, notebook_setup

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# ---- prose that cannot go stale ---------------------------------------------------------------------
#: A number in prose: a token of digits not glued to letters (R1, float32, MNI152 are names, not figures).
NUMBER = re.compile(r"(?<![\w.])[−+-]?\d+(?:[.,]\d+)*(?![\w])")
CITATION = re.compile(r"(?:\bet al\.?|[A-Z][\w-]+ & [A-Z][\w-]+),? \(?(?:19|20)\d\d[a-z]?\)?|\((?:19|20)\d\d\)")
CHAPTER = re.compile(r"\b[Cc]hapters? \d\b")
CODE_SPAN = re.compile(r"`[^`]*`")
LINK_TARGET = re.compile(r"\]\([^)]*\)")


def numbers_in_prose(markdown: str) -> list[str]:
    """Lines of a markdown cell that state a number outside headings, citations (``et al. 2015``),
    chapter references, code spans, link targets, tables and code blocks."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith(("#", "|", "    ")):
            continue
        prose = LINK_TARGET.sub("]", CODE_SPAN.sub("", CHAPTER.sub("", CITATION.sub("", line))))
        if NUMBER.search(prose):
            found.append(line)
    return found


def test_the_rule_catches_stated_results_and_lets_names_and_citations_pass():
    assert numbers_in_prose("tells the samples from real ones only about 60 % of the time")
    assert numbers_in_prose("G loss drifting from ≈ 3.0 to ≈ 3.5")
    assert numbers_in_prose("trained for 42 epochs")
    assert not numbers_in_prose("# 3 · Training\nThe DCGAN of Radford et al. (2015), Lopez-Paz & Oquab 2017, R1, float32, "
                                "`x = u8 / 127.5 − 1`, [docs](docs/x2.md), as in chapter 4.\n| a | 1 |")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_markdown_states_no_number_its_outputs_do_not_print(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    stated = [(index, line) for index, cell in enumerate(cells) if cell["cell_type"] == "markdown"
              for line in numbers_in_prose("".join(cell["source"]))]
    assert not stated, f"{notebook.name}: numbers in prose (print them from a code cell instead): {stated}"


# ---- committed outputs -----------------------------------------------------------------------------
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_are_small_quiet_and_without_progress_bars(notebook):
    assert notebook.stat().st_size < 2_000_000, f"{notebook.name} is {notebook.stat().st_size:,} bytes"
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", []))
            assert "\b" not in text and "\r" not in text, "a progress bar's repaints were committed"
            assert "Warning" not in text and "E0000" not in text and "I0000" not in text, text[:300]
            assert "image/gif" not in output.get("data", {}), "the GIF is embedded; link it instead"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_a_smoke_parameter_prints_its_banner_and_ends_with_a_verdict(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    parameters = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(parameters) == 1 and "SMOKE = None" in "".join(parameters[0]["source"])
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert any("report.banner(SETUP" in source for source in code[:3])
    assert "report." in code[-1] and "_verdict(" in code[-1]


# ---- the mode, and images/ ---------------------------------------------------------------------------
def test_only_the_documented_full_demo_run_writes_the_report_figures(monkeypatch):
    monkeypatch.delenv("DCGANLIB_SMOKE", raising=False)
    assert notebook_setup().images == REPORT_IMAGES and notebook_setup().writes_report_figures
    assert notebook_setup(track_ssim=True, verbose=2).writes_report_figures  # display settings do not count
    for other in (dict(data="/data/oasis"), dict(epochs=3), dict(image_size=128), dict(smoke=True)):
        setup = notebook_setup(**other)
        assert not setup.writes_report_figures, other
    assert notebook_setup(data="/data/oasis", run_dir="../runs/oasis").images == Path("../runs/oasis-images")
    assert notebook_setup(data="/data/oasis", images="../images").writes_report_figures  # asked explicitly
    monkeypatch.setenv("DCGANLIB_SMOKE", "1")
    assert notebook_setup().smoke and notebook_setup(smoke=False).writes_report_figures  # SMOKE beats the variable


def test_plain_pytest_is_smoke_mode():
    """What a student's plain ``pytest`` (no DCGANLIB_SMOKE) runs in: the smoke preset, so no test or
    notebook starts a full training or writes images/ (run in a child pytest without the variable)."""
    env = {k: v for k, v in os.environ.items() if k != "DCGANLIB_SMOKE"}
    env["DCGANLIB_PROBE_SMOKE"] = "1"
    child = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                            f"{__file__}::test_the_smoke_probe"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == 0, child.stdout[-2000:] + child.stderr[-2000:]
    assert "1 passed" in child.stdout


def test_the_smoke_probe():
    if os.environ.get("DCGANLIB_PROBE_SMOKE") != "1":
        pytest.skip("run by test_plain_pytest_is_smoke_mode in a child pytest")
    setup = notebook_setup()
    assert setup.smoke and not setup.writes_report_figures


# ---- banner and verdicts -----------------------------------------------------------------------------
def test_banner_names_the_mode_the_minutes_and_where_figures_go(monkeypatch):
    monkeypatch.delenv("DCGANLIB_SMOKE", raising=False)
    full = report.banner(notebook_setup(), 3)
    assert "FULL mode" in full and "../images" in full and re.search(r"expect about \d+ min", full)
    smoke = report.banner(notebook_setup(smoke=True), 3)
    assert "SMOKE mode" in smoke and "images/ folder is left alone" in smoke
    # the expected minutes scale with the epochs trained
    assert report.expected_minutes(notebook_setup(epochs=84), 3) > 1.9 * (report.expected_minutes(notebook_setup(), 3)
                                                                         - report.CHAPTER_SECONDS[3] / 60)


def test_ratio_words_follow_the_targets():
    assert report.ratio_words(0.9, 2.0) == "as good as real"
    assert report.ratio_words(1.9, 2.0) == "close to real"
    assert report.ratio_words(3.9, 2.0) == "short of real"
    assert report.ratio_words(4.1, 2.0) == "far from real"
    assert report.ratio_words(math.inf, 2.0) == "not measurable"
    assert [report.auc_words(a) for a in (0.55, 0.8, 0.99)] == ["hard to tell from real", "partly realistic",
                                                               "not yet realistic"]


def _metrics(auc: float, recall: float, spectrum: float, copied: float = 0.01) -> dict:
    pair = lambda g, r: {"generated": g, "real_reference": r}  # noqa: E731
    return {"two_sample_test": pair({"auc": auc}, {"auc": 0.52}),
            "feature_metrics": pair({"precision": 0.7, "recall": recall, "frechet_distance": 33.0},
                                    {"precision": 0.72, "recall": 0.95, "frechet_distance": 30.0}),
            "spectrum": pair(spectrum, 0.01), "tissue_intensity": pair(0.02, 0.007),
            "memorisation": pair({"fraction_closer_than_real_local": copied}, {"fraction_closer_than_real_local": 0.016})}


def test_evaluation_verdict_states_each_figure_beside_its_reference_and_does_not_flatter():
    text = report.evaluation_verdict(_metrics(auc=1.0, recall=0.5, spectrum=0.1))
    assert "AUC 1.00 (real reference 0.52): they are not yet realistic" in text
    assert "recall (diversity: kinds of real slices covered): 0.50 (real reference 0.95): 1.90×" in text
    assert "far from real" in text.split("texture")[1].splitlines()[0]  # 10× the real spectrum deviation
    assert "tissue intensity W1: 0.0200 (real reference 0.0070): 2.86×" in text and "short of real" in text
    assert "no sign of copying" in text and "1.0% of generated images" in text and "(real reference 1.6%)" in text
    assert "some images may be copies" in report.evaluation_verdict(_metrics(auc=1.0, recall=0.5, spectrum=0.1,
                                                                              copied=0.05))
    good = report.evaluation_verdict(_metrics(auc=0.55, recall=0.9, spectrum=0.012))
    assert "hard to tell from real" in good and "recall" in good and "far from real" not in good


def test_evaluation_verdict_says_whether_the_diversity_gap_is_beyond_sampling_noise():
    def diversity(generated, se=None):
        results = _metrics(auc=1.0, recall=0.5, spectrum=0.1)
        results["diversity"] = {"generated": generated, "real_reference": 0.373}
        if se is not None:
            results["diversity"]["standard_error"] = {"generated": se, "real_reference": 0.005}
        return [line for line in report.evaluation_verdict(results).splitlines() if "diversity (mean" in line][0]

    near = diversity(0.380, se=0.006)  # 0.007 apart, 0.89 combined errors
    assert "0.380 ± 0.006 (real reference 0.373 ± 0.005): 1.9% more alike than real images (less varied)" in near
    assert "within sampling noise (0.9 combined standard errors)" in near
    far = diversity(0.430, se=0.006)
    assert "15.3% more alike" in far and "beyond sampling noise (7.3 combined standard errors)" in far
    assert "less alike than real images (more varied)" in diversity(0.30, se=0.006)
    old_file = diversity(0.380)  # metrics.json from before the standard error: no claim about noise
    assert old_file.endswith("1.9% more alike than real images (less varied).") and "noise" not in old_file


def test_training_verdict_reads_the_run(finished_run):
    text = report.training_verdict(finished_run.run_dir)
    history_epochs = len((finished_run.run_dir / "history.csv").read_text().splitlines()) - 1
    assert text.startswith(f"{history_epochs} epochs.")
    assert "Best epoch by val_score" in text or "Quality was not tracked" in text


def test_data_verdict_counts_images_and_subjects_and_flags_a_shared_subject():
    audit = {"counts": {"train": 10, "validate": 14, "test": 3}, "subject_counts": {"train": 4, "validate": 2, "test": 1},
             "subjects": {"train": ["a", "b", "c", "d"], "validate": ["e", "f"], "test": ["g"]}}
    assert report.data_verdict(audit).splitlines() == [
        "The generator will learn from 10 training images of 4 subjects; 14 validate and 3 test images of 3 other "
        "subjects are held out to grade it.", "No subject is in two splits."]
    audit["subjects"]["test"] = ["a"]
    assert "WARNING: 1 subject(s)" in report.data_verdict(audit)
    audit["counts"]["validate"] = 5
    assert "fewer than" in report.data_verdict(audit)


def test_ci_never_deletes_a_developers_venv():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "rm -rf .venv" not in ci and "--exclude=./.venv" in ci and "mktemp" in ci


def test_default_config_is_what_the_banner_scales():
    assert default_config().image_size ** 2 == 64 * 64  # report.MEASURED_EPOCH_SECONDS was measured at 64 px


def _row(recipe: str, epochs: int, score: float, recall: float, spectrum: float, scale: float = 1.0) -> dict:
    """A curves.budget_table row; ``scale`` < 1 makes FD, KID, W1 smaller and precision higher (all better)."""
    figure = lambda mean, real: {"mean": mean, "min": mean, "max": mean, "real_reference": real}  # noqa: E731
    return {"recipe": recipe, "budget_images": epochs * 1600, "budget_epochs": float(epochs), "seeds": [1, 42],
            "epoch": [epochs, epochs], "val_score": figure(score, 1.0), "val_fd": figure(50.0 * scale, 49.8),
            "val_kid": figure(0.05 * scale, 0.05), "val_precision": figure(0.75 / scale, 0.74),
            "val_recall": figure(recall, 0.95), "val_spectrum": figure(spectrum, 0.015),
            "val_tissue_w1": figure(0.015 * scale, 0.022)}


def test_compute_verdict_says_per_budget_how_far_from_real_and_whether_longer_training_helps_every_figure():
    rows = [_row("long", 42, 2.2, 0.68, 0.2), _row("long", 168, 1.4, 0.85, 0.06, scale=0.9),
            _row("default", 42, 1.7, 0.72, 0.09), _row("default", 168, 1.6, 0.63, 0.065, scale=0.9)]
    lines = report.compute_verdict(rows, default_epochs=42).splitlines()
    assert lines[0] == "long (seed 1, 42):"
    assert lines[1].startswith("- 1× the default budget (67,200 images): score 2.20; Fréchet distance 50 (close to real)")
    assert "recall 0.68 (short of real)" in lines[1] and "texture (spectrum deviation) 0.2 (far from real)" in lines[1]
    assert lines[2].startswith("- 4× the default budget (268,800 images): score 1.40; Fréchet distance 45 (as good")
    assert lines[3] == "  Training 4× as long improves every tracked figure."
    assert lines[4] == "default (seed 1, 42):"
    assert lines[7] == "  Training 4× as long does not improve recall."  # recall fell: not every figure
    assert report.compute_verdict(rows, 42, recipes=["default"]).splitlines() == lines[4:]


def test_longer_training_sentences_give_each_recipes_verdict_alone():
    rows = [_row("long", 42, 2.2, 0.68, 0.2), _row("long", 168, 1.4, 0.85, 0.06, scale=0.9),
            _row("default", 42, 1.7, 0.72, 0.09), _row("default", 168, 1.6, 0.63, 0.065, scale=0.9),
            _row("short-only", 42, 1.7, 0.72, 0.09)]  # no longer budget: no verdict
    assert report.longer_training_sentences(rows, default_epochs=42) == [
        "long (seed 1, 42): Training 4× as long improves every tracked figure.",
        "default (seed 1, 42): Training 4× as long does not improve recall."]
    assert report.longer_training_sentences(rows, default_epochs=39) == []  # no row at the default budget


def test_a_gain_inside_the_seeds_spread_is_not_called_an_improvement():
    short, long = _row("r", 42, 1.8, 0.70, 0.10), _row("r", 168, 1.4, 0.80, 0.05, scale=0.9)
    assert report.longer_training_verdict(short, long) == ([], [], [])  # two seeds each, no spread: all improve
    # recall 0.70 (0.62-0.78) -> 0.80 (0.75-0.85): better on the mean, but seed ranges overlap
    short["val_recall"].update(min=0.62, max=0.78)
    long["val_recall"].update(min=0.75, max=0.85)
    assert report.longer_training_verdict(short, long) == ([], ["val_recall"], [])
    text = report.compute_verdict([short, long], default_epochs=42)
    assert text.endswith("Training 4× as long improves recall on the mean only, within the seeds' spread.")
    long["val_recall"]["min"] = 0.79  # now every seed of the long budget beats every seed of the short one
    assert report.longer_training_verdict(short, long) == ([], [], [])
    # with one seed the spread is unknown and the means decide
    long["val_recall"]["min"] = 0.75
    for row in (short, long):
        row["seeds"] = [42]
    assert report.longer_training_verdict(short, long) == ([], [], [])
    # a figure worse on the mean and another within the spread: both said
    for row in (short, long):
        row["seeds"] = [1, 42]
    long["val_spectrum"]["mean"] = 0.2
    assert "does not improve texture (spectrum deviation); it improves recall on the mean only" in \
        report.compute_verdict([short, long], default_epochs=42)


def test_a_figure_held_at_the_real_reference_counts_as_improved_and_is_named():
    short, long = _row("r", 42, 1.8, 0.70, 0.10), _row("r", 168, 1.4, 0.80, 0.05, scale=0.9)
    long["val_tissue_w1"]["mean"] = 0.020  # worse than 0.015, but both at or below the real 0.022
    assert report.longer_training_verdict(short, long) == ([], [], ["val_tissue_w1"])
    long["val_tissue_w1"]["mean"] = 0.030  # now worse than real at the long budget: not improved
    assert report.longer_training_verdict(short, long) == (["val_tissue_w1"], [], [])
    long["val_tissue_w1"]["mean"] = 0.020
    text = report.compute_verdict([short, long], default_epochs=42)
    assert text.endswith("improves every tracked figure (contrast (tissue W1) as good as real at both budgets).")
