"""Reference summaries of a model's training data, small enough to ship inside a model bundle.

:func:`reference_summaries` condenses the training table (and the model's training-time
predictions) into per-feature summaries from which :func:`pmed.monitor.drift_report` later
tests new data for drift. Only aggregates are kept, never a patient's row:

numeric feature
    ``n`` (rows), ``n_missing``, ``quantiles`` (``n_quantiles`` values at
    ``linspace(0, 1, n_quantiles)``, numpy's default linear interpolation = R's type 7),
    ``bin_edges`` (the ``n_bins``-quantiles of the training values — deciles by default —
    deduplicated, with unbounded outer edges), ``bin_fractions`` (share of the observed
    values in each bin ``[edge_i, edge_i+1)``), ``mean``, ``std`` (ddof 1).
categorical feature (pandas ``category``, ``object``, ``string`` or ``bool`` column)
    ``n``, ``n_missing``, ``frequencies`` ``{category: fraction of observed values}``;
    categories are keyed by ``str(value)`` (whole floats as integers: ``1.0`` is ``"1"``).

Unbounded outer bin edges are written ``None`` (``null``): strict JSON, which pmed writes
everywhere (:func:`pmed.io.jsonio.to_json`), has no infinity. :mod:`pmed.monitor.drift`
reads ``None`` and ``±inf`` alike as unbounded.

Small features are not summarised in distribution
    With fewer than :data:`MIN_N_DISTRIBUTION` (20) observed values a quantile list is
    essentially the sorted values themselves — with one patient every quantile *is* that
    patient's value, with a handful each quantile is one value or an average of two
    neighbours — and the mean of one value is that value. Such a feature keeps only its
    counts (``n``, ``n_missing``); ``quantiles``, ``bin_edges``, ``bin_fractions``, ``mean``
    and ``std`` are ``None`` and ``suppressed`` says why. Drift of such a feature is then
    tested on missingness only.

Non-finite numbers (``±inf``) count as missing: no quantile or bin can hold them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pmed.errors import OptionError, ValidationError, shorten

__all__ = ["reference_summaries", "REFERENCE_VERSION", "MIN_N_DISTRIBUTION"]

#: Layout version of the summaries dict; bumped when keys change meaning.
REFERENCE_VERSION = 1

#: Fewest observed values for which quantiles, bins, mean and std are stored (see module doc).
MIN_N_DISTRIBUTION = 20

_TASKS = ("binary", "continuous", "survival")


# --------------------------------------------------------------------------------------
# helpers shared with pmed.monitor.drift
# --------------------------------------------------------------------------------------

def _is_numeric(s: pd.Series) -> bool:
    """Numbers are summarised by quantiles; booleans (two levels) by frequencies."""
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _unsupported(s: pd.Series) -> bool:
    dt = s.dtype
    return (pd.api.types.is_datetime64_any_dtype(dt) or pd.api.types.is_timedelta64_dtype(dt)
            or pd.api.types.is_complex_dtype(dt) or isinstance(dt, pd.PeriodDtype))


def _as_float(values) -> np.ndarray:
    """A numeric column as float64, with NaN for missing (nullable dtypes included)."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float)


def _category_key(value) -> str:
    """The JSON key of a category: ``str(value)``, with whole floats written as integers.

    pandas turns an integer column with a missing value into floats, so code ``1`` comes back
    as ``1.0`` in new data; both must be the same category.
    """
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _category_counts(s: pd.Series) -> tuple[dict[str, int], int]:
    """``({category key: count}, n_missing)``; unused levels of a Categorical count 0."""
    missing = int(s.isna().sum())
    vc = s.value_counts(dropna=True, sort=False)
    counts: dict[str, int] = {}
    if isinstance(s.dtype, pd.CategoricalDtype):
        for c in s.cat.categories:
            counts[_category_key(c)] = 0
    for k, v in vc.items():
        # two values with one text form (1 and "1") are one category once stored as JSON keys
        key = _category_key(k)
        counts[key] = counts.get(key, 0) + int(v)
    return counts, missing


def _bin_counts(x_observed: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Counts in bins ``[e_i, e_i+1)`` delimited by ``inner_edges`` (outer edges unbounded)."""
    idx = np.searchsorted(inner_edges, x_observed, side="right")
    return np.bincount(idx, minlength=len(inner_edges) + 1)


def _num(v: float) -> float | None:
    """A float for strict JSON: ``None`` for NaN/inf."""
    v = float(v)
    return v if np.isfinite(v) else None


def _numeric_summary(x: np.ndarray, n_bins: int, n_quantiles: int) -> dict:
    finite = np.isfinite(x)
    obs = x[finite]
    out: dict = {"type": "numeric", "n": int(len(x)), "n_missing": int(len(x) - len(obs))}
    if len(obs) < MIN_N_DISTRIBUTION:
        out.update(quantiles=None, bin_edges=None, bin_fractions=None, mean=None, std=None,
                   suppressed=(f"{len(obs)} observed values (< {MIN_N_DISTRIBUTION}): quantiles, "
                               "bins, mean and std are not stored, as they would show "
                               "individual patients' values"))
        return out
    q = np.quantile(obs, np.linspace(0.0, 1.0, n_quantiles))
    inner = np.unique(np.quantile(obs, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    counts = _bin_counts(obs, inner)
    out.update(
        quantiles=[float(v) for v in q],
        bin_edges=[None, *(float(v) for v in inner), None],
        bin_fractions=[float(c) / len(obs) for c in counts],
        mean=_num(np.mean(obs)),
        std=_num(np.std(obs, ddof=1)),
        suppressed=None,
    )
    return out


def _categorical_summary(s: pd.Series) -> dict:
    counts, missing = _category_counts(s)
    n_obs = len(s) - missing
    return {
        "type": "categorical",
        "n": int(len(s)),
        "n_missing": missing,
        "frequencies": {k: (c / n_obs if n_obs else 0.0) for k, c in counts.items()},
    }


def _check_whole(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise OptionError(f"{name} must be a whole number >= {low}; got {shorten(value)}",
                          fix=f"pass e.g. {name}={10 if name == 'n_bins' else 101}")
    return int(value)


def _predictions_1d(predictions, n: int) -> np.ndarray:
    p = np.asarray(predictions.to_numpy() if isinstance(predictions, (pd.Series, pd.DataFrame))
                   else predictions)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim != 1:
        raise ValidationError([f"predictions must be one value per row; got an array of shape {p.shape}"],
                              fix="pass the predicted probability of the outcome (or the predicted "
                                  "value), one per row")
    if len(p) != n:
        raise ValidationError([f"predictions has {len(p)} values but the data have {n} rows"],
                              fix="pass the predictions of the same rows, in the same order")
    try:
        return p.astype(float)
    except (TypeError, ValueError):
        raise ValidationError(["predictions are not numbers"],
                              fix="pass numeric predictions (probabilities or values)") from None


# --------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------

def reference_summaries(
    X: pd.DataFrame,
    *,
    predictions=None,
    task: str = "binary",
    metrics: Mapping | None = None,
    n_bins: int = 10,
    n_quantiles: int = 101,
) -> dict:
    """Summaries of the training data for later drift monitoring; aggregates only, JSON-able.

    Parameters
    ----------
    X
        The model's input table (one row per patient, the model's feature columns).
        Numeric columns are summarised by quantiles and bins; ``category``, ``object``,
        ``string`` and ``bool`` columns by category frequencies.
    predictions
        The model's predictions on ``X`` (probability of the outcome for a binary task,
        predicted value otherwise), one per row, or ``None``. Summarised like a numeric
        feature, under ``"predictions"``.
    task
        ``"binary"``, ``"continuous"`` or ``"survival"``; stored for the reader.
    metrics
        Performance of the model at training time (e.g. cross-validated AUROC), kept as given
        under ``"metrics"`` for :func:`pmed.monitor.performance_by_window` to compare against.
    n_bins
        Number of quantile bins for the population stability index (deciles by default);
        fewer remain where quantiles coincide (a 0/1 feature has at most 3 bins).
    n_quantiles
        Number of quantiles stored (at ``linspace(0, 1, n_quantiles)``) to rebuild the
        reference CDF for the Kolmogorov–Smirnov test.

    Returns
    -------
    dict
        ``{"version", "task", "n_rows", "settings", "columns", "features", "predictions",
        "metrics"}`` where ``features`` maps each column name (as ``str``) to its summary
        (see the module docstring for the keys). Every value is a plain Python number,
        string, list, dict or ``None``: ``json.dumps(..., allow_nan=False)`` accepts it.
        Features with fewer than 20 observed values keep only their counts (``suppressed``
        says so), so no individual's value is stored.

    Raises
    ------
    pmed.errors.ValidationError
        ``X`` not a DataFrame, empty, with duplicated column names or date/complex columns;
        predictions of the wrong shape or length.
    pmed.errors.OptionError
        Unknown ``task``; ``n_bins`` < 2 or ``n_quantiles`` < 3.
    """
    if task not in _TASKS:
        raise OptionError(f"task must be one of {', '.join(_TASKS)}; got {shorten(task)}",
                          fix="pass task='binary' for a yes/no outcome")
    n_bins = _check_whole(n_bins, "n_bins", 2)
    n_quantiles = _check_whole(n_quantiles, "n_quantiles", 3)
    if not isinstance(X, pd.DataFrame):
        raise ValidationError([f"X must be a pandas DataFrame; got {type(X).__name__}"],
                              fix="pass the model's input table as a DataFrame")
    if metrics is not None and not isinstance(metrics, Mapping):
        raise ValidationError([f"metrics must be a dict; got {type(metrics).__name__}"],
                              fix="pass e.g. {'auroc': 0.81, 'brier': 0.12}, or None")
    problems = []
    names = [str(c) for c in X.columns]
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        problems.append(f"duplicated column names: {', '.join(map(shorten, dup))}")
    if len(X) == 0:
        problems.append("X has no rows")
    bad = [str(c) for c in X.columns if _unsupported(X[c])] if not dup else []
    if bad:
        problems.append(f"date/time or complex columns cannot be summarised: {', '.join(map(shorten, bad))}")
    if problems:
        raise ValidationError(problems, fix="pass the model's feature table: unique column names, "
                                            "numeric or categorical columns, at least one row")

    features = {}
    for col in X.columns:
        s = X[col]
        features[str(col)] = (_numeric_summary(_as_float(s), n_bins, n_quantiles) if _is_numeric(s)
                              else _categorical_summary(s))
    pred = None
    if predictions is not None:
        pred = _numeric_summary(_predictions_1d(predictions, len(X)), n_bins, n_quantiles)
    return {
        "version": REFERENCE_VERSION,
        "task": task,
        "n_rows": int(len(X)),
        "settings": {"n_bins": n_bins, "n_quantiles": n_quantiles,
                     "min_n_distribution": MIN_N_DISTRIBUTION},
        "columns": names,
        "features": features,
        "predictions": pred,
        "metrics": None if metrics is None else dict(metrics),
    }
