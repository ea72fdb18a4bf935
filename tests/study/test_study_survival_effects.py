"""A survival study's treatment section: effects on the risk of the event by a horizon.

A simulated 1:1 trial: exponential event times, hazard 0.0008 per day in the control arm and
0.4 times that in the new arm, uniform censoring; the effect is the difference in P(died by
730 days = 2 years), estimated on jackknife pseudo-observations (pmed.survival.pseudo). The
true difference is (1 − exp(−0.00032·730)) − (1 − exp(−0.0008·730)) ≈ −0.234.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pmed.errors import StudyError
from pmed.study import run_study
from pmed.study.spec import load_study

pytest.importorskip("econml")
pytest.importorskip("sksurv")

TRUTH = (1 - np.exp(-0.00032 * 730)) - (1 - np.exp(-0.0008 * 730))


def _study(tmp_path, *, treatment: str = "{column: drug, control: old, randomized: true, propensity: 0.5}",
           n: int = 400) -> object:
    rng = np.random.default_rng(5)
    drug = rng.permutation(np.repeat(["new", "old"], n // 2))
    age = rng.normal(60, 10, n)
    T = rng.exponential(1 / (0.0008 * np.where(drug == "new", 0.4, 1.0)))
    C = rng.uniform(300, 2500, n)
    pd.DataFrame({"patient_id": [f"S{i:03d}" for i in range(n)], "age": age, "drug": drug,
                  "os_days": np.round(np.minimum(T, C), 1) + 0.1, "died": (T <= C).astype(int)}
                 ).to_csv(tmp_path / "patients.csv", index=False)
    path = tmp_path / "study.yaml"
    path.write_text("name: surv_trial\ndata: {patients: patients.csv}\n"
                    "target: {task: survival, time: os_days, event: died, horizons: [365, 730]}\n"
                    "models: [{family: cox}]\nevaluation: {folds: 3, bootstrap: 0, report: false}\n"
                    f"treatment: {treatment}\neffect_models: [t_learner]\n")
    return path


def test_survival_study_writes_effects_on_the_risk_by_the_horizon(tmp_path):
    study = load_study(_study(tmp_path))
    assert study.treatment.higher_is_better is False  # an event is bad, unless the study says otherwise
    res = run_study(study, tmp_path / "out")
    eff = json.loads((tmp_path / "out" / "effects" / "metrics.json").read_text())
    assert eff["effect_scale"] == "difference in P(died by 2 years)"
    assert eff["horizon"] == 730 and eff["higher_is_better"] is False
    assert eff["outcome_method"] == ("jackknife pseudo-observations of 1 − Kaplan–Meier at h "
                                     "(Andersen & Perme 2010)")
    ate = eff["arms"]["new"]["ate"]
    assert ate["ci_high"] < 0 and ate["ci_low"] <= TRUTH <= ate["ci_high"]  # the new drug lowers the risk
    assert -1 <= ate["ci_low"]
    top = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert top["task"] == "survival" and top["effects"]["folder"] == "effects/"
    assert top["effects"]["effect_scale"] == eff["effect_scale"]
    assert top["effects"]["ate"]["new"]["estimate"] == pytest.approx(ate["estimate"])
    # the bundle's treatment options: each patient's risk by 2 years under either drug, the lower first
    from pmed.study import load_bundle
    from pmed.study.predict import new_patient_features, treatment_options

    bundle = load_bundle(res.bundle_path)
    info = bundle.manifest["treatment"]
    assert info["outcome_type"] == "risk" and info["outcome_scale"] == "risk of died by 2 years"
    assert info["higher_is_better"] is False and info["horizon"] == 730
    X = new_patient_features(bundle, tmp_path / "patients.csv").head(20)
    opts = treatment_options(bundle, X)
    assert opts["outcome"].between(0, 1).all() and opts["outcome_low"].between(0, 1).all()
    first = opts.groupby("patient_id").first()
    assert (first["treatment"] == "new").all()  # the lower risk ranks first
    new = opts[opts["treatment"] == "new"]
    assert new["effect"].mean() == pytest.approx(TRUTH, abs=0.1) and (new["effect_high"] < 0).mean() > 0.5
    assert res.metrics["effects"]["horizon"] == 730
    assert (tmp_path / "out" / "effects" / "cate_oof.csv").exists()


def test_horizon_and_higher_is_better_keys(tmp_path):
    p = _study(tmp_path, treatment="{column: drug, control: old, horizon: 365, higher_is_better: true}")
    s = load_study(p)
    assert s.treatment.horizon == 365 and s.treatment.higher_is_better is True  # what the user set is kept
    p.write_text(p.read_text().replace("horizon: 365", "horizon: -1"))
    with pytest.raises(StudyError, match="treatment.horizon must be a positive time"):
        load_study(p)


def test_horizon_beyond_follow_up_is_refused_before_fitting(tmp_path):
    p = _study(tmp_path, treatment="{column: drug, control: old, randomized: true, horizon: 100000}")
    with pytest.raises(StudyError, match="beyond the last follow-up time") as err:
        run_study(load_study(p), tmp_path / "out")
    assert err.value.where == "key treatment.horizon"
    assert not (tmp_path / "out" / "effects").exists()


def test_horizon_on_a_binary_study_is_refused(tmp_path):
    pd.DataFrame({"patient_id": ["a", "b"], "drug": ["x", "y"], "response": [0, 1]}).to_csv(
        tmp_path / "patients.csv", index=False)
    p = tmp_path / "b.yaml"
    p.write_text("name: b\ndata: {patients: patients.csv}\ntarget: {column: response, task: binary}\n"
                 "treatment: {column: drug, control: x, horizon: 365}\n")
    with pytest.raises(StudyError, match="treatment.horizon applies to survival targets only"):
        load_study(p)
