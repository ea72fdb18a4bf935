"""Metrics of survival predictions, with the statistics of R's ``survival`` package.

Sign convention (the same everywhere in pmed): ``risk`` is higher for a *worse* prognosis
(shorter survival); ``surv`` is the predicted probability of being event-free at a horizon.

Every metric is returned as ``{"estimate", "ci_low", "ci_high", "method"}``.

* :func:`harrell_c` — Harrell's C, equal to R's
  ``concordance(Surv(time, status) ~ risk, reverse = TRUE)``, with R's infinitesimal-jackknife
  standard error (CI = estimate ± z·se).
* :func:`uno_c` — Uno's C with IPCW weights 1/G(t−)² truncated at ``tau``, equal to R's
  ``concordance(..., reverse = TRUE, timewt = "n/G2", ymax = tau)``.
* :func:`td_auc` — cumulative/dynamic AUC at horizons (scikit-survival
  ``cumulative_dynamic_auc``), bootstrap CI.
* :func:`brier` and :func:`integrated_brier` — IPCW Brier score (scikit-survival
  ``brier_score`` / ``integrated_brier_score``) beside the Kaplan–Meier null model's.
* :func:`calibration_at` — predicted vs Kaplan–Meier observed risk by risk group, the
  calibration slope and the integrated calibration index (ICI) at a horizon.
* :func:`decision_curve` — net benefit at a horizon with Kaplan–Meier event probabilities.

Concordance rules (R's, followed exactly): a pair is comparable when the shorter time is an
event; a censored time tied with an event time counts as longer (still at risk); two events at
the same time are "tied.y" and left out; a pair tied in risk counts ½. Times equal within
``sqrt(machine eps)`` are merged first, as R's ``aeqSurv`` does.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pmed.errors import OptionError, ValidationError, format_rows
from pmed.survival._data import SurvivalWarning, check_survival_data

__all__ = [
    "harrell_c",
    "harrell_c_difference",
    "uno_c",
    "td_auc",
    "brier",
    "integrated_brier",
    "calibration_at",
    "decision_curve",
    "km_survival",
    "check_horizons",
    "MIN_AT_RISK",
]

#: fewer subjects still at risk beyond a horizon than this triggers a warning
MIN_AT_RISK = 10

_SK_EXTRA = "survival"


def _metric(estimate: float, lo: float, hi: float, method: str, **extra) -> dict:
    out = {"estimate": float(estimate), "ci_low": float(lo), "ci_high": float(hi), "method": method}
    out.update(extra)
    return out


# --------------------------------------------------------------------------------------
# concordance, as R's survival::concordance
# --------------------------------------------------------------------------------------

def _timefix(time: np.ndarray) -> np.ndarray:
    """R's ``aeqSurv``: merge times that differ by less than sqrt(eps) (absolute or relative)."""
    tol = np.sqrt(np.finfo(float).eps)
    y = np.unique(time[np.isfinite(time)])
    if len(y) < 2:
        return time
    dy = np.diff(y)
    tied = (dy <= tol) | (dy / np.mean(np.abs(y)) <= tol)
    if not tied.any():
        return time
    cuts = y[np.concatenate([[True], ~tied])]
    return cuts[np.searchsorted(cuts, time, side="right") - 1]


def _censoring_left(time: np.ndarray, event: np.ndarray, at: np.ndarray) -> np.ndarray:
    """G(t−), the Kaplan–Meier of censoring just before ``at``, as R's ``fastkm1``.

    At a tied time the censorings happen after the events, so the censoring hazard at ``u`` is
    ``c(u) / (n(u) − d(u))``.
    """
    u, inv = np.unique(time, return_inverse=True)
    d = np.bincount(inv, weights=event.astype(float), minlength=len(u))
    c = np.bincount(inv, weights=(~event).astype(float), minlength=len(u))
    n = len(time) - np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=len(u)))[:-1]])
    denom = n - d
    hazard = np.divide(c, denom, out=np.zeros_like(c), where=denom > 0)
    g_after = np.cumprod(1 - hazard)
    g_before = np.concatenate([[1.0], g_after[:-1]])
    return g_before[np.searchsorted(u, at, side="left")]


def _concordance(time: np.ndarray, event: np.ndarray, risk: np.ndarray, tw: np.ndarray,
                 chunk: int = 512) -> tuple[float, float, dict[str, float], np.ndarray]:
    """Weighted concordance (pair weight ``tw`` of the event member) and R's IJ standard error.

    Returns ``(C, se, counts, dfbeta)``; ``counts`` has R's names (concordant … tied.xy), with a
    pair counted once; ``dfbeta`` is each subject's influence on Somers' d (C = (d + 1)/2). The influence of subject k on each count is the weighted number of pairs it
    belongs to; the variance is that of R's ``concordancefit`` (``sum(dfbeta^2) / 4``).
    """
    n = len(time)
    infl = np.zeros((n, 3))  # concordant, discordant, tied.x
    tied_y = tied_xy = 0.0
    ev_idx = np.flatnonzero(event & (tw > 0))
    for start in range(0, len(ev_idx), chunk):
        rows = ev_idx[start:start + chunk]
        ti, xi, wi = time[rows, None], risk[rows, None], tw[rows, None]
        same_t = time[None, :] == ti
        comp = (time[None, :] > ti) | (same_t & ~event[None, :])
        gt = xi > risk[None, :]
        lt = xi < risk[None, :]
        eq = ~gt & ~lt
        for k, rel in enumerate((gt, lt, eq)):
            m = (comp & rel) * wi
            infl[rows, k] += m.sum(axis=1)
            infl[:, k] += m.sum(axis=0)
        # events tied in time: each unordered pair once (the later index of the pair counts it)
        ty = same_t & event[None, :] & (np.arange(n)[None, :] < rows[:, None])
        tied_y += float((ty & ~eq).sum())
        tied_xy += float((ty & eq).sum())
    # each pair was added to both members' influence: the counts are half the column sums
    conc, disc, tx = (float(v) for v in infl.sum(axis=0) / 2)
    npair = conc + disc + tx
    if npair == 0:
        raise ValidationError(["no comparable pairs: every event time is tied with every longer time, "
                               "or no event lies before tau"],
                              fix="a concordance needs at least one event followed by a longer time")
    somer = (conc - disc) / npair
    dfbeta = (infl[:, 0] - infl[:, 1]) / npair - somer / npair * infl.sum(axis=1)
    se = float(np.sqrt(np.sum(dfbeta ** 2) / 4))
    counts = {"concordant": conc, "discordant": disc, "tied.x": tx, "tied.y": tied_y, "tied.xy": tied_xy}
    return float((somer + 1) / 2), se, counts, dfbeta


def _risk_array(risk, n: int, *, name: str = "risk") -> np.ndarray:
    x = np.asarray(risk, dtype=float).ravel()
    if len(x) != n:
        raise ValidationError([f"{name!r} has {len(x)} values for {n} subjects"],
                              fix="pass one score per subject")
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValidationError([f"{name!r}: missing or non-finite score at rows "
                               f"{format_rows((np.flatnonzero(bad) + 1).tolist())}"],
                              fix="give every subject a finite risk score")
    return x


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise OptionError(f"level must be in (0, 1), got {level}", fix="use e.g. 0.95")
    return float(stats.norm.ppf(0.5 + level / 2))


def harrell_c(time, event, risk, *, level: float = 0.95) -> dict:
    """Harrell's C of a risk score (higher = worse), as R ``survival::concordance``.

    Parameters
    ----------
    time, event
        Follow-up time (> 0) and event indicator (1 event, 0 censored).
    risk
        Risk score: higher means shorter expected survival.
    level
        Confidence level of the interval.

    Returns
    -------
    dict
        ``estimate, ci_low, ci_high, method`` plus ``se`` (R's infinitesimal-jackknife
        standard error) and ``counts`` (R's concordant, discordant, tied.x, tied.y, tied.xy).

    Examples
    --------
    >>> r = harrell_c([1, 2, 3, 4], [1, 1, 0, 1], [4, 3, 3, 1])
    >>> round(r["estimate"], 4)  # pairs (1,2) (1,3) (1,4) (2,3 tied risk) (2,4): 4.5/5
    0.9
    """
    t, e = check_survival_data(time, event)
    x = _risk_array(risk, len(t))
    z = _z(level)
    c, se, counts, _ = _concordance(_timefix(t), e, x, np.ones(len(t)))
    # R reports only the SE; the normal interval is clipped to [0, 1], where C lives
    return _metric(c, max(c - z * se, 0.0), min(c + z * se, 1.0),
                   "R survival::concordance(reverse = TRUE); infinitesimal-jackknife SE, normal CI",
                   se=se, counts=counts)


def harrell_c_difference(time, event, risk, baseline, *, level: float = 0.95) -> dict:
    """How much a risk score's Harrell's C exceeds a baseline score's, on the same patients.

    Both concordances are computed on the same pairs, so their errors are correlated: the
    standard error of the difference comes from the two scores' per-patient influences (the
    infinitesimal jackknife R's ``concordance(fit1, fit2)`` uses for its variance matrix),
    ``se = sqrt(v11 + v22 − 2·v12)``, which is much smaller than treating the two as independent.

    Parameters
    ----------
    time, event
        Follow-up time (> 0) and event indicator (1 event, 0 censored).
    risk, baseline
        The two risk scores (higher = worse), e.g. out-of-fold predictions of a model with and
        without a modality.
    level
        Confidence level of the interval.

    Returns
    -------
    dict
        ``estimate`` (C of ``risk`` − C of ``baseline``), ``ci_low, ci_high, method, se`` and
        ``p`` (two-sided, normal), ``c`` and ``c_baseline``.
    """
    t, e = check_survival_data(time, event)
    x, b = _risk_array(risk, len(t)), _risk_array(baseline, len(t), name="baseline")
    z = _z(level)
    t = _timefix(t)
    c1, _, _, d1 = _concordance(t, e, x, np.ones(len(t)))
    c0, _, _, d0 = _concordance(t, e, b, np.ones(len(t)))
    diff = c1 - c0
    se = float(np.sqrt(np.sum((d1 - d0) ** 2) / 4))
    p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else float("nan")
    return _metric(diff, diff - z * se, diff + z * se,
                   "difference of Harrell's C on the same patients; infinitesimal-jackknife SE of the "
                   "difference as R survival::concordance(fit1, fit2), normal CI", se=se, p=p, c=c1,
                   c_baseline=c0)


def uno_c(time, event, risk, *, tau: float | None = None, level: float = 0.95) -> dict:
    """Uno's C: IPCW concordance truncated at ``tau``, as R's ``timewt = "n/G2", ymax = tau``.

    Each comparable pair whose shorter time ``T_i`` is an event weighs ``1 / G(T_i−)²``, where
    ``G`` is the Kaplan–Meier estimate of the censoring distribution on the same data (censorings
    tied with events happen after them); pairs with ``T_i > tau`` weigh 0. With fewer than two
    events R falls back to Harrell's weights, and so does this.

    Notes
    -----
    scikit-survival's ``concordance_index_ipcw`` differs from R with tied times
    (scikit-survival#428): it evaluates ``G`` at ``T_i`` rather than just before and excludes
    ``T_i = tau``. pmed follows R.
    """
    t, e = check_survival_data(time, event)
    x = _risk_array(risk, len(t))
    if tau is not None and not (np.isfinite(tau) and tau > 0):
        raise OptionError(f"tau must be a positive number, got {tau}",
                          fix="give the truncation time in the unit of the time column, e.g. --tau 365")
    z = _z(level)
    t = _timefix(t)
    if e.sum() < 2:
        tw = np.ones(len(t))
    else:
        g = _censoring_left(t, e, t)
        tw = np.where(e, 1.0 / np.where(g > 0, g, np.nan) ** 2, 0.0)
    if tau is not None:
        if not (e & (t <= tau)).any():
            raise OptionError(f"tau {tau:g} is before the first event (time {t[e].min():g})",
                              fix="choose a tau after the first event times")
        tw = np.where(t <= tau, tw, 0.0)
    c, se, counts, _ = _concordance(t, e, x, np.nan_to_num(tw))
    trunc = "" if tau is None else f", ymax = {tau:g}"
    return _metric(c, max(c - z * se, 0.0), min(c + z * se, 1.0),
                   f'R survival::concordance(reverse = TRUE, timewt = "n/G2"{trunc}); '
                   "infinitesimal-jackknife SE, normal CI", se=se, counts=counts,
                   tau=None if tau is None else float(tau))


# --------------------------------------------------------------------------------------
# horizons, Kaplan–Meier
# --------------------------------------------------------------------------------------

def km_survival(time: np.ndarray, event: np.ndarray, at) -> np.ndarray:
    """Kaplan–Meier survival S(t) (right-continuous) at times ``at`` (scikit-survival's estimator)."""
    from pmed.errors import require

    require("sksurv", extra=_SK_EXTRA, package="scikit-survival", feature="survival metrics")
    from sksurv.nonparametric import kaplan_meier_estimator

    x, s = kaplan_meier_estimator(np.asarray(event, dtype=bool), np.asarray(time, dtype=float))
    idx = np.searchsorted(x, np.asarray(at, dtype=float), side="right") - 1
    return np.where(idx >= 0, s[np.clip(idx, 0, None)], 1.0)


def check_horizons(time: np.ndarray, event: np.ndarray, horizons: Sequence[float],
                   *, source: str | None = None, time_col: str = "time") -> list[float]:
    """Refuse horizons that cannot be estimated; warn when few subjects remain at risk.

    A horizon must be > 0, on or after the first event (no event before it: nothing to
    discriminate), and before the last follow-up time (beyond it nobody is at risk and the
    censoring weight ``1/G(t)`` is undefined).
    """
    out = []
    last = float(np.max(time))
    first_event = float(np.min(time[event]))
    for h in horizons:
        h = float(h)
        if not (np.isfinite(h) and h > 0):
            raise OptionError(f"horizon must be a positive number, got {h:g}",
                              fix="give horizons in the unit of the time column, e.g. --horizon 365")
        if h >= last:
            raise OptionError(
                f"horizon {h:g} is beyond the follow-up: the last follow-up time in column {time_col!r} "
                f"is {last:g}, so nobody is at risk after it and the censoring weight 1/G(t) is undefined",
                file=source, fix=f"choose horizons below {last:g} (e.g. the median follow-up)")
        if h < first_event:
            raise OptionError(
                f"horizon {h:g} is before the first event (time {first_event:g} in column {time_col!r}): "
                "no event by then", file=source, fix=f"choose horizons of at least {first_event:g}")
        at_risk = int(np.sum(time > h))
        if at_risk < MIN_AT_RISK:
            warnings.warn(f"horizon {h:g}: only {at_risk} subjects still at risk after it (last follow-up "
                          f"{last:g}); estimates there are unstable", SurvivalWarning, stacklevel=2)
        out.append(h)
    return out


def _structured(time: np.ndarray, event: np.ndarray):
    from sksurv.util import Surv

    return Surv.from_arrays(event=np.asarray(event, dtype=bool), time=np.asarray(time, dtype=float))


def _bootstrap(fn: Callable[[np.ndarray], np.ndarray], n: int, *, n_boot: int, seed: int,
               level: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Percentile bootstrap of a vector statistic over subjects; resamples where ``fn`` fails
    (e.g. a horizon past the resample's last time) are skipped and counted."""
    rng = np.random.default_rng(seed)
    vals = []
    skipped = 0
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        try:
            v = np.asarray(fn(idx), dtype=float)
        except (ValueError, ZeroDivisionError, np.linalg.LinAlgError, ValidationError):
            skipped += 1
            continue
        vals.append(v)
    if not vals:
        return np.array([np.nan]), np.array([np.nan]), skipped
    a = np.vstack(vals)
    alpha = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(a, alpha, axis=0), np.nanquantile(a, 1 - alpha, axis=0), skipped


def _boot_method(n_boot: int, seed: int, level: float, skipped: int) -> str:
    if n_boot == 0:
        return "no interval (n_boot = 0)"
    extra = f", {skipped} resamples without an estimate skipped" if skipped else ""
    return f"percentile bootstrap, {n_boot} resamples, seed {seed}, {level:.0%} CI{extra}"


# --------------------------------------------------------------------------------------
# time-dependent AUC, Brier score
# --------------------------------------------------------------------------------------

def td_auc(time, event, risk, horizons: Sequence[float], *, n_boot: int = 200, seed: int = 0,
           level: float = 0.95) -> dict[str, dict]:
    """Cumulative/dynamic AUC at each horizon (scikit-survival ``cumulative_dynamic_auc``).

    Cases are subjects with an event by ``t``, controls those still event-free after ``t``;
    cases are weighted by the inverse probability of censoring estimated on the same data.

    Returns
    -------
    dict
        ``{"<t>": {estimate, ci_low, ci_high, method}}``.
    """
    from sksurv.metrics import cumulative_dynamic_auc

    t, e = check_survival_data(time, event)
    x = _risk_array(risk, len(t))
    hs = check_horizons(t, e, horizons)

    def point(idx: np.ndarray) -> np.ndarray:
        y = _structured(t[idx], e[idx])
        return cumulative_dynamic_auc(y, y, x[idx], hs)[0]

    est = point(np.arange(len(t)))
    lo, hi, skipped = (_bootstrap(point, len(t), n_boot=n_boot, seed=seed, level=level) if n_boot
                       else (np.full(len(hs), np.nan), np.full(len(hs), np.nan), 0))
    method = "scikit-survival cumulative_dynamic_auc (IPCW); " + _boot_method(n_boot, seed, level, skipped)
    return {_key(h): _metric(est[i], lo[i], hi[i], method) for i, h in enumerate(hs)}


def _key(h: float) -> str:
    return f"{h:g}"


def _surv_matrix(surv, n: int, k: int) -> np.ndarray:
    s = np.asarray(surv, dtype=float).reshape(n, k) if np.ndim(surv) else None
    if s is None or not np.isfinite(s).all() or (s < 0).any() or (s > 1).any():
        raise ValidationError(["survival probabilities must be finite numbers in [0, 1]"],
                              fix="pass S(t) = P(event-free at t), not a risk score or a percentage")
    return s


def brier(time, event, surv, horizons: Sequence[float], *, n_boot: int = 200, seed: int = 0,
          level: float = 0.95) -> dict[str, dict]:
    """IPCW Brier score at each horizon, beside the Kaplan–Meier null model's.

    Parameters
    ----------
    surv
        Predicted survival probabilities, shape ``(n, len(horizons))``.

    Returns
    -------
    dict
        ``{"<t>": {estimate, ci_low, ci_high, method, km_null: {...}}}``: the model's score
        and that of predicting the cohort's Kaplan–Meier S(t) for everyone (lower is better).
    """
    from sksurv.metrics import brier_score

    t, e = check_survival_data(time, event)
    hs = check_horizons(t, e, horizons)
    s = _surv_matrix(surv, len(t), len(hs))

    def point(idx: np.ndarray) -> np.ndarray:
        y = _structured(t[idx], e[idx])
        km = np.tile(km_survival(t[idx], e[idx], hs), (len(idx), 1))
        return np.concatenate([brier_score(y, y, s[idx], hs)[1], brier_score(y, y, km, hs)[1]])

    est = point(np.arange(len(t)))
    k = len(hs)
    lo, hi, skipped = (_bootstrap(point, len(t), n_boot=n_boot, seed=seed, level=level) if n_boot
                       else (np.full(2 * k, np.nan), np.full(2 * k, np.nan), 0))
    method = "scikit-survival brier_score (IPCW); " + _boot_method(n_boot, seed, level, skipped)
    return {_key(h): _metric(est[i], lo[i], hi[i], method,
                             km_null=_metric(est[k + i], lo[k + i], hi[k + i],
                                             "Kaplan–Meier S(t) for everyone; " + method))
            for i, h in enumerate(hs)}


def integrated_brier(time, event, surv, horizons: Sequence[float], *, n_boot: int = 200, seed: int = 0,
                     level: float = 0.95) -> dict:
    """Integrated Brier score over the horizons given (scikit-survival ``integrated_brier_score``).

    The integral is the trapezoid over the horizons, divided by their span, so it needs at
    least two horizons; with ``surv_<t>`` columns at few horizons it is a coarse summary.
    """
    from sksurv.metrics import integrated_brier_score

    t, e = check_survival_data(time, event)
    hs = check_horizons(t, e, horizons)
    if len(hs) < 2:
        raise OptionError("the integrated Brier score needs at least two horizons",
                          fix="give two or more horizons (and surv_<t> columns for each)")
    s = _surv_matrix(surv, len(t), len(hs))

    def point(idx: np.ndarray) -> np.ndarray:
        y = _structured(t[idx], e[idx])
        km = np.tile(km_survival(t[idx], e[idx], hs), (len(idx), 1))
        return np.array([integrated_brier_score(y, y, s[idx], hs), integrated_brier_score(y, y, km, hs)])

    est = point(np.arange(len(t)))
    lo, hi, skipped = (_bootstrap(point, len(t), n_boot=n_boot, seed=seed, level=level) if n_boot
                       else (np.full(2, np.nan), np.full(2, np.nan), 0))
    method = (f"scikit-survival integrated_brier_score over horizons {', '.join(map(_key, hs))}; "
              + _boot_method(n_boot, seed, level, skipped))
    return _metric(est[0], lo[0], hi[0], method,
                   km_null=_metric(est[1], lo[1], hi[1], "Kaplan–Meier S(t) for everyone; " + method))


# --------------------------------------------------------------------------------------
# calibration, decision curve
# --------------------------------------------------------------------------------------

def _n_groups(n: int) -> int:
    # deciles when there are >= 200 subjects; fewer groups keep >= ~20 subjects in each
    return int(np.clip(n // 20, 2, 10))


def _rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Restricted cubic spline with 3 knots (Harrell's ``rcs``): linear + one nonlinear term."""
    k1, k2, k3 = knots
    p = lambda v: np.clip(v, 0, None) ** 3  # noqa: E731
    nonlin = (p(x - k1) - p(x - k2) * (k3 - k1) / (k3 - k2) + p(x - k3) * (k2 - k1) / (k3 - k2)) / (k3 - k1) ** 2
    return np.column_stack([x, nonlin])


class _CoxFit:
    """A Cox model of a few columns: coefficients, their Wald SEs, Breslow baseline hazard."""

    def __init__(self, beta: np.ndarray, se: np.ndarray, times: np.ndarray, cumhaz: np.ndarray) -> None:
        self.beta, self.se, self.times, self.cumhaz = beta, se, times, cumhaz

    def survival_at(self, Z: np.ndarray, h: float) -> np.ndarray:
        """S(h | z) = exp(−H0(h)·exp(z·β)) (the baseline at z = 0, as lifelines' predictions)."""
        k = np.searchsorted(self.times, h, side="right") - 1
        H0 = self.cumhaz[k] if k >= 0 else 0.0
        return np.exp(-H0 * np.exp(Z @ self.beta))


def _cox_fit(t: np.ndarray, e: np.ndarray, Z: np.ndarray, *, max_iter: int = 50, tol: float = 1e-9):
    """Cox regression of ``(t, e)`` on the few columns of ``Z`` (Efron ties, as R's coxph and
    lifelines), or ``None`` when Newton–Raphson cannot converge.

    The calibration of a survival model refits two such models per horizon and bootstrap
    resample (hundreds of fits): lifelines spends ~100 ms a fit on its data-frame checks, this
    vectorised Newton–Raphson ~1 ms, and gives the same coefficients (tests: 1e-8). Steps that
    lower the partial likelihood are halved, as in R's coxph.
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim == 1:
        Z = Z[:, None]
    e = np.asarray(e, dtype=bool)
    if not e.any():
        return None
    order = np.argsort(t, kind="mergesort")
    t, e, Z = np.asarray(t, dtype=np.float64)[order], e[order], Z[order]
    n, p = Z.shape
    ev_t, d = np.unique(t[e], return_counts=True)
    first = np.searchsorted(t, ev_t, side="left")  # risk set of each event time: rows first..n-1
    grp = np.searchsorted(ev_t, t[e])  # event rows → their event time
    # Efron: the l-th of the d tied events (l = 0…d−1) sees the risk set less l/d of the tied ones
    g_of_l = np.repeat(np.arange(len(ev_t)), d)
    frac = (np.arange(len(g_of_l)) - np.repeat(np.cumsum(d) - d, d)) / np.repeat(d, d)
    Ze = Z[e]
    zsum = Ze.sum(axis=0)

    def parts(beta):
        w = np.exp(Z @ beta)
        rev = lambda a: np.cumsum(a[::-1], axis=0)[::-1]  # noqa: E731 - sums over t_j ≥ t
        s0, s1 = rev(w)[first], rev(w[:, None] * Z)[first]
        s2 = rev(w[:, None, None] * Z[:, :, None] * Z[:, None, :])[first]
        we = w[e]
        t0 = np.zeros(len(ev_t))
        np.add.at(t0, grp, we)
        t1 = np.zeros((len(ev_t), p))
        np.add.at(t1, grp, we[:, None] * Ze)
        t2 = np.zeros((len(ev_t), p, p))
        np.add.at(t2, grp, we[:, None, None] * Ze[:, :, None] * Ze[:, None, :])
        den = s0[g_of_l] - frac * t0[g_of_l]
        m1 = (s1[g_of_l] - frac[:, None] * t1[g_of_l]) / den[:, None]
        m2 = (s2[g_of_l] - frac[:, None, None] * t2[g_of_l]) / den[:, None, None]
        ll = float((Ze @ beta).sum() - np.log(den).sum())
        grad = zsum - m1.sum(axis=0)
        info = (m2 - m1[:, :, None] * m1[:, None, :]).sum(axis=0)
        return ll, grad, info, s0

    beta = np.zeros(p)
    ll, grad, info, s0 = parts(beta)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            return None
        new = beta + step
        ll_new, g_new, i_new, s0_new = parts(new)
        halvings = 0
        while not (np.isfinite(ll_new) and ll_new >= ll - 1e-12) and halvings < 20:
            step /= 2
            new = beta + step
            ll_new, g_new, i_new, s0_new = parts(new)
            halvings += 1
        if not np.isfinite(ll_new):
            return None
        done = abs(ll_new - ll) <= tol * max(1.0, abs(ll)) and np.max(np.abs(step)) < 1e-7
        beta, ll, grad, info, s0 = new, ll_new, g_new, i_new, s0_new
        if done:
            break
    else:
        return None
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return None
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    if not (np.isfinite(beta).all() and np.isfinite(se).all()):
        return None
    # Breslow baseline cumulative hazard at z = 0 (what lifelines' predictions use)
    return _CoxFit(beta, se, ev_t, np.cumsum(d / s0))


def _cox_calibration(t: np.ndarray, e: np.ndarray, s_pred: np.ndarray, h: float):
    """Cox models of the outcome, censored at ``h``, on cll = log(−log S_pred(h)).

    Returns the slope (coefficient of cll in the linear model), its Wald SE, and the observed
    risk at ``h`` of each subject from the spline model (Austin, Harrell & van Klaveren 2020).
    A model that does not converge gives NaN (slope) or falls back to the linear model
    (observed risk); both failing raises ``ValueError`` (a bootstrap resample is then skipped).
    """
    sp = np.clip(s_pred, 1e-10, 1 - 1e-10)
    cll = np.log(-np.log(sp))
    tt = np.minimum(t, h)
    ee = e & (t <= h)
    m = _cox_fit(tt, ee, cll[:, None])
    slope, se = (float(m.beta[0]), float(m.se[0])) if m is not None else (np.nan, np.nan)
    fit, Zfit = m, cll[:, None]
    knots = np.quantile(cll, [0.1, 0.5, 0.9])
    if np.unique(knots).size == 3:  # else too few distinct predictions for a spline: the linear model
        b = _rcs_basis(cll, knots)
        sfit = _cox_fit(tt, ee, b)
        if sfit is not None:
            fit, Zfit = sfit, b
    if fit is None:
        raise ValueError(f"the calibration Cox models at horizon {h:g} did not converge")
    obs = 1 - fit.survival_at(Zfit, h)
    return slope, se, obs


def calibration_at(time, event, surv_h, horizon: float, *, n_groups: int | None = None,
                   n_boot: int = 200, seed: int = 0, level: float = 0.95) -> tuple[dict, pd.DataFrame]:
    """Calibration of predicted survival at one horizon.

    Parameters
    ----------
    surv_h
        Predicted S(horizon) per subject.
    n_groups
        Risk groups (quantiles of predicted risk); default deciles, fewer when small
        (about 20 subjects a group, at least 2).

    Returns
    -------
    (dict, pandas.DataFrame)
        ``{"slope", "ici", "e50", "e90", "n_groups"}`` (slope and ICI as metrics) and the group
        table ``group, n, events, mean_predicted, observed, ci_low, ci_high`` (predicted and
        Kaplan–Meier observed *event* probability 1 − S(t), with the KM Greenwood interval).

    Notes
    -----
    The slope is the coefficient of a Cox model of the outcome, censored at the horizon, on
    ``log(−log S_pred)``: 1 is ideal, < 1 means predictions too extreme. The ICI is the mean
    absolute difference between predicted risk and the risk a Cox model with a restricted cubic
    spline of ``log(−log S_pred)`` estimates (Austin et al. 2020); E50/E90 are its median and
    90th percentile.
    """
    from sksurv.nonparametric import kaplan_meier_estimator

    t, e = check_survival_data(time, event)
    (h,) = check_horizons(t, e, [horizon])
    s = _surv_matrix(surv_h, len(t), 1).ravel()
    p = 1 - s
    g = _n_groups(len(t)) if n_groups is None else int(n_groups)
    if g < 1:
        raise OptionError(f"n_groups must be >= 1, got {g}", fix="use e.g. 10")
    ranks = pd.Series(p).rank(method="first").to_numpy()
    grp = np.minimum((ranks - 1) * g // len(t), g - 1).astype(int)
    rows = []
    for k in range(g):
        m = grp == k
        x, sk, ci = kaplan_meier_estimator(e[m], t[m], conf_type="log-log")
        i = np.searchsorted(x, h, side="right") - 1
        obs, lo, hi = (0.0, 0.0, 0.0) if i < 0 else (1 - sk[i], 1 - ci[1][i], 1 - ci[0][i])
        rows.append({"group": k + 1, "n": int(m.sum()), "events": int((e[m] & (t[m] <= h)).sum()),
                     "mean_predicted": float(p[m].mean()), "observed": float(obs),
                     "ci_low": float(lo), "ci_high": float(hi)})
    table = pd.DataFrame(rows)

    try:
        slope, se, obs_i = _cox_calibration(t, e, s, h)
    except ValueError as exc:  # no estimate rather than a crash of the whole evaluation
        warnings.warn(f"calibration at horizon {h:g}: {exc}; slope and ICI not estimated",
                      SurvivalWarning, stacklevel=2)
        slope, se, obs_i = np.nan, np.nan, np.full(len(t), np.nan)
    z = _z(level)
    diff = np.abs(p - obs_i)

    def point(idx: np.ndarray) -> np.ndarray:
        _, _, o = _cox_calibration(t[idx], e[idx], s[idx], h)
        return np.array([np.mean(np.abs(p[idx] - o))])

    lo, hi, skipped = (_bootstrap(point, len(t), n_boot=n_boot, seed=seed, level=level) if n_boot
                       else (np.array([np.nan]), np.array([np.nan]), 0))
    summary = {
        "slope": _metric(slope, slope - z * se, slope + z * se,
                         "Cox regression of the outcome censored at the horizon on log(-log S(t)); Wald CI"),
        "ici": _metric(diff.mean(), lo[0], hi[0],
                       "mean |predicted - observed| risk, observed from a Cox model with a restricted cubic "
                       "spline of log(-log S(t)) (Austin et al. 2020); " + _boot_method(n_boot, seed, level, skipped)),
        "e50": float(np.median(diff)),
        "e90": float(np.quantile(diff, 0.9)),
        "n_groups": g,
    }
    return summary, table


#: threshold probabilities of the decision curve
DEFAULT_THRESHOLDS = np.round(np.arange(0.01, 1.0, 0.01), 2)


def decision_curve(time, event, surv_h, horizon: float, *, thresholds=None) -> pd.DataFrame:
    """Net benefit at a horizon, with Kaplan–Meier event probabilities (Vickers et al. 2008).

    Treating those with predicted risk ``1 − S(t) >= pt``: net benefit
    ``= P(high) · (1 − S_KM(t | high)) − P(high) · S_KM(t | high) · pt/(1 − pt)``, so that
    censored subjects count through the Kaplan–Meier estimate of the high-risk group.

    Returns
    -------
    pandas.DataFrame
        ``threshold, net_benefit, net_benefit_treat_all, net_benefit_treat_none, n_treated``;
        ``attrs["prevalence"]`` is the cohort's Kaplan–Meier risk 1 − S(t) (what
        :func:`pmed.plots.decision_curve_plot` scales its axis by).
    """
    t, e = check_survival_data(time, event)
    (h,) = check_horizons(t, e, [horizon])
    s = _surv_matrix(surv_h, len(t), 1).ravel()
    p = 1 - s
    th = DEFAULT_THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=float).ravel()
    if len(th) == 0 or not np.isfinite(th).all() or (th <= 0).any() or (th >= 1).any():
        raise OptionError("thresholds must be numbers in (0, 1)", fix="e.g. 0.05 0.1 0.2")
    n = len(t)
    risk_all = 1 - float(km_survival(t, e, [h])[0])
    rows = []
    for pt in th:
        w = pt / (1 - pt)
        treat = p >= pt
        m = int(treat.sum())
        if m == 0:
            nb = 0.0
        else:
            r = 1 - float(km_survival(t[treat], e[treat], [h])[0])
            nb = m / n * r - m / n * (1 - r) * w
        rows.append({"threshold": float(pt), "net_benefit": nb,
                     "net_benefit_treat_all": risk_all - (1 - risk_all) * w,
                     "net_benefit_treat_none": 0.0, "n_treated": m})
    out = pd.DataFrame(rows)
    out.attrs.update(prevalence=risk_all, n=n, horizon=h)
    return out
