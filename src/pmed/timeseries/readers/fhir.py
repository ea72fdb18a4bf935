"""FHIR R4 Observation resources (Bundles in JSON) → :class:`TimeSeriesData`.

JSON from the outside is trusted for nothing: every key may be absent or of the wrong type, and
each such Observation becomes one listed problem (:class:`~pmed.errors.ValidationError`), not a
crash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import InputError, ValidationError
from pmed.timeseries._options import short
from pmed.timeseries.readers._base import (
    LONG_COLUMNS,
    TimeSeriesData,
    _check_options,
    _finish,
    _hours_from_datetimes,
    _read_text,
    _to_utc,
)
from pmed.timeseries.variables import FLAG_COLUMNS, VITALS, VariableSpec

__all__ = ["read_fhir", "FHIR_LOINC"]

#: LOINC code → (variable, UCUM unit → converter to the registry unit; None = already right)
FHIR_LOINC: dict[str, tuple[str, dict[str, Any]]] = {
    "8867-4": ("heart_rate", {"/min": None, "{beats}/min": None, "beats/min": None}),
    "9279-1": ("resp_rate", {"/min": None, "{breaths}/min": None, "breaths/min": None}),
    "8480-6": ("sbp", {"mm[Hg]": None, "mmHg": None}),
    "8462-4": ("dbp", {"mm[Hg]": None, "mmHg": None}),
    "8310-5": ("temperature", {"Cel": None, "[degF]": lambda v: (v - 32) * 5 / 9}),
    "8331-1": ("temperature", {"Cel": None, "[degF]": lambda v: (v - 32) * 5 / 9}),
    "59408-5": ("spo2", {"%": None}),
    "2708-6": ("spo2", {"%": None}),
    "29463-7": ("weight", {"kg": None, "[lb_av]": lambda v: v * 0.45359237, "g": lambda v: v / 1000}),
    "8302-2": ("height", {"cm": None, "[in_i]": lambda v: v * 2.54, "m": lambda v: v * 100}),
    "2339-0": ("glucose", {"mg/dL": None, "mmol/L": lambda v: v * 18.016}),
    "2345-7": ("glucose", {"mg/dL": None, "mmol/L": lambda v: v * 18.016}),
    "2160-0": ("creatinine", {"mg/dL": None, "umol/L": lambda v: v / 88.42}),
}

_FIX_RESOURCE = "give a FHIR Bundle, an Observation, or a list of them (JSON)"


def _dig(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]…`` where every level is a JSON object, else None."""
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def _fhir_resources(obj: Any, name: str) -> list[Any]:
    """The resources of a Bundle, an Observation, or a list of them (entries as they are)."""
    if isinstance(obj, list):
        return [r for o in obj for r in _fhir_resources(o, name)]
    if not isinstance(obj, dict) or not isinstance(obj.get("resourceType"), str):
        raise InputError("not a FHIR resource (no resourceType)", file=name, fix=_FIX_RESOURCE)
    if obj["resourceType"] == "Bundle":
        entries = obj.get("entry") or []
        if not isinstance(entries, list):
            raise InputError("Bundle.entry is not a list", file=name, where="key entry", fix=_FIX_RESOURCE)
        return [e.get("resource") if isinstance(e, dict) else e for e in entries]
    return [obj]


def _number(v: Any) -> float | None:
    # JSON true/false are bools, which Python counts as ints: they are not measurements
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        return float(v)
    except OverflowError:  # an integer too large for a float
        return None


def _code(part: dict) -> str | None:
    """The part's LOINC code (the first code when none names LOINC as its system)."""
    coding = _dig(part, "code", "coding")
    if not isinstance(coding, list):
        return None
    coding = [c for c in coding if isinstance(c, dict) and isinstance(c.get("code"), str) and c["code"]]
    loinc = next((c["code"] for c in coding if "loinc" in str(c.get("system", ""))), None)
    return loinc if loinc is not None else (coding[0]["code"] if coding else None)


def read_fhir(
    path: str | Path | Iterable[str | Path],
    *,
    codes: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
    variables: Mapping[str, VariableSpec] | None = None,
    unknown: str = "error",
    origin: str = "first",
) -> TimeSeriesData:
    """Read FHIR Observation resources (Bundles in JSON) into the long format.

    Each Observation gives ``patient_id`` (``subject.reference``, ``Patient/`` stripped),
    ``time`` (``effectiveDateTime``, ``effectiveInstant`` or ``effectivePeriod.start``),
    ``variable`` (its LOINC code mapped by ``codes``) and ``value`` (``valueQuantity.value``,
    converted from its declared UCUM unit). Components (a blood-pressure panel) are read as
    separate observations. Other resources in the bundle (Patient, Encounter) are ignored.

    Parameters
    ----------
    path
        A JSON file, a folder of ``*.json`` files, or a list of files.
    codes
        LOINC code → (variable, {UCUM unit: converter or None}); default :data:`FHIR_LOINC`.
    variables
        Registry for plausibility (default :data:`VITALS`).
    unknown
        Observations with codes absent from ``codes``: ``"error"`` (default), ``"keep"`` (as
        ``loinc:<code>``, unchecked) or ``"drop"``.
    origin
        Hours since each patient's ``"first"`` observation or ``"midnight"`` of its day.

    Raises
    ------
    InputError
        Unreadable JSON, a file that is not a FHIR resource, unparsable times, or no
        observations at all.
    ValidationError
        Observations without subject, time, a numeric value or a known unit, and unknown codes
        (``unknown="error"``): every one listed.
    OptionError
        ``unknown`` or ``origin`` outside their choices (before anything is read).
    """
    _check_options(unknown, origin)
    if isinstance(path, (str, Path)):
        p = Path(path)
        if not p.exists():
            raise InputError("file not found", file=p, fix="check the path")
        files = sorted(p.glob("*.json")) if p.is_dir() else [p]
        if not files:
            raise InputError("no *.json files in the folder", file=p, fix="give a FHIR Bundle (JSON)")
    else:
        files = [Path(f) for f in path]
    source = str(path) if isinstance(path, (str, Path)) else None
    codes = dict(codes) if codes is not None else FHIR_LOINC
    variables = dict(variables) if variables is not None else dict(VITALS)
    rows: list[tuple] = []
    problems: list[str] = []
    converted: list[tuple] = []
    for f in files:
        text = _read_text(f)
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"cannot read JSON: {e.msg}", file=f, where=f"line {e.lineno}, column {e.colno}",
                             fix="give a FHIR Bundle in JSON") from None
        except RecursionError:
            raise InputError("cannot read JSON: nested too deeply", file=f, fix="give a FHIR Bundle in JSON") from None
        for k, res in enumerate(_fhir_resources(obj, str(f))):
            if res is None:  # an entry without a resource (a request of a transaction bundle)
                continue
            if not isinstance(res, dict):
                problems.append(f"{f}: entry[{k}]: the resource is not a JSON object")
                continue
            if res.get("resourceType") != "Observation":
                continue
            rid = res.get("id")
            where = f"entry[{k}]" + (f" (id {short(rid, 40)})" if isinstance(rid, str) else "")
            subj = _dig(res, "subject", "reference")
            pid = subj.split("/")[-1].strip() if isinstance(subj, str) else ""
            if not pid:
                problems.append(f"{f}: {where}: no subject.reference")
                continue
            when = next((w for w in (res.get("effectiveDateTime"), res.get("effectiveInstant"),
                                     _dig(res, "effectivePeriod", "start")) if w), None)
            if not isinstance(when, str):
                problems.append(f"{f}: {where}: no effectiveDateTime" if when is None
                                else f"{f}: {where}: effectiveDateTime is not text")
                continue
            if res.get("status") in ("entered-in-error", "cancelled"):
                continue
            comps = res.get("component") or []
            if not isinstance(comps, list):
                problems.append(f"{f}: {where}: component is not a list")
                continue
            for j, part in enumerate([res, *comps]):
                at = where if j == 0 else f"{where} component[{j - 1}]"
                if not isinstance(part, dict):
                    problems.append(f"{f}: {at}: not a JSON object")
                    continue
                q = part.get("valueQuantity")
                if q is None:
                    continue
                if not isinstance(q, dict):
                    problems.append(f"{f}: {at}: valueQuantity is not a JSON object")
                    continue
                if "value" not in q:
                    continue
                value = _number(q["value"])
                if value is None:
                    problems.append(f"{f}: {at}: valueQuantity.value is not a number")
                    continue
                loinc = _code(part)
                if loinc is None:
                    problems.append(f"{f}: {at}: no code.coding")
                    continue
                unit = q.get("code") or q.get("unit") or ""
                if not isinstance(unit, str):
                    problems.append(f"{f}: {at}: the unit of valueQuantity is not text")
                    continue
                if loinc in codes:
                    var, units = codes[loinc]
                    if unit not in units:
                        problems.append(f"{f}: {at}: unit {short(unit)} for {var} (LOINC {loinc}) is not one of "
                                        f"{', '.join(units)}")
                        continue
                    conv = units[unit]
                    if conv is not None:
                        new = float(conv(value))
                        converted.append((pid, when, var, value, new, unit))
                        value = new
                    rows.append((pid, when, var, value, f"{f}: {at}"))
                elif unknown == "error":
                    problems.append(f"{f}: {at}: unknown LOINC code {short(loinc)}")
                elif unknown == "keep":
                    rows.append((pid, when, f"loinc:{loinc}", value, f"{f}: {at}"))
    if problems:
        if len(problems) > 50:
            problems = problems[:50] + [f"… {len(problems)} problems in all"]
        raise ValidationError(problems, file=source,
                              fix=("keep unknown LOINC codes unchecked with --unknown keep or ignore them with "
                                   "--unknown drop (in Python: unknown='keep'/'drop', or map them with codes=); every "
                                   "Observation needs subject, effectiveDateTime and valueQuantity in a known unit"))
    if not rows:
        raise InputError("no Observations with a value", file=source,
                         fix="check that the bundle holds Observation resources with valueQuantity")
    df = pd.DataFrame(rows, columns=["patient_id", "when", "variable", "value", "where"])
    dt = _to_utc(df["when"])
    if dt.isna().any():
        bad = df.loc[dt.isna(), "where"].tolist()
        raise InputError(f"unparsable effectiveDateTime in {len(bad)} Observation(s)",
                         file=source, where="; ".join(bad[:3]), fix="use ISO 8601 date-times")
    order = np.lexsort((dt.to_numpy(), df["patient_id"].to_numpy()))
    df, dt = df.iloc[order].reset_index(drop=True), dt.iloc[order].reset_index(drop=True)
    df["time"] = _hours_from_datetimes(df["patient_id"].to_numpy(), dt, origin)
    if unknown == "keep":
        for v in df["variable"].unique():
            variables.setdefault(v, VariableSpec(v, "as given"))
    long, static, flags = _finish(df[LONG_COLUMNS], variables=variables, unknown=unknown, source=source)
    if converted:
        c = pd.DataFrame(converted, columns=["patient_id", "when", "variable", "value", "new_value", "unit"])
        cdt = _to_utc(c["when"])
        first = dt.groupby(df["patient_id"].to_numpy()).min()
        if origin == "midnight":
            first = first.dt.floor("D")
        c["time"] = ((cdt - c["patient_id"].map(first)).dt.total_seconds() / 3600).to_numpy()
        c["action"] = "converted"
        c["reason"] = c["variable"] + ": declared unit " + c["unit"] + ", converted to " + c["variable"].map(
            lambda v: variables[v].unit if v in variables else "?")
        flags = pd.concat([flags, c[FLAG_COLUMNS]], ignore_index=True) if len(flags) else c[FLAG_COLUMNS]
    return TimeSeriesData(long, static, flags, None, variables, source)
