"""Early fusion: one model on every modality's columns, told which modalities each patient has."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from pmed.errors import OptionError, ValidationError
from pmed.fusion.modalities import availability, resolve_modalities

__all__ = ["ModalityIndicators"]


def _frame(X) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)


class ModalityIndicators(TransformerMixin, BaseEstimator):
    """Append one ``has_<modality>`` column (1.0 / 0.0) per modality to the table.

    A patient without a modality has all its columns missing; imputation alone would make that
    patient look like an average one. The indicator lets the model downstream learn that the
    modality is absent (early fusion). Put it first in a pipeline, before pmed's preprocessing::

        Pipeline([("modalities", ModalityIndicators(m)),
                  ("fit", make_model(family, task=task, X=ModalityIndicators(m).fit_transform(X)))])

    Parameters
    ----------
    modalities
        Modality name → column names or :mod:`fnmatch` patterns (see
        :func:`pmed.fusion.resolve_modalities`), resolved against the columns seen in ``fit``.

    Attributes
    ----------
    modalities_ : dict of str to list of str
        The resolved columns of each modality.
    feature_names_in_ : ndarray of str
        Columns seen in ``fit``.
    n_features_in_ : int
        Their number.
    """

    def __init__(self, modalities: Mapping[str, Sequence[str]]) -> None:
        self.modalities = modalities

    def fit(self, X, y=None) -> ModalityIndicators:
        """Resolve the modalities against the columns of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            Patients × features.
        y
            Ignored.

        Returns
        -------
        ModalityIndicators
            ``self``.
        """
        X = _frame(X)
        self.modalities_ = resolve_modalities(self.modalities, list(X.columns))
        clash = [f"has_{m}" for m in self.modalities_ if f"has_{m}" in X.columns]
        if clash:
            raise OptionError(f"the table already has column(s) {', '.join(map(repr, clash))}",
                              where="ModalityIndicators",
                              fix="rename those columns or the modalities")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X) -> pd.DataFrame:
        """Return ``X`` (columns and dtypes unchanged) with the ``has_<modality>`` columns appended.

        Parameters
        ----------
        X : pandas.DataFrame
            Patients × the columns seen in ``fit``.

        Returns
        -------
        pandas.DataFrame
            ``X`` plus one float column per modality, 1.0 where at least one of its columns is
            present.
        """
        check_is_fitted(self, "modalities_")
        X = _frame(X)
        absent = [c for c in self.feature_names_in_ if c not in X.columns]
        if absent:
            raise ValidationError([f"the table lacks {len(absent)} column(s) seen in fit: "
                                   f"{', '.join(map(repr, absent[:8]))}"],
                                  fix="pass a table with the columns the model was fitted on")
        X = X[list(self.feature_names_in_)]
        has = availability(X, self.modalities_).astype(float)
        has.columns = [f"has_{m}" for m in has.columns]
        return pd.concat([X, has], axis=1)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Input columns followed by ``has_<modality>`` for each modality.

        Parameters
        ----------
        input_features
            Ignored beyond a check that it matches the columns seen in ``fit``.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self, "modalities_")
        if input_features is not None and list(input_features) != list(self.feature_names_in_):
            raise OptionError("input_features differ from the columns seen in fit",
                              where="ModalityIndicators.get_feature_names_out",
                              fix="pass None or the columns the transformer was fitted on")
        names = [*map(str, self.feature_names_in_), *(f"has_{m}" for m in self.modalities_)]
        return np.asarray(names, dtype=object)
