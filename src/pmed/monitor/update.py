"""``update_bundle``: recalibrate or refit a deployed binary model on new data, and decide on a
held-out recent window whether the candidate replaces it.

The parent bundle is never modified: the candidate is a new bundle (``OUT/model``) that names
its parent (the SHA-256 of the parent's ``SHA256SUMS`` and its path), and ``OUT/promotion.json``
holds the decision with its evidence. Rolling back is serving the parent again.
"""

from __future__ import annotations

import json
import math
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin

from pmed.errors import BundleError, OptionError, ValidationError, shorten

__all__ = ["update_bundle", "Recalibrated", "PROMOTION_RULE", "STRATEGIES", "MIN_ROWS", "MIN_PER_CLASS",
           "CALIBRATION_TOLERANCE"]

#: What :func:`update_bundle` can make of the current model.
STRATEGIES = ("recalibrate", "refit")
#: Fewest rows in the update part and in the held-out part.
MIN_ROWS = 50
#: Fewest patients with, and without, the event in each part.
MIN_PER_CLASS = 10
#: How much worse than the current model's the candidate's calibration may be and still pass.
CALIBRATION_TOLERANCE = 0.05
#: Probabilities are kept this far from 0 and 1 before the logit (a model's hard 0 or 1 would
#: otherwise give an infinite logit and no recalibration).
_EPS = 1e-10

#: The promotion rule, as written into ``promotion.json``.
PROMOTION_RULE = (
    "promoted only when, on the held-out rows, the candidate is better than the current model "
    "(paired DeLong CI of AUROC(candidate) - AUROC(current) entirely above 0, or paired bootstrap "
    "CI of Brier(candidate) - Brier(current) entirely below 0) AND its calibration is not worse "
    f"(|slope(candidate) - 1| <= |slope(current) - 1| + {CALIBRATION_TOLERANCE} and "
    f"|CITL(candidate)| <= |CITL(current)| + {CALIBRATION_TOLERANCE}, CITL = calibration-in-the-"
    "large); otherwise the candidate stays a 'candidate'. A missing (non-converged) value fails "
    "its condition."
)


class Recalibrated(ClassifierMixin, BaseEstimator):
    """A fitted binary classifier followed by logistic recalibration.

    ``P(y = 1) = expit(intercept + slope · logit(p))`` where ``p`` is the wrapped estimator's
    probability (clipped to [1e-10, 1 − 1e-10]). Only numbers and the wrapped estimator are
    stored, so skops can write and read it (``pmed.monitor.update.Recalibrated`` must be among
    the bundle loader's trusted types).

    Parameters
    ----------
    estimator
        A fitted classifier with ``predict_proba`` and ``classes_ == [0, 1]``; never refitted.
    intercept, slope
        The recalibration: ``a`` and ``b`` of ``logit(p_new) = a + b · logit(p)``. The defaults
        (0, 1) change nothing.
    """

    def __init__(self, estimator=None, intercept: float = 0.0, slope: float = 1.0):
        self.estimator = estimator
        self.intercept = intercept
        self.slope = slope

    @property
    def classes_(self) -> np.ndarray:
        return self.estimator.classes_

    def fit(self, X, y) -> Recalibrated:
        """Fit ``intercept`` and ``slope`` on ``(X, y)`` with the wrapped estimator kept as is.

        The logistic regression of ``y`` on ``logit(p)`` has no penalty (scikit-learn's
        ``LogisticRegression(C=inf)``): the two numbers are the maximum-likelihood ones, as in
        ``glm(y ~ logit(p), binomial)``.

        Raises
        ------
        ValidationError
            The wrapped estimator's classes are not 0 and 1, or ``y`` lacks a class.
        """
        from sklearn.linear_model import LogisticRegression

        if list(np.asarray(self.estimator.classes_).tolist()) != [0, 1]:
            raise ValidationError([f"the wrapped model's classes are {list(self.estimator.classes_)}, not [0, 1]"],
                                  fix="recalibrate a model fitted on a 0/1 outcome")
        y = np.asarray(y, dtype=float)
        if len(np.unique(y)) != 2:
            raise ValidationError(["the recalibration rows hold one outcome class only"],
                                  fix="give rows with and without the event")
        z = self._logit(X)[:, None]
        fit = LogisticRegression(C=np.inf, max_iter=1000).fit(z, y.astype(int))
        self.intercept = float(fit.intercept_[0])
        self.slope = float(fit.coef_[0, 0])
        return self

    def _logit(self, X) -> np.ndarray:
        p = np.asarray(self.estimator.predict_proba(X), dtype=float)[:, 1]
        return logit(np.clip(p, _EPS, 1 - _EPS))

    def predict_proba(self, X) -> np.ndarray:
        """``[P(y = 0), P(y = 1)]`` per row, recalibrated."""
        q = expit(float(self.intercept) + float(self.slope) * self._logit(X))
        return np.column_stack([1.0 - q, q])

    def predict(self, X) -> np.ndarray:
        """The class of each row at probability 0.5 (a bundle applies its own threshold)."""
        return np.asarray(self.classes_)[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def _flatten(estimator) -> tuple[Any, float, float]:
    """The innermost model under nested :class:`Recalibrated` wrappers and the composed
    ``(intercept, slope)`` of the whole chain (logit-linear maps compose into one)."""
    a, b = 0.0, 1.0
    while isinstance(estimator, Recalibrated):
        # outer(a, b) after inner(a_i, b_i): a + b·(a_i + b_i·z) = (a + b·a_i) + (b·b_i)·z
        a, b = a + b * float(estimator.intercept), b * float(estimator.slope)
        estimator = estimator.estimator
    return estimator, a, b


# --------------------------------------------------------------------------------------
# options and data
# --------------------------------------------------------------------------------------

def _check_options(strategy, holdout_fraction, alpha, n_boot, seed, time_col, window) -> None:
    if strategy not in STRATEGIES:
        raise OptionError(f"strategy must be one of {', '.join(STRATEGIES)}; got {shorten(strategy)}",
                          where="--strategy", fix="use strategy='recalibrate' (refit needs more rows)")
    if (time_col is None) != (window is None):
        raise OptionError("give time_col and window together (or neither, to hold out the last rows of the file)",
                          where="--window" if window is None else "--time-col",
                          fix="e.g. --time-col admitted --window month")
    if (isinstance(holdout_fraction, bool) or not isinstance(holdout_fraction, Real)
            or not 0 < float(holdout_fraction) < 1):
        raise OptionError(f"holdout_fraction must be a number strictly between 0 and 1; got "
                          f"{shorten(holdout_fraction)}", where="--holdout-fraction", fix="use e.g. 0.3")
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0 < float(alpha) < 1:
        raise OptionError(f"alpha must be strictly between 0 and 1; got {shorten(alpha)}", where="--alpha",
                          fix="use 0.05 for 95% intervals")
    if isinstance(n_boot, bool) or not isinstance(n_boot, Integral) or n_boot < 1:
        raise OptionError(f"n_boot must be a whole number >= 1; got {shorten(n_boot)}", where="--n-boot",
                          fix="use e.g. 500")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise OptionError(f"seed must be a whole number; got {shorten(seed)}", where="--seed", fix="use e.g. 0")


def _check_bundle(bundle) -> None:
    if bundle.task != "binary":
        raise OptionError(f"update_bundle updates binary models; this bundle's task is {shorten(bundle.task)}",
                          fix="retrain other models with 'pmed run' on the new data")
    m = bundle.manifest
    fused = (callable(getattr(bundle.pipeline, "modalities_used", None)) or m.get("image_blocks")
             or (m.get("conformal") or {}).get("without"))
    if fused:
        # a fused model's per-modality conformal thresholds and modality report are not carried
        # through a recalibration wrapper
        raise OptionError("updating a fused (multimodal) model is not supported",
                          fix="retrain it with 'pmed run' on the new data")
    if not (Path(bundle.path) / _sums_name()).is_file():
        raise BundleError("the parent bundle has no SHA256SUMS to identify it by", file=str(bundle.path),
                          fix="retrain it with this pmed ('pmed run')")


def _sums_name() -> str:
    from pmed.study.bundle import SUMS_NAME

    return SUMS_NAME


def _count_check(name: str, y: np.ndarray, problems: list[str]) -> None:
    n, ev = len(y), int(np.sum(y == 1))
    if n < MIN_ROWS:
        problems.append(f"the {name} part has {n} rows (fewer than {MIN_ROWS})")
    if ev < MIN_PER_CLASS or n - ev < MIN_PER_CLASS:
        problems.append(f"the {name} part has {ev} patients with the event and {n - ev} without "
                        f"(fewer than {MIN_PER_CLASS} of one)")


def _split(n: int, times: pd.Series | None, window, holdout_fraction: float) -> tuple[np.ndarray, dict]:
    """Boolean mask of the held-out rows and how they were chosen."""
    from pmed.monitor.drift import window_labels

    if times is not None:
        labels = window_labels(times, window)
        uniq = list(pd.unique(labels))
        # month/week labels sort in time order as text, N-row blocks as numbers
        last = sorted(uniq)[-1]
        hold = (labels == last).to_numpy()
        last = int(last) if isinstance(last, np.integer | int) else str(last)
        return hold, {"rule": f"most recent time window (window={window!r}): {last}", "window": last,
                      "n_windows": len(uniq)}
    k = max(1, math.ceil(float(holdout_fraction) * n))
    hold = np.zeros(n, dtype=bool)
    hold[n - k:] = True
    return hold, {"rule": f"last {float(holdout_fraction):.0%} of rows in file order (no time column given: "
                          "the file is taken to be in time order)", "window": None}


# --------------------------------------------------------------------------------------
# evidence and decision
# --------------------------------------------------------------------------------------

def _evidence(y: np.ndarray, p_cur: np.ndarray, p_new: np.ndarray, *, alpha: float, n_boot: int,
              seed: int) -> dict:
    import warnings

    from pmed.evaluate.calibration import calibration_metrics
    from pmed.evaluate.discrimination import delong_auc, delong_test
    from pmed.evaluate.metrics import _with_bootstrap, average_precision

    level = 1 - alpha

    def point(i: np.ndarray) -> dict[str, float]:
        b_cur = float(np.mean((p_cur[i] - y[i]) ** 2))
        b_new = float(np.mean((p_new[i] - y[i]) ** 2))
        return {"brier_current": b_cur, "brier_candidate": b_new, "brier_difference": b_new - b_cur,
                "auprc_current": average_precision(y[i], p_cur[i]),
                "auprc_candidate": average_precision(y[i], p_new[i])}

    # one set of resamples for both models: the difference is paired, patient by patient
    boot = _with_bootstrap(point, len(y), y, n_boot, seed, level)
    with warnings.catch_warnings():
        # predictions of exactly 0/1 are left out of the logistic fits; calibration_metrics says so
        # in each result's method text, which promotion.json keeps
        warnings.simplefilter("ignore")
        cal_cur = calibration_metrics(y, p_cur, n_boot=0, level=level)
        cal_new = calibration_metrics(y, p_new, n_boot=0, level=level)
    d = delong_test(y, p_new, p_cur, level=level)  # p1 = candidate: difference = candidate − current
    return {
        "n": int(len(y)), "events": int(y.sum()), "prevalence": float(y.mean()),
        "mean_prediction": {"current": float(p_cur.mean()), "candidate": float(p_new.mean())},
        "auroc": {"current": delong_auc(y, p_cur, level=level), "candidate": delong_auc(y, p_new, level=level),
                  "difference": {"estimate": d["difference"], "ci_low": d["ci_low"], "ci_high": d["ci_high"],
                                 "se": d["se"], "p_value": d["p_value"],
                                 "method": d["method"] + "; candidate − current"}},
        "brier": {"current": boot["brier_current"], "candidate": boot["brier_candidate"],
                  "difference": {**boot["brier_difference"],
                                 "method": "paired " + boot["brier_difference"]["method"]
                                 + "; candidate − current"}},
        "auprc": {"current": boot["auprc_current"], "candidate": boot["auprc_candidate"]},
        "calibration_in_the_large": {"current": cal_cur["calibration_in_the_large"],
                                     "candidate": cal_new["calibration_in_the_large"]},
        "calibration_slope": {"current": cal_cur["calibration_slope"],
                              "candidate": cal_new["calibration_slope"]},
    }


def _fmt(v: float) -> str:
    return f"{v:.4g}" if np.isfinite(v) else "NaN"


def _decide(ev: dict, alpha: float, tol: float) -> tuple[str, list[str]]:
    """``("promoted" | "candidate", reasons)`` by :data:`PROMOTION_RULE` (tolerance ``tol``)."""
    pct = f"{1 - alpha:.0%}"
    reasons = []
    da, db = ev["auroc"]["difference"], ev["brier"]["difference"]
    auc_better = bool(np.isfinite(da["ci_low"]) and da["ci_low"] > 0)
    brier_better = bool(np.isfinite(db["ci_high"]) and db["ci_high"] < 0)
    reasons.append(f"AUROC candidate − current {_fmt(da['estimate'])} ({pct} CI {_fmt(da['ci_low'])} to "
                   f"{_fmt(da['ci_high'])}): " + ("better (CI above 0)" if auc_better else "not shown better"))
    reasons.append(f"Brier candidate − current {_fmt(db['estimate'])} ({pct} CI {_fmt(db['ci_low'])} to "
                   f"{_fmt(db['ci_high'])}): " + ("better (CI below 0)" if brier_better else "not shown better"))
    s_cur = ev["calibration_slope"]["current"]["estimate"]
    s_new = ev["calibration_slope"]["candidate"]["estimate"]
    c_cur = ev["calibration_in_the_large"]["current"]["estimate"]
    c_new = ev["calibration_in_the_large"]["candidate"]["estimate"]
    slope_ok = bool(np.isfinite(s_cur) and np.isfinite(s_new) and abs(s_new - 1) <= abs(s_cur - 1) + tol)
    citl_ok = bool(np.isfinite(c_cur) and np.isfinite(c_new) and abs(c_new) <= abs(c_cur) + tol)
    reasons.append(f"calibration slope candidate {_fmt(s_new)}, current {_fmt(s_cur)}: |{_fmt(s_new)} − 1| "
                   f"{'<=' if slope_ok else 'not <='} |{_fmt(s_cur)} − 1| + {tol} "
                   + ("(not worse)" if slope_ok else "(worse)"))
    reasons.append(f"calibration-in-the-large candidate {_fmt(c_new)}, current {_fmt(c_cur)}: |{_fmt(c_new)}| "
                   f"{'<=' if citl_ok else 'not <='} |{_fmt(c_cur)}| + {tol} "
                   + ("(not worse)" if citl_ok else "(worse)"))
    promoted = (auc_better or brier_better) and slope_ok and citl_ok
    return ("promoted" if promoted else "candidate"), reasons


# --------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------

def update_bundle(
    model,
    data,
    *,
    outcome: str,
    strategy: str = "recalibrate",
    out: str | Path,
    time_col: str | None = None,
    window: str | int | None = None,
    holdout_fraction: float = 0.3,
    blocks: dict[str, str | Path] | None = None,
    alpha: float = 0.05,
    n_boot: int = 500,
    seed: int = 0,
    calibration_tolerance: float = CALIBRATION_TOLERANCE,
) -> dict:
    """Recalibrate or refit a binary model on new patients with outcomes; decide its promotion
    on a held-out recent window.

    The new rows with an outcome are split in two. The held-out part is the most recent time
    window (``time_col`` and ``window``; the last label in time order), or, without a time
    column, the last ``holdout_fraction`` of rows in file order. The rest (the update part) makes
    the candidate; the held-out part judges it against the current model.

    Decision rule (:data:`PROMOTION_RULE`, written into the output): the candidate is
    ``"promoted"`` only when, on the held-out rows,

    * it is better: the paired DeLong CI of AUROC(candidate) − AUROC(current) lies above 0, or
      the paired bootstrap CI of Brier(candidate) − Brier(current) lies below 0; and
    * its calibration is not worse: ``|slope(candidate) − 1| <= |slope(current) − 1| + 0.05``
      and ``|CITL(candidate)| <= |CITL(current)| + 0.05`` (calibration slope and
      calibration-in-the-large as :func:`pmed.evaluate.calibration_metrics`).

    Otherwise it stays a ``"candidate"``. A value that could not be estimated (a logistic fit
    that did not converge) fails its condition. CIs are at level ``1 − alpha``.

    Parameters
    ----------
    model
        The current bundle (a folder, e.g. ``DIR/model`` of ``pmed run``, or a loaded
        :class:`~pmed.study.bundle.ModelBundle`). Binary models only; it is never modified.
    data
        New patients (file or DataFrame) with the model's columns, the ``outcome`` column and,
        when given, ``time_col``. Rows without an outcome are left out (counted).
    outcome
        The observed outcome column (the training's labels; the bundle's ``positive`` is the
        event).
    strategy
        ``"recalibrate"``: the current model followed by logistic recalibration,
        ``logit(p_new) = a + b · logit(p)`` fitted on the update rows (:class:`Recalibrated`;
        the ranking of patients, hence AUROC, is unchanged when ``b > 0``). ``"refit"``: the
        current pipeline's settings (``sklearn.base.clone``) fitted on the update rows only —
        the bundle holds no training rows, so the old patients are not part of the refit.
    out
        Output folder, replaced whole (it must be absent, empty, or an earlier update's
        output): the candidate bundle is written to ``OUT/model`` and the decision to
        ``OUT/promotion.json``. Neither ``data`` nor the parent bundle may lie inside it.
    time_col, window
        A date column and ``"month"``, ``"week"`` or a number N of rows per window
        (:func:`pmed.monitor.window_labels`); given together or not at all.
    holdout_fraction
        Without a time column: the share of rows, taken from the end of the file, held out.
    blocks
        The bundle's modality blocks (``NAME=FILE``), as for ``pmed predict``.
    alpha
        1 − the confidence level of every interval.
    n_boot, seed
        Bootstrap resamples (stratified by outcome, paired across the two models) and seed of
        the Brier and AUPRC intervals.
    calibration_tolerance
        The 0.05 of the rule: how much further from ideal the candidate's calibration slope and
        calibration-in-the-large may be than the current model's.

    Returns
    -------
    dict
        What ``promotion.json`` holds: ``decision`` (``"promoted"`` or ``"candidate"``),
        ``rule``, ``reasons`` (one sentence per condition, with the numbers), ``evidence``
        (held-out ``auroc``, ``brier`` — each ``current``, ``candidate`` and ``difference``
        with CIs — ``auprc``, ``calibration_in_the_large``, ``calibration_slope``), ``parent``
        (``path``, ``sha256`` of its ``SHA256SUMS``, ``model_version``), ``candidate``
        (``path``, ``model_version``, ``pipeline_sha256``, ``sha256``), ``update`` (strategy,
        row counts, the held-out rule) and ``provenance``.

        The candidate bundle's manifest keeps the parent's features, schemas, blocks,
        threshold and positive label, and adds ``model_version`` (the parent's, or 1, plus 1),
        ``parent``, ``update``, ``reference`` (:func:`pmed.monitor.reference_summaries` of the
        update rows with the candidate's predictions there, so later monitoring compares with
        the new population), ``reference_values`` and ``population_predictions`` (from the
        update rows), ``metrics`` (the candidate's held-out values) and ``conformal``:
        recalibrated by split conformal on the held-out rows, which the candidate never saw
        (the parent's confidence level).

    Raises
    ------
    OptionError
        A model other than binary, a fused model, an unknown strategy, ``time_col`` without
        ``window`` (or the reverse), an option out of range.
    ValidationError
        The outcome or time column missing from ``data``; new data the model's schema refuses;
        an update or held-out part with fewer than 50 rows or fewer than 10 patients with, or
        without, the event.
    BundleError
        The parent cannot be loaded or verified, or the written candidate does not load back
        with the held-out predictions it was judged on.
    """
    from pmed.evaluate.conformal import conformal_from_oof
    from pmed.io._atomic import output_folder, write_text_atomic
    from pmed.io.jsonio import to_json
    from pmed.monitor.api import _read_new
    from pmed.monitor.reference import reference_summaries
    from pmed.result import make_provenance
    from pmed.schema import ColumnSpec
    from pmed.study.bundle import SUMS_NAME, _sha256, load_bundle, save_bundle
    from pmed.study.predict import new_patient_features
    from pmed.study.run import _reference_values, check_target_labels, encode_target

    _check_options(strategy, holdout_fraction, alpha, n_boot, seed, time_col, window)
    if not isinstance(outcome, str) or not outcome:
        raise OptionError("outcome must name the observed outcome column", where="--outcome",
                          fix="e.g. outcome='event'")
    if (isinstance(calibration_tolerance, bool) or not isinstance(calibration_tolerance, Real)
            or not 0 <= float(calibration_tolerance) < math.inf):
        raise OptionError(f"calibration_tolerance must be a number >= 0; got {shorten(calibration_tolerance)}",
                          fix="use 0.05")
    alpha, n_boot, seed, tol = float(alpha), int(n_boot), int(seed), float(calibration_tolerance)
    bundle = model if hasattr(model, "manifest") else load_bundle(model)
    _check_bundle(bundle)
    parent_path = Path(bundle.path).resolve()
    m = bundle.manifest

    df, y_raw, t, source = _read_new(data, outcome=outcome, time_col=time_col, id=bundle.input_schema().id)
    X_all = new_patient_features(bundle, df, blocks=blocks)
    check_target_labels(y_raw, m.get("target_labels"), source=source)
    y_all = encode_target(y_raw.set_axis(X_all.index), task="binary", positive=m.get("positive"), source=source)
    keep = y_all.notna().to_numpy()
    X_raw, y = X_all.loc[keep], y_all.to_numpy(dtype=float)[keep]
    X = bundle.check_features(X_raw, source=source)
    hold, split = _split(len(y), None if t is None else t.set_axis(X_all.index)[keep], window,
                         holdout_fraction)
    upd = ~hold
    problems: list[str] = []
    _count_check("update", y[upd], problems)
    _count_check("held-out", y[hold], problems)
    if problems:
        raise ValidationError(problems, file=source,
                              fix="give more new patients with outcomes, or (without a time column) another "
                                  "holdout_fraction; a window split needs a long enough last window")
    X_upd, X_hold, y_upd, y_hold = X.loc[upd], X.loc[hold], y[upd], y[hold]

    # the candidate
    if strategy == "recalibrate":
        inner, a0, b0 = _flatten(bundle.pipeline)
        step = Recalibrated(bundle.pipeline).fit(X_upd, y_upd)
        # one wrapper, whatever the history: composing keeps the bundle flat and the numbers exact
        candidate = Recalibrated(inner, step.intercept + step.slope * a0, step.slope * b0)
        fitted = {"intercept": candidate.intercept, "slope": candidate.slope,
                  "this_update": {"intercept": step.intercept, "slope": step.slope}}
    else:
        from sklearn.base import clone

        inner = _flatten(bundle.pipeline)[0]
        try:
            candidate = clone(inner).fit(X_upd, y_upd.astype(int))
        except (ValueError, TypeError) as e:
            raise ValidationError([f"refitting the model on the {int(upd.sum())} update rows failed: {e}"],
                                  file=source, fix="use strategy='recalibrate', or retrain with 'pmed run'") from None
        fitted = {"note": "the parent's pipeline settings fitted on the update rows only (a bundle holds no "
                          "training rows)"}

    p_cur = bundle._predict_checked(X_hold)["probability"].to_numpy(dtype=float)
    p_new = np.asarray(candidate.predict_proba(X_hold), dtype=float)[:, 1]
    p_new_upd = np.asarray(candidate.predict_proba(X_upd), dtype=float)[:, 1]
    evidence = _evidence(y_hold, p_cur, p_new, alpha=alpha, n_boot=n_boot, seed=seed)
    decision, reasons = _decide(evidence, alpha, tol)

    parent_version = int(m.get("model_version") or 1)
    parent = {"path": str(parent_path), "sha256": _sha256(parent_path / SUMS_NAME),
              "model_version": parent_version}
    update_info = {"strategy": strategy, "n_rows": int(len(keep)), "n_missing_outcome": int((~keep).sum()),
                   "n_update": int(upd.sum()), "n_holdout": int(hold.sum()),
                   "events_update": int(y_upd.sum()), "events_holdout": int(y_hold.sum()),
                   "holdout": split, "time_col": time_col, "fitted": fitted,
                   "training_rows": "update rows only" if strategy == "refit" else
                   "the parent's model unchanged; the recalibration on the update rows"}
    held_metrics = {"auroc": evidence["auroc"]["candidate"], "auprc": evidence["auprc"]["candidate"],
                    "brier": evidence["brier"]["candidate"],
                    "calibration_in_the_large": evidence["calibration_in_the_large"]["candidate"],
                    "calibration_slope": evidence["calibration_slope"]["candidate"]}
    level = float((m.get("conformal") or {}).get("confidence_level") or 0.9)
    # split conformal on rows the candidate never saw; the five labels only give the
    # fold-wise coverage check of conformal_from_oof (its quantile uses every held-out row)
    conformal = conformal_from_oof(y_hold, p_new, np.arange(len(y_hold)) % 5, task="binary",
                                   confidence_level=level)
    conformal["method"] = "LAC prediction sets calibrated on the update's held-out rows (split conformal)"

    specs = {c: ColumnSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in s.items()})
             for c, s in (m.get("feature_specs") or {}).items()}
    model_info = {**(m.get("model") or {}), "update": strategy}
    extra = {
        "model": model_info,
        "model_version": parent_version + 1,
        "parent": parent,
        "update": update_info,
        "reference_values": _reference_values(X_upd),
        "conformal": conformal,
        "population_predictions": np.quantile(p_new_upd, np.linspace(0, 1, 101)).tolist(),
        # what pmed monitor compares later patients with: the population the candidate was made on
        "reference": reference_summaries(X_upd, predictions=p_new_upd, task="binary", metrics=held_metrics),
        "positive": m.get("positive"),
        "target_labels": m.get("target_labels"),
    }
    treatment = None
    if bundle.treatment_model is not None:
        # carried over unchanged: the update concerns the outcome model
        treatment = (bundle.treatment_model, {k: v for k, v in m["treatment"].items() if k != "file"})
        update_info["treatment"] = "carried over from the parent unchanged"
    study_file = parent_path / "study.yaml"
    study_text = study_file.read_text(encoding="utf-8") if study_file.is_file() else ""

    out = Path(out)
    final_model = (out / "model").resolve()
    inputs = [parent_path] + ([Path(source)] if source else [])
    with output_folder(out, owned=_is_update_output, inputs=inputs, what="model update") as stage:
        bpath = save_bundle(
            stage / "model", candidate, task="binary", target=m["target"], X=X_upd, y=pd.Series(y_upd),
            feature_specs=specs, input_schema=bundle.input_schema(), blocks=m.get("blocks") or {},
            metrics={"family": model_info.get("family"), "source": "held-out rows of the update",
                     "n": int(hold.sum()), "metrics": held_metrics},
            study_text=study_text, threshold=m.get("threshold", 0.5), extra=extra, treatment=treatment)
        written = load_bundle(bpath)
        p_back = written._predict_checked(X_hold)["probability"].to_numpy(dtype=float)
        if not np.allclose(p_back, p_new, rtol=1e-9, atol=1e-12):
            raise BundleError("the written candidate does not reproduce the predictions it was judged on",
                              file=str(final_model), fix="report this; the parent bundle is unchanged")
        wm = written.manifest
        result = {
            "decision": decision,
            "rule": PROMOTION_RULE if tol == CALIBRATION_TOLERANCE else PROMOTION_RULE.replace(
                f"+ {CALIBRATION_TOLERANCE}", f"+ {tol:g}"),
            "reasons": reasons,
            "evidence": evidence,
            "parent": parent,
            "candidate": {"path": str(final_model), "model_version": wm["model_version"],
                          "pipeline_sha256": wm["pipeline_sha256"], "sha256": _sha256(bpath / SUMS_NAME)},
            "update": update_info,
            "rollback": "serve the parent bundle (unchanged) again",
            "provenance": make_provenance(
                "monitor", inputs={"data": source, "model": str(parent_path)},
                options={"outcome": outcome, "strategy": strategy, "time_col": time_col, "window": window,
                         "holdout_fraction": float(holdout_fraction), "alpha": alpha, "n_boot": n_boot,
                         "seed": seed, "calibration_tolerance": tol}),
        }
        write_text_atomic(stage / "promotion.json", to_json(result))
    return json.loads(to_json(result))


def _is_update_output(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier :func:`update_bundle` output (may be replaced)."""
    try:
        prom = json.loads((folder / "promotion.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(prom, dict) and "decision" in prom and "rule" in prom
