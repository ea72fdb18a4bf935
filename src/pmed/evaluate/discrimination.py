"""Discrimination with closed-form intervals that agree with R.

* :func:`delong_auc` — AUROC with DeLong's variance, as pROC's ``ci.auc(method = "delong")``.
* :func:`delong_test` — DeLong's test of two correlated ROC curves on the same patients,
  as pROC's ``roc.test(method = "delong", paired = TRUE)``.
* :func:`proportion_ci` — Wilson score (R's ``prop.test(correct = FALSE)``) or
  Clopper–Pearson (``binom.test``) interval for a proportion.
* :func:`threshold_metrics` — sensitivity, specificity, PPV and NPV at given thresholds,
  each with a Wilson interval.

DeLong's variance is computed with the O(n log n) midrank algorithm of Sun & Xu (2014):
the structural components (placement values) come from three rankings, not from the
O(n1·n0) pairwise comparison matrix, so cohorts of any size are fast.

Conventions follow pROC with ``direction = "<"``: higher scores mean the outcome (``y = 1``)
is more likely, and ties between a case and a control count one half. The direction is
never flipped to make the AUC exceed 0.5 (pROC's ``direction = "auto"`` does), so a score
that ranks patients backwards reports an AUC below 0.5.

Scores need not be probabilities here (a linear predictor or a points score ranks patients
just as well); calibration, which does need probabilities, is in
:mod:`pmed.evaluate.calibration`.

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two or more
correlated receiver operating characteristic curves: a nonparametric approach.
*Biometrics* 44:837–845.

Sun X, Xu W (2014). Fast implementation of DeLong's algorithm for comparing the areas under
correlated receiver operating characteristic curves. *IEEE Signal Processing Letters*
21:1389–1393.

Robin X et al. (2011). pROC: an open-source package for R and S+ to analyze and compare ROC
curves. *BMC Bioinformatics* 12:77.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np
from scipy import stats

from pmed.errors import ValidationError, shorten

__all__ = ["delong_auc", "delong_test", "proportion_ci", "threshold_metrics"]

_FIX_Y = "pass the binary outcome coded 0/1 (or False/True), one value per patient"


# --------------------------------------------------------------------------------------
# input checks shared with pmed.evaluate.calibration
# --------------------------------------------------------------------------------------

def _positions(mask: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:limit])
    return shown + (f", … ({len(idx)} in all)" if len(idx) > limit else "")


def _as_1d(values, name: str, problems: list[str]) -> np.ndarray | None:
    arr = np.asarray(values)
    if arr.ndim != 1:
        problems.append(f"{name} must be one-dimensional (one value per patient); got shape {arr.shape}")
        return None
    return arr


def _check_level(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < float(level) < 1:
        raise ValidationError([f"level must be a number strictly between 0 and 1; got {level!r}"],
                              fix="pass a confidence level such as 0.95")
    return float(level)


def _check_outcome(y, problems: list[str]) -> np.ndarray | None:
    arr = _as_1d(y, "y", problems)
    if arr is None:
        return None
    if arr.dtype == bool:
        return arr.astype(float)
    try:
        yf = arr.astype(float)
    except (TypeError, ValueError):
        bad = sorted({shorten(v) for v in arr.tolist() if not isinstance(v, (int, float, bool, np.number))})
        problems.append(f"y must be numeric 0/1; found non-numeric values {', '.join(bad[:5])}")
        return None
    nan = np.isnan(yf)
    if nan.any():
        problems.append(f"y has {nan.sum()} missing (NaN) value(s) at index {_positions(nan)}")
    other = ~nan & (yf != 0) & (yf != 1)
    if other.any():
        vals = ", ".join(f"{v:g}" for v in np.unique(yf[other])[:5])
        problems.append(
            f"y must be binary (0/1); {other.sum()} value(s) are neither 0 nor 1 ({vals}) "
            f"at index {_positions(other)}"
        )
    return yf


def _check_scores(p, name: str, probability: bool, problems: list[str]) -> np.ndarray | None:
    arr = _as_1d(p, name, problems)
    if arr is None:
        return None
    try:
        pf = arr.astype(float)
    except (TypeError, ValueError):
        problems.append(f"{name} must be numeric")
        return None
    nan = np.isnan(pf)
    if nan.any():
        problems.append(f"{name} has {nan.sum()} missing (NaN) value(s) at index {_positions(nan)}")
    inf = np.isinf(pf)
    if inf.any():
        problems.append(f"{name} has {inf.sum()} infinite value(s) at index {_positions(inf)}")
    if probability:
        out = ~nan & ~inf & ((pf < 0) | (pf > 1))
        if out.any():
            problems.append(
                f"{name} must be probabilities in [0, 1]; {out.sum()} value(s) are outside "
                f"(min {np.nanmin(pf[out]):g}, max {np.nanmax(pf[out]):g}) at index {_positions(out)}"
            )
    return pf


def _check_binary(
    y,
    *scores,
    names: tuple[str, ...] = ("p",),
    probability: bool = False,
    require_both_classes: bool = True,
) -> tuple[np.ndarray, ...]:
    """Validate an outcome and one or more score vectors; return them as float arrays.

    Every problem found is reported at once in one :class:`~pmed.errors.ValidationError`.
    """
    y_problems: list[str] = []
    p_problems: list[str] = []
    other: list[str] = []
    yf = _check_outcome(y, y_problems)
    ps = [_check_scores(s, nm, probability, p_problems) for s, nm in zip(scores, names, strict=True)]
    for s, nm in zip(ps, names, strict=True):
        if yf is not None and s is not None and len(s) != len(yf):
            other.append(f"y has {len(yf)} values but {nm} has {len(s)}: they must be the same patients")
    if yf is not None and not (y_problems or p_problems or other):
        if len(yf) == 0:
            other.append("no patients: y is empty")
        elif require_both_classes and (yf.min() == yf.max()):
            y_problems.append(
                f"y has a single class (all {len(yf)} patients have y = {int(yf[0])}); "
                "this statistic needs both patients with and without the outcome"
            )
    if y_problems or p_problems or other:
        fixes = [_FIX_Y] if y_problems else []
        if p_problems:
            fixes.append("pass predicted probabilities in [0, 1] with no missing values"
                         if probability else "pass finite scores with no missing values")
        if other:
            fixes.append("pass the outcome and the predictions of the same patients, in the same order")
        raise ValidationError(y_problems + p_problems + other, fix="; ".join(fixes))
    return (yf, *ps)


# --------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------

def _delong_components(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and DeLong covariance matrix of ``k`` scores (rows of ``scores``) — Sun & Xu 2014.

    With ``m`` cases (X) and ``n`` controls (Y), and midranks ``Tz`` over all patients,
    ``Tx`` within cases and ``Ty`` within controls:

    * AUC = (Σ Tz[X] − m(m+1)/2) / (m n)
    * case placements V10 = (Tz[X] − Tx) / n, control placements V01 = 1 − (Tz[Y] − Ty) / m
    * Cov = S10 / m + S01 / n, with S the sample covariances (denominator m − 1, n − 1).

    The placement values are exactly pROC's ``delongPlacements`` X and Y.
    """
    pos = y == 1
    x, yy = scores[:, pos], scores[:, ~pos]
    m, n = x.shape[1], yy.shape[1]
    tx = stats.rankdata(x, axis=1)  # midranks: ties share the average rank
    ty = stats.rankdata(yy, axis=1)
    tz = stats.rankdata(np.concatenate([x, yy], axis=1), axis=1)
    auc = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    if m < 2 or n < 2:
        # one case or one control: no variance can be estimated (pROC returns NA too)
        return auc, np.full((len(auc), len(auc)), np.nan)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return auc, s10 / m + s01 / n


def delong_auc(y, p, *, level: float = 0.95) -> dict:
    """AUROC with DeLong's standard error and confidence interval.

    Parameters
    ----------
    y
        Outcome, 0/1 (or boolean), one per patient. Both classes must be present.
    p
        Scores (predicted probabilities or any score where higher means more likely
        ``y = 1``). Not flipped: a backwards score gives an AUC below 0.5.
    level
        Confidence level of the interval.

    Returns
    -------
    dict
        ``{"estimate", "ci_low", "ci_high", "se", "method"}``. The interval is the Wald
        interval ``AUC ± z·SE`` on the AUC scale, clipped to [0, 1] — the same numbers as
        pROC's ``ci.auc(roc(y, p, direction = "<"), method = "delong")``. With a single case
        or a single control the SE and the interval are NaN (pROC returns NA).

    Raises
    ------
    pmed.errors.ValidationError
        Non-binary or missing outcomes, non-finite scores, mismatched lengths, one class only.
    """
    level = _check_level(level)
    y, p = _check_binary(y, p)
    auc, cov = _delong_components(y, p[np.newaxis, :])
    est, var = float(auc[0]), float(cov[0, 0])
    se = float(np.sqrt(max(var, 0.0))) if np.isfinite(var) else float("nan")
    z = stats.norm.ppf(0.5 + level / 2)
    lo, hi = (est - z * se, est + z * se) if np.isfinite(se) else (np.nan, np.nan)
    return {
        "estimate": est,
        "ci_low": float(np.clip(lo, 0.0, 1.0)) if np.isfinite(lo) else float("nan"),
        "ci_high": float(np.clip(hi, 0.0, 1.0)) if np.isfinite(hi) else float("nan"),
        "se": se,
        "method": f"DeLong variance (Sun & Xu fast algorithm), {level:.0%} Wald CI clipped to [0, 1]",
    }


def delong_test(y, p1, p2, *, level: float = 0.95) -> dict:
    """DeLong's test of two correlated AUROCs (two scores on the same patients).

    Parameters
    ----------
    y
        Outcome, 0/1, one per patient. Both classes must be present.
    p1, p2
        Two scores for the same patients, in the same order.
    level
        Confidence level of the interval for the difference.

    Returns
    -------
    dict
        ``{"auc1", "auc2", "difference", "se", "ci_low", "ci_high", "z", "p_value", "method"}``
        with ``difference = auc1 − auc2``, ``z = difference / se`` (``se`` from the DeLong
        covariance of the two AUCs), a two-sided p-value and the Wald interval
        ``difference ± z·se`` (not clipped), as pROC's
        ``roc.test(roc1, roc2, method = "delong", paired = TRUE)``. Two identical scores
        give ``z = 0`` and ``p = 1`` (as pROC).
    """
    level = _check_level(level)
    y, s1, s2 = _check_binary(y, p1, p2, names=("p1", "p2"))
    auc, cov = _delong_components(y, np.vstack([s1, s2]))
    d = float(auc[0] - auc[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    # the variance of a difference is >= 0; rounding can leave it at -1e-18
    se = float(np.sqrt(max(var, 0.0))) if np.isfinite(var) else float("nan")
    if not np.isfinite(se):
        zstat = float("nan")
    elif se == 0:
        zstat = 0.0 if d == 0 else float(np.copysign(np.inf, d))
    else:
        zstat = d / se
    zc = stats.norm.ppf(0.5 + level / 2)
    return {
        "auc1": float(auc[0]),
        "auc2": float(auc[1]),
        "difference": d,
        "se": se,
        "ci_low": float(d - zc * se),
        "ci_high": float(d + zc * se),
        "z": zstat,
        "p_value": float(2 * stats.norm.sf(abs(zstat))) if np.isfinite(se) else float("nan"),
        "method": f"DeLong's test for two correlated ROC curves (paired), two-sided; {level:.0%} Wald CI of the difference",
    }


# --------------------------------------------------------------------------------------
# proportions and threshold metrics
# --------------------------------------------------------------------------------------

def _is_count(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, Integral):
        return True
    return isinstance(v, Real) and float(v).is_integer()


def proportion_ci(k: int, n: int, *, level: float = 0.95, method: str = "wilson") -> tuple[float, float]:
    """Confidence interval for a proportion ``k / n``.

    Parameters
    ----------
    k, n
        Successes and trials, whole numbers with ``0 <= k <= n``.
    level
        Confidence level.
    method
        ``"wilson"`` — Wilson score interval, as R's ``prop.test(k, n, correct = FALSE)``;
        good coverage even for small ``n`` and proportions near 0 or 1, never outside [0, 1].
        ``"clopper-pearson"`` — exact (conservative) interval from beta quantiles, as R's
        ``binom.test``.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``(nan, nan)`` when ``n == 0`` (the proportion is undefined).
    """
    level = _check_level(level)
    problems = []
    if not _is_count(k) or not _is_count(n):
        problems.append(f"k and n must be whole numbers; got k={k!r}, n={n!r}")
    elif not 0 <= k <= n:
        problems.append(f"need 0 <= k <= n; got k={k}, n={n}")
    if method not in ("wilson", "clopper-pearson"):
        problems.append(f"unknown method {method!r}; use 'wilson' or 'clopper-pearson'")
    if problems:
        raise ValidationError(problems, fix="pass counts (successes k out of n trials) and a known method")
    k, n = int(k), int(n)
    if n == 0:
        return float("nan"), float("nan")
    alpha = 1 - level
    if method == "clopper-pearson":
        lo = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
        hi = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
        return lo, hi
    z = stats.norm.ppf(1 - alpha / 2)
    phat = k / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    # at k = 0 or k = n one bound is exactly 0 or 1 in exact arithmetic; pin it there
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return float(lo), float(hi)


def _prop_entry(k: int, n: int, level: float) -> dict:
    lo, hi = proportion_ci(k, n, level=level)
    return {
        "estimate": k / n if n else float("nan"),
        "ci_low": lo,
        "ci_high": hi,
        "method": f"Wilson score interval, {level:.0%} CI",
    }


def threshold_metrics(y, p, thresholds: float | Iterable[float], *, level: float = 0.95) -> list[dict]:
    """Sensitivity, specificity, PPV and NPV at each threshold, with Wilson intervals.

    Parameters
    ----------
    y
        Outcome, 0/1. One class only is allowed here: the metrics that need the missing
        class are then NaN.
    p
        Scores; a patient is called positive when ``p >= threshold``.
    thresholds
        One threshold or several.
    level
        Confidence level.

    Returns
    -------
    list of dict
        One per threshold, in the order given: ``{"threshold", "sensitivity",
        "specificity", "ppv", "npv", "tp", "fp", "tn", "fn"}``; each metric is
        ``{"estimate", "ci_low", "ci_high", "method"}`` with a Wilson score interval on its
        own denominator (cases for sensitivity, controls for specificity, test-positives
        for PPV, test-negatives for NPV). A metric whose denominator is 0 is NaN.
        PPV and NPV are at this sample's prevalence.
    """
    level = _check_level(level)
    y, p = _check_binary(y, p, require_both_classes=False)
    ths = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if ths.ndim != 1 or np.isnan(ths).any():
        raise ValidationError([f"thresholds must be numbers (no NaN); got {thresholds!r}"],
                              fix="pass one threshold or a list of thresholds")
    case = y == 1
    out = []
    for t in ths:
        called = p >= t
        tp = int(np.sum(case & called))
        fp = int(np.sum(~case & called))
        tn = int(np.sum(~case & ~called))
        fn = int(np.sum(case & ~called))
        out.append({
            "threshold": float(t),
            "sensitivity": _prop_entry(tp, tp + fn, level),
            "specificity": _prop_entry(tn, tn + fp, level),
            "ppv": _prop_entry(tp, tp + fp, level),
            "npv": _prop_entry(tn, tn + fn, level),
            "tp": tp,
            "fp": fp,
            "tn": tn,
            "fn": fn,
        })
    return out
