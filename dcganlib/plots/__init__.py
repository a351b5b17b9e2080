"""Every matplotlib figure, one module per chapter — :mod:`.data`, :mod:`.models`, :mod:`.training`,
:mod:`.evaluation` — and :func:`save_figure` (:mod:`.saving`). Callers use ``plots.X`` for all of them.

Figures are made through ``pyplot`` so notebooks show them inline; :func:`save_figure` writes them to
``images/`` as PNG (≥ 150 dpi) and PDF under stable names. Every ``plot_*`` that draws one panel takes
``ax=`` to draw into a panel of a larger figure, and legends stay off the data (outside the axes or in a
free corner). Without a display (a cluster node, CI) matplotlib is switched to the non-interactive Agg
backend. Images are float ``[-1, 1]`` or uint8 ``[0, 255]`` (:mod:`dcganlib.pixels`); grids come from
:mod:`dcganlib.images`.
"""

from __future__ import annotations

import os
import sys

import matplotlib

# Pick Agg before pyplot loads when nothing can show a window; notebooks (ipykernel sets
# MPLBACKEND) and desktops keep their own backend.
if (
    sys.platform.startswith("linux")
    and not os.environ.get("MPLBACKEND")
    and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    and "ipykernel" not in sys.modules
):
    matplotlib.use("Agg")

from .saving import MIN_DPI, figure_and_axes, save_figure  # noqa: E402
from .data import (plot_data_survey, plot_image_histograms, plot_preprocessing, plot_sample_grid,  # noqa: E402
                   plot_split_samples)
from .models import model_summary_table, plot_model_diagram  # noqa: E402
from .training import (QUALITY_LABELS, plot_budget_grids, plot_history, plot_quality_curves,  # noqa: E402
                       plot_quality_history, plot_ssim_over_epochs)
from .evaluation import (plot_closest_pairs, plot_diversity, plot_feature_metrics, plot_gallery,  # noqa: E402
                         plot_power_spectra, plot_roc, plot_ssim_histograms, plot_tissue_intensity)

__all__ = [
    "MIN_DPI", "save_figure", "figure_and_axes", "plot_sample_grid", "plot_image_histograms", "plot_data_survey",
    "plot_preprocessing", "plot_history", "model_summary_table", "plot_model_diagram", "plot_ssim_histograms",
    "plot_diversity", "plot_roc", "plot_power_spectra", "plot_tissue_intensity", "plot_feature_metrics",
    "plot_closest_pairs", "plot_ssim_over_epochs", "plot_gallery", "plot_split_samples", "QUALITY_LABELS",
    "plot_quality_history", "plot_quality_curves", "plot_budget_grids",
]
