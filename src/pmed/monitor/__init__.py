"""Monitoring a deployed model: data drift and performance over time, from bundle summaries.

- reference: :func:`reference_summaries` — aggregate summaries of the training data and
  predictions (quantiles, bins, category frequencies, missingness; never patient rows),
  made when the model is bundled;
- drift: :func:`drift_report` — PSI, KS / chi-squared and missingness tests of new data
  against those summaries, Benjamini–Hochberg corrected, flagged only when a shift is both
  significant and large; :func:`performance_by_window` — AUROC, AUPRC, Brier and
  calibration per time window with CIs; :func:`window_labels` — month, week or N-row
  windows;
- api: :func:`run_monitor` — a bundle and new patients → :class:`MonitorResult` (``drift.json``,
  ``features.csv``, ``windows.csv``, ``dashboard.html``; CLI ``pmed monitor``);
- update: :func:`update_bundle` — recalibrate or refit on new data, a new bundle with its
  version and parent's hash, promoted only on evidence from the most recent held-out window
  (CLI ``pmed update``).
"""

from pmed.monitor.api import MonitorResult, run_monitor
from pmed.monitor.drift import (
    CRAMERS_V_THRESHOLD,
    MISSING_CHANGE_THRESHOLD,
    PSI_EPSILON,
    drift_report,
    performance_by_window,
    psi,
    window_labels,
)
from pmed.monitor.reference import MIN_N_DISTRIBUTION, REFERENCE_VERSION, reference_summaries
from pmed.monitor.update import PROMOTION_RULE, Recalibrated, update_bundle

__all__ = [
    "run_monitor",
    "MonitorResult",
    "update_bundle",
    "Recalibrated",
    "PROMOTION_RULE",
    "reference_summaries",
    "drift_report",
    "performance_by_window",
    "window_labels",
    "psi",
    "PSI_EPSILON",
    "CRAMERS_V_THRESHOLD",
    "MISSING_CHANGE_THRESHOLD",
    "MIN_N_DISTRIBUTION",
    "REFERENCE_VERSION",
]
