"""Marker genes with effect sizes: Wilcoxon rank-sum per group against all other cells,
with log2 fold change, AUROC, detection rates and Benjamini–Hochberg FDR."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from pmed.errors import InputError, require
from pmed.omics._compat import resolve_seed

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["marker_genes"]


def _bh(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    n = len(p)
    order = np.argsort(p)
    q = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(q[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def marker_genes(
    adata: anndata.AnnData,
    groupby: str = "leiden",
    *,
    n_genes: int = 50,
    layer: str | None = None,
    min_pct: float = 0.1,
    max_cells_per_group: int | None = 1000,
    max_cells: int | None = 20_000,
    tie_correct: bool = False,
    seed: int = 0,
    random_state: int | None = None,
) -> pd.DataFrame:
    """Marker genes of each group against all other cells: Wilcoxon test with effect sizes.

    Parameters
    ----------
    adata
        Cells with log-normalised expression in ``X`` (or ``layer``).
    groupby
        ``obs`` column of groups (clusters or cell types).
    n_genes
        Top genes reported per group (by Wilcoxon z-score).
    layer
        Layer of log-normalised values (default ``X``).
    min_pct
        Only genes detected in at least this share of the cells of some group, or of the cells
        outside it, are tested (Seurat's ``min.pct``); the FDR is over the genes tested.
    max_cells_per_group
        Test at most this many randomly chosen cells per group (as Seurat's
        ``max.cells.per.ident``), which bounds the time on large data; ``None`` tests all.
    max_cells
        And at most about this many cells in all: with many groups each gets
        ``max(100, max_cells // n_groups)`` (the Wilcoxon ranks every tested gene over every
        tested cell, so the time grows with cells × genes).
    tie_correct
        Tie-corrected Wilcoxon variance (exact for the many zeros of sparse data, but slow);
        scanpy's default is False, which makes p-values slightly conservative.
    seed
        Seed of the cell subsample.
    random_state
        Deprecated alias of ``seed``.

    Returns
    -------
    pandas.DataFrame
        ``group, rank, gene, z, log2fc, auroc, pct_in, pct_out, pval, fdr``. ``log2fc`` is from the
        means of ``expm1`` of the log values (scanpy's definition); ``auroc`` is the Mann–Whitney
        U divided by ``n_in × n_out`` (0.5 = no difference, 1 = perfect marker); ``fdr`` is
        Benjamini–Hochberg over all genes of the group.
    """
    seed = resolve_seed(seed, random_state, "marker_genes")
    sc = require("scanpy", extra="omics")

    from pmed.omics.metadata import check_obs_key

    check_obs_key(adata, groupby, what="group key", min_levels=2)
    labels = adata.obs[groupby].astype(str).to_numpy()
    keep = np.arange(adata.n_obs)
    groups = np.unique(labels)
    cap = max_cells_per_group
    if max_cells is not None:
        share = max(100, max_cells // len(groups))
        cap = share if cap is None else min(cap, share)
    if cap is not None:
        rng = np.random.default_rng(seed)
        keep = np.sort(np.concatenate([
            (lambda ix: ix if len(ix) <= cap else rng.choice(ix, cap, replace=False))(
                np.flatnonzero(labels == g))
            for g in groups]))
    Xsrc = adata.X if layer is None else adata.layers[layer]
    Xk = sparse.csr_matrix(Xsrc[keep]) if sparse.issparse(Xsrc) else np.asarray(Xsrc)[keep]
    # detection per group and gene in one sparse product (scanpy's pts loops over every group's
    # complement, which dominates the time with many clusters)
    codes = pd.Categorical(labels[keep], categories=groups).codes
    member = sparse.csr_matrix((np.ones(len(keep)), (codes, np.arange(len(keep)))),
                               shape=(len(groups), len(keep)))
    nz = sparse.csr_matrix(Xk != 0, dtype=np.float64) if sparse.issparse(Xk) else \
        sparse.csr_matrix((Xk != 0).astype(np.float64))
    n_in = np.bincount(codes, minlength=len(groups)).astype(float)
    det = np.asarray((member @ nz).todense())  # groups × genes: cells with the gene detected
    pct_in = det / n_in[:, None]
    pct_out = (det.sum(axis=0)[None, :] - det) / (len(keep) - n_in)[:, None]
    genes_ok = (np.maximum(pct_in, pct_out) >= min_pct).any(axis=0)
    if not genes_ok.any():
        raise InputError(f"no gene is detected in {min_pct:.0%} of the cells of any group",
                         fix="check QC and clustering (groups of very few cells); in Python, lower min_pct=")
    pct = {g: (pd.Series(pct_in[i, genes_ok], index=adata.var_names[genes_ok]),
               pd.Series(pct_out[i, genes_ok], index=adata.var_names[genes_ok]))
           for i, g in enumerate(groups)}
    tmp = sc.AnnData(X=Xk[:, genes_ok], obs=pd.DataFrame({groupby: labels[keep]}))
    tmp.obs[groupby] = tmp.obs[groupby].astype("category")
    tmp.var_names = adata.var_names[genes_ok]
    tmp.uns["log1p"] = {"base": None}
    sc.tl.rank_genes_groups(tmp, groupby, method="wilcoxon", n_genes=tmp.n_vars, pts=False,
                            tie_correct=tie_correct)
    X = sparse.csc_matrix(tmp.X)
    groups = tmp.obs[groupby].to_numpy()
    rows = []
    from scipy.stats import rankdata

    res = tmp.uns["rank_genes_groups"]  # record arrays with one field per group
    ranks: dict[str, np.ndarray] = {}
    for g in tmp.obs[groupby].cat.categories:
        # (sc.get.rank_genes_groups_df converts every group's field on each call: quadratic)
        df = pd.DataFrame({k: np.asarray(res[k][g]) for k in ("names", "scores", "logfoldchanges",
                                                              "pvals")})
        df["fdr"] = _bh(df["pvals"].to_numpy())
        df = df.head(n_genes).copy()
        inside = groups == g
        n1, n2 = int(inside.sum()), int((~inside).sum())
        # AUROC from the z-score is approximate with ties; compute it exactly from ranks (each
        # gene's ranks once: the top genes of many groups overlap)
        auc = []
        for gene in df["names"]:
            if gene not in ranks:
                ranks[gene] = rankdata(X[:, tmp.var_names.get_loc(gene)].toarray().ravel()).astype(np.float32)
            u = ranks[gene][inside].sum(dtype=np.float64) - n1 * (n1 + 1) / 2
            auc.append(u / (n1 * n2))
        df["auroc"] = auc
        df["pct_in"] = pct[g][0].loc[df["names"]].to_numpy()
        df["pct_out"] = pct[g][1].loc[df["names"]].to_numpy()
        df.insert(0, "group", g)
        df.insert(1, "rank", np.arange(1, len(df) + 1))
        rows.append(df)
    out = pd.concat(rows, ignore_index=True).rename(columns={
        "names": "gene", "scores": "z", "logfoldchanges": "log2fc", "pvals": "pval"})
    return out[["group", "rank", "gene", "z", "log2fc", "auroc", "pct_in", "pct_out", "pval", "fdr"]]
