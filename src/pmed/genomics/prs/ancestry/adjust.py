"""Polygenic scores relative to a reference panel: percentiles, Z and PC adjustments.

:func:`adjust_scores` computes pgsc_calc's ``percentile_MostSimilarPop``, ``Z_MostSimilarPop``,
``Z_norm1`` and ``Z_norm2`` (see :mod:`pmed.genomics.prs.ancestry` for the definitions).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from pmed.errors import PmedWarning, ValidationError
from pmed.genomics.prs.ancestry._inputs import _labels, _shown

__all__ = ["adjust_scores", "ADJUST_METHODS"]

#: The adjustment methods of :func:`adjust_scores`, named as pgsc_calc names them.
ADJUST_METHODS = ("empirical", "mean", "mean+var")


def _score_frame(scores, name: str) -> pd.DataFrame:
    if isinstance(scores, pd.DataFrame) and {"IID", "PGS", "SUM"} <= set(scores.columns):
        # long form (pmed.genomics.prs.compute_scores, pgsc_calc): one row per sample × score
        dup = scores.duplicated(["IID", "PGS"])
        if dup.any():
            rows = np.nonzero(dup.to_numpy())[0] + 1
            raise ValidationError(
                [f"{name} repeats (IID, PGS) pairs in rows {_shown(rows)}"],
                fix="give one SUM per sample and score (aggregate FID duplicates first)",
            )
        order = pd.unique(scores["IID"])
        frame = scores.pivot(index="IID", columns="PGS", values="SUM").reindex(order)
        frame.columns.name = None
    elif isinstance(scores, pd.DataFrame):
        frame = scores.copy()
    elif isinstance(scores, pd.Series):
        frame = scores.to_frame(scores.name if scores.name is not None else "PGS")
    else:
        arr = np.asarray(scores, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValidationError([f"{name} must be 1-D or 2-D, got shape {arr.shape}"],
                                  fix="one row per sample, one column per score")
        cols = ["PGS"] if arr.shape[1] == 1 else [f"PGS{i + 1}" for i in range(arr.shape[1])]
        frame = pd.DataFrame(arr, columns=cols)
    try:
        frame = frame.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValidationError([f"{name} has non-numeric values ({exc})"],
                              fix="give numeric polygenic scores") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _by_id(obj, index: pd.Index, name: str, what: str):
    """Reorder ``obj`` (DataFrame / Series) to ``index`` when both carry sample IDs."""
    if not isinstance(obj, (pd.DataFrame, pd.Series)) or isinstance(obj.index, pd.RangeIndex) \
            or isinstance(index, pd.RangeIndex):
        return obj  # positional
    if obj.index.equals(index):
        return obj
    missing = index.difference(obj.index)
    if len(missing) or obj.index.has_duplicates:
        raise ValidationError(
            [f"{name} is indexed by sample ID but lacks {len(missing)} of the {what} samples"
             if len(missing) else f"{name} has duplicated sample IDs"],
            fix=f"give {name} for every {what} sample (same IDs as the scores), or pass it "
                "without an ID index to match by position",
        )
    return obj.loc[index]


def _pc_matrix(pcs, n: int, n_pcs: int, name: str) -> np.ndarray:
    if isinstance(pcs, pd.DataFrame):
        named = [f"PC{i + 1}" for i in range(n_pcs)]
        frame = pcs[named] if set(named) <= set(pcs.columns) else pcs.iloc[:, :n_pcs]
        arr = frame.to_numpy(dtype=float)
    else:
        arr = np.asarray(pcs, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValidationError([f"{name} has shape {arr.shape}; {n} rows are needed"],
                              fix="give one row of PC scores per sample, in the score order")
    if arr.shape[1] < n_pcs:
        raise ValidationError([f"{name} has {arr.shape[1]} PCs; n_pcs={n_pcs} are needed"],
                              fix="lower n_pcs or give more PCs")
    arr = arr[:, :n_pcs]  # DataFrames: PC1 … PCn by name when present, else the first columns
    if not np.isfinite(arr).all():
        rows = np.nonzero(~np.isfinite(arr).all(axis=1))[0] + 1
        raise ValidationError([f"{name} has missing or infinite values in rows {_shown(rows)}"],
                              fix="give finite PC scores for every sample")
    return arr


def _full_likelihood(y: np.ndarray, P: np.ndarray, theta0: np.ndarray) -> dict:
    """Maximum-likelihood fit of ``y ~ N(a + P·b, exp(c + P·d))``."""
    D = np.column_stack([np.ones(len(y)), P])
    m = D.shape[1]

    def nll(theta):
        mu, logv = D @ theta[:m], D @ theta[m:]
        return float(np.sum(0.5 * logv + 0.5 * (y - mu) ** 2 * np.exp(-logv)))

    def grad(theta):
        mu, logv = D @ theta[:m], D @ theta[m:]
        r, iv = y - mu, np.exp(-logv)
        return np.concatenate([-D.T @ (r * iv), D.T @ (0.5 - 0.5 * r**2 * iv)])

    res = optimize.minimize(nll, theta0, jac=grad, method="BFGS", options={"maxiter": 1000})
    return {"theta": res.x, "success": bool(res.success), "message": str(res.message),
            "nit": int(res.nit)}


def adjust_scores(
    ref_scores,
    ref_pcs,
    ref_populations,
    target_scores,
    target_pcs,
    target_populations,
    *,
    n_pcs: int = 4,
    methods: Sequence[str] = ADJUST_METHODS,
    norm2_2step: bool = False,
    gamma_alpha: float = 0.0,
    ref_train=None,
    include_reference: bool = False,
) -> pd.DataFrame:
    """Report polygenic scores relative to a reference panel, as pgsc_calc does.

    Parameters
    ----------
    ref_scores
        Scores of the reference samples: DataFrame (one column per score, named; or the long
        form ``IID, PGS, SUM`` of :func:`pmed.genomics.prs.compute_scores`), Series or array.
        Must be finite. When the scores and the PCs / populations are all pandas objects
        indexed by sample ID, they are matched by ID; otherwise by position.
    ref_pcs
        Reference PC scores (e.g. :attr:`AncestryReference.pcs_`), one row per sample.
    ref_populations
        Reference population labels (the empirical percentiles / Z use them).
    target_scores
        Scores of the target samples, with the same score columns. NaN propagates.
    target_pcs
        Target PC scores in the reference space (:meth:`AncestryReference.transform`).
    target_populations
        Most similar reference population of each target (``MostSimilarPop`` from
        :meth:`AncestryReference.predict`).
    n_pcs
        PCs used by the mean and variance adjustments (pgsc_calc's ``--n_normalization``,
        default 4).
    methods
        Any of ``"empirical"`` (percentile and Z in the most similar population), ``"mean"``
        (``Z_norm1``), ``"mean+var"`` (``Z_norm2``; implies the mean model).
    norm2_2step
        ``Z_norm2`` from the two-step estimate (linear mean model, then gamma GLM of the
        squared residuals) instead of the joint maximum-likelihood refit.
    gamma_alpha
        L2 penalty of the gamma GLM of the squared residuals (scikit-learn's
        ``GammaRegressor(alpha=...)``). pmed fits it unpenalised; pgsc_calc keeps
        scikit-learn's default 1.0, which shrinks the variance model. This only changes
        ``Z_norm2`` with ``norm2_2step=True``; the default joint refit merely starts there.
        Set 1.0 to reproduce pgsc_calc's two-step output.
    ref_train
        Optional boolean mask of the reference samples the adjustments are fitted on
        (pgsc_calc fits on unrelated samples only); all reference samples are still
        reported. Default: all.
    include_reference
        Also return the reference samples (``REFERENCE`` true), each against its own
        population, e.g. for :func:`pmed.genomics.prs.plots.score_distribution_plot`.

    Returns
    -------
    DataFrame
        Long form, one row per sample and score: ``IID``, ``PGS``, ``REFERENCE``, ``SUM``,
        ``MostSimilarPop``, then by method ``percentile_MostSimilarPop``,
        ``Z_MostSimilarPop``, ``Z_norm1``, ``Z_norm2`` (see the module docstring). A score
        without variance in the reference gets NaN in every adjusted column, as in pgsc_calc;
        a population without variance gets a NaN ``Z_MostSimilarPop``.
        ``attrs["models"]`` holds the fitted parameters (per-population mean, SD and
        percentiles 0–100; PC standardisation; regression coefficients; the likelihood fit's
        convergence), JSON-serialisable with :func:`pmed.io.jsonio.to_json`.
    """
    from sklearn.linear_model import GammaRegressor

    methods = tuple(methods)
    unknown = [m for m in methods if m not in ADJUST_METHODS]
    if unknown or not methods:
        raise ValidationError([f"unknown or no adjustment methods: {unknown or 'none'}"],
                              fix=f"choose among {ADJUST_METHODS}")
    if not (isinstance(n_pcs, (int, np.integer)) and n_pcs >= 1):
        raise ValidationError([f"n_pcs={n_pcs!r} must be a positive integer"],
                              fix="use e.g. n_pcs=4 (pgsc_calc's default)")

    ref = _score_frame(ref_scores, "ref_scores")
    tgt = _score_frame(target_scores, "target_scores")
    n_ref, n_tgt = len(ref), len(tgt)
    problems = []
    if set(ref.columns) != set(tgt.columns):
        problems.append(f"score columns differ: reference {_shown(list(ref.columns))}, "
                        f"target {_shown(list(tgt.columns))}")
    if not np.isfinite(ref.to_numpy()).all():
        bad = np.nonzero(~np.isfinite(ref.to_numpy()).all(axis=1))[0] + 1
        problems.append(f"reference scores are missing or infinite in rows {_shown(bad)}")
    if problems:
        raise ValidationError(problems, fix="score the reference and the targets with the same "
                                            "scoring files, and drop unscored reference samples")
    tgt = tgt[list(ref.columns)]
    ref_pcs = _by_id(ref_pcs, ref.index, "ref_pcs", "reference")
    target_pcs = _by_id(target_pcs, tgt.index, "target_pcs", "target")
    ref_populations = _by_id(ref_populations, ref.index, "ref_populations", "reference")
    target_populations = _by_id(target_populations, tgt.index, "target_populations", "target")
    ref_pop = _labels(ref_populations, n_ref, "ref_populations")
    tgt_pop = _labels(target_populations, n_tgt, "target_populations")
    pops = np.unique(ref_pop)
    foreign = sorted(set(tgt_pop) - set(pops))
    if foreign:
        raise ValidationError([f"target populations absent from the reference: "
                               f"{_shown(foreign)}"],
                              fix="assign targets with AncestryReference.predict on this "
                                  "reference")
    P_ref = _pc_matrix(ref_pcs, n_ref, n_pcs, "ref_pcs")
    P_tgt = _pc_matrix(target_pcs, n_tgt, n_pcs, "target_pcs")

    # the PCs, standardised with the reference mean and SD (ddof = 0), as pgsc_calc does
    if ref_train is None:
        train = np.ones(n_ref, dtype=bool)
    else:
        train = np.asarray(_by_id(ref_train, ref.index, "ref_train", "reference"), dtype=bool)
        if train.shape != (n_ref,):
            raise ValidationError([f"ref_train has shape {train.shape}; {n_ref} flags are needed"],
                                  fix="give one true/false flag per reference sample")
    few = [f"{pop} ({int(np.sum(train & (ref_pop == pop)))})" for pop in pops
           if np.sum(train & (ref_pop == pop)) < 2]
    if few:
        raise ValidationError([f"reference populations with fewer than 2 training samples: "
                               f"{_shown(few)}"],
                              fix="keep more reference samples in ref_train")
    pc_mean, pc_sd = P_ref[train].mean(axis=0), P_ref[train].std(axis=0)
    pc_sd = np.where(pc_sd > 0, pc_sd, 1.0)
    S_ref, S_tgt = (P_ref - pc_mean) / pc_sd, (P_tgt - pc_mean) / pc_sd

    models: dict[str, Any] = {"n_pcs": int(n_pcs), "methods": list(methods),
                              "pc_mean": pc_mean.tolist(), "pc_sd": pc_sd.tolist(), "scores": {}}
    frames = []
    for score in ref.columns:
        y_ref = ref[score].to_numpy()
        y_tgt = tgt[score].to_numpy()
        res_ref: dict[str, np.ndarray] = {}
        res_tgt: dict[str, np.ndarray] = {}
        model: dict[str, Any] = {}
        constant = not np.var(y_ref[train]) > 0

        if "empirical" in methods:
            res_ref["percentile_MostSimilarPop"] = np.full(n_ref, np.nan)
            res_tgt["percentile_MostSimilarPop"] = np.full(n_tgt, np.nan)
            res_ref["Z_MostSimilarPop"] = np.full(n_ref, np.nan)
            res_tgt["Z_MostSimilarPop"] = np.full(n_tgt, np.nan)
            model["empirical"] = {}
            for pop in pops if not constant else ():  # pgsc_calc skips constant scores
                dist = y_ref[train & (ref_pop == pop)]
                mean, sd = float(dist.mean()), float(dist.std())
                model["empirical"][str(pop)] = {
                    "n": int(len(dist)), "mean": mean, "sd": sd,
                    "percentiles": np.percentile(dist, np.arange(101)).tolist(),
                }
                for y, lab, res in ((y_ref, ref_pop, res_ref), (y_tgt, tgt_pop, res_tgt)):
                    sel = lab == pop
                    if not sel.any():
                        continue
                    vals = y[sel]
                    pct = np.full(len(vals), np.nan)
                    ok = np.isfinite(vals)
                    if ok.any():
                        pct[ok] = stats.percentileofscore(dist, vals[ok], kind="rank")
                    res["percentile_MostSimilarPop"][sel] = pct
                    res["Z_MostSimilarPop"][sel] = (vals - mean) / sd if sd > 0 else np.nan

        if "mean" in methods or "mean+var" in methods:
            res_ref["Z_norm1"] = np.full(n_ref, np.nan)
            res_tgt["Z_norm1"] = np.full(n_tgt, np.nan)
            if "mean+var" in methods:
                res_ref["Z_norm2"] = np.full(n_ref, np.nan)
                res_tgt["Z_norm2"] = np.full(n_tgt, np.nan)
            if not constant:
                offset = float(y_ref[train].mean())
                yc_ref, yc_tgt = y_ref - offset, y_tgt - offset
                D_ref = np.column_stack([np.ones(n_ref), S_ref])
                D_tgt = np.column_stack([np.ones(n_tgt), S_tgt])
                beta, *_ = np.linalg.lstsq(D_ref[train], yc_ref[train], rcond=None)
                r_ref = yc_ref - D_ref @ beta
                r_tgt = yc_tgt - D_tgt @ beta
                r_sd = float(r_ref[train].std())
                model["mean"] = {"pgs_offset": offset, "intercept": float(beta[0]),
                                 "coef": beta[1:].tolist(), "resid_sd": r_sd}
                if r_sd > 0:
                    res_ref["Z_norm1"] = r_ref / r_sd
                    res_tgt["Z_norm1"] = r_tgt / r_sd
                if "mean+var" in methods and r_sd > 0:
                    # fitted on the scale of Z_norm1 (residual SD 1), so that the optimiser's
                    # tolerances do not depend on the units of the score; parameters are
                    # reported on the score's own scale
                    log_var = 2.0 * np.log(r_sd)
                    z_train = r_ref[train] / r_sd
                    sq = (z_train - z_train.mean()) ** 2
                    sq = np.maximum(sq, np.finfo(float).tiny)  # gamma needs y > 0
                    gam = GammaRegressor(alpha=gamma_alpha, max_iter=1000).fit(S_ref[train], sq)
                    gamma_theta = np.concatenate([[gam.intercept_], gam.coef_])
                    if norm2_2step:
                        res_ref["Z_norm2"] = r_ref / r_sd / np.sqrt(np.exp(D_ref @ gamma_theta))
                        res_tgt["Z_norm2"] = r_tgt / r_sd / np.sqrt(np.exp(D_tgt @ gamma_theta))
                        model["mean+var"] = {"two_step": True,
                                             "var_intercept": float(gamma_theta[0] + log_var),
                                             "var_coef": gamma_theta[1:].tolist()}
                    else:
                        fit = _full_likelihood(yc_ref[train] / r_sd, S_ref[train],
                                               np.concatenate([beta / r_sd, gamma_theta]))
                        th = fit["theta"]
                        m = n_pcs + 1
                        res_ref["Z_norm2"] = (yc_ref / r_sd - D_ref @ th[:m]) / np.sqrt(
                            np.exp(D_ref @ th[m:]))
                        res_tgt["Z_norm2"] = (yc_tgt / r_sd - D_tgt @ th[:m]) / np.sqrt(
                            np.exp(D_tgt @ th[m:]))
                        model["mean+var"] = {
                            "two_step": False,
                            "mu_intercept": float(th[0] * r_sd),
                            "mu_coef": (th[1:m] * r_sd).tolist(),
                            "var_intercept": float(th[m] + log_var),
                            "var_coef": th[m + 1:].tolist(),
                            "converged": fit["success"], "message": fit["message"],
                            "iterations": fit["nit"],
                        }
                        if not fit["success"]:
                            warnings.warn(
                                f"score {score}: the mean+variance likelihood fit did not "
                                f"converge ({fit['message']}); Z_norm2 uses its last "
                                "estimate", PmedWarning, stacklevel=2)
        models["scores"][score] = model

        parts = [(tgt.index, y_tgt, tgt_pop, res_tgt, False)]
        if include_reference:
            parts.append((ref.index, y_ref, ref_pop, res_ref, True))
        for index, y, lab, res, is_ref in parts:
            frames.append(pd.DataFrame({
                "IID": np.asarray(index), "PGS": score, "REFERENCE": is_ref, "SUM": y,
                "MostSimilarPop": lab, **res,
            }))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["models"] = models
    return out
