"""A study's ``treatment:`` section: the effect of each arm on the target, into ``effects/``.

The covariates are the study's features less the treatment column; the outcome is the study's
target (0/1 for a binary target). :func:`pmed.effects.run_effects` does the work; this module
checks the section against the data and names study keys in its errors.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pmed.cohort import Cohort
from pmed.errors import StudyError, shorten
from pmed.study.spec import Study

__all__ = ["run_study_effects", "check_study_effects"]


def _effects_table(study: Study, cohort: Cohort, X: pd.DataFrame, y: pd.Series, source: str | None):
    """The table run_effects reads (covariates, treatment, outcome), its covariates and the checked arms."""
    from pmed.effects import check_treatment

    tr = study.treatment
    col = tr.column
    if col not in cohort.patients.columns:
        raise StudyError(f"treatment.column {shorten(col)} is not in the patient table", file=study.source_path,
                         where="key treatment.column", fix="name the column holding the treatment each patient got")
    covs = X.drop(columns=[col], errors="ignore")
    missing = [g for g in tr.subgroups if g not in covs.columns]
    if missing:
        raise StudyError(f"treatment.subgroups names {shorten(missing[0])}, not a feature of the study",
                         file=study.source_path, where="key treatment.subgroups",
                         fix="name feature columns (of the patient table or a block)")
    target = str(study.target.column)
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
    res = run_effects(df, treatment=tr.column, outcome=str(study.target.column), control=tr.control,
                      covariates=covs, randomized=tr.randomized, propensity=tr.propensity, learners=learners,
                      folds=study.evaluation.folds, seed=study.seed, higher_is_better=tr.higher_is_better,
                      overlap=tuple(tr.overlap), n_boot=min(study.evaluation.bootstrap, 200),
                      subgroups=tr.subgroups, source=source)
    res.write(out)
    return {**res.summary(), "folder": "effects/", "learners": learners}
