"""Metrics for binary and continuous predictions, each with a bootstrap confidence interval.

Every metric is reported as ``{"estimate", "ci_low", "ci_high", "method"}``. Intervals are
seeded percentile bootstraps over patients (stratified by class for binary outcomes), so the
same inputs always give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

__all__ = [
    "auroc",
    "average_precision",
    "binary_metrics",
    "regression_metrics",
    "confusion",
    "BINARY_METRICS",
    "REGRESSION_METRICS",
    "GREATER_IS_BETTER",
    "DEFAULT_N_BOOT",
]

DEFAULT_N_BOOT = 500


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney form; ties count one half)."""
    y = np.asarray(y, dtype=bool)
    n1 = y.sum()
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = stats.rankdata(p)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision (area under the precision–recall curve, step-wise, as scikit-learn)."""
    y = np.asarray(y, dtype=float)
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-np.asarray(p, dtype=float), kind="mergesort")
    ps, ys = np.asarray(p)[order], y[order]
    # one point per distinct threshold: the last index of each run of equal scores
    last = np.r_[np.nonzero(np.diff(ps))[0], len(ps) - 1]
    tp = np.cumsum(ys)[last]
    fp = (last + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def confusion(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, int]:
    """Counts ``tn, fp, fn, tp`` with ``p >= threshold`` called positive."""
    y = np.asarray(y, dtype=bool)
    yhat = np.asarray(p) >= threshold
    return {
        "tn": int(np.sum(~y & ~yhat)),
        "fp": int(np.sum(~y & yhat)),
        "fn": int(np.sum(y & ~yhat)),
        "tp": int(np.sum(y & yhat)),
    }


def _div(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def _threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    c = confusion(y, p, threshold)
    tn, fp, fn, tp = c["tn"], c["fp"], c["fn"], c["tp"]
    sens, spec = _div(tp, tp + fn), _div(tn, tn + fp)
    ppv, npv = _div(tp, tp + fp), _div(tn, tn + fn)
    return {
        "accuracy": _div(tp + tn, tn + fp + fn + tp),
        "balanced_accuracy": (sens + spec) / 2,
        "sensitivity": sens,
        "specificity": spec,
        "ppv": ppv,
        "npv": npv,
        "f1": _div(2 * tp, 2 * tp + fp + fn),
    }


def _binary_point(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    return {
        "auroc": auroc(y, p),
        "auprc": average_precision(y, p),
        "brier": float(np.mean((p - y) ** 2)),
        **_threshold_metrics(y, p, threshold),
    }


def _regression_point(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    resid = y - yhat
    sst = np.sum((y - y.mean()) ** 2)
    const = np.ptp(yhat) == 0 or np.ptp(y) == 0
    return {
        "rmse": float(np.sqrt(np.mean(resid**2))),
        "mae": float(np.mean(np.abs(resid))),
        "r2": float(1 - np.sum(resid**2) / sst) if sst > 0 else float("nan"),
        "pearson": float("nan") if const else float(stats.pearsonr(y, yhat)[0]),
        "spearman": float("nan") if const else float(stats.spearmanr(y, yhat)[0]),
    }


BINARY_METRICS = ("auroc", "auprc", "brier", "accuracy", "balanced_accuracy", "sensitivity",
                  "specificity", "ppv", "npv", "f1")
REGRESSION_METRICS = ("rmse", "mae", "r2", "pearson", "spearman")
GREATER_IS_BETTER = {m: m not in ("brier", "rmse", "mae") for m in BINARY_METRICS + REGRESSION_METRICS}


def _with_bootstrap(
    point: Callable[[np.ndarray], dict[str, float]],
    n: int,
    strata: np.ndarray | None,
    n_boot: int,
    seed: int,
    level: float,
) -> dict[str, dict]:
    est = point(np.arange(n))
    rng = np.random.default_rng(seed)
    draws = {k: np.empty(n_boot) for k in est}
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        for k, v in point(idx).items():
            draws[k][b] = v
    alpha = (1 - level) / 2
    strat = "stratified " if strata is not None else ""
    out = {}
    for k, v in est.items():
        d = draws[k][~np.isnan(draws[k])]
        lo, hi = (np.quantile(d, [alpha, 1 - alpha]) if len(d) else (np.nan, np.nan))
        out[k] = {
            "estimate": v,
            "ci_low": float(lo),
            "ci_high": float(hi),
            "method": f"{strat}percentile bootstrap, {n_boot} resamples, seed {seed}, {level:.0%} CI",
        }
    return out


def binary_metrics(
    y: np.ndarray,
    p: np.ndarray,
    *,
    threshold: float = 0.5,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict]:
    """Discrimination, calibration-free accuracy and threshold metrics with bootstrap CIs.

    Parameters
    ----------
    y
        True outcome, 0/1.
    p
        Predicted probability of outcome 1.
    threshold
        Probability at or above which a patient is called positive.
    n_boot, seed, level
        Bootstrap resamples (stratified by outcome), random seed and confidence level.

    Returns
    -------
    dict
        metric name → ``{"estimate", "ci_low", "ci_high", "method"}`` for :data:`BINARY_METRICS`.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    return _with_bootstrap(lambda i: _binary_point(y[i], p[i], threshold), len(y), y, n_boot, seed, level)


def regression_metrics(
    y: np.ndarray,
    yhat: np.ndarray,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict]:
    """RMSE, MAE, R², Pearson and Spearman correlation with bootstrap CIs."""
    y = np.asarray(y, dtype=float)
    yhat = np.asarray(yhat, dtype=float)
    return _with_bootstrap(lambda i: _regression_point(y[i], yhat[i]), len(y), None, n_boot, seed, level)
