"""Pharmacogenomics: PharmCAT-compatible star-allele calls, phenotypes and recommendations.

``run_pgx`` (the domain entry point; ``call_vcf`` is its older name) reads a GRCh38 VCF,
matches the named alleles of the genes PharmCAT calls from VCF (ABCG2, CACNA1S, CFTR, CYP2B6,
CYP2C19, CYP2C9, CYP3A4, CYP3A5, CYP4F2, DPYD, G6PD, IFNL3, NAT2, NUDT15, RYR1, SLCO1B1, TPMT,
UGT1A1, VKORC1; plus CYP2C8 from PyPGx's allele table) with PharmCAT's semantics, adds outside
calls (CYP2D6, HLA), looks up phenotypes/activity scores and matches CPIC and DPWG
recommendations.
One :class:`PgxResult` covers every sample: ``cohort.add_block("pgx", run_pgx(vcf).to_block())``
gives the patient-indexed features (``call_cohort`` is the older form), ``.write(out)`` the
output folder with ``provenance.json``; :func:`pmed.genomics.pgx.api.read_block` reads it back.
Data: PharmCAT 3.1.1 definitions (CPIC CC0, ClinPGx CC BY-SA 4.0) and PharmCAT 2.12.0
guidelines; see ``data/ATTRIBUTION.md``.
"""

from pmed.genomics.pgx._data import ALL_GENES, MATCHER_GENES, data_version
from pmed.genomics.pgx.call import (
    PgxResult,
    call_cohort,
    call_genotypes,
    call_vcf,
    features_table,
    read_outside_calls,
    run_pgx,
    write_results,
)
from pmed.genomics.pgx.matcher import GeneCall, match_gene
from pmed.genomics.pgx.phenotype import phenotype_for
from pmed.genomics.pgx.vcf import read_pgx_vcf

__all__ = [
    "ALL_GENES",
    "MATCHER_GENES",
    "data_version",
    "run_pgx",
    "PgxResult",
    "GeneCall",
    "call_vcf",
    "call_genotypes",
    "call_cohort",
    "features_table",
    "read_outside_calls",
    "write_results",
    "match_gene",
    "phenotype_for",
    "read_pgx_vcf",
]
