"""Plots, kept apart from computation: each function takes results and returns a Figure.

matplotlib is imported only when a plot is drawn (headless, Agg backend); :func:`save` writes
PNG files atomically.
"""

from pmed.plots._base import save
from pmed.plots.calibration import calibration_plot
from pmed.plots.explain import beeswarm, waterfall
from pmed.plots.study import (
    confusion_matrix,
    importance_bar,
    pr_curves,
    predicted_vs_observed,
    roc_curves,
)
from pmed.plots.utility import decision_curve_plot

__all__ = [
    "save",
    "roc_curves",
    "pr_curves",
    "confusion_matrix",
    "importance_bar",
    "predicted_vs_observed",
    "calibration_plot",
    "decision_curve_plot",
    "beeswarm",
    "waterfall",
]
