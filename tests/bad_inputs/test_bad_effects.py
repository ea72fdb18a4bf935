"""Bad inputs (issue #18, item 6) of a study's treatment section through ``pmed run``: each one line
naming the column and the fix, the exit code of its class, no patient ID, nothing written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from badinput import bad_input, refused_run

pytest.importorskip("econml")

IDS = [f"PT-{i:05d}" for i in range(200)]


def _study(tmp_path, change=None, treatment: str = "{column: drug, control: old, randomized: true}") -> tuple:
    rng = np.random.default_rng(4)
    n = len(IDS)
    x = rng.normal(size=n)
    df = pd.DataFrame({"patient_id": IDS, "x": x, "drug": np.where(rng.random(n) < 0.5, "new", "old"),
                       "y": (rng.random(n) < 0.5).astype(int)})
    if change is not None:
        df = change(df)
    df.to_csv(tmp_path / "patients.csv", index=False)
    study = tmp_path / "study.yaml"
    study.write_text("name: t\ndata: {patients: patients.csv}\ntarget: {column: y, task: binary}\n"
                     "models: [{family: linear}]\nevaluation: {folds: 3, bootstrap: 0, report: false}\n"
                     f"treatment: {treatment}\neffect_models: [t_learner]\n")
    return study, df


@bad_input("diagnosis")
def test_treatment_with_one_value(tmp_path, capsys):
    study, _ = _study(tmp_path, lambda d: d.assign(drug="old"))
    refused_run(capsys, tmp_path, study, code=4, secrets=IDS,
                says=r"patients\.csv: treatment column 'drug' has one value \('old'\): there is nothing to compare")


@bad_input("options")
def test_control_value_not_present(tmp_path, capsys):
    study, _ = _study(tmp_path, treatment="{column: drug, control: placebo, randomized: true}")
    refused_run(capsys, tmp_path, study, code=4, secrets=IDS, says=r"the control value 'placebo' is not present")


@bad_input("silent")
def test_arm_with_too_few_patients(tmp_path, capsys):
    study, _ = _study(tmp_path, lambda d: d.assign(drug=np.where(np.arange(len(d)) < 12, "rare", d["drug"])))
    refused_run(capsys, tmp_path, study, code=4, secrets=IDS,
                says=r"arm 'rare' of 'drug' has 12 patient\(s\) with an outcome, fewer than 20")


@bad_input("silent")
def test_no_overlap_in_an_observational_study(tmp_path, capsys):
    study, _ = _study(tmp_path, lambda d: d.assign(drug=np.where(d["x"] > 0, "new", "old")),
                      treatment="{column: drug, control: old}")
    refused_run(capsys, tmp_path, study, code=4, secrets=IDS,
                says=r"no overlap between arm 'new' and control 'old' of 'drug'")


@bad_input("diagnosis")
def test_treatment_column_not_in_the_table(tmp_path, capsys):
    study, _ = _study(tmp_path, treatment="{column: therapy, control: old, randomized: true}")
    refused_run(capsys, tmp_path, study, code=6, secrets=IDS,
                says=r"key treatment\.column: treatment\.column 'therapy' is not in the patient table")


@bad_input("silent")
def test_outcome_missing_for_every_patient_of_one_arm(tmp_path, capsys):
    # the prediction model drops patients without an outcome; the effect estimate must not drop
    # the whole arm with them
    study, _ = _study(tmp_path, lambda d: d.assign(y=np.where(d["drug"] == "new", np.nan, d["y"])))
    refused_run(capsys, tmp_path, study, code=4, secrets=IDS,
                says=r"outcome 'y' is missing for every patient of arm 'new' of 'drug'")


@bad_input("diagnosis")
def test_effect_modifier_not_a_feature(tmp_path, capsys):
    study, _ = _study(tmp_path, treatment="{column: drug, control: old, randomized: true, modifiers: [x, weight]}")
    refused_run(capsys, tmp_path, study, code=6, secrets=IDS,
                says=r"key treatment\.modifiers: treatment\.modifiers names 'weight', not a feature of the study")
