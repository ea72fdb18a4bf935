"""Conformal prediction: prediction sets and intervals with a finite-sample coverage guarantee.

Thin wrappers around MAPIE (>= 1.0 API) for pmed pipelines (or any scikit-learn estimator):

* :func:`conformal_classifier` — a set of labels per patient that contains the true label
  with probability ``confidence_level`` (LAC, or APS for three or more classes);
* :func:`conformal_regressor` — an interval per patient with the same guarantee (CV+ /
  "plus", min–max, or split conformal);
* :func:`empirical_coverage` — coverage on held-out patients (with an exact binomial CI),
  mean set size or interval width: the check that the guarantee holds in practice.

The guarantee is *marginal* (on average over patients like the training ones, assuming
exchangeability), not per patient and not per subgroup; a shift between the calibration
data and the patients it is applied to voids it. Check coverage within subgroups with
:func:`empirical_coverage` on each group before relying on it there.

MAPIE is imported lazily inside the functions, so importing this module needs only numpy,
pandas, scipy and scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pmed.errors import ValidationError

__all__ = [
    "conformal_from_oof",
    "apply_conformal",
    "ConformalClassifier",
    "ConformalRegressor",
    "conformal_classifier",
    "conformal_regressor",
    "empirical_coverage",
    "set_coverage",
    "interval_coverage",
    "mean_set_size",
    "mean_interval_width",
]

_CLS_METHODS = ("lac", "aps")
_REG_METHODS = ("plus", "minmax", "split")


def _check_level(confidence_level: float) -> None:
    if not 0 < confidence_level < 1:
        raise ValidationError([f"confidence_level must lie strictly between 0 and 1, got "
                               f"{confidence_level!r}"], fix="use e.g. 0.9 for 90% coverage")


def _check_cv(cv: int | str, *, allow_split: bool) -> None:
    ok = (isinstance(cv, int) and not isinstance(cv, bool) and cv >= 2) or (
        allow_split and cv == "split")
    if not ok:
        allowed = 'an integer >= 2 or "split"' if allow_split else "an integer >= 2"
        raise ValidationError([f"cv must be {allowed}, got {cv!r}"])


def _take(X: Any, idx: np.ndarray) -> Any:
    """Rows of a DataFrame or array (pipelines need the DataFrame and its column names)."""
    return X.iloc[idx] if hasattr(X, "iloc") else np.asarray(X)[idx]


class ConformalClassifier:
    """A fitted conformal classifier (see :func:`conformal_classifier`).

    Attributes
    ----------
    classes_
        Labels in the order of the columns of the sets.
    confidence_level, method, cv, randomized
        The settings it was fitted with.
    mapie_
        The underlying fitted MAPIE object.
    """

    def __init__(self, mapie: Any, classes: np.ndarray, *, confidence_level: float, method: str,
                 cv: int | str, randomized: bool) -> None:
        self.mapie_ = mapie
        self.classes_ = classes
        self.confidence_level = confidence_level
        self.method = method
        self.cv = cv
        self.randomized = randomized

    def predict_sets(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Point labels and prediction sets.

        Returns
        -------
        labels : numpy.ndarray, shape (n,)
            The base classifier's predicted label.
        sets : numpy.ndarray of bool, shape (n, n_classes)
            ``sets[i, k]`` is True when ``classes_[k]`` is in patient i's set. A set may be
            empty (LAC: no label is plausible enough) or hold every label (the model cannot
            tell): both are informative and should be shown, not hidden.
        """
        params = {"include_last_label": "randomized" if self.randomized else True} \
            if self.method == "aps" else None
        labels, sets = self.mapie_.predict_set(X, conformity_score_params=params)
        return np.asarray(labels), np.asarray(sets, dtype=bool)[:, :, 0]

    def predict(self, X: Any) -> np.ndarray:
        """The base classifier's predicted labels."""
        return np.asarray(self.mapie_.predict(X))

    def evaluate(self, X: Any, y: Any) -> dict:
        """:func:`empirical_coverage` of the sets on held-out ``X``, ``y``."""
        _, sets = self.predict_sets(X)
        return empirical_coverage(y, sets=sets, classes=self.classes_,
                                  confidence_level=self.confidence_level)


class ConformalRegressor:
    """A fitted conformal regressor (see :func:`conformal_regressor`).

    Attributes
    ----------
    confidence_level, method, cv
        The settings it was fitted with.
    mapie_
        The underlying fitted MAPIE object.
    """

    def __init__(self, mapie: Any, *, confidence_level: float, method: str, cv: int) -> None:
        self.mapie_ = mapie
        self.confidence_level = confidence_level
        self.method = method
        self.cv = cv

    def predict_intervals(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point prediction and the lower and upper bound of each patient's interval.

        With ``method="plus"``/``"minmax"`` the point is the mean of the fold models'
        predictions (the models the intervals were built from).
        """
        point, iv = self.mapie_.predict_interval(X)
        iv = np.asarray(iv, dtype=float)
        return np.asarray(point, dtype=float), iv[:, 0, 0], iv[:, 1, 0]

    def predict(self, X: Any) -> np.ndarray:
        """Point predictions (as :meth:`predict_intervals`)."""
        return self.predict_intervals(X)[0]

    def evaluate(self, X: Any, y: Any) -> dict:
        """:func:`empirical_coverage` of the intervals on held-out ``X``, ``y``."""
        _, low, high = self.predict_intervals(X)
        return empirical_coverage(y, low=low, high=high, confidence_level=self.confidence_level)


def conformal_classifier(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    confidence_level: float = 0.9,
    method: str = "lac",
    cv: int | str = 5,
    calibration_size: float = 0.25,
    randomized: bool = False,
    seed: int = 0,
) -> ConformalClassifier:
    """Fit ``estimator`` and calibrate prediction sets with MAPIE.

    Parameters
    ----------
    estimator
        An unfitted classifier with ``predict_proba``, e.g. ``make_model(..., task="binary")``.
        It is cloned; the original is left untouched.
    X, y
        Training data (a DataFrame for pmed pipelines).
    confidence_level
        Target probability that a set contains the true label, e.g. 0.9.
    method
        Conformity score. ``"lac"`` (least ambiguous set-valued classifier: the smallest
        sets on average; may return empty sets) or ``"aps"`` (adaptive prediction sets:
        larger sets for harder patients; MAPIE allows it only for three or more classes).
    cv
        An integer k: cross-conformal — k models fitted on stratified folds, every patient
        used both to fit and (out of fold) to calibrate. ``"split"``: one model fitted on a
        random ``1 − calibration_size`` share, calibrated on the rest (cheaper; wastes data).
    calibration_size
        Calibration share for ``cv="split"``.
    randomized
        For APS only: randomise the inclusion of the last label so coverage is exact. Without
        it (the default) APS sets are deterministic but conservative — on simulated 3-class
        data they covered 97% at a 90% target.
    seed
        Seeds the folds or the split, and APS randomisation.

    Returns
    -------
    ConformalClassifier
        With ``predict_sets(X) -> (labels, sets)`` and ``evaluate(X, y)``.
    """
    from mapie.classification import CrossConformalClassifier, SplitConformalClassifier
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, train_test_split

    _check_level(confidence_level)
    _check_cv(cv, allow_split=True)
    if method not in _CLS_METHODS:
        raise ValidationError([f"unknown conformal classification method {method!r}"],
                              fix=f"use one of: {', '.join(_CLS_METHODS)}")
    yv = np.asarray(y)
    classes = np.unique(yv)
    if method == "aps" and len(classes) < 3:
        raise ValidationError(
            [f"method 'aps' needs three or more classes; y has {len(classes)}"],
            fix="use method='lac' for a binary outcome",
        )
    est = clone(estimator)
    if cv == "split":
        idx = np.arange(len(yv))
        tr, cal = train_test_split(idx, test_size=calibration_size, stratify=yv, random_state=seed)
        mapie = SplitConformalClassifier(est, confidence_level=confidence_level,
                                         conformity_score=method, prefit=False,
                                         random_state=seed)
        mapie.fit(_take(X, tr), yv[tr]).conformalize(_take(X, cal), yv[cal])
    else:
        folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
        mapie = CrossConformalClassifier(est, confidence_level=confidence_level,
                                         conformity_score=method, cv=folds, random_state=seed)
        mapie.fit_conformalize(X, yv)
    return ConformalClassifier(mapie, classes, confidence_level=confidence_level, method=method,
                               cv=cv, randomized=randomized)


def conformal_regressor(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    confidence_level: float = 0.9,
    method: str = "plus",
    cv: int = 5,
    calibration_size: float = 0.25,
    seed: int = 0,
) -> ConformalRegressor:
    """Fit ``estimator`` and calibrate prediction intervals with MAPIE.

    Parameters
    ----------
    estimator
        An unfitted regressor, e.g. ``make_model(..., task="continuous")``. It is cloned.
    X, y
        Training data.
    confidence_level
        Target probability that an interval contains the true value, e.g. 0.9.
    method
        ``"plus"`` (CV+, Barber et al. 2021: k fold models, intervals from out-of-fold
        residuals; the recommended default), ``"minmax"`` (CV-minmax: more conservative) or
        ``"split"`` (split conformal: one model, one calibration share; ``cv`` is ignored).
        All use absolute residuals, so intervals have the same width for every patient.
        CV+ prediction takes time and memory proportional to (patients predicted) ×
        (training patients); for large cohorts predict in batches or use ``"split"``.
    cv
        Number of folds for ``"plus"``/``"minmax"``.
    calibration_size
        Calibration share for ``"split"``.
    seed
        Seeds the folds or the split.

    Returns
    -------
    ConformalRegressor
        With ``predict_intervals(X) -> (point, low, high)`` and ``evaluate(X, y)``.
    """
    from mapie.regression import CrossConformalRegressor, SplitConformalRegressor
    from sklearn.base import clone
    from sklearn.model_selection import KFold, train_test_split

    _check_level(confidence_level)
    if method not in _REG_METHODS:
        raise ValidationError([f"unknown conformal regression method {method!r}"],
                              fix=f"use one of: {', '.join(_REG_METHODS)}")
    yv = np.asarray(y, dtype=float)
    est = clone(estimator)
    if method == "split":
        idx = np.arange(len(yv))
        tr, cal = train_test_split(idx, test_size=calibration_size, random_state=seed)
        mapie = SplitConformalRegressor(est, confidence_level=confidence_level, prefit=False)
        mapie.fit(_take(X, tr), yv[tr]).conformalize(_take(X, cal), yv[cal])
    else:
        _check_cv(cv, allow_split=False)
        folds = KFold(n_splits=cv, shuffle=True, random_state=seed)
        mapie = CrossConformalRegressor(est, confidence_level=confidence_level, method=method,
                                        cv=folds, random_state=seed)
        mapie.fit_conformalize(X, yv)
    return ConformalRegressor(mapie, confidence_level=confidence_level, method=method, cv=cv)


# --------------------------------------------------------------------------- coverage


def set_coverage(y: Any, sets: np.ndarray, classes: Any) -> float:
    """Share of patients whose true label is in their prediction set."""
    y = np.asarray(y)
    col = {c: k for k, c in enumerate(np.asarray(classes).tolist())}
    # a label the model never saw cannot be in any set: it counts as not covered
    pos = np.array([col.get(v, -1) for v in y.tolist()], dtype=int)
    hit = np.zeros(len(y), dtype=bool)
    known = pos >= 0
    hit[known] = np.asarray(sets, dtype=bool)[np.flatnonzero(known), pos[known]]
    return float(hit.mean())


def interval_coverage(y: Any, low: Any, high: Any) -> float:
    """Share of patients whose true value lies in ``[low, high]``."""
    y = np.asarray(y, dtype=float)
    return float(np.mean((y >= np.asarray(low)) & (y <= np.asarray(high))))


def mean_set_size(sets: np.ndarray) -> float:
    """Average number of labels per prediction set."""
    return float(np.asarray(sets, dtype=bool).sum(axis=1).mean())


def mean_interval_width(low: Any, high: Any) -> float:
    """Average width ``high − low`` of the prediction intervals."""
    return float(np.mean(np.asarray(high, dtype=float) - np.asarray(low, dtype=float)))


def empirical_coverage(
    y: Any,
    *,
    sets: np.ndarray | None = None,
    classes: Any = None,
    low: Any = None,
    high: Any = None,
    confidence_level: float | None = None,
    level: float = 0.95,
) -> dict:
    """Coverage of prediction sets or intervals on held-out patients, with a binomial CI.

    Pass either ``sets`` and ``classes`` (from :meth:`ConformalClassifier.predict_sets` and
    its ``classes_``) or ``low`` and ``high`` (from :meth:`ConformalRegressor.predict_intervals`).

    Parameters
    ----------
    y
        True labels or values of patients the sets/intervals were not calibrated on.
    confidence_level
        The nominal level, echoed in the output for comparison.
    level
        Confidence level of the Clopper–Pearson interval around the coverage.

    Returns
    -------
    dict
        ``coverage`` (``{"estimate", "ci_low", "ci_high", "method"}``), ``n``, ``nominal`` and
        either ``mean_set_size``, ``empty_set_rate``, ``singleton_rate`` (sets) or
        ``mean_width``, ``median_width`` (intervals).
    """
    is_sets = sets is not None
    if is_sets == (low is not None or high is not None) or (is_sets and classes is None) or (
            not is_sets and (low is None or high is None)):
        raise ValidationError(["pass either sets and classes, or low and high"])
    y = np.asarray(y)
    n_pred = len(sets) if is_sets else len(np.asarray(low))
    if len(y) != n_pred:
        raise ValidationError([f"y has {len(y)} values but there are {n_pred} predictions"])
    if is_sets:
        cov = set_coverage(y, sets, classes)
        s = np.asarray(sets, dtype=bool).sum(axis=1)
        extra = {"mean_set_size": float(s.mean()), "empty_set_rate": float(np.mean(s == 0)),
                 "singleton_rate": float(np.mean(s == 1))}
    else:
        cov = interval_coverage(y, low, high)
        w = np.asarray(high, dtype=float) - np.asarray(low, dtype=float)
        extra = {"mean_width": float(w.mean()), "median_width": float(np.median(w))}
    k = round(cov * len(y))
    ci = stats.binomtest(k, len(y)).proportion_ci(confidence_level=level, method="exact")
    return {
        "coverage": {"estimate": cov, "ci_low": float(ci.low), "ci_high": float(ci.high),
                     "method": f"exact (Clopper–Pearson) binomial, {level:.0%} CI"},
        "n": int(len(y)),
        "nominal": confidence_level,
        **extra,
    }


def _conformal_quantile(scores: np.ndarray, confidence_level: float) -> float:
    # the finite-sample corrected quantile: ceil((n + 1)(1 - alpha)) / n
    n = len(scores)
    q = min(1.0, np.ceil((n + 1) * confidence_level) / n)
    return float(np.quantile(scores, q, method="higher"))


def _scores(y: np.ndarray, pred: np.ndarray, task: str) -> np.ndarray:
    if task == "binary":
        return 1.0 - np.where(y == 1, pred, 1.0 - pred)  # LAC: 1 − probability of the true class
    return np.abs(y - pred)  # absolute residual


def conformal_from_oof(
    y: Any,
    pred: Any,
    folds: Any,
    *,
    task: str,
    confidence_level: float = 0.9,
) -> dict:
    """Conformal calibration from cross-validated (out-of-fold) predictions.

    Every patient's out-of-fold prediction comes from a model that did not see them, so their
    nonconformity scores (LAC for binary outcomes: 1 − probability of the true class; absolute
    residual for continuous ones) calibrate a threshold ``quantile`` for the model refitted on
    everyone: a cross-conformal scheme in the spirit of CV+ (coverage guaranteed at
    1 − 2α in theory, close to 1 − α in practice). Coverage is checked honestly fold by fold:
    the threshold for fold k comes from the other folds' scores only.

    Returns
    -------
    dict
        ``method``, ``confidence_level``, ``quantile`` (apply with :func:`apply_conformal`) and
        ``cv_coverage`` (from :func:`empirical_coverage`, with a Clopper–Pearson CI).
    """
    _check_level(confidence_level)
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    folds = np.asarray(folds)
    scores = _scores(y, pred, task)
    covered = np.zeros(len(y), dtype=bool)
    size = np.zeros(len(y))
    for f in np.unique(folds):
        test = folds == f
        q = _conformal_quantile(scores[~test], confidence_level)
        covered[test] = scores[test] <= q
        if task == "binary":
            size[test] = (1.0 - pred[test] <= q).astype(int) + (pred[test] <= q).astype(int)
        else:
            size[test] = 2 * q
    from scipy.stats import beta

    k, n = int(covered.sum()), len(covered)
    alpha = 0.05
    lo = beta.ppf(alpha / 2, k, n - k + 1) if k > 0 else 0.0
    hi = beta.ppf(1 - alpha / 2, k + 1, n - k) if k < n else 1.0
    coverage = {"estimate": k / n, "ci_low": float(lo), "ci_high": float(hi),
                "method": "fold-wise cross-conformal check, Clopper–Pearson 95% CI"}
    summary = {"mean_set_size": float(size.mean())} if task == "binary" else {"mean_width": float(size.mean())}
    return {
        "method": ("LAC prediction sets" if task == "binary" else "absolute-residual intervals")
        + " calibrated on out-of-fold predictions (cross-conformal)",
        "confidence_level": confidence_level,
        "quantile": _conformal_quantile(scores, confidence_level),
        "cv_coverage": {"coverage": coverage, "n": n, "nominal": confidence_level, **summary},
    }


def apply_conformal(pred: Any, conformal: dict, *, task: str) -> pd.DataFrame:
    """Prediction sets (binary: ``prediction_set`` as ``"0"``, ``"1"``, ``"0|1"`` or ``""``) or
    intervals (``interval_low``, ``interval_high``) from :func:`conformal_from_oof`'s quantile."""
    pred = np.asarray(pred, dtype=float)
    q = conformal["quantile"]
    if task == "binary":
        has0, has1 = (pred <= q), (1.0 - pred <= q)
        sets = np.where(has0 & has1, "0|1", np.where(has1, "1", np.where(has0, "0", "")))
        return pd.DataFrame({"prediction_set": sets})
    return pd.DataFrame({"interval_low": pred - q, "interval_high": pred + q})
