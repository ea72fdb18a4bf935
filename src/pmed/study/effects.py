"""A study's ``treatment:`` section: the effect of each arm on the target, into ``effects/``.

The covariates are the study's features less the treatment column; the outcome is the study's
target (0/1 for a binary target). On a survival target the outcome is each patient's jackknife
pseudo-observation of the event by ``treatment.horizon`` (:func:`survival_effect_outcome`), so the
effect is a difference in the risk of the event by that time. :func:`pmed.effects.run_effects`
does the work; this module checks the section against the data and names study keys in its errors.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pmed.cohort import Cohort
from pmed.errors import StudyError, shorten
from pmed.study.spec import Study

__all__ = ["run_study_effects", "check_study_effects", "fit_treatment_options", "survival_effect_outcome",
           "effect_horizon"]

#: how the outcome of a survival study's effects is made, as metrics.json records it
PSEUDO_METHOD = "jackknife pseudo-observations of 1 − Kaplan–Meier at h (Andersen & Perme 2010)"


def effect_horizon(study: Study) -> float:
    """The horizon of a survival study's effects: ``treatment.horizon``, else the last target horizon."""
    h = study.treatment.horizon if study.treatment is not None else None
    return float(h if h is not None else max(study.target.horizons or [float("nan")]))


def _outcome_column(study: Study) -> str:
    if study.target.task != "survival":
        return str(study.target.column)
    return f"{study.target.event}_by_{effect_horizon(study):g}"


def survival_effect_outcome(study: Study, time, event, index: pd.Index) -> pd.Series:
    """Each patient's pseudo-observation of the event by the effect horizon, the outcome of the effects.

    ``θ_i = n·F̂(h) − (n − 1)·F̂_{−i}(h)``, ``F̂ = 1 − Kaplan–Meier``, on every patient of the study
    (:func:`pmed.survival.pseudo.pseudo_observations`): its conditional mean is P(event by h | x)
    under independent censoring, so the effects on it are differences in that risk.

    Raises
    ------
    StudyError
        The horizon lies beyond the last follow-up time, where Kaplan–Meier estimates nothing.
    """
    import numpy as np

    from pmed.survival.pseudo import pseudo_observations

    h = effect_horizon(study)
    last = float(np.max(time))
    if h > last:
        where = "key treatment.horizon" if study.treatment.horizon is not None else "key target.horizons"
        raise StudyError(f"the effect horizon {h:g} is beyond the last follow-up time ({last:g}): the risk of the "
                         "event by then cannot be estimated", file=study.source_path, where=where,
                         fix=f"set treatment.horizon to a time up to {last:g}")
    return pd.Series(pseudo_observations(time, event, h), index=index, name=_outcome_column(study))


def _effects_table(study: Study, cohort: Cohort, X: pd.DataFrame, y: pd.Series, source: str | None):
    """The table run_effects reads (covariates, treatment, outcome), its covariates and the checked arms."""
    from pmed.effects import check_treatment

    tr = study.treatment
    col = tr.column
    if col not in cohort.patients.columns:
        raise StudyError(f"treatment.column {shorten(col)} is not in the patient table", file=study.source_path,
                         where="key treatment.column", fix="name the column holding the treatment each patient got")
    covs = X.drop(columns=[col], errors="ignore")
    unknown = [g for g in tr.modifiers or [] if g not in covs.columns]
    if unknown:
        raise StudyError(f"treatment.modifiers names {shorten(unknown[0])}, not a feature of the study",
                         file=study.source_path, where="key treatment.modifiers",
                         fix="name feature columns (of the patient table or a block), not the treatment itself")
    missing = [g for g in tr.subgroups if g not in covs.columns]
    if missing:
        raise StudyError(f"treatment.subgroups names {shorten(missing[0])}, not a feature of the study",
                         file=study.source_path, where="key treatment.subgroups",
                         fix="name feature columns (of the patient table or a block)")
    target = _outcome_column(study)
    df = covs.copy()
    df[col] = cohort.patients[col].reindex(covs.index).astype(object)
    df[target] = y.reindex(covs.index)
    check_treatment(df[col], df[target], control=tr.control, source=source)
    return df, list(covs.columns)


def check_study_effects(study: Study, cohort: Cohort, X: pd.DataFrame, y: pd.Series, *,
                        source: str | None = None) -> None:
    """Refuse a bad treatment section before any model is fitted (same checks as the run)."""
    _effects_table(study, cohort, X, y, source)


def run_study_effects(study: Study, cohort: Cohort, X: pd.DataFrame, y: pd.Series, out: Path, *,
                      source: str | None = None) -> dict:
    """Estimate the treatment section's effects and write them to ``out``.

    ``X`` and ``y`` cover every patient, those without an outcome too (NaN), so that an arm
    whose outcomes are all missing is refused rather than dropped.

    Returns
    -------
    dict
        What ``metrics.json`` records under ``effects``: the control, each arm's ATE and the
        folder.

    Raises
    ------
    StudyError
        The treatment or a subgroup column is not in the data.
    ValidationError
        A bad treatment column or outcome (:func:`pmed.effects.check_treatment`), no overlap.
    """
    from pmed.effects import DEFAULT_LEARNERS, run_effects

    tr = study.treatment
    df, covs = _effects_table(study, cohort, X, y, source)
    learners = study.effect_models if study.effect_models is not None else list(DEFAULT_LEARNERS)
    # the model behind the bundle's treatment options is always checked out of fold too
    learners = [*learners, *(["linear_t_learner"] if "linear_t_learner" not in learners else [])]
    survival = study.target.task == "survival"
    scale = None
    if survival:
        from pmed.report.survival import horizon_text

        scale = f"difference in P({study.target.event} by {horizon_text(effect_horizon(study), study.target.time_unit)})"
    res = run_effects(df, treatment=tr.column, outcome=_outcome_column(study), control=tr.control,
                      covariates=covs, randomized=tr.randomized, propensity=tr.propensity, learners=learners,
                      folds=study.evaluation.folds, seed=study.seed, higher_is_better=tr.higher_is_better,
                      overlap=tuple(tr.overlap), n_boot=min(study.evaluation.bootstrap, 200),
                      subgroups=tr.subgroups, source=source, effect_scale=scale,
                      probability_scale=True if survival else None, modifiers=tr.modifiers)
    extra = {}
    if survival:
        extra = {"horizon": effect_horizon(study), "effect_scale": scale, "outcome_method": PSEUDO_METHOD}
        res.metrics.update(extra)
    res.write(out)
    return {**res.summary(), "folder": "effects/", "learners": learners, **extra}


def fit_treatment_options(study: Study, cohort: Cohort, X: pd.DataFrame, y: pd.Series, *,
                          n_boot: int = 200) -> tuple:
    """The bundle's treatment model: every patient's outcome under each arm, fitted on all patients.

    ``X`` holds the selected model's features (the treatment column among them, which the
    treatment model leaves out: it is what varies) and ``y`` the outcome of the patients who
    have one.

    Returns
    -------
    tuple
        ``(model, description)`` for :func:`pmed.study.bundle.save_bundle`'s ``treatment``.
    """
    from pmed.effects.learners import LEARNERS
    from pmed.effects.options import TreatmentOptions

    tr = study.treatment
    covs = X.drop(columns=[tr.column], errors="ignore")
    if tr.modifiers is not None:
        covs = covs[list(tr.modifiers)]
    arm = cohort.patients[tr.column].reindex(covs.index).astype(str)
    binary = study.target.task == "binary"
    survival = study.target.task == "survival"
    # survival: a linear model of the pseudo-observations, whose mean is a risk: kept within [0, 1]
    model = TreatmentOptions(control=str(tr.control), binary=binary, n_boot=n_boot, seed=study.seed,
                             bounds=(0.0, 1.0) if survival else None)
    model.fit(covs, arm, y.astype(float))
    target = _outcome_column(study)
    if survival:
        from pmed.report.survival import horizon_text

        scale = f"risk of {study.target.event} by {horizon_text(effect_horizon(study), study.target.time_unit)}"
    else:
        scale = f"P({target} = 1)" if binary else f"mean {target}"
    description = {
        "column": tr.column, "control": str(tr.control), "arms": list(model.arms_), "outcome": target,
        "outcome_type": "binary" if binary else "risk" if survival else "continuous",
        "outcome_scale": scale, **({"horizon": effect_horizon(study), "outcome_method": PSEUDO_METHOD}
                                   if survival else {}),
        "higher_is_better": tr.higher_is_better, "level": model.level, "n_boot": n_boot,
        "covariates": list(map(str, covs.columns)),
        "n_per_arm": dict(zip(model.arms_, map(int, model.n_per_arm_), strict=True)),
        "method": LEARNERS["linear_t_learner"][0] + "; intervals: " + LEARNERS["linear_t_learner"][1],
        "validation": "effects/metrics.json: arms.<arm>.learners.linear_t_learner (out of fold)",
    }
    return model, description
