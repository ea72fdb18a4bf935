"""Real data: a brief CNN training on BreastMNIST (../shared/data/imaging) reaches a modest AUROC."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pmed.datasets._paths import shared_data_dir

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

NPZ = "data/imaging/breastmnist_28_trainval.npz"


@pytest.fixture(scope="module")
def breast():
    from pmed.imaging.readers import read_npz

    path = shared_data_dir() / NPZ
    if not path.exists():
        pytest.skip(f"BreastMNIST file {path} is absent (set PMED_SHARED to the folder holding {NPZ})")
    return read_npz(path)


def test_breastmnist_file_layout(breast):
    X, y, ids = breast.split("train")
    assert X.shape == (546, 1, 28, 28) and len(breast.labels["val"]) == 78
    # the published class balance: 0 = malignant (about 27 %), 1 = normal/benign
    assert np.bincount(y).tolist() == [147, 399]
    assert 0.0 <= X.min() and X.max() <= 1.0


@pytest.mark.realdata
def test_breastmnist_brief_cnn_training(breast):
    """5 epochs of the compact CNN; AUROC on 100 training images held out from fitting and from
    early stopping (the val split chooses the epoch), so the check is not optimistic."""
    from sklearn.metrics import roc_auc_score

    from pmed.imaging.train import ImageClassifier

    X, y, _ = breast.split("train")
    Xv, yv, _ = breast.split("val")
    perm = np.random.default_rng(0).permutation(len(X))
    held, fit = perm[:100], perm[100:]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        clf = ImageClassifier(arch="cnn", epochs=5, batch_size=32, lr=2e-3, patience=None, seed=0,
                              device="cpu").fit(X[fit], y[fit], X_val=Xv, y_val=yv)
        elapsed = time.perf_counter() - t0
    finally:
        torch.set_num_threads(n)
    auc = roc_auc_score(y[held], clf.predict_proba(X[held])[:, 1])
    assert auc > 0.75, auc  # 0.82 on the development machine (CPU, seed 0)
    assert elapsed < 60
