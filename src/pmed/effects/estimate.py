"""Average treatment effects estimated honestly: cross-fitted doubly robust (AIPW) scores, the
propensity either known (a trial) or modelled with an overlap report, nothing clipped silently.

For an arm ``a`` against the control, on the patients of the two arms, with ``t = 1`` for ``a``:

``ψ_i = μ1(x_i) − μ0(x_i) + t_i (y_i − μ1(x_i)) / e(x_i) − (1 − t_i)(y_i − μ0(x_i)) / (1 − e(x_i))``

where ``μ1``, ``μ0`` are outcome models fitted on the arm's and the control's patients and
``e`` is P(arm | x, arm or control). Each patient's ``μ`` and ``e`` come from models fitted on
the other folds (cross-fitting), so the patient's own outcome never enters its nuisance
predictions. The ATE is ``mean ψ`` with the influence-function standard error ``sd ψ / √n``
(normal interval). ``ψ`` is also the doubly robust pseudo-outcome that calibrates CATE
estimates and values treatment policies (:mod:`pmed.effects.evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["Nuisance", "crossfit_nuisance", "aipw_ate", "difference_in_means", "overlap_report", "encoder"]


def encoder(X: pd.DataFrame):
    """pmed's tabular preprocessing (imputation with indicators, scaling, one-hot) for ``X``."""
    from pmed.models.zoo import _is_binary, make_preprocessor

    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype) or X[c].dtype == object]
    binary = [c for c in X.columns if c not in categorical and _is_binary(X[c])]
    numeric = [c for c in X.columns if c not in categorical and c not in binary]
    return make_preprocessor(numeric, categorical, binary)


@dataclass
class Nuisance:
    """Cross-fitted predictions for the patients of one arm and the control (``t`` 1 / 0)."""

    t: np.ndarray
    y: np.ndarray
    mu0: np.ndarray
    mu1: np.ndarray
    e: np.ndarray
    fold: np.ndarray
    propensity_method: str

    def scores(self) -> np.ndarray:
        """The doubly robust (AIPW) score ψ of every patient."""
        t, y, e = self.t, self.y, self.e
        return (self.mu1 - self.mu0 + t * (y - self.mu1) / e - (1 - t) * (y - self.mu0) / (1 - e))


def _outcome_model(binary: bool, seed: int):
    from sklearn.linear_model import LogisticRegression, Ridge

    return LogisticRegression(C=1.0, max_iter=2000) if binary else Ridge(alpha=1.0)


def crossfit_nuisance(X: pd.DataFrame, y: np.ndarray, t: np.ndarray, *, binary: bool, folds: int = 5,
                      seed: int = 0, propensity: float | None = None) -> Nuisance:
    """Outcome models per arm and the propensity, each patient predicted by models of the other folds.

    Parameters
    ----------
    X
        Covariates of the patients of the arm and the control.
    y, t
        Outcome (0/1 when ``binary``) and 1 = arm, 0 = control.
    folds, seed
        Cross-fitting folds (stratified by arm) and their seed.
    propensity
        The known P(arm | arm or control) of a trial; ``None`` models it (logistic regression
        on the preprocessed covariates).
    """
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline

    n = len(t)
    mu0, mu1, e = np.empty(n), np.empty(n), np.empty(n)
    fold = np.empty(n, dtype=int)
    out_model = make_pipeline(encoder(X), _outcome_model(binary, seed))
    ps_model = make_pipeline(encoder(X), LogisticRegression(C=1.0, max_iter=2000))
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (tr, te) in enumerate(split.split(np.zeros(n), t)):
        fold[te] = k
        for arm, target in ((1, mu1), (0, mu0)):
            rows = tr[t[tr] == arm]
            if binary and len(np.unique(y[rows])) < 2:
                # every training patient of the arm had the same outcome: that is its prediction
                target[te] = float(y[rows][0])
                continue
            m = clone(out_model).fit(X.iloc[rows], y[rows])
            target[te] = m.predict_proba(X.iloc[te])[:, 1] if binary else m.predict(X.iloc[te])
        if propensity is None:
            e[te] = clone(ps_model).fit(X.iloc[tr], t[tr]).predict_proba(X.iloc[te])[:, 1]
        else:
            e[te] = propensity
    method = (f"known randomisation probability {propensity:g}" if propensity is not None else
              f"logistic regression on the covariates, cross-fitted in {folds} folds")
    return Nuisance(t=t, y=y, mu0=mu0, mu1=mu1, e=e, fold=fold, propensity_method=method)


def _metric(estimate: float, se: float, level: float, method: str, **extra) -> dict:
    z = float(stats.norm.ppf(0.5 + level / 2))
    return {"estimate": float(estimate), "ci_low": float(estimate - z * se), "ci_high": float(estimate + z * se),
            "method": method, "se": float(se), **extra}


def aipw_ate(nuisance: Nuisance, *, keep: np.ndarray | None = None, level: float = 0.95) -> dict:
    """The doubly robust ATE of the arm against the control, with its influence-function interval.

    ``keep`` restricts it to some patients (those inside the propensity overlap).
    """
    psi = nuisance.scores()
    if keep is not None:
        psi = psi[keep]
    n = len(psi)
    folds = len(np.unique(nuisance.fold))
    return _metric(psi.mean(), psi.std(ddof=1) / np.sqrt(n), level,
                   f"AIPW (doubly robust) with outcome models and propensity ({nuisance.propensity_method}) "
                   f"cross-fitted in {folds} folds; normal CI from the influence function", n=int(n))


def difference_in_means(y: np.ndarray, t: np.ndarray, *, level: float = 0.95) -> dict:
    """Mean outcome of the arm minus the control's, with Welch's standard error (normal CI)."""
    a, c = y[t == 1], y[t == 0]
    se = np.sqrt(a.var(ddof=1) / len(a) + c.var(ddof=1) / len(c))
    return _metric(a.mean() - c.mean(), se, level, "difference in means; Welch standard error, normal CI",
                   n=int(len(y)))


def _smd(Z: np.ndarray, t: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Standardised mean differences of the columns of ``Z`` between the arms, weighted by ``w``
    (the denominator is the unweighted pooled SD, so before and after are on one scale)."""
    def wmean(rows):
        return np.average(Z[rows], axis=0, weights=w[rows])

    a, c = t == 1, t == 0
    sd = np.sqrt((Z[a].var(axis=0, ddof=1) + Z[c].var(axis=0, ddof=1)) / 2)
    return np.where(sd > 0, (wmean(a) - wmean(c)) / np.where(sd > 0, sd, 1.0), 0.0)


def overlap_report(X: pd.DataFrame, nuisance: Nuisance, *, bounds: tuple[float, float] = (0.05, 0.95)) -> dict:
    """How well the arms overlap in their propensity, and what is done about patients outside it.

    Returns
    -------
    dict
        ``propensity`` quantiles by arm; ``smd`` per covariate (encoded column) before and after
        inverse-propensity weighting, with the largest absolute value of each; ``bounds``,
        ``n_outside`` (per arm) and ``action``: patients whose propensity lies outside
        ``bounds`` are left out of the ATE and the CATE evaluation (the estimand becomes the
        effect in the overlap population, Crump et al. 2009), and this is reported, not hidden.
    """
    t, e = nuisance.t, nuisance.e
    lo, hi = bounds
    enc = encoder(X).set_output(transform="pandas").fit(X)
    Z = enc.transform(X)
    w = np.where(t == 1, 1 / e, 1 / (1 - e))
    before, after = _smd(Z.to_numpy(float), t, np.ones(len(t))), _smd(Z.to_numpy(float), t, w)
    outside = (e < lo) | (e > hi)
    q = [0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1]
    from sklearn.metrics import roc_auc_score

    # how well the covariates tell the arms apart: 0.5 in a trial, near 1 when they decide it
    auc = float(roc_auc_score(t, e)) if np.ptp(e) > 0 else 0.5
    return {
        "propensity_method": nuisance.propensity_method,
        "propensity_auc": auc,
        "propensity": {arm: dict(zip([f"q{int(x * 100):02d}" for x in q], np.quantile(e[t == v], q).round(4).tolist(),
                                     strict=True)) for arm, v in (("arm", 1), ("control", 0))},
        "smd": pd.DataFrame({"covariate": Z.columns, "before": before.round(4), "after": after.round(4)}),
        "max_abs_smd": {"before": float(np.max(np.abs(before))) if len(before) else 0.0,
                        "after": float(np.max(np.abs(after))) if len(after) else 0.0},
        "bounds": [lo, hi],
        "n_outside": {"arm": int((outside & (t == 1)).sum()), "control": int((outside & (t == 0)).sum())},
        "action": (f"{int(outside.sum())} patient(s) with a propensity outside [{lo}, {hi}] are left out of the "
                   "ATE and the CATE evaluation (effect in the overlap population)") if outside.any()
                  else f"every patient's propensity lies within [{lo}, {hi}]: nobody left out",
        "keep": ~outside,
    }
