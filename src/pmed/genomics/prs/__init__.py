"""Polygenic scores: PGS Catalog scoring files × PLINK/VCF genotypes, matched like pgsc_calc,
scored like plink2 ``--score``.

Typical use::

    from pmed.genomics import prs
    result = prs.run_prs(["cohort.pgen"], ["PGS000018.txt.gz"])
    result.scores          # long table IID, PGS, SUM, DENOM, AVG
    result.match.report    # per score: matched / excluded (why) / unmatched, overlap
    result.write("prs-out")                       # scores.tsv, match_report.tsv, provenance.json …
    cohort.add_block("prs", result.to_block())    # one column prs_<PGS> per score

The pieces are usable alone: :func:`read_scorefile`, :func:`open_target`, :func:`match_variants`,
:func:`score_targets`.
"""

from pmed.genomics.prs.api import (
    PRSResult,
    compute_scores,
    read_block,
    run_prs,
    scores_to_block,
    write_results,
)
from pmed.genomics.prs.match import MATCH_TYPES, MatchResult, match_variants
from pmed.genomics.prs.score import score_targets
from pmed.genomics.prs.scorefile import ScoringFile, read_scorefile
from pmed.genomics.prs.targets import Target, open_target, open_targets

__all__ = [
    "run_prs",
    "read_block",
    "write_results",
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
