"""Spatial neighbour graphs: which spots or cells of a section touch which.

:func:`spatial_neighbors` stores a symmetric binary connectivity matrix and the matching
distances in ``adata.obsp`` under squidpy's names (``spatial_connectivities``,
``spatial_distances``), so that what pmed builds can be handed to squidpy and the reverse.

Three kinds of graph:

- ``"grid"``: the Visium hexagonal lattice, from ``obs['array_row']`` and ``obs['array_col']``.
  On a Visium slide a spot at (row, col) touches (row, col ± 2) and (row ± 1, col ± 1): each
  spot has up to six immediate neighbours, fewer at the tissue's edge. This is the graph that
  squidpy's ``spatial_neighbors(coord_type="grid", n_neighs=6)`` builds from the pixel
  coordinates; pmed reads it from the array indices, which are exact integers.
- ``"knn"``: the ``n_neighs`` nearest neighbours of each cell on ``obsm['spatial']``
  (Euclidean, the cell itself excluded), symmetrised by union: i and j are joined when j is
  among the nearest of i *or* i among the nearest of j. squidpy keeps the directed graph (row i
  lists i's own neighbours), so its matrix is not symmetric; the union of its edges with their
  reverses is pmed's graph.
- ``"radius"``: every pair closer than ``radius`` (inclusive), in the units of
  ``obsm['spatial']``.

:func:`row_normalize` divides each row by its sum (the weights of Moran's I).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from pmed.errors import InputError, OptionError

if TYPE_CHECKING:  # anndata comes with the omics extra
    from anndata import AnnData

__all__ = ["GRID_OFFSETS", "spatial_neighbors", "row_normalize", "graph_summary"]

#: The six (row, column) offsets of a Visium spot's immediate neighbours.
GRID_OFFSETS: tuple[tuple[int, int], ...] = ((0, -2), (0, 2), (-1, -1), (-1, 1), (1, -1), (1, 1))

_KINDS = ("auto", "grid", "knn", "radius")


def _coords(adata: Any, where: str) -> np.ndarray:
    if "spatial" not in getattr(adata, "obsm", {}):
        raise InputError(
            "the data have no spatial coordinates",
            where=f"{where}: obsm['spatial']",
            fix="store an (n, 2) array of x, y coordinates in adata.obsm['spatial'], or read the "
                "section with pmed.spatial.io.read_spatial",
        )
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    if xy.ndim != 2 or xy.shape[0] != adata.n_obs or xy.shape[1] < 2:
        raise InputError(
            f"obsm['spatial'] has shape {xy.shape}, expected ({adata.n_obs}, 2)",
            where=f"{where}: obsm['spatial']", fix="store one row of x, y per spot or cell",
        )
    if not np.all(np.isfinite(xy)):
        bad = np.flatnonzero(~np.all(np.isfinite(xy), axis=1))
        raise InputError(
            f"{bad.size} spots or cells have missing or infinite coordinates",
            where=f"{where}: obsm['spatial'], rows {bad[:8].tolist()}",
            fix="drop those observations (or fill their coordinates) before building the graph",
        )
    return xy


def _has_grid(adata: Any) -> bool:
    return "array_row" in adata.obs.columns and "array_col" in adata.obs.columns


def _grid_edges(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges (both directions) of the hexagonal lattice among the given spots."""
    n = rows.size
    # one integer key per (row, col); offsets of ±2 columns never wrap because of the margin
    width = int(cols.max() - cols.min()) + 5
    r0, c0 = rows - rows.min() + 2, cols - cols.min() + 2
    key = r0 * width + c0
    order = np.argsort(key, kind="stable")
    sorted_keys = key[order]
    if sorted_keys.size > 1 and np.any(sorted_keys[1:] == sorted_keys[:-1]):
        dup = sorted_keys[1:][sorted_keys[1:] == sorted_keys[:-1]][0]
        idx = np.flatnonzero(key == dup)
        raise InputError(
            f"{idx.size} spots share the grid position (array_row, array_col) = "
            f"({int(rows[idx[0]])}, {int(cols[idx[0]])})",
            where=f"spatial_neighbors: obs rows {idx[:8].tolist()}",
            fix="keep one spot per grid position (duplicated observations?) or use kind='knn'",
        )
    src_all, dst_all = [], []
    for dr, dc in GRID_OFFSETS:
        target = (r0 + dr) * width + (c0 + dc)
        pos = np.searchsorted(sorted_keys, target)
        pos = np.minimum(pos, n - 1)
        hit = sorted_keys[pos] == target
        src_all.append(np.flatnonzero(hit))
        dst_all.append(order[pos[hit]])
    return np.concatenate(src_all), np.concatenate(dst_all)


def _grid_indices(adata: Any) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for col in ("array_row", "array_col"):
        values = np.asarray(adata.obs[col])
        try:
            f = values.astype(float)
        except (TypeError, ValueError):
            raise InputError(
                f"obs[{col!r}] is not numeric", where=f"spatial_neighbors: obs[{col!r}]",
                fix="array_row and array_col are the integer grid indices of Space Ranger's "
                    "tissue_positions file",
            ) from None
        if not np.all(np.isfinite(f)) or np.any(f != np.round(f)):
            raise InputError(
                f"obs[{col!r}] holds missing or non-integer values",
                where=f"spatial_neighbors: obs[{col!r}]",
                fix="array_row and array_col must be whole numbers; use kind='knn' otherwise",
            )
        out.append(f.astype(np.int64))
    return out[0], out[1]


def spatial_neighbors(
    adata: AnnData,
    *,
    kind: str = "auto",
    n_neighs: int = 6,
    radius: float | None = None,
    key_added: str = "spatial",
) -> AnnData:
    """Build a spatial neighbour graph and store it in ``adata.obsp`` (in place).

    Parameters
    ----------
    adata : anndata.AnnData
        Spots or cells; ``obsm['spatial']`` holds their coordinates (needed by ``"knn"`` and
        ``"radius"``, used for the distances of ``"grid"`` when present) and ``obs['array_row']``,
        ``obs['array_col']`` the Visium grid indices (needed by ``"grid"``).
    kind : {"auto", "grid", "knn", "radius"}
        ``"auto"`` takes ``"grid"`` when ``array_row``/``array_col`` are there, ``"radius"`` when
        ``radius`` is given, else ``"knn"``.
    n_neighs : int
        Neighbours per cell of ``"knn"`` (before symmetrisation; a cell can end with more).
    radius : float, optional
        Distance cut-off of ``"radius"`` (inclusive), in the units of ``obsm['spatial']``.
    key_added : str
        Prefix of the keys: ``obsp[f'{key_added}_connectivities']``,
        ``obsp[f'{key_added}_distances']`` and ``uns[f'{key_added}_neighbors']`` (parameters).

    Returns
    -------
    anndata.AnnData
        ``adata`` itself, with the graph added. Connectivities are a symmetric binary CSR matrix
        (float64 ones, empty diagonal); distances the Euclidean distances of the same edges in the
        units of ``obsm['spatial']`` (for ``"grid"`` without coordinates: 1 per edge, the ring;
        squidpy stores the ring number for grids in all cases).

    Raises
    ------
    OptionError
        An unknown ``kind``, ``n_neighs`` < 1, or a missing/non-positive ``radius``.
    InputError
        Coordinates or grid indices missing, non-numeric, not finite or duplicated.

    Examples
    --------
    >>> spatial_neighbors(adata, kind="grid")  # doctest: +SKIP
    >>> adata.obsp["spatial_connectivities"].sum(axis=1).max()  # doctest: +SKIP
    6.0
    """
    if kind not in _KINDS:
        raise OptionError(f"unknown graph kind {kind!r}", where="spatial_neighbors: kind",
                          fix=f"use one of {', '.join(_KINDS)}")
    if kind == "auto":
        kind = "grid" if _has_grid(adata) else ("radius" if radius is not None else "knn")
    n = int(adata.n_obs)
    if n == 0:
        raise InputError("the data have no observations", where="spatial_neighbors",
                         fix="pass a section with at least two spots or cells")
    if kind == "grid":
        if not _has_grid(adata):
            raise InputError(
                "kind='grid' needs the Visium grid indices obs['array_row'] and obs['array_col']",
                where="spatial_neighbors: obs", fix="read a Visium section with its tissue positions, "
                "or use kind='knn' / kind='radius' on obsm['spatial']",
            )
        rows, cols = _grid_indices(adata)
        src, dst = _grid_edges(rows, cols)
        if "spatial" in adata.obsm:
            xy = _coords(adata, "spatial_neighbors")
            dist = np.sqrt(((xy[src] - xy[dst]) ** 2).sum(axis=1))
        else:
            dist = np.ones(src.size)
    elif kind == "knn":
        if isinstance(n_neighs, bool) or not isinstance(n_neighs, (int, np.integer)) or n_neighs < 1:
            raise OptionError(f"n_neighs must be a positive integer, got {n_neighs!r}",
                              where="spatial_neighbors: n_neighs", fix="pass e.g. n_neighs=6")
        xy = _coords(adata, "spatial_neighbors")
        if n_neighs >= n:
            raise OptionError(
                f"n_neighs={n_neighs} but the data have only {n} observations",
                where="spatial_neighbors: n_neighs", fix=f"use n_neighs of at most {n - 1}",
            )
        nn = NearestNeighbors(n_neighbors=int(n_neighs)).fit(xy)
        d, idx = nn.kneighbors()  # without X: each point's neighbours exclude itself
        src = np.repeat(np.arange(n), int(n_neighs))
        dst, dist = idx.ravel(), d.ravel()
    else:  # radius
        if radius is None or not np.isfinite(radius) or radius <= 0:
            raise OptionError(f"kind='radius' needs a positive radius, got {radius!r}",
                              where="spatial_neighbors: radius",
                              fix="pass radius= in the units of obsm['spatial']")
        xy = _coords(adata, "spatial_neighbors")
        nn = NearestNeighbors(radius=float(radius)).fit(xy)
        d, idx = nn.radius_neighbors(sort_results=False)
        src = np.repeat(np.arange(n), [len(i) for i in idx])
        dst = np.concatenate(idx) if n else np.zeros(0, int)
        dist = np.concatenate(d) if n else np.zeros(0)
    keep = src != dst
    src, dst, dist = src[keep], dst[keep], dist[keep]
    # symmetrise by union; duplicates (an edge found from both ends) collapse to one
    s = np.concatenate([src, dst])
    t = np.concatenate([dst, src])
    dd = np.concatenate([dist, dist])
    key = np.unique(s.astype(np.int64) * n + t, return_index=True)
    _, first = key
    s, t, dd = s[first], t[first], dd[first]
    conn = sp.csr_matrix((np.ones(s.size), (s, t)), shape=(n, n))
    dmat = sp.csr_matrix((dd, (s, t)), shape=(n, n))
    conn.sort_indices()
    dmat.sort_indices()
    adata.obsp[f"{key_added}_connectivities"] = conn
    adata.obsp[f"{key_added}_distances"] = dmat
    adata.uns[f"{key_added}_neighbors"] = {
        "connectivities_key": f"{key_added}_connectivities",
        "distances_key": f"{key_added}_distances",
        "params": {"kind": kind, "n_neighs": int(n_neighs),
                   "radius": None if radius is None else float(radius)},
    }
    return adata


def row_normalize(W: Any) -> sp.csr_matrix:
    """Divide each row of a weight matrix by its sum (rows that sum to 0 stay 0).

    Parameters
    ----------
    W : scipy.sparse matrix or numpy.ndarray
        Square, non-negative weights (e.g. ``obsp['spatial_connectivities']``).

    Returns
    -------
    scipy.sparse.csr_matrix
        A float64 copy whose non-empty rows sum to 1.

    Raises
    ------
    InputError
        ``W`` is not square, or has negative or non-finite weights.
    """
    W = sp.csr_matrix(W, dtype=float)
    if W.shape[0] != W.shape[1]:
        raise InputError(f"the weight matrix has shape {W.shape}, expected a square matrix",
                         where="row_normalize: W", fix="pass an n × n spatial weight matrix")
    if W.nnz and (not np.all(np.isfinite(W.data)) or W.data.min() < 0):
        raise InputError("the weight matrix has negative or non-finite weights",
                         where="row_normalize: W", fix="weights must be finite and ≥ 0")
    sums = np.asarray(W.sum(axis=1)).ravel()
    inv = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(inv) @ W)


def graph_summary(adata: AnnData, key: str = "spatial_connectivities") -> dict[str, float]:
    """Edges and degrees of a stored graph (for reports and checks).

    Parameters
    ----------
    adata : anndata.AnnData
        With ``obsp[key]``.
    key : str
        The connectivity matrix.

    Returns
    -------
    dict
        ``n_obs``, ``n_edges`` (undirected), ``mean_degree``, ``min_degree``, ``max_degree``,
        ``isolated`` (observations without a neighbour) and ``symmetric``.
    """
    if key not in adata.obsp:
        raise InputError(f"no graph obsp[{key!r}]", where=f"graph_summary: obsp[{key!r}]",
                         fix="build it first with pmed.spatial.graph.spatial_neighbors")
    A = sp.csr_matrix(adata.obsp[key])
    deg = np.diff(A.indptr)
    sym = (A != A.T).nnz == 0
    return {"n_obs": int(A.shape[0]), "n_edges": int(A.nnz // 2 if sym else A.nnz),
            "mean_degree": float(deg.mean()) if deg.size else 0.0,
            "min_degree": int(deg.min()) if deg.size else 0,
            "max_degree": int(deg.max()) if deg.size else 0,
            "isolated": int((deg == 0).sum()), "symmetric": bool(sym)}
