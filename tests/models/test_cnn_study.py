"""`family: cnn` in a study: images given as a column of paths, cross-validated, bundled, applied."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pmed.errors import InputError, StudyError
from pmed.models import make_model

pytest.importorskip("torch")
PIL = pytest.importorskip("PIL.Image")


def _images(folder, n=40, seed=0, prefix="p"):
    """``n`` 16×16 grey PNGs: events have a bright square in the top-left corner (an easy signal)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        y = i % 2
        a = rng.integers(0, 60, size=(16, 16)).astype(np.uint8)
        if y:
            a[2:9, 2:9] = 230
        path = folder / f"{prefix}{i}.png"
        PIL.fromarray(a, mode="L").save(path)
        rows.append({"patient_id": f"{prefix}{i}", "event": y, "image": str(path)})
    return pd.DataFrame(rows)


_PARAMS = "{max_epochs: 3, size: 16, batch_size: 8, lr: 0.01, augment: false, n_jobs: 1, device: cpu}"


def test_cnn_in_a_study_writes_metrics_and_a_bundle_that_scores_new_patients(tmp_path):
    from pmed.study import load_bundle, predict_patients, run_study

    _images(tmp_path / "img").to_csv(tmp_path / "patients.csv", index=False)
    (tmp_path / "s.yaml").write_text(
        "name: cnn-study\ndata:\n  patients: patients.csv\n"
        "target: {column: event, task: binary}\n"
        f"models:\n  - {{family: cnn, params: {_PARAMS}}}\n"
        "evaluation: {folds: 3, bootstrap: 0, report: false}\n")
    r = run_study(tmp_path / "s.yaml", tmp_path / "out")
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["selected_model"] == "cnn" and m["models"]["cnn"]["class_weight"] is None
    auroc = m["models"]["cnn"]["metrics"]["auroc"]["estimate"]
    assert auroc > 0.8  # the square is easy to see

    bundle = load_bundle(r.bundle_path)
    assert bundle.pipeline.named_steps["model"].image_column_ == "image"
    new = _images(tmp_path / "new", n=6, seed=1, prefix="q").drop(columns="event")
    # the fitted pipeline, loaded from the bundle, reads images it never saw
    p_new = bundle.pipeline.predict_proba(new.set_index("patient_id")[["image"]])[:, 1]
    assert p_new[1::2].mean() > p_new[0::2].mean()
    # image paths never seen in training are read as written (a free-text column)
    pred = predict_patients(bundle, new)
    assert list(pred.index) == list(new["patient_id"]) and pred["probability"].between(0, 1).all()
    assert pred["probability"].iloc[1::2].mean() > pred["probability"].iloc[0::2].mean()


def test_cnn_pipeline_finds_the_image_column_and_survives_pickling(tmp_path):
    import pickle

    df = _images(tmp_path / "img", n=16).set_index("patient_id").rename(columns={"image": "scan_path"})
    X = df[["scan_path"]].assign(age=np.arange(16.0))
    pipe = make_model("cnn", task="binary", X=X, params={"max_epochs": 1, "size": 8, "n_jobs": 1,
                                                         "device": "cpu", "augment": False})
    pipe.fit(X, df["event"])
    model = pipe.named_steps["model"]
    assert model.image_column_ == "scan_path" and model.arch == "cnn" and model.class_weight is None
    p = pipe.predict_proba(X)[:, 1]
    back = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(back.predict_proba(X)[:, 1], p, atol=1e-6)


def test_cnn_refuses_tables_without_images_and_missing_files(tmp_path):
    X = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}, index=["p0", "p1"])
    with pytest.raises(StudyError, match="column of image file paths"):
        make_model("cnn", task="binary", X=X)
    with pytest.raises(StudyError, match="image_column 'scan' is not among"):
        make_model("cnn", task="binary", X=X, params={"image_column": "scan"})
    df = _images(tmp_path / "img", n=4).set_index("patient_id")
    df.loc["p1", "image"] = str(tmp_path / "gone.png")
    df.loc["p2", "image"] = str(tmp_path / "also-gone.png")
    with pytest.raises(StudyError, match=r"2 of 4 paths in column 'image' do not exist") as e:
        make_model("cnn", task="binary", X=df[["image"]])
    assert "p1" not in str(e.value)
    # found at fit/predict time as well (files removed after the model was built)
    ok = _images(tmp_path / "img2", n=4).set_index("patient_id")
    pipe = make_model("cnn", task="binary", X=ok[["image"]], params={"max_epochs": 1, "size": 8})
    (tmp_path / "img2" / "p3.png").unlink()
    with pytest.raises(InputError, match=r"column 'image': 1 of 4 image paths do not exist"):
        pipe.fit(ok[["image"]], ok["event"])
