"""Ancestry-aware reporting of polygenic scores, after pgsc_calc's ``ancestry`` step.

Two parts, both on plain arrays (any genotype reader can feed them):

* :class:`AncestryReference` — PCA of a labelled reference panel (allele dosages, samples ×
  variants), projection of new samples into that PC space, and a random-forest similarity
  to the reference populations (``MostSimilarPop``, ``RF_P_<POP>``,
  ``MostSimilarPop_LowConfidence``).
* :func:`adjust_scores` — each polygenic score reported relative to the reference, as
  pgsc_calc's ``pgscatalog.calc`` does (long form, one row per sample and score):

  ``SUM``
      the score as given.
  ``percentile_MostSimilarPop``
      percentile (0–100, scipy's ``percentileofscore``, ``kind="rank"``) of the score among
      the reference samples of the most similar population.
  ``Z_MostSimilarPop``
      ``(SUM − mean) / sd`` with the mean and the population SD (``ddof=0``) of that same
      reference population ("empirical" method).
  ``Z_norm1``
      mean adjustment (Khera et al. 2019): the score, centred on the reference mean, is
      regressed by least squares on the first ``n_pcs`` PCs (standardised with the reference
      means/SDs) in the reference; ``Z_norm1`` is the residual divided by the SD of the
      reference residuals ("mean" method).
  ``Z_norm2``
      mean and variance adjustment (Khan et al. 2022): the variance of the residuals is
      modelled on the same PCs with a log link (a gamma GLM on the squared residuals gives
      starting values); then, by default, the mean and variance models are refitted jointly
      by maximising the normal likelihood ``SUM ~ N(μ(PC), σ²(PC))`` and
      ``Z_norm2 = (SUM − μ(PC)) / σ(PC)`` ("mean+var" method; ``norm2_2step=True`` keeps the
      two-step estimate instead, like pgsc_calc's ``norm2_2step``).

Projection and its shrinkage
----------------------------
Projecting a new sample onto the reference loadings (``projection="simple"``) is exact for the
reference samples themselves but *shrinks* new samples towards the origin: with more variants
than reference samples, the reference PC scores overfit the reference, and out-of-sample
scores have a smaller spread (Lee et al. 2010). pgsc_calc therefore projects with FRAPOSA's
online augmentation, decomposition and Procrustes (OADP; Zhang, Dey & Lee 2020), which is the
default here (``projection="oadp"``): for each new sample the reference SVD is augmented with
that one sample (an exact rank-one update of the leading ``4k`` singular triplets), the
augmented sample scores on ``2k`` dimensions are mapped onto the reference PCs by a
Procrustes rotation, scaling and shift fitted on the reference rows, and the new sample's
first ``k`` transformed coordinates are its PCs. The tests show the shrinkage of simple
projection and its correction by OADP on simulated data.

References
----------
Lambert SA et al. (2024). Enhancing the Polygenic Score Catalog with tools for score calculation
and ancestry normalization. *Nat Genet* 56:1989–1994 (pgsc_calc).

Zhang D, Dey R, Lee S (2020). Fast and robust ancestry prediction using principal component
analysis. *Bioinformatics* 36:3439–3446 (FRAPOSA, OADP).

Lee S, Zou F, Wright FA (2010). Convergence and prediction of principal component scores in
high-dimensional settings. *Ann Stat* 38:3605–3629.

Khera AV et al. (2019). Whole-genome sequencing to characterize monogenic and polygenic
contributions in patients hospitalized with early-onset myocardial infarction.
*Circulation* 139:1593–1602.

Khan A et al. (2022). Genome-wide polygenic score to predict chronic kidney disease across
ancestries. *Nat Med* 28:1412–1420.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from sklearn.base import BaseEstimator

from pmed.errors import ValidationError

__all__ = ["AncestryReference", "adjust_scores", "ADJUST_METHODS"]

#: The adjustment methods of :func:`adjust_scores`, named as pgsc_calc names them.
ADJUST_METHODS = ("empirical", "mean", "mean+var")

_PROJECTIONS = ("oadp", "simple")


# --------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------

def _shown(items: Sequence[Any], limit: int = 8) -> str:
    items = list(items)
    text = ", ".join(str(i) for i in items[:limit])
    if len(items) > limit:
        text += f", … ({len(items)} in all)"
    return text


def _as_dosages(G, name: str) -> tuple[np.ndarray, pd.Index | None, pd.Index | None]:
    """A float (samples × variants) dosage matrix and its sample / variant names, if any."""
    rows = cols = None
    if isinstance(G, pd.DataFrame):
        rows, cols = G.index, G.columns
        G = G.to_numpy()
    try:
        arr = np.asarray(G)
        if arr.dtype.kind != "f":  # integer dosages: float32 holds them exactly, in half the space
            arr = arr.astype(np.float32 if arr.dtype.kind in "iub" else float)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            [f"{name} has non-numeric values ({exc})"],
            fix="give allele dosages 0, 1, 2 (or fractional), NaN for a missing call",
        ) from None
    if arr.ndim != 2:
        raise ValidationError(
            [f"{name} must be 2-D (samples × variants), got shape {arr.shape}"],
            fix="pass one row per sample and one column per variant",
        )
    problems = []
    if np.isinf(arr).any():
        r, c = np.nonzero(np.isinf(arr))
        problems.append(f"{name} has infinite dosages at (row, column) "
                        f"{_shown(list(zip((r + 1).tolist(), (c + 1).tolist(), strict=True)))}")
    bad = ~np.isnan(arr) & ((arr < 0) | (arr > 2))
    if bad.any():
        r, c = np.nonzero(bad)
        problems.append(f"{name} has dosages outside [0, 2] at (row, column) "
                        f"{_shown(list(zip((r + 1).tolist(), (c + 1).tolist(), strict=True)))}")
    if problems:
        raise ValidationError(problems, fix="allele dosages must lie in [0, 2]; NaN marks a "
                                            "missing call")
    return arr, rows, cols


def _labels(values, n: int, name: str) -> np.ndarray:
    lab = pd.Series(np.asarray(values, dtype=object).ravel())
    if len(lab) != n:
        raise ValidationError(
            [f"{name} has {len(lab)} labels for {n} samples"],
            fix=f"give one {name} label per sample, in the same order",
        )
    miss = lab.isna().to_numpy()
    if miss.any():
        raise ValidationError(
            [f"{name} is missing for samples (1-based rows) {_shown(np.nonzero(miss)[0] + 1)}"],
            fix="give every sample a label, or drop the unlabelled ones",
        )
    return lab.astype(str).to_numpy()


_BLOCK = 4096  # variants standardised at a time


def _blocks(idx: np.ndarray, size: int = _BLOCK):
    for start in range(0, len(idx), size):
        yield idx[start: start + size]


# --------------------------------------------------------------------------------------
# OADP (online augmentation, decomposition and Procrustes)
# --------------------------------------------------------------------------------------

def _procrustes(Y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Rotation ``R``, scale ``rho``, shift ``c`` minimising ``||Y − (rho·X·R + c)||``."""
    xm, ym = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - xm, Y - ym
    u, s, vt = np.linalg.svd(Xc.T @ Yc)
    R = u @ vt
    rho = s.sum() / np.sum(Xc**2)
    return R, rho, ym - rho * xm @ R


def _procrustes_pad(
    Y: np.ndarray, X: np.ndarray, Z0: np.ndarray, *, tol: float = 1e-6, max_iter: int = 1000
) -> tuple[np.ndarray, float, np.ndarray]:
    """Procrustes from ``X`` (n × d) onto ``Y`` (n × k), k ≤ d.

    The target has fewer dimensions; its missing ``d − k`` coordinates ``Z`` are treated as
    free and estimated by alternating (fit the map onto ``[Y, Z]``, set ``Z`` to the mapped
    ``X``'s last coordinates) until ``Z`` changes by less than ``tol`` (relative).
    """
    k = Y.shape[1]
    if X.shape[1] == k:
        return _procrustes(Y, X)
    Z = Z0
    for _ in range(max_iter):
        R, rho, c = _procrustes(np.hstack([Y, Z]), X)
        Z_new = (rho * X @ R + c)[:, k:]
        denom = np.sum((Z_new - Z_new.mean(axis=0)) ** 2)
        change = np.sum((Z_new - Z) ** 2) / denom if denom > 0 else 0.0
        Z = Z_new
        if change < tol:
            break
    return R, rho, c


def _augment(
    U: np.ndarray, s: np.ndarray, V: np.ndarray, w: np.ndarray, d: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sample scores on ``d`` dimensions of the panel ``X ≈ U·diag(s)·Vᵀ`` augmented by ``w``.

    ``w = V·a + rho·e`` with ``e`` orthogonal to ``V``, so
    ``[U diag(s) Vᵀ; wᵀ] = blockdiag(U, 1) · K · [V, e]ᵀ`` with
    ``K = [[diag(s), 0], [aᵀ, rho]]``; the SVD ``K = A·Σ·Bᵀ`` of this small
    (q + 1)-square matrix gives the augmented scores ``blockdiag(U, 1)·A·Σ`` (exact when
    ``U, s, V`` hold the whole SVD of ``X``).
    """
    q = len(s)
    a = V.T @ w
    resid = w - V @ a
    K = np.zeros((q + 1, q + 1))
    K[:q, :q] = np.diag(s)
    K[q, :q] = a
    K[q, q] = np.sqrt(resid @ resid)
    A, sig, _ = np.linalg.svd(K)
    return U @ (A[:q, :d] * sig[:d]), A[q, :d] * sig[:d]


# --------------------------------------------------------------------------------------
# the reference panel
# --------------------------------------------------------------------------------------

class AncestryReference(BaseEstimator):
    """PCA of a labelled reference panel, projection of new samples, population similarity.

    Parameters
    ----------
    n_components
        Number of principal components kept (and returned by :meth:`transform`).
    n_pcs_assign
        The first this many PCs feed the population classifier (pgsc_calc's ``--n_popcomp``,
        default 5).
    projection
        ``"oadp"`` (default, as pgsc_calc/FRAPOSA: corrects the shrinkage of projected
        scores) or ``"simple"`` (scores on the reference loadings; exact for reference
        samples, shrunk towards 0 for new ones).
    pop_threshold
        A sample whose highest population probability is below this is flagged
        ``MostSimilarPop_LowConfidence`` (pgsc_calc's random-forest default 0.5). Its
        ``MostSimilarPop`` is kept, as pgsc_calc keeps it.
    min_samples_per_pop
        Reference populations with fewer samples are refused: their percentiles and SDs
        would be meaningless.
    n_estimators
        Trees of the random forest (pgsc_calc uses scikit-learn's default, 100).
    seed
        Seed of the random forest.
    n_jobs
        Parallel jobs of the random forest.

    Attributes
    ----------
    allele_freq_ : ndarray (n_variants,)
        Reference frequency of the counted allele (dosage mean / 2, missing calls excluded).
    scale_ : ndarray (n_variants,)
        ``sqrt(2p(1 − p))``; 0 for monomorphic variants, which are left out of the PCA.
    informative_ : ndarray of bool
        Variants that vary in the reference (used by the PCA).
    components_ : ndarray (n_informative, n_kept)
        Loadings (right singular vectors) of the standardised reference genotypes; the
        first ``n_components`` define the PCs, the rest (up to ``4 · n_components``) serve
        the OADP projection.
    singular_values_ : ndarray (n_kept,)
    left_vectors_ : ndarray (n_reference, n_kept)
        Left singular vectors (reference samples), for OADP.
    oadp_dims_ : tuple of int
        Dimensions of the OADP Procrustes fit and of the online SVD update (``2k``, ``4k``,
        capped by the rank of the reference).
    explained_variance_ratio_ : ndarray (n_components,)
        Share of the total standardised genotype variance on each PC.
    pcs_ : DataFrame (n_reference, n_components)
        Reference PC scores ``PC1 … PCk`` (left singular vectors × singular values), indexed
        like ``G_ref`` (its index, or 0 … n−1).
    sample_ids_ : Index
        That index.
    populations_ : ndarray of str
        Reference labels, in sample order.
    classes_ : ndarray of str
        Sorted population names.
    classifier_ : RandomForestClassifier
        Fitted on the first ``n_pcs_assign`` reference PCs.
    reference_assignment_ : DataFrame
        The classifier's (in-sample) output for the reference samples, as pgsc_calc writes it.
    n_features_in_ : int
        Number of variants.
    feature_names_in_ : ndarray
        Variant names, when ``G_ref`` was a DataFrame; new data are then matched by name.
    """

    def __init__(
        self,
        *,
        n_components: int = 10,
        n_pcs_assign: int = 5,
        projection: str = "oadp",
        pop_threshold: float = 0.5,
        min_samples_per_pop: int = 10,
        n_estimators: int = 100,
        seed: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.n_components = n_components
        self.n_pcs_assign = n_pcs_assign
        self.projection = projection
        self.pop_threshold = pop_threshold
        self.min_samples_per_pop = min_samples_per_pop
        self.n_estimators = n_estimators
        self.seed = seed
        self.n_jobs = n_jobs

    # -- fitting ------------------------------------------------------------------------

    def _check_params(self, n: int) -> None:
        problems = []
        if self.projection not in _PROJECTIONS:
            problems.append(f"projection={self.projection!r} is not one of {_PROJECTIONS}")
        if not (isinstance(self.n_components, (int, np.integer)) and self.n_components >= 1):
            problems.append(f"n_components={self.n_components!r} must be a positive integer")
        elif self.n_components > n - 1:
            problems.append(f"n_components={self.n_components} needs more than "
                            f"{self.n_components} reference samples; there are {n}")
        if not (isinstance(self.n_pcs_assign, (int, np.integer))
                and 1 <= self.n_pcs_assign <= self.n_components):
            problems.append(f"n_pcs_assign={self.n_pcs_assign!r} must be between 1 and "
                            f"n_components={self.n_components}")
        if not 0 <= self.pop_threshold <= 1:
            problems.append(f"pop_threshold={self.pop_threshold!r} must lie in [0, 1]")
        if problems:
            raise ValidationError(problems, fix="change the AncestryReference parameters")

    def fit(self, G_ref, populations) -> AncestryReference:
        """Standardise, decompose and learn the populations of a reference panel.

        Parameters
        ----------
        G_ref
            Allele dosages, samples × variants (array or DataFrame whose columns name the
            variants); NaN marks a missing call. Missing calls are set to the reference mean
            (0 after standardisation).
        populations
            One population label per reference sample.

        Returns
        -------
        AncestryReference
            ``self``, fitted.
        """
        from sklearn.covariance import EmpiricalCovariance
        from sklearn.ensemble import RandomForestClassifier

        G, rows, cols = _as_dosages(G_ref, "G_ref")
        n, p = G.shape
        pops = _labels(populations, n, "populations")
        self._check_params(n)

        names, counts = np.unique(pops, return_counts=True)
        problems = []
        if len(names) < 2:
            problems.append(f"the reference has {len(names)} population "
                            f"({_shown(names)}); at least 2 are needed to assign one")
        small = [f"{nm} ({c})" for nm, c in zip(names, counts, strict=True)
                 if c < self.min_samples_per_pop]
        if small:
            problems.append(f"populations with fewer than {self.min_samples_per_pop} reference "
                            f"samples: {_shown(small)}")
        all_missing = np.nonzero(np.isnan(G).all(axis=0))[0]
        if len(all_missing):
            where = (cols[all_missing] if cols is not None else all_missing + 1)
            problems.append(f"{len(all_missing)} variant(s) have no called genotype in the "
                            f"reference: {'' if cols is not None else 'columns '}"
                            f"{_shown(list(where))}")
        if problems:
            raise ValidationError(
                problems,
                fix="use a reference panel with ≥ 2 populations of at least "
                    f"{self.min_samples_per_pop} samples each (or lower min_samples_per_pop), "
                    "and drop variants that are never called",
            )

        freq = np.nanmean(G, axis=0) / 2.0
        scale = np.sqrt(2.0 * freq * (1.0 - freq))
        informative = scale > 1e-12
        if informative.sum() < 2:
            raise ValidationError(
                [f"only {int(informative.sum())} of {p} variants vary in the reference"],
                fix="give genotypes at polymorphic variants",
            )
        scale = np.where(informative, scale, 0.0)
        self.allele_freq_ = freq
        self.scale_ = scale
        self.informative_ = informative
        self.n_features_in_ = p
        if cols is not None:
            self.feature_names_in_ = np.asarray(cols, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

        # PCA through the n × n Gram matrix, accumulated over blocks of variants: the
        # standardised genotypes are never held whole (n ≪ p for reference panels)
        inf_idx = np.nonzero(informative)[0]
        gram = np.zeros((n, n))
        for block in _blocks(inf_idx):
            Xb = self._standardise(G[:, block], block)
            gram += Xb @ Xb.T
        lam, W = np.linalg.eigh(gram)
        lam, W = np.clip(lam[::-1], 0.0, None), W[:, ::-1]
        rank = int(np.sum(lam > lam[0] * 1e-10))
        k = self.n_components
        if rank < k:
            raise ValidationError(
                [f"the standardised reference genotypes have rank {rank}, fewer than "
                 f"n_components={k}"],
                fix="lower n_components or give more (distinct) samples and variants",
            )
        # OADP works on 2k dimensions for the augmented fit and updates 4k singular triplets
        q = min(4 * k, rank)
        self.oadp_dims_ = (min(2 * k, rank), q)
        s = np.sqrt(lam[:q])
        U = W[:, :q]
        U = U * np.sign(U[np.abs(U).argmax(axis=0), np.arange(q)])  # deterministic signs
        V = np.empty((len(inf_idx), q))
        for j, block in enumerate(_blocks(inf_idx)):
            Xb = self._standardise(G[:, block], block)
            V[j * _BLOCK: j * _BLOCK + len(block)] = (Xb.T @ U) / s
        self.components_ = V
        self.singular_values_ = s
        self.left_vectors_ = U
        self.explained_variance_ratio_ = lam[:k] / lam.sum()
        pc_names = [f"PC{i + 1}" for i in range(k)]
        index = rows if rows is not None else pd.RangeIndex(n)
        self.sample_ids_ = index
        self.pcs_ = pd.DataFrame(U[:, :k] * s[:k], index=index, columns=pc_names)
        self.populations_ = pops
        self.classes_ = names

        P = self.pcs_.to_numpy()[:, : self.n_pcs_assign]
        self.classifier_ = RandomForestClassifier(
            n_estimators=self.n_estimators, random_state=self.seed, n_jobs=self.n_jobs
        ).fit(P, pops)
        self.covariance_ = EmpiricalCovariance().fit(P)
        self.reference_assignment_ = self._assign(self.pcs_)
        return self

    # -- projection -----------------------------------------------------------------------

    def _check_fitted(self) -> None:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "classifier_")

    def _standardise(self, G: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """``(g − 2p) / sqrt(2p(1 − p))`` on informative variants; a missing call gives 0.

        ``G`` holds all variants, or only ``columns`` (indices into the variants) of them.
        """
        if columns is None:
            columns = np.nonzero(self.informative_)[0]
            G = G[:, columns]
        X = (G - 2.0 * self.allele_freq_[columns]) / self.scale_[columns]
        return np.nan_to_num(X, nan=0.0, copy=False)  # missing call → reference mean

    def _align(self, G) -> tuple[np.ndarray, pd.Index]:
        arr, rows, cols = _as_dosages(G, "G")
        names = getattr(self, "feature_names_in_", None)
        if names is not None and cols is not None:
            missing = pd.Index(names).difference(cols)
            if len(missing):
                raise ValidationError(
                    [f"{len(missing)} reference variant(s) are absent from G: "
                     f"{_shown(list(missing))}"],
                    fix="give the target genotypes at every reference variant (NaN where "
                        "uncalled)",
                )
            arr = pd.DataFrame(arr, columns=cols).loc[:, list(names)].to_numpy(dtype=float)
        elif arr.shape[1] != self.n_features_in_:
            raise ValidationError(
                [f"G has {arr.shape[1]} variants, the reference {self.n_features_in_}"],
                fix="give the target genotypes at the reference variants, in the reference "
                    "order (or pass DataFrames with variant names as columns on both sides)",
            )
        return arr, rows if rows is not None else pd.RangeIndex(arr.shape[0])

    def _oadp_one(self, w: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """PCs of one standardised sample by online augmentation, decomposition, Procrustes.

        ``Y`` is the reference PC matrix the augmented scores are mapped onto.
        """
        k, d = self.n_components, self.oadp_dims_[0]
        U, s = self.left_vectors_, self.singular_values_
        scores_ref, score_new = _augment(U, s, self.components_, w, d)
        # the free (d − k) target coordinates start at the reference's own next PCs
        R, scale, c = _procrustes_pad(Y, scores_ref, U[:, k:d] * s[k:d])
        return (scale * score_new @ R + c)[:k]

    def transform(self, G, *, projection: str | None = None) -> pd.DataFrame:
        """Principal-component scores of new samples in the reference PC space.

        Parameters
        ----------
        G
            Allele dosages, samples × variants, with the reference's variants (same order,
            or matched by column name when both are DataFrames); NaN = missing call.
        projection
            Override the estimator's ``projection`` (``"oadp"`` or ``"simple"``).

        Returns
        -------
        DataFrame
            ``PC1 … PCk``, indexed like ``G`` (its index, or 0 … n−1).
        """
        self._check_fitted()
        method = self.projection if projection is None else projection
        if method not in _PROJECTIONS:
            raise ValidationError([f"projection={method!r} is not one of {_PROJECTIONS}"],
                                  fix="use 'oadp' or 'simple'")
        arr, index = self._align(G)
        k = self.n_components
        pcs = np.zeros((len(arr), k))
        Y = self.pcs_.to_numpy()
        for rows in _blocks(np.arange(len(arr)), 1024):  # bounded memory for big cohorts
            X = self._standardise(arr[rows])
            if method == "simple":
                pcs[rows] = X @ self.components_[:, :k]
            else:
                pcs[rows] = np.vstack([self._oadp_one(x, Y) for x in X])
        return pd.DataFrame(pcs, index=index, columns=list(self.pcs_.columns))

    # -- population similarity ------------------------------------------------------------

    def _assign(self, pcs: pd.DataFrame) -> pd.DataFrame:
        P = pcs.to_numpy(dtype=float)[:, : self.n_pcs_assign]
        proba = self.classifier_.predict_proba(P)
        out = pd.DataFrame(proba, index=pcs.index,
                           columns=[f"RF_P_{c}" for c in self.classifier_.classes_])
        best = proba.argmax(axis=1)
        out["MostSimilarPop"] = self.classifier_.classes_[best]
        out["MostSimilarPop_LowConfidence"] = proba.max(axis=1) < self.pop_threshold
        d2 = self.covariance_.mahalanobis(P)  # squared distance to the whole reference
        out["Mahalanobis_P_ALL"] = stats.chi2.sf(d2, self.n_pcs_assign)
        return out

    def predict(self, G=None, *, pcs: pd.DataFrame | np.ndarray | None = None) -> pd.DataFrame:
        """The most similar reference population of each sample.

        Parameters
        ----------
        G
            Allele dosages (samples × variants) to project first with :meth:`transform`.
        pcs
            Or PC scores already computed (``PC1 …`` columns, at least ``n_pcs_assign``).

        Returns
        -------
        DataFrame
            One row per sample: ``PC1 … PCk`` (when ``G`` is given), ``RF_P_<POP>`` (the
            random-forest probability of each population), ``MostSimilarPop`` (the most
            probable one), ``MostSimilarPop_LowConfidence`` (its probability is below
            ``pop_threshold``: the sample may belong to none of the reference populations or
            be admixed) and ``Mahalanobis_P_ALL`` (χ² tail probability, ``n_pcs_assign``
            degrees of freedom, of the squared Mahalanobis distance to the whole reference
            on those PCs: tiny values mark samples outside the reference PC space).
        """
        self._check_fitted()
        if (G is None) == (pcs is None):
            raise ValidationError(["give exactly one of G (genotypes) and pcs (PC scores)"],
                                  fix="call predict(G) or predict(pcs=...)")
        if pcs is not None:
            frame = pcs if isinstance(pcs, pd.DataFrame) else pd.DataFrame(np.asarray(pcs))
            if frame.shape[1] < self.n_pcs_assign:
                raise ValidationError(
                    [f"pcs has {frame.shape[1]} columns; n_pcs_assign={self.n_pcs_assign} "
                     "are needed"],
                    fix="pass the output of transform()",
                )
            named = [f"PC{i + 1}" for i in range(self.n_pcs_assign)]
            if set(named) <= set(frame.columns):
                return self._assign(frame[named])
            return self._assign(frame.iloc[:, : self.n_pcs_assign])
        scores = self.transform(G)
        return pd.concat([scores, self._assign(scores)], axis=1)


# --------------------------------------------------------------------------------------
# score adjustment
# --------------------------------------------------------------------------------------

def _score_frame(scores, name: str) -> pd.DataFrame:
    if isinstance(scores, pd.DataFrame) and {"IID", "PGS", "SUM"} <= set(scores.columns):
        # long form (pmed.genomics.prs.compute_scores, pgsc_calc): one row per sample × score
        dup = scores.duplicated(["IID", "PGS"])
        if dup.any():
            rows = np.nonzero(dup.to_numpy())[0] + 1
            raise ValidationError(
                [f"{name} repeats (IID, PGS) pairs in rows {_shown(rows)}"],
                fix="give one SUM per sample and score (aggregate FID duplicates first)",
            )
        order = pd.unique(scores["IID"])
        frame = scores.pivot(index="IID", columns="PGS", values="SUM").reindex(order)
        frame.columns.name = None
    elif isinstance(scores, pd.DataFrame):
        frame = scores.copy()
    elif isinstance(scores, pd.Series):
        frame = scores.to_frame(scores.name if scores.name is not None else "PGS")
    else:
        arr = np.asarray(scores, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValidationError([f"{name} must be 1-D or 2-D, got shape {arr.shape}"],
                                  fix="one row per sample, one column per score")
        cols = ["PGS"] if arr.shape[1] == 1 else [f"PGS{i + 1}" for i in range(arr.shape[1])]
        frame = pd.DataFrame(arr, columns=cols)
    try:
        frame = frame.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValidationError([f"{name} has non-numeric values ({exc})"],
                              fix="give numeric polygenic scores") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _by_id(obj, index: pd.Index, name: str, what: str):
    """Reorder ``obj`` (DataFrame / Series) to ``index`` when both carry sample IDs."""
    if not isinstance(obj, (pd.DataFrame, pd.Series)) or isinstance(obj.index, pd.RangeIndex) \
            or isinstance(index, pd.RangeIndex):
        return obj  # positional
    if obj.index.equals(index):
        return obj
    missing = index.difference(obj.index)
    if len(missing) or obj.index.has_duplicates:
        raise ValidationError(
            [f"{name} is indexed by sample ID but lacks {len(missing)} of the {what} samples"
             if len(missing) else f"{name} has duplicated sample IDs"],
            fix=f"give {name} for every {what} sample (same IDs as the scores), or pass it "
                "without an ID index to match by position",
        )
    return obj.loc[index]


def _pc_matrix(pcs, n: int, n_pcs: int, name: str) -> np.ndarray:
    if isinstance(pcs, pd.DataFrame):
        named = [f"PC{i + 1}" for i in range(n_pcs)]
        frame = pcs[named] if set(named) <= set(pcs.columns) else pcs.iloc[:, :n_pcs]
        arr = frame.to_numpy(dtype=float)
    else:
        arr = np.asarray(pcs, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValidationError([f"{name} has shape {arr.shape}; {n} rows are needed"],
                              fix="give one row of PC scores per sample, in the score order")
    if arr.shape[1] < n_pcs:
        raise ValidationError([f"{name} has {arr.shape[1]} PCs; n_pcs={n_pcs} are needed"],
                              fix="lower n_pcs or give more PCs")
    arr = arr[:, :n_pcs]  # DataFrames: PC1 … PCn by name when present, else the first columns
    if not np.isfinite(arr).all():
        rows = np.nonzero(~np.isfinite(arr).all(axis=1))[0] + 1
        raise ValidationError([f"{name} has missing or infinite values in rows {_shown(rows)}"],
                              fix="give finite PC scores for every sample")
    return arr


def _full_likelihood(y: np.ndarray, P: np.ndarray, theta0: np.ndarray) -> dict:
    """Maximum-likelihood fit of ``y ~ N(a + P·b, exp(c + P·d))``."""
    D = np.column_stack([np.ones(len(y)), P])
    m = D.shape[1]

    def nll(theta):
        mu, logv = D @ theta[:m], D @ theta[m:]
        return float(np.sum(0.5 * logv + 0.5 * (y - mu) ** 2 * np.exp(-logv)))

    def grad(theta):
        mu, logv = D @ theta[:m], D @ theta[m:]
        r, iv = y - mu, np.exp(-logv)
        return np.concatenate([-D.T @ (r * iv), D.T @ (0.5 - 0.5 * r**2 * iv)])

    res = optimize.minimize(nll, theta0, jac=grad, method="BFGS", options={"maxiter": 1000})
    return {"theta": res.x, "success": bool(res.success), "message": str(res.message),
            "nit": int(res.nit)}


def adjust_scores(
    ref_scores,
    ref_pcs,
    ref_populations,
    target_scores,
    target_pcs,
    target_populations,
    *,
    n_pcs: int = 4,
    methods: Sequence[str] = ADJUST_METHODS,
    norm2_2step: bool = False,
    gamma_alpha: float = 0.0,
    ref_train=None,
    include_reference: bool = False,
) -> pd.DataFrame:
    """Report polygenic scores relative to a reference panel, as pgsc_calc does.

    Parameters
    ----------
    ref_scores
        Scores of the reference samples: DataFrame (one column per score, named; or the long
        form ``IID, PGS, SUM`` of :func:`pmed.genomics.prs.compute_scores`), Series or array.
        Must be finite. When the scores and the PCs / populations are all pandas objects
        indexed by sample ID, they are matched by ID; otherwise by position.
    ref_pcs
        Reference PC scores (e.g. :attr:`AncestryReference.pcs_`), one row per sample.
    ref_populations
        Reference population labels (the empirical percentiles / Z use them).
    target_scores
        Scores of the target samples, with the same score columns. NaN propagates.
    target_pcs
        Target PC scores in the reference space (:meth:`AncestryReference.transform`).
    target_populations
        Most similar reference population of each target (``MostSimilarPop`` from
        :meth:`AncestryReference.predict`).
    n_pcs
        PCs used by the mean and variance adjustments (pgsc_calc's ``--n_normalization``,
        default 4).
    methods
        Any of ``"empirical"`` (percentile and Z in the most similar population), ``"mean"``
        (``Z_norm1``), ``"mean+var"`` (``Z_norm2``; implies the mean model).
    norm2_2step
        ``Z_norm2`` from the two-step estimate (linear mean model, then gamma GLM of the
        squared residuals) instead of the joint maximum-likelihood refit.
    gamma_alpha
        L2 penalty of the gamma GLM of the squared residuals (scikit-learn's
        ``GammaRegressor(alpha=...)``). pmed fits it unpenalised; pgsc_calc keeps
        scikit-learn's default 1.0, which shrinks the variance model. This only changes
        ``Z_norm2`` with ``norm2_2step=True``; the default joint refit merely starts there.
        Set 1.0 to reproduce pgsc_calc's two-step output.
    ref_train
        Optional boolean mask of the reference samples the adjustments are fitted on
        (pgsc_calc fits on unrelated samples only); all reference samples are still
        reported. Default: all.
    include_reference
        Also return the reference samples (``REFERENCE`` true), each against its own
        population, e.g. for :func:`pmed.genomics.prs.plots.score_distribution_plot`.

    Returns
    -------
    DataFrame
        Long form, one row per sample and score: ``IID``, ``PGS``, ``REFERENCE``, ``SUM``,
        ``MostSimilarPop``, then by method ``percentile_MostSimilarPop``,
        ``Z_MostSimilarPop``, ``Z_norm1``, ``Z_norm2`` (see the module docstring). A score
        without variance in the reference gets NaN in every adjusted column, as in pgsc_calc;
        a population without variance gets a NaN ``Z_MostSimilarPop``.
        ``attrs["models"]`` holds the fitted parameters (per-population mean, SD and
        percentiles 0–100; PC standardisation; regression coefficients; the likelihood fit's
        convergence), JSON-serialisable with :func:`pmed.io.jsonio.to_json`.
    """
    from sklearn.linear_model import GammaRegressor

    methods = tuple(methods)
    unknown = [m for m in methods if m not in ADJUST_METHODS]
    if unknown or not methods:
        raise ValidationError([f"unknown or no adjustment methods: {unknown or 'none'}"],
                              fix=f"choose among {ADJUST_METHODS}")
    if not (isinstance(n_pcs, (int, np.integer)) and n_pcs >= 1):
        raise ValidationError([f"n_pcs={n_pcs!r} must be a positive integer"],
                              fix="use e.g. n_pcs=4 (pgsc_calc's default)")

    ref = _score_frame(ref_scores, "ref_scores")
    tgt = _score_frame(target_scores, "target_scores")
    n_ref, n_tgt = len(ref), len(tgt)
    problems = []
    if set(ref.columns) != set(tgt.columns):
        problems.append(f"score columns differ: reference {_shown(list(ref.columns))}, "
                        f"target {_shown(list(tgt.columns))}")
    if not np.isfinite(ref.to_numpy()).all():
        bad = np.nonzero(~np.isfinite(ref.to_numpy()).all(axis=1))[0] + 1
        problems.append(f"reference scores are missing or infinite in rows {_shown(bad)}")
    if problems:
        raise ValidationError(problems, fix="score the reference and the targets with the same "
                                            "scoring files, and drop unscored reference samples")
    tgt = tgt[list(ref.columns)]
    ref_pcs = _by_id(ref_pcs, ref.index, "ref_pcs", "reference")
    target_pcs = _by_id(target_pcs, tgt.index, "target_pcs", "target")
    ref_populations = _by_id(ref_populations, ref.index, "ref_populations", "reference")
    target_populations = _by_id(target_populations, tgt.index, "target_populations", "target")
    ref_pop = _labels(ref_populations, n_ref, "ref_populations")
    tgt_pop = _labels(target_populations, n_tgt, "target_populations")
    pops = np.unique(ref_pop)
    foreign = sorted(set(tgt_pop) - set(pops))
    if foreign:
        raise ValidationError([f"target populations absent from the reference: "
                               f"{_shown(foreign)}"],
                              fix="assign targets with AncestryReference.predict on this "
                                  "reference")
    P_ref = _pc_matrix(ref_pcs, n_ref, n_pcs, "ref_pcs")
    P_tgt = _pc_matrix(target_pcs, n_tgt, n_pcs, "target_pcs")

    # the PCs, standardised with the reference mean and SD (ddof = 0), as pgsc_calc does
    if ref_train is None:
        train = np.ones(n_ref, dtype=bool)
    else:
        train = np.asarray(_by_id(ref_train, ref.index, "ref_train", "reference"), dtype=bool)
        if train.shape != (n_ref,):
            raise ValidationError([f"ref_train has shape {train.shape}; {n_ref} flags are needed"],
                                  fix="give one true/false flag per reference sample")
    few = [f"{pop} ({int(np.sum(train & (ref_pop == pop)))})" for pop in pops
           if np.sum(train & (ref_pop == pop)) < 2]
    if few:
        raise ValidationError([f"reference populations with fewer than 2 training samples: "
                               f"{_shown(few)}"],
                              fix="keep more reference samples in ref_train")
    pc_mean, pc_sd = P_ref[train].mean(axis=0), P_ref[train].std(axis=0)
    pc_sd = np.where(pc_sd > 0, pc_sd, 1.0)
    S_ref, S_tgt = (P_ref - pc_mean) / pc_sd, (P_tgt - pc_mean) / pc_sd

    models: dict[str, Any] = {"n_pcs": int(n_pcs), "methods": list(methods),
                              "pc_mean": pc_mean.tolist(), "pc_sd": pc_sd.tolist(), "scores": {}}
    frames = []
    for score in ref.columns:
        y_ref = ref[score].to_numpy()
        y_tgt = tgt[score].to_numpy()
        res_ref: dict[str, np.ndarray] = {}
        res_tgt: dict[str, np.ndarray] = {}
        model: dict[str, Any] = {}
        constant = not np.var(y_ref[train]) > 0

        if "empirical" in methods:
            res_ref["percentile_MostSimilarPop"] = np.full(n_ref, np.nan)
            res_tgt["percentile_MostSimilarPop"] = np.full(n_tgt, np.nan)
            res_ref["Z_MostSimilarPop"] = np.full(n_ref, np.nan)
            res_tgt["Z_MostSimilarPop"] = np.full(n_tgt, np.nan)
            model["empirical"] = {}
            for pop in pops if not constant else ():  # pgsc_calc skips constant scores
                dist = y_ref[train & (ref_pop == pop)]
                mean, sd = float(dist.mean()), float(dist.std())
                model["empirical"][str(pop)] = {
                    "n": int(len(dist)), "mean": mean, "sd": sd,
                    "percentiles": np.percentile(dist, np.arange(101)).tolist(),
                }
                for y, lab, res in ((y_ref, ref_pop, res_ref), (y_tgt, tgt_pop, res_tgt)):
                    sel = lab == pop
                    if not sel.any():
                        continue
                    vals = y[sel]
                    pct = np.full(len(vals), np.nan)
                    ok = np.isfinite(vals)
                    if ok.any():
                        pct[ok] = stats.percentileofscore(dist, vals[ok], kind="rank")
                    res["percentile_MostSimilarPop"][sel] = pct
                    res["Z_MostSimilarPop"][sel] = (vals - mean) / sd if sd > 0 else np.nan

        if "mean" in methods or "mean+var" in methods:
            res_ref["Z_norm1"] = np.full(n_ref, np.nan)
            res_tgt["Z_norm1"] = np.full(n_tgt, np.nan)
            if "mean+var" in methods:
                res_ref["Z_norm2"] = np.full(n_ref, np.nan)
                res_tgt["Z_norm2"] = np.full(n_tgt, np.nan)
            if not constant:
                offset = float(y_ref[train].mean())
                yc_ref, yc_tgt = y_ref - offset, y_tgt - offset
                D_ref = np.column_stack([np.ones(n_ref), S_ref])
                D_tgt = np.column_stack([np.ones(n_tgt), S_tgt])
                beta, *_ = np.linalg.lstsq(D_ref[train], yc_ref[train], rcond=None)
                r_ref = yc_ref - D_ref @ beta
                r_tgt = yc_tgt - D_tgt @ beta
                r_sd = float(r_ref[train].std())
                model["mean"] = {"pgs_offset": offset, "intercept": float(beta[0]),
                                 "coef": beta[1:].tolist(), "resid_sd": r_sd}
                if r_sd > 0:
                    res_ref["Z_norm1"] = r_ref / r_sd
                    res_tgt["Z_norm1"] = r_tgt / r_sd
                if "mean+var" in methods and r_sd > 0:
                    # fitted on the scale of Z_norm1 (residual SD 1), so that the optimiser's
                    # tolerances do not depend on the units of the score; parameters are
                    # reported on the score's own scale
                    log_var = 2.0 * np.log(r_sd)
                    z_train = r_ref[train] / r_sd
                    sq = (z_train - z_train.mean()) ** 2
                    sq = np.maximum(sq, np.finfo(float).tiny)  # gamma needs y > 0
                    gam = GammaRegressor(alpha=gamma_alpha, max_iter=1000).fit(S_ref[train], sq)
                    gamma_theta = np.concatenate([[gam.intercept_], gam.coef_])
                    if norm2_2step:
                        res_ref["Z_norm2"] = r_ref / r_sd / np.sqrt(np.exp(D_ref @ gamma_theta))
                        res_tgt["Z_norm2"] = r_tgt / r_sd / np.sqrt(np.exp(D_tgt @ gamma_theta))
                        model["mean+var"] = {"two_step": True,
                                             "var_intercept": float(gamma_theta[0] + log_var),
                                             "var_coef": gamma_theta[1:].tolist()}
                    else:
                        fit = _full_likelihood(yc_ref[train] / r_sd, S_ref[train],
                                               np.concatenate([beta / r_sd, gamma_theta]))
                        th = fit["theta"]
                        m = n_pcs + 1
                        res_ref["Z_norm2"] = (yc_ref / r_sd - D_ref @ th[:m]) / np.sqrt(
                            np.exp(D_ref @ th[m:]))
                        res_tgt["Z_norm2"] = (yc_tgt / r_sd - D_tgt @ th[:m]) / np.sqrt(
                            np.exp(D_tgt @ th[m:]))
                        model["mean+var"] = {
                            "two_step": False,
                            "mu_intercept": float(th[0] * r_sd),
                            "mu_coef": (th[1:m] * r_sd).tolist(),
                            "var_intercept": float(th[m] + log_var),
                            "var_coef": th[m + 1:].tolist(),
                            "converged": fit["success"], "message": fit["message"],
                            "iterations": fit["nit"],
                        }
                        if not fit["success"]:
                            warnings.warn(
                                f"score {score}: the mean+variance likelihood fit did not "
                                f"converge ({fit['message']}); Z_norm2 uses its last "
                                "estimate", RuntimeWarning, stacklevel=2)
        models["scores"][score] = model

        parts = [(tgt.index, y_tgt, tgt_pop, res_tgt, False)]
        if include_reference:
            parts.append((ref.index, y_ref, ref_pop, res_ref, True))
        for index, y, lab, res, is_ref in parts:
            frames.append(pd.DataFrame({
                "IID": np.asarray(index), "PGS": score, "REFERENCE": is_ref, "SUM": y,
                "MostSimilarPop": lab, **res,
            }))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["models"] = models
    return out
