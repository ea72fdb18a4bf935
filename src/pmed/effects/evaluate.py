"""Is the estimated heterogeneity real? Checks of out-of-fold CATE against doubly robust scores.

Every check uses the AIPW scores ``ψ`` of :mod:`pmed.effects.estimate` as the patients' observed
effects (unbiased for the effect given the covariates, in trials and in observational data
alike) and each patient's out-of-fold CATE as the prediction:

* **TOC / RATE** (Yadlowsky et al. 2021, grf's ``rank_average_treatment_effect``): with patients
  ranked by predicted benefit, ``TOC(q)`` = mean ψ of the top fraction ``q`` minus mean ψ of all.
  ``autoc`` = mean TOC over ``q``; ``qini`` = mean of ``q·TOC(q)``. Both are 0 for a ranking no
  better than chance.
* **Uplift curve** ``gain(q) = q · mean ψ in the top q`` (expected benefit per patient when the
  top ``q`` are treated) and ``auuc`` its mean over ``q``.
* **Calibration**: patients in quantile groups of predicted CATE; predicted vs observed (mean ψ)
  effect per group; the best-linear-predictor slope of ψ on the centred CATE (1 = the
  heterogeneity is right in size, 0 = none found; Chernozhukov et al.).
* **Policy value**: treating by estimated benefit against treating all and none, each as the
  mean benefit per patient over treating none, with doubly robust intervals.

Bootstrap intervals resample patients with the ranking held fixed (as grf does).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["rate", "cate_calibration", "policy_value"]


def _ranked(cate: np.ndarray, psi: np.ndarray, higher_is_better: bool) -> np.ndarray:
    order = np.argsort(-cate if higher_is_better else cate, kind="mergesort")
    return psi[order] if higher_is_better else -psi[order]


def _curves(psi_ranked: np.ndarray, grid: np.ndarray) -> dict[str, float]:
    n = len(psi_ranked)
    top = np.maximum(1, np.round(grid * n).astype(int))
    cum = np.cumsum(psi_ranked)[top - 1] / top
    toc = cum - psi_ranked.mean()
    return {"autoc": float(toc.mean()), "qini": float((grid * toc).mean()), "auuc": float((grid * cum).mean())}


def rate(cate, psi, *, higher_is_better: bool = True, n_boot: int = 200, seed: int = 0,
         level: float = 0.95) -> dict:
    """AUTOC, Qini and AUUC of a CATE ranking with percentile bootstrap intervals; the TOC curve.

    ``psi`` and (with ``higher_is_better=False``, for harmful outcomes) the benefit are on the
    scale where larger is better for the patient.
    """
    cate, psi = np.asarray(cate, float), np.asarray(psi, float)
    grid = np.linspace(0.05, 1.0, 20)
    point = _curves(_ranked(cate, psi, higher_is_better), grid)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = np.sort(rng.integers(0, len(psi), len(psi)))
        boots.append(_curves(_ranked(cate[idx], psi[idx], higher_is_better), grid))
    a = (1 - level) / 2
    method = f"doubly robust scores, ranking by out-of-fold CATE; percentile bootstrap, {n_boot} resamples"
    out = {}
    for k, v in point.items():
        vals = np.array([b[k] for b in boots]) if boots else np.array([np.nan])
        out[k] = {"estimate": v, "ci_low": float(np.quantile(vals, a)), "ci_high": float(np.quantile(vals, 1 - a)),
                  "method": method}
    ranked = _ranked(cate, psi, higher_is_better)
    top = np.maximum(1, np.round(grid * len(psi)).astype(int))
    cum = np.cumsum(ranked)[top - 1] / top
    out["curve"] = pd.DataFrame({"fraction_treated": grid, "toc": cum - ranked.mean(), "gain": grid * cum})
    return out


def cate_calibration(cate, psi, *, n_groups: int = 5, level: float = 0.95) -> dict:
    """Predicted vs observed effect by quantile group of CATE, and the BLP calibration slope."""
    cate, psi = np.asarray(cate, float), np.asarray(psi, float)
    z = float(stats.norm.ppf(0.5 + level / 2))
    groups = pd.qcut(pd.Series(cate).rank(method="first"), n_groups, labels=False).to_numpy()
    rows = []
    for g in range(n_groups):
        m = groups == g
        se = psi[m].std(ddof=1) / np.sqrt(m.sum())
        rows.append({"group": g + 1, "n": int(m.sum()), "predicted": float(cate[m].mean()),
                     "observed": float(psi[m].mean()), "ci_low": float(psi[m].mean() - z * se),
                     "ci_high": float(psi[m].mean() + z * se)})
    # ψ = a + b·(cate − mean cate): OLS with heteroskedasticity-robust (HC1) standard errors
    D = np.column_stack([np.ones_like(cate), cate - cate.mean()])
    beta, *_ = np.linalg.lstsq(D, psi, rcond=None)
    r = psi - D @ beta
    bread = np.linalg.inv(D.T @ D)
    n, p = D.shape
    cov = bread @ (D.T * r ** 2) @ D @ bread * n / (n - p)
    se_b = float(np.sqrt(cov[1, 1]))
    slope = {"estimate": float(beta[1]), "ci_low": float(beta[1] - z * se_b), "ci_high": float(beta[1] + z * se_b),
             "method": "best linear predictor: OLS of the doubly robust scores on the centred CATE, HC1 robust SE",
             "p_heterogeneity": float(stats.norm.sf(beta[1] / se_b)) if se_b > 0 else float("nan")}
    return {"groups": pd.DataFrame(rows), "slope": slope}


def policy_value(cate, psi, *, higher_is_better: bool = True, level: float = 0.95) -> dict:
    """Mean benefit per patient over treating none: treat by estimated effect, treat all.

    Treating by estimated effect treats the patients whose out-of-fold CATE is favourable
    (> 0, or < 0 for a harmful outcome). Each value is a mean of doubly robust terms, with a
    normal interval; ``by_cate_minus_all`` is the paired difference.
    """
    cate, psi = np.asarray(cate, float), np.asarray(psi, float)
    benefit = psi if higher_is_better else -psi
    treat = cate > 0 if higher_is_better else cate < 0
    z = float(stats.norm.ppf(0.5 + level / 2))

    def m(v: np.ndarray, what: str) -> dict:
        se = v.std(ddof=1) / np.sqrt(len(v))
        return {"estimate": float(v.mean()), "ci_low": float(v.mean() - z * se), "ci_high": float(v.mean() + z * se),
                "method": f"{what}; mean of doubly robust scores, normal CI"}

    return {"treat_by_cate": m(treat * benefit, "treat where the estimated effect is favourable"),
            "treat_all": m(benefit, "treat everyone"),
            "treat_none": {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0, "method": "the reference"},
            "by_cate_minus_all": m((treat - 1) * benefit, "treat by estimated effect minus treat everyone"),
            "fraction_treated": float(treat.mean())}
