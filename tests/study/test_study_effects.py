"""A study's treatment section: effects/ written beside the prediction model; its keys checked."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pmed.errors import StudyError
from pmed.study import run_study
from pmed.study.spec import load_study

pytest.importorskip("econml")


def _trial(tmp_path, *, extra: str = "", n: int = 400) -> object:
    rng = np.random.default_rng(11)
    marker = rng.integers(0, 2, n)
    age = rng.normal(60, 10, n)
    drug = np.where(rng.random(n) < 0.5, "new", "old")
    # the new drug helps marker carriers only (logit +2), the old one nobody
    logit = -0.5 + 0.03 * (age - 60) + 2.0 * ((drug == "new") & (marker == 1))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    pd.DataFrame({"patient_id": [f"T{i:03d}" for i in range(n)], "age": age, "marker": marker, "drug": drug,
                  "response": y}).to_csv(tmp_path / "patients.csv", index=False)
    path = tmp_path / "study.yaml"
    path.write_text("name: trial\ndata: {patients: patients.csv}\ntarget: {column: response, task: binary}\n"
                    "models: [{family: linear}]\nevaluation: {folds: 5, bootstrap: 50}\n"
                    "treatment: {column: drug, control: old, randomized: true, propensity: 0.5, subgroups: [marker]}\n"
                    + extra)
    return path


def test_treatment_section_writes_effects_and_finds_the_modifier(tmp_path):
    study = load_study(_trial(tmp_path, extra="effect_models: [t_learner]\n"))
    res = run_study(study, tmp_path / "out")
    eff = json.loads((tmp_path / "out" / "effects" / "metrics.json").read_text())
    new = eff["arms"]["new"]
    assert new["ate"]["ci_low"] > 0  # the new drug helps on average
    by = new["subgroups"]["marker"]
    assert by["1"]["ci_low"] > by["0"]["ci_high"]  # …and carriers far more than the others
    assert by["0"]["ci_low"] < 0 < by["0"]["ci_high"]
    assert res.metrics["effects"]["ate"]["new"]["estimate"] == pytest.approx(new["ate"]["estimate"])
    cate = pd.read_csv(tmp_path / "out" / "effects" / "cate_oof.csv")
    assert len(cate) == 400 and set(cate["learner"]) == {"t_learner"}
    # the learner ranks carriers first: its targeting curve lies above a random ranking
    assert new["learners"]["t_learner"]["autoc"]["estimate"] > 0


@pytest.mark.parametrize(("extra", "says"), [
    ("effect_models: [magic]\n", "unknown effect model 'magic'"),
])
def test_treatment_keys_are_checked(tmp_path, extra, says):
    with pytest.raises(StudyError, match=says):
        load_study(_trial(tmp_path, extra=extra))


def test_treatment_needs_a_trial_for_a_known_propensity_and_no_survival_target(tmp_path):
    p = _trial(tmp_path)
    text = p.read_text()
    p.write_text(text.replace("randomized: true, ", ""))
    with pytest.raises(StudyError, match="set randomized: true"):
        load_study(p)
    p.write_text(text.replace("effect_models", "x") + "effect_models: [t_learner]\n")
    assert load_study(p).effect_models == ["t_learner"]
    p.write_text(text.replace("treatment: {column: drug", "treatment: {column: response"))
    with pytest.raises(StudyError, match="is the target"):
        load_study(p)
    q = tmp_path / "s.yaml"
    q.write_text("name: s\ndata: {patients: patients.csv}\ntarget: {task: survival, time: age, event: marker, "
                 "horizons: [50]}\ntreatment: {column: drug, control: old}\n")
    with pytest.raises(StudyError, match="survival target are not available yet"):
        load_study(q)
