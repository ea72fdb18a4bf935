"""Modality specifications (pmed.fusion.resolve_modalities) and availability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmed.errors import OptionError
from pmed.fusion import availability, resolve_modalities

COLUMNS = ["age", "TP53_mut", "sex", "wear_steps", "KRAS_mut", "wear_hr", "prs", "wearable_id"]


def test_globs_and_names_expand_in_column_order():
    got = resolve_modalities({"genome": ["*_mut", "prs"], "wear": "wear_*", "clinical": ["sex", "age"]}, COLUMNS)
    assert got == {"genome": ["TP53_mut", "KRAS_mut", "prs"], "wear": ["wear_steps", "wear_hr"],
                   "clinical": ["age", "sex"]}
    assert list(got) == ["genome", "wear", "clinical"]  # modalities keep the spec's order
    # names are exact (no substring or case-insensitive match), patterns are case-sensitive
    assert resolve_modalities({"x": ["wear_?d", "Age"]}, COLUMNS + ["Age"]) == {"x": ["Age"]}
    assert resolve_modalities({"x": ["[TK]*_mut"]}, COLUMNS) == {"x": ["TP53_mut", "KRAS_mut"]}


def test_a_modality_matching_nothing_is_named_with_its_patterns():
    with pytest.raises(OptionError, match="modality 'imaging' matches no column") as e:
        resolve_modalities({"clinical": ["age"], "imaging": ["*_png", "scan"]}, COLUMNS)
    assert "'*_png', 'scan'" in e.value.where


def test_a_column_in_two_modalities_names_both():
    with pytest.raises(OptionError, match="column 'wearable_id' is in two modalities, 'ids' and 'wear'") as e:
        resolve_modalities({"ids": ["wearable_id"], "wear": ["wear*"]}, COLUMNS)
    assert "narrow" in e.value.fix


def test_availability_needs_one_present_column():
    X = pd.DataFrame({"a1": [1.0, np.nan, np.nan, 4.0], "a2": [np.nan, 2.0, np.nan, 1.0],
                      "b": pd.Categorical(["x", None, "y", None])}, index=["p", "q", "r", "s"])
    got = availability(X, {"A": ["a1", "a2"], "B": ["b"]})
    expected = pd.DataFrame({"A": [True, True, False, True], "B": [True, False, True, False]},
                            index=["p", "q", "r", "s"])
    pd.testing.assert_frame_equal(got, expected)
    with pytest.raises(OptionError, match="needs 1 column"):
        availability(X, {"C": ["c"]})
