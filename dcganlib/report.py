"""The sentences a notebook prints for a student: its mode banner, and each chapter's verdict.

Notebook prose must not state numbers, because numbers go stale when the library or the data change; so
every figure a chapter concludes with is printed here, from the run's own results, beside its real
reference. The thresholds that turn a figure into words are constants of this module:

* a figure's **ratio** to its real reference — how many times worse than real images it is:
  ``generated / real`` for lower-is-better figures, ``real / generated`` for higher-is-better ones, 1 or
  less = as good as real — read against its target :data:`TARGET_RATIOS` (FD ≤ 1.3×, precision and
  recall ≥ 0.85× real, spectrum deviation ≤ 3×, tissue W1 ≤ 2×): within it "close to real", within twice
  it "short of real", beyond "far from real";
* the two-sample **AUC**: ≤ :data:`AUC_CHANCE` "hard to tell from real", ≤ :data:`AUC_PARTLY` "partly
  realistic", above "not yet realistic" (0.5 = a classifier cannot tell; 1.0 = it always can).

The banner's expected minutes scale the default run's measured epoch time (:data:`MEASURED_EPOCH_SECONDS`)
by the pixels and images per epoch of the notebook's config, for the precision ``auto`` resolves to here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Optional, Sequence

from . import hardware, runs, tracking
from .metrics.quality import LOWER_IS_BETTER
from .metrics.ssim_family import NOISE_STANDARD_ERRORS
from .config import Config, NotebookSetup

#: The most times worse than the real reference a figure may be and still read "close to real".
TARGET_RATIOS = {"frechet_distance": 1.3, "precision": 1 / 0.85, "recall": 1 / 0.85, "spectrum": 3.0,
                 "tissue_w1": 2.0}
AUC_CHANCE = 0.6
AUC_PARTLY = 0.9

#: Seconds per epoch of the default run (64 px, batch 32, 1,600 images per epoch, quality tracked every
#: second epoch): ``run.json``'s ``seconds_per_epoch`` of the README main job on Xeon-AMX in
#: mixed_bfloat16 (docs/machines.md), and the float32 estimate for EPYC-AVX2 from docs/recipes.md
#: (16.4 s for an epoch of the recipe without R1 × 1.038, the default's float32 cost relative to it
#: measured interleaved on Xeon-AMX). No GPU has been measured: there the banner says so.
MEASURED_EPOCH_SECONDS = {"mixed_bfloat16": 3.75, "float32": 17.0}
#: What that default epoch holds: pixels per image and images per epoch.
_MEASURED_PIXELS, _MEASURED_IMAGES = 64 * 64, 1600
#: Seconds each chapter spends besides training: full runs of the notebooks (``jupyter nbconvert --execute``,
#: one at a time) on an otherwise idle Xeon-AMX — 7.9 s, 8.7 s, 224.8 s of which 40 epochs × 3.75 s are
#: training (the rest: SSIM tracking, grids, the resume's rebuild, the GIF), 49.0 s (mostly the evaluation).
CHAPTER_SECONDS = {1: 8, 2: 9, 3: 75, 4: 49}
#: Chapters that train the run (chapter 4 only when chapter 3 did not).
_TRAINING_CHAPTERS = (3, 4)


def _epoch_seconds(config: Config, precision: str) -> Optional[float]:
    measured = MEASURED_EPOCH_SECONDS.get(precision)
    if measured is None:
        return None
    images = config.max_images or _MEASURED_IMAGES
    return measured * (config.image_size ** 2 / _MEASURED_PIXELS) * min(images, _MEASURED_IMAGES * 10) / _MEASURED_IMAGES


def expected_minutes(setup: NotebookSetup, chapter: int) -> Optional[float]:
    """Minutes a chapter should take on this machine (None where nothing was measured: a GPU).

    Training chapters add ``epochs + 1`` (the resume) epochs, or none in chapter 4 when the run exists."""
    precision = hardware.resolve_precision(setup.config)
    seconds = CHAPTER_SECONDS[chapter]
    trains = chapter == 3 or (chapter == 4 and not (setup.run_dir / runs.GENERATOR_FILE).exists())
    if chapter in _TRAINING_CHAPTERS and trains and not setup.smoke:
        per_epoch = _epoch_seconds(setup.config, precision)
        if per_epoch is None:
            return None
        seconds += per_epoch * (setup.config.epochs + 1)
    return seconds / 60


def banner(setup: NotebookSetup, chapter: int) -> str:
    """The first lines a notebook prints: its mode, the minutes to expect here, and where it writes."""
    config = setup.config
    mode = ("SMOKE mode: the tiny preset the tests run (a few seconds; figures are not report figures)"
            if setup.smoke else "FULL mode: the default run")
    data = config.data or "the embedded MNI152 demo dataset"
    precision = hardware.resolve_precision(config)
    minutes = expected_minutes(setup, chapter)
    if setup.smoke:
        expect = "expect about a minute"
    elif minutes is None:
        expect = f"no measured time for {precision} (a GPU): expect well under the CPU's minutes"
    else:
        expect = (f"expect about {max(1, round(minutes))} min on this CPU ({precision}; scaled from the default "
                  "epoch measured on the reference machines, docs/machines.md)")
    lines = [f"Chapter {chapter} — {mode}.",
             f"Data: {data}, {config.image_size} px, {config.epochs} epochs; {expect}.",
             f"Run folder: {setup.run_dir}; figures: {setup.images}"
             + ("" if setup.writes_report_figures else " (the tracked images/ folder is left alone)") + ".",
             "Switch with the SMOKE parameter (papermill -p SMOKE True) or DCGANLIB_SMOKE=1."]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
def ratio_words(ratio: float, target: float) -> str:
    """How a ratio to the real reference (1 = as good as real; larger = worse) reads against its target."""
    if not math.isfinite(ratio):
        return "not measurable"
    if ratio <= 1:
        return "as good as real"
    if ratio <= target:
        return "close to real"
    return "short of real" if ratio <= 2 * target else "far from real"


def _ratio(generated: float, real: float, lower_is_better: bool) -> float:
    if lower_is_better:
        return generated / real if real > 0 else math.inf
    return real / generated if generated > 0 else math.inf


def auc_words(auc: float) -> str:
    """How a two-sample AUC reads (0.5 = indistinguishable)."""
    if auc <= AUC_CHANCE:
        return "hard to tell from real"
    if auc <= AUC_PARTLY:
        return "partly realistic"
    return "not yet realistic"


def _figure_line(label: str, figure: str, generated: float, real: float, digits: int = 3) -> str:
    ratio = _ratio(generated, real, LOWER_IS_BETTER[figure])
    target = TARGET_RATIOS[figure]
    return (f"- {label}: {generated:.{digits}f} (real reference {real:.{digits}f}): {ratio:.2f}× as far from "
            f"ideal as real images; target ≤ {target:.2f}× — {ratio_words(ratio, target)}")


def data_verdict(audit: Mapping[str, Any]) -> str:
    """Chapter 1: what the run will train on, from :func:`dcganlib.data.load_dataset`'s audit (``split.json``)."""
    from .data import shared_subjects

    counts, subjects = audit["counts"], audit["subject_counts"]
    shared = shared_subjects(audit)
    lines = [f"The generator will learn from {counts['train']} training images of {subjects['train']} subjects; "
             f"{counts['validate']} validate and {counts['test']} test images of "
             f"{subjects['validate'] + subjects['test']} other subjects are held out to grade it.",
             "No subject is in two splits." if not shared else
             f"WARNING: {len(shared)} subject(s) are in the training split and a held-out one."]
    if counts["validate"] < tracking.MIN_REFERENCE:
        lines.append(f"The validate split has fewer than {tracking.MIN_REFERENCE} images: quality cannot be "
                     "tracked during training, and the last epoch will be exported.")
    return "\n".join(lines)


def models_verdict(generator: Any, discriminator: Any, radford: Sequence[Any]) -> str:
    """Chapter 2: the default networks' sizes against the paper's (``radford`` = its G and D)."""
    g, d = generator.count_params(), discriminator.count_params()
    rg, rd = (model.count_params() for model in radford)
    return (f"The default generator has {g:,} parameters and its discriminator {d:,} "
            f"({g / rg:.2f}× and {d / rd:.2f}× the paper's {rg:,} and {rd:,} at this size): "
            "smaller networks get more training steps out of the same CPU time.")


def training_verdict(run_dir: str | Path) -> str:
    """Chapter 3: how the run went, from its ``history.csv`` and ``run.json``."""
    from .manifest import read_manifest

    run_dir = Path(run_dir)
    history = runs.read_history(run_dir / runs.HISTORY_FILE)
    last = history[-1]
    lines = [f"{len(history)} epochs. At the last one the discriminator is right on {last['d_acc_real']:.0%} of real "
             f"and {last['d_acc_fake']:.0%} of generated training images (50 % would mean it cannot tell them "
             "apart); " + ("it is winning, the usual state of a DCGAN on a small dataset." if
                           min(last["d_acc_real"], last["d_acc_fake"]) > 0.8 else
                           "neither network has taken over.")]
    record = read_manifest(run_dir) or {}
    quality = record.get("quality") or {}
    best = quality.get("best_epoch")
    if best is None:
        lines.append("Quality was not tracked during this run (see docs/quality-during-training.md): "
                     "the last epoch's generator was exported.")
        return "\n".join(lines)
    row = next(r for r in history if r["epoch"] == best)
    real = quality["real_reference"]
    lines.append(f"Best epoch by {tracking.CRITERION}: {best} (score {row[tracking.CRITERION]:.2f}; 1 = real "
                 f"quality), exported as generator.keras. Its figures against the validate split:")
    for column, figure in tracking.COLUMNS.items():
        if figure in TARGET_RATIOS and column in row and column in real and math.isfinite(row[column]):
            lines.append(_figure_line(column, figure, row[column], real[column]))
    tracked = [r for r in history if math.isfinite(r.get(tracking.CRITERION, math.nan))]
    if tracked and tracked[-1]["epoch"] != best:
        lines.append(f"The last tracked epoch ({tracked[-1]['epoch']}) scored {tracked[-1][tracking.CRITERION]:.2f}: "
                     "later is not always better, which is why the best epoch is kept.")
    return "\n".join(lines)


def evaluation_verdict(results: Mapping[str, Any]) -> str:
    """Chapter 4: the evaluation's figures as sentences, each beside its real reference."""
    two = results["two_sample_test"]
    auc, real_auc = two["generated"]["auc"], two["real_reference"]["auc"]
    feats = results["feature_metrics"]
    lines = [f"A classifier tells these images from real ones with AUC {auc:.2f} (real reference {real_auc:.2f}): "
             f"they are {auc_words(auc)}."]
    for label, figure, generated, real, digits in (
            ("precision (fidelity)", "precision", feats["generated"]["precision"],
             feats["real_reference"]["precision"], 2),
            ("recall (diversity: kinds of real slices covered)", "recall", feats["generated"]["recall"],
             feats["real_reference"]["recall"], 2),
            ("Fréchet distance (random-CNN features)", "frechet_distance", feats["generated"]["frechet_distance"],
             feats["real_reference"]["frechet_distance"], 1),
            ("texture: high-frequency spectrum deviation", "spectrum", results["spectrum"]["generated"],
             results["spectrum"]["real_reference"], 3),
            ("contrast: tissue intensity W1", "tissue_w1", results["tissue_intensity"]["generated"],
             results["tissue_intensity"]["real_reference"], 4)):
        lines.append(_figure_line(label, figure, generated, real, digits))
    if "diversity" in results:
        lines.append(_diversity_line(results["diversity"]))
    memo = results["memorisation"]
    copied, real_copied = (memo[k]["fraction_closer_than_real_local"] for k in ("generated", "real_reference"))
    lines.append(f"- memorisation: {copied:.1%} of generated images are closer to a training image, for where they "
                 f"lie, than real images of unseen subjects get (real reference {real_copied:.1%}): "
                 + ("no sign of copying." if copied <= max(2 * real_copied, 0.02) else "some images may be copies "
                    "(closest_pairs.png shows the nearest)."))
    return "\n".join(lines)


def _diversity_line(diversity: Mapping[str, Any]) -> str:
    """Diversity beside its reference, and whether the gap is beyond the sampling error that metrics.json gives
    (``standard_error``; files older than it lack it, and then the line says nothing about noise)."""
    generated, real = diversity["generated"], diversity["real_reference"]
    change = generated / real - 1
    words = (f"{abs(change):.1%} " + ("more alike than real images (less varied)" if change > 0 else
                                      "less alike than real images (more varied)"))
    errors = diversity.get("standard_error")
    if not errors:
        return f"- diversity (mean pairwise SSIM, lower = more varied): {generated:.3f} (real reference {real:.3f}): {words}."
    combined = math.hypot(errors["generated"], errors["real_reference"])
    gap = abs(generated - real) / combined if combined > 0 else math.inf
    beyond = gap > NOISE_STANDARD_ERRORS
    noise = f"{'beyond' if beyond else 'within'} sampling noise ({gap:.1f} combined standard errors)"
    return (f"- diversity (mean pairwise SSIM, lower = more varied): {generated:.3f} ± {errors['generated']:.3f} "
            f"(real reference {real:.3f} ± {errors['real_reference']:.3f}): {words}; {noise}.")


def _figure_words(column: str) -> str:
    return {"val_fd": "Fréchet distance", "val_kid": "KID", "val_precision": "precision", "val_recall": "recall",
            "val_spectrum": "texture (spectrum deviation)", "val_tissue_w1": "contrast (tissue W1)"}[column]


def compute_verdict(rows: Sequence[Mapping[str, Any]], default_epochs: int,
                    recipes: Optional[Sequence[str]] = None) -> str:
    """What more compute buys, per recipe: the tracked figures (mean over seeds) of the epoch a run stopped at
    each budget would export, beside the real reference, and whether its longest budget beats its
    ``default_epochs`` budget on every figure. ``rows``: :func:`dcganlib.curves.budget_table` (or the
    ``quality_curves.json`` that ``curves --out`` writes); ``recipes``: those to describe, in that order
    (default: every recipe of ``rows``, in their order)."""
    lines = []
    for recipe, own, seeds in _by_recipe(rows, recipes):
        lines.append(f"{recipe} (seed {seeds}):")
        for row in own:
            parts = []
            for column, figure in tracking.COLUMNS.items():
                if figure not in TARGET_RATIOS:
                    continue
                value, real = row[column]["mean"], row[column]["real_reference"]
                words = ratio_words(_ratio(value, real, tracking.lower_is_better(column)), TARGET_RATIOS[figure])
                parts.append(f"{_figure_words(column)} {value:.3g} ({words})")
            lines.append(f"- {row['budget_epochs'] / default_epochs:.2g}× the default budget "
                         f"({row['budget_images']:,} images): score {row[tracking.CRITERION]['mean']:.2f}; "
                         + ", ".join(parts))
        sentence = _longer_sentence(own, default_epochs)
        if sentence:
            lines.append(f"  {sentence}")
    return "\n".join(lines)


def longer_training_sentences(rows: Sequence[Mapping[str, Any]], default_epochs: int) -> list[str]:
    """One line per recipe of ``rows`` (:func:`dcganlib.curves.budget_table`) that has a row at
    ``default_epochs`` and a longer one: ``"RECIPE (seed …): Training N× as long …"``, the verdict of
    :func:`compute_verdict` without the per-budget figures (what ``dcganlib curves`` prints under its table)."""
    lines = []
    for recipe, own, seeds in _by_recipe(rows):
        sentence = _longer_sentence(own, default_epochs)
        if sentence:
            lines.append(f"{recipe} (seed {seeds}): {sentence}")
    return lines


def _by_recipe(rows: Sequence[Mapping[str, Any]], recipes: Optional[Sequence[str]] = None):
    """``(recipe, its rows by budget, "1, 42")`` for each of ``recipes`` (default: every recipe of ``rows``, in
    their order); the seeds are those of the row with the most of them."""
    for recipe in recipes or dict.fromkeys(row["recipe"] for row in rows):
        own = sorted((row for row in rows if row["recipe"] == recipe), key=lambda row: row["budget_images"])
        yield recipe, own, ", ".join(map(str, max((row["seeds"] for row in own), key=len)))


def _longer_sentence(own: Sequence[Mapping[str, Any]], default_epochs: int) -> Optional[str]:
    """Whether the longest of one recipe's rows (sorted by budget) improves every tracked figure on its row at
    ``default_epochs``, as a sentence; None without both rows."""
    base = [row for row in own if abs(row["budget_epochs"] - default_epochs) < 0.5]
    if not base or own[-1]["budget_epochs"] <= default_epochs + 0.5:
        return None
    longest = own[-1]
    worse, within, at_real = longer_training_verdict(base[0], longest)
    times = f"{longest['budget_epochs'] / default_epochs:.2g}×"
    if worse or within:
        clauses = ([f"does not improve {', '.join(map(_figure_words, worse))}"] if worse else []) + (
            [f"improves {', '.join(map(_figure_words, within))} on the mean only, within the seeds' spread"]
            if within else [])
        return f"Training {times} as long " + "; it ".join(clauses) + "."
    return (f"Training {times} as long improves every tracked figure"
            + (f" ({', '.join(map(_figure_words, at_real))} as good as real at both budgets)." if at_real else "."))


class LongerTraining(NamedTuple):
    """:func:`longer_training_verdict`: tracked columns (``history.csv`` names) in three lists."""

    worse: list[str]  # no better at the longer budget (and not at the real reference at both)
    within_spread: list[str]  # better on the mean over seeds, but the two budgets' seed ranges overlap
    at_real: list[str]  # not better beyond the spread, but as good as real at both budgets: counts as held


def longer_training_verdict(short: Mapping[str, Any], long: Mapping[str, Any]) -> LongerTraining:
    """Which tracked figures a longer budget does not improve. Two :func:`dcganlib.curves.budget_table` rows
    (means over seeds, with min and max).

    A figure improves when its mean is better at the longer budget *and*, when both rows have two seeds or
    more, the ranges over seeds do not overlap (for a lower-is-better figure ``long.max < short.min``): a gain
    smaller than the seed-to-seed spread is not shown to be one (``within_spread``). With one seed the spread
    is unknown and the means decide. A figure that is as good as the real reference (or better) at *both*
    budgets counts as held (``at_real``), because the reference, measured on as many real images, is the
    floor that sample noise leaves: differences beyond it are noise, and ``val_score`` ignores them too."""
    several = len(short["seeds"]) > 1 and len(long["seeds"]) > 1
    worse, within, at_real = [], [], []
    for column in tracking.COLUMNS:
        lower = tracking.lower_is_better(column)
        a, b, real = short[column]["mean"], long[column]["mean"], long[column]["real_reference"]
        better = (b < a) if lower else (b > a)
        beyond = not several or ((long[column]["max"] < short[column]["min"]) if lower
                                 else (long[column]["min"] > short[column]["max"]))
        if better and beyond:
            continue
        if all(_ratio(v, real, lower) <= 1 for v in (a, b)):
            at_real.append(column)
        elif better:
            within.append(column)
        else:
            worse.append(column)
    return LongerTraining(worse, within, at_real)


__all__ = [
    "AUC_CHANCE", "AUC_PARTLY", "CHAPTER_SECONDS", "MEASURED_EPOCH_SECONDS", "TARGET_RATIOS", "LongerTraining",
    "auc_words", "banner", "compute_verdict", "data_verdict", "longer_training_verdict", "longer_training_sentences",
    "evaluation_verdict", "expected_minutes", "models_verdict", "ratio_words", "training_verdict"
]
