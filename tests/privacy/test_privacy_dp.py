"""Differentially private model families (pmed.privacy.dp): dp_logistic and dp_mlp."""

import json
from importlib.util import find_spec

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

if find_spec("diffprivlib") is None:  # not importorskip: diffprivlib imports only through pmed's shim
    pytest.skip("diffprivlib is not installed (extra privacy)", allow_module_level=True)

from pmed.errors import OptionError, StudyError  # noqa: E402
from pmed.privacy.dp import (  # noqa: E402
    DPLogisticClassifier,
    DPMLPClassifier,
    default_delta,
    privacy_budget,
    register_privacy_families,
)

register_privacy_families()  # until pmed.models registers them itself (idempotent)


def _study(folder, models: str):
    from conftest import SCHEMA_YAML, make_clinical

    make_clinical().to_csv(folder / "patients.csv", index=False)
    (folder / "schema.yaml").write_text(SCHEMA_YAML)
    p = folder / "study.yaml"
    p.write_text(f"""\
name: dp-test
data:
  patients: patients.csv
  schema: schema.yaml
  outcomes: [sbp]
target: {{column: event, task: binary}}
models:
{models}
evaluation: {{folds: 3, repeats: 1, bootstrap: 50, coefficient_bootstrap: 0, report: false}}
seed: 0
""")
    return p


def _easy(n=600, d=10, seed=0):
    """Independent standard-normal features, signal in two: a random direction has AUROC ≈ 0.5."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * X[:, 0] - 1.5 * X[:, 1])))).astype(int)
    return X, y


def test_study_flow_budget_in_bundle(tmp_path):
    pytest.importorskip("opacus")
    from conftest import make_clinical
    from pmed.study import load_bundle, run_study

    study = _study(tmp_path, "  - family: dp_logistic\n    params: {epsilon: 1.0, random_state: 0}\n"
                             "  - family: dp_mlp\n    params: {epsilon: 1.0, epochs: 3, random_state: 0}")
    res = run_study(study, tmp_path / "out")
    assert set(res.metrics["models"]) == {"dp_logistic", "dp_mlp"}
    manifest = json.loads((res.bundle_path / "manifest.json").read_text())
    priv = manifest["privacy"]
    assert priv["family"] == res.selected == manifest["model"]["family"]
    assert priv["noise_seed"] == "fixed"  # random_state was set: the manifest says so
    if res.selected == "dp_logistic":
        assert priv["epsilon"] == 1.0 and priv["delta"] == 0.0 and priv["data_norm"] > 0
    else:
        assert 0.9 < priv["epsilon"] <= 1.0 and priv["delta"] == default_delta(300) and priv["accountant"] == "rdp"
    b = load_bundle(res.bundle_path)  # the new estimator types are trusted by the bundle loader
    pred = b.predict(make_clinical(20, seed=3).drop(columns=["event", "sbp"]).set_index("patient_id"))
    assert pred.iloc[:, 0].between(0, 1).all()


def test_both_estimators_round_trip_through_the_bundle_format(tmp_path):
    pytest.importorskip("opacus")
    import skops.io as sio

    from pmed.study.bundle import _load_trusted

    X, y = _easy(120)
    for est in (DPLogisticClassifier(epsilon=1.0, random_state=0), DPMLPClassifier(epsilon=1.0, epochs=2,
                                                                                   random_state=0)):
        est.fit(X, y)
        f = tmp_path / f"{type(est).__name__}.skops"
        sio.dump(est, f)
        back = _load_trusted(f)
        np.testing.assert_allclose(back.predict_proba(X), est.predict_proba(X))
        assert back.privacy_budget_ == est.privacy_budget_


def test_model_report_shows_the_budget(tmp_path):
    from pmed.report.html import model_report

    X, y = _easy(100)
    budget = DPLogisticClassifier(epsilon=0.5).fit(X, y).privacy_budget_
    ev = {"n": 100, "n_events": 40, "prevalence": 0.4, "input": {"outcome": "y"}, "models": {}}
    html = model_report(ev, tmp_path / "r.html", context={"privacy": budget}).read_text()
    assert "Differential privacy of the selected model" in html and "ε = 0.5, δ = 0" in html
    assert "objective perturbation" in html and "Warning" not in html


@pytest.mark.parametrize("family", ["dp_logistic", "dp_mlp"])
@pytest.mark.parametrize("params", ["{epsilon: 0}", "{epsilon: -1.0}", "{}", "{epsilon: .inf}"])
def test_epsilon_not_positive_is_refused_before_fitting(tmp_path, family, params):
    from pmed.study import run_study

    study = _study(tmp_path, f"  - family: {family}\n    params: {params}")
    with pytest.raises(StudyError, match=r"epsilon") as e:
        run_study(study, tmp_path / "out")
    assert "models[].params.epsilon" in str(e.value) and "epsilon > 0" in str(e.value)
    assert not (tmp_path / "out" / "model").exists()


@pytest.mark.parametrize("eps", [0.0, -0.5, float("nan"), None, "1"])
def test_estimators_refuse_bad_epsilon(eps):
    X, y = _easy(50)
    for cls in (DPLogisticClassifier, DPMLPClassifier):
        with pytest.raises(OptionError, match="epsilon"):
            cls(epsilon=eps).fit(X, y)


def test_utility_grows_with_epsilon():
    """ε = 1000 is close to the non-private model; ε = 0.01 is far below it (means over 5 noise
    draws, on data where a random coefficient direction scores AUROC ≈ 0.5)."""
    X, y = _easy()
    Xt, yt = _easy(seed=1)
    ref = roc_auc_score(yt, LogisticRegression().fit(X, y).decision_function(Xt))

    def auc(eps):
        return np.mean([roc_auc_score(yt, DPLogisticClassifier(epsilon=eps, random_state=s).fit(X, y)
                                      .decision_function(Xt)) for s in range(5)])

    assert ref > 0.85
    assert auc(1000.0) > ref - 0.01
    assert auc(0.01) < ref - 0.15


def test_secret_noise_by_default_and_clipping():
    X, y = _easy(200)
    a = DPLogisticClassifier(epsilon=1.0).fit(X, y)
    b = DPLogisticClassifier(epsilon=1.0).fit(X, y)
    assert not np.allclose(a.coef_, b.coef_)  # no seed: fresh noise each time
    assert a.privacy_budget_["noise_seed"].startswith("secret")
    c = DPLogisticClassifier(epsilon=1.0, random_state=4).fit(X, y)
    d = DPLogisticClassifier(epsilon=1.0, random_state=4).fit(X, y)
    np.testing.assert_array_equal(c.coef_, d.coef_)
    # data_norm defaults to sqrt(n_features); rows beyond it are clipped (here: about half)
    assert c.privacy_budget_["data_norm"] == pytest.approx(np.sqrt(10))
    assert 0.2 < c.clipped_fraction_ < 0.8
    # a huge row cannot move the model more than a row on the sphere of radius data_norm
    X2 = X.copy()
    X2[0] *= 1e6
    e = DPLogisticClassifier(epsilon=1.0, random_state=4, data_norm=1.0).fit(X, y)
    f = DPLogisticClassifier(epsilon=1.0, random_state=4, data_norm=1.0).fit(X2, y)
    assert np.abs(e.coef_ - f.coef_).max() < 0.5


def test_opacus_reports_at_most_the_requested_epsilon():
    pytest.importorskip("opacus")
    X, y = _easy(300)
    for eps in (0.1, 1.0):
        m = DPMLPClassifier(epsilon=eps, epochs=3, random_state=0).fit(X, y)
        assert 0 < m.epsilon_ <= eps and m.epsilon_ > 0.8 * eps
        assert m.privacy_budget_["epsilon_target"] == eps and m.delta_ == default_delta(300)
        assert m.noise_multiplier_ > 0 and m.n_steps_ > 0
        p = m.predict_proba(X)
        assert p.shape == (300, 2) and np.allclose(p.sum(1), 1)
    with pytest.raises(OptionError, match="delta"):
        DPMLPClassifier(epsilon=1.0, delta=1.5).fit(X, y)


def test_privacy_budget_composes_over_several_fits():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _easy(300)
    one = make_pipeline(StandardScaler(), DPLogisticClassifier(epsilon=0.5, random_state=0)).fit(X, y)
    assert privacy_budget(one)["epsilon"] == 0.5
    three = CalibratedClassifierCV(DPLogisticClassifier(epsilon=0.5, random_state=0), cv=3).fit(X, y)
    b = privacy_budget(three)
    assert b["n_fits"] == 3 and b["epsilon"] == pytest.approx(1.5)
    assert privacy_budget(LogisticRegression().fit(X, y)) is None
    assert privacy_budget(pd.DataFrame()) is None
