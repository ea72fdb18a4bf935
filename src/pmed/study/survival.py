"""The study task ``survival``: time-to-event targets, cross-validated like the other tasks.

``target: {task: survival, time: COL, event: COL, horizons: [t1, t2, …], time_unit: days}``
(event 1 = event, 0 = censored). :func:`run_survival` is what :func:`pmed.study.run_study`
runs for such a study. Folds are stratified by the event indicator; every candidate is fitted
inside each training fold (its preprocessing too: no leakage) and predicts the test fold's
``risk`` (higher = worse, shorter survival) and ``surv_<t>`` = P(event-free at t) at each
horizon. The out-of-fold predictions are evaluated by :func:`pmed.survival.evaluation.evaluate_survival`
(Harrell's and Uno's C, td-AUC, Brier, IBS, calibration); the best model by
``evaluation.select_by`` (Harrell's C by default) is refitted on every patient and saved as
the bundle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pmed import __version__
from pmed.cohort import Cohort
from pmed.errors import OptionError, StudyError, ValidationError, shorten
from pmed.io._atomic import write_text_atomic
from pmed.io.jsonio import to_json
from pmed.io.tables import write_table
from pmed.monitor.reference import reference_summaries
from pmed.progress import Reporter
from pmed.schema import TableSchema
from pmed.study.run import model_features, study_groups
from pmed.study.spec import Study

__all__ = ["survival_cohort", "run_survival", "surv_name", "survival_importance", "survival_predictions"]

#: the study's out-of-fold columns besides ``surv_<t>``
OOF_COLUMNS = ["patient_id", "model", "repeat", "fold", "time", "event", "risk"]


def surv_name(h: float) -> str:
    """The column of the survival probability at horizon ``h``: ``surv_365``, ``surv_182.5``.

    Formatted as :mod:`pmed.survival.metrics` keys horizons (``{h:g}``), so that
    :func:`pmed.survival.evaluation.surv_columns` reads the horizon back exactly.
    """
    return f"surv_{float(h):g}"


def _columns_hint(columns) -> str:
    cols = [shorten(str(c), 30) for c in columns]
    return ", ".join(cols[:10]) + (f" … ({len(cols)} columns)" if len(cols) > 10 else "")


def survival_cohort(study: Study, schema: TableSchema | None, outcomes: list[str]) -> Cohort:
    """The cohort of a survival study read from its patient file.

    The time and event columns are looked up first, so that a missing one is named by its
    study key (``target.event``) rather than as an unknown outcome.

    Raises
    ------
    StudyError
        ``target.time`` or ``target.event`` is not a column of the patient table.
    """
    from pmed.io.tables import read_table

    d, t = study.data, study.target
    path = study.path(d.patients)
    df = read_table(path, schema=schema, id=d.id)
    for key in ("time", "event"):
        col = getattr(t, key)
        if col not in df.columns:
            raise StudyError(f"target.{key} column {shorten(col)} is not in the patient table",
                             file=study.source_path, where=f"key target.{key}",
                             fix=f"name a column of {Path(path).name}: {_columns_hint(df.columns)}")
    if schema is None:
        schema = TableSchema.infer(df.reset_index(), id=df.index.name or "patient_id")
    return Cohort(df, outcomes=outcomes, schema=schema)


def _outcome(study: Study, cohort: Cohort, source: str | None) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Checked follow-up times, events and horizons."""
    from pmed.survival._data import check_survival_data
    from pmed.survival.metrics import check_horizons

    t = study.target
    for key in ("time", "event"):
        col = getattr(t, key)
        if col not in cohort.outcomes.columns:
            raise StudyError(f"target.{key} column {shorten(col)} is not among the data set's outcomes",
                             file=study.source_path, where=f"key target.{key}",
                             fix=f"available outcomes: {_columns_hint(cohort.outcomes.columns) or '(none)'}")
    # missing times or events are refused, not dropped: in a survival table they are almost
    # always a lost follow-up date, and dropping them would bias towards complete records
    time, event = check_survival_data(cohort.target(t.time), cohort.target(t.event), source=source,
                                      time_col=t.time, event_col=t.event)
    try:
        hs = check_horizons(time, event, t.horizons or [], source=None, time_col=t.time)
    except OptionError as e:
        raise StudyError(e.message, file=study.source_path, where="key target.horizons", fix=e.fix) from None
    return time, event, hs


def _splits(study: Study, time: np.ndarray, event: np.ndarray, groups, hs: list[float]):
    """Folds stratified by the event indicator (unstratified when there are too few of a kind)."""
    from pmed.evaluate.cv import make_splits

    ev = study.evaluation
    strata = event.astype(int)
    stratified = int(np.bincount(strata, minlength=2).min()) >= ev.folds
    splits = make_splits(strata if stratified else time, task="binary" if stratified else "continuous",
                         folds=ev.folds, repeats=ev.repeats, groups=groups, seed=study.seed)
    # a model has no survival estimate beyond its training patients' last follow-up
    for r, f, tr, _ in splits:
        last = float(time[tr].max())
        if hs[-1] > last:
            raise StudyError(f"horizon {hs[-1]:g} is beyond the last follow-up time ({last:g}) of the training "
                             f"patients of fold {f + 1} (repeat {r + 1}): no model can predict survival there",
                             file=study.source_path, where="key target.horizons",
                             fix=f"choose horizons below {last:g}, or use fewer folds")
    return splits, stratified


def survival_predictions(model, X: pd.DataFrame, horizons: list[float]) -> pd.DataFrame:
    """``risk`` and ``surv_<t>`` of a fitted survival pipeline for the rows of ``X``."""
    from pmed.survival.models import predict_survival

    risk = np.asarray(model.predict(X), dtype=float)
    S = predict_survival(model, X, horizons)
    out = pd.DataFrame({"risk": risk}, index=X.index)
    for j, h in enumerate(horizons):
        out[surv_name(h)] = S[:, j]
    return out


def survival_importance(model, X: pd.DataFrame, y: np.ndarray, *, seed: int = 0, n_repeats: int = 3,
                        max_rows: int = 500) -> pd.DataFrame:
    """Permutation importance of each input feature on Harrell's C.

    The fitted pipeline's ``score`` is Harrell's C, so the importance of a feature is the drop
    in C when its column is shuffled (in the input, before preprocessing: one value per input
    feature), averaged over ``n_repeats`` shuffles of at most ``max_rows`` rows.

    Returns
    -------
    pandas.DataFrame
        ``feature, importance, rank, method`` as :func:`pmed.models.importance.feature_importance`.
    """
    from sklearn.inspection import permutation_importance

    rows = np.arange(len(X))
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    r = permutation_importance(model, X.iloc[rows], y[rows], n_repeats=n_repeats, random_state=seed, n_jobs=1)
    df = pd.DataFrame({"feature": X.columns.astype(str), "importance": r.importances_mean})
    df = df.sort_values(["importance", "feature"], ascending=[False, True], kind="mergesort")
    df["rank"] = np.arange(1, len(df) + 1)
    df["method"] = f"permutation on Harrell's C (n_repeats={n_repeats}, {len(rows)} training rows)"
    return df.reset_index(drop=True)


def _fold_spread(oof: pd.DataFrame) -> dict:
    """Harrell's C in each fold: mean and SD, the number CV users expect beside the pooled one."""
    from pmed.survival.metrics import harrell_c

    vals = []
    for _, g in oof.groupby(["repeat", "fold"]):
        if g["event"].sum() == 0:
            continue
        vals.append(harrell_c(g["time"].to_numpy(), g["event"].to_numpy().astype(bool), g["risk"].to_numpy())["estimate"])
    v = np.asarray(vals, dtype=float)
    return {"fold_mean": float(np.mean(v)) if len(v) else float("nan"),
            "fold_sd": float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"), "n_folds": int(len(v))}


def run_survival(study: Study, out_dir: Path, reporter: Reporter):
    """Run a ``task: survival`` study into ``out_dir`` (a staging folder); see :func:`pmed.study.run_study`."""
    import warnings

    from sklearn.base import clone

    from pmed.models.zoo import make_model
    from pmed.study.bundle import save_bundle
    from pmed.study.run import (
        StudyResult,
        _feature_specs,
        _reference_values,
        load_cohort,
    )
    from pmed.survival.evaluation import evaluate_survival, write_survival_evaluation
    from pmed.survival.metrics import harrell_c
    from pmed.survival.models import cox_coefficients, make_surv_y

    t, ev = study.target, study.evaluation
    cohort = load_cohort(study)
    source = str(study.path(study.data.patients)) if study.data.patients else None
    time, event, hs = _outcome(study, cohort, source)
    y = make_surv_y(time, event, time_col=t.time, event_col=t.event)
    X = cohort.features(study.features.blocks, include=study.features.include, exclude=study.features.exclude)
    if ev.group and ev.group in X.columns:
        X = X.drop(columns=[ev.group])
    y_effects = None
    if study.treatment is not None:  # a bad treatment section is refused before any fitting
        from pmed.study.effects import check_study_effects, survival_effect_outcome

        # the outcome of the effects: each patient's pseudo-observation of the event by the horizon
        y_effects = survival_effect_outcome(study, time, event, X.index)
        check_study_effects(study, cohort, X, y_effects, source=source)
    groups = study_groups(study, cohort, X)
    splits, stratified = _splits(study, time, event, groups, hs)
    reporter.start(len(study.models) * (len(splits) + 1) + 2)

    def features_of(spec) -> pd.DataFrame:
        return model_features(spec, X, cohort)

    def build(spec, Xm: pd.DataFrame):
        return make_model(spec.family, task="survival", X=Xm, params=study.model_params(spec), seed=study.seed)

    for spec in study.models:  # bad params or features fail before any fitting
        build(spec, features_of(spec))

    results, oofs, evaluations = {}, [], {}
    for spec in study.models:
        Xm = features_of(spec)
        pipe = build(spec, Xm)
        parts = []
        for r, f, tr, te in splits:
            try:
                est = clone(pipe).fit(Xm.iloc[tr], y[tr])
            except ValidationError as e:
                # a fit can fail in one fold only (a rare level without events there): say which
                raise ValidationError([f"model {spec.label!r}, training patients of fold {f + 1}"
                                       f"{f' (repeat {r + 1})' if ev.repeats > 1 else ''}: {p}" for p in e.problems],
                                      file=e.file, fix=e.fix) from None
            except (ValueError, TypeError) as e:
                if isinstance(e, OptionError):
                    raise
                raise StudyError(f"model {spec.label!r} failed to fit: {shorten(str(e), 200)}", where="key models",
                                 fix="check its params against docs/survival.md") from None
            pred = survival_predictions(est, Xm.iloc[te], hs)
            parts.append(pd.concat([pd.DataFrame({"patient_id": Xm.index[te], "repeat": r, "fold": f,
                                                  "time": time[te], "event": event[te].astype(int)}),
                                    pred.reset_index(drop=True)], axis=1))
            reporter.advance(f"cross-validating {spec.label}")
        oof = (pd.concat(parts, ignore_index=True)
               .sort_values(["repeat", "patient_id"], kind="mergesort", ignore_index=True))
        first = oof[oof["repeat"] == 0]
        with warnings.catch_warnings():
            # "few at risk after a horizon" was said once for the whole cohort already
            from pmed.survival._data import SurvivalWarning

            warnings.simplefilter("ignore", SurvivalWarning)
            # calibration intervals refit a Cox model per resample and horizon: bootstrapped
            # for the selected model only (below), point estimates for every candidate
            m, tables = evaluate_survival(first, time="time", event="event", score="risk", horizons=hs,
                                          n_boot=ev.bootstrap, seed=study.seed, calibration_boot=0)

        repeats_c = [harrell_c(g["time"].to_numpy(), g["event"].to_numpy().astype(bool),
                               g["risk"].to_numpy())["estimate"] for _, g in oof.groupby("repeat")]
        metrics = {k: m[k] for k in ("harrell_c", "uno_c", "td_auc", "brier", "ibs", "calibration")}
        metrics["harrell_c"] = {**metrics["harrell_c"], **_fold_spread(oof),
                                "repeats": repeats_c, "repeat_mean": float(np.mean(repeats_c))}
        results[spec.label] = {"family": spec.family, "params": spec.params, "n_features": int(Xm.shape[1]),
                               "metrics": metrics, "decision_curve": m.get("decision_curve"),
                               "notes": m.get("notes", []), "n": int(len(first)), "n_repeats": ev.repeats}
        evaluations[spec.label] = (m, tables)
        oofs.append(oof.assign(model=spec.label))
        reporter.advance(f"evaluated {spec.label}")

    sel_metric = ev.select_by
    scores = {k: v["metrics"][sel_metric]["estimate"] for k, v in results.items()}
    # higher is better for both C-indices; ties go to the model listed first
    selected = max(scores, key=lambda k: (np.nan_to_num(scores[k], nan=-np.inf), -list(scores).index(k)))
    sel_spec = next(s for s in study.models if s.label == selected)
    if ev.bootstrap:
        sel_first = oofs[list(results).index(selected)]
        with warnings.catch_warnings():
            from pmed.survival._data import SurvivalWarning

            warnings.simplefilter("ignore", SurvivalWarning)
            m, tables = evaluate_survival(sel_first[sel_first["repeat"] == 0], time="time", event="event",
                                          score="risk", horizons=hs, n_boot=ev.bootstrap, seed=study.seed)
        evaluations[selected] = (m, tables)
        results[selected]["metrics"]["calibration"] = m["calibration"]

    Xs = features_of(sel_spec)
    final = build(sel_spec, Xs).fit(Xs, y)
    importance = survival_importance(final, Xs, y, seed=study.seed)
    from pmed.survival.intervals import interval_terms as make_interval_terms

    # what each new patient's interval needs (coxnet/gbsa: bootstrap refits kept on `final`;
    # None with interval_bootstrap: 0), and the cohort's Kaplan–Meier curve the patient
    # reports draw each patient's curve against
    # a gbsa refit is a whole boosting fit (about 90 s on flchain's 7,874 patients at 100 stages):
    # 50 of them by default would dwarf the study, so gbsa's intervals are asked for explicitly
    n_boot = ev.interval_bootstrap if ev.interval_bootstrap is not None else (0 if sel_spec.family == "gbsa" else 50)
    interval_terms = make_interval_terms(final, Xs, time, event, hs, n_boot=n_boot, seed=study.seed)
    km_curve = _km_curve(time, event)
    reporter.advance(f"refitted {selected} on all {len(Xs)} patients")

    # Cox coefficients of every cox candidate refitted on all patients (the selected model's own)
    coefs = []
    for spec in study.models:
        if spec.family != "cox":
            continue
        fit = final if spec.label == selected else build(spec, features_of(spec)).fit(features_of(spec), y)
        coefs.append(cox_coefficients(fit).assign(model=spec.label))
    coefficients = (pd.concat(coefs, ignore_index=True)[["model", "feature", "coef", "se", "hazard_ratio",
                                                         "ci_low", "ci_high", "p"]] if coefs else None)

    metrics_out = {
        "pmed_version": __version__,
        "study": study.name,
        "task": "survival",
        "target": t.label,
        "time": t.time,
        "event": t.event,
        "horizons": hs,
        "time_unit": t.time_unit,
        "sign_convention": "risk higher = worse (shorter survival); surv_<t> = P(event-free at t)",
        "n_patients": int(len(time)),
        "n_events": int(event.sum()),
        "n_censored": int((~event).sum()),
        "n_excluded_missing_outcome": 0,
        "n_features": int(Xs.shape[1]),
        "cv": {"folds": ev.folds, "repeats": ev.repeats, "group": ev.group, "seed": study.seed,
               "stratified": bool(stratified), "stratified_by": t.event if stratified else None,
               "bootstrap_resamples": ev.bootstrap},
        "select_by": sel_metric,
        "selected_model": selected,
        "models": results,
    }
    metrics_out["comparisons"] = _paired_comparisons(oofs)
    comparison = _comparison_table(results, hs)
    oof_all = pd.concat(oofs, ignore_index=True)[OOF_COLUMNS + [surv_name(h) for h in hs]]
    sel_first = oof_all[(oof_all["model"] == selected) & (oof_all["repeat"] == 0)]

    input_cols = [c for c in Xs.columns if c in cohort.patients.columns]
    in_schema = TableSchema(id=cohort.patients.index.name or study.data.id,
                            columns=dict(_feature_specs(Xs[input_cols], cohort.schema).items()))
    bundle_path = save_bundle(
        out_dir / "model", final, task="survival", target=t.label, X=Xs,
        y=pd.Series(np.column_stack([time, event]).ravel()),
        feature_specs=_feature_specs(Xs, cohort.schema), input_schema=in_schema,
        blocks={n: str(study.path(p)) for n, p in study.data.blocks.items()
                if study.features.blocks is None or n in study.features.blocks},
        metrics=results[selected], study_text=study.source_text,
        extra={"model": {"name": selected, "family": sel_spec.family, "params": sel_spec.params},
               "reference_values": _reference_values(Xs),
               "conformal": None,
               "population_predictions": np.quantile(sel_first["risk"], np.linspace(0, 1, 101)).tolist(),
               # what pmed monitor compares new patients with (drift of features and risk scores)
               "reference": reference_summaries(Xs, predictions=sel_first["risk"].to_numpy(), task="survival",
                                                metrics=results[selected]["metrics"]),
               "survival": {"time": t.time, "event": t.event, "horizons": hs, "time_unit": t.time_unit,
                            "max_follow_up": float(time.max()),
                            "columns": ["risk", *[c for h in hs for c in (
                                [surv_name(h), f"{surv_name(h)}_low", f"{surv_name(h)}_high"]
                                if interval_terms else [surv_name(h)])], "median_survival"],
                            "intervals": interval_terms, "km": km_curve}},
        treatment=None if y_effects is None else _treatment_options(study, cohort, Xs, y_effects),
    )

    if y_effects is not None:
        from pmed.study.effects import run_study_effects

        metrics_out["effects"] = run_study_effects(study, cohort, X, y_effects, out_dir / "effects", source=source)
    write_text_atomic(out_dir / "metrics.json", to_json(metrics_out))
    write_table(comparison, out_dir / "model_comparison.csv", index=False)
    write_table(oof_all, out_dir / "oof_predictions.csv", index=False)
    write_table(importance, out_dir / "feature_importance.csv", index=False)
    if coefficients is not None:
        write_table(coefficients, out_dir / "coefficients.csv", index=False)
    from pmed import plots

    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    plots.save(plots.importance_bar(importance, title=f"Feature importance — {selected}"),
               out_dir / "plots" / "importance.png")
    if ev.report:
        m, tables = evaluations[selected]
        write_survival_evaluation({**m, "model": selected}, tables, out_dir / "evaluation")
    reporter.advance("wrote outputs")
    return StudyResult(study=study, out_dir=out_dir, cohort=cohort, metrics=metrics_out, comparison=comparison,
                       oof=oof_all, importance=importance, selected=selected, bundle_path=bundle_path)


def _paired_comparisons(oofs: list[pd.DataFrame]) -> list[dict]:
    """Every pair of candidates on the same patients (first repeat): the gain in Harrell's C of
    the later-listed model over the earlier one, with the paired IJ interval of
    :func:`pmed.survival.metrics.harrell_c_difference`. Listing models cumulatively (clinical,
    + PRS, + wearables) makes consecutive pairs the gain of each modality."""
    from itertools import combinations

    from pmed.survival.metrics import harrell_c_difference

    firsts = [o[o["repeat"] == 0].set_index("patient_id") for o in oofs]
    out = []
    for a, b in combinations(firsts, 2):
        common = a.index.intersection(b.index)
        a_, b_ = a.loc[common], b.loc[common]
        if not a_["event"].any():
            continue
        d = harrell_c_difference(a_["time"].to_numpy(), a_["event"].to_numpy().astype(bool),
                                 b_["risk"].to_numpy(), a_["risk"].to_numpy())
        out.append({"model_a": str(a_["model"].iloc[0]), "model_b": str(b_["model"].iloc[0]),
                    "n": int(len(common)), "metric": "harrell_c", "difference": "model_b − model_a", **d})
    return out


def _km_curve(time: np.ndarray, event: np.ndarray) -> dict:
    """The cohort's Kaplan–Meier curve at its event times (``time``, ``surv``), for the reports."""
    from sksurv.nonparametric import kaplan_meier_estimator

    t, s = kaplan_meier_estimator(np.asarray(event, dtype=bool), np.asarray(time, dtype=float))
    keep = np.r_[True, np.diff(s) != 0]  # steps only: censoring times do not change the curve
    return {"time": t[keep].tolist(), "surv": s[keep].tolist()}


def _comparison_table(results: dict, hs: list[float]) -> pd.DataFrame:
    rows = []
    for name, r in results.items():
        m = r["metrics"]
        row = {"model": name, "family": r["family"]}
        cells = [("harrell_c", m["harrell_c"]), ("uno_c", m["uno_c"])]
        if m.get("ibs"):
            cells.append(("ibs", m["ibs"]))
        for h in hs:
            k = f"{h:g}"
            if k in m["td_auc"]:
                cells.append((f"td_auc_{k}", m["td_auc"][k]))
            if k in m["brier"]:
                cells.append((f"brier_{k}", m["brier"][k]))
        for key, v in cells:
            row[key] = round(v["estimate"], 4)
            row[f"{key}_ci_low"] = round(v["ci_low"], 4)
            row[f"{key}_ci_high"] = round(v["ci_high"], 4)
        rows.append(row)
    return pd.DataFrame(rows)


def _treatment_options(study: Study, cohort, X: pd.DataFrame, y_effects: pd.Series):
    """The bundle's treatment model on the pseudo-observations of the event by the effect horizon."""
    from pmed.study.effects import fit_treatment_options

    return fit_treatment_options(study, cohort, X, y_effects.reindex(X.index))
