"""Small synthetic genotype files and scoring files for the PRS tests (known answers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pmed.io import write_vcf

BASES = np.array(list("ACGT"))
COMP = {"A": "T", "C": "G", "G": "C", "T": "A"}


def random_snvs(n: int, rng, *, chrom: str = "1", ambiguous: bool = False) -> pd.DataFrame:
    """n biallelic SNVs on one chromosome; strand-unambiguous unless asked."""
    ref, alt = [], []
    while len(ref) < n:
        a, b = rng.choice(BASES, 2, replace=False)
        if not ambiguous and COMP[a] == b:
            continue
        ref.append(a)
        alt.append(b)
    pos = np.sort(rng.choice(np.arange(10_000, 10_000 + 200 * n), n, replace=False))
    return pd.DataFrame({"chrom": chrom, "pos": pos, "id": [f"rs{1000 + i}" for i in range(n)],
                         "ref": ref, "alt": alt})


def balding_nichols(n_per_pop: dict[str, int], n_variants: int, rng, *, fst: float = 0.08):
    """Genotypes (variants × samples × 2 haplotypes) for populations drifting from one ancestor."""
    p = rng.uniform(0.1, 0.9, n_variants)
    a, b = p * (1 - fst) / fst, (1 - p) * (1 - fst) / fst
    haps, labels = [], []
    for pop, n in n_per_pop.items():
        q = rng.beta(a, b)
        haps.append((rng.random((n_variants, n, 2)) < q[:, None, None]).astype(int))
        labels += [pop] * n
    return np.concatenate(haps, axis=1), np.array(labels)


def write_target(path: Path, variants: pd.DataFrame, geno: np.ndarray, samples, *,
                 missing: float = 0.0, rng=None, reference: str = "GRCh38") -> Path:
    g = geno.copy()
    if missing:
        m = rng.random(g.shape[:2]) < missing
        g[m] = -1
    return write_vcf(path, variants, g, list(samples), reference=reference, file_date=None)


def write_pgs_catalog(path: Path, rows: pd.DataFrame, *, pgs_id: str = "PGS_TEST",
                      build: str | None = "GRCh38", extra_header: str = "") -> Path:
    head = ["###PGS CATALOG SCORING FILE - test", "#format_version=2.0", f"#pgs_id={pgs_id}"]
    if build:
        head.append(f"#genome_build={build}")
    if extra_header:
        head.append(extra_header)
    path.write_text("\n".join(head) + "\n" + rows.to_csv(sep="\t", index=False))
    return path
