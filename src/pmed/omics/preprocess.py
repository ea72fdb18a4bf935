"""Quality control and preprocessing of single-cell counts (scanpy).

Order (:func:`preprocess` runs all of them): per-cell QC metrics and filters
(:func:`qc_metrics`, :func:`filter_cells_genes`), doublet flagging with scrublet as packaged in
scanpy (:func:`flag_doublets`), library-size normalisation and ``log1p``, highly variable genes,
scaling and PCA (:func:`normalize_pca`). Raw counts stay in ``layers['counts']``; ``X`` holds the
log-normalised values of all genes (sparse); only the highly variable genes are densified for
scaling and PCA.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from pmed.errors import InputError, PmedWarning, require
from pmed.omics._compat import resolve_seed

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["qc_metrics", "filter_cells_genes", "flag_doublets", "normalize_pca", "preprocess"]


def _mito_mask(var_names) -> np.ndarray:
    names = np.asarray(var_names, dtype=str)
    return np.char.startswith(np.char.upper(names), "MT-")


def qc_metrics(adata: anndata.AnnData) -> anndata.AnnData:
    """Add per-cell QC metrics computed from ``layers['counts']``.

    Adds ``obs['total_counts']``, ``obs['n_genes_by_counts']`` and ``obs['pct_counts_mt']``
    (percent of counts in genes whose symbol starts with ``MT-``; 0 when there are none) and
    ``var['n_cells_by_counts']``.

    Parameters
    ----------
    adata
        Cells with raw counts in ``layers['counts']`` (or ``X``); changed in place.

    Returns
    -------
    anndata.AnnData
    """
    X = adata.layers["counts"] if "counts" in adata.layers else adata.X
    X = sparse.csr_matrix(X)
    total = np.asarray(X.sum(axis=1)).ravel()
    n_genes = np.diff(X.indptr)
    mt = _mito_mask(adata.var_names)
    mt_counts = np.asarray(X[:, mt].sum(axis=1)).ravel() if mt.any() else np.zeros(adata.n_obs)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(total > 0, 100.0 * mt_counts / total, 0.0)
    adata.obs["total_counts"] = total
    adata.obs["n_genes_by_counts"] = n_genes.astype(np.int64)
    adata.obs["pct_counts_mt"] = pct
    adata.var["mt"] = mt
    adata.var["n_cells_by_counts"] = np.bincount(X.indices, minlength=adata.n_vars).astype(np.int64)
    return adata


def filter_cells_genes(
    adata: anndata.AnnData,
    *,
    min_genes: int = 50,
    min_counts: int = 0,
    max_pct_mt: float = 20.0,
    min_cells: int = 3,
) -> anndata.AnnData:
    """Drop low-quality cells and rarely detected genes.

    Parameters
    ----------
    adata
        Cells with QC metrics (:func:`qc_metrics` is run if they are absent).
    min_genes, min_counts
        Fewest detected genes / total counts a cell must have.
    max_pct_mt
        Highest percent of mitochondrial counts a cell may have.
    min_cells
        Fewest cells a gene must be detected in.

    Returns
    -------
    anndata.AnnData
        A filtered copy; ``uns['pmed_qc']`` records how many cells/genes each rule removed.

    Raises
    ------
    InputError
        When no cell passes the filters.
    """
    if "total_counts" not in adata.obs:
        qc_metrics(adata)
    obs = adata.obs
    rules = {
        f"n_genes < {min_genes}": obs["n_genes_by_counts"].to_numpy() < min_genes,
        f"total_counts < {min_counts}": obs["total_counts"].to_numpy() < min_counts,
        f"pct_counts_mt > {max_pct_mt}": obs["pct_counts_mt"].to_numpy() > max_pct_mt,
    }
    drop = np.zeros(adata.n_obs, dtype=bool)
    for m in rules.values():
        drop |= m
    if drop.all():
        counts = ", ".join(f"{int(m.sum())} with {rule}" for rule, m in rules.items() if m.any())
        raise InputError(f"no cell passes QC ({adata.n_obs} cells: {counts})",
                         fix="lower the fewest genes per cell (--min-genes; min_genes=) or raise the highest "
                             "mitochondrial percent (--max-pct-mt; max_pct_mt=)")
    keep_genes = adata.var["n_cells_by_counts"].to_numpy() >= min_cells
    out = adata[~drop, keep_genes].copy()
    qc = dict(adata.uns.get("pmed_qc", {}))
    qc.update({
        "n_cells_in": int(adata.n_obs),
        "n_genes_in": int(adata.n_vars),
        "cells_removed": {k: int(v.sum()) for k, v in rules.items()},
        "genes_removed_min_cells": int((~keep_genes).sum()),
        "n_cells_after_qc": int(out.n_obs),
        "n_genes_after_qc": int(out.n_vars),
    })
    out.uns["pmed_qc"] = qc
    return out


def flag_doublets(
    adata: anndata.AnnData,
    *,
    batch_key: str | None = None,
    seed: int = 0,
    random_state: int | None = None,
    remove: bool = False,
    max_cells_per_run: int = 2500,
    n_jobs: int = 1,
) -> anndata.AnnData:
    """Flag likely doublets with scrublet (``scanpy.pp.scrublet``), per batch when given.

    Adds ``obs['doublet_score']`` and ``obs['predicted_doublet']``. Scrublet simulates doublets
    from the raw counts; it needs a few hundred cells per batch. Batches larger than
    ``max_cells_per_run`` are split at random into equal parts scored separately (doublets form
    within a batch, so any random part of it holds the same doublet types); this bounds time and
    memory on large data and keeps scrublet's neighbour search on scanpy's exact path. If scrublet
    cannot run (too few cells or genes), scores are set missing and the reason is recorded in
    ``uns['pmed_qc']['doublets']``.

    Parameters
    ----------
    adata
        Cells with raw counts in ``layers['counts']``; changed in place unless ``remove``.
    batch_key
        Run scrublet separately within each value of this ``obs`` column.
    seed
        Seed.
    remove
        Return a copy without the predicted doublets.
    max_cells_per_run
        Largest number of cells scored together (see above).
    n_jobs
        Processes that score the runs side by side (joblib). Every run is scored alone, as
        scanpy scores one batch, with the same seed and one BLAS/numba thread, so the scores
        do not depend on ``n_jobs``.
    random_state
        Deprecated alias of ``seed``.

    Returns
    -------
    anndata.AnnData
    """
    seed = resolve_seed(seed, random_state, "flag_doublets")
    require("scanpy", extra="omics")

    qc = dict(adata.uns.get("pmed_qc", {}))
    batches = (adata.obs[batch_key].astype(str).to_numpy() if batch_key
               else np.zeros(adata.n_obs, dtype=str))
    rng = np.random.default_rng(seed)
    runs = np.empty(adata.n_obs, dtype=object)
    for b in np.unique(batches):
        idx = np.flatnonzero(batches == b)
        n_parts = int(np.ceil(len(idx) / max_cells_per_run))
        part = rng.permutation(len(idx)) % n_parts
        runs[idx] = [f"{b}#{k}" for k in part]
    import pandas as pd

    counts = sparse.csr_matrix(adata.layers["counts"])
    try:
        score, flagged = _scrublet_runs(counts, pd.Categorical(runs), seed=seed, n_jobs=n_jobs)
        adata.obs["doublet_score"] = score
        adata.obs["predicted_doublet"] = flagged
        n = int(adata.obs["predicted_doublet"].sum())
        qc["doublets"] = {"method": "scrublet (scanpy.pp.scrublet)", "n_predicted": n,
                          "removed": bool(remove), "n_runs": int(len(set(runs)))}
    except Exception as e:  # scrublet fails on tiny batches; say so rather than stop the pipeline
        adata.obs["doublet_score"] = np.nan
        adata.obs["predicted_doublet"] = False
        qc["doublets"] = {"method": "scrublet", "skipped": f"{type(e).__name__}: {e}"}
        warnings.warn(f"doublet detection skipped ({type(e).__name__}: {str(e)[:200]}); "
                      "no cell is flagged as a doublet", PmedWarning, stacklevel=2)
    adata.uns["pmed_qc"] = qc
    if remove and adata.obs["predicted_doublet"].any():
        out = adata[~adata.obs["predicted_doublet"].to_numpy()].copy()
        out.uns["pmed_qc"]["n_cells_after_doublets"] = int(out.n_obs)
        return out
    return adata


def _scrublet_one_run(X, seed: int):
    """scrublet on one run's counts, as ``scanpy.pp.scrublet`` scores one batch, on one BLAS and
    one numba thread: the same floating-point order wherever it runs."""
    import scanpy as sc
    from threadpoolctl import threadpool_limits

    one = sc.AnnData(X=X)
    with warnings.catch_warnings(), threadpool_limits(1), _numba_threads(1):
        warnings.simplefilter("ignore")
        sc.pp.scrublet(one, random_state=seed, verbose=False)
    return one.obs["doublet_score"].to_numpy(), one.obs["predicted_doublet"].to_numpy().astype(bool)


@contextlib.contextmanager
def _numba_threads(n: int):
    try:
        import numba
    except ImportError:  # pragma: no cover - scanpy brings numba
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _scrublet_runs(counts, runs, *, seed: int, n_jobs: int):
    """Doublet scores and calls of every run (cells × ...), the runs scored in ``n_jobs``
    processes (joblib) or one after the other."""
    from joblib import Parallel, delayed

    codes = np.asarray(runs.codes)
    order = [idx for idx in (np.flatnonzero(codes == k) for k in range(len(runs.categories))) if len(idx)]
    parts = Parallel(n_jobs=min(n_jobs, len(order)))(
        delayed(_scrublet_one_run)(counts[idx], seed) for idx in order)
    score = np.empty(counts.shape[0])
    flagged = np.zeros(counts.shape[0], dtype=bool)
    for idx, (s, f) in zip(order, parts, strict=True):
        score[idx], flagged[idx] = s, f
    return score, flagged


def normalize_pca(
    adata: anndata.AnnData,
    *,
    target_sum: float = 1e4,
    n_top_genes: int = 2000,
    hvg_flavor: str = "seurat_v3",
    batch_key: str | None = None,
    n_comps: int = 30,
    max_value: float = 10.0,
    seed: int = 0,
    random_state: int | None = None,
) -> anndata.AnnData:
    """Normalise, ``log1p``, select highly variable genes, scale them and run PCA.

    Parameters
    ----------
    adata
        Cells with raw counts in ``layers['counts']``; changed in place.
    target_sum
        Counts per cell after normalisation.
    n_top_genes
        Number of highly variable genes (capped at the number of genes).
    hvg_flavor
        ``"seurat_v3"`` (on counts, default) or ``"seurat"``/``"cell_ranger"`` (on log data).
    batch_key
        Select highly variable genes within batches and combine (scanpy's ``batch_key``).
    n_comps
        Principal components kept (capped below the number of cells/genes).
    max_value
        Clip scaled values at this many SDs.
    seed
        Seed.
    random_state
        Deprecated alias of ``seed``.

    Returns
    -------
    anndata.AnnData
        ``X``: log-normalised (sparse); ``var['highly_variable']``; ``obsm['X_pca']``;
        ``uns['pca']``.
    """
    seed = resolve_seed(seed, random_state, "normalize_pca")
    sc = require("scanpy", extra="omics")

    adata.X = adata.layers["counts"].copy()
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)
    n_top = int(min(n_top_genes, adata.n_vars))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hvg_flavor == "seurat_v3":
            sc.pp.highly_variable_genes(adata, n_top_genes=n_top, flavor="seurat_v3", layer="counts",
                                        batch_key=batch_key)
        else:
            sc.pp.highly_variable_genes(adata, n_top_genes=n_top, flavor=hvg_flavor,
                                        batch_key=batch_key)
    hv = adata[:, adata.var["highly_variable"].to_numpy()].copy()
    hv.X = hv.X.toarray() if sparse.issparse(hv.X) else np.asarray(hv.X)
    sc.pp.scale(hv, max_value=max_value)
    k = int(min(n_comps, hv.n_obs - 1, hv.n_vars - 1))
    sc.pp.pca(hv, n_comps=k, random_state=seed, svd_solver="arpack")
    adata.obsm["X_pca"] = hv.obsm["X_pca"].astype(np.float32)
    adata.uns["pca"] = {"variance_ratio": hv.uns["pca"]["variance_ratio"],
                        "n_hvg": int(hv.n_vars)}
    return adata


def preprocess(
    adata: anndata.AnnData,
    *,
    batch_key: str | None = None,
    min_genes: int = 50,
    max_pct_mt: float = 20.0,
    min_cells: int = 3,
    doublets: bool = True,
    remove_doublets: bool = False,
    n_top_genes: int = 2000,
    n_comps: int = 30,
    seed: int = 0,
    random_state: int | None = None,
    **kwargs: Any,
) -> anndata.AnnData:
    """QC, doublets, normalisation, HVG, scaling and PCA in one call.

    Parameters
    ----------
    adata
        Cells with raw counts in ``layers['counts']`` (as every pmed reader returns).
    batch_key
        Batch column: doublets and HVGs are computed within batches.
    min_genes, max_pct_mt, min_cells
        See :func:`filter_cells_genes`.
    doublets, remove_doublets
        Run scrublet; drop the predicted doublets.
    n_top_genes, n_comps, seed
        See :func:`normalize_pca`.
    **kwargs
        Further options of :func:`normalize_pca`.
    random_state
        Deprecated alias of ``seed``.

    Returns
    -------
    anndata.AnnData
        A processed copy.
    """
    seed = resolve_seed(seed, random_state, "preprocess")
    if "counts" not in adata.layers:
        adata.layers["counts"] = sparse.csr_matrix(adata.X)
    qc_metrics(adata)
    out = filter_cells_genes(adata, min_genes=min_genes, max_pct_mt=max_pct_mt, min_cells=min_cells)
    if doublets:
        out = flag_doublets(out, batch_key=batch_key, seed=seed,
                            remove=remove_doublets)
    return normalize_pca(out, batch_key=batch_key, n_top_genes=n_top_genes, n_comps=n_comps,
                         seed=seed, **kwargs)
