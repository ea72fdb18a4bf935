"""Evaluation: leakage-free cross-validation, and clinical-grade metrics with confidence intervals.

- discrimination: AUROC with DeLong CI, paired DeLong test, threshold metrics with Wilson CIs;
- calibration: calibration-in-the-large, intercept, slope, ICI/E50/E90/Emax (as R's
  ``rms::val.prob``), reliability and smooth calibration curves, recalibration;
- utility: decision curves and threshold selection;
- tuning: nested cross-validation;
- subgroups: per-group and intersectional metrics, fairness disparities, threshold mitigation;
- conformal: prediction sets and intervals with verified coverage;
- engine: all of the above for a predictions table (``pmed evaluate``).
"""

from pmed.evaluate.calibration import (
    calibration_metrics,
    recalibrate,
    reliability_curve,
    smooth_calibration,
)
from pmed.evaluate.cv import cv_metrics, make_splits, out_of_fold_predictions
from pmed.evaluate.discrimination import delong_auc, delong_test, proportion_ci, threshold_metrics
from pmed.evaluate.engine import evaluate_binary, evaluate_predictions
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
from pmed.evaluate.predictions import (
    check_predictions,
    read_predictions,
    roc_inputs,
    select_repeat,
)
from pmed.evaluate.tuning import nested_cv, tuned
from pmed.evaluate.utility import decision_curve, select_threshold

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
    "delong_auc",
    "delong_test",
    "proportion_ci",
    "threshold_metrics",
    "calibration_metrics",
    "reliability_curve",
    "smooth_calibration",
    "recalibrate",
    "decision_curve",
    "select_threshold",
    "tuned",
    "nested_cv",
    "check_predictions",
    "read_predictions",
    "evaluate_binary",
    "evaluate_predictions",
    "roc_inputs",
    "select_repeat",
]


def __getattr__(name: str):
    # ``write_evaluation`` draws and writes, so it lives in pmed.report; this keeps the old
    # import path working without making the computing layer import the renderers.
    if name == "write_evaluation":
        from pmed.report.evaluation import write_evaluation

        return write_evaluation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
