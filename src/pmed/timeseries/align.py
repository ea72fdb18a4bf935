"""Alignment: per-patient windows, a regular time grid, forward fill with a maximum age, masks.

The grid keeps what a sequence model needs to learn from missingness (GRU-D, Che et al. 2018):
for each patient, time step and variable the observed value (or NaN), the mask (1 when
measured in that step) and ``delta``, the hours since the variable was last measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pmed.errors import InputError
from pmed.timeseries._options import (
    TimeseriesOptionError,
    check_choice,
    check_positive,
    check_window,
)

__all__ = ["window", "rolling_windows", "to_grid", "Grid"]


def _check_long(data: pd.DataFrame) -> None:
    miss = [c for c in ("patient_id", "time", "variable", "value") if c not in data.columns]
    if miss:
        raise InputError(f"not a long table: missing column(s) {', '.join(miss)}",
                         fix="use a reader of pmed.timeseries, which returns patient_id, time, variable, value")


def window(data: pd.DataFrame, *, start: float = 0.0, end: float = 48.0) -> pd.DataFrame:
    """Rows with ``start <= time <= end`` (hours), e.g. the first 48 h after admission."""
    _check_long(data)
    check_window(start, end)
    t = data["time"].to_numpy(float)
    return data[(t >= start) & (t <= end)].reset_index(drop=True)


def rolling_windows(data: pd.DataFrame, *, width: float, step: float, start: float = 0.0,
                    end: float | None = None) -> pd.DataFrame:
    """Overlapping windows ``[w, w + width)`` for ``w = start, start + step, …``.

    Returns the rows of each window with a ``window`` column (its start, hours); a row falls in
    every window that covers it. Summarise per window with
    ``summarize(..., by="window")``.
    """
    _check_long(data)
    check_positive("width", width)
    check_positive("step", step)
    t = data["time"].to_numpy(float)
    end = float(np.nanmax(t)) if end is None else end
    parts = []
    for w in np.arange(start, end, step):
        sel = (t >= w) & (t < w + width)
        if sel.any():
            parts.append(data[sel].assign(window=float(w)))
    if not parts:
        return data.iloc[:0].assign(window=pd.Series(dtype=float))
    return pd.concat(parts, ignore_index=True)


@dataclass
class Grid:
    """Patients × time steps × variables on a regular grid.

    Attributes
    ----------
    values
        ``(n_patients, n_steps, n_variables)``: the value aggregated within each step, NaN
        where nothing was measured.
    mask
        Same shape, 1.0 where the variable was measured in the step.
    delta
        Hours since the variable was last measured before the step (GRU-D's δ); counted from
        the window start when it has not been measured yet.
    patients, variables, times
        Labels of the three axes (``times`` are step starts, hours).
    step
        Step width in hours.
    """

    values: np.ndarray
    mask: np.ndarray
    delta: np.ndarray
    patients: pd.Index
    variables: list[str]
    times: np.ndarray
    step: float

    def age(self) -> np.ndarray:
        """Hours since the last measurement at or before each step (0 when measured; inf if never)."""
        T = self.mask.shape[1]
        idx = np.where(self.mask > 0, np.arange(T)[None, :, None], -1)
        last = np.maximum.accumulate(idx, axis=1)
        age = (np.arange(T)[None, :, None] - last) * self.step
        return np.where(last >= 0, age, np.inf)

    def filled(self, *, max_age: float | None = None) -> np.ndarray:
        """Forward-filled values; a value older than ``max_age`` hours is not carried (NaN)."""
        T = self.mask.shape[1]
        idx = np.where(self.mask > 0, np.arange(T)[None, :, None], -1)
        last = np.maximum.accumulate(idx, axis=1)
        P, _, V = self.values.shape
        pi = np.arange(P)[:, None, None]
        vi = np.arange(V)[None, None, :]
        out = self.values[pi, np.clip(last, 0, None), vi]
        out = np.where(last >= 0, out, np.nan)
        if max_age is not None:
            out = np.where(self.age() <= max_age, out, np.nan)
        return out

    def to_frame(self, *, max_age: float | None = None, indicators: bool = True) -> pd.DataFrame:
        """One row per (patient, step): forward-filled values and ``<var>__observed`` indicators."""
        P, T, V = self.values.shape
        f = self.filled(max_age=max_age).reshape(P * T, V)
        idx = pd.MultiIndex.from_product([self.patients, self.times], names=["patient_id", "time"])
        df = pd.DataFrame(f, index=idx, columns=self.variables)
        if indicators:
            m = pd.DataFrame(self.mask.reshape(P * T, V), index=idx,
                             columns=[f"{v}__observed" for v in self.variables])
            df = pd.concat([df, m], axis=1)
        return df

    def flatten(self) -> pd.DataFrame:
        """One row per patient: columns ``x|var|step``, ``m|var|step``, ``d|var|step``.

        This is the input of :class:`~pmed.timeseries.grud.GRUDClassifier`, which lets a
        sequence model be cross-validated like any scikit-learn estimator on a table.
        """
        P, T, V = self.values.shape
        cols = [f"{k}|{v}|{t}" for k in ("x", "m", "d") for t in range(T) for v in self.variables]
        arr = np.concatenate([a.reshape(P, T * V) for a in (self.values, self.mask, self.delta)], axis=1)
        return pd.DataFrame(arr.astype(np.float32), index=self.patients, columns=cols)


def to_grid(
    data: pd.DataFrame,
    *,
    variables: Sequence[str] | None = None,
    step: float = 1.0,
    start: float = 0.0,
    end: float = 48.0,
    agg: str = "mean",
    patients: Iterable[str] | None = None,
) -> Grid:
    """Resample a long table to a regular grid with masks and time since last measurement.

    Parameters
    ----------
    data
        Long table ``patient_id, time, variable, value``.
    variables
        Variables to keep, in order (default: all, sorted).
    step, start, end
        The grid: steps ``[start + k·step, start + (k+1)·step)``; a value at exactly ``end``
        falls in the last step; values outside ``[start, end]`` are ignored.
    agg
        ``"mean"`` or ``"last"`` of several values within a step.
    patients
        Row order (default: patients in ``data``, sorted); patients without data get empty rows.
    """
    _check_long(data)
    check_choice("agg", agg, ("mean", "last"))
    check_positive("step", step)
    check_window(start, end, what="the grid")
    if (end - start) / step > 1e6:
        raise TimeseriesOptionError(f"the grid would have {(end - start) / step:.3g} steps", where="option step",
                                    fix="use a larger step or a shorter window")
    d = data.dropna(subset=["value"])
    t = d["time"].to_numpy(float)
    d = d[(t >= start) & (t <= end)]
    variables = sorted(d["variable"].unique()) if variables is None else list(variables)
    pats = pd.Index(sorted(data["patient_id"].astype(str).unique()) if patients is None else
                    [str(p) for p in patients], name="patient_id")
    T = int(np.ceil((end - start) / step - 1e-9))
    V = len(variables)
    d = d[d["variable"].isin(variables)]
    b = np.minimum(((d["time"].to_numpy(float) - start) // step).astype(int), T - 1)
    pi = pats.get_indexer(d["patient_id"].astype(str))
    vi = pd.Index(variables).get_indexer(d["variable"])
    keep = pi >= 0
    pi, vi, b, val = pi[keep], vi[keep], b[keep], d["value"].to_numpy(float)[keep]
    values = np.full((len(pats), T, V), np.nan)
    mask = np.zeros((len(pats), T, V))
    if len(val):
        flat = (pi * T + b) * V + vi
        if agg == "mean":
            sums = np.bincount(flat, weights=val, minlength=len(pats) * T * V)
            cnt = np.bincount(flat, minlength=len(pats) * T * V)
            with np.errstate(invalid="ignore", divide="ignore"):
                vals = sums / cnt
            values = np.where(cnt > 0, vals, np.nan).reshape(len(pats), T, V)
            mask = (cnt > 0).astype(float).reshape(len(pats), T, V)
        else:
            # rows are in time order within each patient: the last write wins
            order = np.argsort(d["time"].to_numpy(float)[keep], kind="stable")
            values.reshape(-1)[flat[order]] = val[order]
            mask.reshape(-1)[flat] = 1.0
    # delta: hours since the last measurement strictly before each step
    idx = np.where(mask > 0, np.arange(T)[None, :, None], -1)
    prev = np.concatenate([np.full((len(pats), 1, V), -1), np.maximum.accumulate(idx, axis=1)[:, :-1]], axis=1)
    steps = np.arange(T)[None, :, None]
    delta = np.where(prev >= 0, (steps - prev) * step, steps * step).astype(float)
    times = start + np.arange(T) * step
    return Grid(values, mask, delta, pats, variables, times, float(step))
