"""Synthetic wearable streams (steps, heart rate) for a synthetic cohort, for the demo.

:func:`simulate_wearables` gives each patient a week of 15-minute epochs whose signal depends on
a patient column (by default the true CAD log-odds of :mod:`pmed.datasets.synthetic`): higher
risk means fewer daily steps and a higher resting heart rate, so that the summaries of
:mod:`pmed.timeseries.wearables` carry information a disease model can use.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pmed.errors import ValidationError
from pmed.timeseries._options import short, short_list

__all__ = ["simulate_wearables"]


def simulate_wearables(
    patients: pd.DataFrame,
    *,
    seed: int,
    column: str = "cad_logit",
    days: int = 7,
    epoch_minutes: int = 15,
    steps_effect: float = -0.25,
    hr_effect: float = 4.0,
) -> pd.DataFrame:
    """Simulate steps and heart rate per epoch for every patient.

    Parameters
    ----------
    patients
        Indexed by patient ID, holding ``column`` (numeric: a risk score, or 0/1).
    seed
        Random seed.
    column
        The patient column the signal depends on; it is standardised to ``z``.
    days, epoch_minutes
        Length of the record and of one epoch (a row per epoch and stream).
    steps_effect
        Log change of daily steps per SD of ``z`` (default −0.25: about 22 % fewer steps).
    hr_effect
        Resting heart rate change in bpm per SD of ``z``.

    Returns
    -------
    pandas.DataFrame
        Long table ``patient_id, time, variable, value`` (``steps`` per epoch and ``heart_rate``,
        time in hours since midnight of day 0). Summarise with
        ``daily_summary(..., epoch_minutes=epoch_minutes)``.
    """
    if column not in patients.columns:
        raise ValidationError([f"column {short(column)} not in the patient table"],
                              fix=f"pass column= one of: {short_list(patients.columns)}")
    r = pd.to_numeric(patients[column], errors="coerce").astype(float)
    z = ((r - r.mean()) / (r.std(ddof=0) or 1.0)).fillna(0.0).to_numpy()
    rng = np.random.default_rng(seed)
    n = len(patients)
    per_day = int(24 * 60 // epoch_minutes)
    T = days * per_day
    hours = np.arange(T) * epoch_minutes / 60.0
    hod = hours % 24
    # activity profile: awake 7-23 h with peaks late morning and early evening
    awake = ((hod >= 7) & (hod < 23)).astype(float)
    profile = awake * (1 + 0.8 * np.exp(-((hod - 11) ** 2) / 4) + 0.9 * np.exp(-((hod - 18) ** 2) / 3))
    profile = profile / profile[:per_day].sum()
    daily_steps = 7500 * np.exp(steps_effect * z + rng.normal(0, 0.25, n))  # per patient
    day_factor = np.exp(rng.normal(0, 0.2, (n, days)))
    lam = daily_steps[:, None] * np.repeat(day_factor, per_day, axis=1) * profile[None, :]
    # walking comes in bursts: most awake epochs idle, some busy
    busy = rng.random((n, T)) < 0.45
    steps = rng.poisson(lam / 0.45 * busy)
    resting = 64 + hr_effect * z + rng.normal(0, 4, n)
    cadence = steps / epoch_minutes
    hr = (resting[:, None] + 0.35 * cadence - 4 * (1 - awake)[None, :] + rng.normal(0, 3, (n, T)))
    ids = np.repeat(patients.index.astype(str).to_numpy(), T)
    t = np.tile(hours, n)
    out = pd.DataFrame({
        "patient_id": np.concatenate([ids, ids]),
        "time": np.concatenate([t, t]),
        "variable": np.repeat(["steps", "heart_rate"], n * T),
        "value": np.concatenate([steps.reshape(-1).astype(float), hr.reshape(-1).round(1)]),
    })
    return out.sort_values(["patient_id", "time"], kind="mergesort").reset_index(drop=True)
