"""The study task ``survival`` (issue #17, item 1) and ``pmed predict`` on its bundle (item 4).

A synthetic cohort with a known answer: exponential event times whose hazard is
``0.002 · exp(0.8·x1 − 0.6·x2)`` (``x3`` is noise), uniform censoring (about a third censored).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sksurv")
pytest.importorskip("lifelines")

from pmed.cli import main  # noqa: E402
from pmed.errors import StudyError  # noqa: E402
from pmed.models import make_model  # noqa: E402
from pmed.study import load_bundle, load_study, predict_patients, run_study  # noqa: E402
from pmed.survival.metrics import harrell_c  # noqa: E402
from pmed.survival.models import make_surv_y, predict_median, predict_survival  # noqa: E402

BETA = {"x1": 0.8, "x2": -0.6, "x3": 0.0}
HORIZONS = [180, 365, 730]


def survival_cohort(n: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = {k: rng.normal(size=n) for k in BETA}
    lp = sum(BETA[k] * x[k] for k in BETA)
    T = rng.exponential(1 / (0.002 * np.exp(lp)))
    C = rng.uniform(200, 1500, n)
    return pd.DataFrame({"patient_id": [f"P{i:04d}" for i in range(n)], **x,
                         "os_days": np.round(np.minimum(T, C), 1) + 0.1, "died": (T <= C).astype(int)})


def write_survival_study(folder, *, models=("cox", "coxnet", "gbsa", "km"), evaluation="{folds: 5, bootstrap: 10}",
                         target="{task: survival, time: os_days, event: died, horizons: [180, 365, 730]}",
                         name="study.yaml", df: pd.DataFrame | None = None):
    (df if df is not None else survival_cohort()).to_csv(folder / "patients.csv", index=False)
    lines = "\n".join(f"  - family: {m}" + ("\n    params: {n_estimators: 40}" if m in ("gbsa", "rsf") else "")
                      for m in models)
    p = folder / name
    p.write_text(f"name: surv\ndata: {{patients: patients.csv}}\ntarget: {target}\n"
                 + (f"models:\n{lines}\n" if models else "") + f"evaluation: {evaluation}\nseed: 0\n")
    return p


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    folder = tmp_path_factory.mktemp("surv")
    study = write_survival_study(folder)
    return run_study(study, folder / "out"), folder


def test_metrics_json_per_model_and_selection(ran):
    result, _ = ran
    m = json.loads((result.out_dir / "metrics.json").read_text())
    assert m["task"] == "survival" and m["time"] == "os_days" and m["event"] == "died"
    assert m["horizons"] == HORIZONS and m["n_patients"] == 300
    assert m["n_events"] + m["n_censored"] == 300 and 0.2 < m["n_censored"] / 300 < 0.45
    assert m["cv"]["stratified"] is True and m["select_by"] == "harrell_c"
    assert list(m["models"]) == ["cox", "coxnet", "gbsa", "km"]
    for r in m["models"].values():
        mm = r["metrics"]
        assert set(mm) == {"harrell_c", "uno_c", "td_auc", "brier", "ibs", "calibration"}
        assert set(mm["td_auc"]) == set(mm["brier"]) == set(mm["calibration"]) == {"180", "365", "730"}
        assert mm["ibs"]["estimate"] > 0 and mm["harrell_c"]["ci_low"] <= mm["harrell_c"]["estimate"]
        assert mm["harrell_c"]["n_folds"] == 5 and len(mm["harrell_c"]["repeats"]) == 1
    c = {k: v["metrics"]["harrell_c"]["estimate"] for k, v in m["models"].items()}
    assert m["selected_model"] == max(c, key=c.get)
    assert c["km"] == pytest.approx(0.5)  # one curve for everyone: every pair tied in risk
    assert c["cox"] > 0.65
    # the IBS of the null model equals its own Kaplan–Meier reference
    km = m["models"]["km"]["metrics"]["ibs"]
    assert km["estimate"] == pytest.approx(km["km_null"]["estimate"], abs=0.01)
    # the selected model's calibration was bootstrapped, the others' not
    sel = m["models"][m["selected_model"]]["metrics"]["calibration"]["365"]
    assert "bootstrap" in json.dumps(sel)


def test_oof_predictions_are_out_of_fold_and_ordered(ran):
    result, _ = ran
    oof = pd.read_csv(result.out_dir / "oof_predictions.csv")
    surv = [f"surv_{h}" for h in HORIZONS]
    assert list(oof.columns) == ["patient_id", "model", "repeat", "fold", "time", "event", "risk", *surv]
    assert len(oof) == 4 * 300 and not oof.duplicated(["model", "patient_id"]).any()
    S = oof[surv].to_numpy()
    assert ((S >= 0) & (S <= 1)).all()
    assert (np.diff(S, axis=1) <= 1e-12).all()  # survival never rises with time
    cox = oof[oof["model"] == "cox"]
    assert harrell_c(cox["time"], cox["event"], cox["risk"])["estimate"] > 0.6
    # higher risk = worse: the riskiest fifth has lower survival at 365 days than the safest
    q = cox["risk"].quantile([0.2, 0.8]).to_numpy()
    assert cox.loc[cox["risk"] >= q[1], "surv_365"].mean() < cox.loc[cox["risk"] <= q[0], "surv_365"].mean() - 0.2
    # folds stratified by the event: each fold's event rate within 3 points of the whole cohort's
    rates = cox.groupby("fold")["event"].mean()
    assert (rates - cox["event"].mean()).abs().max() < 0.03
    assert np.allclose(oof.loc[oof["model"] == "km", "risk"], 0)


def test_cox_coefficients_near_the_truth(ran):
    result, folder = ran
    coefs = pd.read_csv(result.out_dir / "coefficients.csv").set_index("feature")
    assert list(coefs["model"].unique()) == ["cox"]
    for k, b in BETA.items():
        assert abs(coefs.loc[k, "coef"] - b) < 3 * coefs.loc[k, "se"] + 0.05, (k, coefs.loc[k].to_dict())
    assert np.allclose(coefs["hazard_ratio"], np.exp(coefs["coef"]))
    assert coefs.loc["x3", "p"] > 0.01 and coefs.loc["x1", "p"] < 1e-6
    # the full-data fit: the same numbers as fitting the family directly on every patient
    df = pd.read_csv(folder / "patients.csv").set_index("patient_id")
    X = df[list(BETA)]
    direct = make_model("cox", task="survival", X=X).fit(X, make_surv_y(df["os_days"], df["died"]))
    assert np.allclose(coefs.loc[list(BETA), "coef"], direct[-1].coef_, atol=1e-9)


def test_importance_and_evaluation_folder(ran):
    result, _ = ran
    imp = pd.read_csv(result.out_dir / "feature_importance.csv")
    assert imp["method"].str.contains("Harrell").all()
    assert set(imp["feature"].head(2)) == {"x1", "x2"}
    assert imp.set_index("feature").loc["x3", "importance"] < 0.02
    ev = result.out_dir / "evaluation"
    em = json.loads((ev / "metrics.json").read_text())
    assert em["task"] == "survival" and em["horizons"] == HORIZONS
    assert em["harrell_c"]["estimate"] == pytest.approx(
        result.metrics["models"][result.selected]["metrics"]["harrell_c"]["estimate"])
    assert (ev / "calibration_curve.csv").is_file() and (ev / "decision_curve.csv").is_file()
    assert (result.out_dir / "plots" / "importance.png").is_file()


def test_bundle_round_trip_equals_the_pipeline(ran, tmp_path):
    result, folder = ran
    bundle = load_bundle(result.bundle_path)  # checks SHA256SUMS
    assert bundle.task == "survival" and bundle.manifest["survival"]["horizons"] == HORIZONS
    df = pd.read_csv(folder / "patients.csv")
    new = df.drop(columns=["os_days", "died"]).head(40)
    new.to_csv(tmp_path / "new.csv", index=False)
    pred = predict_patients(bundle, tmp_path / "new.csv")
    # a cox bundle adds the 95 % interval after each horizon (tests/study/test_survival_predict.py)
    iv = (lambda h: [f"surv_{h}", f"surv_{h}_low", f"surv_{h}_high"]) if bundle.manifest["model"]["family"] == "cox" \
        else (lambda h: [f"surv_{h}"])
    assert list(pred.columns) == ["risk", *iv(180), *iv(365), *iv(730), "median_survival"]
    # the selected family refitted on every patient gives the same numbers
    full = df.set_index("patient_id")
    X = full[list(BETA)]
    pipe = make_model(bundle.manifest["model"]["family"], task="survival", X=X,
                      params=bundle.manifest["model"]["params"]).fit(X, make_surv_y(full["os_days"], full["died"]))
    Xn = X.iloc[:40]
    assert np.allclose(pred["risk"], pipe.predict(Xn), atol=1e-10)
    assert np.allclose(pred[["surv_180", "surv_365", "surv_730"]], predict_survival(pipe, Xn, HORIZONS), atol=1e-10)
    assert np.allclose(pred["median_survival"], predict_median(pipe, Xn), equal_nan=True)
    med = pred["median_survival"].dropna()
    assert len(med) > 0 and (med > 0).all()
    # the median is where the curve crosses 0.5: below it before 180 days means S(180) ≤ 0.5
    early = pred["median_survival"] <= 180
    assert (pred.loc[early, "surv_180"] <= 0.5).all()


def test_pmed_predict_cli_writes_survival_columns(ran, tmp_path, capsys):
    result, folder = ran
    pd.read_csv(folder / "patients.csv").drop(columns=["os_days", "died"]).head(5).to_csv(
        tmp_path / "new.csv", index=False)
    rc = main(["predict", "--model", str(result.bundle_path), "--patients", str(tmp_path / "new.csv"),
               "--out", str(tmp_path / "pred.csv")])
    assert rc == 0, capsys.readouterr()
    out = pd.read_csv(tmp_path / "pred.csv")
    assert {"risk", "surv_180", "surv_365", "surv_730", "median_survival"} <= set(out.columns)
    assert len(out) == 5


def test_default_candidates_and_repeats(tmp_path):
    study = write_survival_study(tmp_path, models=(), evaluation="{folds: 3, repeats: 2, bootstrap: 0, report: false}")
    s = load_study(study)
    assert [m.family for m in s.models] == ["cox", "coxnet", "rsf", "gbsa", "km"]
    s.models = [m for m in s.models if m.family in ("cox", "km")]
    result = run_study(s, tmp_path / "out")
    hc = result.metrics["models"]["cox"]["metrics"]["harrell_c"]
    assert len(hc["repeats"]) == 2 and hc["repeat_mean"] == pytest.approx(np.mean(hc["repeats"]))
    assert hc["n_folds"] == 6 and result.selected == "cox"
    oof = pd.read_csv(tmp_path / "out" / "oof_predictions.csv")
    assert sorted(oof["repeat"].unique()) == [0, 1] and len(oof) == 2 * 2 * 300
    assert not (tmp_path / "out" / "evaluation").exists()


@pytest.mark.parametrize(("target", "says"), [
    ("{task: survival, time: os_days, event: died}", r"needs target\.horizons"),
    ("{task: survival, time: os_days, event: died, horizons: []}", r"needs target\.horizons"),
    ("{task: survival, time: os_days, event: died, horizons: [365, -1]}", r"positive numbers, got -1"),
    ("{task: survival, time: os_days, horizons: [365]}", r"needs target\.event"),
    ("{task: survival, event: died, horizons: [365]}", r"needs target\.time"),
    ("{task: survival, time: died, event: died, horizons: [365]}", r"same column"),
    ("{task: survival, column: died, time: os_days, event: died, horizons: [365]}", r"not column"),
    ("{task: binary, column: died, horizons: [365]}", r"survival targets only"),
])
def test_bad_survival_targets(tmp_path, target, says):
    study = write_survival_study(tmp_path, target=target)
    with pytest.raises(StudyError, match=says) as e:
        load_study(study)
    assert "key target" in str(e.value)


def test_survival_spec_refuses_what_it_does_not_do(tmp_path):
    study = write_survival_study(tmp_path, evaluation="{folds: 5, select_by: auroc}")
    with pytest.raises(StudyError, match=r"select_by 'auroc' is not a survival metric; use one of: harrell_c, uno_c"):
        load_study(study)
    study.write_text(study.read_text().replace("  - family: cox\n", "  - family: cox\n    grid: {penalizer: [0, 0.1]}\n"))
    study.write_text(study.read_text().replace("select_by: auroc", "select_by: uno_c"))
    with pytest.raises(StudyError, match=r"grid is not available for survival"):
        load_study(study)
    study = write_survival_study(tmp_path, models=("linear",))
    with pytest.raises(StudyError, match=r"'linear' handles .* not survival"):
        load_study(study)
