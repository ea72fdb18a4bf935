"""Hyperparameter tuning without optimism: nested cross-validation.

Choosing hyperparameters by cross-validation and reporting that same cross-validated score
is optimistic: the best of several noisy scores is biased upwards, most on small, wide data
sets — exactly the ones common in precision medicine. Nested CV removes the bias. An *inner*
CV, run only on each outer training split, chooses the hyperparameters; the *outer* CV scores
the model so tuned on patients the choice never saw.

In pmed this needs no special machinery: :func:`tuned` wraps a pipeline in a
:class:`~sklearn.model_selection.GridSearchCV`, and :func:`pmed.evaluate.cv.out_of_fold_predictions`
clones and fits whatever estimator it is given, so passing it the tuned estimator *is* nested
CV. :func:`nested_cv` does that and also reports the optimistic non-nested number, so the
optimism can be seen.

Repeated CV needs nothing here either: :func:`pmed.evaluate.cv.make_splits` takes
``repeats=`` (each repeat reshuffles with ``seed + repeat``), and :func:`nested_cv` passes its
``repeats`` on to it for the outer loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from pmed.errors import StudyError
from pmed.evaluate.cv import cv_metrics, make_splits, out_of_fold_predictions

__all__ = ["tuned", "nested_cv", "DEFAULT_SCORING"]

#: inner-CV score per task; also the metric :func:`nested_cv` reports
DEFAULT_SCORING = {"binary": "roc_auc", "continuous": "r2"}
_PMED_METRIC = {"roc_auc": "auroc", "r2": "r2"}
_TASKS = ("binary", "continuous")


def _check_task(task: str) -> None:
    if task not in _TASKS:
        raise StudyError(f"unknown task {task!r}", fix=f"use one of: {', '.join(_TASKS)}")


def _param_grid(estimator: Any, grid: Mapping[str, Sequence]) -> tuple[dict[str, list], dict[str, str]]:
    """Full parameter names for ``estimator`` and the map back to the names the user gave.

    Names are relative to the pipeline's final step (``C`` → ``model__C``); a name that
    already starts with a step name (``preprocess__…``, ``model__C``) is kept as it is.
    """
    if not grid:
        raise StudyError("the tuning grid is empty", fix="give at least one hyperparameter and its values")
    steps = [name for name, _ in estimator.steps] if isinstance(estimator, Pipeline) else []
    valid = estimator.get_params(deep=True)
    full, back, problems = {}, {}, []
    for k, values in grid.items():
        name = k if (not steps or k.split("__", 1)[0] in steps) else f"{steps[-1]}__{k}"
        vals = list(values) if isinstance(values, Sequence) and not isinstance(values, str) else None
        if name not in valid:
            problems.append(f"unknown hyperparameter {k!r}")
        elif not vals:
            problems.append(f"hyperparameter {k!r} needs a non-empty list of values")
        else:
            full[name] = vals
            back[name] = k
    if problems:
        final = estimator.steps[-1][1] if steps else estimator
        known = ", ".join(sorted(final.get_params(deep=False)))
        raise StudyError("; ".join(problems), fix=f"hyperparameters of {type(final).__name__}: {known}")
    return full, back


def tuned(
    pipeline: Pipeline,
    grid: Mapping[str, Sequence],
    *,
    task: str,
    inner_folds: int = 3,
    seed: int = 0,
    scoring: str | None = None,
) -> GridSearchCV:
    """Wrap a pipeline so that fitting it first chooses its hyperparameters by inner CV.

    Parameters
    ----------
    pipeline
        An unfitted estimator, normally a ``preprocess → model`` pipeline from
        :func:`pmed.models.make_model`.
    grid
        Hyperparameter → candidate values, named relative to the final estimator
        (``{"C": [0.01, 0.1, 1]}`` tunes ``model__C``). Names starting with a step name
        (``"preprocess__…"``) are used as they are.
    task
        ``"binary"`` (inner folds stratified by outcome) or ``"continuous"`` (shuffled KFold).
    inner_folds, seed
        Number of inner folds and their shuffling seed.
    scoring
        A scikit-learn scorer name; default :data:`DEFAULT_SCORING` (``roc_auc`` / ``r2``).

    Returns
    -------
    sklearn.model_selection.GridSearchCV
        Unfitted; ``refit=True`` so that, once fitted, it predicts with the best
        hyperparameters refitted on all rows it was given. Pass it to
        :func:`pmed.evaluate.cv.out_of_fold_predictions` for nested CV.

    Raises
    ------
    pmed.errors.StudyError
        An unknown task or hyperparameter, or an empty list of values.

    Notes
    -----
    Preprocessing is inside the pipeline, so it is refitted on every inner training split:
    the inner scores leak nothing either. Fitting is single-process (``n_jobs=1``) and a
    failing candidate raises instead of silently scoring NaN.
    """
    _check_task(task)
    full, _ = _param_grid(pipeline, grid)
    if task == "binary":
        cv = StratifiedKFold(n_splits=inner_folds, shuffle=True, random_state=seed)
    else:
        cv = KFold(n_splits=inner_folds, shuffle=True, random_state=seed)
    return GridSearchCV(
        pipeline, full, scoring=scoring or DEFAULT_SCORING[task], cv=cv, refit=True,
        n_jobs=1, error_score="raise",
    )


def nested_cv(
    pipeline: Pipeline,
    grid: Mapping[str, Sequence],
    X: pd.DataFrame,
    y: pd.Series,
    *,
    task: str,
    outer_folds: int = 5,
    inner_folds: int = 3,
    repeats: int = 1,
    seed: int = 0,
    n_boot: int = 500,
) -> dict:
    """Nested cross-validation, beside the optimistic non-nested estimate it corrects.

    Parameters
    ----------
    pipeline
        An unfitted pipeline (see :func:`tuned`).
    grid
        Hyperparameter grid, names relative to the final estimator.
    X, y
        Features (index = patient IDs) and outcome.
    task
        ``"binary"`` (scored by AUROC) or ``"continuous"`` (scored by R²).
    outer_folds, inner_folds, repeats, seed
        Outer splits from :func:`pmed.evaluate.cv.make_splits` (``repeats`` reshuffles);
        inner splits from :func:`tuned` with the same seed.
    n_boot
        Bootstrap resamples of the outer-loop interval.

    Returns
    -------
    dict
        ``metric``: ``"auroc"`` or ``"r2"``.
        ``nested``: the outer-loop metric ``{"estimate", "ci_low", "ci_high", "method",
        "fold_mean", "fold_sd"}`` from :func:`pmed.evaluate.cv.cv_metrics` (estimate pooled
        over out-of-fold predictions).
        ``non_nested``: ``{"estimate", "fold_sd", "params", "method"}``, the best mean CV
        score of a grid search run on all patients over the same outer splits — the number
        usually (and wrongly) reported.
        ``optimism``: ``non_nested − nested``, both as means over the same folds
        (``nested["fold_mean"]``), so only the tuning differs, not the averaging.
        ``best_params_per_fold``: ``[{"repeat", "fold", "params", "inner_score"}, …]``;
        hyperparameters that change from fold to fold mean the choice is unstable.
        ``nested_metrics``: every outer-loop metric of :func:`~pmed.evaluate.cv.cv_metrics`.
        ``oof``: the outer-loop out-of-fold predictions.
    """
    _check_task(task)
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(X)
    splits = make_splits(np.asarray(y), task=task, folds=outer_folds, repeats=repeats, seed=seed)
    search = tuned(pipeline, grid, task=task, inner_folds=inner_folds, seed=seed)
    _, back = _param_grid(pipeline, grid)
    metric = _PMED_METRIC[DEFAULT_SCORING[task]]

    per_fold: list[dict] = []

    def keep_choice(r: int, f: int, est: GridSearchCV) -> None:
        per_fold.append({"repeat": r, "fold": f, "params": {back[k]: v for k, v in est.best_params_.items()},
                         "inner_score": float(est.best_score_)})

    oof = out_of_fold_predictions(search, X, y, splits, task=task, on_fold=keep_choice)
    res = cv_metrics(oof, task=task, n_boot=n_boot, seed=seed)
    nested = res["metrics"][metric]

    # the optimistic number: tuning and scoring on the same folds
    yv = np.asarray(y, dtype=float)
    plain = clone(search).set_params(cv=[(tr, te) for _, _, tr, te in splits], refit=False)
    plain.fit(X, yv.astype(int) if task == "binary" else yv)
    best = plain.best_index_
    non_nested = {
        "estimate": float(plain.best_score_),
        "fold_sd": float(np.std([plain.cv_results_[f"split{i}_test_score"][best]
                                 for i in range(len(splits))], ddof=1)),
        "params": {back[k]: v for k, v in plain.best_params_.items()},
        "method": (f"best mean {metric} of {len(plain.cv_results_['params'])} candidates over the "
                   f"same {len(splits)} folds, tuned and scored on the same data (optimistic)"),
    }
    return {
        "metric": metric,
        "nested": nested,
        "non_nested": non_nested,
        "optimism": non_nested["estimate"] - nested["fold_mean"],
        "best_params_per_fold": per_fold,
        "nested_metrics": res["metrics"],
        "oof": oof,
    }
