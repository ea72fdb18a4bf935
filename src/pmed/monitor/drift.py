"""Drift of new data against a model's reference summaries, and performance over time windows.

* :func:`drift_report` — per feature (and for the model's predictions): population
  stability index, a Kolmogorov–Smirnov test (numeric) or a chi-squared test (categorical),
  a missingness test; Benjamini–Hochberg correction across all tests; a drift flag that
  needs both significance and size.
* :func:`performance_by_window` — AUROC, AUPRC, Brier score and calibration of a binary
  model per time window, with confidence intervals.
* :func:`window_labels` — month, week or consecutive-block labels from a time column.

Statistics (reference side rebuilt from :func:`pmed.monitor.reference_summaries`):

PSI
    ``Σ (f_new − f_ref) · ln(f_new / f_ref)`` over the reference bins (numeric: the stored
    decile bins; categorical: the categories, plus one bin per category new in the new
    data). Empty bins would make the logarithm infinite, so both fraction vectors are
    smoothed first: ``f' = (f + ε) / (1 + k·ε)`` with ``ε = 1e-4`` (:data:`PSI_EPSILON`)
    and ``k`` bins. Conventional reading: < 0.1 stable, 0.1–0.2 moderate, ≥ 0.2 large.
KS (numeric)
    The reference CDF is rebuilt from the stored quantiles as the CDF of their linear
    interpolation: piecewise linear between distinct quantile values, with a jump where
    quantiles repeat (a discrete feature). ``D = sup |F_new − F_ref|`` is exact for that
    CDF (checked at every new value and every quantile, from both sides). The p-value is the
    two-sample one, since the reference is itself a sample of ``n_ref`` values, at the
    effective size ``n_e = m·n/(m+n)`` of the ``m`` reference and ``n`` new observed values:
    for ``n_e ≤ 10,000`` exactly as :func:`scipy.stats.ks_2samp` with ``method="asymp"``,
    ``kstwo.sf(D, round(n_e))``; above, where ``kstwo`` takes up to a second per call, the
    asymptotic Kolmogorov distribution with Stephens' small-sample correction,
    ``kstwobign.sf((√n_e + 0.12 + 0.11/√n_e)·D)`` (within 0.2% of ``kstwo`` for p ≥ 0.001
    at ``n_e = 10,000``, closer beyond). Against ``ks_2samp`` on the raw samples, ``D``
    differs only by the interpolation error of the stored quantiles (≤ 0.02 with 101
    quantiles at ``n_ref = 5000`` in the tests).
chi-squared (categorical)
    :func:`scipy.stats.chi2_contingency` (Pearson, no Yates correction) of the 2 × k table
    of reference counts (stored fraction × observed reference rows, rounded) against new
    counts. Categories only in the new data are columns of their own and listed in
    ``new_categories``.
Cramér's V (categorical)
    Computed on the two samples *weighted equally* (the 2 × k table of fractions), so it is
    a size of the shift that does not depend on the row counts: the V of the raw table
    shrinks toward 0 when the reference has far more rows than the new data, even for a
    20-point shift in a category.
missingness
    Pooled two-proportion z-test (= Pearson chi-squared of the 2 × 2 table) of the missing
    fraction in the reference vs the new data.

Drift rule (per feature, and for the predictions)
    All p-values of a report (every feature's distribution test and missingness test, and
    the predictions') form one family, corrected with Benjamini–Hochberg
    (:func:`scipy.stats.false_discovery_control`). A feature drifts when

    * its distribution test has ``p_adjusted < alpha`` **and** ``psi ≥ psi_threshold``
      (categorical: or Cramér's V ≥ 0.1), or
    * its missingness test has ``missing_p_adjusted < alpha`` **and** the missing fraction
      changed by at least 10 percentage points.

    Both significance and size are needed: with a million rows every trivial shift is
    significant, and with a few rows a large-looking PSI may be noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral

import numpy as np
import pandas as pd
from scipy import stats

from pmed.errors import OptionError, ValidationError, shorten
from pmed.evaluate.calibration import _check_n_boot, calibration_metrics
from pmed.evaluate.discrimination import _check_binary, delong_auc
from pmed.evaluate.metrics import _with_bootstrap, average_precision
from pmed.monitor.reference import (
    REFERENCE_VERSION,
    _as_float,
    _category_counts,
    _is_numeric,
    _num,
    _predictions_1d,
)

__all__ = [
    "drift_report",
    "performance_by_window",
    "window_labels",
    "psi",
    "PSI_EPSILON",
    "CRAMERS_V_THRESHOLD",
    "MISSING_CHANGE_THRESHOLD",
]

#: Smoothing of bin fractions before the PSI logarithm (see the module docstring).
PSI_EPSILON = 1e-4
#: Size threshold of a categorical shift (Cramér's V, samples weighted equally).
CRAMERS_V_THRESHOLD = 0.1
#: Size threshold of a missingness change (absolute difference of missing fractions).
MISSING_CHANGE_THRESHOLD = 0.10

_FIX_REFERENCE = "rebuild the reference with pmed.monitor.reference_summaries on the training data"


# --------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------

def psi(ref_fractions, new_fractions, *, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two fraction vectors over the same bins.

    Parameters
    ----------
    ref_fractions, new_fractions
        Share of the reference / new values in each bin (each summing to 1).
    epsilon
        Smoothing: each vector becomes ``(f + ε) / (1 + k·ε)`` for ``k`` bins, so an empty
        bin contributes a large but finite term.

    Returns
    -------
    float
        ``Σ (f_new − f_ref) · ln(f_new / f_ref)`` on the smoothed fractions (≥ 0).
    """
    r = np.asarray(ref_fractions, dtype=float)
    q = np.asarray(new_fractions, dtype=float)
    k = len(r)
    r = (r + epsilon) / (1 + k * epsilon)
    q = (q + epsilon) / (1 + k * epsilon)
    return float(np.sum((q - r) * np.log(q / r)))


def _ref_cdf(quantiles: np.ndarray):
    """Right-continuous CDF of the linear interpolation of the stored quantiles.

    Returns ``(u, p_lo, p_hi)``: the distinct quantile values, the CDF just below each
    (``F(u−)``) and at each (``F(u)``). Between ``u_k`` and ``u_k+1`` the CDF runs linearly
    from ``p_hi[k]`` to ``p_lo[k+1]``; below ``u_0`` it is 0, from ``u_-1`` on it is 1.
    """
    probs = np.linspace(0.0, 1.0, len(quantiles))
    u, first = np.unique(quantiles, return_index=True)
    last = np.searchsorted(quantiles, u, side="right") - 1
    return u, probs[first], probs[last]


def _cdf_sorted(xs: np.ndarray, u: np.ndarray, p_lo: np.ndarray, p_hi: np.ndarray,
                side: str) -> np.ndarray:
    """``F(x)`` (``side="right"``) or ``F(x−)`` (``side="left"``) of :func:`_ref_cdf`, for
    sorted ``xs``.

    Sorted input puts each linear piece of F on one slice of ``xs``: ``F(x)`` uses piece k
    on ``[u_k, u_k+1)``, ``F(x−)`` on ``(u_k, u_k+1]``. At most ``n_quantiles`` slices, each
    a vectorised step, so no per-row Python.
    """
    # the slice boundaries: first index with xs >= u_k (F(x)) or xs > u_k (F(x−))
    b = np.searchsorted(xs, u, side="left" if side == "right" else "right")
    f = np.empty(len(xs))
    f[: b[0]] = 0.0
    f[b[-1]:] = 1.0
    for k in range(len(u) - 1):
        lo, hi = b[k], b[k + 1]
        if hi > lo:
            slope = (p_lo[k + 1] - p_hi[k]) / (u[k + 1] - u[k])
            f[lo:hi] = p_hi[k] + (xs[lo:hi] - u[k]) * slope
    return f


def _ks_statistic(xs: np.ndarray, quantiles: np.ndarray) -> float:
    """``sup |F_new − F_ref|`` for sorted new values ``xs`` and the reference quantiles.

    Between consecutive new values F_new is constant and F_ref continuous and monotone, so
    the supremum is reached at a new value (from the right or the left) or at a jump of
    F_ref (a repeated quantile); all are checked. Ties in ``xs`` are handled by the
    ``i/n`` and ``(i−1)/n`` forms: the last (first) of a run of ties gives the true step.
    """
    n = len(xs)
    u, p_lo, p_hi = _ref_cdf(quantiles)
    if len(u) == len(quantiles):
        # distinct quantiles: F_ref is continuous, F(x−) = F(x), and np.interp is exactly it
        f_right = f_left = np.interp(xs, quantiles, np.linspace(0.0, 1.0, len(quantiles)))
    else:
        f_right = _cdf_sorted(xs, u, p_lo, p_hi, "right")
        f_left = _cdf_sorted(xs, u, p_lo, p_hi, "left")
    i = np.arange(1, n + 1, dtype=float)
    i /= n
    d = max(np.max(i - f_right), np.max(f_left - (i - 1 / n)))
    fn_left = np.searchsorted(xs, u, side="left") / n
    fn_right = np.searchsorted(xs, u, side="right") / n
    d = max(d, np.max(fn_left - p_lo), np.max(p_hi - fn_right))
    return float(min(max(d, 0.0), 1.0))


#: Largest effective sample size for which the exact ``kstwo`` distribution is used.
_KSTWO_MAX_N = 10_000


def _ks_p_value(d: float, n_ref: int, n_new: int) -> float:
    """Two-sample KS p-value (see the module docstring for the two regimes)."""
    en = n_ref * n_new / (n_ref + n_new)
    if en <= _KSTWO_MAX_N:
        p = stats.distributions.kstwo.sf(d, np.round(en))  # = ks_2samp(method="asymp")
    else:
        rn = np.sqrt(en)
        p = stats.distributions.kstwobign.sf((rn + 0.12 + 0.11 / rn) * d)
    return float(np.clip(p, 0.0, 1.0))


def _two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Pooled two-proportion z-test p-value (two-sided); ``None`` when a sample is empty."""
    if n1 == 0 or n2 == 0:
        return None
    pool = (k1 + k2) / (n1 + n2)
    if pool in (0.0, 1.0):
        return 1.0  # nothing missing anywhere (or everything): no difference to test
    z = (k1 / n1 - k2 / n2) / np.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    return float(2 * stats.norm.sf(abs(z)))


def _cramers_v_balanced(f_ref: np.ndarray, f_new: np.ndarray) -> float:
    """Cramér's V of the 2 × k table of fractions (the two samples weighted equally)."""
    table = np.vstack([f_ref, f_new])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0
    expected = np.broadcast_to(table.mean(axis=0), table.shape)
    chi2 = float(np.sum((table - expected) ** 2 / expected))
    return float(np.sqrt(chi2 / table.sum()))  # min(2, k) − 1 = 1


# --------------------------------------------------------------------------------------
# drift_report
# --------------------------------------------------------------------------------------

def _missing_part(n_ref: int, miss_ref: int, n_new: int, miss_new: int) -> dict:
    return {
        "missing_fraction_ref": miss_ref / n_ref if n_ref else None,
        "missing_fraction_new": miss_new / n_new if n_new else None,
        "missing_p_value": _two_proportion_p(miss_ref, n_ref, miss_new, n_new),
    }


def _numeric_drift(summary: Mapping, x: np.ndarray) -> dict:
    finite = np.isfinite(x)
    xs = np.sort(x[finite])
    n_new, n_obs = len(x), len(xs)
    n_ref, miss_ref = int(summary["n"]), int(summary["n_missing"])
    out = {
        "type": "numeric", "n_ref": n_ref, "n_new": n_new,
        "psi": None, "ks_statistic": None, "ks_p_value": None, "p_value": None,
        "mean_ref": summary.get("mean"), "mean_new": _num(xs.mean()) if n_obs else None,
        **_missing_part(n_ref, miss_ref, n_new, n_new - n_obs),
        "note": None,
    }
    if summary.get("quantiles") is None:
        out["note"] = summary.get("suppressed") or "no reference distribution stored"
        return out
    if n_obs == 0:
        out["note"] = "no observed values in the new data: only missingness is tested"
        return out
    edges = summary["bin_edges"]
    inner = np.asarray([e for e in edges[1:-1]], dtype=float)
    counts = np.diff(np.r_[0, np.searchsorted(xs, inner, side="left"), n_obs])
    out["psi"] = psi(summary["bin_fractions"], counts / n_obs)
    d = _ks_statistic(xs, np.asarray(summary["quantiles"], dtype=float))
    out["ks_statistic"] = d
    out["ks_p_value"] = out["p_value"] = _ks_p_value(d, n_ref - miss_ref, n_obs)
    return out


def _categorical_drift(summary: Mapping, s: pd.Series) -> dict:
    n_ref, miss_ref = int(summary["n"]), int(summary["n_missing"])
    ref_obs = n_ref - miss_ref
    new_counts, miss_new = _category_counts(s)
    n_new = len(s)
    new_obs = n_new - miss_new
    ref_freq = dict(summary["frequencies"])
    new_cats = [c for c, k in new_counts.items() if c not in ref_freq and k > 0]
    cats = list(ref_freq) + new_cats
    f_ref = np.array([float(ref_freq.get(c, 0.0)) for c in cats])
    c_new = np.array([new_counts.get(c, 0) for c in cats], dtype=float)
    out = {
        "type": "categorical", "n_ref": n_ref, "n_new": n_new,
        "psi": None, "chi2": None, "chi2_p_value": None, "cramers_v": None, "p_value": None,
        "new_categories": new_cats,
        "frequencies_new": {c: (new_counts.get(c, 0) / new_obs if new_obs else 0.0) for c in cats},
        **_missing_part(n_ref, miss_ref, n_new, miss_new),
        "note": None,
    }
    if ref_obs == 0 or new_obs == 0:
        out["note"] = "no observed values in the reference or the new data: only missingness is tested"
        return out
    f_new = c_new / new_obs
    out["psi"] = psi(f_ref, f_new)
    table = np.vstack([np.round(f_ref * ref_obs), c_new])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        chi2, p = 0.0, 1.0  # one category in both: nothing can differ
    else:
        res = stats.chi2_contingency(table, correction=False)
        chi2, p = float(res.statistic), float(res.pvalue)
    out.update(chi2=chi2, chi2_p_value=p, p_value=p, cramers_v=_cramers_v_balanced(f_ref, f_new))
    return out


def _check_reference(reference) -> None:
    if not isinstance(reference, Mapping) or "features" not in reference:
        raise ValidationError(["reference is not a pmed.monitor reference summary (no 'features')"],
                              fix=_FIX_REFERENCE)
    if reference.get("version") != REFERENCE_VERSION:
        raise ValidationError(
            [f"reference summary version {shorten(reference.get('version'))} is not the "
             f"supported version {REFERENCE_VERSION}"], fix=_FIX_REFERENCE)


def _new_column_as_float(s: pd.Series) -> tuple[np.ndarray, int]:
    """A new-data column for a numeric feature; ``(values, count of non-numeric entries)``."""
    if _is_numeric(s) or pd.api.types.is_bool_dtype(s.dtype):
        return _as_float(s), 0
    num = pd.to_numeric(s, errors="coerce")
    bad = int((num.isna() & s.notna()).sum())
    return _as_float(num), bad


def _flag(entry: dict, alpha: float, psi_threshold: float) -> None:
    """Apply the drift rule of the module docstring to one feature's entry (in place)."""
    reasons = []
    p_adj = entry.get("p_adjusted")
    if p_adj is not None and p_adj < alpha:
        if entry["psi"] is not None and entry["psi"] >= psi_threshold:
            reasons.append(f"distribution shift: PSI {entry['psi']:.3f} >= {psi_threshold:g}, "
                           f"adjusted p = {p_adj:.2g}")
        elif entry.get("cramers_v") is not None and entry["cramers_v"] >= CRAMERS_V_THRESHOLD:
            reasons.append(f"category shift: Cramér's V {entry['cramers_v']:.3f} >= "
                           f"{CRAMERS_V_THRESHOLD:g}, adjusted p = {p_adj:.2g}")
    mp = entry.get("missing_p_adjusted")
    if mp is not None and mp < alpha:
        change = entry["missing_fraction_new"] - entry["missing_fraction_ref"]
        if abs(change) >= MISSING_CHANGE_THRESHOLD:
            reasons.append(f"missingness changed by {100 * change:+.1f} points, adjusted p = {mp:.2g}")
    entry["drift_detected"] = bool(reasons)
    entry["reasons"] = reasons


def drift_report(
    reference: Mapping,
    X_new: pd.DataFrame,
    *,
    predictions=None,
    alpha: float = 0.05,
    psi_threshold: float = 0.2,
) -> dict:
    """Test new data (and the model's predictions on them) for drift from the reference.

    Parameters
    ----------
    reference
        The dict made by :func:`pmed.monitor.reference_summaries` (as stored in a bundle,
        after a JSON round trip or not).
    X_new
        New input rows; must hold every column of the reference (others are ignored).
    predictions
        The model's predictions on ``X_new``, one per row, or ``None``. Tested like a
        numeric feature when the reference holds a predictions summary.
    alpha
        False discovery rate for the Benjamini–Hochberg correction across all tests.
    psi_threshold
        Smallest PSI counted as a shift of consequence (0.2: the conventional "large").

    Returns
    -------
    dict
        ``{"version", "n_rows", "alpha", "psi_threshold", "rule", "features", "predictions",
        "drift_detected", "drifted_features", "n_tests"}``. ``features`` maps each column to

        * numeric: ``psi``, ``ks_statistic``, ``ks_p_value``, ``mean_ref``, ``mean_new``;
        * categorical: ``psi``, ``chi2``, ``chi2_p_value``, ``cramers_v``,
          ``new_categories``, ``frequencies_new``;
        * both: ``n_ref``, ``n_new``, ``p_value`` (the KS or chi-squared p-value),
          ``p_adjusted``, ``missing_fraction_ref``, ``missing_fraction_new``,
          ``missing_p_value``, ``missing_p_adjusted``, ``drift_detected``, ``reasons`` and
          ``note`` (why a test was skipped, else ``None``).

        Statistics that cannot be computed (a reference summary suppressed for having fewer
        than 20 values, a column entirely missing) are ``None``. ``predictions`` has the
        numeric layout, or is ``None``. ``drift_detected`` is true when any feature or the
        predictions drifted.

        The rule (see the module docstring): a feature drifts when its distribution test
        is significant after Benjamini–Hochberg correction (``p_adjusted < alpha``) **and**
        the shift is large (``psi ≥ psi_threshold``, or for a categorical feature Cramér's
        V ≥ 0.1), or when its missingness test is significant (``missing_p_adjusted <
        alpha``) **and** the missing fraction moved by ≥ 10 percentage points. Requiring
        both keeps a million rows from flagging trivial shifts.

    Raises
    ------
    pmed.errors.ValidationError
        ``X_new`` lacks columns of the reference (named), has no rows, or holds text in a
        numeric feature; ``reference`` is not a reference summary; predictions of the
        wrong length.
    pmed.errors.OptionError
        ``alpha`` outside (0, 1) or a negative ``psi_threshold``.
    """
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise OptionError(f"alpha must be between 0 and 1; got {shorten(alpha)}", fix="use alpha=0.05")
    if not (isinstance(psi_threshold, (int, float)) and psi_threshold >= 0):
        raise OptionError(f"psi_threshold must be >= 0; got {shorten(psi_threshold)}",
                          fix="use psi_threshold=0.2")
    _check_reference(reference)
    if not isinstance(X_new, pd.DataFrame):
        raise ValidationError([f"X_new must be a pandas DataFrame; got {type(X_new).__name__}"],
                              fix="pass the new input rows as a DataFrame")
    by_name = {str(c): c for c in X_new.columns}
    features = reference["features"]
    missing = [f for f in features if f not in by_name]
    if missing:
        shown = ", ".join(shorten(m) for m in missing[:20])
        more = f" … ({len(missing)} in all)" if len(missing) > 20 else ""
        raise ValidationError(
            [f"X_new lacks {len(missing)} of the model's {len(features)} columns: {shown}{more}"],
            fix="pass the same feature columns the model was trained on, with the same names "
                "(extra columns are ignored)")
    if len(X_new) == 0:
        raise ValidationError(["X_new has no rows"], fix="pass at least one new row")

    entries: dict[str, dict] = {}
    not_numeric = []
    for name, summary in features.items():
        col = X_new[by_name[name]]
        if summary["type"] == "numeric":
            x, bad = _new_column_as_float(col)
            if bad:
                not_numeric.append(f"column {shorten(name)}: {bad} values are not numbers")
                continue
            entries[name] = _numeric_drift(summary, x)
        else:
            entries[name] = _categorical_drift(summary, col)
    if not_numeric:
        raise ValidationError(not_numeric, fix="numeric features must hold numbers (or be empty "
                                               "for missing); clean or convert these columns")

    pred_entry = None
    if predictions is not None and reference.get("predictions") is not None:
        pred_entry = _numeric_drift(reference["predictions"], _predictions_1d(predictions, len(X_new)))

    # one Benjamini–Hochberg family: every distribution and missingness test of the report
    slots = [(e, key) for e in [*entries.values(), pred_entry] if e is not None
             for key in ("p_value", "missing_p_value") if e[key] is not None]
    adjusted = (stats.false_discovery_control([e[k] for e, k in slots], method="bh")
                if slots else [])
    for e in [*entries.values(), pred_entry]:
        if e is not None:
            e["p_adjusted"] = e["missing_p_adjusted"] = None
    for (e, key), a in zip(slots, adjusted, strict=True):
        e["p_adjusted" if key == "p_value" else "missing_p_adjusted"] = float(a)
    for e in [*entries.values(), pred_entry]:
        if e is not None:
            _flag(e, alpha, psi_threshold)

    drifted = [n for n, e in entries.items() if e["drift_detected"]]
    return {
        "version": REFERENCE_VERSION,
        "n_rows": int(len(X_new)),
        "alpha": float(alpha),
        "psi_threshold": float(psi_threshold),
        "rule": (f"drift = (BH-adjusted p < {alpha:g} and (PSI >= {psi_threshold:g} or, "
                 f"categorical, Cramér's V >= {CRAMERS_V_THRESHOLD:g})) or (BH-adjusted "
                 f"missingness p < {alpha:g} and |change in missing fraction| >= "
                 f"{MISSING_CHANGE_THRESHOLD:g})"),
        "n_tests": len(slots),
        "features": entries,
        "predictions": pred_entry,
        "drifted_features": drifted,
        "drift_detected": bool(drifted) or bool(pred_entry and pred_entry["drift_detected"]),
    }


# --------------------------------------------------------------------------------------
# performance over time
# --------------------------------------------------------------------------------------

def window_labels(times: pd.Series, window: str | int) -> pd.Series:
    """Label each row with its time window.

    Parameters
    ----------
    times
        A date/time per row (datetime values or text that :func:`pandas.to_datetime`
        parses; for ``window`` an integer, numbers are accepted too and ordered as numbers).
    window
        ``"month"`` (labels ``"2024-03"``), ``"week"`` (Monday–Sunday weeks, labels
        ``"2024-03-04/2024-03-10"``) or an integer ``N``: consecutive blocks of ``N`` rows in
        time order (labels 0, 1, …; the last block may be shorter; ties keep row order).

    Returns
    -------
    pandas.Series
        The labels, named ``"window"``, with the index of ``times``. Month and week labels
        sort in time order as text.

    Raises
    ------
    pmed.errors.ValidationError
        Times that do not parse or are missing (how many, and the first rows), or numbers
        given for a month/week window.
    pmed.errors.OptionError
        ``window`` not ``"month"``, ``"week"`` or a whole number >= 1.
    """
    by_rows = isinstance(window, Integral) and not isinstance(window, bool)
    if by_rows and window < 1 or not by_rows and window not in ("month", "week"):
        raise OptionError(f"window must be 'month', 'week' or a whole number of rows >= 1; "
                          f"got {shorten(window)}", fix="use window='month'")
    times = pd.Series(times) if not isinstance(times, pd.Series) else times
    numeric = _is_numeric(times)
    if numeric and not by_rows:
        raise ValidationError(
            [f"times are numbers ({times.dtype}), not dates: months and weeks cannot be told"],
            fix="pass dates (e.g. '2024-03-15') or use window=N for blocks of N rows")
    if numeric:
        parsed = pd.Series(_as_float(times), index=times.index)
        bad = ~np.isfinite(parsed.to_numpy())
    else:
        parsed = pd.to_datetime(times, errors="coerce", utc=True, format="mixed")
        bad = parsed.isna().to_numpy()
    if bad.any():
        pos = np.flatnonzero(bad)
        rows = ", ".join(str(r) for r in pos[:5]) + (" …" if len(pos) > 5 else "")
        raise ValidationError(
            [f"{len(pos)} of {len(times)} times are missing or do not parse as dates "
             f"(rows at positions {rows})"],
            fix="give every row a date, e.g. '2024-03-15' or '2024-03-15T08:30:00'")
    if by_rows:
        order = np.argsort(parsed.to_numpy(), kind="stable")
        block = np.empty(len(order), dtype=int)
        block[order] = np.arange(len(order)) // int(window)
        return pd.Series(block, index=times.index, name="window")
    naive = parsed.dt.tz_localize(None)
    period = naive.dt.to_period("M" if window == "month" else "W")
    return pd.Series(period.astype(str), index=times.index, name="window")


def _reference_value(v) -> float | None:
    if isinstance(v, Mapping):
        v = v.get("estimate")
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _count_option(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
        raise OptionError(f"{name} must be a whole number >= 1; got {shorten(v)}",
                          fix=f"use e.g. {name}={50 if name == 'min_rows' else 10}")
    return int(v)


def _window_metrics(y: np.ndarray, p: np.ndarray, n_boot: int, seed: int) -> dict:
    out = {"auroc": delong_auc(y, p)}
    boot = _with_bootstrap(
        lambda i: {"auprc": average_precision(y[i], p[i]), "brier": float(np.mean((p[i] - y[i]) ** 2))},
        len(y), y, n_boot, seed, 0.95)
    out.update(boot)
    cal = calibration_metrics(y, p, n_boot=0)
    out["calibration_in_the_large"] = cal["calibration_in_the_large"]
    out["calibration_slope"] = cal["calibration_slope"]
    return out


def _label(w):
    if isinstance(w, (np.integer, int)) and not isinstance(w, bool):
        return int(w)
    return str(w)


def performance_by_window(
    y,
    p,
    *,
    windows=None,
    reference_metrics: Mapping | None = None,
    n_boot: int = 200,
    seed: int = 0,
    min_rows: int = 50,
    min_events: int = 10,
) -> list[dict]:
    """Discrimination and calibration of a binary model in each time window, with CIs.

    Parameters
    ----------
    y
        Observed outcome, 0/1, one per row.
    p
        Predicted probability of the outcome, in [0, 1], one per row.
    windows
        Window label per row (e.g. from :func:`window_labels`), or ``None`` for one window
        ``"all"``. Windows are reported in sorted label order.
    reference_metrics
        The model's metrics at training time (``{"auroc": 0.81, ...}``; values may also be
        ``{"estimate": ...}`` dicts, as pmed's evaluation writes them). Each window metric
        with a reference gets ``reference``, ``difference`` (window − reference) and
        ``reference_outside_ci``.
    n_boot, seed
        Bootstrap resamples (stratified by outcome) and seed for the AUPRC and Brier CIs.
    min_rows, min_events
        A window with fewer rows, or fewer than ``min_events`` patients with the event or
        fewer without it, is not evaluated (its numbers would be noise).

    Returns
    -------
    list of dict
        One per window: ``window``, ``n``, ``events``, ``prevalence``, ``mean_prediction``
        and either ``insufficient: True`` with a ``reason``, or ``insufficient: False`` and

        * ``auroc`` — DeLong CI (:func:`pmed.evaluate.delong_auc`);
        * ``auprc``, ``brier`` — stratified percentile bootstrap CIs;
        * ``calibration_in_the_large`` — the calibration intercept: intercept of
          ``glm(y ~ offset(logit(p)), binomial)``, ideal 0;
        * ``calibration_slope`` — slope of ``glm(y ~ logit(p), binomial)``, ideal 1 (below
          1: predictions too extreme);

        each ``{"estimate", "ci_low", "ci_high", "method"}`` (95% level; the calibration
        ones from :func:`pmed.evaluate.calibration_metrics`, with Wald CIs and ``se``).

    Raises
    ------
    pmed.errors.ValidationError
        Outcomes not 0/1, probabilities outside [0, 1] or missing, lengths that differ,
        missing window labels.
    pmed.errors.OptionError
        ``min_rows`` or ``min_events`` not a whole number >= 1.
    """
    n_boot = _check_n_boot(n_boot)
    min_rows = _count_option(min_rows, "min_rows")
    min_events = _count_option(min_events, "min_events")
    y, p = _check_binary(y, p, probability=True, require_both_classes=False)
    if windows is None:
        labels = np.full(len(y), "all", dtype=object)
    else:
        labels = np.asarray(windows.to_numpy() if isinstance(windows, pd.Series) else windows,
                            dtype=object)
        if labels.ndim != 1 or len(labels) != len(y):
            raise ValidationError([f"windows has {labels.size} labels but y has {len(y)} values"],
                                  fix="pass one window label per row (see window_labels)")
        na = pd.isna(labels)
        if na.any():
            raise ValidationError([f"{int(na.sum())} rows have no window label"],
                                  fix="give every row a window label (see window_labels)")
    uniq = list(pd.unique(labels))
    try:
        uniq = sorted(uniq)
    except TypeError:
        pass  # mixed label types: keep the order of first appearance
    ref = {k: _reference_value(v) for k, v in (reference_metrics or {}).items()}

    results = []
    for w in uniq:
        idx = labels == w
        yw, pw = y[idx], p[idx]
        n, events = int(len(yw)), int(yw.sum())
        row = {"window": _label(w), "n": n, "events": events, "prevalence": events / n,
               "mean_prediction": float(pw.mean())}
        if n < min_rows:
            reason = f"{n} rows (fewer than min_rows={min_rows})"
        elif events < min_events:
            reason = f"{events} events (fewer than min_events={min_events})"
        elif n - events < min_events:
            reason = f"{n - events} rows without the event (fewer than min_events={min_events})"
        else:
            reason = None
        if reason:
            results.append({**row, "insufficient": True, "reason": reason})
            continue
        metrics = _window_metrics(yw, pw, n_boot, seed)
        for k, m in metrics.items():
            r = ref.get(k)
            if r is not None:
                m["reference"] = r
                m["difference"] = m["estimate"] - r
                m["reference_outside_ci"] = bool(not (m["ci_low"] <= r <= m["ci_high"]))
        results.append({**row, "insufficient": False, **metrics})
    return results
