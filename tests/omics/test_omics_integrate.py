"""Integration metrics (LISI vs harmonypy, kBET-style acceptance) and correction methods."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("scanpy")

from pmed.errors import InputError  # noqa: E402
from pmed.omics import integrate, integration_metrics, kbet_acceptance, lisi  # noqa: E402


def _blobs(n=300, sep=8.0, mixed=False, seed=0):
    """Two cell types x two batches in 10-D; batches offset unless ``mixed``."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(["A", "B"], n // 2)
    batches = np.tile(["b1", "b2"], n // 2)
    X = rng.normal(size=(n, 10))
    X[labels == "B", 0] += sep
    if not mixed:
        X[batches == "b2", 1] += sep
    return X.astype(np.float32), batches, labels


def test_lisi_matches_harmonypy_reference():
    harmony_lisi = pytest.importorskip("harmonypy.lisi")
    X, batches, labels = _blobs(sep=2.0)
    meta = pd.DataFrame({"batch": batches, "label": labels})
    ref = harmony_lisi.compute_lisi(X.astype(np.float64), meta, ["batch", "label"], perplexity=30)
    ours_b = lisi(X, batches, perplexity=30)
    ours_l = lisi(X, labels, perplexity=30)
    np.testing.assert_allclose(ours_b, ref[:, 0], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(ours_l, ref[:, 1], rtol=1e-3, atol=1e-3)


def test_lisi_and_kbet_known_extremes():
    X, batches, _ = _blobs(sep=20.0)
    assert np.nanmean(lisi(X, batches)) == pytest.approx(1.0, abs=1e-3)  # separated
    assert kbet_acceptance(X, batches) == 0.0
    Xm, bm, _ = _blobs(mixed=True)
    assert np.nanmean(lisi(Xm, bm)) > 1.8  # two batches perfectly interleaved: near 2
    assert kbet_acceptance(Xm, bm) > 0.8


def _adata(mixed=False, seed=0):
    import anndata as ad

    X, batches, labels = _blobs(mixed=mixed, seed=seed)
    a = ad.AnnData(X=np.zeros((len(X), 3), dtype=np.float32),
                   obs=pd.DataFrame({"batch": batches, "label": labels},
                                    index=[f"c{i}" for i in range(len(X))]))
    a.obsm["X_pca"] = X
    return a


def test_harmony_improves_mixing_and_keeps_labels():
    a = _adata()
    key = integrate(a, "batch", method="harmony")
    assert key == "X_pca_harmony" and a.obsm[key].shape == a.obsm["X_pca"].shape
    a.obs["cl_before"] = a.obs["batch"].astype(str) + a.obs["label"].astype(str)
    a.obs["cl_after"] = a.obs["label"]
    m = integration_metrics(a, batch_key="batch", label_key="label",
                            embeddings={"before": "X_pca", "after": key},
                            cluster_keys={"before": "cl_before", "after": "cl_after"})
    assert m["before"]["ilisi_normalised"] < 0.05
    assert m["after"]["ilisi_normalised"] > 0.6
    assert m["after"]["kbet_acceptance"] > m["before"]["kbet_acceptance"] + 0.5
    assert m["after"]["clisi_normalised"] > 0.95  # types still apart
    assert m["after"]["ari"] == 1.0 and m["before"]["ari"] < 1.0
    assert m["settings"]["n_batches"] == 2


def test_integrate_errors():
    a = _adata()
    with pytest.raises(InputError, match="batch key 'donor' is not a column"):
        integrate(a, "donor")
    with pytest.raises(InputError, match="unknown integration method"):
        integrate(a, "batch", method="magic")
    a.obs["one"] = "x"
    with pytest.raises(InputError, match="at least 2 needed"):
        integrate(a, "one")


def _counts_adata(seed=0):
    """Small count data with a multiplicative batch effect for ComBat/Scanorama/BBKNN."""
    import anndata as ad
    from scipy import sparse

    from pmed.omics import normalize_pca

    rng = np.random.default_rng(seed)
    n, g = 240, 60
    labels = np.repeat(["A", "B"], n // 2)
    batches = np.tile(["b1", "b2"], n // 2)
    mu = np.full((n, g), 2.0)
    mu[labels == "B", :15] *= 8
    mu[batches == "b2", 30:45] *= 6
    X = rng.poisson(mu).astype(np.float32)
    a = ad.AnnData(X=sparse.csr_matrix(X), obs=pd.DataFrame({"batch": batches, "label": labels},
                                                            index=[f"c{i}" for i in range(n)]))
    a.var_names = [f"G{i}" for i in range(g)]
    a.layers["counts"] = a.X.copy()
    return normalize_pca(a, n_top_genes=60, n_comps=10, hvg_flavor="seurat")


@pytest.mark.parametrize("method", ["combat", "scanorama"])
def test_embedding_methods_improve_mixing(method):
    if method == "scanorama":
        pytest.importorskip("scanorama")
    a = _counts_adata()
    key = integrate(a, "batch", method=method)
    m = integration_metrics(a, batch_key="batch", label_key="label",
                            embeddings={"before": "X_pca", "after": key})
    assert m["after"]["ilisi_mean"] > m["before"]["ilisi_mean"] + 0.3
    assert m["after"]["clisi_normalised"] > 0.9


def test_bbknn_graph():
    pytest.importorskip("bbknn")
    a = _counts_adata()
    key = integrate(a, "batch", method="bbknn")
    assert key == "X_pca" and "connectivities" in a.obsp
    # each cell's graph neighbours come from both batches
    C = a.obsp["connectivities"].tocsr()
    b = a.obs["batch"].to_numpy()
    share = np.mean([np.mean(b[C[i].indices] != b[i]) for i in range(a.n_obs)])
    assert 0.3 < share < 0.7
