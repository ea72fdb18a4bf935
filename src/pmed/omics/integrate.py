"""Batch correction and the metrics that show whether it helped.

:func:`integrate` corrects the PCA embedding for a batch column with Harmony (harmonypy, default),
ComBat (scanpy), BBKNN (a batch-balanced graph) or Scanorama, the last two when installed.

:func:`integration_metrics` scores an embedding on two axes, before and after correction:

- **batch mixing**: the integration LISI (iLISI, Korsunsky et al. 2019: the effective number of
  batches among a cell's neighbours, from 1 to the number of batches) and a kBET-style acceptance
  rate (Büttner et al. 2019: the share of cells whose neighbourhood batch composition a χ² test
  does not distinguish from the global one);
- **conservation of biology** (when labels are given): cLISI (label purity of neighbourhoods),
  silhouette of the labels, and ARI/NMI between clusters and labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pmed.errors import InputError, require
from pmed.omics._compat import resolve_seed
from pmed.omics.metadata import check_obs_key

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["METHODS", "integrate", "lisi", "kbet_acceptance", "integration_metrics"]

#: Correction methods :func:`integrate` knows, with the ``obsm`` key each writes.
METHODS = {
    "harmony": "X_pca_harmony",
    "combat": "X_pca_combat",
    "scanorama": "X_scanorama",
    "bbknn": "X_pca",  # BBKNN corrects the neighbour graph, not the embedding
    "none": "X_pca",
}


def integrate(
    adata: anndata.AnnData,
    batch_key: str,
    *,
    method: str = "harmony",
    seed: int = 0,
    random_state: int | None = None,
    max_iter: int = 20,
) -> str:
    """Correct the PCA embedding for ``batch_key``.

    Parameters
    ----------
    adata
        Cells with ``obsm['X_pca']`` (and log-normalised ``X`` plus ``var['highly_variable']``
        for ComBat and Scanorama); changed in place.
    batch_key
        ``obs`` column naming each cell's batch.
    method
        ``"harmony"`` (harmonypy), ``"combat"`` (``scanpy.pp.combat`` on the highly variable
        genes, then PCA), ``"scanorama"`` or ``"bbknn"`` (if installed) or ``"none"``.
    seed
        Seed.
    max_iter
        Harmony's outer iterations.
    random_state
        Deprecated alias of ``seed``.

    Returns
    -------
    str
        The ``obsm`` key of the corrected embedding. For BBKNN the embedding is unchanged and the
        corrected graph is written to ``obsp['connectivities']``/``obsp['distances']``.
        ``uns['pmed_integration']`` records the method and its settings.

    Raises
    ------
    InputError
        Unknown method, method not installed, missing or single-valued batch key.
    """
    seed = resolve_seed(seed, random_state, "integrate")
    sc = require("scanpy", extra="omics")

    check_obs_key(adata, batch_key, what="batch key", min_levels=2)
    if "X_pca" not in adata.obsm:
        raise InputError("no PCA embedding (obsm['X_pca'])", fix="run pmed.omics.preprocess first")
    if method not in METHODS:
        # InputError (not OptionError) as before: callers and tests catch it as an input problem
        raise InputError(f"unknown integration method {method!r}", fix=f"use one of {list(METHODS)}")
    key = METHODS[method]
    if method == "harmony":
        harmonypy = require("harmonypy", extra="omics", feature="Harmony integration")

        res = harmonypy.run_harmony(np.asarray(adata.obsm["X_pca"], dtype=np.float64), adata.obs,
                                    [batch_key], random_state=seed, verbose=False,
                                    max_iter_harmony=max_iter, ncores=1)
        z = np.asarray(res.Z_corr)
        adata.obsm[key] = (z if z.shape[0] == adata.n_obs else z.T).astype(np.float32)
    elif method == "combat":
        hv = adata[:, adata.var["highly_variable"].to_numpy()].copy()
        hv.X = hv.X.toarray() if hasattr(hv.X, "toarray") else np.asarray(hv.X)
        hv.obs[batch_key] = hv.obs[batch_key].astype(str).astype("category")
        sc.pp.combat(hv, key=batch_key)
        sc.pp.scale(hv, max_value=10)
        k = adata.obsm["X_pca"].shape[1]
        sc.pp.pca(hv, n_comps=k, random_state=seed, svd_solver="arpack")
        adata.obsm[key] = hv.obsm["X_pca"].astype(np.float32)
    elif method == "scanorama":
        # not in the omics extra (optional): the error names the package to install
        scanorama = require("scanorama", extra=None, feature="--method scanorama")
        batches = adata.obs[batch_key].astype(str).to_numpy()
        order = np.argsort(batches, kind="stable")
        hv = adata[order][:, adata.var["highly_variable"].to_numpy()].copy()
        parts = [hv[hv.obs[batch_key].astype(str).to_numpy() == b].copy() for b in np.unique(batches)]
        scanorama.integrate_scanpy(parts, dimred=adata.obsm["X_pca"].shape[1], verbose=0,
                                   seed=seed)
        emb = np.concatenate([p.obsm["X_scanorama"] for p in parts])
        out = np.empty_like(emb)
        out[order] = emb
        adata.obsm[key] = out.astype(np.float32)
    elif method == "bbknn":
        bbknn = require("bbknn", extra=None, feature="--method bbknn")
        bbknn.bbknn(adata, batch_key=batch_key, use_rep="X_pca")
    adata.uns["pmed_integration"] = {"method": method, "batch_key": batch_key, "obsm_key": key,
                                     "seed": seed}
    return key


def _knn(X: np.ndarray, k: int, query: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (Euclidean) of ``query`` rows (indices into X), self excluded."""
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X, dtype=np.float32)
    q = np.arange(len(X)) if query is None else query
    k = int(min(k, len(X) - 1))
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", n_jobs=1).fit(X)
    dist, idx = nn.kneighbors(X[q])
    # drop self (usually column 0; with exact duplicates it may sit elsewhere)
    is_self = idx == q[:, None]
    has_self = is_self.any(axis=1)
    is_self[~has_self, -1] = True  # drop the farthest when self was not returned
    keep = ~is_self
    dist = dist[keep].reshape(len(q), k)
    idx = idx[keep].reshape(len(q), k)
    return dist, idx


def _simpson_perplexity(dist: np.ndarray, codes: np.ndarray, n_cat: int, perplexity: float,
                        tol: float = 1e-5, n_iter: int = 50) -> np.ndarray:
    """Inverse Simpson index with Gaussian weights calibrated to a perplexity (vectorised)."""
    n = dist.shape[0]
    beta = np.ones(n)
    bmin = np.full(n, -np.inf)
    bmax = np.full(n, np.inf)
    logu = np.log(perplexity)
    done = np.zeros(n, dtype=bool)

    def hbeta(b):
        P = np.exp(-dist * b[:, None])
        s = P.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            H = np.where(s > 0, np.log(s) + b * (dist * P).sum(axis=1) / s, 0.0)
            P = np.where(s[:, None] > 0, P / s[:, None], 0.0)
        return H, P

    H, P = hbeta(beta)
    for _ in range(n_iter):
        diff = H - logu
        done |= np.abs(diff) < tol
        if done.all():
            break
        up = (diff > 0) & ~done
        down = (diff <= 0) & ~done
        bmin[up] = beta[up]
        beta[up] = np.where(np.isinf(bmax[up]), beta[up] * 2, (beta[up] + bmax[up]) / 2)
        bmax[down] = beta[down]
        beta[down] = np.where(np.isinf(bmin[down]), beta[down] / 2, (beta[down] + bmin[down]) / 2)
        Hn, Pn = hbeta(beta)
        H = np.where(done, H, Hn)
        P = np.where(done[:, None], P, Pn)
    # per-category probability mass among neighbours
    mass = np.zeros((n, n_cat))
    rows = np.repeat(np.arange(n), codes.shape[1])
    np.add.at(mass, (rows, codes.ravel()), P.ravel())
    simpson = (mass**2).sum(axis=1)
    simpson = np.where(H == 0, -1.0, simpson)
    with np.errstate(divide="ignore"):
        return np.where(simpson > 0, 1.0 / simpson, np.nan)


def lisi(
    X: np.ndarray,
    labels: Any,
    *,
    perplexity: float = 30.0,
    query: np.ndarray | None = None,
) -> np.ndarray:
    """Local inverse Simpson's index of ``labels`` for each cell (Korsunsky et al. 2019).

    Neighbours are the ``3 × perplexity`` nearest cells (Euclidean); their Gaussian weights are
    calibrated per cell to the perplexity, as in the reference implementation (``lisi`` R package,
    harmonypy's ``compute_lisi``).

    Parameters
    ----------
    X
        Embedding, cells × dimensions.
    labels
        One label per cell (batch for iLISI, cell type for cLISI).
    perplexity
        Effective neighbourhood size.
    query
        Indices of the cells to score (default all); neighbours are searched among all cells.

    Returns
    -------
    numpy.ndarray
        LISI per queried cell, between 1 and the number of distinct labels.
    """
    codes, _ = pd.factorize(pd.Series(np.asarray(labels)), sort=True)
    q = np.arange(len(codes)) if query is None else np.asarray(query)
    dist, idx = _knn(X, int(perplexity * 3), q)
    return _simpson_perplexity(dist.astype(np.float64), codes[idx], int(codes.max()) + 1, perplexity)


def kbet_acceptance(
    X: np.ndarray,
    batches: Any,
    *,
    k: int = 50,
    alpha: float = 0.05,
    query: np.ndarray | None = None,
) -> float:
    """kBET-style acceptance rate: share of cells whose neighbours' batch mix fits the global one.

    For each queried cell, the batch counts among its ``k`` nearest neighbours are compared with
    ``k`` × the global batch proportions by Pearson's χ² test (``n_batches − 1`` d.f.); the result
    is the share of cells not rejected at ``alpha`` (1 = perfectly mixed, near 0 = separated).

    Parameters
    ----------
    X
        Embedding.
    batches
        Batch of each cell.
    k
        Neighbourhood size.
    alpha
        Test level.
    query
        Cells to test (default all).

    Returns
    -------
    float
    """
    from scipy.stats import chi2

    codes, uniq = pd.factorize(pd.Series(np.asarray(batches)), sort=True)
    nb = len(uniq)
    q = np.arange(len(codes)) if query is None else np.asarray(query)
    _, idx = _knn(X, k, q)
    kk = idx.shape[1]
    counts = np.zeros((len(q), nb))
    np.add.at(counts, (np.repeat(np.arange(len(q)), kk), codes[idx].ravel()), 1.0)
    expected = kk * np.bincount(codes, minlength=nb) / len(codes)
    stat = ((counts - expected) ** 2 / expected).sum(axis=1)
    p = chi2.sf(stat, nb - 1)
    return float(np.mean(p >= alpha))


def _embedding_metrics(X, batches, labels, clusters, *, query, perplexity, k, rng) -> dict:
    from sklearn.metrics import (
        adjusted_rand_score,
        normalized_mutual_info_score,
        silhouette_score,
    )

    nb = pd.Series(batches).nunique()
    il = lisi(X, batches, perplexity=perplexity, query=query)
    out: dict[str, Any] = {
        "ilisi_mean": float(np.nanmean(il)),
        "ilisi_median": float(np.nanmedian(il)),
        "ilisi_normalised": float((np.nanmean(il) - 1) / (nb - 1)),
        "kbet_acceptance": kbet_acceptance(X, batches, k=k, query=query),
    }
    if labels is not None:
        nl = pd.Series(labels).nunique()
        cl = lisi(X, labels, perplexity=perplexity, query=query)
        out["clisi_mean"] = float(np.nanmean(cl))
        out["clisi_normalised"] = float((nl - np.nanmean(cl)) / (nl - 1)) if nl > 1 else None
        lab = np.asarray(labels)
        out["label_silhouette"] = float(silhouette_score(X[query], lab[query])) if nl > 1 else None
        bsil = []  # batch silhouette within each label (scib's "batch ASW": 1 = mixed)
        from sklearn.metrics import silhouette_samples

        for lv in np.unique(lab[query]):
            sel = query[lab[query] == lv]
            bsel = np.asarray(batches)[sel]
            if len(np.unique(bsel)) > 1 and len(sel) > len(np.unique(bsel)):
                bsil.append(np.mean(1 - np.abs(silhouette_samples(X[sel], bsel))))
        out["batch_asw"] = float(np.mean(bsil)) if bsil else None
        if clusters is not None:
            out["ari"] = float(adjusted_rand_score(labels, clusters))
            out["nmi"] = float(normalized_mutual_info_score(labels, clusters))
            out["n_clusters"] = int(pd.Series(clusters).nunique())
    return out


def integration_metrics(
    adata: anndata.AnnData,
    *,
    batch_key: str,
    label_key: str | None = None,
    embeddings: dict[str, str] | None = None,
    cluster_keys: dict[str, str] | None = None,
    perplexity: float = 30.0,
    k: int = 50,
    max_cells: int = 5000,
    seed: int = 0,
    random_state: int | None = None,
) -> dict[str, Any]:
    """Batch-mixing and biology-conservation metrics for each embedding.

    Parameters
    ----------
    adata
        Cells with the embeddings in ``obsm``.
    batch_key
        Batch column.
    label_key
        Cell-type label column; enables cLISI, label silhouette, batch ASW and ARI/NMI.
    embeddings
        Name → ``obsm`` key, e.g. ``{"before": "X_pca", "after": "X_pca_harmony"}``.
    cluster_keys
        Name → ``obs`` column of clusters computed on that embedding (for ARI/NMI).
    perplexity, k
        LISI perplexity and kBET neighbourhood size.
    max_cells
        Cells scored (a random subset when there are more; neighbours come from all cells).
    seed
        Seed of that subset.
    random_state
        Deprecated alias of ``seed``.

    Returns
    -------
    dict
        ``{name: {ilisi_mean, ilisi_normalised, kbet_acceptance, clisi_mean, clisi_normalised,
        label_silhouette, batch_asw, ari, nmi, n_clusters}, "settings": {...}}``.
    """
    seed = resolve_seed(seed, random_state, "integration_metrics")
    check_obs_key(adata, batch_key, what="batch key", min_levels=2)
    if label_key is not None:
        check_obs_key(adata, label_key, what="label key")
    embeddings = embeddings or {"before": "X_pca"}
    cluster_keys = cluster_keys or {}
    rng = np.random.default_rng(seed)
    n = adata.n_obs
    query = np.sort(rng.choice(n, max_cells, replace=False)) if n > max_cells else np.arange(n)
    batches = adata.obs[batch_key].astype(str).to_numpy()
    labels = adata.obs[label_key].astype(str).to_numpy() if label_key else None
    out: dict[str, Any] = {}
    for name, key in embeddings.items():
        if key not in adata.obsm:
            raise InputError(f"embedding obsm[{key!r}] not found", fix="run integrate() first")
        ck = cluster_keys.get(name)
        clusters = adata.obs[ck].astype(str).to_numpy() if ck else None
        out[name] = _embedding_metrics(np.asarray(adata.obsm[key], dtype=np.float32), batches,
                                       labels, clusters, query=query, perplexity=perplexity, k=k,
                                       rng=rng)
        out[name]["obsm_key"] = key
    out["settings"] = {"batch_key": batch_key, "label_key": label_key, "perplexity": perplexity,
                       "kbet_k": k, "n_cells_scored": int(len(query)),
                       "n_batches": int(pd.Series(batches).nunique())}
    return out
