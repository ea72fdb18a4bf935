"""Cross-validation that never leaks: out-of-fold predictions, then metrics on them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from pmed.errors import ValidationError
from pmed.evaluate.metrics import (
    _binary_point,
    _regression_point,
    _with_bootstrap,
    confusion,
)

__all__ = ["make_splits", "out_of_fold_predictions", "cv_metrics"]


def make_splits(
    y: np.ndarray,
    *,
    task: str,
    folds: int = 5,
    repeats: int = 1,
    groups: np.ndarray | None = None,
    seed: int = 0,
) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """Seeded (repeat, fold, train_idx, test_idx) splits.

    Binary targets are stratified by class; with ``groups`` (a patient ID when patients have
    several rows) all rows of a group fall in the same fold. Each repeat reshuffles with
    ``seed + repeat``.
    """
    y = np.asarray(y)
    if task == "binary":
        counts = np.bincount(y.astype(int), minlength=2)
        if counts.min() < folds:
            raise ValidationError(
                [f"the rarer outcome class has {counts.min()} patients, fewer than {folds} folds"],
                fix="use fewer folds or more data",
            )
    if len(y) < 2 * folds:
        raise ValidationError([f"{len(y)} rows are too few for {folds}-fold cross-validation"])
    out = []
    for r in range(repeats):
        rs = seed + r
        if groups is not None:
            if task == "binary":
                cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=rs)
            else:
                # GroupKFold shuffles only from scikit-learn 1.6 on; permute groups instead
                cv = GroupKFold(n_splits=folds)
            if task != "binary":
                uniq = np.unique(groups)
                perm = dict(zip(uniq, np.random.default_rng(rs).permutation(len(uniq)), strict=True))
                g = np.array([perm[v] for v in groups])
            else:
                g = groups
            splits = cv.split(np.zeros(len(y)), y, g)
        elif task == "binary":
            splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=rs).split(np.zeros(len(y)), y)
        else:
            splits = KFold(n_splits=folds, shuffle=True, random_state=rs).split(np.zeros(len(y)))
        for f, (tr, te) in enumerate(splits):
            out.append((r, f, tr, te))
    return out


def out_of_fold_predictions(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    splits: list[tuple[int, int, np.ndarray, np.ndarray]],
    *,
    task: str,
    on_fold: Callable[[int, int, object], None] | None = None,
) -> pd.DataFrame:
    """Fit a fresh clone of ``pipeline`` on each training split and predict its test split.

    The splits are fitted through :class:`joblib.Parallel` with its defaults: one after the
    other in this process, unless a ``joblib.parallel_config`` says otherwise — inside
    ``joblib.parallel_config(backend="dask")`` (``pmed run --scheduler``, see
    :mod:`pmed.scale`) each split is a task on the Dask cluster's workers. The results do not
    depend on where the fits ran.

    ``on_fold(repeat, fold, fitted_estimator)`` is called after each split, in the order of
    ``splits``, in this process.

    Returns
    -------
    pandas.DataFrame
        One row per (repeat, patient): ``patient_id, repeat, fold, outcome, prediction`` where
        prediction is P(outcome = 1) for binary targets and the predicted value otherwise.
    """
    from sklearn.utils.parallel import Parallel, delayed

    rows = []
    yv = np.asarray(y, dtype=float)
    here = _where()
    # the results come back in the order of the splits, each as soon as it and those before are done
    fitted = Parallel(return_as="generator")(
        delayed(_fit_predict)(pipeline, X, yv, tr, te, task, here) for _, _, tr, te in splits)
    for (r, f, _, te), (est, pred) in zip(splits, fitted, strict=True):
        rows.append(pd.DataFrame({
            "patient_id": X.index[te], "repeat": r, "fold": f,
            "outcome": yv[te], "prediction": pred,
        }))
        if on_fold is not None:
            on_fold(r, f, est)  # progress bars, or collecting each fold's fitted estimator
    return pd.concat(rows, ignore_index=True).sort_values(["repeat", "patient_id"], kind="mergesort",
                                                           ignore_index=True)


def _where() -> tuple[str, int, int]:
    """This machine, process and thread."""
    import os
    import socket
    import threading

    return socket.gethostname(), os.getpid(), threading.get_ident()


def _fit_predict(pipeline: Pipeline, X: pd.DataFrame, yv: np.ndarray, tr: np.ndarray, te: np.ndarray,
                 task: str, caller: tuple[str, int, int] | None = None) -> tuple[object, np.ndarray]:
    """One split: a fresh clone of ``pipeline`` fitted on ``tr``, and its predictions of ``te``.

    Run anywhere but in ``caller`` (the process and thread that asked for it: a Dask worker, a
    joblib worker), the split is one unit of parallel work, so joblib work inside the fit (a
    forest's trees, an inner grid search) runs in that worker, one task after the other: joblib's
    Dask backend would otherwise send each of them to the cluster as a task of its own, even with
    ``n_jobs=1``. The numbers do not change, only where they are computed.
    """
    if caller is not None and caller != _where():
        from joblib import parallel_config

        with parallel_config(backend="sequential"):
            return _fit_predict(pipeline, X, yv, tr, te, task)
    est = clone(pipeline).fit(X.iloc[tr], yv[tr] if task != "binary" else yv[tr].astype(int))
    if task == "binary":
        pred = est.predict_proba(X.iloc[te])[:, 1]
    else:
        pred = est.predict(X.iloc[te])
    return est, pred


def cv_metrics(
    oof: pd.DataFrame,
    *,
    task: str,
    threshold: float = 0.5,
    n_boot: int = 500,
    seed: int = 0,
) -> dict:
    """Metrics of out-of-fold predictions, with bootstrap CIs and the spread across folds.

    With several repeats each metric is computed on every repeat's pooled predictions and
    averaged; the bootstrap resamples patients and repeats that average, so the interval
    reflects patient sampling, not only fold noise.

    Returns
    -------
    dict
        ``{"metrics": {name: {"estimate", "ci_low", "ci_high", "method", "fold_mean",
        "fold_sd"}}, "confusion_matrix": {...} (binary), "n": ..., "n_repeats": ...}``
    """
    wide = oof.pivot(index="patient_id", columns="repeat", values="prediction")
    y = oof.drop_duplicates("patient_id").set_index("patient_id")["outcome"].reindex(wide.index).to_numpy()
    P = wide.to_numpy()

    if task == "binary":
        def point(i):
            per = [_binary_point(y[i], P[i, r], threshold) for r in range(P.shape[1])]
            return {k: float(np.mean([d[k] for d in per])) for k in per[0]}
        strata = y
    else:
        def point(i):
            per = [_regression_point(y[i], P[i, r]) for r in range(P.shape[1])]
            return {k: float(np.mean([d[k] for d in per])) for k in per[0]}
        strata = None
    metrics = _with_bootstrap(point, len(y), strata, n_boot, seed, 0.95)

    # spread across folds, the number most CV users expect to see beside the pooled estimate
    per_fold = []
    for _, g in oof.groupby(["repeat", "fold"]):
        yy, pp = g["outcome"].to_numpy(), g["prediction"].to_numpy()
        if task == "binary":
            per_fold.append(_binary_point(yy, pp, threshold))
        else:
            per_fold.append(_regression_point(yy, pp))
    for k in metrics:
        vals = np.array([d[k] for d in per_fold], dtype=float)
        metrics[k]["fold_mean"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        metrics[k]["fold_sd"] = float(np.nanstd(vals, ddof=1)) if np.isfinite(vals).sum() > 1 else float("nan")

    out = {"metrics": metrics, "n": int(len(y)), "n_repeats": int(P.shape[1])}
    if task == "binary":
        out["n_events"] = int(y.sum())
        out["threshold"] = threshold
        out["confusion_matrix"] = confusion(y, P[:, 0], threshold)
    return out
