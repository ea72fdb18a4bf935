"""Subgroup metrics, fairlearn disparities and threshold mitigation on constructed data."""

import numpy as np
import pandas as pd
import pytest

from pmed.errors import ValidationError
from pmed.evaluate.metrics import binary_metrics
from pmed.evaluate.subgroups import disparity_summary, mitigate_thresholds, subgroup_metrics

N_BOOT = 40  # CIs are not under test here; keep the bootstrap cheap


@pytest.fixture(scope="module")
def cohort():
    """Scores that are deliberately much noisier (worse) for women; site B has 10 patients."""
    rng = np.random.default_rng(7)
    n = 1200
    groups = pd.DataFrame({
        "sex": rng.choice(["F", "M"], n),
        "ancestry": rng.choice(["EUR", "AFR"], n),
        "site": np.r_[np.repeat("A", n - 10), np.repeat("B", 10)],
    })
    y = (rng.random(n) < 0.3).astype(int)
    noise_sd = np.where(groups["sex"] == "F", 2.5, 0.5)
    p = 1 / (1 + np.exp(-(2.0 * (y - 0.5) + rng.normal(0, noise_sd))))
    return y, p, groups


def test_worse_group_has_lower_auroc_and_metrics_match_binary_metrics(cohort):
    y, p, g = cohort
    res = subgroup_metrics(y, p, g, n_boot=N_BOOT)
    f, m = res["sex"]["F"], res["sex"]["M"]
    assert not f["suppressed"] and not m["suppressed"]
    assert f["metrics"]["auroc"]["estimate"] < m["metrics"]["auroc"]["estimate"] - 0.1
    # CI of the worse group lies entirely below the better group's estimate
    assert f["metrics"]["auroc"]["ci_high"] < m["metrics"]["auroc"]["estimate"]
    assert f["n"] == int((g["sex"] == "F").sum())
    assert f["n_events"] == int(y[g["sex"] == "F"].sum())
    # same draws as binary_metrics on the subgroup, to the last digit
    mask = (g["sex"] == "F").to_numpy()
    ref = binary_metrics(y[mask], p[mask], n_boot=N_BOOT, seed=0)
    for k, v in ref.items():
        assert f["metrics"][k] == v
    citl = f["metrics"]["calibration_in_the_large"]
    assert citl["estimate"] == pytest.approx(y[mask].mean() - p[mask].mean())
    assert citl["ci_low"] <= citl["estimate"] <= citl["ci_high"]
    assert f["metrics"]["selection_rate"]["estimate"] == pytest.approx(np.mean(p[mask] >= 0.5))


def test_small_group_is_suppressed_with_reason_and_no_counts(cohort):
    y, p, g = cohort
    res = subgroup_metrics(y, p, g, n_boot=N_BOOT)
    b = res["site"]["B"]
    assert b["suppressed"] is True
    assert "fewer than 30 patients" in b["reason"] and "re-identify" in b["reason"]
    # counts of a suppressed cell are what identifies: none are reported
    assert set(b) == {"suppressed", "reason"}
    assert res["site"]["A"]["suppressed"] is False
    # the event rule applies too: with min_events above F×EUR's non-events it is suppressed
    cell = res["sex×ancestry"]["F×EUR"]
    n_non = cell["n"] - cell["n_events"]
    strict = subgroup_metrics(y, p, g[["sex", "ancestry"]], min_events=n_non + 1, n_boot=5)
    assert "non-events" in strict["sex×ancestry"]["F×EUR"]["reason"]


def test_intersections_present_and_optional(cohort):
    y, p, g = cohort
    res = subgroup_metrics(y, p, g, n_boot=5)
    assert set(res) == {"sex", "ancestry", "site", "sex×ancestry", "sex×site", "ancestry×site",
                        "sex×ancestry×site"}
    assert set(res["sex×ancestry"]) == {"F×AFR", "F×EUR", "M×AFR", "M×EUR"}
    assert all(c["suppressed"] for lev, c in res["sex×site"].items() if lev.endswith("×B"))
    n_fe = int(((g["sex"] == "F") & (g["ancestry"] == "EUR")).sum())
    assert res["sex×ancestry"]["F×EUR"]["n"] == n_fe
    flat = subgroup_metrics(y, p, g, intersections=False, n_boot=5)
    assert set(flat) == {"sex", "ancestry", "site"}


def test_disparities_equal_hand_computation(cohort):
    y, p, g = cohort
    d = disparity_summary(y, p, g)
    yhat = p >= 0.5
    hand = {}
    for s in ("F", "M"):
        m = (g["sex"] == s).to_numpy()
        hand[s] = {"tpr": yhat[m & (y == 1)].mean(), "fpr": yhat[m & (y == 0)].mean(),
                   "selection_rate": yhat[m].mean(), "overprediction": p[m].mean() - y[m].mean()}
    sex = d["sex"]
    assert sex["comparable"]
    for metric in ("tpr", "fpr", "selection_rate", "overprediction"):
        assert sex["by_group"]["F"][metric] == pytest.approx(hand["F"][metric])
        assert sex["difference"][metric] == pytest.approx(abs(hand["F"][metric] - hand["M"][metric]))
    for metric in ("tpr", "fpr", "selection_rate"):
        lo, hi = sorted([hand["F"][metric], hand["M"][metric]])
        assert sex["ratio"][metric] == pytest.approx(lo / hi)
    assert sex["difference"]["tpr"] > 0.1  # the worse group's TPR really differs
    assert sex["difference"]["equalized_odds"] == max(sex["difference"]["tpr"],
                                                       sex["difference"]["fpr"])
    assert sex["best"]["tpr"] == "M" and sex["worst"]["tpr"] == "F"
    assert sex["best"]["fpr"] == "M" and sex["worst"]["fpr"] == "F"


def test_disparities_leave_out_suppressed_groups(cohort):
    y, p, g = cohort
    d = disparity_summary(y, p, g)
    assert d["site"] == {"comparable": False, "suppressed": ["B"], "reason": d["site"]["reason"]}
    assert set(d["sex×site"]["suppressed"]) == {"F×B", "M×B"}
    assert set(d["sex×site"]["by_group"]) == {"F×A", "M×A"}


def test_mitigation_reduces_disparity_and_reports_its_cost(cohort):
    y, p, g = cohort
    res = mitigate_thresholds(y, p, g[["sex"]], constraint="equalized_odds")
    assert set(res["groups"]) == {"F", "M"}
    for rule in res["groups"]["F"]["rules"]:
        assert 0 <= rule["probability"] <= 1 and rule["operator"] in (">", "<")
    before, after = res["before"]["difference"], res["after"]["difference"]
    assert after["equalized_odds"] < before["equalized_odds"] / 2
    assert res["disparity_reduction"] == pytest.approx(before["equalized_odds"] - after["equalized_odds"])
    assert res["cost"]["accuracy"] == pytest.approx(res["after"]["accuracy"] - res["before"]["accuracy"])
    assert res["before"]["accuracy"] == pytest.approx(np.mean((p >= 0.5) == y))
    assert "in-sample" in res["evaluation"]
    # same seed, same answer
    again = mitigate_thresholds(y, p, g[["sex"]], constraint="equalized_odds")
    assert again["after"] == res["after"]


def test_mitigation_cross_validated_and_demographic_parity(cohort):
    y, p, g = cohort
    res = mitigate_thresholds(y, p, g[["sex"]], constraint="demographic_parity", cv=3)
    assert "3-fold" in res["evaluation"]
    assert (res["after"]["difference"]["demographic_parity"]
            < res["before"]["difference"]["demographic_parity"])
    with pytest.raises(ValidationError, match="unknown constraint"):
        mitigate_thresholds(y, p, g[["sex"]], constraint="fairness")


def test_bad_groups_are_refused_with_where(cohort):
    y, p, g = cohort
    bad = g.copy()
    bad["unit"] = "ICU"
    bad.loc[[3, 7], "ancestry"] = np.nan
    with pytest.raises(ValidationError) as e:
        subgroup_metrics(y, p, bad)
    msg = str(e.value)
    assert "'unit' has a single level" in msg
    assert "'ancestry' is missing for 2 patients: rows 3, 7" in msg
    with pytest.raises(ValidationError, match="misaligned"):
        disparity_summary(y, p, g.iloc[:-1])
    shuffled = pd.Series(y, index=np.arange(len(y))[::-1])
    with pytest.raises(ValidationError, match="different indexes"):
        subgroup_metrics(shuffled, p, g)
    ided = g.set_index(pd.Index([f"P{i}" for i in range(len(g))]))
    ided.loc["P5", "sex"] = None
    # the position, not the patient's ID (issue #16)
    with pytest.raises(ValidationError, match=r"'sex' is missing for 1 patients: positions 6 \(1-based\)") as e:
        mitigate_thresholds(pd.Series(y, index=ided.index), p, ided)
    assert "P5" not in str(e.value)
