"""SHAP explanations on the probability scale, grouped to input features; coefficients; fallback."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pmed.errors import StudyError
from pmed.explain import (
    explain,
    global_importance,
    linear_coefficients,
    permutation_importance_table,
    top_factors,
)
from pmed.models import make_model
from pmed.models.importance import input_feature_of_outputs
from pmed.schema import ColumnSpec, TableSchema

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # shap 0.51 colour maps
needs_shap = pytest.mark.skipif(importlib.util.find_spec("shap") is None, reason="shap not installed")

FEATURES = ["age", "sex", "bmi", "smoking", "diabetes", "crp"]
N_EXPLAIN, N_BACKGROUND = 80, 50


def simulate(n: int = 400, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric, 0/1 and categorical features with missing values; age has by far the largest effect."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(30, 85, n).round(0)
    sex = rng.choice(["F", "M"], n)
    bmi = rng.normal(27, 4, n).round(1)
    smoking = rng.choice(["never", "former", "current"], n, p=[0.5, 0.3, 0.2]).astype(object)
    diabetes = (rng.random(n) < 0.2).astype(int)
    crp = rng.lognormal(0.5, 0.8, n).round(2)
    lin = (-0.8 + 0.09 * (age - 57) + 0.8 * (smoking == "current") + 0.3 * (smoking == "former")
           + 0.3 * np.log(crp) + 0.5 * diabetes)
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int), name="event")
    crp[rng.choice(n, n // 10, replace=False)] = np.nan
    smoking[rng.choice(n, n // 20, replace=False)] = np.nan
    X = pd.DataFrame({
        "age": age, "sex": pd.Categorical(sex, categories=["F", "M"]), "bmi": bmi,
        "smoking": pd.Categorical(smoking, categories=["never", "former", "current"]),
        "diabetes": diabetes, "crp": crp,
    }, index=pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id"))
    y.index = X.index
    return X, y


@pytest.fixture(scope="module")
def data():
    return simulate()


_FITTED: dict = {}
_EXPLAINED: dict = {}


def fitted(family: str, data):
    if family not in _FITTED:
        X, y = data
        params = {"n_estimators": 40} if family in ("random_forest", "lightgbm") else None
        _FITTED[family] = make_model(family, task="binary", X=X, params=params).fit(X, y)
    return _FITTED[family]


def explained(family: str, data):
    if family not in _EXPLAINED:
        X, _ = data
        _EXPLAINED[family] = explain(fitted(family, data), X.iloc[:N_EXPLAIN],
                                     background=X.iloc[-N_BACKGROUND:], max_background=N_BACKGROUND)
    return _EXPLAINED[family]


FAMILIES = [pytest.param("random_forest", marks=needs_shap), pytest.param("lightgbm", marks=needs_shap),
            "linear"]


@pytest.mark.parametrize("family", FAMILIES)
def test_local_accuracy_on_the_probability_scale(family, data):
    X, _ = data
    pipe = fitted(family, data)
    e = explained(family, data)
    p = pipe.predict_proba(X.iloc[:N_EXPLAIN])[:, 1]
    # base value: the mean *probability* over the background, not a log-odds
    assert e.scale == "probability"
    assert abs(e.base_value - pipe.predict_proba(X.iloc[-N_BACKGROUND:])[:, 1].mean()) < 1e-6
    np.testing.assert_allclose(e.prediction.to_numpy(), p)
    np.testing.assert_allclose(e.base_value + e.values.sum(axis=1).to_numpy(), p, rtol=0, atol=1e-6)
    assert e.max_local_error < 1e-6
    assert e.method == ("exact" if family == "linear" else "tree")
    assert e.values.abs().to_numpy().max() < 1


@pytest.mark.parametrize("family", FAMILIES)
def test_strongest_true_effect_ranks_first(family, data):
    g = global_importance(explained(family, data))
    assert list(g.columns) == ["feature", "mean_abs_shap", "rank"]
    assert g.loc[0, "feature"] == "age" and g.loc[0, "rank"] == 1
    assert g["mean_abs_shap"].is_monotonic_decreasing and sorted(g["feature"]) == sorted(FEATURES)


@needs_shap
def test_one_column_per_input_feature_with_one_hot_levels_summed(data):
    import shap

    X, _ = data
    pipe = fitted("lightgbm", data)
    e = explained("lightgbm", data)
    assert list(e.values.columns) == FEATURES and list(e.data.columns) == FEATURES
    assert e.values.index.equals(X.index[:N_EXPLAIN])
    pd.testing.assert_frame_equal(e.data, X.iloc[:N_EXPLAIN])
    # shap on the encoded columns, by hand: smoking's one-hot levels (incl. "missing") and
    # crp's value + missingness indicator add up to the grouped value
    pre, model = pipe.named_steps["preprocess"], pipe.named_steps["model"]
    ex = shap.TreeExplainer(model, data=pre.transform(X.iloc[-N_BACKGROUND:]),
                            feature_perturbation="interventional", model_output="probability")
    sv = np.asarray(ex.shap_values(pre.transform(X.iloc[:N_EXPLAIN])))
    owners = np.array(input_feature_of_outputs(pipe))
    assert (owners == "smoking").sum() == 4 and (owners == "crp").sum() == 2
    for feat in FEATURES:
        np.testing.assert_allclose(e.values[feat], sv[:, owners == feat].sum(axis=1), atol=1e-9)


def test_feature_level_masking_exact_and_permutation_agree(data):
    X, _ = data
    pipe = fitted("linear", data)
    exact = explained("linear", data)
    perm = explain(pipe, X.iloc[:N_EXPLAIN], background=X.iloc[-N_BACKGROUND:],
                   max_background=N_BACKGROUND, method="permutation", n_permutations=10)
    assert perm.method == "permutation"
    # sampled values, but every permutation telescopes: local accuracy stays exact
    assert perm.max_local_error < 1e-9
    assert (perm.values - exact.values).abs().to_numpy().max() < 0.02
    # background subsampling is seeded
    a = explain(pipe, X.iloc[:3], background=X, max_background=20, seed=3)
    b = explain(pipe, X.iloc[:3], background=X, max_background=20, seed=3)
    pd.testing.assert_frame_equal(a.values, b.values)


@needs_shap
def test_regressor_is_explained_on_the_outcome_scale(data):
    X, _ = data
    y = 100 + 0.8 * X["age"] + np.random.default_rng(0).normal(0, 5, len(X))
    for family, method in [("random_forest", "tree"), ("linear", "linear")]:
        pipe = make_model(family, task="continuous", X=X,
                          params={"n_estimators": 30} if family == "random_forest" else None).fit(X, y)
        e = explain(pipe, X.iloc[:30], background=X.iloc[-30:])
        assert e.scale == "outcome" and e.method == method
        np.testing.assert_allclose(e.base_value + e.values.sum(axis=1), pipe.predict(X.iloc[:30]),
                                   rtol=0, atol=1e-6 * 200)
        assert global_importance(e).loc[0, "feature"] == "age"


def test_top_factors_name_the_feature_and_its_direction(data):
    X, _ = data
    pipe = fitted("linear", data)
    new = X.iloc[:2].copy()
    new.index = pd.Index(["OLD", "YOUNG"], name="patient_id")
    new["age"] = [84.0, 32.0]
    new["smoking"] = pd.Categorical(["current", "never"], categories=X["smoking"].cat.categories)
    new["crp"] = [np.nan, 1.0]
    new["diabetes"] = [0, 0]
    e = explain(pipe, new, background=X.iloc[-N_BACKGROUND:])
    schema = TableSchema(columns={"age": ColumnSpec(type="float", unit="years")})
    old = top_factors(e, "OLD", n=3, units=schema)
    assert old[0].startswith("Age 84 years raises the predicted risk by ")
    assert old[0].endswith("percentage points")
    assert len(old) == 3
    young = top_factors(e, "YOUNG", n=len(FEATURES), units={"age": "years"}, labels={"crp": "CRP"})
    assert any(s.startswith("Age 32 years lowers the predicted risk by") for s in young)
    assert any(s.startswith("Smoking: never lowers") for s in young)
    assert any(s.startswith("CRP 1 ") for s in young)  # a 1.0 of a numeric feature is not "yes"
    assert any(s.startswith("Diabetes: no ") for s in young)  # 0/1 features read as no/yes
    everything = top_factors(e, "OLD", n=len(FEATURES))
    assert any(s.startswith("Crp not recorded ") for s in everything)
    # every sentence's direction is the sign of the patient's SHAP value, strongest first
    for pid, sentences in [("OLD", everything), ("YOUNG", young)]:
        row = e.values.loc[pid]
        feats = row.abs().sort_values(ascending=False).index[:len(sentences)]
        for s, f in zip(sentences, feats, strict=True):
            assert ("raises" if row[f] > 0 else "lowers") in s
    with pytest.raises(KeyError):
        top_factors(e, "NOBODY")


def test_linear_coefficient_cis_contain_the_true_coefficients():
    rng = np.random.default_rng(7)
    n = 2000
    x1, x2 = rng.normal(0, 2, n), rng.normal(0, 1, n)
    b = (rng.random(n) < 0.3).astype(int)
    noise = rng.normal(0, 1, n)
    grp = rng.choice(["a", "b", "c"], n)
    beta = {"x1": 0.6, "x2": -0.5, "b": 0.8, "noise": 0.0}
    lin = -0.5 + beta["x1"] * x1 + beta["x2"] * x2 + beta["b"] * b + 0.4 * (grp == "b")
    y = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int)
    noise[rng.choice(n, 200, replace=False)] = np.nan
    X = pd.DataFrame({"x1": x1, "x2": x2, "b": b, "noise": noise,
                      "grp": pd.Categorical(grp)})
    pipe = make_model("linear", task="binary", X=X).fit(X, y)
    t = linear_coefficients(pipe, X, y, n_boot=40, seed=0)
    assert list(t.columns) == ["term", "input_feature", "coefficient", "ci_low", "ci_high",
                               "odds_ratio", "or_ci_low", "or_ci_high", "scale"]
    assert t.loc[0, "term"] == "(intercept)" and t.attrs["n_boot_used"] == 40
    t = t.set_index("term")
    sd = pipe.named_steps["preprocess"].named_transformers_["num"].named_steps["scale"].scale_
    # numeric coefficients are per SD of the feature; the 0/1 feature is unscaled
    truth = {"x1": beta["x1"] * sd[0], "x2": beta["x2"] * sd[1], "noise": 0.0, "b": beta["b"]}
    for term, true in truth.items():
        assert t.loc[term, "ci_low"] < true < t.loc[term, "ci_high"], (term, true, t.loc[term].to_dict())
    assert t.loc["x1", "scale"].startswith("log-odds per SD")
    assert t.loc["missingindicator_noise", "input_feature"] == "noise"
    assert {"grp_a", "grp_b", "grp_c"} <= set(t.index)
    # levels are kept in full: their differences are the contrasts
    assert abs((t.loc["grp_b", "coefficient"] - t.loc["grp_a", "coefficient"]) - 0.4) < 0.25
    np.testing.assert_allclose(t["odds_ratio"], np.exp(t["coefficient"]))
    assert (t["or_ci_low"] <= t["odds_ratio"]).all() and (t["odds_ratio"] <= t["or_ci_high"]).all()


def test_permutation_importance_is_the_fallback_for_an_svm(data):
    X, y = data
    svm = make_model("svm", task="binary", X=X).fit(X, y)
    with pytest.raises(StudyError, match="coefficient"):
        linear_coefficients(svm, X, y, n_boot=0)
    t = permutation_importance_table(svm, X, y, n_repeats=3, seed=0)
    assert list(t.columns) == ["feature", "importance", "ci_low", "ci_high", "rank"]
    assert sorted(t["feature"]) == sorted(FEATURES) and t.attrs["scoring"] == "roc_auc"
    assert t.loc[0, "feature"] == "age" and t.loc[0, "ci_low"] > 0
    assert ((t["ci_low"] <= t["importance"]) & (t["importance"] <= t["ci_high"])).all()


@needs_shap
def test_beeswarm_and_waterfall_are_png_figures(data, tmp_path):
    from pmed.plots._base import save
    from pmed.plots.explain import beeswarm, waterfall

    e = explained("lightgbm", data)
    for name, fig in [("bee", beeswarm(e, max_display=4)), ("wf", waterfall(e, e.values.index[0]))]:
        path = save(fig, tmp_path / f"{name}.png")
        assert path.read_bytes()[:4] == b"\x89PNG"
    # the grouped shap.Explanation: one column per input feature, categories as text
    s = e.to_shap()
    assert s.values.shape == (N_EXPLAIN, len(FEATURES)) and list(s.feature_names) == FEATURES
    assert s.display_data[0, FEATURES.index("sex")] in ("F", "M")


def test_import_does_not_load_shap_or_matplotlib():
    code = ("import sys, pmed.explain; "
            "print(','.join(m for m in ('shap', 'matplotlib', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
