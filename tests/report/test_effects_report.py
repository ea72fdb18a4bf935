"""The model report's "Treatment effects" section: effects/ read into context, rendered, images embedded."""

from __future__ import annotations

import base64
import json
import re

import pandas as pd
import pytest

from conftest import write_trial
from pmed.errors import InputError, ValidationError
from pmed.report import model_report
from pmed.report.effects import effect_sentence, effects_context

EVAL = {"schema": "pmed.evaluation", "version": 1, "pmed_version": "test", "n": 10, "n_events": 3, "prevalence": 0.3,
        "input": {"outcome": "y"}, "models": {}, "comparisons": []}
PNG = b"\x89PNG\r\n\x1a\nnot-really-an-image"


def _metric(est, lo, hi, method="m"):
    return {"estimate": est, "ci_low": lo, "ci_high": hi, "method": method}


def _learner():
    return {"ate": {"estimate": 0.2, "ci_low": None, "ci_high": None, "method": "mean"},
            "autoc": _metric(0.17, 0.09, 0.26), "qini": _metric(0.06, 0.03, 0.08), "auuc": _metric(0.13, 0.07, 0.17),
            "calibration_slope": {**_metric(0.62, 0.33, 0.92), "p_heterogeneity": 1e-5},
            "policy": {"treat_by_cate": _metric(0.148, 0.075, 0.222), "treat_all": _metric(0.137, 0.043, 0.231),
                       "treat_none": _metric(0.0, 0.0, 0.0), "by_cate_minus_all": _metric(0.011, -0.048, 0.069),
                       "fraction_treated": 0.6375}}


def _folder(tmp_path, *, randomized=True):
    """A hand-written effects/ folder: two arms, one (``low dose``) with a space in its name and no plots."""
    ov_obs = {"propensity_method": "logistic regression", "propensity_auc": 0.71,
              "max_abs_smd": {"before": 0.5, "after": 0.05}, "bounds": [0.05, 0.95],
              "n_outside": {"arm": 3, "control": 4}, "action": "7 patient(s) with a propensity outside [0.05, 0.95] "
                                                               "are left out"}
    ov_rct = {"propensity_method": "known randomisation probability 0.5", "propensity_auc": 0.5,
              "propensity": {"arm": {"q50": 0.5}, "control": {"q50": 0.5}},
              "max_abs_smd": {"before": 0.08, "after": 0.08}, "bounds": [0.0, 1.0],
              "n_outside": {"arm": 0, "control": 0}, "action": "nobody left out"}
    arm = {"n": 400, "n_arm": 204, "n_control": 196, "ate": {**_metric(0.3123, 0.2481, 0.3765), "n": 400},
           "difference_in_means": _metric(0.29, 0.2, 0.38), "overlap": ov_rct if randomized else ov_obs,
           "subgroups": {"CYP2C19": {"PM": {**_metric(0.45, 0.3, 0.6), "n": 150},
                                     "NM": {**_metric(0.1, -0.05, 0.25), "n": 250}}},
           "learners": {"t_learner": _learner()}}
    low = {**arm, "ate": _metric(-0.1249, -0.26, 0.01), "subgroups": {}, "learners": {}}
    metrics = {"treatment": "drug", "outcome": "response", "control": "clopidogrel", "randomized": randomized,
               "higher_is_better": True, "folds": 5, "n_boot": 50, "level": 0.95,
               "effect_scale": "difference in P(response = 1)",
               "learners": {"t_learner": {"what": "T-learner", "interval": "none"}},
               "arms": {"ticagrelor": arm, "low dose": low}}
    (tmp_path / "plots").mkdir(parents=True)
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    # the CSV is rounded, metrics.json is not: the report reads the per-covariate table
    pd.DataFrame({"covariate": ["age", "sex_F", "marker"], "before": [0.12, -0.4321, 0.05],
                  "after": [0.01, -0.0312, 0.02]}).to_csv(tmp_path / "overlap_smd_ticagrelor.csv", index=False)
    for kind in ("uplift", "calibration"):
        (tmp_path / "plots" / f"{kind}_ticagrelor.png").write_bytes(PNG + kind.encode())
    return tmp_path


def test_effects_context_reads_the_folder(tmp_path):
    ctx = effects_context(_folder(tmp_path))
    assert ctx["level_pct"] == "95 %" and ctx["quantity"] == "P(response = 1)" and ctx["control"] == "clopidogrel"
    tica, low = ctx["arms"]
    assert tica["sentence"] == ("Ticagrelor raised P(response = 1) by 0.31 (95 % CI 0.25 to 0.38) against "
                                "clopidogrel (cross-fitted AIPW, known allocation probability 0.5).")
    # a harmful arm is "lowered", its signed difference given, and an interval holding 0 said to
    assert low["sentence"] == ("Low dose lowered P(response = 1) by 0.12 (difference -0.12, 95 % CI -0.26 to 0.01) "
                               "against clopidogrel (cross-fitted AIPW, known allocation probability 0.5). "
                               "The interval includes no effect.")
    ov = tica["overlap"]
    assert ov["max_smd_before"] == 0.4321 and ov["max_smd_after"] == 0.0312  # |SMD| from the CSV
    assert [r["covariate"] for r in ov["smd"]] == ["sex_F", "age", "marker"]  # largest imbalance first
    assert ov["n_covariates"] == 3
    assert low["overlap"]["smd"] == [] and low["overlap"]["max_smd_before"] == 0.08  # no CSV: metrics.json's
    assert tica["subgroups"] == [
        {"column": "CYP2C19", "level": "PM", "n": 150, "estimate": 0.45, "ci_low": 0.3, "ci_high": 0.6, "method": "m"},
        {"column": "CYP2C19", "level": "NM", "n": 250, "estimate": 0.1, "ci_low": -0.05, "ci_high": 0.25,
         "method": "m"}]
    (lt,) = tica["learners"]
    assert lt["autoc"]["estimate"] == 0.17 and lt["treat_by_cate"]["ci_high"] == 0.222
    assert lt["fraction_treated"] == 0.6375 and lt["p_heterogeneity"] == 1e-5
    assert set(tica["plots"]) == {"uplift", "calibration"} and low["plots"] == {}


def test_observational_sentence_says_who_was_left_out(tmp_path):
    ctx = effects_context(_folder(tmp_path, randomized=False))
    tica = ctx["arms"][0]
    assert tica["sentence"].endswith("(cross-fitted AIPW, propensity modelled on the covariates, 7 patient(s) "
                                     "with a propensity outside [0.05, 0.95] left out).")
    assert tica["overlap"]["n_left_out"] == 7 and tica["overlap"]["propensity_auc"] == 0.71


def test_effect_sentence_on_a_continuous_scale():
    s = effect_sentence("b", "a", {"estimate": 2.5, "ci_low": 1.0, "ci_high": 4.0},
                        effect_scale="difference in mean sbp", level=0.9, how="x")
    assert s == "B raised mean sbp by 2.50 (90 % CI 1.00 to 4.00) against a (x)."


def test_effects_context_refuses_a_folder_without_effects(tmp_path):
    with pytest.raises(InputError, match="no readable metrics.json"):
        effects_context(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"models": {}}))
    with pytest.raises(ValidationError, match="not the output of an effects estimate"):
        effects_context(tmp_path)


def test_model_report_renders_the_section_from_context(tmp_path):
    ctx = effects_context(_folder(tmp_path / "effects"))
    html = model_report(EVAL, tmp_path / "r.html", context={"effects": ctx}).read_text()
    assert "Treatment effects" in html and "0.312 (0.248–0.377)" in html
    assert "the 3 largest of 3 covariates" in html and "<td>sex_F</td><td class=\"n\">-0.432</td></tr>" in html
    assert "<td>CYP2C19</td><td>PM</td><td class=\"n\">150</td><td class=\"n\">0.450</td>" in html
    srcs = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([^"]+)"', html)
    assert [base64.b64decode(s) for s in srcs] == [PNG + b"uplift", PNG + b"calibration"]
    assert html.index("Treatment effects") < html.index("<h2>Discussion")
    assert "Treatment effects" not in model_report(EVAL, tmp_path / "r0.html").read_text()


# ------------------------------------------------------------------ through pmed run
def _trial(folder, *, treatment: bool, n: int = 400):
    pytest.importorskip("econml")
    # planted: ticagrelor helps marker carriers (logit +2.5), the others hardly
    return write_trial(folder, treated="ticagrelor", control="clopidogrel", effect=2.5, seed=7, n=n,
                       treatment=treatment, extra="effect_models: [t_learner]\n" if treatment else "")


@pytest.mark.slow  # the study's effect learners dominate: tens of seconds on two cores
def test_study_report_has_the_treatment_effects_section(tmp_path):
    from pmed.study import run_study

    run_study(_trial(tmp_path / "s", treatment=True), tmp_path / "out")
    fx = json.loads((tmp_path / "out" / "effects" / "metrics.json").read_text())
    html = (tmp_path / "out" / "evaluation" / "report.html").read_text()
    a = fx["arms"]["ticagrelor"]
    ate = a["ate"]
    assert ate["ci_low"] > 0  # the planted benefit is found
    assert (f"Ticagrelor raised P(response = 1) by {ate['estimate']:.2f} (95 % CI {ate['ci_low']:.2f} to "
            f"{ate['ci_high']:.2f}) against clopidogrel (cross-fitted AIPW, known allocation probability 0.5).") in html
    assert f"{ate['estimate']:.3f} ({ate['ci_low']:.3f}–{ate['ci_high']:.3f})" in html  # the ATE table row
    dm = a["difference_in_means"]
    assert f"{dm['estimate']:.3f} ({dm['ci_low']:.3f}–{dm['ci_high']:.3f})" in html
    for level in ("0", "1"):
        g = a["subgroups"]["marker"][level]
        assert (f"<td>marker</td><td>{level}</td><td class=\"n\">{g['n']}</td><td class=\"n\">{g['estimate']:.3f}</td>"
                f"<td class=\"n\">{g['ci_low']:.3f} to {g['ci_high']:.3f}</td>") in html
    lt = a["learners"]["t_learner"]
    assert f"<td>t_learner</td><td class=\"n\">{lt['autoc']['estimate']:.3f} (" in html
    # the embedded images are the effects folder's PNGs, byte for byte
    srcs = [base64.b64decode(s) for s in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]
    for name in ("uplift_ticagrelor.png", "calibration_ticagrelor.png"):
        assert (tmp_path / "out" / "effects" / "plots" / name).read_bytes() in srcs


def test_study_without_treatment_has_no_section(tmp_path):
    from pmed.study import run_study

    run_study(_trial(tmp_path / "s", treatment=False), tmp_path / "out")
    html = (tmp_path / "out" / "evaluation" / "report.html").read_text()
    assert "Discussion" in html and "Treatment effects" not in html
    assert not (tmp_path / "out" / "effects").exists()
