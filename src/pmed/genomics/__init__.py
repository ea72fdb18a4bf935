"""Genomics: polygenic scores (:mod:`pmed.genomics.prs`) and pharmacogenomics (:mod:`pmed.genomics.pgx`).

Heavy readers (pgenlib, cyvcf2) are imported lazily inside the functions that use them,
so ``import pmed.genomics`` costs nothing beyond the core.
"""

__all__: list[str] = []
