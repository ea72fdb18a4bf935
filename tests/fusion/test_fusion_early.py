"""Early fusion: ModalityIndicators before pmed's preprocessing in one pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from pmed.errors import OptionError, ValidationError
from pmed.fusion import ModalityIndicators
from pmed.models import make_model

MODALITIES = {"clinical": ["age", "sex"], "genome": ["*_mut"], "wear": ["wear_*"]}


def _cohort(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "age": rng.uniform(30, 80, n),
        "sex": pd.Categorical(rng.choice(["F", "M"], n)),
        "TP53_mut": (rng.random(n) < 0.3).astype(float),
        "KRAS_mut": (rng.random(n) < 0.2).astype(float),
        "wear_steps": rng.normal(8000, 2000, n),
    })
    lin = -4 + 0.06 * X["age"] + 1.2 * X["TP53_mut"] - 0.0002 * (X["wear_steps"] - 8000)
    y = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int).to_numpy()
    X.loc[rng.random(n) < 0.3, ["TP53_mut", "KRAS_mut"]] = np.nan  # no genome for ~30%
    X.loc[rng.random(n) < 0.2, "wear_steps"] = np.nan  # no wearable for ~20%
    X.loc[X.index[:2], "TP53_mut"] = np.nan  # genome partly present: still available
    X.loc[X.index[:2], "KRAS_mut"] = 1.0
    return X, y


def test_indicators_are_appended_with_dtypes_kept():
    X, _ = _cohort()
    mi = ModalityIndicators(MODALITIES).fit(X)
    out = mi.transform(X)
    assert list(out.columns) == [*X.columns, "has_clinical", "has_genome", "has_wear"]
    assert list(mi.get_feature_names_out()) == list(out.columns)
    pd.testing.assert_frame_equal(out[X.columns], X)  # passed through, categorical kept
    assert out["has_genome"].dtype == np.float64
    no_genome = X["TP53_mut"].isna() & X["KRAS_mut"].isna()
    assert no_genome.sum() > 40
    np.testing.assert_array_equal(out["has_genome"], np.where(no_genome, 0.0, 1.0))
    np.testing.assert_array_equal(out["has_wear"], X["wear_steps"].notna().astype(float))
    assert out.loc[X.index[:2], "has_genome"].tolist() == [1.0, 1.0]
    assert (out["has_clinical"] == 1.0).all()
    with pytest.raises(ValidationError, match="lacks 1 column"):
        mi.transform(X.drop(columns="age"))
    with pytest.raises(OptionError, match="already has"):
        ModalityIndicators({"wear": ["wear_steps"]}).fit(X.assign(has_wear=1.0))


def test_early_fusion_pipeline_with_make_model():
    X, y = _cohort()
    mi = ModalityIndicators(MODALITIES)
    X_ind = clone(mi).fit_transform(X)
    pipe = Pipeline([("modalities", mi), ("fit", make_model("linear", task="binary", X=X_ind))])
    pipe.set_output(transform="pandas")
    pipe.fit(X, y)
    shown = pipe.named_steps["modalities"].transform(X)
    assert isinstance(shown, pd.DataFrame)
    rows = X["wear_steps"].isna().to_numpy()
    assert (shown.loc[rows, "has_wear"] == 0.0).all() and (shown.loc[~rows, "has_wear"] == 1.0).all()
    # the indicators reach the model: its preprocessing treats them as binary 0/1 columns
    pre = pipe.named_steps["fit"].named_steps["preprocess"]
    assert {"has_genome", "has_wear"} <= set(pre.get_feature_names_out())
    p = cross_val_predict(pipe, X, y, cv=StratifiedKFold(4, shuffle=True, random_state=0),
                          method="predict_proba")[:, 1]
    assert roc_auc_score(y, p) > 0.65


def test_pipeline_round_trips_through_the_bundle_loader(tmp_path):
    sio = pytest.importorskip("skops.io")
    from pmed.study.bundle import _load_trusted

    X, y = _cohort(120)
    X_ind = ModalityIndicators(MODALITIES).fit_transform(X)
    pipe = Pipeline([("modalities", ModalityIndicators(MODALITIES)),
                     ("fit", make_model("linear", task="binary", X=X_ind))]).fit(X, y)
    sio.dump(pipe, tmp_path / "early.skops")
    back = _load_trusted(tmp_path / "early.skops")
    np.testing.assert_array_equal(back.predict_proba(X), pipe.predict_proba(X))
