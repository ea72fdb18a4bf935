"""The model report's "Multimodal fusion" section: metrics.json's fusion read into context, rendered, plot embedded."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from pmed.report import model_report
from pmed.report.fusion import FOREST_PNG, fusion_context
from pmed.report.html import metric_text
from pmed.study import run_study

# the cohort and the study of tests/study/test_fusion_study.py (a module, not a package: loaded by path)
_spec = importlib.util.spec_from_file_location(
    "_fusion_study_cases", Path(__file__).resolve().parents[1] / "study" / "test_fusion_study.py")
_cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cases)

# smaller than the study test's (600 patients, 5 folds, 50 resamples): the section, not the estimates, is tested
SMALL = {"folds: 5": "folds: 3", "bootstrap: 50": "bootstrap: 20",
         "  family: linear\n  modalities:": "  family: linear\n  inner_folds: 3\n  modalities:"}


def _study_text(*, fusion: bool = True) -> str:
    text = _cases.STUDY.format(method="late")
    for old, new in SMALL.items():
        assert old in text
        text = text.replace(old, new)
    if not fusion:
        text = text[:text.index("fusion:")] + text[text.index("seed:"):]
    return text


def _section(html: str) -> str:
    """The fusion section's HTML: from its heading to the next h2."""
    start = html.index('<h2 id="multimodal-fusion">')
    return html[start:html.index("<h2", start + 1)]


def _table(section: str, cls: str) -> list[list[str]]:
    body = re.search(rf'<table class="{cls}">(.*?)</table>', section, re.S).group(1)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S) if "<td" in row]


@pytest.fixture(scope="module")
def late(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fusion-report")
    _cases._cohort(folder, n=300)
    (folder / "study.yaml").write_text(_study_text())
    run_study(folder / "study.yaml", folder / "out")
    out = folder / "out"
    return {"out": out, "metrics": json.loads((out / "metrics.json").read_text()),
            "html": (out / "evaluation" / "report.html").read_text()}


def test_the_report_shows_the_fusion_numbers_of_metrics_json(late):
    fu, sec = late["metrics"]["fusion"], _section(late["html"])
    mods = list(fu["modalities"])
    assert mods == ["clinical", "genome", "omics"] and fu["paired"]["metric"] == "auroc"

    def auroc(model):
        return metric_text(model["metrics"]["auroc"])

    # each modality alone, the fused model, the fused model without each: in that order, with metrics.json's numbers
    rows = _table(sec, "fusion-models")
    best = fu["paired"]["best_single"]
    assert [r[0] for r in rows] == ([f"{m} alone" + (" (best single modality)" if m == best else "") for m in mods]
                                    + ["fused (all modalities)"] + [f"fused without {m}" for m in mods])
    assert [r[1] for r in rows] == ([auroc(fu["single"][m]) for m in mods] + [auroc(fu["fused"])]
                                    + [auroc(fu["without"][m]) for m in mods])
    fused = auroc(fu["fused"])
    assert re.fullmatch(r"0\.\d{3} \(0\.\d{3}–0\.\d{3}\)", fused)  # "0.812 (0.781–0.843)"
    assert fused == metric_text(late["metrics"]["models"]["fusion (late)"]["metrics"]["auroc"])

    # availability: each modality's patients out of the cohort's
    for m in mods:
        assert f"{m} {fu['availability'][m]:,} of 300" in sec
    assert fu["availability"]["omics"] < 300

    # fused minus the best single modality, and what each modality adds, paired, with their methods
    paired = _table(sec, "fusion-paired")
    assert paired[0] == [f"fused − {best} alone (the best single modality)", metric_text(fu["paired"]),
                         fu["paired"]["method"]]
    assert "DeLong" in fu["paired"]["method"]
    assert paired[1:] == [[f"fused − fused without {m} (what {m} adds)", metric_text(fu["gain_of"][m]),
                           fu["gain_of"][m]["method"]] for m in mods]
    p = fu["paired"]
    assert (f"Fused minus {best} alone: {p['estimate']:+.3f} (95 % CI {p['ci_low']:+.3f} to {p['ci_high']:+.3f})"
            in sec)

    # a modality missing at prediction time: metrics.json's drops
    masked = _table(sec, "fusion-masked")
    assert masked == [[f"{m} (30% of the test patients)", f"{fu['masked'][m]['n_masked']:,}",
                       f"{fu['masked'][m]['full']:.3f}", f"{fu['masked'][m]['masked']:.3f}",
                       f"{fu['masked'][m]['drop']:.3f}"] for m in mods]

    # the forest plot: written beside the report's other plots and embedded in the section
    png = late["out"] / "evaluation" / "plots" / FOREST_PNG
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert re.search(r'<img alt="AUROC with 95% CI: each modality alone[^"]*" src="data:image/png;base64,', sec)


def test_a_study_without_fusion_has_no_fusion_section(tmp_path):
    _cases._cohort(tmp_path, n=200)
    (tmp_path / "study.yaml").write_text(_study_text(fusion=False))
    run_study(tmp_path / "study.yaml", tmp_path / "out")
    html = (tmp_path / "out" / "evaluation" / "report.html").read_text()
    assert "<h2>Discussion" in html and "fusion" not in json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert "Multimodal fusion" not in html and "multimodal-fusion" not in html
    assert not (tmp_path / "out" / "evaluation" / "plots" / FOREST_PNG).exists()


def _m(est, lo, hi, method="bootstrap"):
    return {"metrics": {"brier": {"estimate": est, "ci_low": lo, "ci_high": hi, "method": method}}}


def test_context_of_a_lower_is_better_metric_with_nulls(tmp_path):
    """Brier: a negative difference is better; a JSON null is a dash, not a crash; no folder, no plot."""
    fu = {"method": "early", "family": "linear", "modalities": {"clinical": ["age", "sex"], "genome": ["prs_a"]},
          "availability": {"clinical": 100, "genome": 60}, "n_without_any": 0,
          "single": {"clinical": _m(0.20, 0.18, 0.22), "genome": _m(0.23, None, None)},
          "fused": _m(0.17, 0.15, 0.19), "without": {"clinical": _m(0.23, None, None), "genome": _m(0.20, 0.18, 0.22)},
          "paired": {"estimate": -0.03, "ci_low": -0.05, "ci_high": -0.01, "method": "paired bootstrap",
                     "metric": "brier", "best_single": "clinical"},
          "gain_of": {"clinical": {"estimate": -0.06, "ci_low": -0.09, "ci_high": -0.03, "method": "paired bootstrap"},
                      "genome": {"estimate": -0.03, "ci_low": -0.05, "ci_high": 0.01, "method": "paired bootstrap"}},
          "masked": {"clinical": {"fraction": 0.3, "metric": "brier", "n_masked": 31, "full": 0.17, "masked": None,
                                  "drop": None}}}
    ctx = fusion_context(fu)
    assert ctx["metric_label"] == "Brier score" and not ctx["higher_is_better"] and ctx["plots"] == {}
    assert [r["label"] for r in ctx["rows"]] == ["clinical alone", "genome alone", "fused (all modalities)",
                                                 "fused without clinical", "fused without genome"]
    g = {d["name"]: d for d in ctx["modalities"]}
    assert g["clinical"]["gain_verdict"] == "better" and g["genome"]["gain_verdict"] == "unclear"
    assert ctx["sentences"][0].endswith("Fused minus clinical alone: -0.030 (95 % CI -0.050 to -0.010), "
                                        "paired bootstrap — the fused model does better.")
    assert ctx["sentences"][1].endswith("clinical adds -0.060 (95 % CI -0.090 to -0.030); it helps.")
    assert ctx["sentences"][2].endswith("; the interval includes no difference.")
    assert "0.170 (0.150–0.190)" in ctx["sentences"][0] and "0.200 (0.180–0.220)" in ctx["sentences"][0]
    ev = {"schema": "pmed.evaluation", "version": 1, "pmed_version": "test", "n": 100, "n_events": 30,
          "prevalence": 0.3, "input": {"outcome": "y"}, "models": {}, "comparisons": []}
    html = model_report(ev, tmp_path / "r.html",
                        context={"fusion": fusion_context(fu, figures=tmp_path)}).read_text()
    sec = _section(html)
    assert "genome 60 of 100 (1 column)" in sec and "lower is better" in sec
    assert _table(sec, "fusion-models")[1] == ["genome alone", "0.230", "bootstrap"]  # no interval: the estimate
    assert _table(sec, "fusion-masked") == [["clinical (30% of the test patients)", "31", "0.170", "–", "–"]]
    assert (tmp_path / FOREST_PNG).is_file() and "data:image/png;base64," in sec
