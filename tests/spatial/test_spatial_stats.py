"""Spatial graphs and statistics: known answers on constructed data, agreement with squidpy on real data.

The squidpy numbers are constants written in from ``benchmarks/spatial_squidpy.py`` (see the
comment above each block); squidpy is not needed to run these tests. The real-data tests are
skipped when the shared data folder is absent.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats as sstats

from pmed.errors import InputError, NotFoundError, OptionError
from pmed.spatial.graph import graph_summary, row_normalize, spatial_neighbors
from pmed.spatial.stats import (
    bh_fdr,
    co_occurrence,
    moran_matrix,
    morans_i,
    neighborhood_enrichment,
    niches,
)

ad = pytest.importorskip("anndata")

DATA = Path("/work/shared/data/spatial")
VISIUM = DATA / "visium_breast_cancer_blockA1.h5ad"
MERFISH = DATA / "merfish_nsclc_chen2024.h5ad"


# --------------------------------------------------------------------------------- constructions
def square(nr: int, nc: int, X: np.ndarray | None = None, genes=None) -> ad.AnnData:
    """An nr × nc square lattice with unit spacing (rook graph = radius 1)."""
    r, c = np.divmod(np.arange(nr * nc), nc)
    if X is None:
        X = np.zeros((nr * nc, 1))
    a = ad.AnnData(X=np.asarray(X, dtype=float),
                   var=pd.DataFrame(index=genes or [f"g{i}" for i in range(X.shape[1])]))
    a.obs_names = [f"c{i}" for i in range(nr * nc)]
    a.obsm["spatial"] = np.stack([c, r], axis=1).astype(float)
    a.obs["row"], a.obs["col"] = r, c
    return a


def hex_visium(n_rows: int, n_per_row: int) -> ad.AnnData:
    """A Visium-like layout: array_col = 2 j + (row mod 2), pixel coordinates of a unit hexagon."""
    rows, cols = [], []
    for r in range(n_rows):
        for j in range(n_per_row):
            rows.append(r)
            cols.append(2 * j + r % 2)
    rows, cols = np.array(rows), np.array(cols)
    a = ad.AnnData(X=np.zeros((rows.size, 1)))
    a.obs_names = [f"s{i}" for i in range(rows.size)]
    a.obs["array_row"], a.obs["array_col"] = rows, cols
    a.obsm["spatial"] = np.stack([cols * 0.5, rows * np.sqrt(3) / 2], axis=1) * 100.0
    return a


# ------------------------------------------------------------------------------------- graphs
def test_grid_graph_on_hexagonal_layout_has_degree_six_inside_fewer_at_edges():
    a = hex_visium(10, 12)
    spatial_neighbors(a, kind="grid")
    A = a.obsp["spatial_connectivities"]
    deg = np.diff(A.indptr)
    r, c = a.obs["array_row"].to_numpy(), a.obs["array_col"].to_numpy()
    inside = (r > 0) & (r < 9) & (c > 1) & (c < c.max() - 1)
    assert inside.sum() > 50 and np.all(deg[inside] == 6)
    assert np.all(deg[~inside] < 6) and deg.min() == 2  # the corner (0, 0) has two neighbours
    # independent check: neighbours are exactly the spots one spacing (100 px) away
    b = hex_visium(10, 12)
    del b.obs["array_row"]
    spatial_neighbors(b, kind="radius", radius=101.0)
    assert (A != b.obsp["spatial_connectivities"]).nnz == 0
    s = graph_summary(a)
    assert s["symmetric"] and s["max_degree"] == 6 and s["n_edges"] == A.nnz // 2
    # distances are the pixel distances of the same edges
    assert np.allclose(a.obsp["spatial_distances"].data, 100.0)
    assert a.uns["spatial_neighbors"]["params"]["kind"] == "grid"


def test_auto_knn_radius_and_symmetrisation():
    rng = np.random.default_rng(1)
    a = ad.AnnData(X=np.zeros((300, 1)))
    a.obsm["spatial"] = rng.uniform(0, 100, size=(300, 2))
    spatial_neighbors(a)  # no array_row: knn with 6
    A = a.obsp["spatial_connectivities"]
    assert a.uns["spatial_neighbors"]["params"]["kind"] == "knn"
    assert (A != A.T).nnz == 0 and A.diagonal().sum() == 0
    deg = np.diff(A.indptr)
    assert deg.min() >= 6 and deg.max() > 6  # union: some cells gain in-neighbours
    # the directed 6-NN graph of brute-force distances is contained in it, and its union with
    # the reverse is all of it
    D = np.linalg.norm(a.obsm["spatial"][:, None] - a.obsm["spatial"][None], axis=2)
    np.fill_diagonal(D, np.inf)
    nn = np.argsort(D, axis=1)[:, :6]
    K = sp.csr_matrix((np.ones(1800), (np.repeat(np.arange(300), 6), nn.ravel())), shape=(300, 300))
    U = ((K + K.T) > 0).astype(float)
    assert (U != A).nnz == 0
    d = a.obsp["spatial_distances"]
    i, j = A.nonzero()
    assert np.allclose(np.asarray(d[i, j]).ravel(), D[i, j])
    spatial_neighbors(a, kind="radius", radius=10.0)
    A = a.obsp["spatial_connectivities"]
    assert (A != sp.csr_matrix((D <= 10.0).astype(float))).nnz == 0


def test_row_normalize():
    W = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=float))
    R = row_normalize(W).toarray()
    assert np.allclose(R, [[0, 0.5, 0.5], [1, 0, 0], [0, 0, 0]])
    with pytest.raises(InputError, match="square"):
        row_normalize(sp.csr_matrix((2, 3)))


def test_graph_errors_are_explained():
    a = hex_visium(3, 3)
    with pytest.raises(OptionError, match="unknown graph kind") as e:
        spatial_neighbors(a, kind="delaunay")
    assert e.value.where and e.value.fix
    with pytest.raises(OptionError, match="radius"):
        spatial_neighbors(a, kind="radius")
    with pytest.raises(OptionError, match="n_neighs"):
        spatial_neighbors(a, kind="knn", n_neighs=50)
    b = ad.AnnData(X=np.zeros((4, 1)))
    with pytest.raises(InputError, match="array_row"):
        spatial_neighbors(b, kind="grid")
    with pytest.raises(InputError, match="spatial coordinates"):
        spatial_neighbors(b, kind="knn")
    a.obs["array_col"] = 0
    with pytest.raises(InputError, match="share the grid position"):
        spatial_neighbors(a, kind="grid")


# ----------------------------------------------------------------------------------- Moran's I
def test_checkerboard_gives_moran_minus_one():
    # rook graph, row-normalised: every neighbour of a cell holds the other value, so each
    # z_i times the mean of its neighbours' z is -z_i^2 and I = (n / S0) * (-sum z^2) / sum z^2 = -1
    nr = nc = 10
    r, c = np.divmod(np.arange(nr * nc), nc)
    a = square(nr, nc, ((r + c) % 2)[:, None])
    spatial_neighbors(a, kind="radius", radius=1.0)
    res = morans_i(a, layer="X", min_cells=1)
    assert res.loc["g0", "moran_i"] == pytest.approx(-1.0, abs=1e-12)
    assert res.loc["g0", "expected"] == pytest.approx(-1 / 99)
    assert res.loc["g0", "zscore"] < -10 and res.loc["g0", "pval"] < 1e-20


def test_gradient_is_strongly_autocorrelated_and_permutations_agree():
    nr = nc = 20
    r, c = np.divmod(np.arange(nr * nc), nc)
    rng = np.random.default_rng(0)
    X = np.stack([c + rng.normal(0, 0.5, c.size), rng.normal(size=c.size)], axis=1) + 5
    a = square(nr, nc, X, genes=["gradient", "noise"])
    spatial_neighbors(a, kind="radius", radius=1.0)
    res = morans_i(a, layer="X", n_perms=199, seed=3)
    assert list(res.index) == ["gradient", "noise"]  # sorted by I
    g = res.loc["gradient"]
    assert g["moran_i"] > 0.9 and g["pval"] < 1e-100
    assert g["pval_perm"] == pytest.approx(1 / 200)  # no permutation reaches it
    assert res.loc["noise", "pval_perm"] > 0.05
    again = morans_i(a, layer="X", n_perms=199, seed=3)
    pd.testing.assert_frame_equal(res, again)  # seeded: reproducible
    # brute force I with dense weights
    W = row_normalize(a.obsp["spatial_connectivities"]).toarray()
    z = X[:, 0] - X[:, 0].mean()
    assert g["moran_i"] == pytest.approx(len(z) / W.sum() * z @ W @ z / (z @ z), rel=1e-12)
    assert moran_matrix(sp.csr_matrix(X), W)[0] == pytest.approx(g["moran_i"], rel=1e-12)


def test_random_field_centres_on_expectation_with_uniform_pvalues():
    nr = nc = 30
    n = nr * nc
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, 400)) + 10
    a = square(nr, nc, X)
    spatial_neighbors(a, kind="radius", radius=1.0)
    res = morans_i(a, layer="X")
    E, V = -1 / (n - 1), res["var"].iloc[0]
    assert res["expected"].iloc[0] == pytest.approx(E)
    # mean of 400 independent I: within 4 standard errors of the expectation
    assert abs(res["moran_i"].mean() - E) < 4 * np.sqrt(V / 400)
    # the analytic variance matches the spread of I under the null (to sampling error)
    assert res["moran_i"].var() / V == pytest.approx(1.0, abs=0.25)
    # one-sided p-values in the observed direction are uniform on [0, 0.5]
    assert res["pval"].max() <= 0.5
    assert sstats.kstest(res["pval"] * 2, "uniform").pvalue > 0.01
    assert (res["fdr"] > 0.05).all()


def test_bh_fdr_matches_hand_computation():
    # sorted: 0.01 (×4/1 = 0.04), 0.03 (×4/2 = 0.06), 0.04 (×4/3 = 0.0533), 0.2 (×4/4 = 0.2);
    # the running minimum from the top turns 0.06 into 0.0533
    q = bh_fdr([0.01, 0.04, 0.03, 0.2])
    assert np.allclose(q, [0.04, 0.16 / 3, 0.16 / 3, 0.2])
    assert np.isnan(bh_fdr([0.5, np.nan]))[1] and bh_fdr([0.5, np.nan])[0] == 0.5
    assert bh_fdr([1.0, 1.0]).max() == 1.0


def test_morans_i_normalises_counts_skips_rare_genes_and_explains_errors():
    rng = np.random.default_rng(2)
    counts = rng.poisson(3, size=(100, 3)).astype(float)
    counts[:95, 2] = 0  # expressed in at most 5 cells
    a = square(10, 10, counts, genes=["a", "b", "rare"])
    spatial_neighbors(a, kind="radius", radius=1.0)
    res = morans_i(a)
    assert "rare" not in res.index and set(res.index) == {"a", "b"}
    lib = counts.sum(axis=1, keepdims=True)
    ref = moran_matrix(np.log1p(counts / lib * 1e4), row_normalize(a.obsp["spatial_connectivities"]))
    assert res.loc["a", "moran_i"] == pytest.approx(ref[0], rel=1e-10)
    assert np.allclose(res["fdr"].sort_index(), bh_fdr(res["pval"].sort_index()))
    with pytest.raises(NotFoundError, match="not in var_names"):
        morans_i(a, ["nope"])
    with pytest.raises(OptionError, match="n_perms"):
        morans_i(a, n_perms=-1)
    a.X[0, 0] = -1
    with pytest.raises(InputError, match="not raw counts"):
        morans_i(a)


# -------------------------------------------------------------- enrichment, co-occurrence, niches
def halves() -> ad.AnnData:
    a = square(10, 10)
    a.obs["type"] = np.where(a.obs["col"] < 5, "A", "B")
    spatial_neighbors(a, kind="radius", radius=1.0)
    return a


def test_neighborhood_enrichment_on_two_halves():
    a = halves()
    z, count = neighborhood_enrichment(a, "type", n_perms=200, seed=0)
    # 10 rows × 1 boundary edge between the halves; inside a 10 × 5 half: 10 × 4 + 9 × 5 = 85
    # edges, counted from both ends
    assert count.loc["A", "B"] == 10 and count.loc["B", "A"] == 10
    assert count.loc["A", "A"] == 170 and count.loc["B", "B"] == 170
    assert z.loc["A", "A"] > 5 and z.loc["A", "B"] < -5
    assert np.allclose(z.to_numpy(), z.to_numpy().T)
    z2, _ = neighborhood_enrichment(a, "type", n_perms=200, seed=0)
    pd.testing.assert_frame_equal(z, z2)
    with pytest.raises(NotFoundError, match="no column"):
        neighborhood_enrichment(a, "celltype")


def test_co_occurrence_matches_brute_force():
    rng = np.random.default_rng(4)
    a = ad.AnnData(X=np.zeros((120, 1)))
    a.obsm["spatial"] = rng.uniform(0, 10, size=(120, 2))
    a.obs["t"] = np.where(a.obsm["spatial"][:, 0] < 5, "L", rng.choice(["L", "R"], 120))
    edges = np.array([0.0, 1.0, 2.5, 20.0])
    ratio, e, cats = co_occurrence(a, "t", distances=edges)
    assert list(cats) == ["L", "R"] and ratio.shape == (2, 2, 3) and np.array_equal(e, edges)
    xy, lab = a.obsm["spatial"], (a.obs["t"] == "R").to_numpy().astype(int)
    D = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(D, np.inf)
    for t, d in enumerate(edges[1:]):
        C = np.array([[((D <= d) & (lab[:, None] == i) & (lab[None] == j)).sum() for j in (0, 1)]
                      for i in (0, 1)], dtype=float)
        ref = (C / C.sum(1, keepdims=True)) / (C.sum(0) / C.sum())
        assert np.allclose(ratio[:, :, t], ref)
    # within 20 every pair counts: C[a, b] = n_a n_b (a != b), n_a (n_a - 1)
    n = np.bincount(lab)
    C = np.outer(n, n) - np.diag(n)
    assert np.allclose(ratio[:, :, 2], (C / C.sum(1, keepdims=True)) / (C.sum(0) / C.sum()))
    # L clusters on the left: near L more L than chance
    assert ratio[0, 0, 0] > 1
    # annuli: the pairs between consecutive edges only
    ann, _, _ = co_occurrence(a, "t", distances=edges, cumulative=False)
    assert np.allclose(ann[:, :, 0], ratio[:, :, 0])
    with pytest.raises(OptionError, match="increasing"):
        co_occurrence(a, "t", distances=[3.0, 1.0])


def test_niches_recover_two_compositions_and_are_reproducible():
    a = square(20, 20)
    rng = np.random.default_rng(5)
    left = a.obs["col"].to_numpy() < 10
    a.obs["ct"] = np.where(left, rng.choice(["T", "B"], 400, p=[0.9, 0.1]),
                           rng.choice(["Tumour", "Fibro"], 400, p=[0.5, 0.5]))
    s = niches(a, "ct", n_niches=2, k=8, seed=0)
    assert s.index.equals(a.obs_names) and list(s.cat.categories) == ["0", "1"]
    agree = pd.crosstab(s.to_numpy(), left)
    assert np.sort(agree.to_numpy(), axis=None)[-2:].sum() >= 390  # ≥ 97.5 % of cells on their side
    comp = s.attrs["composition"]
    assert comp.shape == (2, 4) and np.allclose(comp.sum(axis=1), 1)
    assert (niches(a, "ct", n_niches=2, k=8, seed=0) == s).all()
    assert "niche" in a.obs
    with pytest.raises(OptionError, match="k="):
        niches(a, "ct", k=400)


# ------------------------------------------------------------------------ real data vs squidpy
# Constants below: squidpy 1.8.2 (Python 3.11.7, numpy 2.4.6, pandas 2.3.3, scipy 1.17.1,
# anndata 0.12.19, numba 0.68.1; /tmp/squidpy-env, `pip install squidpy`; squidpy 1.8.3 on
# Python 3.12.1 gave the identical numbers), produced by
# `.venv/bin/python benchmarks/spatial_squidpy.py` (its script OUT/squidpy_check.py) on the same
# matrix (pmed's log1p(normalize_total(1e4)) of the counts) and, for the statistics, on pmed's
# graph passed as `connectivity_key`:
#   sq.gr.spatial_neighbors(v, coord_type="grid", n_neighs=6)          (Visium)
#   sq.gr.spatial_neighbors(m, coord_type="generic", n_neighs=6)       (MERFISH)
#   sq.gr.spatial_autocorr(v, genes=<pmed's 14,131 genes>, mode="moran", n_perms=None, copy=True)
#   sq.gr.nhood_enrichment(m, cluster_key="cell_type", n_perms=1000, seed=0, copy=True)
#   sq.gr.co_occurrence(m, cluster_key="cell_type", copy=True)         (interval=50)

# directed edges of squidpy's graph: count, sum of i * n + j (a checksum of the edge set)
SQ_VISIUM_GRID = (22044, 158408303604)
SQ_MERFISH_KNN = (19062, 96199550743)
SQ_MERFISH_KNN_UNION = (21382, 108103899918)  # squidpy's edges with their reverses
SQ_MORAN = {  # Visium, squidpy 'I'
    "MGP": 0.8758274809634473, "COX6C": 0.8477070819406409, "KRT8": 0.7367352674885179,
    "CD74": 0.7178858178444247, "IGFBP5": 0.7042645628983836, "GTPBP1": 0.0031145591219362,
    "MBNL2": 0.0287820981189515, "RAF1": 0.0575243880715679, "RECK": 0.0507621310489737,
    "SLC16A11": 0.0187985486645201,
}
SQ_PVAL_NORM = {"GTPBP1": 0.3622655016550949, "MBNL2": 0.001222265413184,
                "RAF1": 8.268986606552176e-10, "SLC16A11": 0.0233721040311286}
SQ_TOP50 = [
    "MGP", "COX6C", "KRT8", "CD74", "IGFBP5", "IGHG3", "CRISP3", "CPB1", "IGKC", "IFI27", "HLA-A",
    "B2M", "IGHG4", "ALB", "KRT18", "TFF3", "IGHG1", "MUC1", "APOE", "C3", "SLITRK6", "CXCL14",
    "HLA-DRA", "S100A11", "FTL", "CALML5", "CSTA", "TIMP1", "S100A6", "H2AFJ", "ADIRF", "CCND1",
    "ISG15", "CRIP1", "NUPR1", "TFF1", "SLC39A6", "COL1A2", "IFI6", "SERPINA3", "SCGB2A2", "LYZ",
    "KRT14", "APOC1", "HEBP1", "IGHM", "TCEAL4", "AGR2", "SCGB1D2", "COL1A1",
]  # squidpy's I of rank 50 is 0.468066, of rank 51 0.466600: no near-tie at the cut
SQ_NHOOD_Z = {  # MERFISH cell types, upper triangle
    "Epithelial|Epithelial": 67.314, "Epithelial|Fibroblast": -15.408,
    "Epithelial|Lymphocyte": -32.694, "Epithelial|Mast": -2.484, "Epithelial|Myeloid": -15.75,
    "Epithelial|Plasma": -14.729, "Epithelial|Vascular": -19.333, "Fibroblast|Fibroblast": 15.242,
    "Fibroblast|Lymphocyte": -7.604, "Fibroblast|Mast": -0.107, "Fibroblast|Myeloid": 4.508,
    "Fibroblast|Plasma": 0.56, "Fibroblast|Vascular": 0.038, "Lymphocyte|Lymphocyte": 29.388,
    "Lymphocyte|Mast": 0.843, "Lymphocyte|Myeloid": 2.814, "Lymphocyte|Plasma": 3.415,
    "Lymphocyte|Vascular": -11.047, "Mast|Mast": 6.055, "Mast|Myeloid": -0.164,
    "Mast|Plasma": 1.472, "Mast|Vascular": 0.13, "Myeloid|Myeloid": 10.68,
    "Myeloid|Plasma": 4.791, "Myeloid|Vascular": -9.656, "Plasma|Plasma": 12.813,
    "Plasma|Vascular": -7.126, "Vascular|Vascular": 38.392,
}
SQ_NHOOD_COUNT = {
    "Epithelial|Epithelial": 3066, "Epithelial|Fibroblast": 433, "Epithelial|Lymphocyte": 215,
    "Epithelial|Mast": 13, "Epithelial|Myeloid": 301, "Epithelial|Plasma": 71,
    "Epithelial|Vascular": 166, "Fibroblast|Fibroblast": 1206, "Fibroblast|Lymphocyte": 832,
    "Fibroblast|Mast": 22, "Fibroblast|Myeloid": 710, "Fibroblast|Plasma": 264,
    "Fibroblast|Vascular": 513, "Lymphocyte|Lymphocyte": 2634, "Lymphocyte|Mast": 36,
    "Lymphocyte|Myeloid": 935, "Lymphocyte|Plasma": 417, "Lymphocyte|Vascular": 481,
    "Mast|Mast": 8, "Mast|Myeloid": 18, "Mast|Plasma": 12, "Mast|Vascular": 16,
    "Myeloid|Myeloid": 800, "Myeloid|Plasma": 277, "Myeloid|Vascular": 248,
    "Plasma|Plasma": 256, "Plasma|Vascular": 94, "Vascular|Vascular": 1264,
}
# co-occurrence: squidpy's edges 0, 1 and 48 (float32), and its ratios on the diagonal (and
# Epithelial–Lymphocyte) in columns 0 (pairs within edge 1, 16.407244), 10 and 48 (the last
# column: within edge 49)
SQ_COOC_EDGES = (9.547575, 16.407244, 338.81168)
SQ_COOC_DIAG = {
    0: [3.5353225168183613, 1.6135506217324382, 1.710633952014486, 12.14901387874361,
        1.4158806156832524, 2.5858118612979295, 3.324431299706047],
    10: [2.293973178349751, 1.1517275959642337, 1.3590022105766046, 4.532588427772464,
         1.0403944486534684, 1.499063263841576, 1.2586465725633276],
    48: [1.0883883181915086, 1.0366233512344818, 0.9878102818101239, 1.2934475446068503,
         0.9986760121589917, 0.9934571554737424, 1.0118789132731834],
}
SQ_COOC_EPI_LYM = {0: 0.20646987681970883, 10: 0.5059456997108867, 48: 1.0083630049102585}

needs_data = pytest.mark.skipif(not (VISIUM.exists() and MERFISH.exists()),
                                reason="shared spatial data not available")


def _checksum(A: sp.spmatrix) -> tuple[int, int]:
    C = sp.coo_matrix(A)
    return int(C.nnz), int((C.row.astype(np.int64) * A.shape[0] + C.col).sum())


@pytest.fixture(scope="module")
def visium():
    v = ad.read_h5ad(VISIUM)
    v = v[v.obs["in_tissue"] == 1].copy()
    spatial_neighbors(v, kind="grid")
    t = time.perf_counter()
    res = morans_i(v)
    return v, res, time.perf_counter() - t


@pytest.fixture(scope="module")
def merfish():
    m = ad.read_h5ad(MERFISH)
    spatial_neighbors(m, kind="knn", n_neighs=6)
    return m


@needs_data
def test_visium_grid_graph_equals_squidpy(visium):
    v, _, _ = visium
    assert v.n_obs == 3796
    assert _checksum(v.obsp["spatial_connectivities"]) == SQ_VISIUM_GRID
    deg = np.diff(v.obsp["spatial_connectivities"].indptr)
    assert deg.max() == 6 and (deg == 6).mean() > 0.8


@needs_data
def test_visium_morans_i_equals_squidpy(visium):
    v, res, seconds = visium
    print(f"Moran's I of {len(res):,} Visium genes: {seconds:.2f} s")  # shown with pytest -s
    assert len(res) == 14131  # of 14,664 genes, those in ≥ 10 spots
    for g, ref in SQ_MORAN.items():
        assert res.loc[g, "moran_i"] == pytest.approx(ref, abs=1e-6)
    for g, ref in SQ_PVAL_NORM.items():
        assert res.loc[g, "pval"] == pytest.approx(ref, rel=1e-6)
    assert len(set(res.index[:50]) & set(SQ_TOP50)) == 50
    assert res["moran_i"].is_monotonic_decreasing
    assert seconds < 30  # about 2 to 6 s on 2 shared cores


@needs_data
def test_merfish_knn_graph_is_squidpy_symmetrised(merfish):
    A = merfish.obsp["spatial_connectivities"]
    assert _checksum(A) == SQ_MERFISH_KNN_UNION
    assert SQ_MERFISH_KNN[0] == 6 * merfish.n_obs  # squidpy keeps 6 directed edges per cell


@needs_data
def test_merfish_neighborhood_enrichment_agrees_with_squidpy(merfish):
    z, count = neighborhood_enrichment(merfish, "cell_type", n_perms=1000, seed=0)
    pairs = list(SQ_NHOOD_Z)
    ours = np.array([z.loc[p.split("|")[0], p.split("|")[1]] for p in pairs])
    theirs = np.array([SQ_NHOOD_Z[p] for p in pairs])
    for p in pairs:
        a, b = p.split("|")
        assert count.loc[a, b] == SQ_NHOOD_COUNT[p]  # the observed counts are exact
    # z differs by permutation noise only (different random streams): the sd of 1,000
    # permutations is estimated to a few per cent, so |Δz| ≤ 10 % of |z| + 0.5
    assert np.corrcoef(ours, theirs)[0, 1] > 0.999
    assert np.all(np.abs(ours - theirs) <= 0.1 * np.abs(theirs) + 0.5)
    strong = np.abs(theirs) > 3
    assert strong.sum() >= 15 and np.all(np.sign(ours[strong]) == np.sign(theirs[strong]))
    assert ours[pairs.index("Epithelial|Epithelial")] == ours.max()


@needs_data
def test_merfish_co_occurrence_equals_squidpy(merfish):
    ratio, edges, cats = co_occurrence(merfish, "cell_type", distances=50, float32=True)
    assert edges.size == 50 and ratio.shape == (7, 7, 49)
    assert edges[[0, 1, 48]] == pytest.approx(SQ_COOC_EDGES, rel=1e-6)
    lym = list(cats).index("Lymphocyte")
    for t, ref in SQ_COOC_DIAG.items():
        assert np.diagonal(ratio[:, :, t]) == pytest.approx(ref, rel=1e-6)
        assert ratio[0, lym, t] == pytest.approx(SQ_COOC_EPI_LYM[t], rel=1e-6)
    # coordinates as given (float64): differs from squidpy's float32 only for pairs on an edge
    r64, _, _ = co_occurrence(merfish, "cell_type", distances=50)
    assert np.nanmax(np.abs(r64 - ratio)) < 0.05


@needs_data
def test_merfish_niches_are_reproducible_and_distinct(merfish):
    s = niches(merfish, "cell_type", n_niches=6, k=15, seed=0, key_added=None)
    assert s.nunique() == 6 and s.value_counts().min() > 50
    comp = s.attrs["composition"]
    # each niche is dominated by a different mix: the dominant cell type is not the same for all
    assert comp.idxmax(axis=1).nunique() >= 4
    assert (niches(merfish, "cell_type", n_niches=6, k=15, seed=0, key_added=None) == s).all()
