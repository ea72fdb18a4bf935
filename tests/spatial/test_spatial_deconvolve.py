"""Cell-type deconvolution of spots (:mod:`pmed.spatial.deconvolve`).

Synthetic known answers (Poisson mixtures of known profiles), a held-out check on a real MERFISH
section of a human lung cancer (reference from one set of blocks, pseudo-spots from the other)
and a smoke test on a real Visium breast-cancer section with the lung MERFISH reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

ad = pytest.importorskip("anndata")

from pmed.datasets._paths import shared_data_dir  # noqa: E402
from pmed.errors import InputError, OptionError, PmedWarning  # noqa: E402
from pmed.spatial.deconvolve import deconvolve, pseudo_spots, reference_profiles  # noqa: E402

MERFISH = "data/spatial/merfish_nsclc_chen2024.h5ad"
VISIUM = "data/spatial/visium_breast_cancer_blockA1.h5ad"
TYPES = ["A", "B", "C", "D"]


# --------------------------------------------------------------------------- synthetic data


def _profiles(n_genes: int = 200, seed: int = 0) -> pd.DataFrame:
    """Four relative profiles: a shared background plus 30 marker genes per type."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(0.5, 1.0, size=n_genes)
    P = np.tile(base[:, None], (1, len(TYPES)))
    for t in range(len(TYPES)):
        idx = rng.choice(n_genes, 30, replace=False)
        P[idx, t] *= rng.uniform(3, 10, size=30)
    P /= P.sum(axis=0)
    return pd.DataFrame(P, index=[f"g{i}" for i in range(n_genes)], columns=TYPES)


def _mixture_spots(prof: pd.DataFrame, n_spots: int = 150, depth: int = 2000, seed: int = 1,
                   gamma: np.ndarray | None = None):
    """Spots y ~ Poisson(N · Σ β_t μ_gt) with Dirichlet β; the first spot is pure type C."""
    rng = np.random.default_rng(seed)
    beta = rng.dirichlet(np.full(len(TYPES), 0.7), size=n_spots)
    beta[0] = [0, 0, 1, 0]
    mu = prof.to_numpy()
    if gamma is not None:
        mu = mu * gamma[:, None]
        mu = mu / mu.sum(axis=0)
    lam = depth * beta @ mu.T
    Y = rng.poisson(lam).astype(float)
    spots = ad.AnnData(Y, obs=pd.DataFrame(index=[f"s{i}" for i in range(n_spots)]),
                       var=pd.DataFrame(index=prof.index))
    return spots, pd.DataFrame(beta, index=spots.obs_names, columns=TYPES)


def _cells(prof: pd.DataFrame, n_per_type: int = 60, sizes=(400, 100, 200, 150), seed: int = 2):
    """Reference cells: type t's cells ~ Poisson(size_t · μ_t), types of unequal RNA content,
    laid out at random over a 300 × 300 square."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for t, size in zip(TYPES, sizes, strict=True):
        rows.append(rng.poisson(size * prof[t].to_numpy(), size=(n_per_type, len(prof))))
        labels += [t] * n_per_type
    X = np.vstack(rows).astype(float)
    obs = pd.DataFrame({"cell_type": pd.Categorical(labels, categories=TYPES)},
                       index=[f"c{i}" for i in range(len(labels))])
    a = ad.AnnData(X, obs=obs, var=pd.DataFrame(index=prof.index))
    a.obsm["spatial"] = rng.uniform(0, 300, size=(len(labels), 2))
    return a


# --------------------------------------------------------------------------- known answers


def test_reference_profiles_are_relative_and_keep_cell_sizes():
    prof = _profiles()
    cells = _cells(prof)
    ref = reference_profiles(cells, "cell_type")
    assert list(ref.columns) == TYPES and list(ref.index) == list(prof.index)
    np.testing.assert_allclose(ref.sum(axis=0), 1.0)
    assert (ref.to_numpy() >= 0).all()
    # pooled counts of 60 cells recover the generating profile
    assert np.abs(ref - prof).to_numpy().max() < 0.01
    mc = ref.attrs["mean_counts"]
    np.testing.assert_allclose(mc[TYPES], [400, 100, 200, 150], rtol=0.05)
    assert ref.attrs["n_cells"].tolist() == [60] * 4


@pytest.mark.parametrize("method,tol_mae,tol_max", [("poisson", 0.02, 0.09),
                                                    ("nnls", 0.025, 0.12)])
def test_known_proportions_recovered(method, tol_mae, tol_max):
    prof = _profiles()
    spots, beta = _mixture_spots(prof)
    est = deconvolve(spots, prof, method=method, proportions="counts", genes="all")
    assert est.shape == beta.shape and list(est.columns) == TYPES
    assert (est.to_numpy() >= 0).all()
    np.testing.assert_allclose(est.sum(axis=1), 1.0, atol=1e-9)
    err = np.abs(est - beta).to_numpy()
    # observed (poisson): mean |error| 0.0161, max 0.066; (nnls): 0.0207, max 0.090
    assert err.mean() < tol_mae
    assert err.max() < tol_max
    assert est.loc["s0", "C"] > 0.97  # the pure spot


def test_poisson_more_accurate_than_nnls_on_poisson_data():
    prof = _profiles()
    spots, beta = _mixture_spots(prof, depth=500, seed=3)
    e_p = deconvolve(spots, prof, method="poisson", proportions="counts")
    e_n = deconvolve(spots, prof, method="nnls", proportions="counts")
    rmse = {k: float(np.sqrt(((e - beta) ** 2).to_numpy().mean()))
            for k, e in (("poisson", e_p), ("nnls", e_n))}
    assert rmse["poisson"] < rmse["nnls"]


def test_profiles_without_cell_sizes_warn_and_return_count_shares():
    prof = _profiles()
    spots, _ = _mixture_spots(prof, n_spots=10)
    with pytest.warns(PmedWarning, match="mean_counts"):
        est = deconvolve(spots, prof)
    np.testing.assert_allclose(est.sum(axis=1), 1.0, atol=1e-9)


def test_cell_fractions_correct_for_rna_content():
    """Spots summed from real cells of unequal size: 'cells' estimates cell fractions, 'counts'
    over-weights the big type A (400 counts per cell against 100 for B)."""
    prof = _profiles()
    ref = _cells(prof, n_per_type=80, seed=4)
    tissue = _cells(prof, n_per_type=150, seed=5)
    spots, truth = pseudo_spots(tissue, label_key="cell_type", spot_size=50, min_cells=5)
    e_cells = deconvolve(spots, ref, label_key="cell_type")
    e_counts = deconvolve(spots, ref, label_key="cell_type", proportions="counts")
    rmse_cells = np.sqrt(((e_cells - truth) ** 2).to_numpy().mean())
    rmse_counts = np.sqrt(((e_counts - truth) ** 2).to_numpy().mean())
    assert rmse_cells < rmse_counts
    assert rmse_cells < 0.05
    assert (e_counts["A"] - truth["A"]).mean() > 0.05  # count shares over-weight type A


def test_platform_effect_corrects_gene_scaling():
    prof = _profiles()
    gamma = np.exp(np.random.default_rng(7).normal(0, 0.7, size=len(prof)))
    spots, beta = _mixture_spots(prof, n_spots=300, seed=8, gamma=gamma)
    plain = deconvolve(spots, prof, proportions="counts")
    fixed = deconvolve(spots, prof, proportions="counts", platform_effect=True)
    r_plain = np.sqrt(((plain - beta) ** 2).to_numpy().mean())
    r_fixed = np.sqrt(((fixed - beta) ** 2).to_numpy().mean())
    # observed RMSE 0.0411 without, 0.0373 with; r(log γ̂, log γ) = 0.984 on the 93 genes used
    assert r_fixed < 0.95 * r_plain
    g = fixed.attrs["platform_effect"]
    true = gamma[prof.index.get_indexer(g.index)]
    assert np.corrcoef(np.log(g), np.log(true))[0, 1] > 0.9


def test_spot_without_counts_is_nan_with_warning():
    prof = _profiles()
    spots, _ = _mixture_spots(prof, n_spots=5)
    spots.X[2] = 0
    with pytest.warns(PmedWarning, match="no counts"):
        est = deconvolve(spots, prof, proportions="counts")
    assert est.loc["s2"].isna().all()
    np.testing.assert_allclose(est.drop(index="s2").sum(axis=1), 1.0, atol=1e-9)


def test_gene_list_is_used():
    prof = _profiles()
    spots, beta = _mixture_spots(prof)
    genes = list(prof.index[:120])
    est = deconvolve(spots, prof, proportions="counts", genes=genes)
    assert est.attrs["genes"] == genes
    assert np.abs(est - beta).to_numpy().mean() < 0.04


# --------------------------------------------------------------------------- pseudo-spots


def test_pseudo_spots_square_known_layout():
    X = np.arange(1, 13, dtype=float).reshape(6, 2)
    obs = pd.DataFrame({"t": ["x", "y", "x", "x", "y", "y"]}, index=[f"c{i}" for i in range(6)])
    cells = ad.AnnData(X, obs=obs, var=pd.DataFrame(index=["g1", "g2"]))
    # two cells in bin (0,0), three in bin (0,1), one alone in (1,1)
    cells.obsm["spatial"] = np.array([[1, 1], [2, 3], [11, 1], [12, 4], [15, 9], [14, 14.0]])
    spots, truth = pseudo_spots(cells, label_key="t", spot_size=10, origin=(0, 0), min_cells=2)
    assert list(spots.obs_names) == ["spot_0_0", "spot_0_1"]
    assert spots.obs["n_cells"].tolist() == [2, 3]
    np.testing.assert_allclose(spots.X.toarray(), [[1 + 3, 2 + 4], [5 + 7 + 9, 6 + 8 + 10]])
    np.testing.assert_allclose(spots.obsm["spatial"], [[5, 5], [15, 5]])
    np.testing.assert_allclose(truth.to_numpy(), [[0.5, 0.5], [2 / 3, 1 / 3]])
    assert list(truth.columns) == ["x", "y"]


def test_pseudo_spots_hex_keeps_every_cell():
    prof = _profiles()
    cells = _cells(prof)
    spots, truth = pseudo_spots(cells, label_key="cell_type", spot_size=40, shape="hex",
                                min_cells=1)
    assert spots.obs["n_cells"].sum() == cells.n_obs
    np.testing.assert_allclose(spots.X.sum(), cells.X.sum())
    np.testing.assert_allclose(truth.sum(axis=1), 1.0)
    # every cell is within a hexagon's circumradius (size/√3) of its spot centre
    d = np.sqrt(((spots.obsm["spatial"][:, None, :]
                  - cells.obsm["spatial"][None, :, :]) ** 2).sum(-1)).min(axis=0)
    assert d.max() <= 40 / np.sqrt(3) + 1e-9


# --------------------------------------------------------------------------- bad inputs


def _bad_ref():
    prof = _profiles()
    return prof, _cells(prof, n_per_type=12)


def test_missing_label_key_lists_available_keys():
    prof, cells = _bad_ref()
    spots, _ = _mixture_spots(prof, n_spots=3)
    with pytest.raises(InputError) as e:
        deconvolve(spots, cells, label_key="celltype")
    msg = str(e.value)
    assert "'celltype'" in msg and "'cell_type'" in msg and "fix:" in msg
    with pytest.raises(InputError, match="no label_key"):
        deconvolve(spots, cells)


def test_rare_type_names_type_and_fix():
    prof, cells = _bad_ref()
    cells = cells[cells.obs["cell_type"].ne("D").to_numpy() | (np.arange(cells.n_obs) % 4 == 0)]
    with pytest.raises(InputError) as e:
        reference_profiles(cells.copy(), "cell_type", min_cells=10)
    msg = str(e.value)
    assert "'D' (3 cells)" in msg and "min_cells=10" in msg and "drop or merge" in msg


def test_no_shared_genes_says_how_many_each_has():
    prof = _profiles()
    spots, _ = _mixture_spots(prof, n_spots=3)
    spots.var_names = [f"ENSG{i:05d}" for i in range(spots.n_vars)]
    with pytest.raises(InputError) as e:
        deconvolve(spots, prof, proportions="counts")
    msg = str(e.value)
    assert "no genes are shared" in msg and "200 genes" in msg and "fix:" in msg
    assert "identifiers" in msg


@pytest.mark.parametrize("value,word", [(-1.0, "negative"), (np.nan, "non-finite"),
                                        (np.inf, "non-finite")])
def test_bad_counts_rejected(value, word):
    prof, cells = _bad_ref()
    spots, _ = _mixture_spots(prof, n_spots=3)
    spots.X[1, 4] = value
    with pytest.raises(InputError, match=word) as e:
        deconvolve(spots, prof, proportions="counts")
    assert "s1" in str(e.value) and "fix:" in str(e.value)
    cells.X[0, 0] = value
    with pytest.raises(InputError, match=word):
        reference_profiles(cells, "cell_type")


def test_bad_options():
    prof = _profiles()
    spots, _ = _mixture_spots(prof, n_spots=3)
    with pytest.raises(OptionError, match="unknown method"):
        deconvolve(spots, prof, method="rctd")
    with pytest.raises(OptionError, match="proportions"):
        deconvolve(spots, prof, proportions="umi")
    with pytest.raises(OptionError, match="platform_effect"):
        deconvolve(spots, prof, method="nnls", platform_effect=True)
    with pytest.raises(InputError, match="not in both") as e:
        deconvolve(spots, prof, genes=["g1", "NOPE"], proportions="counts")
    assert "NOPE" in str(e.value)
    cells = _cells(prof, n_per_type=5)
    with pytest.raises(OptionError, match="spot_size"):
        pseudo_spots(cells, label_key="cell_type", spot_size=0)
    with pytest.raises(OptionError, match="shape"):
        pseudo_spots(cells, label_key="cell_type", spot_size=10, shape="circle")
    with pytest.raises(InputError, match="larger spot_size"):
        pseudo_spots(cells, label_key="cell_type", spot_size=1e-3, min_cells=2)
    del cells.obsm["spatial"]
    with pytest.raises(InputError, match="obsm"):
        pseudo_spots(cells, label_key="cell_type", spot_size=10)


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def merfish():
    path = shared_data_dir() / MERFISH
    if not path.exists():
        pytest.skip(f"MERFISH data not found: {path} (set PMED_SHARED)")
    return ad.read_h5ad(path)


BLOCK = 120.0  # µm: checkerboard blocks splitting the section into reference and test cells
SPOT = 30.0  # µm: square pseudo-spots, 11.6 cells on average (3–20), like a Visium spot


@pytest.fixture(scope="module")
def merfish_split(merfish):
    """Reference from the 'black' 120 µm blocks, 30 µm pseudo-spots from the 'white' ones.

    A checkerboard rather than a left/right split: the 18 mast cells sit mostly on the right
    (a left/right split leaves 3 on one side, below min_cells=10). The spot grid shares the
    blocks' origin, so each spot lies inside one block.
    """
    xy = np.asarray(merfish.obsm["spatial"])
    origin = xy.min(axis=0)
    block = np.floor((xy - origin) / BLOCK).astype(int)
    white = (block.sum(axis=1) % 2) == 0
    ref = merfish[~white].copy()
    spots, truth = pseudo_spots(merfish[white].copy(), label_key="cell_type", spot_size=SPOT,
                                origin=origin, min_cells=3)
    return ref, spots, truth


def _scores(est: pd.DataFrame, truth: pd.DataFrame):
    est = est[truth.columns]
    r = {t: float(np.corrcoef(est[t], truth[t])[0, 1]) for t in truth.columns}
    rmse = float(np.sqrt(((est - truth) ** 2).to_numpy().mean()))
    return r, rmse


@pytest.mark.realdata
def test_merfish_held_out_pseudo_spots(merfish_split):
    ref, spots, truth = merfish_split
    # 3,177 cells: 1,553 reference cells (10 mast), 140 spots of 3–20 cells (mean 11.6)
    assert 120 <= spots.n_obs <= 160
    assert 9 <= spots.obs["n_cells"].mean() <= 14
    r_p, rmse_p = _scores(deconvolve(spots, ref, label_key="cell_type"), truth)
    r_n, rmse_n = _scores(deconvolve(spots, ref, label_key="cell_type", method="nnls"), truth)
    # observed Pearson r (poisson | nnls): Epithelial 0.976 | 0.965, Fibroblast 0.745 | 0.691,
    # Lymphocyte 0.891 | 0.840, Mast 0.611 | 0.335, Myeloid 0.756 | 0.666, Plasma 0.858 | 0.694,
    # Vascular 0.942 | 0.910; mean r 0.826 | 0.729; RMSE 0.098 | 0.124 (468 informative genes).
    # Mast: only 8 test cells, in a few spots; Fibroblast and Myeloid are the weak common types.
    floor = {"Epithelial": 0.9, "Fibroblast": 0.65, "Lymphocyte": 0.8, "Myeloid": 0.65,
             "Plasma": 0.75, "Vascular": 0.88, "Mast": 0.4}
    for t, lo in floor.items():
        assert r_p[t] > lo, (t, r_p[t])
    assert rmse_p < 0.11
    # the likelihood method is at least as good as the baseline on every type and overall
    assert all(r_p[t] >= r_n[t] - 0.01 for t in truth.columns), (r_p, r_n)
    assert rmse_p < rmse_n - 0.01
    assert np.mean(list(r_p.values())) > np.mean(list(r_n.values())) + 0.05


@pytest.mark.realdata
def test_visium_smoke_with_lung_merfish_reference(merfish):
    path = shared_data_dir() / VISIUM
    if not path.exists():
        pytest.skip(f"Visium data not found: {path} (set PMED_SHARED)")
    vis = ad.read_h5ad(path)
    vis = vis[vis.obs["in_tissue"] == 1]
    vis = vis[::6].copy()  # every sixth in-tissue spot (633): a smoke test, kept fast
    prof = reference_profiles(merfish, "cell_type")
    shared = prof.index.intersection(vis.var_names)
    # observed: 438 of the 479 MERFISH genes are among the 14,664 Visium genes;
    # 423 of them pass the informative-gene filter
    assert 400 <= len(shared) <= 479
    for kw in ({}, {"platform_effect": True}, {"method": "nnls"}):
        est = deconvolve(vis, prof, **kw)
        assert est.shape == (vis.n_obs, prof.shape[1])
        assert np.isfinite(est.to_numpy()).all() and (est.to_numpy() >= 0).all()
        np.testing.assert_allclose(est.sum(axis=1), 1.0, atol=1e-9)
        assert set(est.attrs["genes"]) <= set(shared)
