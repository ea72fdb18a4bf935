"""Joint fusion (pmed.fusion.joint.JointFusion): one network over several modalities, trained
end to end with modality dropout and per-patient modality masks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from sklearn.base import clone, is_classifier, is_regressor  # noqa: E402
from sklearn.metrics import log_loss, r2_score, roc_auc_score  # noqa: E402

from pmed.errors import OptionError, PmedWarning, ValidationError  # noqa: E402
from pmed.fusion.joint import (  # noqa: E402
    PIXEL_PREFIX,
    JointFusion,
    _drop_modalities,
    pixel_column_names,
    split_pixel_columns,
)

A = [f"a{i}" for i in range(5)]
B = [f"b{i}" for i in range(5)]
C = [f"c{i}" for i in range(5)]
MODS = {"a": ["a*"], "b": ["b*"], "c": ["c*"]}
# small and fast: one CPU thread, CPU even where a GPU is present (results must match exactly)
FAST = {"n_jobs": 1, "device": "cpu"}


def _cohort(n: int = 600, seed: int = 0, task: str = "binary") -> tuple[pd.DataFrame, np.ndarray]:
    """Three modalities of five columns: a0 and b0 carry the signal, c is noise."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 15))
    X = pd.DataFrame(Z, columns=A + B + C, index=[f"P{i:04d}" for i in range(n)])
    lin = 1.5 * Z[:, 0] + 1.5 * Z[:, 5]
    if task == "binary":
        return X, (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int)
    return X, 10.0 + 2.0 * lin + rng.normal(0, 1.5, n)


@pytest.fixture(scope="module")
def fitted():
    """A joint model fitted on the first 400 patients of the cohort (the rest held out)."""
    X, y = _cohort()
    return JointFusion(MODS, random_state=0, **FAST).fit(X.iloc[:400], y[:400]), X, y


# ---------------------------------------------------------------- signal
def test_two_modalities_beat_one_on_held_out_patients(fitted):
    model, X, y = fitted
    te = slice(400, None)
    auc = roc_auc_score(y[te], model.predict_proba(X.iloc[te])[:, 1])
    only_a = JointFusion({"a": ["a*"]}, random_state=0, **FAST).fit(X.iloc[:400][A], y[:400])
    auc_a = roc_auc_score(y[te], only_a.predict_proba(X.iloc[te][A])[:, 1])
    # the true risk's AUROC on these patients is 0.88; a on its own cannot rank by b0's half
    assert auc > 0.8
    assert auc > auc_a + 0.05
    assert model.predict(X.iloc[te]).tolist() == (
        model.predict_proba(X.iloc[te])[:, 1] > 0.5).astype(int).tolist()
    assert is_classifier(model) and model.history_ and 1 <= model.best_epoch_ <= len(model.history_)
    assert model.kinds_ == {"a": "tabular", "b": "tabular", "c": "tabular"}
    assert model.columns_["b"] == B and model.n_patients_ == {"a": 400, "b": 400, "c": 400}


# ---------------------------------------------------------------- missing modalities
def test_a_patient_lacking_a_modality_is_predicted_from_the_others(fitted):
    model, X, _ = fitted
    Xt = X.iloc[400:].copy()
    Xt.iloc[:50, Xt.columns.get_indexer(B)] = np.nan
    p = model.predict_proba(Xt)[:, 1]
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    used = model.modalities_used(Xt)
    assert used.index.equals(Xt.index) and used.name == "modalities_used"
    assert set(used.iloc[:50]) == {"a+c"} and set(used.iloc[50:]) == {"a+b+c"}
    # the mask is used: hiding b changes the prediction of a patient who has it
    full = model.predict_proba(X.iloc[400:])[:, 1]
    assert np.abs(full[:50] - p[:50]).mean() > 0.05
    np.testing.assert_array_equal(full[50:], p[50:])  # rows are predicted independently


def test_a_patient_with_no_modality_gets_the_prior_with_a_warning(fitted):
    model, X, y = fitted
    Xt = X.iloc[400:405].copy()
    Xt.iloc[0] = np.nan
    with pytest.warns(PmedWarning, match="1 of 5 patients have no modality"):
        p = model.predict_proba(Xt)[:, 1]
    assert p[0] == pytest.approx(y[:400].mean())
    assert model.modalities_used(Xt).iloc[0] == ""
    # nor are such patients used in fitting (warned too)
    Xf, yf = X.iloc[:200].copy(), y[:200]
    Xf.iloc[:10] = np.nan
    with pytest.warns(PmedWarning, match="10 of 200 patients have no modality"):
        m = JointFusion(MODS, max_epochs=2, **FAST).fit(Xf, yf)
    # the prior is over every training patient, as LateFusion's
    assert m.prior_ == pytest.approx(yf.mean()) and m.n_patients_["a"] == 190


def test_table_without_a_modality_column_is_refused(fitted):
    model, X, _ = fitted
    with pytest.raises(ValidationError, match="lacks 1 column"):
        model.predict_proba(X.drop(columns="b3"))


def test_modality_dropout_never_hides_all_of_a_patients_modalities():
    torch.manual_seed(0)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]).repeat(2000, 1)
    kept = _drop_modalities(torch, mask, 0.9)
    assert (kept <= mask).all()  # an absent modality never appears
    assert (kept.sum(dim=1) >= 1).all()
    # a present modality is hidden at about the rate asked, the last one standing aside
    full = kept[0::3]
    assert 0.05 < full.mean().item() < 0.5
    assert (kept[1::3, 0] == 1).all()  # a patient with one modality always keeps it
    assert torch.equal(_drop_modalities(torch, mask, 0.0), mask)


def test_modality_dropout_makes_single_modality_predictions_better():
    """b is a sharper copy of a's signal, so without modality dropout the head leans on b and
    its predictions from a alone (b masked) are miscalibrated. Their ranking hardly changes
    (AUROC differs by < 0.01 in trials with seeds 0-4), so the log loss is what is compared; it
    was lower with dropout for every one of those seeds."""
    rng = np.random.default_rng(0)
    n = 700
    z = rng.normal(size=n)
    Xa, Xb = rng.normal(size=(n, 4)), rng.normal(size=(n, 2))
    Xa[:, 0] = z + 0.8 * rng.normal(size=n)
    Xb[:, 0] = z + 0.2 * rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2.5 * z))).astype(int)
    X = pd.DataFrame(np.hstack([Xa, Xb]), columns=["a0", "a1", "a2", "a3", "b0", "b1"])
    hidden_b = X.iloc[400:].assign(b0=np.nan, b1=np.nan)
    losses = {}
    for p in (0.0, 0.3):
        m = JointFusion({"a": ["a*"], "b": ["b*"]}, modality_dropout=p, **FAST)
        m.fit(X.iloc[:400], y[:400])
        losses[p] = log_loss(y[400:], m.predict_proba(hidden_b)[:, 1])
    assert losses[0.3] < losses[0.0] - 0.02


# ---------------------------------------------------------------- reproducibility, persistence
def test_same_seed_same_predictions_and_other_seed_others(fitted):
    model, X, y = fitted
    again = JointFusion(MODS, random_state=0, **FAST).fit(X.iloc[:400], y[:400])
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    other = JointFusion(MODS, random_state=1, **FAST).fit(X.iloc[:400], y[:400])
    assert not np.allclose(other.predict_proba(X), model.predict_proba(X))


def test_skops_round_trip_gives_identical_predictions(fitted, tmp_path):
    sio = pytest.importorskip("skops.io")
    model, X, _ = fitted
    path = tmp_path / "joint.skops"
    sio.dump(model, path)
    # the types pmed's bundle loader must trust (numpy.dtype is trusted already)
    untrusted = set(sio.get_untrusted_types(file=path))
    assert untrusted - {"numpy.dtype"} == {"pmed.fusion.joint.JointFusion"}
    back = sio.load(path, trusted=sorted(untrusted))
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))
    assert back.modalities_used(X).equals(model.modalities_used(X))


def test_sklearn_conventions():
    est = JointFusion(MODS, task="continuous", hidden=8, modality_dropout=0.1, random_state=3)
    params = est.get_params()
    for key in ("modalities", "task", "hidden", "fusion_hidden", "modality_dropout", "dropout",
                "max_epochs", "batch_size", "lr", "validation_fraction", "patience",
                "class_weight", "device", "random_state", "n_jobs"):
        assert key in params
    twin = clone(est)
    assert twin.get_params() == params and not hasattr(twin, "net_")
    assert is_regressor(est) and not is_classifier(est)
    assert not hasattr(est, "predict_proba")  # a continuous task has no probabilities
    with pytest.raises(ValueError, match="not fitted"):
        JointFusion(MODS).predict(pd.DataFrame(np.zeros((2, 15)), columns=A + B + C))


# ---------------------------------------------------------------- continuous task
def test_continuous_outcome_is_learnt_on_its_own_scale(tmp_path):
    X, y = _cohort(task="continuous")
    m = JointFusion(MODS, task="continuous", random_state=0, **FAST).fit(X.iloc[:400], y[:400])
    pred = m.predict(X.iloc[400:])
    assert r2_score(y[400:], pred) > 0.5
    assert m.y_mean_ == pytest.approx(y[:400].mean()) and m.y_scale_ == pytest.approx(y[:400].std())
    assert abs(pred.mean() - 10.0) < 1.0  # predictions are back on the outcome's scale
    assert m.score(X.iloc[400:], y[400:]) == pytest.approx(r2_score(y[400:], pred))
    # checkpoints work for a continuous task too (it has no classes_), and resuming repeats
    ck = JointFusion(MODS, task="continuous", max_epochs=3, **FAST)
    ck.fit(X.iloc[:200], y[:200], checkpoint_dir=tmp_path)
    assert (tmp_path / "checkpoint.pt").exists() and not hasattr(ck, "classes_")
    resumed = clone(ck).fit(X.iloc[:200], y[:200], checkpoint_dir=tmp_path, resume=True)
    np.testing.assert_array_equal(resumed.predict(X.iloc[200:]), ck.predict(X.iloc[200:]))


# ---------------------------------------------------------------- GRU-D grid modality
def _grid_cohort(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A heart-rate grid of 6 steps (a third of values unmeasured) whose level carries the
    outcome, beside a tabular modality of noise plus a weak signal."""
    rng = np.random.default_rng(seed)
    level = rng.normal(size=n)
    hr = 70 + 10 * level[:, None] + rng.normal(0, 4, size=(n, 6))
    m = (rng.random((n, 6)) > 1 / 3).astype(float)
    m[:, 0] = 1.0
    x = np.where(m > 0, hr, np.nan)
    d = np.zeros((n, 6))
    for t in range(1, 6):
        d[:, t] = np.where(m[:, t - 1] > 0, 1.0, d[:, t - 1] + 1.0)
    grid = {**{f"x|hr|{t}": x[:, t] for t in range(6)}, **{f"m|hr|{t}": m[:, t] for t in range(6)},
            **{f"d|hr|{t}": d[:, t] for t in range(6)}}
    tab = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * level + 0.5 * tab[:, 0])))).astype(int)
    X = pd.DataFrame({**grid, "age": tab[:, 0], "bmi": tab[:, 1], "ldl": tab[:, 2]})
    return X, y


def test_a_grid_modality_gets_a_grud_encoder_and_carries_its_signal():
    X, y = _grid_cohort()
    m = JointFusion({"vitals": ["x|*", "m|*", "d|*"], "clinical": ["age", "bmi", "ldl"]},
                    random_state=0, **FAST).fit(X.iloc[:300], y[:300])
    assert m.kinds_ == {"vitals": "grid", "clinical": "tabular"}
    assert m.grids_["vitals"]["variables"] == ["hr"] and m.grids_["vitals"]["n_steps"] == 6
    p = m.predict_proba(X.iloc[300:])
    assert p.shape == (100, 2) and np.isfinite(p).all()
    assert roc_auc_score(y[300:], p[:, 1]) > 0.75
    # a patient never measured (x all NaN, though m| and d| are filled) lacks the grid modality
    Xt = X.iloc[300:].copy()
    Xt.iloc[:5, Xt.columns.get_indexer([f"x|hr|{t}" for t in range(6)])] = np.nan
    assert m.modalities_used(Xt).iloc[:6].tolist() == ["clinical"] * 5 + ["vitals+clinical"]
    assert np.isfinite(m.predict_proba(Xt)).all()


def test_a_grid_modality_mixed_with_static_columns_is_refused():
    X, y = _grid_cohort(n=60)
    with pytest.raises(OptionError, match="mixes grid columns"):
        JointFusion({"vitals": ["x|*", "m|*", "d|*", "age"], "clinical": ["bmi"]},
                    max_epochs=1, **FAST).fit(X, y)


# ---------------------------------------------------------------- options and data
@pytest.mark.parametrize("bad, match", [
    ({"modality_dropout": 1.0}, "modality_dropout must be a number in \\[0, 1\\)"),
    ({"modality_dropout": -0.1}, "modality_dropout must be"),
    ({"dropout": 1.5}, "dropout must be"),
    ({"hidden": 0}, "hidden must be"),
    ({"task": "survival"}, "unknown task"),
    ({"modalities": {}}, "no modalities"),
    ({"modalities": {"a+b": ["a*"]}}, "without '\\+'"),
    ({"modalities": {"a": ["a*"], "z": ["zzz*"]}}, "modality 'z' matches no column"),
    ({"task": "continuous", "class_weight": "balanced"}, "class_weight applies to a binary"),
    ({"max_epochs": 0}, "max_epochs"),
])
def test_bad_options_are_refused_before_training(bad, match):
    X, y = _cohort(n=40)
    with pytest.raises(OptionError, match=match):
        JointFusion(**{"modalities": MODS, **FAST, **bad}).fit(X, y)


def test_bad_data_is_refused():
    X, y = _cohort(n=40)
    with pytest.raises(ValidationError, match="two labels"):
        JointFusion(MODS, **FAST).fit(X, np.zeros(40))
    with pytest.raises(ValidationError, match="shape"):
        JointFusion(MODS, **FAST).fit(X, y[:-1])
    with pytest.raises(ValidationError, match="no training patient has modality 'c'") as e:
        JointFusion(MODS, **FAST).fit(X.assign(**{c: np.nan for c in C}), y)
    assert e.value.fix


def test_categorical_columns_are_one_hot_encoded():
    rng = np.random.default_rng(2)
    n = 300
    X = pd.DataFrame({"a0": rng.normal(size=n),
                      "stage": pd.Categorical(rng.choice(["I", "II", "III"], n)),
                      "b0": rng.normal(size=n), "smoker": rng.integers(0, 2, n).astype(float)})
    lin = X["a0"] + 1.5 * (X["stage"] == "III") + X["smoker"]
    y = (rng.random(n) < 1 / (1 + np.exp(-lin.to_numpy()))).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PmedWarning)
        m = JointFusion({"a": ["a0", "stage"], "b": ["b0", "smoker"]}, **FAST).fit(X, y)
    # a0 (scaled) + its missingness indicator is not added (no missing value) + 3 stage levels
    assert m.n_inputs_ == {"a": 4, "b": 2}
    assert roc_auc_score(y, m.predict_proba(X)[:, 1]) > 0.7


# ---------------------------------------------------------------- image (CNN) modality
def _images(n: int = 400, seed: int = 0, *, blob=None) -> tuple[pd.DataFrame, np.ndarray]:
    """28×28 grey images of noise: a bright Gaussian blob at a random place where ``blob`` is 1
    (drawn at random when not given), the blob's brightness spread evenly over the image where
    it is 0. Every image has the same expected mean grey value, so only a spatial pattern (not
    the overall brightness) tells the classes apart. Returns the pixel table and ``blob``."""
    rng = np.random.default_rng(seed)
    blob = rng.integers(0, 2, n) if blob is None else np.asarray(blob)
    yy, xx = np.mgrid[0:28, 0:28]
    cy, cx = rng.uniform(6, 22, n)[:, None, None], rng.uniform(6, 22, n)[:, None, None]
    spot = 0.5 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)
    even = np.broadcast_to(spot.mean(axis=(1, 2), keepdims=True), spot.shape)
    img = 0.3 + rng.normal(0, 0.2, (n, 28, 28)) + np.where(blob[:, None, None] == 1, spot, even)
    X = pd.DataFrame(np.clip(img, 0, 1).reshape(n, -1), columns=pixel_column_names(28, 28),
                     index=[f"P{i:04d}" for i in range(n)])
    return X, blob


@pytest.fixture(scope="module")
def image_fitted():
    """An image-only joint model (a plain CNN) fitted on 300 of 400 synthetic images."""
    X, y = _images()
    model = JointFusion({"img": ["px|*"]}, random_state=0, **FAST).fit(X.iloc[:300], y[:300])
    return model, X, y


def test_pixel_column_names_and_their_image_size():
    names = pixel_column_names(2, 3)
    assert names == ["px|0|0", "px|0|1", "px|0|2", "px|1|0", "px|1|1", "px|1|2"]
    assert names[0].startswith(PIXEL_PREFIX)
    assert split_pixel_columns(reversed(names)) == (2, 3)  # order does not matter
    assert split_pixel_columns(pixel_column_names(64, 28)) == (64, 28)
    with pytest.raises(OptionError, match="h must be a whole number"):
        pixel_column_names(0, 3)


@pytest.mark.parametrize("columns, match", [
    (["px|0|0", "px|0|1", "px|1|0"], r"do not form a full 2×2 image: 1 of its 4 pixels have no "
                                     r"column \('px\|1\|1'\)"),
    (["px|0|0", "px|0|1", "age"], r"mixed with 1 other column\(s\): 'age'"),
    (["px|0|0", "px|01|1"], r"not px\|<row>\|<col> with 0-based whole numbers: 'px\|01\|1'"),
    (["px|0|0", "px|a|b"], r"not px\|<row>\|<col>"),
    (["px|0|0", "px|0|0"], r"given twice: 'px\|0\|0'"),
    ([], "no pixel columns"),
])
def test_malformed_pixel_columns_are_refused(columns, match):
    with pytest.raises(OptionError, match=match):
        split_pixel_columns(columns)


def test_an_image_modality_alone_is_a_cnn_that_learns_a_spatial_pattern(image_fitted):
    model, X, y = image_fitted
    te = slice(300, None)
    p = model.predict_proba(X.iloc[te])[:, 1]
    assert model.kinds_ == {"img": "image"} and model.images_["img"]["shape"] == [28, 28]
    assert model.images_["img"]["mean"] == pytest.approx(np.nanmean(X.iloc[:300].to_numpy()))
    # the classes differ in where the brightness is, not how much there is: the images' mean
    # grey value ranks them at chance, the CNN well (0.97-1.00 with data seeds 0-2, model
    # seeds 0-1)
    assert abs(roc_auc_score(y[te], X.iloc[te].mean(axis=1)) - 0.5) < 0.1
    assert roc_auc_score(y[te], p) > 0.85
    assert model.modalities_used(X.iloc[te]).eq("img").all()
    encoder = model.net_.encoders[0]
    assert [b.conv.out_channels for b in encoder.conv] == [16, 32, 64]


def test_an_image_beside_a_tabular_modality_and_patients_without_an_image():
    rng = np.random.default_rng(5)
    n = 600
    blob = rng.integers(0, 2, n)
    X, _ = _images(n, seed=5, blob=blob)
    age = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(4.0 * (2 * blob - 1) + 1.5 * age)))).astype(int)
    X["age"] = age
    px = X.columns.get_indexer(pixel_column_names(28, 28))
    X.iloc[::4, px] = np.nan  # a quarter of the patients have no image
    mods = {"img": ["px|*"], "clinical": ["age"]}
    m = JointFusion(mods, random_state=0, **FAST).fit(X.iloc[:450], y[:450])
    assert m.kinds_ == {"img": "image", "clinical": "tabular"}
    assert m.n_patients_ == {"img": 337, "clinical": 450}
    Xt, yt = X.iloc[450:], y[450:]
    no_img = Xt.iloc[:, px].isna().all(axis=1).to_numpy()
    used = m.modalities_used(Xt)
    assert set(used[no_img]) == {"clinical"} and set(used[~no_img]) == {"img+clinical"}
    p = m.predict_proba(Xt)[:, 1]
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    # without their image, patients are predicted from age alone: another patient given one's
    # age and no image gets the same prediction, and it varies with age
    k, other = np.flatnonzero(no_img)[0], np.flatnonzero(~no_img)[0]
    swap = Xt.iloc[[other]].assign(age=Xt["age"].iloc[k])
    swap.iloc[:, px] = np.nan
    assert m.predict_proba(swap)[0, 1] == pytest.approx(p[k], abs=1e-6)
    assert np.ptp(p[no_img]) > 0.1
    # with it, far better than with it hidden (AUROC 0.90-0.96 against 0.48-0.63, data seeds 5-7)
    hidden = m.predict_proba(Xt.assign(**{c: np.nan for c in pixel_column_names(28, 28)}))[:, 1]
    auc = roc_auc_score(yt[~no_img], p[~no_img])
    assert auc > 0.85 and auc > roc_auc_score(yt[~no_img], hidden[~no_img]) + 0.15
    np.testing.assert_array_equal(hidden[no_img], p[no_img])


def test_image_model_is_seeded_and_survives_a_skops_round_trip(image_fitted, tmp_path):
    sio = pytest.importorskip("skops.io")
    model, X, y = image_fitted
    again = JointFusion({"img": ["px|*"]}, random_state=0, **FAST).fit(X.iloc[:300], y[:300])
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    path = tmp_path / "joint_image.skops"
    sio.dump(model, path)
    untrusted = set(sio.get_untrusted_types(file=path))
    assert untrusted - {"numpy.dtype"} == {"pmed.fusion.joint.JointFusion"}
    back = sio.load(path, trusted=sorted(untrusted))
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))
    assert back.images_ == model.images_


def test_malformed_pixel_columns_in_a_modality_are_refused_before_training():
    X, y = _images(n=40)
    X["age"] = np.arange(40.0)
    where = r"JointFusion\(modalities=\{'img': …\}\)"
    with pytest.raises(OptionError, match=where + r": the pixel columns do not form a full 28×28 "
                                                  r"image: 1 of its 784 pixels have no column"):
        JointFusion({"img": ["px|*"], "c": ["age"]}, **FAST).fit(X.drop(columns="px|3|7"), y)
    with pytest.raises(OptionError, match=where + r": pixel columns \(px\|row\|col\) are mixed "
                                                  r"with 1 other column\(s\): 'age'"):
        JointFusion({"img": ["px|*", "age"]}, **FAST).fit(X, y)
