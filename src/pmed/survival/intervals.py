"""Confidence intervals of a new patient's predicted survival ``S(t | x)`` (Cox models).

What the interval covers
------------------------
The uncertainty of the *fitted Cox model's parameters* — the coefficients β and the Breslow
baseline cumulative hazard H0 — given the training data, propagated to ``S(t | x)`` by the
delta method (Tsiatis 1981; what R's ``survfit(coxph_fit, newdata)`` reports). It does **not**
cover model misspecification (non-proportional hazards, a missing interaction), nor the
calibration of the model in a new population, nor the patient's own outcome: a patient either
has the event or not. The interval is ``exp(log S ± z·se(H))`` (R's default ``conf.type =
"log"``), clipped to [0, 1].

For a centred covariate vector ``z`` (the model's preprocessed features minus their training
mean), risk ``r = exp(z·β)`` and, over the distinct event times ``t_i ≤ t`` with ``d_i`` events
and risk-set sums ``S0_i = Σ exp(z_j·β)``, ``S1_i = Σ z_j exp(z_j·β)``:

``H(t|z) = r·A``, ``A = Σ d_i/S0_i``; ``Var H = r²·C + r²·qᵀ V q``, ``C = Σ d_i/S0_i²``,
``q = z·A − B``, ``B = Σ d_i·(S1_i/S0_i)/S0_i``, with ``V`` the covariance of β.

Only ``A``, ``B``, ``C`` per horizon and ``V`` are stored (cumulative sums over the cohort:
no patient's data), computed once at training time by :func:`cox_interval_terms`.

The other families (``coxnet``, ``rsf``, ``gbsa``, ``km``) get no interval: a bootstrap of the
training set or the cross-validation fold models would have to be stored in the bundle, which
is heavier than the bundle should be; their predictions say so by lacking the columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["cox_interval_terms", "survival_intervals", "INTERVAL_METHOD"]

#: what the predictions and reports say about the interval
INTERVAL_METHOD = ("delta method on the Cox model's coefficients and Breslow baseline hazard "
                   "(parameter uncertainty only, as R's survfit; not calibration)")


def cox_interval_terms(model, X: pd.DataFrame, time, event, horizons: Sequence[float], *,
                       level: float = 0.95) -> dict | None:
    """The cohort sums the interval of :func:`survival_intervals` needs, or ``None`` for a
    model that is not a Cox model (see the module docstring for the formulas).

    Parameters
    ----------
    model
        The fitted ``cox`` pipeline (or :class:`pmed.survival.models.CoxPH`).
    X
        The training features it was fitted on.
    time, event
        The training outcome.
    horizons
        The study's horizons.
    level
        Confidence level of the intervals.

    Returns
    -------
    dict or None
        JSON-able: ``level``, ``method``, ``variance`` (p × p covariance of β), and per horizon
        (key ``{h:g}``) ``A``, ``B`` (p values), ``C``.
    """
    import warnings

    import lifelines

    from pmed.survival.models import CoxPH, _final, _transform

    est = _final(model)
    if not isinstance(est, CoxPH):
        return None
    Z = np.asarray(_transform(model, X), dtype=np.float64)
    time = np.asarray(time, dtype=np.float64)
    event = np.asarray(event).astype(bool)
    # the covariance of β as lifelines estimates it (Efron information, penalty included); the
    # refit gives the same β as the bundled model (same data, options and tolerance)
    cols = [f"c{j}" for j in range(Z.shape[1])]
    df = pd.DataFrame(Z, columns=cols).assign(__time=time, __event=event.astype(int))
    fitter = lifelines.CoxPHFitter(penalizer=float(est.penalizer), l1_ratio=float(est.l1_ratio))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter.fit(df, "__time", "__event", fit_options={"precision": float(est.tol), "r_precision": 1e-14,
                                                          "max_steps": int(est.max_iter)})
    V = fitter.variance_matrix_.loc[cols, cols].to_numpy(dtype=np.float64)
    beta = np.asarray(est.coef_, dtype=np.float64)
    zc = Z - est.center_
    w = np.exp(zc @ beta)
    order = np.argsort(time, kind="mergesort")
    t_s, e_s, w_s, z_s = time[order], event[order], w[order], zc[order]
    # risk-set sums at each time: everyone with time ≥ t (reverse cumulative sums)
    s0_all = np.cumsum(w_s[::-1])[::-1]
    s1_all = np.cumsum((w_s[:, None] * z_s)[::-1], axis=0)[::-1]
    ev_times = np.unique(t_s[e_s])
    first = np.searchsorted(t_s, ev_times, side="left")
    d = np.array([np.sum(e_s[t_s == u]) for u in ev_times], dtype=np.float64)
    s0, s1 = s0_all[first], s1_all[first]
    out = {"level": float(level), "method": INTERVAL_METHOD, "variance": V.tolist(), "horizons": {}}
    for h in horizons:
        k = ev_times <= h
        out["horizons"][f"{float(h):g}"] = {
            "A": float(np.sum(d[k] / s0[k])),
            "B": (np.sum((d[k] / s0[k] ** 2)[:, None] * s1[k], axis=0)).tolist(),
            "C": float(np.sum(d[k] / s0[k] ** 2)),
        }
    return out


def survival_intervals(model, X: pd.DataFrame, terms: dict, horizons: Sequence[float]) -> pd.DataFrame:
    """``surv_<t>_low`` and ``surv_<t>_high`` of the rows of ``X`` (see the module docstring).

    Parameters
    ----------
    model
        The fitted ``cox`` pipeline the ``terms`` were computed for.
    X
        Features of the new patients (the model's input columns).
    terms
        :func:`cox_interval_terms` of the training data.
    horizons
        Horizons to give intervals for (each must be among ``terms``).

    Returns
    -------
    pandas.DataFrame
        Indexed as ``X``: for each horizon ``surv_<t>_low`` and ``surv_<t>_high``.
    """
    from scipy.stats import norm

    from pmed.study.survival import surv_name
    from pmed.survival.models import _final, _transform

    est = _final(model)
    z = np.asarray(_transform(model, X), dtype=np.float64) - est.center_
    beta = np.asarray(est.coef_, dtype=np.float64)
    r = np.exp(z @ beta)
    V = np.asarray(terms["variance"], dtype=np.float64)
    q_z = norm.ppf(0.5 + terms["level"] / 2)
    out = pd.DataFrame(index=X.index)
    for h in horizons:
        t = terms["horizons"][f"{float(h):g}"]
        A, B, C = t["A"], np.asarray(t["B"], dtype=np.float64), t["C"]
        H = r * A
        q = z * A - B
        var = r ** 2 * (C + np.einsum("ij,jk,ik->i", q, V, q))
        se = np.sqrt(np.maximum(var, 0.0))
        S = np.exp(-H)
        name = surv_name(h)
        out[f"{name}_low"] = np.clip(S * np.exp(-q_z * se), 0.0, 1.0)
        out[f"{name}_high"] = np.clip(S * np.exp(q_z * se), 0.0, 1.0)
    return out
