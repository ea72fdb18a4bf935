"""Late fusion (pmed.fusion.LateFusion): strictly in-fold stacking, missing modalities, skops."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pmed.errors import OptionError, PmedWarning, StudyError, ValidationError
from pmed.fusion import LateFusion
from pmed.fusion.late import _logit
from pmed.models import make_model

SIG = [f"s{i}" for i in range(5)]
NOISE = [f"n{i}" for i in range(30)]


def _signal_noise(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Five informative columns (logistic risk) and 30 columns of pure noise."""
    rng = np.random.default_rng(seed)
    S, N = rng.normal(size=(n, 5)), rng.normal(size=(n, 30))
    y = (rng.random(n) < 1 / (1 + np.exp(-(S @ [1.0, -0.8, 0.6, 0.5, 0.0])))).astype(int)
    X = pd.DataFrame(np.hstack([S, N]), columns=SIG + NOISE,
                     index=[f"P{i:04d}" for i in range(n)])
    return X, y


def _logreg():
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))


def _two_modalities(n: int = 300, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """Modalities A (a1..a3) and B (b1, b2), both informative; B missing for ~30%, A for ~10%."""
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-(A @ [1.0, 0.5, 0.0] + B @ [0.8, -0.6])))).astype(int)
    X = pd.DataFrame(np.hstack([A, B]), columns=["a1", "a2", "a3", "b1", "b2"])
    X.loc[rng.random(n) < 0.3, ["b1", "b2"]] = np.nan
    no_a = (rng.random(n) < 0.1) & X["b1"].notna()  # never both missing here
    X.loc[no_a, ["a1", "a2", "a3"]] = np.nan
    return X, y


# ---------------------------------------------------------------- sklearn contract
def test_sklearn_contract_clone_is_classifier_and_tags():
    lf = LateFusion([("A", _logreg(), ["a*"])], task="binary", inner_folds=3, seed=4)
    assert is_classifier(lf) and is_classifier(clone(lf)) and not is_regressor(lf)
    assert clone(lf).get_params()["seed"] == 4
    reg = LateFusion([("A", Ridge(), ["a*"])], task="continuous")
    assert is_regressor(reg) and not is_classifier(reg)
    assert not hasattr(reg, "predict_proba") and hasattr(lf, "predict_proba")
    X, y = _two_modalities()
    with pytest.warns(PmedWarning, match=r"26 of 300 patients have no modality at all \(every column of A missing\)"):
        fitted = clone(lf).fit(X, y)  # the patients with B only
    assert fitted is not lf and fitted.modality_names_ == ["A"]
    assert fitted.columns_ == {"A": ["a1", "a2", "a3"]}  # glob expanded in column order
    assert list(fitted.feature_names_in_) == list(X.columns)


def test_string_labels_predict_classes_at_half():
    X, y = _two_modalities()
    labels = np.where(y == 1, "yes", "no")
    lf = LateFusion([("A", _logreg(), ["a1", "a2", "a3"]), ("B", _logreg(), ["b1", "b2"])],
                    inner_folds=3).fit(X, labels)
    assert list(lf.classes_) == ["no", "yes"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PmedWarning)
        p = lf.predict_proba(X)[:, 1]
        pred = lf.predict(X)
    assert np.array_equal(pred, np.where(p > 0.5, "yes", "no"))
    assert 0.6 < lf.score(X, labels) < 1.0


# ---------------------------------------------------------------- strictly in-fold
def test_test_fold_labels_never_reach_the_fit():
    X, y = _signal_noise(200)
    lf = LateFusion([("signal", _logreg(), SIG), ("noise", _logreg(), NOISE)], inner_folds=3)
    tr, te = np.arange(150), np.arange(150, 200)
    p1 = clone(lf).fit(X.iloc[tr], y[tr]).predict_proba(X.iloc[te])
    y2 = y.copy()
    y2[te] = 1 - y2[te]
    p2 = clone(lf).fit(X.iloc[tr], y2[tr]).predict_proba(X.iloc[te])
    np.testing.assert_array_equal(p1, p2)
    # the same through cross_val_predict: flipping the labels of fold 0 only changes the other
    # folds' predictions (they train on fold 0), never fold 0's own
    cv = KFold(4, shuffle=True, random_state=0)
    fold0 = next(cv.split(X))[1]
    y3 = y.copy()
    y3[fold0] = 1 - y3[fold0]
    q1 = cross_val_predict(lf, X, y, cv=cv, method="predict_proba")[:, 1]
    q3 = cross_val_predict(lf, X, y3, cv=cv, method="predict_proba")[:, 1]
    np.testing.assert_allclose(q1[fold0], q3[fold0], rtol=0, atol=1e-12)
    rest = np.setdiff1d(np.arange(len(y)), fold0)
    assert np.abs(q1[rest] - q3[rest]).max() > 0.05


def test_memorising_modality_gets_no_weight_unlike_a_naive_stack():
    """A 1-nearest-neighbour model on 30 noise columns is perfect in sample, chance out of it.

    Seen (seed 0, n=400, outer StratifiedKFold(5, random_state=1)): fused AUROC 0.815, signal
    alone 0.812; the meta-learner's noise coefficient -0.005 (signal 0.96). A naive stack whose
    meta-learner sees in-sample base predictions puts 0.64 on the noise logit (signal 0.04) and
    scores 0.649: the leakage the inner cross-validation prevents. (With the inner
    cross-validation replaced by in-sample predictions inside LateFusion, this test fails: the
    fused AUROC falls 0.163 below the signal's.)
    """
    X, y = _signal_noise(400)
    signal = make_model("linear", task="binary", X=X[SIG])
    knn = KNeighborsClassifier(n_neighbors=1)
    lf = LateFusion([("signal", signal, SIG), ("noise", knn, NOISE)], inner_folds=5, seed=0)
    outer = StratifiedKFold(5, shuffle=True, random_state=1)
    fused = roc_auc_score(y, cross_val_predict(lf, X, y, cv=outer, method="predict_proba")[:, 1])
    alone = roc_auc_score(y, cross_val_predict(signal, X[SIG], y, cv=outer, method="predict_proba")[:, 1])
    assert abs(fused - alone) < 0.03
    assert alone > 0.75  # the informative modality is informative

    lf.fit(X, y)
    coef = lf.meta_["signal+noise"].coef_.ravel()
    # the noise logits are ±13.8 (1-NN probabilities 0/1, clipped): |coef| 0.02 moves a logit 0.28
    assert abs(coef[1]) < 0.02 and coef[0] > 0.5
    assert abs(lf.meta_["noise"].coef_.ravel()[0]) < 0.02
    assert lf.n_meta_ == {"signal": 400, "noise": 400, "signal+noise": 400}

    # the naive stack: meta-learner on the base models' in-sample predictions
    naive = np.empty(len(y))
    for tr, te in outer.split(X, y):
        bases = [(clone(signal).fit(X.iloc[tr][SIG], y[tr]), SIG), (clone(knn).fit(X.iloc[tr][NOISE], y[tr]), NOISE)]
        Z = np.column_stack([_logit(b.predict_proba(X.iloc[tr][c])[:, 1]) for b, c in bases])
        meta = LogisticRegression(C=1.0).fit(Z, y[tr])
        assert meta.coef_[0, 1] > 0.3  # it trusts the memorised noise
        Zt = np.column_stack([_logit(b.predict_proba(X.iloc[te][c])[:, 1]) for b, c in bases])
        naive[te] = meta.predict_proba(Zt)[:, 1]
    assert roc_auc_score(y, naive) < alone - 0.1


def test_label_planted_in_the_training_fold_only_does_not_inflate():
    """Issue 20: a column equal to y for training patients and noise for test patients.

    Seen: fused test AUROC 0.531, signal alone 0.815 (meta coefficients signal 0.19, leaky 1.61).
    """
    X, y = _signal_noise(400, seed=2)
    rng = np.random.default_rng(3)
    X = X[SIG].copy()
    tr, te = np.arange(300), np.arange(300, 400)
    X["leak"] = np.where(np.isin(np.arange(400), tr), y + rng.normal(0, 0.01, 400), rng.normal(0.5, 0.5, 400))
    lf = LateFusion([("signal", _logreg(), SIG), ("leaky", _logreg(), ["leak"])], inner_folds=5)
    p = lf.fit(X.iloc[tr], y[tr]).predict_proba(X.iloc[te])[:, 1]
    alone = _logreg().fit(X.iloc[tr][SIG], y[tr]).predict_proba(X.iloc[te][SIG])[:, 1]
    auc_fused, auc_alone = roc_auc_score(y[te], p), roc_auc_score(y[te], alone)
    assert auc_alone > 0.7
    # the planted column is perfect inside the training fold, so the meta-learner trusts it; on
    # the test fold it is noise and the fused AUROC can only fall, never rise above the honest one
    assert auc_fused <= auc_alone + 0.01
    assert lf.meta_["signal+leaky"].coef_[0, 1] > lf.meta_["signal+leaky"].coef_[0, 0]


# ---------------------------------------------------------------- missing modalities
def test_missing_modality_equals_the_fusion_of_the_available_ones():
    X, y = _two_modalities()
    common = dict(inner_folds=4, seed=7, min_patients=20)
    ab = LateFusion([("A", _logreg(), ["a1", "a2", "a3"]), ("B", _logreg(), ["b1", "b2"])], **common)
    a_only = LateFusion([("A", _logreg(), ["a1", "a2", "a3"])], **common)
    with pytest.warns(PmedWarning, match=r"\d+ of 300 patients have no modality"):
        a_only.fit(X, y)  # patients with B only have nothing in the A-only model
    ab.fit(X, y)
    no_b = X["b1"].isna().to_numpy()
    assert no_b.sum() > 50
    np.testing.assert_allclose(ab.predict_proba(X[no_b]), a_only.predict_proba(X[no_b]), rtol=0, atol=1e-12)
    used = ab.modalities_used(X)
    assert used.index.equals(X.index)
    has_a = X["a1"].notna().to_numpy()
    assert (used[no_b] == "A").all()
    assert (used[~no_b & has_a] == "A+B").all() and (used[~has_a] == "B").all()
    assert set(ab.meta_) == {"A", "B", "A+B"}
    assert ab.n_meta_ == {"A": int(has_a.sum()), "B": int((~no_b).sum()), "A+B": int((has_a & ~no_b).sum())}
    # and the patients with both are predicted differently from A alone (B is informative)
    both = has_a & ~no_b
    diff = ab.predict_proba(X[both])[:, 1] - a_only.predict_proba(X[both])[:, 1]
    assert np.abs(diff).max() > 0.05


def test_small_subset_falls_back_and_no_modality_gets_the_prevalence():
    X, y = _two_modalities(seed=5)
    X = X.assign(c1=np.random.default_rng(6).normal(size=len(X)))
    # C only where B is missing: A+C and B+C are fine, A+B+C has no patients at all
    X.loc[X["b1"].notna(), "c1"] = np.nan
    X.iloc[:3] = np.nan  # three patients with nothing
    lf = LateFusion([("A", _logreg(), ["a*"]), ("B", _logreg(), ["b*"]), ("C", _logreg(), ["c1"])],
                    inner_folds=3, min_patients=30)
    with pytest.warns(PmedWarning, match="3 of 300 patients have no modality"):
        lf.fit(X, y)
    assert "A+B+C" not in lf.meta_ and "B+C" not in lf.meta_ and "A+C" in lf.meta_
    assert lf.prior_ == pytest.approx(y.mean())
    new = X.iloc[:6].copy()
    new.iloc[3:6] = 1.0  # every modality present: A+B+C has no meta-learner → largest fitted subset
    with pytest.warns(PmedWarning) as record:
        p = lf.predict_proba(new)[:, 1]
    text = " | ".join(str(w.message) for w in record)
    assert "3 of 6 patients have a combination" in text and "3 of 6 patients have no modality" in text
    np.testing.assert_allclose(p[:3], y.mean(), rtol=0, atol=1e-15)
    used = lf.modalities_used(new)
    assert list(used[:3]) == ["", "", ""]
    # A+B (fitted on more patients than A+C and B+C) is the largest fitted subset of {A, B, C}
    assert lf.n_meta_["A+B"] > lf.n_meta_["A+C"]
    assert list(used[3:]) == ["A+B"] * 3
    ab_rows = X[X["a1"].notna() & X["b1"].notna()].iloc[:3]
    assert np.all(np.isfinite(p[3:])) and list(lf.modalities_used(ab_rows)) == ["A+B"] * 3


# ---------------------------------------------------------------- continuous
def test_continuous_task():
    rng = np.random.default_rng(8)
    n = 250
    X = pd.DataFrame(rng.normal(size=(n, 6)), columns=["g1", "g2", "g3", "w1", "w2", "w3"])
    y = 2.0 * X["g1"] - X["g2"] + 0.5 * X["w1"] + rng.normal(0, 0.5, n)
    X.loc[rng.random(n) < 0.25, ["w1", "w2", "w3"]] = np.nan
    lf = LateFusion([("genes", Ridge(alpha=1.0), ["g*"]), ("wear", make_pipeline(StandardScaler(), Ridge()), ["w*"])],
                    task="continuous", inner_folds=5)
    lf.fit(X, y)
    assert not hasattr(lf, "classes_")
    pred = lf.predict(X)
    assert np.all(np.isfinite(pred)) and pred.shape == (n,)
    assert lf.meta_["genes"].coef_[0] > 0.8  # out-of-fold ridge predictions are nearly calibrated
    coef = lf.meta_["genes+wear"].coef_
    assert coef[0] > 0.5 and coef[1] > 0.2
    assert 0.7 < lf.score(X, y) < 1.0
    oof = cross_val_predict(lf, X, y, cv=KFold(4, shuffle=True, random_state=0))
    assert np.corrcoef(oof, y)[0, 1] > 0.85


# ---------------------------------------------------------------- errors
def test_errors():
    X, y = _two_modalities()
    seven = [(f"m{i}", _logreg(), ["a1"]) for i in range(7)]
    with pytest.raises(OptionError, match="at most 6") as e:
        LateFusion(seven).fit(X, y)
    assert "merge" in e.value.fix
    with pytest.raises(OptionError, match="unknown task"):
        LateFusion([("A", _logreg(), ["a1"])], task="survival").fit(X, y)
    with pytest.raises(OptionError, match="must not contain|without"):
        LateFusion([("A+B", _logreg(), ["a1"])]).fit(X, y)
    with pytest.raises(OptionError, match="no predict_proba"):
        LateFusion([("A", Ridge(), ["a1"])]).fit(X, y)
    with pytest.raises(OptionError, match="matches no column"):
        LateFusion([("A", _logreg(), ["zz*"])]).fit(X, y)
    with pytest.raises(ValidationError, match="two labels"):
        LateFusion([("A", _logreg(), ["a1"])]).fit(X, np.arange(len(y)) % 3)
    with pytest.raises(StudyError, match=r"available for \d+ training patients, fewer than the 20"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", PmedWarning)
        LateFusion([("A", _logreg(), ["a1"])], min_patients=20).fit(X.iloc[:10], y[:10])
    lf = LateFusion([("A", _logreg(), ["a1", "a2", "a3"])], inner_folds=3).fit(X.dropna(subset=["a1"]), y[X["a1"].notna().to_numpy()])
    with pytest.raises(ValidationError, match="lacks 1 column"):
        lf.predict_proba(X.drop(columns="a2"))


# ---------------------------------------------------------------- serialisation
def test_skops_round_trip_through_the_bundle_loader(tmp_path):
    sio = pytest.importorskip("skops.io")
    from pmed.study.bundle import _load_trusted

    X, y = _two_modalities()
    lf = LateFusion([("A", make_model("linear", task="binary", X=X[["a1", "a2", "a3"]]), ["a1", "a2", "a3"]),
                     ("B", _logreg(), ["b1", "b2"])], inner_folds=3).fit(X, y)
    path = tmp_path / "fusion.skops"
    sio.dump(lf, path)
    back = _load_trusted(path)
    assert isinstance(back, LateFusion) and set(back.meta_) == set(lf.meta_)
    np.testing.assert_array_equal(back.predict_proba(X), lf.predict_proba(X))
    assert back.modalities_used(X).equals(lf.modalities_used(X))
