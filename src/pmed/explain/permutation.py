"""Permutation importance of input features: the model-agnostic fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

from pmed.errors import OptionError
from pmed.explain.shap_values import _inputs, _steps

__all__ = ["permutation_importance_table"]


def permutation_importance_table(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    *,
    n_repeats: int = 5,
    seed: int = 0,
    scoring: str | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """How much the model's performance drops when one input feature is shuffled.

    Works for any fitted pipeline, since the whole pipeline is scored on the *input* table:
    a categorical feature is shuffled as one column, never level by level. Use held-out
    patients for ``X, y`` to measure what the model relies on for new patients.

    Parameters
    ----------
    pipeline
        A fitted ``preprocess → model`` pipeline.
    X, y
        Patients and outcomes to score on.
    n_repeats
        Shuffles per feature.
    seed
        Random state of the shuffles.
    scoring
        A scikit-learn scorer name; default ``"roc_auc"`` for classifiers (the drop in AUROC;
        accuracy, scikit-learn's default, ignores the probabilities a risk model is used
        for) and ``"r2"`` for regressors.
    level
        Confidence level of the interval.

    Returns
    -------
    pandas.DataFrame
        ``feature, importance, ci_low, ci_high, rank`` (1 = largest drop), ``importance``
        the mean drop in score. The interval is ``mean ± t · sd / sqrt(n_repeats)`` over the
        shuffles: it reflects the randomness of shuffling only, not the sampling variability
        of the patients (bootstrap the patients for that). ``attrs`` holds ``scoring``.
    """
    from scipy import stats
    from sklearn.inspection import permutation_importance

    if n_repeats < 2:
        raise OptionError("n_repeats must be at least 2 for an interval")
    pre, model = _steps(pipeline)
    X = _inputs(pre, X)
    scoring = scoring or ("roc_auc" if is_classifier(model) else "r2")
    r = permutation_importance(pipeline, X, np.asarray(y), scoring=scoring, n_repeats=n_repeats,
                               random_state=seed, n_jobs=1)
    imp = np.asarray(r.importances, dtype=float)  # features × repeats
    mean = imp.mean(axis=1)
    half = stats.t.ppf((1 + level) / 2, n_repeats - 1) * imp.std(axis=1, ddof=1) / np.sqrt(n_repeats)
    df = pd.DataFrame({"feature": [str(c) for c in X.columns], "importance": mean,
                       "ci_low": mean - half, "ci_high": mean + half})
    df = df.sort_values(["importance", "feature"], ascending=[False, True], kind="mergesort")
    df["rank"] = np.arange(1, len(df) + 1)
    df = df.reset_index(drop=True)
    df.attrs.update(scoring=scoring, n_repeats=n_repeats, level=level)
    return df
