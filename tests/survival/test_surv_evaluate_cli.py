"""``pmed evaluate --task survival`` end to end on the veterans set (R's lp and KM-based surv_<t>)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pmed.cli import main
from pmed.survival import metrics as M
from pmed.survival.evaluation import evaluate_survival, surv_columns

R = Path(__file__).parents[1] / "fixtures" / "r"
REF = json.loads((R / "r_survival_reference.json").read_text())


@pytest.fixture()
def predictions(tmp_path):
    d = pd.read_csv(R / "veterans.csv")
    t, e = d["time"].to_numpy(float), d["event"].to_numpy(bool)
    for h in (30, 90):
        d[f"surv_{h}"] = M.km_survival(t, e, [h])[0] ** np.exp(d["lp"])
    path = tmp_path / "pred.csv"
    d.to_csv(path, index=False)
    return path


def test_cli_writes_metrics_tables_and_plots(predictions, tmp_path, capsys):
    out = tmp_path / "ev"
    rc = main(["evaluate", "--task", "survival", "--predictions", str(predictions), "--time", "time",
               "--event", "event", "--score", "lp", "--tau", "180", "--bootstrap", "3", "--out", str(out)])
    assert rc == 0, capsys.readouterr()
    m = json.loads((out / "metrics.json").read_text())
    assert m["schema"] == "pmed.evaluation" and m["task"] == "survival"
    assert m["horizons"] == [30, 90]  # from the surv_<t> columns
    assert m["harrell_c"]["estimate"] == pytest.approx(REF["veterans"]["lp"]["harrell_c"], abs=1e-6)
    assert m["uno_c"]["estimate"] == pytest.approx(REF["veterans"]["lp"]["uno_c"], abs=1e-6)
    assert set(m["td_auc"]) == set(m["brier"]) == set(m["calibration"]) == {"30", "90"}
    assert m["ibs"]["estimate"] < m["ibs"]["km_null"]["estimate"]
    assert m["notes"] == []
    cal = pd.read_csv(out / "calibration_curve.csv")
    assert set(cal["horizon"]) == {30, 90}
    dca = pd.read_csv(out / "decision_curve.csv")
    assert {"threshold", "net_benefit", "net_benefit_treat_all"} <= set(dca.columns)
    assert (out / "calibration.png").stat().st_size > 0 and (out / "decision_curve.png").exists()
    # a rerun replaces its own earlier output
    assert main(["evaluate", "--task", "survival", "--predictions", str(predictions), "--time", "time",
                 "--event", "event", "--score", "lp", "--bootstrap", "0", "--out", str(out)]) == 0


def test_without_surv_columns_skips_with_notes(predictions):
    d = pd.read_csv(predictions).drop(columns=["surv_30", "surv_90"])
    m, tables = evaluate_survival(d, time="time", event="event", score="lp", horizons=[60], n_boot=0)
    assert set(m["td_auc"]) == {"60"} and m["brier"] == {} and m["calibration"] == {} and m["ibs"] is None
    assert any("surv_<t>" in n and "brier" in n for n in m["notes"])
    assert m["uno_c"]["tau"] == 60  # default tau: the largest horizon
    assert tables["decision_curve"].empty


def test_surv_columns():
    assert surv_columns(["risk", "surv_30", "surv_1.5", "surv_x", "survival"]) == {30.0: "surv_30", 1.5: "surv_1.5"}
