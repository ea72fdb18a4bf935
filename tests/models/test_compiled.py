"""The numpy replay of fitted preprocessing gives scikit-learn's very numbers, or is not used."""

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from conftest import make_clinical
from pmed.cohort import _model_ready
from pmed.models.compiled import CompiledPipeline, compile_pipeline
from pmed.models.zoo import _cnn_preprocessor, _estimator, make_preprocessor

NUMERIC, BINARY, CATEGORICAL = ["age", "bmi", "crp"], ["diabetes"], ["sex", "smoking"]


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    df = make_clinical(n, seed=seed).set_index("patient_id")
    X = df[NUMERIC + BINARY + CATEGORICAL].copy()
    X["sex"] = X["sex"].astype("category")
    X["smoking"] = pd.Categorical(X["smoking"], categories=["never", "former", "current"])
    return _model_ready(X), df["event"].to_numpy()


def _awkward(X: pd.DataFrame) -> pd.DataFrame:
    """Rows a service meets: every value missing, values beyond the training range."""
    odd = X.head(6).copy()
    odd.iloc[0] = np.nan
    odd.iloc[1, :3] = [120.0, 80.0, 1e4]
    odd.loc[odd.index[2], "smoking"] = np.nan
    odd.loc[odd.index[3], "diabetes"] = np.nan
    return pd.concat([X, odd])


@pytest.mark.parametrize("family", ["lightgbm", "linear", "random_forest"])
@pytest.mark.parametrize("task", ["binary", "continuous"])
def test_replay_equals_the_pipeline_exactly(family, task):
    X, y = _frame(300, 0)
    if task == "continuous":
        y = X["age"].to_numpy() * 0.3 + np.nan_to_num(X["crp"].to_numpy())
    pipe = Pipeline([("preprocess", make_preprocessor(NUMERIC, CATEGORICAL, BINARY)),
                     ("model", _estimator(family, task, {}, 0))]).fit(X, y)
    fast = compile_pipeline(pipe)
    assert isinstance(fast, CompiledPipeline)
    new = _awkward(_frame(200, 7)[0])
    assert np.array_equal(fast._transform(new), pipe[:-1].transform(new), equal_nan=True)
    method = "predict_proba" if task == "binary" else "predict"
    got, want = getattr(fast, method)(new), getattr(pipe, method)(new)
    if family == "lightgbm":  # its booster on the very same matrix
        assert np.array_equal(got, want)
    assert np.allclose(got, want, rtol=1e-12, atol=1e-15)
    assert fast.verify(new, method=method)


def test_drop_first_one_hot_and_pandas_output_replay_exactly():
    X, y = _frame(300, 1)
    unfitted = Pipeline([("p", _cnn_preprocessor(X)), ("m", _estimator("linear", "binary", {}, 0))])
    assert compile_pipeline(unfitted) is None
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    cat = Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                    ("onehot", OneHotEncoder(drop="first", handle_unknown="ignore", sparse_output=False))])
    ct = ColumnTransformer([("num", SimpleImputer(strategy="median", add_indicator=True), NUMERIC),
                            ("cat", cat, CATEGORICAL)], verbose_feature_names_out=False).set_output(transform="pandas")
    pipe = Pipeline([("p", ct), ("m", _estimator("linear", "binary", {}, 0))]).fit(X, y)
    fast = compile_pipeline(pipe)
    new = _awkward(_frame(100, 3)[0])
    assert np.array_equal(fast._transform(new), pipe[:-1].transform(new).to_numpy(), equal_nan=True)
    assert fast.verify(new, method="predict_proba")
    assert np.allclose(fast.predict_proba(new), pipe.predict_proba(new), rtol=1e-12, atol=1e-15)


def test_unknown_steps_are_not_compiled_and_a_changed_fit_fails_verification():
    X, y = _frame(200, 2)
    odd = Pipeline([("f", FunctionTransformer(lambda a: a)), ("m", _estimator("linear", "binary", {}, 0))])
    assert compile_pipeline(odd) is None
    pipe = Pipeline([("preprocess", make_preprocessor(NUMERIC, CATEGORICAL, BINARY)),
                     ("model", _estimator("linear", "binary", {}, 0))]).fit(X, y)
    fast = compile_pipeline(pipe)
    assert fast.verify(X, method="predict_proba")
    scaler = pipe[0].named_transformers_["num"].named_steps["scale"]
    scaler.mean_ = scaler.mean_ + 1.0  # the pipeline changed after the replay was made
    assert not fast.verify(X, method="predict_proba")
