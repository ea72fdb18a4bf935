"""Spatial statistics on a neighbour graph: Moran's I, neighbourhood enrichment, co-occurrence, niches.

All of them read the graph that :func:`pmed.spatial.graph.spatial_neighbors` stores in
``adata.obsp['spatial_connectivities']`` (squidpy's key, so a graph built by squidpy works too);
:func:`morans_i` and :func:`neighborhood_enrichment` build a default one (``kind="auto"``) when
there is none. Definitions follow squidpy's (``squidpy.gr.spatial_autocorr``,
``nhood_enrichment``, ``co_occurrence``) so that numbers can be compared; where pmed differs
the docstring says how.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats as sstats

from pmed.errors import InputError, NotFoundError, OptionError
from pmed.spatial.graph import _coords, row_normalize, spatial_neighbors

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "morans_i",
    "moran_matrix",
    "bh_fdr",
    "neighborhood_enrichment",
    "co_occurrence",
    "niches",
]

_CONN = "spatial_connectivities"


# --------------------------------------------------------------------------------------- helpers
def bh_fdr(pvals: Any) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values), NaN left as NaN.

    Parameters
    ----------
    pvals : array-like
        p-values in [0, 1].

    Returns
    -------
    numpy.ndarray
        ``min(1, min_{k >= i} p_(k) * m / k)`` in the original order, m the number of
        non-missing p-values.
    """
    p = np.asarray(pvals, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    q = p[ok]
    order = np.argsort(q, kind="stable")
    ranked = q[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    res = np.empty(m)
    res[order] = np.minimum(ranked, 1.0)
    out[ok] = res
    return out


def _graph(adata: Any, where: str, build: bool = True) -> sp.csr_matrix:
    if _CONN not in adata.obsp:
        if not build:
            raise InputError("no spatial graph in obsp['spatial_connectivities']",
                             where=f"{where}: obsp",
                             fix="build one with pmed.spatial.graph.spatial_neighbors(adata)")
        spatial_neighbors(adata)
    A = sp.csr_matrix(adata.obsp[_CONN], dtype=float)
    if A.shape != (adata.n_obs, adata.n_obs):
        raise InputError(f"obsp['spatial_connectivities'] has shape {A.shape}, expected "
                         f"({adata.n_obs}, {adata.n_obs})", where=f"{where}: obsp",
                         fix="rebuild the graph on this AnnData with spatial_neighbors")
    return A


def _labels(adata: Any, label_key: str, where: str) -> tuple[np.ndarray, pd.Index]:
    if label_key not in adata.obs.columns:
        raise NotFoundError(f"no column {label_key!r} in obs", where=f"{where}: label_key",
                            fix=f"use one of {', '.join(map(str, adata.obs.columns[:12]))}")
    col = adata.obs[label_key]
    if col.isna().any():
        bad = np.flatnonzero(col.isna().to_numpy())
        raise InputError(f"{bad.size} observations have no {label_key!r} label",
                         where=f"{where}: obs[{label_key!r}], rows {bad[:8].tolist()}",
                         fix="drop the unlabelled observations or give them a label of their own")
    cat = col.astype("category")
    cat = cat.cat.remove_unused_categories()
    if len(cat.cat.categories) < 2:
        raise InputError(f"obs[{label_key!r}] has fewer than two labels",
                         where=f"{where}: obs[{label_key!r}]",
                         fix="these statistics compare labels: pass a column with at least two")
    return cat.cat.codes.to_numpy().astype(np.int64), pd.Index(cat.cat.categories.astype(str))


def _check_int(value: Any, name: str, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise OptionError(f"{name} must be an integer ≥ {minimum}, got {value!r}",
                          where=f"{where}: {name}", fix=f"pass an integer {name} ≥ {minimum}")
    return int(value)


# ------------------------------------------------------------------------------------- Moran's I
def _weights_moments(W: sp.csr_matrix) -> tuple[float, float, float]:
    """S0, S1, S2 of a weight matrix (Cliff and Ord)."""
    S0 = float(W.sum())
    Ws = W + W.T
    S1 = 0.5 * float(Ws.multiply(Ws).sum())
    r = np.asarray(W.sum(axis=1)).ravel() + np.asarray(W.sum(axis=0)).ravel()
    S2 = float((r ** 2).sum())
    return S0, S1, S2


def _blocks(X: Any, block: int):
    """Dense, centred column blocks ``(start, stop, Z)`` of X (cells × genes)."""
    g = X.shape[1]
    for start in range(0, g, block):
        stop = min(start + block, g)
        Z = X[:, start:stop]
        Z = Z.toarray() if sp.issparse(Z) else np.array(Z, dtype=float)
        Z = Z.astype(float, copy=False)
        Z -= Z.mean(axis=0)
        yield start, stop, Z


def _moran_scores(X: Any, W: sp.csr_matrix, block: int = 1024) -> np.ndarray:
    """Moran's I of every column of X (cells × genes) on weights W.

    ``I = n / S0 * sum_ij w_ij z_i z_j / sum_i z_i^2`` with ``z = x - mean(x)``. Genes go in dense
    blocks of ``block`` columns: one sparse-dense product ``W @ Z`` per block gives all of them
    (W has a few edges per node, so this costs O(edges × genes)).
    """
    n = X.shape[0]
    S0 = float(W.sum())
    if sp.issparse(X):
        X = sp.csc_matrix(X)  # cheap column blocks
    out = np.empty(X.shape[1])
    for start, stop, Z in _blocks(X, block):
        num = np.einsum("ij,ij->j", Z, np.asarray(W @ Z))
        den = np.einsum("ij,ij->j", Z, Z)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start:stop] = (n / S0) * num / den
    return out


def moran_matrix(X: Any, W: Any) -> np.ndarray:
    """Moran's I of each column of ``X`` on the weights ``W`` as given (no normalisation).

    Parameters
    ----------
    X : numpy.ndarray or scipy.sparse matrix
        n × g values (cells × genes).
    W : scipy.sparse matrix or numpy.ndarray
        n × n spatial weights.

    Returns
    -------
    numpy.ndarray
        g values; NaN for a constant column.
    """
    W = sp.csr_matrix(W, dtype=float)
    if X.shape[0] != W.shape[0]:
        raise InputError(f"X has {X.shape[0]} rows but W is {W.shape[0]} × {W.shape[1]}",
                         where="moran_matrix", fix="pass one row of X per node of W")
    return _moran_scores(X, W)


def _expression(adata: Any, layer: str | None, where: str) -> Any:
    """The matrix Moran's I is computed on: log1p(normalize_total(1e4)) of counts, or a layer."""
    if layer == "X":
        return adata.X
    if layer is not None:
        if layer not in adata.layers:
            raise NotFoundError(f"no layer {layer!r}", where=f"{where}: layer",
                                fix=f"use 'X' or one of {', '.join(adata.layers.keys()) or '(none)'}")
        return adata.layers[layer]
    X = adata.X
    if sp.issparse(X):
        X = sp.csr_matrix(X).astype(np.float64)  # a copy: the counts stay as they are
        data = X.data
    else:
        X = np.array(X, dtype=np.float64)
        data = X
    if data.size and (not np.isfinite(data).all() or data.min() < 0):
        raise InputError("X holds negative or non-finite values, not raw counts",
                         where=f"{where}: X", fix="pass layer='X' to use X as it is "
                         "(already normalised data), or a layer of counts")
    total = np.asarray(X.sum(axis=1)).ravel()
    scale = np.divide(1e4, total, out=np.zeros_like(total), where=total > 0)
    if sp.issparse(X):
        X.data *= np.repeat(scale, np.diff(X.indptr))
        np.log1p(X.data, out=X.data)
    else:
        X *= scale[:, None]
        np.log1p(X, out=X)
    return X


def morans_i(
    adata: AnnData,
    genes: Any = None,
    *,
    layer: str | None = None,
    n_perms: int = 0,
    seed: int = 0,
    min_cells: int = 10,
    two_sided: bool = False,
    chunk_size: int = 1024,
) -> pd.DataFrame:
    """Moran's I of genes on the spatial graph: spatially variable genes.

    Weights are the row-normalised connectivities (each spot's neighbours share a weight of 1),
    as in squidpy's ``spatial_autocorr(mode="moran", transformation=True)``; with the same graph
    and the same matrix the scores equal squidpy's.

    Parameters
    ----------
    adata : anndata.AnnData
        Spots or cells; a graph in ``obsp['spatial_connectivities']`` is used (one is built with
        ``spatial_neighbors(adata)`` when missing, and stored).
    genes : sequence of str, optional
        Genes to score (default all, in ``var_names``).
    layer : str, optional
        The data: ``None`` (default) normalises the raw counts in ``X`` to 10,000 per
        observation and takes ``log1p`` (scanpy's ``normalize_total(target_sum=1e4)`` then
        ``log1p``); ``"X"`` uses ``X`` as it is; another name uses that layer as it is. squidpy
        uses whatever ``X`` holds.
    n_perms : int
        Label permutations for a permutation p-value (0: none, analytic p-values only).
    seed : int
        Seed of the permutations.
    min_cells : int
        Genes with a non-zero value in fewer observations are skipped (not in the result).
    two_sided : bool
        ``False`` (squidpy's default) gives the one-sided p-value in the direction of the
        observed z (``P(Z >= z)`` for z > 0, ``P(Z <= z)`` otherwise); ``True`` doubles it.
    chunk_size : int
        Genes per dense block (memory: ``n_obs × chunk_size`` doubles, a few times).

    Returns
    -------
    pandas.DataFrame
        Indexed by gene, sorted by ``moran_i`` descending, columns ``moran_i``, ``expected``
        (``-1/(n-1)``), ``var`` (variance under normality), ``zscore``, ``pval`` (analytic,
        normality assumption, as squidpy's ``pval_norm``), ``fdr`` (Benjamini–Hochberg over the
        genes scored) and, when ``n_perms > 0``, ``pval_perm`` and ``fdr_perm``
        (``(b + 1) / (n_perms + 1)`` with b the permutations at least as extreme, one-sided in the
        observed direction as squidpy's ``pval_sim``).

    Raises
    ------
    NotFoundError
        A gene or layer not in the data.
    OptionError
        A negative ``n_perms``/``min_cells``.
    InputError
        No gene is left after ``min_cells``, or ``X`` is not counts (with ``layer=None``).

    Notes
    -----
    Vectorised over genes: each block of ``chunk_size`` genes is centred densely and one
    sparse-dense product ``W @ Z`` gives all its numerators ``sum_ij w_ij z_i z_j``; the cost is
    O(edges × genes), independent of how sparse the data are.

    Examples
    --------
    >>> spatial_neighbors(adata, kind="grid")  # doctest: +SKIP
    >>> morans_i(adata).head()  # doctest: +SKIP
    """
    where = "morans_i"
    n_perms = _check_int(n_perms, "n_perms", where, 0)
    min_cells = _check_int(min_cells, "min_cells", where, 0)
    chunk_size = _check_int(chunk_size, "chunk_size", where, 1)
    A = _graph(adata, where)
    W = row_normalize(A)
    X = _expression(adata, layer, where)
    names = pd.Index(adata.var_names.astype(str))
    if genes is not None:
        genes = [genes] if isinstance(genes, str) else list(genes)
        missing = [g for g in genes if g not in names]
        if missing:
            raise NotFoundError(f"{len(missing)} genes are not in var_names: "
                                f"{', '.join(map(str, missing[:8]))}", where=f"{where}: genes",
                                fix="check the gene names (adata.var_names)")
        idx = names.get_indexer(genes)
        X = X[:, idx]
        names = names[idx]
    if sp.issparse(X):
        X = sp.csc_matrix(X)
        cs = np.concatenate([[0], np.cumsum(X.data != 0)])  # explicit zeros do not count
        nnz = cs[X.indptr[1:]] - cs[X.indptr[:-1]]
    else:
        nnz = np.count_nonzero(np.asarray(X), axis=0)
    keep = nnz >= max(min_cells, 1)
    if not keep.any():
        raise InputError(f"no gene is expressed in at least {min_cells} observations",
                         where=f"{where}: genes", fix="lower min_cells or check the data")
    if keep.mean() < 0.5:  # few genes left: subset first; else score all and drop (cheaper)
        X = X[:, np.flatnonzero(keep)]
        keep = np.ones(X.shape[1], dtype=bool)
    n = X.shape[0]
    score_all = _moran_scores(X, W, block=chunk_size)
    score, names = score_all[keep], names[keep]
    S0, S1, S2 = _weights_moments(W)
    expected = -1.0 / (n - 1)
    var = (n * n * S1 - n * S2 + 3 * S0 * S0) / ((n - 1) * (n + 1) * S0 * S0) - expected ** 2
    z = (score - expected) / np.sqrt(var)
    pval = np.where(z > 0, sstats.norm.sf(z), sstats.norm.cdf(z))
    if two_sided:
        pval = np.minimum(2 * pval, 1.0)
    out = pd.DataFrame({"moran_i": score, "expected": expected, "var": var, "zscore": z,
                        "pval": pval}, index=names)
    out["fdr"] = bh_fdr(pval)
    if n_perms > 0:
        rng = np.random.default_rng(seed)
        perms = [rng.permutation(n) for _ in range(n_perms)]
        higher = np.zeros(score_all.size)
        for start, stop, Z in _blocks(X, chunk_size):
            obs = score_all[start:stop]
            den = np.einsum("ij,ij->j", Z, Z)
            for p in perms:
                # the values permuted over the fixed graph; the denominator does not change
                Zp = Z[p]
                with np.errstate(divide="ignore", invalid="ignore"):
                    s = (n / S0) * np.einsum("ij,ij->j", Zp, np.asarray(W @ Zp)) / den
                higher[start:stop] += s >= obs
        higher = higher[keep]
        lower = n_perms - higher
        extreme = np.where(lower < higher, lower, higher)
        pperm = (extreme + 1) / (n_perms + 1)
        if two_sided:
            pperm = np.minimum(2 * pperm, 1.0)
        out["pval_perm"] = pperm
        out["fdr_perm"] = bh_fdr(pperm)
    out.index.name = "gene"
    return out.sort_values("moran_i", ascending=False, kind="stable")


# --------------------------------------------------------------------- neighbourhood enrichment
def neighborhood_enrichment(
    adata: AnnData,
    label_key: str,
    *,
    n_perms: int = 1000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Which cell types border which, more or less often than chance: squidpy's ``nhood_enrichment``.

    Counts the graph's edges between each pair of labels (an edge i–j of a symmetric graph
    counts once in (label_i, label_j) and once in (label_j, label_i), so same-label edges count
    twice on the diagonal, as in squidpy), then permutes the labels over the observations
    ``n_perms`` times: ``z = (observed - mean of permuted) / sd of permuted`` (population sd).

    Parameters
    ----------
    adata : anndata.AnnData
        With a graph in ``obsp['spatial_connectivities']`` (built with defaults if missing).
    label_key : str
        The ``obs`` column of labels (cell types, clusters).
    n_perms : int
        Permutations (≥ 1).
    seed : int
        Seed of the permutations.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The z-scores and the observed edge counts, both labels × labels in category order.
        A pair that cannot vary under permutation has sd 0 and z NaN.
    """
    where = "neighborhood_enrichment"
    n_perms = _check_int(n_perms, "n_perms", where, 1)
    codes, cats = _labels(adata, label_key, where)
    A = _graph(adata, where)
    A = sp.csr_matrix((np.ones(A.nnz), A.indices, A.indptr), shape=A.shape)  # binary
    k = len(cats)
    L = np.zeros((codes.size, k))
    L[np.arange(codes.size), codes] = 1.0
    count = L.T @ (A @ L)
    rng = np.random.default_rng(seed)
    perm = np.empty((n_perms, k, k))
    for b in range(n_perms):
        Lp = L[rng.permutation(codes.size)]
        perm[b] = Lp.T @ (A @ Lp)
    mean = perm.mean(axis=0)
    sd = perm.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, (count - mean) / sd, np.nan)
    return (pd.DataFrame(z, index=cats, columns=cats),
            pd.DataFrame(count.round().astype(np.int64), index=cats, columns=cats))


# ---------------------------------------------------------------------------------- co-occurrence
def co_occurrence(
    adata: AnnData,
    label_key: str,
    *,
    distances: Any = 50,
    cumulative: bool = True,
    float32: bool = False,
    chunk_size: int = 256,
) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """How much likelier type b is near a type-a cell than among all pairs: squidpy's ``co_occurrence``.

    For each distance d the ordered pairs of distinct observations (i, j), i ≠ j, closer than d
    (``dist <= d``) are counted by label, ``C[a, b]``, and
    ``ratio[a, b] = (C[a, b] / sum_b C[a, b]) / (sum_a C[a, b] / sum C)``: the probability that a
    type-a observation's partner within d is of type b, over the probability that any partner
    within d is of type b. ``C`` is symmetric (both orders are counted), so ``ratio`` is too.

    Parameters
    ----------
    adata : anndata.AnnData
        With ``obsm['spatial']`` and ``obs[label_key]``.
    label_key : str
        The labels.
    distances : int or array-like
        Edges ``e_0 < e_1 < … < e_m``: one ratio per ``e_1 … e_m``. An int ``m + 1`` takes them as
        squidpy's ``interval=m + 1`` does: ``numpy.linspace`` (float32) from the distance between
        the two observations of smallest x + y to half the distance between the first of those
        and the observation of largest x + y (squidpy's ``_find_min_max``).
    cumulative : bool
        ``True`` (default; what squidpy 1.8.2 computes, checked against its source and numbers):
        the pairs of column t are those within ``e_{t+1}`` — "within distance d" — and ``e_0``
        only opens the range. ``False``: the pairs with ``e_t < dist <= e_{t+1}`` (annuli).
    float32 : bool
        Round the coordinates to float32 first, as squidpy does, for bit-for-bit agreement with
        it (see Notes). Default ``False``: the coordinates as given.
    chunk_size : int
        Rows of the distance matrix computed at once (memory: ``chunk_size × n`` doubles).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, pandas.Index)
        ``ratio`` of shape (labels, labels, m), the edges (m + 1), and the labels in order.
        A label without any partner at a distance gives NaN there (squidpy writes 0).

    Notes
    -----
    squidpy casts the coordinates to float32. On coordinates of order 10⁴ (a MERFISH section in
    µm) that moves a point by up to ~0.001, enough for a pair lying on an edge to change side: on
    the MERFISH section of the benchmark the ratios differed by up to 0.012 at one distance (a
    handful of pairs), and by 0 with ``float32=True``. The work is O(n²) (all pairs), as in
    squidpy.
    """
    where = "co_occurrence"
    codes, cats = _labels(adata, label_key, where)
    xy = _coords(adata, where)
    if float32:
        xy = xy.astype(np.float32).astype(float)
    chunk_size = _check_int(chunk_size, "chunk_size", where, 1)
    if isinstance(distances, (int, np.integer)) and not isinstance(distances, bool):
        if distances < 2:
            raise OptionError(f"distances={distances} gives no interval", where=f"{where}: distances",
                              fix="pass an int ≥ 2 (edges) or an array of interval edges")
        edges = _squidpy_edges(xy, int(distances))
    else:
        edges = np.asarray(distances, dtype=float).ravel()
        if edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0) \
                or edges[0] < 0:
            raise OptionError("distances must be ≥ 2 increasing, finite, non-negative edges",
                              where=f"{where}: distances", fix="e.g. distances=[0, 50, 100, 200]")
    k = len(cats)
    nb = edges.size - 1
    upper2 = edges[1:] ** 2
    counts = np.zeros((nb, k, k))
    n = xy.shape[0]
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        block = xy[start:stop]
        d2 = ((block[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2)
        d2[np.arange(stop - start), np.arange(start, stop)] = np.inf  # no self-pairs
        # first edge that the pair is within: t with upper2[t-1] < d2 <= upper2[t]
        t = np.searchsorted(upper2, d2.ravel(), side="left")
        if not cumulative:
            lower_ok = d2.ravel() > edges[0] ** 2
            t = np.where(lower_ok, t, nb)
        pair = (np.repeat(codes[start:stop], n) * k + np.tile(codes, stop - start))
        sel = t < nb
        flat = t[sel] * (k * k) + pair[sel]
        counts += np.bincount(flat, minlength=nb * k * k).reshape(nb, k, k)
    if cumulative:
        counts = np.cumsum(counts, axis=0)
    ratio = np.full((k, k, nb), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(nb):
            C = counts[t]
            tot = C.sum()
            if tot == 0:
                continue
            marg = C.sum(axis=0) / tot
            cond = C / C.sum(axis=1, keepdims=True)
            ratio[:, :, t] = cond / marg[None, :]
    return ratio, edges, cats


def _squidpy_edges(xy: np.ndarray, m: int) -> np.ndarray:
    """squidpy's default edges for ``co_occurrence(interval=m)`` (its ``_find_min_max``)."""
    xy32 = xy.astype(np.float32)
    s = xy32.sum(axis=1)
    lo, lo2 = np.argpartition(s, 2)[:2]
    hi = int(np.argmax(s))
    d_max = np.float32(np.sqrt(((xy32[lo].astype(float) - xy32[hi]) ** 2).sum()) / 2.0)
    d_min = np.float32(np.sqrt(((xy32[lo].astype(float) - xy32[lo2]) ** 2).sum()))
    return np.linspace(d_min, d_max, num=m, dtype=np.float32).astype(float)


# ------------------------------------------------------------------------------------------ niches
def niches(
    adata: AnnData,
    label_key: str,
    *,
    n_niches: int = 6,
    k: int = 15,
    seed: int = 0,
    include_self: bool = False,
    key_added: str | None = "niche",
) -> pd.Series:
    """Cellular niches: observations clustered by the cell types of their k nearest neighbours.

    Each observation is described by the fractions of each label among its ``k`` nearest
    spatial neighbours (Euclidean on ``obsm['spatial']``); KMeans (``n_init=10``,
    ``random_state=seed``) splits those composition vectors into ``n_niches`` groups. Niches are
    numbered by size, 0 the largest, so that the numbering does not depend on KMeans's order.

    Parameters
    ----------
    adata : anndata.AnnData
        With ``obsm['spatial']`` and ``obs[label_key]``.
    label_key : str
        The cell-type column.
    n_niches : int
        Clusters (≥ 2).
    k : int
        Neighbours that make a neighbourhood (≥ 1, fewer than the observations).
    seed : int
        KMeans's seed.
    include_self : bool
        Count the observation itself in its neighbourhood (``k`` neighbours plus itself).
    key_added : str or None
        Also store the niches as a categorical ``obs[key_added]`` (``None``: do not).

    Returns
    -------
    pandas.Series
        Categorical niche (``"0"``, ``"1"``, …) per observation, indexed by ``obs_names``; its
        ``attrs['composition']`` holds each niche's mean label fractions (niches × labels).
    """
    from sklearn.cluster import KMeans
    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits

    where = "niches"
    codes, cats = _labels(adata, label_key, where)
    xy = _coords(adata, where)
    n = xy.shape[0]
    k = _check_int(k, "k", where, 1)
    n_niches = _check_int(n_niches, "n_niches", where, 2)
    if k >= n:
        raise OptionError(f"k={k} but there are only {n} observations", where=f"{where}: k",
                          fix=f"use k of at most {n - 1}")
    if n_niches > n:
        raise OptionError(f"n_niches={n_niches} but there are only {n} observations",
                          where=f"{where}: n_niches", fix="ask for fewer niches")
    _, idx = NearestNeighbors(n_neighbors=k).fit(xy).kneighbors()
    if include_self:
        idx = np.hstack([np.arange(n)[:, None], idx])
    L = np.zeros((n, len(cats)))
    np.add.at(L, (np.repeat(np.arange(n), idx.shape[1]), codes[idx.ravel()]), 1.0)
    comp = L / idx.shape[1]
    # below ~10^5 cells one thread is faster than OpenMP's start-up (and the result is the same)
    with threadpool_limits(limits=1 if n < 100_000 else None):
        km = KMeans(n_clusters=n_niches, n_init=10, random_state=seed).fit(comp)
    raw = km.labels_
    sizes = np.bincount(raw, minlength=n_niches)
    rank = np.empty(n_niches, dtype=int)
    rank[np.lexsort((np.arange(n_niches), -sizes))] = np.arange(n_niches)
    lab = rank[raw]
    names = [str(i) for i in range(n_niches)]
    s = pd.Series(pd.Categorical([names[i] for i in lab], categories=names),
                  index=adata.obs_names, name="niche")
    composition = pd.DataFrame(comp, columns=cats).groupby(lab).mean()
    composition.index = [names[i] for i in composition.index]
    s.attrs["composition"] = composition
    if key_added is not None:
        adata.obs[key_added] = s.values
    return s
