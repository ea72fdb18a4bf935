"""Confidence intervals of a new patient's predicted survival ``S(t | x)``, for every family.

:func:`interval_terms` computes, once at training time, what the interval needs; it is stored
as JSON in the bundle manifest (``manifest["survival"]["intervals"]``) and
:func:`survival_intervals` applies it to new patients. Each terms dict has a ``kind`` (which
method), ``level`` and a readable ``method`` saying what the interval covers. No interval covers
the calibration of the model in a new population, nor the patient's own outcome (a patient
either has the event or not).

================  ============================  ==================================================
family            ``kind``                      interval
================  ============================  ==================================================
``cox``           ``delta_cox``                 delta method on β and the Breslow baseline (below)
``km``            ``greenwood``                 Greenwood, ``exp(log S ± z·se)`` as R's survfit;
                                                the same for every patient
``rsf``           ``infinitesimal_jackknife``   bias-corrected infinitesimal jackknife over the
                                                forest's own bootstrap trees, log(−log S) scale
``coxnet``,       ``bootstrap``                 percentile bootstrap over ``n_boot`` refits kept
``gbsa``                                        on the model (``bootstrap_``)
================  ============================  ==================================================

Cox models (``delta_cox``)
--------------------------
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

Terms written before ``kind`` existed (cox bundles) are read as ``delta_cox``.

Kaplan–Meier (``greenwood``)
----------------------------
``Var log S(t) = Σ_{t_i ≤ t} d_i / (n_i (n_i − d_i))`` (Greenwood), interval ``exp(log S ± z·se)``
clipped to [0, 1]: R's ``survfit(Surv(time, status) ~ 1)`` with its default ``conf.type = "log"``.
It is the uncertainty of the *cohort's* curve, the same for every patient. Stored: the bounds
per horizon.

Random survival forests (``infinitesimal_jackknife``)
-----------------------------------------------------
Wager, Hastie & Efron (2014, JMLR 15:1625), the bias-corrected IJ-U over the forest's ``B``
bootstrap trees: with ``s_b(x)`` tree ``b``'s leaf Kaplan–Meier survival at the horizon and
``N_bi`` how often training patient ``i`` is in tree ``b``'s bootstrap sample,
``V = Σ_i Cov_b(N_bi, s_b(x))² − (n/B²)·Σ_b (s_b(x) − s̄(x))²``; where ``V`` is not above
:data:`IJ_VARIANCE_FLOOR` the bounds are NaN and a warning says so (no interval rather than a
falsely narrow one). It estimates how much the forest's prediction would vary over new
training sets of the same size — not the forest's bias (a forest averages over neighbours, so
its curves are smoothed), which can be the larger error. The interval is built on the
``log(−log S)`` scale by the delta method, so it stays inside (0, 1). The correction subtracts
Monte-Carlo noise that grows like ``n/B``: with far fewer trees than patients the variance is
noisy and often lost (Wager et al. advise ``B`` of the order of ``n``). Stored: nothing but
``level`` and ``method``; the in-bag counts are on the fitted model (``inbag_``).

Elastic-net Cox and boosted trees (``bootstrap``)
-------------------------------------------------
The model's estimator is refitted ``n_boot`` times on bootstrap resamples of the training
patients (seeded), on the *already preprocessed* features: the preprocessing (imputation,
scaling, encoding) fitted on all patients is kept fixed, so its own uncertainty is not in the
interval. The refits are kept on the model (``bootstrap_``, stored with the pipeline) in
compact form — each one's baseline cumulative hazard on the training times and its risk
function (coxnet: coefficients; gbsa: the trees' node arrays), checked against
scikit-survival's own predictions when made; the scikit-survival objects themselves would
take ~200 MB in the skops bundle for 50 boosted refits. The interval is the
``(α/2, 1 − α/2)`` percentiles of the refits' ``S(t | x)``. It
covers the sampling variability of the fitted model with its hyper-parameters fixed (not
their selection). Stored in the terms: ``n_boot`` and ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pmed.errors import BundleError, OptionError

__all__ = [
    "interval_terms",
    "cox_interval_terms",
    "survival_intervals",
    "INTERVAL_METHOD",
    "GREENWOOD_METHOD",
    "IJ_METHOD",
    "IJ_VARIANCE_FLOOR",
]

#: what the predictions and reports say about the interval (cox)
INTERVAL_METHOD = ("delta method on the Cox model's coefficients and Breslow baseline hazard "
                   "(parameter uncertainty only, as R's survfit; not calibration)")
#: … of the Kaplan–Meier null model
GREENWOOD_METHOD = ("Greenwood interval of the training cohort's Kaplan–Meier curve, log scale as R's survfit "
                    "(the same for every patient: the cohort's survival, not this patient's; not calibration)")
#: … of a random survival forest
IJ_METHOD = ("infinitesimal jackknife over the forest's bootstrap trees (Wager, Hastie & Efron 2014, "
             "bias-corrected), log(-log) scale: how much the forest's prediction would vary with another "
             "training set; not the forest's smoothing bias, nor calibration")
#: smallest variance of S(t|x) the infinitesimal jackknife reports (its bias correction can
#: go below 0 when the trees' Monte-Carlo noise dominates)
IJ_VARIANCE_FLOOR = 1e-6


def _bootstrap_method(n_boot: int) -> str:
    return (f"percentile bootstrap over {n_boot} refits of the model on resamples of the training patients, "
            "with the preprocessing fitted on all patients kept fixed and the hyper-parameters as chosen "
            "(sampling variability of the fit only; not calibration)")


def _key(h) -> str:
    return f"{float(h):g}"


def interval_terms(model, X: pd.DataFrame, time, event, horizons: Sequence[float], *, level: float = 0.95,
                   n_boot: int = 50, seed: int = 0) -> dict | None:
    """What :func:`survival_intervals` needs for the model's family (see the module docstring).

    Parameters
    ----------
    model
        The fitted pipeline (or bare model of :mod:`pmed.survival.models`), refitted on all
        the training patients.
    X
        The training features it was fitted on (the pipeline's input columns).
    time, event
        The training outcome.
    horizons
        The study's horizons.
    level
        Confidence level of the intervals, in (0, 1).
    n_boot
        Bootstrap refits for ``coxnet`` and ``gbsa`` (0: no interval for them). The refits
        are stored on the model in compact form (``bootstrap_``), so the bundle grows with them.
    seed
        Seed of the bootstrap resamples.

    Returns
    -------
    dict or None
        JSON-able, with ``kind``, ``level`` and ``method``; ``None`` for a family without an
        interval (``coxnet``/``gbsa`` with ``n_boot=0``, a model pmed does not know).

    Raises
    ------
    OptionError
        ``level`` outside (0, 1) or ``n_boot`` negative.
    """
    from sklearn.utils.validation import check_is_fitted

    from pmed.survival.models import (
        BoostedSurvival,
        Coxnet,
        CoxPH,
        KaplanMeier,
        SurvivalForest,
        _final,
    )

    if not 0 < level < 1:
        raise OptionError(f"level must be within (0, 1), got {level!r}", fix="pass e.g. level=0.95")
    if int(n_boot) != n_boot or n_boot < 0:
        raise OptionError(f"n_boot must be a whole number ≥ 0, got {n_boot!r}", fix="pass e.g. n_boot=50 (0: none)")
    est = _final(model)
    if isinstance(est, CoxPH):
        return cox_interval_terms(model, X, time, event, horizons, level=level)
    if isinstance(est, KaplanMeier):
        return _greenwood_terms(time, event, horizons, level)
    if isinstance(est, SurvivalForest):
        check_is_fitted(est, "leaf_curves_")
        if not hasattr(est, "inbag_"):  # fitted by a pmed that did not keep the in-bag counts
            return None
        return {"kind": "infinitesimal_jackknife", "level": float(level), "method": IJ_METHOD}
    if isinstance(est, (Coxnet, BoostedSurvival)):
        if n_boot == 0:
            return None
        fitted = _bootstrap_refits(model, X, time, event, int(n_boot), int(seed))
        return {"kind": "bootstrap", "level": float(level), "method": _bootstrap_method(fitted),
                "n_boot": fitted, "seed": int(seed)}
    return None


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
        JSON-able: ``kind`` (``"delta_cox"``), ``level``, ``method``, ``variance`` (p × p
        covariance of β), and per horizon (key ``{h:g}``) ``A``, ``B`` (p values), ``C``.
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
    out = {"kind": "delta_cox", "level": float(level), "method": INTERVAL_METHOD, "variance": V.tolist(),
           "horizons": {}}
    for h in horizons:
        k = ev_times <= h
        out["horizons"][f"{float(h):g}"] = {
            "A": float(np.sum(d[k] / s0[k])),
            "B": (np.sum((d[k] / s0[k] ** 2)[:, None] * s1[k], axis=0)).tolist(),
            "C": float(np.sum(d[k] / s0[k] ** 2)),
        }
    return out


def _greenwood_terms(time, event, horizons: Sequence[float], level: float) -> dict:
    """Kaplan–Meier bounds per horizon: Greenwood's variance on the log scale (R's default)."""
    from scipy.stats import norm

    from pmed.survival._data import check_survival_data

    t, e = check_survival_data(time, event)
    ev = np.unique(t[e])
    d = np.array([np.sum(e & (t == u)) for u in ev], dtype=np.float64)
    n_risk = (len(t) - np.searchsorted(np.sort(t), ev, side="left")).astype(np.float64)
    surv = np.cumprod(1.0 - d / n_risk)
    with np.errstate(divide="ignore"):  # n = d (the last at risk dies): S = 0, log undefined
        var_log = np.cumsum(d / (n_risk * (n_risk - d)))
    z = norm.ppf(0.5 + level / 2)
    out = {"kind": "greenwood", "level": float(level), "method": GREENWOOD_METHOD, "horizons": {}}
    for h in horizons:
        k = np.searchsorted(ev, float(h), side="right") - 1
        if k < 0:  # before the first event: S = 1 with no uncertainty
            s_h, lo, hi = 1.0, 1.0, 1.0
        elif surv[k] <= 0:  # R gives NA here; the curve is 0 and so is the interval
            s_h, lo, hi = 0.0, 0.0, 0.0
        else:
            s_h, se = float(surv[k]), float(np.sqrt(var_log[k]))
            lo, hi = s_h * np.exp(-z * se), min(1.0, s_h * np.exp(z * se))
        out["horizons"][_key(h)] = {"surv": s_h, "low": float(lo), "high": float(hi)}
    return out


def _surv_y(time, event) -> np.ndarray:
    from pmed.survival.models import make_surv_y

    return make_surv_y(time, event)


def _bootstrap_refits(model, X, time, event, n_boot: int, seed: int) -> int:
    """Refit the model's scikit-survival estimator on ``n_boot`` resamples; keep them on the model.

    The resamples are of the preprocessed matrix (the pipeline's preprocessing, fitted on every
    patient, is not refitted). Each refit is kept in compact form (:func:`_compact_refit`) in
    ``bootstrap_`` of the model. Returns how many refits were kept: a resample without an
    event, or one whose fit fails numerically, is skipped (and so counted out of ``n_boot``).
    """
    import warnings

    from pmed.survival.models import _final, _transform

    est = _final(model)
    Z = np.asarray(_transform(model, X), dtype=np.float64)
    y = _surv_y(time, event)
    grid = np.unique(y["time"])
    n = len(y)
    rng = np.random.default_rng(seed)
    # every resample and seed drawn first, so that the refits can run in any order (in parallel
    # threads: scikit-learn's tree building releases the GIL) and give the same bundle
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        draws.append((idx, int(rng.integers(2**31 - 1))))

    def refit(idx: np.ndarray, state: int):
        if not y["event"][idx].any():
            return None
        boot = est._make()
        if "random_state" in boot.get_params():
            boot.set_params(random_state=state)
        try:
            boot.fit(Z[idx], y[idx])
        except ArithmeticError:
            return None
        return _compact_refit(boot, Z, grid)

    from joblib import Parallel, delayed

    with warnings.catch_warnings():
        # the convergence of the model itself was reported when it was fitted; a refit on a
        # resample that converges a little less well still samples the estimator's spread
        warnings.simplefilter("ignore")
        done = Parallel(n_jobs=-1, prefer="threads")(delayed(refit)(i, st) for i, st in draws)
    parts = [q for q in done if q is not None]
    if not parts:
        raise OptionError(f"none of the {n_boot} bootstrap refits of {type(est).__name__} could be fitted",
                          fix="set evaluation.interval_bootstrap: 0 (no interval) or check the model's params")
    store = {"times": grid, "cumhaz": np.stack([q["cumhaz"] for q in parts])}
    if "coef" in parts[0]:
        store["coef"] = np.stack([q["coef"] for q in parts])
    else:
        store.update(_flatten_trees(parts))
    est.bootstrap_ = store
    return len(parts)


def _flatten_trees(parts: list[dict]) -> dict:
    """The trees of every refit in one flat node table (node ids made global) and the root of
    each refit × tree: a handful of arrays, whatever the number of trees."""
    trees = [t for q in parts for t in q["trees"]]
    sizes = np.array([len(t[0]) for t in trees])
    offsets = np.r_[0, np.cumsum(sizes)[:-1]]

    def kids(c: int) -> np.ndarray:
        return np.concatenate([np.where(t[c] >= 0, t[c] + o, -1) for t, o in zip(trees, offsets, strict=True)])

    return {"roots": offsets.reshape(len(parts), -1).astype(np.int64),
            "feature": np.concatenate([t[0] for t in trees]).astype(np.int32),
            "threshold": np.concatenate([t[1] for t in trees]).astype(np.float64),
            "value": np.concatenate([t[2] for t in trees]).astype(np.float64),
            "left": kids(3).astype(np.int64), "right": kids(4).astype(np.int64)}


def _tree_risk(store: dict, Z: np.ndarray) -> np.ndarray:
    """Risk of every refit (refits × patients): the sum over its trees of the leaf values.

    The trees are walked as scikit-learn does: the features as float32, ``x ≤ threshold`` goes
    left; all patients and trees of a refit move one level per step.
    """
    Zf = np.asarray(Z, dtype=np.float32).astype(np.float64)
    feat, thr, left, right, val = (store[k] for k in ("feature", "threshold", "left", "right", "value"))
    rows = np.arange(Zf.shape[0])[:, None]
    out = np.empty((store["roots"].shape[0], Zf.shape[0]))
    for b, roots in enumerate(store["roots"]):
        node = np.broadcast_to(roots, (Zf.shape[0], len(roots))).copy()
        while True:
            inner = left[node] >= 0
            if not inner.any():
                break
            go_left = Zf[rows, np.maximum(feat[node], 0)] <= thr[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        out[b] = val[node].sum(axis=1)
    return out


def _compact_refit(boot, Z: np.ndarray, grid: np.ndarray) -> dict:
    """One refit as arrays: its baseline cumulative hazard ``H0`` on the training times and its
    risk function (coxnet: the coefficients; boosting: the trees' nodes, leaf values scaled by
    the learning rate), such that ``S(t | x) = exp(−H0(t)·exp(risk(x)))`` — scikit-survival's
    own formula (Breslow baseline of the refit's risk).

    Why not the fitted scikit-survival objects: the bundle stores its pipeline with skops, which
    writes every tree as JSON; 50 boosted refits of 100 trees took 195 MB there (1000 patients,
    15 features), against 7.8 MB pickled. Each compact refit is checked against the
    scikit-survival object's own risk on (up to 200 of) the training patients.
    """
    out: dict = {}
    check = Z[: min(len(Z), 200)]
    risk = np.asarray(boot.predict(check), dtype=np.float64)
    # H0 through the public API: one patient's cumulative hazard over exp(its risk)
    h_one = np.asarray(boot.predict_cumulative_hazard_function(check[:1], return_array=True)[0], dtype=np.float64)
    h0 = h_one / np.exp(risk[0])
    k = np.searchsorted(np.asarray(boot.unique_times_, dtype=np.float64), grid, side="right") - 1
    out["cumhaz"] = np.where(k >= 0, h0[np.maximum(k, 0)], 0.0)
    if hasattr(boot, "estimators_"):  # GradientBoostingSurvivalAnalysis, init "zero" (coxph loss)
        if getattr(boot, "_scale", None) is not None:
            raise OptionError("bootstrap intervals of a boosted model with dropout are not supported",
                              fix="leave dropout_rate at 0")
        out["trees"] = [(t.feature, t.threshold, t.value.reshape(-1) * boot.learning_rate, t.children_left,
                         t.children_right) for t in (e.tree_ for e in np.asarray(boot.estimators_).ravel())]
        mine = _tree_risk(_flatten_trees([out]), check)[0]
    else:  # CoxnetSurvivalAnalysis at its one alpha: risk = x·β − offset (for uncentred features)
        out["coef"] = np.r_[np.asarray(boot.coef_, dtype=np.float64).reshape(-1), float(np.ravel(boot.offset_)[-1])]
        mine = check @ out["coef"][:-1] - out["coef"][-1]
    if not np.allclose(mine, risk, rtol=1e-9, atol=1e-9):
        raise RuntimeError(f"compact bootstrap refit of {type(boot).__name__} differs from its own risk by "
                           f"{np.max(np.abs(mine - risk)):.3g}: scikit-survival changed and pmed must follow")
    return out


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def _delta_cox(est, z: np.ndarray, terms: dict, horizons) -> dict:
    beta = np.asarray(est.coef_, dtype=np.float64)
    r = np.exp(z @ beta)
    V = np.asarray(terms["variance"], dtype=np.float64)
    q_z = _z(terms["level"])
    out = {}
    for h in horizons:
        t = terms["horizons"][_key(h)]
        A, B, C = t["A"], np.asarray(t["B"], dtype=np.float64), t["C"]
        H = r * A
        q = z * A - B
        var = r ** 2 * (C + np.einsum("ij,jk,ik->i", q, V, q))
        se = np.sqrt(np.maximum(var, 0.0))
        S = np.exp(-H)
        out[h] = (np.clip(S * np.exp(-q_z * se), 0.0, 1.0), np.clip(S * np.exp(q_z * se), 0.0, 1.0))
    return out


def _ij_variance(T: np.ndarray, inbag: np.ndarray) -> np.ndarray:
    """Bias-corrected infinitesimal-jackknife variance (IJ-U) of the mean over trees.

    ``T``: trees × m predictions; ``inbag``: trees × n in-bag counts. Returns m variances.
    """
    B, n = inbag.shape
    Tc = T - T.mean(axis=0)
    Nc = inbag.astype(np.float64) - inbag.mean(axis=0)
    # Cov_b(N_bi, t_b) for every prediction and training patient, in blocks of predictions so
    # that the m × n covariance matrix is never held whole (≈ 16 MB per block)
    step = max(1, 2_000_000 // max(n, 1))
    v = np.empty(T.shape[1])
    for a in range(0, T.shape[1], step):
        cov = Tc[:, a:a + step].T @ Nc / B
        v[a:a + step] = np.sum(cov ** 2, axis=1)
    v -= n / B ** 2 * np.sum(Tc ** 2, axis=0)
    # at or below the floor the Monte-Carlo correction has swallowed the estimate: no variance
    # can be read from these trees (NaN), rather than a falsely narrow interval
    return np.where(v > IJ_VARIANCE_FLOOR, v, np.nan)


def _infinitesimal_jackknife(est, Z, terms: dict, horizons) -> dict:
    T = est.tree_survival(Z, horizons)  # trees × patients × horizons
    inbag = getattr(est, "inbag_", None)
    if inbag is None:
        raise BundleError("the forest holds no in-bag counts (inbag_): it was fitted by an older pmed",
                          fix="retrain it with this pmed")
    B, n_new, k = T.shape
    var = _ij_variance(T.reshape(B, n_new * k), inbag).reshape(n_new, k)
    S_all = T.mean(axis=0)
    lost = np.isnan(var) & (S_all > 0) & (S_all < 1)
    if lost.any():
        import warnings

        from pmed.survival._data import SurvivalWarning

        warnings.warn(f"no survival interval for {int(lost.any(axis=1).sum())} of {n_new} patient(s): the forest's "
                      f"{B} trees are too few for the infinitesimal jackknife on {inbag.shape[1]} training patients "
                      f"(its Monte-Carlo noise exceeds the variance); refit with more trees, e.g. params: "
                      f"{{n_estimators: {max(500, inbag.shape[1])}}}", SurvivalWarning, stacklevel=3)
    S = T.mean(axis=0)
    q_z = _z(terms["level"])
    out = {}
    for j, h in enumerate(horizons):
        s, v = S[:, j], var[:, j]
        inside = (s > 0) & (s < 1)
        s_in = np.where(inside, s, 0.5)
        # delta method on c = log(-log S): dc/dS = 1 / (S log S)
        se_c = np.sqrt(v) / (s_in * np.abs(np.log(s_in)))
        c = np.log(-np.log(s_in))
        lo = np.exp(-np.exp(c + q_z * se_c))
        hi = np.exp(-np.exp(c - q_z * se_c))
        # S = 0 or 1 (every tree agrees: no event yet in any leaf, or every one already had it)
        out[h] = (np.where(inside, lo, s), np.where(inside, hi, s))
    return out


def _bootstrap(est, Z, terms: dict, horizons) -> dict:
    store = getattr(est, "bootstrap_", None)
    if not store:
        raise BundleError(f"the model holds no bootstrap refits (bootstrap_) for the {terms.get('n_boot')} "
                          "its interval terms name", fix="use the pipeline saved with these terms, or retrain")
    hs = np.asarray([float(h) for h in horizons])
    k = np.searchsorted(store["times"], hs, side="right") - 1
    H0 = np.where(k >= 0, store["cumhaz"][:, np.maximum(k, 0)], 0.0)  # refits × horizons
    if "coef" in store:  # coefficients, then the offset, per refit
        risk = store["coef"][:, :-1] @ Z.T - store["coef"][:, -1:]
    else:
        risk = _tree_risk(store, Z)  # refits × patients
    sb = np.exp(-H0[:, None, :] * np.exp(risk)[:, :, None])  # refits × patients × horizons
    alpha = 1.0 - float(terms["level"])
    lo, hi = np.quantile(sb, [alpha / 2, 1 - alpha / 2], axis=0)
    return {h: (lo[:, j], hi[:, j]) for j, h in enumerate(horizons)}


def survival_intervals(model, X: pd.DataFrame, terms: dict, horizons: Sequence[float]) -> pd.DataFrame:
    """``surv_<t>_low`` and ``surv_<t>_high`` of the rows of ``X`` (see the module docstring).

    Parameters
    ----------
    model
        The fitted pipeline the ``terms`` were computed for (for ``bootstrap`` terms, the one
        :func:`interval_terms` added its refits to).
    X
        Features of the new patients (the model's input columns).
    terms
        :func:`interval_terms` of the training data; terms without ``kind`` are read as
        ``delta_cox`` (bundles written before the other families had intervals).
    horizons
        Horizons to give intervals for (each among the ``terms``' horizons for ``delta_cox``
        and ``greenwood``; any time within the training follow-up for the others).

    Returns
    -------
    pandas.DataFrame
        Indexed as ``X``: for each horizon ``surv_<t>_low`` and ``surv_<t>_high``.

    Raises
    ------
    BundleError
        An unknown ``kind`` (terms from a newer pmed), or ``bootstrap`` terms with a model that
        holds no refits.
    """
    from pmed.study.survival import surv_name
    from pmed.survival.models import _final, _transform

    kind = terms.get("kind", "delta_cox")
    est = _final(model)
    if kind == "greenwood":
        bounds = {}
        for h in horizons:
            t = terms["horizons"][_key(h)]
            bounds[h] = (np.full(len(X), t["low"]), np.full(len(X), t["high"]))
    elif kind == "delta_cox":
        z = np.asarray(_transform(model, X), dtype=np.float64) - est.center_
        bounds = _delta_cox(est, z, terms, horizons)
    elif kind == "infinitesimal_jackknife":
        bounds = _infinitesimal_jackknife(est, _transform(model, X), terms, horizons)
    elif kind == "bootstrap":
        Z = np.asarray(_transform(model, X), dtype=np.float64)
        bounds = _bootstrap(est, Z, terms, horizons)
    else:
        raise BundleError(f"unknown survival interval kind {kind!r} in the bundle's manifest",
                          fix="use the pmed version that wrote the bundle, or retrain with this one")
    out = pd.DataFrame(index=X.index)
    for h in horizons:
        lo, hi = bounds[h]
        out[f"{surv_name(h)}_low"] = np.asarray(lo, dtype=np.float64)
        out[f"{surv_name(h)}_high"] = np.asarray(hi, dtype=np.float64)
    return out
