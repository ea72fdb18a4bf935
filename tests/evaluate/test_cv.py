import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from pmed.errors import ValidationError
from pmed.evaluate import cv_metrics, make_splits, out_of_fold_predictions


def test_stratified_splits_cover_every_row_once_per_repeat():
    y = np.r_[np.zeros(80), np.ones(20)]
    splits = make_splits(y, task="binary", folds=5, repeats=2, seed=0)
    assert len(splits) == 10
    for r in (0, 1):
        test = np.concatenate([te for rr, _, _, te in splits if rr == r])
        assert sorted(test) == list(range(100))
        assert all(y[te].sum() == 4 for rr, _, _, te in splits if rr == r)  # stratified
    first = [te for rr, _, _, te in splits if rr == 0]
    second = [te for rr, _, _, te in splits if rr == 1]
    assert any(not np.array_equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("task", ["binary", "continuous"])
def test_grouped_splits_keep_a_patients_rows_together(task):
    rng = np.random.default_rng(0)
    groups = np.repeat([f"p{i}" for i in range(40)], 3)
    y = rng.integers(0, 2, 120) if task == "binary" else rng.normal(size=120)
    for _, _, tr, te in make_splits(y, task=task, folds=4, groups=groups, seed=1):
        assert not set(groups[tr]) & set(groups[te])


def test_too_few_events_for_folds():
    with pytest.raises(ValidationError, match="rarer outcome class has 3 patients"):
        make_splits(np.r_[np.zeros(50), np.ones(3)], task="binary", folds=5)


def test_oof_and_metrics_with_repeats():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200)}, index=[f"id{i}" for i in range(200)])
    y = pd.Series((X["a"] + rng.normal(0, 1, 200) > 0).astype(int), index=X.index)
    splits = make_splits(y.to_numpy(), task="binary", folds=5, repeats=3, seed=0)
    oof = out_of_fold_predictions(LogisticRegression(), X, y, splits, task="binary")
    assert len(oof) == 600 and oof.groupby("repeat")["patient_id"].nunique().eq(200).all()
    m = cv_metrics(oof, task="binary", n_boot=50)
    assert m["n"] == 200 and m["n_repeats"] == 3 and m["n_events"] == int(y.sum())
    auc = m["metrics"]["auroc"]
    assert 0.7 < auc["estimate"] < 0.9
    assert auc["ci_low"] < auc["estimate"] < auc["ci_high"]
    assert auc["fold_sd"] > 0
    assert sum(m["confusion_matrix"].values()) == 200
