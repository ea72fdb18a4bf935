"""`pmed demo` runs the whole flow and finds the answer built into the synthetic cohort."""

import json

import numpy as np
import pandas as pd
import pytest

from pmed.demo import run_demo


def test_demo_recovers_the_cyp2c19_clopidogrel_effect(tmp_path):
    out = run_demo(tmp_path, n_patients=1000, seed=0)
    result = out["result"]
    # every output exists
    for f in ("metrics.json", "oof_predictions.csv", "feature_importance.csv", "model/manifest.json",
              "plots/roc.png"):
        assert (tmp_path / "results" / f).exists(), f
    assert (tmp_path / "data" / "genotypes.vcf.gz").exists()
    m = json.loads((tmp_path / "results" / "metrics.json").read_text())
    assert m["n_patients"] == 1000 and len(m["models"]) == 5
    best = m["models"][m["selected_model"]]["metrics"]["auroc"]
    assert best["estimate"] > 0.65 and best["ci_low"] > 0.6
    # known truth: CYP2C19*2 (rs4244285) and the drug given drive response
    top = result.importance["feature"].head(5).tolist()
    assert "CYP2C19_phenotype" in top and "drug" in top
    # the pharmacogenomic calls of the cohort: CYP2C19 phenotypes as features, recommendations
    pgx = pd.read_csv(tmp_path / "pgx" / "features.csv")
    assert pgx["CYP2C19_phenotype"].str.contains("Poor Metabolizer").sum() >= 3
    calls = pd.read_csv(tmp_path / "pgx" / "calls.tsv", sep="\t")
    assert {"sample", "gene", "diplotypes", "phenotype", "activity_score"} <= set(calls.columns)
    # the new patients' predictions, and a factor table whose CYP2C19 effect has the right sign
    preds = pd.read_csv(tmp_path / "new_patient_predictions.csv")
    assert len(preds) == 5 and preds["probability"].between(0, 1).all()
    assert set(out["factors"].columns) >= {"patient_id", "feature", "value", "typical_value", "contribution"}
    assert (tmp_path / "new_patient_factors.csv").exists()
    # the model report and the patient reports open in headless Chromium without console errors
    import shutil

    from pmed.report import screenshot

    model_report = tmp_path / "results" / "evaluation" / "report.html"
    patient = tmp_path / "patient_reports" / f"{out['factors']['patient_id'].iloc[0]}.html"
    assert "TRIPOD+AI" in model_report.read_text() and "CYP2C19" not in patient.name
    # the patient report carries the patient's pharmacogenomic calls and CPIC/DPWG guidance
    text = patient.read_text()
    assert "Pharmacogenomics" in text and "CYP2C19" in text and "clopidogrel" in text
    if shutil.which("chromium"):
        for html in (model_report, patient):
            png, log = screenshot(html, tmp_path / f"{html.stem}.png")
            assert png.stat().st_size > 10_000
            assert not [ln for ln in log.splitlines() if "CONSOLE" in ln and "error" in ln.lower()]

    # what the model learned: a CYP2C19 intermediate metabolizer phenotype lowers the predicted response to
    # clopidogrel far more than to ticagrelor (the generating truth: only clopidogrel)
    from pmed.study import load_bundle

    bundle = load_bundle(tmp_path / "results" / "model")
    X = result.cohort.features(["patients", "genotypes", "pgx"])[bundle.feature_names]
    base = X[X["CYP2C19_phenotype"] == "Normal Metabolizer"].head(200)
    drop = {}
    for drug in ("clopidogrel", "ticagrelor"):
        wt = base.assign(drug=pd.Categorical([drug] * len(base), categories=X["drug"].cat.categories))
        # intermediate metabolizers (one loss-of-function allele) are common enough to be learned
        pm = wt.assign(CYP2C19_phenotype=pd.Categorical(
            ["Intermediate Metabolizer"] * len(wt), categories=X["CYP2C19_phenotype"].cat.categories))
        drop[drug] = (bundle.predict(wt)["probability"] - bundle.predict(pm)["probability"]).mean()
    # (seed 0: 0.113 under clopidogrel, 0.040 under ticagrelor, random forest selected)
    assert drop["clopidogrel"] > 0.08
    assert drop["clopidogrel"] > 2 * abs(drop["ticagrelor"])

    # treatment choice: the planted CYP2C19 × clopidogrel effect, recovered as ticagrelor's benefit
    # over clopidogrel by phenotype (seed 0: Normal +0.025 (−0.054 to +0.104), Intermediate +0.419
    # (+0.297 to +0.540), Poor +0.919 (+0.570 to +1.000))
    eff = json.loads((tmp_path / "results" / "effects" / "metrics.json").read_text())
    tica = eff["arms"]["ticagrelor"]
    assert eff["control"] == "clopidogrel" and tica["ate"]["ci_low"] > 0
    by = tica["subgroups"]["CYP2C19_phenotype"]
    normal = by["Normal Metabolizer"]
    assert normal["ci_low"] < 0 < normal["ci_high"]
    for lof in ("Intermediate Metabolizer", "Poor Metabolizer"):
        assert by[lof]["ci_low"] > normal["ci_high"], (lof, by[lof], normal)
    assert m["effects"]["ate"]["ticagrelor"]["estimate"] == pytest.approx(tica["ate"]["estimate"])
    # the bundle's options model, checked out of fold (seed 0: AUTOC 0.162, calibration slope 0.85)
    lin = tica["learners"]["linear_t_learner"]
    assert lin["autoc"]["ci_low"] > 0 and lin["calibration_slope"]["ci_low"] > 0
    # each new patient's ranked options agree with CPIC where CPIC advises against clopidogrel: the
    # loss-of-function carriers get ticagrelor first (seed 0: P1005, intermediate metabolizer, +0.17
    # (+0.01 to +0.37), clopidogrel flagged 'avoid'); the others' difference includes 0
    opts = pd.read_csv(tmp_path / "treatment_options.csv")
    assert opts["rank"].tolist() == out["options"]["rank"].tolist() and len(opts) == 10
    clop = opts[opts["treatment"] == "clopidogrel"].set_index("patient_id")
    tic = opts[opts["treatment"] == "ticagrelor"].set_index("patient_id")
    against = clop.index[clop["pgx_flag"].isin(["avoid", "alternative"])]
    assert len(against) >= 1 and (tic.loc[against, "rank"] == 1).all() and (tic.loc[against, "effect_low"] > 0).all()
    others = clop.index.difference(against)
    assert (clop.loc[others, "pgx_flag"] == "standard").all()
    assert ((tic.loc[others, "effect_low"] < 0) & (tic.loc[others, "effect_high"] > 0)).all()
    assert "Treatment options" in (tmp_path / "patient_reports" / f"{against[0]}.html").read_text()

    # the disease model: a polygenic score from `pmed prs score` adds to clinical risk factors
    rep = pd.read_csv(tmp_path / "prs" / "match_report.tsv", sep="\t").iloc[0]
    assert (rep["matched"], rep["excluded_strand_ambiguous"], rep["unmatched"]) == (14, 3, 0)
    cad = json.loads((tmp_path / "cad" / "metrics.json").read_text())["models"]
    assert "prs_PGS_SYNTH_CAD" in out["cad"].cohort.blocks["prs"].data.columns
    gain = cad["clinical+PRS"]["metrics"]["auroc"]["estimate"] - cad["clinical"]["metrics"]["auroc"]["estimate"]
    assert gain > 0.015
    # wearable streams summarised to patient features join the disease model as a block
    wear = pd.read_csv(tmp_path / "wearables" / "features.csv")
    assert len(wear) == 1005 and "wear_resting_hr_mean" in wear.columns
    both = cad["clinical+PRS+wearables"]
    assert both["n_features"] == cad["clinical+PRS"]["n_features"] + wear.shape[1] - 1
    assert both["metrics"]["auroc"]["estimate"] > cad["clinical"]["metrics"]["auroc"]["estimate"]

    # imaging: a lesion CNN trained on synthetic images; its embedding joins the disease model
    emb = pd.read_csv(tmp_path / "imaging" / "embedding.csv")
    assert len(emb) == 1005 and emb.shape[1] == 1 + 8
    assert list((tmp_path / "imaging" / "heatmaps").glob("*.png"))
    img = cad["clinical+PRS+wearables+imaging"]
    assert img["n_features"] == both["n_features"] + 8
    # (seed 0: 0.778 → 0.827) lesions are commoner with the disease, so the images add signal
    assert img["metrics"]["auroc"]["estimate"] > both["metrics"]["auroc"]["estimate"] + 0.02

    # fusion of the coronary model's modalities, a fifth of the patients without a scan (seed 0:
    # alone clinical 0.742, genome 0.606, wearables 0.681, imaging 0.707; fused 0.819, +0.077
    # (+0.054 to +0.100) over clinical alone, paired DeLong)
    fu = json.loads((tmp_path / "cad" / "metrics.json").read_text())["fusion"]
    assert list(fu["single"]) == ["clinical", "genome", "wearables", "imaging"]
    assert 0.15 * 1000 < 1000 - fu["availability"]["imaging"] < 0.25 * 1000 and fu["availability"]["clinical"] == 1000
    assert fu["paired"]["best_single"] == "clinical" and fu["paired"]["ci_low"] > 0
    assert fu["gain_of"]["imaging"]["ci_low"] > 0 and fu["gain_of"]["clinical"]["ci_low"] > 0
    assert all(np.isfinite(d["masked"]) and d["drop"] > -0.01 for d in fu["masked"].values())
    # each modality's prediction-set threshold calibrated on validation patients who lacked it
    # (seed 0: clinical 0.730, genome 0.716, wearables 0.725, imaging 0.717)
    assert all(d["conformal"]["n"] == d["n_masked"] and 0.5 < d["conformal"]["quantile"] < 1
               for d in fu["masked"].values())

    # disease progression: years to a first coronary event, cumulative Cox models; each modality's
    # gain in Harrell's C with its paired interval (seed 0: KM 0.500, clinical 0.732, +PRS 0.772,
    # +wearables 0.789; gains +0.040 (0.024 to 0.056) and +0.017 (0.005 to 0.029))
    chd = json.loads((tmp_path / "chd" / "metrics.json").read_text())
    assert list(chd["models"]) == ["no features (Kaplan-Meier)", "clinical", "clinical+PRS", "clinical+PRS+wearables"]
    c = {k: v["metrics"]["harrell_c"] for k, v in chd["models"].items()}
    assert c["no features (Kaplan-Meier)"]["estimate"] == 0.5 and c["clinical"]["ci_low"] > 0.65
    gains = {(g["model_a"], g["model_b"]): g for g in chd["comparisons"]}
    for a, b in (("clinical", "clinical+PRS"), ("clinical+PRS", "clinical+PRS+wearables")):
        g = gains[(a, b)]
        assert g["ci_low"] > 0, (a, b, g)
        assert g["estimate"] == pytest.approx(c[b]["estimate"] - c[a]["estimate"], abs=1e-9)
    assert chd["selected_model"] == "clinical+PRS+wearables"
    new_chd = pd.read_csv(tmp_path / "chd_new_patient_predictions.csv")
    assert len(new_chd) == 5
    assert ((new_chd["surv_5_low"] < new_chd["surv_5"]) & (new_chd["surv_5"] < new_chd["surv_5_high"])).all()
    assert (new_chd["surv_8"] <= new_chd["surv_5"]).all()
    report = (tmp_path / "chd_patient_reports" / f"{new_chd['patient_id'].iloc[0]}.html").read_text()
    assert "chance of the event" in report and "95 % interval" in report

    # single-cell: responders' shifted blood composition reaches the response model
    sc = pd.read_csv(tmp_path / "omics" / "features.csv")
    assert len(sc) == 1000 and "frac_CD8_T_cells" in sc.columns
    om = json.loads((tmp_path / "response_omics" / "metrics.json").read_text())["models"]
    base, plus = (om[k]["metrics"]["auroc"] for k in ("clinical+PGx", "clinical+PGx+single-cell"))
    # (seed 0: 0.751 → 0.843)
    assert plus["estimate"] > base["estimate"] + 0.03

    # spatial: the inflamed tumour has immune cells inside it, the excluded one at its margin
    # (seed 0: immune level in the tumour +0.93 against -0.21)
    sp = out["spatial"]
    if sp is not None:
        f = sp.features
        assert f.loc["inflamed", "immune_in_tumour"] > f.loc["excluded", "immune_in_tumour"] + 0.5
        assert (tmp_path / "spatial" / "patient_features.csv").exists()

    # monitoring: the new LDL assay is caught in its first month, on LDL only, with no alarm before it
    mon = out["monitored"]
    flags = {w["window"]: w["drift"]["drifted_features"] for w in mon["monitor"].windows}
    assert mon["first_alert"] == mon["shift_from"] == "2027-07" and flags["2027-07"] == ["ldl_mmol_l"]
    assert not any(f for w, f in flags.items() if w < "2027-07")
    assert json.loads((tmp_path / "monitor_update" / "promotion.json").read_text())["decision"] in (
        "promoted", "candidate")
    assert (tmp_path / "monitor" / "dashboard.html").exists()

    # privacy: the differentially private model pays for its guarantee in AUROC, more at the smaller
    # budget (seed 0: logistic 0.713, dp_logistic at epsilon 1 0.698, at 0.3 0.493)
    dp = out["privacy"]["dp"]
    if dp is not None:  # the privacy extra is in the demo lock: None only without it
        plain, eps1, eps03 = (dp[k]["estimate"] for k in ("logistic", "dp_logistic ε=1", "dp_logistic ε=0.3"))
        assert plain > 0.65 and plain - 0.06 < eps1 <= plain + 0.01 and eps03 < eps1

    # serving: every bundle of the demo registered; a patient posted with its genotype and PGx
    # columns inline gets pmed predict's probability, factors and both treatment options
    served = out["served"]
    if served is not None:  # the serve extra is in the demo lock: None only without it
        from pmed.serve.registry import bundle_name

        # one name per study: the monitored model's recalibration (pmed update) is its version 2
        assert sorted(served["models"]) == sorted({bundle_name(p.parent) for p in tmp_path.rglob("model/manifest.json")})
        assert len(list(tmp_path.rglob("model/manifest.json"))) == len(served["models"]) + 1
        got, pid = served["answer"], served["patient_id"]
        assert got["patient_id"] == pid
        assert got["probability"] == pytest.approx(out["predictions"].loc[pid, "probability"], abs=1e-12)
        assert len(got["factors"]) == 5 and {o["treatment"] for o in got["treatment_options"]} == {
            "clopidogrel", "ticagrelor"}
