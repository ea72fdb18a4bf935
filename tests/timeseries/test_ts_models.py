"""Event 1 and fold-internal thresholds; the GRU-D estimator learns from masks and values."""

import numpy as np
import pandas as pd
import pytest

from pmed.evaluate.cv import make_splits
from pmed.models.zoo import make_model
from pmed.timeseries.challenge import (
    best_event1_threshold,
    cross_validate_event1,
    event1_ci,
    event1_score,
    flag_top_share,
    prevalence_threshold,
)


def test_event1_known_answer():
    y = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    yhat = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]
    s = event1_score(y, yhat)
    assert s == {"sensitivity": 0.75, "ppv": 0.6, "event1": 0.6}
    assert event1_score(y, [0] * 10)["event1"] == 0.0
    ci = event1_ci(y, yhat, n_boot=200)
    assert ci["estimate"] == 0.6 and ci["ci_low"] <= 0.6 <= ci["ci_high"]


def test_best_event1_threshold():
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    # flag the top 3: Se 2/3, PPV 2/3; the top 4: Se 1, PPV 3/4 → best is >= 0.6
    assert best_event1_threshold(y, p) == 0.6
    # three events: flag the top three scores
    assert prevalence_threshold(y, p) == 0.7


def test_flag_top_share_flags_the_share_and_ties():
    pred, thr = flag_top_share([0.1, 0.9, 0.5, 0.7, 0.2], 0.4)
    assert thr == 0.7 and pred.tolist() == [0, 1, 0, 1, 0]
    # ties at the cut are all flagged; at least one is always flagged
    assert flag_top_share([0.5, 0.5, 0.1], 0.34)[0].tolist() == [1, 1, 0]
    assert flag_top_share([0.3, 0.2], 0.0)[0].tolist() == [1, 0]


def test_thresholds_come_from_training_folds_only():
    rng = np.random.default_rng(0)
    n = 400
    score = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * score - 2)))).astype(int)
    X = pd.DataFrame({"score": score}, index=[f"p{i}" for i in range(n)])
    splits = make_splits(y, task="binary", folds=4, seed=0)
    est = make_model("linear", task="binary", X=X, params={"class_weight": None})
    oof = cross_validate_event1(est, X, pd.Series(y, index=X.index), splits, threshold_from="score",
                                score_column="score")
    for _, f, tr, te in splits:
        part = oof[oof.fold == f]
        assert part["threshold"].iloc[0] == best_event1_threshold(y[tr], score[tr])
        thr = prevalence_threshold(y[tr], score[tr])
        assert part["threshold_match_prevalence"].iloc[0] == thr
        ids = X.index[te]
        assert (part.set_index("patient_id").loc[ids, "predicted_match_prevalence"].to_numpy()
                == (score[te] >= thr)).all()
        # batch prevalence: the training fold's event rate, flagged among the test fold's scores
        flagged = part["predicted_batch_prevalence"].sum()
        assert flagged == round(y[tr].mean() * len(te))
        top = part.nlargest(int(flagged), "prediction")
        assert top["predicted_batch_prevalence"].all()
    inner = cross_validate_event1(est, X, pd.Series(y, index=X.index), splits, threshold_from="inner_cv")
    assert inner["predicted_class"].isin([0, 1]).all() and inner["threshold"].between(0, 1).all()
    assert event1_score(oof["outcome"], oof["predicted_class"])["event1"] > 0.4


def test_grud_learns_from_values_and_informative_missingness():
    pytest.importorskip("torch")
    import torch

    torch.set_num_threads(1)
    from pmed.timeseries import to_grid
    from pmed.timeseries.grud import GRUDClassifier

    rng = np.random.default_rng(1)
    rows, ys = [], []
    for i in range(240):
        yi = int(rng.random() < 0.4)
        ys.append(yi)
        # sick patients: HR drifts up and lactate is measured (more often) — both carry signal
        for t in np.sort(rng.uniform(0, 12, 8)):
            rows.append((f"p{i}", t, "HR", 80 + (1.5 * t if yi else 0) + rng.normal(0, 5)))
        if yi or rng.random() < 0.2:
            rows.append((f"p{i}", rng.uniform(0, 12), "Lactate", 2.0 + rng.normal(0, 0.3)))
    d = pd.DataFrame(rows, columns=["patient_id", "time", "variable", "value"]).sort_values(["patient_id", "time"])
    y = pd.Series(ys, index=[f"p{i}" for i in range(240)])
    g = to_grid(d, variables=["HR", "Lactate"], step=1.0, end=12.0, patients=y.index)
    F = g.flatten()
    tr, te = np.arange(160), np.arange(160, 240)
    m = GRUDClassifier(hidden_size=16, max_epochs=10, batch_size=32, lr=5e-3, random_state=0, n_jobs=1,
                       device="cpu")
    m.fit(F.iloc[tr], y.iloc[tr])
    from sklearn.metrics import roc_auc_score

    p = m.predict_proba(F.iloc[te])[:, 1]
    assert p.shape == (80,) and np.all((p > 0) & (p < 1))
    assert roc_auc_score(y.iloc[te], p) > 0.85
    yv, pv = m.validation_predictions_
    assert len(yv) == 32 and len(pv) == 32  # 20 % of the training rows, stratified
    assert m.history_[0]["train_loss"] > min(h["train_loss"] for h in m.history_)
