"""Time-to-event analysis: survival models and their evaluation.

Sign convention (documented once, used everywhere): ``risk`` is higher for a *worse*
prognosis (shorter survival). Survival probabilities at a horizon ``t`` are ``surv_<t>``.

Imports are lazy so that ``import pmed.survival`` does not pull in scikit-survival.
"""

from __future__ import annotations

from pmed._lazy import lazy_attributes

__all__, __getattr__, __dir__ = lazy_attributes(__name__, {
    "_data": ["check_survival_data", "SurvivalWarning"],
    "metrics": ["harrell_c", "harrell_c_difference", "uno_c", "td_auc", "brier", "integrated_brier",
                "calibration_at", "decision_curve"],
    "evaluation": ["evaluate_survival"],
    "models": ["make_surv_y", "CoxPH", "Coxnet", "SurvivalForest", "BoostedSurvival", "KaplanMeier",
               "cox_coefficients", "cox_preprocessor", "predict_survival", "predict_median", "SURVIVAL_FAMILIES",
               "register_survival_families"],
})
