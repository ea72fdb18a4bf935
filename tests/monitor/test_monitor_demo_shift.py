"""Issue 21, 4b: a new LDL assay (+0.5 mmol/L) in the demo cohort's later patients is caught in
its first month on LDL alone; a hundred clean months raise (almost) no alarm."""

from __future__ import annotations

import pytest

from pmed.datasets.synthetic import make_synthetic_cohort, write_synthetic_cohort
from pmed.demo import LDL_SHIFT, MONITOR_STUDY, later_patients
from pmed.monitor import run_monitor
from pmed.study import run_study
from pmed.study.spec import load_study


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """The demo's monitored model (clinical risk factors + LDL → CAD), trained as the demo does."""
    tmp = tmp_path_factory.mktemp("ldl")
    write_synthetic_cohort(tmp / "data", n_patients=1000, n_new=1, seed=0)
    study = tmp / "monitor_study.yaml"
    study.write_text(MONITOR_STUDY.format(seed=0, study=study, out=tmp / "out", shift=LDL_SHIFT))
    return run_study(load_study(study), tmp / "out").bundle_path, make_synthetic_cohort(1000, seed=0)


def test_the_new_assay_is_caught_in_its_first_month_on_ldl_only(deployed):
    bundle, cohort = deployed
    res = run_monitor(bundle, later_patients(cohort), time_col="seen", window="month")
    flags = {w["window"]: w["drift"]["drifted_features"] for w in res.windows}
    assert len(flags) == 12
    assert all(f == [] for w, f in flags.items() if w < "2027-07")
    assert all(f == ["ldl_mmol_l"] for w, f in flags.items() if w >= "2027-07")
    july = res.windows[6]["drift"]["features"]["ldl_mmol_l"]
    assert july["mean_new"] - july["mean_ref"] == pytest.approx(LDL_SHIFT, abs=0.15) and july["psi"] > 0.2


def test_a_hundred_clean_months_raise_no_alarm(deployed):
    bundle, cohort = deployed
    clean = later_patients(cohort, months=100, shift_month=None, start="2030-01", stream=4)
    res = run_monitor(bundle, clean, time_col="seen", window="month")
    assert len(res.windows) == 100 and all(w["drift"]["n_rows"] == 250 for w in res.windows)
    alarms = [w["window"] for w in res.windows if w["drift"]["drift_detected"]]
    feature_alarms = sum(len(w["drift"]["drifted_features"]) for w in res.windows)
    n_features = len(res.windows[0]["drift"]["features"])
    # 100 windows × 12 features and the predictions; seen with seed 0: no alarm at all
    assert n_features == 12 and len(alarms) == 0 and feature_alarms == 0, alarms
