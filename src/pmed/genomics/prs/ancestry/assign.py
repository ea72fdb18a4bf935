"""Population similarity on reference PCs: a random forest and the Mahalanobis distance.

:class:`PopulationAssigner` is the part of :class:`~pmed.genomics.prs.ancestry.AncestryReference`
that learns the reference populations from their first ``n_pcs_assign`` PCs and reports, for
any sample, ``RF_P_<POP>``, ``MostSimilarPop`` (and whether it is low-confidence) and
``Mahalanobis_P_ALL``, as pgsc_calc does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from pmed.errors import ValidationError

__all__ = ["PopulationAssigner"]


class PopulationAssigner:
    """Mixin: needs ``pcs_``, ``n_pcs_assign``, ``n_estimators``, ``seed``, ``n_jobs``,
    ``pop_threshold``, ``transform`` and ``_check_fitted`` from the estimator it is mixed into."""

    def _fit_assignment(self, pops: np.ndarray) -> None:
        """Fit the classifier and the reference covariance on the reference PCs."""
        from sklearn.covariance import EmpiricalCovariance
        from sklearn.ensemble import RandomForestClassifier

        P = self.pcs_.to_numpy()[:, : self.n_pcs_assign]
        self.classifier_ = RandomForestClassifier(
            n_estimators=self.n_estimators, random_state=self.seed, n_jobs=self.n_jobs
        ).fit(P, pops)
        self.covariance_ = EmpiricalCovariance().fit(P)
        self.reference_assignment_ = self._assign(self.pcs_)

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
