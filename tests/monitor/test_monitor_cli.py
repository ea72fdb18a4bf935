"""pmed monitor: a bundle's new patients against its training summaries, per month, with outcomes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import make_clinical, write_study
from pmed.cli import main
from pmed.errors import BundleError, ValidationError
from pmed.study import load_bundle, run_study


@pytest.fixture
def bundle(clinical_files, tmp_path):
    res = run_study(write_study(tmp_path, models=("linear",)), tmp_path / "out")
    return res.bundle_path


def _new(n=900, seed=5, shift_from=None):
    """Three months of new patients from the training generator; from ``shift_from`` on, a new
    CRP assay reads 4 mg/L higher (only that column changes)."""
    df = make_clinical(n, seed=seed).drop(columns=["sbp"])
    df["patient_id"] = [f"M{i:04d}" for i in range(n)]
    df["seen"] = np.repeat(["2026-01-15", "2026-02-15", "2026-03-15"], n // 3)
    if shift_from is not None:
        late = df["seen"] >= shift_from
        df.loc[late, "crp"] = df.loc[late, "crp"] + 4.0
    return df


def test_reference_summaries_are_in_the_bundle_without_patient_rows(bundle):
    ref = load_bundle(bundle).manifest["reference"]
    assert ref["version"] == 1 and set(ref["columns"]) == {"age", "sex", "bmi", "smoking", "diabetes", "crp"}
    assert ref["features"]["crp"]["n"] == 300 and ref["features"]["crp"]["n_missing"] == 10
    assert set(ref["features"]["smoking"]["frequencies"]) == {"never", "former", "current"}
    assert len(ref["features"]["age"]["quantiles"]) == 101 and ref["predictions"]["n"] == 300
    assert ref["metrics"]["auroc"]["estimate"] > 0.6


def test_clean_months_raise_no_alarm_and_a_new_assay_is_caught_in_its_first_month(bundle, tmp_path):
    clean = tmp_path / "clean.csv"
    _new().to_csv(clean, index=False)
    assert main(["monitor", "--model", str(bundle), "--data", str(clean), "--outcome", "event",
                 "--time-col", "seen", "--window", "month", "--out", str(tmp_path / "m1")]) == 0
    rep = json.loads((tmp_path / "m1" / "drift.json").read_text())
    assert rep["drift"]["drift_detected"] is False and [w["window"] for w in rep["windows"]] == [
        "2026-01", "2026-02", "2026-03"]
    assert not any(w["drift"]["drift_detected"] for w in rep["windows"])
    perf = rep["windows"][0]["performance"]
    assert 0.6 < perf["auroc"]["estimate"] < 0.95 and perf["n"] == 300
    # the validation values include the out-of-fold calibration, so each window's has a reference
    cal = load_bundle(bundle).manifest["reference"]["metrics"]["calibration_slope"]
    assert perf["calibration_slope"]["reference"] == pytest.approx(cal["estimate"]) and 0.5 < cal["estimate"] < 2
    assert (tmp_path / "m1" / "dashboard.html").read_text().count("<tr>") > 8
    assert (tmp_path / "m1" / "plots" / "metrics_windows.png").exists()

    shifted = tmp_path / "shifted.csv"
    _new(shift_from="2026-03-01").to_csv(shifted, index=False)
    assert main(["monitor", "--model", str(bundle), "--data", str(shifted), "--time-col", "seen",
                 "--window", "month", "--out", str(tmp_path / "m2")]) == 0
    rep = json.loads((tmp_path / "m2" / "drift.json").read_text())
    flags = {w["window"]: w["drift"]["drifted_features"] for w in rep["windows"]}
    assert flags == {"2026-01": [], "2026-02": [], "2026-03": ["crp"]}
    assert rep["drift"]["drifted_features"] == ["crp"]
    table = pd.read_csv(tmp_path / "m2" / "features.csv").set_index("feature")
    assert table.loc["crp", "drift_detected"] and table.loc["crp", "psi"] > 0.2


def test_progress_goes_through_reading_scoring_drift_and_each_window(bundle):
    from conftest import ProgressRecorder
    from pmed.monitor import run_monitor

    rec = ProgressRecorder()
    run_monitor(bundle, _new(), outcome="event", time_col="seen", window="month", n_boot=20, progress=rec)
    assert rec.starts == [(2, "reading and scoring"), (4, "drift and performance")] and rec.steps == 6
    assert rec.labels[-3:] == ["window 2026-01", "window 2026-02", "window 2026-03"]
    rec = ProgressRecorder()  # one window of every row, no outcome: the overall drift is the only step
    run_monitor(bundle, _new(), progress=rec)
    assert rec.starts[-1] == (1, "drift and performance") and rec.steps == 3


def test_bad_monitoring_inputs_say_what_to_fix(bundle, tmp_path):
    from pmed.monitor import run_monitor

    df = _new(n=90)
    with pytest.raises(ValidationError, match="crp"):
        run_monitor(bundle, df.drop(columns=["crp"]))
    bad = df.assign(seen=["not a date"] * 5 + list(df["seen"][5:]))
    with pytest.raises(ValidationError, match="5 of 90"):
        run_monitor(bundle, bad, time_col="seen", window="month")
    with pytest.raises(ValidationError, match="outcome|event|label"):
        run_monitor(bundle, df.assign(event=["yes"] * 90), outcome="event")
    # two values, but not the training's 0/1: refused, naming them (a silent recoding would be wrong)
    with pytest.raises(ValidationError, match=r"'event' has values never seen in training: 'yes', 'no' "
                                              r"\(training: 1 = event, 0 = no event\)"):
        run_monitor(bundle, df.assign(event=["yes", "no"] * 45), outcome="event")
    assert load_bundle(bundle).manifest["target_labels"] == {"negative": 0, "positive": 1}
    b = load_bundle(bundle)
    b.manifest.pop("reference")
    with pytest.raises(BundleError, match="no reference summaries"):
        run_monitor(b, df)
    assert main(["monitor", "--model", str(bundle), "--data", str(tmp_path / "x.csv")]) == 2  # no such file


def test_unseen_categories_are_reported_and_scored_as_missing(bundle, tmp_path):
    from pmed.monitor import run_monitor

    df = _new(n=600)
    base = run_monitor(bundle, df.assign(smoking=np.where(df["smoking"].notna(), "never", None)))
    # a new smoking code in a third of the rows: reported, counted, scored as a missing value
    vaping = np.arange(len(df)) % 3 == 0
    df = df.assign(smoking=np.where(vaping, "vaping", df["smoking"]))
    res = run_monitor(bundle, df)
    assert res.drift["unseen_categories"] == {"smoking": {"vaping": int(vaping.sum())}}
    entry = res.drift["features"]["smoking"]
    assert entry["new_categories"] == ["vaping"] and entry["drift_detected"]
    assert res.drift["features"]["smoking"]["missing_fraction_new"] < 0.05  # counted as a category, not as missing
    b = load_bundle(bundle)
    as_missing = b.predict(df.assign(smoking=np.where(vaping, None, df["smoking"])).set_index("patient_id")
                           .drop(columns=["seen", "event"]))
    np.testing.assert_allclose(res.scores["prediction"].to_numpy(), as_missing["probability"].to_numpy())
    assert base.drift["unseen_categories"] == {}
    csv = tmp_path / "new.csv"
    df.to_csv(csv, index=False)
    assert main(["monitor", "--model", str(bundle), "--data", str(csv), "--out", str(tmp_path / "m")]) == 0
    rep = json.loads((tmp_path / "m" / "drift.json").read_text())
    assert rep["drift"]["unseen_categories"]["smoking"]["vaping"] == int(vaping.sum())
    assert "vaping (200 rows)" in (tmp_path / "m" / "dashboard.html").read_text()


def test_times_that_do_not_parse_are_named_by_file_and_line_and_small_windows_are_insufficient(bundle, tmp_path):
    from pmed.monitor import run_monitor

    df = _new(n=90)
    df.loc[[3, 40], "seen"] = ["31/02/2026", None]
    csv = tmp_path / "new.csv"
    df.to_csv(csv, index=False)
    with pytest.raises(ValidationError, match=r"'seen': 2 of 90 times .* at lines 5, 42") as e:
        run_monitor(bundle, csv, time_col="seen", window="month")
    assert e.value.file == str(csv)
    res = run_monitor(bundle, _new(n=90), outcome="event", time_col="seen", window="month")
    perf = res.windows[0]["performance"]
    assert perf["insufficient"] and "30 rows (fewer than min_rows=50)" == perf["reason"] and "auroc" not in perf
    assert "insufficient" in res.window_table()["performance"].iloc[0]
