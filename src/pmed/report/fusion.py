"""The model report's "Multimodal fusion" section: ``metrics.json["fusion"]`` read into context.

:func:`pmed.study.fusion.run_study_fusion` judges each modality alone, the fused model and the fused
model without each modality on the same cross-validation splits; :func:`fusion_context` turns its
dictionary into the rows and plain-words sentences ``_fusion.html.j2`` renders, and draws the
forest plot (:func:`pmed.plots.fusion.fusion_forest`) when given a folder for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pmed.report.html import metric_text

__all__ = ["fusion_context", "FOREST_PNG"]

#: The forest plot's file name inside the ``figures`` folder.
FOREST_PNG = "fusion_forest.png"

_INTERVAL_KEYS = ("estimate", "ci_low", "ci_high", "method")
_LABELS = {"auroc": "AUROC", "auprc": "AUPRC", "brier": "Brier score", "accuracy": "accuracy",
           "balanced_accuracy": "balanced accuracy", "sensitivity": "sensitivity",
           "specificity": "specificity", "ppv": "PPV", "npv": "NPV", "f1": "F1", "rmse": "RMSE",
           "mae": "MAE", "r2": "R²", "pearson": "Pearson correlation",
           "spearman": "Spearman correlation"}
_LOWER_IS_BETTER = ("brier", "rmse", "mae")  # as pmed.evaluate.metrics.GREATER_IS_BETTER


def _value(v) -> float | None:
    """A number, or ``None`` for JSON ``null`` / NaN."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(float(v)):
        return None
    return float(v)


def _interval(d: Mapping | None) -> dict:
    """``estimate, ci_low, ci_high, method`` of a metric (all ``None`` when absent)."""
    d = d if isinstance(d, Mapping) else {}
    out = {k: _value(d.get(k)) for k in _INTERVAL_KEYS[:3]}
    out["method"] = d.get("method")
    return out


def _of(model: Mapping | None, metric: str) -> dict:
    """The ``metric`` interval of a candidate model's dict (``["metrics"][metric]``)."""
    return _interval(((model or {}).get("metrics") or {}).get(metric))


def _diff_text(d: Mapping) -> str:
    """``+0.062 (95 % CI 0.031 to 0.093)``: a signed difference, its interval in words."""
    est, lo, hi = d.get("estimate"), d.get("ci_low"), d.get("ci_high")
    if est is None:
        return "not estimable"
    ci = f" (95 % CI {lo:+.3f} to {hi:+.3f})" if lo is not None and hi is not None else ""
    return f"{est:+.3f}{ci}"


def _verdict(d: Mapping, better_sign: int) -> str:
    """``better``, ``worse`` or ``unclear`` (the interval holds 0): what A − B says of A."""
    est, lo, hi = d.get("estimate"), d.get("ci_low"), d.get("ci_high")
    if est is None:
        return ""
    if lo is not None and hi is not None and lo <= 0 <= hi:
        return "unclear"
    return "better" if better_sign * est > 0 else "worse"


def _describe(method: str, family: str, n_modalities: int) -> str:
    """How the modalities were combined, in a few words."""
    if method == "late":
        return (f"late fusion: one {family} model per modality, fitted on the patients who have "
                "it, and a meta-learner for each combination of modalities that combines their "
                "cross-fitted predictions, so that each patient is scored with exactly the "
                "modalities they have")
    if method == "early":
        return (f"early fusion: one {family} model on the {n_modalities} modalities' columns side "
                "by side, with one indicator per modality saying whether the patient has it")
    return f"{method} fusion ({family})"


def fusion_context(fusion: Mapping[str, Any], *,
                   figures: str | Path | None = None) -> dict[str, Any]:
    """Turn ``metrics.json["fusion"]`` of a study into the model report's ``fusion`` context.

    Parameters
    ----------
    fusion
        What :func:`pmed.study.fusion.run_study_fusion` returns as ``metrics`` (``method, family,
        modalities, availability, n_without_any, single, fused, without, paired, gain_of,
        masked``), as written to ``metrics.json`` (NaN as ``null``) or in memory.
    figures
        A folder to draw the forest plot into (``fusion_forest.png``); ``None`` draws nothing.

    Returns
    -------
    dict
        ``method, family, description`` (how the modalities were combined, in words), ``metric``
        (the ``select_by`` key) and ``metric_label`` (``AUROC``…), ``higher_is_better``,
        ``n_without_any`` (patients with none of the modalities),
        ``modalities``: one dict per modality with ``name, n_columns, n_patients, alone, without,
        gain`` (intervals) and ``masked`` (``fraction, n_masked, full, masked, drop``; ``None``
        when the modality was not masked),
        ``rows`` (the table and the plot, top to bottom: each modality alone, the fused model,
        the fused model without each modality: ``label, kind, estimate, ci_low, ci_high, method``),
        ``fused`` (interval), ``paired`` (fused minus the best single modality: interval and
        ``best_single``), ``sentences`` (plain words: the comparison with the best single
        modality, then what each modality adds) and ``plots`` (``forest``: the PNG's path, when
        drawn).
    """
    paired = dict(fusion.get("paired") or {})
    metric = str(paired.get("metric") or "auroc")
    label = _LABELS.get(metric, metric)
    sign = -1 if metric in _LOWER_IS_BETTER else 1
    method, family = str(fusion.get("method") or ""), str(fusion.get("family") or "")
    mods = dict(fusion.get("modalities") or {})
    avail = dict(fusion.get("availability") or {})
    fused = _of(fusion.get("fused"), metric)
    best = paired.get("best_single")

    modalities = []
    for name, cols in mods.items():
        gain = _interval((fusion.get("gain_of") or {}).get(name))
        mk = dict((fusion.get("masked") or {}).get(name) or {})
        modalities.append({
            "name": name, "n_columns": len(cols or []), "n_patients": avail.get(name),
            "alone": _of((fusion.get("single") or {}).get(name), metric),
            "without": _of((fusion.get("without") or {}).get(name), metric),
            "gain": gain, "gain_text": _diff_text(gain), "gain_verdict": _verdict(gain, sign),
            "masked": {"fraction": _value(mk.get("fraction")), "n_masked": mk.get("n_masked"),
                       "full": _value(mk.get("full")), "masked": _value(mk.get("masked")),
                       "drop": _value(mk.get("drop"))} if mk else None,
        })
    rows = ([{"label": f"{m['name']} alone", "kind": "single", **m["alone"]} for m in modalities]
            + [{"label": "fused (all modalities)", "kind": "fused", **fused}]
            + [{"label": f"fused without {m['name']}", "kind": "without", **m["without"]}
               for m in modalities])

    pair = {**_interval(paired), "best_single": best}
    best_alone = next((m["alone"] for m in modalities if m["name"] == best), _interval(None))
    sentences = []
    if fused["estimate"] is not None and best is not None:
        verdict = {"better": "the fused model does better", "worse": f"{best} alone does better",
                   "unclear": "the interval includes no difference"}.get(_verdict(pair, sign),
                                                                        "not estimable")
        sentences.append(
            f"The fused model's {label} is {metric_text(fused)}; the best single modality, {best}, "
            f"reaches {metric_text(best_alone)} on its own. Fused minus {best} alone: "
            f"{_diff_text(pair)}" + (f", {pair['method']}" if pair["method"] else "")
            + f" — {verdict}.")
    for m in modalities:
        if m["gain"]["estimate"] is None:
            continue
        verdict = {"better": "it helps", "worse": "the fused model does better without it",
                   "unclear": "the interval includes no difference"}.get(m["gain_verdict"])
        sentences.append(
            f"Leaving {m['name']} out of the fused model changes the {label} from "
            f"{metric_text(fused)} to {metric_text(m['without'])}: {m['name']} adds "
            f"{m['gain_text']}" + (f"; {verdict}" if verdict else "") + ".")

    plots = {}
    if figures is not None and rows:
        from pmed import plots as _plots
        from pmed.plots.fusion import fusion_forest

        fig = fusion_forest(rows, metric=label, fused=fused["estimate"],
                            title=f"Multimodal fusion ({method}) — {label}")
        plots["forest"] = _plots.save(fig, Path(figures) / FOREST_PNG)

    n_none = fusion.get("n_without_any")
    return {
        "method": method, "family": family, "description": _describe(method, family, len(mods)),
        "metric": metric, "metric_label": label, "higher_is_better": sign > 0,
        "n_without_any": n_none, "modalities": modalities, "rows": rows, "fused": fused,
        "paired": pair, "sentences": sentences, "plots": plots,
    }
