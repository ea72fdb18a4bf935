"""Bad requests to ``pmed serve`` (issue 19, point 7): each is a 4xx ``application/problem+json``
whose detail and ``field`` name what is wrong, with no patient ID in the answer, and nothing
written to the registry: the ``models`` and ``predictions`` tables keep their rows, and the only
new row is the request's audit row.

(tests/serve/test_app.py checks the same refusals' messages in more detail; this file adds the
database side.)
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient  # noqa: E402
from serve_helpers import NEW_IDS, bearer, expire, patient_rows, train_bundle  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from pmed.serve import create_app, create_token  # noqa: E402
from pmed.serve.db import Audit, Model, Prediction  # noqa: E402

PROBLEM = "application/problem+json"
URL = "/api/models/test-event/predict"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-requests")
    paths = train_bundle(root)
    app = create_app(paths["models"], f"sqlite:///{root / 'serve.sqlite'}", rate_limit_per_minute=10_000)
    engine = app.state.engine
    tokens = {"admin": create_token(engine, role="admin", user="ada"),
              "clinician": create_token(engine, role="clinician", user="cleo")}
    c = TestClient(app)
    # one stored prediction, so that "unchanged" is checked against a table that is not empty
    ok = c.post(URL, json={"patients": patient_rows(paths["new"])}, headers=bearer(tokens["clinician"]))
    assert ok.status_code == 200, ok.text
    return {"client": c, "engine": engine, "tokens": tokens, "clin": bearer(tokens["clinician"]),
            "rows": patient_rows(paths["new"]), **paths}


def _counts(engine) -> dict[str, int]:
    with Session(engine) as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in (Model, Prediction, Audit)}


def refused(served, send, status: int, field: str) -> dict:
    """Send one bad request; check the problem, that it names ``field``, and that only the audit grew."""
    before = _counts(served["engine"])
    r = send()
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["field"] == field
    assert field in body["detail"]
    for pid in NEW_IDS:  # every request below carries these IDs
        assert pid not in r.text
    assert "Traceback" not in r.text
    after = _counts(served["engine"])
    assert after == before | {"audit": before["audit"] + 1}
    with Session(served["engine"]) as s:
        last = s.scalars(select(Audit).order_by(Audit.id.desc()).limit(1)).one()
    assert last.status_code == status
    return body


def test_unknown_model(served):
    c = served["client"]
    body = refused(served, lambda: c.post("/api/models/nope/predict", json={"patients": served["rows"]},
                                          headers=served["clin"]), 404, "name")
    assert "'nope'" in body["detail"] and "GET /api/models" in body["fix"]


def test_patients_missing_a_required_column(served):
    c, rows = served["client"], [{k: v for k, v in r.items() if k != "bmi"} for r in served["rows"]]
    body = refused(served, lambda: c.post(URL, json={"patients": rows}, headers=served["clin"]), 422, "bmi")
    assert body["type"] == "urn:pmed:problem:validation-error"


def test_value_out_of_range(served):
    c, rows = served["client"], [dict(r) for r in served["rows"]]
    rows[2]["age"] = 500
    body = refused(served, lambda: c.post(URL, json={"patients": rows}, headers=served["clin"]), 422, "age")
    # the line, never the patient: the third patient is line 4 of the equivalent CSV
    assert "500" in body["detail"] and "0–120" in body["detail"] and "lines 4" in body["detail"]


def _fhir(doc) -> dict:
    return {"content": json.dumps(doc).encode() if not isinstance(doc, bytes) else doc}


def test_malformed_fhir_bundle(served):
    c = served["client"]
    fhir = served["clin"] | {"content-type": "application/fhir+json"}
    bad_date = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": NEW_IDS[0], "birthDate": "last spring"}}]}
    body = refused(served, lambda: c.post(URL, headers=fhir, **_fhir(bad_date)), 422, "entry[0].resource.birthDate")
    assert "FHIR R4B Bundle" in body["fix"]
    # not JSON at all
    refused(served, lambda: c.post(URL, headers=fhir, **_fhir(b'{"resourceType": "Bundle", ')), 400, "body")
    # (a unit pmed cannot convert: tests/serve/test_api_fhir.py, whose schema has LOINC codes)

def test_non_vcf_upload(served):
    c = served["client"]
    table = ("patient_id,age\n" + "\n".join(f"{p},40" for p in NEW_IDS) + "\n").encode()
    body = refused(served, lambda: c.post("/api/pgx/call", files={"file": ("x.vcf", table, "text/plain")},
                                          headers=served["clin"]), 400, "file")
    assert "not a VCF" in body["detail"]


def test_wrong_token(served):
    c = served["client"]
    body = refused(served, lambda: c.post(URL, json={"patients": served["rows"]},
                                          headers=bearer("pmed_" + "x" * 40)), 401, "Authorization")
    assert "not known" in body["detail"]


def test_expired_token(served):
    c, engine = served["client"], served["engine"]
    old = create_token(engine, role="clinician", user="old")
    expire(engine, old)
    body = refused(served, lambda: c.post(URL, json={"patients": served["rows"]}, headers=bearer(old)),
                   401, "Authorization")
    assert "expired" in body["detail"]


def test_registering_a_folder_that_is_not_there(served, tmp_path):
    c, admin = served["client"], bearer(served["tokens"]["admin"])
    refused(served, lambda: c.post("/api/models", json={"path": str(tmp_path / "absent")}, headers=admin),
            400, "path")
    # a name longer than the file system allows (schemathesis found it a 500 before)
    refused(served, lambda: c.post("/api/models", json={"path": "x" * 5000}, headers=admin), 400, "path")
