"""pmed.monitor drift_report, performance_by_window and window_labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score

from pmed.errors import OptionError, ValidationError
from pmed.monitor import (
    PSI_EPSILON,
    drift_report,
    performance_by_window,
    psi,
    reference_summaries,
    window_labels,
)
from pmed.monitor.drift import _ks_p_value, _ks_statistic


def _make(n, rng, *, shift=0.0, cat_p=(0.5, 0.3, 0.2), miss=0.05):
    """5 numeric + 2 categorical features; x2 has missing values."""
    d = {f"x{i}": rng.normal(10 * i, 1 + i, n) for i in range(5)}
    d["x0"] = d["x0"] + shift  # x0 has SD 1: shift is in SD units
    d["c0"] = pd.Categorical(rng.choice(["a", "b", "c"], n, p=cat_p))
    d["c1"] = rng.choice(["yes", "no"], n, p=[0.3, 0.7]).astype(object)
    df = pd.DataFrame(d)
    df.loc[rng.random(n) < miss, "x2"] = np.nan
    return df


@pytest.fixture(scope="module")
def ref():
    rng = np.random.default_rng(0)
    # stored as a bundle stores it: through strict JSON (unbounded edges become null)
    return json.loads(json.dumps(reference_summaries(_make(20_000, rng)), allow_nan=False))


# ---- (a) and (b): false alarms and detection ------------------------------------------

def test_no_alarm_on_clean_windows(ref):
    rng = np.random.default_rng(1)
    alarms = sum(drift_report(ref, _make(2000, rng))["drift_detected"] for _ in range(100))
    assert alarms <= 10
    assert alarms == 0  # seen: 0 of 100 (PSI of clean 2,000-row windows stays far below 0.2)


def test_mean_shift_detected_on_that_feature_only(ref):
    # a +0.5 SD shift has a population decile PSI of 0.238 (hand: Σ (q−0.1)·ln(q/0.1) with
    # q the N(0.5, 1) mass of the N(0, 1) deciles), just above the 0.2 threshold, so a
    # 2,000-row window's PSI falls below 0.2 now and then: count over 20 windows
    hits, others = 0, 0
    for seed in range(100, 120):
        rep = drift_report(ref, _make(2000, np.random.default_rng(seed), shift=0.5))
        hits += rep["drifted_features"] == ["x0"]
        others += len(set(rep["drifted_features"]) - {"x0"})
        assert rep["features"]["x0"]["p_adjusted"] < 1e-10  # always significant
    assert others == 0
    assert hits >= 16
    assert hits == 19  # seen: 19 of 20
    rep = drift_report(ref, _make(2000, np.random.default_rng(2), shift=1.0))
    assert rep["drifted_features"] == ["x0"] and rep["drift_detected"]
    assert rep["features"]["x0"]["reasons"][0].startswith("distribution shift")


def test_category_shift_detected(ref):
    rep = drift_report(ref, _make(2000, np.random.default_rng(3), cat_p=(0.3, 0.3, 0.4)))
    assert rep["drifted_features"] == ["c0"]
    assert rep["features"]["c0"]["cramers_v"] >= 0.1


def test_missingness_jump_detected(ref):
    rep = drift_report(ref, _make(2000, np.random.default_rng(4), miss=0.25))
    assert rep["drifted_features"] == ["x2"]
    x2 = rep["features"]["x2"]
    assert x2["missing_fraction_new"] - x2["missing_fraction_ref"] >= 0.1
    assert x2["reasons"][0].startswith("missingness changed")


def test_trivial_shift_in_many_rows_is_significant_but_not_drift(ref):
    rep = drift_report(ref, _make(200_000, np.random.default_rng(5), shift=0.05))
    x0 = rep["features"]["x0"]
    assert x0["p_adjusted"] < 0.05 and x0["psi"] < 0.05
    assert not rep["drift_detected"]


def test_prediction_drift():
    rng = np.random.default_rng(6)
    X = _make(5000, rng)
    ref = reference_summaries(X, predictions=rng.beta(2, 5, 5000))
    X_new = _make(2000, rng)
    assert drift_report(ref, X_new, predictions=rng.beta(2, 5, 2000))["predictions"]["drift_detected"] is False
    rep = drift_report(ref, X_new, predictions=rng.beta(4, 4, 2000))
    assert rep["predictions"]["drift_detected"] and rep["drift_detected"]
    assert rep["drifted_features"] == []


# ---- (c) KS from quantiles vs scipy on raw samples -------------------------------------

@pytest.mark.parametrize("kind", ["normal", "exponential", "poisson"])
@pytest.mark.parametrize("shift", [0.0, 0.2])
def test_ks_from_quantiles_agrees_with_ks_2samp(kind, shift):
    rng = np.random.default_rng(7)
    draw = {"normal": lambda n, s: rng.normal(s, 1, n),
            "exponential": lambda n, s: rng.exponential(1 + s, n),
            "poisson": lambda n, s: rng.poisson(3 + 3 * s, n).astype(float)}[kind]
    a, b = draw(5000, 0.0), draw(2000, shift)
    got = drift_report(reference_summaries(pd.DataFrame({"x": a})), pd.DataFrame({"x": b}))
    want = stats.ks_2samp(a, b, method="asymp")
    assert abs(got["features"]["x"]["ks_statistic"] - want.statistic) < 0.02
    # the p-value is ks_2samp's (asymp) for the same statistic
    assert _ks_p_value(want.statistic, 5000, 2000) == pytest.approx(want.pvalue, rel=1e-12)


def test_ks_statistic_exact_for_the_interpolated_cdf():
    # brute force: the CDF of the interpolated quantile function on a fine grid of p,
    # compared with the new ECDF at every new value and quantile, from both sides
    rng = np.random.default_rng(8)
    q = np.quantile(rng.poisson(2, 300).astype(float), np.linspace(0, 1, 21))  # repeats: jumps
    new = np.sort(rng.poisson(2.5, 50).astype(float))
    grid = np.linspace(0, 1, 200_001)
    qf = np.interp(grid, np.linspace(0, 1, 21), q)
    best = 0.0
    for c in np.unique(np.r_[new, q]):
        f_at = grid[qf <= c].max(initial=0.0)
        f_below = grid[qf < c].max(initial=0.0)
        best = max(best, abs(np.mean(new <= c) - f_at), abs(np.mean(new < c) - f_below))
    assert _ks_statistic(new, q) == pytest.approx(best, abs=1e-4)


def test_ks_p_value_large_samples_use_corrected_asymptotics():
    d = 1.36 / np.sqrt(20_000)
    exact = stats.distributions.kstwo.sf(d, 20_000)
    assert _ks_p_value(d, 40_000, 40_000) == pytest.approx(exact, rel=1e-3)


# ---- (d) PSI by hand --------------------------------------------------------------------

def test_psi_hand_computed():
    # unsmoothed: 0.25·ln(1.5) + 0.25·ln(2) = 0.25·ln 3; ε = 1e-4 moves it by < 1e-3
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * np.log(3), abs=1e-3)
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    # an empty new bin: smoothed fractions (f + ε) / (1 + 2ε)
    e = PSI_EPSILON
    r, q = (0.5 + e) / (1 + 2 * e), np.array([e, 1 + e]) / (1 + 2 * e)
    assert psi([0.5, 0.5], [0.0, 1.0]) == pytest.approx(np.sum((q - r) * np.log(q / r)), rel=1e-12)
    assert psi([0.5, 0.5], [0.0, 1.0]) == pytest.approx(0.5 * np.log(5001) + 0.5 * np.log(2), rel=1e-3)


def test_psi_in_report_on_tiny_example():
    # reference 0..99: deciles 9.9, 19.8, …; every bin holds 10 of 100 values
    ref = reference_summaries(pd.DataFrame({"x": np.arange(100.0)}))
    # new: 50 values in the first bin, 50 in the last -> fractions 0.5, 0, …, 0, 0.5
    new = pd.DataFrame({"x": np.r_[np.zeros(50), np.full(50, 99.0)]})
    got = drift_report(ref, new)["features"]["x"]["psi"]
    e = PSI_EPSILON
    r = (0.1 + e) / (1 + 10 * e)
    full, empty = (0.5 + e) / (1 + 10 * e), e / (1 + 10 * e)
    hand = 2 * (full - r) * np.log(full / r) + 8 * (empty - r) * np.log(empty / r)
    assert got == pytest.approx(hand, rel=1e-12)


# ---- categorical and missingness tests against scipy ------------------------------------

def test_chi2_and_missingness_match_scipy_on_raw_counts():
    rng = np.random.default_rng(9)
    a = pd.Series(rng.choice(["a", "b", "c", None], 3000, p=[0.4, 0.3, 0.2, 0.1]), dtype=object)
    b = pd.Series(rng.choice(["a", "b", "d", None], 1000, p=[0.5, 0.2, 0.1, 0.2]), dtype=object)
    rep = drift_report(reference_summaries(pd.DataFrame({"c": a})), pd.DataFrame({"c": b}))
    c = rep["features"]["c"]
    assert c["new_categories"] == ["d"]
    cats = ["a", "b", "c", "d"]
    table = [[int((a == k).sum()) for k in cats], [int((b == k).sum()) for k in cats]]
    want = stats.chi2_contingency(table, correction=False)
    assert c["chi2"] == pytest.approx(want.statistic, rel=1e-9)
    assert c["chi2_p_value"] == pytest.approx(want.pvalue, rel=1e-6)
    miss = [[int(a.isna().sum()), int(a.notna().sum())], [int(b.isna().sum()), int(b.notna().sum())]]
    assert c["missing_p_value"] == pytest.approx(
        stats.chi2_contingency(miss, correction=False).pvalue, rel=1e-6)
    # BH over the two p-values of the report
    bh = stats.false_discovery_control([c["p_value"], c["missing_p_value"]], method="bh")
    assert [c["p_adjusted"], c["missing_p_adjusted"]] == pytest.approx(list(bh))


def test_cramers_v_weights_samples_equally():
    # 30/70 -> 50/50: V of the table of fractions = sqrt(chi2_f / 2) with chi2_f = 1/12
    ref = reference_summaries(pd.DataFrame({"c": ["u"] * 300 + ["v"] * 700}))
    rep = drift_report(ref, pd.DataFrame({"c": ["u"] * 50 + ["v"] * 50}))
    assert rep["features"]["c"]["cramers_v"] == pytest.approx(np.sqrt(1 / 24), rel=1e-12)


def test_suppressed_feature_tests_missingness_only():
    df = pd.DataFrame({"lab": [np.nan] * 100})
    df.loc[:4, "lab"] = [1.0, 2.0, 3.0, 4.0, 5.0]
    rep = drift_report(reference_summaries(df), pd.DataFrame({"lab": np.arange(100.0)}))
    lab = rep["features"]["lab"]
    assert lab["psi"] is None and lab["ks_statistic"] is None and "not stored" in lab["note"]
    assert lab["drift_detected"]  # 95% missing -> 0% missing


# ---- (f) bad inputs ----------------------------------------------------------------------

def test_missing_columns_named(ref):
    X = _make(100, np.random.default_rng(10)).drop(columns=["x3", "c1"])
    with pytest.raises(ValidationError, match="lacks 2 of the model's 7 columns: 'x3', 'c1'") as e:
        drift_report(ref, X)
    assert "same feature columns" in e.value.fix


def test_text_in_numeric_column_and_bad_options(ref):
    X = _make(100, np.random.default_rng(11))
    X["x1"] = X["x1"].astype(object)
    X.loc[:2, "x1"] = "high"
    with pytest.raises(ValidationError, match="column 'x1': 3 values are not numbers"):
        drift_report(ref, X)
    with pytest.raises(OptionError, match="alpha"):
        drift_report(ref, X, alpha=1.5)
    with pytest.raises(ValidationError, match="not a pmed.monitor reference"):
        drift_report({"a": 1}, X)


# ---- (e) performance_by_window ------------------------------------------------------------

def _cohort(n, rng, *, slope=1.0):
    lp = rng.normal(-1.0, 1.2, n)
    y = (rng.random(n) < expit(lp)).astype(int)
    return y, expit(slope * lp)  # slope > 1: predictions more extreme than the truth


def test_performance_matches_sklearn_and_flags_small_windows():
    rng = np.random.default_rng(12)
    y, p = _cohort(2030, rng)
    win = np.r_[np.zeros(1000, int), np.ones(1000, int), np.full(30, 2)]
    y[2000:] = 0
    y[2000:2005] = 1
    res = performance_by_window(y, p, windows=win, n_boot=50, reference_metrics={"auroc": 0.5})
    assert [r["window"] for r in res] == [0, 1, 2]
    for r in res[:2]:
        m = win == r["window"]
        assert r["insufficient"] is False and r["n"] == 1000 and r["events"] == int(y[m].sum())
        assert r["auroc"]["estimate"] == pytest.approx(roc_auc_score(y[m], p[m]), rel=1e-12)
        assert r["brier"]["estimate"] == pytest.approx(np.mean((p[m] - y[m]) ** 2), rel=1e-12)
        assert r["auroc"]["difference"] == pytest.approx(r["auroc"]["estimate"] - 0.5)
        assert r["auroc"]["reference_outside_ci"] is True
    assert res[2] == {"window": 2, "n": 30, "events": 5, "prevalence": 5 / 30,
                      "mean_prediction": pytest.approx(p[2000:].mean()),
                      "insufficient": True, "reason": "30 rows (fewer than min_rows=50)"}
    few = performance_by_window(y[2000:], p[2000:], min_rows=10)
    assert few[0]["insufficient"] and few[0]["reason"] == "5 events (fewer than min_events=10)"


def test_calibration_good_and_overconfident():
    # well calibrated: the 95% Wald CIs of slope and intercept cover 1 and 0 in about 95% of
    # 40 cohorts (a single cohort misses 5% of the time)
    rng = np.random.default_rng(13)
    cover_s = cover_c = 0
    for _ in range(40):
        y, p = _cohort(2000, rng)
        r = performance_by_window(y, p, n_boot=0)[0]
        s, c = r["calibration_slope"], r["calibration_in_the_large"]
        cover_s += s["ci_low"] < 1 < s["ci_high"]
        cover_c += c["ci_low"] < 0 < c["ci_high"]
        assert abs(s["estimate"] - 1) < 0.25 and abs(c["estimate"]) < 0.25
    assert cover_s >= 34 and cover_c >= 34
    y, p = _cohort(5000, rng)
    over = performance_by_window(y, expit(2 * logit(p)), n_boot=0)[0]["calibration_slope"]
    assert over["estimate"] == pytest.approx(0.5, abs=0.05) and over["ci_high"] < 1


def test_performance_bad_inputs():
    with pytest.raises(ValidationError, match="windows has 2 labels but y has 3"):
        performance_by_window([0, 1, 0], [0.1, 0.5, 0.2], windows=["a", "b"])
    with pytest.raises(ValidationError):
        performance_by_window([0, 1, 2], [0.1, 0.5, 0.2])
    with pytest.raises(OptionError, match="min_rows"):
        performance_by_window([0, 1], [0.1, 0.5], min_rows=0)


# ---- window_labels -------------------------------------------------------------------------

def test_window_labels_month_week_and_blocks():
    t = pd.Series(["2024-01-31", "2024-02-01", "2024-02-29T23:00:00", "2024-03-04"], index=[5, 6, 7, 8])
    m = window_labels(t, "month")
    assert m.tolist() == ["2024-01", "2024-02", "2024-02", "2024-03"] and list(m.index) == [5, 6, 7, 8]
    assert window_labels(t, "week").tolist()[2:] == ["2024-02-26/2024-03-03", "2024-03-04/2024-03-10"]
    shuffled = pd.Series(pd.to_datetime(["2024-01-05", "2024-01-01", "2024-01-04", "2024-01-02",
                                         "2024-01-03"]))
    assert window_labels(shuffled, 2).tolist() == [2, 0, 1, 0, 1]
    assert window_labels(pd.Series([3.0, 1.0, 2.0]), 2).tolist() == [1, 0, 0]


def test_window_labels_bad_inputs():
    with pytest.raises(ValidationError, match="2 of 4 times are missing or do not parse") as e:
        window_labels(pd.Series(["2024-01-01", "yesterday", None, "2024-01-03"]), "month")
    assert "give every row a date" in e.value.fix
    with pytest.raises(ValidationError, match="numbers"):
        window_labels(pd.Series([1, 2, 3]), "month")
    with pytest.raises(OptionError, match="window"):
        window_labels(pd.Series(["2024-01-01"]), "day")
    with pytest.raises(OptionError, match="window"):
        window_labels(pd.Series(["2024-01-01"]), 0)
