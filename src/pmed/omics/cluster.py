"""Clusters, UMAP, marker-set annotation and marker genes with effect sizes.

- :func:`cluster` builds the neighbour graph on an embedding, runs Leiden and UMAP (scanpy);
- :func:`load_markers` reads a marker set (the shipped PBMC set, a JSON/YAML/CSV file or a dict);
- :func:`annotate` scores every marker set per cell (mean z-score of its genes) and names each
  cluster after the set with the highest mean score;
- :func:`marker_genes` ranks genes per group with the Wilcoxon rank-sum test and reports effect
  sizes (log2 fold change, AUROC, detection rates) with Benjamini–Hochberg FDR.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

from pmed.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["cluster", "load_markers", "score_marker_sets", "annotate", "marker_genes",
           "SHIPPED_MARKER_SETS"]

#: Marker sets shipped in ``pmed/omics/data`` (name → file).
SHIPPED_MARKER_SETS = {"pbmc": "pbmc_markers.json"}


def cluster(
    adata: anndata.AnnData,
    *,
    use_rep: str = "X_pca",
    n_neighbors: int = 15,
    resolution: float = 0.5,
    key_added: str = "leiden",
    umap: bool = True,
    random_state: int = 0,
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
    random_state
        Seed.
    neighbors
        Build the graph (set False to reuse ``obsp`` from BBKNN).

    Returns
    -------
    anndata.AnnData
    """
    import scanpy as sc

    if neighbors:
        if use_rep not in adata.obsm:
            raise InputError(f"embedding obsm[{use_rep!r}] not found",
                             fix="run preprocess() (and integrate()) first")
        sc.pp.neighbors(adata, use_rep=use_rep, n_neighbors=n_neighbors, random_state=random_state,
                        transformer=_knn_transformer(adata.n_obs, n_neighbors, random_state))
    sc.tl.leiden(adata, resolution=resolution, key_added=key_added, random_state=random_state,
                 flavor="igraph", n_iterations=2, directed=False)
    if umap:
        sc.tl.umap(adata, random_state=random_state)
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


def load_markers(markers: str | Path | Mapping[str, Sequence[str]] | None = "pbmc") -> dict[str, list[str]]:
    """Load a marker set: cell type → marker genes.

    Parameters
    ----------
    markers
        ``"pbmc"`` (shipped set) or ``None`` for it; a mapping; or a file: JSON (``{"markers":
        {...}}`` or a plain mapping), YAML, or CSV/TSV with columns ``cell_type`` and ``gene``.

    Returns
    -------
    dict
        Cell type → list of gene symbols.

    Raises
    ------
    InputError
        Unreadable file or an empty set.
    """
    if markers is None:
        markers = "pbmc"
    if isinstance(markers, Mapping):
        out = {str(k): [str(g) for g in v] for k, v in markers.items()}
    elif isinstance(markers, str) and markers in SHIPPED_MARKER_SETS:
        text = resources.files("pmed.omics").joinpath("data", SHIPPED_MARKER_SETS[markers]).read_text()
        out = {k: list(v) for k, v in json.loads(text)["markers"].items()}
    else:
        path = Path(markers)
        if not path.exists():
            raise InputError("marker set not found", file=path,
                             fix=f"give a JSON/YAML/CSV file or one of {list(SHIPPED_MARKER_SETS)}")
        suf = path.suffix.lower()
        try:
            if suf == ".json":
                d = json.loads(path.read_text())
                d = d.get("markers", d)
            elif suf in (".yaml", ".yml"):
                import yaml

                d = yaml.safe_load(path.read_text())
                d = d.get("markers", d)
            else:
                t = pd.read_csv(path, sep="," if suf == ".csv" else "\t")
                if not {"cell_type", "gene"} <= set(t.columns):
                    raise InputError("marker table needs columns cell_type and gene", file=path,
                                     where=f"columns {list(t.columns)}",
                                     fix="one row per (cell_type, gene)")
                d = t.groupby("cell_type", sort=False)["gene"].apply(list).to_dict()
        except InputError:
            raise
        except Exception as e:
            raise InputError(f"cannot read marker set ({type(e).__name__}: {e})", file=path,
                             fix="JSON {\"markers\": {type: [genes]}}, YAML, or CSV cell_type,gene") from e
        out = {str(k): [str(g) for g in v] for k, v in d.items()}
    if not out or not any(out.values()):
        raise InputError("the marker set is empty", fix="give at least one cell type with genes")
    return out


def _symbol_map(names: Sequence[str]) -> dict[str, str]:
    """Gene symbol → variable name, also for names made unique as ``SYMBOL_ENSG…`` or ``SYMBOL.1``.

    Exact names win; a decorated name is used for its symbol only when no exact name exists and
    the symbol is not ambiguous.
    """
    exact = {str(n): str(n) for n in names}
    base: dict[str, list[str]] = {}
    for n in names:
        b = re.sub(r"(_ENS[A-Z]*G\d+(\.\d+)?|\.\d+|-\d+)$", "", str(n))
        if b != n:
            base.setdefault(b, []).append(str(n))
    out = dict(exact)
    for b, ns in base.items():
        if b not in out and len(ns) == 1:
            out[b] = ns[0]
    return out


def _source(adata: anndata.AnnData, layer: str | None):
    if layer == "raw" and adata.raw is not None:
        return adata.raw.var_names, adata.raw.X
    return adata.var_names, (adata.X if layer is None else adata.layers[layer])


def score_marker_sets(
    adata: anndata.AnnData,
    markers: Mapping[str, Sequence[str]],
    *,
    min_genes: int = 2,
    layer: str | None = None,
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Per-cell score of each marker set: mean of the z-scored log expression of its genes.

    Gene symbols also match names made unique by appending an Ensembl ID or a number
    (``CD79A_ENSG00000105369``, ``CD79A.1``) when the plain symbol is absent.

    Parameters
    ----------
    adata
        Cells with log-normalised expression in ``X`` (or ``layer``; ``"raw"`` for ``adata.raw``).
    markers
        Cell type → genes.
    min_genes
        Sets with fewer genes present in the data are skipped.
    layer
        Where the log-normalised values are.

    Returns
    -------
    scores : pandas.DataFrame
        Cells × cell types.
    used : dict
        Cell type → variable names used.
    """
    names, X = _source(adata, layer)
    sym = _symbol_map(names)
    used = {t: [sym[g] for g in dict.fromkeys(gs) if g in sym] for t, gs in markers.items()}
    used = {t: list(dict.fromkeys(gs)) for t, gs in used.items() if len(set(gs)) >= min_genes}
    if not used:
        raise InputError(f"no marker set has {min_genes} or more genes in the data",
                         fix="check gene naming (symbols vs Ensembl IDs) or give another marker set")
    genes = sorted({g for gs in used.values() for g in gs})
    sub = X[:, pd.Index(names).get_indexer(genes)]
    M = sub.toarray() if sparse.issparse(sub) else np.asarray(sub, dtype=float)
    sd = M.std(axis=0)
    Z = (M - M.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    col = {g: i for i, g in enumerate(genes)}
    scores = pd.DataFrame({t: Z[:, [col[g] for g in gs]].mean(axis=1) for t, gs in used.items()},
                          index=adata.obs_names)
    return scores, used


def annotate(
    adata: anndata.AnnData,
    markers: str | Path | Mapping[str, Sequence[str]] | None = "pbmc",
    *,
    groupby: str | None = "leiden",
    key_added: str = "cell_type",
    min_genes: int = 2,
    layer: str | None = None,
    cell_types: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Name clusters (or single cells) after the marker set they score highest on.

    Parameters
    ----------
    adata
        Cells with log-normalised expression; changed in place.
    markers
        Marker set (see :func:`load_markers`); default the shipped PBMC set.
    groupby
        ``obs`` column of clusters: each cluster gets the type with the highest mean score.
        ``None`` labels each cell by its own highest score.
    key_added
        ``obs`` column written (categorical); ``obs[key_added + '_score']`` holds each cell's
        score for its assigned type.
    min_genes
        Marker sets with fewer genes present are skipped.
    layer
        Where log-normalised values are (``None``: ``X``; ``"raw"``: ``adata.raw``).
    cell_types
        Restrict to these types of the marker set (the types expected in the tissue).

    Returns
    -------
    pandas.DataFrame
        Mean score of each type per cluster (clusters × types), also kept in
        ``uns['pmed_annotation']`` with the genes used.
    """
    sets = load_markers(markers)
    if cell_types is not None:
        unknown = [t for t in cell_types if t not in sets]
        if unknown:
            raise InputError(f"cell types not in the marker set: {unknown}",
                             fix=f"choose among {list(sets)}")
        sets = {t: sets[t] for t in cell_types}
    scores, used = score_marker_sets(adata, sets, min_genes=min_genes, layer=layer)
    if groupby is None:
        best = scores.idxmax(axis=1)
        table = scores.groupby(best).mean()
    else:
        from pmed.omics.readers import check_obs_key

        check_obs_key(adata, groupby, what="cluster key")
        table = scores.groupby(adata.obs[groupby].astype(str).to_numpy()).mean()
        best = adata.obs[groupby].astype(str).map(table.idxmax(axis=1))
    adata.obs[key_added] = pd.Categorical(best.to_numpy())
    sc = scores.to_numpy()
    col = {t: i for i, t in enumerate(scores.columns)}
    adata.obs[f"{key_added}_score"] = sc[np.arange(len(sc)), [col[t] for t in best.to_numpy()]]
    adata.uns["pmed_annotation"] = {"groupby": groupby or "cell", "genes_used": used,
                                    "skipped_types": [t for t in sets if t not in used]}
    return table


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
    random_state: int = 0,
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
    random_state
        Seed of the cell subsample.

    Returns
    -------
    pandas.DataFrame
        ``group, rank, gene, z, log2fc, auroc, pct_in, pct_out, pval, fdr``. ``log2fc`` is from the
        means of ``expm1`` of the log values (scanpy's definition); ``auroc`` is the Mann–Whitney
        U divided by ``n_in × n_out`` (0.5 = no difference, 1 = perfect marker); ``fdr`` is
        Benjamini–Hochberg over all genes of the group.
    """
    import scanpy as sc

    from pmed.omics.readers import check_obs_key

    check_obs_key(adata, groupby, what="group key", min_levels=2)
    labels = adata.obs[groupby].astype(str).to_numpy()
    keep = np.arange(adata.n_obs)
    groups = np.unique(labels)
    cap = max_cells_per_group
    if max_cells is not None:
        share = max(100, max_cells // len(groups))
        cap = share if cap is None else min(cap, share)
    if cap is not None:
        rng = np.random.default_rng(random_state)
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
                         fix="lower min_pct")
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
