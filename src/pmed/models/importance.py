"""Feature importance named as in the input: one-hot and indicator columns grouped back."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

__all__ = ["feature_importance", "input_feature_of_outputs", "fitted_pipeline"]


def fitted_pipeline(estimator) -> Pipeline:
    """The fitted ``preprocess → model`` pipeline inside a tuned or recalibrated wrapper.

    ``GridSearchCV`` keeps the refitted best pipeline; ``CalibratedClassifierCV`` (fitted with
    ``ensemble=False`` or not) keeps one or more; the first is representative for importance.
    """
    if hasattr(estimator, "best_estimator_"):
        return fitted_pipeline(estimator.best_estimator_)
    if hasattr(estimator, "calibrated_classifiers_"):
        return fitted_pipeline(estimator.calibrated_classifiers_[0].estimator)
    if type(estimator).__name__ == "Recalibrated":  # pmed.monitor.update: a bundle recalibrated on new data
        return fitted_pipeline(estimator.estimator)
    return estimator


def input_feature_of_outputs(pipeline: Pipeline) -> list[str]:
    """For each column the fitted preprocessor outputs, the input feature it came from.

    ``age`` and its missingness indicator both map to ``age``; ``sex_F`` and ``sex_M`` map to
    ``sex``. This is what lets importances and explanations speak in the user's columns.
    """
    pre = pipeline.named_steps["preprocess"]
    owners: list[str] = []
    for name, trans, cols in pre.transformers_:
        if name == "remainder" or trans == "drop" or len(cols) == 0:
            continue
        cols = list(cols)
        if name in ("num", "bin"):
            imputer = trans.named_steps["impute"]
            owners += cols
            if imputer.indicator_ is not None:
                owners += [cols[i] for i in imputer.indicator_.features_]
        elif name == "cat":
            onehot = trans.named_steps["onehot"]
            for col, cats in zip(cols, onehot.categories_, strict=True):
                owners += [col] * len(cats)
    return owners


def _native_importance(model) -> tuple[np.ndarray, str] | None:
    if type(model).__name__ in ("DummyClassifier", "DummyRegressor"):
        return np.zeros(getattr(model, "n_features_in_", 0) or 1), "none (constant baseline)"
    if hasattr(model, "booster_"):  # LightGBM: total gain is more faithful than split counts
        return model.booster_.feature_importance(importance_type="gain"), "lightgbm_gain"
    if hasattr(model, "feature_importances_"):
        return model.feature_importances_, "impurity_decrease"
    if hasattr(model, "coef_"):
        # numeric features are standardised, 0/1 features are not: |coef| is the effect of one
        # SD of a measurement or of having the binary trait, comparable across features
        return np.abs(np.ravel(model.coef_)), "abs_coefficient"
    return None


def _grouped_permutation(estimator, X: pd.DataFrame, y: np.ndarray, pixels: list[str], *,
                         n_repeats: int, seed: int) -> pd.Series:
    """Permutation importance (drop in ``estimator.score``, as scikit-learn's default scorer)
    with the pixel columns of an image shuffled together, as one feature named ``image``."""
    groups = {c: [c] for c in X.columns if c not in set(pixels)} | {"image": pixels}
    rng = np.random.default_rng(seed)
    base = estimator.score(X, y)
    out = {}
    for name, cols in groups.items():
        drops = []
        for _ in range(n_repeats):
            Xp = X.copy()
            Xp[cols] = X[cols].to_numpy()[rng.permutation(len(X))]
            drops.append(base - estimator.score(Xp, y))
        out[name] = float(np.mean(drops))
    return pd.Series(out)


def feature_importance(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    *,
    seed: int = 0,
    n_repeats: int = 3,
    max_rows: int = 500,
) -> pd.DataFrame:
    """Importance of each *input* feature of a fitted pipeline.

    Uses the model's own measure where it has one (LightGBM gain, random-forest impurity
    decrease, absolute standardised coefficients) summed over the encoded columns of each input
    feature, normalised to sum to 1; otherwise permutation importance of the whole pipeline on
    ``X, y`` (which already speaks in input features), on at most ``max_rows`` rows drawn with
    ``seed`` so that wide tables stay affordable.

    Returns
    -------
    pandas.DataFrame
        Columns ``feature, importance, rank, method``, sorted by rank (1 = most important).
    """
    inner = fitted_pipeline(pipeline)
    # a fused model (pmed.fusion) is no preprocess → model pipeline: permutation importance
    steps = getattr(inner, "named_steps", {})
    native = _native_importance(steps["model"]) if "model" in steps and "preprocess" in steps else None
    if native is not None:
        values, method = native
        owners = input_feature_of_outputs(inner)
        s = pd.Series(np.asarray(values, dtype=float), index=owners).groupby(level=0, sort=False).sum()
        s = s.reindex(X.columns, fill_value=0.0)
        total = s.sum()
        if total > 0:
            s = s / total
    else:
        from sklearn.inspection import permutation_importance

        rows = np.arange(len(X))
        if len(rows) > max_rows:
            rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
        yy = np.asarray(y)[rows]
        pixels = [c for c in X.columns if str(c).startswith("px|")]
        if pixels:  # an image (pmed.fusion.images): permuted whole, one feature, not pixel by pixel
            s = _grouped_permutation(pipeline, X.iloc[rows], yy, pixels, n_repeats=n_repeats, seed=seed)
        else:
            r = permutation_importance(pipeline, X.iloc[rows], yy, n_repeats=n_repeats,
                                       random_state=seed, n_jobs=1)
            s = pd.Series(r.importances_mean, index=X.columns)
        method = f"permutation (n_repeats={n_repeats}, {len(rows)} training rows)"
    df = pd.DataFrame({"feature": s.index.astype(str), "importance": s.to_numpy()})
    # stable ordering: by importance, ties broken by name, so reruns give identical files
    df = df.sort_values(["importance", "feature"], ascending=[False, True], kind="mergesort")
    df["rank"] = np.arange(1, len(df) + 1)
    df["method"] = method
    return df.reset_index(drop=True)
