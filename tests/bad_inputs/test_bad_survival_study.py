"""Bad inputs (issue #17, item 1) of a ``task: survival`` study through ``pmed run``: each is one
line naming the study key or the column, exit code of its class, no patient ID, nothing written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from badinput import bad_input, refused, refused_run

pytest.importorskip("sksurv")
pytest.importorskip("lifelines")

IDS = [f"PT-{i:05d}" for i in range(120)]


def _study(tmp_path, *, df: pd.DataFrame | None = None, horizons: str = "[180, 365]") -> tuple:
    rng = np.random.default_rng(3)
    n = len(IDS)
    if df is None:
        x = rng.normal(size=n)
        T = rng.exponential(400 * np.exp(-0.7 * x))
        C = rng.uniform(100, 1200, n)
        df = pd.DataFrame({"patient_id": IDS, "x": x, "age": rng.normal(60, 8, n),
                           "os_days": np.round(np.minimum(T, C), 1) + 0.1, "died": (T <= C).astype(int)})
    df.to_csv(tmp_path / "patients.csv", index=False)
    study = tmp_path / "study.yaml"
    study.write_text("name: surv\ndata: {patients: patients.csv}\n"
                     f"target: {{task: survival, time: os_days, event: died, horizons: {horizons}}}\n"
                     "models: [{family: cox}]\nevaluation: {folds: 3, bootstrap: 0}\n")
    return study, df


@bad_input("diagnosis")
def test_missing_event_column(tmp_path, capsys):
    study, df = _study(tmp_path)
    df.rename(columns={"died": "status"}).to_csv(tmp_path / "patients.csv", index=False)
    head = refused_run(capsys, tmp_path, study, code=6, secrets=IDS,
                       says=r"key target\.event: target\.event column 'died' is not in the patient table")
    assert "study.yaml" in head


@bad_input("silent")
def test_horizon_beyond_follow_up(tmp_path, capsys):
    study, df = _study(tmp_path, horizons="[365, 5000]")
    last = df["os_days"].max()
    refused_run(capsys, tmp_path, study, code=6, secrets=IDS,
                says=rf"key target\.horizons: horizon 5000 is beyond the follow-up.*is {last:g}")


@bad_input("diagnosis")
def test_event_not_zero_one(tmp_path, capsys):
    study, df = _study(tmp_path)
    df["died"] = df["died"] + 1  # R's Surv coding: 1 = censored, 2 = event
    df.to_csv(tmp_path / "patients.csv", index=False)
    refused_run(capsys, tmp_path, study, code=4, secrets=IDS,
                says=r"patients\.csv: column 'died': event must be 0 \(censored\) or 1 \(event\), found 2 at "
                     r"lines 2, 4, .*subtract 1")


@bad_input("options")
def test_negative_horizon_in_the_yaml(tmp_path, capsys):
    study, _ = _study(tmp_path, horizons="[365, 0]")
    refused_run(capsys, tmp_path, study, code=6, says=r"key target\.horizons.*must be positive numbers, got 0")


@bad_input("options")
def test_survival_report_into_a_folder_of_other_files(tmp_path, capsys):
    # survival bundles have patient reports now; the folder they replace whole must be refused
    # when it holds other files, before any prediction is written
    from pmed.cli import main

    study, df = _study(tmp_path)
    assert main(["run", str(study), "--out", str(tmp_path / "out")]) == 0
    df.drop(columns=["os_days", "died"]).head(3).to_csv(tmp_path / "new.csv", index=False)
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "notes.txt").write_text("mine")
    refused(capsys, tmp_path, ["predict", "--model", tmp_path / "out" / "model", "--patients", tmp_path / "new.csv",
                               "--out", tmp_path / "pred.csv", "--report", tmp_path / "rep"], code=2,
            says=r"the report folder is not empty and holds no earlier patient reports",
            out=[tmp_path / "pred.csv"], secrets=IDS)
    assert not (tmp_path / "pred.csv").exists()
    assert (tmp_path / "rep" / "notes.txt").read_text() == "mine"


@bad_input("diagnosis")
def test_rare_level_without_events_in_a_training_fold(tmp_path, capsys):
    # a category's rare level whose few patients are all censored: in every training fold its
    # Cox coefficient has no finite estimate; the error names the model, the fold, the level
    # column and its counts, and the fix (a penalizer)
    study, df = _study(tmp_path)
    df["smoking"] = "never"
    df.loc[df.index[df["died"] == 0][:5], "smoking"] = "current"
    df.to_csv(tmp_path / "patients.csv", index=False)
    refused_run(capsys, tmp_path, study, code=4, secrets=IDS,
                says=r"model 'cox', training patients of fold 1: Cox model: the coefficient of 'smoking_never' "
                     r"has no finite estimate.*\(0 events among its [0-9] patients with value 0\)")
