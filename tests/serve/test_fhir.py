"""FHIR R4B in and out (pmed.serve.fhir): a Bundle → the patient table with converted units,
pmed predictions → RiskAssessments that the R4B models accept."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fhir.resources")

from fhir.resources.R4B.bundle import Bundle  # noqa: E402

from pmed.datasets.synthetic.schema import synthetic_schema  # noqa: E402
from pmed.errors import OptionError, ValidationError  # noqa: E402
from pmed.schema import TableSchema  # noqa: E402
from pmed.serve.fhir import convert_quantity, patients_from_fhir, risk_assessments  # noqa: E402

FIXTURE = Path(__file__).parents[1] / "fixtures" / "fhir" / "demo_patient.json"
SHA = "3f" * 32
NOW = datetime(2026, 12, 7, 6, 0, 0, tzinfo=UTC)


@pytest.fixture
def bundle() -> dict:
    return json.loads(FIXTURE.read_text())


def lab_schema() -> TableSchema:
    """The demo's coded columns plus vital signs and labs in units other than the bundle's."""
    d = synthetic_schema()
    cols = {k: d["columns"][k] for k in ("age", "sex", "bmi", "smoking")}
    cols |= {
        "weight": {"type": "float", "unit": "kg", "code": "http://loinc.org|29463-7"},
        "height": {"type": "float", "unit": "cm", "code": "http://loinc.org|8302-2"},
        "temp": {"type": "float", "unit": "Cel", "code": "http://loinc.org|8310-5"},
        "chol": {"type": "float", "unit": "mmol/L", "code": "http://loinc.org|2093-3"},
        "glucose": {"type": "float", "unit": "mmol/L", "code": "http://loinc.org|2345-7"},
        "uncoded": {"type": "float", "unit": "kg"},
    }
    return TableSchema.from_dict({"id": "patient_id", "columns": cols})


def test_demo_schema_reads_the_bundle(bundle):
    schema = TableSchema.from_dict(synthetic_schema())
    df = patients_from_fhir(bundle, schema).set_index("patient_id")
    assert list(df.index) == ["pA", "pB"]
    assert list(df.columns) == ["age", "sex", "bmi", "smoking"]  # only what FHIR can fill
    # pA: age from birthDate 1961-03-15 at its latest Observation (2024-05-01), days / 365.25
    assert df.loc["pA", "age"] == pytest.approx((date(2024, 5, 1) - date(1961, 3, 15)).days / 365.25)
    assert 63.1 < df.loc["pA", "age"] < 63.2
    # pB: the Age Observation (624 mo) wins over the partial birthDate; referenced by fullUrl
    assert df.loc["pB", "age"] == pytest.approx(52.0)
    assert df["sex"].tolist() == ["F", "M"]
    # latest BMI (2024-05-01: 25.6) beats 2023's 30.0; the later entered-in-error 99 is skipped
    assert df["bmi"].tolist() == [25.6, 24.1]
    assert df["smoking"].tolist() == ["former", "never"]  # "Former smoker" text, "Never smoker" display
    # through the demo schema: these four pass, the columns FHIR cannot give are named
    with pytest.raises(ValidationError) as e:
        schema.validate(df.reset_index())
    text = str(e.value)
    for name in ("site", "drug", "alcohol_units_week"):
        assert f"column {name!r} is declared in the schema but missing" in text
    for name in ("age", "bmi", "smoking", "sex"):
        assert f"column {name!r}" not in text


def test_units_converted_to_the_schema(bundle):
    df = patients_from_fhir(bundle, lab_schema(), id_column="pid").set_index("pid")
    a, b = df.loc["pA"], df.loc["pB"]
    assert a["weight"] == pytest.approx(69.85322498)  # 154 [lb_av] × 0.45359237 kg
    assert round(a["weight"], 3) == 69.853
    assert b["weight"] == 80.0
    assert a["height"] == pytest.approx(165.1)  # 65 [in_i] × 2.54 cm
    assert b["height"] == pytest.approx(180.0)  # 1.8 m
    assert a["temp"] == pytest.approx(37.0)  # 98.6 [degF]
    assert a["chol"] == pytest.approx(200 / 38.665)  # cholesterol 386.65 g/mol → 5.1726 mmol/L
    assert a["glucose"] == pytest.approx(99 / 18.0156)  # glucose 180.156 g/mol → 5.4952 mmol/L
    assert np.isnan(b["temp"]) and np.isnan(b["chol"])  # not in the bundle: missing
    assert "uncoded" not in df.columns


def test_convert_quantity_known_answers():
    assert convert_quantity(154, "[lb_av]", "kg") == pytest.approx(69.85322498)
    assert convert_quantity(69.85322498, "kg", "lb") == pytest.approx(154)
    assert convert_quantity(212, "[degF]", "Cel") == pytest.approx(100)
    assert convert_quantity(37, "Cel", "[degF]") == pytest.approx(98.6)
    assert convert_quantity(624, "mo", "years") == pytest.approx(52)
    assert convert_quantity(5, "mmol/L", "mg/dL", analyte="http://loinc.org|2093-3") == pytest.approx(193.325)
    assert convert_quantity(90.078, "mg/dL", "mmol/L", analyte="http://loinc.org|2345-7") == pytest.approx(5.0)
    with pytest.raises(ValueError, match="no molar mass"):
        convert_quantity(5, "mmol/L", "mg/dL", analyte="http://loinc.org|0000-0")
    with pytest.raises(ValueError, match="cannot be converted"):
        convert_quantity(5, "kg", "cm")


def test_malformed_bundle_names_the_path(bundle):
    bundle["entry"][2]["resource"]["valueQuantity"]["value"] = "heavy"
    del bundle["entry"][3]["resource"]["status"]
    with pytest.raises(ValidationError) as e:
        patients_from_fhir(bundle, lab_schema())
    probs = e.value.problems
    assert any(p.startswith("entry[2].resource.valueQuantity.value: ") for p in probs), probs
    assert any(p.startswith("entry[3].resource.status: ") for p in probs), probs
    with pytest.raises(ValidationError, match="not a FHIR Bundle"):
        patients_from_fhir({"resourceType": "Patient", "id": "x"}, lab_schema())


def test_unknown_unit_names_it(bundle):
    bundle["entry"][2]["resource"]["valueQuantity"].update(code="[stone_av]", unit="st")
    with pytest.raises(ValidationError) as e:
        patients_from_fhir(bundle, lab_schema())
    (p,) = e.value.problems
    assert p.startswith("entry[2].resource (Observation http://loinc.org|29463-7 → column 'weight')")
    assert "'[stone_av]'" in p and "kg" in p
    # the same unit is no problem for a schema that does not ask for the column
    patients_from_fhir(bundle, TableSchema.from_dict(synthetic_schema()))


def test_unmatched_answer_and_orphan_observation(bundle):
    b = copy.deepcopy(bundle)
    b["entry"][7]["resource"]["valueCodeableConcept"] = {"text": "Unknown if ever smoked"}
    with pytest.raises(ValidationError, match="matches none of the categories never, former, current"):
        patients_from_fhir(b, lab_schema())
    b = copy.deepcopy(bundle)
    b["entry"][2]["resource"]["subject"]["reference"] = "Patient/elsewhere"
    with pytest.raises(ValidationError, match=r"entry\[2\].resource.subject: refers to no Patient"):
        patients_from_fhir(b, lab_schema())


def _parsed(out: dict) -> list[dict]:
    Bundle.model_validate(out)  # what a FHIR client does with the response
    assert out["resourceType"] == "Bundle" and out["type"] == "collection"
    return [e["resource"] for e in out["entry"]]


def test_binary_risk_assessments():
    pred = pd.DataFrame({"probability": [0.237, 0.81], "predicted_class": [0, 1],
                         "prediction_set": ["0", "0|1"]},
                        index=pd.Index(["pA", "p_b"], name="patient_id"))
    out = risk_assessments(pred, task="binary", model_name="lightgbm", model_sha256=SHA,
                           target="response", pmed_version="1.2.3", conformal_level=0.9, occurrence=NOW)
    a, b = _parsed(out)
    assert [r["resourceType"] for r in (a, b)] == ["RiskAssessment"] * 2
    assert a["status"] == "final" and a["occurrenceDateTime"] == "2026-12-07T06:00:00Z"
    assert a["subject"] == {"reference": "Patient/pA"}
    assert b["subject"] == {"identifier": {"value": "p_b"}, "type": "Patient"}  # '_' is no FHIR id
    assert "pmed 1.2.3" in a["method"]["text"] and "lightgbm" in a["method"]["text"]
    assert a["basis"][0]["identifier"]["value"] == SHA and SHA in a["basis"][0]["display"]
    # probabilityDecimal is a percentage (FHIR R4B), the conformal set in the rationale
    assert [r["prediction"][0]["probabilityDecimal"] for r in (a, b)] == [23.7, 81.0]
    assert "Conformal 90 % prediction set: {0}" in a["prediction"][0]["rationale"]
    assert "{0, 1}" in b["prediction"][0]["rationale"]
    assert "Predicted class at the model's threshold: 1" in b["prediction"][0]["rationale"]


def test_survival_risk_assessments():
    pred = pd.DataFrame({"patient_id": ["pA"], "risk": [0.4],
                         "surv_730": [0.9], "surv_730_low": [0.85], "surv_730_high": [0.94],
                         "surv_1825": [0.7], "surv_1825_low": [0.6], "surv_1825_high": [0.78],
                         "median_survival": [np.nan]})
    out = risk_assessments(pred, task="survival", model_name="cox", model_sha256=SHA, target="chd",
                           pmed_version="1.2.3", time_unit="days", occurrence=NOW)
    (ra,) = _parsed(out)
    p2, p5 = ra["prediction"]
    assert p2["probabilityDecimal"] == 10.0 and p5["probabilityDecimal"] == 30.0  # 1 − surv
    assert "95 % interval 6.0–15.0 %" in p2["rationale"]  # 1 − 0.94, 1 − 0.85
    assert "95 % interval 22.0–40.0 %" in p5["rationale"]
    assert p2["whenPeriod"]["start"] == "2026-12-07T06:00:00Z"
    end = datetime.fromisoformat(p5["whenPeriod"]["end"].replace("Z", "+00:00"))
    assert end - NOW == timedelta(days=1825)
    assert "note" not in ra  # no median within follow-up
    only = risk_assessments(pred, task="survival", model_name="cox", model_sha256=SHA, target="chd",
                            pmed_version="1.2.3", time_unit="years", horizons=[730], occurrence=NOW)
    (ra,) = _parsed(only)
    assert len(ra["prediction"]) == 1


def test_risk_assessment_refusals():
    pred = pd.DataFrame({"prediction": [1.0]}, index=["pA"])
    with pytest.raises(OptionError, match="holds probabilities"):
        risk_assessments(pred, task="continuous", model_name="m", model_sha256=SHA, target="ldl",
                         pmed_version="1")
    surv = pd.DataFrame({"surv_730": [0.9]}, index=["pA"])
    with pytest.raises(OptionError, match="known time unit"):
        risk_assessments(surv, task="survival", model_name="m", model_sha256=SHA, target="chd",
                         pmed_version="1")
    with pytest.raises(OptionError, match="no surv_<t> column"):
        risk_assessments(surv, task="survival", model_name="m", model_sha256=SHA, target="chd",
                         pmed_version="1", time_unit="days", horizons=[365])


def test_int_age_is_completed_years(bundle):
    schema = TableSchema.from_dict({"columns": {"age": {"type": "int", "unit": "a"}}})
    df = patients_from_fhir(bundle, schema).set_index("patient_id")
    assert df.loc["pA", "age"] == 63.0  # 63.13 years at 2024-05-01
    # no Observation at all: the age is taken at `today`
    only = {"resourceType": "Bundle", "type": "collection", "entry": [bundle["entry"][0]]}
    df = patients_from_fhir(only, schema, today=date(2026, 3, 14)).set_index("patient_id")
    assert df.loc["pA", "age"] == 64.0  # the 65th birthday is on 2026-03-15
