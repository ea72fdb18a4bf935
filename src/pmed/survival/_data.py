"""Checks of the time and event columns every survival computation starts from.

Shared by the models (:mod:`pmed.survival.models`) and the evaluation
(:mod:`pmed.survival.evaluation`), so that a bad follow-up time or event code is refused
with the same message whichever command meets it first.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pmed.errors import PmedWarning, ValidationError, format_rows, shorten

__all__ = ["SurvivalWarning", "check_survival_data"]


class SurvivalWarning(PmedWarning):
    """A survival input or result that is usable but suspicious (all events, few at risk…)."""


def _where(idx: np.ndarray, *, in_file: bool) -> str:
    # in a file the first data row is line 2 (after the header); for arrays say 1-based rows
    if in_file:
        return f"lines {format_rows((idx + 2).tolist())}"
    return f"rows {format_rows((idx + 1).tolist())}"


def _values(values: Sequence[object], limit: int = 4) -> str:
    shown = [shorten(v, 20) for v in values[:limit]]
    return ", ".join(shown) + (" …" if len(values) > limit else "")


def check_survival_data(
    time,
    event,
    *,
    source: str | None = None,
    time_col: str = "time",
    event_col: str = "event",
) -> tuple[np.ndarray, np.ndarray]:
    """Validate follow-up times and event indicators and return them as arrays.

    Every problem is collected and reported at once, each naming the column, the offending
    value (shortened) and the rows, never a patient identifier.

    Parameters
    ----------
    time
        Follow-up times (array-like or pandas Series): finite and > 0. A time of 0 is
        refused because Kaplan–Meier, Cox partial likelihood and IPCW weights all treat a
        subject with no follow-up as never at risk; a data-entry time of 0 is almost always
        a missing date.
    event
        Event indicator: 1 = event observed, 0 = censored. ``True``/``False`` and the
        strings ``"0"``/``"1"`` are accepted.
    source
        The file the values come from, for the message; when given, rows are reported as
        file lines (the first data row is line 2).
    time_col, event_col
        Column names used in the messages.

    Returns
    -------
    tuple of numpy.ndarray
        ``time`` as float64 and ``event`` as bool, same length.

    Raises
    ------
    ValidationError
        Lengths differ; no rows; missing, non-numeric, infinite, negative or zero times;
        events that are missing or not 0/1; no event at all.

    Warns
    -----
    SurvivalWarning
        Every subject had the event (no censoring): allowed, but IPCW metrics then rest on
        a censoring distribution that is never observed.
    """
    t_raw = pd.Series(np.asarray(time, dtype=object).ravel())
    e_raw = pd.Series(np.asarray(event, dtype=object).ravel())
    in_file = source is not None
    fix = f"correct columns {time_col!r} and {event_col!r} and retry"
    if len(t_raw) != len(e_raw):
        raise ValidationError([f"{time_col!r} has {len(t_raw)} values but {event_col!r} has {len(e_raw)}"],
                              file=source, fix="pass one time and one event per subject")
    if len(t_raw) == 0:
        raise ValidationError(["no subjects: the time and event columns are empty"], file=source,
                              fix="give at least one row")

    problems: list[str] = []
    t = pd.to_numeric(t_raw, errors="coerce").to_numpy(dtype=float)
    missing = t_raw.isna().to_numpy()
    nonnum = np.isnan(t) & ~missing
    if missing.any():
        problems.append(f"column {time_col!r}: missing time at {_where(np.flatnonzero(missing), in_file=in_file)}"
                        " — drop those rows or supply the follow-up time")
    if nonnum.any():
        idx = np.flatnonzero(nonnum)
        problems.append(f"column {time_col!r}: non-numeric time {_values(t_raw.iloc[idx].tolist())} at "
                        f"{_where(idx, in_file=in_file)} — give times as numbers in one unit (e.g. days)")
    inf = np.isinf(t)
    if inf.any():
        idx = np.flatnonzero(inf)
        problems.append(f"column {time_col!r}: infinite time {_values(t[idx].tolist())} at "
                        f"{_where(idx, in_file=in_file)} — give the last follow-up time, censored (event 0)")
    neg = np.isfinite(t) & (t < 0)
    if neg.any():
        idx = np.flatnonzero(neg)
        problems.append(f"column {time_col!r}: negative time {_values(t[idx].tolist())} at "
                        f"{_where(idx, in_file=in_file)} — times are durations from the start of follow-up; "
                        "check for swapped dates")
    zero = t == 0
    if zero.any():
        idx = np.flatnonzero(zero)
        problems.append(f"column {time_col!r}: time 0 at {_where(idx, in_file=in_file)} — a subject needs "
                        "follow-up > 0 to be at risk; drop those rows or give the real time "
                        "(e.g. 0.5 day for an event on day 0)")

    e_missing = e_raw.isna().to_numpy()
    if e_missing.any():
        problems.append(f"column {event_col!r}: missing event at "
                        f"{_where(np.flatnonzero(e_missing), in_file=in_file)} — use 1 for the event, 0 for censored")
    e_num = pd.to_numeric(e_raw.map(lambda v: int(v) if isinstance(v, (bool, np.bool_)) else v),
                          errors="coerce").to_numpy(dtype=float)
    bad_e = ~e_missing & ~np.isin(e_num, (0.0, 1.0))
    if bad_e.any():
        idx = np.flatnonzero(bad_e)
        seen = list(dict.fromkeys(e_raw.iloc[idx].tolist()))
        hint = (" (looks like R's 1 = censored, 2 = event coding: subtract 1)"
                if set(pd.to_numeric(pd.Series(seen), errors="coerce").dropna()) <= {2.0}
                and np.isin(e_num[~e_missing], (1.0, 2.0)).all() else "")
        problems.append(f"column {event_col!r}: event must be 0 (censored) or 1 (event), found "
                        f"{_values(seen)} at {_where(idx, in_file=in_file)}{hint}")
    if problems:
        raise ValidationError(problems, file=source, fix=fix)

    ev = e_num.astype(int).astype(bool)
    if not ev.any():
        raise ValidationError([f"column {event_col!r}: no events (all {len(ev)} subjects censored) — "
                               "survival models and C-indices need at least one observed event"],
                              file=source, fix=f"check the coding of {event_col!r} (1 = event, 0 = censored)")
    if ev.all():
        warnings.warn(f"column {event_col!r}: every subject had the event (no censoring); IPCW metrics "
                      "(Uno's C, Brier score) then assume a censoring distribution that is never observed",
                      SurvivalWarning, stacklevel=2)
    return t, ev
