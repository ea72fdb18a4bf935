"""Survival models of the zoo: ``cox``, ``coxnet``, ``rsf``, ``gbsa`` and the Kaplan–Meier null ``km``.

Every family is a scikit-learn estimator with the same interface:

* ``fit(X, y)`` with ``y`` a structured array ``(event, time)`` as scikit-survival uses it
  (:func:`make_surv_y` builds one and checks it); it returns ``self``;
* ``predict(X)`` → **risk**, higher for a worse prognosis (shorter survival) — the sign
  convention of the whole of :mod:`pmed.survival`, so that every C-index reads the same way;
* ``predict_survival(X, times)`` → array ``n × len(times)`` of survival probabilities
  :math:`S(t \\mid x)`;
* ``predict_median(X)`` → the median survival time (the first time at which the predicted
  survival is ≤ 0.5), ``NaN`` where the curve never falls to 0.5 within the training follow-up;
* ``score(X, y)`` → Harrell's C of ``predict(X)``.

The fitting is done by the libraries — lifelines' ``CoxPHFitter`` for ``cox`` (Efron ties,
standard errors; it matches R's ``coxph`` to about 1e-9 on the reference data sets with the
tolerance used here), scikit-survival for ``coxnet``, ``rsf``, ``gbsa`` and the Kaplan–Meier
curve; pmed adds the input checks, the common interface and the errors. A Cox fit that would
not converge (a constant column, collinear columns, a Newton–Raphson that stalls) is refused
with an error naming the columns and the fix; it is never returned silently.

The ``cox`` family's pipeline imputes and one-hot encodes (dropping the first level, since a
Cox model has no intercept) but does not standardise: lifelines standardises internally for
the optimisation and reports each coefficient per unit of its input column, so
:func:`cox_coefficients` is on the original scale of each column, as R reports it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from pmed.errors import OptionError, StudyError, ValidationError, require, shorten
from pmed.survival._data import SurvivalWarning, check_survival_data

__all__ = [
    "make_surv_y",
    "CoxPH",
    "Coxnet",
    "SurvivalForest",
    "BoostedSurvival",
    "KaplanMeier",
    "cox_coefficients",
    "cox_preprocessor",
    "predict_survival",
    "predict_median",
    "SURVIVAL_FAMILIES",
    "register_survival_families",
]

#: how many column names a message lists before it counts the rest
_SHOW = 6


def _names(cols: Sequence[str]) -> str:
    shown = ", ".join(shorten(c, 40) for c in cols[:_SHOW])
    return shown + (f" … ({len(cols)} in all)" if len(cols) > _SHOW else "")


# ---------------------------------------------------------------------------------- y
def make_surv_y(time, event, *, time_col: str = "time", event_col: str = "event") -> np.ndarray:
    """The survival outcome as scikit-survival wants it: a structured array ``(event, time)``.

    Parameters
    ----------
    time
        Follow-up times, > 0.
    event
        1 (or ``True``) = event observed, 0 = censored.
    time_col, event_col
        Column names for the messages.

    Returns
    -------
    numpy.ndarray
        Structured array with fields ``event`` (bool) and ``time`` (float64).

    Raises
    ------
    ValidationError
        Bad times or event codes, or no event at all
        (:func:`pmed.survival._data.check_survival_data`).
    """
    t, e = check_survival_data(time, event, time_col=time_col, event_col=event_col)
    y = np.empty(len(t), dtype=[("event", bool), ("time", np.float64)])
    y["event"] = e
    y["time"] = t
    return y


def _split_y(y) -> tuple[np.ndarray, np.ndarray]:
    """``(time, event)`` of a structured survival array, checked."""
    arr = np.asarray(y)
    names = arr.dtype.names
    if names is None or len(names) != 2:
        raise OptionError("y must be a structured array (event, time), as scikit-survival uses",
                          fix="build it with pmed.survival.make_surv_y(time, event)")
    kinds = {n: arr.dtype[n].kind for n in names}
    ev = [n for n in names if kinds[n] == "b"]
    tm = [n for n in names if kinds[n] in "fiu" and n not in ev]
    if len(ev) != 1 or len(tm) != 1:
        raise OptionError("y must hold one boolean event field and one numeric time field",
                          fix="build it with pmed.survival.make_surv_y(time, event)")
    return check_survival_data(arr[tm[0]], arr[ev[0]], time_col=tm[0], event_col=ev[0])


# ---------------------------------------------------------------------------- helpers
def _as_matrix(X) -> tuple[np.ndarray, list[str], bool]:
    """``X`` as a float matrix, its column names, and whether it was a DataFrame."""
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        try:
            Z = X.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            bad = [str(c) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
            raise ValidationError([f"non-numeric feature columns {_names(bad)}: a survival model needs "
                                   "numbers"], fix="encode them first (make_model's pipeline does it)") from None
        is_frame = True
    else:
        Z = np.asarray(X, dtype=np.float64)
        if Z.ndim != 2:
            raise OptionError(f"X must be a 2-D table of features, got {Z.ndim} dimension(s)",
                              fix="pass a DataFrame or an n × p array")
        names = [f"x{i}" for i in range(Z.shape[1])]
        is_frame = False
    bad = [names[j] for j in np.flatnonzero(~np.isfinite(Z).all(axis=0))]
    if bad:
        raise ValidationError([f"feature columns {_names(bad)} hold missing or infinite values"],
                              fix="impute or drop them (the pipelines of pmed.models.make_model impute)")
    return Z, names, is_frame


def _step_at(grid: np.ndarray, surv: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Right-continuous step functions ``surv[i]`` on ``grid`` evaluated at ``times`` (1 before grid[0])."""
    idx = np.searchsorted(grid, times, side="right") - 1
    out = np.ones((surv.shape[0], len(times)))
    ok = idx >= 0
    out[:, ok] = surv[:, idx[ok]]
    return out


def _constant_columns(Z: np.ndarray, names: list[str]) -> list[str]:
    return [names[j] for j in range(Z.shape[1]) if np.ptp(Z[:, j]) == 0]


def _collinear_sets(Z: np.ndarray, names: list[str], rtol: float = 1e-7) -> list[list[str]]:
    """Sets of columns that are (numerically) exact linear combinations of each other.

    QR with column pivoting on the standardised columns: the columns pivoted past the numerical
    rank each depend on earlier ones; a least-squares fit names which. ``rtol`` catches exact
    and near-exact dependence (dummies of every level, a column copied or rescaled, a sum of
    others), not mere strong correlation, which a Cox fit survives with wide intervals.
    """
    from scipy.linalg import lstsq, qr

    n, p = Z.shape
    if p == 0:
        return []
    Zs = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    _, r, piv = qr(Zs, mode="economic", pivoting=True)
    d = np.abs(np.diag(r))
    rank = int(np.sum(d > rtol * d[0]))
    if rank >= p:
        return []
    keep = piv[:rank]
    sets = []
    for j in piv[rank:]:
        beta = lstsq(Zs[:, keep], Zs[:, j])[0] if rank else np.zeros(0)
        involved = [names[k] for k, b in zip(keep, beta, strict=True) if abs(b) > 1e-6 * max(1.0, np.abs(beta).max())]
        sets.append(sorted(involved, key=names.index) + [names[j]])
    return sets


def _monotone_columns(Z: np.ndarray, time: np.ndarray, event: np.ndarray, names: list[str]) -> list[str]:
    """Columns whose Cox coefficient has no finite maximum (monotone partial likelihood).

    A column does when at every event time the patient with the event has the lowest value of
    everyone still at risk (the coefficient runs to −∞), or at every one the highest (+∞), and
    it is not constant among those at risk (then it would be flat, not monotone). The common
    case is a 0/1 column none of whose few 1s had an event, e.g. the "missing" level of a
    category in one training fold. R's coxph warns "beta may be infinite" and returns a huge
    number; pmed names the column instead.
    """
    order = np.argsort(time, kind="mergesort")
    t, e, Zs = time[order], event[order].astype(bool), Z[order]
    if not e.any():
        return []
    first = np.searchsorted(t, t[e], side="left")  # the risk set of each event starts here
    low = np.minimum.accumulate(Zs[::-1], axis=0)[::-1][first]
    high = np.maximum.accumulate(Zs[::-1], axis=0)[::-1][first]
    ze = Zs[e]
    out = []
    for j, name in enumerate(names):
        if np.all(low[:, j] == high[:, j]):
            continue
        if np.all(ze[:, j] == low[:, j]) or np.all(ze[:, j] == high[:, j]):
            out.append(name)
    return out


def _monotone_detail(Z: np.ndarray, event: np.ndarray, names: list[str], col: str) -> str:
    """For a 0/1 column, how many patients have the rarer value and how many of them an event."""
    z = Z[:, names.index(col)]
    values = np.unique(z)
    if len(values) != 2:
        return ""
    rare = values[np.argmin([(z == v).sum() for v in values])]
    k = z == rare
    return f" ({int(event[k].sum())} events among its {int(k.sum())} patients with value {rare:g})"


def _check_times(times, max_time: float) -> np.ndarray:
    t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if t.ndim != 1 or t.size == 0:
        raise OptionError("times must be a non-empty list of horizons", fix="pass e.g. times=[365, 730]")
    bad = t[~np.isfinite(t) | (t < 0)]
    if bad.size:
        raise OptionError(f"times must be finite and ≥ 0, got {shorten(bad[0])}", fix="pass horizons ≥ 0")
    beyond = t[t > max_time]
    if beyond.size:
        raise OptionError(f"horizon {shorten(float(beyond[0]))} is beyond the last follow-up time of the training "
                          f"data ({max_time:g}): no survival estimate there",
                          fix=f"choose horizons ≤ {max_time:g}")
    return t


# ------------------------------------------------------------------------- base class
class _SurvivalModel(BaseEstimator):
    """The common interface; subclasses implement ``_fit``, ``_risk`` and ``_curves``."""

    def fit(self, X, y):
        """Fit on features ``X`` and the structured outcome ``y`` (:func:`make_surv_y`); returns self."""
        time, event = _split_y(y)
        Z, names, is_frame = _as_matrix(X)
        if Z.shape[0] != len(time):
            raise ValidationError([f"X has {Z.shape[0]} rows but y has {len(time)}"],
                                  fix="pass one outcome per row of X")
        if is_frame:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.n_features_in_ = Z.shape[1]
        self._fit(Z, names, time, event)
        self.max_time_ = float(time.max())
        return self

    def _matrix(self, X) -> np.ndarray:
        check_is_fitted(self, "max_time_")
        Z, _, _ = _as_matrix(X)
        if Z.shape[1] != self.n_features_in_:
            raise ValidationError([f"X has {Z.shape[1]} feature columns, the model was fitted on "
                                   f"{self.n_features_in_}"], fix="pass the columns the model was fitted on")
        return Z

    def predict(self, X) -> np.ndarray:
        """Risk score per row: higher = worse prognosis (shorter survival)."""
        return np.asarray(self._risk(self._matrix(X)), dtype=np.float64)

    def predict_survival(self, X, times) -> np.ndarray:
        """Survival probabilities ``S(t | x)``, shape ``n × len(times)``.

        Raises
        ------
        OptionError
            A time that is negative, not finite, or beyond the last follow-up time of the
            training data (where no model has an estimate).
        """
        t = _check_times(times, self.max_time_)
        grid, surv = self._curves(self._matrix(X))
        return _step_at(grid, surv, t)

    def predict_median(self, X) -> np.ndarray:
        """Median survival time per row; ``NaN`` where the predicted curve stays above 0.5."""
        grid, surv = self._curves(self._matrix(X))
        below = surv <= 0.5
        first = below.argmax(axis=1)
        return np.where(below.any(axis=1), grid[first], np.nan)

    def score(self, X, y) -> float:
        """Harrell's C of :meth:`predict` (ties in risk count one half)."""
        from sksurv.metrics import concordance_index_censored

        time, event = _split_y(y)
        return float(concordance_index_censored(event, time, self.predict(X))[0])


# --------------------------------------------------------------------------------- cox
class CoxPH(_SurvivalModel):
    """Cox proportional hazards with Efron ties (lifelines ``CoxPHFitter``).

    Parameters
    ----------
    penalizer
        Elastic-net penalty on the (internally standardised) coefficients; 0 = ordinary
        maximum partial likelihood, as R's ``coxph``. A small value (0.01–0.1) makes a fit
        with collinear columns identifiable.
    l1_ratio
        Share of L1 in the penalty (0 = ridge).
    tol
        Convergence tolerance of Newton–Raphson (the step norm; lifelines' ``precision``).
    max_iter
        Most Newton–Raphson steps.

    Attributes
    ----------
    coef_, se_ : numpy.ndarray
        Log hazard ratios per unit of each column, and their standard errors.
    summary_ : pandas.DataFrame
        :func:`cox_coefficients` of the fit.
    log_likelihood_ : float
        Log partial likelihood at the estimate.
    """

    def __init__(self, *, penalizer: float = 0.0, l1_ratio: float = 0.0, tol: float = 1e-12,
                 max_iter: int = 200) -> None:
        self.penalizer = penalizer
        self.l1_ratio = l1_ratio
        self.tol = tol
        self.max_iter = max_iter

    def _check_params(self) -> None:
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise OptionError(f"penalizer must be ≥ 0, got {shorten(self.penalizer)}", fix="pass e.g. penalizer=0.1")
        if not 0 <= self.l1_ratio <= 1:
            raise OptionError(f"l1_ratio must be within [0, 1], got {shorten(self.l1_ratio)}", fix="pass e.g. 0.5")
        if not (self.tol > 0 and int(self.max_iter) >= 1):
            raise OptionError("tol must be > 0 and max_iter ≥ 1", fix="keep the defaults")

    def _fit(self, Z, names, time, event) -> None:
        self._check_params()
        lifelines = require("lifelines", extra="survival", feature="the cox survival model")
        fixcols = "drop them from the features"
        const = _constant_columns(Z, names)
        if const:
            raise ValidationError([f"Cox model: constant column(s) {_names(const)} (one value in all "
                                   f"{len(time)} rows): their coefficients cannot be estimated and the fit "
                                   "would not converge"], fix=fixcols)
        if self.penalizer == 0:
            sets = _collinear_sets(Z, names)
            if sets:
                shown = "; ".join(_names(s) for s in sets[:3]) + (f"; … ({len(sets)} sets)" if len(sets) > 3 else "")
                raise ValidationError([f"Cox model: collinear columns ({shown}): one is a linear combination "
                                       "of the others, so the coefficients are not identifiable and the fit "
                                       "would not converge"],
                                      fix="drop one column of each set, or set a penalizer "
                                          "(e.g. params: {penalizer: 0.1})")
            mono = _monotone_columns(Z, time, event, names)
            if mono:
                raise ValidationError([f"Cox model: the coefficient of {_names(mono[:3])} has no finite "
                                       "estimate: the column alone orders the events (each patient with an "
                                       "event has the lowest, or each the highest, value of those still at "
                                       f"risk){_monotone_detail(Z, event, names, mono[0])}, so the fit would not "
                                       "converge"],
                                      fix=f"merge the rare level or drop {_names(mono[:3])}, or set a small "
                                          "penalizer (e.g. params: {penalizer: 0.01})")
        cols = [f"c{j}" for j in range(Z.shape[1])]
        df = pd.DataFrame(Z, columns=cols)
        df["__time"] = time
        df["__event"] = event.astype(int)
        fix = ("drop columns with very few events in one group or that duplicate others, or set a penalizer "
               "(e.g. params: {penalizer: 0.1})")
        # lifelines' first Newton step (0.95) can overshoot (on flchain the log-likelihood fell
        # from -14703 to -24581 and the step shrank to nothing, where R's coxph converges):
        # smaller first steps are tried before a fit is called non-convergent
        steps = (None, 0.5, 0.25)
        for k, step in enumerate(steps):
            last = k == len(steps) - 1
            options = {"precision": float(self.tol), "r_precision": 1e-14, "max_steps": int(self.max_iter)}
            if step is not None:
                options["step_size"] = step
            fitter = lifelines.CoxPHFitter(penalizer=float(self.penalizer), l1_ratio=float(self.l1_ratio))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    # lifelines also stops when the log-likelihood changes by < r_precision (1e-9,
                    # relative), which can leave the estimate 1e-6 short of the maximum: converge on
                    # the step size alone, as tightly as R's answer
                    fitter.fit(df, "__time", "__event", fit_options=options)
                except lifelines.exceptions.ConvergenceError as e:
                    if not last:
                        continue
                    first = str(e).strip().splitlines()[0] if str(e).strip() else "convergence halted"
                    raise ValidationError([f"Cox model did not converge: {shorten(first, 120)}"], fix=fix) from None
            params = fitter.params_[cols].to_numpy(dtype=np.float64)
            se = fitter.standard_errors_[cols].to_numpy(dtype=np.float64)
            failed = not (np.isfinite(params).all() and np.isfinite(se).all())
            halted = any(issubclass(w.category, lifelines.exceptions.ConvergenceWarning)
                         and "failed to converge" in str(w.message) for w in caught)
            if not (failed or halted) or last:
                break
        notes = []
        for w in caught:
            text = " ".join(str(w.message).split())
            # lifelines names the internal columns c0, c1, …: give the user's names back
            text = re.sub(r"'?\bc(\d+)\b'?", lambda m: repr(names[int(m.group(1))])
                          if int(m.group(1)) < len(names) else m.group(0), text)
            if issubclass(w.category, lifelines.exceptions.ConvergenceWarning):
                # "failed to converge", or "converged" with a step still large: the likelihood
                # has no unique maximum (a coefficient runs off to ±infinity)
                failed |= "failed to converge" in text or "non-unique" in text
                notes.append(text)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if failed:
            # the columns whose coefficient diverges: a hazard ratio above e^5 per standard
            # deviation is no estimate but a monotone likelihood (complete separation)
            size = np.abs(np.nan_to_num(params, nan=np.inf) * Z.std(axis=0))
            suspects = [names[j] for j in np.argsort(-size) if size[j] > 5]
            which = (f": the coefficient(s) of {_names(suspects)} run off to infinity (monotone likelihood: "
                     "the column alone separates the early events from the later ones)") if suspects else ""
            raise ValidationError([f"Cox model did not converge (Newton–Raphson, at most {self.max_iter} steps){which}"],
                                  fix=(f"drop or merge {_names(suspects)}, or set a penalizer (e.g. params: "
                                       "{penalizer: 0.1})") if suspects else fix)
        for text in notes:
            warnings.warn(f"Cox model: {shorten(text, 300)}", SurvivalWarning, stacklevel=3)
        s = fitter.summary.loc[cols]
        self.coef_ = params
        self.se_ = se
        # plain arrays, not a DataFrame: skops (the model bundle's format) cannot store pandas
        # objects; summary_ rebuilds the table from them
        self.summary_columns_ = {
            "feature": np.asarray(names, dtype=object),
            "coef": params,
            "se": se,
            "hazard_ratio": s["exp(coef)"].to_numpy(dtype=np.float64),
            "ci_low": s["exp(coef) lower 95%"].to_numpy(dtype=np.float64),
            "ci_high": s["exp(coef) upper 95%"].to_numpy(dtype=np.float64),
            "p": s["p"].to_numpy(dtype=np.float64),
        }
        self.log_likelihood_ = float(fitter.log_likelihood_)
        # baseline cumulative hazard at the mean covariates (lifelines' convention): H(t|x) =
        # H0(t) exp((x - mean) β); kept as arrays so that prediction needs no lifelines call
        self.center_ = Z.mean(axis=0)
        bch = fitter.baseline_cumulative_hazard_
        self.grid_ = bch.index.to_numpy(dtype=np.float64)
        self.baseline_cumhaz_ = bch.iloc[:, 0].to_numpy(dtype=np.float64)

    @property
    def summary_(self) -> pd.DataFrame:
        """:func:`cox_coefficients` of the fit (``AttributeError`` before fitting)."""
        if "summary_columns_" not in vars(self):
            raise AttributeError("summary_: the model is not fitted")
        return pd.DataFrame({k: list(v) if k == "feature" else v for k, v in self.summary_columns_.items()})

    def _risk(self, Z):
        return (Z - self.center_) @ self.coef_

    def _curves(self, Z):
        return self.grid_, np.exp(-np.outer(np.exp(self._risk(Z)), self.baseline_cumhaz_))


# ------------------------------------------------------------------- scikit-survival
class _Sksurv(_SurvivalModel):
    """A scikit-survival estimator behind the common interface (``estimator_``)."""

    def _make(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit(self, Z, names, time, event) -> None:
        require("sksurv", extra="survival", package="scikit-survival", feature="survival models")
        from sklearn.exceptions import ConvergenceWarning

        y = np.empty(len(time), dtype=[("event", bool), ("time", np.float64)])
        y["event"], y["time"] = event, time
        est = self._make()
        name = type(self).__name__
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                est.fit(Z, y)
            except ArithmeticError as e:
                raise ValidationError([f"{name} did not converge: {shorten(str(e), 120)}"],
                                      fix="increase the penalty (alpha) or drop extreme columns") from None
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                warnings.warn(f"{name} did not fully converge: {shorten(' '.join(str(w.message).split()), 200)}",
                              SurvivalWarning, stacklevel=3)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.estimator_ = est

    def _risk(self, Z):
        return self.estimator_.predict(Z)

    def _curves(self, Z):
        return (np.asarray(self.estimator_.unique_times_, dtype=np.float64),
                self.estimator_.predict_survival_function(Z, return_array=True))


class Coxnet(_Sksurv):
    """Elastic-net Cox (scikit-survival ``CoxnetSurvivalAnalysis``) at one penalty ``alpha``.

    Fitted with ``fit_baseline_model=True`` so that survival curves exist. Features should be
    standardised (the family's pipeline does it) since the penalty is scale-dependent.
    """

    def __init__(self, *, alpha: float = 0.02, l1_ratio: float = 0.5, tol: float = 1e-7,
                 max_iter: int = 100000) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.tol = tol
        self.max_iter = max_iter

    def _make(self):
        if not (np.isfinite(self.alpha) and self.alpha > 0):
            raise OptionError(f"alpha must be > 0, got {shorten(self.alpha)}", fix="pass e.g. alpha=0.05")
        if not 0 < self.l1_ratio <= 1:
            raise OptionError(f"l1_ratio must be within (0, 1], got {shorten(self.l1_ratio)}", fix="pass e.g. 0.5")
        from sksurv.linear_model import CoxnetSurvivalAnalysis

        return CoxnetSurvivalAnalysis(alphas=[float(self.alpha)], l1_ratio=float(self.l1_ratio), tol=self.tol,
                                      max_iter=int(self.max_iter), fit_baseline_model=True)

    @property
    def coef_(self) -> np.ndarray:
        """Coefficients at ``alpha`` (on the scale of the columns the model saw)."""
        return self.estimator_.coef_[:, 0]


def _leaf_curves(leaf: np.ndarray, weight: np.ndarray, rank: np.ndarray, event: np.ndarray, m: int):
    """Kaplan–Meier curves of every leaf of one tree, as a sorted lookup table.

    ``leaf``, ``weight`` (in-bag count), ``rank`` (index of the time among the ``m`` unique
    training times) and ``event`` of the training samples. Returns ``(key, leaf, surv)``, one
    entry per (leaf, time) of the in-bag samples, sorted by ``key = leaf·(m+1) + rank``, with
    the leaf's weighted Kaplan–Meier survival just after that time: the same estimate
    scikit-survival stores for every unique time, here kept only where it changes.
    """
    inb = weight > 0
    leaf, rank, event, weight = leaf[inb].astype(np.int64), rank[inb], event[inb], weight[inb].astype(float)
    o = np.lexsort((rank, leaf))
    leaf, rank, event, weight = leaf[o], rank[o], event[o], weight[o]
    key = leaf * (m + 1) + rank
    after = np.cumsum(weight[::-1])[::-1]  # weight at or after each sample, across leaves
    gi = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])  # first sample of each (leaf, time)
    leaf_end = np.r_[np.flatnonzero(leaf[1:] != leaf[:-1]) + 1, len(leaf)]
    at_risk = after[gi] - np.r_[after, 0.0][leaf_end[np.searchsorted(leaf_end, gi, side="right")]]
    deaths = np.add.reduceat(weight * event, gi)
    gone = deaths >= at_risk  # everyone left had the event: S drops to 0 (log would be -inf)
    logf = np.log1p(-np.where(gone, 0.0, deaths / at_risk))
    gleaf = leaf[gi]
    # cumulative sums restarted at each leaf: subtract the running total before the leaf began
    start = np.maximum.accumulate(np.where(np.r_[True, gleaf[1:] != gleaf[:-1]], np.arange(len(gi)), 0))
    cs, cz = np.cumsum(logf), np.cumsum(gone)
    log_s = cs - np.r_[0.0, cs][start]
    zero = (cz - np.r_[0, cz][start]) > 0
    return key[gi], gleaf, np.where(zero, 0.0, np.exp(log_s))


class SurvivalForest(_Sksurv):
    """Random survival forest (scikit-survival ``RandomSurvivalForest``), predicting only the
    times asked for.

    scikit-survival stores in every node of every tree a survival curve over *all* unique
    training times (n_nodes × n_times per tree: gigabytes on a few thousand patients,
    sebp/scikit-survival#343, #382). Here the forest is grown with ``low_memory=True``
    (the trees keep only the risk score) and each leaf's Kaplan–Meier curve is kept where it
    changes, from the in-bag samples (``estimators_samples_``) that fell into it;
    :meth:`predict_survival` looks up only the requested times and averages over the trees.
    The numbers are scikit-survival's own (the tests compare them with ``low_memory=False``
    to 1e-12); memory and prediction time scale with the patients, not patients × times.

    ``min_samples_leaf`` defaults to 10 (scikit-survival: 3): larger leaves give smoother
    curves and a smaller forest, with little loss of discrimination on clinical data.
    """

    def __init__(self, *, n_estimators: int = 100, min_samples_leaf: int = 10, min_samples_split: int = 20,
                 max_features: str | float | int | None = "sqrt", max_depth: int | None = None,
                 random_state: int | None = None, n_jobs: int | None = 1) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.min_samples_split = min_samples_split
        self.max_features = max_features
        self.max_depth = max_depth
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _make(self):
        from sksurv.ensemble import RandomSurvivalForest

        return RandomSurvivalForest(n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
                                    min_samples_split=self.min_samples_split, max_features=self.max_features,
                                    max_depth=self.max_depth, random_state=self.random_state,
                                    n_jobs=self.n_jobs, low_memory=True)

    def _fit(self, Z, names, time, event) -> None:
        super()._fit(Z, names, time, event)
        est = self.estimator_
        self.unique_times_ = np.unique(time)
        rank = np.searchsorted(self.unique_times_, time)
        leaves = est.apply(Z)
        m = len(self.unique_times_)
        inbag = np.stack([np.bincount(idx, minlength=len(time)) for idx in est.estimators_samples_])
        self.leaf_curves_ = [_leaf_curves(leaves[:, k], inbag[k], rank, event, m) for k in range(len(inbag))]
        # in-bag counts (trees × patients) for the infinitesimal-jackknife interval
        # (pmed.survival.intervals); the smallest integer type that holds them: 1 byte per
        # tree and patient, where a bootstrap count rarely exceeds 10
        self.inbag_ = inbag.astype(np.min_scalar_type(int(inbag.max())))

    def _tree_surv(self, k: int, leaves_k: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Tree ``k``'s leaf Kaplan–Meier survival at time ranks ``r`` (n × j, -1 = before every
        training time) for samples in its leaves ``leaves_k`` (n)."""
        key, gleaf, surv = self.leaf_curves_[k]
        m = len(self.unique_times_)
        ln = leaves_k[:, None]
        pos = np.searchsorted(key, ln * (m + 1) + r, side="right") - 1
        safe = np.maximum(pos, 0)
        found = (pos >= 0) & (gleaf[safe] == ln) & (r >= 0)
        return np.where(found, surv[safe], 1.0)

    def _at_ranks(self, leaves: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Forest survival (the mean of the trees' leaf curves) at time ranks ``r`` (n × k, -1 =
        before every training time) for samples in ``leaves`` (n × trees)."""
        out = np.zeros(r.shape)
        for k in range(len(self.leaf_curves_)):
            out += self._tree_surv(k, leaves[:, k], r)
        return out / len(self.leaf_curves_)

    def tree_survival(self, X, times) -> np.ndarray:
        """Every tree's survival ``s_b(t | x)``, shape ``trees × n × len(times)``: the per-tree
        terms whose mean is :meth:`predict_survival` (for the infinitesimal jackknife)."""
        t = _check_times(times, self.max_time_)
        leaves = self.estimator_.apply(self._matrix(X)).astype(np.int64)
        r = np.broadcast_to(np.searchsorted(self.unique_times_, t, side="right") - 1, (leaves.shape[0], len(t)))
        return np.stack([self._tree_surv(k, leaves[:, k], r) for k in range(len(self.leaf_curves_))])

    def predict_survival(self, X, times) -> np.ndarray:
        t = _check_times(times, self.max_time_)
        leaves = self.estimator_.apply(self._matrix(X)).astype(np.int64)
        r = np.searchsorted(self.unique_times_, t, side="right") - 1
        return self._at_ranks(leaves, np.broadcast_to(r, (leaves.shape[0], len(t))))

    def predict_median(self, X) -> np.ndarray:
        # survival falls with time, so each row's first time with S ≤ 0.5 is found by bisection
        # over the training times: about log2(n_times) lookups instead of the whole curve
        leaves = self.estimator_.apply(self._matrix(X)).astype(np.int64)
        m = len(self.unique_times_)
        lo = np.full(leaves.shape[0], -1)  # S > 0.5 at lo (rank -1: before every time)
        hi = np.full(leaves.shape[0], m)  # S ≤ 0.5 at hi (m: not reached)
        while np.any(hi - lo > 1):
            mid = (lo + hi) // 2
            below = self._at_ranks(leaves, np.minimum(mid, m - 1)[:, None])[:, 0] <= 0.5
            active = hi - lo > 1
            hi = np.where(active & below, mid, hi)
            lo = np.where(active & ~below, mid, lo)
        return np.where(hi < m, self.unique_times_[np.minimum(hi, m - 1)], np.nan)

    def _curves(self, Z):
        leaves = self.estimator_.apply(Z).astype(np.int64)
        r = np.arange(len(self.unique_times_))
        return self.unique_times_, self._at_ranks(leaves, np.broadcast_to(r, (Z.shape[0], len(r))))


class BoostedSurvival(_Sksurv):
    """Gradient-boosted Cox model on regression trees (scikit-survival
    ``GradientBoostingSurvivalAnalysis``, loss ``coxph``, so that survival curves exist)."""

    def __init__(self, *, n_estimators: int = 100, learning_rate: float = 0.1, max_depth: int = 3,
                 subsample: float = 1.0, min_samples_leaf: int = 5, random_state: int | None = None) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def _make(self):
        from sksurv.ensemble import GradientBoostingSurvivalAnalysis

        return GradientBoostingSurvivalAnalysis(loss="coxph", n_estimators=self.n_estimators,
                                                learning_rate=self.learning_rate, max_depth=self.max_depth,
                                                subsample=self.subsample, min_samples_leaf=self.min_samples_leaf,
                                                random_state=self.random_state)


class KaplanMeier(_SurvivalModel):
    """The null model: the training Kaplan–Meier curve for everyone; risk 0 for everyone."""

    def _fit(self, Z, names, time, event) -> None:
        require("sksurv", extra="survival", package="scikit-survival", feature="the Kaplan–Meier model")
        from sksurv.nonparametric import kaplan_meier_estimator

        x, s = kaplan_meier_estimator(event, time)
        self.grid_ = np.asarray(x, dtype=np.float64)
        self.survival_ = np.asarray(s, dtype=np.float64)

    def _risk(self, Z):
        return np.zeros(Z.shape[0])

    def _curves(self, Z):
        return self.grid_, np.tile(self.survival_, (Z.shape[0], 1))


# ------------------------------------------------------------------- pipelines, helpers
def _final(model) -> Any:
    from sklearn.pipeline import Pipeline

    return model[-1] if isinstance(model, Pipeline) else model


def _transform(model, X):
    from sklearn.pipeline import Pipeline

    return model[:-1].transform(X) if isinstance(model, Pipeline) else X


def predict_survival(model, X, times) -> np.ndarray:
    """:meth:`_SurvivalModel.predict_survival` of a model or of a ``preprocess → model`` pipeline."""
    return _final(model).predict_survival(_transform(model, X), times)


def predict_median(model, X) -> np.ndarray:
    """:meth:`_SurvivalModel.predict_median` of a model or of a ``preprocess → model`` pipeline."""
    return _final(model).predict_median(_transform(model, X))


def cox_coefficients(model, feature_names: Sequence[str] | None = None) -> pd.DataFrame:
    """The coefficient table of a fitted ``cox`` model, as R's ``summary(coxph(...))`` gives it.

    Parameters
    ----------
    model
        A fitted :class:`CoxPH`, or a pipeline ending in one (``make_model("cox", ...)``).
    feature_names
        Names for the rows; default: the columns the model was fitted on (for a pipeline, the
        output columns of its preprocessing: input columns, ``<column>_<level>`` dummies,
        ``missingindicator_<column>``).

    Returns
    -------
    pandas.DataFrame
        Columns ``feature, coef, se, hazard_ratio, ci_low, ci_high, p``: the log hazard ratio
        per unit of the column, its standard error, ``exp(coef)`` with its 95 % Wald interval,
        and the Wald p-value. On the original scale of each column: the ``cox`` pipeline does
        not standardise.

    Raises
    ------
    OptionError
        ``model`` is not a fitted Cox model, or ``feature_names`` has the wrong length.
    """
    est = _final(model)
    if not isinstance(est, CoxPH):
        raise OptionError(f"cox_coefficients needs a fitted cox model, got {type(est).__name__}",
                          fix="fit make_model('cox', task='survival', X=X) or pmed.survival.CoxPH")
    check_is_fitted(est, "summary_")
    out = est.summary_.copy()
    if feature_names is not None:
        names = [str(n) for n in feature_names]
        if len(names) != len(out):
            raise OptionError(f"{len(names)} feature names for {len(out)} coefficients",
                              fix="pass one name per column the model was fitted on")
        out["feature"] = names
    return out


def cox_preprocessor(X: pd.DataFrame):
    """The ``cox`` family's preprocessing: impute and encode, but do not standardise.

    Numeric columns: median imputation with a missingness indicator. 0/1 columns: most
    frequent value with an indicator. Categorical columns: missing as its own level, then
    one-hot encoding *without the first level* (a Cox model has no intercept, so a full set of
    dummies would be collinear); the dropped reference is the first category of the column's
    dtype, as in R. The output is a DataFrame, so the coefficients keep names.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from pmed.models.zoo import _is_binary

    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    binary = [c for c in X.columns if c not in categorical and _is_binary(X[c])]
    numeric = [c for c in X.columns if c not in categorical and c not in binary]
    num = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    bin_ = SimpleImputer(strategy="most_frequent", add_indicator=True, keep_empty_features=True)
    # the reference level is the first category of the column's dtype, as R takes a factor's
    # first level (sorting would make 'Post' the reference of ['Pre', 'Post']); "missing" is
    # a level only where the column has missing values
    levels = []
    for c in categorical:
        cats = list(X[c].cat.categories)
        levels.append(cats + (["missing"] if X[c].isna().any() else [])
                      if all(isinstance(v, str) for v in cats) else "auto")
    cat = Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                    ("onehot", OneHotEncoder(categories=levels if "auto" not in levels else "auto", drop="first",
                                             handle_unknown="ignore", sparse_output=False))])
    return ColumnTransformer([("num", num, numeric), ("bin", bin_, binary), ("cat", cat, categorical)],
                             verbose_feature_names_out=False).set_output(transform="pandas")


# ------------------------------------------------------------------------- the zoo
#: family → (estimator class, description)
SURVIVAL_FAMILIES: dict[str, tuple[type, str]] = {
    "cox": (CoxPH, "Cox proportional hazards, Efron ties (lifelines), optional penalizer; "
                   "coefficients on the input scale as R's coxph"),
    "coxnet": (Coxnet, "elastic-net Cox model (scikit-survival CoxnetSurvivalAnalysis)"),
    "rsf": (SurvivalForest, "random survival forest (scikit-survival)"),
    "gbsa": (BoostedSurvival, "gradient-boosted Cox model on trees (scikit-survival)"),
    "km": (KaplanMeier, "null model: the Kaplan–Meier curve of the training patients for everyone"),
}


def _factory(family: str):
    cls = SURVIVAL_FAMILIES[family][0]

    def factory(*, task: str, params: Mapping[str, Any], seed: int, X: pd.DataFrame):
        p = dict(params)
        allowed = cls().get_params()
        unknown = sorted(set(p) - set(allowed))
        if unknown:
            raise StudyError(f"model family {family!r} has no parameter(s) {_names(unknown)}",
                             where="key models[].params",
                             fix=f"use among: {', '.join(allowed) or '(none)'}")
        if "random_state" in allowed:
            p.setdefault("random_state", seed)
        return cls(**p)

    factory.__name__ = f"make_{family}"
    return factory


def register_survival_families() -> None:
    """Register ``cox``, ``coxnet``, ``rsf``, ``gbsa`` and ``km`` for the task ``survival`` (idempotent)."""
    from pmed.models.registry import register_model, registered_families

    known = registered_families()
    for family, (_, description) in SURVIVAL_FAMILIES.items():
        if family not in known:
            register_model(family, _factory(family), description=description, tasks=("survival",),
                           preprocessor=cox_preprocessor if family == "cox" else None)
