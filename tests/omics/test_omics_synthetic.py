"""Synthetic single-cell component: shifted composition in responders reaches patient features."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scanpy")

from pmed.errors import InputError  # noqa: E402
from pmed.omics.synthetic import (  # noqa: E402
    make_omics_block,
    simulate_single_cell,
    single_cell_features,
)


def test_simulation_is_seeded_and_annotatable():
    ids = [f"P{i}" for i in range(12)]
    resp = np.array([0, 1] * 6)
    a = simulate_single_cell(ids, resp, cells_per_patient=120, seed=5)
    b = simulate_single_cell(ids, resp, cells_per_patient=120, seed=5)
    assert (a.X != b.X).nnz == 0
    assert set(a.obs["patient_id"]) == set(ids)
    import scanpy as sc

    from pmed.omics import annotate
    from pmed.omics.synthetic import CTC_MARKERS

    c = a.copy()
    sc.pp.normalize_total(c, target_sum=1e4)
    sc.pp.log1p(c)
    from pmed.omics import load_markers

    annotate(c, load_markers("pbmc") | CTC_MARKERS, groupby=None)
    acc = np.mean(c.obs["cell_type"].astype(str).to_numpy() == c.obs["true_cell_type"].to_numpy())
    assert acc > 0.85
    with pytest.raises(InputError, match="2 patient IDs but 3 response values"):
        simulate_single_cell(["a", "b"], [0, 1, 1])


def test_responders_have_shifted_features():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(11)
    ids = [f"P{i:03d}" for i in range(40)]
    resp = rng.integers(0, 2, size=40)
    feats, prov = make_omics_block(ids, resp, cells_per_patient=120, seed=11)
    assert list(feats.index) == ids and prov["seed"] == 11
    assert roc_auc_score(resp, feats["frac_CD8_T_cells"]) > 0.8
    assert roc_auc_score(resp, feats["frac_Epithelial_CTC"]) < 0.35
    # no effect -> no signal beyond chance
    f0 = single_cell_features(simulate_single_cell(ids, resp, cells_per_patient=120, effect=0.0,
                                                   seed=11))
    assert 0.2 < roc_auc_score(resp, f0["frac_CD8_T_cells"]) < 0.8


def test_write_omics_features_for_a_patient_table(tmp_path):
    import pandas as pd

    from pmed.omics.synthetic import write_omics_features

    pts = pd.DataFrame({"patient_id": [f"P{i}" for i in range(8)], "response": [0, 1] * 4})
    p = write_omics_features(pts, tmp_path / "omics.csv", cells_per_patient=60, seed=3)
    f = pd.read_csv(p)
    assert list(f["patient_id"]) == list(pts["patient_id"])
    assert f.filter(like="frac_").sum(axis=1).round(6).eq(1).all()
    with pytest.raises(InputError, match="response column 'resp'"):
        write_omics_features(pts, tmp_path / "x.csv", response_col="resp")
