"""Shapley values of survival models on the chance of the event by a horizon, 1 − S(h | x)."""

from __future__ import annotations

import re
import warnings
from itertools import combinations
from math import factorial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sksurv")
pytest.importorskip("lifelines")

from pmed.cli import main  # noqa: E402
from pmed.errors import OptionError, PmedWarning  # noqa: E402
from pmed.explain import explain, top_factors  # noqa: E402
from pmed.models import make_model  # noqa: E402
from pmed.survival.models import make_surv_y, predict_survival  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # shap 0.51 colour maps

H = 700.0


def _cohort(n: int = 250, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """Two numeric features and a 3-level category with proportional hazards."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(50, 10, size=n)
    grp = rng.choice(["a", "b", "c"], n)
    lin = 0.7 * x1 - 0.03 * (x2 - 50) + 0.6 * (grp == "c") - 0.4 * (grp == "b")
    T = rng.exponential(1 / (0.001 * np.exp(lin)))
    C = rng.uniform(300, 1500, n)
    X = pd.DataFrame({"x1": x1, "x2": x2.round(1), "grp": pd.Categorical(grp, categories=["a", "b", "c"])},
                     index=pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id"))
    return X, make_surv_y(np.minimum(T, C) + 0.1, (T <= C).astype(int))


@pytest.fixture(scope="module")
def data():
    return _cohort()


_FITTED: dict = {}


def fitted(family: str, data):
    if family not in _FITTED:
        X, y = data
        params = {"n_estimators": 30, "random_state": 0} if family == "rsf" else None
        _FITTED[family] = make_model(family, task="survival", X=X, params=params).fit(X, y)
    return _FITTED[family]


def _event_prob(model, rows: pd.DataFrame) -> np.ndarray:
    return 1.0 - predict_survival(model, rows, [H])[:, 0]


def test_cox_exact_values_equal_brute_force_shapley(data):
    """Against one reference row, v(S) = 1 − S(h | patient's values in S, reference's elsewhere);
    the Shapley formula over all coalitions, computed here in the input table, must agree."""
    X, _ = data
    model = fitted("cox", data)
    patients, ref = X.iloc[:6], X.iloc[[100]]
    expl = explain(model, patients, background=ref, horizon=H, time_unit="days")
    assert expl.method == "exact" and expl.n_background == 1 and expl.horizon == H
    assert expl.scale == "probability of the event by 700 days"
    feats = list(X.columns)
    p = len(feats)
    for pid in patients.index:

        def v(S, pid=pid):
            row = ref.copy()
            for f in S:
                row[f] = patients.loc[[pid], f].to_numpy()
            return float(_event_prob(model, row)[0])

        for f in feats:
            others = [g for g in feats if g != f]
            phi = sum(factorial(len(S)) * factorial(p - len(S) - 1) / factorial(p) * (v((*S, f)) - v(S))
                      for k in range(p) for S in combinations(others, k))
            assert expl.values.loc[pid, f] == pytest.approx(phi, abs=1e-10), (pid, f)
    # base: the reference's chance of the event; prediction: the patient's; local accuracy exact
    assert expl.base_value == pytest.approx(float(_event_prob(model, ref)[0]), abs=1e-12)
    np.testing.assert_allclose(expl.prediction, _event_prob(model, patients), atol=1e-12)
    np.testing.assert_allclose(expl.base_value + expl.values.sum(axis=1), expl.prediction, atol=1e-12)
    assert expl.max_local_error < 1e-12
    # the category (3 levels, 2 dummies after drop-first) is one player: it moves the prediction
    assert expl.values["grp"].abs().max() > 0.01


def test_rsf_values_sum_to_prediction_minus_base(data):
    X, _ = data
    model = fitted("rsf", data)
    expl = explain(model, X.iloc[:15], background=X.iloc[150:], max_background=20, horizon=H)
    assert expl.method == "exact" and expl.n_background == 20
    np.testing.assert_allclose(expl.values.sum(axis=1), expl.prediction - expl.base_value, atol=1e-10)
    np.testing.assert_allclose(expl.prediction, _event_prob(model, X.iloc[:15]), atol=1e-12)
    # the base value is the mean chance of the event over the background actually used
    assert 0 < expl.base_value < 1
    assert expl.values.abs().to_numpy().max() > 0.01  # x1 has a real effect


def test_permutation_keeps_local_accuracy(data):
    X, _ = data
    model = fitted("cox", data)
    expl = explain(model, X.iloc[:5], background=X.iloc[200:210], horizon=H, method="permutation",
                   n_permutations=3)
    assert expl.method == "permutation"
    np.testing.assert_allclose(expl.base_value + expl.values.sum(axis=1), expl.prediction, atol=1e-12)
    # an estimate of the exact values (3 orders of 3 players, each walked both ways)
    exact = explain(model, X.iloc[:5], background=X.iloc[200:210], horizon=H)
    np.testing.assert_allclose(expl.values, exact.values, atol=0.05)


def test_more_than_ten_features_are_sampled(data):
    X, y = data
    rng = np.random.default_rng(0)
    wide = X[["x1", "x2"]].assign(**{f"z{k}": rng.normal(size=len(X)) for k in range(9)})
    model = make_model("cox", task="survival", X=wide).fit(wide, y)
    expl = explain(model, wide.iloc[:4], background=wide.iloc[100:110], horizon=H, n_permutations=2)
    assert expl.method == "permutation" and expl.values.shape == (4, 11)
    np.testing.assert_allclose(expl.base_value + expl.values.sum(axis=1), _event_prob(model, wide.iloc[:4]),
                               atol=1e-12)


def test_km_has_all_zero_values(data):
    X, _ = data
    model = fitted("km", data)
    expl = explain(model, X.iloc[:10], background=X.iloc[100:140], horizon=H)
    assert np.all(expl.values.to_numpy() == 0.0)
    np.testing.assert_allclose(expl.prediction, expl.base_value, atol=1e-15)
    assert top_factors(expl, X.index[0]) == []


def test_horizon_refused_where_it_does_not_apply(data):
    X, y = data
    cox = fitted("cox", data)
    binary = make_model("linear", task="binary", X=X).fit(X, pd.Series(y["event"].astype(int), index=X.index))
    with pytest.raises(OptionError, match="horizon is for survival models; this pipeline's model is LogisticRegression"):
        explain(binary, X.iloc[:2], horizon=H)
    for bad in (0, -5, float("nan")):
        with pytest.raises(OptionError, match="> 0"):
            explain(cox, X.iloc[:2], horizon=bad)
    with pytest.raises(OptionError, match="beyond the last follow-up"):
        explain(cox, X.iloc[:2], horizon=cox[-1].max_time_ + 1)
    for m in ("tree", "linear"):
        with pytest.raises(OptionError, match=f"method '{m}'"):
            explain(cox, X.iloc[:2], horizon=H, method=m)


def test_sentences_and_waterfall_speak_of_the_horizon(data):
    X, _ = data
    model = fitted("cox", data)
    expl = explain(model, X.iloc[:3], background=X.iloc[[100]], horizon=1825 / 2.5, time_unit="days")
    pid = X.index[0]
    sentences = top_factors(expl, pid, n=3, units={"x2": "mmHg"})
    strongest = expl.values.loc[pid].abs().idxmax()
    v = float(expl.values.loc[pid, strongest])
    m = re.fullmatch(r"(.+) (raises|lowers) the chance of the event within 730 days by ([\d.]+) "
                     r"percentage points?", sentences[0])
    assert m, sentences[0]
    assert m.group(2) == ("raises" if v > 0 else "lowers")
    assert float(m.group(3)) == pytest.approx(100 * abs(v), abs=0.051 if 100 * abs(v) < 9.95 else 0.51)
    pytest.importorskip("matplotlib")
    from pmed.plots.explain import waterfall

    fig = waterfall(expl, pid)
    assert fig.axes[0].get_title() == f"patient {pid}: chance of the event within 730 days"


# ------------------------------------------------------------------------ patient reports
def _run(folder: Path, family: str) -> Path:
    X, y = _cohort(120, seed=5)
    df = X.reset_index().assign(os_days=y["time"].round(1), died=y["event"].astype(int))
    df.to_csv(folder / "patients.csv", index=False)
    (folder / "study.yaml").write_text(
        "name: surv\ndata: {patients: patients.csv}\n"
        "target: {task: survival, time: os_days, event: died, horizons: [365, 730], time_unit: days}\n"
        f"models: [{{family: {family}}}]\nevaluation: {{folds: 2, bootstrap: 0}}\nseed: 0\n")
    assert main(["run", str(folder / "study.yaml"), "--out", str(folder / "out")]) == 0
    _cohort(20, seed=9)[0].head(2).reset_index().to_csv(folder / "new.csv", index=False)
    return folder / "out" / "model"


def _report(model: Path, folder: Path) -> str:
    assert main(["predict", "--model", str(model), "--patients", str(folder / "new.csv"), "--out",
                 str(folder / "p.csv"), "--report", str(folder / "rep")]) == 0
    assert not list((folder / "rep").glob(".*png"))
    return next((folder / "rep").glob("P*.html")).read_text()


_BUNDLES: dict = {}


def bundle(family: str, tmp_path_factory) -> tuple[Path, Path]:
    """A survival study's model bundle (one study run per family for the whole module)."""
    if family not in _BUNDLES:
        folder = tmp_path_factory.mktemp(family)
        _BUNDLES[family] = _run(folder, family), folder
    return _BUNDLES[family]


@pytest.mark.parametrize("family", ["cox", "rsf"])
def test_survival_report_shows_shapley_values_at_the_last_horizon(tmp_path_factory, family):
    model, folder = bundle(family, tmp_path_factory)
    html = _report(model, folder)
    assert "Shapley values on the chance of the event within 2 years (730 days)" in html
    assert re.search(r"(raises|lowers) the chance of the event within 730 days by [\d.]+ percentage", html)
    assert html.count("data:image/png;base64,") == 2  # survival curve + waterfall
    assert ("hazard × " in html) == (family == "cox")  # cox keeps its hazard-ratio sentences
    assert "what-if" in html  # the what-if table stays


def test_km_report_has_no_shapley_values(tmp_path_factory):
    model, folder = bundle("km", tmp_path_factory)
    html = _report(model, folder)
    assert "Shapley" not in html and html.count("data:image/png;base64,") == 1


def test_failed_explanation_warns_and_the_report_is_still_written(tmp_path_factory, monkeypatch):
    import pmed.explain

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    model, folder = bundle("cox", tmp_path_factory)
    monkeypatch.setattr(pmed.explain, "explain", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        html = _report(model, folder)
    assert any(issubclass(w.category, PmedWarning) and "boom" in str(w.message) for w in caught)
    # the what-if factors take the Shapley sentences' place; hazard ratios are still there
    assert "Shapley" not in html and "hazard × " in html and "risk score by" in html
    assert html.count("data:image/png;base64,") == 1
