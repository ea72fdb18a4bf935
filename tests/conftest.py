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
