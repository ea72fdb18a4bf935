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
from pmed.models.registry import FamilyDescriptions, get_family, register_model

__all__ = ["FAMILIES", "DEFAULT_FAMILIES", "TASKS", "make_model", "make_preprocessor"]

TASKS = ("binary", "continuous", "survival")

#: family → one-line description: a live view of :mod:`pmed.models.registry` (a family registered
#: with :func:`~pmed.models.registry.register_model` appears here too)
FAMILIES = FamilyDescriptions()

#: the candidates of a study that lists no ``models``: every tabular family of the zoo
DEFAULT_FAMILIES = ("mean", "linear", "elastic_net", "random_forest", "lightgbm", "svm")


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
    """The final estimator of a built-in tabular family.

    Binary classifiers are unweighted by default (``class_weight=None``): class weighting
    shifts every predicted risk towards 0.5 and so miscalibrates them. A study opts in with
    ``imbalance: {weighting: balanced}`` (which also recalibrates inside each fold), or a model
    with ``params: {class_weight: balanced}``.
    """
    binary = task == "binary"
    p = dict(params)
    if family == "mean":
        from sklearn.dummy import DummyClassifier, DummyRegressor

        return DummyClassifier(strategy="prior") if binary else DummyRegressor(strategy="mean")
    if family == "linear":
        if binary:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(**{"C": 1.0, "class_weight": None, "max_iter": 5000, **p})
        from sklearn.linear_model import RidgeCV

        # penalty chosen by efficient leave-one-out inside each training fold: with as many
        # features as patients (genomic panels) a fixed small penalty overfits badly
        return RidgeCV(**{"alphas": tuple(np.logspace(-2, 4, 13)), **p})
    if family == "elastic_net":
        if binary:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(**{
                "solver": "saga", "l1_ratio": 0.5, "C": 0.5, "tol": 1e-3,
                "class_weight": None, "max_iter": 5000, "random_state": seed, **p})
        from sklearn.linear_model import ElasticNet

        return ElasticNet(**{"alpha": 0.05, "l1_ratio": 0.5, "max_iter": 10000, "random_state": seed, **p})
    if family == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        defaults = {"n_estimators": 300, "min_samples_leaf": 3, "random_state": seed, "n_jobs": 1}
        if binary:
            return RandomForestClassifier(**{**defaults, "class_weight": None, **p})
        return RandomForestRegressor(**{**defaults, "max_features": 0.33, **p})
    if family == "lightgbm":
        from lightgbm import LGBMClassifier, LGBMRegressor

        # deterministic + one thread: the same study twice gives identical numbers
        defaults = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 15,
                    "min_child_samples": 10, "subsample": 0.8, "subsample_freq": 1,
                    "colsample_bytree": 0.8, "random_state": seed, "n_jobs": 1,
                    "deterministic": True, "force_row_wise": True, "verbose": -1}
        if binary:
            return LGBMClassifier(**{**defaults, "class_weight": None, **p})
        return LGBMRegressor(**{**defaults, **p})
    if family == "svm":
        if binary:
            from sklearn.calibration import CalibratedClassifierCV
            from sklearn.svm import SVC

            svc = SVC(**{"C": 1.0, "kernel": "rbf", "class_weight": None, **p})
            return CalibratedClassifierCV(svc, method="sigmoid", cv=5, ensemble=False)
        from sklearn.svm import SVR

        return SVR(**{"C": 1.0, "kernel": "rbf", **p})
    raise StudyError(
        f"unknown model family {family!r}",
        fix=f"use one of: {', '.join(FAMILIES)}",
    )


def _builtin(family: str):
    def factory(*, task: str, params: Mapping[str, Any], seed: int, X: pd.DataFrame):
        return _estimator(family, task, params, seed)

    factory.__name__ = f"make_{family}"
    return factory


_DESCRIPTIONS = {
    "mean": "baseline: the training outcome mean (continuous) or prevalence (binary)",
    "linear": "L2-regularised logistic regression (binary) / ridge regression with its penalty tuned by leave-one-out (continuous)",
    "elastic_net": "elastic-net logistic regression (binary) / elastic-net regression (continuous)",
    "random_forest": "random forest",
    "lightgbm": "gradient boosting with LightGBM",
    "svm": "support vector machine, RBF kernel (Platt-calibrated probabilities for binary)",
}
for _f, _d in _DESCRIPTIONS.items():
    register_model(_f, _builtin(_f), description=_d, class_weight=_f != "mean")


# ---------------------------------------------------------------------- PyTorch families
_GRID_PREFIXES = ("x|", "m|", "d|")


def _grid_columns(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns if str(c).startswith(_GRID_PREFIXES)]


def _grud_preprocessor(X: pd.DataFrame) -> ColumnTransformer:
    """Grid columns pass through untouched (GRU-D standardises and masks them itself); static
    columns get pmed's standard preprocessing. Output is a DataFrame, named as the input."""
    grid = _grid_columns(X)
    static = [c for c in X.columns if c not in grid]
    categorical = [c for c in static if isinstance(X[c].dtype, pd.CategoricalDtype)]
    binary = [c for c in static if c not in categorical and _is_binary(X[c])]
    numeric = [c for c in static if c not in categorical and c not in binary]
    parts: list = [("grid", "passthrough", grid)]
    if static:
        parts.append(("static", make_preprocessor(numeric, categorical, binary), static))
    return ColumnTransformer(parts, verbose_feature_names_out=False).set_output(transform="pandas")


def _grud_factory(*, task: str, params: Mapping[str, Any], seed: int, X: pd.DataFrame):
    if not _grid_columns(X):
        raise StudyError(
            "model family 'grud' needs time-series grid columns (x|variable|step, m|variable|step, "
            "d|variable|step) among the features, and the study's features have none",
            where="key models[].family",
            fix="add a block written from pmed.timeseries.to_grid(...).flatten() (a CSV indexed by "
                "patient_id) to data.blocks and features.blocks; see docs/study.md")
    from pmed.timeseries.grud import GRUDClassifier

    return GRUDClassifier(**{"random_state": seed, **params})


def _cnn_preprocessor(X: pd.DataFrame) -> ColumnTransformer:
    """Every column passes through untouched: the image classifier picks its column of image
    paths itself (:func:`pmed.models.image.find_image_column`) and ignores the others."""
    return ColumnTransformer([("image", "passthrough", list(X.columns))],
                             verbose_feature_names_out=False).set_output(transform="pandas")


def _cnn_factory(*, task: str, params: Mapping[str, Any], seed: int, X: pd.DataFrame):
    # imported here: it imports pmed.imaging (and PyTorch when fitting) only for a cnn model
    from pmed.models.image import ImagePathClassifier, find_image_column

    p = dict(params)
    column = find_image_column(X, p.get("image_column"), root=p.get("root"))
    # refuse missing files before any fold is fitted (counted: paths may hold patient IDs)
    from pmed.imaging.readers._base import _exists
    from pmed.models.image import _resolve

    values = X[column].dropna().astype(str)
    absent = int(sum(not _exists(_resolve(v, p.get("root"))) for v in values))
    if absent:
        raise StudyError(f"model family 'cnn': {absent} of {len(values)} paths in column {column!r} do not exist",
                         where="key models[].family",
                         fix="check the image paths; relative ones are resolved against the working folder "
                             "or params: {root: FOLDER}")
    return ImagePathClassifier(**{"random_state": seed, **p, "image_column": column})


register_model("grud", _grud_factory, tasks=("binary",), preprocessor=_grud_preprocessor, class_weight=True,
               description="GRU-D recurrent network on a time-series grid (x|m|d columns of "
                           "pmed.timeseries Grid.flatten()), binary; needs PyTorch")
register_model("cnn", _cnn_factory, tasks=("binary",), preprocessor=_cnn_preprocessor, class_weight=True,
               description="convolutional image classifier (pmed.imaging.ImageClassifier) on a column of "
                           "image paths (named image, *_path, or params.image_column), binary; needs PyTorch")


# ---------------------------------------------------------------------- survival families
# cox, coxnet, rsf, gbsa, km (task "survival"); scikit-survival and lifelines are imported
# only when a model is built or fitted
from pmed.survival.models import register_survival_families  # noqa: E402

register_survival_families()

# dp_logistic, dp_mlp (binary, differentially private): diffprivlib, PyTorch and Opacus are
# imported only when a model is fitted
from pmed.privacy.dp import register_privacy_families  # noqa: E402

register_privacy_families()


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
        A registered family (:data:`FAMILIES`, :func:`pmed.models.register_model`).
    task
        ``"binary"``, ``"continuous"`` or ``"survival"`` (fit the pipeline with
        ``y = pmed.survival.make_surv_y(time, event)``).
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
        Steps ``preprocess`` and ``model``. Binary classifiers are unweighted
        (``class_weight=None``) unless ``params`` says otherwise.

    Raises
    ------
    StudyError
        For an unknown family or task, a family that does not handle ``task``, or features the
        family cannot use.
    """
    if task not in TASKS:
        raise StudyError(f"unknown task {task!r}", fix=f"use one of: {', '.join(TASKS)}")
    entry = get_family(family)
    if task not in entry.tasks:
        raise StudyError(f"model family {family!r} handles {' and '.join(entry.tasks)} targets, not {task}",
                         where="key models[].family", fix="choose another family for this target")
    est = entry.factory(task=task, params=dict(params or {}), seed=seed, X=X)
    if entry.preprocessor is not None:
        pre = entry.preprocessor(X)
    else:
        categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        # which columns are 0/1 depends only on their values, never on the outcome: no leakage
        binary = [c for c in X.columns if c not in categorical and _is_binary(X[c])]
        numeric = [c for c in X.columns if c not in categorical and c not in binary]
        pre = make_preprocessor(numeric, categorical, binary)
    return Pipeline([("preprocess", pre), ("model", est)])
