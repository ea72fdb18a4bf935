"""The synthetic cohort in memory: generation, new patients and the truth record."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pmed.datasets.synthetic.model import (
    _CAD,
    _CHD,
    _LDL,
    _MASKED_COLUMNS,
    _MISSING_CALLS,
    _MISSING_CLINICAL,
    _RESPONSE,
    GENERATOR_VERSION,
    PRS_SCALE,
)
from pmed.datasets.synthetic.schema import OUTCOME_COLUMNS
from pmed.datasets.synthetic.simulate import _simulate
from pmed.datasets.synthetic.variants import _HAPLOTYPES, TRAIT_VARIANTS, _build_variants
from pmed.errors import OptionError

__all__ = ["SyntheticCohort", "make_synthetic_cohort", "sample_new_patients"]


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


def _rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    # Separate streams: the variant set depends on the seed only, never on n_patients, so new
    # patients drawn later share the cohort's background SNPs.
    return np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])


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
            "chd": {
                "link": "log hazard (Weibull proportional hazards)",
                "columns": ["chd_years", "chd_event"],
                "formula": (
                    "S(t) = exp(-(t/scale)^shape * exp(cad_logit - centre + b_fit*low_fitness_z)); "
                    "observed time = min(event time, censoring), censoring = min(Uniform(enrolment "
                    "follow-up), Exponential(loss to follow-up)), rounded up to 0.01 years"
                ),
                "coefficients": dict(_CHD),
                "low_fitness_z": "latent N(0, 1), no clinical column; the demo's wearables reflect it",
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

    Raises
    ------
    pmed.errors.OptionError
        ``n_patients < 1`` or ``n_background < 0`` (also a :class:`ValueError`).

    Examples
    --------
    >>> c = make_synthetic_cohort(200, seed=1)
    >>> c.genotypes.shape[1] == len(c.patients)
    True
    """
    if n_patients < 1:
        raise OptionError(f"n_patients must be at least 1, not {n_patients}")
    if n_background < 0:
        raise OptionError(f"n_background must be at least 0, not {n_background}")
    rng_var, rng_pat = _rngs(seed)
    variants = _build_variants(n_background, rng_var)
    patients, genotypes, truth_table = _simulate(variants, n_patients, 0, rng_pat)
    truth = _truth(seed, n_patients, n_background, variants)
    return SyntheticCohort(patients, variants, genotypes, truth, truth_table)


def sample_new_patients(
    cohort: SyntheticCohort, n_new: int = 5, *, outcomes: bool = False, stream: int = 2
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Draw further patients from the generator of ``cohort``, as a clinic would see them.

    Parameters
    ----------
    cohort
        The training cohort (its seed and variants are reused).
    n_new
        Number of new patients, numbered after the cohort's (``P1001`` ... for 1000).
    outcomes
        Keep their outcome columns (patients followed up after deployment, as monitoring
        sees them).
    stream
        Which random stream of the cohort's seed draws them (2, the default, gives the demo's
        new patients; another number gives other patients, independent of those).

    Returns
    -------
    patients : pandas.DataFrame
        Without the outcome columns (:data:`OUTCOME_COLUMNS`) unless ``outcomes``; ``drug``
        is the drug the generator assigned and may be changed freely.
    genotypes : numpy.ndarray
        ``(n_variants, n_new, 2)``, in ``cohort.variants`` order.
    truth_table : pandas.DataFrame
        Their true probabilities (``p_response_clopidogrel`` / ``_ticagrelor``, ``p_cad``, ...).
    """
    # A third stream of the cohort's seed: independent of the cohort's patients, reproducible.
    if stream in (0, 1):
        raise OptionError("stream 0 and 1 draw the cohort itself (its variants and patients)", where="stream",
                          fix="use 2 (the default) or a larger number")
    rng = np.random.default_rng([int(cohort.truth["seed"]), int(stream)])
    patients, genotypes, truth_table = _simulate(cohort.variants, n_new, len(cohort.patients), rng)
    return (patients if outcomes else patients.drop(columns=list(OUTCOME_COLUMNS))), genotypes, truth_table
