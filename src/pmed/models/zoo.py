"""The estimator zoo: one function builds any candidate pipeline from a family name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pmed.errors import StudyError

__all__ = ["FAMILIES", "TASKS", "make_model", "make_preprocessor"]

TASKS = ("binary", "continuous")

#: family → one-line description (shown in docs and errors)
FAMILIES = {
    "mean": "baseline: the training outcome mean (continuous) or prevalence (binary)",
    "linear": "L2-regularised logistic regression (binary) / ridge regression with its penalty tuned by leave-one-out (continuous)",
    "elastic_net": "elastic-net logistic regression (binary) / elastic-net regression (continuous)",
    "random_forest": "random forest",
    "lightgbm": "gradient boosting with LightGBM",
    "svm": "support vector machine, RBF kernel (Platt-calibrated probabilities for binary)",
}


def make_preprocessor(
    numeric: Sequence[str], categorical: Sequence[str], binary: Sequence[str] = ()
) -> ColumnTransformer:
    """Imputation, scaling and one-hot encoding, fitted only on the rows it is given.

    Numeric columns: median imputation with a missingness indicator (missingness is often
    informative in clinical data), then standardisation. Binary 0/1 columns (mutations,
    diagnoses): most-frequent imputation with an indicator, not scaled, since standardising a
    rare indicator inflates it into an outlier that regularised linear models overfit.
    Categorical columns: missing becomes its own level ``"missing"``, then one-hot encoding that
    ignores levels unseen in training.
    """
    num = Pipeline(
        [("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
         ("scale", StandardScaler())]
    )
    binary_ = Pipeline(
        [("impute", SimpleImputer(strategy="most_frequent", add_indicator=True, keep_empty_features=True))]
    )
    cat = Pipeline(
        [("impute", SimpleImputer(strategy="constant", fill_value="missing")),
         ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]
    )
    return ColumnTransformer(
        [("num", num, list(numeric)), ("bin", binary_, list(binary)), ("cat", cat, list(categorical))],
        verbose_feature_names_out=False,
    )


def _is_binary(s: pd.Series) -> bool:
    v = pd.unique(s.dropna())
    return len(v) > 0 and set(np.asarray(v, dtype=float)) <= {0.0, 1.0}


def _estimator(family: str, task: str, params: Mapping[str, Any], seed: int):
    binary = task == "binary"
    p = dict(params)
    if family == "mean":
        from sklearn.dummy import DummyClassifier, DummyRegressor

        return DummyClassifier(strategy="prior") if binary else DummyRegressor(strategy="mean")
    if family == "linear":
        if binary:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(**{"C": 1.0, "class_weight": "balanced", "max_iter": 5000, **p})
        from sklearn.linear_model import RidgeCV

        # penalty chosen by efficient leave-one-out inside each training fold: with as many
        # features as patients (genomic panels) a fixed small penalty overfits badly
        return RidgeCV(**{"alphas": tuple(np.logspace(-2, 4, 13)), **p})
    if family == "elastic_net":
        if binary:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(**{
                "solver": "saga", "l1_ratio": 0.5, "C": 0.5, "tol": 1e-3,
                "class_weight": "balanced", "max_iter": 5000, "random_state": seed, **p})
        from sklearn.linear_model import ElasticNet

        return ElasticNet(**{"alpha": 0.05, "l1_ratio": 0.5, "max_iter": 10000, "random_state": seed, **p})
    if family == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        defaults = {"n_estimators": 300, "min_samples_leaf": 3, "random_state": seed, "n_jobs": 1}
        if binary:
            return RandomForestClassifier(**{**defaults, "class_weight": "balanced", **p})
        return RandomForestRegressor(**{**defaults, "max_features": 0.33, **p})
    if family == "lightgbm":
        from lightgbm import LGBMClassifier, LGBMRegressor

        # deterministic + one thread: the same study twice gives identical numbers
        defaults = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 15,
                    "min_child_samples": 10, "subsample": 0.8, "subsample_freq": 1,
                    "colsample_bytree": 0.8, "random_state": seed, "n_jobs": 1,
                    "deterministic": True, "force_row_wise": True, "verbose": -1}
        if binary:
            return LGBMClassifier(**{**defaults, "class_weight": "balanced", **p})
        return LGBMRegressor(**{**defaults, **p})
    if family == "svm":
        if binary:
            from sklearn.calibration import CalibratedClassifierCV
            from sklearn.svm import SVC

            svc = SVC(**{"C": 1.0, "kernel": "rbf", "class_weight": "balanced", **p})
            return CalibratedClassifierCV(svc, method="sigmoid", cv=5, ensemble=False)
        from sklearn.svm import SVR

        return SVR(**{"C": 1.0, "kernel": "rbf", **p})
    raise StudyError(
        f"unknown model family {family!r}",
        fix=f"use one of: {', '.join(FAMILIES)}",
    )


def make_model(
    family: str,
    *,
    task: str,
    X: pd.DataFrame,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> Pipeline:
    """Build an unfitted pipeline ``preprocess → model`` for the columns of ``X``.

    Parameters
    ----------
    family
        One of :data:`FAMILIES`.
    task
        ``"binary"`` or ``"continuous"``.
    X
        The feature table (only its columns and dtypes are used: categorical dtype columns
        are one-hot encoded, the rest are numeric).
    params
        Keyword arguments for the final estimator, overriding pmed's defaults.
    seed
        Random state for every stochastic step.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``preprocess`` and ``model``. Binary classifiers weight classes to balance them.
    """
    if task not in TASKS:
        raise StudyError(f"unknown task {task!r}", fix=f"use one of: {', '.join(TASKS)}")
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    # which columns are 0/1 depends only on their values, never on the outcome: no leakage
    binary = [c for c in X.columns if c not in categorical and _is_binary(X[c])]
    numeric = [c for c in X.columns if c not in categorical and c not in binary]
    est = _estimator(family, task, params or {}, seed)
    return Pipeline([("preprocess", make_preprocessor(numeric, categorical, binary)), ("model", est)])
