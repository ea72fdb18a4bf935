"""Clinical utility: decision curves and the choice of a treatment threshold.

Discrimination (AUROC) says whether a model ranks patients well; it does not say whether
acting on the model helps. Decision curve analysis (Vickers & Elkin, *Med Decis Making* 2006)
answers that: at a threshold probability ``pt`` — the risk at which a clinician is indifferent
between treating and not treating — the *net benefit* of treating every patient whose predicted
risk is at least ``pt`` is

.. math::

    \\mathrm{NB}(p_t) = \\frac{TP}{n} - \\frac{FP}{n}\\,\\frac{p_t}{1 - p_t},

true positives gained minus false positives weighted by the odds of the threshold (the harm of
an unnecessary treatment relative to the benefit of a necessary one). It is compared with
treating everyone (``prevalence − (1 − prevalence)·pt/(1 − pt)``) and treating no one (0).
The conventions — a patient is "positive" when ``p >= pt``, treat-all as above — are those of
the ``dcurves`` R/Python packages, so the numbers agree with theirs.

:func:`select_threshold` picks an operating point (Youden's J, a target sensitivity or
specificity, or minimal expected cost) and reports how uncertain that choice is: the threshold
is re-selected on every bootstrap resample, and the sensitivity, specificity, PPV and NPV at
the chosen threshold carry bootstrap intervals.

All intervals are the seeded percentile bootstraps of :mod:`pmed.evaluate.metrics`,
stratified by outcome, so the same inputs always give the same numbers.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from pmed.errors import OptionError, ValidationError
from pmed.evaluate.metrics import _threshold_metrics, _with_bootstrap

__all__ = ["DEFAULT_THRESHOLDS", "decision_curve", "select_threshold"]

#: 0.01, 0.02, …, 0.99 — rounded so that 0.07 is the float ``0.07`` and a prediction of exactly
#: 0.07 counts as positive at that threshold (``np.arange`` alone gives 0.07000000000000001)
DEFAULT_THRESHOLDS = np.round(np.arange(1, 100) / 100, 2)

_METHODS = ("youden", "sensitivity", "specificity", "cost")


def _check_binary(y, p, *, probabilities: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validate outcomes (0/1, both classes present) and predictions; return float arrays."""
    y = np.asarray(y, dtype=float).ravel()
    p = np.asarray(p, dtype=float).ravel()
    problems = []
    if len(y) != len(p):
        problems.append(f"{len(y)} outcomes but {len(p)} predictions")
    else:
        if not np.isin(y, (0.0, 1.0)).all():
            problems.append("outcomes must be 0 or 1 (no missing values)")
        elif y.min() == y.max():
            problems.append(f"every outcome is {int(y[0])}: both classes are needed")
        if not np.isfinite(p).all():
            problems.append(f"{int((~np.isfinite(p)).sum())} predictions are missing or infinite")
        elif probabilities and ((p < 0) | (p > 1)).any():
            problems.append("predictions must be probabilities in [0, 1]")
    if problems:
        raise ValidationError(problems, fix="pass 0/1 outcomes and predicted probabilities of outcome 1")
    return y, p


# --------------------------------------------------------------------------- decision curve


def _net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Net benefit at every threshold, ``p >= pt`` treated; O(T log n) by binary search."""
    n = len(y)
    pos = np.sort(p[y == 1])
    neg = np.sort(p[y == 0])
    tp = len(pos) - np.searchsorted(pos, thresholds, side="left")
    fp = len(neg) - np.searchsorted(neg, thresholds, side="left")
    return tp / n - fp / n * thresholds / (1 - thresholds)


def decision_curve(
    y: np.ndarray,
    p: np.ndarray,
    *,
    thresholds: np.ndarray | None = None,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Decision curve: net benefit of a model, of treating all and of treating none.

    Parameters
    ----------
    y
        True outcome, 0/1.
    p
        Predicted probability of outcome 1 (ideally out-of-fold or external: net benefit of
        in-sample predictions is as optimistic as their AUROC).
    thresholds
        Threshold probabilities in ``[0, 1)``; default :data:`DEFAULT_THRESHOLDS`
        (0.01 to 0.99 by 0.01). A patient is treated when ``p >= threshold``.
    n_boot, seed, level
        Bootstrap resamples (stratified by outcome, as all pmed intervals), random seed and
        confidence level of the net-benefit interval. ``n_boot=0`` skips the interval (NaN).

    Returns
    -------
    pandas.DataFrame
        One row per threshold with columns ``threshold, net_benefit, net_benefit_ci_low,
        net_benefit_ci_high, net_benefit_treat_all, net_benefit_treat_none,
        standardized_net_benefit`` (net benefit divided by the prevalence, its maximum: the
        fraction of the benefit of a perfect model that this one achieves). ``df.attrs`` holds
        ``prevalence``, ``n`` and the interval ``method``.

    Notes
    -----
    Treating all has net benefit ``prevalence`` at ``pt = 0``; a perfect model has net benefit
    ``prevalence`` at every ``pt > 0``. A model is useful at thresholds where its curve lies
    above both treat-all and treat-none.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([1, 1, 1, 0, 1, 0, 0, 1, 0, 0])
    >>> p = np.array([.9, .8, .7, .6, .55, .4, .3, .2, .15, .1])
    >>> dc = decision_curve(y, p, thresholds=[0.25, 0.5], n_boot=0)
    >>> dc["net_benefit"].round(4).tolist()  # 4/10 - 3/10 * 1/3, then 4/10 - 1/10 * 1
    [0.3, 0.3]
    """
    y, p = _check_binary(y, p, probabilities=True)
    t = DEFAULT_THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=float).ravel()
    if len(t) == 0 or not np.isfinite(t).all() or (t < 0).any() or (t >= 1).any():
        # pt = 1 would weigh a false positive infinitely: net benefit is undefined there
        raise ValidationError(["thresholds must be a non-empty list of numbers in [0, 1)"])

    def point(i: np.ndarray) -> dict[int, float]:
        return dict(enumerate(_net_benefit(y[i], p[i], t)))

    boot = _with_bootstrap(point, len(y), y, n_boot, seed, level)
    prev = float(y.mean())
    odds = t / (1 - t)
    nb = np.array([boot[k]["estimate"] for k in range(len(t))])
    df = pd.DataFrame({
        "threshold": t,
        "net_benefit": nb,
        "net_benefit_ci_low": [boot[k]["ci_low"] for k in range(len(t))],
        "net_benefit_ci_high": [boot[k]["ci_high"] for k in range(len(t))],
        "net_benefit_treat_all": prev - (1 - prev) * odds,
        "net_benefit_treat_none": np.zeros(len(t)),
        "standardized_net_benefit": nb / prev,
    })
    df.attrs.update({"prevalence": prev, "n": int(len(y)), "method": boot[0]["method"]})
    return df


# --------------------------------------------------------------------------- threshold choice


def _candidates(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct threshold with its true- and false-positive counts (``p >= t`` positive).

    The candidates are the distinct scores (ascending) and one value just above the largest,
    which treats no one: any other threshold classifies exactly as one of these does.
    """
    u = np.unique(p)
    u = np.r_[u, np.nextafter(u[-1], np.inf)]
    pos = np.sort(p[y == 1])
    neg = np.sort(p[y == 0])
    tp = len(pos) - np.searchsorted(pos, u, side="left")
    fp = len(neg) - np.searchsorted(neg, u, side="left")
    return u, tp, fp


def _select(
    y: np.ndarray, p: np.ndarray, method: str, target: float | None, cost_ratio: float | None
) -> float:
    """The threshold chosen by ``method`` on these patients.

    Ties (equal J or equal cost) go to the highest threshold: the same performance while
    treating fewer patients.
    """
    u, tp, fp = _candidates(y, p)
    n1, n0 = int(y.sum()), int(len(y) - y.sum())
    if method == "youden":
        # J·n1·n0 in integers, so that mathematically equal J are equal (no rounding ties)
        j = tp * n0 - fp * n1
        return float(u[np.flatnonzero(j == j.max())[-1]])
    if method == "sensitivity":
        # sensitivity falls as the threshold rises: the highest threshold still reaching it
        return float(u[np.flatnonzero(tp / n1 >= target)[-1]])
    if method == "specificity":
        # specificity rises with the threshold, so "highest" would treat no one: the lowest
        # threshold reaching the target keeps the most sensitivity
        return float(u[np.flatnonzero((n0 - fp) / n0 >= target)[0]])
    # expected cost in units of one false positive: cost_ratio · FN + FP
    cost = cost_ratio * (n1 - tp) + fp
    return float(u[np.flatnonzero(cost <= cost.min() * (1 + 1e-12))[-1]])


def select_threshold(
    y: np.ndarray,
    p: np.ndarray,
    *,
    method: Literal["youden", "sensitivity", "specificity", "cost"],
    target: float | None = None,
    cost_ratio: float | None = None,
    n_boot: int = 500,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Choose a decision threshold and report its uncertainty and the performance there.

    Parameters
    ----------
    y
        True outcome, 0/1.
    p
        Predicted probability (or any score: only ``"cost"`` needs calibrated probabilities
        for its analytic check to hold) of outcome 1; patients with ``p >= threshold`` are
        called positive.
    method
        ``"youden"``: maximise Youden's J = sensitivity + specificity − 1.
        ``"sensitivity"``: the highest threshold whose sensitivity is at least ``target``.
        ``"specificity"``: the lowest threshold whose specificity is at least ``target``
        (the one keeping the most sensitivity).
        ``"cost"``: minimise the expected cost ``cost_ratio · FN + FP``.
    target
        Sensitivity or specificity to reach, in ``(0, 1]``.
    cost_ratio
        Cost of a false negative divided by the cost of a false positive (> 0). For
        calibrated probabilities the cost-minimising threshold is ``1 / (1 + cost_ratio)``,
        returned as ``analytic_threshold`` for comparison.
    n_boot, seed, level
        Bootstrap resamples (stratified by outcome), random seed and confidence level.

    Returns
    -------
    dict
        ``{"method", "threshold", "sensitivity", "specificity", "ppv", "npv"}`` (plus
        ``target`` or ``cost_ratio`` and ``analytic_threshold``), each metric
        ``{"estimate", "ci_low", "ci_high", "method"}``. The threshold's interval comes from
        re-selecting it on each bootstrap resample; the metrics' intervals are those of the
        chosen threshold held fixed, so they describe its performance, not the selection.

    Notes
    -----
    The chosen threshold is always one of the observed scores (or, to treat no one, the
    float just above the largest). Selecting and evaluating on the same patients is
    optimistic; for an honest estimate select on out-of-fold predictions, or on one data set
    and report the metrics from another.
    """
    if method not in _METHODS:
        raise OptionError(f"unknown method {method!r}; use one of: {', '.join(_METHODS)}")
    if method in ("sensitivity", "specificity"):
        if target is None or not 0 < target <= 1:
            raise OptionError(f"method {method!r} needs a target in (0, 1], got {target!r}")
    if method == "cost" and (cost_ratio is None or not cost_ratio > 0 or not np.isfinite(cost_ratio)):
        raise OptionError(f"method 'cost' needs a positive cost_ratio, got {cost_ratio!r}")
    y, p = _check_binary(y, p, probabilities=False)

    chosen = _select(y, p, method, target, cost_ratio)

    def point(i: np.ndarray) -> dict[str, float]:
        at = _threshold_metrics(y[i], p[i], chosen)
        return {
            "threshold": _select(y[i], p[i], method, target, cost_ratio),
            **{k: at[k] for k in ("sensitivity", "specificity", "ppv", "npv")},
        }

    boot = _with_bootstrap(point, len(y), y, n_boot, seed, level)
    boot["threshold"]["method"] += "; threshold re-selected on each resample"
    out: dict = {"method": method, **boot}
    if method in ("sensitivity", "specificity"):
        out["target"] = float(target)
    if method == "cost":
        out["cost_ratio"] = float(cost_ratio)
        out["analytic_threshold"] = 1 / (1 + float(cost_ratio))
    return out
