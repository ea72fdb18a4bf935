"""Performance by subgroup, between-group disparities, and fairness post-processing.

Three questions a clinical model must answer before deployment:

* :func:`subgroup_metrics` — how well does it work *within* each declared sensitive
  attribute (sex, ancestry, age band, site…) and each intersection of them? Every metric
  carries a bootstrap CI, and cells too small to estimate (or to publish without
  re-identifying patients) are suppressed rather than reported.
* :func:`disparity_summary` — how large are the gaps *between* groups in true- and
  false-positive rate, selection rate and calibration (fairlearn ``MetricFrame``)?
* :func:`mitigate_thresholds` — what would group-specific thresholds (fairlearn
  ``ThresholdOptimizer``) buy in disparity, and what would they cost in accuracy?

fairlearn is imported lazily inside the functions that need it, so importing this module
needs only numpy, pandas and scikit-learn.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from pmed.errors import ValidationError, format_rows, shorten
from pmed.evaluate.metrics import _binary_point, _with_bootstrap

__all__ = [
    "INTERSECTION_SEP",
    "subgroup_metrics",
    "disparity_summary",
    "mitigate_thresholds",
]

#: joins attribute names (``"sex×ancestry"``) and their levels (``"F×EUR"``)
INTERSECTION_SEP = "×"

_CONSTRAINTS = ("equalized_odds", "demographic_parity")
_OBJECTIVES = ("balanced_accuracy_score", "accuracy_score")


# --------------------------------------------------------------------------- validation


def _check_inputs(y: Any, p: Any, groups: Any) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Validate ``y``, ``p`` and ``groups`` together; raise one error listing every problem."""
    problems: list[str] = []
    if isinstance(groups, pd.Series):
        groups = groups.to_frame()
    if not isinstance(groups, pd.DataFrame):
        raise ValidationError(
            [f"groups must be a pandas DataFrame (one column per sensitive attribute), "
             f"got {type(groups).__name__}"],
            fix="pass e.g. cohort[['sex', 'ancestry']]",
        )
    if groups.shape[1] == 0:
        problems.append("groups has no columns: declare at least one sensitive attribute")

    yv = np.asarray(y, dtype=float).ravel()
    pv = np.asarray(p, dtype=float).ravel()
    if len(yv) != len(pv):
        problems.append(f"y has {len(yv)} values but p has {len(pv)}")
    if len(groups) != len(yv):
        problems.append(f"groups has {len(groups)} rows but y has {len(yv)}: they are misaligned")
    elif isinstance(y, pd.Series) and not y.index.equals(groups.index):
        # same length but different patients (or order) would silently pair the wrong rows
        n_diff = int(np.sum(np.asarray(y.index) != np.asarray(groups.index)))
        problems.append(
            f"groups and y have different indexes ({n_diff} of {len(yv)} positions differ): "
            "they are misaligned"
        )
    if np.isnan(yv).any() or not np.isin(yv[~np.isnan(yv)], (0.0, 1.0)).all():
        problems.append("y must contain only 0 and 1 (no missing values)")
    if np.isnan(pv).any() or (pv.size and (pv.min() < 0 or pv.max() > 1)):
        problems.append("p must be probabilities in [0, 1] with no missing values")

    labelled = not isinstance(groups.index, pd.RangeIndex)
    for col in groups.columns:
        miss = groups[col].isna().to_numpy()
        if miss.any():
            # positions, not the index's labels: those are patient IDs
            where = (f"positions {format_rows(np.flatnonzero(miss) + 1)} (1-based)" if labelled
                     else f"rows {format_rows(np.flatnonzero(miss))} (0-based)")
            problems.append(f"group column {col!r} is missing for {int(miss.sum())} patients: {where}")
        levels = groups[col].dropna().unique()
        if len(levels) == 1:
            problems.append(
                f"group column {col!r} has a single level ({shorten(levels[0])}) for every patient: "
                "there is nothing to compare"
            )
    if problems:
        raise ValidationError(
            problems,
            fix="align groups with y (same patients, same order); give missing sensitive values an "
                "explicit level such as 'unknown' (missingness is itself worth auditing) or drop "
                "those patients; remove single-level columns",
        )
    return yv, pv, groups


def _group_keys(groups: pd.DataFrame, intersections: bool) -> dict[str, np.ndarray]:
    """attribute name → per-patient level label, plus every intersection of ≥ 2 attributes."""
    cols = [str(c) for c in groups.columns]
    as_str = {str(c): groups[c].astype(str).to_numpy() for c in groups.columns}
    keys = dict(as_str)
    if intersections:
        for k in range(2, len(cols) + 1):
            for combo in combinations(cols, k):
                lab = as_str[combo[0]].astype(object)
                for c in combo[1:]:
                    lab = lab + INTERSECTION_SEP + as_str[c]
                keys[INTERSECTION_SEP.join(combo)] = np.asarray(lab, dtype=str)
    return keys


def _suppression_reason(y: np.ndarray, min_size: int, min_events: int) -> str | None:
    """Why a cell is too small to report, or ``None``. Never states the exact counts."""
    n, e = len(y), int(y.sum())
    why = []
    if n < min_size:
        why.append(f"fewer than {min_size} patients (min_size={min_size})")
    if e < min_events:
        why.append(f"fewer than {min_events} events (min_events={min_events})")
    if n - e < min_events:
        why.append(f"fewer than {min_events} non-events (min_events={min_events})")
    if not why:
        return None
    return ("; ".join(why)
            + ": small cells give unstable estimates and can re-identify patients")


def _sorted_levels(lab: np.ndarray) -> list[str]:
    return sorted(pd.unique(lab).tolist())


# --------------------------------------------------------------------------- subgroups


def subgroup_metrics(
    y: Any,
    p: Any,
    groups: pd.DataFrame,
    *,
    threshold: float = 0.5,
    min_size: int = 30,
    min_events: int = 5,
    intersections: bool = True,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, dict]]:
    """Metrics with bootstrap CIs within every level of every sensitive attribute.

    Parameters
    ----------
    y
        True outcome, 0/1.
    p
        Predicted probability of outcome 1 (out-of-fold or external, never in-sample).
    groups
        One column per declared sensitive attribute (sex, ancestry, age band, site…), one row
        per patient, aligned with ``y`` (a pandas ``y`` must share its index).
    threshold
        Probability at or above which a patient is called positive.
    min_size, min_events
        A level with fewer than ``min_size`` patients, or fewer than ``min_events`` events or
        non-events, is suppressed: its metrics would be unstable and publishing them could
        re-identify patients.
    intersections
        Also report every combination of two or more attributes (``"sex×ancestry"``), where
        disparities hidden in the marginals often show.
    n_boot, seed, level
        Bootstrap resamples (stratified by outcome), seed and confidence level.

    Returns
    -------
    dict
        ``{attribute: {level: cell}}``, e.g. ``{"sex": {"F": ..., "M": ...},
        "sex×ancestry": {"F×EUR": ..., ...}}``. A reported cell is ``{"n", "n_events",
        "suppressed": False, "metrics"}`` where ``metrics`` maps each name of
        :data:`~pmed.evaluate.metrics.BINARY_METRICS` plus ``calibration_in_the_large``
        (mean(y) − mean(p): positive means the model under-predicts risk in the group) and
        ``selection_rate`` (share called positive) to ``{"estimate", "ci_low", "ci_high",
        "method"}``, the same numbers :func:`~pmed.evaluate.metrics.binary_metrics` gives on
        the group. A suppressed cell is ``{"suppressed": True, "reason"}``: its counts are
        withheld too, since they are what identifies. (Counts of the other levels and of the
        whole cohort may still let a reader subtract; suppress complementary cells by hand
        before publishing when that matters.)

    Raises
    ------
    ValidationError
        If ``groups`` is misaligned with ``y``, has missing values or a single-level column.
    """
    yv, pv, groups = _check_inputs(y, p, groups)
    out: dict[str, dict[str, dict]] = {}
    for name, lab in _group_keys(groups, intersections).items():
        cells: dict[str, dict] = {}
        for lev in _sorted_levels(lab):
            m = lab == lev
            yy, pp = yv[m], pv[m]
            reason = _suppression_reason(yy, min_size, min_events)
            if reason is not None:
                cells[lev] = {"suppressed": True, "reason": reason}
                continue

            def point(i, yy=yy, pp=pp):
                return {
                    **_binary_point(yy[i], pp[i], threshold),
                    "calibration_in_the_large": float(yy[i].mean() - pp[i].mean()),
                    "selection_rate": float(np.mean(pp[i] >= threshold)),
                }

            # one joint bootstrap, drawn exactly as binary_metrics draws it (same strata and
            # seed), so the shared metrics equal binary_metrics on the group to the last digit
            metrics = _with_bootstrap(point, len(yy), yy, n_boot, seed, level)
            cells[lev] = {"n": int(len(yy)), "n_events": int(yy.sum()), "suppressed": False,
                          "metrics": metrics}
        out[name] = cells
    return out


# --------------------------------------------------------------------------- disparities

# metric → which direction is better: +1 higher, -1 lower, 0 closer to zero, None no "better"
_DISPARITY_METRICS = {"tpr": 1, "fpr": -1, "selection_rate": None, "overprediction": 0}


def _metric_frames(y: np.ndarray, p: np.ndarray, yhat: np.ndarray, lab: np.ndarray, name: str):
    """fairlearn MetricFrames: rates on hard predictions, overprediction on the scores."""
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    sf = pd.Series(lab, name=name)
    rates = MetricFrame(
        metrics={"tpr": true_positive_rate, "fpr": false_positive_rate,
                 "selection_rate": selection_rate},
        y_true=y.astype(int), y_pred=yhat.astype(int), sensitive_features=sf,
    )
    calib = MetricFrame(
        metrics={"overprediction": lambda yt, yp: float(np.mean(yp) - np.mean(yt))},
        y_true=y, y_pred=p, sensitive_features=sf,
    )
    return rates, calib


def _disparities(y: np.ndarray, p: np.ndarray, yhat: np.ndarray, lab: np.ndarray,
                 name: str) -> dict:
    rates, calib = _metric_frames(y, p, yhat, lab, name)
    by = pd.concat([rates.by_group, calib.by_group], axis=1)
    diff = {**rates.difference(method="between_groups").to_dict(),
            **calib.difference(method="between_groups").to_dict()}
    # a ratio of a signed calibration error is meaningless, so only the rates get one
    ratio = rates.ratio(method="between_groups").to_dict()
    best, worst = {}, {}
    for metric, direction in _DISPARITY_METRICS.items():
        col = by[metric]
        if direction is None:
            continue
        key = col.abs() if direction == 0 else col * -direction
        best[metric], worst[metric] = str(key.idxmin()), str(key.idxmax())
    return {
        "by_group": {str(g): {k: float(v) for k, v in row.items()} for g, row in by.iterrows()},
        "difference": {k: float(v) for k, v in diff.items()}
        | {"equalized_odds": float(max(diff["tpr"], diff["fpr"])),
           "demographic_parity": float(diff["selection_rate"])},
        "ratio": {k: float(v) for k, v in ratio.items()},
        "best": best,
        "worst": worst,
        "highest_selection_rate": str(by["selection_rate"].idxmax()),
        "lowest_selection_rate": str(by["selection_rate"].idxmin()),
    }


def disparity_summary(
    y: Any,
    p: Any,
    groups: pd.DataFrame,
    *,
    threshold: float = 0.5,
    min_size: int = 30,
    min_events: int = 5,
    intersections: bool = True,
) -> dict[str, dict]:
    """Between-group gaps in TPR, FPR, selection rate and calibration (fairlearn MetricFrame).

    Parameters
    ----------
    y, p, groups, threshold
        As in :func:`subgroup_metrics`.
    min_size, min_events
        Groups suppressed by :func:`subgroup_metrics`'s rule are left out of every comparison.
    intersections
        Also compare the levels of every combination of two or more attributes.

    Returns
    -------
    dict
        ``{attribute: summary}``. A summary compares the non-suppressed levels:
        ``by_group`` (level → ``tpr``, ``fpr``, ``selection_rate``, ``overprediction`` =
        mean(p) − mean(y), ``n``); ``difference`` (fairlearn ``MetricFrame.difference()``:
        largest minus smallest level, for each metric, plus ``equalized_odds`` = the larger
        of the TPR and FPR differences and ``demographic_parity`` = the selection-rate
        difference); ``ratio`` (``MetricFrame.ratio()``: smallest over largest, for the three
        rates); ``best`` / ``worst`` (level with the highest / lowest TPR, lowest / highest FPR,
        smallest / largest absolute overprediction); ``highest_selection_rate`` /
        ``lowest_selection_rate`` (a higher selection rate is not better or worse in itself);
        ``suppressed`` (levels left out). With fewer than two comparable levels the summary is
        ``{"comparable": False, "reason", "suppressed"}``.

    Notes
    -----
    These are point estimates; for their uncertainty use the per-group CIs of
    :func:`subgroup_metrics`. ``overprediction`` has the opposite sign to
    ``calibration_in_the_large``.
    """
    yv, pv, groups = _check_inputs(y, p, groups)
    yhat = pv >= threshold
    out: dict[str, dict] = {}
    for name, lab in _group_keys(groups, intersections).items():
        keep_levels, suppressed = [], []
        for lev in _sorted_levels(lab):
            if _suppression_reason(yv[lab == lev], min_size, min_events) is None:
                keep_levels.append(lev)
            else:
                suppressed.append(lev)
        if len(keep_levels) < 2:
            out[name] = {"comparable": False, "suppressed": suppressed,
                         "reason": f"{len(keep_levels)} level(s) left after suppressing small "
                                   f"cells (min_size={min_size}, min_events={min_events})"}
            continue
        m = np.isin(lab, keep_levels)
        summary = _disparities(yv[m], pv[m], yhat[m], lab[m], name)
        for lev in keep_levels:
            summary["by_group"][lev]["n"] = int(np.sum(lab == lev))
        out[name] = {"comparable": True, **summary, "suppressed": suppressed}
    return out


# --------------------------------------------------------------------------- mitigation


class _ScoreAsEstimator(ClassifierMixin, BaseEstimator):
    """A 'fitted classifier' whose input is its own score: lets ThresholdOptimizer post-process
    scores that were produced elsewhere (out-of-fold predictions, an external model)."""

    def fit(self, X=None, y=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        s = np.asarray(X, dtype=float)[:, 0]
        return np.column_stack([1 - s, s])

    def predict(self, X):
        return (np.asarray(X, dtype=float)[:, 0] >= 0.5).astype(int)


def _describe_rules(bunch) -> dict:
    """A fairlearn interpolation Bunch as plain numbers and a sentence."""
    rules = []
    for k in ("0", "1"):
        prob = float(bunch[f"p{k}"])
        op = bunch[f"operation{k}"]
        if prob > 0:
            rules.append({"probability": prob, "operator": op.operator,
                          "threshold": float(op.threshold)})
    text = " or ".join(
        f"with probability {r['probability']:.3g} call positive when p {r['operator']} "
        f"{r['threshold']:.4g}" for r in rules)
    out = {"rules": rules}
    p_ignore = float(bunch.get("p_ignore", 0.0))
    if p_ignore > 0:
        const = float(bunch["prediction_constant"])
        out["p_ignore"] = p_ignore
        out["prediction_constant"] = const
        text += (f"; then, with probability {p_ignore:.3g}, replace the decision by a positive "
                 f"call with probability {const:.3g}")
    # a single deterministic threshold is what most readers expect; say when there is one
    out["threshold"] = rules[0]["threshold"] if len(rules) == 1 and p_ignore == 0 else None
    out["description"] = text
    return out


def _fit_optimizer(y, p, sf, constraint, objective):
    from fairlearn.postprocessing import ThresholdOptimizer

    opt = ThresholdOptimizer(estimator=_ScoreAsEstimator().fit(None), constraints=constraint,
                             objective=objective, prefit=True, predict_method="predict_proba")
    return opt.fit(p.reshape(-1, 1), y.astype(int), sensitive_features=sf)


def _decision_summary(y: np.ndarray, yhat: np.ndarray, lab: np.ndarray, name: str) -> dict:
    yhat = yhat.astype(int)
    mf, _ = _metric_frames(y, yhat.astype(float), yhat, lab, name)
    diff = mf.difference(method="between_groups")
    tpr = float(np.mean(yhat[y == 1])) if (y == 1).any() else float("nan")
    tnr = float(np.mean(1 - yhat[y == 0])) if (y == 0).any() else float("nan")
    return {
        "accuracy": float(np.mean(yhat == y)),
        "balanced_accuracy": (tpr + tnr) / 2,
        "selection_rate": float(yhat.mean()),
        "by_group": {str(g): {k: float(v) for k, v in row.items()}
                     for g, row in mf.by_group.iterrows()},
        "difference": {"tpr": float(diff["tpr"]), "fpr": float(diff["fpr"]),
                       "selection_rate": float(diff["selection_rate"]),
                       "equalized_odds": float(max(diff["tpr"], diff["fpr"])),
                       "demographic_parity": float(diff["selection_rate"])},
    }


def mitigate_thresholds(
    y: Any,
    p: Any,
    groups: pd.DataFrame,
    *,
    constraint: str = "equalized_odds",
    objective: str = "balanced_accuracy_score",
    threshold: float = 0.5,
    cv: int | None = None,
    seed: int = 0,
) -> dict:
    """Group-specific thresholds that reduce a disparity, with its before/after and its cost.

    Runs fairlearn's ``ThresholdOptimizer`` (Hardt et al., 2016) as post-processing on the
    model's scores ``p`` — the model itself is not refitted. The groups are the combinations
    of all columns of ``groups`` (pass one column to mitigate one attribute).

    Parameters
    ----------
    y, p, groups
        As in :func:`subgroup_metrics`; ``p`` should be out-of-fold or external predictions.
    constraint
        ``"equalized_odds"`` (equal TPR and FPR across groups) or ``"demographic_parity"``
        (equal selection rate).
    objective
        ``"balanced_accuracy_score"`` or ``"accuracy_score"``, maximised under the constraint.
    threshold
        The single threshold the unmitigated ("before") decisions use.
    cv
        ``None``: fit the thresholds and evaluate them on the same patients — optimistic,
        since the thresholds were tuned on exactly the outcomes they are scored against.
        An integer k: fit the thresholds on k−1 folds and apply them to the held-out fold
        (folds stratified by group × outcome), so "after" is evaluated out of sample. Use
        this for any claim about the mitigated model.
    seed
        Seeds the folds and the randomised decisions ThresholdOptimizer makes.

    Returns
    -------
    dict
        ``groups`` (group → its thresholds from the fit on all patients: ``rules``, a list of
        ``{"probability", "operator", "threshold"}`` — equalised odds usually needs a
        *randomised* mix of two thresholds per group, and sometimes a coin flip
        (``p_ignore``, ``prediction_constant``) — ``threshold`` when one deterministic
        threshold suffices, else ``None``, and a plain ``description``); ``before`` and
        ``after`` (``accuracy``, ``balanced_accuracy``, ``selection_rate``, per-group
        ``tpr``/``fpr``/``selection_rate`` and their between-group ``difference``);
        ``cost`` (after − before for accuracy and balanced accuracy: negative means the
        mitigation costs performance); ``disparity_reduction`` (before − after of the
        constrained difference); ``evaluation`` (how "after" was computed) and the settings.

    Notes
    -----
    Equalising error rates by lowering performance in the better-served group is a real
    trade-off, not a free fix: report ``cost`` beside any disparity improvement, and prefer
    better data or models for the worse-served group where possible. Randomised decisions
    (two patients with the same score and group can get different calls) may be unacceptable
    at the bedside; check ``groups[...]["threshold"]`` for whether each group got a single one.
    """
    if constraint not in _CONSTRAINTS:
        raise ValidationError([f"unknown constraint {constraint!r}"],
                              fix=f"use one of: {', '.join(_CONSTRAINTS)}")
    if objective not in _OBJECTIVES:
        raise ValidationError([f"unknown objective {objective!r}"],
                              fix=f"use one of: {', '.join(_OBJECTIVES)}")
    yv, pv, groups = _check_inputs(y, p, groups)
    name = INTERSECTION_SEP.join(str(c) for c in groups.columns)
    lab = _group_keys(groups, intersections=True)[name]
    need = max(cv or 1, 1)
    problems = []
    for lev in _sorted_levels(lab):
        yy = yv[lab == lev]
        if yy.sum() < need or (len(yy) - yy.sum()) < need:
            problems.append(f"group {shorten(lev)} has fewer than {need} events or non-events: its "
                            "thresholds cannot be " + ("fitted" if cv is None else
                                                       f"fitted in {cv}-fold cross-validation"))
    if problems:
        raise ValidationError(problems, fix="merge small groups, mitigate fewer attributes at "
                                            "once, or use fewer folds")
    sf = pd.Series(lab, name=name)

    full = _fit_optimizer(yv, pv, sf, constraint, objective)
    thresholds = {str(g): _describe_rules(b)
                  for g, b in full.interpolated_thresholder_.interpolation_dict.items()}

    if cv is None:
        after_hat = full.predict(pv.reshape(-1, 1), sensitive_features=sf, random_state=seed)
        evaluation = ("in-sample: thresholds fitted and evaluated on the same patients "
                      "(optimistic; pass cv=k for an out-of-sample estimate)")
    else:
        from sklearn.model_selection import StratifiedKFold

        strata = np.char.add(np.char.add(lab.astype(str), "|"), yv.astype(int).astype(str))
        after_hat = np.empty(len(yv), dtype=int)
        folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
        for f, (tr, te) in enumerate(folds.split(np.zeros(len(yv)), strata)):
            opt = _fit_optimizer(yv[tr], pv[tr], sf.iloc[tr], constraint, objective)
            after_hat[te] = opt.predict(pv[te].reshape(-1, 1), sensitive_features=sf.iloc[te],
                                        random_state=seed + f)
        evaluation = (f"{cv}-fold cross-validated: thresholds fitted on training folds, "
                      "applied to the held-out fold (stratified by group and outcome)")

    before = _decision_summary(yv, pv >= threshold, lab, name)
    after = _decision_summary(yv, np.asarray(after_hat), lab, name)
    key = "equalized_odds" if constraint == "equalized_odds" else "demographic_parity"
    return {
        "attribute": name,
        "constraint": constraint,
        "objective": objective,
        "groups": thresholds,
        "before": before,
        "after": after,
        "cost": {m: after[m] - before[m] for m in ("accuracy", "balanced_accuracy")},
        "disparity_reduction": before["difference"][key] - after["difference"][key],
        "evaluation": evaluation,
        "threshold_before": threshold,
        "seed": seed,
    }
