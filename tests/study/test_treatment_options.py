"""A bundle of a study with a treatment section ranks each new patient's treatments (pmed predict)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from test_study_effects import _trial

from pmed.cli import main
from pmed.errors import BundleError, OptionError
from pmed.study import load_bundle, run_study
from pmed.study.predict import new_patient_features, treatment_options
from pmed.study.spec import load_study

pytest.importorskip("econml")


@pytest.fixture(scope="module")
def trial_run(tmp_path_factory):
    """The 400-patient trial of test_study_effects (the new drug helps marker carriers), and 4 new patients."""
    d = tmp_path_factory.mktemp("trial")
    study = load_study(_trial(d, extra="effect_models: [t_learner]\n"))
    res = run_study(study, d / "out")
    new = pd.DataFrame({"patient_id": ["N1", "N2", "N3", "N4"], "age": [60.0, 60.0, 70.0, 50.0],
                        "marker": [1, 0, 1, 0], "drug": ["old", "new", "old", "old"]})
    new.to_csv(d / "new.csv", index=False)
    recs = pd.DataFrame({"sample": ["N1", "N2"], "drug": ["old", "old"], "source": ["CPIC", "CPIC"],
                         "recommendation": ["Avoid old if possible. Use new.", "Use at standard dose."]})
    (d / "pgx").mkdir()
    recs.to_csv(d / "pgx" / "recommendations.tsv", sep="\t", index=False)
    return d, res


def test_bundle_holds_the_treatment_model_checked_out_of_fold(trial_run):
    d, res = trial_run
    bundle = load_bundle(res.bundle_path)
    info = bundle.manifest["treatment"]
    assert info["arms"] == ["old", "new"] and info["control"] == "old" and info["outcome_type"] == "binary"
    assert info["covariates"] == ["age", "marker"] and sum(info["n_per_arm"].values()) == 400
    assert (res.bundle_path / "treatment.skops").exists() and bundle.treatment_model.n_boot == 200
    # the options model is evaluated out of fold in effects/ like the study's learners: it finds the carriers
    eff = json.loads((d / "out" / "effects" / "metrics.json").read_text())
    lin = eff["arms"]["new"]["learners"]["linear_t_learner"]
    assert lin["autoc"]["ci_low"] > 0 and lin["calibration_slope"]["ci_low"] > 0
    cate = pd.read_csv(d / "out" / "effects" / "cate_oof.csv")
    own = cate[cate["learner"] == "linear_t_learner"]
    assert own["ci_low"].le(own["cate"]).all() and own["cate"].le(own["ci_high"]).all()


def test_options_rank_the_new_drug_first_for_carriers_only(trial_run):
    d, res = trial_run
    bundle = load_bundle(res.bundle_path)
    X = new_patient_features(bundle, d / "new.csv")
    opts = treatment_options(bundle, X).set_index(["patient_id", "treatment"])
    assert opts["pgx_flag"].eq("no PGx calls").all()
    for carrier in ("N1", "N3"):
        assert opts.loc[(carrier, "new"), "rank"] == 1 and opts.loc[(carrier, "new"), "effect_low"] > 0
    noncarrier = opts.loc[("N2", "new")]
    # (seed 11: −0.11, 200 patients an arm)
    assert abs(noncarrier["effect"]) < 0.2 and noncarrier["effect_high"] < opts.loc[("N1", "new"), "effect_low"]
    # the outcome under each drug does not depend on the drug the patient happened to be given
    swapped = X.assign(drug=pd.Categorical(["new"] * 4, categories=X["drug"].cat.categories))
    again = treatment_options(bundle, swapped).set_index(["patient_id", "treatment"])
    assert np.allclose(again["outcome"], opts["outcome"])


def test_cli_writes_treatment_options_with_pgx_flags_and_report_section(trial_run, tmp_path):
    d, res = trial_run
    out = tmp_path / "p.csv"
    code = main(["predict", "--model", str(res.bundle_path), "--patients", str(d / "new.csv"), "--out", str(out),
                 "--pgx", str(d / "pgx"), "--report", str(tmp_path / "reports")])
    assert code == 0
    opts = pd.read_csv(tmp_path / "treatment_options.csv")
    assert list(opts.columns) == ["patient_id", "treatment", "outcome", "outcome_low", "outcome_high", "effect",
                                  "effect_low", "effect_high", "prob_best", "rank", "pgx_flag", "pgx_guidance"]
    flags = opts.set_index(["patient_id", "treatment"])["pgx_flag"]
    assert flags[("N1", "old")] == "avoid" and flags[("N2", "old")] == "standard"
    assert flags[("N1", "new")] == "no guideline" and flags[("N3", "old")] == "no guideline"
    html = (tmp_path / "reports" / "N1.html").read_text()
    assert "Treatment options" in html and "says <b>avoid</b>" in html and "also ranks it below new" in html
    # --options elsewhere; never onto --out
    assert main(["predict", "--model", str(res.bundle_path), "--patients", str(d / "new.csv"), "--out", str(out),
                 "--options", str(tmp_path / "o.tsv")]) == 0
    assert len(pd.read_csv(tmp_path / "o.tsv", sep="\t")) == 8
    assert main(["predict", "--model", str(res.bundle_path), "--patients", str(d / "new.csv"), "--out", str(out),
                 "--options", str(out)]) == 2


def test_a_bundle_without_treatment_has_no_options_and_a_changed_treatment_model_is_refused(trial_run, tmp_path):
    d, res = trial_run
    m = tmp_path / "m"
    shutil.copytree(res.bundle_path, m)
    with open(m / "treatment.skops", "ab") as f:
        f.write(b"x")
    with pytest.raises(BundleError, match="treatment.skops"):
        load_bundle(m)
    bundle = load_bundle(res.bundle_path)
    bundle.treatment_model = None
    with pytest.raises(OptionError, match="no treatment model"):
        treatment_options(bundle, new_patient_features(bundle, d / "new.csv"))


def test_the_service_takes_pgx_recommendations_and_flags_the_options_as_predict_does(trial_run, tmp_path):
    """POST /api/models/{name}/predict with pgx_recommendations (as /api/pgx/call returns them) gives the
    options of pmed predict --pgx, flags included; without them the flags say 'no PGx calls'."""
    pytest.importorskip("fastapi")
    pytest.importorskip("sqlalchemy")
    from fastapi.testclient import TestClient

    from pmed.serve import create_app, create_token
    from pmed.study.predict import read_pgx_recommendations

    d, res = trial_run
    shutil.copytree(res.bundle_path, tmp_path / "models" / "trial" / "model")
    app = create_app(tmp_path / "models", f"sqlite:///{tmp_path / 's.sqlite'}")
    auth = {"Authorization": f"Bearer {create_token(app.state.engine, role='clinician', user='t')}"}
    c = TestClient(app)
    name = c.get("/api/models", headers=auth).json()[0]["name"]
    rows = json.loads(pd.read_csv(d / "new.csv").to_json(orient="records"))
    recs = read_pgx_recommendations(d / "pgx")
    r = c.post(f"/api/models/{name}/predict", headers=auth,
               json={"patients": rows, "pgx_recommendations": recs.to_dict(orient="records")})
    assert r.status_code == 200, r.text
    bundle = load_bundle(res.bundle_path)
    want = treatment_options(bundle, new_patient_features(bundle, d / "new.csv"), recommendations=recs)
    got = pd.DataFrame([{"patient_id": p["patient_id"], **o} for p in r.json()["predictions"]
                        for o in p["treatment_options"]])
    key = ["patient_id", "treatment"]
    got, want = got.set_index(key).sort_index(), want.set_index(key).sort_index()
    assert got["pgx_flag"].tolist() == want["pgx_flag"].tolist()
    assert got.loc[("N1", "old"), "pgx_flag"] == "avoid" and got.loc[("N2", "old"), "pgx_flag"] == "standard"
    assert np.allclose(got["effect"], want["effect"]) and got["rank"].tolist() == want["rank"].tolist()
    plain = c.post(f"/api/models/{name}/predict", headers=auth, json={"patients": rows}).json()
    assert {o["pgx_flag"] for p in plain["predictions"] for o in p["treatment_options"]} == {"no PGx calls"}
    bad = c.post(f"/api/models/{name}/predict", headers=auth,
                 json={"patients": rows, "pgx_recommendations": [{"sample": "N1", "drug": "old"}]})
    assert bad.status_code == 400 and "source, recommendation" in bad.json()["detail"]
