"""A fitted pipeline's preprocessing as plain numpy: the same numbers, without scikit-learn's
per-call overhead.

A service answers one patient at a time. For one row, a fitted :class:`ColumnTransformer`
spends some 7 ms validating, slicing and re-assembling DataFrames to do a handful of
subtractions; the LightGBM model behind it takes well under 1 ms. :func:`compile_pipeline`
reads the fitted statistics of the common steps (``SimpleImputer``, ``StandardScaler``,
``OneHotEncoder``, ``passthrough``, nested ``Pipeline``/``ColumnTransformer``) and replays
them with numpy; the final estimator is called as before, on a frame with the same column
names.

Nothing is trusted blindly: :func:`compile_pipeline` returns ``None`` for any step it does not
know, and :meth:`CompiledPipeline.verify` compares both paths on probe rows (every category,
the typical value, the range ends, missing values); a bundle uses the compiled path only when
the preprocessed rows are identical and the predictions equal to 1e-12 (a linear model may sum
the same numbers in another order) (:meth:`pmed.study.bundle.ModelBundle.scorer`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CompiledPipeline", "compile_pipeline"]

#: a compiled step: the input frame (its columns as the step was fitted) -> a float matrix
_Step = Callable[[pd.DataFrame], np.ndarray]


def _is_missing_nan(imputer) -> bool:
    mv = imputer.missing_values
    return mv is None or (isinstance(mv, float) and np.isnan(mv)) or mv is pd.NA


def _imputer(imp) -> _Step | None:
    from sklearn.impute import SimpleImputer

    if type(imp) is not SimpleImputer or not _is_missing_nan(imp):
        return None
    stats = np.asarray(imp.statistics_)
    if not imp.keep_empty_features and pd.isna(stats).any():
        return None  # sklearn drops the columns empty in training: not replayed here
    indicator = getattr(imp, "indicator_", None) if imp.add_indicator else None
    if indicator is not None and (indicator.features != "missing-only" or indicator.sparse not in (False, "auto")):
        return None
    which = None if indicator is None else np.asarray(indicator.features_, dtype=int)
    numeric = stats.dtype.kind in "fiu"

    def step(X) -> np.ndarray:
        if numeric:
            a = (X.to_numpy(dtype=float, na_value=np.nan) if isinstance(X, pd.DataFrame)
                 else np.asarray(X, dtype=float))
            miss = np.isnan(a)
            a = np.where(miss, stats.astype(float), a)
        else:
            a = X.astype(object).to_numpy() if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=object)
            miss = pd.isna(a)
            a = np.where(miss, stats[None, :], a)
        if which is not None:
            a = np.hstack([a, miss[:, which].astype(a.dtype if numeric else object)])
        return a

    return step


def _scaler(sc) -> _Step | None:
    from sklearn.preprocessing import StandardScaler

    if type(sc) is not StandardScaler:
        return None
    mean = sc.mean_ if sc.with_mean else None
    scale = sc.scale_ if sc.with_std else None

    def step(a) -> np.ndarray:
        a = np.array(a, dtype=float)
        if mean is not None:
            a -= mean
        if scale is not None:
            a /= scale
        return a

    return step


def _onehot(enc) -> _Step | None:
    from sklearn.preprocessing import OneHotEncoder

    if (type(enc) is not OneHotEncoder or getattr(enc, "_infrequent_enabled", False)
            or enc.handle_unknown not in ("ignore", "error")):
        return None
    drop = enc.drop_idx_
    blocks = []
    for j, cats in enumerate(enc.categories_):
        keep = [k for k in range(len(cats)) if drop is None or drop[j] is None or k != drop[j]]
        blocks.append(({c: i for i, c in enumerate(cats[keep].tolist())}, len(keep)))
    width = sum(n for _, n in blocks)

    def step(a) -> np.ndarray:
        a = np.asarray(a, dtype=object)
        out = np.zeros((a.shape[0], width))
        start = 0
        for j, (index, n) in enumerate(blocks):
            for i, v in enumerate(a[:, j]):
                k = index.get(v)
                if k is None and enc.handle_unknown == "error" and not any(v == c for c in enc.categories_[j]):
                    raise ValueError(f"unknown category {v!r}")
                if k is not None:
                    out[i, start + k] = 1.0
            start += n
        return out

    return step


def _chain(steps: list[Callable]) -> _Step:
    def step(X):
        for s in steps:
            X = s(X)
        return X

    return step


def _transformer(t) -> _Step | None:
    """A compiled fitted transformer, or None where it is not one this module replays."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(t, ColumnTransformer):
        return _column_transformer(t)
    if type(t) is Pipeline:
        parts = [_transformer(s) for _, s in t.steps if s not in (None, "passthrough")]
        return None if any(p is None for p in parts) else _chain(parts)
    for make in (_imputer, _scaler, _onehot):
        step = make(t)
        if step is not None:
            return step
    return None


def _column_transformer(ct) -> _Step | None:
    from sklearn.compose import ColumnTransformer

    if (type(ct) is not ColumnTransformer or not hasattr(ct, "transformers_")
            or getattr(ct, "sparse_output_", False)):
        return None  # not fitted, or sparse output
    names_in = list(getattr(ct, "feature_names_in_", []))
    parts: list[tuple[list[str], Any]] = []
    for _, trans, cols in ct.transformers_:
        if trans == "drop":
            continue
        cols = list(cols) if not isinstance(cols, str) else [cols]
        if cols and all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in cols):
            if not names_in:
                return None
            cols = [names_in[int(c)] for c in cols]
        if not cols or (isinstance(cols[0], bool | np.bool_)):
            if not cols:
                continue
            return None  # a boolean mask: not worth replaying
        if trans == "passthrough":
            parts.append((cols, None))
            continue
        step = _transformer(trans)
        if step is None:
            return None
        parts.append((cols, step))

    def step(X) -> np.ndarray:
        # the columns as arrays once (a Categorical gives objects with NaN, as sklearn sees it)
        arrays = _columns(X)
        outs = []
        for cols, s in parts:
            if s is None:
                outs.append(np.column_stack([np.asarray(arrays[c], dtype=float) for c in cols]))
            elif isinstance(s, _ColumnStep):
                outs.append(s({c: arrays[c] for c in cols}))
            else:
                outs.append(s(np.column_stack([arrays[c] for c in cols])))
        n = len(next(iter(arrays.values()))) if arrays else 0
        return np.hstack(outs).astype(float) if outs else np.zeros((n, 0))

    return _ColumnStep(step)


class _ColumnStep:
    """A compiled ColumnTransformer: takes a frame or a mapping of column name to array."""

    def __init__(self, f):
        self.f = f

    def __call__(self, X):
        return self.f(X)


def _columns(X) -> dict:
    if isinstance(X, pd.DataFrame):
        return {c: X[c].to_numpy() if X[c].dtype.kind in "fiub" else X[c].to_numpy(dtype=object, na_value=np.nan)
                for c in X.columns}
    return X


class CompiledPipeline:
    """A fitted :class:`~sklearn.pipeline.Pipeline` whose preprocessing runs as numpy.

    ``predict``, ``predict_proba`` and ``decision_function`` call the fitted final estimator
    on the replayed preprocessing; use :func:`compile_pipeline` to make one and
    :meth:`verify` before trusting it.
    """

    def __init__(self, pipeline, transform: _Step):
        self.pipeline = pipeline
        self._transform = transform
        self.final_ = pipeline.steps[-1][1]
        names = getattr(self.final_, "feature_names_in_", None)
        self._names = None if names is None else list(names)
        self._booster = _lightgbm_booster(self.final_)

    def transform(self, X: pd.DataFrame):
        """The preprocessing's output: a frame with the final estimator's column names, when it
        was fitted with names, else a float matrix."""
        a = self._transform(X)
        return a if self._names is None else pd.DataFrame(a, columns=self._names, index=X.index, copy=False)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self._booster is not None and self._booster[1] == "regression":
            return self._booster[0].predict(self._transform(X))
        return self.final_.predict(self.transform(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self._booster is not None and self._booster[1] == "binary":
            p = self._booster[0].predict(self._transform(X))
            return np.vstack((1.0 - p, p)).T  # as LGBMClassifier.predict_proba assembles them
        return self.final_.predict_proba(self.transform(X))

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return self.final_.decision_function(self.transform(X))

    def verify(self, probe: pd.DataFrame, *, method: str) -> bool:
        """Whether this path gives the pipeline's numbers on ``probe``: the preprocessing's
        output exactly, and the final ``method`` (``predict`` or ``predict_proba``) to 1e-12."""
        try:
            ref = self.pipeline[:-1].transform(probe)
            ours = self._transform(probe)
            ref = np.asarray(ref.to_numpy() if hasattr(ref, "to_numpy") else ref, dtype=float)
            if ref.shape != ours.shape or not np.array_equal(ref, ours, equal_nan=True):
                return False
            # the final estimator may see the same numbers in another memory layout, and BLAS may
            # then sum in another order: equal to the last bits, not beyond
            return bool(np.allclose(np.asarray(getattr(self.pipeline, method)(probe), dtype=float),
                                    np.asarray(getattr(self, method)(probe), dtype=float),
                                    rtol=1e-12, atol=1e-15, equal_nan=True))
        except Exception:  # any failure of the replay means: use scikit-learn's own path
            return False


def _lightgbm_booster(est) -> tuple[Any, str] | None:
    """A LightGBM model's booster and its kind (binary, regression), to call without the
    scikit-learn wrapper's per-call parameter handling; None for anything else."""
    kind = {"LGBMClassifier": "binary", "LGBMRegressor": "regression"}.get(type(est).__name__)
    if kind is None or not type(est).__module__.startswith("lightgbm") or callable(est.objective):
        return None
    if kind == "binary" and getattr(est, "n_classes_", 2) != 2:
        return None
    return est.booster_, kind


def compile_pipeline(pipeline) -> CompiledPipeline | None:
    """A :class:`CompiledPipeline` for a fitted ``Pipeline(ColumnTransformer(...), ..., model)``,
    or ``None`` where a step is not one this module replays (the caller keeps the pipeline)."""
    from sklearn.pipeline import Pipeline

    if type(pipeline) is not Pipeline or len(pipeline.steps) < 2:
        return None
    steps = [_transformer(s) for _, s in pipeline.steps[:-1] if s not in (None, "passthrough")]
    if not steps or any(s is None for s in steps):
        return None
    return CompiledPipeline(pipeline, _chain(steps))
