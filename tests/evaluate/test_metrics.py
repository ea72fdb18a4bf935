import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from pmed.evaluate import auroc, average_precision, binary_metrics, confusion, regression_metrics


@pytest.fixture
def scores():
    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.3).astype(int)
    p = np.clip(0.3 + 0.25 * (y - 0.3) + rng.normal(0, 0.2, 400), 0, 1).round(2)  # ties on purpose
    return y, p


def test_auroc_and_ap_match_scikit_learn_with_ties(scores):
    y, p = scores
    assert auroc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert average_precision(y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)


def test_known_answers():
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auroc([0, 1], [0.5, 0.5]) == 0.5
    assert np.isnan(auroc([1, 1], [0.2, 0.3]))
    assert confusion([0, 1, 1, 0], [0.2, 0.7, 0.4, 0.5]) == {"tn": 1, "fp": 1, "fn": 1, "tp": 1}


def test_binary_metrics_values_and_cis(scores):
    y, p = scores
    m = binary_metrics(y, p, n_boot=200, seed=1)
    yhat = (p >= 0.5).astype(int)
    assert m["brier"]["estimate"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["accuracy"]["estimate"] == pytest.approx(skm.accuracy_score(y, yhat))
    assert m["balanced_accuracy"]["estimate"] == pytest.approx(skm.balanced_accuracy_score(y, yhat))
    assert m["sensitivity"]["estimate"] == pytest.approx(skm.recall_score(y, yhat))
    assert m["specificity"]["estimate"] == pytest.approx(skm.recall_score(1 - y, 1 - yhat))
    assert m["f1"]["estimate"] == pytest.approx(skm.f1_score(y, yhat))
    assert m["ppv"]["estimate"] == pytest.approx(skm.precision_score(y, yhat))
    for v in m.values():
        assert v["ci_low"] <= v["estimate"] <= v["ci_high"]
        assert "200 resamples" in v["method"] and "stratified" in v["method"]
    # the AUROC interval has a plausible width for n = 400
    assert 0.03 < m["auroc"]["ci_high"] - m["auroc"]["ci_low"] < 0.2


def test_bootstrap_is_seeded(scores):
    y, p = scores
    assert binary_metrics(y, p, n_boot=50, seed=5) == binary_metrics(y, p, n_boot=50, seed=5)
    assert binary_metrics(y, p, n_boot=50, seed=5) != binary_metrics(y, p, n_boot=50, seed=6)


def test_bootstrap_ci_covers_truth_at_roughly_nominal_rate():
    # population AUROC of N(1,1) vs N(0,1) scores is Φ(1/√2)
    truth = stats.norm.cdf(1 / np.sqrt(2))
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(40):
        y = np.r_[np.zeros(100), np.ones(100)].astype(int)
        p = np.r_[rng.normal(0, 1, 100), rng.normal(1, 1, 100)]
        m = binary_metrics(y, p, n_boot=200, seed=int(rng.integers(1e9)))["auroc"]
        hits += m["ci_low"] <= truth <= m["ci_high"]
    assert hits >= 33  # 95% nominal; ≥ 33/40 unless the interval is badly off


def test_regression_metrics_match_references():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    yhat = y + rng.normal(0, 0.5, 200)
    m = regression_metrics(y, yhat, n_boot=100)
    assert m["rmse"]["estimate"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, yhat)))
    assert m["mae"]["estimate"] == pytest.approx(skm.mean_absolute_error(y, yhat))
    assert m["r2"]["estimate"] == pytest.approx(skm.r2_score(y, yhat))
    assert m["pearson"]["estimate"] == pytest.approx(stats.pearsonr(y, yhat)[0])
    assert m["spearman"]["estimate"] == pytest.approx(stats.spearmanr(y, yhat)[0])
