"""Polygenic scores: PGS Catalog scoring files × PLINK/VCF genotypes, matched like pgsc_calc,
scored like plink2 ``--score``.

Typical use::

    from pmed.genomics import prs
    result = prs.compute_scores(["cohort.pgen"], ["PGS000018.txt.gz"], out="prs-out")
    result.scores          # long table IID, PGS, SUM, DENOM, AVG
    result.match.report    # per score: matched / excluded (why) / unmatched, overlap

The pieces are usable alone: :func:`read_scorefile`, :func:`open_target`, :func:`match_variants`,
:func:`score_targets`.
"""

from pmed.genomics.prs.api import PRSResult, compute_scores, scores_to_block
from pmed.genomics.prs.match import MATCH_TYPES, MatchResult, match_variants
from pmed.genomics.prs.score import score_targets
from pmed.genomics.prs.scorefile import ScoringFile, read_scorefile
from pmed.genomics.prs.targets import Target, open_target, open_targets

__all__ = [
    "compute_scores",
    "PRSResult",
    "scores_to_block",
    "read_scorefile",
    "ScoringFile",
    "open_target",
    "open_targets",
    "Target",
    "match_variants",
    "MatchResult",
    "MATCH_TYPES",
    "score_targets",
]
