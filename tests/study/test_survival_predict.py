"""Per-patient survival predictions (issue #17, item 4): intervals and patient reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sksurv")
pytest.importorskip("lifelines")

from pmed.cli import main  # noqa: E402
from pmed.models import make_model  # noqa: E402
from pmed.report.survival import event_sentence, horizon_text, median_sentence, percent_text  # noqa: E402
from pmed.study import load_bundle, predict_patients  # noqa: E402
from pmed.survival.intervals import cox_interval_terms, survival_intervals  # noqa: E402
from pmed.survival.models import make_surv_y, predict_survival  # noqa: E402

R_REF = Path(__file__).parents[1] / "fixtures" / "r" / "survival_intervals.json"


def _cohort(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    T = rng.exponential(1 / (0.002 * np.exp(0.8 * x1 - 0.6 * x2)))
    C = rng.uniform(200, 1500, n)
    return pd.DataFrame({"patient_id": [f"P{i:04d}" for i in range(n)], "x1": x1, "x2": x2,
                         "os_days": np.round(np.minimum(T, C), 1) + 0.1, "died": (T <= C).astype(int)})


def _fit(df: pd.DataFrame):
    X = df[["x1", "x2"]]
    return make_model("cox", task="survival", X=X).fit(X, make_surv_y(df.os_days, df.died)), X


def test_cox_intervals_match_r_survfit():
    ref = json.loads(R_REF.read_text())
    d = pd.DataFrame(ref["data"])
    model, X = _fit(d.rename(columns={"time": "os_days", "event": "died"}))
    new = pd.DataFrame(ref["new"])
    times = ref["times"]
    terms = cox_interval_terms(model, X, d.time, d.event, times)
    iv = survival_intervals(model, new, terms, times)
    # R gives times × patients
    np.testing.assert_allclose(predict_survival(model, new, times), np.asarray(ref["surv"]).T, atol=1e-7)
    np.testing.assert_allclose(iv[[f"surv_{t:g}_low" for t in times]], np.asarray(ref["lower"]).T, atol=1e-7)
    np.testing.assert_allclose(iv[[f"surv_{t:g}_high" for t in times]], np.asarray(ref["upper"]).T, atol=1e-7)
    # the stored sums reproduce the model's own baseline cumulative hazard at each horizon
    est = model[-1]
    for t in times:
        H0 = est.baseline_cumhaz_[np.searchsorted(est.grid_, t, side="right") - 1]
        assert terms["horizons"][f"{t:g}"]["A"] == pytest.approx(H0, rel=1e-10)


def test_interval_contains_estimate_and_narrows_with_more_data():
    new = pd.DataFrame({"x1": [-1.0, 0.0, 1.2], "x2": [0.3, 0.0, -0.8]})
    widths = []
    for n in (150, 2400):
        df = _cohort(n, seed=5)
        model, X = _fit(df)
        terms = cox_interval_terms(model, X, df.os_days, df.died, [365, 730])
        iv = survival_intervals(model, new, terms, [365, 730])
        S = predict_survival(model, new, [365, 730])
        for j, h in enumerate(["365", "730"]):
            assert np.all(iv[f"surv_{h}_low"] < S[:, j]) and np.all(S[:, j] < iv[f"surv_{h}_high"])
        widths.append((iv["surv_730_high"] - iv["surv_730_low"]).to_numpy())
    # 16× the data: about 4× narrower (parameter uncertainty ∝ 1/√n)
    assert np.all(widths[1] < widths[0] / 2.5)


def test_non_cox_models_have_no_interval_terms():
    df = _cohort(120, seed=2)
    X = df[["x1", "x2"]]
    km = make_model("km", task="survival", X=X).fit(X, make_surv_y(df.os_days, df.died))
    assert cox_interval_terms(km, X, df.os_days, df.died, [365]) is None


@pytest.mark.parametrize("t, unit, text", [
    (1826, "days", "5 years"), (365, "days", "1 year"), (730, "days", "2 years"), (548, "days", "1.5 years"),
    (182.5, "days", "182.5 days"), (400, "days", "400 days"), (24, "months", "2 years"),
    (18, "months", "18 months"), (1, "years", "1 year"), (3, "years", "3 years"),
])
def test_horizon_in_words(t, unit, text):
    assert horizon_text(t, unit) == text


def test_event_sentence_for_a_known_curve():
    assert (event_sentence(1826, 0.77, 0.70, 0.83, unit="days")
            == "about 23 % chance of the event within 5 years; 95 % interval 17–30 %")
    assert event_sentence(365, 0.998, unit="days") == "<1 % chance of the event within 1 year"
    assert event_sentence(365, 0.001, unit="days") == ">99 % chance of the event within 1 year"
    assert percent_text(0.996) == ">99" and percent_text(0.0) == "0"
    assert median_sentence(1000, unit="days").startswith("Median predicted time to the event: about 2.7 years (")
    assert median_sentence(200.04, unit="days").startswith("Median predicted time to the event: 200 days (")
    assert "not reached" in median_sentence(float("nan"), unit="days", follow_up=1500)


def _run(folder: Path, family: str) -> Path:
    _cohort(200, seed=1).to_csv(folder / "patients.csv", index=False)
    (folder / "study.yaml").write_text(
        "name: surv\ndata: {patients: patients.csv}\n"
        "target: {task: survival, time: os_days, event: died, horizons: [365, 730], time_unit: days}\n"
        f"models: [{{family: {family}}}]\nevaluation: {{folds: 3, bootstrap: 0}}\nseed: 0\n")
    assert main(["run", str(folder / "study.yaml"), "--out", str(folder / "out")]) == 0
    _cohort(4, seed=9).drop(columns=["os_days", "died"]).to_csv(folder / "new.csv", index=False)
    return folder / "out" / "model"


@pytest.fixture(scope="module")
def cox_bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cox")
    return _run(folder, "cox"), folder


def test_cox_bundle_predicts_intervals(cox_bundle):
    model, folder = cox_bundle
    pred = predict_patients(model, folder / "new.csv")
    assert list(pred.columns) == ["risk", "surv_365", "surv_365_low", "surv_365_high",
                                  "surv_730", "surv_730_low", "surv_730_high", "median_survival"]
    for h in (365, 730):
        assert np.all((pred[f"surv_{h}_low"] < pred[f"surv_{h}"]) & (pred[f"surv_{h}"] < pred[f"surv_{h}_high"]))
    b = load_bundle(model)
    assert b.manifest["survival"]["columns"] == list(pred.columns)
    # the same as recomputing from the training data
    df = pd.read_csv(folder / "patients.csv")
    terms = cox_interval_terms(b.pipeline, df[["x1", "x2"]], df.os_days, df.died, [365, 730])
    new = pd.read_csv(folder / "new.csv").set_index("patient_id")
    iv = survival_intervals(b.pipeline, new[["x1", "x2"]], terms, [365, 730])
    np.testing.assert_allclose(pred["surv_730_low"], iv["surv_730_low"], rtol=1e-9)
    km = b.manifest["survival"]["km"]
    assert km["surv"][0] < 1 and np.all(np.diff(km["surv"]) < 0) and np.all(np.diff(km["time"]) > 0)


def test_cox_patient_reports(cox_bundle, capsys):
    model, folder = cox_bundle
    rep = folder / "rep"
    argv = ["predict", "--model", str(model), "--patients", str(folder / "new.csv"), "--out",
            str(folder / "pred.csv"), "--report", str(rep)]
    assert main(argv) == 0
    pred = pd.read_csv(folder / "pred.csv", index_col=0)
    index = pd.read_csv(rep / "index.csv")
    assert list(index.patient_id) == list(pred.index)
    pid = pred.index[0]
    html = (rep / index.set_index("patient_id").loc[pid, "report"]).read_text()
    row = pred.loc[pid]
    expected = event_sentence(730, row.surv_730, row.surv_730_low, row.surv_730_high, unit="days",
                              event="the event (died)")
    assert expected.replace("(", "&#40;") in html or expected in html
    assert "within 2 years" in expected and "within 1 year" in html
    assert "data:image/png;base64," in html and "Kaplan–Meier" in html
    assert "hazard × " in html and "hazard ratio" in html
    assert not list(rep.glob(".*png"))  # plots embedded, not left beside the reports
    # a re-run with fewer patients replaces the folder whole: no stale report
    pd.read_csv(folder / "new.csv").head(2).to_csv(folder / "new2.csv", index=False)
    argv2 = argv.copy()
    argv2[argv2.index(str(folder / "new.csv"))] = str(folder / "new2.csv")
    assert main(argv2) == 0
    assert sorted(p.name for p in rep.iterdir()) == sorted(["index.csv", *pd.read_csv(rep / "index.csv").report])
    assert len(list(rep.glob("*.html"))) == 2


def test_km_bundle_gives_everyone_the_cohort_curve_with_its_greenwood_interval(tmp_path):
    model = _run(tmp_path, "km")
    pred = predict_patients(model, tmp_path / "new.csv")
    for c in ("surv_365", "surv_365_low", "surv_365_high"):
        assert pred[c].nunique() == 1
    assert pred["surv_365_low"].iloc[0] < pred["surv_365"].iloc[0] < pred["surv_365_high"].iloc[0]
    assert main(["predict", "--model", str(model), "--patients", str(tmp_path / "new.csv"), "--out",
                 str(tmp_path / "p.csv"), "--report", str(tmp_path / "rep")]) == 0
    html = next((tmp_path / "rep").glob("*.html")).read_text()
    assert "Greenwood" in html and "No interval" not in html
