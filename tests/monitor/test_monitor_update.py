"""update_bundle: recalibrate or refit a bundle on new outcomes, promote only on held-out evidence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

import pmed.study.bundle as bundle_module
from conftest import SCHEMA_YAML, make_clinical, write_study
from pmed.errors import OptionError, ValidationError
from pmed.monitor.update import PROMOTION_RULE, Recalibrated, update_bundle
from pmed.study import load_bundle, run_study

_TYPE = "pmed.monitor.update.Recalibrated"


def test_the_wrapper_is_a_trusted_bundle_type():
    assert _TYPE in bundle_module._TRUSTED_TYPES  # else pmed.study.load_bundle refuses updated bundles


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """A linear model trained on 300 patients (make_clinical, seed 0)."""
    tmp = tmp_path_factory.mktemp("parent")
    make_clinical().to_csv(tmp / "patients.csv", index=False)
    (tmp / "schema.yaml").write_text(SCHEMA_YAML)
    return run_study(write_study(tmp, models=("linear",)), tmp / "out").bundle_path


def _new(bundle_path, n=1200, seed=7, shift=0.0):
    """New patients whose event follows the parent's own probability, ``shift`` added on the logit:
    0 = the parent is calibrated by construction; 1.0 = events far more frequent than it says."""
    df = make_clinical(n, seed=seed).drop(columns=["sbp", "event"])
    df["patient_id"] = [f"U{i:05d}" for i in range(n)]
    p = load_bundle(bundle_path).predict(df.set_index("patient_id"))["probability"].to_numpy()
    rng = np.random.default_rng(seed + 1000)
    df["event"] = (rng.random(n) < expit(logit(p) + shift)).astype(int)
    df["seen"] = np.repeat(["2026-01-15", "2026-02-15", "2026-03-15"], n // 3)
    return df


def test_drifted_outcome_promotes_the_recalibration_and_the_new_bundle_names_its_parent(parent, tmp_path):
    sums_before = (parent / "SHA256SUMS").read_text()
    data = tmp_path / "new.csv"
    _new(parent, seed=3, shift=1.0).to_csv(data, index=False)
    res = update_bundle(parent, data, outcome="event", time_col="seen", window="month", out=tmp_path / "u",
                        n_boot=200)
    ev = res["evidence"]
    assert res["decision"] == "promoted", res["reasons"]
    assert res["update"]["holdout"]["window"] == "2026-03"
    assert (res["update"]["n_update"], res["update"]["n_holdout"]) == (800, 400)
    # a monotone recalibration keeps the ranking: same AUROC, a DeLong difference of exactly 0
    assert ev["auroc"]["difference"]["estimate"] == 0.0
    assert ev["brier"]["difference"]["ci_high"] < 0
    assert abs(ev["calibration_in_the_large"]["candidate"]["estimate"]) < 0.3
    assert ev["calibration_in_the_large"]["current"]["estimate"] > 0.7
    # the shift was +1 on the logit: the fitted intercept finds it
    assert 0.7 < res["update"]["fitted"]["intercept"] < 1.3
    assert res["rule"] == PROMOTION_RULE
    assert json.loads((tmp_path / "u" / "promotion.json").read_text()) == res

    new = load_bundle(tmp_path / "u" / "model")
    assert isinstance(new.pipeline, Recalibrated)
    m = new.manifest
    assert m["model_version"] == 2 and m["parent"]["model_version"] == 1
    assert m["parent"]["sha256"] == bundle_module._sha256(parent / "SHA256SUMS")
    assert m["reference"]["n_rows"] == 800 and m["training_data"]["n_rows"] == 800
    assert m["update"]["strategy"] == "recalibrate"
    assert m["features"] == load_bundle(parent).manifest["features"]
    pts = make_clinical(5, seed=3).drop(columns=["sbp", "event"]).set_index("patient_id")
    p_old = load_bundle(parent).predict(pts)["probability"].to_numpy()
    p_new = new.predict(pts)["probability"].to_numpy()
    # every patient's risk rises with the recalibration (intercept ≈ +1)
    assert np.all(p_new > p_old) and set(new.predict(pts)["prediction_set"]) <= {"0", "1", "0|1", ""}
    assert (parent / "SHA256SUMS").read_text() == sums_before  # the parent is never touched


def test_a_worse_calibration_slope_blocks_promotion_despite_a_better_brier(parent, tmp_path):
    # seed 7: the slope fitted on the update months (b ≈ 0.94) leaves the held-out month's slope
    # further from 1 than the current model's, by more than the rule's 0.05
    data = _new(parent, seed=7, shift=1.0)
    res = update_bundle(parent, data, outcome="event", time_col="seen", window="month", out=tmp_path / "u",
                        n_boot=200)
    ev = res["evidence"]
    assert ev["brier"]["difference"]["ci_high"] < 0
    slope = ev["calibration_slope"]
    assert abs(slope["candidate"]["estimate"] - 1) > abs(slope["current"]["estimate"] - 1) + 0.05
    assert res["decision"] == "candidate" and res["reasons"][2].endswith("(worse)")
    loose = update_bundle(parent, data, outcome="event", time_col="seen", window="month", out=tmp_path / "u",
                          n_boot=200, calibration_tolerance=0.2)
    assert loose["decision"] == "promoted" and "+ 0.2" in loose["rule"]


def test_new_data_the_model_already_fits_keep_the_recalibration_a_candidate(parent, tmp_path):
    res = update_bundle(parent, _new(parent, seed=11), outcome="event", out=tmp_path / "u", n_boot=200)
    assert res["decision"] == "candidate", res["reasons"]
    assert res["update"]["holdout"]["window"] is None and "last 30%" in res["update"]["holdout"]["rule"]
    assert res["update"]["n_holdout"] == 360
    # a second update of the candidate composes into one wrapper and version 3
    res2 = update_bundle(tmp_path / "u" / "model", _new(parent, seed=12, shift=1.0), outcome="event",
                         out=tmp_path / "u2", n_boot=200)
    nested = load_bundle(tmp_path / "u2" / "model")
    assert nested.manifest["model_version"] == 3 and res2["parent"]["model_version"] == 2
    assert not isinstance(nested.pipeline.estimator, Recalibrated)


def test_refit_writes_a_loadable_bundle_fitted_on_the_update_rows(parent, tmp_path):
    res = update_bundle(parent, _new(parent, seed=21, shift=1.0), outcome="event", strategy="refit",
                        out=tmp_path / "u", n_boot=200)
    new = load_bundle(tmp_path / "u" / "model")
    assert not isinstance(new.pipeline, Recalibrated)
    assert new.manifest["training_data"]["n_rows"] == res["update"]["n_update"] == 840
    assert res["update"]["training_rows"] == "update rows only"
    # a refit changes the ranking: the DeLong difference is not exactly 0
    assert res["evidence"]["auroc"]["difference"]["estimate"] != 0.0
    assert res["decision"] in ("promoted", "candidate")
    pts = make_clinical(5, seed=3).drop(columns=["sbp", "event"]).set_index("patient_id")
    assert new.predict(pts)["probability"].between(0, 1).all()


def test_bad_inputs_are_refused_with_clear_errors(parent, tmp_path):
    data = _new(parent, n=300, seed=31)
    with pytest.raises(ValidationError, match="outcome_x.*not found in the new data"):
        update_bundle(parent, data, outcome="outcome_x", out=tmp_path / "a")
    with pytest.raises(ValidationError, match=r"the held-out part has 45 rows \(fewer than 50\)"):
        update_bundle(parent, data.iloc[:150], outcome="event", out=tmp_path / "b")
    with pytest.raises(OptionError, match="strategy"):
        update_bundle(parent, data, outcome="event", strategy="retrain", out=tmp_path / "c")
    with pytest.raises(OptionError, match="together"):
        update_bundle(parent, data, outcome="event", time_col="seen", out=tmp_path / "d")
    assert not (tmp_path / "b").exists()


def test_a_continuous_model_is_refused(parent, tmp_path):
    b = load_bundle(parent)
    b.manifest = {**b.manifest, "task": "continuous"}  # what a continuous study's bundle says
    with pytest.raises(OptionError, match="binary models; this bundle's task is 'continuous'"):
        update_bundle(b, _new(parent, n=300, seed=4), outcome="event", out=tmp_path / "u")
    assert not (tmp_path / "u").exists()


def test_recalibrated_composes_exactly():
    class Fixed:
        classes_ = np.array([0, 1])

        def predict_proba(self, X):
            p = np.asarray(X, dtype=float)[:, 0]
            return np.column_stack([1 - p, p])

    X = pd.DataFrame({"p": [0.1, 0.5, 0.9]})
    inner = Recalibrated(Fixed(), 0.5, 2.0)
    got = inner.predict_proba(X)[:, 1]
    assert np.allclose(got, expit(0.5 + 2.0 * logit(X["p"].to_numpy())))
    assert list(inner.predict(X)) == [0, 1, 1]


def test_pmed_update_command_writes_the_candidate_and_the_decision(parent, tmp_path):
    import json

    from pmed.cli import main

    data = tmp_path / "new.csv"
    _new(parent, seed=3, shift=1.0).to_csv(data, index=False)
    assert main(["update", "--model", str(parent), "--data", str(data), "--outcome", "event",
                 "--time-col", "seen", "--window", "month", "--out", str(tmp_path / "u")]) == 0
    promo = json.loads((tmp_path / "u" / "promotion.json").read_text())
    assert promo["decision"] == "promoted" and load_bundle(tmp_path / "u" / "model").manifest["model_version"] == 2
    assert main(["update", "--model", str(parent), "--data", str(data), "--outcome", "event",
                 "--strategy", "retrain", "--out", str(tmp_path / "v")]) == 2  # not a strategy
