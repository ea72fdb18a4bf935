"""Calibration metrics, curves, recalibration and plot: R (rms::val.prob) agreement and invariants.

The R numbers come from tests/fixtures/r/r_reference.json, written by
tests/fixtures/r/make_r_fixtures.R; R is needed only by the last test, which checks that the
script still reproduces the committed fixtures (skipped where Rscript is not installed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from conftest import R_FIXTURES, R_REFERENCE
from pmed.errors import ValidationError
from pmed.evaluate.calibration import (
    _lowess_curve,
    calibration_metrics,
    recalibrate,
    reliability_curve,
    smooth_calibration,
)
from pmed.evaluate.discrimination import proportion_ci

FIXTURES, REF = R_FIXTURES, R_REFERENCE
DATASETS = sorted(REF["datasets"])
CASES = [(name, score) for name in DATASETS for score in ("p1", "p2")]


def load(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / REF["datasets"][name]["file"])


def metrics_quiet(y, p, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the 0/1-dropped warning, tested apart
        return calibration_metrics(y, p, **kw)


# --------------------------------------------------------------------------------------
# agreement with rms::val.prob
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, score", CASES)
def test_val_prob_agreement(name, score):
    df, ref = load(name), REF["datasets"][name][f"calibration_{score}"]
    m = metrics_quiet(df["y"], df[score], n_boot=0)
    # val.prob's lrm.fit stops at a looser tolerance than a converged MLE: 1e-3 as asked
    assert m["calibration_intercept"]["estimate"] == pytest.approx(ref["intercept"], abs=1e-3)
    assert m["calibration_slope"]["estimate"] == pytest.approx(ref["slope"], abs=1e-3)
    # ...and the converged glm with the same model agrees to rounding
    assert m["calibration_intercept"]["estimate"] == pytest.approx(ref["glm_intercept"], abs=1e-7)
    assert m["calibration_slope"]["estimate"] == pytest.approx(ref["glm_slope"], abs=1e-7)
    assert m["calibration_intercept"]["se"] == pytest.approx(ref["glm_intercept_se"], abs=1e-6)
    assert m["calibration_slope"]["se"] == pytest.approx(ref["glm_slope_se"], abs=1e-6)
    assert m["calibration_in_the_large"]["estimate"] == pytest.approx(ref["citl"], abs=1e-7)
    assert m["calibration_in_the_large"]["se"] == pytest.approx(ref["citl_se"], abs=1e-6)
    # the lowess-based errors are computed exactly as R does: far inside 1e-3
    for ours, theirs in [("brier", "brier"), ("ici", "eavg"), ("e50", "e50"), ("e90", "e90"),
                         ("emax", "emax")]:
        assert m[ours]["estimate"] == pytest.approx(ref[theirs], abs=1e-9), ours


@pytest.mark.parametrize("name, score", CASES)
def test_lowess_matches_r_pointwise(name, score):
    df, ref = load(name), REF["datasets"][name][f"calibration_{score}"]
    y, p = df["y"].to_numpy(float), df[score].to_numpy(float)
    ux, uy = _lowess_curve(y, p)
    np.testing.assert_allclose(uy[np.searchsorted(ux, p)], ref["lowess_at_p"], atol=1e-10)


def test_wald_intervals_use_the_glm_standard_errors():
    df, ref = load("overconfident"), REF["datasets"]["overconfident"]["calibration_p1"]
    m = metrics_quiet(df["y"], df["p1"], n_boot=0, level=0.9)
    s = m["calibration_slope"]
    assert s["ci_low"] == pytest.approx(ref["glm_slope"] - 1.6448536269514722 * ref["glm_slope_se"], abs=1e-6)
    assert s["ci_high"] == pytest.approx(ref["glm_slope"] + 1.6448536269514722 * ref["glm_slope_se"], abs=1e-6)
    assert "90% Wald" in s["method"]


def test_exact_zero_and_one_are_dropped_from_the_fits_only():
    df = load("miscalibrated")
    assert REF["datasets"]["miscalibrated"]["calibration_p1"]["n_dropped_from_fit"] == 2
    with pytest.warns(UserWarning, match="2 predictions of exactly 0 or 1"):
        m = calibration_metrics(df["y"], df["p1"], n_boot=0)
    assert "2 predictions of exactly 0 or 1 left out" in m["calibration_slope"]["method"]
    assert np.isfinite(m["brier"]["estimate"]) and np.isfinite(m["emax"]["estimate"])


# --------------------------------------------------------------------------------------
# known answers and invariants
# --------------------------------------------------------------------------------------

def simulate(n: int, seed: int, distort: float = 1.0, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    lp = -0.7 + 1.1 * rng.normal(size=n)
    y = (rng.random(n) < expit(lp)).astype(int)
    return y, expit(distort * lp + shift)


def test_true_probabilities_are_well_calibrated():
    y, p = simulate(20_000, seed=1)
    m = calibration_metrics(y, p, n_boot=0)
    assert m["calibration_slope"]["estimate"] == pytest.approx(1.0, abs=0.06)
    assert m["calibration_intercept"]["estimate"] == pytest.approx(0.0, abs=0.06)
    assert m["calibration_in_the_large"]["estimate"] == pytest.approx(0.0, abs=0.05)
    assert m["calibration_slope"]["ci_low"] < 1 < m["calibration_slope"]["ci_high"]
    assert m["calibration_in_the_large"]["ci_low"] < 0 < m["calibration_in_the_large"]["ci_high"]
    assert m["ici"]["estimate"] < 0.02
    assert m["e50"]["estimate"] <= m["e90"]["estimate"] <= m["emax"]["estimate"]


def test_overconfident_predictions_have_slope_below_one():
    y, p = simulate(3000, seed=2, distort=2.0)
    m = calibration_metrics(y, p, n_boot=0)
    assert m["calibration_slope"]["estimate"] == pytest.approx(0.5, abs=0.08)
    assert m["calibration_slope"]["ci_high"] < 1
    y, p = simulate(3000, seed=3, distort=0.5)  # under-confident
    assert calibration_metrics(y, p, n_boot=0)["calibration_slope"]["ci_low"] > 1


def test_risks_too_high_give_negative_calibration_in_the_large():
    y, p = simulate(3000, seed=4, shift=1.0)
    citl = calibration_metrics(y, p, n_boot=0)["calibration_in_the_large"]
    assert citl["estimate"] == pytest.approx(-1.0, abs=0.12)
    assert citl["ci_high"] < 0


def test_bootstrap_intervals_are_seeded_and_bracket_the_estimate():
    df = load("small_ties")
    a = calibration_metrics(df["y"], df["p1"], n_boot=60, seed=5)
    b = calibration_metrics(df["y"], df["p1"], n_boot=60, seed=5)
    assert a == b
    for k in ("brier", "ici", "e50", "e90", "emax"):
        assert a[k]["ci_low"] <= a[k]["ci_high"], k
        assert "stratified percentile bootstrap, 60 resamples, seed 5" in a[k]["method"]
    assert a["brier"]["ci_low"] < a["brier"]["estimate"] < a["brier"]["ci_high"]
    c = calibration_metrics(df["y"], df["p1"], n_boot=60, seed=6)
    assert c["ici"]["ci_low"] != a["ici"]["ci_low"]
    assert set(a) == {"calibration_in_the_large", "calibration_intercept", "calibration_slope",
                      "brier", "ici", "e50", "e90", "emax"}
    assert all({"estimate", "ci_low", "ci_high", "method"} <= set(v) for v in a.values())


def test_constant_prediction_follows_val_prob():
    y = np.array([0, 0, 0, 1, 1, 0, 0, 1])
    m = calibration_metrics(y, np.full(8, 0.25), n_boot=0)
    assert m["calibration_slope"]["estimate"] == 0.0
    assert m["calibration_intercept"]["estimate"] == pytest.approx(np.log(3 / 5))
    assert m["calibration_in_the_large"]["estimate"] == pytest.approx(np.log(3 / 5) - np.log(1 / 3))
    assert m["emax"]["estimate"] == pytest.approx(abs(0.25 - 3 / 8))


def test_separation_gives_nan_not_nonsense():
    m = calibration_metrics([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], n_boot=0)
    assert np.isnan(m["calibration_slope"]["estimate"])
    assert "did not converge" in m["calibration_slope"]["method"]


# --------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "y, p, fragment",
    [
        ([0, 1, 0, 1], [0.1, 1.2, 0.3, 0.4], r"probabilities in \[0, 1\]"),
        ([0, 1, 0, 1], [-0.1, 0.2, 0.3, 0.4], r"probabilities in \[0, 1\]"),
        ([0, 1, 0, 1], [0.1, np.nan, 0.3, 0.4], "missing"),
        ([0, 1, 3, 1], [0.1, 0.2, 0.3, 0.4], "binary"),
        ([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], "single class"),
    ],
)
def test_bad_inputs_raise_validation_error(y, p, fragment):
    with pytest.raises(ValidationError, match=fragment) as err:
        calibration_metrics(y, p, n_boot=0)
    assert err.value.fix


@pytest.mark.parametrize("kwargs", [{"n_boot": -1}, {"n_boot": 2.5}, {"level": 1.5}])
def test_bad_options_raise_validation_error(kwargs):
    with pytest.raises(ValidationError):
        calibration_metrics([0, 1, 0, 1], [0.1, 0.6, 0.3, 0.4], **kwargs)


# --------------------------------------------------------------------------------------
# curves
# --------------------------------------------------------------------------------------

def test_reliability_curve_bins_and_wilson_intervals():
    df = load("overconfident")
    rc = reliability_curve(df["y"], df["p1"], n_bins=10)
    assert list(rc.columns) == ["bin", "n", "mean_predicted", "observed", "ci_low", "ci_high"]
    assert rc["n"].sum() == len(df) and len(rc) == 10
    assert (rc["n"] == 40).all()  # distinct predictions: equal quantile bins
    assert rc["mean_predicted"].is_monotonic_increasing
    first = rc.iloc[0]
    k = round(first["observed"] * first["n"])
    assert (first["ci_low"], first["ci_high"]) == proportion_ci(k, int(first["n"]))
    # over-confident: low risks are too low, high risks too high
    assert rc["observed"].iloc[0] > rc["mean_predicted"].iloc[0]
    assert rc["observed"].iloc[-1] < rc["mean_predicted"].iloc[-1]


def test_reliability_curve_uniform_bins_and_ties():
    rc = reliability_curve([0, 1, 0, 1, 1, 0], [0.05, 0.05, 0.15, 0.95, 0.92, 0.93],
                           n_bins=10, strategy="uniform")
    assert list(rc["bin"]) == [1, 2, 10]  # empty bins dropped; 1.0 falls in the last bin
    assert list(rc["n"]) == [2, 1, 3]
    one = reliability_curve([0, 1, 1], [0.3, 0.3, 0.3])  # all tied: one bin
    assert len(one) == 1 and one["observed"].iloc[0] == pytest.approx(2 / 3)
    with pytest.raises(ValidationError, match="strategy"):
        reliability_curve([0, 1], [0.2, 0.4], strategy="kmeans")


def test_smooth_calibration_is_val_prob_curve_with_band():
    df, ref = load("well_calibrated"), REF["datasets"]["well_calibrated"]["calibration_p1"]
    p = df["p1"].to_numpy()
    grid = np.sort(p)[::50]
    sm = smooth_calibration(df["y"], p, grid=grid, n_boot=40, seed=1)
    assert list(sm.columns) == ["predicted", "observed", "ci_low", "ci_high"]
    expected = np.asarray(ref["lowess_at_p"])[np.argsort(p, kind="stable")][::50]
    np.testing.assert_allclose(sm["observed"], expected, atol=1e-10)
    inner = sm.iloc[1:-1]
    assert (inner["ci_low"] <= inner["observed"] + 1e-9).all()
    assert (inner["observed"] <= inner["ci_high"] + 1e-9).all()
    again = smooth_calibration(df["y"], p, grid=grid, n_boot=40, seed=1)
    pd.testing.assert_frame_equal(sm, again)
    outside = smooth_calibration(df["y"], p, grid=[p.min() - 0.01, p.max() + 0.01], n_boot=0)
    assert outside["observed"].isna().all() and outside["ci_low"].isna().all()
    default = smooth_calibration(df["y"], p, n_boot=0)
    assert len(default) == 101 and default["predicted"].iloc[0] == p.min()


# --------------------------------------------------------------------------------------
# recalibration and plot
# --------------------------------------------------------------------------------------

def test_recalibrate_wraps_an_unfitted_clone():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    cal = recalibrate(pipe, method="isotonic", cv=3)
    assert isinstance(cal, CalibratedClassifierCV)
    assert cal.method == "isotonic" and cal.cv == 3 and cal.estimator is not pipe
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (rng.random(300) < expit(X[:, 0])).astype(int)
    prob = cal.fit(X, y).predict_proba(X)[:, 1]
    assert prob.shape == (300,) and ((prob >= 0) & (prob <= 1)).all()
    assert not hasattr(pipe[-1], "coef_")  # the caller's pipeline is untouched
    with pytest.raises(ValidationError, match="unknown method"):
        recalibrate(pipe, method="beta")
    with pytest.raises(ValidationError, match="not a classifier"):
        recalibrate(StandardScaler())


def test_calibration_plot(tmp_path):
    from matplotlib.figure import Figure

    from pmed.plots._base import save
    from pmed.plots.calibration import calibration_plot

    df = load("overconfident")
    rc = reliability_curve(df["y"], df["p1"])
    sm = smooth_calibration(df["y"], df["p1"], n_boot=20)
    fig = calibration_plot(rc, sm, title="over-confident", label="model")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert fig.axes[0].get_title() == "over-confident"
    out = save(fig, tmp_path / "cal.png")
    assert out.stat().st_size > 1000
    bare = calibration_plot(reliability_curve([0, 0, 0], [0.1, 0.2, 0.3]))  # no smooth, one class
    assert isinstance(bare, Figure)


# --------------------------------------------------------------------------------------
# the fixtures themselves
# --------------------------------------------------------------------------------------

def _assert_same(a, b, rel: float, path: str = "json") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _assert_same(a[k], b[k], rel, f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, z) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, z, rel, f"{path}[{i}]")
    elif isinstance(a, float | int) and not isinstance(a, bool):
        assert b == pytest.approx(a, rel=rel, abs=1e-12), path
    else:
        assert a == b, path


def _r_with(*packages: str) -> bool:
    """Whether Rscript is installed with every one of ``packages``."""
    if shutil.which("Rscript") is None:
        return False
    code = "; ".join(f"suppressMessages(library({p}))" for p in packages)
    return subprocess.run(["Rscript", "-e", code], capture_output=True, timeout=120).returncode == 0


@pytest.mark.skipif(not _r_with("pROC", "rms"),
                    reason="Rscript with pROC and rms not installed: fixtures are compared instead")
def test_r_script_reproduces_committed_fixtures(tmp_path):
    script = FIXTURES / "make_r_fixtures.R"
    run = subprocess.run(["Rscript", str(script), str(tmp_path)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    fresh = json.loads((tmp_path / "r_reference.json").read_text())
    # the same R, pROC and rms must give the same numbers; other versions may move the
    # last digits (and then the versions recorded differ), not the first six
    same_versions = fresh.pop("versions") == REF["versions"]
    committed = {k: v for k, v in REF.items() if k != "versions"}
    _assert_same(committed, fresh, rel=1e-9 if same_versions else 1e-6)
    for name in DATASETS:
        pd.testing.assert_frame_equal(load(name), pd.read_csv(tmp_path / f"{name}.csv"))
