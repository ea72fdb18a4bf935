"""A fusion modality of images (``images: MANIFEST|NPZ``): read as pixel columns, a CNN encoder in
the joint network, refused or warned when the image IDs do not match the cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import SCHEMA_YAML, make_clinical
from pmed.errors import PmedWarning, StudyError
from pmed.study import load_bundle, run_study

pytest.importorskip("torch")
pytest.importorskip("monai")
Image = pytest.importorskip("PIL.Image")

STUDY = """\
name: fusion-images
data: {{patients: patients.csv, schema: schema.yaml, outcomes: [sbp]}}
target: {{column: event, task: binary}}
models:
  - family: mean
evaluation: {{folds: 3, repeats: 1, bootstrap: 20, coefficient_bootstrap: 0}}
fusion:
  method: joint
  family: linear
  params: {{max_epochs: 30}}
  modalities:
    clinical: {{block: patients}}
    scan: {{images: {images}, size: 16}}
seed: 0
"""


def _blob(rng, bright: float) -> np.ndarray:
    """A 24×24 grey image: noise and a square whose brightness carries the outcome."""
    im = rng.uniform(0, 60, (24, 24))
    r, c = rng.integers(4, 14, 2)
    im[r:r + 7, c:c + 7] += bright
    return im.clip(0, 255).astype(np.uint8)


def _cohort(folder, n=240, seed=4, share_with_image=0.8):
    rng = np.random.default_rng(seed)
    df = make_clinical(n, seed=seed)
    # the event is driven by the clinical factors and, independently, by a latent seen on the scan
    latent = rng.normal(size=n)
    lin = -6 + 0.06 * df["age"] + 1.0 * (df["smoking"] == "current") + 1.8 * latent
    df["event"] = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int)
    df.to_csv(folder / "patients.csv", index=False)
    (folder / "schema.yaml").write_text(SCHEMA_YAML)
    (folder / "img").mkdir()
    rows = []
    for i, pid in enumerate(df["patient_id"]):
        if rng.random() > share_with_image:
            continue
        path = folder / "img" / f"{pid}.png"
        Image.fromarray(_blob(rng, 100 + 60 * latent[i])).save(path)
        rows.append({"patient_id": pid, "path": f"img/{pid}.png"})
    pd.DataFrame(rows).to_csv(folder / "scans.csv", index=False)
    return df, pd.DataFrame(rows)


def test_images_are_a_modality_of_the_joint_network_and_of_pmed_predict(tmp_path):
    df, scans = _cohort(tmp_path)
    (tmp_path / "study.yaml").write_text(STUDY.format(images="scans.csv"))
    res = run_study(tmp_path / "study.yaml", tmp_path / "out")
    fu = res.metrics["fusion"]
    assert fu["modalities"]["scan"][:2] == ["px|0|0", "px|0|1"] and len(fu["modalities"]["scan"]) == 16 * 16
    assert fu["availability"]["scan"] == len(scans) and fu["availability"]["clinical"] == len(df)
    auc = {m: v["metrics"]["auroc"]["estimate"] for m, v in fu["single"].items()}
    # the scan alone (a CNN) carries its signal; the network with both beats the clinical model alone
    assert auc["scan"] > 0.6
    assert fu["fused"]["metrics"]["auroc"]["estimate"] > auc["clinical"]
    assert res.selected == "fusion (joint)"
    bundle = load_bundle(res.bundle_path)
    assert bundle.manifest["image_blocks"] == {"scan": {"size": 16}}
    assert bundle.manifest["blocks"]["scan"].endswith("scans.csv")
    assert not any(c.startswith("px|") for c, v in bundle.manifest["reference_values"].items() if v is not None)
    # new patients: two with a scan, one without; the images come as the bundle's block
    from pmed.study.predict import new_patient_features, predict_and_explain

    new = df.drop(columns=["event", "sbp"]).head(3)
    with_scan = scans[scans["patient_id"].isin(new["patient_id"])]
    new_manifest = tmp_path / "new_scans.csv"
    with_scan.assign(path=[str(tmp_path / p) for p in with_scan["path"]]).to_csv(new_manifest, index=False)
    X = new_patient_features(bundle, new, blocks={"scan": new_manifest})
    pred, factors = predict_and_explain(bundle, X)
    used = dict(zip(pred.index, pred["modalities_used"], strict=True))
    for pid in new["patient_id"]:
        assert used[pid] == ("clinical+scan" if pid in set(with_scan["patient_id"]) else "clinical")
    assert pred["probability"].between(0, 1).all()
    assert all(not str(f).startswith("px|") for fs in factors for f in fs["feature"])  # no pixel "factors"


def test_image_ids_that_do_not_match_the_cohort(tmp_path):
    df, scans = _cohort(tmp_path, n=60)
    scans.assign(patient_id="X" + scans["patient_id"]).to_csv(tmp_path / "other.csv", index=False)
    (tmp_path / "study.yaml").write_text(STUDY.format(images="other.csv"))
    with pytest.raises(StudyError, match="none of the .* images belongs to a patient") as e:
        run_study(tmp_path / "study.yaml", tmp_path / "out")
    assert "P00" not in str(e.value)  # counts, never IDs
    # a few foreign images and patients without one: a warning by counts, and the study runs
    part = pd.concat([scans.head(30), scans.head(5).assign(patient_id=lambda d: "X" + d["patient_id"])])
    part.to_csv(tmp_path / "part.csv", index=False)
    (tmp_path / "s2.yaml").write_text(STUDY.format(images="part.csv"))
    from pmed.study.fusion import add_image_blocks
    from pmed.study.run import load_cohort
    from pmed.study.spec import load_study

    study = load_study(tmp_path / "s2.yaml")
    cohort = load_cohort(study)
    X = cohort.features(["patients"])
    with pytest.warns(PmedWarning, match=r"30 of 60 patients have no image.*5 images belong to no patient"):
        Xf = add_image_blocks(study, cohort, X)
    pixels = Xf.filter(like="px|")
    assert pixels.shape[1] == 16 * 16 and int(pixels.notna().any(axis=1).sum()) == 30
    assert pixels.loc[scans["patient_id"].head(30)].notna().all().all()
