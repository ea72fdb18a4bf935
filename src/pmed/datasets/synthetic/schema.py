"""Columns and pmed schema of the synthetic patient tables."""

from __future__ import annotations

from typing import Any

__all__ = ["OUTCOME_COLUMNS", "PATIENT_COLUMNS", "synthetic_schema"]


#: Columns that are outcomes (absent from ``new_patients.csv``).
OUTCOME_COLUMNS = ("ldl_mmol_l", "response", "cad", "chd_years", "chd_event")

#: Patient table columns in order (``patient_id`` is the index).
PATIENT_COLUMNS = (
    "age",
    "sex",
    "bmi",
    "smoking",
    "alcohol_units_week",
    "physical_activity_h_week",
    "diabetes",
    "hypertension",
    "prior_mi",
    "pm25_ug_m3",
    "deprivation_index",
    "site",
    "ldl_mmol_l",
    "drug",
    "response",
    "cad",
    "chd_years",
    "chd_event",
)


def synthetic_schema() -> dict:
    """The pmed schema (see :mod:`pmed.schema`) of the synthetic patient tables, as a dict.

    Columns with a sure LOINC code carry it (``code``), so that FHIR input
    (:mod:`pmed.serve.fhir`) can fill them: age 30525-0, BMI 39156-5, smoking status 72166-2
    (its answer text, "Never smoker", "Former smoker", "Current every day smoker", maps to
    never/former/current by its first word). ``sex`` comes from ``Patient.gender``. Age keeps
    the unit ``years`` (read as UCUM ``a``) because the unit is shown in patient reports.
    """
    cols: dict[str, dict[str, Any]] = {
        "age": {"type": "float", "unit": "years", "min": 18, "max": 110,
                "description": "age at enrolment", "code": "http://loinc.org|30525-0"},
        "sex": {"type": "category", "categories": ["F", "M"], "description": "sex at birth"},
        "bmi": {"type": "float", "unit": "kg/m2", "min": 10, "max": 80,
                "description": "body-mass index", "code": "http://loinc.org|39156-5"},
        "smoking": {"type": "category", "categories": ["never", "former", "current"],
                    "description": "smoking status", "code": "http://loinc.org|72166-2"},
        "alcohol_units_week": {"type": "float", "unit": "UK units/week", "min": 0, "max": 200,
                               "description": "alcohol intake"},
        "physical_activity_h_week": {"type": "float", "unit": "h/week", "min": 0, "max": 80,
                                     "description": "moderate-to-vigorous physical activity"},
        "diabetes": {"type": "bool", "description": "diagnosed diabetes (1 = yes)"},
        "hypertension": {"type": "bool", "description": "diagnosed hypertension (1 = yes)"},
        "prior_mi": {"type": "bool", "description": "previous myocardial infarction (1 = yes)"},
        "pm25_ug_m3": {"type": "float", "unit": "ug/m3", "min": 0, "max": 200,
                       "description": "annual mean PM2.5 air pollution at home address"},
        "deprivation_index": {"type": "float", "unit": "score", "min": 0, "max": 10,
                              "description": "area deprivation (0 = least, 10 = most)"},
        "site": {"type": "category", "categories": ["A", "B", "C"], "nullable": False,
                 "description": "recruiting site"},
        "ldl_mmol_l": {"type": "float", "unit": "mmol/L", "min": 0, "max": 15,
                       "required": False,
                       "description": "outcome: LDL cholesterol"},
        "drug": {"type": "category", "categories": ["clopidogrel", "ticagrelor"],
                 "nullable": False, "description": "antiplatelet drug given (randomised)"},
        "response": {"type": "bool", "required": False,
                     "description": "outcome: 1 = adequate response / no ischaemic event"},
        "cad": {"type": "bool", "required": False,
                "description": "outcome: coronary artery disease"},
        "chd_years": {"type": "float", "unit": "years", "min": 0, "max": 50, "required": False,
                      "description": "outcome: follow-up time to a first coronary heart disease "
                                     "event or censoring"},
        "chd_event": {"type": "bool", "required": False,
                      "description": "outcome: 1 = first coronary heart disease event at chd_years, "
                                     "0 = censored (event-free when follow-up ended)"},
    }  # fmt: skip
    return {"id": "patient_id", "columns": cols, "strict": False}
