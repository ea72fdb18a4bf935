"""Wide wearable tables (one row per timestamp, one column per stream) → :class:`TimeSeriesData`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import InputError
from pmed.timeseries._options import short, short_list
from pmed.timeseries.readers._base import (
    TimeSeriesData,
    _check_monotonic,
    _check_options,
    _finish,
    _hours_from_datetimes,
    _lines_with,
    _parse_times,
    _read_table,
    _to_numbers,
)
from pmed.timeseries.variables import WEARABLE, VariableSpec

__all__ = ["read_wearable"]


def read_wearable(
    path: str | Path,
    *,
    id: str = "patient_id",
    time: str = "timestamp",
    variables: Mapping[str, VariableSpec] | None = None,
    unknown: str = "error",
    sort: bool = False,
) -> TimeSeriesData:
    """Read a wide wearable table (one row per timestamp, one column per stream) to long format.

    Times are ISO date-times (hours counted from midnight of each patient's first day, so that
    day boundaries are calendar days) or hours. The default registry is :data:`WEARABLE`
    (``steps`` per minute, ``heart_rate``).

    Raises
    ------
    InputError
        Missing columns, no stream columns, unparsable times or values, times going backwards,
        no rows.
    ValidationError
        Stream columns absent from the registry (``unknown="error"``).
    OptionError
        ``unknown`` outside its choices (before the file is read).
    """
    _check_options(unknown)
    path = Path(path)
    raw = _read_table(path)
    for c in (id, time):
        if c not in raw.columns:
            raise InputError(f"missing column {short(c)} (header: {short_list(raw.columns)})", file=path,
                             where="line 1",
                             fix=f"a wearable table has the columns {id} and {time}, then one per stream: rename "
                                 "them in the file (in Python, id= and time= name others)")
    if raw.columns.duplicated().any():
        dup = raw.columns[raw.columns.duplicated()]
        raise InputError(f"column {short(str(dup[0]))} appears more than once", file=path, where="line 1",
                         fix="give each column once")
    streams = [c for c in raw.columns if c not in (id, time)]
    if not streams:
        raise InputError("no stream columns beside the patient and time columns", file=path, where="line 1",
                         fix="add one column per stream (steps, heart_rate)")
    if raw.empty:
        raise InputError("the file has no rows (header only)", file=path, fix="check the export")
    lines = np.arange(len(raw)) + 2
    if raw[id].isna().any():
        bad = raw[id].isna().to_numpy()
        raise InputError(f"missing patient ID in column {id!r}", file=path, where=_lines_with(bad, lines),
                         fix="every row needs a patient ID")
    ids = raw[id].astype(str).to_numpy()
    hours, dt = _parse_times(raw[time].reset_index(drop=True), lines, source=str(path), column=time)
    if dt is not None:
        hours = _hours_from_datetimes(ids, dt, "midnight")
    long = []
    for s in streams:
        col = raw[s]
        v = _to_numbers(col)
        bad = (v.isna() & col.notna()).to_numpy()
        if bad.any():
            raise InputError(f"unparsable value in column {short(str(s))}: {int(bad.sum())} cells are not numbers",
                             file=path,
                             where=_lines_with(bad, lines), fix="values must be numbers")
        long.append(pd.DataFrame({"patient_id": ids, "time": hours, "variable": str(s), "value": v.to_numpy(float),
                                  "line": lines}))
    data = pd.concat(long, ignore_index=True)
    if sort:
        data = data.sort_values(["patient_id", "time"], kind="mergesort").reset_index(drop=True)
    else:
        order = np.argsort(ids, kind="stable")
        _check_monotonic(ids[order], hours[order], lines[order], source=str(path))
    variables = dict(variables) if variables is not None else dict(WEARABLE)
    lg, static, flags = _finish(data, variables=variables, unknown=unknown, source=str(path))
    return TimeSeriesData(lg, static, flags, None, variables, str(path))
