"""Late fusion: one model per modality, stacked by a meta-learner per subset of modalities.

Each modality's model is fitted on the patients who have that modality. The meta-learner that
combines them learns from *inner out-of-fold* predictions only: a base model's in-sample
predictions are optimistic (a model that memorises its training labels looks perfect there), and
a meta-learner fitted on them would trust exactly the modality that generalises worst. A patient
missing some modalities is predicted by the meta-learner of the modalities they have, fitted on
the patients who have (at least) those, so a missing modality is never imputed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.utils.validation import check_is_fitted

from pmed.errors import OptionError, PmedWarning, StudyError, ValidationError
from pmed.fusion._outputs import FusedOutputs
from pmed.fusion.modalities import availability, resolve_modalities

__all__ = ["LateFusion", "MAX_MODALITIES"]

#: most modalities one LateFusion fuses: it fits a meta-learner per subset (2**k - 1 of them)
MAX_MODALITIES = 6
_TASKS = ("binary", "continuous")
# probabilities are clipped before the logit so a confident base model gives a finite feature
_EPS = 1e-6
_SEP = "+"  # joins modality names into a subset key ("clinical+prs"): skops keys must be strings


def _frame(X) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


class LateFusion(FusedOutputs, BaseEstimator):
    """Stacked late fusion of per-modality models, robust to missing modalities.

    ``fit`` does, for each modality, on the patients who have it (at least one of its columns
    present): (a) inner out-of-fold predictions of a clone of its estimator
    (``StratifiedKFold(inner_folds, shuffle=True, random_state=seed)`` for binary, ``KFold``
    for continuous; logits of the probabilities, clipped to ``[1e-6, 1 - 1e-6]``, for binary);
    (b) a clone fitted on all of them. Then, for every non-empty subset ``S`` of modalities, a
    meta-learner (L2 logistic regression, ``C=1``, for binary; linear regression for
    continuous) on the inner out-of-fold predictions of the modalities in ``S``, over the
    patients who have every modality in ``S``. A subset with fewer than ``min_patients`` such
    patients (or, binary, only one outcome among them) gets no meta-learner.

    A patient is predicted by the meta-learner of exactly the modalities they have; if that
    subset has none, by the one of the largest fitted subset of it (a :class:`PmedWarning`
    says how many patients). A patient with no modality gets the training prevalence (binary)
    or mean (continuous), with a warning.

    Parameters
    ----------
    modalities
        ``(name, estimator, columns)`` triples, like :class:`~sklearn.compose.ColumnTransformer`'s
        transformers: an unfitted estimator (for example a :func:`pmed.models.make_model`
        pipeline built for those columns) that sees only ``columns`` (names or
        :mod:`fnmatch` patterns, see :func:`pmed.fusion.resolve_modalities`). At most
        :data:`MAX_MODALITIES`; names must not contain ``"+"``.
    task
        ``"binary"`` (estimators need ``predict_proba``) or ``"continuous"``.
    inner_folds
        Folds of the inner cross-validation that makes the meta-learners' training features.
    min_patients
        Fewest patients a modality's model or a subset's meta-learner is fitted on.
    seed
        Random state of the inner fold split.

    Attributes
    ----------
    estimators_ : dict of str to estimator
        Modality → its estimator fitted on every training patient who has it.
    meta_ : dict of str to estimator
        Subset key (modality names in modality order joined by ``"+"``, e.g. ``"clinical+prs"``)
        → its fitted meta-learner; its ``coef_`` follow the modalities of the key in order.
    n_meta_ : dict of str to int
        Subset key → the number of patients its meta-learner was fitted on.
    n_patients_ : dict of str to int
        Modality → the number of training patients who have it.
    columns_ : dict of str to list of str
        Modality → its resolved columns.
    modality_names_ : list of str
        Modality names, in the order given.
    classes_ : ndarray
        The two outcome labels (binary only); probabilities are of ``classes_[1]``.
    prior_ : float
        Training prevalence of ``classes_[1]`` (binary) or mean outcome (continuous), over
        every training patient: the prediction for a patient with no modality.
    feature_names_in_ : ndarray of str
        Columns of the training table.
    n_features_in_ : int
        Their number.
    """

    def __init__(
        self,
        modalities: Sequence[tuple[str, Any, Sequence[str]]],
        *,
        task: str = "binary",
        inner_folds: int = 5,
        min_patients: int = 20,
        seed: int = 0,
    ) -> None:
        self.modalities = modalities
        self.task = task
        self.inner_folds = inner_folds
        self.min_patients = min_patients
        self.seed = seed

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> list[tuple[str, Any, Any]]:
        if self.task not in _TASKS:
            raise OptionError(f"unknown task {self.task!r}", where="LateFusion(task=)",
                              fix=f"use one of: {', '.join(_TASKS)}")
        for key, low in (("inner_folds", 2), ("min_patients", 1)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise OptionError(f"{key} must be an integer of at least {low}, not {v!r}",
                                  where=f"LateFusion({key}=)", fix=f"pass {key}={max(low, 5)}")
        specs = list(self.modalities) if self.modalities is not None else []
        if not specs:
            raise OptionError("no modalities given", where="LateFusion(modalities=)",
                              fix="pass a list of (name, estimator, columns) triples")
        if len(specs) > MAX_MODALITIES:
            raise OptionError(
                f"{len(specs)} modalities given; late fusion fits a meta-learner for every subset "
                f"of modalities (2**k - 1) and handles at most {MAX_MODALITIES}",
                where="LateFusion(modalities=)",
                fix=f"merge related modalities into one (same estimator over their columns) so at "
                    f"most {MAX_MODALITIES} remain, or use early fusion (ModalityIndicators)")
        names = []
        for i, spec in enumerate(specs):
            if not (isinstance(spec, tuple | list) and len(spec) == 3):
                raise OptionError(f"modalities[{i}] is not a (name, estimator, columns) triple",
                                  where=f"LateFusion(modalities[{i}])",
                                  fix="pass e.g. ('clinical', make_model('linear', ...), "
                                      "['age', 'sex'])")
            name, est, _ = spec
            if not isinstance(name, str) or not name or _SEP in name:
                raise OptionError(f"modality name {name!r} must be a non-empty string without "
                                  f"{_SEP!r}",
                                  where=f"LateFusion(modalities[{i}])", fix="rename the modality")
            if name in names:
                raise OptionError(f"modality {name!r} is given twice",
                                  where="LateFusion(modalities=)",
                                  fix="give each modality a distinct name")
            if not hasattr(est, "fit"):
                raise OptionError(f"the estimator of modality {name!r} has no fit method",
                                  where=f"LateFusion(modalities[{i}])",
                                  fix="pass an unfitted estimator")
            if self.task == "binary" and not hasattr(est, "predict_proba"):
                raise OptionError(f"the estimator of modality {name!r} has no predict_proba",
                                  where=f"LateFusion(modalities[{i}])",
                                  fix="use a classifier with probabilities for a binary task")
            names.append(name)
        return [tuple(s) for s in specs]

    def _check_X(self, X) -> pd.DataFrame:
        check_is_fitted(self, "meta_")
        X = _frame(X)
        need = [c for cols in self.columns_.values() for c in cols]
        absent = [c for c in need if c not in X.columns]
        if absent:
            shown = ", ".join(map(repr, absent[:8])) + (
                f", … ({len(absent)} in all)" if len(absent) > 8 else "")
            raise ValidationError([f"the table lacks {len(absent)} column(s) the fusion was "
                                   f"fitted on: {shown}"],
                                  fix="pass a table with every modality's columns (all-missing "
                                      "for a modality a patient lacks)")
        return X

    # ------------------------------------------------------------------ fit
    def fit(self, X, y) -> LateFusion:
        """Fit each modality's model, its inner out-of-fold predictions and every meta-learner.

        Parameters
        ----------
        X : pandas.DataFrame
            Patients × features; a modality a patient lacks has all its columns missing.
        y : array-like of shape (n_patients,)
            Outcome: two labels (binary) or numbers (continuous).

        Returns
        -------
        LateFusion
            ``self``.

        Raises
        ------
        OptionError
            For invalid parameters (including more than :data:`MAX_MODALITIES` modalities).
        ValidationError
            For an outcome that is not of the task's kind or not as long as ``X``.
        StudyError
            When a modality has too few patients (or one outcome only) to fit its model.
        """
        specs = self._check_params()
        X = _frame(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValidationError([f"y has shape {y.shape}, X has {len(X)} rows"],
                                  fix="pass one outcome per patient, in the rows' order")
        if pd.isna(y).any():
            raise ValidationError([f"{int(pd.isna(y).sum())} missing outcome(s)"],
                                  fix="drop patients without an outcome before fitting")
        self.columns_ = resolve_modalities({n: c for n, _, c in specs}, list(X.columns))
        self.modality_names_ = [n for n, _, _ in specs]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        binary = self.task == "binary"
        if binary:
            classes = np.unique(y)
            if len(classes) != 2:
                raise ValidationError([f"a binary outcome needs two labels, y has {len(classes)}"],
                                      fix="check the outcome column, or use task='continuous'")
            self.classes_ = classes
            t = (y == classes[1]).astype(int)
        else:
            try:
                t = y.astype(float)
            except (TypeError, ValueError):
                raise ValidationError(
                    ["a continuous outcome must be numeric"],
                    fix="check the outcome column, or use task='binary'") from None
        self.prior_ = float(np.mean(t))

        avail = availability(X, self.columns_).to_numpy()
        none = int((~avail.any(axis=1)).sum())
        if none:
            warnings.warn(f"LateFusion: {none} of {len(X)} patients have no modality at all "
                          f"(every column of {', '.join(self.modality_names_)} missing); they are "
                          "not used in fitting", PmedWarning, stacklevel=2)

        oof = np.full((len(X), len(specs)), np.nan)
        self.estimators_, self.n_patients_ = {}, {}
        for j, (name, est, _) in enumerate(specs):
            rows = np.flatnonzero(avail[:, j])
            self._check_enough(name, t[rows])
            Xm, ym = X.iloc[rows][self.columns_[name]], y[rows]
            if binary:
                cv = StratifiedKFold(self.inner_folds, shuffle=True, random_state=self.seed)
                # columns follow the sorted labels of ym, which holds both classes (checked above)
                p = cross_val_predict(clone(est), Xm, ym, cv=cv, method="predict_proba")
                oof[rows, j] = _logit(p[:, 1])
            else:
                cv = KFold(self.inner_folds, shuffle=True, random_state=self.seed)
                oof[rows, j] = cross_val_predict(clone(est), Xm, ym, cv=cv)
            self.estimators_[name] = clone(est).fit(Xm, ym)
            self.n_patients_[name] = len(rows)

        self.meta_, self.n_meta_ = {}, {}
        k = len(specs)
        for size in range(1, k + 1):
            for subset in combinations(range(k), size):
                # patients with every modality of the subset (they may have others too)
                rows = avail[:, list(subset)].all(axis=1)
                n = int(rows.sum())
                if n < self.min_patients or (binary and len(np.unique(t[rows])) < 2):
                    continue
                Z = oof[np.ix_(rows, list(subset))]
                meta = (LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000) if binary
                        else LinearRegression())
                key = _SEP.join(self.modality_names_[j] for j in subset)
                self.meta_[key] = meta.fit(Z, t[rows])
                self.n_meta_[key] = n
        return self

    def _check_enough(self, name: str, t: np.ndarray) -> None:
        n = len(t)
        need = max(self.min_patients, self.inner_folds)
        if n < need:
            raise StudyError(f"modality {name!r} is available for {n} training patients, fewer "
                             f"than the {need} its model needs (min_patients={self.min_patients}, "
                             f"inner_folds={self.inner_folds})",
                             where=f"modality {name!r}",
                             fix="drop the modality, merge it with another, or lower min_patients")
        if self.task == "binary":
            fewest = int(min(t.sum(), n - t.sum()))
            if fewest < self.inner_folds:
                raise StudyError(f"modality {name!r}: the patients who have it include {fewest} of "
                                 f"one outcome, fewer than inner_folds={self.inner_folds}",
                                 where=f"modality {name!r}",
                                 fix="lower inner_folds, or drop or merge the modality")

    # ------------------------------------------------------------------ predict
    def _route(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
        """Per patient, the key of the meta-learner used ("" for none); availability; fallbacks."""
        avail = availability(X, self.columns_).to_numpy()
        names = self.modality_names_
        fitted = [(key, frozenset(key.split(_SEP))) for key in self.meta_]
        keys = np.full(len(X), "", dtype=object)
        fallback = 0
        patterns, inverse = np.unique(avail, axis=0, return_inverse=True)
        for i, pattern in enumerate(patterns):
            have = frozenset(n for n, a in zip(names, pattern, strict=True) if a)
            rows = inverse.ravel() == i
            if not have:
                continue
            exact = _SEP.join(n for n in names if n in have)
            if exact in self.meta_:
                keys[rows] = exact
                continue
            # largest fitted subset of what the patient has; ties: more patients, then order
            best = max(((len(s), self.n_meta_[key], -idx, key)
                        for idx, (key, s) in enumerate(fitted) if s <= have), default=None)
            keys[rows] = "" if best is None else best[3]
            fallback += int(rows.sum())
        return keys, avail, fallback

    def _base(self, X: pd.DataFrame, avail: np.ndarray, j: int) -> np.ndarray:
        """Base predictions of modality ``j`` (logits for binary) where available, else NaN."""
        name = self.modality_names_[j]
        est = self.estimators_[name]
        rows = np.flatnonzero(avail[:, j])
        out = np.full(len(X), np.nan)
        if len(rows):
            Xm = X.iloc[rows][self.columns_[name]]
            if self.task == "binary":
                col = int(np.flatnonzero(np.asarray(est.classes_) == self.classes_[1])[0])
                out[rows] = _logit(est.predict_proba(Xm)[:, col])
            else:
                out[rows] = np.asarray(est.predict(Xm), dtype=float).ravel()
        return out

    def _values(self, X) -> np.ndarray:
        """Probability of ``classes_[1]`` (binary) or the prediction (continuous) per patient."""
        X = self._check_X(X)
        keys, avail, fallback = self._route(X)
        if fallback:
            warnings.warn(f"LateFusion: {fallback} of {len(X)} patients have a combination of "
                          "modalities with too few training patients for its own meta-learner; "
                          "they are predicted from the largest fitted subset of their modalities",
                          PmedWarning, stacklevel=3)
        none = int((keys == "").sum())
        if none:
            what = "prevalence" if self.task == "binary" else "mean"
            warnings.warn(f"LateFusion: {none} of {len(X)} patients have no modality at all; they "
                          f"get the training {what} ({self.prior_:.4g})", PmedWarning, stacklevel=3)
        out = np.full(len(X), self.prior_, dtype=float)
        index = {n: j for j, n in enumerate(self.modality_names_)}
        base: dict[int, np.ndarray] = {}
        for key in sorted(set(keys) - {""}):
            rows = keys == key
            cols = [index[n] for n in key.split(_SEP)]
            for j in cols:
                if j not in base:
                    base[j] = self._base(X, avail, j)
            Z = np.column_stack([base[j][rows] for j in cols])
            meta = self.meta_[key]
            out[rows] = meta.predict_proba(Z)[:, 1] if self.task == "binary" else meta.predict(Z)
        return out

    def modalities_used(self, X) -> pd.Series:
        """Which subset's meta-learner predicts each patient.

        Parameters
        ----------
        X : pandas.DataFrame
            Patients × (at least) every modality's columns.

        Returns
        -------
        pandas.Series of str
            Indexed as ``X``: modality names joined by ``"+"`` (``"clinical+prs"``), ``""`` for
            a patient with no modality (predicted by the training prevalence or mean).
        """
        X = self._check_X(X)
        keys, _, _ = self._route(X)
        return pd.Series(keys.astype(str), index=X.index, name="modalities_used", dtype=object)
