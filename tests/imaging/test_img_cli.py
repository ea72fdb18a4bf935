"""`pmed imaging train | predict | explain | embed | deidentify` on small synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from img_fixtures import one_torch_thread  # noqa: E402, F401 (autouse fixture)
from typer.testing import CliRunner  # noqa: E402

from pmed.cli.imaging import app  # noqa: E402
from pmed.imaging.synthetic import make_lesion_images, write_lesion_manifest  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    d = tmp_path_factory.mktemp("npz")
    X, y, _ = make_lesion_images(120, size=16, seed=0)
    Xv, yv, _ = make_lesion_images(40, size=16, seed=1)
    Xt, yt, _ = make_lesion_images(30, size=16, seed=2)
    u8 = lambda a: np.round(a[:, 0] * 255).astype(np.uint8)  # noqa: E731
    np.savez(d / "lesions.npz", train_images=u8(X), train_labels=y[:, None], val_images=u8(Xv),
             val_labels=yv[:, None], test_images=u8(Xt), test_labels=yt[:, None])
    return d / "lesions.npz"


@pytest.fixture(scope="module")
def trained(npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m"
    torch.set_num_threads(1)
    r = runner.invoke(app, ["train", "--data", str(npz), "--out", str(out), "--arch", "cnn", "--epochs", "3",
                            "--batch-size", "32", "--lr", "0.003", "--bootstrap", "50", "--no-progress"])
    assert r.exit_code == 0, r.output
    return out, r.output


def test_train_writes_model_and_evaluation(trained):
    out, output = trained
    assert "validation (40 images): AUROC" in output
    for f in ("model.pt", "config.json", "checkpoint.pt", "history.csv", "val_predictions.csv",
              "evaluation/metrics.json", "evaluation/report.html", "evaluation/confusion_matrix.csv",
              "plots/training_curves.png"):
        assert (out / f).exists(), f
    ev = json.loads((out / "evaluation" / "metrics.json").read_text())
    auc = ev["models"]["cnn"]["metrics"]["auroc"]
    assert auc["ci_low"] <= auc["estimate"] <= auc["ci_high"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["image_shape"] == [1, 16, 16] and cfg["data"]["n_train"] == 120
    assert len(pd.read_csv(out / "history.csv")) == 3


def test_predict_one_row_per_image(trained, npz, tmp_path):
    out, _ = trained
    r = runner.invoke(app, ["predict", "--model", str(out), "--data", str(npz), "--split", "test",
                            "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 0, r.output
    p = pd.read_csv(tmp_path / "p.csv")
    assert len(p) == 30 and list(p.columns) == ["index", "patient_id", "split", "label", "prob_0", "prob_1"]
    np.testing.assert_allclose(p["prob_0"] + p["prob_1"], 1, atol=1e-6)


def test_explain_and_embed(trained, npz, tmp_path):
    out, _ = trained
    r = runner.invoke(app, ["explain", "--model", str(out), "--data", str(npz), "--split", "val", "--id", "val_3",
                            "--id", "val_5", "--out", str(tmp_path / "maps")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "maps").glob("*.png")) == ["val_3_gradcam.png", "val_5_gradcam.png"]
    r = runner.invoke(app, ["explain", "--model", str(out), "--data", str(npz), "--id", "nobody",
                            "--out", str(tmp_path / "maps")])
    # the missing ID is named by its position, never echoed (an ID identifies a patient)
    assert r.exit_code != 0 and "1 of 1 --id values is not in split 'val' (--id number 1)" in str(r.exception)
    assert "nobody" not in str(r.exception)
    # the failed run left the earlier heat maps as they were
    assert sorted(p.name for p in (tmp_path / "maps").glob("*.png")) == ["val_3_gradcam.png", "val_5_gradcam.png"]
    r = runner.invoke(app, ["embed", "--model", str(out), "--data", str(npz), "--split", "test",
                            "--out", str(tmp_path / "emb.csv")])
    assert r.exit_code == 0, r.output
    e = pd.read_csv(tmp_path / "emb.csv")
    assert e.shape == (30, 1 + 64) and e["patient_id"].iloc[0] == "test_0"


def test_train_on_manifest_and_resume(tmp_path):
    X, y, meta = make_lesion_images(48, size=16, seed=3)
    ids = meta.index.tolist()
    write_lesion_manifest(tmp_path / "data", X, y, ids, splits=["train"] * 36 + ["val"] * 12)
    args = ["train", "--data", str(tmp_path / "data" / "manifest.csv"), "--out", str(tmp_path / "m"), "--arch",
            "cnn", "--width", "0.5", "--epochs", "2", "--batch-size", "16", "--bootstrap", "20", "--no-progress"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    pred = pd.read_csv(tmp_path / "m" / "val_predictions.csv")
    assert pred["patient_id"].tolist() == ids[36:]
    # resuming a finished run trains nothing more and gives the same model
    r2 = runner.invoke(app, args + ["--resume"])
    assert r2.exit_code == 0, r2.output
    pred2 = pd.read_csv(tmp_path / "m" / "val_predictions.csv")
    np.testing.assert_allclose(pred["prob_1"], pred2["prob_1"], atol=1e-6)


def test_bad_npz_reports_keys(tmp_path):
    np.savez(tmp_path / "bad.npz", images=np.zeros((3, 8, 8)))
    r = runner.invoke(app, ["train", "--data", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "m")])
    assert r.exit_code != 0
    assert "train_images" in str(r.exception) and "bad.npz" in str(r.exception)


def test_deidentify_command(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    ct = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
    if not ct.exists():
        pytest.skip(f"pydicom test file {ct} is absent")
    r = runner.invoke(app, ["deidentify", str(ct), str(tmp_path / "out"), "--mapping", str(tmp_path / "map.csv")])
    assert r.exit_code == 0, r.output
    assert "de-identified 1 DICOM files of 1 patient(s)" in r.output
    assert (tmp_path / "map.csv").exists() and len(list((tmp_path / "out").glob("*.dcm"))) == 1
