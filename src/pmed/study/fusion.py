"""The ``fusion:`` section of a study: what each modality adds, and what is lost without it.

For a study with ``fusion:`` the runner adds the fused model to its candidates and, with the same
cross-validation splits, evaluates each modality alone and the fused model without each modality.
``metrics.json`` gets ``fusion``::

    {"method", "family", "modalities": {name: [columns]}, "availability": {name: n_patients},
     "single": {name: metrics}, "fused": metrics, "without": {name: metrics},
     "paired": {estimate, ci_low, ci_high, method, metric, best_single},
     "gain_of": {name: {estimate, ci_low, ci_high, method}},      # fused minus fused-without-name
     "masked": {name: {fraction, metric, full, masked, drop,       # point 3: modality missing at prediction
                       conformal: {quantile, n, confidence_level, cv_coverage} | null}}}

(each ``metrics`` the dict a candidate model gets). Differences are paired on the same patients:
DeLong's test for AUROC, a paired bootstrap of patients otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from pmed.errors import OptionError, StudyError, shorten

__all__ = ["fusion_modalities", "add_image_blocks", "modality_model", "build_fusion", "run_study_fusion",
           "FUSED_LABEL"]

#: The candidate name of the fused model, by method.
FUSED_LABEL = {"early": "fusion (early)", "late": "fusion (late)", "joint": "fusion (joint)"}
#: Share of the test patients whose modality is masked in the missing-at-prediction check.
MASK_FRACTION = 0.3


def fusion_modalities(study, cohort, X: pd.DataFrame) -> dict[str, list[str]]:
    """Each modality's columns among the study's features ``X`` (``block:`` tables, ``columns:`` globs)."""
    from pmed.fusion import resolve_modalities

    spec: dict[str, list[str]] = {}
    for name, m in study.fusion.modalities.items():
        if m.images is not None:  # its pixel columns, added to X by add_image_blocks
            spec[name] = list(cohort.blocks[name].data.columns)
        elif m.block is not None:
            table = cohort.patients if m.block == "patients" else getattr(cohort.blocks.get(m.block), "data", None)
            if table is None:
                known = ["patients", *cohort.blocks]
                raise StudyError(f"fusion modality {shorten(name)} names unknown block {shorten(m.block)}",
                                 where=f"key fusion.modalities.{name}.block", fix=f"use among: {', '.join(known)}")
            cols = [c for c in table.columns if c in X.columns]
            if not cols:
                raise StudyError(f"fusion modality {shorten(name)}: block {shorten(m.block)} has no column "
                                 "among the study's features", where=f"key fusion.modalities.{name}.block",
                                 fix="add the block to features.blocks, or check features.exclude")
            spec[name] = cols
        else:
            spec[name] = list(m.columns)
    try:
        return resolve_modalities(spec, list(X.columns))
    except OptionError as e:  # a study's mistake: said as one, at the study's key
        raise StudyError(e.message, file=study.source_path, where=f"key fusion.modalities ({e.where})",
                         fix=e.fix) from None


def add_image_blocks(study, cohort, X: pd.DataFrame) -> pd.DataFrame:
    """``X`` with the pixel columns of the study's image modalities (:mod:`pmed.fusion.images`).

    Each is read, checked against the cohort's IDs (none matching: refused; some patients
    without an image: a warning by counts) and added to the cohort as a block named after the
    modality. At most one image modality (their pixel columns share names).
    """
    from pmed.fusion.images import check_image_ids, read_image_block

    images = {n: m for n, m in study.fusion.modalities.items() if m.images is not None}
    if not images:
        return X
    if len(images) > 1:
        raise StudyError(f"fusion has {len(images)} image modalities ({', '.join(images)}); pmed takes one",
                         file=study.source_path, where="key fusion.modalities",
                         fix="keep one images: modality (or give the others as blocks of embeddings)")
    (name, m), = images.items()
    if name in cohort.blocks:
        raise StudyError(f"fusion modality {name!r} has the name of a data block", file=study.source_path,
                         where=f"key fusion.modalities.{name}", fix="rename the image modality")
    table, prov = read_image_block(study.path(m.images), size=m.size, id=X.index.name or "patient_id")
    check_image_ids(name, table, cohort.ids, source=str(study.source_path) if study.source_path else None)
    # a patient without an image lacks the modality, as a fusion allows (warned above by counts)
    cohort.add_block(name, table.loc[table.index.isin(cohort.ids)], provenance=prov, allow_missing=True)
    return X.join(cohort.blocks[name].data.loc[X.index])


def modality_model(name: str, columns: list[str], *, family: str, task: str, X: pd.DataFrame,
                   params: dict[str, Any] | None, seed: int):
    """The model of one modality on its own: a CNN (:class:`~pmed.fusion.JointFusion` of that one
    image modality) for pixel columns, else the study's family."""
    from pmed.fusion import JointFusion
    from pmed.fusion.images import is_image_modality
    from pmed.models.zoo import make_model

    if is_image_modality(columns):
        return JointFusion({name: list(columns)}, task=task, random_state=seed, n_jobs=1)
    return make_model(family, task=task, X=X[columns], params=params, seed=seed)


def build_fusion(method: str, modalities: dict[str, list[str]], *, family: str, task: str, X: pd.DataFrame,
                 params: dict[str, Any] | None = None, inner_folds: int = 5, seed: int = 0):
    """The unfitted fused estimator over ``modalities`` (columns of ``X``)."""
    from sklearn.pipeline import Pipeline

    from pmed.fusion import JointFusion, LateFusion, ModalityIndicators
    from pmed.models.zoo import make_model

    cols = [c for c in X.columns if any(c in v for v in modalities.values())]
    if method == "joint":  # params are the network's (JointFusion's); family is for each modality alone
        return JointFusion(modalities, task=task, **{"random_state": seed, "n_jobs": 1, **(params or {})})
    if method == "early":
        ind = ModalityIndicators(modalities)
        Xi = ind.fit(X[cols]).transform(X[cols])
        return Pipeline([("modalities", ind),
                         ("fit", make_model(family, task=task, X=Xi, params=params, seed=seed))])
    return LateFusion([(name, modality_model(name, c, family=family, task=task, X=X, params=params, seed=seed), c)
                       for name, c in modalities.items()], task=task, inner_folds=inner_folds, seed=seed)


def _fold_predictions(est, X: pd.DataFrame, y: pd.Series, splits, *, task: str, masks: dict | None = None,
                      seed: int = 0, on_fold=None) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Out-of-fold predictions of ``est`` and, for each ``masks`` entry (modality → its columns),
    the same fold models' predictions with that modality removed for a random share of the test patients."""
    rows, masked = [], {m: [] for m in masks or {}}
    yv = np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)

    def predict(fitted, Xt):
        return fitted.predict_proba(Xt)[:, 1] if task == "binary" else fitted.predict(Xt)

    for r, f, tr, te in splits:
        fitted = clone(est).fit(X.iloc[tr], yv[tr].astype(int) if task == "binary" else yv[tr])
        Xt = X.iloc[te]
        base = {"patient_id": X.index[te], "repeat": r, "fold": f, "outcome": yv[te]}
        rows.append(pd.DataFrame({**base, "prediction": predict(fitted, Xt)}))
        for m, cols in (masks or {}).items():
            hide = rng.random(len(te)) < MASK_FRACTION
            Xm = Xt.copy()
            Xm.loc[hide, cols] = np.nan
            masked[m].append(pd.DataFrame({**base, "prediction": predict(fitted, Xm), "masked": hide}))
        if on_fold is not None:
            on_fold()

    def cat(parts):
        return pd.concat(parts, ignore_index=True).sort_values(["repeat", "patient_id"], kind="mergesort",
                                                               ignore_index=True)

    return cat(rows), {m: cat(v) for m, v in masked.items()}


def _conformal_without(oof_m: pd.DataFrame, *, task: str, level: float) -> dict | None:
    """The conformal threshold calibrated on the test patients whose modality was masked: how
    wide a fused model's interval (or how large its prediction set) must be for a patient who
    lacks that modality. ``None`` with fewer than 20 such patients (too few to calibrate)."""
    from pmed.evaluate.conformal import conformal_from_oof

    om = oof_m[(oof_m["repeat"] == 0) & oof_m["masked"]]
    if len(om) < 20 or om["fold"].nunique() < 2:
        return None
    c = conformal_from_oof(om["outcome"], om["prediction"], om["fold"], task=task, confidence_level=level)
    return {"quantile": c["quantile"], "n": int(len(om)), "confidence_level": level,
            "cv_coverage": c["cv_coverage"]}


def _point(oof: pd.DataFrame, *, task: str, metric: str, threshold: float) -> float:
    """``metric`` of the first repeat's out-of-fold predictions (no interval)."""
    from pmed.evaluate.cv import _binary_point, _regression_point

    o = oof[oof["repeat"] == 0]
    y, p = o["outcome"].to_numpy(), o["prediction"].to_numpy()
    return float((_binary_point(y, p, threshold) if task == "binary" else _regression_point(y, p))[metric])


def _paired(oof_a: pd.DataFrame, oof_b: pd.DataFrame, *, task: str, metric: str, threshold: float,
            n_boot: int, seed: int) -> dict:
    """``metric`` of A minus B on the same patients (first repeat), with its 95 % interval."""
    from pmed.evaluate.cv import _binary_point, _regression_point

    a = oof_a[oof_a["repeat"] == 0].set_index("patient_id").sort_index()
    b = oof_b[oof_b["repeat"] == 0].set_index("patient_id").reindex(a.index)
    y, pa, pb = a["outcome"].to_numpy(), a["prediction"].to_numpy(), b["prediction"].to_numpy()
    if task == "binary" and metric == "auroc":
        from pmed.evaluate.discrimination import delong_test

        t = delong_test(y, pa, pb)
        return {"estimate": t["difference"], "ci_low": t["ci_low"], "ci_high": t["ci_high"],
                "p_value": t["p_value"], "method": "paired DeLong (pROC roc.test, paired)"}

    def point(idx):
        if task == "binary":
            return _binary_point(y[idx], pa[idx], threshold)[metric] - _binary_point(y[idx], pb[idx], threshold)[metric]
        return _regression_point(y[idx], pa[idx])[metric] - _regression_point(y[idx], pb[idx])[metric]

    rng = np.random.default_rng(seed)
    n = len(y)
    est = float(point(np.arange(n)))
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if task == "binary" and len(np.unique(y[idx])) < 2:
            continue
        boots.append(point(idx))
    lo, hi = (np.nanpercentile(boots, [2.5, 97.5]) if boots else (np.nan, np.nan))
    return {"estimate": est, "ci_low": float(lo), "ci_high": float(hi),
            "method": f"paired bootstrap of patients ({len(boots)} resamples), percentile interval"}


def run_study_fusion(study, cohort, X: pd.DataFrame, y: pd.Series, splits, *, reporter) -> dict:
    """Evaluate the study's fusion section with the study's splits.

    Returns
    -------
    dict
        ``label`` (the fused candidate's name), ``columns`` (its features), ``estimator`` (unfitted),
        ``result`` (its entry of ``metrics['models']``), ``oof`` (its out-of-fold predictions) and
        ``metrics`` (``metrics.json``'s ``fusion``).
    """
    from pmed.evaluate.cv import cv_metrics
    from pmed.fusion import availability

    fs, ev, task = study.fusion, study.evaluation, study.target.task
    mods = fusion_modalities(study, cohort, X)
    cols = [c for c in X.columns if any(c in v for v in mods.values())]
    Xf = X[cols]
    have = availability(Xf, mods)
    none = int((~have.any(axis=1)).sum())
    if none == len(Xf):
        raise StudyError("no patient has any of the fusion modalities", where="key fusion.modalities",
                         fix="check the modalities' columns and blocks")
    metric = ev.select_by
    n_boot = ev.bootstrap

    def evaluate(est, Xm, *, masks=None):
        oof, masked = _fold_predictions(est, Xm, y, splits, task=task, masks=masks, seed=study.seed,
                                        on_fold=lambda: reporter.advance("cross-validating the fusion"))
        return oof, cv_metrics(oof, task=task, threshold=ev.threshold, n_boot=n_boot, seed=study.seed), masked

    def build(names):
        sub = {m: mods[m] for m in names}
        return build_fusion(fs.method, sub, family=fs.family, task=task, X=Xf, params=fs.params,
                            inner_folds=fs.inner_folds, seed=study.seed)

    fused = build(list(mods))
    fused_oof, fused_m, masked = evaluate(fused, Xf, masks=mods)
    single, single_oof = {}, {}
    for m, c in mods.items():
        # joint: the params are the network's; each modality alone is the family with its defaults
        est = modality_model(m, c, family=fs.family, task=task, X=Xf,
                             params=fs.params if fs.method != "joint" else {}, seed=study.seed)
        single_oof[m], single[m], _ = evaluate(est, Xf[c])
    without, gain = {}, {}
    for m in mods:
        rest = [k for k in mods if k != m]
        if len(rest) == 1:  # the fused model without m is the other modality alone
            oof_w, without[m] = single_oof[rest[0]], single[rest[0]]
        else:
            rest_cols = [c for c in cols if any(c in mods[k] for k in rest)]
            oof_w, without[m], _ = evaluate(build(rest), Xf[rest_cols])
        gain[m] = _paired(fused_oof, oof_w, task=task, metric=metric, threshold=ev.threshold, n_boot=n_boot,
                          seed=study.seed)
    from pmed.evaluate.metrics import GREATER_IS_BETTER

    sign = 1 if GREATER_IS_BETTER[metric] else -1
    best = max(single, key=lambda k: sign * np.nan_to_num(single[k]["metrics"][metric]["estimate"], nan=-np.inf))
    paired = {**_paired(fused_oof, single_oof[best], task=task, metric=metric, threshold=ev.threshold,
                        n_boot=n_boot, seed=study.seed), "metric": metric, "best_single": best}
    drops = {}
    full = _point(fused_oof, task=task, metric=metric, threshold=ev.threshold)
    for m, oof_m in masked.items():
        part = _point(oof_m, task=task, metric=metric, threshold=ev.threshold)
        drops[m] = {"fraction": MASK_FRACTION, "metric": metric,
                    "n_masked": int(oof_m.loc[oof_m["repeat"] == 0, "masked"].sum()),
                    "full": full, "masked": part, "drop": full - part,
                    "conformal": _conformal_without(oof_m, task=task, level=ev.confidence_level)}
    label = FUSED_LABEL[fs.method]
    result = {"family": f"fusion:{fs.method}", "params": fs.params, "class_weight": None, "grid": None,
              "calibration": None, "n_features": int(Xf.shape[1]), **fused_m}
    metrics = {"method": fs.method, "family": fs.family, "modalities": mods,
               "availability": {m: int(have[m].sum()) for m in mods}, "n_without_any": none,
               "single": single, "fused": fused_m, "without": without, "paired": paired, "gain_of": gain,
               "masked": drops}
    return {"label": label, "columns": cols, "estimator": fused, "result": result,
            "oof": fused_oof.assign(model=label), "metrics": metrics}
