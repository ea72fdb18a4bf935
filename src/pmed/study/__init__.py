"""Studies: a YAML file in, validated models, outputs and a model bundle out."""

from pmed.study.bundle import ModelBundle, load_bundle, save_bundle
from pmed.study.predict import explain_patient, predict_patients
from pmed.study.run import StudyResult, load_cohort, run_study
from pmed.study.spec import Study, load_study

__all__ = [
    "Study",
    "load_study",
    "run_study",
    "load_cohort",
    "StudyResult",
    "ModelBundle",
    "save_bundle",
    "load_bundle",
    "predict_patients",
    "explain_patient",
]
