"""Survival models of the zoo (pmed.survival.models): R agreement of the Cox fit, the common
interface of every family, and the errors for fits that would not converge.

The R numbers come from tests/fixtures/r/make_survival_fixtures.R (committed; run with Rscript)
and are stored in tests/fixtures/r/r_coxph_reference.json: CI needs no R.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

pytest.importorskip("sksurv")
pytest.importorskip("lifelines")

from pmed.errors import OptionError, StudyError, ValidationError  # noqa: E402
from pmed.models import FAMILIES, get_family, make_model, register_model  # noqa: E402
from pmed.models.registry import _REGISTRY  # noqa: E402
from pmed.survival.models import (  # noqa: E402
    BoostedSurvival,
    Coxnet,
    CoxPH,
    KaplanMeier,
    SurvivalForest,
    cox_coefficients,
    make_surv_y,
    predict_median,
    predict_survival,
)

R_DIR = Path(__file__).parents[1] / "fixtures" / "r"
REF = json.loads((R_DIR / "r_coxph_reference.json").read_text())
SETS = ["lung", "gbsg2", "whas500", "veterans"]


def _load(name: str) -> tuple[pd.DataFrame, np.ndarray, dict]:
    ref = REF[name]
    d = pd.read_csv(R_DIR / ref["file"])
    return d[ref["columns"]], make_surv_y(d["time"], d["event"]), ref


# ------------------------------------------------------------------ R agreement (cox)
@pytest.mark.parametrize("name", SETS)
def test_cox_matches_r_coxph_efron(name):
    X, y, ref = _load(name)
    table = cox_coefficients(CoxPH().fit(X, y))
    assert table.columns.tolist() == ["feature", "coef", "se", "hazard_ratio", "ci_low", "ci_high", "p"]
    assert table["feature"].tolist() == ref["columns"]
    np.testing.assert_allclose(table["coef"], ref["coef"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(table["se"], ref["se"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(table["p"], ref["p"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(table["ci_low"], ref["hr_ci_low"], rtol=1e-4)
    np.testing.assert_allclose(table["ci_high"], ref["hr_ci_high"], rtol=1e-4)
    np.testing.assert_allclose(table["hazard_ratio"], np.exp(ref["coef"]), rtol=1e-4)


@pytest.mark.parametrize("name", SETS)
def test_cox_pipeline_keeps_the_original_scale_and_r_loglik_and_concordance(name):
    """Through make_model("cox") (imputation, encoding) the table is still R's, per input unit."""
    X, y, ref = _load(name)
    pipe = make_model("cox", task="survival", X=X).fit(X, y)
    table = cox_coefficients(pipe)
    assert table["feature"].tolist() == ref["columns"]
    np.testing.assert_allclose(table["coef"], ref["coef"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(table["se"], ref["se"], rtol=0, atol=1e-4)
    assert pipe[-1].log_likelihood_ == pytest.approx(ref["loglik"], abs=1e-6)
    # Harrell's C of the risk on the training data, as R's concordance(fit)
    assert pipe.score(X, y) == pytest.approx(ref["concordance"], abs=1e-6)


def test_lung_numbers_of_the_issue():
    X, y, _ = _load("lung")
    m = CoxPH().fit(X, y)
    assert m.coef_ == pytest.approx([0.017045, -0.513219], abs=1e-6)
    assert round(m.score(X, y), 3) == 0.603


def test_categorical_columns_are_dummies_against_the_first_level():
    """scikit-survival's GBSG2 with its categorical columns gives R's fit on the 0/1 dummies."""
    from sksurv.datasets import load_gbsg2

    X, yy = load_gbsg2()
    y = make_surv_y(yy["time"], yy["cens"])
    ref = REF["gbsg2"]
    table = cox_coefficients(make_model("cox", task="survival", X=X).fit(X, y)).set_index("feature")
    # the reference level is the dtype's first category (as R's factor): 'Pre', not sorted 'Post'
    rename = {"menostat_post": "menostat_Post"}
    for col, coef, se in zip(ref["columns"], ref["coef"], ref["se"], strict=True):
        row = table.loc[rename.get(col, col)]
        assert row["coef"] == pytest.approx(coef, abs=1e-4) and row["se"] == pytest.approx(se, abs=1e-4)
    assert len(table) == len(ref["columns"])  # no dummy for the first level


def test_feature_names_override_and_wrong_model():
    X, y, _ = _load("lung")
    m = CoxPH().fit(X.to_numpy(), y)
    assert cox_coefficients(m)["feature"].tolist() == ["x0", "x1"]
    assert cox_coefficients(m, ["age", "sex"])["feature"].tolist() == ["age", "sex"]
    with pytest.raises(OptionError, match="2 coefficients"):
        cox_coefficients(m, ["age"])
    with pytest.raises(OptionError, match="needs a fitted cox model"):
        cox_coefficients(KaplanMeier().fit(X, y))


# ------------------------------------------------------------ the common interface
def _gbsg2(n: int = 300):
    X, y, _ = _load("gbsg2")
    return X.iloc[:n], y[:n]


FAMILY_PARAMS = {
    "cox": {}, "coxnet": {}, "km": {},
    "rsf": {"n_estimators": 20}, "gbsa": {"n_estimators": 30},
}


@pytest.mark.parametrize("family", list(FAMILY_PARAMS))
def test_every_family_predicts_risk_survival_and_median(family):
    X, y = _gbsg2()
    pipe = make_model(family, task="survival", X=X, params=FAMILY_PARAMS[family], seed=3)
    assert pipe.fit(X, y) is pipe
    risk = pipe.predict(X)
    times = np.array([0.0, 200.0, 365.0, 730.0, 1500.0])
    S = predict_survival(pipe, X, times)
    assert S.shape == (len(X), len(times))
    assert np.all((S >= 0) & (S <= 1))
    assert np.all(np.diff(S, axis=1) <= 1e-12)  # survival never rises
    assert np.all(S[:, 0] == 1.0)  # nobody has had the event at time 0
    med = predict_median(pipe, X)
    reached = np.isfinite(med)
    assert reached.any()
    # the curve is ≤ 0.5 at the median and > 0.5 just before it
    for i in np.flatnonzero(reached)[:20]:
        assert predict_survival(pipe, X.iloc[[i]], [med[i]])[0, 0] <= 0.5
        assert predict_survival(pipe, X.iloc[[i]], [med[i] - 1e-6])[0, 0] > 0.5
    if family == "km":
        assert np.ptp(risk) == 0 and np.ptp(S, axis=0).max() == 0
        assert pipe.score(X, y) == 0.5
    else:
        # the sign convention: higher risk = worse survival, so risk and S(t) run opposite
        rho = pd.Series(risk).corr(pd.Series(S[:, 3]), method="spearman")
        assert rho < -0.8, rho
        assert pipe.score(X, y) > 0.6


def test_cox_curves_are_lifelines_curves():
    from lifelines import CoxPHFitter

    X, y = _gbsg2()
    m = CoxPH().fit(X, y)
    d = X.assign(T=y["time"], E=y["event"].astype(int))
    f = CoxPHFitter().fit(d, "T", "E", fit_options={"precision": 1e-12, "r_precision": 1e-14})
    times = [150.0, 500.0, 1000.0, 1700.0]  # from the first event on (lifelines' grid starts there)
    ref = f.predict_survival_function(X.iloc[:10]).T  # on lifelines' own grid: exact steps
    grid = ref.columns.to_numpy()
    expect = ref.to_numpy()[:, np.searchsorted(grid, times, side="right") - 1]
    np.testing.assert_allclose(m.predict_survival(X.iloc[:10], times), expect, rtol=1e-6)
    # risk is the log partial hazard (up to a constant): same order as lifelines'
    np.testing.assert_allclose(np.diff(m.predict(X.iloc[:10])),
                               np.diff(f.predict_log_partial_hazard(X.iloc[:10]).to_numpy()), atol=1e-6)


def test_km_is_the_kaplan_meier_curve_and_its_median():
    from lifelines import KaplanMeierFitter

    X, y, _ = _load("lung")
    km = KaplanMeierFitter().fit(y["time"], y["event"])
    m = KaplanMeier().fit(X, y)
    times = [5.0, 100.0, 305.5, 500.0, 1000.0]
    np.testing.assert_allclose(m.predict_survival(X.iloc[:2], times)[0], km.survival_function_at_times(times),
                               rtol=1e-10)
    assert m.predict_median(X.iloc[:3]) == pytest.approx([km.median_survival_time_] * 3)
    assert km.median_survival_time_ == 310.0  # R: survfit(Surv(time, status) ~ 1, lung) median 310


def test_median_is_nan_when_not_reached():
    rng = np.random.default_rng(1)
    n = 120
    t = rng.uniform(1, 100, n)
    e = (rng.random(n) < 0.2) & (t < 50)  # few events, none late: the curve stays above 0.5
    X = pd.DataFrame({"a": rng.normal(size=n)})
    y = make_surv_y(t, e)
    for m in (KaplanMeier(), CoxPH()):
        med = m.fit(X, y).predict_median(X)
        assert np.isnan(med).all()


def test_horizons_are_checked():
    X, y = _gbsg2(200)
    m = KaplanMeier().fit(X, y)
    assert m.max_time_ == y["time"].max() == 2563
    with pytest.raises(OptionError, match=r"beyond the last follow-up time .*\(2563\)"):
        m.predict_survival(X, [365, 5000])
    with pytest.raises(OptionError, match="finite and ≥ 0"):
        m.predict_survival(X, [-1])
    with pytest.raises(OptionError, match="finite and ≥ 0"):
        m.predict_survival(X, [np.nan])


def test_estimators_follow_scikit_learn_conventions():
    X, y = _gbsg2(150)
    for est in (CoxPH(penalizer=0.1), Coxnet(alpha=0.1), SurvivalForest(n_estimators=5, random_state=0),
                BoostedSurvival(n_estimators=5, random_state=0), KaplanMeier()):
        c = clone(est)
        assert c.get_params() == est.get_params()
        with pytest.raises(TypeError):
            type(est)(0.1)  # keyword-only options
        assert c.fit(X, y) is c
        assert c.n_features_in_ == X.shape[1] and list(c.feature_names_in_) == list(X.columns)
        with pytest.raises(ValidationError, match="2 feature columns"):
            c.predict(X.iloc[:, :2])


def test_random_models_are_reproducible_with_a_seed():
    X, y = _gbsg2(200)
    a = make_model("rsf", task="survival", X=X, params={"n_estimators": 10}, seed=5).fit(X, y).predict(X)
    b = make_model("rsf", task="survival", X=X, params={"n_estimators": 10}, seed=5).fit(X, y).predict(X)
    c = make_model("rsf", task="survival", X=X, params={"n_estimators": 10}, seed=6).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_forest_predicts_at_the_horizons_what_scikit_survival_stores_for_every_time():
    """rsf is grown with low_memory=True and keeps leaf curves only where they change; its
    survival, risk and median are those of scikit-survival's full forest."""
    from sksurv.ensemble import RandomSurvivalForest

    from pmed.survival.models import _SurvivalModel

    X, y = _gbsg2(400)
    ours = SurvivalForest(n_estimators=12, min_samples_leaf=8, random_state=4).fit(X, y)
    full = RandomSurvivalForest(12, min_samples_leaf=8, min_samples_split=20, random_state=4,
                                n_jobs=1).fit(X.to_numpy(float), y)
    assert ours.estimator_.low_memory and not full.low_memory
    horizons = np.array([0.0, 72.0, 365.0, 365.5, 1000.0, 1500.0, y["time"].max()])
    curves = full.predict_survival_function(X.to_numpy(float), return_array=True)
    idx = np.searchsorted(full.unique_times_, horizons, side="right") - 1
    expect = np.where(idx >= 0, curves[:, np.maximum(idx, 0)], 1.0)
    np.testing.assert_allclose(ours.predict_survival(X, horizons), expect, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.predict(X), full.predict(X.to_numpy(float)), rtol=1e-12)
    # the median by bisection is the median of the whole curve
    med = ours.predict_median(X)
    np.testing.assert_array_equal(med, _SurvivalModel.predict_median(ours, X))
    assert np.isfinite(med).sum() > 50 and np.isnan(med).sum() > 50


def test_coxnet_shrinks_towards_zero():
    X, y = _gbsg2()
    small = make_model("coxnet", task="survival", X=X, params={"alpha": 0.001}).fit(X, y)[-1].coef_
    large = make_model("coxnet", task="survival", X=X, params={"alpha": 0.2}).fit(X, y)[-1].coef_
    assert np.abs(large).sum() < 0.5 * np.abs(small).sum()
    assert (large == 0).sum() > (small == 0).sum()  # the L1 part sets coefficients to zero


# ----------------------------------------------------------------------- y
def test_make_surv_y_builds_the_structured_array_and_checks_it():
    y = make_surv_y([5, 3.5], [1, 0])
    assert y.dtype.names == ("event", "time") and y["event"].tolist() == [True, False]
    with pytest.raises(ValidationError, match="'event': event must be 0 .* or 1"):
        make_surv_y([1, 2], [1, 2])
    with pytest.raises(ValidationError, match="'time': negative time"):
        make_surv_y([-1, 2], [1, 0])
    # scikit-survival's own arrays (other field names) are accepted by fit
    from sksurv.util import Surv

    X, y2 = _gbsg2(100)
    ys = Surv.from_arrays(event=y2["event"], time=y2["time"], name_event="cens", name_time="days")
    assert KaplanMeier().fit(X, ys).max_time_ == y2["time"].max()
    with pytest.raises(OptionError, match="structured array"):
        KaplanMeier().fit(X, y2["time"])


# -------------------------------------------------------- convergence, collinearity
def _synthetic(n=100, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.exponential(10 * np.exp(-0.5 * x)) + 0.1
    e = rng.random(n) < 0.7
    return x, t, e, rng


def test_constant_column_is_refused_by_name():
    x, t, e, _ = _synthetic()
    X = pd.DataFrame({"age": x, "site": 3.0})
    with pytest.raises(ValidationError, match=r"constant column\(s\) 'site'") as err:
        CoxPH().fit(X, make_surv_y(t, e))
    assert "drop them" in err.value.fix


def test_collinear_columns_are_refused_unless_penalised():
    x, t, e, rng = _synthetic()
    X = pd.DataFrame({"age": x, "noise": rng.normal(size=len(x)), "age_months": 12 * x + 3})
    y = make_surv_y(t, e)
    with pytest.raises(ValidationError, match=r"collinear columns \('age', 'age_months'\)") as err:
        CoxPH().fit(X, y)
    assert "penalizer" in err.value.fix
    # a sum of dummies equal to a third column is found too
    d1 = (rng.random(len(x)) < 0.5).astype(float)
    X3 = pd.DataFrame({"a": d1, "b": 1 - d1 + x, "c": x + 1})
    with pytest.raises(ValidationError, match=r"'a', 'b', 'c'"):
        CoxPH().fit(X3, y)
    # a ridge penalty makes the fit identifiable: it converges, and splits the effect
    m = CoxPH(penalizer=0.1).fit(X, y)
    assert np.isfinite(m.coef_).all() and np.isfinite(m.se_).all()
    # strong but not exact correlation is fitted (wide intervals, no error)
    Xc = pd.DataFrame({"a": x, "b": x + rng.normal(0, 0.05, len(x))})
    assert np.isfinite(CoxPH().fit(Xc, y).se_).all()


def test_separation_is_an_error_naming_the_column():
    x, t, e, _ = _synthetic(80)
    marker = (t < np.quantile(t, 0.3)).astype(float)  # 1 exactly for the earliest times
    X = pd.DataFrame({"x": x, "marker": marker})
    with pytest.raises(ValidationError, match=r"coefficient of 'marker' has no finite estimate") as err:
        CoxPH().fit(X, make_surv_y(t, e))
    assert "penalizer" in err.value.fix and "'marker'" in err.value.fix
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and with a penalizer it converges cleanly
        assert np.isfinite(CoxPH(penalizer=0.1).fit(X, make_surv_y(t, e)).coef_).all()


def test_a_rare_level_without_events_is_named_with_its_counts():
    """The monotone likelihood of CV folds: a 0/1 column none of whose few 1s had an event (the
    'missing' level of a category) has no finite hazard ratio; the error counts them."""
    x, t, e, _ = _synthetic(200)
    rare = np.zeros(len(t))
    censored = np.flatnonzero(~e)[:6]
    rare[censored] = 1.0
    X = pd.DataFrame({"x": x, "smoking_missing": rare})
    with pytest.raises(ValidationError, match=r"'smoking_missing' has no finite estimate.*"
                                              r"\(0 events among its 6 patients with value 1\)"):
        CoxPH().fit(X, make_surv_y(t, e))
    # its indicator has events after all: fitted (a separating column needs every event)
    rare[np.flatnonzero(e)[0]] = 1.0
    assert np.isfinite(CoxPH().fit(X.assign(smoking_missing=rare), make_surv_y(t, e)).coef_).all()


def test_options_and_missing_values_are_checked():
    x, t, e, _ = _synthetic()
    y = make_surv_y(t, e)
    X = pd.DataFrame({"a": x})
    with pytest.raises(OptionError, match="penalizer must be ≥ 0"):
        CoxPH(penalizer=-1).fit(X, y)
    with pytest.raises(OptionError, match="alpha must be > 0"):
        Coxnet(alpha=0).fit(X, y)
    with pytest.raises(ValidationError, match="'a' hold missing"):
        CoxPH().fit(X.assign(a=np.where(np.arange(len(x)) == 3, np.nan, x)), y)
    with pytest.raises(ValidationError, match="X has 100 rows but y has 99"):
        CoxPH().fit(X, y[:99])


# ------------------------------------------------------------------- registry
def test_survival_families_are_registered_for_the_survival_task_only():
    assert {"cox", "coxnet", "rsf", "gbsa", "km"} <= set(FAMILIES)
    assert get_family("cox").tasks == ("survival",)
    X, _ = _gbsg2(50)
    with pytest.raises(StudyError, match="handles survival targets, not binary"):
        make_model("cox", task="binary", X=X)
    with pytest.raises(StudyError, match="handles binary and continuous targets, not survival"):
        make_model("linear", task="survival", X=X)
    with pytest.raises(StudyError, match="has no parameter.*'trees'"):
        make_model("rsf", task="survival", X=X, params={"trees": 5})
    assert make_model("gbsa", task="survival", X=X, seed=9)[-1].random_state == 9


def test_register_model_accepts_survival_and_still_refuses_unknown_tasks():
    try:
        register_model("km_copy", lambda **k: KaplanMeier(), tasks=("survival",))
        assert get_family("km_copy").tasks == ("survival",)
    finally:
        _REGISTRY.pop("km_copy", None)
    with pytest.raises(OptionError, match="tasks must be among"):
        register_model("bad_task", lambda **k: None, tasks=("ordinal",))


def test_cox_retries_a_first_newton_step_that_overshoots(monkeypatch):
    """lifelines' default first step (0.95) can overshoot (flchain folds, where R converges):
    the fit is retried with a smaller first step, and gives the same maximum as a clean fit."""
    import lifelines

    X, y, ref = _load("lung")
    real_fit = lifelines.CoxPHFitter.fit
    seen = []

    def overshooting(self, *args, fit_options=None, **kwargs):
        seen.append((fit_options or {}).get("step_size"))
        if "step_size" not in (fit_options or {}):
            raise lifelines.exceptions.ConvergenceError("Convergence halted due to matrix inversion problems")
        return real_fit(self, *args, fit_options=fit_options, **kwargs)

    monkeypatch.setattr(lifelines.CoxPHFitter, "fit", overshooting)
    m = CoxPH().fit(X, y)
    assert seen == [None, 0.5]
    np.testing.assert_allclose(m.coef_, ref["coef"], rtol=0, atol=1e-4)
