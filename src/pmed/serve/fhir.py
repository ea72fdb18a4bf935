"""FHIR R4B in and out of ``pmed serve``: a Bundle of Patients and Observations → a patient
table; predictions → RiskAssessments.

Input (:func:`patients_from_fhir`)
    A ``Bundle`` (``Content-Type: application/fhir+json``) is validated against the R4B models
    of ``fhir.resources`` first; then each ``Patient`` is one row and each ``Observation``
    whose ``code`` holds a schema column's ``code`` (``"system|code"``, see
    :class:`pmed.schema.ColumnSpec`) fills that column for its subject, its value converted to
    the column's unit by the explicit table :data:`UCUM_FACTORS` (plus the affine temperature
    units and the analyte-specific mmol/L ↔ mg/dL factors of :data:`MOLAR_MASS_G_PER_MOL`).

Output (:func:`risk_assessments`)
    A ``Bundle`` of type ``collection`` with one ``RiskAssessment`` per patient, validated by
    the R4B models before it is returned.

Encoding choices (read before consuming the output)
    * ``prediction[].probabilityDecimal`` is a **percentage** (0–100): FHIR R4/R4B define
      ``probability[x]`` so ("Decimal values are expressed as percentages as well (max = 100)",
      invariant ras-2). A probability of 0.237 is written 23.7.
    * R4B's ``probability[x]`` holds a decimal *or* a range, not both: the point estimate goes
      in ``probabilityDecimal`` and its uncertainty (a survival model's 95 % interval, a
      binary model's conformal prediction set) in ``prediction[].rationale``, in words with
      the numbers.
    * Survival: one ``prediction`` per horizon, the probability of the event by then
      (1 − ``surv_<t>``), its time frame as ``whenPeriod`` from the assessment time to that
      time plus the horizon (``whenRange`` is avoided: FHIR's own examples use it for the
      patient's *age* range, which a horizon is not).
    * ``method.text`` names pmed, its version and the model; ``basis`` is one Reference whose
      ``identifier.value`` is the SHA-256 of the model's pipeline, with a ``display`` saying so.
    * ``subject`` is ``Patient/<id>`` when the ID is a valid FHIR id, else a logical reference
      by ``identifier``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import OptionError, ValidationError, require, shorten
from pmed.schema import ColumnSpec, TableSchema

__all__ = [
    "patients_from_fhir",
    "risk_assessments",
    "convert_quantity",
    "UCUM_FACTORS",
    "MOLAR_MASS_G_PER_MOL",
    "FHIR_JSON",
]

#: The media type of FHIR JSON.
FHIR_JSON = "application/fhir+json"

UCUM = "http://unitsofmeasure.org"

#: UCUM unit → (dimension, factor to the dimension's base unit). Only units met in clinical
#: tables; a unit outside it is refused, never guessed. Years and months are UCUM's mean Julian
#: ones (``a`` = 365.25 d, ``mo`` = ``a``/12), so 1 a = 12 mo exactly.
UCUM_FACTORS: dict[str, tuple[str, float]] = {
    "kg": ("mass", 1.0),
    "g": ("mass", 1e-3),
    "[lb_av]": ("mass", 0.45359237),  # international avoirdupois pound, exact
    "[oz_av]": ("mass", 0.45359237 / 16),
    "m": ("length", 1.0),
    "cm": ("length", 1e-2),
    "mm": ("length", 1e-3),
    "[in_i]": ("length", 0.0254),  # international inch, exact
    "[ft_i]": ("length", 0.3048),
    "a": ("time", 1.0),
    "mo": ("time", 1.0 / 12),
    "wk": ("time", 7 / 365.25),
    "d": ("time", 1 / 365.25),
    "kg/m2": ("bmi", 1.0),
    "mm[Hg]": ("pressure_mmhg", 1.0),
    "/min": ("rate_per_min", 1.0),
    "%": ("percent", 1.0),
    "mmol/L": ("molar_conc", 1.0),
    "umol/L": ("molar_conc", 1e-3),
    "mg/dL": ("mass_conc", 1.0),
    "g/L": ("mass_conc", 100.0),
    "mg/L": ("mass_conc", 0.1),
}

#: Temperatures (affine): unit → (to Celsius, from Celsius).
_TEMPERATURE = {
    "Cel": (lambda v: v, lambda c: c),
    "[degF]": (lambda v: (v - 32) * 5 / 9, lambda c: c * 9 / 5 + 32),
    "K": (lambda v: v - 273.15, lambda c: c + 273.15),
}

#: Molar mass (g/mol) of the analyte a LOINC code measures, for mmol/L ↔ mg/dL
#: (mg/dL = mmol/L × M / 10). Cholesterol C27H46O 386.65 g/mol (every cholesterol fraction
#: measures the cholesterol: 1 mmol/L = 38.665 mg/dL); glucose C6H12O6 180.156 g/mol
#: (1 mmol/L = 18.0156 mg/dL).
MOLAR_MASS_G_PER_MOL: dict[str, tuple[str, float]] = {
    "http://loinc.org|2093-3": ("cholesterol", 386.65),  # Cholesterol [Mass/volume] in Serum or Plasma
    "http://loinc.org|14647-2": ("cholesterol", 386.65),  # Cholesterol [Moles/volume] in Serum or Plasma
    "http://loinc.org|18262-6": ("cholesterol", 386.65),  # Cholesterol in LDL [Mass/volume], direct assay
    "http://loinc.org|2339-0": ("glucose", 180.156),  # Glucose [Mass/volume] in Blood
    "http://loinc.org|2345-7": ("glucose", 180.156),  # Glucose [Mass/volume] in Serum or Plasma
}

#: Common non-UCUM spellings read as their UCUM unit (a schema may keep a readable unit:
#: the demo's age is in ``years``, shown so in patient reports).
_ALIASES = {
    "years": "a", "year": "a", "yr": "a", "y": "a",
    "months": "mo", "month": "mo",
    "weeks": "wk", "week": "wk",
    "days": "d", "day": "d",
    "lb": "[lb_av]", "lbs": "[lb_av]",
    "in": "[in_i]", "inch": "[in_i]",
    "ft": "[ft_i]",
    "mmHg": "mm[Hg]",
    "degF": "[degF]", "°F": "[degF]",
    "°C": "Cel", "degC": "Cel", "C": "Cel",
    "kg/m^2": "kg/m2", "kg/m²": "kg/m2",
    "mmol/l": "mmol/L", "mg/dl": "mg/dL", "umol/l": "umol/L", "µmol/L": "umol/L",
    "beats/min": "/min", "{beats}/min": "/min", "{breaths}/min": "/min", "breaths/min": "/min",
}

# US Core's birth-sex extension: preferred over Patient.gender (administrative gender) for a
# ``sex`` column, which in pmed's schemas means sex at birth
_BIRTHSEX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
# Observations with these statuses carry no usable result
_SKIP_STATUS = {"entered-in-error", "cancelled"}
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# pmed's time units (study target.time_unit) → days, for survival horizons
_DAYS_PER = {"days": 1.0, "day": 1.0, "d": 1.0, "weeks": 7.0, "week": 7.0, "wk": 7.0,
             "months": 365.25 / 12, "month": 365.25 / 12, "mo": 365.25 / 12,
             "years": 365.25, "year": 365.25, "a": 365.25}
#: Bundle.type's required value set (FHIR R4B).
_BUNDLE_TYPES = ("document", "message", "transaction", "transaction-response", "batch", "batch-response",
                 "history", "searchset", "collection")
_FIX_BUNDLE = "send a FHIR R4B Bundle (application/fhir+json) of Patient and Observation resources"


def _fhir(module: str) -> Any:
    return require(f"fhir.resources.R4B.{module}", extra="serve", package="fhir.resources",
                   feature="FHIR input and output")


# ---------------------------------------------------------------------- units
def canonical_unit(unit: str | None) -> str | None:
    """A unit as UCUM spells it (``"years"`` → ``"a"``, ``"lb"`` → ``"[lb_av]"``); None stays None."""
    if unit is None:
        return None
    u = str(unit).strip()
    return _ALIASES.get(u, u)


def convert_quantity(value: float, unit: str, to: str, *, analyte: str | None = None) -> float:
    """Convert ``value`` from UCUM ``unit`` to UCUM ``to``.

    Parameters
    ----------
    value
        The number.
    unit, to
        UCUM units (common spellings such as ``years``, ``lb`` are accepted).
    analyte
        The ``"system|code"`` of what is measured; needed only between molar and mass
        concentrations (mmol/L ↔ mg/dL), whose factor is the analyte's molar mass
        (:data:`MOLAR_MASS_G_PER_MOL`).

    Returns
    -------
    float
        The value in ``to``.

    Raises
    ------
    ValueError
        The units cannot be converted into each other (the message says why).
    """
    src, dst = canonical_unit(unit), canonical_unit(to)
    if src == dst:
        return float(value)
    if src in _TEMPERATURE and dst in _TEMPERATURE:
        return float(_TEMPERATURE[dst][1](_TEMPERATURE[src][0](float(value))))
    if src not in UCUM_FACTORS or dst not in UCUM_FACTORS:
        unknown = src if src not in UCUM_FACTORS and src not in _TEMPERATURE else dst
        raise ValueError(f"unit {shorten(unknown)} is not in pmed's conversion table")
    (dim_s, f_s), (dim_d, f_d) = UCUM_FACTORS[src], UCUM_FACTORS[dst]
    if dim_s == dim_d:
        return float(value) * f_s / f_d
    if {dim_s, dim_d} == {"molar_conc", "mass_conc"}:
        if analyte not in MOLAR_MASS_G_PER_MOL:
            raise ValueError(f"no molar mass known for {shorten(analyte)}, so {src} cannot become {dst}")
        mm = MOLAR_MASS_G_PER_MOL[analyte][1]
        # to mmol/L or mg/dL first, then across with mg/dL = mmol/L × M / 10
        if dim_s == "molar_conc":
            return float(value) * f_s * mm / 10 / f_d
        return float(value) * f_s * 10 / mm / f_d
    raise ValueError(f"{src} ({dim_s}) cannot be converted to {dst} ({dim_d})")


# ---------------------------------------------------------------------- input
def patients_from_fhir(bundle: Mapping[str, Any], schema: TableSchema, *,
                       id_column: str | None = None, today: date | None = None) -> pd.DataFrame:
    """The patient table of a FHIR R4B Bundle of Patients and Observations.

    Parameters
    ----------
    bundle
        The Bundle as parsed JSON. It is validated with ``fhir.resources``' R4B models first.
    schema
        The model's input schema: columns with a ``code`` are filled from Observations coded
        so; ``sex`` and ``age`` also from the Patient resource (below).
    id_column
        Name of the ID column of the result (default ``schema.id``).
    today
        The date an age from ``birthDate`` is taken at when a patient has no dated Observation
        (default: today, UTC). For reproducible tests.

    Returns
    -------
    pandas.DataFrame
        One row per Patient in bundle order: the ID column (``Patient.id``) and every column
        the bundle can fill (coded columns; ``sex``/``age`` as below), missing (NaN) where a
        patient lacks it. Columns the bundle cannot fill are absent, so that the model's schema
        check names them. Raw values, as a patient file would give them: pass the table
        through ``schema.validate`` (or the model's feature check).

    Raises
    ------
    ValidationError
        The Bundle is malformed (each problem as ``entry[i].resource.<field path>: message``),
        an Observation refers to no Patient of the bundle, a unit cannot be converted (naming
        the entry, the unit and the column's unit), or a coded answer matches no category.

    Notes
    -----
    * **Latest wins**: several Observations for one patient and column → the one with the
      latest ``effectiveDateTime`` (or ``effectiveInstant``, ``effectivePeriod.end``/``start``);
      an undated one loses to a dated one; equal times → the later entry. Observations with
      status ``entered-in-error`` or ``cancelled``, or without a value, are skipped.
    * **Values**: ``valueQuantity`` for number columns, converted from its UCUM ``code``
      (else its ``unit`` text) to the column's unit; ``valueInteger`` as is (no unit);
      ``valueBoolean``/``valueInteger`` 0/1 for bool columns; ``valueCodeableConcept`` or
      ``valueString`` for category columns, matched to the categories by code, display or
      text — exactly, then ignoring case, then by the first word ("Never smoker" → never).
    * **sex**: a ``category`` column named ``sex`` without a code is filled from US Core's
      birth-sex extension when present, else from ``Patient.gender`` (administrative gender):
      ``female``/``male`` → the category equal to it, its capitalised form or its initial
      (``F``/``M``); ``other``/``unknown`` → missing.
    * **age**: a number column named ``age`` is taken from an Observation of its code when
      there is one; otherwise from ``birthDate`` at the reference date — the patient's latest
      dated Observation in the bundle, else ``today`` — as exact elapsed time (days / 365.25
      years, then in the column's unit; completed units for an ``int`` column). A partial ``birthDate`` is taken at the middle of its
      period (``1970`` → 1970-07-02, ``1970-05`` → 1970-05-16).
    """
    Bundle = _fhir("bundle").Bundle
    import pydantic

    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise ValidationError(["the request body is not a FHIR Bundle (resourceType must be 'Bundle')"],
                              fix=_FIX_BUNDLE)
    try:
        Bundle.model_validate(dict(bundle))
    except pydantic.ValidationError as e:
        raise ValidationError([f"{_loc(er['loc'])}: {er['msg']}" for er in e.errors()[:20]],
                              fix=_FIX_BUNDLE) from None

    # R4B's models take any code here; FHIR's value set is closed
    if bundle.get("type") not in _BUNDLE_TYPES:
        raise ValidationError([f"type: {shorten(str(bundle.get('type')))} is not a Bundle type "
                               f"({', '.join(_BUNDLE_TYPES)})"], fix=_FIX_BUNDLE)
    id_column = id_column or schema.id
    entries = [e for e in (bundle.get("entry") or [])]
    patients: dict[str, dict[str, Any]] = {}  # id → raw resource
    full_urls: dict[str, str] = {}  # fullUrl → id
    problems: list[str] = []
    for i, e in enumerate(entries):
        r = e.get("resource") or {}
        if r.get("resourceType") != "Patient":
            continue
        pid = r.get("id")
        if not pid:
            problems.append(f"entry[{i}].resource.id: a Patient needs an id (it becomes the patient ID)")
            continue
        if pid in patients:
            problems.append(f"entry[{i}].resource.id: the same Patient id occurs twice in the bundle")
            continue
        patients[pid] = r
        if e.get("fullUrl"):
            full_urls[e["fullUrl"]] = pid

    if not patients and not problems:
        raise ValidationError(["entry: the Bundle holds no Patient resource, so there is no one to score"],
                              fix="add a Patient per patient (its id becomes the patient ID) and Observations "
                                  "whose subject refers to it")
    by_code: dict[str, list[str]] = {}
    for name, spec in schema.columns.items():
        if spec.code:
            by_code.setdefault(_norm_code(spec.code), []).append(name)

    # (patient, column) → (time, entry index, value)
    found: dict[tuple[str, str], tuple[pd.Timestamp | None, int, Any]] = {}
    latest_time: dict[str, pd.Timestamp] = {}
    for i, e in enumerate(entries):
        r = e.get("resource") or {}
        if r.get("resourceType") != "Observation" or r.get("status") in _SKIP_STATUS:
            continue
        codes = {_norm_code(f"{c.get('system', '')}|{c.get('code', '')}")
                 for c in (r.get("code") or {}).get("coding") or []}
        columns = [c for code in codes for c in by_code.get(code, [])]
        pid = _subject(r.get("subject") or {}, patients, full_urls)
        when = _effective(r)
        if pid is not None and when is not None and (pid not in latest_time or when > latest_time[pid]):
            latest_time[pid] = when  # the reference date of an age from birthDate
        if not columns:
            continue
        if pid is None:
            problems.append(f"entry[{i}].resource.subject: refers to no Patient of the bundle — "
                            "include the Patient, referenced as Patient/<id> or by its fullUrl")
            continue
        for col in dict.fromkeys(columns):
            spec = schema.columns[col]
            try:
                value = _value(r, spec)
            except ValueError as err:
                problems.append(f"entry[{i}].resource (Observation {_norm_code(spec.code)} → column "
                                f"{col!r}): {err}")
                continue
            if value is None:
                continue
            old = found.get((pid, col))
            if old is None or _later(when, old[0]):
                found[(pid, col)] = (when, i, value)
    if problems:
        raise ValidationError(problems, fix="correct the bundle: units pmed converts are listed in "
                                            "pmed.serve.fhir.UCUM_FACTORS")

    ref_today = today or datetime.now(UTC).date()
    coded = [c for c, s in schema.columns.items() if s.code]
    sex_col = "sex" if _is_sex(schema.columns.get("sex")) else None
    age_col = "age" if _is_age(schema.columns.get("age")) else None
    cols = list(dict.fromkeys([*(c for c in [age_col, sex_col] if c), *coded]))
    rows = []
    for pid, res in patients.items():
        row: dict[str, Any] = {id_column: pid}
        for c in cols:
            hit = found.get((pid, c))
            row[c] = hit[2] if hit is not None else np.nan
        if sex_col:
            row[sex_col] = _sex(res, schema.columns[sex_col])
        if age_col and (pid, age_col) not in found and res.get("birthDate"):
            ref = latest_time[pid].date() if pid in latest_time else ref_today
            years = (ref - _birth_date(res["birthDate"])).days / 365.25
            unit = canonical_unit(schema.columns[age_col].unit) or "a"
            age = convert_quantity(years, "a", unit)
            # an int column holds completed units (age 63 until the 64th birthday)
            row[age_col] = float(math.floor(age)) if schema.columns[age_col].type == "int" else age
        rows.append(row)
    return pd.DataFrame(rows, columns=[id_column, *cols])


def _loc(loc: Sequence[Any]) -> str:
    """pydantic's error location as a FHIRPath-like string: ``entry[2].resource.valueQuantity.value``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "Bundle"


def _norm_code(code: str) -> str:
    system, _, c = str(code).partition("|")
    return f"{system.strip().rstrip('/')}|{c.strip()}"


def _subject(ref: Mapping[str, Any], patients: Mapping[str, Any], full_urls: Mapping[str, str]) -> str | None:
    r = ref.get("reference")
    if not isinstance(r, str):
        return None
    if r in full_urls:
        return full_urls[r]
    m = re.search(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/.*)?$", r)
    return m.group(1) if m and m.group(1) in patients else None


def _effective(r: Mapping[str, Any]) -> pd.Timestamp | None:
    raw = r.get("effectiveDateTime") or r.get("effectiveInstant")
    if raw is None and isinstance(r.get("effectivePeriod"), Mapping):
        raw = r["effectivePeriod"].get("end") or r["effectivePeriod"].get("start")
    if not raw:
        return None
    t = pd.Timestamp(str(raw))
    # a date without a zone is compared as UTC: FHIR leaves it local, the bundle gives no zone
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _later(new: pd.Timestamp | None, old: pd.Timestamp | None) -> bool:
    if new is None:
        return old is None  # undated replaces only undated (the later entry wins)
    return old is None or new >= old


def _birth_date(raw: str) -> date:
    parts = str(raw).split("-")
    if len(parts) == 1:
        return date(int(parts[0]), 7, 2)
    if len(parts) == 2:
        return date(int(parts[0]), int(parts[1]), 16)
    return date.fromisoformat(str(raw)[:10])


def _is_sex(spec: ColumnSpec | None) -> bool:
    return spec is not None and spec.type == "category" and not spec.code


def _is_age(spec: ColumnSpec | None) -> bool:
    if spec is None or spec.type not in ("float", "int"):
        return False
    u = canonical_unit(spec.unit) or "a"
    return UCUM_FACTORS.get(u, ("", 0))[0] == "time"


def _sex(patient: Mapping[str, Any], spec: ColumnSpec) -> Any:
    for ext in patient.get("extension") or []:
        if ext.get("url") == _BIRTHSEX and ext.get("valueCode"):
            v = _match_category([ext["valueCode"]], spec.categories or ())
            if v is not None:
                return v
    g = patient.get("gender")
    if g not in ("female", "male"):
        return np.nan
    v = _match_category([g, g.capitalize(), g[0].upper()], spec.categories or ())
    return np.nan if v is None else v


def _match_category(candidates: Sequence[str], categories: Sequence[Any]) -> Any:
    """The category equal to a candidate: exactly, then ignoring case, then by first word."""
    cats = list(categories)
    cands = [str(c).strip() for c in candidates if c]
    for c in cands:
        for k in cats:
            if str(k) == c:
                return k
    for c in cands:
        for k in cats:
            if str(k).lower() == c.lower():
                return k
    for c in cands:
        first = re.split(r"[\s,;:/]+", c.lower(), maxsplit=1)[0]
        for k in cats:
            if str(k).lower() == first:
                return k
    return None


def _value(r: Mapping[str, Any], spec: ColumnSpec) -> Any:
    """The Observation's value as the column wants it; None when it has no value."""
    if spec.type == "category" or spec.type == "string":
        cc = r.get("valueCodeableConcept")
        if cc is not None:
            cands = [x for c in cc.get("coding") or [] for x in (c.get("code"), c.get("display"))]
            cands.append(cc.get("text"))
        elif r.get("valueString") is not None:
            cands = [r["valueString"]]
        elif r.get("valueBoolean") is not None or r.get("valueInteger") is not None:
            v = r.get("valueBoolean", r.get("valueInteger"))
            cands = [str(v).lower(), str(int(v))]
        else:
            return _no_value(r, "valueCodeableConcept or valueString")
        if spec.type == "string":
            return next((str(c) for c in cands if c), None)
        hit = _match_category([c for c in cands if c], spec.categories or ())
        if hit is None:
            shown = ", ".join(shorten(c, 30) for c in cands if c) or "(empty)"
            raise ValueError(f"answer {shown} matches none of the categories "
                             f"{', '.join(str(c) for c in spec.categories or ())}")
        return hit
    if spec.type == "bool":
        if r.get("valueBoolean") is not None:
            return bool(r["valueBoolean"])
        if r.get("valueInteger") is not None:
            if r["valueInteger"] not in (0, 1):
                raise ValueError(f"valueInteger {r['valueInteger']} is not 0 or 1")
            return bool(r["valueInteger"])
        return _no_value(r, "valueBoolean or valueInteger 0/1")
    # float / int
    if r.get("valueInteger") is not None:
        return float(r["valueInteger"])
    q = r.get("valueQuantity")
    if q is None or q.get("value") is None:
        return _no_value(r, "valueQuantity")
    unit = q.get("code") if q.get("code") and q.get("system", UCUM) == UCUM else q.get("unit")
    target = canonical_unit(spec.unit)
    if target is None:
        return float(q["value"])
    if not unit:
        raise ValueError(f"valueQuantity has no unit; expected {target}")
    try:
        return convert_quantity(float(q["value"]), unit, target, analyte=_norm_code(spec.code or ""))
    except ValueError as err:
        raise ValueError(f"unit {shorten(unit)} cannot be converted to the column's {target}: {err}") from None


def _no_value(r: Mapping[str, Any], wanted: str) -> None:
    if r.get("dataAbsentReason") is not None:
        return None
    present = [k for k in r if k.startswith("value")]
    if present:
        raise ValueError(f"{present[0]} given where the column needs {wanted}")
    return None


# ---------------------------------------------------------------------- output
def risk_assessments(
    predictions: pd.DataFrame,
    *,
    task: str,
    model_name: str,
    model_sha256: str,
    target: str,
    pmed_version: str,
    horizons: Sequence[float] | None = None,
    time_unit: str | None = None,
    conformal_level: float | None = None,
    occurrence: datetime | None = None,
) -> dict:
    """FHIR R4B RiskAssessments (one per patient, in a ``collection`` Bundle) of pmed predictions.

    Parameters
    ----------
    predictions
        ``ModelBundle.predict`` output, indexed by patient ID (or with a ``patient_id``
        column). Binary: ``probability`` (and ``predicted_class``, ``prediction_set``);
        survival: ``surv_<t>`` per horizon (and ``surv_<t>_low``/``_high``,
        ``median_survival``).
    task
        ``"binary"`` or ``"survival"`` (a continuous prediction is not a risk: refused).
    model_name, model_sha256
        The model (``method.text``) and the SHA-256 of its pipeline (``basis``).
    target
        What is predicted (the outcome's column), named in ``code`` and ``outcome``.
    pmed_version
        pmed's version (``method.text``).
    horizons
        Survival horizons to report (default: every ``surv_<t>`` column).
    time_unit
        Unit of the survival horizons (``days``, ``weeks``, ``months``, ``years``); needed for
        survival.
    conformal_level
        Confidence level of the binary ``prediction_set`` (e.g. 0.9), said in the rationale.
    occurrence
        When the assessment is made (default now, UTC).

    Returns
    -------
    dict
        The Bundle as JSON (``model_dump(mode="json", exclude_none=True)``), validated by the
        R4B models. The encoding is described in the module docstring: ``probabilityDecimal``
        is a percentage; intervals and conformal sets are in ``rationale``; survival horizons
        are ``whenPeriod``.

    Raises
    ------
    OptionError
        An unknown task, a survival table without a time unit or without ``surv_<t>`` columns.
    """
    Bundle = _fhir("bundle").Bundle
    if task not in ("binary", "survival"):
        raise OptionError(f"a RiskAssessment holds probabilities; task {task!r} has none",
                          fix="return a continuous prediction as JSON, not FHIR")
    df = predictions
    if "patient_id" in df.columns:
        df = df.set_index("patient_id")
    now = (occurrence or datetime.now(UTC)).replace(microsecond=0)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    method = {"text": f"pmed {pmed_version}, model {model_name} ({task}, target {target})"}
    basis = [{"identifier": {"value": model_sha256},
              "display": f"SHA-256 of the pipeline of pmed model {model_name}: {model_sha256}"}]

    if task == "binary":
        if "probability" not in df.columns:
            raise OptionError("the predictions have no 'probability' column", fix="pass ModelBundle.predict output")
    else:
        from pmed.survival.evaluation import surv_columns

        scols = surv_columns([c for c in df.columns if not str(c).endswith(("_low", "_high"))])
        hs = list(horizons) if horizons is not None else sorted(scols)
        missing = [h for h in hs if float(h) not in scols]
        if not hs or missing:
            raise OptionError(f"no surv_<t> column for horizon(s) {missing or 'any'}",
                              fix="pass ModelBundle.predict output of a survival model")
        if time_unit is None or str(time_unit).lower() not in _DAYS_PER:
            raise OptionError(f"survival horizons need a known time unit, got {time_unit!r}",
                              fix=f"give time_unit as one of {', '.join(sorted(set(_DAYS_PER)))}")
        days_per = _DAYS_PER[str(time_unit).lower()]

    value_cols = ["probability"] if task == "binary" else [scols[float(h)] for h in hs]
    bad = ~np.isfinite(df[value_cols].to_numpy(dtype=float)).all(axis=1)
    if bad.any():  # counted, not named: no patient ID in a message
        raise OptionError(f"{int(bad.sum())} patient(s) have no finite predicted probability",
                          fix="predict only patients whose features the model accepts")
    entries = []
    for pid, row in df.iterrows():
        if task == "binary":
            p = float(row["probability"])
            why = [f"Probability of {target}: {_pct(p)} % (probabilityDecimal is a percentage, as FHIR defines it)."]
            if "predicted_class" in row.index and pd.notna(row["predicted_class"]):
                why.append(f"Predicted class at the model's threshold: {_plain(row['predicted_class'])}.")
            if "prediction_set" in row.index and pd.notna(row["prediction_set"]):
                s = str(row["prediction_set"])
                level = f" {conformal_level * 100:g} %" if conformal_level else ""
                why.append(f"Conformal{level} prediction set: {{{', '.join(s.split('|')) if s else ''}}}.")
            preds = [{"outcome": {"text": target}, "probabilityDecimal": _pct(p), "rationale": " ".join(why)}]
        else:
            preds = []
            for h in hs:
                col = scols[float(h)]
                s = float(row[col])
                why = f"Probability of the event ({target}) within {float(h):g} {time_unit}: {_pct(1 - s)} %"
                lo, hi = row.get(f"{col}_low"), row.get(f"{col}_high")
                if lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi):
                    # survival interval [lo, hi] → event probability interval [1 − hi, 1 − lo]
                    why += f" (95 % interval {_pct(1 - float(hi))}–{_pct(1 - float(lo))} %)"
                why += "; 1 − the predicted event-free probability. probabilityDecimal is a percentage."
                preds.append({
                    "outcome": {"text": f"{target} event"},
                    "probabilityDecimal": _pct(1 - s),
                    "whenPeriod": {"start": now.isoformat(),
                                   "end": (now + timedelta(days=float(h) * days_per)).isoformat()},
                    "rationale": why,
                })
        ra: dict[str, Any] = {
            "resourceType": "RiskAssessment",
            "status": "final",
            "code": {"text": f"risk of {target}"},
            "subject": _subject_ref(str(pid)),
            "occurrenceDateTime": now.isoformat(),
            "method": method,
            "basis": basis,
            "prediction": preds,
        }
        if task == "survival" and "median_survival" in row.index and pd.notna(row["median_survival"]) \
                and math.isfinite(float(row["median_survival"])):
            ra["note"] = [{"text": f"Median predicted time to the event: {float(row['median_survival']):g} "
                                   f"{time_unit}."}]
        entries.append({"resource": ra})
    model = Bundle.model_validate({"resourceType": "Bundle", "type": "collection", "entry": entries,
                                   "timestamp": now.isoformat()})
    return model.model_dump(mode="json", exclude_none=True)


def _pct(p: float) -> float:
    # percent with 4 decimals (1e-6 of probability): no float noise such as 23.700000000000003
    return round(100.0 * float(p), 4)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _subject_ref(pid: str) -> dict:
    if _FHIR_ID.match(pid):
        return {"reference": f"Patient/{pid}"}
    # not a valid FHIR id (e.g. an underscore): a logical reference by the pmed patient ID
    return {"identifier": {"value": pid}, "type": "Patient"}
