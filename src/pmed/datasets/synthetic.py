"""A synthetic patient cohort with known ground truth, for the demo and the tests.

Patients carry a clinical history, demographics, lifestyle and environment, genotypes at real
GRCh38 positions, and three outcomes generated from documented equations:

``response`` (1 = adequate antiplatelet response / no event)
    A genotype-by-drug effect: each CYP2C19 loss-of-function allele (*2, *3) sharply lowers the
    chance of responding to **clopidogrel** (a prodrug that CYP2C19 activates) and *17 raises it
    slightly, while **ticagrelor** (active without CYP2C19) is unaffected; plus modest effects of
    age, diabetes and current smoking. Drug is randomised 1:1.
``cad`` (coronary artery disease)
    A polygenic score over ~20 published lipid/CAD SNPs plus age, sex, smoking, diabetes, BMI,
    physical activity, air pollution (PM2.5) and deprivation.
``ldl_mmol_l``
    The LDL-associated SNPs (APOE, PCSK9, LDLR, SORT1, APOB, ...) plus BMI and sex.

Every coefficient, and every patient's true polygenic score, CYP2C19 diplotype and outcome
probabilities (including the counterfactual response under each drug), are returned in
:attr:`SyntheticCohort.truth` and :attr:`SyntheticCohort.truth_table`.

Positions and alleles
---------------------
Pharmacogene variants are copied from PharmCAT 3.1.1's ``pharmcat_positions.vcf`` (GRCh38);
a test checks them against that file. Trait SNPs use GRCh38 dbSNP positions (rsIDs and
positions cross-checked against public GWAS/Open Targets tables); allele frequencies are
approximate European (gnomAD NFE) values; effect sizes are of the published order (GLGC LDL
effects in mmol/L; CARDIoGRAMplusC4D log odds ratios). Because ~20 SNPs capture only a sliver
of real CAD heritability, their CAD log odds ratios are multiplied by :data:`PRS_SCALE` so that
the score behaves like a modern genome-wide CAD score (about 2-fold odds per SD). Background
SNPs are nulls at random chr1-22 positions with random alleles (not the reference base).

Haplotype structure inside a gene is respected: CYP2C19 *1/*2/*3/*17, CYP2C9 *1/*2/*3 and APOE
e2/e3/e4 are drawn as haplotypes (so e.g. *2 and *17 never share a chromosome), and genotypes
are phased. Everything else is drawn independently under Hardy-Weinberg equilibrium.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.io._atomic import atomic_path
from pmed.io.vcf import GRCH38_CONTIG_LENGTHS, write_vcf

__all__ = [
    "SyntheticCohort",
    "make_synthetic_cohort",
    "sample_new_patients",
    "write_synthetic_cohort",
    "synthetic_schema",
    "PHARMACOGENE_VARIANTS",
    "TRAIT_VARIANTS",
    "PRS_SCALE",
    "OUTCOME_COLUMNS",
    "PATIENT_COLUMNS",
    "cad_scorefile_text",
]

GENERATOR_VERSION = 1

#: Multiplier applied to the published per-allele CAD log odds ratios (see module docstring).
PRS_SCALE = 2.5

#: Columns that are outcomes (absent from ``new_patients.csv``).
OUTCOME_COLUMNS = ("ldl_mmol_l", "response", "cad")

#: Patient table columns in order (``patient_id`` is the index).
PATIENT_COLUMNS = (
    "age",
    "sex",
    "bmi",
    "smoking",
    "alcohol_units_week",
    "physical_activity_h_week",
    "diabetes",
    "hypertension",
    "prior_mi",
    "pm25_ug_m3",
    "deprivation_index",
    "site",
    "ldl_mmol_l",
    "drug",
    "response",
    "cad",
)

# Clinical, lifestyle and environment values that are made missing at random (3 %). Site and
# drug are administrative and always recorded; outcomes are never masked.
_MASKED_COLUMNS = (
    "age",
    "sex",
    "bmi",
    "smoking",
    "alcohol_units_week",
    "physical_activity_h_week",
    "diabetes",
    "hypertension",
    "prior_mi",
    "pm25_ug_m3",
    "deprivation_index",
)
_MISSING_CLINICAL = 0.03
_MISSING_CALLS = 0.005

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

# Generating coefficients. Keys name the term; all are on the logit scale except LDL (mmol/L).
_RESPONSE = {
    "intercept": 2.4,
    "ticagrelor": 0.2,  # ticagrelor is the more potent drug, independent of CYP2C19
    "clopidogrel_x_cyp2c19_lof_alleles": -2.6,
    "clopidogrel_x_cyp2c19_star17_alleles": 0.4,
    "age_per_year_minus_63": -0.055,
    "diabetes": -0.9,
    "smoking_current": -0.7,
}
_CAD = {
    "intercept": -1.3,
    "age_per_year_minus_63": 0.08,
    "sex_male": 0.7,
    "smoking_former": 0.35,
    "smoking_current": 1.0,
    "diabetes": 0.8,
    "bmi_per_unit_minus_28": 0.05,
    "physical_activity_per_h_week": -0.08,
    "pm25_per_ug_m3_minus_11": 0.06,
    "deprivation_per_point_minus_5": 0.15,
    "prs_cad": 1.0,  # the centred, PRS_SCALE-scaled polygenic score, on the logit scale
}
_LDL = {
    "intercept": 3.3,
    "ldl_genetic": 1.0,  # centred sum of beta_ldl x ALT dosage
    "bmi_per_unit_minus_28": 0.05,
    "sex_female": 0.15,
    "noise_sd": 0.5,
}


@dataclass(frozen=True, eq=False)
class SyntheticCohort:
    """A generated cohort and the truth behind it.

    Attributes
    ----------
    patients
        Indexed by ``patient_id`` (``P0001`` ...); columns :data:`PATIENT_COLUMNS`.
    variants
        One row per variant, in genotype order (sorted by chromosome and position): ``chrom,
        pos, id, ref, alt, gene, role, effect`` plus ``alt_freq``, ``beta_ldl`` (mmol/L per ALT
        allele), ``logor_cad`` (per ALT allele, as used, i.e. after :data:`PRS_SCALE`) and
        ``logor_response_clopidogrel``. ``role`` is ``pharmacogene``, ``trait`` or
        ``background``.
    genotypes
        ``int8`` array ``(n_variants, n_patients, 2)`` of phased allele indices, -1 = missing.
    truth
        JSON-serialisable generating parameters (coefficients, causal variant IDs, rates).
    truth_table
        Per patient (same index as ``patients``): CYP2C19 diplotype, LoF and *17 allele counts,
        CPIC phenotype, APOE genotype, true genetic LDL and polygenic CAD score, and true
        outcome probabilities including ``p_response_clopidogrel`` / ``p_response_ticagrelor``.
        Computed from the genotypes before calls were masked.
    """

    patients: pd.DataFrame
    variants: pd.DataFrame
    genotypes: np.ndarray
    truth: dict
    truth_table: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def samples(self) -> list[str]:
        """Patient IDs in genotype column order."""
        return list(self.patients.index)


# ---------------------------------------------------------------------- helpers
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    # Separate streams: the variant set depends on the seed only, never on n_patients, so new
    # patients drawn later share the cohort's background SNPs.
    return np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])


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


def _simulate(
    variants: pd.DataFrame, n: int, first: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Draw ``n`` patients numbered from ``first + 1``: table, observed genotypes, truth."""
    ids = pd.Index([f"P{first + i + 1:04d}" for i in range(n)], name="patient_id")

    # --- demographics, environment, lifestyle
    site = rng.choice(np.array(["A", "B", "C"]), size=n, p=[0.40, 0.35, 0.25])
    site_k = np.searchsorted(["A", "B", "C"], site)
    male = rng.random(n) < 0.55
    sex = np.where(male, "M", "F")
    age = np.clip(np.round(rng.normal(63, 11, n)), 30, 90)
    bmi = np.round(np.clip(np.exp(rng.normal(np.log(28), 0.16, n)), 16, 60), 1)
    # Sites differ in deprivation and pollution: a realistic source of between-site shift.
    deprivation = np.round(np.clip(rng.normal(np.array([3.0, 5.0, 7.0])[site_k], 1.8), 0, 10), 1)
    pm25 = np.round(np.exp(rng.normal(np.log(np.array([7.0, 11.0, 16.0])[site_k]), 0.25)), 1)
    p_current = _sigmoid(-1.7 + 0.2 * (deprivation - 5) - 0.02 * (age - 63))
    u = rng.random(n)
    smoking = np.where(u < p_current, "current", np.where(u < p_current + 0.33, "former", "never"))
    drinks = rng.random(n) > np.where(male, 0.25, 0.35)
    alcohol = np.round(np.where(drinks, rng.gamma(1.5, np.where(male, 7.0, 4.5)), 0.0), 1)
    activity = np.round(rng.gamma(2.0, 1.6, n) * np.exp(-0.03 * (bmi - 28)), 1)
    diabetes = rng.random(n) < _sigmoid(
        -1.9 + 0.12 * (bmi - 28) + 0.04 * (age - 63) + 0.1 * (deprivation - 5)
    )
    hypertension = rng.random(n) < _sigmoid(-0.2 + 0.05 * (age - 63) + 0.08 * (bmi - 28))
    prior_mi = rng.random(n) < _sigmoid(
        -1.8 + 0.03 * (age - 63) + 0.5 * male + 0.4 * (smoking == "current")
    )
    drug = rng.choice(np.array(["clopidogrel", "ticagrelor"]), size=n)

    # --- genetics
    g, haps = _draw_genotypes(variants, n, rng)
    dos = g.sum(axis=2).astype(float)  # (n_variants, n) ALT dosages
    p = variants["alt_freq"].to_numpy()
    beta_ldl = variants["beta_ldl"].to_numpy()
    logor_cad = variants["logor_cad"].to_numpy()
    # Centre on the population expectation (2p per allele) so the scores average ~0.
    ldl_genetic = beta_ldl @ (dos - 2 * p[:, None])
    prs_cad = logor_cad @ (dos - 2 * p[:, None])
    c19 = haps["CYP2C19"]
    names19 = list(_HAPLOTYPES["CYP2C19"]["freq"])
    lof = np.isin(c19, [names19.index("*2"), names19.index("*3")]).sum(axis=1)
    s17 = (c19 == names19.index("*17")).sum(axis=1)
    dip = np.array(
        ["/".join(sorted((names19[a], names19[b]), key=lambda s: int(s[1:]))) for a, b in c19]
    )
    apoe_names = list(_HAPLOTYPES["APOE"]["freq"])
    apoe = np.array(["/".join(sorted((apoe_names[a], apoe_names[b]))) for a, b in haps["APOE"]])

    # --- outcomes, from the complete (unmasked) values
    common = (
        _RESPONSE["intercept"]
        + _RESPONSE["age_per_year_minus_63"] * (age - 63)
        + _RESPONSE["diabetes"] * diabetes
        + _RESPONSE["smoking_current"] * (smoking == "current")
    )
    logit_clop = (
        common
        + _RESPONSE["clopidogrel_x_cyp2c19_lof_alleles"] * lof
        + _RESPONSE["clopidogrel_x_cyp2c19_star17_alleles"] * s17
    )
    logit_tica = common + _RESPONSE["ticagrelor"]
    p_clop, p_tica = _sigmoid(logit_clop), _sigmoid(logit_tica)
    p_response = np.where(drug == "clopidogrel", p_clop, p_tica)
    response = (rng.random(n) < p_response).astype(np.int8)

    cad_logit = (
        _CAD["intercept"]
        + _CAD["age_per_year_minus_63"] * (age - 63)
        + _CAD["sex_male"] * male
        + _CAD["smoking_former"] * (smoking == "former")
        + _CAD["smoking_current"] * (smoking == "current")
        + _CAD["diabetes"] * diabetes
        + _CAD["bmi_per_unit_minus_28"] * (bmi - 28)
        + _CAD["physical_activity_per_h_week"] * activity
        + _CAD["pm25_per_ug_m3_minus_11"] * (pm25 - 11)
        + _CAD["deprivation_per_point_minus_5"] * (deprivation - 5)
        + _CAD["prs_cad"] * prs_cad
    )
    p_cad = _sigmoid(cad_logit)
    cad = (rng.random(n) < p_cad).astype(np.int8)

    ldl_expected = (
        _LDL["intercept"]
        + _LDL["ldl_genetic"] * ldl_genetic
        + _LDL["bmi_per_unit_minus_28"] * (bmi - 28)
        + _LDL["sex_female"] * (~male)
    )
    ldl = np.round(np.clip(ldl_expected + rng.normal(0, _LDL["noise_sd"], n), 0.5, 9.0), 2)

    patients = pd.DataFrame(
        {
            "age": age.astype(float),
            "sex": sex.astype(object),
            "bmi": bmi,
            "smoking": smoking.astype(object),
            "alcohol_units_week": alcohol,
            "physical_activity_h_week": activity,
            "diabetes": diabetes.astype(np.int8),
            "hypertension": hypertension.astype(np.int8),
            "prior_mi": prior_mi.astype(np.int8),
            "pm25_ug_m3": pm25,
            "deprivation_index": deprivation,
            "site": site.astype(object),
            "ldl_mmol_l": ldl,
            "drug": drug.astype(object),
            "response": response,
            "cad": cad,
        },
        index=ids,
    )
    # --- missingness: 3 % of clinical values, 0.5 % of genotype calls, completely at random
    for col in _MASKED_COLUMNS:
        mask = rng.random(n) < _MISSING_CLINICAL
        if col in ("diabetes", "hypertension", "prior_mi"):
            patients[col] = patients[col].astype("Int8").mask(mask)
        else:
            patients.loc[mask, col] = np.nan
    observed = g.copy()
    observed[rng.random(g.shape[:2]) < _MISSING_CALLS] = -1

    truth_table = pd.DataFrame(
        {
            "cyp2c19_diplotype": dip.astype(object),
            "cyp2c19_lof_alleles": lof.astype(np.int64),
            "cyp2c19_star17_alleles": s17.astype(np.int64),
            "cyp2c19_phenotype": _cpic_cyp2c19(lof, s17),
            "apoe_genotype": apoe.astype(object),
            "ldl_genetic_mmol_l": np.round(ldl_genetic, 6),
            "ldl_expected_mmol_l": np.round(ldl_expected, 6),
            "prs_cad": np.round(prs_cad, 6),
            "cad_logit": np.round(cad_logit, 6),
            "p_cad": np.round(p_cad, 6),
            "p_response_clopidogrel": np.round(p_clop, 6),
            "p_response_ticagrelor": np.round(p_tica, 6),
            "p_response": np.round(p_response, 6),
        },
        index=ids.copy(),
    )
    return patients, observed, truth_table


def _truth(seed: int, n_patients: int, n_background: int, variants: pd.DataFrame) -> dict:
    trait = variants[variants["role"] == "trait"]
    return {
        "generator": "pmed.datasets.synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_patients": int(n_patients),
        "n_background": int(n_background),
        "reference": "GRCh38",
        "models": {
            "response": {
                "link": "logit",
                "formula": (
                    "logit P(response=1) = intercept + ticagrelor*[drug=ticagrelor]"
                    " + [drug=clopidogrel]*(b_lof*lof_alleles + b_17*star17_alleles)"
                    " + b_age*(age-63) + b_dm*diabetes + b_smk*[smoking=current]"
                ),
                "coefficients": dict(_RESPONSE),
                "drug_assignment": "randomised 1:1, independent of everything else",
                "lof_alleles": "count of CYP2C19 *2 (rs4244285 A) and *3 (rs4986893 A)",
                "star17_alleles": "count of CYP2C19 *17 (rs12248560 T)",
            },
            "cad": {
                "link": "logit",
                "formula": (
                    "logit P(cad=1) = intercept + b_age*(age-63) + b_male*[sex=M]"
                    " + b_former*[smoking=former] + b_current*[smoking=current]"
                    " + b_dm*diabetes + b_bmi*(bmi-28) + b_pa*physical_activity_h_week"
                    " + b_pm*(pm25-11) + b_dep*(deprivation-5) + prs_cad"
                ),
                "coefficients": dict(_CAD),
                "prs_cad": "sum over trait SNPs of logor_cad * (ALT dosage - 2*alt_freq)",
                "prs_scale": PRS_SCALE,
                "published_logor_cad": {v["id"]: v["logor_cad"] for v in TRAIT_VARIANTS},
                "prs_weights": dict(
                    zip(trait["id"], trait["logor_cad"].astype(float), strict=True)
                ),
            },
            "ldl_mmol_l": {
                "link": "identity",
                "formula": (
                    "ldl = intercept + ldl_genetic + b_bmi*(bmi-28) + b_f*[sex=F]"
                    " + Normal(0, noise_sd), clipped to 0.5-9.0"
                ),
                "coefficients": dict(_LDL),
                "ldl_genetic": "sum over trait SNPs of beta_ldl * (ALT dosage - 2*alt_freq)",
                "weights": {
                    k: float(v)
                    for k, v in zip(trait["id"], trait["beta_ldl"], strict=True)
                    if v != 0.0
                },
            },
        },
        "causal_variants": {
            "response": ["rs4244285", "rs4986893", "rs12248560"],
            "cad": [str(i) for i in trait.loc[trait["logor_cad"] != 0, "id"]],
            "ldl_mmol_l": [str(i) for i in trait.loc[trait["beta_ldl"] != 0, "id"]],
            "null": [str(i) for i in variants.loc[variants["role"] == "background", "id"]],
        },
        "haplotype_frequencies": {g: dict(s["freq"]) for g, s in _HAPLOTYPES.items()},
        "missingness": {
            "clinical_rate": _MISSING_CLINICAL,
            "clinical_columns": list(_MASKED_COLUMNS),
            "genotype_call_rate_missing": _MISSING_CALLS,
            "mechanism": "missing completely at random",
        },
        "not_causal": {
            "hypertension": "correlated with age and BMI; no direct effect on any outcome",
            "prior_mi": "correlated with age, sex and smoking; no direct effect on any outcome",
            "alcohol_units_week": "no effect on any outcome",
            "site": "shifts deprivation and PM2.5; no direct effect",
        },
    }


# ---------------------------------------------------------------------- public API
def make_synthetic_cohort(
    n_patients: int = 1000, *, n_background: int = 200, seed: int = 0
) -> SyntheticCohort:
    """Generate a synthetic cohort with known ground truth.

    Parameters
    ----------
    n_patients
        Number of patients (IDs ``P0001`` ...).
    n_background
        Number of null SNPs at random chr1-22 positions (MAF 0.05-0.5).
    seed
        Seed; the same seed gives identical output. The variant set depends on ``seed`` and
        ``n_background`` only.

    Returns
    -------
    SyntheticCohort
        Patients, variant annotation, genotypes, truth and the per-patient truth table.

    Examples
    --------
    >>> c = make_synthetic_cohort(200, seed=1)
    >>> c.genotypes.shape[1] == len(c.patients)
    True
    """
    if n_patients < 1:
        raise ValueError("n_patients must be at least 1")
    if n_background < 0:
        raise ValueError("n_background must be >= 0")
    rng_var, rng_pat = _rngs(seed)
    variants = _build_variants(n_background, rng_var)
    patients, genotypes, truth_table = _simulate(variants, n_patients, 0, rng_pat)
    truth = _truth(seed, n_patients, n_background, variants)
    return SyntheticCohort(patients, variants, genotypes, truth, truth_table)


def sample_new_patients(
    cohort: SyntheticCohort, n_new: int = 5
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Draw further patients from the generator of ``cohort``, as a clinic would see them.

    Parameters
    ----------
    cohort
        The training cohort (its seed and variants are reused).
    n_new
        Number of new patients, numbered after the cohort's (``P1001`` ... for 1000).

    Returns
    -------
    patients : pandas.DataFrame
        Without the outcome columns (:data:`OUTCOME_COLUMNS`); ``drug`` is the drug the
        generator assigned and may be changed freely.
    genotypes : numpy.ndarray
        ``(n_variants, n_new, 2)``, in ``cohort.variants`` order.
    truth_table : pandas.DataFrame
        Their true probabilities (``p_response_clopidogrel`` / ``_ticagrelor``, ``p_cad``, ...).
    """
    # A third stream of the cohort's seed: independent of the cohort's patients, reproducible.
    rng = np.random.default_rng([int(cohort.truth["seed"]), 2])
    patients, genotypes, truth_table = _simulate(cohort.variants, n_new, len(cohort.patients), rng)
    return patients.drop(columns=list(OUTCOME_COLUMNS)), genotypes, truth_table


def synthetic_schema() -> dict:
    """The pmed schema (see :mod:`pmed.schema`) of the synthetic patient tables, as a dict."""
    cols: dict[str, dict[str, Any]] = {
        "age": {"type": "float", "unit": "years", "min": 18, "max": 110,
                "description": "age at enrolment"},
        "sex": {"type": "category", "categories": ["F", "M"], "description": "sex at birth"},
        "bmi": {"type": "float", "unit": "kg/m2", "min": 10, "max": 80,
                "description": "body-mass index"},
        "smoking": {"type": "category", "categories": ["never", "former", "current"],
                    "description": "smoking status"},
        "alcohol_units_week": {"type": "float", "unit": "UK units/week", "min": 0, "max": 200,
                               "description": "alcohol intake"},
        "physical_activity_h_week": {"type": "float", "unit": "h/week", "min": 0, "max": 80,
                                     "description": "moderate-to-vigorous physical activity"},
        "diabetes": {"type": "bool", "description": "diagnosed diabetes (1 = yes)"},
        "hypertension": {"type": "bool", "description": "diagnosed hypertension (1 = yes)"},
        "prior_mi": {"type": "bool", "description": "previous myocardial infarction (1 = yes)"},
        "pm25_ug_m3": {"type": "float", "unit": "ug/m3", "min": 0, "max": 200,
                       "description": "annual mean PM2.5 air pollution at home address"},
        "deprivation_index": {"type": "float", "unit": "score", "min": 0, "max": 10,
                              "description": "area deprivation (0 = least, 10 = most)"},
        "site": {"type": "category", "categories": ["A", "B", "C"], "nullable": False,
                 "description": "recruiting site"},
        "ldl_mmol_l": {"type": "float", "unit": "mmol/L", "min": 0, "max": 15,
                       "required": False,
                       "description": "outcome: LDL cholesterol"},
        "drug": {"type": "category", "categories": ["clopidogrel", "ticagrelor"],
                 "nullable": False, "description": "antiplatelet drug given (randomised)"},
        "response": {"type": "bool", "required": False,
                     "description": "outcome: 1 = adequate response / no ischaemic event"},
        "cad": {"type": "bool", "required": False,
                "description": "outcome: coronary artery disease"},
    }  # fmt: skip
    return {"id": "patient_id", "columns": cols, "strict": False}


def _csv_frame(patients: pd.DataFrame) -> pd.DataFrame:
    out = patients.copy()
    # Whole numbers print without ".0" and 0/1 flags stay "0"/"1", which the schema's bool
    # parser reads; missing values print as empty fields.
    for c in ("age", "diabetes", "hypertension", "prior_mi", "response", "cad"):
        if c in out.columns:
            out[c] = out[c].astype("Int64")
    return out


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        # Write bytes so the platform never turns "\n" into "\r\n": files must be identical.
        tmp.write_bytes(text.encode("utf-8"))
    return path


def cad_scorefile_text(variants: pd.DataFrame) -> str:
    """A PGS Catalog scoring file (format 2.0, GRCh38) for the CAD trait SNPs.

    Weights are the published per-allele log odds ratios (before :data:`PRS_SCALE`), as a GWAS
    would report them; every other SNP is given on the REF allele with the sign reversed, as
    scoring files often do, so that matching has swapped alleles to handle.
    """
    t = variants[(variants["role"] == "trait") & (variants["logor_cad"] != 0)].reset_index(drop=True)
    w = t["logor_cad"] / PRS_SCALE
    swap = (np.arange(len(t)) % 2) == 1
    rows = pd.DataFrame({
        "rsID": t["id"], "chr_name": t["chrom"], "chr_position": t["pos"],
        "effect_allele": np.where(swap, t["ref"], t["alt"]),
        "other_allele": np.where(swap, t["alt"], t["ref"]),
        "effect_weight": np.where(swap, -w, w).round(6),
    })
    header = [
        "###PGS CATALOG SCORING FILE - synthetic, written by pmed.datasets.synthetic",
        "#format_version=2.0",
        "##POLYGENIC SCORE (PGS) INFORMATION",
        "#pgs_id=PGS_SYNTH_CAD",
        "#pgs_name=synthetic_CAD_trait_SNPs",
        "#trait_reported=Coronary artery disease",
        "#weight_type=log(OR)",
        "#genome_build=GRCh38",
        f"#variants_number={len(rows)}",
    ]
    return "\n".join(header) + "\n" + rows.to_csv(sep="\t", index=False, lineterminator="\n")


def write_synthetic_cohort(
    out_dir: str | Path,
    cohort: SyntheticCohort | None = None,
    *,
    n_patients: int = 1000,
    n_new: int = 5,
    seed: int = 0,
) -> dict[str, Path]:
    """Write a synthetic cohort as the files a pmed study reads.

    Parameters
    ----------
    out_dir
        Folder to write into (created if needed).
    cohort
        The cohort to write; default ``make_synthetic_cohort(n_patients, seed=seed)``.
    n_patients, seed
        Used only when ``cohort`` is not given.
    n_new
        Number of extra patients for ``new_patients.csv`` (drawn with
        :func:`sample_new_patients`).

    Returns
    -------
    dict of str to pathlib.Path
        ``patients`` (``patients.csv``, the training cohort with outcomes), ``new_patients``
        (``new_patients.csv``, no outcome columns), ``schema`` (``schema.yaml``), ``genotypes``
        (``genotypes.vcf.gz``, BGZF, cohort then new patients), ``variants`` (``variants.csv``),
        ``cad_scorefile`` (``cad_pgs.txt``, a PGS Catalog scoring file of the CAD SNPs),
        ``truth`` (``truth.json``) and ``truth_table`` (``truth_patients.csv``, per-patient
        truth for cohort and new patients, column ``set`` = ``train``/``new``).

    Notes
    -----
    Every file is written atomically, and the same inputs give byte-identical files (the VCF
    carries no ``##fileDate``).
    """
    import yaml

    if cohort is None:
        cohort = make_synthetic_cohort(n_patients, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    new_patients, new_g, new_truth = sample_new_patients(cohort, n_new)

    paths: dict[str, Path] = {}
    paths["patients"] = _write_text(
        out / "patients.csv", _csv_frame(cohort.patients).to_csv(lineterminator="\n")
    )
    paths["new_patients"] = _write_text(
        out / "new_patients.csv", _csv_frame(new_patients).to_csv(lineterminator="\n")
    )
    paths["schema"] = _write_text(
        out / "schema.yaml",
        "# pmed schema of patients.csv and new_patients.csv (synthetic cohort)\n"
        + yaml.safe_dump(synthetic_schema(), sort_keys=False, allow_unicode=True),
    )
    samples = [*cohort.patients.index, *new_patients.index]
    paths["genotypes"] = write_vcf(
        out / "genotypes.vcf.gz",
        cohort.variants,
        np.concatenate([cohort.genotypes, new_g], axis=1),
        samples,
        source="pmed.datasets.synthetic",
        file_date=None,
    )
    paths["variants"] = _write_text(
        out / "variants.csv", cohort.variants.to_csv(index=False, lineterminator="\n")
    )
    paths["cad_scorefile"] = _write_text(out / "cad_pgs.txt", cad_scorefile_text(cohort.variants))
    truth = dict(cohort.truth)
    truth["n_new"] = int(n_new)
    truth["files"] = {
        "patients": "patients.csv",
        "new_patients": "new_patients.csv",
        "schema": "schema.yaml",
        "genotypes": "genotypes.vcf.gz",
        "variants": "variants.csv",
        "truth": "truth.json",
        "truth_table": "truth_patients.csv",
        "cad_scorefile": "cad_pgs.txt",
    }
    paths["truth"] = _write_text(
        out / "truth.json", json.dumps(truth, indent=2, sort_keys=True) + "\n"
    )
    table = pd.concat([cohort.truth_table.assign(set="train"), new_truth.assign(set="new")], axis=0)
    paths["truth_table"] = _write_text(
        out / "truth_patients.csv", table.to_csv(lineterminator="\n")
    )
    return paths
