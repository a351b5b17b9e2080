"""Evaluate generated images against real ones — every figure beside the value real images reach.

* ``python -m dcganlib evaluate RUN`` samples the run's generator → ``RUN/evaluation/metrics.json`` + figures;
* ``python -m dcganlib evaluate --images PATH [--reference DATA]`` scores a folder of PNGs or a ``.npy``
  stack made by any tool against real data; the images keep the value range they were saved in
  (:data:`dcganlib.pixels.GENERATED_VALUES_RULE`, never stretched), the real data is read like training data.

Which real images play which role, and how the real reference of each figure is made, is the job of
:mod:`dcganlib.references`. Every figure is computed for the generated images and, the same way at the
same sample sizes, for real images of unseen subjects in their place ("real_reference"):

1. **two-sample test** (:mod:`.metrics.two_sample`): a CNN trained on the generator's training images
   against as many generated ones, scored on every held-out real image against as many fresh generated
   ones: accuracy (95 % CI, p-value against chance) and ROC AUC (95 % CI);
2. **feature-space metrics** in an offline random-CNN feature space (:mod:`.metrics.features`; never
   called FID): Fréchet distance, KID, precision/recall, density/coverage;
3. **artefacts** (:mod:`.metrics.artefacts`): high-frequency power-spectrum deviation and the
   Wasserstein-1 distance of tissue intensities;
4. **SSIM family**: best-match SSIM, paired SSIM, diversity (mean pairwise SSIM; MS-SSIM from 161 px);
5. **memorisation** (:mod:`.metrics.memorisation`): the share of images closer to a training image, in
   units of the training set's local spacing, than the 1st percentile of real images of unseen subjects
   (and the same without the local units);
6. **FID / KID** on InceptionV3 — only with weights already on disk, otherwise reported as not computed.

Generated images are quantised to uint8 first (as every saved PNG is), so no figure can tell them from
real images by their float precision. Outputs: ``metrics.json`` (every figure with its definition and
its real reference, the sample counts, how each reference was made, timings) and figures, each as PNG
and PDF, drawn by :mod:`dcganlib.plots`. Drawing them takes longer than every metric together on small
sets, so ``--no-figures`` (``figures=False``) writes ``metrics.json`` alone: the same numbers, a quick grade of
several epochs.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import numpy as np

from . import metrics, runs, seeds, summaries
from .config import Config, default_config
from .data.generated import read_generated  # evaluate.read_generated: the images --images names
from .errors import ConfigError, RunFolderError
from .files import check_output_file, remove_orphaned_temporaries, write_json
from .manifest import manifest_problem, read_manifest
from .metrics import artefacts, distances, features as feature_space, memorisation, prdc, quality, two_sample
from .metrics.ssim import MS_SSIM_MIN_SIZE, SSIM_DATA_RANGE
from .metrics.ssim_family import NOISE_STANDARD_ERRORS
from .pixels import GENERATED_VALUES_RULE, to_uint8
from .progress import Progress, note
from .references import EvaluationSets, real_roles

TWO_SAMPLE_EPOCHS = 6
DIVERSITY_MAX_IMAGES = 256  # pairwise SSIM grows with N²: 256 images = 65k pairs
FEATURE_SEED = quality.FEATURE_SEED

DEFINITIONS = {
    "real_reference": "every figure is also computed for real images of subjects the generator never saw, put "
                      "where the generated images go, at the same sample sizes (see 'references')",
    "two_sample_test": two_sample.DEFINITION,
    "feature_metrics": "; ".join((feature_space.DEFINITION, distances.DEFINITION, prdc.DEFINITION)),
    "spectrum": artefacts.SPECTRUM_DEFINITION,
    "tissue_intensity": artefacts.INTENSITY_DEFINITION,
    "ssim": metrics.SSIM_DEFINITION,
    "best_match_ssim": "for each image, the maximum SSIM over all reference images; summarised by mean, median, max",
    "paired_ssim": "SSIM of image i with a random reference image (seeded); only for comparison with projects that "
                   "report a plain mean SSIM",
    "diversity": f"mean SSIM over all distinct pairs within one set (at most {DIVERSITY_MAX_IMAGES} images; lower = "
                 "more diverse); mode collapse shows as generated >> real. standard_error: the mean's sampling error "
                 "over draws of the images, 2 sd(r) / sqrt(n) with r_i the mean SSIM of image i to the others (first-"
                 f"order variance of a U-statistic, Hoeffding 1948); means closer than {NOISE_STANDARD_ERRORS:g} "
                 "sqrt(se_a^2 + se_b^2) are not shown to differ",
    "ms_ssim": f"mean 5-scale MS-SSIM (tf.image.ssim_multiscale, max_val={SSIM_DATA_RANGE:g}) over random "
               f"distinct pairs; only for images of at least {MS_SSIM_MIN_SIZE} px",
    "memorisation": memorisation.DEFINITION,
    "fid_kid": "FID / KID on ImageNet InceptionV3 pool features, only with local weights (never downloaded)",
    "generated_values": GENERATED_VALUES_RULE,
    "notes": "why figures of a degenerate set (no tissue, constant images) sit at their worst; empty otherwise",
    "run_manifest": "the run's run.json: the resolved precision, devices, software versions and speed of the "
                    "training that made the evaluated generator (null for runs from before run.json, and with "
                    "run_manifest_problem saying why when run.json is damaged)",
}


# ------------------------------------------------------------------------------------------------
# every figure, for the generated images and for the real stand-in
@contextlib.contextmanager
def _stage(name: str, timings: dict[str, float], of: str = "") -> Iterator[None]:
    """Time a stage into ``timings[name]`` and show its progress (``of``: whose figures, in the line)."""
    start = time.perf_counter()
    with Progress(f"evaluate: {name.replace('_', ' ')}" + (f" of the {of}" if of else "")):
        yield
    timings[name] = round(time.perf_counter() - start, 3) + timings.get(name, 0.0)


class ReferenceSide(quality.RealSide):
    """What every candidate is compared with, computed once: the reference images' features, spectrum and
    tissue histogram (:class:`~dcganlib.metrics.quality.RealSide`), their nearest training images, and
    the fixed random feature network."""

    def __init__(self, reference: np.ndarray, train: np.ndarray) -> None:
        super().__init__(reference, seed=FEATURE_SEED)
        self.reference, self.train = reference, train
        self.nearest = metrics.nearest_neighbours(reference, train)


def measure(train_real: np.ndarray, train_candidate: np.ndarray, test_real: np.ndarray, test_candidate: np.ndarray,
            side: ReferenceSide, count: int, *, seed: int = 0, epochs: int = TWO_SAMPLE_EPOCHS,
            timings: Optional[dict[str, float]] = None,
            name: str = "generated images") -> tuple[dict[str, Any], dict[str, Any]]:
    """Every figure for one candidate set (uint8 images): the two-sample test on the four sets, and the
    held-out figures of ``test_candidate[:count]`` against ``side``. ``(results, details)``; ``details["notes"]``
    says why figures of a degenerate set sit at their worst (:func:`degenerate_notes`). ``name`` says
    whose figures they are in the progress lines."""
    timings = {} if timings is None else timings
    candidate = test_candidate[:count]
    results: dict[str, Any] = {}
    details: dict[str, Any] = {}
    with _stage("two_sample_test", timings, name):
        test = two_sample.two_sample_test(train_real, train_candidate, test_real, test_candidate, seed=seed,
                                          epochs=epochs)
    results["two_sample_test"] = {k: v for k, v in test.items() if k != "roc"}
    details["two_sample"] = test
    with _stage("feature_metrics", timings, name):
        results["feature_metrics"] = quality.feature_figures(candidate, side, seed=seed)
    with _stage("artefacts", timings, name):
        figures, details["spectrum"], details["histogram"] = quality.artefact_figures(candidate, side)
        results["spectrum"], results["tissue_intensity"] = figures["spectrum"], figures["tissue_w1"]
    details["notes"] = degenerate_notes(candidate)
    with _stage("ssim_family", timings, name):
        details["best_match"] = metrics.best_match_ssim(candidate, side.reference)
        results["best_match_ssim"] = details["best_match"].summary()
        results["paired_ssim"] = metrics.paired_ssim(candidate, side.reference, seed=seed)["mean"]
        details["diversity"] = metrics.pairwise_ssim(candidate, max_images=DIVERSITY_MAX_IMAGES, seed=seed)
        results["diversity"] = details["diversity"].mean
        results["ms_ssim"] = metrics.ms_ssim_diversity(candidate, seed=seed)
    with _stage("memorisation", timings, name):
        check = metrics.memorisation_check(candidate, side.train, side.reference, baseline_nearest=side.nearest)
    results["memorisation"] = {k: v for k, v in check.items() if not k.endswith("_nearest")}
    details["memorisation"] = check
    return results, details


def degenerate_notes(images: np.ndarray) -> list[str]:
    """Why some figures of a degenerate set (uint8) sit at their worst: no tissue pixel, or constant images.
    ``[]`` for ordinary images."""
    notes = []
    if not artefacts.tissue_histogram(images).any():
        notes.append(f"tissue_intensity: no pixel above {artefacts.TISSUE_LEVEL:.0%} of the range (no tissue, e.g. "
                     f"all black); the distance is set to {artefacts.NO_TISSUE:g}, its maximum")
    flat = images.reshape(len(images), -1)
    if len(flat) and (flat.min(axis=1) == flat.max(axis=1)).all():
        value = int(flat[0, 0]) if (flat == flat[0, 0]).all() else None
        notes.append("every image is constant" + (f" (all pixels {value})" if value is not None else "")
                     + ": no structure, so the spectrum, SSIM and feature figures are at or near their worst")
    return notes


def evaluate_sets(sets: EvaluationSets, *, seed: int = 0, inception_weights: Optional[str | os.PathLike] = None,
                  two_sample_epochs: int = TWO_SAMPLE_EPOCHS) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every figure of the module docstring for ``sets`` (:mod:`dcganlib.references`): :func:`measure` for the
    generated images and for the real stand-in, side by side.

    Returns ``(results, details)``: ``results`` is JSON-ready (what ``metrics.json`` holds, minus the
    run-level fields), each figure as ``{"generated": …, "real_reference": …}``; ``details`` keeps the
    per-image arrays and curves the figures draw, under the same two names.
    """
    timings: dict[str, float] = {}
    with _stage("reference", timings):
        side = ReferenceSide(sets.reference, sets.train)
    count = len(sets.stand_in)
    generated, generated_details = measure(sets.classifier_train, sets.generated_train, sets.heldout,
                                           sets.generated_heldout, side, count, seed=seed, epochs=two_sample_epochs,
                                           timings=timings)
    real, real_details = measure(*sets.reference_test, side, count, seed=seed, epochs=two_sample_epochs,
                                 timings=timings, name="real reference")
    results: dict[str, Any] = {name: {"generated": generated[name], "real_reference": real[name]} for name in generated}
    best = results["best_match_ssim"]
    best["ratio_mean"] = best["generated"]["mean"] / best["real_reference"]["mean"]
    results["diversity"]["ratio"] = results["diversity"]["generated"] / results["diversity"]["real_reference"]
    results["diversity"]["standard_error"] = {"generated": generated_details["diversity"].standard_error,
                                              "real_reference": real_details["diversity"].standard_error}
    results["feature_metrics"]["space"] = feature_space.FEATURE_SPACE
    with _stage("fid_kid", timings):
        results["fid_kid"] = _inception(sets.reference, sets.generated, sets.stand_in, inception_weights, seed)
    results["timings_seconds"] = timings
    details = {"generated": generated_details, "real_reference": real_details,
               "spectra": {"reference": side.spectrum, "generated": generated_details["spectrum"],
                           "stand_in": real_details["spectrum"]},
               "histograms": {"reference": side.histogram, "generated": generated_details["histogram"],
                              "stand_in": real_details["histogram"]}}
    return results, details


def _inception(reference: np.ndarray, generated: np.ndarray, stand_in: np.ndarray,
               weights: Optional[str | os.PathLike], seed: int) -> dict[str, Any]:
    path, reason = metrics.find_inception_weights(weights)
    if path is None:
        return {"available": False, "reason": reason}
    return {"available": True, "generated": metrics.fid_kid(reference, generated, weights=path, seed=seed),
            "real_reference": metrics.fid_kid(reference, stand_in, weights=path, seed=seed)}


# ------------------------------------------------------------------------------------------------
# the images: a run's generator, or a folder / .npy of generated images
def run_sets(run_dir: str | os.PathLike, reference: Optional[str | os.PathLike] = None,
             seed: int = 0, epoch: Optional[int] = None) -> tuple[EvaluationSets, Config]:
    """The evaluation sets of a run: its real roles (:func:`dcganlib.references.real_roles`) and as many
    images from its generator (noise of stream "sample" of ``seed``, quantised to uint8) as they need —
    ``generator.keras``, or the generator of ``epoch`` (:func:`dcganlib.sampling.load_generator`)."""
    from .sampling import load_generator, sample

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"run folder not found: {run_dir}")
    config = runs.read_config(run_dir)
    generator = load_generator(run_dir, epoch)
    roles = real_roles(config, reference, seed)
    with Progress(f"evaluate: sampling {roles.generated_needed} images", total=roles.generated_needed,
                  unit="images") as bar:
        images = sample(generator, roles.generated_needed, seed=seed, progress=bar)
    if not np.isfinite(images).all():
        raise RunFolderError(f"the generator of {run_dir} produces NaN/Inf images (did training diverge?), which "
                             f"cannot be scored; move {runs.GENERATOR_FILE} aside (do not delete it) and evaluate "
                             "again: the newest readable checkpoint is used instead")
    if images.shape[1:] != roles.heldout.shape[1:]:
        raise RunFolderError(f"the generator in {run_dir} makes {images.shape[1:]} images but the data is "
                             f"{roles.heldout.shape[1:]}; config.json and generator do not match")
    return roles.with_generated(to_uint8(images)), config


def image_sets(images: str | os.PathLike, reference: Optional[str | os.PathLike] = None,
               seed: int = 0, value_range: Optional[str] = None) -> tuple[EvaluationSets, Config]:
    """The evaluation sets for generated images on disk (read by :func:`read_generated`) against the real data
    ``reference`` (a folder or file read like training data, split like training data; None = the embedded
    demo dataset)."""
    generated = read_generated(images, value_range)
    config = default_config(data=None if reference is None else str(reference), image_size=generated.shape[1],
                            channels=1, max_images=None)
    roles = real_roles(config, None, seed).limited_to(len(generated))
    return roles.with_generated(generated), config


# ------------------------------------------------------------------------------------------------
# entry points
def evaluate_run(run_dir: str | os.PathLike, reference: Optional[str | os.PathLike] = None,
                 out: Optional[str | os.PathLike] = None, inception_weights: Optional[str | os.PathLike] = None,
                 seed: int = 0, *, quiet: bool = False, overwrite: bool = False, epoch: Optional[int] = None,
                 figures: bool = True) -> dict:
    """Evaluate the run in ``run_dir``; write ``metrics.json`` (``out``, default ``RUN/evaluation/metrics.json``)
    and, unless ``figures`` is False, the figures (always in that default folder); return the metrics dict. An
    existing ``out`` file is replaced only with ``overwrite``. A damaged ``run.json`` is named on stderr and in
    ``run_manifest_problem``.

    The generator graded is ``generator.keras`` — the best epoch's when the run tracked quality
    (:mod:`dcganlib.tracking`) — or, with ``epoch``, that epoch's (its default folder is then
    ``RUN/evaluation/epoch_NNNN/``). ``metrics.json`` says which under ``"generator"``."""
    run_dir = Path(run_dir)
    folder = runs.evaluation_dir(run_dir, epoch)
    if run_dir.is_dir():  # a file where the figures or the TensorBoard copy go: refused before any work
        runs.check_run_subfolders(run_dir, [runs.EVALUATION_DIR, runs.TENSORBOARD_DIR])
    _check_before_work(out, folder, inception_weights, seed, overwrite, drawing=figures)
    problem = manifest_problem(run_dir) if (run_dir / runs.CONFIG_FILE).is_file() else None
    if problem is not None:
        note(f"{problem}; metrics.json records run_manifest null with this reason")
    cut = runs.history_damage(run_dir / runs.HISTORY_FILE)
    if cut is not None:
        note(f"{cut}; the figures over epochs leave it out")
    training = run_dir.is_dir() and runs.training_elsewhere(run_dir)
    if training:
        note(f"another process is training {run_dir} now (it holds {runs.LOCK_FILE}); the figures are of its "
             f"{runs.GENERATOR_FILE} or newest checkpoint as they are now, and metrics.json says so")
    started = time.perf_counter()
    sets, config = run_sets(run_dir, reference=reference, seed=seed, epoch=epoch)
    load_seconds = time.perf_counter() - started
    with warnings.catch_warnings():  # the cut history row is said once, above
        warnings.simplefilter("ignore", runs.DamagedRecordWarning)
        source = {"run_dir": str(run_dir), **({"training_in_progress": True} if training else {})}
        payload = _evaluate(sets, source, folder if figures else None, run_dir / runs.HISTORY_FILE, seed,
                            inception_weights, load_seconds)
        summaries.log_evaluation(run_dir, config, [folder / name for name in payload["figures"]])
    manifest = None if problem else read_manifest(run_dir)
    payload["run_manifest"] = manifest  # run.json: how the evaluated generator was trained
    if problem:
        payload["run_manifest_problem"] = problem
    payload["generator"] = graded_generator(manifest, epoch, reference is not None)
    return _finish(payload, Path(out) if out is not None else folder / runs.METRICS_FILE, quiet, str(run_dir))


def graded_generator(manifest: Optional[Mapping[str, Any]], epoch: Optional[int], own_reference: bool) -> dict:
    """The ``metrics.json`` record of which generator was graded, and whether the images that chose it are
    among those that grade it (``own_reference``: ``--reference`` replaced the run's held-out images)."""
    quality = (manifest or {}).get("quality") or {}
    if epoch is not None:
        return {"epoch": epoch, "chosen_by": "asked for (--epoch)"}
    if quality.get("best_epoch") is None:
        completed = (manifest or {}).get("epochs_completed")
        return {"epoch": completed, "chosen_by": "the last epoch (the run tracked no quality figures)"}
    overlap = ("no: --reference replaced the held-out images" if own_reference else
               "yes: the validate split that chose the epoch is half of the held-out images graded here, so the "
               "held-out figures carry a small selection bias in the generator's favour (the real reference's "
               "figures carry none)")
    return {"epoch": quality["best_epoch"],
            "chosen_by": f"the best {quality.get('criterion')} against {quality.get('reference_images')}, measured "
                         f"every {quality.get('eval_every')} epoch(s) during training",
            "choosing_images_also_grade": overlap}


def evaluate_images(images: str | os.PathLike, reference: Optional[str | os.PathLike] = None,
                    out: Optional[str | os.PathLike] = None, inception_weights: Optional[str | os.PathLike] = None,
                    seed: int = 0, *, quiet: bool = False, value_range: Optional[str] = None,
                    overwrite: bool = False, figures: bool = True) -> dict:
    """Evaluate generated images on disk (any tool's) against real data; figures (unless ``figures`` is
    False) and ``metrics.json`` go to ``out``'s folder (default: a sibling folder ``<images>-evaluation/``).
    ``value_range`` (``"-1,1"``, ``"0,1"``) declares the range of float images (:func:`read_generated`). In a
    folder the user named with ``out``, an existing ``out`` or figure file
    (:data:`dcganlib.runs.EVALUATION_FIGURES`) is replaced only with ``overwrite``."""
    images = Path(images)
    out_path = Path(out) if out is not None else images.parent / f"{images.name}-evaluation" / runs.METRICS_FILE
    _check_before_work(out, out_path.parent, inception_weights, seed, overwrite, drawing=figures,
                       figures_beside_out=out is not None)
    started = time.perf_counter()
    sets, config = image_sets(images, reference=reference, seed=seed, value_range=value_range)
    source = {"images": str(images), "reference": "the embedded demo dataset" if config.data is None else config.data,
              "value_range": value_range or "as saved (see definitions: generated_values)"}
    payload = _evaluate(sets, source, out_path.parent if figures else None, None, seed, inception_weights,
                        time.perf_counter() - started)
    return _finish(payload, out_path, quiet, str(images))


def _check_before_work(out: Optional[str | os.PathLike], figures: Path,
                       inception_weights: Optional[str | os.PathLike], seed: int, overwrite: bool,
                       figures_beside_out: bool = False, *, drawing: bool = True) -> None:
    """What can be refused before minutes of evaluation: the seed, the ``out`` path given (not a folder, a
    writable place, existing only with ``overwrite``), the figure files it would replace in a folder the
    user named (``figures_beside_out``; none when not ``drawing``), the figures folder being a file,
    the Inception weights file; and the temporaries a killed evaluate left in the folders it writes (a dead
    writer's only: another evaluate may be writing there now)."""
    seeds.check_seed(seed)
    if out is not None:
        check_output_file(out, overwrite=overwrite)
    if figures.exists() and not figures.is_dir():
        raise RunFolderError(f"{figures} is a file where evaluate writes its figures; move or rename it, or give "
                             "--out a path in another folder")
    if drawing and figures_beside_out and not overwrite:
        taken = [figures / (stem + suffix) for stem in runs.EVALUATION_FIGURES for suffix in runs.FIGURE_SUFFIXES
                 if (figures / (stem + suffix)).exists()]
        if taken:
            raise ConfigError(f"--out {out} would write the figures beside it, and {len(taken)} of their names exist "
                              f"in {figures} (e.g. {taken[0].name}); pass --overwrite to replace them, or give "
                              "--out a path in another folder")
    if inception_weights is not None:
        metrics.find_inception_weights(inception_weights)
    for folder in {figures, Path(out).parent if out is not None else figures}:
        remove_orphaned_temporaries(folder)


def _evaluate(sets: EvaluationSets, source: dict[str, str], folder: Optional[Path], history: Optional[Path], seed: int,
              inception_weights: Optional[str | os.PathLike], load_seconds: float) -> dict[str, Any]:
    """Every figure of ``sets``, and the figures drawn into ``folder`` (none when it is None)."""
    results, details = evaluate_sets(sets, seed=seed, inception_weights=inception_weights)
    results["timings_seconds"]["load_and_generate"] = round(load_seconds, 3)
    figures: list[str] = []
    if folder is not None:
        started = time.perf_counter()
        with Progress("evaluate: figures"):
            figures = write_figures(folder, sets, results, details, history, seed)
        results["timings_seconds"]["figures"] = round(time.perf_counter() - started, 3)
    return {
        "source": source,
        "seed": seed,
        "image_shape": list(sets.generated.shape[1:]),
        "samples": sets.counts(),
        "references": {"method": sets.method, "sources": sets.sources},
        "definitions": DEFINITIONS,
        **results,
        "notes": {side: details[side]["notes"] for side in ("generated", "real_reference")},
        "figures": figures,
        "figures_dir": None if folder is None else str(folder),
    }


def _finish(payload: dict[str, Any], out_path: Path, quiet: bool, name: str) -> dict[str, Any]:
    try:
        write_json(out_path, _jsonable(payload))
    except OSError as exc:
        raise RunFolderError(f"cannot write {out_path}: {exc.strerror}") from None
    payload = _jsonable(payload)
    if not quiet:
        counts = payload["samples"]
        print(f"evaluation of {name}: {counts['generated_heldout'] + counts['generated_train']} generated images, "
              f"{counts['heldout']} held-out real, {counts['train']} train; real reference: {payload['references']['method']}")
        print(summary_text(payload))
        if payload["figures_dir"] is None:
            print(f"wrote {out_path} (no figures: --no-figures)")
        else:
            print(f"wrote {out_path} and {len(payload['figures'])} figures in {payload['figures_dir']}")
    return payload


def write_figures(folder: Path, sets: EvaluationSets, results: Mapping[str, Any], details: Mapping[str, Any],
                  history: Optional[Path], seed: int) -> list[str]:
    """Every evaluation figure as PNG + PDF in ``folder``; the PNG names."""
    from . import plots

    names: list[str] = []

    def save(fig: Any, name: str) -> None:
        png, _ = plots.save_figure(fig, name, folder, close=True)
        names.append(png.name)

    save(plots.plot_roc({name: details[name]["two_sample"] for name in ("generated", "real_reference")}),
         "two_sample_roc")
    save(plots.plot_power_spectra(details["spectra"]), "power_spectrum")
    save(plots.plot_tissue_intensity(details["histograms"]), "tissue_intensity")
    save(plots.plot_feature_metrics(results["feature_metrics"]), "feature_metrics")
    save(plots.plot_ssim_histograms(details["generated"]["best_match"].scores,
                                    details["real_reference"]["best_match"].scores), "ssim_histograms")
    diversity = results["diversity"]
    save(plots.plot_diversity({"real reference": diversity["real_reference"], "generated": diversity["generated"]},
                              errors={"real reference": diversity["standard_error"]["real_reference"],
                                      "generated": diversity["standard_error"]["generated"]}),
         "diversity")
    save(plots.plot_closest_pairs(sets.generated, sets.train, details["generated"]["memorisation"]), "closest_pairs")
    save(plots.plot_gallery(sets.generated, sets.reference, seed=seed), "gallery")
    if history is not None and history.is_file():
        rows = runs.read_history(history)
        if runs.history_column(rows, "ssim_best_match")[1]:
            save(plots.plot_ssim_over_epochs(rows), "ssim_over_epochs")
        if {"d_loss", "g_loss"} <= {key for row in rows for key in row}:
            save(plots.plot_history(rows), "history")
    return names


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None  # strict JSON has no NaN
    if isinstance(value, Path):
        return str(value)
    return value


# ------------------------------------------------------------------------------------------------
def summary_text(result: Mapping[str, Any]) -> str:
    """The figures of a metrics.json dict as a table: generated beside the real reference."""
    def fmt(value: Any, digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    two = result["two_sample_test"]
    feats = result["feature_metrics"]
    errors = result["diversity"].get("standard_error", {})  # absent from metrics.json files older than it
    rows = [
        ("two-sample AUC (95% CI)", *(f"{fmt(t['auc'])} ({fmt(t['auc_ci95'][0], 2)}-{fmt(t['auc_ci95'][1], 2)})"
                                      for t in (two["generated"], two["real_reference"]))),
        ("two-sample accuracy (p vs 0.5)", *(f"{fmt(t['accuracy'])} (p={t['p_value']:.1g})"
                                             for t in (two["generated"], two["real_reference"]))),
        ("Frechet distance, random-CNN features", fmt(feats["generated"]["frechet_distance"], 1),
         fmt(feats["real_reference"]["frechet_distance"], 1)),
        ("KID, random-CNN features", fmt(feats["generated"]["kid"], 4), fmt(feats["real_reference"]["kid"], 4)),
        *[(f"{key} (k=5)", fmt(feats["generated"][key]), fmt(feats["real_reference"][key]))
          for key in ("precision", "recall", "density", "coverage")],
        ("high-frequency spectrum deviation", fmt(result["spectrum"]["generated"]),
         fmt(result["spectrum"]["real_reference"])),
        ("tissue intensity Wasserstein-1", fmt(result["tissue_intensity"]["generated"], 4),
         fmt(result["tissue_intensity"]["real_reference"], 4)),
        ("best-match SSIM (mean)", fmt(result["best_match_ssim"]["generated"]["mean"]),
         fmt(result["best_match_ssim"]["real_reference"]["mean"])),
        ("diversity: mean pairwise SSIM (± se)", *(
            fmt(result["diversity"][k]) + (f" ± {fmt(errors[k])}" if k in errors else "")
            for k in ("generated", "real_reference"))),
        ("memorisation, local (vs real 1st pct)", *(
            f"{result['memorisation'][k]['fraction_closer_than_real_local']:.1%}" for k in ("generated", "real_reference"))),
        ("memorisation, L2 (vs real 1st pct)", *(
            f"{result['memorisation'][k]['fraction_closer_than_real_l2']:.1%}" for k in ("generated", "real_reference"))),
        ("paired SSIM", fmt(result["paired_ssim"]["generated"]), fmt(result["paired_ssim"]["real_reference"])),
    ]
    fid = result["fid_kid"]
    if fid.get("available"):
        rows.append(("FID (InceptionV3)", fmt(fid["generated"]["fid"], 2), fmt(fid["real_reference"]["fid"], 2)))
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"{'figure':<{width}}{'generated':>22}{'real reference':>22}"]
    lines += [f"{name:<{width}}{gen:>22}{ref:>22}" for name, gen, ref in rows]
    if not fid.get("available"):
        lines.append(f"FID/KID (InceptionV3) not computed: {fid['reason']}")
    for side, notes in result.get("notes", {}).items():
        lines += [f"note ({side.replace('_', ' ')}): {note}" for note in notes]
    return "\n".join(lines)


__all__ = ["DEFINITIONS", "evaluate_sets", "run_sets", "image_sets", "read_generated", "evaluate_run",
           "evaluate_images", "write_figures", "summary_text"]
