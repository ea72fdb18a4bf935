"""Jackknife pseudo-observations of the risk of an event by a horizon (Andersen & Perme 2010).

Each patient's pseudo-value of ``1{T ≤ h}`` is

``θ_i = n·F̂(h) − (n − 1)·F̂_{−i}(h)``,  ``F̂ = 1 − Ŝ`` (Kaplan–Meier),

where ``F̂_{−i}`` is the estimate without patient ``i``. Under independent censoring
``E[θ_i | x_i] ≈ P(T ≤ h | x_i)``, so the pseudo-values stand in for the event-by-horizon
indicator that censoring hides: any method for a continuous outcome (regression, AIPW) applied
to them estimates risks and risk differences by ``h`` (Andersen, Hansen & Klein 2004).

These are the ordinary (leave-one-out) jackknife values, as ``prodlim::jackknife`` computes
them; R's ``survival::pseudo`` computes the infinitesimal jackknife instead, which differs in
the third decimal on small data sets.
"""

from __future__ import annotations

import numpy as np

from pmed.errors import ValidationError, format_rows

__all__ = ["pseudo_observations"]


def _check(time, event, horizon) -> tuple[np.ndarray, np.ndarray, float]:
    try:
        t = np.asarray(time, dtype=float).ravel()
        e_raw = np.asarray(event, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ValidationError(["time and event must be numbers (time: follow-up; event: 1 = event, 0 = censored)"],
                              fix="convert the columns to numbers") from None
    problems = []
    if len(t) != len(e_raw):
        problems.append(f"time has {len(t)} values but event has {len(e_raw)}")
    elif len(t) == 0:
        problems.append("no patients: time and event are empty")
    else:
        for what, bad in (("missing (NaN) time", np.isnan(t)), ("infinite time", np.isinf(t)),
                          ("negative time", t < 0), ("missing (NaN) event", np.isnan(e_raw)),
                          ("event not 0 or 1", ~np.isnan(e_raw) & ~np.isin(e_raw, (0.0, 1.0)))):
            if bad.any():
                problems.append(f"{what} at rows {format_rows((np.flatnonzero(bad) + 1).tolist())}")
    try:
        h = float(horizon)
    except (TypeError, ValueError):
        h = float("nan")
    if not (np.isfinite(h) and h >= 0):
        problems.append(f"horizon must be a finite time ≥ 0, got {horizon!r}")
    if problems:
        raise ValidationError(problems, fix="give one finite follow-up time ≥ 0 and one 0/1 event per patient "
                                            "(drop or complete patients with a missing value), and a finite horizon")
    return t, e_raw == 1.0, h


def pseudo_observations(time, event, horizon: float) -> np.ndarray:
    """Jackknife pseudo-values of the event-by-``horizon`` indicator, ``1{T ≤ horizon}``.

    ``θ_i = n·F̂(h) − (n − 1)·F̂_{−i}(h)`` with ``F̂ = 1 − Ŝ`` the Kaplan–Meier estimate of the
    cumulative incidence, ``F̂_{−i}`` that of the data without patient ``i`` (Andersen & Perme
    2010). Their mean is close to ``F̂(h)``; without censoring before ``h`` they are the 0/1
    indicator itself. Censored patients get values that may lie outside [0, 1].

    Computed in O(n log n): leaving patient ``i`` out changes only the Kaplan–Meier factors
    at event times up to and including ``T_i`` (one fewer at risk; one fewer event at ``T_i``
    when ``i`` had the event there), so each leave-one-out curve is a prefix product of the
    changed factors times a suffix product of the unchanged ones.

    Parameters
    ----------
    time
        Follow-up times (finite, ≥ 0), one per patient.
    event
        1 (or ``True``) = event at ``time``, 0 = censored then. At a tie events come before
        censorings (a patient censored at an event time was at risk of it), as in R's
        ``survfit``.
    horizon
        The time ``h`` (unit of ``time``). Before the first event every value is 0. Beyond the
        last follow-up the Kaplan–Meier curve is carried flat from its last value (R's
        convention), so the values are those of the last time.

    Returns
    -------
    numpy.ndarray
        ``θ_i``, float64, in the order of ``time``.

    Raises
    ------
    ValidationError
        Missing (NaN), infinite or negative times; events missing or not 0/1; lengths that
        differ; no patients; a horizon that is not a finite time ≥ 0.

    References
    ----------
    Andersen PK, Hansen MG, Klein JP (2004). Regression analysis of restricted mean survival
    time based on pseudo-observations. Lifetime Data Anal 10:335–350.
    Andersen PK, Perme MP (2010). Pseudo-observations in survival analysis. Stat Methods Med
    Res 19:71–99.
    """
    t, e, h = _check(time, event, horizon)
    n = len(t)
    # distinct event times up to h, their events d_j and number at risk n_j (censorings at
    # t_j are still at risk: events come first at a tie)
    ts = np.sort(t)
    ev_times, d = np.unique(t[e & (t <= h)], return_counts=True)
    if len(ev_times) == 0:  # no event by h: F̂(h) = F̂_{−i}(h) = 0
        return np.zeros(n)
    at_risk = n - np.searchsorted(ts, ev_times, side="left")
    d = d.astype(float)
    r = at_risk.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = 1.0 - d / r  # the factor with everyone in
        g = 1.0 - d / (r - 1.0)  # i at risk at t_j but not failing there, left out
        # i failing at t_j, left out; alone at risk there, nobody remains to fail: factor 1
        fe = np.where(r > 1, (r - d) / (r - 1.0), 1.0)
        # prefix[k] = Π_{j<k} g_j; suffix[k] = Π_{j≥k} f_j (no division: a factor may be 0)
        prefix = np.concatenate([[1.0], np.cumprod(g)])
    m = len(ev_times)
    suffix = np.concatenate([np.cumprod(f[::-1])[::-1], [1.0]])
    k = np.searchsorted(ev_times, t, side="left")  # first event time ≥ T_i
    at_own = (k < m) & (ev_times[np.minimum(k, m - 1)] == t)  # T_i is itself an event time ≤ h
    kk = np.minimum(k, m - 1)
    middle = np.where(at_own, np.where(e, fe[kk], g[kk]), 1.0)
    rest = np.where(at_own, suffix[np.minimum(k + 1, m)], suffix[k])
    # g_j (r_j − 1 = 0) is undefined only at a time where i alone is at risk, which is then
    # i's own event time and never in i's prefix; products that include it are not selected
    s_loo = prefix[k] * middle * rest
    s_all = suffix[0]
    # θ = n(1 − S) − (n − 1)(1 − S_{−i})
    return 1.0 - n * s_all + (n - 1) * s_loo
