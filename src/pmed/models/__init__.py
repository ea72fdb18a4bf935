"""Candidate models: scikit-learn pipelines with leakage-free preprocessing.

Every model is a :class:`~sklearn.pipeline.Pipeline` ``[("preprocess", ...), ("model", ...)]``
so that imputation, scaling and one-hot encoding are fitted inside each cross-validation fold.
A *family* names the same idea for both tasks: ``linear`` is L2 logistic regression for a binary
target and ridge regression for a continuous one, and so on. Families live in a registry
(:func:`register_model`): besides the tabular zoo it holds ``grud`` (GRU-D on a time-series
grid) and ``cnn`` (an image classifier), both built on :class:`pmed.models.torch_base.TorchEstimator`.
"""

from pmed.models.importance import feature_importance, input_feature_of_outputs
from pmed.models.registry import ModelFamily, get_family, register_model, registered_families
from pmed.models.zoo import DEFAULT_FAMILIES, FAMILIES, TASKS, make_model, make_preprocessor

__all__ = [
    "FAMILIES",
    "DEFAULT_FAMILIES",
    "ModelFamily",
    "register_model",
    "get_family",
    "registered_families",
    "TASKS",
    "make_model",
    "make_preprocessor",
    "feature_importance",
    "input_feature_of_outputs",
]
