"""ECG: R-peak detection and time-domain heart-rate variability with NeuroKit2.

:func:`ecg_features` cleans one ECG lead, finds R peaks (``neurokit2.ecg_peaks``) and returns
the mean heart rate and the time-domain HRV of the normal-to-normal intervals (SDNN, RMSSD) as
computed by ``neurokit2.hrv_time``. :func:`ecg_block` does it for one record per patient
(:class:`~pmed.timeseries.readers.Waveform` from :func:`~pmed.timeseries.readers.read_wfdb`).
NeuroKit2 is imported only here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pmed.errors import InputError, require
from pmed.timeseries._options import short, short_list

__all__ = ["r_peaks", "ecg_features", "ecg_block"]


def _nk():
    return require("neurokit2", extra="timeseries", feature="ECG features")


def r_peaks(signal, fs: float, *, method: str = "neurokit") -> np.ndarray:
    """Sample indices of R peaks in one ECG lead (cleaned with NeuroKit2 first)."""
    nk = _nk()
    x = np.asarray(signal, dtype=float)
    if x.ndim != 1 or len(x) < 2 * fs:
        raise InputError(f"an ECG lead needs at least 2 s of samples ({len(x)} given at {fs:g} Hz)",
                         fix="give one lead as a 1-D array")
    if not np.isfinite(x).all():
        x = pd.Series(x).interpolate(limit_direction="both").to_numpy()
    clean = nk.ecg_clean(x, sampling_rate=int(round(fs)), method=method)
    _, info = nk.ecg_peaks(clean, sampling_rate=int(round(fs)), method=method)
    return np.asarray(info["ECG_R_Peaks"], dtype=int)


def ecg_features(signal, fs: float, *, method: str = "neurokit") -> dict[str, float]:
    """Mean heart rate and time-domain HRV of one ECG lead.

    Returns
    -------
    dict
        ``n_beats``, ``heart_rate_mean`` (bpm, from the mean RR interval), ``rr_mean_ms``,
        ``sdnn_ms`` and ``rmssd_ms`` (NeuroKit2 ``hrv_time``: SD of RR intervals and root mean
        square of successive differences, in ms).
    """
    nk = _nk()
    peaks = r_peaks(signal, fs, method=method)
    if len(peaks) < 3:
        raise InputError(f"only {len(peaks)} R peaks found: too few for heart-rate variability",
                         fix="check the lead (is it an ECG?), its sampling rate and length")
    rr = np.diff(peaks) / fs * 1000.0
    hrv = nk.hrv_time(peaks, sampling_rate=int(round(fs)))
    return {"n_beats": float(len(peaks)), "rr_mean_ms": float(rr.mean()),
            "heart_rate_mean": float(60000.0 / rr.mean()),
            "sdnn_ms": float(hrv["HRV_SDNN"].iloc[0]), "rmssd_ms": float(hrv["HRV_RMSSD"].iloc[0])}


def ecg_block(records: Mapping[str, object], *, channel: str | None = None,
              method: str = "neurokit") -> pd.DataFrame:
    """:func:`ecg_features` of one lead per patient: ``{patient_id: Waveform}`` → table.

    ``channel`` picks the lead by name (default: the first channel); columns get the prefix
    ``ecg_``.
    """
    rows = {}
    for pid, wf in records.items():
        sig = wf.signals
        col = channel if channel is not None else sig.columns[0]
        if col not in sig.columns:
            raise InputError(f"lead {short(col)} not in the record", file=wf.record,
                             fix=f"available: {short_list(sig.columns)}")
        rows[str(pid)] = {f"ecg_{k}": v for k, v in ecg_features(sig[col].to_numpy(), wf.fs, method=method).items()}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "patient_id"
    return out
