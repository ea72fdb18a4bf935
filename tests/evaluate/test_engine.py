import json

import numpy as np
import pandas as pd
import pytest

from pmed.cli import main
from pmed.errors import ValidationError
from pmed.evaluate import delong_auc, evaluate_predictions, write_evaluation


@pytest.fixture(scope="module")
def preds():
    rng = np.random.default_rng(0)
    n = 600
    y = (rng.random(n) < 0.3).astype(int)
    sex = rng.choice(["F", "M"], n)
    site = rng.choice(["A", "B", "C"], n, p=[0.5, 0.46, 0.04])  # C is too small to report
    good = np.clip(0.3 + 0.35 * (y - 0.3) + rng.normal(0, 0.18, n), 0.01, 0.99)
    weak = np.clip(0.3 + 0.15 * (y - 0.3) + rng.normal(0, 0.2, n), 0.01, 0.99)
    ids = [f"P{i:03d}" for i in range(n)]
    return pd.concat([pd.DataFrame({"patient_id": ids, "model": m, "y": y, "p": p, "sex": sex, "site": site})
                      for m, p in (("good", good), ("weak", weak))], ignore_index=True)


def test_metrics_schema_and_values(preds):
    ev, tables = evaluate_predictions(preds, outcome="y", score="p", model_col="model",
                                      groups=["sex", "site"], n_boot=100)
    assert ev["schema"] == "pmed.evaluation" and ev["n"] == 600
    good = ev["models"]["good"]
    for k in ("auroc", "auprc", "brier", "calibration_intercept", "calibration_slope", "ici"):
        assert set(good["metrics"][k]) >= {"estimate", "ci_low", "ci_high", "method"}
    d = preds[preds["model"] == "good"]
    assert good["metrics"]["auroc"] == delong_auc(d["y"], d["p"])
    assert good["thresholds"][0]["threshold"] == 0.5
    assert {"youden", "sensitivity_0.9"} <= set(good["threshold_selection"])
    assert [r["threshold"] for r in good["net_benefit"]][:2] == [0.05, 0.1]
    # subgroups: both sexes, site C suppressed with its reason, intersections present
    assert set(good["groups"]["sex"]) == {"F", "M"}
    assert good["groups"]["site"]["C"]["suppressed"] and "fewer than 30" in good["groups"]["site"]["C"]["reason"]
    assert "sex×site" in good["groups"]
    assert "difference" in good["fairness"]["sex"]
    # paired DeLong: the good model beats the weak one on the same patients
    (c,) = ev["comparisons"]
    assert c["model_a"] == "good" and c["difference"] > 0.1 and c["p_value"] < 1e-6
    assert set(tables["good"]) == {"decision_curve", "calibration", "reliability"}


def test_cli_writes_outputs_and_report(preds, tmp_path):
    preds.to_csv(tmp_path / "preds.csv", index=False)
    code = main(["evaluate", "--predictions", str(tmp_path / "preds.csv"), "--outcome", "y", "--score", "p",
                 "--model-col", "model", "--group", "sex", "--bootstrap", "50", "--out", str(tmp_path / "ev")])
    assert code == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(m["models"]) == {"good", "weak"}
    html = (tmp_path / "ev" / "report.html").read_text()
    assert "TRIPOD+AI" in html and "To be written by the study team" in html
    assert "data:image/png;base64," in html  # self-contained
    for f in ("decision_curve.csv", "calibration_curve.csv", "plots/decision_curve.png", "plots/roc.png"):
        assert (tmp_path / "ev" / f).exists(), f


def test_bad_files_exit_with_validation_code(preds, tmp_path):
    preds.assign(p=preds["p"] * 100).to_csv(tmp_path / "pct.csv", index=False)
    assert main(["evaluate", "--predictions", str(tmp_path / "pct.csv"), "--outcome", "y", "--score", "p",
                 "--out", str(tmp_path / "x")]) == 4
    with pytest.raises(ValidationError, match="single level"):
        evaluate_predictions(preds.assign(sex="F"), outcome="y", score="p", model_col="model", groups=["sex"])


def test_continuous_predictions(tmp_path):
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.normal(0, 1, n)
    df = pd.DataFrame({"y": y, "good": y + rng.normal(0, 0.5, n), "site": rng.choice(["A", "B"], n)})
    df["extreme"] = 2 * df["good"]  # right ranking, predictions too spread out
    long = pd.concat([df.assign(model=m, pred=df[m]) for m in ("good", "extreme")])
    ev, _ = evaluate_predictions(long, outcome="y", score="pred", model_col="model", groups=["site"],
                                 n_boot=50, task="continuous")
    good, extreme = ev["models"]["good"]["metrics"], ev["models"]["extreme"]["metrics"]
    assert ev["task"] == "continuous" and good["r2"]["estimate"] == pytest.approx(0.75, abs=0.05)  # 1 − 0.25/1
    # slope of observed on predicted: ~0.8 (regression dilution) vs ~0.4 for over-spread predictions
    assert good["calibration_slope"]["estimate"] == pytest.approx(0.8, abs=0.05)
    assert good["calibration_slope"]["ci_low"] < good["calibration_slope"]["estimate"] < good["calibration_slope"]["ci_high"]
    assert extreme["calibration_slope"]["estimate"] == pytest.approx(good["calibration_slope"]["estimate"] / 2)
    assert set(ev["models"]["good"]["groups"]["site"]) == {"A", "B"}
    paths = write_evaluation(ev, {}, tmp_path, roc_data=long.rename(columns={"y": "outcome", "pred": "prediction"}))
    assert (tmp_path / "metrics.json").exists() and "report" not in paths


def test_mitigation_and_pdf(preds, tmp_path):
    import shutil

    one = preds[preds["model"] == "good"]
    one.to_csv(tmp_path / "one.csv", index=False)
    args = ["evaluate", "--predictions", str(tmp_path / "one.csv"), "--outcome", "y", "--score", "p",
            "--group", "sex", "--bootstrap", "30", "--mitigate", "equalized_odds", "--out", str(tmp_path / "ev")]
    pdf = shutil.which("chromium") is not None
    assert main(args + (["--pdf"] if pdf else [])) == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())["models"]["model"]["mitigation"]
    assert m["constraint"] == "equalized_odds" and {"before", "after"} <= set(m)
    assert "threshold optimisation" in (tmp_path / "ev" / "report.html").read_text()
    if pdf:
        assert (tmp_path / "ev" / "report.pdf").read_bytes()[:5] == b"%PDF-"


def test_repeated_rows_per_patient_are_refused(preds):
    twice = pd.concat([preds, preds])
    with pytest.raises(ValidationError, match="patient IDs repeat within model"):
        evaluate_predictions(twice, outcome="y", score="p", model_col="model")
