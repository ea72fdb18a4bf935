"""The generating model of the synthetic cohort: outcome coefficients, PRS scale, missingness.

Every number here is also written to the cohort's truth record
(:attr:`pmed.datasets.synthetic.SyntheticCohort.truth`).
"""

from __future__ import annotations

import numpy as np

from pmed.datasets.synthetic.schema import PATIENT_COLUMNS

__all__ = ["GENERATOR_VERSION", "PRS_SCALE"]


GENERATOR_VERSION = 2  # 2: the time-to-event outcome chd_years/chd_event

#: Multiplier applied to the published per-allele CAD log odds ratios (see the docstring of
#: :mod:`pmed.datasets.synthetic`).
PRS_SCALE = 2.5


# Clinical, lifestyle and environment values that are made missing at random (3 %). Site and
# drug are administrative and always recorded; outcomes are never masked.
_MASKED_COLUMNS = PATIENT_COLUMNS[: PATIENT_COLUMNS.index("site")]
_MISSING_CLINICAL = 0.03
_MISSING_CALLS = 0.005

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
# Years to a first coronary heart disease event: Weibull proportional hazards,
# S(t | x) = exp(-(t / scale)^shape · exp(cad_logit − centre + low_fitness · low_fitness_z)),
# so the hazard rises with the same clinical, lifestyle, environmental and polygenic terms as
# `cad`, and with low cardiorespiratory fitness, a latent trait no clinical column records but
# the wearables see (fewer steps, higher resting heart rate). Follow-up ends at an
# administrative censoring time (staggered enrolment) or at loss to follow-up, whichever is
# first; times are recorded to 0.01 years, so some coincide (ties, as in real registries).
_CHD = {
    "weibull_shape": 1.3,
    "weibull_scale_years": 20.0,
    "centre": -0.7,  # about the cohort's mean cad_logit: exp(...) ≈ 1 for a typical patient
    "low_fitness": 0.8,  # log hazard ratio per SD of low fitness
    "enrolment_follow_up_years": [4.0, 12.0],  # administrative censoring ~ Uniform
    "loss_to_follow_up_per_year": 0.03,  # exponential dropout
    "time_resolution_years": 0.01,
}
_LDL = {
    "intercept": 3.3,
    "ldl_genetic": 1.0,  # centred sum of beta_ldl x ALT dosage
    "bmi_per_unit_minus_28": 0.05,
    "sex_female": 0.15,
    "noise_sd": 0.5,
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
