"""SHAP explanations on the probability scale, grouped back to the user's input features.

Two long-standing complaints about SHAP for clinical models are that values come in log-odds
(shap#29) and that one-hot columns are not grouped back to the variable the clinician knows
(shap#963). :func:`explain` answers both: for a binary classifier the explained output is
``predict_proba[:, 1]`` — a SHAP value of 0.12 means "+12 percentage points of predicted
risk" — for a survival model given a ``horizon`` it is the chance of the event by then,
``1 − S(horizon | x)``, and every encoded column (standardised value, missingness indicator, one-hot level)
is credited to the input feature it came from (:func:`pmed.models.importance.input_feature_of_outputs`).

All methods are *interventional* SHAP with a background sample of patients: the base value is
the mean prediction over the background, and for every patient
``base_value + values.sum(axis=1) == prediction`` (local accuracy). Which explainer is used
depends on the model (see :func:`explain`).

shap (and its numba dependency) is imported only when an explanation is computed, so
``import pmed.explain`` stays light.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import factorial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

from pmed.errors import NotFoundError, OptionError, PmedWarning, StudyError
from pmed.models.importance import input_feature_of_outputs

if TYPE_CHECKING:
    from pmed.schema import TableSchema

__all__ = ["PatientExplanations", "explain", "global_importance", "top_factors", "METHODS"]

#: explainer choices accepted by :func:`explain`
METHODS = ("auto", "tree", "linear", "exact", "permutation")

# exact Shapley enumerates 2**p coalitions of input features: up to 10 features (1024
# coalitions) that is cheaper than sampling enough permutations for stable values
_MAX_EXACT_FEATURES = 10
# cap on the hybrid (patient × coalition × background × column) array built per model call
_MAX_CELLS = 4_000_000


@dataclass
class PatientExplanations:
    """SHAP values of a set of patients, one column per input feature.

    Attributes
    ----------
    values
        Patients × input features. Binary targets: change in predicted probability of the
        positive outcome (0.12 = +12 percentage points); continuous targets: change in the
        predicted outcome, in its units.
    base_value
        The mean prediction over the background patients: where every explanation starts.
    data
        The patients' input feature values (categories as text, missing as NaN).
    prediction
        The model's prediction for each patient (probability for binary targets, the chance
        of the event by ``horizon`` for survival models explained at a horizon).
    scale
        ``"probability"``, ``"outcome"``, or for survival models explained at a horizon
        ``"probability of the event by <horizon> [<time_unit>]"``.
    method
        The explainer used (``tree``, ``linear``, ``exact``, ``permutation``).
    n_background
        How many background patients the expectations are taken over.
    max_local_error
        ``max |base_value + values.sum(axis=1) - prediction|`` over patients.
    feature_types
        Feature → ``"numeric"``, ``"binary"`` (0/1) or ``"categorical"``, as the
        preprocessor encodes it (used to phrase values: "Diabetes: yes", "Smoking: never").
    horizon, time_unit
        Survival models: the horizon the chance of the event is explained at, and its unit
        (``None`` otherwise).
    """

    values: pd.DataFrame
    base_value: float
    data: pd.DataFrame
    prediction: pd.Series
    scale: str
    method: str
    n_background: int
    max_local_error: float
    feature_types: dict[str, str] = field(default_factory=dict)
    horizon: float | None = None
    time_unit: str | None = None

    @property
    def on_probability_scale(self) -> bool:
        """Whether the values are changes in a probability (binary risk, chance of the event)."""
        return self.scale == "probability" or self.horizon is not None

    @property
    def what(self) -> str:
        """The explained output in words: ``"the predicted risk"``, ``"the chance of the event
        within 1825 days"`` or ``"the prediction"``."""
        if self.horizon is not None:
            return f"the chance of the event within {_horizon_words(self.horizon, self.time_unit)}"
        return "the predicted risk" if self.scale == "probability" else "the prediction"

    def to_shap(self) -> Any:
        """The same explanations as a :class:`shap.Explanation`, for shap's own plots.

        ``data`` holds numbers (categorical features as NaN, so colour-by-value plots show
        them in grey rather than colouring arbitrary category codes as "high" or "low");
        ``display_data`` holds the values as text for labels.
        """
        import shap

        n = len(self.values)
        return shap.Explanation(
            values=self.values.to_numpy(dtype=float),
            base_values=np.full(n, self.base_value),
            data=_numeric_data(self.data, self.feature_types).to_numpy(dtype=float),
            display_data=np.array(
                [[_format_value(v) for v in row] for row in self.data.itertuples(index=False)],
                dtype=object,
            ).reshape(n, self.data.shape[1]),
            feature_names=[str(c) for c in self.values.columns],
        )


# ---------------------------------------------------------------------------- computation
def explain(
    pipeline: Pipeline,
    X: pd.DataFrame,
    *,
    background: pd.DataFrame | None = None,
    max_background: int = 100,
    seed: int = 0,
    method: str = "auto",
    n_permutations: int = 10,
    horizon: float | None = None,
    time_unit: str | None = None,
) -> PatientExplanations:
    """SHAP values of a fitted ``preprocess → model`` pipeline, per input feature.

    Binary classifiers are explained on the probability scale (model output
    ``predict_proba[:, 1]``), regressors on the outcome's scale, survival models (with
    ``horizon``) on the chance of the event by the horizon, ``1 − S(horizon | x)``. The model
    is explained on the encoded matrix the preprocessor gives it, and every encoded column is
    credited to its input feature.

    Parameters
    ----------
    pipeline
        A fitted pipeline with steps ``preprocess`` and ``model`` (:func:`pmed.models.make_model`).
    X
        The patients to explain: a table with the pipeline's input columns, indexed by patient.
    background
        Patients defining "typical" (the training table is the natural choice); ``X`` if not
        given. At most ``max_background`` of its rows are used, drawn with ``seed``.
    max_background
        Cap on background rows; the cost of every method grows linearly with it.
    seed
        Random state for the background sample and for permutation sampling.
    method
        ``"auto"`` (default) picks:

        - ``"tree"`` for random forests, decision trees and LightGBM: shap's TreeExplainer,
          interventional, ``model_output="probability"`` for classifiers. Exact; values are
          computed per encoded column and summed per input feature (SHAP values are additive,
          so the sum is the feature's exact share).
        - ``"linear"`` for linear regressors (ridge, elastic net): ``coef · (x − mean
          background)`` per encoded column, summed per feature — what shap's LinearExplainer
          gives with an independent masker, exact.
        - ``"exact"`` otherwise when there are at most 10 input features (logistic
          regression, SVM, …): exact interventional Shapley values with the *input features*
          as players, i.e. all encoded columns of a feature are swapped for the background's
          together. This never creates impossible patients (two one-hot levels set at once,
          a value with its "missing" indicator on) and costs ``2**p`` coalitions rather than
          ``2**(encoded columns)``. (shap's LinearExplainer is not used for logistic
          regression because it explains log-odds, not probabilities.)
        - ``"permutation"`` for more features: the same feature-level Shapley values
          estimated from ``n_permutations`` random orders of the features, each walked
          forwards and backwards (antithetic sampling, as shap's PermutationExplainer). The
          values are estimates, but each order telescopes, so local accuracy still holds
          exactly. (Implemented here rather than with shap's explainer, whose numba
          compilation costs 20 s or more on first use in every process.)
    n_permutations
        Random feature orders for ``"permutation"`` (each also used reversed).
    horizon
        Survival pipelines only (:func:`pmed.models.make_model` with ``task="survival"``): the
        time at which the chance of the event, ``1 − S(horizon | x)``, is explained; a value of
        0.04 means "+4 percentage points of chance of the event by the horizon". Must be > 0
        and at most the model's last training follow-up time. Methods: ``"exact"`` (the
        default up to 10 input features) or ``"permutation"``; ``"tree"`` and ``"linear"`` do
        not apply (the output is neither a tree's nor linear in the features). A Kaplan–Meier
        model (``km``) gives every patient the same curve, so all its values are 0.
    time_unit
        Unit of ``horizon`` (``"days"``), used only to word the explanations.

    Returns
    -------
    PatientExplanations
        ``values`` (patients × input features), ``base_value``, ``data``, ``prediction``.
        Local accuracy, ``base_value + values.sum(axis=1) == prediction``, holds to
        floating-point precision for every method (measured: below 1e-7 for trees, relative
        to the outcome's scale for regressors; below 1e-12 for the others); a
        :class:`RuntimeWarning` is raised if it is off by more than 1e-6 (relative to the
        outcome's scale for regressors), and ``max_local_error`` records it.

    Notes
    -----
    Cost in model evaluations: ``exact`` ``n × 2**p × background``; ``permutation``
    ``n × 2 × n_permutations × (p + 1) × background``. Slow models (SVM) with many patients: lower
    ``max_background`` or explain a subset of patients.
    """
    if method not in METHODS:
        raise StudyError(f"unknown explanation method {method!r}", fix=f"use one of: {', '.join(METHODS)}")
    pre, model = _steps(pipeline)
    if horizon is not None:
        horizon = _check_horizon(model, horizon, method)
    X = _inputs(pre, X)
    bg = X if background is None else _inputs(pre, background)
    if len(X) == 0 or len(bg) == 0:
        raise OptionError("explain needs at least one patient to explain and one background patient",
                          fix="pass a non-empty X and background")
    if len(bg) > max_background:
        rows = np.sort(np.random.default_rng(seed).choice(len(bg), max_background, replace=False))
        bg = bg.iloc[rows]
    binary = is_classifier(model)
    f = _output_function(model, binary) if horizon is None else _event_probability(model, horizon)
    features = [str(c) for c in X.columns]
    owners = _owners(pipeline)
    Zx, Zb = _encode(pre, X), _encode(pre, bg)
    if len(owners) != Zx.shape[1]:
        raise StudyError(
            f"the preprocessor gives {Zx.shape[1]} columns but {len(owners)} could be traced to input features",
            fix="explain pipelines built by pmed.models.make_model",
        )
    position = {f: i for i, f in enumerate(features)}
    gidx = np.array([position[str(o)] for o in owners], dtype=np.int64)

    if horizon is None:
        kind = _choose_method(model, binary, method, n_features=len(np.unique(gidx)))
    else:  # checked by _check_horizon: exact or permutation
        kind = method if method != "auto" else (
            "exact" if len(np.unique(gidx)) <= _MAX_EXACT_FEATURES else "permutation")
    if kind == "tree":
        col_values, base = _tree_values(model, Zx, Zb, binary)
        values = _group_columns(col_values, gidx, len(features))
    elif kind == "linear":
        coef = np.ravel(model.coef_)
        col_values = (Zx - Zb.mean(axis=0)) * coef
        values, base = _group_columns(col_values, gidx, len(features)), float(f(Zb).mean())
    else:
        players = np.unique(gidx)
        local = np.searchsorted(players, gidx)  # column → player position
        if kind == "exact":
            pv, base = _exact_grouped(f, Zx, Zb, local, len(players))
        else:
            pv, base = _permutation_grouped(f, Zx, Zb, local, len(players), seed=seed,
                                            n_permutations=n_permutations)
        values = np.zeros((len(X), len(features)))
        values[:, players] = pv

    pred = f(Zx)
    err = float(np.max(np.abs(base + values.sum(axis=1) - pred)))
    probability = binary or horizon is not None
    tol = 1e-6 * (1.0 if probability else max(1.0, float(np.max(np.abs(pred)))))
    if err > tol:
        warnings.warn(
            f"SHAP local accuracy is off by {err:.2g} (method {kind!r}): base value + sum of "
            "values does not reproduce the prediction; treat these explanations with care",
            PmedWarning, stacklevel=2)
    return PatientExplanations(
        values=pd.DataFrame(values, index=X.index, columns=features),
        base_value=float(base),
        data=X.copy(),
        prediction=pd.Series(pred, index=X.index, name="probability" if probability else "prediction"),
        scale=("probability" if binary else "outcome") if horizon is None
        else f"probability of the event by {_horizon_words(horizon, time_unit)}",
        method=kind,
        n_background=len(bg),
        max_local_error=err,
        feature_types=_feature_types(pre, features),
        horizon=horizon,
        time_unit=time_unit,
    )


def _horizon_words(horizon: float, unit: str | None) -> str:
    return f"{horizon:g}" + (f" {unit}" if unit else "")


def _check_horizon(model, horizon: Any, method: str) -> float:
    """The horizon as a float, checked against the model it is asked of."""
    from pmed.survival.models import _SurvivalModel

    if not isinstance(model, _SurvivalModel):
        raise OptionError(f"horizon is for survival models; this pipeline's model is {type(model).__name__}",
                          fix="leave horizon out, or explain a pipeline from make_model(..., task='survival')")
    try:
        h = float(horizon)
    except (TypeError, ValueError):
        raise OptionError(f"horizon must be a number, got {horizon!r}", fix="pass e.g. horizon=1825") from None
    max_time = float(model.max_time_)
    if not (np.isfinite(h) and h > 0):
        raise OptionError(f"horizon must be a time > 0, got {horizon!r}", fix="pass e.g. horizon=1825")
    if h > max_time:
        raise OptionError(f"horizon {h:g} is beyond the last follow-up time of the training data "
                          f"({max_time:g}): the model has no survival estimate there",
                          fix=f"choose a horizon ≤ {max_time:g}")
    if method in ("tree", "linear"):
        # the chance of the event by a horizon is neither a tree ensemble's raw output nor
        # linear in the features (a Cox model is linear in log-hazard, not in 1 − S)
        raise OptionError(f"method {method!r} cannot explain the chance of the event by a horizon",
                          fix="use method='auto', 'exact' or 'permutation'")
    return h


#: rows per call to a survival model's predict_survival: most models compute each row's whole
#: curve over the training times before reading the horizon, so unbounded batches of
#: coalition rows (patients × coalitions × background) would need gigabytes
_SURVIVAL_CHUNK = 4096


def _event_probability(model, horizon: float) -> Callable[[np.ndarray], np.ndarray]:
    """``Z ↦ 1 − S(horizon | Z)`` of a fitted survival model, in bounded batches."""
    def f(Z: np.ndarray) -> np.ndarray:
        out = np.empty(len(Z))
        for i in range(0, len(Z), _SURVIVAL_CHUNK):
            out[i:i + _SURVIVAL_CHUNK] = 1.0 - model.predict_survival(Z[i:i + _SURVIVAL_CHUNK], [horizon])[:, 0]
        return out

    return f


def _owners(pipeline: Pipeline) -> list[str]:
    """The input feature of each encoded column (:func:`input_feature_of_outputs`).

    The ``cox`` family's preprocessor (:func:`pmed.survival.models.cox_preprocessor`) imputes
    with a bare ``SimpleImputer`` and drops the first one-hot level, which that function does
    not trace; those are walked here, in the ColumnTransformer's output order.
    """
    try:
        return input_feature_of_outputs(pipeline)
    except (AttributeError, KeyError):
        pass
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    owners: list[str] = []
    for name, trans, cols in pipeline.named_steps["preprocess"].transformers_:
        if name == "remainder" or trans == "drop" or len(cols) == 0:
            continue
        cols = [str(c) for c in cols]
        steps = dict(trans.steps) if isinstance(trans, Pipeline) else {name: trans}
        onehot = next((s for s in steps.values() if isinstance(s, OneHotEncoder)), None)
        imputer = next((s for s in steps.values() if isinstance(s, SimpleImputer)), None)
        if onehot is not None:
            drop = onehot.drop_idx_ if onehot.drop_idx_ is not None else [None] * len(cols)
            for col, cats, d in zip(cols, onehot.categories_, drop, strict=True):
                owners += [col] * (len(cats) - (d is not None))
        else:
            owners += cols
            if imputer is not None and imputer.indicator_ is not None:
                owners += [cols[i] for i in imputer.indicator_.features_]
    return owners


def _steps(pipeline: Pipeline):
    steps = getattr(pipeline, "named_steps", {})
    if "preprocess" not in steps or "model" not in steps:
        raise StudyError("explanations need a pipeline with steps 'preprocess' and 'model'",
                         fix="build it with pmed.models.make_model and fit it")
    return steps["preprocess"], steps["model"]


def _inputs(pre, X: pd.DataFrame) -> pd.DataFrame:
    """The pipeline's input columns of ``X``, in the order it was fitted with."""
    cols = list(getattr(pre, "feature_names_in_", X.columns))
    missing = [c for c in cols if c not in X.columns]
    if missing:
        raise StudyError(f"missing input column(s) the model needs: {', '.join(map(str, missing[:12]))}",
                         fix="pass the same columns the pipeline was trained on")
    return X[cols]


def _feature_types(pre, features: list[str]) -> dict[str, str]:
    kind = {"num": "numeric", "bin": "binary", "cat": "categorical"}
    out = {}
    for name, _, cols in getattr(pre, "transformers_", []):
        if name in kind:
            out.update({str(c): kind[name] for c in cols})
    return {f: out.get(f, "numeric") for f in features}


def _encode(pre, X: pd.DataFrame) -> np.ndarray:
    Z = pre.transform(X)
    if hasattr(Z, "toarray"):
        Z = Z.toarray()
    return np.asarray(Z, dtype=np.float64)


def _output_function(model, binary: bool) -> Callable[[np.ndarray], np.ndarray]:
    if binary:
        classes = getattr(model, "classes_", None)
        if classes is not None and len(classes) != 2:
            raise StudyError(f"explanations support binary classifiers; this one has {len(classes)} classes")
        return lambda Z: np.asarray(model.predict_proba(Z))[:, 1]
    return lambda Z: np.asarray(model.predict(Z), dtype=float).ravel()


def _tree_kind(model) -> str | None:
    if type(model).__module__.startswith("lightgbm") and hasattr(model, "booster_"):
        return "lightgbm"
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    sk = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor,
          DecisionTreeClassifier, DecisionTreeRegressor)
    return "sklearn" if isinstance(model, sk) else None


def _choose_method(model, binary: bool, method: str, *, n_features: int) -> str:
    if method == "tree" and _tree_kind(model) is None:
        raise StudyError(f"method 'tree' needs a tree model, not {type(model).__name__}",
                         fix="use method='auto'")
    linear_ok = not binary and hasattr(model, "coef_") and np.ravel(model.coef_).size == model.n_features_in_
    if method == "linear" and not linear_ok:
        raise StudyError("method 'linear' explains linear regressors only (logistic models are "
                         "explained on the probability scale, which is not linear)",
                         fix="use method='auto'")
    if method != "auto":
        return method
    if _tree_kind(model) is not None:
        return "tree"
    if linear_ok:
        return "linear"
    return "exact" if n_features <= _MAX_EXACT_FEATURES else "permutation"


def _group_columns(col_values: np.ndarray, gidx: np.ndarray, n_features: int) -> np.ndarray:
    """Sum encoded-column SHAP values into their input features (exact: SHAP is additive)."""
    out = np.zeros((col_values.shape[0], n_features))
    np.add.at(out.T, gidx, col_values.T)
    return out


def _tree_values(model, Zx: np.ndarray, Zb: np.ndarray, binary: bool) -> tuple[np.ndarray, float]:
    import shap

    sklearn_tree = _tree_kind(model) == "sklearn"
    data = Zb
    if sklearn_tree:
        # scikit-learn trees see float32 inputs; the background must take the same branches
        # as in model.predict, or the base value and the values disagree
        data = Zb.astype(np.float32).astype(np.float64)
    ex = shap.TreeExplainer(model, data=data, feature_perturbation="interventional",
                            model_output="probability" if binary else "raw")
    if sklearn_tree:
        _snap_thresholds_to_float32(ex.model)
    sv = ex.shap_values(Zx, check_additivity=False)  # checked below, on the pipeline's output
    if isinstance(sv, list):  # older shap: one array per class
        sv = sv[-1]
    sv = np.asarray(sv, dtype=np.float64)
    if sv.ndim == 3:  # (patients, columns, classes): the positive class
        sv = sv[..., -1]
    base = float(np.ravel(np.atleast_1d(ex.expected_value))[-1])
    return sv, base


def _snap_thresholds_to_float32(ensemble) -> None:
    """Replace each split threshold by the largest float32 not above it.

    scikit-learn compares float32 inputs with float64 thresholds. shap's interventional
    algorithm (0.51) evidently compares in float32, so an input equal to ``float32(threshold)``
    but above the float64 threshold goes left in shap and right in scikit-learn — measured:
    local accuracy off by 0.02–0.04 in probability on a 300-patient cohort. For float32 inputs
    ``x <= t`` and ``x <= floor32(t)`` are the same test, so this changes no prediction and
    makes shap follow scikit-learn's branches.
    """
    th = np.asarray(ensemble.thresholds, dtype=np.float64)
    t32 = th.astype(np.float32)
    t32 = np.where(t32.astype(np.float64) > th, np.nextafter(t32, np.float32(-np.inf)), t32)
    ensemble.thresholds = t32.astype(np.float64)


def _coalition_values(
    f: Callable[[np.ndarray], np.ndarray], Zx: np.ndarray, Zb: np.ndarray, take_x: np.ndarray
) -> np.ndarray:
    """``V[i, k] = mean_b f(row)``, the row taking patient ``i``'s columns where ``take_x[k]``
    is true and background row ``b``'s elsewhere (interventional expectation)."""
    n, m = Zx.shape
    B, K = len(Zb), len(take_x)
    V = np.empty((n, K))
    n_chunk = max(1, _MAX_CELLS // (K * B * m))
    k_chunk = K if n_chunk > 1 else max(1, _MAX_CELLS // (B * m))
    for i in range(0, n, n_chunk):
        zx = Zx[i:i + n_chunk]
        for k in range(0, K, k_chunk):
            tk = take_x[k:k + k_chunk]
            H = np.where(tk[None, :, None, :], zx[:, None, None, :], Zb[None, None, :, :])
            out = f(H.reshape(-1, m)).reshape(len(zx), len(tk), B)
            V[i:i + len(zx), k:k + len(tk)] = out.mean(axis=2)
    return V


def _exact_grouped(
    f: Callable[[np.ndarray], np.ndarray], Zx: np.ndarray, Zb: np.ndarray, player: np.ndarray, p: int
) -> tuple[np.ndarray, float]:
    """Exact interventional Shapley values with groups of encoded columns as players.

    ``v(S) = mean_b f(x_S, b_rest)``: the columns of players in ``S`` from the patient, all
    others from background row ``b``. ``phi_j = sum_{S ∌ j} |S|!(p−|S|−1)!/p! (v(S∪j) − v(S))``.
    """
    K = 1 << p
    coalitions = ((np.arange(K)[:, None] >> np.arange(p)) & 1).astype(bool)  # K × p
    V = _coalition_values(f, Zx, Zb, coalitions[:, player])
    size = coalitions.sum(axis=1)
    weight = np.array([factorial(s) * factorial(p - s - 1) / factorial(p) for s in range(p)])
    phi = np.empty((len(Zx), p))
    for j in range(p):
        without = np.flatnonzero(~coalitions[:, j])
        phi[:, j] = (V[:, without | (1 << j)] - V[:, without]) @ weight[size[without]]
    return phi, float(V[:, 0].mean())  # V[:, 0]: nothing from the patient = mean background output


def _permutation_grouped(
    f: Callable[[np.ndarray], np.ndarray], Zx: np.ndarray, Zb: np.ndarray, player: np.ndarray,
    p: int, *, seed: int, n_permutations: int,
) -> tuple[np.ndarray, float]:
    """Antithetic permutation sampling of the same Shapley values (as shap's PermutationExplainer).

    Each sampled order of the players is walked forwards and backwards; a player's value is
    the average change in ``v`` when it joins. Along any order the changes telescope to
    ``v(all) − v(none) = f(x) − mean background output``, so local accuracy is exact even
    though the values are estimates. The same orders are used for every patient.
    """
    rng = np.random.default_rng(seed)
    phi = np.zeros((len(Zx), p))
    base = np.nan
    prefix = np.tril(np.ones((p + 1, p), dtype=bool), k=-1)  # row k: the first k players
    for _ in range(n_permutations):
        order = rng.permutation(p)
        for perm in (order, order[::-1]):
            coalitions = np.zeros((p + 1, p), dtype=bool)
            coalitions[:, perm] = prefix
            V = _coalition_values(f, Zx, Zb, coalitions[:, player])
            phi[:, perm] += np.diff(V, axis=1)
            base = float(V[:, 0].mean())
    return phi / (2 * n_permutations), base


# ---------------------------------------------------------------------------- summaries
def global_importance(expl: PatientExplanations) -> pd.DataFrame:
    """Mean absolute SHAP value of each input feature over the explained patients.

    Returns
    -------
    pandas.DataFrame
        ``feature, mean_abs_shap, rank`` (1 = most important), on the explanation's scale
        (probability for binary targets), ties broken by name so reruns are identical.
    """
    s = expl.values.abs().mean(axis=0)
    df = pd.DataFrame({"feature": s.index.astype(str), "mean_abs_shap": s.to_numpy(dtype=float)})
    df = df.sort_values(["mean_abs_shap", "feature"], ascending=[False, True], kind="mergesort")
    df["rank"] = np.arange(1, len(df) + 1)
    return df.reset_index(drop=True)


def top_factors(
    expl: PatientExplanations,
    patient_id: Any,
    *,
    n: int = 5,
    units: Mapping[str, str] | TableSchema | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[str]:
    """The patient's strongest factors, as plain-language sentences.

    For example ``"Age 84 years raises the predicted risk by 12 percentage points"`` or
    ``"Smoking: never lowers the predicted risk by 3.1 percentage points"``; survival models
    explained at a horizon: ``"Age 84 years raises the chance of the event within 1825 days by
    4 percentage points"``. Each sentence
    reads on its own (a report may show only the first). Features with no effect are left out.

    Parameters
    ----------
    expl
        From :func:`explain`.
    patient_id
        Index label of the patient in ``expl.values``.
    n
        Largest number of sentences, strongest factor first.
    units
        Feature → unit (``{"age": "years"}``), or a :class:`~pmed.schema.TableSchema` whose
        column units are used.
    labels
        Feature → display name (``{"crp": "CRP"}``); by default the column name with
        underscores as spaces and a capital first letter.

    Returns
    -------
    list of str
    """
    if patient_id not in expl.values.index:
        raise NotFoundError("the patient asked for is not among the explained patients",
                            fix="explain that patient first (pass their row to explain())")
    unit_of = _units(units)
    row = expl.values.loc[patient_id]
    if isinstance(row, pd.DataFrame):  # duplicated index label
        raise NotFoundError("the patient asked for appears more than once in the explanations",
                            fix="give each explained row a unique patient ID")
    order = row.abs().sort_values(ascending=False, kind="mergesort").index
    out = []
    for feat in order:
        v = float(row[feat])
        if len(out) >= n or abs(v) < 1e-12:
            break
        label = _feature_phrase(feat, expl.data.loc[patient_id, feat],
                                expl.feature_types.get(feat, "numeric"),
                                unit=unit_of.get(feat), label=(labels or {}).get(feat))
        verb = "raises" if v > 0 else "lowers"
        if expl.on_probability_scale:
            amount = _amount(100 * abs(v))
            point = "point" if amount == "1" else "points"
            out.append(f"{label} {verb} {expl.what} by {amount} percentage {point}")
        else:
            out.append(f"{label} {verb} {expl.what} by {_amount(abs(v))}")
    return out


def _units(units) -> dict[str, str]:
    if units is None:
        return {}
    cols = getattr(units, "columns", None)
    if isinstance(cols, Mapping):  # a TableSchema
        return {str(c): s.unit for c, s in cols.items() if getattr(s, "unit", None)}
    return {str(k): str(v) for k, v in units.items()}


def _amount(x: float) -> str:
    if x >= 9.95:
        return f"{x:.0f}"
    if x >= 0.05:
        return f"{x:.1f}".removesuffix(".0")
    return "less than 0.1"


def _pretty(name: str) -> str:
    s = str(name).replace("_", " ").strip()
    return s[:1].upper() + s[1:] if s else s


def _feature_phrase(feat: str, value: Any, kind: str, *, unit: str | None,
                    label: str | None) -> str:
    name = label or _pretty(feat)
    if pd.isna(value):
        return f"{name} not recorded"
    if kind == "binary":
        return f"{name}: {'yes' if float(value) == 1.0 else 'no'}"
    if kind != "categorical" and isinstance(value, (int, float, np.integer, np.floating)):
        return f"{name} {_format_value(value)}" + (f" {unit}" if unit else "")
    return f"{name}: {value}"


def _format_value(v: Any) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "missing"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def _numeric_data(data: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    out = {}
    for c in data.columns:
        s = data[c]
        if types.get(str(c)) == "categorical" or isinstance(s.dtype, pd.CategoricalDtype) \
                or not pd.api.types.is_numeric_dtype(s):
            out[c] = np.full(len(s), np.nan)
        else:
            out[c] = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    return pd.DataFrame(out, index=data.index)
