"""pmed.survival.metrics against R's survival package (stored outputs) and hand-computed answers."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pmed.errors import OptionError, ValidationError
from pmed.survival import SurvivalWarning, check_survival_data
from pmed.survival import metrics as M

R = Path(__file__).parents[1] / "fixtures" / "r"
REF = json.loads((R / "r_survival_reference.json").read_text())
SETS = ["lung", "gbsg2", "whas500", "veterans"]


def _data(name):
    return pd.read_csv(R / f"{name}.csv")


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("risk", ["lp", "tied"])
def test_harrell_and_uno_equal_r(name, risk):
    d, ref = _data(name), REF[name][risk]
    col = "lp" if risk == "lp" else ref["column"]
    h = M.harrell_c(d["time"], d["event"], d[col])
    assert h["estimate"] == pytest.approx(ref["harrell_c"], abs=1e-6)
    assert h["se"] == pytest.approx(ref["harrell_se"], abs=1e-6)
    assert h["counts"] == {k: pytest.approx(v) for k, v in ref["counts"].items()}
    u = M.uno_c(d["time"], d["event"], d[col], tau=ref["tau"])
    assert u["estimate"] == pytest.approx(ref["uno_c"], abs=1e-6)
    assert u["se"] == pytest.approx(ref["uno_se"], abs=1e-6)
    assert h["ci_low"] < h["estimate"] < h["ci_high"]


def test_lung_concordance_is_the_published_0603():
    assert REF["lung"]["lp"]["harrell_c"] == pytest.approx(0.603, abs=5e-4)
    d = _data("lung")
    assert M.harrell_c(d["time"], d["event"], d["lp"])["estimate"] == pytest.approx(0.6028530, abs=1e-6)


def test_concordance_difference_equals_r_joint_variance():
    """The gain in C of age + sex over age alone on lung, with R concordance(fit1, fit2)'s
    variance matrix (make_concordance_difference.R)."""
    ref = json.loads((R / "concordance_difference.json").read_text())
    d = pd.read_csv(R / ref["data"], skipinitialspace=True)
    r = M.harrell_c_difference(d["time"], d["event"], d["lp1"], d["lp2"])
    assert r["c"] == pytest.approx(ref["concordance"][0], abs=1e-9)
    assert r["c_baseline"] == pytest.approx(ref["concordance"][1], abs=1e-9)
    assert r["estimate"] == pytest.approx(ref["difference"], abs=1e-9)
    assert r["se"] == pytest.approx(ref["difference_se"], abs=1e-9)
    # the paired SE is well below the one of two independent concordances
    assert r["se"] < np.sqrt(ref["var"][0][0] + ref["var"][1][1]) * 0.85
    assert r["ci_low"] == pytest.approx(r["estimate"] - 1.959964 * r["se"], abs=1e-6)
    # a score against itself: no difference, and no SE to divide by
    same = M.harrell_c_difference(d["time"], d["event"], d["lp1"], d["lp1"])
    assert same["estimate"] == 0 and same["se"] == 0


def test_tiny_ties_by_hand():
    # times 1 2 2 3 3 4 5 6, events 1 0 1 1 1 1 0 1, risk 5 3 4 4 2 2 1 0.
    # comparable pairs (shorter time an event; a censoring tied with an event counts as longer):
    # t=1: 7 concordant; t=2 (event, risk 4): 5 concordant + 1 tied in risk (the t=3 risk 4)
    # — the censored t=2 is comparable; t=3 risk 4: 3 concordant, and the two t=3 events are
    # tied.y (left out); t=3 risk 2: 2 concordant + 1 tied (t=4 risk 2); t=4: 2 concordant.
    # C = (19 + 2/2) / 21
    r = REF["tiny"]
    h = M.harrell_c(r["time"], r["event"], r["risk"])
    assert h["counts"] == {"concordant": 19, "discordant": 0, "tied.x": 2, "tied.y": 1, "tied.xy": 0}
    assert h["estimate"] == pytest.approx(20 / 21, abs=1e-12)
    assert h["estimate"] == pytest.approx(r["harrell_c"], abs=1e-12)
    assert h["se"] == pytest.approx(r["harrell_se"], abs=1e-9)
    assert h["ci_high"] == 1.0  # the normal interval is clipped to [0, 1]
    u = M.uno_c(r["time"], r["event"], r["risk"], tau=4)
    assert u["estimate"] == pytest.approx(r["uno_c"], abs=1e-9)


def test_uno_weights_by_hand():
    # censoring KM just before t, censorings after events at tied times (R's fastkm1):
    # times 1 2 2 3 4: censored at 2 (risk set 5 - 1 - 1 event = 3 left for censoring: G drops 1/3)
    t = np.array([1, 2, 2, 3, 4.0])
    e = np.array([1, 0, 1, 1, 0], bool)
    g = M._censoring_left(t, e, np.array([1, 2, 3, 4.0]))
    assert g == pytest.approx([1, 1, 2 / 3, 2 / 3])
    # risk reversed at t=3 only: pairs (1,*) 4 concordant weight 1; (2e, 2c) (2e,3) (2e,4) weight 1;
    # (3,4) discordant weight 1/G(3-)^2 = 9/4. C = 7 / (7 + 9/4)
    u = M.uno_c(t, e, [5, 4, 4, 1, 2])
    assert u["estimate"] == pytest.approx((4 + 0.5 + 2) / (7 + 9 / 4), abs=1e-12)


def test_harrell_reversed_score_is_one_minus():
    d = _data("veterans")
    a = M.harrell_c(d["time"], d["event"], d["lp"])["estimate"]
    b = M.harrell_c(d["time"], d["event"], -d["lp"])["estimate"]
    assert a + b == pytest.approx(1, abs=1e-12)
    assert a > 0.7


def test_td_auc_brier_calibration_on_veterans():
    d = _data("veterans")
    t, e = d["time"].to_numpy(float), d["event"].to_numpy(bool)
    # a well-ranked but crude survival prediction: S(t) = KM(t) ** exp(lp)
    km = M.km_survival(t, e, [30, 90])
    surv = np.column_stack([km[0] ** np.exp(d["lp"]), km[1] ** np.exp(d["lp"])])
    auc = M.td_auc(t, e, d["lp"], [30, 90], n_boot=0)
    assert 0.7 < auc["30"]["estimate"] < 0.9 and np.isnan(auc["30"]["ci_low"])
    b = M.brier(t, e, surv, [30, 90], n_boot=5, seed=1)
    for k in ("30", "90"):
        assert b[k]["estimate"] < b[k]["km_null"]["estimate"]  # the model beats the KM null
        assert b[k]["ci_low"] <= b[k]["ci_high"]
    ibs = M.integrated_brier(t, e, surv, [30, 90], n_boot=0)
    assert ibs["estimate"] < ibs["km_null"]["estimate"]
    summary, table = M.calibration_at(t, e, surv[:, 1], 90, n_boot=0)
    assert summary["n_groups"] == 6 and table["n"].sum() == len(t)
    assert 0.5 < summary["slope"]["estimate"] < 1.5 and 0 <= summary["ici"]["estimate"] < 0.2
    # observed rises with predicted risk across the groups
    assert np.corrcoef(table["mean_predicted"], table["observed"])[0, 1] > 0.8


def test_km_null_brier_equals_sksurv_with_km_prediction():
    from sksurv.metrics import brier_score
    from sksurv.util import Surv

    d = _data("gbsg2")
    t, e = d["time"].to_numpy(float), d["event"].to_numpy(bool)
    km = M.km_survival(t, e, [1000])
    y = Surv.from_arrays(e, t)
    want = brier_score(y, y, np.full((len(t), 1), km[0]), [1000])[1][0]
    got = M.brier(t, e, np.full((len(t), 1), 0.5), [1000], n_boot=0)["1000"]["km_null"]["estimate"]
    assert got == pytest.approx(want, abs=1e-12)


@pytest.mark.filterwarnings("ignore:horizon 5:pmed.survival.SurvivalWarning")
def test_decision_curve_by_hand():
    # no censoring before 5: KM risk = event fraction. 4 subjects, 2 events by t=5.
    t = np.array([1, 2, 8, 9.0])
    e = np.array([1, 1, 0, 1], bool)
    surv = np.array([0.2, 0.6, 0.7, 0.9])  # risks 0.8, 0.4, 0.3, 0.1
    dc = M.decision_curve(t, e, surv, 5, thresholds=[0.35, 0.5])
    # pt .35: treat the first two (both events): 2/4 - 0 ; pt .5: treat one: 1/4
    assert dc["net_benefit"].tolist() == pytest.approx([0.5, 0.25])
    assert dc["net_benefit_treat_all"].tolist() == pytest.approx([0.5 - 0.5 * 0.35 / 0.65, 0.0])
    assert dc.attrs["prevalence"] == pytest.approx(0.5)


def test_horizon_checks():
    t = np.arange(1, 31, dtype=float)
    e = np.ones(30, bool)
    e[::3] = False
    with pytest.raises(OptionError, match="horizon 30 is beyond the follow-up.*last follow-up time .* is 30"):
        M.check_horizons(t, e, [30])
    with pytest.raises(OptionError, match="positive"):
        M.check_horizons(t, e, [0])
    with pytest.raises(OptionError, match="before the first event"):
        M.check_horizons(t, e, [1.5])
    with pytest.warns(SurvivalWarning, match="only 5 subjects still at risk"):
        M.check_horizons(t, e, [25])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert M.check_horizons(t, e, [10]) == [10.0]
    with pytest.raises(OptionError, match="tau must be a positive"):
        M.uno_c(t, e, t, tau=0)


def test_check_survival_data():
    t, e = check_survival_data([1, 2.5, 3], [True, 0, "1"])
    assert t.dtype == float and e.tolist() == [True, False, True]
    with pytest.raises(ValidationError, match=r"column 'T': negative time -1.0 at rows 2") as ex:
        check_survival_data([1, -1, 0], [1, 0, 1], time_col="T")
    assert "time 0 at rows 3" in str(ex.value)
    with pytest.raises(ValidationError, match="no events"):
        check_survival_data([1, 2], [0, 0])
    with pytest.warns(SurvivalWarning, match="every subject had the event"):
        check_survival_data([1, 2], [1, 1])
    with pytest.raises(ValidationError, match=r"missing time at lines 3"):
        check_survival_data([1, None], [1, 0], source="f.csv")


def test_calibration_whose_cox_models_do_not_converge_warns_instead_of_crashing(monkeypatch):
    """coxnet's extreme predictions at late horizons on flchain made lifelines raise inside the
    calibration models: the study must go on, with no slope/ICI and a warning saying why."""
    d = _data("veterans")
    t, e = d["time"].to_numpy(float), d["event"].to_numpy(bool)
    surv = M.km_survival(t, e, [90])[0] ** np.exp(d["lp"])
    monkeypatch.setattr(M, "_cox_fit", lambda *a, **k: None)
    with pytest.warns(SurvivalWarning, match="calibration at horizon 90: the calibration Cox models"):
        summary, table = M.calibration_at(t, e, surv, 90, n_boot=3)
    assert np.isnan(summary["slope"]["estimate"]) and np.isnan(summary["ici"]["estimate"])
    assert table["n"].sum() == len(t)  # the grouped Kaplan-Meier table still stands


@pytest.mark.parametrize("p", [1, 2])
def test_calibration_cox_fit_equals_lifelines_with_ties(p):
    """The calibration's own Newton–Raphson (Efron ties) gives lifelines' coefficients, Wald SEs
    and predicted survival, on data with many tied times."""
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(3)
    n = 400
    Z = rng.normal(size=(n, p))
    t = np.ceil(rng.exponential(5 / np.exp(0.8 * Z[:, 0]), n))  # whole days: many ties
    e = rng.random(n) < 0.7
    mine = M._cox_fit(t, e, Z)
    df = pd.DataFrame(Z, columns=[f"c{j}" for j in range(p)]).assign(T=t, E=e.astype(int))
    ref = CoxPHFitter().fit(df, "T", "E", fit_options={"precision": 1e-12, "r_precision": 1e-14})
    np.testing.assert_allclose(mine.beta, ref.params_.to_numpy(), atol=1e-7)
    np.testing.assert_allclose(mine.se, ref.standard_errors_.to_numpy(), atol=1e-6)
    want = ref.predict_survival_function(df.drop(columns=["T", "E"]), times=[4.0]).to_numpy().ravel()
    np.testing.assert_allclose(mine.survival_at(Z, 4.0), want, atol=1e-7)
    # no events: no model
    assert M._cox_fit(t, np.zeros(n, bool), Z) is None
