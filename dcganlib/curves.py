"""Quality against compute: the per-epoch figures of finished runs (:mod:`dcganlib.tracking`) as curves
over images seen and wall-clock seconds, and the figures each recipe reaches at given budgets.

A recipe is judged by its curve, not by one point: ``python -m dcganlib curves RUN… --budget 67200``
prints, per recipe (runs grouped by :func:`recipe_of`, one per seed), each tracked figure at each budget
(mean over seeds, and the spread) beside the real reference, and the figure
:func:`dcganlib.plots.plot_quality_curves` draws the curves.

* images seen after epoch ``e`` = ``e`` × steps per epoch × batch size (``run.json``'s
  ``images_per_epoch``);
* seconds after epoch ``e`` = the sum of ``history.csv``'s ``seconds`` up to ``e`` (the measurement's
  own cost included), on the machine ``run.json`` names;
* the figures at a budget are those of the epoch a run stopped there would export: the best
  :data:`~dcganlib.tracking.CRITERION` among the epochs measured within the budget.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import runs, tracking
from .errors import RunFolderError

_SEED_SUFFIX = re.compile(r"-s(\d+)$")
#: The figures ``python -m dcganlib curves --out`` writes, and their x axis.
CURVE_FIGURES = {"quality_curves_images": "images", "quality_curves_seconds": "seconds"}
#: The figure of what each recipe's images look like at each budget (its fixed-noise grids).
BUDGET_GRIDS_FIGURE = "quality_budget_grids"
#: The :func:`budget_table` as written by ``curves --out``: Markdown for a report, JSON for code
#: (:func:`read_budget_table`; notebook 04 reads the committed ``images/quality_curves.json``).
BUDGET_TABLE_FILES = {"markdown": "quality_curves.md", "json": "quality_curves.json"}


@dataclass
class Curve:
    """One run's tracked figures per measured epoch."""

    run_dir: Path
    recipe: str
    seed: int
    epochs: np.ndarray  # (E,) measured epochs
    images: np.ndarray  # (E,) images seen after each
    seconds: np.ndarray  # (E,) wall-clock seconds after each
    values: dict[str, np.ndarray]  # column -> (E,)
    reference: dict[str, float]  # column -> the real reference's value

    def at(self, images: float) -> Optional[dict[str, float]]:
        """The figures of the epoch a run stopped at ``images`` images seen would export: the best
        :data:`~dcganlib.tracking.CRITERION` among the measured epochs within the budget. None before the first
        measured epoch, and None past the run's last epoch: a run is never reported at a budget it did not reach."""
        if not len(self.images) or images > self.images[-1]:
            return None
        within = np.nonzero(self.images <= images)[0]
        if not len(within):
            return None
        criterion = self.values[tracking.CRITERION][within]
        if not np.isfinite(criterion).any():
            return None
        best = np.nanargmin(criterion) if tracking.lower_is_better(tracking.CRITERION) else np.nanargmax(criterion)
        i = within[best]
        return {"epoch": int(self.epochs[i]), "images": int(self.images[i]), "seconds": float(self.seconds[i]),
                **{column: float(v[i]) for column, v in self.values.items()}}


def recipe_of(run_dir: str | os.PathLike) -> tuple[str, int]:
    """``("ada", 42)`` for a folder named ``ada-s42``: the recipe's name and the seed (from config.json)."""
    run_dir = Path(run_dir)
    return _SEED_SUFFIX.sub("", run_dir.name), runs.read_config(run_dir).seed


def read_curve(run_dir: str | os.PathLike) -> Curve:
    """The :class:`Curve` of a run folder that tracked quality (``run.json`` with ``"quality"``)."""
    run_dir = Path(run_dir)
    try:
        manifest = json.loads((run_dir / runs.RUN_MANIFEST_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"cannot read {run_dir / runs.RUN_MANIFEST_FILE}: {exc}") from None
    quality = manifest.get("quality")
    if not quality:
        raise RunFolderError(f"{run_dir} tracked no quality figures (eval_every 0, or a run from before them)")
    per_epoch = manifest["sessions"][-1]["images_per_epoch"]
    rows = runs.read_history(run_dir / runs.HISTORY_FILE)
    seconds = np.cumsum([row["seconds"] for row in rows])
    reference = {column: float(v) for column, v in quality["real_reference"].items()}
    # the score from the row's figures: one formula for every run (tracking.quality_score)
    scores = [tracking.quality_score(row, reference) for row in rows]
    measured = [i for i, score in enumerate(scores) if math.isfinite(score)]
    recipe, seed = recipe_of(run_dir)
    values = {column: np.array([rows[i][column] for i in measured]) for column in tracking.COLUMNS}
    values[tracking.CRITERION] = np.array([scores[i] for i in measured])
    return Curve(run_dir, recipe, seed, np.array([rows[i]["epoch"] for i in measured], dtype=int),
                 np.array([rows[i]["epoch"] * per_epoch for i in measured], dtype=np.int64), seconds[measured],
                 values, {**reference, tracking.CRITERION: tracking.quality_score(reference, reference)})


def group_by_recipe(curves: Sequence[Curve]) -> dict[str, list[Curve]]:
    """Curves by recipe, in the order first seen; seeds sorted."""
    groups: dict[str, list[Curve]] = {}
    for curve in curves:
        groups.setdefault(curve.recipe, []).append(curve)
    return {name: sorted(group, key=lambda c: c.seed) for name, group in groups.items()}


def budget_table(curves: Sequence[Curve], budgets: Sequence[int]) -> list[dict]:
    """One row per recipe and budget: the mean and range over seeds of every tracked figure there, and the
    real reference (the mean of the runs' own references)."""
    table = []
    for recipe, group in group_by_recipe(curves).items():
        for budget in budgets:
            reached = [(c, p) for c, p in ((c, c.at(budget)) for c in group) if p is not None]
            if not reached:
                continue
            points = [p for _, p in reached]
            per_epoch = group[0].images[0] / group[0].epochs[0]  # images seen per epoch (the same for every seed)
            row = {"recipe": recipe, "budget_images": int(budget), "budget_epochs": float(budget / per_epoch),
                   "seeds": [c.seed for c, _ in reached], "epoch": [p["epoch"] for p in points]}
            for column in (tracking.CRITERION, *tracking.COLUMNS):
                values = [p[column] for p in points]
                row[column] = {"mean": float(np.mean(values)), "min": float(min(values)), "max": float(max(values)),
                               "real_reference": float(np.mean([c.reference[column] for c in group]))}
            table.append(row)
    return table


def markdown_table(table: Sequence[dict]) -> str:
    """The :func:`budget_table` as a Markdown table: ``mean (min–max)`` per figure, reference last row."""
    columns = [tracking.CRITERION, *tracking.COLUMNS]
    lines = ["| recipe | images seen | seeds | " + " | ".join(columns) + " |",
             "|---|---:|---|" + "---:|" * len(columns)]
    for row in table:
        cells = []
        for column in columns:
            figure = row[column]
            spread = f" ({figure['min']:.3g}–{figure['max']:.3g})" if len(row["seeds"]) > 1 else ""
            cells.append(f"{figure['mean']:.3g}{spread}")
        lines.append(f"| {row['recipe']} | {row['budget_images']:,} | {', '.join(map(str, row['seeds']))} | "
                     + " | ".join(cells) + " |")
    if table:
        reference = " | ".join(f"{table[0][c]['real_reference']:.3g}" for c in columns)
        lines.append(f"| real reference | | | {reference} |")
    return "\n".join(lines)


def write_budget_table(table: Sequence[dict], folder: str | os.PathLike) -> list[Path]:
    """Write the table as :data:`BUDGET_TABLE_FILES` into ``folder`` (atomically); returns the paths."""
    from .files import write_json, write_text

    folder = Path(folder)
    return [write_text(folder / BUDGET_TABLE_FILES["markdown"], markdown_table(table) + "\n"),
            write_json(folder / BUDGET_TABLE_FILES["json"], {"budget_table": list(table)})]


def read_budget_table(path: str | os.PathLike) -> list[dict]:
    """The rows of a ``quality_curves.json`` written by :func:`write_budget_table`."""
    try:
        return list(json.loads(Path(path).read_text())["budget_table"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunFolderError(f"cannot read the budget table {path}: {exc}") from None


def budget_grids(curves: Sequence[Curve], budgets: Sequence[int]) -> list[list[tuple[str, Path]]]:
    """What the images look like at each budget: per recipe (its first seed's run), per budget, a title and
    the fixed-noise grid (``grids/epoch_NNNN.png``) of the epoch a run stopped there would export
    (:meth:`Curve.at`). Budgets the run did not reach, or whose grid is gone, are left out."""
    rows = []
    for recipe, group in group_by_recipe(curves).items():
        run = group[0]
        row = []
        for budget in budgets:
            point = run.at(budget)
            if point is None:
                continue
            path = runs.grid_path(run.run_dir, point["epoch"])
            if path.exists():
                # two lines: a long recipe name on one would run into the next panel's title
                row.append((f"{recipe} (seed {run.seed})\n{int(budget):,} images: epoch {point['epoch']}", path))
        if row:
            rows.append(row)
    return rows


__all__ = ["BUDGET_GRIDS_FIGURE", "BUDGET_TABLE_FILES", "budget_grids", "write_budget_table", "read_budget_table",
           "CURVE_FIGURES", "Curve", "recipe_of", "read_curve", "group_by_recipe", "budget_table", "markdown_table"]
