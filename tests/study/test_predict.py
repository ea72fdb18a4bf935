import pandas as pd

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
