"""Wearables: daily activity and resting heart rate; motion features for activity recognition.

:func:`daily_summary` turns per-epoch ``steps`` and ``heart_rate`` streams (long format, hours
since midnight of the first day) into one row per patient and day; :func:`wearable_features`
averages the days into patient-level features for the Cohort. :func:`motion_features` summarises
multichannel accelerometer/gyroscope windows (such as sktime's BasicMotions) for a classifier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pmed.timeseries.align import _check_long

__all__ = ["daily_summary", "wearable_features", "motion_features", "load_basic_motions"]


def daily_summary(
    data: pd.DataFrame,
    *,
    epoch_minutes: float = 1.0,
    active_steps_per_min: float = 60.0,
    rest_minutes: float = 10.0,
    min_wear_hours: float = 10.0,
) -> pd.DataFrame:
    """Per patient and calendar day: steps, active minutes, worn hours, resting heart rate.

    Parameters
    ----------
    data
        Long table with variables ``steps`` (steps per epoch) and ``heart_rate`` (bpm) at
        the same epoch times (hours since midnight of the first day).
    epoch_minutes
        Length of one epoch (row) in minutes.
    active_steps_per_min
        Cadence from which an epoch counts as active (60 steps/min: brisk walking starts near 100).
    rest_minutes
        Resting heart rate: the mean heart rate over epochs preceded by at least this many
        minutes without a step.
    min_wear_hours
        Days with fewer hours of heart-rate data are flagged ``valid = False``.

    Returns
    -------
    pandas.DataFrame
        ``patient_id, day, steps, active_minutes, wear_hours, resting_hr, valid``.
    """
    _check_long(data)
    d = data.dropna(subset=["value"])
    wide = d.pivot_table(index=["patient_id", "time"], columns="variable", values="value", aggfunc="mean")
    for c in ("steps", "heart_rate"):
        if c not in wide:
            wide[c] = np.nan
    wide = wide.reset_index().sort_values(["patient_id", "time"], kind="mergesort")
    wide["day"] = np.floor(wide["time"] / 24.0).astype(int)
    wide["active"] = (wide["steps"] / epoch_minutes >= active_steps_per_min).astype(float) * epoch_minutes
    # still: the steps of the last `rest_minutes` (this epoch included) sum to zero
    k = max(1, int(round(rest_minutes / epoch_minutes)))
    moving = wide.groupby("patient_id", sort=False)["steps"].transform(
        lambda s: s.fillna(1).rolling(k, min_periods=k).sum())
    wide["rest_hr"] = wide["heart_rate"].where(moving == 0)
    g = wide.groupby(["patient_id", "day"], sort=True)
    out = pd.DataFrame({
        "steps": g["steps"].sum(min_count=1),
        "active_minutes": g["active"].sum(),
        "wear_hours": g["heart_rate"].count() * epoch_minutes / 60.0,
        "resting_hr": g["rest_hr"].mean(),
    }).reset_index()
    out["valid"] = out["wear_hours"] >= min_wear_hours
    return out


def wearable_features(daily: pd.DataFrame, *, valid_only: bool = True) -> pd.DataFrame:
    """Patient-level means over days of :func:`daily_summary` (prefix ``wear_``)."""
    d = daily[daily["valid"]] if valid_only else daily
    g = d.groupby("patient_id", sort=True)
    out = pd.DataFrame({
        "wear_steps_mean": g["steps"].mean(),
        "wear_steps_sd": g["steps"].std(ddof=1),
        "wear_active_minutes_mean": g["active_minutes"].mean(),
        "wear_resting_hr_mean": g["resting_hr"].mean(),
        "wear_resting_hr_min": g["resting_hr"].min(),
        "wear_days": g.size().astype(float),
    })
    out = out.reindex(pd.Index(sorted(daily["patient_id"].astype(str).unique()), name="patient_id"))
    out["wear_days"] = out["wear_days"].fillna(0.0)
    return out


def motion_features(X: np.ndarray, *, channels: list[str] | None = None) -> pd.DataFrame:
    """Per-channel summaries of windows ``X`` of shape ``(n_windows, n_channels, n_samples)``.

    Mean, SD, min, max, median, interquartile range, mean absolute successive difference,
    lag-1 autocorrelation and the share of spectral power above a quarter of the sampling band.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 3:
        from pmed.errors import InputError

        raise InputError(f"motion windows must be a 3-D array (windows, channels, samples); got shape {X.shape}",
                         fix="stack the windows as an array of shape (n_windows, n_channels, n_samples)")
    n, c, t = X.shape
    channels = channels or [f"ch{i}" for i in range(c)]
    mu = X.mean(axis=2, keepdims=True)
    sd = X.std(axis=2)
    q25, q50, q75 = np.percentile(X, [25, 50, 75], axis=2)
    xc = X - mu
    with np.errstate(invalid="ignore", divide="ignore"):
        ac1 = (xc[:, :, 1:] * xc[:, :, :-1]).sum(axis=2) / (xc ** 2).sum(axis=2)
    power = np.abs(np.fft.rfft(xc, axis=2)) ** 2
    cut = power.shape[2] // 4
    with np.errstate(invalid="ignore", divide="ignore"):
        high = power[:, :, cut:].sum(axis=2) / power.sum(axis=2)
    feats = {"mean": mu[:, :, 0], "sd": sd, "min": X.min(axis=2), "max": X.max(axis=2), "median": q50,
             "iqr": q75 - q25, "mad_diff": np.abs(np.diff(X, axis=2)).mean(axis=2),
             "ac1": np.nan_to_num(ac1), "high_power": np.nan_to_num(high)}
    cols = {f"{ch}__{k}": v[:, i] for k, v in feats.items() for i, ch in enumerate(channels)}
    return pd.DataFrame(cols)


def load_basic_motions() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """sktime's bundled BasicMotions: ``X_train, y_train, X_test, y_test`` (40/40 windows, 6 × 100).

    Smartwatch accelerometer and gyroscope (x, y, z each) during standing, walking, running and
    badminton. Needs the ``sktime`` package (data ship inside it; nothing is downloaded): without it,
:class:`~pmed.errors.MissingDependencyError` names the ``timeseries`` extra.
    """
    from pmed.errors import require

    _load = require("sktime.datasets", extra="timeseries", package="sktime",
                    feature="the BasicMotions data set").load_basic_motions
    Xtr, ytr = _load(split="train", return_X_y=True, return_type="numpy3D")
    Xte, yte = _load(split="test", return_X_y=True, return_type="numpy3D")
    return Xtr, np.asarray(ytr), Xte, np.asarray(yte)
