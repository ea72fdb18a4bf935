"""A synthetic patient cohort with known ground truth, for the demo and the tests.

Patients carry a clinical history, demographics, lifestyle and environment, genotypes at real
GRCh38 positions, and four outcomes generated from documented equations:

``response`` (1 = adequate antiplatelet response / no event)
    A genotype-by-drug effect: each CYP2C19 loss-of-function allele (*2, *3) sharply lowers the
    chance of responding to **clopidogrel** (a prodrug that CYP2C19 activates) and *17 raises it
    slightly, while **ticagrelor** (active without CYP2C19) is unaffected; plus modest effects of
    age, diabetes and current smoking. Drug is randomised 1:1.
``cad`` (coronary artery disease)
    A polygenic score over ~20 published lipid/CAD SNPs plus age, sex, smoking, diabetes, BMI,
    physical activity, air pollution (PM2.5) and deprivation.
``chd_years``, ``chd_event`` (years to a first coronary heart disease event, censored)
    Weibull proportional hazards on the same terms as ``cad`` (polygenic score, clinical risk
    factors, lifestyle, environment) plus a latent low cardiorespiratory fitness that no
    clinical column records (the demo's wearables reflect it); administrative censoring after
    4-12 years and 3 %/year loss to follow-up; times to 0.01 years, so with ties.
``ldl_mmol_l``
    The LDL-associated SNPs (APOE, PCSK9, LDLR, SORT1, APOB, ...) plus BMI and sex.

Every coefficient, and every patient's true polygenic score, CYP2C19 diplotype and outcome
probabilities (including the counterfactual response under each drug, the latent fitness and
the true 5-year coronary risk), are returned in
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

from pmed.datasets.synthetic.cohort import (
    SyntheticCohort,
    make_synthetic_cohort,
    sample_new_patients,
)
from pmed.datasets.synthetic.files import cad_scorefile_text, write_synthetic_cohort
from pmed.datasets.synthetic.model import GENERATOR_VERSION, PRS_SCALE
from pmed.datasets.synthetic.schema import OUTCOME_COLUMNS, PATIENT_COLUMNS, synthetic_schema
from pmed.datasets.synthetic.variants import PHARMACOGENE_VARIANTS, TRAIT_VARIANTS

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
    "GENERATOR_VERSION",
]
