"""Contract case for polygenic scores: a small VCF and a PGS Catalog scoring file made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ENTRY = "pmed.genomics.prs.run_prs"
INPUT_ROLES = ("targets", "scorefiles")


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    from pmed.io import write_vcf

    rng = np.random.default_rng(5)
    n_var, n_samples = 60, 24
    ref = rng.choice(list("AC"), n_var)
    alt = np.where(ref == "A", "G", "T")  # no strand-ambiguous pairs: every variant matches
    variants = pd.DataFrame({"chrom": "1", "pos": np.arange(1, n_var + 1) * 1000,
                             "id": [f"rs{100 + i}" for i in range(n_var)], "ref": ref, "alt": alt})
    geno = (rng.random((n_var, n_samples, 2)) < rng.uniform(0.1, 0.6, n_var)[:, None, None])
    vcf = write_vcf(tmp_path / "cohort.vcf.gz", variants, geno.astype(int),
                    [f"p{i:02d}" for i in range(n_samples)], file_date=None)
    rows = pd.DataFrame({"rsID": variants["id"], "chr_name": variants["chrom"],
                         "chr_position": variants["pos"], "effect_allele": variants["alt"],
                         "other_allele": variants["ref"],
                         "effect_weight": rng.normal(0, 0.2, n_var).round(6)})
    sf = tmp_path / "PGS_CONTRACT.txt"
    sf.write_text("#format_version=2.0\n#pgs_id=PGS_CONTRACT\n#genome_build=GRCh38\n"
                  + rows.to_csv(sep="\t", index=False))
    return vcf, sf


def run(tmp_path: Path):
    from pmed.genomics.prs import run_prs

    vcf, sf = _inputs(tmp_path)
    return run_prs([vcf], [sf], seed=0)
