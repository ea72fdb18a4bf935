"""pmed.monitor.reference_summaries: aggregate-only summaries of training data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pmed.errors import OptionError, ValidationError
from pmed.monitor import MIN_N_DISTRIBUTION, REFERENCE_VERSION, reference_summaries


def _table(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.normal(60, 10, n),
        "flag": rng.integers(0, 2, n),  # a 0/1 number: few distinct deciles
        "sex": pd.Categorical(rng.choice(["F", "M"], n), categories=["F", "M", "X"]),
        "smoking": rng.choice(["never", "former", "current"], n).astype(object),
    })
    df.loc[:24, "age"] = np.nan
    df.loc[:9, "smoking"] = None
    return df


def test_numeric_summary_matches_numpy():
    df = _table()
    ref = reference_summaries(df, task="binary")
    s = ref["features"]["age"]
    obs = df["age"].dropna().to_numpy()
    assert (s["type"], s["n"], s["n_missing"]) == ("numeric", 500, 25)
    np.testing.assert_allclose(s["quantiles"], np.quantile(obs, np.linspace(0, 1, 101)))
    deciles = np.quantile(obs, np.arange(1, 10) / 10)
    assert s["bin_edges"][0] is None and s["bin_edges"][-1] is None
    np.testing.assert_allclose(s["bin_edges"][1:-1], deciles)
    # bins [e_i, e_i+1): counts by hand from the deciles
    edges = np.r_[-np.inf, deciles, np.inf]
    hand = [np.mean((obs >= lo) & (obs < hi)) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    np.testing.assert_allclose(s["bin_fractions"], hand)
    assert s["mean"] == pytest.approx(obs.mean())
    assert s["std"] == pytest.approx(obs.std(ddof=1))
    assert s["suppressed"] is None


def test_discrete_numeric_bins_are_deduplicated():
    ref = reference_summaries(_table())
    s = ref["features"]["flag"]
    # deciles of a 0/1 variable are only 0s and 1s: bins (-inf, 0), [0, 1), [1, inf)
    assert s["bin_edges"] == [None, 0.0, 1.0, None]
    ones = _table()["flag"].mean()
    np.testing.assert_allclose(s["bin_fractions"], [0.0, 1 - ones, ones])


def test_categorical_frequencies():
    df = _table()
    ref = reference_summaries(df)
    sex = ref["features"]["sex"]
    assert sex["type"] == "categorical" and sex["n_missing"] == 0
    assert sex["frequencies"]["X"] == 0.0  # unused level kept
    assert sex["frequencies"]["F"] == pytest.approx(np.mean(df["sex"] == "F"))
    smk = ref["features"]["smoking"]
    assert smk["n_missing"] == 10
    assert sum(smk["frequencies"].values()) == pytest.approx(1.0)
    assert smk["frequencies"]["never"] == pytest.approx(np.sum(df["smoking"] == "never") / 490)


def test_layout_is_strict_json_and_keeps_metrics_and_predictions():
    df = _table()
    p = np.linspace(0.01, 0.99, len(df))
    ref = reference_summaries(df, predictions=p, task="binary", metrics={"auroc": 0.8})
    assert ref["version"] == REFERENCE_VERSION
    assert ref["metrics"] == {"auroc": 0.8}
    assert ref["n_rows"] == 500 and ref["columns"] == ["age", "flag", "sex", "smoking"]
    assert ref["predictions"]["quantiles"][50] == pytest.approx(np.median(p))
    assert json.loads(json.dumps(ref, allow_nan=False)) == ref  # no NaN/inf anywhere


def test_small_feature_stores_no_individual_value():
    # one patient with a distinctive value: it must appear nowhere in the summaries
    df = pd.DataFrame({"x": [np.nan] * 30, "lab": [np.nan] * 30})
    df.loc[3, "lab"] = 123.456
    df.loc[: MIN_N_DISTRIBUTION - 2, "x"] = np.arange(MIN_N_DISTRIBUTION - 1) + 0.5  # 19 values
    ref = reference_summaries(df)
    for name in ("x", "lab"):
        s = ref["features"][name]
        assert s["quantiles"] is None and s["bin_edges"] is None and s["mean"] is None
        assert "not stored" in s["suppressed"]
    assert ref["features"]["lab"]["n_missing"] == 29
    assert "123.4" not in json.dumps(ref)
    # 20 observed values are enough
    df.loc[MIN_N_DISTRIBUTION - 1, "x"] = 99.0
    assert reference_summaries(df)["features"]["x"]["quantiles"] is not None


def test_bad_inputs():
    df = _table()
    with pytest.raises(OptionError, match="task"):
        reference_summaries(df, task="classification")
    with pytest.raises(OptionError, match="n_bins"):
        reference_summaries(df, n_bins=1)
    with pytest.raises(ValidationError, match="DataFrame"):
        reference_summaries(df.to_numpy())
    with pytest.raises(ValidationError, match="predictions has 3 values but the data have 500"):
        reference_summaries(df, predictions=[0.1, 0.2, 0.3])
    with pytest.raises(ValidationError, match="date/time"):
        reference_summaries(pd.DataFrame({"t": pd.date_range("2024-01-01", periods=30)}))
    with pytest.raises(ValidationError, match="duplicated"):
        reference_summaries(pd.DataFrame([[1, 2]], columns=["a", "a"]))
