"""Cell-type proportions of spots (deconvolution) from a labelled single-cell reference.

A spatial spot (a Visium spot is 55 µm across) holds several cells; its counts are the sum of
theirs. Given reference expression profiles of cell types, :func:`deconvolve` estimates what
fraction of each spot's cells belongs to each type.

- :func:`reference_profiles` turns labelled reference cells into one relative expression profile
  per cell type (genes × types, each column sums to 1);
- :func:`deconvolve` fits each spot as a mixture of those profiles, by a Poisson likelihood
  (``method="poisson"``, in the spirit of RCTD, Cable et al. 2022) or by non-negative least
  squares on normalised expression (``method="nnls"``, the baseline);
- :func:`pseudo_spots` bins the cells of a single-cell-resolution section (MERFISH, Xenium,
  CosMx) into square or hexagonal spots and returns the true proportions, to check a method on
  spots whose answer is known.

The model (``method="poisson"``)
--------------------------------
For a spot with counts :math:`y_g` over the genes used, and :math:`N = \\sum_g y_g`,

.. math:: y_g \\sim \\mathrm{Poisson}\\Big(N \\sum_t \\beta_t \\, \\gamma_g \\mu_{g,t}\\Big),
          \\qquad \\beta_t \\ge 0,\\ \\sum_t \\beta_t = 1,

where :math:`\\mu_{\\cdot,t}` is type :math:`t`'s relative profile (renormalised to sum 1 over
the genes used) and :math:`\\gamma_g` an optional per-gene platform effect. :math:`\\beta` is
fitted per spot by maximum likelihood with the EM (multiplicative) update of mixture weights,
:math:`\\beta_t \\leftarrow \\beta_t \\frac{1}{N}\\sum_g y_g \\mu_{g,t} / \\sum_{t'} \\beta_{t'}
\\mu_{g,t'}`, which never leaves the simplex and raises the likelihood at every step (a few
rounds, accelerated by SQUAREM), then polished to the optimum by an active-set Newton method
on the simplex (EM alone converges slowly when profiles are nearly collinear, and stopping it
early left weights off by up to 0.1 in our synthetic checks). Both run for all spots at once as
matrix products and batched (T+1) × (T+1) solves for T types. The objective is concave in :math:`\\beta`, so the
optimum is the global one.

Platform effect (``platform_effect=True``): as RCTD does, a gene may be measured with a
different efficiency on the spatial platform than in the reference. :math:`\\gamma_g` is
estimated across *all* spots: with the spots' :math:`\\beta` fixed, the maximum-likelihood
:math:`\\gamma_g` is :math:`\\sum_s y_{sg} / \\sum_s N_s \\sum_t \\beta_{st} \\mu_{g,t}`; it is
shrunk towards 1 on the log scale (``log γ`` multiplied by ``n / (n + 10)`` where ``n`` is the
gene's total count), bounded to ``[0.1, 10]``, the profiles rescaled and renormalised, and
:math:`\\beta` refitted (three rounds). Unlike RCTD we do not use a separate bulk fit or a
log-normal prior; it is off by default (it cannot help when reference and spots come from the
same platform, and with few spots it may absorb real composition differences: on the
held-out MERFISH check it changed the RMSE from 0.0983 to 0.0979).

From counts to cells: :math:`\\beta` is the share of the spot's *counts* from each type. A type
whose cells carry more RNA takes a larger share of the counts than of the cells, so by default
(``proportions="cells"``) :math:`\\beta_t` is divided by the type's mean total count per cell in
the reference (kept in ``profiles.attrs["mean_counts"]`` by :func:`reference_profiles`) and
renormalised: the result is the fraction of *cells*. ``proportions="counts"`` returns
:math:`\\beta` itself.

Genes: only genes present in both the spots and the reference are used. With ``genes=None``,
those are further restricted to genes informative for the types, in the manner of RCTD: genes whose
relative expression in some type is at least ``2**0.5`` times (log2 fold change ≥ 0.5) their
mean over the other types and at least ``1e-4`` (one in ten thousand counts). If fewer than 20
genes pass, all shared genes are used. ``genes="all"`` uses all shared genes; a list uses those.

anndata is imported inside the functions that use it (it comes with the ``omics`` extra).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from pmed.errors import InputError, OptionError, PmedWarning

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["reference_profiles", "deconvolve", "pseudo_spots", "METHODS"]

#: Deconvolution methods :func:`deconvolve` knows.
METHODS = ("poisson", "nnls")

_WHERE = "pmed.spatial.deconvolve"
_PSEUDO = 1e-8  # floor of a relative expression, so a gene absent from a type is not impossible
_LOGFC = 0.5
_MIN_EXPR = 1e-4
_MIN_INFORMATIVE = 20


# --------------------------------------------------------------------------- input checks


def _counts(adata: anndata.AnnData, layer: str | None, what: str) -> sparse.csr_matrix:
    """The raw count matrix (cells/spots × genes) as CSR float64, checked finite and ≥ 0."""
    if layer is None:
        X = adata.X
    else:
        if layer not in adata.layers:
            raise InputError(
                f"layer {layer!r} is not in the {what}'s layers",
                where=f"{_WHERE}: {what}.layers",
                fix=f"use one of {sorted(adata.layers.keys())} or layer=None (adata.X)",
            )
        X = adata.layers[layer]
    if X is None:
        raise InputError(f"the {what} has no expression matrix (X is None)",
                         where=f"{_WHERE}: {what}.X", fix="pass an AnnData holding raw counts")
    M = sparse.csr_matrix(X, dtype=np.float64)
    data = M.data
    bad = ~np.isfinite(data)
    if bad.any():
        rows = np.unique(np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))[bad])
        raise InputError(
            f"the {what}'s counts hold {int(bad.sum())} non-finite value(s) (NaN or inf)",
            where=f"{_WHERE}: {what} rows {', '.join(map(str, adata.obs_names[rows[:5]]))}"
            + (f", … ({len(rows)} rows)" if len(rows) > 5 else ""),
            fix="pass raw counts without missing values (fill or drop those rows)",
        )
    neg = data < 0
    if neg.any():
        rows = np.unique(np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))[neg])
        raise InputError(
            f"the {what}'s counts hold {int(neg.sum())} negative value(s); deconvolution needs "
            "raw (non-negative) counts",
            where=f"{_WHERE}: {what} rows {', '.join(map(str, adata.obs_names[rows[:5]]))}"
            + (f", … ({len(rows)} rows)" if len(rows) > 5 else ""),
            fix="pass raw counts (adata.layers['counts'] or adata.raw), not scaled or "
                "log-centred values",
        )
    return M


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise OptionError(f"{name} must be an integer ≥ {minimum}, got {value!r}",
                          where=f"{_WHERE}: {name}=", fix=f"pass {name}={max(minimum, 1)} or more")
    return int(value)


def _labels(adata: anndata.AnnData, label_key: str | None, what: str) -> pd.Series:
    if label_key is None or label_key not in adata.obs.columns:
        said = "no label_key was given" if label_key is None else \
            f"label key {label_key!r} is not a column of the {what}'s obs"
        raise InputError(
            said,
            where=f"{_WHERE}: {what}.obs",
            fix=f"pass label_key= one of the available obs keys: {list(map(str, adata.obs.columns))}",
        )
    lab = adata.obs[label_key]
    if lab.isna().any():
        n = int(lab.isna().sum())
        raise InputError(f"{n} {what} cell(s) have no label in obs[{label_key!r}]",
                         where=f"{_WHERE}: {what}.obs[{label_key!r}]",
                         fix="drop the unlabelled cells before building the reference")
    return lab.astype(str)


# --------------------------------------------------------------------------- reference


def reference_profiles(
    reference: anndata.AnnData,
    label_key: str,
    *,
    min_cells: int = 10,
    layer: str | None = None,
) -> pd.DataFrame:
    """Mean relative expression profile of each cell type of a labelled reference.

    Parameters
    ----------
    reference
        Reference cells (cells × genes) with raw counts in ``X`` (or ``layer``) and the cell
        type of each cell in ``obs[label_key]``.
    label_key
        ``obs`` column holding the cell types.
    min_cells
        Fewest reference cells a type must have; a rarer type raises :class:`InputError`
        (a profile from a handful of cells is noise). Drop or merge such types first.
    layer
        Layer holding the raw counts (``None``: ``X``).

    Returns
    -------
    pandas.DataFrame
        Genes × cell types. Column ``t`` is the mean count profile of type ``t``'s cells divided
        by its sum (the pooled counts of the type over their total), so it sums to 1: the
        expected share of each gene among a type's counts. ``attrs["mean_counts"]`` (a Series)
        holds each type's mean total count per cell and ``attrs["n_cells"]`` its number of
        cells; :func:`deconvolve` uses the former to turn count shares into cell fractions.

    Raises
    ------
    InputError
        ``label_key`` not in ``obs`` (the message lists the available keys), a type with fewer
        than ``min_cells`` cells, negative or non-finite counts, or a type with no counts at all.
    """
    min_cells = _check_int(min_cells, "min_cells", 1)
    lab = _labels(reference, label_key, "reference")
    X = _counts(reference, layer, "reference")
    sizes = lab.value_counts()
    rare = sizes[sizes < min_cells]
    if len(rare):
        listed = ", ".join(f"{t!r} ({n} cells)" for t, n in rare.items())
        raise InputError(
            f"{len(rare)} cell type(s) have fewer than min_cells={min_cells} reference cells: "
            f"{listed}",
            where=f"{_WHERE}: reference.obs[{label_key!r}]",
            fix="drop or merge those types in the reference, or lower min_cells "
                "(a profile from a few cells is unreliable)",
        )
    cats = lab.astype("category").cat.categories
    if isinstance(reference.obs[label_key].dtype, pd.CategoricalDtype):
        # keep the reference's own order of types, less unused categories
        cats = [str(c) for c in reference.obs[label_key].cat.categories if str(c) in sizes.index]
    codes = pd.Categorical(lab, categories=cats).codes
    G = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                          shape=(len(cats), len(codes)))
    sums = np.asarray((G @ X).todense()).T  # genes × types
    totals = sums.sum(axis=0)
    empty = [c for c, s in zip(cats, totals, strict=True) if s <= 0]
    if empty:
        raise InputError(f"cell type(s) {empty} have no counts at all in the reference",
                         where=f"{_WHERE}: reference", fix="check the reference's counts/labels")
    n_cells = pd.Series(np.bincount(codes, minlength=len(cats)), index=list(cats), name="n_cells")
    prof = pd.DataFrame(sums / totals, index=reference.var_names.astype(str), columns=list(cats))
    prof.index.name = "gene"
    prof.columns.name = "cell_type"
    prof.attrs["mean_counts"] = pd.Series(totals / n_cells.to_numpy(), index=list(cats),
                                          name="mean_counts")
    prof.attrs["n_cells"] = n_cells
    return prof


def _informative(prof: pd.DataFrame) -> pd.Index:
    """Genes whose relative expression marks some type (log2 FC ≥ 0.5 against the others' mean)."""
    P = prof.to_numpy()
    T = P.shape[1]
    if T < 2:
        return prof.index
    others = (P.sum(axis=1, keepdims=True) - P) / (T - 1)
    lfc = np.log2((P + 1e-6) / (others + 1e-6))
    keep = ((lfc >= _LOGFC) & (P >= _MIN_EXPR)).any(axis=1)
    if keep.sum() < _MIN_INFORMATIVE:
        return prof.index
    return prof.index[keep]


# --------------------------------------------------------------------------- fitting


def _em_step(Y: np.ndarray, B: np.ndarray, M: np.ndarray, N: np.ndarray) -> np.ndarray:
    """One EM update of the mixture weights of each spot (rows of ``B``)."""
    new = B * ((Y / (B @ M.T)) @ M) / N[:, None]
    return new / new.sum(axis=1, keepdims=True)


def _loglik(Y: np.ndarray, B: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Σ_g y_g log(Σ_t β_t μ_gt) per spot (the Poisson log-likelihood up to a constant)."""
    return (Y * np.log(B @ M.T)).sum(axis=1)


def _squarem(Y: np.ndarray, M: np.ndarray, B: np.ndarray, *, rounds: int,
             tol: float) -> np.ndarray:
    """EM accelerated by SQUAREM (Varadhan & Roland 2008, scheme S3), per spot.

    Two EM steps give an extrapolation along the simplex, kept only when it does not lower the
    likelihood, so the likelihood never decreases. A spot leaves the work set when a round
    gains less than ``tol`` per count.
    """
    N = Y.sum(axis=1)
    active = np.flatnonzero(N > 0)
    ll = np.full(Y.shape[0], -np.inf)
    for _ in range(rounds):
        if active.size == 0:
            break
        Ya, Ba, Na = Y[active], B[active], N[active]
        B1 = _em_step(Ya, Ba, M, Na)
        B2 = _em_step(Ya, B1, M, Na)
        r = B1 - Ba
        v = B2 - B1 - r
        rn = np.sqrt((r * r).sum(axis=1))
        vn = np.sqrt((v * v).sum(axis=1))
        alpha = -np.divide(rn, vn, out=np.ones_like(rn), where=vn > 0)
        alpha = np.minimum(alpha, -1.0)[:, None]
        Bx = np.clip(Ba - 2 * alpha * r + alpha**2 * v, 1e-12, None)
        Bx = _em_step(Ya, Bx / Bx.sum(axis=1, keepdims=True), M, Na)
        ll_x, ll_2 = _loglik(Ya, Bx, M), _loglik(Ya, B2, M)
        better = ll_x >= ll_2
        B[active] = np.where(better[:, None], Bx, B2)
        ll_n = np.where(better, ll_x, ll_2)
        gain = (ll_n - ll[active]) / Na
        ll[active] = ll_n
        active = active[~(gain < tol)]
    return B


def _newton(Y: np.ndarray, M: np.ndarray, B: np.ndarray, *, max_iter: int = 50,
            drop: float = 1e-6) -> np.ndarray:
    """Active-set Newton polish of the simplex-constrained Poisson MLE, all spots at once.

    Weights below ``drop`` are set to 0; on the remaining (active) types each iteration solves
    the equality-constrained Newton system ``[H 1; 1ᵀ 0] [d; ν] = [-g; 0]`` (a batch of small
    linear systems, one per spot), steps as far as the simplex allows (a weight that reaches 0 leaves the
    active set) with Armijo backtracking, and stops when the Newton decrement is below 1e-10
    per count. A type left out re-enters when its KKT condition is violated (the EM multiplier
    ``Σ_g y_g μ_gt / λ_g / N`` above 1), and the polish runs again (at most three times).
    """
    S, T = B.shape
    N = Y.sum(axis=1)
    MM = (M[:, :, None] * M[:, None, :]).reshape(M.shape[0], T * T)
    fit = N > 0
    B = B.copy()
    for _ in range(3):
        act = (B > drop) & fit[:, None]
        B = np.where(act, B, 0.0)
        B[fit] /= B[fit].sum(axis=1, keepdims=True)
        todo = np.flatnonzero(fit)
        for _ in range(max_iter):
            if todo.size == 0:
                break
            Yt, Bt, At = Y[todo], B[todo], act[todo]
            lam = Bt @ M.T
            g = -(Yt / lam) @ M                                  # gradient of -loglik
            H = ((Yt / lam**2) @ MM).reshape(-1, T, T)           # its Hessian
            K = np.zeros((len(todo), T + 1, T + 1))
            both = At[:, :, None] & At[:, None, :]
            K[:, :T, :T] = np.where(both, H, 0.0) + np.where(~At, 1.0, 0.0)[:, :, None] * np.eye(T)
            K[:, :T, T] = K[:, T, :T] = At
            rhs = np.zeros((len(todo), T + 1))
            rhs[:, :T] = np.where(At, -g, 0.0)
            try:
                d = np.linalg.solve(K, rhs[:, :, None])[:, :T, 0]
            except np.linalg.LinAlgError:
                d = np.stack([np.linalg.lstsq(k, b, rcond=None)[0][:T]
                              for k, b in zip(K, rhs, strict=True)])
            d = np.where(At, d, 0.0)
            slope = (g * d).sum(axis=1)                          # < 0 for a descent step
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(d < 0, -Bt / d, np.inf)
            a_max = np.minimum(ratio.min(axis=1), 1.0)
            alpha = a_max.copy()
            f0 = -_loglik(Yt, Bt, M)
            ok = slope >= 0  # no descent: nothing to try
            for _ in range(30):
                trial = np.flatnonzero(~ok)
                if trial.size == 0:
                    break
                Bc = np.clip(Bt[trial] + alpha[trial, None] * d[trial], 0.0, None)
                Bc = np.where(At[trial], np.maximum(Bc, 1e-300), 0.0)
                fc = -_loglik(Yt[trial], Bc, M)
                ok[trial] = fc <= f0[trial] + 1e-4 * alpha[trial] * slope[trial]
                alpha[trial] = np.where(ok[trial], alpha[trial], alpha[trial] / 2)
            alpha = np.where(ok & (slope < 0), alpha, 0.0)
            Bn = np.clip(Bt + alpha[:, None] * d, 0.0, None)
            hit = (alpha == a_max)[:, None] & (ratio <= a_max[:, None] * (1 + 1e-12))
            Bn = np.where(hit, 0.0, Bn)
            Bn /= Bn.sum(axis=1, keepdims=True)
            B[todo] = Bn
            act[todo] = At & (Bn > 0)
            todo = todo[(-slope > 1e-10 * N[todo]) & (alpha > 0)]
        r = (Y / np.maximum(B @ M.T, 1e-300)) @ M / np.maximum(N, 1)[:, None]
        enter = fit[:, None] & ~act & (r > 1 + 1e-6)
        if not enter.any():
            break
        B = np.where(enter, 2 * drop, B)
        B[fit] /= B[fit].sum(axis=1, keepdims=True)
    return B


def _fit_poisson(Y: np.ndarray, M: np.ndarray, *, B0: np.ndarray | None = None) -> np.ndarray:
    """β (spots × types) maximising Σ_g y_g log(Σ_t β_t μ_gt) on the simplex.

    ``Y`` spots × genes (counts), ``M`` genes × types (columns sum to 1, all entries > 0).
    The term ``-N`` of the Poisson log-likelihood is constant on the simplex, so this is the
    Poisson MLE. EM (accelerated by SQUAREM) brings each spot near the optimum and tells which
    types are absent; an active-set Newton method then converges to the optimum. EM alone
    converges slowly on nearly collinear profiles, which can leave weights off by 0.1.
    """
    S, T = Y.shape[0], M.shape[1]
    B = np.full((S, T), 1.0 / T) if B0 is None else B0.copy()
    B = np.clip(B, 1e-12, None)
    B /= B.sum(axis=1, keepdims=True)
    B = _squarem(Y, M, B, rounds=5, tol=1e-6)
    return _newton(Y, M, B)


def _fit_nnls(Y: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Per spot, ``scipy.optimize.nnls(M, y / N)``, then normalised to sum 1."""
    from scipy.optimize import nnls

    N = Y.sum(axis=1)
    B = np.zeros((Y.shape[0], M.shape[1]))
    for s in np.flatnonzero(N > 0):
        b, _ = nnls(M, Y[s] / N[s])
        tot = b.sum()
        B[s] = b / tot if tot > 0 else 1.0 / M.shape[1]
    return B


def _platform_effect(Y: np.ndarray, M: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Per-gene γ: observed over expected counts across all spots, shrunk towards 1."""
    N = Y.sum(axis=1)
    obs = Y.sum(axis=0)
    exp = (N[:, None] * (B @ M.T)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_g = np.log((obs + 0.5) / (exp + 0.5))
    log_g *= obs / (obs + 10.0)  # genes with few counts keep γ near 1
    return np.exp(np.clip(log_g, np.log(0.1), np.log(10.0)))


def deconvolve(
    spots: anndata.AnnData,
    reference: anndata.AnnData | pd.DataFrame,
    *,
    label_key: str | None = None,
    method: str = "poisson",
    min_cells: int = 10,
    genes: Sequence[str] | str | None = None,
    platform_effect: bool = False,
    proportions: str = "cells",
    layer: str | None = None,
) -> pd.DataFrame:
    """Cell-type proportions of each spot.

    Parameters
    ----------
    spots
        Spots × genes with raw counts in ``X`` (or ``layer``).
    reference
        Labelled reference cells (AnnData with ``obs[label_key]``, raw counts in ``X``) or a
        profiles table from :func:`reference_profiles` (genes × types).
    label_key
        Cell-type column of the reference's ``obs`` (needed for an AnnData reference).
    method
        ``"poisson"``: maximum-likelihood fit of the Poisson mixture model (see the module
        docstring); ``"nnls"``: non-negative least squares of the spot's relative expression
        on the profiles (``scipy.optimize.nnls``), normalised to sum 1.
    min_cells
        Fewest reference cells per type (an AnnData reference only).
    genes
        ``None``: shared genes informative for the types (module docstring); ``"all"``: all
        genes shared by spots and reference; a list: those genes (unknown ones raise).
    platform_effect
        Estimate a per-gene platform scaling across all spots (``method="poisson"`` only).
    proportions
        ``"cells"``: fractions of cells (count shares divided by each type's mean count per
        cell in the reference, then renormalised; needs ``attrs["mean_counts"]`` of the
        profiles, which an AnnData reference always gives, else count shares are returned
        with a warning); ``"counts"``: shares of the spot's counts.
    layer
        Layer of ``spots`` holding the raw counts (``None``: ``X``).

    Returns
    -------
    pandas.DataFrame
        Spots × cell types, non-negative, rows summing to 1. A spot with no counts over the
        genes used has a row of NaN (with a :class:`~pmed.errors.PmedWarning`). ``attrs``
        holds ``genes`` (the genes used), ``method`` and, with ``platform_effect``,
        ``platform_effect`` (γ per gene).

    Raises
    ------
    OptionError
        Unknown ``method`` or ``proportions``.
    InputError
        Bad reference (see :func:`reference_profiles`), no genes shared by spots and
        reference, genes asked for that are missing, negative or non-finite counts.
    """
    if method not in METHODS:
        raise OptionError(f"unknown method {method!r}", where=f"{_WHERE}: method=",
                          fix=f"use one of {list(METHODS)}")
    if proportions not in ("cells", "counts"):
        raise OptionError(f"unknown proportions {proportions!r}", where=f"{_WHERE}: proportions=",
                          fix="use 'cells' (fractions of cells) or 'counts' (shares of counts)")
    if platform_effect and method != "poisson":
        raise OptionError("platform_effect=True needs method='poisson'",
                          where=f"{_WHERE}: platform_effect=",
                          fix="use method='poisson' or platform_effect=False")

    if isinstance(reference, pd.DataFrame):
        prof = reference
        vals = prof.to_numpy(dtype=float)
        if not np.isfinite(vals).all() or (vals < 0).any():
            raise InputError("the reference profiles hold negative or non-finite values",
                             where=f"{_WHERE}: reference (profiles)",
                             fix="build them with reference_profiles() from raw counts")
    else:
        prof = reference_profiles(reference, label_key, min_cells=min_cells)
    mean_counts = prof.attrs.get("mean_counts")

    Xs = _counts(spots, layer, "spots")
    spot_genes = pd.Index(spots.var_names.astype(str))
    ref_genes = pd.Index(prof.index.astype(str))
    shared = ref_genes.intersection(spot_genes, sort=False)
    if len(shared) == 0:
        raise InputError(
            f"no genes are shared by the spots ({len(spot_genes)} genes, e.g. "
            f"{list(spot_genes[:3])}) and the reference ({len(ref_genes)} genes, e.g. "
            f"{list(ref_genes[:3])})",
            where=f"{_WHERE}: spots.var_names / reference genes",
            fix="use the same gene identifiers on both sides (symbols vs Ensembl IDs, case)",
        )
    prof_s = prof.set_axis(ref_genes, axis=0).loc[shared]
    if genes is None:
        use = _informative(prof_s / prof_s.sum(axis=0).where(lambda s: s > 0, 1.0))
    elif isinstance(genes, str):
        if genes != "all":
            raise OptionError(f"genes must be None, 'all' or a list of genes, got {genes!r}",
                              where=f"{_WHERE}: genes=", fix="pass genes='all' or a list")
        use = shared
    else:
        asked = pd.Index([str(g) for g in genes]).unique()
        missing = asked.difference(shared)
        if len(missing):
            raise InputError(
                f"{len(missing)} of the {len(asked)} genes asked for are not in both the spots "
                f"and the reference: {list(missing[:8])}",
                where=f"{_WHERE}: genes=",
                fix=f"choose among the {len(shared)} shared genes",
            )
        use = asked
    if len(use) == 0:
        raise InputError("no genes to fit with", where=f"{_WHERE}: genes=",
                         fix="pass genes=None or 'all'")

    M = prof_s.loc[use].to_numpy(dtype=float) + _PSEUDO
    M /= M.sum(axis=0, keepdims=True)
    col = spot_genes.get_indexer(use)
    Y = np.asarray(Xs[:, col].todense(), dtype=float)

    if method == "nnls":
        B = _fit_nnls(Y, M)
        gamma = None
    else:
        B = _fit_poisson(Y, M)
        gamma = None
        if platform_effect:
            for _ in range(3):
                gamma = _platform_effect(Y, M, B)
                Mg = M * gamma[:, None]
                Mg /= Mg.sum(axis=0, keepdims=True)
                B = _fit_poisson(Y, Mg, B0=B)

    if proportions == "cells":
        if mean_counts is None:
            warnings.warn("the reference profiles carry no attrs['mean_counts'], so count "
                          "shares are returned instead of cell fractions; build them with "
                          "reference_profiles()", PmedWarning, stacklevel=2)
        else:
            size = pd.Series(mean_counts).reindex(prof.columns).to_numpy(dtype=float)
            if np.isfinite(size).all() and (size > 0).all():
                B = B / size
                tot = B.sum(axis=1, keepdims=True)
                B = np.divide(B, tot, out=np.zeros_like(B), where=tot > 0)

    empty = Y.sum(axis=1) <= 0
    if empty.any():
        B[empty] = np.nan
        warnings.warn(f"{int(empty.sum())} spot(s) have no counts over the {len(use)} genes "
                      "used; their proportions are NaN", PmedWarning, stacklevel=2)
    out = pd.DataFrame(B, index=spots.obs_names.astype(str), columns=list(prof.columns))
    out.columns.name = "cell_type"
    out.attrs["genes"] = list(map(str, use))
    out.attrs["method"] = method
    if gamma is not None:
        out.attrs["platform_effect"] = pd.Series(gamma, index=use, name="gamma")
    return out


# --------------------------------------------------------------------------- pseudo-spots


def pseudo_spots(
    cells: anndata.AnnData,
    *,
    label_key: str,
    spot_size: float,
    origin: Sequence[float] | None = None,
    shape: str = "square",
    min_cells: int = 3,
    layer: str | None = None,
) -> tuple[anndata.AnnData, pd.DataFrame]:
    """Bin single cells into spots with known cell-type proportions.

    Parameters
    ----------
    cells
        Cells with raw counts in ``X`` (or ``layer``), coordinates in ``obsm['spatial']`` and
        types in ``obs[label_key]``.
    label_key
        Cell-type column of ``obs``.
    spot_size
        ``shape="square"``: side of the square bins; ``shape="hex"``: centre-to-centre
        distance of a hexagonal (Visium-like) lattice, each cell going to its nearest centre.
        In the units of ``obsm['spatial']`` (µm for most single-cell platforms).
    origin
        Corner ``(x, y)`` of the grid (default: the smallest coordinates). Pass it to align the
        grid of two calls, for example with blocks used to split a section.
    shape
        ``"square"`` or ``"hex"``.
    min_cells
        Spots with fewer cells are dropped.
    layer
        Layer holding the raw counts (``None``: ``X``).

    Returns
    -------
    spots : anndata.AnnData
        Spots × genes: summed counts (sparse), ``obsm['spatial']`` the spot centres,
        ``obs['n_cells']`` the number of cells, ``obs['grid_row']``/``obs['grid_col']``.
    truth : pandas.DataFrame
        Spots × cell types: the fraction of each spot's cells of each type (rows sum to 1).
    """
    import anndata as ad

    if shape not in ("square", "hex"):
        raise OptionError(f"unknown shape {shape!r}", where=f"{_WHERE}: shape=",
                          fix="use 'square' or 'hex'")
    try:
        size = float(spot_size)
    except (TypeError, ValueError):
        size = float("nan")
    if not np.isfinite(size) or size <= 0:
        raise OptionError(f"spot_size must be a positive number, got {spot_size!r}",
                          where=f"{_WHERE}: spot_size=",
                          fix="pass the spot side in the units of obsm['spatial'] (e.g. 55 µm)")
    min_cells = _check_int(min_cells, "min_cells", 1)
    if "spatial" not in cells.obsm:
        raise InputError("the cells have no obsm['spatial'] coordinates",
                         where=f"{_WHERE}: cells.obsm",
                         fix=f"store the cell centroids in obsm['spatial'] (found "
                             f"{list(cells.obsm.keys())})")
    xy = np.asarray(cells.obsm["spatial"], dtype=float)[:, :2]
    if not np.isfinite(xy).all():
        raise InputError("obsm['spatial'] holds non-finite coordinates",
                         where=f"{_WHERE}: cells.obsm['spatial']", fix="drop those cells")
    lab = _labels(cells, label_key, "cells")
    X = _counts(cells, layer, "cells")
    o = xy.min(axis=0) if origin is None else np.asarray(origin, dtype=float)[:2]

    rel = xy - o
    if shape == "square":
        col = np.floor(rel[:, 0] / size).astype(np.int64)
        row = np.floor(rel[:, 1] / size).astype(np.int64)
        centre = lambda r, c: np.c_[(c + 0.5) * size, (r + 0.5) * size]  # noqa: E731
    else:
        # rows spaced size·√3/2 apart; odd rows shifted by size/2; the nearest centre among the
        # candidates of the two nearest rows is the cell's hexagon
        dy = size * np.sqrt(3) / 2
        r0 = np.floor(rel[:, 1] / dy).astype(np.int64)
        best = None
        for r in (r0, r0 + 1):
            shift = (r % 2) * size / 2
            c = np.round((rel[:, 0] - shift) / size).astype(np.int64)
            d = (rel[:, 0] - (c * size + shift)) ** 2 + (rel[:, 1] - r * dy) ** 2
            if best is None:
                best = (r.copy(), c, d)
            else:
                closer = d < best[2]
                best = (np.where(closer, r, best[0]), np.where(closer, c, best[1]),
                        np.where(closer, d, best[2]))
        row, col = best[0], best[1]
        centre = lambda r, c: np.c_[c * size + (r % 2) * size / 2, r * dy]  # noqa: E731

    keys = pd.MultiIndex.from_arrays([row, col])
    codes, uniq = pd.factorize(keys)
    n_spots = len(uniq)
    A = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                          shape=(n_spots, len(codes)))
    summed = (A @ X).tocsr()
    n_cells = np.bincount(codes, minlength=n_spots)
    truth = pd.crosstab(codes, lab.to_numpy())
    truth = truth.reindex(index=np.arange(n_spots), fill_value=0)
    cats = (list(map(str, cells.obs[label_key].cat.categories))
            if isinstance(cells.obs[label_key].dtype, pd.CategoricalDtype) else sorted(lab.unique()))
    truth = truth.reindex(columns=[c for c in cats if c in truth.columns], fill_value=0)
    keep = n_cells >= min_cells
    if not keep.any():
        raise InputError(
            f"no spot holds min_cells={min_cells} cells (most: {int(n_cells.max())}) with "
            f"spot_size={size:g}",
            where=f"{_WHERE}: spot_size=",
            fix="use a larger spot_size (in the units of obsm['spatial']) or lower min_cells",
        )
    rr = np.array([k[0] for k in uniq])[keep]
    cc = np.array([k[1] for k in uniq])[keep]
    names = [f"spot_{r}_{c}" for r, c in zip(rr, cc, strict=True)]
    obs = pd.DataFrame({"n_cells": n_cells[keep], "grid_row": rr, "grid_col": cc},
                       index=pd.Index(names, name="spot"))
    var = pd.DataFrame(index=cells.var_names.copy())
    spots = ad.AnnData(X=summed[keep], obs=obs, var=var)
    spots.obsm["spatial"] = centre(rr, cc) + o
    frac = truth.to_numpy(dtype=float)[keep]
    frac /= frac.sum(axis=1, keepdims=True)
    truth = pd.DataFrame(frac, index=obs.index, columns=list(truth.columns))
    truth.columns.name = "cell_type"
    return spots, truth
