"""The studies in examples/ run as documented (binary and continuous targets on real data)."""

import json
from pathlib import Path

import pandas as pd

from pmed.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_breast_cancer_example(tmp_path):
    assert main(["run", str(EXAMPLES / "breast_cancer.yaml"), "--out", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["n_patients"] == 569 and m["n_events"] == 212 and m["cv"]["repeats"] == 2
    best = m["models"][m["selected_model"]]["metrics"]["auroc"]
    assert best["estimate"] > 0.98  # published cross-validated AUROCs on WDBC are ~0.99
    assert best["ci_low"] > 0.97


def test_diabetes_example_and_predict(tmp_path):
    assert main(["run", str(EXAMPLES / "diabetes.yaml"), "--out", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["task"] == "continuous" and m["n_patients"] == 442
    r2 = m["models"][m["selected_model"]]["metrics"]["r2"]["estimate"]
    assert 0.40 < r2 < 0.60  # lasso/ridge on these 10 variables: R² ≈ 0.5 (Efron et al. 2004)
    imp = pd.read_csv(tmp_path / "feature_importance.csv")
    assert {"bmi", "s5"} <= set(imp["feature"].head(4))  # BMI and triglycerides lead, as published
    # a new patient from the data set's own schema and units
    new = pd.DataFrame({"patient_id": ["x1"], "age": [50.0], "sex": [2.0], "bmi": [32.0], "bp": [100.0],
                        "s1": [190.0], "s2": [115.0], "s3": [45.0], "s4": [4.0], "s5": [5.0], "s6": [95.0]})
    new.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", "--model", str(tmp_path / "model"), "--patients", str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "pred.csv")]) == 0
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert 100 < pred.loc[0, "prediction"] < 300  # high BMI and triglycerides: above the mean (152)
