"""The model report's "Treatment effects" section: an ``effects/`` folder read into template context.

:func:`pmed.effects.run_effects` writes ``metrics.json``, ``overlap_smd_<arm>.csv`` and
``plots/uplift_<arm>.png``, ``plots/calibration_<arm>.png``; :func:`effects_context` turns them
into the plain dictionaries ``model_report.html.j2`` renders (numbers stay numbers: the template
formats them), with one plain-words sentence per arm.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pmed.errors import InputError, ValidationError

__all__ = ["effects_context", "effect_sentence"]

_INTERVAL_KEYS = ("estimate", "ci_low", "ci_high", "method")


def _safe(arm: str) -> str:
    """The arm's part of the file names, as :meth:`pmed.effects.EffectsResult._write_files` writes it."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(arm))


def _interval(d: Mapping | None) -> dict | None:
    """``estimate, ci_low, ci_high, method`` of a metric, JSON ``null`` (a NaN) kept as ``None``."""
    if not isinstance(d, Mapping):
        return None
    out = {k: d.get(k) for k in _INTERVAL_KEYS}
    for k in ("estimate", "ci_low", "ci_high"):
        if isinstance(out[k], float) and math.isnan(out[k]):
            out[k] = None
    return out


def _quantity(effect_scale: str) -> str:
    """``P(response = 1)`` from ``difference in P(response = 1)``: what the arm raises or lowers."""
    return effect_scale.removeprefix("difference in ").strip() or "the outcome"


def _how(metrics: Mapping, arm: Mapping) -> str:
    """How the ATE was estimated, in a few words: the design and what it did about overlap."""
    ov = arm.get("overlap") or {}
    if metrics.get("randomized"):
        # a trial's propensity is one known number: every quantile of it is that number
        p = ((ov.get("propensity") or {}).get("arm") or {}).get("q50")
        return "cross-fitted AIPW, " + (f"known allocation probability {p:g}" if p is not None
                                        else "known allocation probability")
    out = ov.get("n_outside") or {}
    n_out = int(out.get("arm", 0)) + int(out.get("control", 0))
    lo, hi = (ov.get("bounds") or [None, None])[:2]
    left = (f"{n_out} patient(s) with a propensity outside [{lo:g}, {hi:g}] left out" if n_out and lo is not None
            else "nobody left out for overlap")
    return f"cross-fitted AIPW, propensity modelled on the covariates, {left}"


def effect_sentence(arm: str, control: str, ate: Mapping, *, effect_scale: str, level: float, how: str) -> str:
    """One plain-words sentence: ``Ticagrelor raised P(response = 1) by 0.31 (95 % CI 0.25 to 0.37)
    against clopidogrel (cross-fitted AIPW, known allocation probability 0.5)``.

    Parameters
    ----------
    arm, control
        The arm and the control, as in the data.
    ate
        The arm's ``ate`` (``estimate, ci_low, ci_high``).
    effect_scale
        ``metrics["effect_scale"]`` of the effects folder (``difference in P(y = 1)``…).
    level
        Confidence level of the interval (0.95).
    how
        The estimator, in a few words (the sentence's last parenthesis).

    Returns
    -------
    str
        Numbers with two decimals; a negative effect "lowered" the quantity, with the signed
        difference and its interval; an interval that holds 0 is said to.
    """
    est, lo, hi = ate.get("estimate"), ate.get("ci_low"), ate.get("ci_high")
    quantity, pct = _quantity(effect_scale), f"{100 * level:g} %"
    name = str(arm)[:1].upper() + str(arm)[1:]
    if est is None:
        return f"{name}: no estimate of its effect against {control}."
    ci = f"{pct} CI {lo:.2f} to {hi:.2f}" if lo is not None and hi is not None else "no interval"
    if est > 0:
        text = f"{name} raised {quantity} by {est:.2f} ({ci}) against {control} ({how})."
    elif est < 0:
        text = f"{name} lowered {quantity} by {-est:.2f} (difference {est:.2f}, {ci}) against {control} ({how})."
    else:
        text = f"{name} did not change {quantity} (difference 0.00, {ci}) against {control} ({how})."
    if lo is not None and hi is not None and lo <= 0 <= hi:
        text += " The interval includes no effect."
    return text


def _overlap(metrics: Mapping, arm: Mapping, smd_csv: Path) -> dict:
    ov = arm.get("overlap") or {}
    out = ov.get("n_outside") or {}
    res = {
        "randomized": bool(metrics.get("randomized")),
        "propensity_method": ov.get("propensity_method"),
        "propensity_auc": ov.get("propensity_auc"),
        "bounds": ov.get("bounds"),
        "n_outside_arm": out.get("arm"),
        "n_outside_control": out.get("control"),
        "n_left_out": None if not out else int(out.get("arm", 0)) + int(out.get("control", 0)),
        "action": ov.get("action"),
        "max_smd_before": (ov.get("max_abs_smd") or {}).get("before"),
        "max_smd_after": (ov.get("max_abs_smd") or {}).get("after"),
        "smd": [],
        "n_covariates": None,
    }
    if smd_csv.is_file():  # per covariate: the largest imbalances first (ten at most)
        smd = pd.read_csv(smd_csv)
        if len(smd) and {"covariate", "before", "after"} <= set(smd.columns):
            res["max_smd_before"] = float(smd["before"].abs().max())
            res["max_smd_after"] = float(smd["after"].abs().max())
            res["n_covariates"] = int(len(smd))
            top = smd.reindex(smd["before"].abs().sort_values(ascending=False).index).head(10)
            res["smd"] = [{"covariate": str(r.covariate), "before": float(r.before), "after": float(r.after)}
                          for r in top.itertuples(index=False)]
    return res


def _learners(metrics: Mapping, arm: Mapping) -> list[dict]:
    info = metrics.get("learners") or {}
    rows = []
    for name, lm in (arm.get("learners") or {}).items():
        pol = lm.get("policy") or {}
        cal = lm.get("calibration_slope") or {}
        rows.append({
            "name": name, "what": (info.get(name) or {}).get("what"),
            "mean_cate": _interval(lm.get("ate")),
            "autoc": _interval(lm.get("autoc")), "qini": _interval(lm.get("qini")), "auuc": _interval(lm.get("auuc")),
            "calibration_slope": _interval(cal), "p_heterogeneity": cal.get("p_heterogeneity"),
            "treat_by_cate": _interval(pol.get("treat_by_cate")), "treat_all": _interval(pol.get("treat_all")),
            "treat_none": _interval(pol.get("treat_none")), "by_cate_minus_all": _interval(pol.get("by_cate_minus_all")),
            "fraction_treated": pol.get("fraction_treated"),
        })
    return rows


def effects_context(folder: str | Path) -> dict[str, Any]:
    """Read an ``effects/`` folder into the model report's ``effects`` context.

    Parameters
    ----------
    folder
        The folder :func:`pmed.effects.run_effects` (or ``pmed run`` with a ``treatment:``
        section) wrote: ``metrics.json``, ``overlap_smd_<arm>.csv``, ``plots/*.png``.

    Returns
    -------
    dict
        ``treatment, outcome, control, randomized, effect_scale, quantity, level`` (0.95),
        ``level_pct`` ("95 %"), ``higher_is_better, folds, n_boot`` and ``arms``: one dict per
        arm with ``name, n, n_arm, n_control, ate, difference_in_means`` (``estimate, ci_low,
        ci_high, method``), ``sentence`` (:func:`effect_sentence`), ``overlap`` (propensity
        AUROC, patients left out and why, largest absolute SMD before and after weighting, and
        ``smd``: the ten largest of ``n_covariates`` encoded covariates), ``subgroups`` (rows:
        ``column, level, n, estimate, ci_low, ci_high, method``), ``learners`` (rows: AUTOC, Qini, AUUC, calibration slope,
        policy values) and ``plots`` (``uplift``, ``calibration``: paths of the PNGs present).

    Raises
    ------
    InputError
        ``metrics.json`` is missing or not JSON.
    ValidationError
        It is not an effects ``metrics.json`` (no ``arms``).
    """
    folder = Path(folder)
    path = folder / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise InputError("the effects folder has no readable metrics.json", file=path,
                         fix="run the study again: pmed run writes effects/ for a treatment: section") from None
    except ValueError as e:
        raise InputError(f"metrics.json is not JSON ({e.msg})", file=path, fix="run the study again") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("arms"), dict):
        raise ValidationError(["metrics.json is not the output of an effects estimate (no 'arms')"], file=path,
                              fix="point at the effects/ folder of a study run")
    level = float(metrics.get("level", 0.95))
    scale = str(metrics.get("effect_scale") or "difference in the outcome")
    control = metrics.get("control")
    arms = []
    for name, a in metrics["arms"].items():
        safe = _safe(name)
        ate = _interval(a.get("ate")) or {}
        plots = {k: folder / "plots" / f"{k}_{safe}.png" for k in ("uplift", "calibration")}
        arms.append({
            "name": name, "n": a.get("n"), "n_arm": a.get("n_arm"), "n_control": a.get("n_control"),
            "ate": ate, "ate_n": (a.get("ate") or {}).get("n"),
            "difference_in_means": _interval(a.get("difference_in_means")),
            "sentence": effect_sentence(name, str(control), ate, effect_scale=scale, level=level,
                                        how=_how(metrics, a)),
            "overlap": _overlap(metrics, a, folder / f"overlap_smd_{safe}.csv"),
            "subgroups": [{"column": col, "level": lv, "n": g.get("n"), **(_interval(g) or {})}
                          for col, levels in (a.get("subgroups") or {}).items() for lv, g in levels.items()],
            "learners": _learners(metrics, a),
            "plots": {k: p for k, p in plots.items() if p.is_file()},
        })
    return {
        "treatment": metrics.get("treatment"), "outcome": metrics.get("outcome"), "control": control,
        "randomized": bool(metrics.get("randomized")), "effect_scale": scale, "quantity": _quantity(scale),
        "level": level, "level_pct": f"{100 * level:g} %", "higher_is_better": metrics.get("higher_is_better"),
        "outcome_type": metrics.get("outcome_type"), "folds": metrics.get("folds"), "n_boot": metrics.get("n_boot"),
        "arms": arms,
    }
