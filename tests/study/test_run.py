import json

import numpy as np
import pandas as pd
import pytest

from conftest import write_study
from pmed.errors import IDMismatchError, ValidationError
from pmed.study import load_bundle, predict_patients, run_study


def test_binary_study_writes_every_output(clinical_files, tmp_path):
    study = write_study(tmp_path, models=("linear", "lightgbm", "svm"))
    r = run_study(study, tmp_path / "out")
    out = tmp_path / "out"
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["models"]) == {"linear", "lightgbm", "svm"}
    assert m["selected_model"] == max(m["models"], key=lambda k: m["models"][k]["metrics"]["auroc"]["estimate"])
    for model in m["models"].values():
        for k in ("auroc", "auprc", "brier", "accuracy", "balanced_accuracy", "sensitivity",
                  "specificity", "f1"):
            assert set(model["metrics"][k]) >= {"estimate", "ci_low", "ci_high", "method"}
        assert set(model["per_class"]) == {"0", "1"}
    # the known signal (age, smoking, CRP) is found
    assert m["models"]["linear"]["metrics"]["auroc"]["estimate"] > 0.7
    oof = pd.read_csv(out / "oof_predictions.csv")
    assert list(oof.columns) == ["patient_id", "model", "repeat", "fold", "outcome", "prediction"]
    assert len(oof) == 3 * 300 and oof["prediction"].between(0, 1).all()
    imp = pd.read_csv(out / "feature_importance.csv")
    assert list(imp.columns) == ["feature", "importance", "rank", "method"]
    # named as in the input: one-hot 'smoking_current' is grouped back to 'smoking'
    assert set(imp["feature"]) == {"age", "sex", "bmi", "smoking", "diabetes", "crp"}
    assert imp["rank"].tolist() == list(range(1, 7))
    assert "age" in imp["feature"].head(3).tolist()
    for png in ("roc", "pr", "confusion_matrix", "importance"):
        assert (out / "plots" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    assert r.bundle_path == out / "model"


def test_same_study_twice_gives_identical_metrics(clinical_files, tmp_path):
    study = write_study(tmp_path, models=("linear", "random_forest", "lightgbm"))
    run_study(study, tmp_path / "a")
    run_study(study, tmp_path / "b")
    for f in ("metrics.json", "oof_predictions.csv", "feature_importance.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_continuous_study(clinical_files, tmp_path):
    study = write_study(tmp_path, target="sbp", task="continuous", models=("linear", "elastic_net"))
    r = run_study(study, tmp_path / "out")
    m = r.metrics
    assert m["select_by"] == "r2"
    r2 = m["models"]["linear"]["metrics"]["r2"]["estimate"]
    assert 0.5 < r2 < 0.95  # sbp = f(age, bmi) + noise
    assert (tmp_path / "out" / "plots" / "predicted_vs_observed.png").exists()
    pred = predict_patients(r.bundle_path, clinical_files["new"])
    assert list(pred.columns) == ["prediction", "interval_low", "interval_high"]
    assert pred["prediction"].between(100, 200).all()
    # conformal intervals: symmetric around the prediction, covering ~90% out of fold
    assert (pred["interval_low"] < pred["prediction"]).all() and (pred["prediction"] < pred["interval_high"]).all()
    cov = m["conformal"]["cv_coverage"]["coverage"]
    assert cov["ci_low"] <= 0.9 <= cov["ci_high"] and 0.83 < cov["estimate"] < 0.97


def test_predict_new_patients(clinical_files, tmp_path):
    r = run_study(write_study(tmp_path), tmp_path / "out")
    pred = predict_patients(r.bundle_path, clinical_files["new"], out=tmp_path / "pred.csv")
    assert list(pred.index) == ["N0", "N1", "N2", "N3"]
    assert set(pred["prediction_set"]) <= {"0", "1", "0|1", ""}
    assert pred["probability"].between(0, 1).all()
    assert ((pred["probability"] >= 0.5).astype(int) == pred["predicted_class"]).all()
    # the reloaded bundle gives exactly the refitted model's predictions
    bundle = load_bundle(r.bundle_path)
    new = pd.read_csv(clinical_files["new"], dtype={"patient_id": str}).set_index("patient_id")
    X = bundle.check_features(new)
    np.testing.assert_allclose(bundle.pipeline.predict_proba(X)[:, 1], pred["probability"])
    assert pd.read_csv(tmp_path / "pred.csv")["probability"].round(10).tolist() == pred["probability"].round(10).tolist()


def test_predict_refuses_missing_and_out_of_schema(clinical_files, tmp_path):
    r = run_study(write_study(tmp_path), tmp_path / "out")
    new = pd.read_csv(clinical_files["new"])
    new.drop(columns=["crp"]).to_csv(tmp_path / "missing.csv", index=False)
    with pytest.raises(ValidationError, match="'crp' is declared in the schema but missing"):
        predict_patients(r.bundle_path, tmp_path / "missing.csv")
    new.assign(bmi=[25, 900, 25, 25]).to_csv(tmp_path / "bmi.csv", index=False)
    with pytest.raises(ValidationError, match="impossible value 900"):
        predict_patients(r.bundle_path, tmp_path / "bmi.csv")
    new.assign(sex=["F", "M", "X", "F"]).to_csv(tmp_path / "sex.csv", index=False)
    with pytest.raises(ValidationError, match="unknown categories 'X'"):
        predict_patients(r.bundle_path, tmp_path / "sex.csv")


def test_blocks_join_and_mismatched_ids_are_refused(clinical_files, tmp_path):
    ids = pd.read_csv(clinical_files["patients"])["patient_id"]
    rng = np.random.default_rng(0)
    pd.DataFrame({"patient_id": ids, "prs_cad": rng.normal(size=len(ids))}).to_csv(tmp_path / "prs.csv", index=False)
    study = write_study(tmp_path, models=("linear",), extra="")
    text = study.read_text().replace("  outcomes: [sbp]", "  outcomes: [sbp]\n  blocks: {prs: prs.csv}")
    study.write_text(text)
    r = run_study(study, tmp_path / "out")
    assert "prs_cad" in r.importance["feature"].tolist()
    with pytest.raises(ValidationError, match="needs block"):
        predict_patients(r.bundle_path, clinical_files["new"])
    pd.DataFrame({"patient_id": ["N0", "N1"], "prs_cad": [0.1, 0.2]}).to_csv(tmp_path / "newprs.csv", index=False)
    with pytest.raises(IDMismatchError, match="2 of the cohort.s 4 patients are missing from block .prs."):
        predict_patients(r.bundle_path, clinical_files["new"], blocks={"prs": tmp_path / "newprs.csv"})
    # the block's columns beside the patient's (a service request) give what the block file gives
    new = pd.read_csv(clinical_files["new"])
    prs = pd.DataFrame({"patient_id": new["patient_id"], "prs_cad": [0.3, -1.2, 0.0, 2.1]})
    prs.to_csv(tmp_path / "prs4.csv", index=False)
    from_file = predict_patients(r.bundle_path, clinical_files["new"], blocks={"prs": tmp_path / "prs4.csv"})
    inline = predict_patients(r.bundle_path, new.assign(prs_cad=prs["prs_cad"]))
    pd.testing.assert_frame_equal(inline, from_file)
    with pytest.raises(ValidationError, match="needs block"):  # a block column short: the block is asked for
        predict_patients(r.bundle_path, new)


def test_nested_tuning_and_recalibration_run_and_bundle(clinical_files, tmp_path):
    study = write_study(tmp_path, models=("linear",))
    text = study.read_text().replace(
        "  - family: linear",
        "  - family: linear\n    grid: {C: [0.01, 1.0]}\n"
        "  - family: random_forest\n    name: rf_isotonic\n    params: {n_estimators: 30}\n"
        "    calibration: isotonic")
    text = text.replace("coefficient_bootstrap: 0}", "coefficient_bootstrap: 0, groups: [sex], inner_folds: 2}")
    study.write_text(text)
    r = run_study(study, tmp_path / "out")
    assert set(r.metrics["models"]) == {"linear", "rf_isotonic"}
    assert r.metrics["models"]["linear"]["grid"] == {"C": [0.01, 1.0]}
    # the clinical evaluation ran with the declared subgroup, and the report exists
    ev = json.loads((tmp_path / "out" / "evaluation" / "metrics.json").read_text())
    assert set(ev["models"]) == {"linear", "rf_isotonic"} and "sex" in ev["models"]["linear"]["groups"]
    assert (tmp_path / "out" / "evaluation" / "report.html").exists()
    pred = predict_patients(r.bundle_path, clinical_files["new"])
    assert pred["probability"].between(0, 1).all()


def test_explanations_of_the_selected_model(clinical_files, tmp_path):
    study = write_study(tmp_path, models=("linear",))
    study.write_text(study.read_text().replace("coefficient_bootstrap: 0", "coefficient_bootstrap: 20"))
    run_study(study, tmp_path / "lin")
    coefs = pd.read_csv(tmp_path / "lin" / "evaluation" / "coefficients.csv")
    age = coefs[coefs["term"] == "age"].iloc[0]
    assert age["ci_low"] < age["coefficient"] < age["ci_high"] and age["coefficient"] > 0  # risk rises with age
    study = write_study(tmp_path, models=("lightgbm",))
    run_study(study, tmp_path / "gbm")
    shap = pd.read_csv(tmp_path / "gbm" / "evaluation" / "shap_importance.csv")
    assert set(shap["feature"]) == {"age", "sex", "bmi", "smoking", "diabetes", "crp"}  # grouped back
    assert (tmp_path / "gbm" / "evaluation" / "plots" / "shap_beeswarm.png").exists()
    assert "SHAP values of the selected model" in (tmp_path / "gbm" / "evaluation" / "report.html").read_text()


def test_model_blocks_select_a_tables_columns_and_join_named_features():
    """models[].blocks: [patients] is the clinical-only baseline; with features, the union."""
    from pmed.cohort import Cohort
    from pmed.errors import StudyError
    from pmed.study.run import model_features
    from pmed.study.spec import ModelSpec

    ids = pd.Index(["a", "b", "c"], name="patient_id")
    cohort = Cohort(pd.DataFrame({"age": [50.0, 60, 70], "bmi": [20.0, 25, 30], "y": [0, 1, 0]}, index=ids),
                    outcomes=["y"])
    cohort.add_block("prs", pd.DataFrame({"prs_cad": [0.1, 0.2, 0.3]}, index=ids))
    cohort.add_block("wear", pd.DataFrame({"steps": [1.0, 2, 3], "hr": [60.0, 70, 80]}, index=ids))
    X = cohort.features(exclude=["bmi"])
    pick = lambda **kw: list(model_features(ModelSpec(family="linear", **kw), X, cohort).columns)  # noqa: E731
    assert pick(blocks=["patients"]) == ["age"]  # bmi excluded by the study, y an outcome
    assert pick(blocks=["patients", "prs"]) == ["age", "prs_cad"]
    assert pick(blocks=["patients"], features=["hr"]) == ["age", "hr"]
    assert pick() == ["age", "prs_cad", "steps", "hr"]
    with pytest.raises(StudyError, match="unknown block 'genotypes'.*") as err:
        pick(blocks=["genotypes"])
    assert "patients, prs, wear" in err.value.fix
