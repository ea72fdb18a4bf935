"""PCA of a labelled reference panel and projection of new samples into its PC space.

:class:`AncestryReference` standardises the panel's dosages, decomposes them through the
samples' Gram matrix, projects new samples (``"oadp"`` or ``"simple"``, see
:mod:`pmed.genomics.prs.ancestry`) and, through :class:`~pmed.genomics.prs.ancestry.assign.
PopulationAssigner`, gives each its most similar reference population.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from pmed.errors import ValidationError
from pmed.genomics.prs.ancestry._inputs import _BLOCK, _as_dosages, _blocks, _labels, _shown
from pmed.genomics.prs.ancestry.assign import PopulationAssigner
from pmed.genomics.prs.ancestry.oadp import _augment, _procrustes_pad

__all__ = ["AncestryReference"]

_PROJECTIONS = ("oadp", "simple")


class AncestryReference(PopulationAssigner, BaseEstimator):
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

        self._fit_assignment(pops)
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
