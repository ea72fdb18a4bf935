"""Shared fixtures: small cohorts the tests make themselves."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


#: R reference outputs (pROC, rms::val.prob) made by tests/fixtures/r/make_r_fixtures.R
R_FIXTURES = REPO / "tests" / "fixtures" / "r"
R_REFERENCE = json.loads((R_FIXTURES / "r_reference.json").read_text())


def shared_dir() -> Path:
    """The reference data folder (``PMED_SHARED`` or ``../shared`` beside the repo)."""
    return Path(os.environ.get("PMED_SHARED", REPO.parent / "shared"))


SCHEMA_YAML = """\
id: patient_id
columns:
  age: {type: float, unit: years, min: 0, max: 120}
  sex: {type: category, categories: [F, M]}
  bmi: {type: float, unit: kg/m2, min: 10, max: 80}
  smoking: {type: category, categories: [never, former, current]}
  diabetes: {type: bool}
  crp: {type: float, unit: mg/L, min: 0}
  event: {type: int, min: 0, max: 1}
  sbp: {type: float, unit: mmHg, min: 50, max: 260}
"""


def make_clinical(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A small clinical table with a known signal: event risk rises with age, smoking, CRP."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(30, 85, n)
    sex = rng.choice(["F", "M"], n)
    bmi = rng.normal(27, 4, n).clip(16, 50)
    smoking = rng.choice(["never", "former", "current"], n, p=[0.5, 0.3, 0.2])
    diabetes = rng.random(n) < 0.15
    crp = rng.lognormal(0.5, 0.8, n)
    lin = -6 + 0.06 * age + 1.0 * (smoking == "current") + 0.5 * np.log(crp) + 0.6 * diabetes
    event = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int)
    sbp = 110 + 0.5 * age + 0.8 * (bmi - 27) + rng.normal(0, 8, n)
    df = pd.DataFrame({
        "patient_id": [f"P{i:04d}" for i in range(n)], "age": age.round(1), "sex": sex,
        "bmi": bmi.round(1), "smoking": smoking, "diabetes": diabetes.astype(int),
        "crp": crp.round(2), "event": event, "sbp": sbp.round(1),
    })
    # a few missing clinical values, as in real records
    if n >= 20:
        df.loc[rng.choice(n, 10, replace=False), "crp"] = np.nan
        df.loc[rng.choice(n, 5, replace=False), "smoking"] = np.nan
    return df


@pytest.fixture
def clinical_files(tmp_path: Path) -> dict[str, Path]:
    """patients.csv + schema.yaml + new_patients.csv in a temp folder."""
    df = make_clinical()
    paths = {"patients": tmp_path / "patients.csv", "schema": tmp_path / "schema.yaml",
             "new": tmp_path / "new_patients.csv"}
    df.to_csv(paths["patients"], index=False)
    paths["schema"].write_text(SCHEMA_YAML)
    new = make_clinical(4, seed=99).drop(columns=["event", "sbp"])
    new["patient_id"] = [f"N{i}" for i in range(4)]
    new.to_csv(paths["new"], index=False)
    return paths


def write_study(folder: Path, *, target="event", task="binary", models=("linear", "lightgbm"),
                extra: str = "") -> Path:
    """A small, fast study over ``clinical_files``."""
    outcomes = "[sbp]" if target == "event" else "[event]"
    model_lines = "\n".join(
        f"  - family: {m}" + ("\n    params: {n_estimators: 40}" if m in ("lightgbm", "random_forest") else "")
        for m in models
    )
    text = f"""\
name: test-{target}
data:
  patients: patients.csv
  schema: schema.yaml
  outcomes: {outcomes}
target: {{column: {target}, task: {task}}}
models:
{model_lines}
evaluation: {{folds: 4, repeats: 1, bootstrap: 50, coefficient_bootstrap: 0}}
seed: 0
{extra}"""
    p = folder / f"study_{target}.yaml"
    p.write_text(text)
    return p


def write_trial(folder: Path, *, treated: str = "new", control: str = "old", effect: float = 2.0, seed: int = 11,
                n: int = 400, treatment: bool = True, extra: str = "") -> Path:
    """A 1:1 trial whose ``treated`` drug helps marker carriers only (logit + ``effect``), and its study.

    ``patients.csv`` (``age``, ``marker``, ``drug``, ``response``) and ``study.yaml`` (a linear
    model; with ``treatment``, a treatment section with ``marker`` as subgroup) in ``folder``.
    """
    rng = np.random.default_rng(seed)
    marker = rng.integers(0, 2, n)
    age = rng.normal(60, 10, n)
    drug = np.where(rng.random(n) < 0.5, treated, control)
    logit = -0.5 + 0.03 * (age - 60) + effect * ((drug == treated) & (marker == 1))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"patient_id": [f"T{i:03d}" for i in range(n)], "age": age, "marker": marker, "drug": drug,
                  "response": y}).to_csv(folder / "patients.csv", index=False)
    text = ("name: trial\ndata: {patients: patients.csv}\ntarget: {column: response, task: binary}\n"
            "models: [{family: linear}]\nevaluation: {folds: 5, bootstrap: 50}\n")
    if treatment:
        text += (f"treatment: {{column: drug, control: {control}, randomized: true, propensity: 0.5, "
                 "subgroups: [marker]}\n")
    (folder / "study.yaml").write_text(text + extra)
    return folder / "study.yaml"



class ProgressRecorder:
    """A :class:`pmed.progress.Reporter` that keeps what it was told: each ``start`` (total,
    description), the steps advanced and the step labels."""

    def __init__(self) -> None:
        self.starts: list[tuple] = []
        self.steps = 0
        self.labels: list[str] = []

    def start(self, total, description=""):
        self.starts.append((total, description))

    def advance(self, description=None, n=1):
        self.steps += n
        if description:
            self.labels.append(description)
