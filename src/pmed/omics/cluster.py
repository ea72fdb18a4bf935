"""Clusters and UMAP; the annotation and marker-gene functions are re-exported from here.

- :func:`cluster` builds the neighbour graph on an embedding, runs Leiden and UMAP (scanpy);
- :func:`~pmed.omics.annotation.load_markers`, :func:`~pmed.omics.annotation.score_marker_sets`
  and :func:`~pmed.omics.annotation.annotate` (marker-set annotation) live in
  :mod:`pmed.omics.annotation`;
- :func:`~pmed.omics.markers.marker_genes` (Wilcoxon markers with effect sizes) in
  :mod:`pmed.omics.markers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

from pmed.errors import InputError, require
from pmed.omics._compat import resolve_seed
from pmed.omics.annotation import (
    SHIPPED_MARKER_SETS,
    _source,
    _symbol_map,
    annotate,
    load_markers,
    score_marker_sets,
)
from pmed.omics.markers import _bh, marker_genes

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["cluster", "load_markers", "score_marker_sets", "annotate", "marker_genes",
           "SHIPPED_MARKER_SETS"]

# re-exported names (the public ones are in __all__; these keep old private imports working)
_REEXPORTED = (_source, _symbol_map, _bh)


def cluster(
    adata: anndata.AnnData,
    *,
    use_rep: str = "X_pca",
    n_neighbors: int = 15,
    resolution: float = 0.5,
    key_added: str = "leiden",
    umap: bool = True,
    seed: int = 0,
    random_state: int | None = None,
    neighbors: bool = True,
) -> anndata.AnnData:
    """Neighbour graph, Leiden clusters and (optionally) UMAP on an embedding.

    Parameters
    ----------
    adata
        Cells; changed in place.
    use_rep
        ``obsm`` key of the embedding (e.g. the Harmony-corrected ``X_pca_harmony``).
    n_neighbors
        Neighbours per cell.
    resolution
        Leiden resolution (higher: more clusters).
    key_added
        ``obs`` column for the clusters.
    umap
        Also compute ``obsm['X_umap']``.
    seed
        Seed.
    neighbors
        Build the graph (set False to reuse ``obsp`` from BBKNN).
    random_state
        Deprecated alias of ``seed``.

    Returns
    -------
    anndata.AnnData
    """
    seed = resolve_seed(seed, random_state, "cluster")
    sc = require("scanpy", extra="omics")

    if neighbors:
        if use_rep not in adata.obsm:
            raise InputError(f"embedding obsm[{use_rep!r}] not found",
                             fix="run preprocess() (and integrate()) first")
        sc.pp.neighbors(adata, use_rep=use_rep, n_neighbors=n_neighbors, random_state=seed,
                        transformer=_knn_transformer(adata.n_obs, n_neighbors, seed))
    require("igraph", extra="omics", feature="Leiden clustering")  # flavor="igraph" below
    sc.tl.leiden(adata, resolution=resolution, key_added=key_added, random_state=seed,
                 flavor="igraph", n_iterations=2, directed=False)
    if umap:
        sc.tl.umap(adata, random_state=seed)
    return adata


class _CSRTransformer(TransformerMixin, BaseEstimator):
    """pynndescent k-NN transformer (UMAP's settings) that returns a ``csr_matrix``.

    scanpy 1.11 calls ``getnnz`` on the transformer's output, which scipy's sparse *arrays*
    (returned by pynndescent 0.7) no longer have.
    """

    def __init__(self, n_neighbors: int = 15, n_trees: int = 10, n_iters: int = 10,
                 random_state: int = 0) -> None:
        self.n_neighbors = n_neighbors
        self.n_trees = n_trees
        self.n_iters = n_iters
        self.random_state = random_state

    def _inner(self):
        from pynndescent import PyNNDescentTransformer

        return PyNNDescentTransformer(n_neighbors=self.n_neighbors, metric="euclidean",
                                      n_trees=self.n_trees, n_iters=self.n_iters,
                                      random_state=self.random_state)

    def fit(self, X, y=None):
        self.inner_ = self._inner().fit(X)
        return self

    def transform(self, X):
        return sparse.csr_matrix(self.inner_.transform(X))

    def fit_transform(self, X, y=None):
        self.inner_ = self._inner()
        return sparse.csr_matrix(self.inner_.fit_transform(X))


def _knn_transformer(n_obs: int, n_neighbors: int, random_state: int):
    """scanpy's own choice of k-NN backend (exact below 8,192 cells, else pynndescent as UMAP)."""
    if n_obs < 8192:
        return None  # scanpy's brute-force shortcut, unaffected
    return _CSRTransformer(n_neighbors=n_neighbors, n_trees=min(64, 5 + round(n_obs**0.5 / 20.0)),
                           n_iters=max(5, round(np.log2(n_obs))), random_state=random_state)

