"""The demo's imaging block: images for cohort patients, a lesion CNN, embeddings by patient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")


def test_imaging_demo_block(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    from pmed.imaging.demo import imaging_demo

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ids = [f"P{i:03d}" for i in range(80)]
        outcome = np.r_[np.zeros(40, int), np.ones(40, int)]
        res = imaging_demo(ids, outcome, tmp_path / "img", size=24, n_reference=240, epochs=4, n_heatmaps=2)
    finally:
        torch.set_num_threads(n)
    emb = res["embedding"]
    assert emb.shape == (80, 8) and emb.index.tolist() == ids
    assert res["lesion_auroc"] > 0.9
    written = pd.read_csv(tmp_path / "img" / "embedding.csv")
    assert written["patient_id"].tolist() == ids
    assert len(res["paths"]["heatmaps"]) == 2 and (tmp_path / "img" / "model" / "model.pt").exists()
    assert len(list((tmp_path / "img" / "images").glob("*.png"))) == 80
    # the embedding carries the lesion (what the CNN learnt), which is more frequent with disease
    lesion = res["truth"]["label"].to_numpy()
    p = cross_val_predict(LogisticRegression(max_iter=1000), emb.to_numpy(), lesion, cv=4,
                          method="predict_proba")[:, 1]
    assert roc_auc_score(lesion, p) > 0.85
    assert lesion[outcome == 1].mean() > lesion[outcome == 0].mean()
