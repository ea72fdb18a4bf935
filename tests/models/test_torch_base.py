"""TorchEstimator: device choice, deprecated names, class weights, progress, resumable GRU-D."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.base import clone  # noqa: E402

from pmed.errors import OptionError, PmedWarning  # noqa: E402
from pmed.timeseries.grud import GRUDClassifier  # noqa: E402


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    X[rng.random((n, 3)) < 0.2] = np.nan  # not measured
    y = (np.nan_to_num(X[:, 0]) + rng.normal(0, 0.5, n) > 0).astype(int)
    return X, y


def test_device_auto_picks_cuda_when_present(monkeypatch):
    est = GRUDClassifier()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert est._device().type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert est._device().type == "cuda"
    assert GRUDClassifier(device="cpu")._device().type == "cpu"
    with pytest.raises(OptionError, match="unknown device"):
        GRUDClassifier(device="abacus")._device()


def test_deprecated_names_still_work_with_a_warning():
    X, y = _data()
    new = GRUDClassifier(hidden_size=4, max_epochs=2, random_state=3, n_jobs=1).fit(X, y)
    with pytest.warns(PmedWarning, match="seed=.*deprecated"):
        old = GRUDClassifier(hidden_size=4, epochs=2, seed=3, n_threads=1).fit(X, y)
    np.testing.assert_allclose(old.predict_proba(X), new.predict_proba(X))
    assert len(old.history_) == 2
    assert clone(old).get_params()["seed"] == 3


def test_settings_are_checked_and_class_weight_is_opt_in():
    X, y = _data()
    with pytest.raises(OptionError, match="class_weight"):
        GRUDClassifier(class_weight="heavy").fit(X, y)
    with pytest.raises(OptionError, match="max_epochs"):
        GRUDClassifier(max_epochs=0).fit(X, y)
    est = GRUDClassifier(class_weight="balanced")
    est.classes_ = np.array([0, 1])
    np.testing.assert_allclose(est._class_weight_vector(np.array([0, 0, 0, 1]), 2), [4 / 6, 2.0])
    np.testing.assert_allclose(GRUDClassifier()._class_weight_vector(np.array([0, 0, 0, 1]), 2), [1, 1])
    weighted = GRUDClassifier(hidden_size=4, max_epochs=3, class_weight="balanced", n_jobs=1).fit(X, y)
    plain = GRUDClassifier(hidden_size=4, max_epochs=3, n_jobs=1).fit(X, y)
    assert not np.allclose(weighted.predict_proba(X), plain.predict_proba(X))


def test_progress_reporter_and_resumable_checkpoint(tmp_path):
    X, y = _data()
    seen = []

    class Rec:
        def start(self, total, description=""):
            seen.append(("start", total))

        def advance(self, description=None, n=1):
            seen.append(("advance", description))

    kw = dict(hidden_size=4, max_epochs=4, patience=None, random_state=1, n_jobs=1)
    full = GRUDClassifier(**kw).fit(X, y, progress=Rec())
    assert seen[0] == ("start", 4) and sum(s[0] == "advance" for s in seen) == 4
    # two epochs, checkpointed; then the same settings resume to four
    GRUDClassifier(**{**kw, "max_epochs": 2}).fit(X, y, checkpoint_dir=tmp_path)
    assert (tmp_path / "checkpoint.pt").exists()
    # max_epochs differs, so this checkpoint belongs to other settings
    from pmed.errors import BundleError

    with pytest.raises(BundleError, match="other settings"):
        GRUDClassifier(**kw).fit(X, y, checkpoint_dir=tmp_path, resume=True)
    # killed after epoch 2 was checkpointed, then resumed: the same model as an uninterrupted run
    from pmed.models.torch_base import EpochProgress

    calls = []

    def crash_after_two(self, row):
        calls.append(row["epoch"])
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as m:
        m.setattr(EpochProgress, "advance", crash_after_two)
        with pytest.raises(KeyboardInterrupt):
            GRUDClassifier(**kw).fit(X, y, checkpoint_dir=tmp_path / "b")
    resumed = GRUDClassifier(**kw).fit(X, y, checkpoint_dir=tmp_path / "b", resume=True)
    assert len(resumed.history_) == 4
    np.testing.assert_allclose([h["train_loss"] for h in resumed.history_],
                               [h["train_loss"] for h in full.history_], rtol=1e-5)
    np.testing.assert_allclose(resumed.predict_proba(X), full.predict_proba(X), atol=1e-6)
