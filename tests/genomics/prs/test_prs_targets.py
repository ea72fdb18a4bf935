"""Target variant tables: one row per ALT allele, compact columns."""

import numpy as np
import pandas as pd

from pmed.genomics.prs.targets import VARIANT_COLUMNS, _explode_alts, _positions


def test_multiallelic_sites_get_one_row_per_alt_allele():
    df = pd.DataFrame({"chr": ["chr1", "1", "X"], "pos": [10, 20, 30], "id": ["a", "b", "c"],
                       "ref": ["A", "C", "G"], "alt": ["G", "T,G", "A"]})
    v = _explode_alts(df)
    assert list(v.columns) == VARIANT_COLUMNS
    assert v["chr"].tolist() == ["1", "1", "1", "X"]
    assert v["alt"].tolist() == ["G", "T", "G", "A"]
    assert v["var_idx"].tolist() == [0, 1, 1, 2] and v["allele_idx"].tolist() == [1, 1, 2, 1]
    assert v["n_alt"].tolist() == [1, 2, 2, 1]
    assert v["pos"].dtype == np.int32 and v["var_idx"].dtype == np.int32


def test_positions_beyond_int32_are_kept():
    assert _positions(np.array([1, 2**31 + 5])).dtype == np.int64
    assert _positions(np.array([1, 248_956_422])).dtype == np.int32
