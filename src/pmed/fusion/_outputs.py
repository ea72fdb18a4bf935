"""What every fused estimator answers the same way, from its per-patient values."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if


def _is_binary(est) -> bool:
    return est.task == "binary"


class FusedOutputs:
    """``predict_proba``, ``predict``, ``score`` and the tags of a fused estimator with a
    ``task`` ("binary" or "continuous"), ``classes_`` (binary) and ``_values(X)``: each
    patient's probability of ``classes_[1]`` or predicted value."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # one class for both tasks: is_classifier / cross_val_predict's stratification follow task
        if self.task == "binary":
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_class=False)
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = True  # a missing modality is all-NaN columns by design
        return tags

    @available_if(_is_binary)
    def predict_proba(self, X) -> np.ndarray:
        """Probabilities (binary task), from the modalities each patient has.

        Parameters
        ----------
        X : pandas.DataFrame
            Patients × (at least) every modality's columns.

        Returns
        -------
        ndarray of shape (n_patients, 2)
            Probabilities of ``classes_[0]`` and ``classes_[1]``.
        """
        p = self._values(X)
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        """Predictions: a label (binary, at probability 0.5) or a number (continuous).

        Parameters
        ----------
        X : pandas.DataFrame
            Patients × (at least) every modality's columns.

        Returns
        -------
        ndarray of shape (n_patients,)
        """
        p = self._values(X)
        if self.task == "binary":
            return self.classes_[(p > 0.5).astype(int)]
        return p

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (binary) or R² (continuous) of :meth:`predict`.

        Parameters
        ----------
        X : pandas.DataFrame
            Patients × features.
        y : array-like of shape (n_patients,)
            True outcomes.
        sample_weight : array-like, optional
            Patient weights.

        Returns
        -------
        float
        """
        pred = self.predict(X)
        if self.task == "binary":
            return float(accuracy_score(y, pred, sample_weight=sample_weight))
        return float(r2_score(y, pred, sample_weight=sample_weight))
