"""Variables, their units and plausible ranges; values outside them are flagged, never kept.

Every reader passes its long table through :func:`check_values`. For each variable the
registry (:class:`VariableSpec`) gives a unit, a plausible range and, where a unit mistake is
common and unambiguous, a *unit fix*: a range of values that are implausible in the expected
unit but plausible in another one (a temperature of 98.6 is °F, not °C; an FiO2 of 40 is a
percentage, not a fraction). Those values are converted and flagged ``"converted"``. Anything
else outside the plausible range is set missing and flagged ``"set_missing"``: implausible
values are never silently kept, and the flags table says what was done, where and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pmed.errors import ValidationError

__all__ = [
    "VariableSpec",
    "UnitFix",
    "PHYSIONET2012",
    "WEARABLE",
    "VITALS",
    "registry",
    "check_values",
    "FLAG_COLUMNS",
]

#: columns of the quality-control flags table returned by :func:`check_values`
FLAG_COLUMNS = ["patient_id", "time", "variable", "value", "new_value", "action", "reason"]


@dataclass(frozen=True)
class UnitFix:
    """Values in ``[low, high]`` are taken to be in ``unit`` and converted with ``convert``."""

    low: float
    high: float
    unit: str
    convert: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class VariableSpec:
    """One measured variable: its unit, plausible range and known unit mistakes.

    Parameters
    ----------
    name
        The variable's name as it appears in the data (``"HR"``, ``"Temp"``).
    unit
        The unit values are expected in.
    low, high
        The plausible range, inclusive; values outside are set missing (after unit fixes).
    description
        What it is, in words.
    fixes
        Unit mistakes recognised and converted (:class:`UnitFix`).
    static
        True for descriptors recorded once (age, sex, height), not a time series.
    missing_codes
        Values that mean "not measured" (PhysioNet uses -1), dropped without a flag.
    """

    name: str
    unit: str
    low: float = -np.inf
    high: float = np.inf
    description: str = ""
    fixes: tuple[UnitFix, ...] = field(default_factory=tuple)
    static: bool = False
    missing_codes: tuple[float, ...] = ()


def _f_to_c(v: np.ndarray) -> np.ndarray:
    return (v - 32.0) * 5.0 / 9.0


def _pct_to_frac(v: np.ndarray) -> np.ndarray:
    return v / 100.0


def _inch_to_cm(v: np.ndarray) -> np.ndarray:
    return v * 2.54


def _lb_to_kg(v: np.ndarray) -> np.ndarray:
    return v * 0.45359237


def _ph_x100(v: np.ndarray) -> np.ndarray:
    return v / 100.0


_TEMP_F = UnitFix(80.0, 113.0, "°F", _f_to_c)


def _specs(*items: VariableSpec) -> dict[str, VariableSpec]:
    return {s.name: s for s in items}


#: PhysioNet/CinC Challenge 2012 variables (units from the challenge's documentation)
PHYSIONET2012: dict[str, VariableSpec] = _specs(
    VariableSpec("Age", "years", 15, 120, "age at ICU admission", static=True, missing_codes=(-1,)),
    VariableSpec("Gender", "0=female, 1=male", 0, 1, "sex", static=True, missing_codes=(-1,)),
    VariableSpec("Height", "cm", 100, 250, "height", static=True, missing_codes=(-1,),
                 fixes=(UnitFix(48, 90, "inch", _inch_to_cm),)),
    VariableSpec("ICUType", "code 1-4", 1, 4, "coronary care, cardiac surgery recovery, medical, surgical",
                 static=True, missing_codes=(-1,)),
    VariableSpec("Weight", "kg", 20, 350, "body weight", missing_codes=(-1,)),
    VariableSpec("Albumin", "g/dL", 0.5, 7, "serum albumin"),
    VariableSpec("ALP", "IU/L", 1, 5000, "alkaline phosphatase"),
    VariableSpec("ALT", "IU/L", 1, 20000, "alanine transaminase"),
    VariableSpec("AST", "IU/L", 1, 30000, "aspartate transaminase"),
    VariableSpec("Bilirubin", "mg/dL", 0, 80, "bilirubin"),
    VariableSpec("BUN", "mg/dL", 0, 300, "blood urea nitrogen"),
    VariableSpec("Cholesterol", "mg/dL", 20, 1000, "cholesterol"),
    VariableSpec("Creatinine", "mg/dL", 0.05, 30, "serum creatinine"),
    VariableSpec("DiasABP", "mmHg", 1, 250, "invasive diastolic arterial blood pressure"),
    VariableSpec("FiO2", "fraction 0-1", 0.15, 1, "fractional inspired O2",
                 fixes=(UnitFix(21, 100, "%", _pct_to_frac),)),
    VariableSpec("GCS", "score 3-15", 3, 15, "Glasgow Coma Score"),
    VariableSpec("Glucose", "mg/dL", 10, 2000, "serum glucose"),
    VariableSpec("HCO3", "mmol/L", 2, 60, "serum bicarbonate"),
    VariableSpec("HCT", "%", 5, 80, "haematocrit"),
    VariableSpec("HR", "bpm", 1, 300, "heart rate"),
    VariableSpec("K", "mEq/L", 1, 12, "serum potassium"),
    VariableSpec("Lactate", "mmol/L", 0.1, 40, "lactate"),
    VariableSpec("Mg", "mmol/L", 0.2, 10, "serum magnesium"),
    VariableSpec("MAP", "mmHg", 1, 300, "invasive mean arterial blood pressure"),
    VariableSpec("MechVent", "0/1", 0, 1, "mechanical ventilation"),
    VariableSpec("Na", "mEq/L", 90, 200, "serum sodium"),
    VariableSpec("NIDiasABP", "mmHg", 1, 250, "non-invasive diastolic blood pressure"),
    VariableSpec("NIMAP", "mmHg", 1, 300, "non-invasive mean arterial blood pressure"),
    VariableSpec("NISysABP", "mmHg", 1, 300, "non-invasive systolic blood pressure"),
    VariableSpec("PaCO2", "mmHg", 5, 200, "arterial CO2 partial pressure"),
    VariableSpec("PaO2", "mmHg", 10, 800, "arterial O2 partial pressure"),
    VariableSpec("pH", "pH units", 6.5, 8.0, "arterial pH", fixes=(UnitFix(650, 800, "pH×100", _ph_x100),)),
    VariableSpec("Platelets", "10^9/L", 1, 2000, "platelets"),
    VariableSpec("RespRate", "breaths/min", 1, 90, "respiration rate"),
    VariableSpec("SaO2", "%", 40, 100, "arterial O2 saturation"),
    VariableSpec("SysABP", "mmHg", 1, 300, "invasive systolic arterial blood pressure"),
    VariableSpec("Temp", "°C", 25, 45, "temperature", fixes=(_TEMP_F,)),
    VariableSpec("TroponinI", "µg/L", 0, 500, "troponin I"),
    VariableSpec("TroponinT", "µg/L", 0, 100, "troponin T"),
    VariableSpec("Urine", "mL", 0, 5000, "urine output since the last measurement"),
    VariableSpec("WBC", "10^9/L", 0, 500, "white blood cell count"),
)

#: common vital signs under plain names (FHIR bundles and generic long tables)
VITALS: dict[str, VariableSpec] = _specs(
    VariableSpec("heart_rate", "bpm", 20, 300, "heart rate"),
    VariableSpec("resp_rate", "breaths/min", 1, 90, "respiration rate"),
    VariableSpec("sbp", "mmHg", 40, 300, "systolic blood pressure"),
    VariableSpec("dbp", "mmHg", 10, 250, "diastolic blood pressure"),
    VariableSpec("temperature", "°C", 25, 45, "body temperature", fixes=(_TEMP_F,)),
    VariableSpec("spo2", "%", 40, 100, "oxygen saturation"),
    VariableSpec("weight", "kg", 0.3, 350, "body weight"),
    VariableSpec("height", "cm", 30, 250, "body height", fixes=(UnitFix(12, 90, "inch", _inch_to_cm),)),
    VariableSpec("glucose", "mg/dL", 10, 2000, "blood glucose"),
    VariableSpec("creatinine", "mg/dL", 0.05, 30, "serum creatinine"),
)

#: wearable streams (per-minute rows)
WEARABLE: dict[str, VariableSpec] = _specs(
    VariableSpec("steps", "steps/min", 0, 300, "step count in the minute"),
    VariableSpec("heart_rate", "bpm", 25, 250, "heart rate (optical)"),
)


def registry(*parts: Mapping[str, VariableSpec] | Iterable[VariableSpec]) -> dict[str, VariableSpec]:
    """Merge variable registries (later ones win); accepts dicts or iterables of specs."""
    out: dict[str, VariableSpec] = {}
    for p in parts:
        items = p.values() if isinstance(p, Mapping) else p
        for s in items:
            out[s.name] = s
    return out


def check_values(
    data: pd.DataFrame,
    *,
    variables: Mapping[str, VariableSpec],
    unknown: str = "error",
    source: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fix obvious unit mistakes and set implausible values missing, flagging both.

    Parameters
    ----------
    data
        Long table with columns ``patient_id, time, variable, value`` (``value`` numeric or
        NaN). An optional ``line`` column (1-based line in the source file) is used in errors.
    variables
        The registry: name → :class:`VariableSpec`.
    unknown
        ``"error"`` (default): a variable absent from the registry is an error;
        ``"keep"``: kept unchecked; ``"drop"``: removed.
    source
        The file the data came from, for messages.

    Returns
    -------
    data : DataFrame
        The same rows; converted values replaced, implausible ones NaN; missing codes dropped.
        ``±inf`` (``inf`` in a file, or a number too large for a float) is implausible for every
        variable, also one kept unchecked: it is set missing and flagged, never summarised. NaN
        (an empty cell, ``NaN`` in a file) means "not measured" and is not flagged.
    flags : DataFrame
        One row per changed value: :data:`FLAG_COLUMNS` (``action`` is ``"converted"`` or
        ``"set_missing"``).

    Raises
    ------
    ValidationError
        Unknown variables (with ``unknown="error"``), naming each and its first line.
    """
    from pmed.timeseries._options import check_choice, short

    check_choice("unknown", unknown, ("error", "keep", "drop"))
    data = data.copy()
    names = pd.unique(data["variable"])
    unknown_names = [v for v in names if v not in variables]
    if unknown_names and unknown == "error":
        problems = []
        for v in unknown_names[:20]:
            rows = data.index[data["variable"] == v]
            where = ""
            if "line" in data.columns:
                where = f" (first at line {int(data.loc[rows[0], 'line'])})"
            problems.append(f"unknown variable {short(v)}{where}: {len(rows)} value(s)")
        if len(unknown_names) > 20:
            problems.append(f"… {len(unknown_names)} unknown variables in all")
        raise ValidationError(
            problems, file=source,
            fix=("accept it unchecked with --unknown keep or ignore it with --unknown drop (in Python: "
                 "unknown='keep'/'drop', or declare it with a VariableSpec in variables=)"))
    if unknown_names and unknown == "drop":
        data = data[~data["variable"].isin(unknown_names)]

    values = pd.to_numeric(data["value"], errors="coerce").to_numpy(dtype=float).copy()
    var = data["variable"].to_numpy()
    drop = np.zeros(len(data), dtype=bool)
    flag_parts = []
    for name in names:
        spec = variables.get(name)
        idx = np.flatnonzero(var == name)
        if spec is None:
            # kept unchecked (unknown="keep"), but ±inf is never a measurement: it would turn the
            # mean, max and slope into inf, so it is set missing and counted like any implausible value
            inf = np.isinf(values[idx])
            if inf.any():
                flag_parts.append(pd.DataFrame({
                    "row": idx[inf], "value": values[idx][inf], "new_value": np.nan, "action": "set_missing",
                    "reason": f"{name}: not a finite number"}))
                values[idx[inf]] = np.nan
            continue
        v = values[idx]
        if spec.missing_codes:
            drop[idx[np.isin(v, spec.missing_codes)]] = True
        live = ~drop[idx] & ~np.isnan(v)
        # ±inf is never a measurement: out of range even for a variable without bounds
        out_of_range = live & ((v < spec.low) | (v > spec.high) | np.isinf(v))
        for fx in spec.fixes:
            hit = out_of_range & (v >= fx.low) & (v <= fx.high)
            if hit.any():
                new = fx.convert(v[hit])
                ok = (new >= spec.low) & (new <= spec.high)
                sub = idx[hit][ok]
                flag_parts.append(pd.DataFrame({
                    "row": sub, "value": v[hit][ok], "new_value": new[ok], "action": "converted",
                    "reason": f"{name}: value in {fx.unit}, converted to {spec.unit}"}))
                values[sub] = new[ok]
                out_of_range[np.flatnonzero(hit)[ok]] = False
        if out_of_range.any():
            sub = idx[out_of_range]
            flag_parts.append(pd.DataFrame({
                "row": sub, "value": v[out_of_range], "new_value": np.nan, "action": "set_missing",
                "reason": f"{name}: outside the plausible range {spec.low:g} to {spec.high:g} {spec.unit}"}))
            values[sub] = np.nan
    data["value"] = values
    if flag_parts:
        f = pd.concat(flag_parts, ignore_index=True)
        base = data.iloc[f["row"].to_numpy()]
        flags = pd.DataFrame({
            "patient_id": base["patient_id"].to_numpy(), "time": base["time"].to_numpy(),
            "variable": base["variable"].to_numpy(), "value": f["value"].to_numpy(),
            "new_value": f["new_value"].to_numpy(), "action": f["action"].to_numpy(),
            "reason": f["reason"].to_numpy()})
        if "line" in data.columns:
            flags["line"] = base["line"].to_numpy()
    else:
        flags = pd.DataFrame(columns=FLAG_COLUMNS)
    data = data[~drop]
    return data.reset_index(drop=True), flags.reset_index(drop=True)
