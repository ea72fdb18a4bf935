"""Coefficients of fitted linear pipelines, with bootstrap confidence intervals."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline

from pmed.errors import OptionError, StudyError
from pmed.explain.shap_values import _inputs, _steps
from pmed.models.importance import input_feature_of_outputs

__all__ = ["linear_coefficients"]

_COLUMNS = ["term", "input_feature", "coefficient", "ci_low", "ci_high",
            "odds_ratio", "or_ci_low", "or_ci_high", "scale"]


def linear_coefficients(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    *,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Coefficient table of a fitted linear pipeline (logistic, ridge, elastic net).

    Confidence intervals are bootstrap percentile intervals: the *whole pipeline* (imputation,
    scaling, encoding and the model, including any internal penalty tuning such as RidgeCV's)
    is refitted on ``n_boot`` resamples of the rows of ``X, y``, so preprocessing uncertainty
    is included.

    Penalised models shrink their coefficients towards zero, and the interval is for the
    *penalised* estimator: it describes how much the fitted model's coefficient varies, not a
    classical interval for the unpenalised effect (with strong penalties or few events it can
    exclude the true effect). pmed's logistic models also weight classes to balance them,
    which leaves the slopes unchanged but moves the intercept to a balanced prevalence.

    Parameters
    ----------
    pipeline
        A *fitted* ``preprocess → model`` pipeline whose model has ``coef_``.
    X, y
        The data it was fitted on (the resamples are drawn from them).
    n_boot
        Bootstrap resamples; 0 gives point estimates only.
    seed
        Random state of the resampling.
    level
        Confidence level of the intervals.
    n_jobs
        Parallel refits (joblib); each refit is one pipeline fit, so ``n_boot=200`` costs
        200 fits of the model.

    Returns
    -------
    pandas.DataFrame
        One row per encoded term, the intercept first: ``term, input_feature, coefficient,
        ci_low, ci_high, odds_ratio, or_ci_low, or_ci_high, scale``. Odds ratios are
        ``exp(coefficient)`` for logistic models and NaN otherwise. ``scale`` says what one
        unit of the term is: numeric features are standardised, so their coefficient is per
        standard deviation (given in brackets, in the feature's units; divide by it for a
        per-unit effect); 0/1 features and missingness indicators compare present with
        absent; one-hot levels are all kept, so a level's coefficient is its deviation from
        the average level and differences between levels are the contrasts. ``attrs`` holds
        ``n_boot``, ``n_boot_used`` and ``level``.
    """
    pre, model = _steps(pipeline)
    if not hasattr(model, "coef_") or np.ravel(model.coef_).size != model.n_features_in_:
        raise StudyError(
            f"{type(model).__name__} has no single coefficient vector",
            fix="use a linear family (linear, elastic_net), or permutation_importance_table for any model",
        )
    if not 0 < level < 1:
        raise OptionError("level must be between 0 and 1")
    binary = is_classifier(model)
    X = _inputs(pre, X)
    y = np.asarray(y)
    terms, coef, intercept = _coefficients(pipeline)
    owners = input_feature_of_outputs(pipeline)
    point = np.concatenate([[intercept], coef])

    # all resamples are drawn up front, so results do not depend on n_jobs
    rng = np.random.default_rng(seed)
    samples = [rng.integers(0, len(X), len(X)) for _ in range(n_boot)]
    if n_jobs == 1:
        fits = [_refit(pipeline, X, y, idx, binary) for idx in samples]
    else:
        from joblib import Parallel, delayed

        fits = Parallel(n_jobs=n_jobs)(delayed(_refit)(pipeline, X, y, idx, binary) for idx in samples)
    boots = np.full((n_boot, len(point)), np.nan)
    for b, fit in enumerate(fits):
        if fit is None:
            continue
        t_b, c_b, i_b = fit
        # a resample can lack a rare category or every missing value: that term is absent
        boots[b, 0] = i_b
        boots[b, 1:] = pd.Series(c_b, index=t_b).groupby(level=0).first().reindex(terms).to_numpy()
    alpha = (1 - level) / 2
    if n_boot > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN terms: CI stays NaN
            lo, hi = np.nanquantile(boots, [alpha, 1 - alpha], axis=0)
    else:
        lo = hi = np.full(len(point), np.nan)

    prefix = "log-odds" if binary else "outcome units"
    intercept_scale = prefix + (", balanced classes" if binary and getattr(model, "class_weight", None) == "balanced" else "")
    df = pd.DataFrame({
        "term": ["(intercept)", *terms],
        "input_feature": ["(intercept)", *map(str, owners)],
        "coefficient": point,
        "ci_low": lo,
        "ci_high": hi,
    })
    if binary:
        df["odds_ratio"], df["or_ci_low"], df["or_ci_high"] = np.exp(point), np.exp(lo), np.exp(hi)
    else:
        df["odds_ratio"] = df["or_ci_low"] = df["or_ci_high"] = np.nan
    df["scale"] = [intercept_scale, *(f"{prefix} {s}" for s in _term_scales(pre))]
    df.attrs.update(n_boot=n_boot, n_boot_used=int(np.isfinite(boots[:, 0]).sum()), level=level)
    return df[_COLUMNS]


def _refit(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, idx: np.ndarray, binary: bool):
    if binary and len(np.unique(y[idx])) < 2:
        return None  # a resample without events cannot be fitted: leave it out
    with warnings.catch_warnings():
        # a resample may need a few more iterations than the original fit; its
        # coefficients are still the penalised estimate to within the solver tolerance
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = clone(pipeline).fit(X.iloc[idx], y[idx])
    return _coefficients(fitted)


def _coefficients(pipeline: Pipeline) -> tuple[list[str], np.ndarray, float]:
    pre, model = pipeline.named_steps["preprocess"], pipeline.named_steps["model"]
    terms = [str(t) for t in pre.get_feature_names_out()]
    coef = np.ravel(model.coef_).astype(float)
    intercept = float(np.ravel(np.atleast_1d(getattr(model, "intercept_", 0.0)))[0])
    return terms, coef, intercept


def _term_scales(pre) -> list[str]:
    """What one unit of each encoded column is, in the order the preprocessor outputs them."""
    out: list[str] = []
    for name, trans, cols in pre.transformers_:
        if name == "remainder" or trans == "drop" or len(cols) == 0:
            continue
        cols = list(cols)
        if name in ("num", "bin"):
            imputer = trans.named_steps["impute"]
            n_ind = 0 if imputer.indicator_ is None else len(imputer.indicator_.features_)
            kinds = ["value"] * len(cols) + ["indicator"] * n_ind
            scaler = trans.named_steps.get("scale")
            sds = scaler.scale_ if scaler is not None else [None] * len(kinds)
            for kind, sd in zip(kinds, sds, strict=True):
                base = {"value": "per SD" if name == "num" else "1 vs 0",
                        "indicator": "missing vs recorded"}[kind]
                if sd is not None and kind == "value":
                    out.append(f"{base} ({float(sd):.3g})")
                elif sd is not None:
                    out.append(f"{base}, per SD of the indicator ({float(sd):.3g})")
                else:
                    out.append(base)
        elif name == "cat":
            onehot = trans.named_steps["onehot"]
            for cats in onehot.categories_:
                out += ["this level vs the average level"] * len(cats)
    return out
