"""Genotypes of the synthetic cohort: the variant catalogue and phased genotype draws.

Pharmacogene variants (CYP2C19, CYP2C9, SLCO1B1, VKORC1) at PharmCAT 3.1.1's GRCh38 positions,
lipid/CAD trait SNPs with published effect sizes, null background SNPs, and the haplotype-aware
draw of phased genotypes (CYP2C19 *1/*2/*3/*17, CYP2C9 *1/*2/*3, APOE e2/e3/e4 as haplotypes;
everything else under Hardy-Weinberg equilibrium).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pmed.datasets.synthetic.model import _RESPONSE, PRS_SCALE
from pmed.io.vcf import GRCH38_CONTIG_LENGTHS

__all__ = ["PHARMACOGENE_VARIANTS", "TRAIT_VARIANTS"]


#: Pharmacogene variants: GRCh38 position/alleles as in PharmCAT 3.1.1 pharmcat_positions.vcf.
#: ``alt_freq`` is the approximate European frequency of the ALT (variant) allele.
PHARMACOGENE_VARIANTS: tuple[dict[str, Any], ...] = (
    {"chrom": "chr10", "pos": 94761900, "id": "rs12248560", "ref": "C", "alt": "T",
     "gene": "CYP2C19", "effect": "CYP2C19*17: increased function", "alt_freq": 0.21},
    {"chrom": "chr10", "pos": 94780653, "id": "rs4986893", "ref": "G", "alt": "A",
     "gene": "CYP2C19", "effect": "CYP2C19*3: no function", "alt_freq": 0.005},
    {"chrom": "chr10", "pos": 94781859, "id": "rs4244285", "ref": "G", "alt": "A",
     "gene": "CYP2C19", "effect": "CYP2C19*2: no function", "alt_freq": 0.15},
    {"chrom": "chr10", "pos": 94775367, "id": "rs12769205", "ref": "A", "alt": "G",
     "gene": "CYP2C19", "effect": "CYP2C19*2-defining intronic variant (c.332-23A>G), on every *2 haplotype",
     "alt_freq": 0.15},
    # GRCh38's base here is the rare CYP2C19*38 allele: nearly every haplotype carries the ALT,
    # so a variant-only VCF lists it (1|1) and the *1/*2/*17 calls need it
    {"chrom": "chr10", "pos": 94842866, "id": "rs3758581", "ref": "A", "alt": "G",
     "gene": "CYP2C19", "effect": "CYP2C19 c.991A>G (I331V): on *1, *2, *3 and *17; reference = *38",
     "alt_freq": 1.0},
    {"chrom": "chr10", "pos": 94942290, "id": "rs1799853", "ref": "C", "alt": "T",
     "gene": "CYP2C9", "effect": "CYP2C9*2: decreased function", "alt_freq": 0.12},
    {"chrom": "chr10", "pos": 94981296, "id": "rs1057910", "ref": "A", "alt": "C",
     "gene": "CYP2C9", "effect": "CYP2C9*3: no function", "alt_freq": 0.07},
    {"chrom": "chr12", "pos": 21178615, "id": "rs4149056", "ref": "T", "alt": "C",
     "gene": "SLCO1B1", "effect": "SLCO1B1*5 (c.521T>C): decreased function", "alt_freq": 0.15},
    {"chrom": "chr16", "pos": 31096368, "id": "rs9923231", "ref": "C", "alt": "T",
     "gene": "VKORC1", "effect": "VKORC1 -1639G>A: lower warfarin dose", "alt_freq": 0.39},
)  # fmt: skip

#: Trait SNPs: ``beta_ldl`` is mmol/L per ALT allele, ``logor_cad`` the published per-ALT-allele
#: log odds ratio of CAD (before :data:`PRS_SCALE`). Frequencies approximate European values.
TRAIT_VARIANTS: tuple[dict[str, Any], ...] = (
    {"chrom": "chr1", "pos": 55039974, "id": "rs11591147", "ref": "G", "alt": "T",
     "gene": "PCSK9", "alt_freq": 0.018, "beta_ldl": -0.45, "logor_cad": -0.30,
     "effect": "PCSK9 R46L loss of function: LDL-lowering, CAD-protective"},
    {"chrom": "chr1", "pos": 62652525, "id": "rs10889353", "ref": "A", "alt": "C",
     "gene": "ANGPTL3", "alt_freq": 0.32, "beta_ldl": -0.03, "logor_cad": -0.03,
     "effect": "ANGPTL3: lipid-lowering"},
    {"chrom": "chr1", "pos": 109275908, "id": "rs646776", "ref": "C", "alt": "T",
     "gene": "SORT1", "alt_freq": 0.78, "beta_ldl": 0.14, "logor_cad": 0.10,
     "effect": "CELSR2/PSRC1/SORT1 1p13: LDL-raising"},
    {"chrom": "chr1", "pos": 222650187, "id": "rs17465637", "ref": "A", "alt": "C",
     "gene": "MIA3", "alt_freq": 0.74, "beta_ldl": 0.0, "logor_cad": 0.12,
     "effect": "MIA3 1q41: CAD risk"},
    {"chrom": "chr2", "pos": 21041028, "id": "rs1367117", "ref": "G", "alt": "A",
     "gene": "APOB", "alt_freq": 0.30, "beta_ldl": 0.10, "logor_cad": 0.06,
     "effect": "APOB T98I: LDL-raising"},
    {"chrom": "chr2", "pos": 27508073, "id": "rs1260326", "ref": "T", "alt": "C",
     "gene": "GCKR", "alt_freq": 0.60, "beta_ldl": -0.02, "logor_cad": 0.0,
     "effect": "GCKR P446L: triglycerides (little LDL or CAD effect)"},
    {"chrom": "chr2", "pos": 43845437, "id": "rs4299376", "ref": "T", "alt": "G",
     "gene": "ABCG5/8", "alt_freq": 0.32, "beta_ldl": 0.07, "logor_cad": 0.05,
     "effect": "ABCG5/8: LDL-raising (sterol absorption)"},
    {"chrom": "chr5", "pos": 75360714, "id": "rs12916", "ref": "T", "alt": "C",
     "gene": "HMGCR", "alt_freq": 0.40, "beta_ldl": 0.06, "logor_cad": 0.04,
     "effect": "HMGCR (statin target): LDL-raising"},
    {"chrom": "chr6", "pos": 12903725, "id": "rs9349379", "ref": "A", "alt": "G",
     "gene": "PHACTR1", "alt_freq": 0.40, "beta_ldl": 0.0, "logor_cad": 0.12,
     "effect": "PHACTR1/EDN1 6p24: CAD risk"},
    {"chrom": "chr6", "pos": 160589086, "id": "rs10455872", "ref": "A", "alt": "G",
     "gene": "LPA", "alt_freq": 0.07, "beta_ldl": 0.05, "logor_cad": 0.40,
     "effect": "LPA: raised lipoprotein(a), CAD risk"},
    {"chrom": "chr8", "pos": 19962213, "id": "rs328", "ref": "C", "alt": "G",
     "gene": "LPL", "alt_freq": 0.10, "beta_ldl": 0.0, "logor_cad": -0.10,
     "effect": "LPL S447X gain of function: triglyceride-lowering, CAD-protective"},
    {"chrom": "chr9", "pos": 22125504, "id": "rs1333049", "ref": "G", "alt": "C",
     "gene": "CDKN2B-AS1", "alt_freq": 0.47, "beta_ldl": 0.0, "logor_cad": 0.22,
     "effect": "9p21 (CDKN2B-AS1): CAD risk, independent of lipids"},
    {"chrom": "chr11", "pos": 116778201, "id": "rs964184", "ref": "G", "alt": "C",
     "gene": "APOA5/APOC3", "alt_freq": 0.87, "beta_ldl": -0.03, "logor_cad": -0.12,
     "effect": "APOA5-APOC3 cluster: triglyceride-lowering, CAD-protective"},
    {"chrom": "chr12", "pos": 111446804, "id": "rs3184504", "ref": "T", "alt": "C",
     "gene": "SH2B3", "alt_freq": 0.52, "beta_ldl": 0.0, "logor_cad": -0.07,
     "effect": "SH2B3 W262R: CAD-protective"},
    {"chrom": "chr16", "pos": 56959412, "id": "rs3764261", "ref": "C", "alt": "A",
     "gene": "CETP", "alt_freq": 0.31, "beta_ldl": -0.03, "logor_cad": -0.05,
     "effect": "CETP: HDL-raising, slightly LDL-lowering"},
    {"chrom": "chr19", "pos": 11091630, "id": "rs6511720", "ref": "G", "alt": "T",
     "gene": "LDLR", "alt_freq": 0.11, "beta_ldl": -0.20, "logor_cad": -0.12,
     "effect": "LDLR: LDL-lowering, CAD-protective"},
    {"chrom": "chr19", "pos": 44908684, "id": "rs429358", "ref": "T", "alt": "C",
     "gene": "APOE", "alt_freq": 0.15, "beta_ldl": 0.18, "logor_cad": 0.12,
     "effect": "APOE e4-defining: LDL-raising, CAD risk"},
    {"chrom": "chr19", "pos": 44908822, "id": "rs7412", "ref": "C", "alt": "T",
     "gene": "APOE", "alt_freq": 0.08, "beta_ldl": -0.50, "logor_cad": -0.20,
     "effect": "APOE e2-defining: LDL-lowering, CAD-protective"},
)  # fmt: skip

# Genes whose variants are drawn as haplotypes: haplotype → frequency, and the haplotypes that
# carry each variant's ALT allele. Frequencies sum to 1 and match the variants' alt_freq.
_HAPLOTYPES: dict[str, dict[str, Any]] = {
    "CYP2C19": {
        "freq": {"*1": 0.635, "*2": 0.15, "*3": 0.005, "*17": 0.21},
        "alt_on": {"rs4244285": ("*2",), "rs12769205": ("*2",), "rs4986893": ("*3",),
                   "rs12248560": ("*17",),
                   "rs3758581": ("*1", "*2", "*3", "*17")},
    },
    "CYP2C9": {
        "freq": {"*1": 0.81, "*2": 0.12, "*3": 0.07},
        "alt_on": {"rs1799853": ("*2",), "rs1057910": ("*3",)},
    },
    "APOE": {
        "freq": {"e2": 0.08, "e3": 0.77, "e4": 0.15},
        "alt_on": {"rs7412": ("e2",), "rs429358": ("e4",)},
    },
}


def _chrom_sort_key(chrom: str) -> int:
    return list(GRCH38_CONTIG_LENGTHS).index(chrom.removeprefix("chr"))


def _build_variants(n_background: int, rng: np.random.Generator) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for v in PHARMACOGENE_VARIANTS:
        is_lof = v["id"] in ("rs4244285", "rs4986893")
        response = (
            _RESPONSE["clopidogrel_x_cyp2c19_lof_alleles"]
            if is_lof
            else _RESPONSE["clopidogrel_x_cyp2c19_star17_alleles"]
            if v["id"] == "rs12248560"
            else 0.0
        )
        rows.append(
            {**v, "role": "pharmacogene", "beta_ldl": 0.0, "logor_cad": 0.0,
             "logor_response_clopidogrel": response}
        )  # fmt: skip
    for v in TRAIT_VARIANTS:
        rows.append(
            {**v, "role": "trait", "logor_cad": round(v["logor_cad"] * PRS_SCALE, 6),
             "logor_response_clopidogrel": 0.0}
        )  # fmt: skip
    taken = {(r["chrom"], r["pos"]) for r in rows}
    autosomes = [str(c) for c in range(1, 23)]
    lengths = np.array([GRCH38_CONTIG_LENGTHS[c] for c in autosomes], dtype=float)
    bases = np.array(list("ACGT"))
    while len(rows) < len(PHARMACOGENE_VARIANTS) + len(TRAIT_VARIANTS) + n_background:
        c = autosomes[rng.choice(22, p=lengths / lengths.sum())]
        # Stay 1 Mb clear of the chromosome ends (telomeres, gaps).
        pos = int(rng.integers(1_000_000, GRCH38_CONTIG_LENGTHS[c] - 1_000_000))
        ref, alt = rng.choice(bases, size=2, replace=False)
        maf = round(float(rng.uniform(0.05, 0.5)), 4)
        chrom = f"chr{c}"
        if (chrom, pos) in taken:
            continue
        taken.add((chrom, pos))
        rows.append(
            {"chrom": chrom, "pos": pos, "id": f"{chrom}:{pos}:{ref}:{alt}", "ref": str(ref),
             "alt": str(alt), "gene": "", "effect": "none (null SNP)", "alt_freq": maf,
             "role": "background", "beta_ldl": 0.0, "logor_cad": 0.0,
             "logor_response_clopidogrel": 0.0}
        )  # fmt: skip
    df = pd.DataFrame(rows)
    df["_k"] = df["chrom"].map(_chrom_sort_key)
    df = df.sort_values(["_k", "pos"], kind="stable").drop(columns="_k").reset_index(drop=True)
    cols = ["chrom", "pos", "id", "ref", "alt", "gene", "role", "effect", "alt_freq", "beta_ldl",
            "logor_cad", "logor_response_clopidogrel"]  # fmt: skip
    df = df[cols]
    df["pos"] = df["pos"].astype(np.int64)
    return df


def _draw_genotypes(
    variants: pd.DataFrame, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """True (unmasked) phased genotypes, and each haplotype gene's haplotype indices."""
    g = np.zeros((len(variants), n, 2), dtype=np.int8)
    index = {vid: i for i, vid in enumerate(variants["id"])}
    in_group: set[str] = set()
    haps: dict[str, np.ndarray] = {}
    for gene, spec in _HAPLOTYPES.items():
        names = list(spec["freq"])
        h = rng.choice(len(names), size=(n, 2), p=list(spec["freq"].values()))
        haps[gene] = h
        for vid, carriers in spec["alt_on"].items():
            carrier_idx = [names.index(c) for c in carriers]
            g[index[vid]] = np.isin(h, carrier_idx).astype(np.int8)
            in_group.add(vid)
    p = variants["alt_freq"].to_numpy()
    for i, vid in enumerate(variants["id"]):
        if vid not in in_group:
            g[i] = (rng.random((n, 2)) < p[i]).astype(np.int8)
    return g, haps


def _cpic_cyp2c19(lof: np.ndarray, s17: np.ndarray) -> np.ndarray:
    # CPIC 2022 clopidogrel guideline phenotypes from the allele function counts.
    out = np.full(lof.shape, "NM", dtype=object)
    out[(lof == 0) & (s17 == 1)] = "RM"
    out[(lof == 0) & (s17 == 2)] = "UM"
    out[lof == 1] = "IM"
    out[lof == 2] = "PM"
    return out
