"""ECG through WFDB (R peaks, heart rate, SDNN, RMSSD against known values); wearables; BasicMotions."""

import numpy as np
import pandas as pd
import pytest

from pmed.errors import InputError
from pmed.timeseries import read_wfdb, summarize
from pmed.timeseries.synthetic import simulate_wearables
from pmed.timeseries.wearables import daily_summary, motion_features, wearable_features

FS = 250
RR = np.tile([0.8, 0.9], 40)  # alternating 800/900 ms: RMSSD exactly 100 ms


def _ecg_known_rr() -> np.ndarray:
    """A clean ECG-like trace (P, QRS, T waves) with beats at known times."""
    beats = np.cumsum(np.r_[0.5, RR])
    t = np.arange(int((beats[-1] + 1) * FS)) / FS
    sig = np.zeros_like(t)
    for b in beats:
        sig += (0.15 * np.exp(-((t - (b - 0.2)) / 0.025) ** 2) - 0.1 * np.exp(-((t - (b - 0.03)) / 0.008) ** 2)
                + np.exp(-((t - b) / 0.012) ** 2) - 0.2 * np.exp(-((t - (b + 0.03)) / 0.01) ** 2)
                + 0.3 * np.exp(-((t - (b + 0.3)) / 0.05) ** 2))
    return sig + np.random.default_rng(0).normal(0, 0.01, len(t))


def test_wfdb_record_round_trip_and_hrv(tmp_path):
    wfdb = pytest.importorskip("wfdb")
    pytest.importorskip("neurokit2")
    from pmed.timeseries.ecg import ecg_block, ecg_features

    sig = _ecg_known_rr()
    wfdb.wrsamp("rec1", fs=FS, units=["mV"], sig_name=["II"], p_signal=sig[:, None], fmt=["16"],
                write_dir=str(tmp_path))
    wf = read_wfdb(tmp_path / "rec1")
    assert wf.fs == FS and wf.units == {"II": "mV"} and wf.signals.shape == (len(sig), 1)
    assert np.allclose(wf.signals["II"].to_numpy(), sig, atol=1e-3)  # 16-bit ADC rounding only
    f = ecg_features(wf.signals["II"].to_numpy(), wf.fs)
    assert f["n_beats"] == len(RR) + 1
    assert f["heart_rate_mean"] == pytest.approx(60 / RR.mean(), abs=0.2)
    assert f["sdnn_ms"] == pytest.approx(np.std(RR * 1000, ddof=1), abs=2.0)
    assert f["rmssd_ms"] == pytest.approx(100.0, abs=4.0)
    block = ecg_block({"p1": wf})
    assert block.loc["p1", "ecg_rmssd_ms"] == pytest.approx(f["rmssd_ms"])


def test_ecgsyn_heart_rate_is_recovered():
    nk = pytest.importorskip("neurokit2")
    from pmed.timeseries.ecg import ecg_features

    e = nk.ecg_simulate(duration=60, sampling_rate=FS, heart_rate=70, random_state=0)
    f = ecg_features(e, FS)
    assert f["heart_rate_mean"] == pytest.approx(70, abs=1.5)
    with pytest.raises(InputError, match="at least 2 s"):
        ecg_features(e[:100], FS)


def test_wfdb_errors(tmp_path):
    pytest.importorskip("wfdb")
    with pytest.raises(InputError, match="WFDB header not found"):
        read_wfdb(tmp_path / "nothing")
    (tmp_path / "bad.hea").write_text("this is not a header\n")
    with pytest.raises(InputError, match="cannot read the WFDB record"):
        read_wfdb(tmp_path / "bad")


def test_daily_summary_known_answers():
    # one patient, two days of 1-minute epochs: day 0 walks 30 min at 100 steps/min
    minutes = np.arange(2 * 24 * 60)
    steps = np.zeros(len(minutes))
    steps[600:630] = 100  # 10:00-10:30 on day 0
    hr = np.where(steps > 0, 110.0, 60.0)
    hr[630:640] = 90.0  # recovery: still, but fewer than 10 still minutes before
    t = minutes / 60.0
    d = pd.DataFrame({"patient_id": "w", "time": np.r_[t, t], "variable": ["steps"] * len(t) + ["heart_rate"] * len(t),
                      "value": np.r_[steps, hr]})
    day = daily_summary(d, rest_minutes=10)
    assert day["steps"].tolist() == [3000.0, 0.0]
    assert day["active_minutes"].tolist() == [30.0, 0.0]
    assert day["wear_hours"].tolist() == [24.0, 24.0]
    # day 0: minutes 9-599 and 640-1439 (10 still minutes, this one included) at 60 bpm, and
    # minute 639, the first of the recovery with 10 still minutes behind it, at 90 bpm
    assert day["resting_hr"].tolist() == pytest.approx([(591 * 60 + 90 + 800 * 60) / 1392, 60.0])
    feats = wearable_features(day)
    assert feats.loc["w", "wear_steps_mean"] == 1500 and feats.loc["w", "wear_days"] == 2


def test_simulated_wearables_carry_the_patient_signal():
    rng = np.random.default_rng(0)
    patients = pd.DataFrame({"cad_logit": rng.normal(size=200)}, index=[f"P{i:04d}" for i in range(200)])
    long = simulate_wearables(patients, seed=1, days=4)
    assert set(long["variable"]) == {"steps", "heart_rate"} and long["value"].notna().all()
    feats = wearable_features(daily_summary(long, epoch_minutes=15, min_wear_hours=20))
    assert feats.index.tolist() == patients.index.tolist()
    r_steps = np.corrcoef(patients["cad_logit"], np.log(feats["wear_steps_mean"]))[0, 1]
    r_hr = np.corrcoef(patients["cad_logit"], feats["wear_resting_hr_mean"])[0, 1]
    assert r_steps < -0.5 and r_hr > 0.5  # higher risk: fewer steps, higher resting heart rate
    same = simulate_wearables(patients.iloc[:3], seed=1, days=1)
    pd.testing.assert_frame_equal(same, simulate_wearables(patients.iloc[:3], seed=1, days=1))
    assert summarize(same, variables=["steps"]).loc["P0000", "steps__count"] == 96


def test_basic_motions_accuracy():
    pytest.importorskip("sktime", reason="sktime (which bundles BasicMotions) is not installed")
    from sklearn.ensemble import RandomForestClassifier

    from pmed.timeseries.wearables import load_basic_motions

    Xtr, ytr, Xte, yte = load_basic_motions()
    assert Xtr.shape == (40, 6, 100) and Xte.shape == (40, 6, 100)
    assert sorted(set(ytr)) == ["badminton", "running", "standing", "walking"]
    m = RandomForestClassifier(n_estimators=300, random_state=0, n_jobs=1)
    m.fit(motion_features(Xtr), ytr)
    acc = float((m.predict(motion_features(Xte)) == yte).mean())
    assert acc >= 0.95  # published accuracies on BasicMotions are 0.95-1.00
