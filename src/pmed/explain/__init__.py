"""Explanations of fitted pmed pipelines, in the user's own features.

- :func:`explain`: SHAP values per patient on the probability scale (binary targets) or the
  outcome's scale, with one-hot levels and missingness indicators grouped back to the
  original clinical feature; :func:`global_importance` and :func:`top_factors` summarise them.
- :func:`linear_coefficients`: coefficients (and odds ratios) of linear models with
  bootstrap confidence intervals.
- :func:`permutation_importance_table`: model-agnostic importance with intervals.

Plots are in :mod:`pmed.plots.explain`. shap and matplotlib are imported only when used.
"""

from pmed.explain.linear import linear_coefficients
from pmed.explain.permutation import permutation_importance_table
from pmed.explain.shap_values import (
    METHODS,
    PatientExplanations,
    explain,
    global_importance,
    top_factors,
)

__all__ = [
    "METHODS",
    "PatientExplanations",
    "explain",
    "global_importance",
    "top_factors",
    "linear_coefficients",
    "permutation_importance_table",
]
