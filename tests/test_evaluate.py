"""evaluate: a tiny trained run → metrics.json with definitions and counts, and the figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dcganlib import evaluate, runs
from dcganlib.config import smoke_config
from dcganlib.errors import ConfigError, RunFolderError

SIZE = 32


@pytest.fixture(scope="module")
def evaluated(finished_run, tmp_path_factory):
    """The shared finished run (40 train, 12 validate, 12 test images), copied and evaluated once."""
    run_dir = tmp_path_factory.mktemp("evaluated") / "tiny"
    shutil.copytree(finished_run.run_dir, run_dir)
    result = evaluate.evaluate_run(run_dir, count=24, seed=0, quiet=True)
    return run_dir, result


def test_metrics_json_holds_every_figure_with_definitions_and_counts(evaluated):
    run_dir, result = evaluated
    path = run_dir / "evaluation" / "metrics.json"
    on_disk = json.loads(path.read_text())
    assert on_disk == result
    assert on_disk["samples"]["generated"] == 24
    assert on_disk["samples"]["reference"] == 12 and on_disk["samples"]["calibration"] == 12
    assert on_disk["samples"]["train"] == 40
    assert "data range 2" in on_disk["definitions"]["ssim"]
    best = on_disk["best_match_ssim"]
    assert -1 <= best["generated"]["mean"] <= best["generated"]["max"] <= 1
    assert best["ratio_mean"] == pytest.approx(best["generated"]["mean"] / best["real_calibration"]["mean"])
    assert best["generated"]["count"] == 24 and best["real_calibration"]["count"] == 12
    div = on_disk["diversity"]
    assert 0 < div["real_mean_pairwise_ssim"] < 1
    assert div["ms_ssim"]["generated"]["available"] is False
    two = on_disk["two_sample_test"]
    assert 0 <= two["auc_ci95"][0] <= two["auc"] <= two["auc_ci95"][1] <= 1
    assert two["test_per_class"] == 12  # min(24 held-out real, 24 generated) / 2
    assert on_disk["fid_kid"]["available"] in (True, False)
    assert 0 <= on_disk["memorisation"]["fraction_closer_than_real_l2"] <= 1
    assert on_disk["seed"] == 0 and on_disk["image_shape"] == [SIZE, SIZE, 1]
    assert set(on_disk["timings_seconds"]) >= {"best_match_ssim", "two_sample_test", "memorisation"}


def test_evaluation_writes_the_figures(evaluated):
    run_dir, result = evaluated
    folder = run_dir / "evaluation"
    expected = {"ssim_histograms", "diversity", "closest_pairs", "roc", "ssim_over_epochs", "history"}
    assert {Path(name).stem for name in result["figures"]} == expected
    for stem in expected:
        for suffix in (".png", ".pdf"):
            assert (folder / f"{stem}{suffix}").stat().st_size > 1000


def test_training_history_has_the_tracker_columns(evaluated):
    run_dir, _ = evaluated
    rows = runs.read_history(run_dir / "history.csv")
    assert len(rows) == 2
    assert all(-1 <= row["ssim_best_match"] <= 1 and 0 < row["ssim_diversity"] <= 1 for row in rows)


def test_generated_images_are_seeded(evaluated, tmp_path):
    run_dir, first = evaluated
    again = evaluate.evaluate_run(run_dir, count=24, seed=0, out=tmp_path / "again.json", quiet=True)
    assert again["best_match_ssim"] == first["best_match_ssim"]
    assert again["two_sample_test"]["auc"] == first["two_sample_test"]["auc"]


def test_bad_run_folders_give_one_line_errors(tmp_path):
    with pytest.raises(RunFolderError, match="not found"):
        evaluate.evaluate_run(tmp_path / "missing")
    with pytest.raises(RunFolderError, match="config.json"):
        evaluate.evaluate_run(tmp_path)
    smoke_config(image_size=SIZE).to_json(tmp_path / "config.json")
    with pytest.raises(RunFolderError, match="generator"):
        evaluate.evaluate_run(tmp_path)
    with pytest.raises(ConfigError, match="--count"):
        evaluate.evaluate_run(tmp_path, count=3)
