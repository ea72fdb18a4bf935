"""The evaluation engine behind ``pmed evaluate`` and ``pmed run``: predictions in, the full
clinical evaluation out (discrimination, calibration, utility, thresholds, subgroups, fairness).

:func:`evaluate_predictions` returns the ``metrics.json`` dictionary (schema in
``docs/evaluation.md``) and the curve tables; :func:`write_evaluation` writes them with plots and
the HTML model report.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import OptionError, ValidationError, shorten
from pmed.evaluate.calibration import calibration_metrics, reliability_curve, smooth_calibration
from pmed.evaluate.discrimination import delong_auc, delong_test, threshold_metrics
from pmed.evaluate.metrics import binary_metrics
from pmed.evaluate.predictions import check_predictions
from pmed.evaluate.utility import decision_curve, select_threshold

__all__ = ["evaluate_binary", "evaluate_continuous", "evaluate_predictions", "EVALUATION_SCHEMA_VERSION",
           "NET_BENEFIT_THRESHOLDS", "check_options", "MAX_BOOTSTRAP"]

EVALUATION_SCHEMA_VERSION = 1
#: Most bootstrap resamples accepted (as a study's ``evaluation.bootstrap``).
MAX_BOOTSTRAP = 100_000
_SEED_MAX = 2**32 - 1  # NumPy's legacy generator and scikit-learn take seeds up to this
#: thresholds at which net benefit is tabulated in metrics.json (the full curve is in a CSV)
NET_BENEFIT_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_options(*, thresholds: Sequence[float] = (0.5,), n_boot: int = 500, seed: int = 0,
                  min_group_size: int = 30, task: str = "binary", mitigate: str | None = None,
                  outcome: str | None = None, score: str | None = None, model_col: str | None = None,
                  groups: Sequence[str] = ()) -> None:
    """Refuse option values outside their range before any data is looked at (as the CLI does).

    Column options are checked against each other only (the table is not read): the outcome and
    the score must be two columns, a group column is named once and is neither of them.

    Raises
    ------
    OptionError
        Naming the option, the value and what is allowed.
    """
    if task not in ("binary", "continuous"):
        raise OptionError(f"task must be 'binary' or 'continuous', got {shorten(task)}", fix="use task='binary'")
    if mitigate is not None and mitigate not in ("equalized_odds", "demographic_parity"):
        raise OptionError(f"mitigate must be 'equalized_odds' or 'demographic_parity', got {shorten(mitigate)}",
                          fix="use one of them, or None")
    thr = list(thresholds) if isinstance(thresholds, (list, tuple, np.ndarray)) else [thresholds]
    if not thr:
        raise OptionError("thresholds is empty", fix="give at least one threshold, e.g. [0.5]")
    for t in thr:
        if isinstance(t, bool) or not isinstance(t, (int, float, np.number)) or not 0 < float(t) < 1:
            raise OptionError(f"a classification threshold must be a number in (0, 1), got {shorten(t)}",
                              fix="use e.g. 0.5 (--threshold 0.5)")
    if not _is_int(n_boot) or not 0 <= n_boot <= MAX_BOOTSTRAP:
        raise OptionError(f"n_boot must be a whole number from 0 to {MAX_BOOTSTRAP}, got {shorten(n_boot)}",
                          fix="use e.g. 500 (--bootstrap 500)")
    if not _is_int(seed) or not 0 <= seed <= _SEED_MAX:
        raise OptionError(f"seed must be a whole number from 0 to 2**32-1, got {shorten(seed)}",
                          fix="use e.g. 0 (--seed 0)")
    if not _is_int(min_group_size) or min_group_size < 1:
        raise OptionError(f"min_group_size must be a whole number of at least 1, got {shorten(min_group_size)}",
                          fix="use e.g. 30 (--min-group-size 30)")
    if outcome is not None and outcome == score:
        raise OptionError(f"the outcome and the score are the same column {shorten(outcome)}",
                          fix="name the observed outcome (--outcome) and the prediction (--score)")
    named = [c for c in (outcome, score) if c is not None]
    if model_col is not None and model_col in named:
        raise OptionError(f"the model column {shorten(model_col)} is also the outcome or the score",
                          fix="name the column holding model names (--model-col)")
    seen: set[str] = set()
    for g in groups:
        if g in seen:
            raise OptionError(f"the group column {shorten(g)} is given twice", fix="name each --group once")
        if g in named or g == model_col:
            raise OptionError(f"the group column {shorten(g)} is also the outcome, score or model column",
                              fix="group by a patient attribute (sex, ancestry, site …)")
        seen.add(g)


def evaluate_binary(
    y: np.ndarray,
    p: np.ndarray,
    *,
    groups: pd.DataFrame | None = None,
    thresholds: Sequence[float] = (0.5,),
    sensitivity_target: float = 0.9,
    n_boot: int = 500,
    seed: int = 0,
    min_group_size: int = 30,
) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Evaluate one model's probabilities against binary outcomes.

    Returns
    -------
    block : dict
        ``metrics`` (name → ``{"estimate", "ci_low", "ci_high", "method"}``: auroc with DeLong
        CI; auprc, brier, accuracy, balanced_accuracy, f1 by stratified bootstrap; calibration
        in the large, intercept, slope, ici, e50, e90, emax), ``thresholds`` (sensitivity,
        specificity, PPV, NPV with Wilson CIs at each threshold), ``threshold_selection``
        (Youden, fixed sensitivity), ``net_benefit`` (at :data:`NET_BENEFIT_THRESHOLDS`),
        ``groups`` and ``fairness`` when ``groups`` is given.
    tables : dict of DataFrame
        ``decision_curve`` and ``calibration`` (smooth curve with band) for plots and CSVs.
    """
    check_options(thresholds=thresholds, n_boot=n_boot, seed=seed, min_group_size=min_group_size)
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    boot = binary_metrics(y, p, threshold=thresholds[0] if thresholds else 0.5, n_boot=n_boot, seed=seed)
    metrics = {"auroc": delong_auc(y, p)}
    for k in ("auprc", "brier", "accuracy", "balanced_accuracy", "f1"):
        metrics[k] = boot[k]
    # each calibration resample refits a lowess curve: 200 resamples keep this affordable
    cal = calibration_metrics(y, p, n_boot=min(n_boot, 200), seed=seed)
    metrics.update({k: v for k, v in cal.items() if k != "brier"})

    dca = decision_curve(y, p, n_boot=min(n_boot, 200), seed=seed)
    at = dca.set_index(dca["threshold"].round(2))
    net_benefit = [
        {"threshold": t, "net_benefit": float(at.loc[t, "net_benefit"]),
         "ci_low": float(at.loc[t, "net_benefit_ci_low"]), "ci_high": float(at.loc[t, "net_benefit_ci_high"]),
         "treat_all": float(at.loc[t, "net_benefit_treat_all"])}
        for t in NET_BENEFIT_THRESHOLDS if t in at.index
    ]
    selection = {
        "youden": select_threshold(y, p, method="youden", n_boot=n_boot, seed=seed),
        f"sensitivity_{sensitivity_target:g}": select_threshold(
            y, p, method="sensitivity", target=sensitivity_target, n_boot=n_boot, seed=seed),
    }
    block: dict[str, Any] = {
        "n": int(len(y)), "n_events": int(y.sum()),
        "metrics": metrics,
        "thresholds": threshold_metrics(y, p, list(thresholds)),
        "threshold_selection": selection,
        "net_benefit": net_benefit,
    }
    if groups is not None and groups.shape[1]:
        from pmed.evaluate.subgroups import disparity_summary, subgroup_metrics

        block["groups"] = subgroup_metrics(y, p, groups, threshold=thresholds[0], min_size=min_group_size,
                                           n_boot=min(n_boot, 200), seed=seed)
        block["fairness"] = disparity_summary(y, p, groups, threshold=thresholds[0], min_size=min_group_size)
    tables = {"decision_curve": dca,
              "calibration": smooth_calibration(y, p, n_boot=min(n_boot, 200), seed=seed),
              "reliability": reliability_curve(y, p)}
    return block, tables


def evaluate_continuous(
    y: np.ndarray,
    yhat: np.ndarray,
    *,
    groups: pd.DataFrame | None = None,
    n_boot: int = 500,
    seed: int = 0,
    min_group_size: int = 30,
) -> dict:
    """Evaluate predictions of a continuous outcome.

    ``metrics``: RMSE, MAE, R², Pearson and Spearman correlation (stratified-free percentile
    bootstrap CIs), ``calibration_in_the_large`` (mean of observed − predicted) and
    ``calibration_intercept``/``calibration_slope`` of the regression of observed on predicted
    (Wald CIs; slope < 1 means predictions too extreme). ``groups``: the same per level, levels
    smaller than ``min_group_size`` suppressed.
    """
    from scipy import stats as _stats

    from pmed.evaluate.metrics import regression_metrics

    check_options(n_boot=n_boot, seed=seed, min_group_size=min_group_size, task="continuous")
    y = np.asarray(y, dtype=float)
    yhat = np.asarray(yhat, dtype=float)
    metrics = regression_metrics(y, yhat, n_boot=n_boot, seed=seed)
    fit = _stats.linregress(yhat, y)
    tcrit = _stats.t.ppf(0.975, len(y) - 2)
    wald = "ordinary least squares of observed on predicted; 95% Wald (t) CI"
    resid = y - yhat
    se_mean = resid.std(ddof=1) / np.sqrt(len(y))
    metrics["calibration_in_the_large"] = {
        "estimate": float(resid.mean()), "ci_low": float(resid.mean() - tcrit * se_mean),
        "ci_high": float(resid.mean() + tcrit * se_mean), "method": "mean(observed − predicted); t CI"}
    metrics["calibration_intercept"] = {
        "estimate": float(fit.intercept), "ci_low": float(fit.intercept - tcrit * fit.intercept_stderr),
        "ci_high": float(fit.intercept + tcrit * fit.intercept_stderr), "method": wald}
    metrics["calibration_slope"] = {
        "estimate": float(fit.slope), "ci_low": float(fit.slope - tcrit * fit.stderr),
        "ci_high": float(fit.slope + tcrit * fit.stderr), "method": wald}
    block: dict[str, Any] = {"n": int(len(y)), "metrics": metrics}
    if groups is not None and groups.shape[1]:
        block["groups"] = {}
        for col in groups.columns:
            levels = {}
            for level, idx in groups.groupby(col, sort=True).indices.items():
                if len(idx) < min_group_size:
                    levels[str(level)] = {"suppressed": True,
                                          "reason": f"fewer than {min_group_size} patients (min_group_size)"}
                else:
                    levels[str(level)] = {"n": int(len(idx)), "suppressed": False,
                                          "metrics": regression_metrics(y[idx], yhat[idx],
                                                                        n_boot=min(n_boot, 200), seed=seed)}
            block["groups"][col] = levels
    return block


def evaluate_predictions(
    df: pd.DataFrame,
    *,
    outcome: str,
    score: str,
    model_col: str | None = None,
    groups: Sequence[str] = (),
    id_col: str | None = None,
    thresholds: Sequence[float] = (0.5,),
    n_boot: int = 500,
    seed: int = 0,
    min_group_size: int = 30,
    source: str | None = None,
    task: str = "binary",
    mitigate: str | None = None,
) -> tuple[dict, dict[str, dict[str, pd.DataFrame]]]:
    """Evaluate a predictions table, one block per model, plus paired model comparisons.

    Parameters
    ----------
    df
        One row per patient (and model, when ``model_col`` is given).
    outcome, score
        Columns holding the 0/1 outcome and the predicted probability of 1.
    model_col
        Column naming the model of each row; models are compared pairwise on shared patients.
    groups
        Sensitive-attribute columns (sex, ancestry, age band, site…): every metric per level
        and per intersection, small cells suppressed, and a disparity summary.
    id_col
        Patient ID column used to pair models (default ``patient_id`` when present, else the
        row order within each model).
    thresholds, n_boot, seed, min_group_size
        Classification thresholds, bootstrap resamples and seed, smallest reported subgroup.
    task
        ``"binary"`` (probabilities) or ``"continuous"`` (predicted values).
    mitigate
        ``"equalized_odds"`` or ``"demographic_parity"``: also assess fairlearn's threshold
        optimiser over ``groups`` (cross-validated), reporting disparity and accuracy before
        and after.

    Returns
    -------
    evaluation : dict
        The ``metrics.json`` content (see ``docs/evaluation.md``).
    tables : dict
        model → ``{"decision_curve": DataFrame, "calibration": DataFrame}``.

    Raises
    ------
    OptionError
        An option outside its range (:func:`check_options`), before the table is looked at.
    ValidationError
        The table does not hold what the options name, or its values are unusable.
    """
    from pmed import __version__

    check_options(thresholds=thresholds, n_boot=n_boot, seed=seed, min_group_size=min_group_size, task=task,
                  mitigate=mitigate, outcome=outcome, score=score, model_col=model_col, groups=list(groups))
    df = check_predictions(df, outcome=outcome, score=score, model_col=model_col, groups=groups, source=source,
                           task=task)
    if id_col is None and "patient_id" in df.columns:
        id_col = "patient_id"
    parts = dict(tuple(df.groupby(model_col, sort=False))) if model_col else {"model": df}
    if id_col:
        dup = [shorten(m) for m, d in parts.items() if d[id_col].duplicated().any()]
        if dup:
            raise ValidationError(
                [f"patient IDs repeat within model(s) {', '.join(dup)} (column {id_col!r}): each patient "
                 "must appear once per model"], file=source,
                fix="for repeated cross-validation keep one repeat (pmed evaluate --repeat 0)")
    models, tables = {}, {}
    if task == "continuous":
        for name, d in parts.items():
            g = d[list(groups)].astype(str).reset_index(drop=True) if groups else None
            models[str(name)] = evaluate_continuous(d[outcome].to_numpy(), d[score].to_numpy(), groups=g,
                                                    n_boot=n_boot, seed=seed, min_group_size=min_group_size)
        return {
            "schema": "pmed.evaluation", "version": EVALUATION_SCHEMA_VERSION, "pmed_version": __version__,
            "task": "continuous",
            "input": {"file": source, "outcome": outcome, "score": score, "model_col": model_col,
                      "groups": list(groups), "id_col": id_col},
            "n": next(iter(models.values()))["n"],
            "settings": {"bootstrap_resamples": n_boot, "seed": seed, "min_group_size": min_group_size},
            "models": models,
        }, {}
    for name, d in parts.items():
        if d[outcome].nunique() < 2:
            raise ValidationError([f"model {shorten(name)}: only one outcome class among its rows"], file=source)
        g = d[list(groups)].astype(str).reset_index(drop=True) if groups else None
        models[str(name)], tables[str(name)] = evaluate_binary(
            d[outcome].to_numpy(), d[score].to_numpy(), groups=g, thresholds=thresholds,
            n_boot=n_boot, seed=seed, min_group_size=min_group_size)
        if mitigate and g is not None:
            from pmed.evaluate.subgroups import mitigate_thresholds

            # group-specific thresholds fitted on training folds, judged on held-out folds
            models[str(name)]["mitigation"] = mitigate_thresholds(
                d[outcome].to_numpy(), d[score].to_numpy(), g, constraint=mitigate,
                threshold=thresholds[0], cv=5, seed=seed)

    comparisons = []
    for a, b in combinations(parts, 2):
        da, db = parts[a], parts[b]
        if id_col:
            m = da[[id_col, outcome, score]].merge(db[[id_col, score]], on=id_col, suffixes=("_a", "_b"))
            y, pa, pb = m[outcome].to_numpy(), m[f"{score}_a"].to_numpy(), m[f"{score}_b"].to_numpy()
        elif len(da) == len(db) and (da[outcome].to_numpy() == db[outcome].to_numpy()).all():
            y, pa, pb = da[outcome].to_numpy(), da[score].to_numpy(), db[score].to_numpy()
        else:
            continue  # not the same patients: no paired test
        if len(y) < 10 or len(np.unique(y)) < 2:
            continue
        t = delong_test(y, pa, pb)
        comparisons.append({"model_a": str(a), "model_b": str(b), "n": int(len(y)), **t})

    first = next(iter(models.values()))
    evaluation = {
        "schema": "pmed.evaluation",
        "version": EVALUATION_SCHEMA_VERSION,
        "pmed_version": __version__,
        "task": "binary",
        "input": {"file": source, "outcome": outcome, "score": score, "model_col": model_col,
                  "groups": list(groups), "id_col": id_col},
        "n": first["n"],
        "n_events": first["n_events"],
        "prevalence": first["n_events"] / first["n"],
        "settings": {"thresholds": list(thresholds), "bootstrap_resamples": n_boot, "seed": seed,
                     "min_group_size": min_group_size, "level": 0.95},
        "ci_methods": "AUROC: DeLong; proportions at a threshold: Wilson score; calibration "
                      "intercept and slope: Wald (logistic recalibration); everything else: "
                      f"stratified percentile bootstrap ({n_boot} resamples, seed {seed})",
        "models": models,
        "comparisons": comparisons,
    }
    return evaluation, tables
