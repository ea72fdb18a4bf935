"""Time-to-event analysis: survival models and their evaluation.

Sign convention (documented once, used everywhere): ``risk`` is higher for a *worse*
prognosis (shorter survival). Survival probabilities at a horizon ``t`` are ``surv_<t>``.

Imports are lazy so that ``import pmed.survival`` does not pull in scikit-survival.
"""

from __future__ import annotations

from pmed._lazy import lazy_attributes

# name -> submodule that defines it
_LAZY = {
    # --- evaluation (pmed.survival.metrics / pmed.survival.evaluation) ---
    "check_survival_data": "_data",
    "SurvivalWarning": "_data",
    "harrell_c": "metrics",
    "harrell_c_difference": "metrics",
    "uno_c": "metrics",
    "td_auc": "metrics",
    "brier": "metrics",
    "integrated_brier": "metrics",
    "calibration_at": "metrics",
    "decision_curve": "metrics",
    "evaluate_survival": "evaluation",
    # --- models (pmed.survival.models): added by the models work ---
    "make_surv_y": "models",
    "CoxPH": "models",
    "Coxnet": "models",
    "SurvivalForest": "models",
    "BoostedSurvival": "models",
    "KaplanMeier": "models",
    "cox_coefficients": "models",
    "cox_preprocessor": "models",
    "predict_survival": "models",
    "predict_median": "models",
    "SURVIVAL_FAMILIES": "models",
    "register_survival_families": "models",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
