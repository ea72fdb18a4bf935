"""Reports render in headless Chromium without console errors, and export to PDF."""

import shutil

import pytest

from pmed.report import html_to_pdf, model_report, patient_report, screenshot

chromium = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome")),
    reason="Chromium not installed (Debian: apt-get install chromium); .ci/run installs it",
)

EVAL = {
    "schema": "pmed.evaluation", "version": 1, "pmed_version": "test", "n": 100, "n_events": 30,
    "prevalence": 0.3, "input": {"outcome": "y"}, "ci_methods": "test",
    "models": {"m": {"n": 100, "n_events": 30, "metrics": {
        "auroc": {"estimate": 0.8, "ci_low": 0.7, "ci_high": 0.9, "method": "DeLong"},
        "calibration_slope": {"estimate": 1.1, "ci_low": 0.8, "ci_high": 1.4, "method": "Wald"}},
        "thresholds": [], "threshold_selection": {}, "net_benefit": []}},
    "comparisons": [],
}


def test_model_report_fills_and_marks(tmp_path):
    p = model_report(EVAL, tmp_path / "r.html", context={"study": {"name": "S", "description": "about S"}})
    html = p.read_text()
    assert "0.800 (0.700–0.900)" in html and "about S" in html
    # items software cannot fill are marked placeholders, not silently omitted
    assert html.count('class="placeholder"') >= 5


@chromium
def test_reports_render_in_chromium_and_export_pdf(tmp_path):
    model = model_report(EVAL, tmp_path / "model.html")
    patient = patient_report({"id": "pt-1", "outcome": "probability of response", "prediction": 0.31,
                              "interval": {"low": 0.2, "high": 0.45, "level": 0.9, "method": "conformal"},
                              "percentile": 22.0, "factors": ["Age 84 raises the risk by 12 points"],
                              "factor_table": [{"feature": "age", "value": 84, "typical_value": 63,
                                                "contribution": 0.12}]},
                             tmp_path / "patient.html")
    for html in (model, patient):
        png, log = screenshot(html, tmp_path / f"{html.stem}.png")
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
        console = [ln for ln in log.splitlines() if "CONSOLE" in ln]
        assert not [ln for ln in console if "error" in ln.lower()], console
        pdf = html_to_pdf(html, tmp_path / f"{html.stem}.pdf")
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000
