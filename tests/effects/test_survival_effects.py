"""Effects on a survival target: AIPW on jackknife pseudo-observations of the event by a horizon.

A simulated 1:1 trial with a known answer: exponential event times, hazard 0.1 per year in the
control arm and 0.06 (hazard ratio 0.6) in the new arm, uniform censoring on (0, 40) years
(about 30 % censored), three noise covariates. The true difference in P(event by 5 years) is
``(1 − exp(−0.06·5)) − (1 − exp(−0.1·5)) ≈ −0.1342``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmed.effects import run_effects
from pmed.survival.pseudo import pseudo_observations

pytest.importorskip("econml")

L0, HR, H, CMAX = 0.1, 0.6, 5.0, 40.0
TRUTH = (1 - np.exp(-L0 * HR * H)) - (1 - np.exp(-L0 * H))
SCALE = "difference in P(event by 5 years)"


def _trial(seed: int, n: int = 2000) -> tuple[pd.DataFrame, float]:
    rng = np.random.default_rng(seed)
    arm = rng.permutation(np.repeat([0, 1], n // 2))
    T = rng.exponential(1 / (L0 * np.where(arm == 1, HR, 1.0)))
    C = rng.uniform(0, CMAX, n)
    time, event = np.minimum(T, C), (T <= C).astype(int)
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.integers(0, 2, n),
                       "drug": np.where(arm == 1, "new", "old")},
                      index=pd.Index([f"P{i:05d}" for i in range(n)], name="patient_id"))
    df["died_by_5"] = pseudo_observations(time, event, H)
    return df, float(1 - event.mean())


def _ate(df: pd.DataFrame, seed: int, **kw) -> dict:
    res = run_effects(df, treatment="drug", outcome="died_by_5", control="old", randomized=True, propensity=0.5,
                      learners=["t_learner"], n_boot=20, seed=seed, higher_is_better=False, effect_scale=SCALE,
                      probability_scale=True, **kw)
    return res.metrics


def test_pseudo_observation_effect_covers_the_true_risk_difference():
    df, censored = _trial(0)
    assert 0.25 < censored < 0.35
    m = _ate(df, 0)
    ate = m["arms"]["new"]["ate"]
    assert m["effect_scale"] == SCALE and m["higher_is_better"] is False
    assert ate["ci_low"] <= TRUTH <= ate["ci_high"]
    assert ate["ci_high"] < 0  # the new drug lowers the risk: found, not just covered
    assert abs(ate["estimate"] - TRUTH) < 0.03


@pytest.mark.slow
def test_coverage_over_seeds():
    hits = []
    for seed in range(40):
        df, _ = _trial(100 + seed, n=1000)  # 1,000 patients a trial: the suite's time, same coverage question
        ate = _ate(df, seed)["arms"]["new"]["ate"]
        hits.append(ate["ci_low"] <= TRUTH <= ate["ci_high"])
    assert 0.85 <= np.mean(hits) <= 1.0


def _noisy(seed: int = 0, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "drug": np.repeat(["a", "b"], n // 2),
                         "y": rng.normal(0, 6, n)}, index=pd.Index([f"P{i}" for i in range(n)], name="patient_id"))


def test_probability_scale_cuts_intervals_at_one_and_defaults_are_unchanged():
    df = _noisy()
    kw = dict(treatment="drug", outcome="y", control="a", randomized=True, learners=["t_learner"], n_boot=5)
    plain = run_effects(df, **kw).metrics
    assert plain["effect_scale"] == "difference in mean y"
    a = plain["arms"]["b"]["ate"]
    assert a["ci_high"] - a["ci_low"] > 2  # sd 6 on 30 a side: wider than any difference in probabilities
    cut = run_effects(df, probability_scale=True, effect_scale="difference in P(event by 1 year)", **kw).metrics
    assert cut["effect_scale"] == "difference in P(event by 1 year)"
    b = cut["arms"]["b"]["ate"]
    assert -1 <= b["ci_low"] and b["ci_high"] <= 1 and "cut at ±1" in b["method"]
    assert b["estimate"] == pytest.approx(a["estimate"])


def test_pseudo_observation_score_interval_coverage_over_many_trials():
    # the same design without the learners (known propensity 0.5, constant outcome models: the
    # AIPW score reduces to a difference in mean pseudo-values), so that 400 trials are cheap:
    # the influence-function interval of the pseudo-values holds its 95 % level
    hits, est = [], []
    for seed in range(400):
        df, _ = _trial(seed)
        y, t = df["died_by_5"].to_numpy(), (df["drug"] == "new").to_numpy()
        mu1, mu0 = y[t].mean(), y[~t].mean()
        psi = mu1 - mu0 + t * (y - mu1) / 0.5 - (~t) * (y - mu0) / 0.5
        se = psi.std(ddof=1) / np.sqrt(len(psi))
        hits.append(abs(psi.mean() - TRUTH) <= 1.959964 * se)
        est.append(psi.mean())
    assert 0.93 <= np.mean(hits) <= 0.97
    assert abs(np.mean(est) - TRUTH) < 0.003  # unbiased: the mean of 400 estimates is within 1.5 of its SE
