"""Windows, grids with masks and forward fill, per-variable summaries, derived quantities, Cohort block."""

import numpy as np
import pandas as pd
import pytest

from pmed.cohort import Cohort
from pmed.timeseries import (
    TimeSeriesData,
    add_derived,
    add_timeseries_block,
    output_rates,
    rolling_windows,
    summarize,
    timeseries_block,
    to_grid,
    window,
)


def _long(rows):
    return pd.DataFrame(rows, columns=["patient_id", "time", "variable", "value"])


DATA = _long([
    ("a", 0.5, "HR", 80.0), ("a", 0.7, "HR", 90.0), ("a", 3.2, "HR", 100.0), ("a", 1.0, "SysABP", 100.0),
    ("b", 2.0, "HR", 60.0), ("b", 49.0, "HR", 70.0),
]).sort_values(["patient_id", "time"]).reset_index(drop=True)


def test_window_and_rolling_windows():
    assert window(DATA, start=0, end=48)["time"].max() == 3.2
    r = rolling_windows(DATA[DATA.patient_id == "a"], width=2.0, step=1.0, end=4.0)
    assert r.groupby("window").size().to_dict() == {0.0: 3, 1.0: 1, 2.0: 1, 3.0: 1}


def test_grid_values_mask_delta_and_forward_fill():
    g = to_grid(DATA, variables=["HR", "SysABP"], step=1.0, start=0.0, end=4.0)
    assert g.values.shape == (2, 4, 2) and g.patients.tolist() == ["a", "b"]
    hr_a = g.values[0, :, 0]
    assert hr_a[0] == 85.0 and np.isnan(hr_a[1]) and np.isnan(hr_a[2]) and hr_a[3] == 100.0
    assert g.mask[0, :, 0].tolist() == [1, 0, 0, 1]
    assert g.delta[0, :, 0].tolist() == [0, 1, 2, 3]  # hours since the last step with a value
    assert g.delta[1, :, 0].tolist() == [0, 1, 2, 1]  # b: first HR in step 2
    assert g.filled()[0, :, 0].tolist() == [85, 85, 85, 100]
    f = g.filled(max_age=1.0)[0, :, 0]
    assert f[:2].tolist() == [85, 85] and np.isnan(f[2]) and f[3] == 100
    frame = g.to_frame(max_age=1.0)
    assert frame.loc[("a", 1.0), "HR"] == 85 and frame.loc[("a", 1.0), "HR__observed"] == 0
    last = to_grid(DATA, variables=["HR"], step=1.0, end=4.0, agg="last")
    assert last.values[0, 0, 0] == 90.0
    flat = g.flatten()
    assert flat.shape == (2, 3 * 4 * 2) and flat.loc["a", "x|HR|3"] == 100 and flat.loc["b", "m|HR|2"] == 1


def test_summarize_known_answers():
    rows = [("p", t, "HR", 60 + 2 * t) for t in (0.0, 1.0, 2.0, 5.0)] + [("q", 1.0, "Temp", 37.0)]
    f = summarize(_long(rows), end=48.0)
    p = f.loc["p"]
    assert (p["HR__first"], p["HR__last"], p["HR__min"], p["HR__max"]) == (60, 70, 60, 70)
    assert p["HR__mean"] == pytest.approx(np.mean([60, 62, 64, 70]))
    assert p["HR__std"] == pytest.approx(np.std([60, 62, 64, 70], ddof=1))
    assert p["HR__slope"] == pytest.approx(2.0)
    assert p["HR__count"] == 4 and p["HR__time_since_last"] == 43.0
    q = f.loc["q"]
    assert q["HR__count"] == 0 and np.isnan(q["HR__mean"])  # never measured: count 0, rest missing
    assert np.isnan(q["Temp__slope"]) and np.isnan(q["Temp__std"])  # one value: no slope, no SD
    w = summarize(_long(rows), start=0.5, end=2.5, stats=("count", "first"))
    assert w.loc["p", "HR__count"] == 2 and w.loc["p", "HR__first"] == 62.0


def test_derived_shock_index_uses_invasive_then_noninvasive_pressure():
    d = _long([("a", 1.0, "HR", 120.0), ("a", 1.0, "NISysABP", 100.0), ("a", 2.0, "HR", 90.0),
               ("a", 2.0, "SysABP", 90.0), ("a", 2.0, "NISysABP", 180.0), ("a", 3.0, "HR", 80.0)])
    out = add_derived(d)
    si = out[out.variable == "ShockIndex"]
    assert si["time"].tolist() == [1.0, 2.0] and si["value"].tolist() == pytest.approx([1.2, 1.0])


def test_urine_output_totals_and_rates():
    d = _long([("a", 0.0, "Weight", 80.0), ("a", 2.0, "Urine", 100.0), ("a", 20.0, "Urine", 500.0),
               ("a", 30.0, "Urine", 240.0), ("a", 47.0, "Urine", 240.0), ("a", 49.0, "Urine", 999.0),
               ("b", 1.0, "Urine", 50.0), ("b", 5.0, "Weight", 50.0),
               ("c", 3.0, "HR", 80.0)])
    r = output_rates(d, start=0.0, end=48.0)
    a, b, c = r.loc["a"], r.loc["b"], r.loc["c"]
    assert (a["Urine__total_1st_half"], a["Urine__total_2nd_half"]) == (600.0, 480.0)  # 49 h: outside
    assert a["Urine__per_kg_h"] == pytest.approx(1080 / 80 / 48)
    assert a["Urine__per_kg_h_2nd_half"] == pytest.approx(480 / 80 / 24)
    assert b["Urine__total_2nd_half"] == 0.0 and b["Urine__per_kg_h_2nd_half"] == 0.0  # charted: a true zero
    assert c.isna().all()  # never charted: unknown, not zero
    with pytest.raises(ValueError, match="end > start"):
        output_rates(d, start=5.0, end=5.0)
    ts = TimeSeriesData(d, pd.DataFrame(index=pd.Index(["a", "b", "c"], name="patient_id")))
    feats, _ = timeseries_block(ts, start=0, end=48)
    assert feats.loc["a", "Urine__per_kg_h"] == pytest.approx(a["Urine__per_kg_h"])
    assert "Urine__per_kg_h" not in timeseries_block(ts, start=0, end=48, derived=False)[0]


def test_block_joins_the_cohort():
    ts = TimeSeriesData(DATA, pd.DataFrame({"Age": [70.0, 50.0]}, index=pd.Index(["a", "b"], name="patient_id")))
    feats, prov = timeseries_block(ts, start=0, end=48)
    assert feats.loc["b", "HR__count"] == 1  # the value at 49 h is outside the window
    assert feats.loc["a", "Age"] == 70
    assert "ShockIndex__mean" not in feats  # HR and systolic pressure never share a time here
    assert prov["window_hours"] == [0, 48]
    cohort = Cohort(pd.DataFrame({"x": [1.0, 2.0]}, index=pd.Index(["a", "b"], name="patient_id")))
    add_timeseries_block(cohort, ts)
    X = cohort.features()
    assert X.loc["a", "HR__max"] == 100.0 and "timeseries" in cohort.blocks


def test_plots_write_pngs(tmp_path):
    from pmed.timeseries.plots import plot_calibration_comparison, plot_missingness, plot_patient

    g = to_grid(DATA, variables=["HR", "SysABP"], step=1.0, end=4.0)
    p1 = plot_missingness(g, path=tmp_path / "miss.png")
    p2 = plot_patient(DATA, "a", variables=["HR", "SysABP"], path=tmp_path / "a.png")
    rng = np.random.default_rng(0)
    oof = pd.DataFrame({"model": np.repeat(["m1", "m2"], 100), "outcome": rng.integers(0, 2, 200),
                        "prediction": rng.random(200)})
    p3 = plot_calibration_comparison(oof, tmp_path / "cal.png")
    for p in (p1, p2, p3):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
