"""A study's ``fusion:`` section: each modality alone, fused, without each, paired gains, masking."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import SCHEMA_YAML, make_clinical
from pmed.errors import OptionError, StudyError
from pmed.study import load_bundle, run_study


def _cohort(folder, n=600, seed=3):
    """Clinical table + a genome block (2 scores) + an omics block (5 genes) missing for 30 %.

    The event depends on the clinical risk factors, on prs_a and on gene g1: each modality
    carries signal the others lack, so the fused model must beat the best single one.
    """
    rng = np.random.default_rng(seed)
    df = make_clinical(n, seed=seed)
    prs = pd.DataFrame({"patient_id": df["patient_id"], "prs_a": rng.normal(size=n), "prs_b": rng.normal(size=n)})
    genes = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"g{i}" for i in range(1, 6)])
    genes.insert(0, "patient_id", df["patient_id"])
    lin = (-6 + 0.06 * df["age"] + 1.0 * (df["smoking"] == "current") + 0.6 * df["diabetes"]
           + 1.4 * prs["prs_a"] + 1.4 * genes["g1"])
    df["event"] = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int)
    no_omics = rng.random(n) < 0.3
    genes.loc[no_omics, [f"g{i}" for i in range(1, 6)]] = np.nan
    df.to_csv(folder / "patients.csv", index=False)
    (folder / "schema.yaml").write_text(SCHEMA_YAML)
    prs.to_csv(folder / "prs.csv", index=False)
    genes.to_csv(folder / "omics.csv", index=False)
    return df, no_omics


STUDY = """\
name: fusion-test
data:
  patients: patients.csv
  schema: schema.yaml
  outcomes: [sbp]
  blocks: {{prs: prs.csv, omics: omics.csv}}
target: {{column: event, task: binary}}
models:
  - family: linear
evaluation: {{folds: 5, repeats: 1, bootstrap: 50, coefficient_bootstrap: 0}}
fusion:
  method: {method}
  family: linear
  modalities:
    clinical: {{block: patients}}
    genome: {{columns: ["prs_*"]}}
    omics: {{block: omics}}
seed: 0
"""


@pytest.fixture(scope="module")
def late(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fusion-late")
    df, no_omics = _cohort(folder)
    (folder / "study.yaml").write_text(STUDY.format(method="late"))
    res = run_study(folder / "study.yaml", folder / "out")
    return {"folder": folder, "result": res, "df": df, "no_omics": no_omics,
            "metrics": json.loads((folder / "out" / "metrics.json").read_text())}


def test_fusion_metrics_say_what_each_modality_adds(late):
    fu = late["metrics"]["fusion"]
    assert fu["method"] == "late" and list(fu["modalities"]) == ["clinical", "genome", "omics"]
    assert fu["modalities"]["genome"] == ["prs_a", "prs_b"]
    assert fu["modalities"]["omics"] == [f"g{i}" for i in range(1, 6)]
    assert fu["availability"]["omics"] == int((~late["no_omics"]).sum()) and fu["availability"]["clinical"] == 600
    auc = {m: v["metrics"]["auroc"]["estimate"] for m, v in fu["single"].items()}
    fused = fu["fused"]["metrics"]["auroc"]["estimate"]
    # the fused model is a candidate, with the same numbers
    assert late["metrics"]["models"]["fusion (late)"]["metrics"]["auroc"]["estimate"] == fused
    # each modality carries its own signal: the fused model beats the best one, with a paired CI above 0
    p = fu["paired"]
    assert p["best_single"] == max(auc, key=auc.get) and p["metric"] == "auroc"
    assert p["estimate"] == pytest.approx(fused - auc[p["best_single"]], abs=1e-9)
    assert p["ci_low"] > 0 and "DeLong" in p["method"]
    # leaving any modality out costs discrimination
    for m in fu["modalities"]:
        g = fu["gain_of"][m]
        assert g["estimate"] == pytest.approx(fused - fu["without"][m]["metrics"]["auroc"]["estimate"], abs=1e-9)
        assert g["estimate"] > 0, m
    # masked at prediction time for 30 % of the test patients: the metric drops, but the model still answers
    for m, d in fu["masked"].items():
        assert d["fraction"] == 0.3 and 0.2 * 600 < d["n_masked"] < 0.4 * 600
        assert np.isfinite(d["masked"]) and d["drop"] > -0.01, m


def test_the_fused_bundle_answers_without_a_modality(late):
    res = late["result"]
    if res.selected != "fusion (late)":
        pytest.skip(f"the selected model is {res.selected}")
    bundle = load_bundle(res.bundle_path)
    new = late["df"].drop(columns=["event", "sbp"]).head(6).set_index("patient_id")
    rng = np.random.default_rng(0)
    for c in ("prs_a", "prs_b"):
        new[c] = rng.normal(size=6)
    for i in range(1, 6):
        new[f"g{i}"] = rng.normal(size=6)
    new.iloc[:3, [new.columns.get_loc(f"g{i}") for i in range(1, 6)]] = np.nan
    pred = bundle.predict(new)
    assert pred["probability"].between(0, 1).all()
    assert pred["modalities_used"].tolist() == ["clinical+genome"] * 3 + ["clinical+genome+omics"] * 3
    # the prediction set of a patient without omics uses the threshold calibrated on validation
    # patients whose omics were masked (never a narrower one than with every modality)
    conf = bundle.manifest["conformal"]
    masked = late["metrics"]["fusion"]["masked"]["omics"]["conformal"]
    assert conf["without"]["omics"] == masked["quantile"] and masked["n"] == late["metrics"]["fusion"]["masked"]["omics"]["n_masked"]
    assert 0.8 <= masked["cv_coverage"]["coverage"]["estimate"] <= 1.0
    q = bundle.conformal_quantiles(pred["modalities_used"])
    assert q.tolist() == [max(conf["quantile"], conf["without"]["omics"])] * 3 + [conf["quantile"]] * 3
    p = pred["probability"].to_numpy()
    want = ["0|1" if (p[i] <= q[i] and 1 - p[i] <= q[i]) else "1" if 1 - p[i] <= q[i] else "0" if p[i] <= q[i] else ""
            for i in range(6)]
    assert pred["prediction_set"].tolist() == want
    # the patient report says which modalities were used and the threshold without each
    from pmed.study.predict import write_patient_reports

    X = bundle.check_features(new)
    paths = write_patient_reports(bundle, X, pred, late["folder"] / "reports")
    text = paths[0].read_text(encoding="utf-8")
    assert "Used for this patient: clinical, genome; missing: omics." in text
    assert f"{conf['without']['omics']:.3f}" in text and "not calibrated" not in text
    assert "missing: omics" not in paths[3].read_text(encoding="utf-8")


def test_fusion_bad_sections_are_refused(tmp_path):
    _cohort(tmp_path, n=120)
    bad = STUDY.format(method="late").replace("omics: {block: omics}", "omics: {block: proteome}")
    (tmp_path / "s1.yaml").write_text(bad)
    with pytest.raises(StudyError, match="proteome"):
        run_study(tmp_path / "s1.yaml", tmp_path / "o1")
    bad = STUDY.format(method="late").replace('["prs_*"]', '["pgs_*"]')
    (tmp_path / "s2.yaml").write_text(bad)
    with pytest.raises(StudyError, match="pgs_"):
        run_study(tmp_path / "s2.yaml", tmp_path / "o2")
    bad = STUDY.format(method="joint").replace("  family: linear\n  modalities:", "  family: linear\n"
                                               "  params: {modality_dropout: 1.5}\n  modalities:")
    (tmp_path / "s3.yaml").write_text(bad)
    with pytest.raises(OptionError, match="modality_dropout"):
        run_study(tmp_path / "s3.yaml", tmp_path / "o3")


def test_joint_fusion_study_trains_one_network_and_answers_without_a_modality(tmp_path):
    df, no_omics = _cohort(tmp_path, n=400)
    # beside the baseline only, so that the network is selected and its bundle written
    text = STUDY.format(method="joint").replace("bootstrap: 50", "bootstrap: 20").replace(
        "  family: linear\n  modalities:", "  family: linear\n  params: {max_epochs: 40}\n  modalities:").replace(
        "models:\n  - family: linear", "models:\n  - family: mean")
    (tmp_path / "study.yaml").write_text(text)
    res = run_study(tmp_path / "study.yaml", tmp_path / "out")
    fu = res.metrics["fusion"]
    assert fu["method"] == "joint" and "fusion (joint)" in res.metrics["models"]
    assert set(fu["single"]) == set(fu["without"]) == set(fu["masked"]) == {"clinical", "genome", "omics"}
    fused = fu["fused"]["metrics"]["auroc"]["estimate"]
    # every modality carries signal here: the network over all three beats the network without omics
    assert fused > fu["without"]["omics"]["metrics"]["auroc"]["estimate"]
    assert fused > max(v["metrics"]["auroc"]["estimate"] for v in fu["single"].values()) - 0.02
    # the network's bundle loads through skops' trusted types and answers without omics
    from pmed.fusion import JointFusion
    from pmed.study.fusion import build_fusion

    est = build_fusion("joint", fu["modalities"], family="linear", task="binary", X=pd.DataFrame(
        columns=[c for v in fu["modalities"].values() for c in v]), params={"max_epochs": 40}, seed=0)
    assert isinstance(est, JointFusion) and est.max_epochs == 40 and est.random_state == 0
    assert res.selected == "fusion (joint)"
    bundle = load_bundle(res.bundle_path)
    assert type(bundle.pipeline).__name__ == "JointFusion"
    new = df.drop(columns=["event", "sbp"]).head(4).set_index("patient_id")
    rng = np.random.default_rng(1)
    for c in ["prs_a", "prs_b", *[f"g{i}" for i in range(1, 6)]]:
        new[c] = rng.normal(size=4)
    new.iloc[:2, [new.columns.get_loc(f"g{i}") for i in range(1, 6)]] = np.nan
    pred = bundle.predict(new)
    assert pred["modalities_used"].tolist() == ["clinical+genome"] * 2 + ["clinical+genome+omics"] * 2
    assert pred["probability"].between(0, 1).all()
    q = bundle.conformal_quantiles(pred["modalities_used"])
    assert q[0] == max(bundle.manifest["conformal"]["quantile"], bundle.manifest["conformal"]["without"]["omics"])


def test_early_fusion_concatenates_with_modality_indicators(tmp_path):
    _cohort(tmp_path, n=300)
    (tmp_path / "study.yaml").write_text(STUDY.format(method="early").replace("bootstrap: 50", "bootstrap: 20"))
    res = run_study(tmp_path / "study.yaml", tmp_path / "out")
    fu = res.metrics["fusion"]
    assert fu["method"] == "early" and "fusion (early)" in res.metrics["models"]
    assert set(fu["single"]) == set(fu["without"]) == set(fu["masked"]) == {"clinical", "genome", "omics"}
    fused = fu["fused"]["metrics"]["auroc"]["estimate"]
    assert fused == res.metrics["models"]["fusion (early)"]["metrics"]["auroc"]["estimate"]
    assert fu["paired"]["estimate"] == pytest.approx(
        fused - fu["single"][fu["paired"]["best_single"]]["metrics"]["auroc"]["estimate"], abs=1e-9)


def test_patients_without_any_modality_are_counted_and_warned_without_ids(tmp_path):
    df, _ = _cohort(tmp_path, n=300)
    prs, genes = pd.read_csv(tmp_path / "prs.csv"), pd.read_csv(tmp_path / "omics.csv")
    prs.loc[:9, ["prs_a", "prs_b"]] = np.nan
    genes.loc[:9, [f"g{i}" for i in range(1, 6)]] = np.nan
    prs.to_csv(tmp_path / "prs.csv", index=False)
    genes.to_csv(tmp_path / "omics.csv", index=False)
    text = STUDY.format(method="late").replace("bootstrap: 50", "bootstrap: 20").replace(
        "    clinical: {block: patients}\n", "")
    (tmp_path / "study.yaml").write_text(text)
    with pytest.warns(Warning, match=r"LateFusion: \d+ of \d+ patients have no modality at all") as seen:
        res = run_study(tmp_path / "study.yaml", tmp_path / "out")
    assert res.metrics["fusion"]["n_without_any"] == 10
    assert not any(pid in str(w.message) for w in seen for pid in df["patient_id"].head(10))
