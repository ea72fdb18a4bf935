"""Marker sets, annotation and Wilcoxon marker genes with effect sizes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("scanpy")

from pmed.errors import InputError  # noqa: E402
from pmed.omics import annotate, load_markers, marker_genes  # noqa: E402
from pmed.omics.cluster import _bh  # noqa: E402


def test_shipped_pbmc_markers():
    m = load_markers("pbmc")
    assert {"CD4 T cells", "CD8 T cells", "NK cells", "B cells", "CD14+ Monocytes",
            "FCGR3A+ Monocytes"} <= set(m)
    assert "MS4A1" in m["B cells"] and "CD14" in m["CD14+ Monocytes"]


def test_user_marker_files(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"T": ["CD3E"], "B": ["MS4A1", "CD79A"]}))
    assert load_markers(tmp_path / "m.json") == {"T": ["CD3E"], "B": ["MS4A1", "CD79A"]}
    pd.DataFrame({"cell_type": ["T", "B", "B"], "gene": ["CD3E", "MS4A1", "CD79A"]}).to_csv(
        tmp_path / "m.csv", index=False)
    assert load_markers(str(tmp_path / "m.csv")) == {"T": ["CD3E"], "B": ["MS4A1", "CD79A"]}
    (tmp_path / "bad.csv").write_text("type,symbol\nT,CD3E\n")
    with pytest.raises(InputError, match="columns cell_type and gene"):
        load_markers(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="marker set not found"):
        load_markers(tmp_path / "nope.json")


def _toy(seed=0):
    """Three groups of 60 cells, each with its own 3 marker genes up, log-normalised."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    groups = np.repeat(["g0", "g1", "g2"], 60)
    X = rng.poisson(1.0, size=(180, 12)).astype(float)
    for k in range(3):
        X[groups == f"g{k}", 3 * k:3 * k + 3] += rng.poisson(6.0, size=(60, 3))
    a = ad.AnnData(X=np.log1p(X).astype(np.float32),
                   obs=pd.DataFrame({"leiden": groups}, index=[f"c{i}" for i in range(180)]))
    a.var_names = [f"M{i}" for i in range(12)]
    return a


def test_annotate_by_cluster_and_by_cell():
    a = _toy()
    sets = {"Alpha": ["M0", "M1", "M2"], "Beta": ["M3", "M4", "M5"], "Gamma": ["M6", "M7", "M8"],
            "Absent": ["X1", "X2"]}
    table = annotate(a, sets, groupby="leiden")
    assert dict(zip(table.index, table.idxmax(axis=1), strict=True)) == {
        "g0": "Alpha", "g1": "Beta", "g2": "Gamma"}
    assert (a.obs["cell_type"].astype(str).to_numpy()
            == np.repeat(["Alpha", "Beta", "Gamma"], 60)).all()
    assert a.uns["pmed_annotation"]["skipped_types"] == ["Absent"]
    annotate(a, sets, groupby=None, key_added="per_cell")
    acc = (a.obs["per_cell"].astype(str).to_numpy() == np.repeat(["Alpha", "Beta", "Gamma"], 60))
    assert acc.mean() > 0.95
    with pytest.raises(InputError, match="no marker set has 2 or more genes"):
        annotate(a, {"x": ["Q1"]})


def test_marker_genes_effect_sizes_match_reference():
    from scipy.stats import false_discovery_control, mannwhitneyu
    from sklearn.metrics import roc_auc_score

    a = _toy()
    t = marker_genes(a, "leiden", n_genes=12, tie_correct=True)
    top = t[t["rank"] <= 3]
    assert set(top.loc[top.group == "g1", "gene"]) == {"M3", "M4", "M5"}
    inside = (a.obs["leiden"] == "g1").to_numpy()
    row = t[(t.group == "g1") & (t.gene == "M4")].iloc[0]
    x = a[:, "M4"].X.ravel()
    assert row["auroc"] == pytest.approx(roc_auc_score(inside, x), abs=1e-12)
    assert row["pct_in"] == pytest.approx(np.mean(x[inside] > 0))
    ref_p = mannwhitneyu(x[inside], x[~inside], alternative="two-sided", method="asymptotic",
                         use_continuity=False).pvalue
    assert row["pval"] == pytest.approx(ref_p, rel=1e-6)
    assert row["log2fc"] > 1
    g1 = t[t.group == "g1"]
    np.testing.assert_allclose(g1["fdr"], false_discovery_control(g1["pval"]), rtol=1e-10)
    # subsampling bounds the cells tested; the planted markers still lead
    s = marker_genes(a, "leiden", n_genes=3, max_cells_per_group=20)
    assert set(s.loc[s.group == "g2", "gene"]) == {"M6", "M7", "M8"}
    assert (s["pct_in"] <= 1).all()
    # with many groups the total is bounded too: at least 100 per group, else max_cells / groups
    import anndata as ad

    big = ad.concat([_toy(k) for k in range(4)], index_unique="-")  # 240 cells per group
    few = marker_genes(big, "leiden", n_genes=3, max_cells_per_group=None, max_cells=300)
    assert set(few.loc[few.group == "g2", "gene"]) == {"M6", "M7", "M8"}
    # 100 cells tested per group (not 240): the other groups' detection rates are counts of 200
    assert np.allclose(few["pct_out"] * 200, np.round(few["pct_out"] * 200))
    assert not np.allclose(few["pct_out"] * 480, np.round(few["pct_out"] * 480))


def test_umap_starts_from_the_corrected_embedding_on_large_data(monkeypatch):
    from pmed.omics import pipeline

    a = _toy()
    a.obsm["X_pca_harmony"] = np.random.default_rng(0).normal(size=(a.n_obs, 5))
    assert pipeline._umap_init(a, "X_pca_harmony") == "spectral"  # small data: spectral layout
    monkeypatch.setattr(pipeline, "SPECTRAL_INIT_MAX_CELLS", 10)
    assert pipeline._umap_init(a, "X_pca_harmony") == "X_umap_init"
    np.testing.assert_array_equal(a.obsm["X_umap_init"], a.obsm["X_pca_harmony"][:, :2])


def test_bh_reference():
    from scipy.stats import false_discovery_control

    p = np.random.default_rng(3).uniform(size=200) ** 3
    np.testing.assert_allclose(_bh(p), false_discovery_control(p), rtol=1e-12)


def test_marker_symbols_match_decorated_names():
    from pmed.omics.cluster import _symbol_map

    m = _symbol_map(["CD79A_ENSG00000105369", "CD74", "X.1", "X", "Y.1", "Y-2", "HLA-A"])
    assert m["CD79A"] == "CD79A_ENSG00000105369"
    assert m["X"] == "X"  # the exact name wins
    assert "Y" not in m  # ambiguous: two decorated candidates
    assert m["HLA-A"] == "HLA-A"


def test_large_data_knn_transformer_contract():
    from pmed.omics.cluster import _CSRTransformer, _knn_transformer

    assert _knn_transformer(5000, 15, 0) is None  # scanpy's exact path below 8,192 cells
    t = _knn_transformer(100_000, 15, 0)
    assert isinstance(t, _CSRTransformer)
    # scanpy reads n_neighbors from get_params(); UMAP's tree/iteration settings are kept
    assert t.get_params() == {"n_neighbors": 15, "n_trees": 21, "n_iters": 17, "random_state": 0}
