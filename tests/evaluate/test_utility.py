"""Decision curves and threshold selection: known answers, conventions, determinism."""

import numpy as np
import pandas as pd
import pytest

from pmed.errors import ValidationError
from pmed.evaluate.metrics import binary_metrics, confusion
from pmed.evaluate.utility import DEFAULT_THRESHOLDS, decision_curve, select_threshold

# ten patients, five events; p = 0.2 exactly is an event, to pin down the p >= pt convention
Y10 = np.array([1, 1, 1, 0, 1, 0, 0, 1, 0, 0])
P10 = np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.4, 0.3, 0.2, 0.15, 0.1])

COLUMNS = ["threshold", "net_benefit", "net_benefit_ci_low", "net_benefit_ci_high",
           "net_benefit_treat_all", "net_benefit_treat_none", "standardized_net_benefit"]


def calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores that are their own event probabilities: y ~ Bernoulli(p)."""
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    return (rng.random(n) < p).astype(int), p


# --------------------------------------------------------------------------- decision curve


def test_net_benefit_by_hand_on_ten_patients():
    dc = decision_curve(Y10, P10, thresholds=[0.0, 0.1, 0.2, 0.25, 0.5, 0.6, 0.9], n_boot=0)
    assert list(dc.columns) == COLUMNS
    # TP/n − FP/n · pt/(1−pt), patients with p >= pt treated:
    expected = [
        5 / 10 - 5 / 10 * 0,          # pt 0: everyone treated, no penalty
        5 / 10 - 5 / 10 * (1 / 9),    # pt .1: everyone treated
        5 / 10 - 3 / 10 * (1 / 4),    # pt .2: 8 treated (p = .2 included): 5 TP, 3 FP
        4 / 10 - 3 / 10 * (1 / 3),    # pt .25: 7 treated: 4 TP, 3 FP
        4 / 10 - 1 / 10 * 1,          # pt .5: 5 treated: 4 TP, 1 FP
        3 / 10 - 1 / 10 * 1.5,        # pt .6: 4 treated (p = .6 included): 3 TP, 1 FP
        1 / 10 - 0,                   # pt .9: 1 treated, a TP
    ]
    np.testing.assert_allclose(dc["net_benefit"], expected, atol=1e-12)
    treat_all = [0.5, 0.5 - 0.5 / 9, 0.5 - 0.5 / 4, 0.5 - 0.5 / 3, 0.0, 0.5 - 0.5 * 1.5, 0.5 - 0.5 * 9]
    np.testing.assert_allclose(dc["net_benefit_treat_all"], treat_all, atol=1e-12)
    assert (dc["net_benefit_treat_none"] == 0).all()
    np.testing.assert_allclose(dc["standardized_net_benefit"], np.array(expected) / 0.5)
    assert dc.attrs["prevalence"] == 0.5 and dc.attrs["n"] == 10
    assert dc["net_benefit_ci_low"].isna().all()  # n_boot=0: no interval


def test_treat_all_at_zero_threshold_is_the_prevalence():
    y, p = calibrated(400, 1)
    dc = decision_curve(y, p, thresholds=[0.0, 0.3], n_boot=0)
    assert dc["net_benefit_treat_all"].iloc[0] == pytest.approx(y.mean())
    # and a model that treats everyone at pt = 0 is treat-all
    assert dc["net_benefit"].iloc[0] == pytest.approx(y.mean())


def test_perfect_model_net_benefit_is_the_prevalence_at_every_threshold():
    rng = np.random.default_rng(2)
    y = (rng.random(300) < 0.3).astype(int)
    dc = decision_curve(y, y.astype(float), n_boot=50)
    np.testing.assert_array_equal(dc["threshold"], DEFAULT_THRESHOLDS)
    assert len(dc) == 99 and dc["threshold"].iloc[6] == 0.07  # rounded, not 0.07000000000000001
    np.testing.assert_allclose(dc["net_benefit"], y.mean())
    np.testing.assert_allclose(dc["standardized_net_benefit"], 1.0)
    # stratified resamples keep the prevalence, so a perfect model's interval is a point
    np.testing.assert_allclose(dc["net_benefit_ci_low"], y.mean())
    np.testing.assert_allclose(dc["net_benefit_ci_high"], y.mean())


def test_decision_curve_interval_and_determinism():
    y, p = calibrated(300, 3)
    a = decision_curve(y, p, n_boot=100, seed=5)
    b = decision_curve(y, p, n_boot=100, seed=5)
    c = decision_curve(y, p, n_boot=100, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["net_benefit_ci_low"], c["net_benefit_ci_low"])
    np.testing.assert_array_equal(a["net_benefit"], c["net_benefit"])  # the estimate has no noise
    assert (a["net_benefit_ci_low"] <= a["net_benefit"] + 1e-12).all()
    assert (a["net_benefit"] <= a["net_benefit_ci_high"] + 1e-12).all()
    assert "100 resamples, seed 5" in a.attrs["method"]
    # a calibrated model beats treating all or none at mid thresholds (nearer the ends the
    # curves meet, and sampling noise can put the model level with treat-all)
    mid = a[a["threshold"].between(0.4, 0.6)]
    assert (mid["net_benefit"] > np.maximum(mid["net_benefit_treat_all"], 0)).all()


@pytest.mark.parametrize(
    ("y", "p", "thresholds", "match"),
    [
        ([0, 1, 1], [0.1, 0.5, 1.5], None, "probabilities in"),
        ([0, 1, 1], [0.1, np.nan, 0.3], None, "missing"),
        ([1, 1, 1], [0.1, 0.5, 0.3], None, "both classes"),
        ([0, 1, 2], [0.1, 0.5, 0.3], None, "0 or 1"),
        ([0, 1], [0.1, 0.5, 0.3], None, "2 outcomes but 3"),
        ([0, 1, 1], [0.1, 0.5, 0.3], [0.5, 1.0], r"in \[0, 1\)"),
    ],
)
def test_decision_curve_refuses_bad_input(y, p, thresholds, match):
    with pytest.raises(ValidationError, match=match):
        decision_curve(y, p, thresholds=thresholds, n_boot=0)


def test_agrees_with_dcurves_package():
    dcurves = pytest.importorskip("dcurves")
    rng = np.random.default_rng(3)
    p = np.round(rng.beta(2, 5, 500), 2)  # rounded: scores equal to thresholds occur
    y = (rng.random(500) < p).astype(int)
    th = [i / 100 for i in range(100)]
    ref = dcurves.dca(data=pd.DataFrame({"y": y, "m": p}), outcome="y", modelnames=["m"], thresholds=th)
    ours = decision_curve(y, p, thresholds=th, n_boot=0)
    for model, col in (("m", "net_benefit"), ("all", "net_benefit_treat_all"),
                       ("none", "net_benefit_treat_none")):
        np.testing.assert_allclose(ref.loc[ref["model"] == model, "net_benefit"], ours[col], atol=1e-12)


def test_decision_curve_plot():
    from matplotlib.figure import Figure

    from pmed.plots._base import _plt
    from pmed.plots.utility import decision_curve_plot

    y, p = calibrated(200, 4)
    a = decision_curve(y, p, n_boot=30)
    b = decision_curve(y, np.clip(p + 0.2, 0, 1), n_boot=0)
    fig = decision_curve_plot(a, title="DCA", models={"shifted": b})
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and ax.get_title() == "DCA"
    assert ax.get_ylim() == pytest.approx((-0.05, 1.1 * y.mean()))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["model", "shifted", "treat all", "treat none"]
    assert len(ax.collections) == 1  # one CI band: b has none
    _plt().close(fig)
    # dca_df among the models is drawn once; prevalence recovered without attrs
    a2 = a.copy()
    a2.attrs = {}
    fig = decision_curve_plot(a2, models={"a": a2})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][0] == "a"
    assert fig.axes[0].get_ylim() == pytest.approx((-0.05, 1.1 * y.mean()))
    _plt().close(fig)


# --------------------------------------------------------------------------- threshold choice


def test_youden_on_a_constructed_example():
    # events at ranks 4 and 7–10: cutting at the 7th score gives sens 4/5, spec 5/5 (J = .8);
    # every other cut is worse (at the 4th: sens 1, spec 3/5, J = .6)
    p = np.arange(1, 11) / 10 - 0.05
    y = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1])
    r = select_threshold(y, p, method="youden", n_boot=50)
    assert r["method"] == "youden"
    assert r["threshold"]["estimate"] == pytest.approx(0.65)
    assert r["sensitivity"]["estimate"] == pytest.approx(0.8)
    assert r["specificity"]["estimate"] == pytest.approx(1.0)
    assert r["ppv"]["estimate"] == pytest.approx(1.0)
    assert r["npv"]["estimate"] == pytest.approx(5 / 6)
    assert "re-selected" in r["threshold"]["method"]
    for k in ("threshold", "sensitivity", "specificity", "ppv", "npv"):
        assert set(r[k]) == {"estimate", "ci_low", "ci_high", "method"}
        assert r[k]["ci_low"] <= r[k]["ci_high"]


def test_youden_ties_go_to_the_higher_threshold():
    # cut at .5: sens 1, spec 4/5; cut at .7: sens 4/5, spec 1 — both J = .8
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 1])
    assert select_threshold(y, p, method="youden", n_boot=0)["threshold"]["estimate"] == 0.7


def test_youden_matches_brute_force():
    rng = np.random.default_rng(7)
    y = (rng.random(150) < 0.4).astype(int)
    p = np.round(rng.random(150) * 0.5 + 0.4 * y, 2)  # ties in the scores
    n1, n0 = y.sum(), len(y) - y.sum()

    def j_then_t(t):  # J·n1·n0 in integers: exact ties, broken towards the higher threshold
        c = confusion(y, p, t)
        return (c["tp"] * n0 - c["fp"] * n1, t)

    best = max(np.unique(p), key=j_then_t)
    assert select_threshold(y, p, method="youden", n_boot=0)["threshold"]["estimate"] == best


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95, 1.0])
def test_sensitivity_target_is_reached_at_the_highest_threshold(target):
    y, p = calibrated(300, 8)
    r = select_threshold(y, p, method="sensitivity", target=target, n_boot=0)
    t = r["threshold"]["estimate"]
    assert r["sensitivity"]["estimate"] >= target and r["target"] == target
    higher = np.unique(p)[np.unique(p) > t][0]  # the next cut up misses the target
    c = confusion(y, p, higher)
    assert c["tp"] / (c["tp"] + c["fn"]) < target


def test_specificity_target_is_reached_at_the_lowest_threshold():
    y, p = calibrated(300, 9)
    r = select_threshold(y, p, method="specificity", target=0.9, n_boot=0)
    t = r["threshold"]["estimate"]
    assert r["specificity"]["estimate"] >= 0.9
    lower = np.unique(p)[np.unique(p) < t][-1]
    c = confusion(y, p, lower)
    assert c["tn"] / (c["tn"] + c["fp"]) < 0.9
    # full specificity needs a cut above every negative score
    r1 = select_threshold(y, p, method="specificity", target=1.0, n_boot=0)
    assert r1["threshold"]["estimate"] > p[y == 0].max()


@pytest.mark.parametrize("ratio", [3.0, 1.0, 0.25])
def test_cost_threshold_is_one_over_one_plus_ratio_for_calibrated_scores(ratio):
    y, p = calibrated(50_000, 10)
    r = select_threshold(y, p, method="cost", cost_ratio=ratio, n_boot=40)
    assert r["analytic_threshold"] == pytest.approx(1 / (1 + ratio))
    # the empirical minimiser wanders ~n^(-1/3) around the analytic one: the cost is flat there
    assert r["threshold"]["estimate"] == pytest.approx(1 / (1 + ratio), abs=0.03)
    assert r["threshold"]["ci_low"] - 0.01 <= 1 / (1 + ratio) <= r["threshold"]["ci_high"] + 0.01


def test_metrics_at_threshold_agree_with_binary_metrics_and_are_deterministic():
    y, p = calibrated(200, 11)
    a = select_threshold(y, p, method="youden", n_boot=80, seed=3)
    b = select_threshold(y, p, method="youden", n_boot=80, seed=3)
    c = select_threshold(y, p, method="youden", n_boot=80, seed=4)
    assert a == b
    assert a["threshold"]["ci_low"] != c["threshold"]["ci_low"] or a["sensitivity"] != c["sensitivity"]
    # held fixed at the chosen threshold, the metrics are pmed's ordinary ones, same resamples
    ref = binary_metrics(y, p, threshold=a["threshold"]["estimate"], n_boot=80, seed=3)
    for k in ("sensitivity", "specificity", "ppv", "npv"):
        assert a[k] == ref[k]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "f1"}, "unknown method"),
        ({"method": "sensitivity"}, "needs a target"),
        ({"method": "specificity", "target": 1.5}, "needs a target"),
        ({"method": "cost"}, "positive cost_ratio"),
        ({"method": "cost", "cost_ratio": 0}, "positive cost_ratio"),
    ],
)
def test_select_threshold_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        select_threshold(Y10, P10, **kwargs)
