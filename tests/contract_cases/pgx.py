"""Contract case for the ``pgx`` domain: a two-patient VCF at CYP2C19/CYP2C9 plus outside calls.

The VCF is written here (no reference data needed): P1 is CYP2C19 *1/*2, P2 *2/*2 (poor
metaboliser); CYP2C9 rs1057910 (*3) gives an activity score; the outside-call TSV adds CYP2D6.
"""

from __future__ import annotations

from pathlib import Path

ENTRY = "pmed.genomics.pgx.run_pgx"
INPUT_ROLES = ["vcf", "outside_calls"]

VCF = """##fileformat=VCFv4.2
##contig=<ID=chr10,length=133797422>
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP1\tP2
chr10\t94775367\trs12769205\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1
chr10\t94781859\trs4244285\tG\tA\t.\tPASS\t.\tGT\t0/1\t1/1
chr10\t94842866\trs3758581\tA\tG\t.\tPASS\t.\tGT\t1/1\t1/1
chr10\t94981296\trs1057910\tA\tC\t.\tPASS\t.\tGT\t0/0\t0/1
"""

OUTSIDE = "CYP2D6\tCYP2D6*1/CYP2D6*4\n"


def run(tmp_path: Path):
    from pmed.genomics.pgx import run_pgx

    vcf = tmp_path / "two.vcf"
    vcf.write_text(VCF)
    outside = tmp_path / "outside.tsv"
    outside.write_text(OUTSIDE)
    return run_pgx(vcf, genes=["CYP2C19", "CYP2C9"], missing_to_ref=True, outside_calls=outside)
