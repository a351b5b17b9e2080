"""Evaluate a trained run: ``python -m dcganlib evaluate RUN_DIR`` → ``RUN_DIR/evaluation/``.

Which real images play which role (default, the run's own split from ``config.json``):

* **reference** — the held-out *test* split: generated images are compared with it (best-match SSIM,
  paired SSIM) and its own pairwise SSIM is the real diversity;
* **calibration** — the held-out *validate* split: its best-match SSIM against the same reference is
  what a perfect generator would reach (real images of other subjects). If the run has no validate
  images, the test split is halved (seeded): one half is the reference, the other the calibration;
* **held-out real** = reference ∪ calibration: the real side of the two-sample test and of FID/KID,
  and the baseline of the memorisation check;
* **train** — the memorisation check looks for each generated image's nearest training image.

``--reference PATH`` replaces the test split: every image under PATH (read by the data readers at the
run's image size and channels) is split in two seeded halves, reference and calibration.

Outputs: ``metrics.json`` (every figure, its definition, the sample counts, the seed and timings,
written atomically) and figures ``ssim_histograms``, ``diversity``, ``closest_pairs``, ``roc``,
``ssim_over_epochs`` (when the run's history has the QualityTracker columns) and ``history``
(losses and D accuracy), each as PNG and PDF, drawn by :mod:`dcganlib.plots`.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from . import metrics, runs, seeds
from .config import Config
from .errors import ConfigError, DataError, RunFolderError
from .files import write_json
from .pixels import as_float_images

MIN_COUNT = 16  # the two-sample test needs 8 generated images per half
DIVERSITY_MAX_IMAGES = 500  # pairwise SSIM grows with N²; 500 images = 250k pairs ≈ 1–2 s at 64 px

DEFINITIONS = {
    "ssim": metrics.SSIM_DEFINITION,
    "best_match_ssim": "for each image, the maximum SSIM over all reference images (held-out real test "
                       "images); summarised by mean, median, max",
    "calibration": "best-match SSIM of held-out real images (validate split) against the same reference: "
                   "the level of a perfect generator; ratio_mean = generated mean / calibration mean",
    "paired_ssim": "SSIM of generated image i with a random reference image (seeded permutation); only for "
                   "comparison with projects that report a plain mean SSIM",
    "diversity": "mean SSIM over all distinct pairs within one set (lower = more diverse); mode collapse "
                 "shows as generated >> real; ratio = generated / real",
    "ms_ssim": "mean 5-scale MS-SSIM (tf.image.ssim_multiscale, max_val=2) over random distinct pairs; only "
               "for images of at least 161 px",
    "two_sample_test": "a fresh small CNN trained on half of the held-out real and half of the generated "
                       "images, scored on the other halves: accuracy (Wilson 95% CI) and ROC AUC (DeLong 95% "
                       "CI); 0.5 = indistinguishable, 1.0 = perfectly separable",
    "fid_kid": "FID / KID on ImageNet InceptionV3 pool features, only with local weights (never downloaded)",
    "memorisation": "nearest training image of every generated and every held-out real image by L2 (RMS "
                    "pixel difference in [-1, 1] units) and SSIM; fraction_closer_than_real_l2 = share of "
                    "generated images closer to a training image than the 1st percentile of held-out real "
                    "images' nearest distances",
}


# ------------------------------------------------------------------------------------------------
# core
def evaluate_images(generated: Any, reference: Any, calibration: Any, train: Any, *, seed: int = 0,
                    inception_weights: Optional[str | os.PathLike] = None,
                    two_sample_epochs: int = 10) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every metric for arrays already in memory (uint8 or ``[-1, 1]`` floats, NHWC, same size).

    Returns ``(results, details)``: ``results`` is JSON-ready (what ``metrics.json`` holds, minus the
    run-level fields); ``details`` keeps the per-image arrays the figures need.
    """
    generated = as_float_images(generated, "generated")
    reference = as_float_images(reference, "reference")
    calibration = as_float_images(calibration, "calibration")
    train = as_float_images(train, "train")
    for name, array in (("reference", reference), ("calibration", calibration), ("train", train)):
        if len(array) == 0:
            raise DataError(f"evaluation needs {name} images; the {name} set is empty")
        if array.shape[1:] != generated.shape[1:]:
            raise DataError(f"{name} images are {array.shape[1:]} but generated images are {generated.shape[1:]}; "
                            "evaluate against data of the run's image size and channels")
    heldout = np.concatenate([reference, calibration])
    timings: dict[str, float] = {}
    results: dict[str, Any] = {}
    details: dict[str, Any] = {}

    def timed(name: str):
        class _Timer:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                timings[name] = round(time.perf_counter() - self.start, 3)
        return _Timer()

    with timed("best_match_ssim"):
        generated_best = metrics.best_match_ssim(generated, reference)
        real_best = metrics.best_match_ssim(calibration, reference)
    results["best_match_ssim"] = {
        "generated": generated_best.summary(),
        "real_calibration": real_best.summary(),
        "ratio_mean": generated_best.summary()["mean"] / real_best.summary()["mean"],
    }
    details["best_match"] = (generated_best, real_best)

    with timed("paired_ssim"):
        paired = metrics.paired_ssim(generated, reference, seed=seed)
    results["paired_ssim"] = {key: value for key, value in paired.items() if key != "scores"}

    with timed("diversity"):
        generated_div = metrics.mean_pairwise_ssim(generated, max_images=DIVERSITY_MAX_IMAGES, seed=seed)
        real_div = metrics.mean_pairwise_ssim(reference, max_images=DIVERSITY_MAX_IMAGES, seed=seed)
        ms = {"generated": metrics.ms_ssim_diversity(generated, seed=seed)}
        if ms["generated"]["available"]:
            ms["real"] = metrics.ms_ssim_diversity(reference, seed=seed)
    results["diversity"] = {
        "generated_mean_pairwise_ssim": generated_div,
        "real_mean_pairwise_ssim": real_div,
        "ratio": generated_div / real_div if real_div else float("nan"),
        "images_used": {"generated": min(len(generated), DIVERSITY_MAX_IMAGES),
                        "real": min(len(reference), DIVERSITY_MAX_IMAGES)},
        "ms_ssim": ms,
    }

    with timed("two_sample_test"):
        two_sample = metrics.two_sample_test(heldout, generated, seed=seed, epochs=two_sample_epochs)
    results["two_sample_test"] = {key: value for key, value in two_sample.items() if key != "roc"}
    details["two_sample"] = two_sample

    with timed("fid_kid"):
        results["fid_kid"] = metrics.fid_kid(heldout, generated, weights=inception_weights, seed=seed)

    with timed("memorisation"):
        memorisation = metrics.memorisation_check(generated, train, heldout)
    results["memorisation"] = {key: value for key, value in memorisation.items()
                               if key not in ("generated_nearest", "heldout_nearest")}
    details["memorisation"] = memorisation
    results["timings_seconds"] = timings
    return results, details


def _load_real(config: Config, reference: Optional[str | os.PathLike], seed: int):
    """(reference, calibration, train, description) as uint8 arrays; see the module docstring."""
    from .data import load_dataset

    splits = load_dataset(config)
    rng = seeds.rng(seed, "evaluation-split")
    if reference is not None:
        path = Path(reference).expanduser()
        if not path.exists():
            raise DataError(f"--reference {path} does not exist; pass a folder or file of real images")
        # all images under PATH are reference material: no cap, no split by subject needed
        other = load_dataset(config.replace(data=str(path), max_images=None))
        pool = np.concatenate([other.train, other.validate, other.test])
        source = f"all {len(pool)} images under {path}, split in two seeded halves (reference / calibration)"
        chosen = rng.permutation(len(pool))
        half = len(pool) // 2
        return pool[chosen[:half]], pool[chosen[half:]], splits.train, {
            "reference": f"{source}: first half", "calibration": f"{source}: second half",
            "train": "the run's train split"}
    if len(splits.validate):
        return splits.test, splits.validate, splits.train, {
            "reference": "the run's held-out test split", "calibration": "the run's held-out validate split",
            "train": "the run's train split"}
    chosen = rng.permutation(len(splits.test))
    half = len(splits.test) // 2
    text = "the run's test split, halved (seeded) because the validate split is empty"
    return splits.test[chosen[:half]], splits.test[chosen[half:]], splits.train, {
        "reference": f"{text}: first half", "calibration": f"{text}: second half", "train": "the run's train split"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None  # strict JSON has no NaN
    if isinstance(value, Path):
        return str(value)
    return value


def _write_json(path: Path, payload: dict) -> None:
    write_json(path, _jsonable(payload))


def summary_text(result: Mapping[str, Any]) -> str:
    """A few human lines from a metrics.json dict."""
    best = result["best_match_ssim"]
    div = result["diversity"]
    two = result["two_sample_test"]
    mem = result["memorisation"]
    fid = result["fid_kid"]
    lines = [
        f"best-match SSIM  generated {best['generated']['mean']:.4f} | held-out real {best['real_calibration']['mean']:.4f}"
        f" | ratio {best['ratio_mean']:.3f}",
        f"diversity (mean pairwise SSIM, lower = more diverse)  generated {div['generated_mean_pairwise_ssim']:.4f}"
        f" | real {div['real_mean_pairwise_ssim']:.4f} | ratio {div['ratio']:.3f}",
        f"two-sample test  accuracy {two['accuracy']:.3f} | AUC {two['auc']:.3f} "
        f"(95% CI {two['auc_ci95'][0]:.3f}-{two['auc_ci95'][1]:.3f}); 0.5 = indistinguishable",
        f"memorisation  {mem['fraction_closer_than_real_l2']:.1%} of generated closer to a training image than "
        f"the 1st percentile of held-out real",
        f"paired SSIM (generated vs random real)  {result['paired_ssim']['mean']:.4f}",
        ("FID " + f"{fid['fid']:.2f} | KID {fid['kid']['mean']:.4f}") if fid.get("available")
        else f"FID/KID not computed: {fid['reason']}",
    ]
    return "\n".join(lines)


@dataclass
class RunImages:
    """The images a run is evaluated on (see the module docstring for the roles).

    ``generated``: float32 ``[-1, 1]`` ``(count, S, S, C)`` from the run's generator; ``reference``,
    ``calibration``, ``train``: uint8 ``[0, 255]`` ``(N, S, S, C)``; ``sources`` says where each real set
    came from; ``timings`` holds the seconds spent loading and generating.
    """

    config: Config
    generated: np.ndarray
    reference: np.ndarray
    calibration: np.ndarray
    train: np.ndarray
    sources: dict[str, str]
    timings: dict[str, float]


def load_run_images(run_dir: str | os.PathLike, reference: Optional[str | os.PathLike] = None, count: int = 500,
                    seed: int = 0) -> RunImages:
    """Generate ``count`` images (noise seeded by ``seed``) from the run in ``run_dir`` and load the real
    sets :func:`evaluate_run` compares them with; pass the result to :func:`evaluate_images` and the
    ``plot_*`` functions (a notebook shows every figure this way, with nothing computed twice).

    Raises :class:`ConfigError` for ``count`` < 16 and :class:`RunFolderError` for a folder without
    ``config.json`` or a trained generator, or one whose generator does not match its config.
    """
    run_dir = Path(run_dir)
    if isinstance(count, bool) or not isinstance(count, int) or count < MIN_COUNT:
        raise ConfigError(f"--count must be an integer of at least {MIN_COUNT} (the two-sample test halves "
                          f"the sample); got {count!r}")
    if not run_dir.is_dir():
        raise RunFolderError(f"run folder not found: {run_dir}")
    from .sampling import load_generator

    config = runs.read_config(run_dir)
    started = time.perf_counter()
    generator = load_generator(run_dir)
    reference_u8, calibration_u8, train_u8, sources = _load_real(config, reference, seed)
    load_seconds = time.perf_counter() - started

    from .sampling import sample

    t0 = time.perf_counter()
    generated = sample(generator, count, seed=seed)
    generate_seconds = time.perf_counter() - t0
    if generated.shape[1:] != reference_u8.shape[1:]:
        raise RunFolderError(f"the generator in {run_dir} makes {generated.shape[1:]} images but the data is "
                             f"{reference_u8.shape[1:]}; config.json and generator do not match")
    return RunImages(config, generated, reference_u8, calibration_u8, train_u8, sources,
                     {"load": round(load_seconds, 3), "generate": round(generate_seconds, 3)})


def evaluate_run(run_dir: str | os.PathLike, reference: Optional[str | os.PathLike] = None, count: int = 500,
                 out: Optional[str | os.PathLike] = None, inception_weights: Optional[str | os.PathLike] = None,
                 seed: int = 0, *, quiet: bool = False) -> dict:
    """Evaluate the run in ``run_dir`` and write ``metrics.json`` and figures; return the metrics dict.

    ``count`` generated images (noise seeded by ``seed``) are compared with real images as described in
    the module docstring. ``out`` is the metrics.json path (default ``RUN_DIR/evaluation/metrics.json``);
    figures always go to ``RUN_DIR/evaluation/``. A folder without ``config.json`` or a trained
    generator raises :class:`RunFolderError`.
    """
    from . import plots

    run_dir = Path(run_dir)
    images = load_run_images(run_dir, reference=reference, count=count, seed=seed)
    generated, train_u8 = images.generated, images.train
    reference_u8, calibration_u8, sources = images.reference, images.calibration, images.sources
    results, details = evaluate_images(generated, reference_u8, calibration_u8, train_u8, seed=seed,
                                       inception_weights=inception_weights)
    results["timings_seconds"].update(images.timings)

    folder = run_dir / runs.EVALUATION_DIR
    figures: list[str] = []
    t0 = time.perf_counter()

    def save(fig, name):
        png, _ = plots.save_figure(fig, name, folder, close=True)
        figures.append(png.name)

    generated_best, real_best = details["best_match"]
    save(plots.plot_ssim_histograms(generated_best.scores, real_best.scores), "ssim_histograms")
    save(plots.plot_diversity({"real": results["diversity"]["real_mean_pairwise_ssim"],
                         "generated": results["diversity"]["generated_mean_pairwise_ssim"]}), "diversity")
    save(plots.plot_closest_pairs(generated, train_u8, details["memorisation"]), "closest_pairs")
    save(plots.plot_roc(details["two_sample"]), "roc")
    history = run_dir / runs.HISTORY_FILE
    if history.is_file():
        rows = runs.read_history(history)
        if runs.history_column(rows, "ssim_best_match")[1]:
            save(plots.plot_ssim_over_epochs(rows), "ssim_over_epochs")
        try:
            save(plots.plot_history(history), "history")
        except DataError:
            pass  # a history without loss columns (not written by train) has nothing to plot
    results["timings_seconds"]["figures"] = round(time.perf_counter() - t0, 3)

    payload = {
        "run_dir": str(run_dir),
        "seed": seed,
        "image_shape": list(generated.shape[1:]),
        "samples": {"generated": int(len(generated)), "reference": int(len(reference_u8)),
                    "calibration": int(len(calibration_u8)), "train": int(len(train_u8)), "sources": sources},
        "definitions": DEFINITIONS,
        **results,
        "figures": figures,
        "figures_dir": str(folder),
    }
    out_path = Path(out) if out is not None else folder / runs.METRICS_FILE
    try:
        _write_json(out_path, payload)
    except OSError as exc:
        raise RunFolderError(f"cannot write {out_path}: {exc.strerror}") from None
    payload = _jsonable(payload)
    if not quiet:
        print(f"evaluation of {run_dir} ({len(generated)} generated, {len(reference_u8)} reference, "
              f"{len(calibration_u8)} calibration, {len(train_u8)} train images)")
        print(summary_text(payload))
        print(f"wrote {out_path} and {len(figures)} figures in {folder}")
    return payload
