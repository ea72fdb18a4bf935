"""Calibration of predicted probabilities, with the definitions of R's ``rms::val.prob``.

* :func:`calibration_metrics` — calibration-in-the-large, calibration intercept and slope
  (logistic recalibration, Wald intervals), Brier score and the smoothed-calibration errors
  ICI (val.prob's ``Eavg``), E50, E90 and Emax (bootstrap intervals).
* :func:`reliability_curve` — observed proportion per bin of predicted risk, Wilson intervals.
* :func:`smooth_calibration` — the lowess calibration curve on a grid, with a bootstrap band.
* :func:`recalibrate` — a leakage-free recalibrated estimator (scikit-learn's
  ``CalibratedClassifierCV`` around a whole pipeline).

Definitions (``logit(p) = log(p / (1 − p))``):

calibration-in-the-large
    The intercept ``a`` of ``glm(y ~ offset(logit(p)), family = binomial)``: the log-odds
    shift that makes the mean predicted risk match the observed event rate. 0 is ideal;
    > 0 means risks are too low on average. (The cruder difference ``mean(y) − mean(p)``
    is on the probability scale and ignores where the risks lie; it is not reported.)
calibration intercept and slope
    ``Intercept`` and ``Slope`` of rms::val.prob: the coefficients of
    ``glm(y ~ logit(p), family = binomial)``. Ideal (0, 1); a slope below 1 means the
    predictions are too extreme (over-fitting), above 1 too modest.
ICI, E50, E90, Emax
    With ``s(p)`` the lowess smooth of ``y`` on ``p`` (R's ``lowess(p, y, iter = 0)``: span
    2/3, no robustness iterations, ``delta = 0.01·range(p)``, ties averaged as
    ``approx(ties = mean)``), the mean, median, 90th percentile and maximum of
    ``|s(p) − p|`` over the patients — val.prob's ``Eavg``, (E50), ``E90`` and ``Emax``
    (Austin & Steyerberg 2019 call the mean the integrated calibration index, ICI).

Predictions of exactly 0 or 1 have an infinite logit: as val.prob does, they are left out of
the two logistic fits (with a warning) and kept everywhere else.

The logistic fits are one- and two-parameter maximum likelihood by Newton–Raphson (numpy
only). R's ``lowess`` is re-implemented here from Cleveland's (1979) algorithm, including the
``delta`` interpolation shortcut, so that ICI/E90/Emax agree with val.prob.

References
----------
Cleveland WS (1979). Robust locally weighted regression and smoothing scatterplots.
*JASA* 74:829–836.

Austin PC, Steyerberg EW (2019). The Integrated Calibration Index (ICI) and related metrics
for quantifying the calibration of logistic regression models. *Stat Med* 38:4051–4065.

Van Calster B et al. (2016). A calibration hierarchy for risk models was defined: from
utopia to empirical data. *J Clin Epidemiol* 74:167–176.
"""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from pmed.errors import PmedWarning, ValidationError
from pmed.evaluate.discrimination import _check_binary, _check_level, proportion_ci
from pmed.evaluate.metrics import _with_bootstrap

__all__ = ["calibration_metrics", "reliability_curve", "smooth_calibration", "recalibrate"]

_LOWESS_SPAN = 2 / 3  # R's lowess default, which val.prob keeps


# --------------------------------------------------------------------------------------
# R's lowess (iter = 0)
# --------------------------------------------------------------------------------------

def _fit_schedule(x: np.ndarray, ns: int, delta: float) -> np.ndarray:
    """Where R's lowess fits, and with which neighbours: rows ``(i, nleft, nright)``.

    This part of Cleveland's algorithm depends on ``x`` only. The window of ``ns`` nearest
    neighbours slides right while that narrows it; after a fit at ``x[i]``, tied points
    share it and points closer than ``delta`` are skipped (interpolated later); the next
    fit is at the last point within ``delta``, or the next point if none is. Plain Python
    floats are IEEE doubles, so every comparison is the one R's C code makes.
    """
    xl = x.tolist()
    n = len(xl)
    fits = []
    nleft, nright, i = 0, ns - 1, 0
    while True:
        if nright < n - 1 and xl[i] - xl[nleft] > xl[nright + 1] - xl[i]:
            nleft += 1
            nright += 1
            continue
        fits.append((i, nleft, nright))
        last = i
        cut = xl[last] + delta
        i = last + 1
        while i < n and xl[i] <= cut:
            if xl[i] == xl[last]:
                last = i
            i += 1
        i = max(last + 1, i - 1)
        if last >= n - 1:
            return np.array(fits, dtype=np.intp)


def _local_fits(x: np.ndarray, y: np.ndarray, sched: np.ndarray) -> np.ndarray:
    """Cleveland's local linear fits (``lowest``) at the scheduled points, vectorised.

    At ``xs = x[i]`` the bandwidth ``h`` is the distance to the farther end of the window
    ``nleft..nright``; points past the window on the right that lie within 0.999·h (ties)
    are taken too; tricube weights, full weight within 0.001·h; the slope term is dropped
    when the weighted spread of x is negligible (≤ 0.001 of the range of all x).
    """
    n = len(x)
    span_range = x[-1] - x[0]
    out = np.empty(len(sched))
    # blocks of rows small enough to stay in cache: far faster than one big matrix
    step = max(1, 131_072 // n)
    for s in range(0, len(sched), step):
        i, nl, nr = sched[s:s + step].T
        h = np.maximum(x[i] - x[nl], x[nr] - x[i])[:, None]
        # columns outside [lo, hi) carry no weight in any row of the block: left of every
        # window, or farther than h to the right
        lo = int(nl.min())
        hi = min(n, int(np.searchsorted(x, float(np.max(x[i] + h[:, 0])), side="right")) + 1)
        xc, xs = x[lo:hi][None, :], x[i][:, None]
        r = np.abs(xc - xs)
        beyond = (r > 0.999 * h) & (xc > xs)
        window = (np.arange(lo, hi)[None, :] >= nl[:, None]) & (np.cumsum(beyond, axis=1) == 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(h > 0, np.minimum(r / h, 1.0), 0.0)
        t = 1 - u * u * u  # products, not ** 3: numpy's float power is ten times slower
        w = np.where(window & (r <= 0.999 * h), t * t * t, 0.0)
        w[window & (r <= 0.001 * h)] = 1.0
        # the point itself always has weight 1, so the sum is > 0 (R's "ok" holds)
        w /= w.sum(axis=1, keepdims=True)
        centre = np.sum(w * xc, axis=1, keepdims=True)
        spread = np.sum(w * (xc - centre) ** 2, axis=1, keepdims=True)
        slope = (h > 0) & (np.sqrt(spread) > 0.001 * span_range)
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(slope, (xs - centre) / spread, 0.0)
        w = w * (b * (xc - centre) + 1.0)
        out[s:s + step] = w @ y[lo:hi]
    return out


def _r_lowess(x: np.ndarray, y: np.ndarray, f: float = _LOWESS_SPAN,
              delta: float | None = None) -> np.ndarray:
    """Fitted values of R's ``lowess(x, y, f, iter = 0, delta)`` for **sorted** ``x``.

    Only the points chosen by :func:`_fit_schedule` are fitted; the others are linearly
    interpolated between fitted neighbours (ties get their group's fit exactly). Both
    shortcuts are R's, and both move the numbers slightly: a plain lowess would not match
    val.prob to 1e-3.
    """
    n = len(x)
    if n < 2:
        return y.astype(float).copy()
    if delta is None:
        delta = 0.01 * (x[-1] - x[0])
    ns = max(2, min(n, int(f * n + 1e-7)))  # neighbours in each local fit
    sched = _fit_schedule(x, ns, delta)
    fitted_x = x[sched[:, 0]]  # strictly increasing: ties and skipped points are not refitted
    return np.interp(x, fitted_x, _local_fits(x, y, sched))


def _lowess_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """val.prob's smooth: distinct sorted ``p`` and the lowess of ``y`` there (ties averaged)."""
    order = np.argsort(p, kind="stable")  # R's order() is stable too: ties keep their order
    xs = p[order]
    fit = _r_lowess(xs, y[order])
    ux, inv = np.unique(xs, return_inverse=True)
    uy = np.bincount(inv, weights=fit) / np.bincount(inv)  # approx(..., ties = mean)
    return ux, uy


def _smooth_errors(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``|s(p) − p|`` per patient, with ``s`` val.prob's lowess calibration curve."""
    ux, uy = _lowess_curve(y, p)
    if len(ux) == 1:
        return np.abs(p - y.mean())  # val.prob's answer for a constant prediction
    return np.abs(p - uy[np.searchsorted(ux, p)])


# --------------------------------------------------------------------------------------
# logistic recalibration
# --------------------------------------------------------------------------------------

def _logistic_mle(y: np.ndarray, X: np.ndarray, offset: np.ndarray, start: np.ndarray,
                  max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Maximum likelihood logistic regression by Newton–Raphson; ``(coef, se)``.

    A handful of iterations suffice from ``start`` (no recalibration); step halving guards
    the rare overshoot. Without convergence (separation: the MLE is infinite) both are NaN.
    """
    def nll(b: np.ndarray) -> float:
        eta = X @ b + offset
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta))

    beta = start.astype(float).copy()
    cur = nll(beta)
    for _ in range(max_iter):
        mu = expit(X @ beta + offset)
        hess = (X * (mu * (1 - mu))[:, None]).T @ X
        try:
            step = np.linalg.solve(hess, X.T @ (y - mu))
        except np.linalg.LinAlgError:
            break
        t = 1.0
        while True:
            new = beta + t * step
            val = nll(new)
            if val <= cur + 1e-12 * abs(cur) or t < 1e-6:
                break
            t /= 2
        beta, cur = new, val
        if np.max(np.abs(t * step)) < 1e-10 * (1 + np.max(np.abs(beta))):
            mu = expit(X @ beta + offset)
            hess = (X * (mu * (1 - mu))[:, None]).T @ X
            try:
                cov = np.linalg.inv(hess)
            except np.linalg.LinAlgError:
                break
            return beta, np.sqrt(np.diag(cov))
    nan = np.full(X.shape[1], np.nan)
    return nan, nan


def _wald(est: float, se: float, z: float, what: str, level: float) -> dict:
    ok = np.isfinite(est) and np.isfinite(se)
    return {
        "estimate": float(est),
        "ci_low": float(est - z * se) if ok else float("nan"),
        "ci_high": float(est + z * se) if ok else float("nan"),
        "se": float(se),
        "method": f"{what}; {level:.0%} Wald CI" if ok else f"{what}; fit did not converge (separation?)",
    }


def _check_n_boot(n_boot) -> int:
    if isinstance(n_boot, bool) or not isinstance(n_boot, Integral) or n_boot < 0:
        raise ValidationError([f"n_boot must be a whole number >= 0; got {n_boot!r}"],
                              fix="pass the number of bootstrap resamples, e.g. 500")
    return int(n_boot)


def calibration_metrics(y, p, *, n_boot: int = 500, seed: int = 0, level: float = 0.95) -> dict:
    """Calibration statistics of predicted probabilities, as rms::val.prob, with CIs.

    Parameters
    ----------
    y
        Outcome, 0/1, one per patient; both classes must be present.
    p
        Predicted probability of ``y = 1``, in [0, 1].
    n_boot, seed
        Bootstrap resamples (stratified by outcome) and seed for the Brier/ICI/E50/E90/Emax
        intervals. ``n_boot = 0`` skips them (intervals NaN).
    level
        Confidence level.

    Returns
    -------
    dict
        ``calibration_in_the_large``, ``calibration_intercept``, ``calibration_slope``
        (each with ``se`` and a Wald interval), ``brier``, ``ici``, ``e50``, ``e90``,
        ``emax`` (percentile bootstrap intervals); each
        ``{"estimate", "ci_low", "ci_high", "method"}``. See the module docstring for the
        definitions; ``calibration_intercept``, ``calibration_slope``, ``brier``, ``ici``,
        ``e90`` and ``emax`` are val.prob's ``Intercept``, ``Slope``, ``Brier``, ``Eavg``,
        ``E90`` and ``Emax``.

    Warns
    -----
    UserWarning
        When predictions of exactly 0 or 1 are left out of the logistic fits.

    Raises
    ------
    pmed.errors.ValidationError
        Non-binary or missing outcomes, probabilities outside [0, 1] or NaN, one class only.
    """
    level = _check_level(level)
    n_boot = _check_n_boot(n_boot)
    y, p = _check_binary(y, p, probability=True)
    z = stats.norm.ppf(0.5 + level / 2)

    keep = (p > 0) & (p < 1)
    dropped = int(np.sum(~keep))
    note = ""
    if dropped:
        note = f" ({dropped} predictions of exactly 0 or 1 left out, as val.prob)"
        warnings.warn(
            f"{dropped} predictions of exactly 0 or 1 were left out of the logistic "
            "recalibration fits (their logit is infinite), as rms::val.prob does; they still "
            "count in the Brier score and the smoothed-calibration errors",
            PmedWarning, stacklevel=2,
        )
    yk, lg = y[keep], np.log(p[keep] / (1 - p[keep]))
    ones = np.ones((len(yk), 1))

    citl, citl_se = _logistic_mle(yk, ones, lg, np.zeros(1))
    out = {"calibration_in_the_large": _wald(
        citl[0], citl_se[0], z, "intercept of glm(y ~ offset(logit(p)), binomial)" + note, level)}
    if np.unique(p).size == 1:
        # no spread in p: the slope is not identifiable; val.prob reports slope 0 and the
        # intercept logit(mean(y))
        py = y.mean()
        what = "constant prediction: val.prob's convention, no interval"
        out["calibration_intercept"] = {"estimate": float(np.log(py / (1 - py))), "ci_low": np.nan,
                                        "ci_high": np.nan, "se": np.nan, "method": what}
        out["calibration_slope"] = {"estimate": 0.0, "ci_low": np.nan, "ci_high": np.nan,
                                    "se": np.nan, "method": what}
    else:
        coef, se = _logistic_mle(yk, np.column_stack([ones, lg]), np.zeros(len(yk)),
                                 np.array([0.0, 1.0]))
        out["calibration_intercept"] = _wald(
            coef[0], se[0], z, "intercept of glm(y ~ logit(p), binomial) (val.prob Intercept)" + note, level)
        out["calibration_slope"] = _wald(
            coef[1], se[1], z, "slope of glm(y ~ logit(p), binomial) (val.prob Slope)" + note, level)

    def point(idx: np.ndarray) -> dict[str, float]:
        yi, pi = y[idx], p[idx]
        er = _smooth_errors(yi, pi)
        return {
            "brier": float(np.mean((pi - yi) ** 2)),
            "ici": float(np.mean(er)),
            "e50": float(np.quantile(er, 0.5)),
            "e90": float(np.quantile(er, 0.9)),  # numpy's default = R's quantile type 7
            "emax": float(np.max(er)),
        }

    what = {
        "brier": "mean (p − y)²",
        "ici": "mean |lowess(p, y, iter=0) − p| (val.prob Eavg)",
        "e50": "median |lowess(p, y, iter=0) − p|",
        "e90": "90th percentile |lowess(p, y, iter=0) − p| (val.prob E90)",
        "emax": "max |lowess(p, y, iter=0) − p| (val.prob Emax)",
    }
    boot = _with_bootstrap(point, len(y), y, n_boot, seed, level)
    for k, v in boot.items():
        out[k] = {**v, "method": f"{what[k]}; {v['method']}"}
    return out


# --------------------------------------------------------------------------------------
# curves
# --------------------------------------------------------------------------------------

def reliability_curve(y, p, *, n_bins: int = 10, strategy: str = "quantile",
                      level: float = 0.95) -> pd.DataFrame:
    """Observed event proportion per bin of predicted risk, with Wilson intervals.

    Parameters
    ----------
    y
        Outcome, 0/1.
    p
        Predicted probabilities in [0, 1].
    n_bins
        Number of bins asked for. With ``"quantile"`` bins, tied predictions can merge
        bins, so fewer may come back.
    strategy
        ``"quantile"`` — bins of (about) equal size, edges at quantiles of ``p``;
        ``"uniform"`` — equal-width bins on [0, 1] (empty bins are dropped).
    level
        Confidence level of the per-bin intervals.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin`` (1-based bin number), ``n``,
        ``mean_predicted``, ``observed`` (event proportion), ``ci_low``, ``ci_high``
        (Wilson score interval of the observed proportion).
    """
    level = _check_level(level)
    y, p = _check_binary(y, p, probability=True, require_both_classes=False)
    if isinstance(n_bins, bool) or not isinstance(n_bins, Integral) or n_bins < 1:
        raise ValidationError([f"n_bins must be a whole number >= 1; got {n_bins!r}"],
                              fix="pass the number of bins, e.g. 10")
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    elif strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        raise ValidationError([f"unknown strategy {strategy!r}"], fix="use 'quantile' or 'uniform'")
    # bins are [e_k, e_k+1), the last one closed: every p falls in exactly one
    which = np.searchsorted(edges[1:-1], p, side="right")
    rows = []
    for b in np.unique(which):
        m = which == b
        k, n = int(y[m].sum()), int(m.sum())
        lo, hi = proportion_ci(k, n, level=level)
        rows.append({"bin": int(b) + 1, "n": n, "mean_predicted": float(p[m].mean()),
                     "observed": k / n, "ci_low": lo, "ci_high": hi})
    out = pd.DataFrame(rows, columns=["bin", "n", "mean_predicted", "observed", "ci_low", "ci_high"])
    out.attrs["level"] = level
    return out


def smooth_calibration(y, p, *, grid=None, n_boot: int = 200, seed: int = 0,
                       level: float = 0.95) -> pd.DataFrame:
    """The lowess calibration curve (val.prob's smoother) with a bootstrap band.

    Parameters
    ----------
    y
        Outcome, 0/1.
    p
        Predicted probabilities in [0, 1].
    grid
        Predicted risks at which to evaluate the curve; default 101 points from the
        smallest to the largest prediction.
    n_boot, seed
        Bootstrap resamples (stratified by outcome) and seed for the band; 0 skips it.
    level
        Coverage of the pointwise percentile band.

    Returns
    -------
    pandas.DataFrame
        ``predicted`` (the grid), ``observed`` (smoothed event rate), ``ci_low``,
        ``ci_high``. The curve is not extrapolated: grid points outside the range of the
        predictions are NaN, and the band at a grid point uses the resamples whose range
        covers it (near the extremes, fewer than ``n_boot``). A local linear fit to 0/1 data
        can stray slightly outside [0, 1]; it is not clipped, to stay equal to R's.
    """
    level = _check_level(level)
    n_boot = _check_n_boot(n_boot)
    y, p = _check_binary(y, p, probability=True, require_both_classes=False)
    if grid is None:
        grid = np.linspace(p.min(), p.max(), 101)
    grid = np.asarray(grid, dtype=float).ravel()

    def curve(yi: np.ndarray, pi: np.ndarray) -> np.ndarray:
        ux, uy = _lowess_curve(yi, pi)
        return np.interp(grid, ux, uy, left=np.nan, right=np.nan)

    est = curve(y, p)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    draws = np.empty((n_boot, len(grid)))
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        draws[b] = curve(y[idx], p[idx])
    alpha = (1 - level) / 2
    lo = np.full(len(grid), np.nan)
    hi = np.full(len(grid), np.nan)
    seen = (~np.isnan(draws)).any(axis=0) if n_boot else np.zeros(len(grid), bool)
    if seen.any():
        lo[seen], hi[seen] = np.nanquantile(draws[:, seen], [alpha, 1 - alpha], axis=0)
    out = pd.DataFrame({"predicted": grid, "observed": est, "ci_low": lo, "ci_high": hi})
    out.attrs["level"] = level  # for the plot's legend
    return out


# --------------------------------------------------------------------------------------
# recalibration
# --------------------------------------------------------------------------------------

def recalibrate(estimator, *, method: str = "sigmoid", cv: int = 5):
    """A recalibrated copy of ``estimator``: ``CalibratedClassifierCV`` around it.

    Pass the *whole* pipeline (preprocessing + model), not a fitted model: each of the
    ``cv`` internal folds then refits preprocessing, model and calibrator on its own
    training part, and when the result is itself cross-validated the calibration is
    learnt inside each outer training fold, so no test patient leaks into it.

    Parameters
    ----------
    estimator
        An unfitted scikit-learn classifier or pipeline with ``predict_proba`` (or
        ``decision_function``). It is cloned, not modified.
    method
        ``"sigmoid"`` (Platt scaling: a logistic recalibration, fine for small data) or
        ``"isotonic"`` (monotone, non-parametric; needs more events, roughly ≥ 1000).
    cv
        Internal folds.

    Returns
    -------
    sklearn.calibration.CalibratedClassifierCV
        Unfitted; call ``fit(X, y)``.
    """
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV

    problems = []
    if method not in ("sigmoid", "isotonic"):
        problems.append(f"unknown method {method!r}; use 'sigmoid' or 'isotonic'")
    if isinstance(cv, bool) or not isinstance(cv, Integral) or cv < 2:
        problems.append(f"cv must be a whole number >= 2; got {cv!r}")
    if not (hasattr(estimator, "fit") and (hasattr(estimator, "predict_proba")
                                           or hasattr(estimator, "decision_function"))):
        problems.append(f"{type(estimator).__name__} is not a classifier with predict_proba "
                        "or decision_function")
    if problems:
        raise ValidationError(problems, fix="pass an unfitted scikit-learn classifier pipeline")
    return CalibratedClassifierCV(clone(estimator), method=method, cv=int(cv))
