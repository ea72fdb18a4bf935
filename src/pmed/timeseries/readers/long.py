"""Long tables (CSV/TSV/Parquet, one row per measurement) → :class:`TimeSeriesData`."""

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
from pmed.timeseries.variables import PHYSIONET2012, VITALS, VariableSpec

__all__ = ["read_long"]


def read_long(
    path: str | Path,
    *,
    id: str = "patient_id",
    time: str = "time",
    variable: str = "variable",
    value: str = "value",
    variables: Mapping[str, VariableSpec] | None = None,
    unknown: str = "error",
    origin: str = "first",
    sort: bool = False,
) -> TimeSeriesData:
    """Read a long table (one row per measurement) from CSV/TSV or Parquet.

    Parameters
    ----------
    path
        ``.csv``, ``.tsv`` or ``.parquet``.
    id, time, variable, value
        Column names. ``time`` holds hours (numbers) or ISO 8601 date-times.
    variables
        The registry to check against (default: PhysioNet 2012 names plus :data:`VITALS`).
    unknown
        What to do with variables absent from the registry: ``"error"``, ``"keep"``, ``"drop"``.
    origin
        For date-times: hours are counted from each patient's ``"first"`` observation, or from
        ``"midnight"`` of its day.
    sort
        Sort rows by patient and time instead of refusing times that go backwards.

    Raises
    ------
    InputError
        Missing file or columns, unparsable times or values, times going backwards, no rows.
    ValidationError
        Unknown variables (with ``unknown="error"``).
    OptionError
        ``unknown`` or ``origin`` outside their choices (before the file is read).
    """
    _check_options(unknown, origin)
    path = Path(path)
    src = str(path)
    raw = _read_table(path)
    missing = [c for c in (id, time, variable, value) if c not in raw.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(short(c) for c in missing)}", file=path,
                         where=f"header: {short_list(raw.columns)}",
                         fix=f"a long table has the columns {id}, {time}, {variable}, {value}: rename them "
                             "in the file (in Python, id=, time=, variable=, value= name others)")
    dup = [c for c in (id, time, variable, value) if (raw.columns == c).sum() > 1]
    if dup:
        raise InputError(f"column(s) {', '.join(short(c) for c in dup)} appear more than once", file=path,
                         where="line 1", fix="give each column once")
    if raw.empty:
        raise InputError("the file has no measurements (header only)", file=path,
                         fix="check the export: an empty record cannot be summarised")
    lines = np.arange(len(raw)) + 2  # 1-based, after the header
    if raw[id].isna().any():
        bad = raw[id].isna().to_numpy()
        raise InputError(f"missing patient ID in column {id!r}", file=path, where=_lines_with(bad, lines),
                         fix="every row needs a patient ID")
    ids = raw[id].astype(str).to_numpy()
    hours, dt = _parse_times(raw[time].reset_index(drop=True), lines, source=src, column=time)
    if dt is not None:
        hours = _hours_from_datetimes(ids, dt, origin)
        order_key = (dt - dt.min()).dt.total_seconds().to_numpy()
    else:
        order_key = hours
    vals = _to_numbers(raw[value])
    bad = (vals.isna() & raw[value].notna()).to_numpy()
    if bad.any():
        # the cell is not echoed: a shifted column would put a patient ID here
        raise InputError(f"unparsable value in column {value!r}: {int(bad.sum())} cells are not numbers", file=path,
                         where=_lines_with(bad, lines),
                         fix="values must be numbers (leave a cell empty when not measured)")
    names = raw[variable]
    if names.isna().any():
        bad = names.isna().to_numpy()
        raise InputError(f"missing variable name in column {variable!r}", file=path,
                         where=_lines_with(bad, lines), fix="every row needs the name of what was measured")
    data = pd.DataFrame({"patient_id": ids, "time": hours, "variable": names.astype(str).to_numpy(),
                         "value": vals.to_numpy(dtype=float), "line": lines})
    if sort:
        data = data.iloc[np.lexsort((order_key, ids))].reset_index(drop=True)
    else:
        # patients may be interleaved; each one's own rows must move forward in time
        order = np.argsort(ids, kind="stable")
        _check_monotonic(ids[order], order_key[order], lines[order], source=src)
    variables = dict(variables) if variables is not None else {**PHYSIONET2012, **VITALS}
    long, static, flags = _finish(data, variables=variables, unknown=unknown, source=src)
    return TimeSeriesData(long, static, flags, None, variables, src)
