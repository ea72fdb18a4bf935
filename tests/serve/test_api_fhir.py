"""FHIR through ``pmed serve``: a Bundle of Patients and Observations in, RiskAssessments out,
with the same numbers as the JSON route on the same patients."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("fhir.resources")

from fastapi.testclient import TestClient  # noqa: E402
from fhir.resources.R4B.bundle import Bundle  # noqa: E402
from serve_helpers import bearer  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from conftest import make_clinical  # noqa: E402
from pmed.serve import create_app, create_token  # noqa: E402
from pmed.serve.db import Prediction  # noqa: E402

FHIR = "application/fhir+json"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
# LOINC codes on the schema's columns: what the FHIR converter looks for in Observation.code
SCHEMA = f"""\
id: patient_id
columns:
  age: {{type: float, unit: a, min: 0, max: 120, code: "{LOINC}|30525-0"}}
  sex: {{type: category, categories: [F, M]}}
  bmi: {{type: float, unit: kg/m2, min: 10, max: 80, code: "{LOINC}|39156-5"}}
  smoking: {{type: category, categories: [never, former, current], code: "{LOINC}|72166-2"}}
  crp: {{type: float, unit: mg/L, min: 0, code: "{LOINC}|1988-5"}}
  event: {{type: int, min: 0, max: 1}}
  sbp: {{type: float, unit: mmHg, min: 50, max: 260}}
  os_days: {{type: float, min: 0}}
  died: {{type: int, min: 0, max: 1}}
"""


def _study(name: str, target: str, outcomes: str, family: str = "linear") -> str:
    return (f"name: {name}\ndata: {{patients: patients.csv, schema: schema.yaml, outcomes: {outcomes}}}\n"
            f"target: {target}\nmodels:\n  - family: {family}\n"
            "evaluation: {folds: 3, repeats: 1, bootstrap: 0, coefficient_bootstrap: 0, report: false}\nseed: 0\n")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from pmed.study import run_study

    root = tmp_path_factory.mktemp("fhir-serve")
    df = make_clinical(240, seed=3).drop(columns=["diabetes"])
    rng = np.random.default_rng(3)
    # follow-up whose hazard rises with age: a survival target on the same patients
    t = rng.exponential(2000 * np.exp(-0.03 * (df["age"] - 55)))
    df["os_days"] = np.minimum(t, 1500).round(0) + 1
    df["died"] = (t < 1500).astype(int)
    df.to_csv(root / "patients.csv", index=False)
    (root / "schema.yaml").write_text(SCHEMA)
    models = root / "models"
    for name, target, outcomes, family in [
        ("fhir-binary", "{column: event, task: binary}", "[sbp, os_days, died]", "linear"),
        ("fhir-survival", "{task: survival, time: os_days, event: died, horizons: [365, 730], time_unit: days}",
         "[event, sbp]", "cox"),
        ("fhir-continuous", "{column: sbp, task: continuous}", "[event, os_days, died]", "linear"),
    ]:
        (root / f"{name}.yaml").write_text(_study(name, target, outcomes, family))
        run_study(root / f"{name}.yaml", models / name)
    app = create_app(models, f"sqlite:///{root / 'serve.sqlite'}")
    token = create_token(app.state.engine, role="clinician", user="cleo")
    return {"client": TestClient(app), "engine": app.state.engine, "auth": bearer(token), "models": models}


def _obs(i: int, patient: str, code: str, when: str, **value) -> dict:
    return {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
            "resource": {"resourceType": "Observation", "id": f"o{i}", "status": "final",
                         "code": {"coding": [{"system": LOINC, "code": code}]},
                         "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": when, **value}}


def _qty(value: float, code: str) -> dict:
    return {"valueQuantity": {"value": value, "unit": code, "system": UCUM, "code": code}}


def fhir_bundle() -> dict:
    """Two patients: ages in months and from birthDate, CRP in mg/dL and g/L (the model's unit: mg/L)."""
    smoker = {"valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "8517006",
                                                   "display": "Former smoker"}]}}
    never = {"valueCodeableConcept": {"text": "Never smoker"}}
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "fA", "gender": "female", "birthDate": "1950-01-01"}},
        {"resource": {"resourceType": "Patient", "id": "fB", "gender": "male", "birthDate": "1971-06-20"}},
        _obs(1, "fA", "30525-0", "2024-03-01", **_qty(744, "mo")),  # 62 years
        _obs(2, "fA", "39156-5", "2024-03-01", **_qty(31.5, "kg/m2")),
        _obs(3, "fA", "72166-2", "2024-03-01", **smoker),
        _obs(4, "fA", "1988-5", "2024-03-01", **_qty(0.84, "mg/dL")),  # 8.4 mg/L
        _obs(5, "fB", "39156-5", "2024-06-20", **_qty(23.0, "kg/m2")),
        _obs(6, "fB", "72166-2", "2024-06-20", **never),
        _obs(7, "fB", "1988-5", "2024-06-20", **_qty(0.0012, "g/L")),  # 1.2 mg/L
    ]}


# the same patients as JSON rows: fB's age is birthDate → its latest Observation, days / 365.25
AGE_B = (date(2024, 6, 20) - date(1971, 6, 20)).days / 365.25
ROWS = [{"patient_id": "fA", "age": 62.0, "sex": "F", "bmi": 31.5, "smoking": "former", "crp": 8.4},
        {"patient_id": "fB", "age": AGE_B, "sex": "M", "bmi": 23.0, "smoking": "never", "crp": 1.2}]


def _predictions(engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(Prediction))


def _post_fhir(c, name, auth, doc, **headers):
    return c.post(f"/api/models/{name}/predict", content=json.dumps(doc),
                  headers=auth | {"content-type": FHIR} | headers)


def test_binary_fhir_bundle_gives_risk_assessments_equal_to_the_json_route(served):
    c, auth = served["client"], served["auth"]
    plain = c.post("/api/models/fhir-binary/predict", json={"patients": ROWS}, headers=auth)
    assert plain.status_code == 200, plain.text
    before = _predictions(served["engine"])
    r = _post_fhir(c, "fhir-binary", auth, fhir_bundle())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == FHIR
    doc = r.json()
    Bundle.model_validate(doc)  # a valid R4B Bundle, the extra basis and identifier included
    assert doc["type"] == "collection" and len(doc["entry"]) == 2
    assert _predictions(served["engine"]) == before + 1  # stored as a JSON prediction is
    assert doc["identifier"] == {"system": "urn:pmed:prediction-id", "value": doc["identifier"]["value"]}
    assert len(doc["identifier"]["value"]) == 32
    model = plain.json()
    manifest = json.loads((served["models"] / "fhir-binary" / "model" / "manifest.json").read_text())
    for entry, p in zip(doc["entry"], model["predictions"], strict=True):
        ra = entry["resource"]
        assert ra["resourceType"] == "RiskAssessment" and ra["subject"] == {"reference": f"Patient/{p['patient_id']}"}
        # probabilityDecimal is a percentage (FHIR ras-2): 100 × the JSON route's probability
        assert ra["prediction"][0]["probabilityDecimal"] == pytest.approx(100 * p["probability"], abs=1e-4)
        assert 0 < ra["prediction"][0]["probabilityDecimal"] < 100
        assert "fhir-binary" in ra["method"]["text"]
        hashes = [b["identifier"]["value"] for b in ra["basis"]]
        assert hashes == [manifest["pipeline_sha256"], model["model_sha256"]]
    # the stored rows are the converted ones: the report of the FHIR prediction renders
    rep = c.get(f"/api/predictions/{doc['identifier']['value']}/report", params={"index": 1}, headers=auth)
    assert rep.status_code == 200 and "fB" in rep.text


def test_fhir_request_may_ask_for_the_json_answer(served):
    c, auth = served["client"], served["auth"]
    plain = c.post("/api/models/fhir-binary/predict", json={"patients": ROWS}, headers=auth).json()
    r = _post_fhir(c, "fhir-binary", auth, fhir_bundle(), accept="application/json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    got = [p["probability"] for p in r.json()["predictions"]]
    np.testing.assert_allclose(got, [p["probability"] for p in plain["predictions"]], rtol=0, atol=1e-12)
    # FHIR ranked at least as high as JSON: FHIR
    r = _post_fhir(c, "fhir-binary", auth, fhir_bundle(), accept=f"application/json, {FHIR}")
    assert r.headers["content-type"] == FHIR


def test_survival_fhir_bundle_gives_the_risk_at_each_horizon(served):
    c, auth = served["client"], served["auth"]
    plain = c.post("/api/models/fhir-survival/predict", json={"patients": ROWS}, headers=auth)
    assert plain.status_code == 200, plain.text
    r = _post_fhir(c, "fhir-survival", auth, fhir_bundle())
    assert r.status_code == 200, r.text
    doc = r.json()
    Bundle.model_validate(doc)
    for entry, p in zip(doc["entry"], plain.json()["predictions"], strict=True):
        preds = entry["resource"]["prediction"]
        assert len(preds) == 2  # the study's horizons 365 and 730 days
        risk = [x["probabilityDecimal"] for x in preds]
        assert risk == pytest.approx([100 * (1 - p["surv_365"]), 100 * (1 - p["surv_730"])], abs=1e-4)
        assert risk[0] < risk[1]  # more events by two years than by one
        start, end = (pd.Timestamp(preds[1]["whenPeriod"][k]) for k in ("start", "end"))
        assert (end - start).days == 730


def test_continuous_model_refuses_fhir_output_and_stores_nothing(served):
    c, auth = served["client"], served["auth"]
    before = _predictions(served["engine"])
    r = _post_fhir(c, "fhir-continuous", auth, fhir_bundle())
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    detail = r.json()["detail"]
    assert detail.startswith("Accept:") and "RiskAssessment needs a probability" in detail
    assert "continuous" in detail and "application/json" in r.json()["fix"]
    assert _predictions(served["engine"]) == before
    # its JSON answer to the same bundle: the predicted value
    r = _post_fhir(c, "fhir-continuous", auth, fhir_bundle(), accept="application/json")
    assert r.status_code == 200 and np.isfinite(r.json()["predictions"][0]["prediction"])
    assert _predictions(served["engine"]) == before + 1


def test_unconvertible_unit_names_the_column_and_stores_nothing(served):
    c, auth = served["client"], served["auth"]
    doc = fhir_bundle()
    doc["entry"][3]["resource"]["valueQuantity"] = {"value": 154, "system": UCUM, "code": "[lb_av]"}  # fA's BMI
    before = _predictions(served["engine"])
    r = _post_fhir(c, "fhir-binary", auth, doc)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["field"] == "bmi" and "[lb_av]" in body["detail"] and "kg/m2" in body["detail"]
    assert "entry[3]" in body["detail"] and "fA" not in r.text
    assert _predictions(served["engine"]) == before


def test_a_bundle_without_patients_or_of_no_bundle_type_is_a_422_and_stores_nothing(served):
    """fhir.resources' R4B Bundle takes any type and no entry: neither may reach the model (a 500)."""
    c, auth = served["client"], served["auth"]
    before = _predictions(served["engine"])
    r = _post_fhir(c, "fhir-binary", auth, {"resourceType": "Bundle", "type": "nonsense"})
    assert r.status_code == 422 and "'nonsense' is not a Bundle type" in r.json()["detail"]
    r = _post_fhir(c, "fhir-binary", auth, {"resourceType": "Bundle", "type": "collection"})
    assert r.status_code == 422 and "no Patient resource" in r.json()["detail"]
    doc = fhir_bundle()
    doc["entry"] = [e for e in doc["entry"] if e["resource"]["resourceType"] != "Patient"]
    r = _post_fhir(c, "fhir-binary", auth, doc)
    assert r.status_code == 422  # Observations referring to no Patient of the bundle
    assert _predictions(served["engine"]) == before
