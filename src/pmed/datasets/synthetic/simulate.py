"""Patients of the synthetic cohort: clinical history, lifestyle, environment and outcomes.

One function, :func:`_simulate`, draws the patients' demographics, lifestyle and environment,
their genotypes, the three outcomes from the equations of :mod:`.model`, and the missingness.
The order of the random draws is part of the generator's output: keep it.
"""

from __future__ import annotations

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
    _sigmoid,
)
from pmed.datasets.synthetic.variants import _HAPLOTYPES, _cpic_cyp2c19, _draw_genotypes

__all__: list[str] = []


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

    # --- time to a first coronary event (drawn last: the draws above keep their values)
    low_fitness = rng.normal(0.0, 1.0, n)
    chd_lp = cad_logit - _CHD["centre"] + _CHD["low_fitness"] * low_fitness
    k, scale = _CHD["weibull_shape"], _CHD["weibull_scale_years"]
    event_time = scale * (-np.log(rng.random(n)) / np.exp(chd_lp)) ** (1.0 / k)
    lo, hi = _CHD["enrolment_follow_up_years"]
    censor = np.minimum(rng.uniform(lo, hi, n), rng.exponential(1.0 / _CHD["loss_to_follow_up_per_year"], n))
    step = _CHD["time_resolution_years"]
    # rounded up, so that no follow-up time is 0
    patients["chd_years"] = np.round(np.maximum(np.ceil(np.minimum(event_time, censor) / step) * step, step), 2)
    patients["chd_event"] = (event_time <= censor).astype(np.int8)

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
            "low_fitness_z": np.round(low_fitness, 6),
            "chd_log_hazard": np.round(chd_lp, 6),
            "p_chd_5y": np.round(1.0 - np.exp(-((5.0 / scale) ** k) * np.exp(chd_lp)), 6),
        },
        index=ids.copy(),
    )
    return patients, observed, truth_table
