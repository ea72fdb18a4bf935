"""The PhysioNet/CinC Challenge 2012 evaluation: Event 1 score and cross-validation with thresholds.

Event 1 of the challenge scores *binary* predictions of in-hospital death by
``min(sensitivity, positive predictive value)``. A model gives probabilities, so a threshold
must be chosen; :func:`cross_validate_event1` chooses it inside each training fold (never on
the test fold): on inner out-of-fold predictions, on the validation split of a model that keeps
one (``validation_predictions_``, as :class:`~pmed.timeseries.grud.GRUDClassifier` does), or on
the training rows themselves for a fixed score such as SAPS-I. A third rule needs no threshold
from training scores at all: flag, among the test fold's own predictions, the share of stays that
died in the training fold (``batch_prevalence``; it reads no test outcome, as a hospital flagging
its expected number of deaths in a batch of admissions would).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from pmed.timeseries._options import TimeseriesOptionError, check_choice

__all__ = ["event1_score", "best_event1_threshold", "prevalence_threshold", "flag_top_share",
           "event1_ci", "cross_validate_event1", "THRESHOLD_RULES"]

#: how :func:`cross_validate_event1` turns training-fold scores into a threshold
THRESHOLD_RULES = ("max_event1", "match_prevalence", "batch_prevalence")


def event1_score(y, yhat) -> dict[str, float]:
    """Sensitivity, PPV and the challenge's Event 1 score ``min(Se, PPV)`` of 0/1 predictions."""
    y = np.asarray(y).astype(int)
    yhat = np.asarray(yhat).astype(int)
    tp = int(((y == 1) & (yhat == 1)).sum())
    se = tp / max(1, int((y == 1).sum()))
    ppv = tp / int((yhat == 1).sum()) if (yhat == 1).any() else 0.0
    return {"sensitivity": se, "ppv": ppv, "event1": min(se, ppv)}


def best_event1_threshold(y, p) -> float:
    """The threshold ``t`` (predict 1 when ``p >= t``) maximising Event 1 on ``(y, p)``.

    Scans every distinct score; among ties the median tied threshold is taken.
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    ok = np.isfinite(p)
    y, p = y[ok], p[ok]
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(ps) + 1)
    last = np.r_[ps[1:] != ps[:-1], True]  # predicting 1 for all scores >= ps[i]
    se = tp / max(1, ys.sum())
    ppv = tp / k
    score = np.where(last, np.minimum(se, ppv), -1.0)
    best = np.flatnonzero(score >= score.max() - 1e-12)
    return float(np.median(ps[best]))


def prevalence_threshold(y, p) -> float:
    """The threshold that flags as many patients as have the event (``p >= t`` for the top ``sum(y)``).

    At that threshold sensitivity equals PPV, where ``min(Se, PPV)`` peaks for a smooth ROC
    curve; it is a steadier estimate of the Event 1 optimum than the arg-max on noisy data.
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    ok = np.isfinite(p)
    y, p = y[ok], p[ok]
    k = max(1, int(y.sum()))
    return float(np.sort(p)[::-1][min(k, len(p)) - 1])


def flag_top_share(p, share: float) -> tuple[np.ndarray, float]:
    """Flag the ``round(share × n)`` highest scores of ``p`` (ties at the cut are all flagged).

    Returns the 0/1 predictions and the threshold used (``p >= t``).
    """
    p = np.asarray(p, dtype=float)
    k = int(np.clip(round(share * len(p)), 1, len(p)))
    thr = float(np.sort(np.nan_to_num(p, nan=-np.inf))[::-1][k - 1])
    return (p >= thr).astype(int), thr


_RULE = {"max_event1": best_event1_threshold, "match_prevalence": prevalence_threshold}


def event1_ci(y, yhat, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Event 1 with a stratified percentile bootstrap CI over patients."""
    y = np.asarray(y).astype(int)
    yhat = np.asarray(yhat).astype(int)
    est = event1_score(y, yhat)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    vals = np.empty(n_boot)
    for b in range(n_boot):
        i = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        vals[b] = event1_score(y[i], yhat[i])["event1"]
    a = (1 - level) / 2
    return {"estimate": est["event1"], "ci_low": float(np.quantile(vals, a)),
            "ci_high": float(np.quantile(vals, 1 - a)), "sensitivity": est["sensitivity"], "ppv": est["ppv"],
            "method": f"stratified percentile bootstrap ({n_boot} resamples)"}


def cross_validate_event1(
    estimator,
    X: pd.DataFrame,
    y: pd.Series,
    splits,
    *,
    threshold_from: str = "inner_cv",
    inner_folds: int = 5,
    score_column: str | None = None,
    rules: tuple[str, ...] = THRESHOLD_RULES,
    seed: int = 0,
    on_fold: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Out-of-fold probabilities and binary Event 1 predictions, thresholds chosen in training folds.

    Parameters
    ----------
    estimator
        An unfitted scikit-learn classifier (cloned per fold).
    X, y
        Features (indexed by patient) and 0/1 outcomes.
    splits
        From :func:`pmed.evaluate.cv.make_splits`.
    threshold_from
        ``"inner_cv"``: inner stratified ``inner_folds``-fold out-of-fold probabilities of the
        training fold; ``"validation"``: the fitted estimator's ``validation_predictions_``;
        ``"score"``: the raw column ``score_column`` of the training rows (a fixed score such as
        SAPS-I, whose threshold then applies to that column on the test fold).
    score_column
        For ``threshold_from="score"``.
    rules
        Threshold rules applied to the same training-fold scores: ``"max_event1"`` (the
        arg-max of Event 1, :func:`best_event1_threshold`), ``"match_prevalence"``
        (flag as many as had the event, :func:`prevalence_threshold`); and/or
        ``"batch_prevalence"`` (flag the training fold's death rate among the test fold's
        predictions, :func:`flag_top_share`).

    Returns
    -------
    pandas.DataFrame
        ``patient_id, repeat, fold, outcome, prediction`` and, per rule, ``threshold_<rule>``
        and ``predicted_<rule>``; ``threshold``/``predicted_class`` repeat the first rule.
    """
    bad = [r for r in rules if r not in THRESHOLD_RULES]
    if bad or not rules:
        raise TimeseriesOptionError(f"rules={list(rules)!r}: each rule must be one of {', '.join(THRESHOLD_RULES)}",
                                    where="option rules", fix=f"use rules among {', '.join(THRESHOLD_RULES)}")
    check_choice("threshold_from", threshold_from, ("inner_cv", "validation", "score"))
    yv = np.asarray(y).astype(int)
    rows = []
    for r, f, tr, te in splits:
        est = clone(estimator).fit(X.iloc[tr], yv[tr])
        p = est.predict_proba(X.iloc[te])[:, 1]
        if threshold_from == "score":
            yy, pp = yv[tr], X[score_column].to_numpy(float)[tr]
            on_test = np.nan_to_num(X[score_column].to_numpy(float)[te], nan=-np.inf)
        else:
            if threshold_from == "validation":
                yy, pp = est.validation_predictions_
            elif set(rules) == {"batch_prevalence"}:  # no training-fold scores needed
                yy = pp = None
            else:
                inner = StratifiedKFold(inner_folds, shuffle=True, random_state=seed + 1000 * r + f)
                pp = np.empty(len(tr))
                for itr, ite in inner.split(np.zeros(len(tr)), yv[tr]):
                    e2 = clone(estimator).fit(X.iloc[tr[itr]], yv[tr[itr]])
                    pp[ite] = e2.predict_proba(X.iloc[tr[ite]])[:, 1]
                yy = yv[tr]
            on_test = p
        part = pd.DataFrame({"patient_id": X.index[te], "repeat": r, "fold": f, "outcome": yv[te],
                             "prediction": p})
        for rule in rules:
            if rule == "batch_prevalence":
                part[f"predicted_{rule}"], thr = flag_top_share(on_test, float(yv[tr].mean()))
                part[f"threshold_{rule}"] = thr
                continue
            thr = _RULE[rule](yy, pp)
            part[f"threshold_{rule}"] = thr
            part[f"predicted_{rule}"] = (on_test >= thr).astype(int)
        part["threshold"] = part[f"threshold_{rules[0]}"]
        part["predicted_class"] = part[f"predicted_{rules[0]}"]
        rows.append(part)
        if on_fold is not None:
            on_fold(r, f)
    return pd.concat(rows, ignore_index=True).sort_values(["repeat", "patient_id"], kind="mergesort",
                                                           ignore_index=True)
