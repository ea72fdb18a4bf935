import pandas as pd
import pytest

from conftest import write_study
from pmed.study import explain_patient, load_bundle, run_study
from pmed.study.predict import new_patient_features


def test_explain_patient_names_the_factor_that_moved_the_prediction(clinical_files, tmp_path):
    r = run_study(write_study(tmp_path, models=("linear",)), tmp_path / "out")
    bundle = load_bundle(r.bundle_path)
    new = pd.read_csv(clinical_files["new"])
    new.loc[0, ["age", "smoking", "crp", "diabetes"]] = [84.0, "never", 1.6, 0]
    new.to_csv(tmp_path / "new.csv", index=False)
    X = new_patient_features(bundle, tmp_path / "new.csv")
    f = explain_patient(bundle, X.iloc[[0]], top=3)
    assert list(f.columns) == ["feature", "value", "typical_value", "contribution"]
    # an 84-year-old in a cohort whose risk rises with age: age first, pushing the risk up
    assert f.loc[0, "feature"] == "age" and f.loc[0, "contribution"] > 0.05
    # contributions are differences of real predictions
    typical = X.iloc[[0]].assign(age=bundle.manifest["reference_values"]["age"])
    expected = bundle.predict(X.iloc[[0]])["probability"].iloc[0] - bundle.predict(typical)["probability"].iloc[0]
    assert abs(f.loc[0, "contribution"] - expected) < 1e-12
    assert f["contribution"].abs().is_monotonic_decreasing


def test_factors_of_many_rows_equal_one_what_if_prediction_each(clinical_files, tmp_path):
    # LightGBM: scored through the numpy replay of its preprocessing (ModelBundle.scorer)
    from pmed.models.compiled import CompiledPipeline
    from pmed.study.predict import predict_and_explain

    r = run_study(write_study(tmp_path, models=("lightgbm",)), tmp_path / "out")
    bundle = load_bundle(r.bundle_path)
    assert isinstance(bundle.scorer(), CompiledPipeline)
    new = pd.read_csv(clinical_files["new"])
    ref = bundle.manifest["reference_values"]
    new.loc[0, ["crp", "smoking"]] = [float("nan"), None]  # missing: never typical
    new.loc[1, ["age", "sex"]] = [ref["age"], ref["sex"]]  # already typical: no factor
    X = new_patient_features(bundle, new.head(8))
    pred, factors = predict_and_explain(bundle, X, top=99)
    slow = bundle.pipeline.predict_proba(bundle.check_features(X))[:, 1]  # scikit-learn's own path
    assert pred["probability"].to_numpy() == pytest.approx(slow, abs=0, rel=0)
    for i, f in enumerate(factors):
        row = X.iloc[[i]]
        if i == 1:
            assert not {"age", "sex"} & set(f["feature"])
        assert "crp" in set(f["feature"]) if i == 0 else True
        for feat, contrib in zip(f["feature"], f["contribution"], strict=True):
            typical = row.copy()
            typical[feat] = pd.Series([ref[feat]], index=row.index).astype(row[feat].dtype)
            expected = pred["probability"].iloc[i] - bundle.predict(typical)["probability"].iloc[0]
            assert contrib == pytest.approx(expected, abs=1e-12)
        assert f["contribution"].abs().is_monotonic_decreasing
