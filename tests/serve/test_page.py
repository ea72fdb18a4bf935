"""The clinician page of ``pmed serve`` (``GET /``): its API routes, and the whole flow in Chromium."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient  # noqa: E402
from serve_helpers import bearer, train_bundle  # noqa: E402

from pmed.serve import create_app, create_token  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
MODEL = "test-event"
BLOCK_MODEL = "test-prs"  # reads the column prs_cad of a block 'prs' besides the patient table
FHIR_MODEL = "test-fhir"  # its schema codes the columns in LOINC (tests/serve/test_api_fhir.py)
TABLET = {"width": 820, "height": 1180}  # a tablet in portrait


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from conftest import SCHEMA_YAML, make_clinical, write_study
    from pmed.study import run_study

    root = tmp_path_factory.mktemp("page")
    paths = train_bundle(root)
    # a second, continuous model (systolic blood pressure) beside the binary one
    run_study(write_study(root / "data", target="sbp", task="continuous", models=("linear",)),
              paths["models"] / "sbp")
    # and a survival model (as tests/serve/test_api_fhir.py): hazard rising with age, 2 horizons
    surv = root / "surv"
    surv.mkdir()
    df = make_clinical(240, seed=3)
    t = np.random.default_rng(3).exponential(2000 * np.exp(-0.03 * (df["age"] - 55)))
    df["os_days"], df["died"] = np.minimum(t, 1500).round(0) + 1, (t < 1500).astype(int)
    df.to_csv(surv / "patients.csv", index=False)
    (surv / "schema.yaml").write_text(SCHEMA_YAML + "  os_days: {type: float, min: 0}\n"
                                      "  died: {type: int, min: 0, max: 1}\n")
    (surv / "study.yaml").write_text(
        "name: test-survival\ndata: {patients: patients.csv, schema: schema.yaml, outcomes: [event, sbp]}\n"
        "target: {task: survival, time: os_days, event: died, horizons: [365, 730], time_unit: days}\n"
        "models:\n  - family: cox\nevaluation: {folds: 3, repeats: 1, bootstrap: 0, coefficient_bootstrap: 0, "
        "report: false}\nseed: 0\n")
    run_study(surv / "study.yaml", paths["models"] / "survival")
    # and a binary model that also reads a block (a polygenic score, prs_cad, as tests/study/test_run.py),
    # made to matter: the score is higher in patients with the event
    prs = root / "prs"
    prs.mkdir()
    df = make_clinical()
    df.to_csv(prs / "patients.csv", index=False)
    (prs / "schema.yaml").write_text(SCHEMA_YAML)
    score = np.random.default_rng(5).normal(size=len(df)) + 1.5 * df["event"]
    pd.DataFrame({"patient_id": df["patient_id"], "prs_cad": score}).to_csv(prs / "prs.csv", index=False)
    study = write_study(prs, models=("linear",))
    study.write_text(study.read_text().replace("name: test-event", f"name: {BLOCK_MODEL}").replace(
        "  outcomes: [sbp]", "  outcomes: [sbp]\n  blocks: {prs: prs.csv}"))
    run_study(study, paths["models"] / "prs")
    app = create_app(paths["models"], f"sqlite:///{root / 'serve.sqlite'}")
    token = create_token(app.state.engine, role="clinician", user="cleo")
    # patients of the training table with every value present (the form's fields filled one by one)
    train = pd.read_csv(root / "data" / "patients.csv").drop(columns=["event", "sbp"]).dropna()
    return {"app": app, "client": TestClient(app), "token": token, "train": train,
            "sbp_bundle": paths["models"] / "sbp" / "model", "surv_bundle": paths["models"] / "survival" / "model",
            "prs_bundle": paths["models"] / "prs" / "model",
            **paths}


def _percent(p: float) -> str:
    # as the page writes a probability (page.js pct: one decimal)
    return f"{100 * p:.1f}%"


def test_page_is_static_html_with_labels_and_no_data(served):
    c = served["client"]
    r = c.get("/")  # no token
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for target in ("token", "model", "patient-id", "csv", "fhir", "vcf", "missing-to-ref"):
        assert f'<label for="{target}">' in html and f'id="{target}"' in html, target
    # nothing of a patient nor of a model: those come from the API with the token
    assert "P0000" not in html and "NEWPT" not in html and MODEL not in html
    assert not re.search(r"\b(age|bmi|smoking|crp)\b", html)
    assert "http://" not in html and "https://" not in html  # no CDN: everything is served here
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    for name, ctype in [("page.js", "text/javascript"), ("page.css", "text/css")]:
        s = c.get(f"/static/{name}")
        assert s.status_code == 200 and s.headers["content-type"].startswith(ctype) and len(s.content) > 1000
        assert "http://" not in s.text and "https://" not in s.text
    assert c.get("/static/app.py").status_code == 404
    assert c.get("/static/..%2Fapp.py").status_code == 404


def test_schema_and_population_routes(served):
    from pmed.study import load_bundle

    c, tok = served["client"], served["token"]
    for url in (f"/api/models/{MODEL}/schema", f"/api/models/{MODEL}/population?value=0.2"):
        r = c.get(url)
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    doc = c.get(f"/api/models/{MODEL}/schema", headers=bearer(tok)).json()
    assert doc["task"] == "binary" and doc["target"] == "event" and doc["id"] == "patient_id"
    assert doc["confidence_level"] == 0.9 and doc["blocks"] == [] and doc["treatment"] is None
    cols = {c_["name"]: c_ for c_ in doc["columns"]}
    # the training schema (tests/conftest.py SCHEMA_YAML) without the target and the other outcome
    assert list(cols) == ["age", "sex", "bmi", "smoking", "diabetes", "crp"]
    assert (cols["age"]["unit"], cols["age"]["min"], cols["age"]["max"]) == ("years", 0.0, 120.0)
    assert cols["smoking"]["categories"] == ["never", "former", "current"] and cols["diabetes"]["type"] == "bool"
    assert cols["crp"]["max"] is None and all(c_["feature"] for c_ in cols.values())
    assert c.get("/api/models/nope/schema", headers=bearer(tok)).status_code == 404

    bundle = load_bundle(served["bundle"])
    got = [c.get(f"/api/models/{MODEL}/population", params={"value": v}, headers=bearer(tok)).json()["percentile"]
           for v in (0.0, 0.1, 0.25, 0.5, 1.0)]
    assert got == pytest.approx([bundle.percentile(v) for v in (0.0, 0.1, 0.25, 0.5, 1.0)])
    assert got[0] == 0 and got[-1] == 100 and np.all(np.diff(got) >= 0)
    r = c.get(f"/api/models/{MODEL}/population", params={"value": "x"}, headers=bearer(tok))
    assert r.status_code == 422
    r = c.get(f"/api/models/{MODEL}/population", params={"value": "nan"}, headers=bearer(tok))
    assert r.status_code == 200 and r.json() == {"value": None, "percentile": None}  # strict JSON
    # the two routes are documented (behind the token); the page itself is not an API route
    paths = c.get("/api/openapi.json", headers=bearer(tok)).json()["paths"]
    assert {"/api/models/{name}/schema", "/api/models/{name}/population"} <= set(paths)
    assert "/" not in paths and not any(p_.startswith("/static") for p_ in paths)


def test_schema_lists_the_block_columns_the_api_takes_inline(served):
    from pmed.study import load_bundle

    c, tok = served["client"], served["token"]
    doc = c.get(f"/api/models/{BLOCK_MODEL}/schema", headers=bearer(tok)).json()
    assert doc["blocks"] == ["prs"]
    cols = {c_["name"]: c_ for c_ in doc["columns"]}
    assert list(cols) == ["age", "sex", "bmi", "smoking", "diabetes", "crp", "prs_cad"]
    assert [n for n, c_ in cols.items() if c_["block"]] == ["prs_cad"]
    # the block column: the training data's spec of the feature, never required, null allowed
    spec = load_bundle(served["prs_bundle"]).manifest["feature_specs"]["prs_cad"]
    assert spec["type"] == "float" and "min" not in spec
    assert cols["prs_cad"] == {"name": "prs_cad", "type": "float", "unit": None, "min": None, "max": None,
                               "categories": None, "required": False, "nullable": True, "description": None,
                               "feature": True, "block": True}
    assert cols["age"]["block"] is False and cols["age"]["required"] is True
    # a model without blocks: no such column
    plain = c.get(f"/api/models/{MODEL}/schema", headers=bearer(tok)).json()["columns"]
    assert not any(c_["block"] for c_ in plain)
    # what the page sends: the block column beside the patient's, null when unknown; without it, 422
    row = json.loads(served["train"].iloc[[0]].to_json(orient="records"))[0]
    url = f"/api/models/{BLOCK_MODEL}/predict"
    r = c.post(url, json={"patients": [row | {"prs_cad": None}]}, headers=bearer(tok))
    assert r.status_code == 200 and 0 < r.json()["predictions"][0]["probability"] < 1
    r = c.post(url, json={"patients": [row]}, headers=bearer(tok))
    assert r.status_code == 422 and "needs block(s) prs" in r.text


# ---------------------------------------------------------------------------------------------- Chromium


@pytest.fixture(scope="module")
def server(served):
    uvicorn = pytest.importorskip("uvicorn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(served["app"], host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not th.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    th.join(10)


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("playwright")
    if not CHROMIUM.exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser, url: str):
    page = browser.new_page(viewport=TABLET)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, errors


def _sign_in(page, token: str) -> None:
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def _model_page(browser, server: str, token: str, model: str, info: str):
    """A signed-in page showing ``model``'s form (the first model's form first, then the switch)."""
    from playwright.sync_api import expect

    page, errors = _open(browser, server + "/")
    _sign_in(page, token)
    expect(page.get_by_label("Patient ID")).to_be_visible()  # the first model's form
    page.get_by_label("Model", exact=True).select_option(model)
    expect(page.locator("#model-info")).to_contain_text(info)
    return page, errors


def _fill_from_csv(page, row) -> None:
    """Fill the form from a one-row CSV upload, as a clinician would."""
    buf = io.StringIO()
    row.to_frame().T.to_csv(buf, index=False)
    page.get_by_label(re.compile("^Fill from a CSV file")).set_input_files(
        {"name": "one.csv", "mimeType": "text/csv", "buffer": buf.getvalue().encode()})


def _expected(predict_patients, bundle, row):
    """``pmed predict``'s answer for the row, typed as the training table."""
    return predict_patients(bundle, row.to_frame().T.astype(
        {"age": float, "bmi": float, "crp": float, "diabetes": int})).iloc[0]


def _label(col: str, unit: str | None) -> str:
    return f"{col} ({unit})" if unit else col


def test_page_predicts_as_predict_patients(served, server, browser, tmp_path):
    from playwright.sync_api import expect

    from pmed.study import explain_patient, load_bundle, predict_patients
    from pmed.study.predict import new_patient_features

    page, errors = _open(browser, server + "/")
    _sign_in(page, served["token"])
    expect(page.get_by_label("Model", exact=True)).to_have_value(MODEL)
    expect(page.get_by_label("age (years)")).to_be_visible()
    page.get_by_label("Model", exact=True).select_option(MODEL)  # already shown: the form stays as it is
    expect(page.locator("#model-info")).to_contain_text("binary model of event")
    assert page.evaluate("sessionStorage.getItem('pmed.serve.token')") == served["token"]
    assert page.evaluate("localStorage.length") == 0

    row = served["train"].iloc[0]
    page.get_by_label("Patient ID").fill(str(row["patient_id"]))
    units = {"age": "years", "bmi": "kg/m2", "crp": "mg/L"}
    for col in ("age", "bmi", "crp"):
        field = page.get_by_label(_label(col, units[col]), exact=True)
        assert field.get_attribute("type") == "number" and field.get_attribute("step") == "any"
        field.fill(str(row[col]))
    assert page.get_by_label("age (years)").get_attribute("max") == "120"
    page.get_by_label("sex", exact=True).select_option(str(row["sex"]))
    page.get_by_label("smoking", exact=True).select_option(str(row["smoking"]))
    page.get_by_label("diabetes", exact=True).select_option(str(int(row["diabetes"])))
    page.get_by_role("button", name="Predict", exact=True).click()

    expected = predict_patients(served["bundle"], row.to_frame().T.astype({"age": float, "bmi": float,
                                                                            "crp": float, "diabetes": int}))
    p = float(expected["probability"].iloc[0])
    expect(page.locator("#prediction-value")).to_have_text(_percent(p))
    # the population position: bundle.percentile, rounded, with its ordinal suffix
    bundle = load_bundle(served["bundle"])
    expect(page.locator("#population")).to_have_text(re.compile(r"^\d+(st|nd|rd|th) percentile$"))
    shown = int(re.match(r"\d+", page.locator("#population").inner_text()).group())
    assert abs(shown - bundle.percentile(p)) <= 0.5
    # the factors: explain_patient's, in its order, in words
    want = explain_patient(bundle, new_patient_features(bundle, row.to_frame().T.astype(
        {"age": float, "bmi": float, "crp": float, "diabetes": int})), top=5)
    factors = page.locator("#factors li").all_inner_texts()
    assert len(factors) == len(want) > 0
    for text, (_, f) in zip(factors, want.iterrows(), strict=True):
        verb = "raises" if f["contribution"] > 0 else "lowers"
        if abs(f["contribution"]) < 0.005:
            assert text.startswith(f"{f['feature']} = ") and "changes the predicted probability by less than" in text
        else:
            assert text.startswith(f"{f['feature']} = ") and text.endswith(
                f"{verb} the predicted probability by {abs(f['contribution']) * 100:.0f} percentage points"), text
    assert re.match(r"^90% prediction set: \{[01, ]*\}$", page.locator("#prediction-range").inner_text())

    # the full report: fetched with the token, opened as a blob: URL (no token in any URL)
    page.get_by_role("button", name="Open the full report").click()
    link = page.get_by_role("link", name="Full report (new tab)")
    expect(link).to_be_visible(timeout=60_000)
    href = link.get_attribute("href")
    assert href.startswith("blob:")
    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab_errors: list[str] = []
    tab.on("console", lambda m: tab_errors.append(m.text) if m.type == "error" else None)
    tab.wait_for_load_state()
    assert tab.url == href and "Probability that event = 1" in tab.content()
    # the report's figures (data: images) load under the page's Content-Security-Policy
    assert tab.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert tab.evaluate("document.images.length") >= 1 and tab_errors == []
    tab.close()

    # no horizontal scrolling on a tablet
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    shot = tmp_path / "answer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # a CSV row read in the browser fills the form: the next training patient
    row2 = served["train"].iloc[1]
    buf = io.StringIO()
    row2.to_frame().T.to_csv(buf, index=False)
    page.get_by_label(re.compile("^Fill from a CSV file")).set_input_files(
        {"name": "one.csv", "mimeType": "text/csv", "buffer": buf.getvalue().encode()})
    expect(page.get_by_label("Patient ID")).to_have_value(str(row2["patient_id"]))
    page.get_by_role("button", name="Predict", exact=True).click()
    p2 = float(predict_patients(served["bundle"], row2.to_frame().T.astype(
        {"age": float, "bmi": float, "crp": float, "diabetes": int}))["probability"].iloc[0])
    expect(page.locator("#prediction-value")).to_have_text(_percent(p2))

    # PGx: the VCF of tests/serve/test_app.py (P1 CYP2C19 *1/*2, P2 a poor metabolizer)
    from test_app import VCF

    vcf = tmp_path / "two.vcf"
    vcf.write_text(VCF)
    page.get_by_label("GRCh38 VCF (plain or gzipped)").set_input_files(str(vcf))
    page.get_by_label("Positions absent from the VCF are reference").check()
    page.get_by_role("button", name="Call star alleles").click()
    expect(page.locator("#pgx-result")).to_be_visible(timeout=60_000)
    cells = "(sel) => Array.from(document.querySelectorAll(sel + ' tbody tr'), r => Array.from(r.cells, c => c.textContent))"
    calls = {(r[0], r[1]): r for r in page.evaluate(cells, "#pgx-calls")}
    assert calls[("P1", "CYP2C19")][2] == "*1/*2" and calls[("P2", "CYP2C19")][3] == "Poor Metabolizer"
    recs = page.evaluate(cells, "#pgx-recs")
    assert any(r[0] == "P2" and r[1] == "clopidogrel" and r[2].startswith("Avoid clopidogrel") for r in recs)
    # the next prediction of a patient whose ID is one of the VCF's samples carries its recommendations
    # (the treatment options' pgx_flag; tests/study/test_treatment_options.py); another patient's none
    expect(page.locator("#pgx-applied")).to_contain_text("one of the VCF's samples")
    for pid, wanted in (("P2", True), ("NOT-IN-VCF", False)):
        page.get_by_label("Patient ID").fill(pid)
        with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/predict")) as req:
            page.get_by_role("button", name="Predict", exact=True).click()
        sent = json.loads(req.value.post_data)
        expect(page.locator("#prediction-meta")).to_contain_text("prediction")
        if wanted:
            assert {r["sample"] for r in sent["pgx_recommendations"]} == {"P2"}
            assert any(r["drug"] == "clopidogrel" for r in sent["pgx_recommendations"])
        else:
            assert "pgx_recommendations" not in sent
    assert errors == []
    page.close()


def test_page_shows_the_401_of_a_wrong_token(served, server, browser):
    from playwright.sync_api import expect

    # the API's own answer to this token, whatever its wording
    api = served["client"].get("/api/models", headers=bearer("pmed_not-a-token"))
    assert api.status_code == 401
    page, errors = _open(browser, server + "/")
    _sign_in(page, "pmed_not-a-token")
    problem = page.get_by_role("alert")
    expect(problem).to_contain_text(f"401 {api.json()['title']}: {api.json()['detail']}")
    expect(page.get_by_label("Access token")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    # the browser's own note of the failed request; nothing else (no script error)
    assert all("401" in e for e in errors), errors
    page.close()


def test_page_continuous_model_shows_prediction_and_interval(served, server, browser):
    from playwright.sync_api import expect

    from pmed.study import predict_patients

    page, errors = _model_page(browser, server, served["token"], "test-sbp", "continuous model of sbp")
    # the form of the second model: its schema has no 'sbp' (the target) nor 'event' (an outcome)
    assert page.locator("#fields [data-column]").evaluate_all("els => els.map(e => e.dataset.column)") == [
        "age", "sex", "bmi", "smoking", "diabetes", "crp"]
    row = served["train"].iloc[2]
    _fill_from_csv(page, row)
    expect(page.locator("#csv-note")).to_contain_text("Read 7 column(s)")
    page.get_by_role("button", name="Predict", exact=True).click()
    want = _expected(predict_patients, served["sbp_bundle"], row)
    # as page.js formats them: 6 significant digits, the interval's ends with 4
    expect(page.locator("#prediction-value")).to_have_text(f"{want['prediction']:.6g}")
    expect(page.locator("#prediction-range")).to_have_text(
        f"90% interval: {want['interval_low']:.4g}–{want['interval_high']:.4g}")
    assert want["interval_low"] < want["prediction"] < want["interval_high"]
    expect(page.locator("#population")).to_have_text(re.compile(r"^\d+(st|nd|rd|th) percentile$"))
    assert page.locator("#factors li").count() >= 1 and errors == []
    page.close()


def test_page_survival_model_shows_risk_and_survival_at_horizons(served, server, browser):
    from playwright.sync_api import expect

    from pmed.study import predict_patients

    page, errors = _model_page(browser, server, served["token"], "test-survival", "survival model")
    row = served["train"].iloc[3]
    _fill_from_csv(page, row)
    expect(page.get_by_label("Patient ID")).to_have_value(str(row["patient_id"]))
    page.get_by_role("button", name="Predict", exact=True).click()
    want = _expected(predict_patients, served["surv_bundle"], row)
    expect(page.locator("#prediction-value")).to_have_text(f"{want['risk']:.3g}")
    expect(page.locator("#survival")).to_be_visible()
    table = page.locator("#survival tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent))")
    surv = sorted(c for c in want.index if c.startswith("surv_") and not c.endswith(("_low", "_high")))
    assert [r[0] for r in table] == [c[5:] for c in surv] and len(table) == 2
    assert [r[1] for r in table] == [_percent(want[c]) for c in surv]
    # survival falls with the horizon
    assert want[surv[0]] > want[surv[1]]
    assert page.locator("#factors li").count() >= 1 and errors == []
    page.close()


def test_page_sends_the_block_columns_and_predicts_as_predict_patients(served, server, browser, tmp_path):
    from playwright.sync_api import expect

    from pmed.study import predict_patients

    page, errors = _model_page(browser, server, served["token"], BLOCK_MODEL, "also reads data blocks (prs)")
    summary = page.locator("#block-summary")
    expect(summary).to_have_text("Other model inputs (from blocks: prs) \u2014 1 column; leave empty when unknown")
    prs = page.get_by_label("prs_cad", exact=True)
    expect(prs).to_be_hidden()  # collapsed
    summary.click()
    assert prs.get_attribute("type") == "number" and prs.get_attribute("min") is None

    def want(row, score):
        """predict_patients with the block given as a file (the command line's way)."""
        block = tmp_path / f"prs_{row['patient_id']}.csv"
        pd.DataFrame({"patient_id": [row["patient_id"]], "prs_cad": [score]}).to_csv(block, index=False)
        patients = row.to_frame().T.astype({"age": float, "bmi": float, "crp": float, "diabetes": int})
        return float(predict_patients(served["prs_bundle"], patients, blocks={"prs": block})["probability"].iloc[0])

    def predict():
        with page.expect_response(lambda r: r.url.endswith(f"/api/models/{BLOCK_MODEL}/predict")) as resp:
            page.get_by_role("button", name="Predict", exact=True).click()
        assert resp.value.status == 200
        return resp.value

    # typed in: every field, the block's too
    row = served["train"].iloc[4]
    page.get_by_label("Patient ID").fill(str(row["patient_id"]))
    for col, unit in (("age", "years"), ("bmi", "kg/m2"), ("crp", "mg/L")):
        page.get_by_label(_label(col, unit), exact=True).fill(str(row[col]))
    for col in ("sex", "smoking"):
        page.get_by_label(col, exact=True).select_option(str(row[col]))
    page.get_by_label("diabetes", exact=True).select_option(str(int(row["diabetes"])))
    prs.fill("2.5")
    resp = predict()
    assert resp.request.post_data_json["patients"][0]["prs_cad"] == 2.5
    p = want(row, 2.5)
    assert resp.json()["predictions"][0]["probability"] == pytest.approx(p, rel=1e-9)
    expect(page.locator("#prediction-value")).to_have_text(_percent(p))
    # the score matters: unknown (imputed) gives another answer, so the value was not dropped
    assert _percent(p) != _percent(want(row, np.nan))

    # a CSV row whose header holds the block column fills it too
    row2 = served["train"].iloc[5]
    _fill_from_csv(page, pd.concat([row2, pd.Series({"prs_cad": -0.75})]))
    expect(page.locator("#csv-note")).to_contain_text("Read 8 column(s)")
    expect(prs).to_have_value("-0.75")
    resp = predict()
    p2 = want(row2, -0.75)
    assert resp.json()["predictions"][0]["probability"] == pytest.approx(p2, rel=1e-9)
    expect(page.locator("#prediction-value")).to_have_text(_percent(p2))
    assert errors == []
    page.close()


@pytest.fixture(scope="module")
def fhir_model(served, tmp_path_factory):
    """A binary model whose schema codes its columns in LOINC, registered beside the others.

    The models of ``served`` have uncoded schemas, from which a FHIR Bundle fills only age and sex;
    this one is trained as tests/serve/test_api_fhir.py trains its models.
    """
    pytest.importorskip("fhir.resources")
    from test_api_fhir import SCHEMA, _study

    from conftest import make_clinical
    from pmed.serve.registry import register_bundle
    from pmed.study import run_study

    root = tmp_path_factory.mktemp("page-fhir")
    df = make_clinical(240, seed=3).drop(columns=["diabetes"])
    t = np.random.default_rng(3).exponential(2000 * np.exp(-0.03 * (df["age"] - 55)))
    df["os_days"], df["died"] = np.minimum(t, 1500).round(0) + 1, (t < 1500).astype(int)
    df.to_csv(root / "patients.csv", index=False)
    (root / "schema.yaml").write_text(SCHEMA)
    (root / "study.yaml").write_text(_study(FHIR_MODEL, "{column: event, task: binary}", "[sbp, os_days, died]"))
    run_study(root / "study.yaml", root / "out")
    register_bundle(served["app"].state.engine, root / "out" / "model")
    return root / "out" / "model"


def test_page_predicts_from_a_fhir_bundle(served, fhir_model, server, browser):
    from playwright.sync_api import expect
    from test_api_fhir import FHIR, _obs, _qty, fhir_bundle

    from pmed.study import load_bundle, predict_patients

    c, tok = served["client"], served["token"]

    def api_answer(doc):
        """The JSON route's answer to the same Bundle (a FHIR request asking for JSON)."""
        return c.post(f"/api/models/{FHIR_MODEL}/predict", content=json.dumps(doc),
                      headers=bearer(tok) | {"content-type": FHIR, "accept": "application/json"})

    def upload(doc, name):
        """Choose a file of the Bundle in the page's FHIR input; the page's request to the API."""
        data = json.dumps(doc).encode()
        with page.expect_request(lambda r: r.url.endswith(f"/api/models/{FHIR_MODEL}/predict")) as req:
            field.set_input_files({"name": name, "mimeType": FHIR, "buffer": data})
        assert req.value.post_data_buffer == data  # sent as it is, read in the browser
        headers = req.value.all_headers()
        assert headers["content-type"] == FHIR and headers["accept"] == "application/json"
        return req.value.response()

    page, errors = _model_page(browser, server, tok, FHIR_MODEL, "binary model of event")
    expect(page.get_by_label("age (a)", exact=True)).to_be_visible()  # its form (test-event's age is in years)
    field = page.get_by_label("Or predict from a FHIR Bundle (JSON: Patient and Observations)", exact=True)
    assert field.get_attribute("accept") == ".json,application/fhir+json,application/json"

    # a new patient (not of the training table) as a Patient and LOINC-coded Observations
    new = pd.read_csv(served["new"]).iloc[0]
    pid, when = new["patient_id"], "2024-05-02"
    doc = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": pid, "gender": {"F": "female", "M": "male"}[new["sex"]]}},
        _obs(1, pid, "30525-0", when, **_qty(float(new["age"]), "a")),
        _obs(2, pid, "39156-5", when, **_qty(float(new["bmi"]), "kg/m2")),
        _obs(3, pid, "72166-2", when, valueCodeableConcept={"text": new["smoking"]}),
        _obs(4, pid, "1988-5", when, **_qty(float(new["crp"]), "mg/L")),
    ]}
    want = api_answer(doc)
    assert want.status_code == 200, want.text
    p = want.json()["predictions"][0]["probability"]
    # the equivalent row through pmed predict
    row = pd.DataFrame([{"patient_id": pid, **{k: new[k] for k in ("age", "sex", "bmi", "smoking", "crp")}}])
    assert p == pytest.approx(float(predict_patients(fhir_model, row)["probability"].iloc[0]), rel=1e-9)

    resp = upload(doc, "one.json")
    assert resp.status == 200
    answer = resp.json()
    assert answer["predictions"][0]["probability"] == pytest.approx(p, rel=1e-12)
    expect(page.locator("#prediction-value")).to_have_text(_percent(p))
    source = f"Patient {pid} of the FHIR Bundle one.json; the form above was not used."
    expect(page.locator("#prediction-source")).to_have_text(source)
    expect(page.locator("#fhir-note")).to_have_text(source)
    expect(page.locator("#population")).to_have_text(re.compile(r"^\d+(st|nd|rd|th) percentile$"))
    shown = int(re.match(r"\d+", page.locator("#population").inner_text()).group())
    assert abs(shown - load_bundle(fhir_model).percentile(p)) <= 0.5
    assert page.locator("#factors li").count() >= 1
    expect(page.locator("#prediction-meta")).to_contain_text(answer["prediction_id"])
    # the report of this prediction (the id the FHIR request returned), the bundle's patient in it
    with page.expect_response(lambda r: "/report" in r.url) as rep:
        page.get_by_role("button", name="Open the full report").click()
    assert rep.value.url.endswith(f"/api/predictions/{answer['prediction_id']}/report?index=0")
    assert rep.value.status == 200 and pid in rep.value.text()
    expect(page.get_by_role("link", name="Full report (new tab)")).to_be_visible(timeout=60_000)

    # two patients (tests/serve/test_api_fhir.py): the first is shown, and said to be
    two = fhir_bundle()
    first = api_answer(two).json()["predictions"][0]
    assert first["patient_id"] == "fA"
    assert upload(two, "two.json").status == 200
    expect(page.locator("#prediction-source")).to_have_text(
        "Patient fA of the FHIR Bundle two.json (2 patients in the bundle; showing the first); "
        "the form above was not used.")
    expect(page.locator("#prediction-value")).to_have_text(_percent(first["probability"]))
    assert _percent(first["probability"]) != _percent(p)  # another answer, so the value was redrawn
    expect(page.get_by_role("link", name="Full report (new tab)")).to_be_hidden()
    assert errors == []

    # a malformed Bundle: the API's problem detail, and no answer on the page
    bad = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "fX", "birthDate": "not a date"}}]}
    refused = api_answer(bad)
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert "entry[0].resource.birthDate" in json.dumps(body)
    assert upload(bad, "bad.json").status == 422
    problem = page.get_by_role("alert")
    expect(problem).to_contain_text(f"422 {body['title']}: {body['detail']}")
    for line in body.get("problems", []):
        expect(problem).to_contain_text(line)
    expect(page.locator("#answer")).to_be_hidden()
    expect(page.locator("#fhir-note")).to_have_text("")
    # the browser's own note of the refused request; no script error
    assert errors and all("422" in e for e in errors), errors
    page.close()
