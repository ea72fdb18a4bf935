"""Run a study: data → cohort → cross-validated candidates → best model → outputs and bundle.

Outputs written to ``DIR`` (each file atomically; see ``docs/outputs.md``):

- ``metrics.json``: every candidate's cross-validated metrics with CIs, the selection;
- ``model_comparison.csv``: one row per model, main metrics with CIs;
- ``oof_predictions.csv``: ``patient_id, model, repeat, fold, outcome, prediction``;
- ``feature_importance.csv``: ``feature, importance, rank, method`` for the selected model;
- ``model/``: the bundle of the selected model refitted on all patients;
- ``plots/*.png``: ROC, PR, confusion matrix, importance (binary); predicted vs observed,
  importance (continuous).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from pmed import __version__
from pmed.cohort import Cohort
from pmed.errors import StudyError, ValidationError, shorten
from pmed.evaluate.conformal import conformal_from_oof
from pmed.evaluate.cv import cv_metrics, make_splits, out_of_fold_predictions
from pmed.evaluate.metrics import GREATER_IS_BETTER
from pmed.io._atomic import atomic_dir, check_output_folder, write_text_atomic
from pmed.io.jsonio import to_json
from pmed.io.tables import write_table
from pmed.models.importance import feature_importance
from pmed.models.zoo import make_model
from pmed.monitor.reference import reference_summaries
from pmed.progress import Reporter, as_reporter
from pmed.schema import ColumnSpec, TableSchema, _infer_spec
from pmed.study.bundle import save_bundle
from pmed.study.spec import Study, load_study

__all__ = ["run_study", "load_cohort", "read_block", "StudyResult", "Reporter", "encode_target",
           "study_inputs", "is_study_output"]


@dataclass
class StudyResult:
    """What :func:`run_study` produced (also written to ``out_dir``)."""

    study: Study
    out_dir: Path
    cohort: Cohort
    metrics: dict
    comparison: pd.DataFrame
    oof: pd.DataFrame
    importance: pd.DataFrame
    selected: str
    bundle_path: Path


# ---------------------------------------------------------------------- data
def read_block(path: str | Path, *, id: str = "patient_id") -> tuple[pd.DataFrame, dict]:
    """Read one modality file into a patient-indexed table and its provenance.

    Kept for callers of the two-value form; see :func:`pmed.cohort.read_block`.
    """
    from pmed.cohort import read_block as _read

    b = _read(path, id=id)
    return b.data, b.provenance


def load_cohort(study: Study) -> Cohort:
    """Build the study's :class:`Cohort`: validated patient table, outcomes, and blocks."""
    d = study.data
    if d.dataset is not None:
        from pmed.datasets import load_dataset

        args = {k: v for k, v in d.dataset.items() if k != "name"}
        cohort = load_dataset(d.dataset["name"], **args)
    else:
        schema = TableSchema.read(study.path(d.schema_)) if d.schema_ else None
        own = study.target.outcome_columns
        outcomes = own + [c for c in d.outcomes if c not in own]
        if study.target.task == "survival":
            from pmed.study.survival import survival_cohort

            cohort = survival_cohort(study, schema, outcomes)
        else:
            cohort = Cohort.from_files(study.path(d.patients), schema=schema, outcomes=outcomes, id=d.id)
        cohort.sources["patients"] = str(study.path(d.patients))
    for name, p in d.blocks.items():
        table, prov = read_block(study.path(p), id=d.id)
        cohort.add_block(name, table, provenance=prov)
    return cohort


def encode_target(y: pd.Series, *, task: str, positive=None, source: str | None = None) -> pd.Series:
    """Check and encode the outcome: 0/1 for binary (``positive`` → 1), float for continuous."""
    if task == "continuous":
        v = pd.to_numeric(y.astype("object"), errors="coerce")
        if (v.isna() & y.notna()).any():
            raise ValidationError([f"outcome {y.name!r} has non-numeric values for a continuous target"],
                                  file=source, fix="use task: binary for categories, or fix the values")
        return v.astype(float)
    vals = pd.unique(y.dropna().astype("object"))
    if len(vals) != 2:
        raise ValidationError(
            [f"outcome {y.name!r} must have exactly two values for a binary target; found "
             f"{len(vals)}: {', '.join(map(shorten, vals[:6]))}{' …' if len(vals) > 6 else ''}"],
            file=source, fix="use task: continuous, or recode the outcome to two classes")
    if positive is None:
        for cand in (1, True, "1", "yes", "true"):
            if any(_same(v, cand) for v in vals):
                positive = cand
                break
        else:
            raise ValidationError([f"outcome {y.name!r}: cannot tell which of {', '.join(map(shorten, vals))} "
                                   "is the event"],
                                  file=source, fix="set target.positive in the study")
    if not any(_same(v, positive) for v in vals):
        raise ValidationError([f"target.positive {shorten(positive)} is not a value of {y.name!r} "
                               f"({', '.join(map(shorten, vals))})"],
                              file=source)
    out = y.astype("object").map(lambda v: np.nan if pd.isna(v) else float(_same(v, positive)))
    return out.astype(float)


def target_labels(y_raw: pd.Series, y: pd.Series) -> dict[str, Any]:
    """The training outcome's two values, as written (``{"negative": …, "positive": …}``), so
    that later outcomes can be checked against them (:func:`check_target_labels`)."""
    def first(code: float):
        v = y_raw[(y == code).to_numpy()].dropna()
        if not len(v):
            return None
        v = v.iloc[0]
        return v.item() if isinstance(v, np.generic) else v

    return {"negative": first(0.0), "positive": first(1.0)}


def check_target_labels(y: pd.Series, labels: Mapping | None, *, source: str | None = None) -> None:
    """Refuse an outcome whose values are not the two seen in training (``labels`` from the
    bundle's manifest; nothing is checked for a bundle that predates them).

    Raises
    ------
    pmed.errors.ValidationError
        Naming the values never seen in training and the training's two.
    """
    known = [v for v in (labels or {}).values() if v is not None]
    if not known:
        return
    vals = pd.unique(y.dropna().astype("object"))
    other = [v for v in vals if not any(_same(v, k) for k in known)]
    if other:
        shown = ", ".join(map(shorten, other[:6])) + (" …" if len(other) > 6 else "")
        raise ValidationError(
            [f"outcome {y.name!r} has values never seen in training: {shown} (training: "
             f"{shorten(labels.get('positive'))} = event, {shorten(labels.get('negative'))} = no event)"],
            file=source, fix="recode the outcome to the training's two values (missing values are skipped)")


def _same(a, b) -> bool:
    return str(a).strip().lower() in {str(b).strip().lower(), {"true": "1", "false": "0"}.get(str(b).lower(), "")} or (
        isinstance(a, (int, float, np.number, bool)) and isinstance(b, (int, float, bool)) and float(a) == float(b))


def _feature_specs(X: pd.DataFrame, schema: TableSchema | None,
                   text: tuple[str, ...] = ()) -> dict[str, ColumnSpec]:
    specs = {}
    for c in X.columns:
        if c in text:  # read as written (image paths): new patients bring values never seen
            specs[c] = ColumnSpec(type="string")
        elif schema is not None and c in schema.columns and schema.columns[c].type != "string":
            specs[c] = schema.columns[c]
        elif isinstance(X[c].dtype, pd.CategoricalDtype):
            specs[c] = ColumnSpec(type="category", categories=tuple(X[c].cat.categories))
        else:
            specs[c] = _infer_spec(X[c])
    return specs


def _text_columns(estimator) -> tuple[str, ...]:
    """Feature columns a fitted model reads as text (the CNN family's image paths)."""
    from pmed.models.importance import fitted_pipeline

    try:
        model = fitted_pipeline(estimator).steps[-1][1]
    except (AttributeError, TypeError, ValueError, IndexError):
        return ()
    col = getattr(model, "image_column_", None)
    return (col,) if col else ()


def _reference_metrics(metrics: dict, oof: pd.DataFrame, task: str) -> dict:
    """The validation metrics that monitoring compares later windows with; for a binary model
    with its out-of-fold calibration (intercept and slope, as per window in pmed monitor)."""
    if task != "binary":
        return metrics
    from pmed.evaluate.calibration import calibration_metrics

    cal = calibration_metrics(oof["outcome"].to_numpy(dtype=float), oof["prediction"].to_numpy(dtype=float),
                              n_boot=0)
    return {**metrics, **{k: cal[k] for k in ("calibration_in_the_large", "calibration_slope")}}


def _reference_values(X: pd.DataFrame, text: tuple[str, ...] = ()) -> dict:
    """Typical value of each feature (median / most frequent) for what-if explanations."""
    ref = {}
    for c in X.columns:
        s = X[c]
        if c in text or str(c).startswith("px|"):  # no typical image path, no what-if of one pixel
            ref[c] = None
        elif isinstance(s.dtype, pd.CategoricalDtype):
            m = s.mode(dropna=True)
            ref[c] = None if m.empty else str(m.iloc[0])
        else:
            ref[c] = None if s.notna().sum() == 0 else float(s.median())
    return ref


# ---------------------------------------------------------------------- run
def run_study(
    study: Study | str | Path,
    out_dir: str | Path,
    *,
    progress: Reporter | bool | None = None,
    reporter: Reporter | None = None,
    scheduler: str | Any | None = None,
    n_workers: int = 2,
) -> StudyResult:
    """Train and cross-validate every candidate, pick the best, write outputs and the bundle.

    Everything is written into a fresh folder beside ``out_dir`` that replaces ``out_dir`` whole
    at the end: a run that fails or is killed leaves the previous outputs (or none), never a
    folder mixing two runs, and outputs of an earlier study never linger beside new ones.

    Parameters
    ----------
    study
        A :class:`~pmed.study.spec.Study` or the path of its YAML.
    out_dir
        Output folder. It must be empty, absent, or the output of an earlier ``pmed run``
        (recognised by its ``metrics.json`` or ``model/``): it is replaced whole.
    progress
        ``True`` for a progress bar, or a :class:`pmed.progress.Reporter`; silent by default.
    reporter
        Older name of ``progress``.
    scheduler
        Fit the cross-validation splits of every candidate on a Dask cluster: ``"local"`` (a
        LocalCluster of ``n_workers`` processes, started and stopped here), a scheduler address
        (``tcp://head:8786``), or a ``dask.distributed.Client``. The outputs are the same as
        without it (see ``docs/scale.md``). Default: everything in this process.
    n_workers
        Worker processes of the LocalCluster of ``scheduler="local"``.

    Returns
    -------
    StudyResult
        With ``out_dir`` and ``bundle_path`` pointing at the final folder.

    Raises
    ------
    pmed.errors.InputError
        When no Dask scheduler answers at ``scheduler``.
    pmed.errors.MissingDependencyError
        When ``scheduler`` is given and dask is not installed (extra ``scale``).
    """
    if not isinstance(study, Study):
        study = load_study(study)
    else:
        _check_values(study)
    reporter = as_reporter(progress if progress is not None else reporter)
    if isinstance(scheduler, str):  # a typo is refused before any work
        from pmed.scale import check_scheduler

        check_scheduler(scheduler)
    final_dir = Path(out_dir)
    _check_output_folder(final_dir)
    # the swap deletes everything inside out_dir: a study file or data file there would go with it
    check_output_folder(final_dir, owned=lambda _: True, inputs=study_inputs(study), what="study output")
    with ExitStack() as stack:
        on_cluster = None
        if scheduler is not None:  # the client is made (or refused) before any data is read
            import joblib

            from pmed.scale import dask_client

            client = stack.enter_context(dask_client(scheduler, n_workers=n_workers))
            on_cluster = partial(joblib.parallel_config, backend="dask", client=client)
        with atomic_dir(final_dir) as work:
            result = _run_into(study, work, reporter, on_cluster=on_cluster)
    result.out_dir = final_dir
    result.bundle_path = final_dir / result.bundle_path.relative_to(work)
    return result


def _check_values(study: Study) -> None:
    """Check a :class:`Study` built or changed in Python as :func:`load_study` checks a file.

    Pydantic checks values when a study is made, not when a field is set later
    (``study.evaluation.folds = 1``): every value is checked again before any data is read.

    Raises
    ------
    OptionError
        Naming the key, as ``evaluation.folds: Input should be greater than or equal to 2``.
    """
    from pydantic import ValidationError as PydanticValidationError

    from pmed.errors import OptionError
    from pmed.study.spec import _fmt_loc

    try:
        Study.model_validate(study.model_dump(by_alias=True))
    except PydanticValidationError as e:
        err = e.errors()[0]
        raise OptionError(f"study key {_fmt_loc(tuple(err['loc']))}: {err['msg'].removeprefix('Value error, ')}",
                          fix="see docs/study.md for the allowed values") from None


def study_inputs(study: Study) -> list[Path]:
    """The files a study reads: its YAML, patient table, schema and block files or folders."""
    d = study.data
    paths = [study.source_path] if study.source_path is not None else []
    paths += [study.path(p) for p in (d.patients, d.schema_) if p]
    paths += [study.path(p) for p in d.blocks.values()]
    if study.fusion is not None:
        paths += [study.path(m.images) for m in study.fusion.modalities.values() if m.images]
    return paths


def is_study_output(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier ``pmed run`` output (its metrics or its model bundle)."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        if isinstance(metrics, dict) and "selected_model" in metrics and "models" in metrics:
            return True
    except (OSError, ValueError):
        pass
    try:  # a run interrupted before metrics.json: its bundle is written first
        manifest = json.loads((folder / "model" / "manifest.json").read_text(encoding="utf-8"))
        return isinstance(manifest, dict) and manifest.get("format") == "pmed.model"
    except (OSError, ValueError):
        return False


def _check_output_folder(out: Path) -> None:
    """Refuse to replace a folder that holds something other than an earlier study's outputs."""
    if out.exists() and not out.is_dir():
        raise StudyError("the output path is a file", file=out, fix="give a folder for --out")
    if out.is_dir() and any(out.iterdir()):
        if not is_study_output(out):
            raise StudyError(
                "the output folder is not empty and does not hold an earlier study's outputs; "
                "pmed replaces the output folder whole", file=out,
                fix="choose a new or empty folder for --out")


def study_groups(study: Study, cohort, X: pd.DataFrame) -> np.ndarray | None:
    """The ``evaluation.group`` label of each row of ``X`` (``None`` without a group key).

    Also the shared check that features remain: every task calls this before splitting.
    """
    if X.shape[1] == 0:
        raise StudyError("no features left after include/exclude", where="key features",
                         fix="list the feature blocks or columns to use")
    group = study.evaluation.group
    if not group:
        return None
    if group not in cohort.patients.columns:
        raise StudyError(f"evaluation.group column {group!r} not found", where="key evaluation.group")
    return cohort.patients.loc[X.index, group].astype(str).to_numpy()


def model_features(spec, X: pd.DataFrame, cohort: Cohort | None = None) -> pd.DataFrame:
    """The columns of ``X`` a candidate model uses (default all).

    ``models[].blocks`` keeps the columns of the named tables (``patients`` is the clinical
    table: ``blocks: [patients]`` is the clinical-only baseline), ``models[].features`` names
    columns; given both, the model uses the union, in the order of ``X``.
    """
    if spec.features is None and spec.blocks is None:
        return X
    missing = [c for c in spec.features or [] if c not in X.columns]
    if missing:
        raise StudyError(f"model {spec.label!r} names unknown features {', '.join(missing)}",
                         where="key models[].features", fix="name columns of the feature table")
    keep = set(spec.features or [])
    for name in spec.blocks or []:
        table = None
        if cohort is not None:
            table = cohort.patients if name == "patients" else getattr(cohort.blocks.get(name), "data", None)
        if table is None:
            known = ["patients", *(cohort.blocks if cohort is not None else [])]
            raise StudyError(f"model {spec.label!r} names unknown block {shorten(name)}",
                             where="key models[].blocks", fix=f"use among: {', '.join(known)}")
        cols = [c for c in table.columns if c in X.columns]
        if not cols:
            raise StudyError(f"model {spec.label!r}: block {shorten(name)} has no column among the study's "
                             "features", where="key models[].blocks",
                             fix="add the block to features.blocks, or check features.exclude")
        keep.update(cols)
    return X[[c for c in X.columns if c in keep]]


def _run_into(study: Study, out_dir: Path, reporter: Reporter, *,
              on_cluster: Callable[[], AbstractContextManager] | None = None) -> StudyResult:
    """The whole run, into ``out_dir``; each candidate's cross-validation inside ``on_cluster()``
    (``joblib.parallel_config(backend="dask", ...)`` with ``--scheduler``), the rest in this process."""
    task, ev = study.target.task, study.evaluation
    if task == "survival":
        from pmed.study.survival import run_survival

        return run_survival(study, out_dir, reporter)

    cohort = load_cohort(study)
    source = str(study.path(study.data.patients)) if study.data.patients else None
    y_all = encode_target(cohort.target(study.target.column), task=task, positive=study.target.positive,
                          source=source)
    X_all = cohort.features(study.features.blocks, include=study.features.include,
                            exclude=study.features.exclude)
    if ev.group and ev.group in X_all.columns:
        X_all = X_all.drop(columns=[ev.group])
    keep = y_all.notna().to_numpy()
    X, y = X_all.loc[keep], y_all.loc[keep]
    if study.treatment is not None:  # a bad treatment section is refused before any fitting
        from pmed.study.effects import check_study_effects

        check_study_effects(study, cohort, X_all, y_all, source=source)
    groups = study_groups(study, cohort, X)
    splits = make_splits(y.to_numpy(), task=task, folds=ev.folds, repeats=ev.repeats,
                         groups=groups, seed=study.seed)
    n_fusion = 0
    if study.fusion is not None:  # fused, each modality alone, and without each (beyond two modalities)
        m = len(study.fusion.modalities)
        n_fusion = (1 + m + (m if m > 2 else 0)) * len(splits)
    reporter.start(len(study.models) * (len(splits) + 1) + 2 + n_fusion)

    def features_of(spec) -> pd.DataFrame:
        return model_features(spec, X, cohort)

    def build(spec, Xm: pd.DataFrame):
        # the study's imbalance handling (class_weight, in-fold recalibration) is applied here
        est = make_model(spec.family, task=task, X=Xm, params=study.model_params(spec), seed=study.seed)
        if spec.grid:
            from pmed.evaluate.tuning import tuned

            est = tuned(est, spec.grid, task=task, inner_folds=ev.inner_folds, seed=study.seed)
        calibration = study.calibration_of(spec)
        if calibration:
            if task != "binary":
                raise StudyError("calibration applies to binary targets only", where="key models[].calibration")
            from pmed.evaluate.calibration import recalibrate

            est = recalibrate(est, method=calibration, cv=3 if spec.calibration else study.imbalance.cv)
        return est

    for spec in study.models:  # a family that cannot use these features fails before any fitting
        build(spec, features_of(spec))
    results, oofs = {}, []
    for spec in study.models:
        Xm = features_of(spec)
        pipe = build(spec, Xm)
        try:
            with (on_cluster or nullcontext)():
                oof = out_of_fold_predictions(
                    pipe, Xm, y, splits, task=task,
                    on_fold=lambda *_, s=spec: reporter.advance(f"cross-validating {s.label}"))
        except (ValueError, TypeError) as e:
            raise StudyError(f"model {spec.label!r} failed to fit: {e}", where="key models",
                             fix="check its params against the estimator's documentation") from None
        m = cv_metrics(oof, task=task, threshold=ev.threshold, n_boot=ev.bootstrap, seed=study.seed)
        if task == "binary":
            m["per_class"] = _per_class(oof[oof["repeat"] == 0], ev.threshold)
        results[spec.label] = {"family": spec.family, "params": spec.params,
                               "class_weight": study.model_params(spec).get("class_weight"),
                               "grid": spec.grid, "calibration": study.calibration_of(spec),
                               "n_features": int(Xm.shape[1]), **m}
        oofs.append(oof.assign(model=spec.label))
        reporter.advance(f"evaluated {spec.label}")

    fusion = None
    if study.fusion is not None:  # the fused model is a candidate; its modalities are judged beside it
        from pmed.study.fusion import add_image_blocks, run_study_fusion

        # images (fusion modalities only): pixel columns beside the features, for the fusion alone
        Xf = add_image_blocks(study, cohort, X)
        fusion = run_study_fusion(study, cohort, Xf, y, splits, reporter=reporter)
        if fusion["label"] in results:
            raise StudyError(f"a model is named {fusion['label']!r}, the name of the fused model",
                             where="key models[].name", fix="rename that model")
        results[fusion["label"]] = fusion["result"]
        oofs.append(fusion["oof"])

    sel_metric = ev.select_by
    sign = 1 if GREATER_IS_BETTER[sel_metric] else -1
    scores = {k: v["metrics"][sel_metric]["estimate"] for k, v in results.items()}
    selected = max(scores, key=lambda k: (sign * np.nan_to_num(scores[k], nan=-np.inf), -list(scores).index(k)))

    sel_oof = oofs[list(results).index(selected)]
    sel_oof = sel_oof[sel_oof["repeat"] == 0]
    conformal = conformal_from_oof(sel_oof["outcome"], sel_oof["prediction"], sel_oof["fold"], task=task,
                                   confidence_level=ev.confidence_level)

    if fusion is not None and selected == fusion["label"]:
        # a patient who lacks a modality gets the interval calibrated on validation patients
        # whose modality was masked (pmed.study.fusion), never narrower than the full one
        conformal["modalities"] = list(fusion["metrics"]["modalities"])
        conformal["without"] = {m: d["conformal"]["quantile"] for m, d in fusion["metrics"]["masked"].items()
                                if d.get("conformal")}
        X = Xf[fusion["columns"]]
        final = clone(fusion["estimator"])
        sel_family, sel_params = fusion["result"]["family"], study.fusion.params
    else:
        sel_spec = next(s for s in study.models if s.label == selected)
        X = features_of(sel_spec)
        final = build(sel_spec, X)
        sel_family, sel_params = sel_spec.family, sel_spec.params
    final.fit(X, y.astype(int) if task == "binary" else y)
    from pmed.privacy.dp import privacy_budget

    privacy = privacy_budget(final)  # a differentially private family's spent budget, or None
    text = _text_columns(final)
    importance = feature_importance(final, X, y, seed=study.seed)
    reporter.advance(f"refitted {selected} on all {len(X)} patients")

    metrics = {
        "pmed_version": __version__,
        "study": study.name,
        "task": task,
        "target": study.target.column,
        "n_patients": int(len(y)),
        "n_excluded_missing_outcome": int((~keep).sum()),
        **({"n_events": int(y.sum()), "prevalence": float(y.mean())} if task == "binary" else {}),
        "n_features": int(X.shape[1]),
        "cv": {"folds": ev.folds, "repeats": ev.repeats, "group": ev.group, "seed": study.seed,
               "stratified": task == "binary", "bootstrap_resamples": ev.bootstrap},
        **({"imbalance": study.imbalance_summary()} if task == "binary" else {}),
        "select_by": sel_metric,
        "selected_model": selected,
        "conformal": conformal,
        "models": results,
        **({"fusion": fusion["metrics"]} if fusion is not None else {}),
    }
    comparison = _comparison_table(results, task)
    oof_all = pd.concat(oofs, ignore_index=True)[
        ["patient_id", "model", "repeat", "fold", "outcome", "prediction"]]

    input_cols = [c for c in X.columns if c in cohort.patients.columns]
    in_schema = TableSchema(
        id=cohort.patients.index.name or study.data.id,
        columns={c: spec for c, spec in _feature_specs(X[input_cols], cohort.schema, text).items()},
    )
    bundle_path = save_bundle(
        out_dir / "model", final, task=task, target=study.target.column, X=X, y=y,
        feature_specs=_feature_specs(X, cohort.schema, text), input_schema=in_schema,
        blocks={**{n: str(study.path(p)) for n, p in study.data.blocks.items()
                   if study.features.blocks is None or n in study.features.blocks},
                **(_image_blocks(study) if fusion is not None and selected == fusion["label"] else {})},
        metrics=results[selected], study_text=study.source_text, threshold=ev.threshold,
        extra={"model": {"name": selected, "family": sel_family, "params": sel_params},
               "reference_values": _reference_values(X, text),
               "conformal": conformal,
               "population_predictions": np.quantile(sel_oof["prediction"], np.linspace(0, 1, 101)).tolist(),
               # what pmed monitor compares new patients with: summaries only, no patient rows
               "reference": reference_summaries(X, predictions=sel_oof["prediction"].to_numpy(), task=task,
                                                metrics=_reference_metrics(results[selected]["metrics"], sel_oof,
                                                                           task)),
               "positive": study.target.positive,
               **({"privacy": privacy} if privacy is not None else {}),
               "target_labels": target_labels(cohort.target(study.target.column).loc[y.index], y),
               **({"image_blocks": {n: {"size": m.size} for n, m in study.fusion.modalities.items() if m.images}}
                  if fusion is not None and selected == fusion["label"] and _image_blocks(study) else {})},
        treatment=_treatment_options(study, cohort, X, y),
    )

    if study.treatment is not None:
        from pmed.study.effects import run_study_effects

        # every patient, those without an outcome too: an arm whose outcomes are all missing is refused
        metrics["effects"] = run_study_effects(study, cohort, X_all[list(X.columns)], y_all, out_dir / "effects",
                                               source=source)
    write_text_atomic(out_dir / "metrics.json", to_json(metrics))
    write_table(comparison, out_dir / "model_comparison.csv", index=False)
    write_table(oof_all, out_dir / "oof_predictions.csv", index=False)
    write_table(importance, out_dir / "feature_importance.csv", index=False)
    _write_plots(out_dir / "plots", task, oof_all, selected, importance, results)
    if task == "binary" and ev.report:
        figures = _explanations(final, sel_family, X, y, seed=study.seed, out=out_dir / "evaluation",
                                n_boot=ev.coefficient_bootstrap)
        _clinical_evaluation(study, cohort, X, oof_all, results, selected, bundle_path, out_dir / "evaluation",
                             figures=figures)
    reporter.advance("wrote outputs")
    return StudyResult(study=study, out_dir=out_dir, cohort=cohort, metrics=metrics, comparison=comparison,
                       oof=oof_all, importance=importance, selected=selected, bundle_path=bundle_path)


def _image_blocks(study: Study) -> dict[str, str]:
    """The image files of the study's fusion modalities, by modality (a bundle's blocks)."""
    return {n: str(study.path(m.images)) for n, m in study.fusion.modalities.items() if m.images}


def _treatment_options(study: Study, cohort: Cohort, X: pd.DataFrame, y: pd.Series):
    """The bundle's treatment model (each patient's outcome under every arm), or None."""
    if study.treatment is None:
        return None
    from pmed.study.effects import fit_treatment_options

    return fit_treatment_options(study, cohort, X, y)


def _clinical_evaluation(study: Study, cohort: Cohort, X: pd.DataFrame, oof: pd.DataFrame, results: dict,
                         selected: str, bundle_path: Path, out: Path, *, figures: dict | None = None) -> None:
    """The same engine as ``pmed evaluate``, on the first repeat's out-of-fold predictions."""
    from pmed.evaluate.engine import evaluate_predictions
    from pmed.report.evaluation import write_evaluation

    ev = study.evaluation
    first = oof[oof["repeat"] == 0].copy()
    missing = [g for g in ev.groups if g not in cohort.patients.columns]
    if missing:
        raise StudyError(f"evaluation.groups column(s) {', '.join(missing)} not in the patient table",
                         where="key evaluation.groups")
    for g in ev.groups:
        first[g] = cohort.patients.loc[first["patient_id"], g].astype("object").fillna("missing").to_numpy()
    evaluation, tables = evaluate_predictions(
        first, outcome="outcome", score="prediction", model_col="model", groups=ev.groups,
        id_col="patient_id", thresholds=[ev.threshold], n_boot=ev.bootstrap, seed=study.seed,
        min_group_size=ev.min_group_size)
    manifest = json.loads((bundle_path / "manifest.json").read_text())
    schema = cohort.schema
    predictors = []
    for c in X.columns:
        spec = schema.columns.get(c) if schema else None
        predictors.append({"name": c, "type": spec.type if spec else str(X[c].dtype),
                           "unit": spec.unit if spec else None, "missing": int(X[c].isna().sum()),
                           "description": spec.description if spec else None})
    context = {
        "study": {"name": study.name, "description": study.description},
        "data_sources": [f"{k}: {v}" for k, v in cohort.sources.items()]
        + [f"block {n}: {b.provenance.get('file', '')}" for n, b in cohort.blocks.items()],
        "predictors": predictors,
        "missing_data": "Numeric predictors: median imputation with a missingness indicator; 0/1 "
                        "predictors: most frequent value with an indicator; categories: an explicit "
                        "'missing' level. Imputation is fitted inside each training fold.",
        "cv": {"folds": ev.folds, "repeats": ev.repeats, "group": ev.group, "seed": study.seed,
               "stratified": True},
        "models": {k: {"family": v["family"], "params": v["params"]} for k, v in results.items()},
        "imbalance": study.imbalance.describe(),
        "selected_model": selected,
        "fingerprint": manifest["training_data"]["fingerprint_sha256"],
        "privacy": manifest.get("privacy"),
        "versions": {k: v for k, v in manifest["versions"].items() if v},
        "outcome": f"{study.target.column} (event = {study.target.positive if study.target.positive is not None else 1}).",
    }
    if study.treatment is not None:  # _run_into wrote effects/ beside evaluation/ before this report
        from pmed.report.effects import effects_context

        context["effects"] = effects_context(out.parent / "effects")
    if study.fusion is not None:  # _run_into wrote metrics.json (its "fusion") before this report
        from pmed.report.fusion import fusion_context

        fusion = json.loads((out.parent / "metrics.json").read_text(encoding="utf-8")).get("fusion")
        if fusion:
            context["fusion"] = fusion_context(fusion, figures=out / "plots")
    write_evaluation(evaluation, tables, out, context=context, figures=figures,
                     roc_data=first[["model", "outcome", "prediction"]])


def _explanations(final, family: str, X: pd.DataFrame, y: pd.Series, *, seed: int, out: Path,
                  n_boot: int) -> dict:
    """Explanations of the selected model, named as in the input.

    SHAP (probability scale, one-hot columns summed back) where it is exact and fast: tree
    models, or any model with at most 10 features; coefficients with bootstrap CIs for linear
    models. Everything else keeps the permutation importance in ``feature_importance.csv``.
    """
    from pmed import plots
    from pmed.models.importance import fitted_pipeline

    out.mkdir(parents=True, exist_ok=True)
    pipe = fitted_pipeline(final)
    figures = {}
    if family in ("random_forest", "lightgbm") or (X.shape[1] <= 10 and not family.startswith("fusion")):
        from pmed.explain import explain, global_importance
        from pmed.plots.explain import beeswarm

        rng = np.random.default_rng(seed)
        rows = rng.choice(len(X), size=min(200, len(X)), replace=False)
        back = rng.choice(len(X), size=min(100, len(X)), replace=False)
        expl = explain(pipe, X.iloc[np.sort(rows)], background=X.iloc[np.sort(back)], seed=seed)
        write_table(global_importance(expl), out / "shap_importance.csv", index=False)
        figures["shap_beeswarm"] = plots.save(
            beeswarm(expl, title="SHAP values (probability scale), 200 patients"), out / "plots" / "shap_beeswarm.png")
    if family in ("linear", "elastic_net") and n_boot > 0:
        from pmed.explain import linear_coefficients

        coefs = linear_coefficients(pipe, X, y.astype(int) if set(np.unique(y)) <= {0, 1} else y,
                                    n_boot=n_boot, seed=seed)
        write_table(coefs, out / "coefficients.csv", index=False)
    return figures


def _per_class(oof: pd.DataFrame, threshold: float) -> dict:
    from sklearn.metrics import classification_report

    y = oof["outcome"].astype(int)
    yhat = (oof["prediction"] >= threshold).astype(int)
    rep = classification_report(y, yhat, output_dict=True, zero_division=0)
    return {k: v for k, v in rep.items() if k in ("0", "1")}


def _comparison_table(results: dict, task: str) -> pd.DataFrame:
    keys = (["auroc", "auprc", "brier", "balanced_accuracy", "sensitivity", "specificity", "f1"]
            if task == "binary" else ["r2", "rmse", "mae", "pearson", "spearman"])
    rows = []
    for name, r in results.items():
        row = {"model": name, "family": r["family"]}
        for k in keys:
            m = r["metrics"][k]
            row[k] = round(m["estimate"], 4)
            row[f"{k}_ci_low"] = round(m["ci_low"], 4)
            row[f"{k}_ci_high"] = round(m["ci_high"], 4)
        rows.append(row)
    return pd.DataFrame(rows)


def _write_plots(folder: Path, task: str, oof: pd.DataFrame, selected: str, importance: pd.DataFrame,
                 results: dict) -> None:
    from pmed import plots

    folder.mkdir(parents=True, exist_ok=True)
    first = oof[oof["repeat"] == 0]
    figs = {"importance.png": plots.importance_bar(importance, title=f"Feature importance — {selected}")}
    if task == "binary":
        figs["roc.png"] = plots.roc_curves(first)
        figs["pr.png"] = plots.pr_curves(first)
        figs["confusion_matrix.png"] = plots.confusion_matrix(results[selected]["confusion_matrix"],
                                                              title=f"Confusion matrix — {selected}")
    else:
        figs["predicted_vs_observed.png"] = plots.predicted_vs_observed(first[first["model"] == selected],
                                                                        title=selected)
    for name, fig in figs.items():
        plots.save(fig, folder / name)
