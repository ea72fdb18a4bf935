"""Per-patient survival intervals of every family (pmed.survival.intervals).

``km``: Greenwood interval against R's survfit on ``lung`` (tests/fixtures/r/make_km_intervals.R,
stored in km_intervals.json: CI needs no R). ``rsf``: the infinitesimal jackknife's standard
error against the spread of the forest's prediction over independent training sets of one
simulation. ``coxnet``/``gbsa``: percentile bootstrap — compact refits equal scikit-survival's
own predictions, intervals contain the estimate, widen with less data, and are seeded. The
``cox`` delta method is tested against R in tests/study/test_survival_predict.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sksurv")
pytest.importorskip("lifelines")

from pmed.cli import main  # noqa: E402
from pmed.errors import BundleError, OptionError  # noqa: E402
from pmed.models import make_model  # noqa: E402
from pmed.study import load_bundle, predict_patients  # noqa: E402
from pmed.survival.intervals import (  # noqa: E402
    IJ_VARIANCE_FLOOR,
    _compact_refit,
    _flatten_trees,
    _ij_variance,
    _tree_risk,
    interval_terms,
    survival_intervals,
)
from pmed.survival.models import SurvivalForest, make_surv_y, predict_survival  # noqa: E402

R_DIR = Path(__file__).parents[1] / "fixtures" / "r"
HS = [365, 730]


def _sim(n: int, seed: int, p: int = 3) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Exponential times, hazard 0.002·exp(0.8·x1 − 0.6·x2), uniform censoring (≈ 1/3 censored)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    T = rng.exponential(1 / (0.002 * np.exp(0.8 * x[:, 0] - 0.6 * x[:, 1])))
    C = rng.uniform(200, 1500, n)
    return (pd.DataFrame(x, columns=[f"x{j + 1}" for j in range(p)]), np.round(np.minimum(T, C), 1) + 0.1,
            (T <= C).astype(int))


NEW = pd.DataFrame({"x1": [-1.0, 0.0, 1.0, 1.5], "x2": [0.5, 0.0, -0.5, 1.0], "x3": [0.0, 0.0, 0.0, 0.5]})


def _fit(family: str, X, t, e, **params):
    return make_model(family, task="survival", X=X, params=params).fit(X, make_surv_y(t, e))


# ------------------------------------------------------------------------------------ km
def test_km_greenwood_matches_r_survfit():
    ref = json.loads((R_DIR / "km_intervals.json").read_text())
    lung = pd.read_csv(R_DIR / "lung.csv")
    X = lung[["age", "sex"]]
    km = _fit("km", X, lung.time, lung.event)
    times = ref["times"]
    terms = interval_terms(km, X, lung.time, lung.event, times)
    assert terms["kind"] == "greenwood" and "Greenwood" in terms["method"]
    json.dumps(terms)  # stored in the manifest as is
    iv = survival_intervals(km, X.head(3), terms, times)
    low = iv[[f"surv_{t:g}_low" for t in times]].to_numpy()
    high = iv[[f"surv_{t:g}_high" for t in times]].to_numpy()
    np.testing.assert_allclose(predict_survival(km, X.head(1), times)[0], ref["surv"], atol=1e-12)
    # the same for every patient, and R's numbers (upper clipped at 1 at t = 5)
    np.testing.assert_allclose(low, np.tile(ref["lower"], (3, 1)), atol=1e-6)
    np.testing.assert_allclose(high, np.tile(ref["upper"], (3, 1)), atol=1e-6)
    assert high[0, 0] == 1.0


# ----------------------------------------------------------------------------------- rsf
def test_ij_variance_equals_the_formula_written_out():
    rng = np.random.default_rng(3)
    B, n, m = 40, 25, 3
    N = rng.multinomial(n, np.full(n, 1 / n), size=B)  # bootstrap in-bag counts
    T = rng.uniform(0.2, 0.9, size=(B, m))
    want = []
    for j in range(m):
        cov = [np.mean((N[:, i] - N[:, i].mean()) * (T[:, j] - T[:, j].mean())) for i in range(n)]
        want.append(np.sum(np.square(cov)) - n / B**2 * np.sum((T[:, j] - T[:, j].mean()) ** 2))
    got = _ij_variance(T, N.astype(np.uint8))
    want = np.asarray(want)
    np.testing.assert_allclose(got, np.where(want > IJ_VARIANCE_FLOOR, want, np.nan), rtol=1e-12)
    # a prediction that does not vary over the trees: no variance can be read (NaN, not 0)
    assert np.isnan(_ij_variance(np.full((B, 1), 0.4), N)[0])


def test_rsf_with_too_few_trees_gives_no_interval_and_says_so():
    """IJ-U needs trees of the order of the patients: with 10 trees on 300 patients its Monte-Carlo
    correction swallows the variance; the bounds are NaN and a warning names the fix."""
    from pmed.survival import SurvivalWarning

    X, t, e = _sim(300, seed=2)
    rsf = _fit("rsf", X, t, e, n_estimators=10)
    terms = interval_terms(rsf, X, t, e, HS)
    with pytest.warns(SurvivalWarning, match="too few for the infinitesimal jackknife.*n_estimators: 500"):
        iv = survival_intervals(rsf, X.head(30), terms, HS)
    assert iv.isna().any().any()


def test_rsf_interval_invariants():
    X, t, e = _sim(250, seed=1)
    rsf = _fit("rsf", X, t, e, n_estimators=400)
    est = rsf[-1]
    assert est.inbag_.dtype == np.uint8 and est.inbag_.shape == (400, 250)
    assert np.all(est.inbag_.sum(axis=1) == 250)  # n draws with replacement per tree
    trees = est.tree_survival(rsf[:-1].transform(NEW), HS)
    np.testing.assert_allclose(trees.mean(axis=0), predict_survival(rsf, NEW, HS), atol=1e-12)
    terms = interval_terms(rsf, X, t, e, HS)
    assert terms["kind"] == "infinitesimal_jackknife" and "jackknife" in terms["method"]
    assert set(terms) == {"kind", "level", "method"}
    iv = survival_intervals(rsf, X.head(40), terms, HS)
    S = predict_survival(rsf, X.head(40), HS)
    for j, h in enumerate(HS):
        lo, hi = iv[f"surv_{h}_low"].to_numpy(), iv[f"surv_{h}_high"].to_numpy()
        ok = ~np.isnan(lo)
        assert ok.mean() > 0.8
        assert np.all((0 <= lo[ok]) & (lo[ok] <= S[ok, j]) & (S[ok, j] <= hi[ok]) & (hi[ok] <= 1))
        assert np.mean((hi - lo)[ok]) > 0.05  # a real interval
    wide = survival_intervals(rsf, X.head(40), {**terms, "level": 0.99}, HS)
    w, n_ = (wide["surv_730_high"] - wide["surv_730_low"]), (iv["surv_730_high"] - iv["surv_730_low"])
    assert np.all((w >= n_ - 1e-12) | n_.isna())


def _ij_against_spread(n: int, reps: int, trees: int) -> np.ndarray:
    """IJ standard error (mean over the training sets) / empirical SD of the forest's S(365 | x)."""
    Z = NEW.to_numpy()
    preds, ses = [], []
    for r in range(reps):
        X, t, e = _sim(n, seed=100 + r)
        f = SurvivalForest(n_estimators=trees, random_state=r).fit(X.to_numpy(), make_surv_y(t, e))
        T = f.tree_survival(Z, [365])[:, :, 0]
        preds.append(T.mean(axis=0))
        ses.append(np.sqrt(_ij_variance(T, f.inbag_)))
    ses = np.asarray(ses)
    # training sets whose trees could not estimate a variance give none (NaN): most must
    assert np.mean(np.isfinite(ses)) > 0.6, np.isfinite(ses).mean(axis=0)
    return np.nanmean(ses, axis=0) / np.std(preds, axis=0, ddof=1)


def test_rsf_ij_se_matches_spread_over_training_sets_small():
    ratio = _ij_against_spread(n=150, reps=10, trees=200)
    assert np.all((ratio > 0.5) & (ratio < 2)), ratio


@pytest.mark.slow
def test_rsf_ij_se_matches_spread_over_training_sets():
    ratio = _ij_against_spread(n=300, reps=30, trees=500)
    assert np.all((ratio > 0.5) & (ratio < 2)), ratio


# ---------------------------------------------------------------------- coxnet and gbsa
@pytest.mark.parametrize("family", ["coxnet", "gbsa"])
def test_compact_refit_equals_scikit_survival(family):
    X, t, e = _sim(200, seed=4)
    model = _fit(family, X, t, e, **({"n_estimators": 25} if family == "gbsa" else {}))
    Z = np.asarray(model[:-1].transform(X), dtype=float)
    sk = model[-1].estimator_
    grid = np.unique(t)
    c = _compact_refit(sk, Z, grid)
    Zn = np.asarray(model[:-1].transform(NEW), dtype=float)
    risk = (Zn @ c["coef"][:-1] - c["coef"][-1]) if "coef" in c else _tree_risk(_flatten_trees([c]), Zn)[0]
    np.testing.assert_allclose(risk, sk.predict(Zn), atol=1e-10)
    k = np.searchsorted(grid, HS, side="right") - 1
    S = np.exp(-np.outer(np.exp(risk), c["cumhaz"][k]))
    np.testing.assert_allclose(S, predict_survival(model, NEW, HS), atol=1e-10)


def _boot_widths(family: str, n: int, n_boot: int, **params) -> tuple[pd.DataFrame, np.ndarray, dict]:
    X, t, e = _sim(n, seed=7)
    model = _fit(family, X, t, e, **params)
    terms = interval_terms(model, X, t, e, HS, n_boot=n_boot, seed=3)
    return survival_intervals(model, NEW, terms, HS), predict_survival(model, NEW, HS), terms


def test_coxnet_bootstrap_contains_widens_and_is_seeded():
    small, S_small, terms = _boot_widths("coxnet", 150, 60)
    large, S_large, _ = _boot_widths("coxnet", 1200, 60)
    assert terms["kind"] == "bootstrap" and terms["n_boot"] == 60 and "preprocessing" in terms["method"]
    json.dumps(terms)
    for iv, S in ((small, S_small), (large, S_large)):
        inside = [(iv[f"surv_{h}_low"] <= S[:, j]) & (S[:, j] <= iv[f"surv_{h}_high"]) for j, h in enumerate(HS)]
        assert np.mean(inside) >= 0.75
    # widths on the log(−log S) scale, where a patient with S near 0 or 1 is not squeezed
    def width(iv):
        return (np.log(-np.log(iv["surv_730_low"])) - np.log(-np.log(iv["surv_730_high"]))).to_numpy()

    # 8× the patients: about √8 ≈ 2.8× narrower
    assert np.all(width(large) < width(small) / 1.5), (width(small), width(large))
    again, _, _ = _boot_widths("coxnet", 150, 60)
    pd.testing.assert_frame_equal(small, again)


def test_gbsa_bootstrap_contains_widens_and_is_seeded():
    X, t, e = _sim(400, seed=8)
    model = _fit("gbsa", X, t, e, n_estimators=30)
    terms = interval_terms(model, X, t, e, HS, n_boot=20, seed=1)
    assert terms["kind"] == "bootstrap" and terms["n_boot"] == 20 and model[-1].bootstrap_["roots"].shape == (20, 30)
    iv = survival_intervals(model, X.head(60), terms, HS)
    S = predict_survival(model, X.head(60), HS)
    inside = np.mean([(iv[f"surv_{h}_low"] <= S[:, j]) & (S[:, j] <= iv[f"surv_{h}_high"]) for j, h in enumerate(HS)])
    assert inside >= 0.75
    assert np.all((iv >= 0) & (iv <= 1))
    same = _fit("gbsa", X, t, e, n_estimators=30)
    pd.testing.assert_frame_equal(survival_intervals(same, X.head(60), interval_terms(same, X, t, e, HS, n_boot=20,
                                                                                      seed=1), HS), iv)
    other = _fit("gbsa", X, t, e, n_estimators=30)
    assert not survival_intervals(other, X.head(60), interval_terms(other, X, t, e, HS, n_boot=20, seed=2),
                                  HS).equals(iv)
    Xs, ts, es = X.head(100), t[:100], e[:100]
    few = _fit("gbsa", Xs, ts, es, n_estimators=30)
    ivs = survival_intervals(few, X.head(60), interval_terms(few, Xs, ts, es, HS, n_boot=20, seed=1), HS)
    assert np.median(ivs["surv_730_high"] - ivs["surv_730_low"]) > 1.3 * np.median(iv["surv_730_high"]
                                                                                   - iv["surv_730_low"])


def test_terms_options_and_old_bundles():
    X, t, e = _sim(120, seed=2)
    coxnet = _fit("coxnet", X, t, e)
    assert interval_terms(coxnet, X, t, e, HS, n_boot=0) is None
    with pytest.raises(OptionError, match="level"):
        interval_terms(coxnet, X, t, e, HS, level=1.5)
    with pytest.raises(OptionError, match="n_boot"):
        interval_terms(coxnet, X, t, e, HS, n_boot=-1)
    with pytest.raises(BundleError, match="no bootstrap refits"):  # terms with a model that lacks them
        survival_intervals(_fit("coxnet", X, t, e), NEW, {"kind": "bootstrap", "level": 0.95, "n_boot": 5}, HS)
    with pytest.raises(BundleError, match="unknown survival interval kind"):
        survival_intervals(coxnet, NEW, {"kind": "magic", "level": 0.95}, HS)
    # cox terms written before "kind" existed are read as the delta method
    cox = _fit("cox", X, t, e)
    terms = interval_terms(cox, X, t, e, HS)
    assert terms["kind"] == "delta_cox"
    old = {k: v for k, v in terms.items() if k != "kind"}
    pd.testing.assert_frame_equal(survival_intervals(cox, NEW, old, HS), survival_intervals(cox, NEW, terms, HS))


# ------------------------------------------------------------------------------- bundles
def _study(folder: Path, family: str, params: str = "", extra: str = "") -> Path:
    X, t, e = _sim(200, seed=1)
    X.assign(patient_id=[f"P{i:04d}" for i in range(200)], os_days=t, died=e).to_csv(folder / "patients.csv",
                                                                                       index=False)
    (folder / "study.yaml").write_text(
        "name: surv\ndata: {patients: patients.csv}\n"
        "target: {task: survival, time: os_days, event: died, horizons: [365, 730], time_unit: days}\n"
        f"models: [{{family: {family}{params}}}]\n"
        f"evaluation: {{folds: 3, bootstrap: 0, report: false{extra}}}\nseed: 0\n")
    assert main(["run", str(folder / "study.yaml"), "--out", str(folder / "out")]) == 0
    NEW.assign(patient_id=[f"N{i}" for i in range(len(NEW))]).to_csv(folder / "new.csv", index=False)
    return folder / "out" / "model"


def test_gbsa_bundle_predicts_bootstrap_intervals(tmp_path):
    model = _study(tmp_path, "gbsa", ", params: {n_estimators: 20}", ", interval_bootstrap: 15")
    pred = predict_patients(model, tmp_path / "new.csv")
    assert list(pred.columns) == ["risk", "surv_365", "surv_365_low", "surv_365_high",
                                  "surv_730", "surv_730_low", "surv_730_high", "median_survival"]
    b = load_bundle(model)  # the refits travel in the skops pipeline, whose types load as trusted
    assert b.manifest["survival"]["columns"] == list(pred.columns)
    terms = b.manifest["survival"]["intervals"]
    assert terms["kind"] == "bootstrap" and terms["n_boot"] == 15 and terms["seed"] == 0
    assert b.pipeline[-1].bootstrap_["cumhaz"].shape[0] == 15
    for h in HS:
        assert np.all((pred[f"surv_{h}_low"] <= pred[f"surv_{h}_high"]) & (pred[f"surv_{h}_low"] >= 0))
    assert (model / "pipeline.skops").stat().st_size < 2_000_000


def test_bundle_without_bootstrap_has_no_interval(tmp_path):
    model = _study(tmp_path, "coxnet", extra=", interval_bootstrap: 0")
    pred = predict_patients(model, tmp_path / "new.csv")
    assert "surv_365_low" not in pred.columns
    assert load_bundle(model).manifest["survival"]["intervals"] is None
    # the patient report says so (as km bundles' did before km had an interval)
    assert main(["predict", "--model", str(model), "--patients", str(tmp_path / "new.csv"), "--out",
                 str(tmp_path / "p.csv"), "--report", str(tmp_path / "rep")]) == 0
    html = next((tmp_path / "rep").glob("*.html")).read_text()
    assert "No interval" in html and "95 % intervals:" not in html


def test_km_and_rsf_bundles_predict_intervals(tmp_path):
    for family, params in (("km", ""), ("rsf", ", params: {n_estimators: 400}")):
        folder = tmp_path / family
        folder.mkdir()
        model = _study(folder, family, params)
        pred = predict_patients(model, folder / "new.csv")
        assert {"surv_365_low", "surv_730_high"} <= set(pred.columns)
        assert np.all((pred["surv_730_low"] <= pred["surv_730"]) & (pred["surv_730"] <= pred["surv_730_high"]))
        if family == "km":  # one curve for everyone: one interval for everyone
            assert pred["surv_730_low"].nunique() == 1


def test_gbsa_gets_no_bootstrap_unless_the_study_asks_and_coxnet_does(tmp_path):
    """A gbsa refit is a whole boosting fit: its 50 default refits would dwarf the study on a large
    cohort, so gbsa bundles have intervals only when interval_bootstrap is set; coxnet's default is 50."""
    for sub in ("g", "c"):
        (tmp_path / sub).mkdir()
    gbsa = load_bundle(_study(tmp_path / "g", "gbsa", ", params: {n_estimators: 20}"))
    assert gbsa.manifest["survival"]["intervals"] is None
    coxnet = load_bundle(_study(tmp_path / "c", "coxnet"))
    assert coxnet.manifest["survival"]["intervals"]["n_boot"] == 50
