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

The work is split along its jobs:

* :mod:`~pmed.genomics.prs.ancestry.pca` — :class:`AncestryReference`: PCA of the panel and
  projection of new samples (the OADP algebra is in :mod:`~pmed.genomics.prs.ancestry.oadp`);
* :mod:`~pmed.genomics.prs.ancestry.assign` — population similarity on the PCs;
* :mod:`~pmed.genomics.prs.ancestry.adjust` — :func:`adjust_scores`, score normalisation.
"""

from __future__ import annotations

from pmed.genomics.prs.ancestry.adjust import ADJUST_METHODS, adjust_scores
from pmed.genomics.prs.ancestry.oadp import (  # noqa: F401 - importable here, as before the split
    _augment,
    _procrustes,
    _procrustes_pad,
)
from pmed.genomics.prs.ancestry.pca import AncestryReference

__all__ = ["AncestryReference", "adjust_scores", "ADJUST_METHODS"]
