"""Evaluation: cross-validation without leakage and metrics with confidence intervals."""

from pmed.evaluate.cv import cv_metrics, make_splits, out_of_fold_predictions
from pmed.evaluate.metrics import (
    BINARY_METRICS,
    GREATER_IS_BETTER,
    REGRESSION_METRICS,
    auroc,
    average_precision,
    binary_metrics,
    confusion,
    regression_metrics,
)

__all__ = [
    "make_splits",
    "out_of_fold_predictions",
    "cv_metrics",
    "auroc",
    "average_precision",
    "binary_metrics",
    "regression_metrics",
    "confusion",
    "BINARY_METRICS",
    "REGRESSION_METRICS",
    "GREATER_IS_BETTER",
]
