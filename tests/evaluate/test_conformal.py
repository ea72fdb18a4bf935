"""Conformal sets and intervals: known answers, and coverage at the nominal level.

Coverage tolerance. With a held-out test set of n_test patients the empirical coverage of
90% sets has binomial SD sqrt(0.9 * 0.1 / n_test) (0.0047 for 4000); on top of that, the
coverage *given* one calibration set varies around the nominal level with SD about
sqrt(0.9 * 0.1 / n_cal) (0.0055 for 3000 calibration patients). Together SD ≈ 0.0072, so the
band [0.88, 0.93] is about 2.8 SD below and 4 SD above 0.90. It is asymmetric on purpose:
conformal methods are allowed to over-cover slightly (finite-sample correction 1/(n+1),
CV+ is mildly conservative), under-coverage is the failure that matters.
"""

import numpy as np
import pandas as pd
import pytest

from pmed.errors import ValidationError
from pmed.evaluate.conformal import (
    conformal_classifier,
    conformal_regressor,
    empirical_coverage,
    interval_coverage,
    mean_interval_width,
    mean_set_size,
    set_coverage,
)
from pmed.models import make_model

LO, HI = 0.88, 0.93
N_TRAIN, N_TEST = 3000, 4000


def _simulate(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Features with a categorical column, a binary and a 3-class outcome, and a continuous one
    whose noise grows with |a| (heteroscedastic, as lab values are)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.normal(size=n),
        "c": pd.Categorical(rng.choice(["x", "y"], n)),
    })
    lin = 1.2 * X["a"] - 0.8 * X["b"] + 0.5 * (X["c"] == "x")
    y_bin = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int).to_numpy()
    y_3 = np.digitize(lin + rng.logistic(size=n), [-1.0, 1.0])
    y_reg = (2 * X["a"] + X["b"] + rng.normal(size=n) * (1 + 0.5 * np.abs(X["a"]))).to_numpy()
    return X, y_bin, y_3, y_reg


@pytest.fixture(scope="module")
def data():
    return _simulate(N_TRAIN, 1), _simulate(N_TEST, 2)


def test_binary_lac_sets_cover_at_nominal_level(data):
    (X, y, _, _), (Xt, yt, _, _) = data
    cc = conformal_classifier(make_model("linear", task="binary", X=X), X, y,
                              confidence_level=0.9, method="lac", cv=5, seed=0)
    labels, sets = cc.predict_sets(Xt)
    assert sets.shape == (N_TEST, 2) and sets.dtype == bool
    assert set(np.unique(labels)) <= {0, 1}
    ev = cc.evaluate(Xt, yt)
    assert LO <= ev["coverage"]["estimate"] <= HI, ev
    assert ev["coverage"]["ci_low"] < ev["coverage"]["estimate"] < ev["coverage"]["ci_high"]
    assert ev["n"] == N_TEST and ev["nominal"] == 0.9
    assert 1 < ev["mean_set_size"] < 2  # informative: not every set holds both labels


def test_multiclass_aps_sets_cover(data):
    (X, _, y3, _), (Xt, _, yt3, _) = data
    model = make_model("linear", task="binary", X=X)  # logistic regression handles 3 classes
    exact = conformal_classifier(model, X, y3, method="aps", randomized=True, seed=0)
    cov = exact.evaluate(Xt, yt3)["coverage"]["estimate"]
    assert LO <= cov <= HI
    # the deterministic variant is conservative: never below nominal (beyond noise)
    det = conformal_classifier(model, X, y3, method="aps", seed=0)
    _, sets = det.predict_sets(Xt)
    assert set_coverage(yt3, sets, det.classes_) >= cov


def test_regression_cv_plus_intervals_cover_at_nominal_level(data):
    (X, _, _, y), (Xt, _, _, yt) = data
    cr = conformal_regressor(make_model("linear", task="continuous", X=X), X, y,
                             confidence_level=0.9, method="plus", cv=5, seed=0)
    point, low, high = cr.predict_intervals(Xt)
    assert np.all(low <= point) and np.all(point <= high)
    # CV+ prediction costs O(n_test × n_train): predict once, not again through evaluate()
    ev = empirical_coverage(yt, low=low, high=high, confidence_level=0.9)
    assert LO <= ev["coverage"]["estimate"] <= HI, ev
    assert ev["mean_width"] == pytest.approx(mean_interval_width(low, high))


def test_regression_split_intervals_cover(data):
    (X, _, _, y), (Xt, _, _, yt) = data
    # half of 3000 calibrates: SD given the calibration set ≈ 0.0077, total ≈ 0.009, band ±2.2 SD
    cr = conformal_regressor(make_model("linear", task="continuous", X=X), X, y,
                             method="split", calibration_size=0.5, seed=0)
    _, low, high = cr.predict_intervals(Xt)
    assert LO <= interval_coverage(yt, low, high) <= HI


def test_split_classifier_and_known_answers(data):
    (X, y, _, _), (Xt, _, _, _) = data
    cc = conformal_classifier(make_model("linear", task="binary", X=X), X.iloc[:600], y[:600],
                              cv="split", seed=0)
    assert cc.predict_sets(Xt.iloc[:5])[1].shape == (5, 2)

    sets = np.array([[True, False], [True, True], [False, False], [False, True]])
    assert set_coverage([0, 1, 1, 0], sets, classes=[0, 1]) == 0.5
    assert set_coverage(["a", "b", "b", "z"], sets, classes=["a", "b"]) == 0.5  # unseen label
    assert mean_set_size(sets) == 1.0
    ev = empirical_coverage([0, 1, 1, 0], sets=sets, classes=[0, 1])
    assert ev["empty_set_rate"] == 0.25 and ev["singleton_rate"] == 0.5
    assert interval_coverage([1.0, 2.0, 5.0], [0, 2, 0], [1, 3, 4]) == pytest.approx(2 / 3)
    ev = empirical_coverage([1.0, 2.0, 5.0], low=[0, 2, 0], high=[1, 3, 4])
    assert ev["mean_width"] == 2.0 and ev["coverage"]["ci_low"] < 2 / 3 < ev["coverage"]["ci_high"]


def test_bad_settings_are_refused(data):
    (X, y, _, yr), _ = data
    clf = make_model("linear", task="binary", X=X)
    with pytest.raises(ValidationError, match="three or more classes"):
        conformal_classifier(clf, X, y, method="aps")
    with pytest.raises(ValidationError, match="unknown conformal classification method"):
        conformal_classifier(clf, X, y, method="raps")
    with pytest.raises(ValidationError, match="confidence_level"):
        conformal_classifier(clf, X, y, confidence_level=90)
    with pytest.raises(ValidationError, match="cv must be"):
        conformal_regressor(make_model("linear", task="continuous", X=X), X, yr, cv=1)
    with pytest.raises(ValidationError, match="either sets and classes, or low and high"):
        empirical_coverage([1.0], low=[0.0])
