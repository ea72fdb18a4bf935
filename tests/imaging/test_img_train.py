"""Augmentation determinism, a CNN that learns synthetic lesions, checkpoints, Grad-CAM, embeddings."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from img_fixtures import one_torch_thread  # noqa: E402, F401 (autouse fixture)

from pmed.cohort import Cohort  # noqa: E402
from pmed.errors import BundleError, InputError  # noqa: E402
from pmed.imaging.synthetic import make_lesion_images  # noqa: E402
from pmed.imaging.train import ImageClassifier  # noqa: E402
from pmed.imaging.transforms import AugmentConfig, Augmenter  # noqa: E402


@pytest.fixture(scope="module")
def lesions():
    X, y, meta = make_lesion_images(240, size=24, seed=1)
    Xv, yv, meta_v = make_lesion_images(100, size=24, seed=2)
    return X, y, Xv, yv, meta_v


@pytest.fixture(scope="module")
def fitted(lesions):
    X, y, Xv, yv, _ = lesions
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    clf = ImageClassifier(arch="cnn", max_epochs=6, batch_size=32, lr=3e-3, patience=3, random_state=0, device="cpu")
    clf.fit(X, y, X_val=Xv, y_val=yv)
    clf.elapsed_ = time.perf_counter() - t0
    return clf


def test_synthetic_labels_follow_the_lesion():
    X, y, meta = make_lesion_images(60, size=32, seed=5)
    assert X.shape == (60, 1, 32, 32) and X.dtype == np.float32
    assert 0 <= X.min() and X.max() <= 1
    pos = meta[meta["label"] == 1]
    assert pos["lesion_row"].notna().all() and meta.loc[meta["label"] == 0, "lesion_row"].isna().all()
    # the lesion centre is brighter than the image mean in every positive image
    for k, (_pid, r) in enumerate(meta.iterrows()):
        if r.label == 1:
            assert X[k, 0, int(round(r.lesion_row)), int(round(r.lesion_col))] > X[k, 0].mean() + 0.15
    X2, y2, _ = make_lesion_images(labels=[1, 0, 1], ids=["a", "b", "c"], seed=0)
    assert y2.tolist() == [1, 0, 1] and len(X2) == 3


def test_augmentation_is_seeded_and_changes_images():
    X, _, _ = make_lesion_images(16, size=24, seed=3)
    a1 = Augmenter(seed=11)(X)
    a2 = Augmenter(seed=11)(X)
    a3 = Augmenter(seed=12)(X)
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, a3)
    assert not np.array_equal(a1, X)
    assert a1.shape == X.shape and a1.dtype == np.float32
    aug = Augmenter(seed=11)
    first = aug(X)
    aug.reseed(11)
    np.testing.assert_array_equal(aug(X), first)
    # flips only: each output is the input or its mirror image
    only_flip = Augmenter(AugmentConfig(flip_lr=0.5, rotate_prob=0, crop_prob=0, contrast=0, shift=0, noise=0),
                          seed=0)(X)
    for o, x in zip(only_flip, X, strict=True):
        assert np.array_equal(o, x) or np.array_equal(o, x[:, :, ::-1])


def test_tiny_cnn_learns_synthetic_lesions_fast(fitted, lesions):
    from sklearn.metrics import roc_auc_score

    _, _, Xv, yv, _ = lesions
    p = fitted.predict_proba(Xv)[:, 1]
    assert roc_auc_score(yv, p) > 0.95
    assert fitted.elapsed_ < 60
    assert fitted.classes_.tolist() == [0, 1]
    assert {"train_loss", "val_loss", "val_auroc", "val_accuracy"} <= set(fitted.history_.columns)
    assert 1 <= fitted.best_epoch_ <= len(fitted.history_)
    assert fitted.best_score_ == pytest.approx(fitted.history_["val_auroc"].max())
    assert np.array_equal(fitted.predict(Xv), fitted.classes_[(p >= 0.5).astype(int)])


def test_batch_inference_independent_of_batch_size(fitted, lesions):
    _, _, Xv, _, _ = lesions
    np.testing.assert_allclose(fitted.predict_proba(Xv, batch_size=7), fitted.predict_proba(Xv, batch_size=100),
                               atol=1e-5)


def test_save_load_roundtrip(fitted, lesions, tmp_path):
    _, _, Xv, _, _ = lesions
    fitted.save(tmp_path / "m")
    back = ImageClassifier.load(tmp_path / "m")
    np.testing.assert_allclose(back.predict_proba(Xv), fitted.predict_proba(Xv), atol=1e-6)
    with pytest.raises(BundleError, match="model.pt"):
        ImageClassifier.load(tmp_path)
    with pytest.raises(InputError, match="trained on"):
        back.predict_proba(np.zeros((2, 1, 20, 20), np.float32))


def test_resume_reproduces_an_uninterrupted_run(tmp_path, monkeypatch):
    import pmed.imaging.train as T
    X, y, _ = make_lesion_images(64, size=16, seed=4)
    Xv, yv, _ = make_lesion_images(32, size=16, seed=5)
    kw = dict(arch="cnn", width=0.5, batch_size=16, lr=3e-3, patience=None, random_state=3, device="cpu")
    full = ImageClassifier(max_epochs=3, **kw).fit(X, y, X_val=Xv, y_val=yv)
    # "interrupted" after 2 epochs: same settings, then resumed to 3
    calls = []

    def crash_after_two(self, row):
        calls.append(row["epoch"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after epoch 2 was checkpointed

    with monkeypatch.context() as m:
        m.setattr(T._Progress, "advance", crash_after_two)
        with pytest.raises(KeyboardInterrupt):
            ImageClassifier(max_epochs=3, checkpoint_dir=tmp_path, **kw).fit(X, y, X_val=Xv, y_val=yv)
    resumed = ImageClassifier(max_epochs=3, checkpoint_dir=tmp_path, **kw).fit(X, y, X_val=Xv, y_val=yv, resume=True)
    assert len(resumed.history_) == 3
    np.testing.assert_allclose(resumed.history_["train_loss"], full.history_["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(resumed.predict_proba(Xv), full.predict_proba(Xv), atol=1e-5)
    with pytest.raises(BundleError, match="other settings or other data"):
        ImageClassifier(max_epochs=3, checkpoint_dir=tmp_path, **kw).fit(X[:-1], y[:-1], X_val=Xv, y_val=yv,
                                                                      resume=True)


def test_class_weights_balanced(fitted):
    clf = ImageClassifier(class_weight="balanced")  # opt-in: the default is unweighted
    clf.classes_ = np.array([0, 1])
    w = clf._class_weights(np.array([0, 0, 0, 1]), 2)
    np.testing.assert_allclose(w, [4 / 6, 4 / 2])


def test_fit_input_errors():
    with pytest.raises(InputError, match="single class"):
        ImageClassifier(arch="cnn", max_epochs=1).fit(np.zeros((4, 1, 16, 16)), np.zeros(4, int))
    with pytest.raises(InputError, match=r"\(N, C, H, W\)"):
        ImageClassifier(arch="cnn", max_epochs=1).fit(np.zeros((4, 16)), np.array([0, 1, 0, 1]))


def test_resnet18_forward_and_features():
    from pmed.imaging.models import build_model

    m = build_model("resnet18", in_channels=1, n_classes=2).eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert m(x).shape == (2, 2)
        assert m.features(x).shape == (2, 512)
    assert dict(m.named_modules())[m.cam_layer] is m.backbone.layer4


def test_grad_cam_points_at_the_lesion(fitted, lesions):
    from pmed.imaging.explain import grad_cam, heatmap_peak

    _, _, Xv, yv, meta_v = lesions
    pos = np.flatnonzero(yv == 1)[:12]
    maps = grad_cam(fitted, Xv[pos])
    assert maps.shape == (len(pos), 24, 24) and maps.min() >= 0 and maps.max() <= 1
    layer = dict(fitted.model_.named_modules())[fitted.model_.cam_layer]
    assert not layer._forward_hooks and not layer._backward_hooks  # MONAI's hooks removed
    hits = 0
    for k, i in enumerate(pos):
        r, c = heatmap_peak(maps[k])
        m = meta_v.iloc[i]
        hits += np.hypot(r - m.lesion_row, c - m.lesion_col) <= 2.5 * m.lesion_radius
    assert hits >= 0.75 * len(pos)


def test_heatmap_pngs_written(fitted, lesions, tmp_path):
    from pmed.imaging.explain import save_heatmaps

    _, _, Xv, yv, _ = lesions
    paths = save_heatmaps(fitted, Xv[:2], tmp_path, ids=["p/1", "p2"], labels=yv[:2])
    assert [p.name for p in paths] == ["p_1_gradcam.png", "p2_gradcam.png"]


def test_heatmap_names_stay_inside_and_distinct(fitted, lesions, tmp_path):
    from pmed.imaging.explain import save_heatmaps

    _, _, Xv, yv, _ = lesions
    ids = ["../../x", "a/b", "a_b", "A_B", "x" * 300, ".."]
    out = tmp_path / "maps"
    paths = save_heatmaps(fitted, Xv[: len(ids)], out, ids=ids, labels=yv[: len(ids)])
    assert len({p.name.casefold() for p in paths}) == len(ids)
    assert all(p.parent == out and p.exists() and len(p.name) < 130 for p in paths)
    assert sorted(q.name for q in tmp_path.rglob("*.png")) == sorted(p.name for p in paths)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    occ = save_heatmaps(fitted, Xv[:1], tmp_path, method="occlusion")
    assert occ[0].exists()


def test_embeddings_become_a_cohort_block(fitted, lesions):
    from pmed.imaging.embeddings import add_image_block, image_embeddings

    _, _, Xv, yv, _ = lesions
    ids = np.array([f"P{i // 2}" for i in range(20)])  # two images per patient
    emb = image_embeddings(fitted, Xv[:20], ids)
    assert emb.shape == (10, 64) and emb.index.name == "patient_id"
    z = fitted.embed(Xv[:2])
    np.testing.assert_allclose(emb.loc["P0"].to_numpy(), z.mean(0), rtol=1e-5, atol=1e-6)
    cohort = Cohort(pd.DataFrame({"age": np.arange(10)}, index=[f"P{i}" for i in range(10)]))
    add_image_block(cohort, emb, provenance={"file": "synthetic"})
    assert "image_embedding" in cohort.blocks
    assert cohort.blocks["image_embedding"].data.shape == (10, 64)
    small = image_embeddings(fitted, Xv[:20], ids, n_components=3)
    assert small.shape == (10, 3)


def test_evaluation_through_the_engine(fitted, lesions, tmp_path):
    from pmed.evaluate.discrimination import delong_auc
    from pmed.imaging.evaluation import evaluate_images, predictions_table

    _, _, Xv, yv, _ = lesions
    pred = predictions_table(fitted, Xv, ids=[f"v{i}" for i in range(len(yv))], labels=yv, split="val")
    assert list(pred.columns) == ["index", "patient_id", "split", "label", "prob_0", "prob_1"]
    np.testing.assert_allclose(pred[["prob_0", "prob_1"]].sum(1), 1, atol=1e-6)
    ev, paths = evaluate_images(pred, out=tmp_path / "ev", n_boot=50)
    auc = ev["models"]["cnn"]["metrics"]["auroc"]
    ref = delong_auc(yv, pred["prob_1"].to_numpy())
    assert auc["estimate"] == pytest.approx(ref["estimate"])
    assert auc["ci_low"] <= auc["estimate"] <= auc["ci_high"]
    cm = np.array(ev["confusion_matrix"]["matrix"])
    assert cm.sum() == len(yv) and cm[1].sum() == yv.sum()
    for k in ("metrics", "report", "confusion_matrix"):
        assert paths[k].exists()
