"""Candidate models: scikit-learn pipelines with leakage-free preprocessing.

Every model is a :class:`~sklearn.pipeline.Pipeline` ``[("preprocess", ...), ("model", ...)]``
so that imputation, scaling and one-hot encoding are fitted inside each cross-validation fold.
A *family* names the same idea for both tasks: ``linear`` is L2 logistic regression for a binary
target and ridge regression for a continuous one, and so on.
"""

from pmed.models.importance import feature_importance, input_feature_of_outputs
from pmed.models.zoo import FAMILIES, TASKS, make_model, make_preprocessor

__all__ = [
    "FAMILIES",
    "TASKS",
    "make_model",
    "make_preprocessor",
    "feature_importance",
    "input_feature_of_outputs",
]
