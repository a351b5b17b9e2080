"""evaluate: a tiny trained run → metrics.json with every figure beside its real reference, the figures,
and ``evaluate --images`` for any folder or .npy of generated images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcganlib import evaluate, runs
from dcganlib.config import smoke_config
from dcganlib.errors import ConfigError, DataError, RunFolderError
from helpers import error_line, main

SIZE = 32
FIGURES = ("two_sample_test", "feature_metrics", "spectrum", "tissue_intensity", "best_match_ssim", "paired_ssim",
           "diversity", "ms_ssim", "memorisation")


@pytest.fixture(scope="module")
def evaluated(finished_run, tmp_path_factory):
    """The shared finished run (40 train, 12 validate, 12 test images), copied and evaluated once."""
    run_dir = tmp_path_factory.mktemp("evaluated") / "tiny"
    shutil.copytree(finished_run.run_dir, run_dir)
    result = evaluate.evaluate_run(run_dir, seed=0, quiet=True)
    return run_dir, result


def test_metrics_json_holds_every_figure_beside_its_real_reference(evaluated):
    run_dir, result = evaluated
    on_disk = json.loads((run_dir / "evaluation" / "metrics.json").read_text())
    assert on_disk == result
    for figure in FIGURES:
        assert set(on_disk[figure]) >= {"generated", "real_reference"}, figure
        assert figure in on_disk["definitions"], figure
    errors = on_disk["diversity"]["standard_error"]
    assert set(errors) == {"generated", "real_reference"} and all(0 < e < 0.2 for e in errors.values()), errors
    # The tiny data is not the demo: the reference is made of subject halves, and says so.
    assert on_disk["references"]["method"] == "subject-halves"
    assert "half" in on_disk["references"]["sources"]["stand_in"]
    samples = on_disk["samples"]
    assert samples["train"] == 40 and samples["heldout"] == 24
    assert samples["generated_train"] == 40 and samples["generated_heldout"] == 24  # as many as real, each side
    assert samples["reference"] == samples["stand_in"] == samples["generated_figures"] == 12
    assert samples["reference_test"] == {"train_real": 20, "train_stand_in": 20, "test_real": 12, "test_stand_in": 12}
    for name in ("generated", "real_reference"):
        two = on_disk["two_sample_test"][name]
        assert 0 <= two["auc_ci95"][0] <= two["auc"] <= two["auc_ci95"][1] <= 1
        assert two["accuracy_ci95"][0] <= two["accuracy"] <= two["accuracy_ci95"][1] and 0 < two["p_value"] <= 1
        features = on_disk["feature_metrics"][name]
        assert features["frechet_distance"] >= 0 and all(0 <= features[k] <= 1 for k in ("precision", "recall", "coverage"))
        assert on_disk["spectrum"][name] >= 0 and 0 <= on_disk["tissue_intensity"][name] <= 1
        best = on_disk["best_match_ssim"][name]
        assert -1 <= best["mean"] <= best["max"] <= 1 and best["count"] == 12
        assert 0 <= on_disk["memorisation"][name]["fraction_closer_than_real_l2"] <= 1
        assert 0 <= on_disk["memorisation"][name]["fraction_closer_than_real_local"] <= 1
    assert on_disk["two_sample_test"]["generated"]["test_counts"] == {"real": 24, "candidate": 24}
    best = on_disk["best_match_ssim"]
    assert best["ratio_mean"] == pytest.approx(best["generated"]["mean"] / best["real_reference"]["mean"])
    assert on_disk["ms_ssim"]["generated"]["available"] is False
    assert on_disk["fid_kid"]["available"] in (True, False)
    assert on_disk["seed"] == 0 and on_disk["image_shape"] == [SIZE, SIZE, 1]
    assert set(on_disk["timings_seconds"]) >= {"two_sample_test", "feature_metrics", "memorisation", "figures"}


def test_evaluation_writes_the_figures(evaluated):
    run_dir, result = evaluated
    folder = run_dir / "evaluation"
    expected = {"two_sample_roc", "power_spectrum", "tissue_intensity", "feature_metrics", "ssim_histograms",
                "diversity", "closest_pairs", "gallery", "ssim_over_epochs", "history"}
    assert {Path(name).stem for name in result["figures"]} == expected == set(runs.EVALUATION_FIGURES)
    for stem in expected:
        for suffix in (".png", ".pdf"):
            assert (folder / f"{stem}{suffix}").stat().st_size > 1000


def test_summary_puts_each_figure_beside_its_real_reference(evaluated):
    _, result = evaluated
    text = evaluate.summary_text(result)
    header, *rows = text.splitlines()
    assert "generated" in header and "real reference" in header
    for label in ("two-sample AUC", "Frechet distance, random-CNN features", "precision", "recall",
                  "high-frequency spectrum deviation", "tissue intensity", "best-match SSIM", "memorisation"):
        assert any(row.startswith(label) for row in rows), label
    assert all("FID" not in row for row in rows if "random-CNN" in row)  # offline features are never called FID


def test_training_history_has_the_tracker_columns(evaluated):
    run_dir, _ = evaluated
    rows = runs.read_history(run_dir / "history.csv")
    assert len(rows) == 2
    assert all(-1 <= row["ssim_best_match"] <= 1 and 0 < row["ssim_diversity"] <= 1 for row in rows)


def test_evaluation_is_seeded_and_no_figures_changes_no_number(evaluated, tmp_path):
    run_dir, first = evaluated
    folder = run_dir / "evaluation"
    before = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    again = evaluate.evaluate_run(run_dir, seed=0, out=tmp_path / "again.json", quiet=True, figures=False)
    assert again["figures"] == [] and again["figures_dir"] is None and "figures" not in again["timings_seconds"]
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == before  # nothing drawn or touched
    assert sorted(path.name for path in tmp_path.iterdir()) == ["again.json"]
    for figure in FIGURES + ("fid_kid", "samples", "references", "notes", "generator"):
        assert again[figure] == first[figure], figure


def test_bad_run_folders_give_one_line_errors(tmp_path):
    with pytest.raises(RunFolderError, match="not found"):
        evaluate.evaluate_run(tmp_path / "missing")
    with pytest.raises(RunFolderError, match="config.json"):
        evaluate.evaluate_run(tmp_path)
    smoke_config(image_size=SIZE).to_json(tmp_path / "config.json")
    with pytest.raises(RunFolderError, match="generator"):
        evaluate.evaluate_run(tmp_path)


# ---- evaluate --images: any tool's images ----------------------------------------------------------
def _sample_pngs(finished_run, folder: Path, count: int = 64) -> Path:
    from dcganlib.pixels import to_uint8
    from dcganlib.sampling import sample

    folder.mkdir(parents=True)
    for i, image in enumerate(to_uint8(sample(finished_run.generator, count, seed=5))):
        Image.fromarray(image[..., 0]).save(folder / f"img_{i:03d}.png")
    return folder


def test_images_folder_and_npy_give_the_same_figures(finished_run, tmp_path, capsys):
    data = json.loads((finished_run.run_dir / runs.CONFIG_FILE).read_text())["data"]
    pngs = _sample_pngs(finished_run, tmp_path / "pngs")
    stack = np.stack([np.asarray(Image.open(p)) for p in sorted(pngs.iterdir())])
    np.save(tmp_path / "stack.npy", stack)
    code, stderr = main("evaluate", "--images", pngs, "--reference", data, capsys=capsys)
    assert code == 0, stderr[-3000:]
    from_pngs = json.loads((tmp_path / "pngs-evaluation" / "metrics.json").read_text())
    drawn = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "pngs-evaluation").iterdir()}
    # Beside the figures of the PNGs: --no-figures draws none, so it replaces none and is not refused.
    code, stderr = main("evaluate", "--images", tmp_path / "stack.npy", "--reference", data, "--no-figures",
                        "--out", tmp_path / "pngs-evaluation" / "npy.json", capsys=capsys)
    assert code == 0, stderr[-3000:]
    assert {path.name: path.stat().st_mtime_ns for path in (tmp_path / "pngs-evaluation").iterdir()
            if path.name != "npy.json"} == drawn
    from_npy = json.loads((tmp_path / "pngs-evaluation" / "npy.json").read_text())
    assert from_npy["figures"] == [] and from_npy["figures_dir"] is None
    assert from_pngs["source"]["images"] == str(pngs) and from_npy["samples"] == from_pngs["samples"]
    assert from_pngs["samples"]["generated_train"] + from_pngs["samples"]["generated_heldout"] == 64
    for figure in ("spectrum", "tissue_intensity", "best_match_ssim", "feature_metrics"):
        assert from_npy[figure] == from_pngs[figure], figure
    assert (tmp_path / "pngs-evaluation" / "two_sample_roc.png").is_file()


def test_images_are_refused_with_one_line(finished_run, tmp_path, capsys):
    data = json.loads((finished_run.run_dir / runs.CONFIG_FILE).read_text())["data"]
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "few.npy", np.zeros((5, 32, 32), np.uint8))
    np.save(tmp_path / "tiny.npy", np.zeros((40, 8, 8), np.uint8))
    for argv, message in (
        (("--images", tmp_path / "nowhere"), "does not exist"),
        (("--images", tmp_path / "empty"), "empty"),
        (("--images", tmp_path / "tiny.npy", "--reference", data), "at least 16 px"),
        (("--images", tmp_path / "few.npy", "--reference", data), "too few"),
        ((finished_run.run_dir, "--images", tmp_path / "few.npy"), "not both"),
    ):
        code, stderr = main("evaluate", *argv, capsys=capsys)
        assert code == 2 and message in error_line(stderr), (argv, stderr[-2000:])
    assert not (tmp_path / "few.npy-evaluation").exists()
    with pytest.raises(DataError):
        evaluate.read_generated(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="not both"):
        from dcganlib import cli

        cli._evaluate(cli.build_parser().parse_args(["evaluate"]))


def test_reference_folder_replaces_the_held_out_images(finished_run, tmp_path):
    data = Path(json.loads((finished_run.run_dir / runs.CONFIG_FILE).read_text())["data"])
    run = tmp_path / "run"
    shutil.copytree(finished_run.run_dir, run)
    result = evaluate.evaluate_run(run, reference=data / "keras_png_slices_test", quiet=True, figures=False)
    assert result["samples"]["heldout"] == 12 and result["samples"]["stand_in"] == 6
    assert result["references"]["sources"]["heldout"] == f"every image under {data / 'keras_png_slices_test'}"
    with pytest.raises(DataError, match="does not exist"):
        evaluate.evaluate_run(run, reference=tmp_path / "nowhere", quiet=True)


# ---- one score per image set, whatever the file format ------------------------------------------------
@pytest.fixture(scope="module")
def same_images(finished_run, tmp_path_factory):
    """The same 200 generated images (uint8, 32 px) saved in every format a tool may use."""
    from dcganlib.pixels import to_uint8
    from dcganlib.sampling import sample

    root = tmp_path_factory.mktemp("formats")
    u8 = to_uint8(sample(finished_run.generator, 200, seed=7))[..., 0]
    (root / "pngs").mkdir()
    for i, image in enumerate(u8):
        Image.fromarray(image).save(root / "pngs" / f"img_{i:03d}.png")
    np.save(root / "u8.npy", u8)
    np.save(root / "keras.npy", (u8.astype(np.float32) / 127.5 - 1)[..., None])  # predict(): (N, H, W, 1) in [-1, 1]
    np.save(root / "torch.npy", (u8.astype(np.float32) / 255)[:, None])  # (N, 1, H, W) in [0, 1]
    np.save(root / "unit.npy", u8.astype(np.float64) / 255)
    np.save(root / "u16.npy", u8.astype(np.uint16) * 257)
    (root / "pngs16").mkdir()
    for i, image in enumerate(u8):
        Image.fromarray(image.astype(np.uint16) * 257).save(root / "pngs16" / f"img_{i:03d}.png")  # 16-bit grey
    return root, u8


@pytest.mark.parametrize("name, value_range", [("pngs", None), ("u8.npy", None), ("keras.npy", None),
                                               ("keras.npy", "-1,1"), ("unit.npy", "0,1"), ("torch.npy", "0,1"),
                                               ("u16.npy", None), ("pngs16", None)])
def test_the_same_images_are_read_the_same_in_every_format(name, value_range, same_images):
    root, u8 = same_images
    got = evaluate.read_generated(root / name, value_range)
    assert got.shape == (200, SIZE, SIZE, 1) and got.dtype == np.uint8
    np.testing.assert_array_equal(got[..., 0], u8)  # not stretched: exactly the saved grey levels


def test_float_images_in_0_1_are_scored_with_value_range_like_the_pngs(same_images, finished_run, tmp_path, capsys):
    root, u8 = same_images
    from dcganlib.metrics import artefacts

    data = json.loads((finished_run.run_dir / runs.CONFIG_FILE).read_text())["data"]
    out = tmp_path / "unit" / "metrics.json"
    code, stderr = main("evaluate", "--images", root / "unit.npy", "--value-range", "0,1", "--reference", data,
                        "--out", out, "--no-figures", capsys=capsys)
    assert code == 0, stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["source"]["value_range"] == "0,1" and "generated_values" in result["definitions"]
    assert result["notes"] == {"generated": [], "real_reference": []}
    # The figures are those of the uint8 images themselves: the tissue histogram of the held-out share.
    sets, _ = evaluate.image_sets(root / "u8.npy", reference=data)
    expected = artefacts.tissue_wasserstein(artefacts.tissue_histogram(sets.generated),
                                            artefacts.tissue_histogram(sets.reference))
    assert result["tissue_intensity"]["generated"] == pytest.approx(expected, abs=1e-12)


def test_ambiguous_out_of_range_and_non_finite_images_are_refused_in_one_line(tmp_path, capsys):
    images = np.linspace(0, 1, 40 * SIZE * SIZE, dtype=np.float32).reshape(40, SIZE, SIZE)
    np.save(tmp_path / "unit.npy", images)
    np.save(tmp_path / "wide.npy", images * 4 - 2)
    broken = images * 2 - 1
    broken[3, 5, 7] = np.nan
    broken[9, 0, 0] = np.inf
    np.save(tmp_path / "nan.npy", broken)
    for argv, message in (
        (("unit.npy",), "fit both [-1, 1] and [0, 1]; say which with --value-range 0,1 or --value-range=-1,1"),
        (("unit.npy", "--value-range=-1,1"), None),  # declared: read, not refused here (reference missing)
        (("wide.npy",), "float values in [-2, 2]; generated float images must lie in [-1, 1] or [0, 1]"),
        (("wide.npy", "--value-range", "0,1"), "outside --value-range 0,1"),
        (("nan.npy",), "holds 2 NaN/Inf values (the first in image 3, row 5, column 7)"),
    ):
        if message is None:
            np.testing.assert_array_equal(evaluate.read_generated(tmp_path / argv[0], "-1,1")[0, 0, :2, 0], [128, 128])
            continue
        code, stderr = main("evaluate", "--images", tmp_path / argv[0], *argv[1:], "--out", tmp_path / "m.json",
                            capsys=capsys)
        assert code == 2 and message in error_line(stderr), (argv, stderr[-2000:])
    (tmp_path / "folder").mkdir()
    np.save(tmp_path / "folder" / "a.npy", images[:20] * 2 - 1)
    np.save(tmp_path / "folder" / "b.npy", broken[:20])
    with pytest.raises(DataError, match=r"folder holds 2 NaN/Inf values \(the first in image 3 of b.npy, row 5, "):
        evaluate.read_generated(tmp_path / "folder")
    code, stderr = main("evaluate", tmp_path, "--value-range", "0,1", capsys=capsys)
    assert code == 2 and "--value-range describes the files of --images" in error_line(stderr)
    assert not (tmp_path / "m.json").exists()


def test_an_all_black_set_is_scored_at_its_worst_with_the_reason(finished_run, tmp_path, capsys):
    data = json.loads((finished_run.run_dir / runs.CONFIG_FILE).read_text())["data"]
    np.save(tmp_path / "black.npy", np.full((48, SIZE, SIZE, 1), -1.0, np.float32))  # a collapsed generator
    code, stderr = main("evaluate", "--images", tmp_path / "black.npy", "--reference", data, capsys=capsys)
    assert code == 0 and "Traceback" not in stderr, stderr[-3000:]
    result = json.loads((tmp_path / "black.npy-evaluation" / "metrics.json").read_text())
    assert result["tissue_intensity"]["generated"] == 1.0 and result["tissue_intensity"]["real_reference"] < 1
    assert result["notes"]["real_reference"] == []
    assert result["notes"]["generated"] == [
        "tissue_intensity: no pixel above 5% of the range (no tissue, e.g. all black); the distance is set to 1, "
        "its maximum",
        "every image is constant (all pixels 0): no structure, so the spectrum, SSIM and feature figures are at or "
        "near their worst"]
    assert result["diversity"]["generated"] == pytest.approx(1.0)
    assert result["feature_metrics"]["generated"]["recall"] == 0.0


def test_too_few_train_or_held_out_images_give_one_line_before_any_figure():
    from dcganlib.references import subject_halves_roles

    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 1), dtype=np.uint8)
    groups = np.array(list("aabbccdd"))
    with pytest.raises(DataError, match="at least 4 images in the train split; got 3"):
        subject_halves_roles(images[:3], groups[:3], images, groups, 0)
    with pytest.raises(DataError, match="at least two subjects; got 3"):
        subject_halves_roles(images, groups, images[:3], groups[:3], 0)
    assert subject_halves_roles(images[:4], groups[:4], images[:4], groups[:4], 0).method == "subject-halves"
