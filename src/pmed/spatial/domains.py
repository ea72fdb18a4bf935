"""Tissue domains: clusters of spots that share expression *and* neighbourhood.

Non-spatial clustering of spots groups them by their own, noisy expression, so one tissue region
breaks into speckles and two regions with similar spots merge. :func:`spatial_domains` follows
BANKSY (Singhal et al., Nat Genet 2024): each spot's expression embedding is joined by the mean
embedding of its spatial neighbourhood, weighted by ``lambda_`` (BANKSY's λ; 0.8 for domains),
and the joined matrix is reduced and clustered. ``lambda_=0`` is plain non-spatial clustering of
the same embedding, so the two can be compared on equal terms (:func:`domain_metrics`).

H&E tile features (:mod:`pmed.spatial.histology`) can be a third part of the joined matrix
(``image=``), standardised and weighted like the expression parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from pmed.errors import OptionError

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["expression_embedding", "neighbourhood_mean", "spatial_domains", "domain_metrics",
           "domain_markers", "COMPARTMENT_MARKERS"]

# Marker genes of the compartments a carcinoma section holds (used to check domains, never to
# make them): luminal/HER2 tumour epithelium, immune cells, fibroblast stroma, fat, vessels.
COMPARTMENT_MARKERS: dict[str, tuple[str, ...]] = {
    "tumour": ("EPCAM", "KRT8", "KRT18", "KRT19", "ERBB2", "CDH1", "CLDN4", "MUC1"),
    "immune": ("PTPRC", "CD74", "HLA-DRA", "CD3E", "CD2", "MS4A1", "IGKC", "IGHG1", "CD68", "LYZ"),
    "stroma": ("COL1A1", "COL1A2", "COL3A1", "DCN", "LUM", "POSTN", "FN1", "SPARC"),
    "adipose": ("ADIPOQ", "PLIN1", "CIDEA", "FABP4", "LEP"),
    "vessel": ("PECAM1", "VWF", "CDH5", "ACTA2", "MYH11"),
}


def expression_embedding(adata: anndata.AnnData, *, n_top_genes: int = 2000, n_pcs: int = 30,
                         exclude: Sequence[str] = (), seed: int = 0) -> np.ndarray:
    """PCA of log-normalised expression of the highly variable genes (spots × ``n_pcs``).

    Counts are normalised to 10,000 per spot and log1p-transformed; genes are ranked by
    scanpy's Seurat-v3 dispersion on the counts, scaled, and reduced by PCA. ``exclude`` leaves
    genes out (:func:`domain_metrics` leaves the marker genes out so that they can judge the
    domains they did not shape).
    """
    import scanpy as sc

    X = adata.X
    if sparse.issparse(X) and X.nnz and np.any(X.data < 0) or (not sparse.issparse(X) and np.any(X < 0)):
        raise OptionError("the expression matrix holds negative values; spatial domains need raw counts",
                          fix="pass the counts (adata.X as read by pmed.spatial.read_spatial)")
    keep = ~adata.var_names.isin(list(exclude))
    a = sc.AnnData(X=sparse.csr_matrix(X[:, np.flatnonzero(keep)], dtype=np.float32))
    a.var_names = adata.var_names[keep]
    sc.pp.filter_genes(a, min_cells=max(3, int(0.01 * a.n_obs)))
    n_top = min(n_top_genes, a.n_vars)
    sc.pp.highly_variable_genes(a, n_top_genes=n_top, flavor="seurat_v3", subset=True)
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    # scaling zero-centres, which densifies anyway: do it here (spots × ≤ n_top_genes) so scanpy
    # does not warn on every call
    a.X = a.X.toarray()
    sc.pp.scale(a, max_value=10)
    n = min(n_pcs, a.n_vars - 1, a.n_obs - 1)
    sc.pp.pca(a, n_comps=n, random_state=seed)
    return np.asarray(a.obsm["X_pca"], dtype=np.float64)


def neighbourhood_mean(Z: np.ndarray, W: sparse.spmatrix, *, hops: int = 1) -> np.ndarray:
    """Mean of ``Z`` over each spot's neighbours within ``hops`` steps of the graph ``W``.

    Spots without neighbours keep their own row (an isolated spot is its own neighbourhood).
    """
    A = sparse.csr_matrix(W, dtype=np.float64)
    A.data[:] = 1.0
    reach = A
    for _ in range(hops - 1):
        reach = reach + reach @ A
    reach = reach.tocsr()
    reach.setdiag(0)
    reach.eliminate_zeros()
    reach.data[:] = 1.0
    deg = np.asarray(reach.sum(axis=1)).ravel()
    out = reach @ Z
    has = deg > 0
    out[has] /= deg[has, None]
    out[~has] = Z[~has]
    return out


def _standardised(Z: np.ndarray) -> np.ndarray:
    # every part of the joined matrix on one scale: unit total variance
    Z = Z - Z.mean(axis=0)
    total = float(np.sqrt((Z ** 2).sum() / max(len(Z) - 1, 1)))
    return Z / total if total > 0 else Z


def spatial_domains(
    adata: anndata.AnnData,
    *,
    n_domains: int = 7,
    lambda_: float = 0.8,
    hops: int = 2,
    n_pcs: int = 30,
    n_top_genes: int = 2000,
    image: pd.DataFrame | np.ndarray | None = None,
    image_weight: float = 0.3,
    exclude_genes: Sequence[str] = (),
    embedding: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Domains of the spots: k-means on the expression embedding joined with its neighbourhood mean.

    Parameters
    ----------
    adata
        Spots × genes, raw counts in ``X``; the spatial graph in
        ``obsp['spatial_connectivities']`` (built by :func:`pmed.spatial.spatial_neighbors` when
        absent).
    n_domains
        How many domains.
    lambda_
        Weight of the neighbourhood in [0, 1): the joined matrix is
        ``[sqrt(1-λ)·own, sqrt(λ)·neighbourhood]`` (BANKSY's weighting). 0: non-spatial.
    hops
        Rings of the graph that make a neighbourhood (2 on Visium: the 18 spots within two
        rings, about 200 µm).
    image, image_weight
        Optional spot × feature table of H&E tile features (rows in ``adata``'s order), joined
        as a third part of weight ``image_weight`` (the expression parts share the rest).
    exclude_genes
        Genes left out of the embedding.
    embedding
        A precomputed expression embedding (spots × components) to use instead of computing one.
    seed
        Seeds the PCA and k-means.

    Returns
    -------
    labels : numpy.ndarray of int
        The domain of each spot, numbered by size (0 = largest).
    joined : numpy.ndarray
        The reduced joined matrix the domains were found in (spots × components).
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    if not 0 <= lambda_ < 1:
        raise OptionError(f"lambda_ must lie in [0, 1), not {lambda_}")
    if not 2 <= n_domains <= max(2, adata.n_obs // 5):
        raise OptionError(f"n_domains must be between 2 and n_spots/5 ({adata.n_obs // 5}), not {n_domains}",
                          fix="use --n-domains between 2 and about 15 for a Visium section")
    if hops < 1:
        raise OptionError(f"hops must be at least 1, not {hops}")
    Z = embedding if embedding is not None else expression_embedding(
        adata, n_top_genes=n_top_genes, n_pcs=n_pcs, exclude=exclude_genes, seed=seed)
    parts = [np.sqrt(1 - lambda_) * _standardised(Z)]
    if lambda_ > 0:
        if "spatial_connectivities" not in adata.obsp:
            from pmed.spatial.graph import spatial_neighbors

            spatial_neighbors(adata)
        parts.append(np.sqrt(lambda_) * _standardised(neighbourhood_mean(Z, adata.obsp["spatial_connectivities"],
                                                                         hops=hops)))
    if image is not None:
        F = np.asarray(image, dtype=np.float64)
        if F.shape[0] != adata.n_obs:
            raise OptionError(f"the image features have {F.shape[0]} rows for {adata.n_obs} spots")
        parts = [np.sqrt(1 - image_weight) * p for p in parts]
        parts.append(np.sqrt(image_weight) * _standardised(F))
    J = np.hstack(parts)
    joined = PCA(n_components=min(n_pcs, J.shape[1], J.shape[0] - 1), random_state=seed).fit_transform(J)
    labels = KMeans(n_clusters=n_domains, n_init=10, random_state=seed).fit_predict(joined)
    # number by size so that runs compare and the largest domain is 0
    order = np.argsort(-np.bincount(labels, minlength=n_domains), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(n_domains)
    return rank[labels], joined


def _marker_scores(adata: anndata.AnnData, markers: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    # mean log-normalised expression of each compartment's markers present, z-scored per gene
    X = adata.X
    lib = np.asarray(X.sum(axis=1)).ravel()
    lib[lib == 0] = 1
    out = {}
    for name, genes in markers.items():
        present = [g for g in genes if g in adata.var_names]
        if not present:
            continue
        idx = adata.var_names.get_indexer(present)
        M = X[:, idx]
        M = M.toarray() if sparse.issparse(M) else np.asarray(M)
        L = np.log1p(M / lib[:, None] * 1e4)
        sd = L.std(axis=0)
        sd[sd == 0] = 1
        out[name] = ((L - L.mean(axis=0)) / sd).mean(axis=1)
    return pd.DataFrame(out, index=adata.obs_names)


def domain_metrics(adata: anndata.AnnData, labels: np.ndarray, *,
                   markers: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """What can be checked of domains without a pathologist's map.

    - ``pas``: the share of spots most of whose neighbours lie in other domains (the "percentage
      of abnormal spots" of spatial-domain papers; lower is more contiguous);
    - ``edge_agreement``: the share of graph edges inside one domain;
    - ``marker_r2``: per compartment (:data:`COMPARTMENT_MARKERS`), the share of the variance of
      the spots' marker score that the domains explain (η² of a one-way ANOVA), and its mean —
      domains that follow tumour, immune, stroma and fat explain more of it.
    """
    markers = COMPARTMENT_MARKERS if markers is None else markers
    W = sparse.csr_matrix(adata.obsp["spatial_connectivities"])
    W.data[:] = 1
    labels = np.asarray(labels)
    rows, cols = W.nonzero()
    same = labels[rows] == labels[cols]
    deg = np.asarray(W.sum(axis=1)).ravel()
    n_same = np.bincount(rows, weights=same.astype(float), minlength=len(labels))
    has = deg > 0
    pas = float(np.mean(n_same[has] / deg[has] < 0.5))
    scores = _marker_scores(adata, markers)
    r2 = {}
    for name in scores.columns:
        s = scores[name].to_numpy()
        total = float(((s - s.mean()) ** 2).sum())
        means = pd.Series(s).groupby(labels).transform("mean").to_numpy()
        r2[name] = float(((means - s.mean()) ** 2).sum() / total) if total > 0 else float("nan")
    return {"pas": pas, "edge_agreement": float(same.mean()), "marker_r2": r2,
            "marker_r2_mean": float(np.nanmean(list(r2.values()))) if r2 else float("nan"),
            "n_domains": int(len(np.unique(labels)))}


def domain_markers(adata: anndata.AnnData, labels: np.ndarray, *,
                   markers: Mapping[str, Sequence[str]] | None = None, min_z: float = 0.2) -> pd.DataFrame:
    """Mean compartment marker score (z) of each domain and the compartment it resembles most:
    the one whose markers it expresses most, when that mean z exceeds ``min_z``, else
    ``"other"`` (a domain near the section's average in every compartment)."""
    markers = COMPARTMENT_MARKERS if markers is None else markers
    scores = _marker_scores(adata, markers)
    table = scores.groupby(np.asarray(labels)).mean()
    table.index.name = "domain"
    table["n_spots"] = pd.Series(np.asarray(labels)).value_counts().sort_index()
    values = table[scores.columns].to_numpy()
    best = scores.columns.to_numpy()[np.argmax(values, axis=1)]
    table["compartment"] = np.where(values.max(axis=1) > min_z, best, "other")
    return table
