"""``pmed serve``'s API on a small trained bundle: auth, registry, predictions, reports, PGx, audit."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient  # noqa: E402
from serve_helpers import NEW_IDS, bearer, expire, patient_rows, train_bundle  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from pmed.serve import create_app, create_token  # noqa: E402
from pmed.serve.db import Audit  # noqa: E402

PROBLEM = "application/problem+json"
# two samples of CYP2C19 (as tests/genomics/pgx/test_pgx_cli.py): P1 *1/*2, P2 a poor metabolizer
VCF = """##fileformat=VCFv4.2
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP1\tP2
chr10\t94775367\trs12769205\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1
chr10\t94781859\trs4244285\tG\tA\t.\tPASS\t.\tGT\t0/1\t1/1
chr10\t94842866\trs3758581\tA\tG\t.\tPASS\t.\tGT\t1/1\t1/1
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    paths = train_bundle(root)
    app = create_app(paths["models"], f"sqlite:///{root / 'serve.sqlite'}")
    engine = app.state.engine
    tokens = {"admin": create_token(engine, role="admin", user="ada"),
              "clinician": create_token(engine, role="clinician", user="cleo")}
    return {"app": app, "client": TestClient(app), "engine": engine, "tokens": tokens, "root": root, **paths}


def _audit_count(engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(Audit))


def _last_audit(engine) -> Audit:
    with Session(engine) as s:
        return s.scalars(select(Audit).order_by(Audit.id.desc()).limit(1)).one()


def test_import_pmed_loads_no_web_stack():
    code = ("import sys, pmed, pmed.serve, pmed.cli;"
            "print(','.join(m for m in ('fastapi', 'sqlalchemy', 'alembic', 'uvicorn', 'starlette') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_health_needs_no_token_and_the_rest_does(served):
    c, tok = served["client"], served["tokens"]
    r = c.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    for method, url in [("GET", "/api/models"), ("POST", "/api/models/test-event/predict"),
                        ("GET", "/api/audit"), ("GET", "/api/openapi.json"), ("GET", "/api/predictions/x/report")]:
        r = c.request(method, url)
        assert r.status_code == 401, url
        assert r.headers["content-type"] == PROBLEM and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["status"] == 401 and "Traceback" not in r.text
    assert c.get("/api/models", headers=bearer("pmed_not-a-token")).status_code == 401
    doc = c.get("/api/openapi.json", headers=bearer(tok["clinician"])).json()
    assert {"/api/models", "/api/models/{name}/predict", "/api/pgx/call", "/api/audit",
            "/api/predictions/{prediction_id}/report"} <= set(doc["paths"])
    assert "PredictRequest" in str(doc["paths"]["/api/models/{name}/predict"]["post"]["requestBody"])


def test_expired_token_401_and_clinician_403_on_admin_routes(served):
    c, engine = served["client"], served["engine"]
    old = create_token(engine, role="admin", user="old")
    assert c.get("/api/models", headers=bearer(old)).status_code == 200
    expire(engine, old)
    time.sleep(1.05)  # a worker rereads a token's row once it is a second old (RowCache)
    r = c.get("/api/models", headers=bearer(old))
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert _last_audit(engine).outcome == "expired-token" and _last_audit(engine).user == "old"
    clin = bearer(served["tokens"]["clinician"])
    assert c.get("/api/audit", headers=clin).status_code == 403
    r = c.post("/api/models", json={"path": str(served["bundle"])}, headers=clin)
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM


def test_startup_registration_and_admin_registration(served, tmp_path):
    c, admin = served["client"], bearer(served["tokens"]["admin"])
    models = c.get("/api/models", headers=admin).json()
    assert [m["name"] for m in models] == ["test-event"]  # the study's name: in study.yaml
    m = models[0]
    assert m["task"] == "binary" and m["target"] == "event" and len(m["sha256"]) == 64
    assert m["sha256"] == hashlib.sha256((served["bundle"] / "SHA256SUMS").read_bytes()).hexdigest()
    assert 0.5 < m["metrics"]["metrics"]["auroc"]["estimate"] < 1
    copy = tmp_path / "copy" / "model"
    shutil.copytree(served["bundle"], copy)
    r = c.post("/api/models", json={"path": str(copy), "name": "copy"}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["registered_by"] == "ada" and r.json()["sha256"] == m["sha256"]
    assert sorted(x["name"] for x in c.get("/api/models", headers=admin).json()) == ["copy", "test-event"]
    # a tampered bundle: refused, naming the file, and nothing registered
    bad = tmp_path / "bad" / "model"
    shutil.copytree(served["bundle"], bad)
    (bad / "manifest.json").write_text((bad / "manifest.json").read_text().replace('"binary"', '"continuous"'))
    r = c.post("/api/models", json={"path": str(bad), "name": "bad"}, headers=admin)
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert "manifest.json" in r.json()["detail"] and "SHA-256" in r.json()["detail"]
    r = c.post("/api/models", json={"path": str(tmp_path / "absent")}, headers=admin)
    assert r.status_code == 400 and r.json()["detail"].startswith("path:")
    assert sorted(x["name"] for x in c.get("/api/models", headers=admin).json()) == ["copy", "test-event"]


def test_predict_equals_pmed_predict(served):
    from pmed.study import load_bundle, predict_patients
    from pmed.study.predict import explain_patient, new_patient_features

    c = served["client"]
    r = c.post("/api/models/test-event/predict", json={"patients": patient_rows(served["new"])},
               headers=bearer(served["tokens"]["clinician"]))
    assert r.status_code == 200, r.text
    body = r.json()
    bundle = load_bundle(served["bundle"])
    ref = predict_patients(bundle, served["new"])
    got = pd.DataFrame(body["predictions"]).set_index("patient_id")
    assert list(got.index) == NEW_IDS == list(ref.index)
    np.testing.assert_allclose(got["probability"], ref["probability"], rtol=0, atol=1e-12)
    assert (got["predicted_class"] == ref["predicted_class"]).all()
    assert (got["prediction_set"] == ref["prediction_set"]).all()
    X = new_patient_features(bundle, served["new"])
    for p in body["predictions"]:
        f = explain_patient(bundle, X.loc[[p["patient_id"]]], top=5)
        assert 1 <= len(p["factors"]) <= 5
        assert [x["feature"] for x in p["factors"]] == list(f["feature"])
        np.testing.assert_allclose([x["contribution"] for x in p["factors"]], f["contribution"], atol=1e-12)
    assert body["model"] == "test-event" and len(body["prediction_id"]) == 32


def test_bad_patients_are_problems_naming_the_column(served):
    c, clin = served["client"], bearer(served["tokens"]["clinician"])
    rows = patient_rows(served["new"])
    url = "/api/models/test-event/predict"
    r = c.post(url, json={"patients": [{k: v for k, v in rows[0].items() if k != "bmi"}]}, headers=clin)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["field"] == "bmi" and "bmi" in r.json()["detail"]
    r = c.post(url, json={"patients": [dict(rows[0], age=500)]}, headers=clin)
    assert r.status_code == 422 and r.json()["field"] == "age" and "500" in r.json()["detail"]
    r = c.post(url, json={"patients": [dict(rows[0], smoking="daily")]}, headers=clin)
    assert r.status_code == 422 and r.json()["field"] == "smoking"
    r = c.post(url, json={"rows": rows}, headers=clin)  # not the request's shape
    assert r.status_code == 422 and r.json()["field"] == "patients"
    r = c.post(url, json={"patients": []}, headers=clin)
    assert r.status_code == 422 and r.json()["field"] == "patients"
    r = c.post(url, content=b"{not json", headers=clin | {"content-type": "application/json"})
    assert r.status_code == 422 and "Traceback" not in r.text
    r = c.post("/api/models/nope/predict", json={"patients": rows}, headers=clin)
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    assert c.get("/api/nothing", headers=clin).status_code == 404


def test_report_of_a_stored_prediction(served):
    c, clin = served["client"], bearer(served["tokens"]["clinician"])
    body = c.post("/api/models/test-event/predict", json={"patients": patient_rows(served["new"])},
                  headers=clin).json()
    pid = body["prediction_id"]
    for i in (0, 2):
        r = c.get(f"/api/predictions/{pid}/report", params={"index": i}, headers=clin)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        p = body["predictions"][i]
        assert p["patient_id"] in r.text and f"{100 * p['probability']:.1f}%" in r.text
    assert c.get(f"/api/predictions/{pid}/report", params={"index": 4}, headers=clin).status_code == 404
    assert c.get("/api/predictions/0123abc/report", headers=clin).status_code == 404


def test_pgx_call(served):
    c, clin = served["client"], bearer(served["tokens"]["clinician"])
    r = c.post("/api/pgx/call", files={"file": ("two.vcf", VCF.encode(), "text/plain")},
               data={"missing_to_ref": "true"}, headers=clin)
    assert r.status_code == 200, r.text
    calls = pd.DataFrame(r.json()["calls"])
    c19 = calls[calls["gene"] == "CYP2C19"].set_index("sample")
    assert c19.loc["P1", "diplotypes"] == "*1/*2" and c19.loc["P2", "phenotype"] == "Poor Metabolizer"
    recs = pd.DataFrame(r.json()["recommendations"])
    p2 = recs[(recs["sample"] == "P2") & (recs["drug"] == "clopidogrel")]
    assert p2["recommendation"].str.startswith("Avoid clopidogrel").any()
    assert r.json()["data_version"].startswith("pharmcat-3.1.1") and "source" not in r.json()
    r = c.post("/api/pgx/call", files={"file": ("x.vcf", b"patient_id,age\nA,3\n", "text/plain")}, headers=clin)
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM and "not a VCF" in r.json()["detail"]
    bad = VCF.replace("94775367", "notanumber").encode()
    r = c.post("/api/pgx/call", files={"file": ("bad.vcf", bad, "text/plain")}, headers=clin)
    assert r.status_code == 400 and "line 3" in r.json()["detail"]


def test_body_limit_413_and_rate_limit_429(served):
    app = create_app(served["models"], str(served["engine"].url), max_body_bytes=2000, rate_limit_per_minute=3,
                     init=False)
    c, clin = TestClient(app), bearer(served["tokens"]["clinician"])
    rows = patient_rows(served["new"])
    r = c.post("/api/models/test-event/predict", json={"patients": rows * 20}, headers=clin)
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    # a chunked body (no Content-Length) is cut off too
    r = c.post("/api/models/test-event/predict", content=(b"x" * 500 for _ in range(10)), headers=clin)
    assert r.status_code == 413
    codes = [c.get("/api/models", headers=clin).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = c.get("/api/models", headers=clin)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    # per token: another token is not limited by this one's requests
    assert c.get("/api/models", headers=bearer(served["tokens"]["admin"])).status_code == 200


def test_every_request_is_audited_without_patient_data(served):
    c, engine, tok = served["client"], served["engine"], served["tokens"]
    clin, admin = bearer(tok["clinician"]), bearer(tok["admin"])
    rows = patient_rows(served["new"])
    payload = json.dumps({"patients": rows}).encode()
    before = _audit_count(engine)
    requests = [
        (lambda: c.get("/api/models"), 401, None),
        (lambda: c.get("/api/audit", headers=clin), 403, "cleo"),
        (lambda: c.post("/api/models/test-event/predict", content=payload,
                        headers=clin | {"content-type": "application/json"}), 200, "cleo"),
        (lambda: c.post("/api/models/test-event/predict", json={"patients": [dict(rows[1], age=-4)]},
                        headers=clin), 422, "cleo"),
        (lambda: c.post("/api/models/nope/predict", json={"patients": rows}, headers=clin), 404, "cleo"),
    ]
    for send, code, user in requests:
        r = send()
        assert r.status_code == code
        last = _last_audit(engine)  # committed before the response came back
        assert (last.status_code, last.user) == (code, user)
    assert _audit_count(engine) == before + len(requests)
    audit = c.get("/api/audit", params={"limit": 5}, headers=admin).json()  # newest first
    assert [a["status_code"] for a in audit] == [404, 422, 200, 403, 401]
    ok = audit[2]
    assert ok["route"] == "/api/models/{name}/predict" and ok["model"] == "test-event"
    assert ok["model_sha256"] == c.get("/api/models", headers=admin).json()[0]["sha256"]
    assert ok["input_sha256"] == hashlib.sha256(payload).hexdigest()
    assert {a["outcome"] for a in audit} >= {"ok", "validation-error", "not-found-error", "forbidden"}
    # no patient ID nor value in any column of any row
    with Session(engine) as s:
        text = " ".join(str(getattr(a, col.name)) for a in s.scalars(select(Audit))
                        for col in Audit.__table__.columns)
    for pid in NEW_IDS + ["-4"]:
        assert pid not in text


def test_fhir_content_type_goes_through_the_fhir_hook(served, monkeypatch):
    pytest.importorskip("pmed.serve.fhir")
    c, clin = served["client"], bearer(served["tokens"]["clinician"])
    rows = patient_rows(served["new"])
    seen = {}

    def fake(doc, schema):  # stands in for pmed.serve.fhir.patients_from_fhir: the hook's contract
        seen["doc"], seen["id"] = doc, schema.id
        return pd.DataFrame(doc["rows"]).set_index(schema.id)

    monkeypatch.setattr("pmed.serve.fhir.patients_from_fhir", fake)
    # Accept: application/json: the JSON answer (without it a FHIR request gets RiskAssessments)
    r = c.post("/api/models/test-event/predict", content=json.dumps({"resourceType": "Bundle", "rows": rows}),
               headers=clin | {"content-type": "application/fhir+json", "accept": "application/json"})
    assert r.status_code == 200, r.text
    assert seen["doc"]["resourceType"] == "Bundle" and seen["id"] == "patient_id"
    plain = c.post("/api/models/test-event/predict", json={"patients": rows}, headers=clin).json()
    assert [p["probability"] for p in r.json()["predictions"]] == [p["probability"] for p in plain["predictions"]]
    # stored rows re-render: the report of a FHIR prediction works as any other
    assert c.get(f"/api/predictions/{r.json()['prediction_id']}/report", headers=clin).status_code == 200
    r = c.post("/api/models/test-event/predict", content=b"a,b\n1,2\n", headers=clin | {"content-type": "text/csv"})
    assert r.status_code == 415 and r.headers["content-type"] == PROBLEM


def test_a_bug_is_a_bare_500_audited_and_logged_without_its_message(served, monkeypatch, caplog):
    import pmed.serve.app as A

    def broken(bundle, df, recommendations=None):
        raise KeyError(f"patient {df.iloc[0]['patient_id']} broke it")  # a message quoting data

    monkeypatch.setattr(A, "_score", broken)
    c, clin = served["client"], bearer(served["tokens"]["clinician"])
    with caplog.at_level("INFO", logger="pmed.serve"):
        r = c.post("/api/models/test-event/predict", json={"patients": patient_rows(served["new"])}, headers=clin)
    assert r.status_code == 500 and r.headers["content-type"] == PROBLEM and "NEWPT" not in r.text
    assert "unhandled KeyError" in caplog.text and "NEWPT" not in caplog.text
    assert "POST /api/models/{name}/predict 500" in caplog.text
    last = _last_audit(served["engine"])
    assert (last.status_code, last.outcome, last.user) == (500, "error", "cleo")


def test_find_bundles_skips_staging_folders(served, tmp_path):
    """A study still running stages its output in '.name.xxxx.tmp': that half-written copy is not a bundle to serve."""
    from pmed.serve.registry import find_bundles

    shutil.copytree(served["bundle"], tmp_path / "a" / "model")
    shutil.copytree(served["bundle"], tmp_path / ".b.x1y2.tmp" / "model")
    assert find_bundles(tmp_path) == [tmp_path / "a" / "model"]
