"""What every reader returns (:class:`TimeSeriesData`, :class:`Waveform`) and their shared steps:
time parsing, order checks, unit checks and the split of static descriptors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import InputError, format_rows
from pmed.timeseries._options import TimeseriesWarning, check_choice
from pmed.timeseries.variables import FLAG_COLUMNS, VariableSpec, check_values

__all__ = ["TimeSeriesData", "Waveform", "LONG_COLUMNS", "UNKNOWN", "ORIGINS"]

#: the columns of every long table
LONG_COLUMNS = ["patient_id", "time", "variable", "value"]

#: what readers do with variables absent from the registry
UNKNOWN = ("error", "keep", "drop")

#: where hours are counted from for date-times
ORIGINS = ("first", "midnight")

#: largest |time| in hours accepted (about 114 years): beyond it a number is not a time
MAX_HOURS = 1e6


@dataclass
class TimeSeriesData:
    """What a reader returns.

    Attributes
    ----------
    data
        Long table ``patient_id, time, variable, value`` (time in hours, sorted by patient and
        time); implausible values are NaN.
    static
        Per-patient descriptors recorded once (age, sex, height…), indexed by patient ID.
    flags
        Every value converted or set missing: ``patient_id, time, variable, value, new_value,
        action, reason`` (and ``line``/``file`` where known).
    outcomes
        Outcome table indexed by patient ID, when the source has one.
    variables
        The variable registry the values were checked against.
    source
        The file or folder read.
    """

    data: pd.DataFrame
    static: pd.DataFrame = field(default_factory=pd.DataFrame)
    flags: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FLAG_COLUMNS))
    outcomes: pd.DataFrame | None = None
    variables: Mapping[str, VariableSpec] = field(default_factory=dict)
    source: str | None = None

    @property
    def patients(self) -> pd.Index:
        """Patient IDs, in order (those with descriptors or any observation)."""
        ids = pd.Index(pd.unique(self.data["patient_id"]), dtype=object)
        return self.static.index.astype(str).union(ids, sort=False) if len(self.static) else ids

    def summary(self) -> dict[str, Any]:
        """Counts for logs and provenance: patients, observations, flags by action."""
        acts = self.flags["action"].value_counts().to_dict() if len(self.flags) else {}
        return {"n_patients": int(len(self.patients)), "n_observations": int(self.data["value"].notna().sum()),
                "n_variables": int(self.data["variable"].nunique()),
                "n_converted": int(acts.get("converted", 0)), "n_set_missing": int(acts.get("set_missing", 0)),
                "source": self.source}


@dataclass
class Waveform:
    """A waveform record: ``signals`` (one column per channel, physical units) sampled at ``fs`` Hz."""

    signals: pd.DataFrame
    fs: float
    units: dict[str, str]
    record: str
    meta: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers
def _at(rows) -> str:
    """``"line 4"`` or ``"lines 4, 9, …"``."""
    rows = [int(r) for r in rows]
    return f"line {rows[0]}" if len(rows) == 1 else f"lines {format_rows(rows)}"


def _lines_with(mask: np.ndarray, lines: np.ndarray) -> str:
    return _at(lines[mask])


def _check_options(unknown: str, origin: str | None = None) -> None:
    """Refuse a bad ``unknown=`` or ``origin=`` before the file is opened."""
    check_choice("unknown", unknown, UNKNOWN)
    if origin is not None:
        check_choice("origin", origin, ORIGINS)


def _read_text(path: str | Path, *, name: str | None = None) -> str:
    """A whole text file (gzip by content), with pmed's errors for undecodable bytes."""
    from pmed.io.text import open_text

    try:
        with open_text(path) as fh:
            return fh.read()
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte {e.start} cannot be decoded)", file=name or path,
                         fix="save the file as UTF-8 text") from None
    except EOFError:  # a gzip stream cut short
        raise InputError("the compressed file is truncated (its stream ends early)", file=name or path,
                         fix="the file is incomplete: create or copy it again") from None
    except OSError as e:  # gzip.BadGzipFile is an OSError
        raise InputError(f"cannot read the file: {type(e).__name__}", file=name or path,
                         fix="check that the file is complete (re-download or re-export it)") from None


_UTF16_32 = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32",
             b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def _read_table(path: Path) -> pd.DataFrame:
    """A long or wide table as text (:func:`pmed.io.tables.read_raw_table`), with two causes named
    that the parser would misreport: a Parquet file cut short or damaged (not "check the delimiter")
    and UTF-16/UTF-32 text (a byte-order mark pandas reads as undecodable bytes). A UTF-8
    byte-order mark is read as such by the table reader."""
    from pmed.io.tables import TABLE_SUFFIXES, _suffix, read_raw_table

    suffix = _suffix(path).lower()
    if path.is_file() and suffix in TABLE_SUFFIXES:
        if TABLE_SUFFIXES[suffix] is None:
            _check_parquet(path)
        else:
            with open(path, "rb") as fh:
                head = fh.read(4)
            for bom, enc in _UTF16_32.items():
                if head.startswith(bom):
                    raise InputError(f"the file is {enc} text (its byte-order mark says so), not UTF-8",
                                     file=path, where="byte 1", fix="save the table as UTF-8 text (CSV UTF-8)")
    return read_raw_table(path, dtype=str)


def _check_parquet(path: Path) -> None:
    """Refuse a Parquet file whose footer is missing or unreadable: cut short or damaged."""
    import pyarrow.parquet as pq

    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(max(0, size - 4))
        tail = fh.read(4)
    fix = "the file is incomplete or damaged: write or copy it again"
    if head != b"PAR1":
        raise InputError("not a Parquet file (no PAR1 signature at its start)", file=path,
                         fix="give a Parquet table, or a .csv/.tsv name for a text table")
    if tail != b"PAR1":
        raise InputError(f"the Parquet file is truncated or corrupt (its footer is missing; {size} bytes)",
                         file=path, fix=fix)
    try:
        pq.read_metadata(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises its own and OS errors for a damaged footer
        raise InputError(f"the Parquet file is corrupt: its footer cannot be read ({type(e).__name__})",
                         file=path, fix=fix) from None


def _warn_same_time(data: pd.DataFrame, *, source: str | None) -> None:
    """Warn about measurements of one variable at the same time of one patient.

    They are kept (two charted values at one minute are possible), but ``first``/``last`` then
    follow the file order and ``count`` counts each: a doubled export or a bad join would go
    unseen. Counts and line numbers only: the patients' IDs are not echoed.
    """
    import warnings

    d = data[data["value"].notna()] if "value" in data else data
    dup = d.duplicated(["patient_id", "time", "variable"], keep=False).to_numpy()
    if not dup.any():
        return
    where = ""
    if "line" in d.columns:
        where = f" ({_at(sorted(set(d['line'].to_numpy()[dup].tolist())))})"
    head = f"{source}: " if source else ""
    warnings.warn(f"{head}{int(dup.sum())} measurements share their patient, variable and time with another "
                  f"row{where}: all are kept, so first/last follow the file order and counts include each; "
                  "remove repeated rows if the export doubled them", TimeseriesWarning, stacklevel=4)


def _to_numbers(col: pd.Series) -> pd.Series:
    """Text cells → floats; NaN where a cell is not a number.

    pandas turns a number too large for a float (``1e999``) into NaN, which would then read as
    "not a number"; Python's ``float`` gives ``inf``, which the value checks flag as implausible.
    """
    vals = pd.to_numeric(col, errors="coerce")
    retry = vals.isna() & col.notna()
    if retry.any():
        def as_float(s: object) -> float:
            try:
                return float(str(s).strip())
            except ValueError:
                return np.nan

        vals = vals.astype(float)
        vals[retry] = col[retry].map(as_float).astype(float)
    return vals


def _to_utc(raw: pd.Series) -> pd.Series:
    """ISO 8601 text → UTC date-times (NaT where it does not parse), never raising."""
    try:
        return pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        # mixed or odd values can defeat the vectorised parser: parse one at a time
        out = []
        for v in raw:
            try:
                out.append(pd.to_datetime(v, utc=True, format="ISO8601") if isinstance(v, str) else pd.NaT)
            except (ValueError, TypeError, OverflowError):
                out.append(pd.NaT)
        return pd.Series(pd.DatetimeIndex(out, tz="UTC"), index=raw.index)


def _parse_times(raw: pd.Series, lines: np.ndarray, *, source: str | None, column: str
                 ) -> tuple[np.ndarray, pd.Series | None]:
    """Numbers (hours) stay numbers; anything else must parse as ISO date-times.

    Returns hours (for numbers) or NaN plus the parsed date-times.
    """
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(raw):
        dt = pd.to_datetime(raw, utc=True)  # a Parquet timestamp column
        bad = dt.isna().to_numpy()
        if bad.any():
            raise InputError(f"missing time in column {column!r}", file=source,
                             where=_lines_with(bad, lines), fix="every row needs a time")
        return np.full(len(raw), np.nan), dt
    num = pd.to_numeric(raw, errors="coerce")
    if num.notna().all():
        hours = num.to_numpy(dtype=float)
        bad = ~(np.abs(hours) <= MAX_HOURS)  # also catches inf
        if bad.any():
            raise InputError(f"time {hours[bad][0]:g} in column {column!r} is not a plausible number of hours",
                             file=source, where=_lines_with(bad, lines),
                             fix=f"give times as hours (|time| ≤ {MAX_HOURS:g}) or ISO 8601 date-times")
        return hours, None
    if num.notna().any():
        bad = num.isna().to_numpy()
        raise InputError(
            # the cells are not echoed: a shifted column would put a patient ID here
            f"column {column!r} mixes numbers and text ({int(bad.sum())} cells are not numbers)",
            file=source, where=_lines_with(bad, lines),
            fix="give times either as hours since admission (numbers) or as ISO date-times, not both")
    dt = _to_utc(raw.astype(object).where(raw.notna(), None))
    bad = dt.isna().to_numpy()
    if bad.any():
        raise InputError(
            f"unparsable time in column {column!r}: {int(bad.sum())} cells are neither hours nor ISO 8601 "
            "date-times", file=source,
            where=_lines_with(bad, lines),
            fix="write times as hours (numbers) or ISO 8601 date-times such as 2024-03-01T08:30:00Z")
    return np.full(len(raw), np.nan), dt


def _hours_from_datetimes(ids: np.ndarray, dt: pd.Series, origin: str) -> np.ndarray:
    check_choice("origin", origin, ORIGINS)
    s = pd.Series(dt.to_numpy(), index=range(len(dt)))
    first = s.groupby(ids).transform("min")
    if origin == "midnight":
        first = first.dt.floor("D")
    return ((s - first).dt.total_seconds() / 3600.0).to_numpy()


def _check_monotonic(ids: np.ndarray, t: np.ndarray, lines: np.ndarray, *, source: str | None) -> None:
    """Within each patient, times must not go backwards in file order."""
    same = ids[1:] == ids[:-1]
    back = np.zeros(len(t), dtype=bool)
    back[1:] = same & (t[1:] < t[:-1])
    if back.any():
        i = int(np.flatnonzero(back)[0])
        # the line numbers locate the patient: its ID is not echoed
        raise InputError(
            f"times go backwards within a patient (line {int(lines[i])} is earlier in time than "
            f"line {int(lines[i - 1])} above it)",
            file=source, where=_lines_with(back, lines),
            fix="sort the rows by patient and time, or let pmed sort them (--sort on the command line, "
                "sort=True in Python)")


def _finish(data: pd.DataFrame, *, variables: Mapping[str, VariableSpec], unknown: str,
            source: str | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Check values, split static descriptors off, sort; returns (long, static, flags)."""
    _warn_same_time(data, source=source)
    clean, flags = check_values(data, variables=variables, unknown=unknown, source=source)
    is_static = clean["variable"].map(lambda v: bool(getattr(variables.get(v), "static", False))).to_numpy(bool)
    st = clean[is_static]
    static = (st.dropna(subset=["value"]).groupby(["patient_id", "variable"], sort=False)["value"].first()
              .unstack("variable") if len(st) else pd.DataFrame())
    static.index = static.index.astype(str) if len(static) else static.index
    static.index.name = "patient_id"
    static.columns.name = None
    long = clean[~is_static].sort_values(["patient_id", "time"], kind="mergesort")
    long = long[LONG_COLUMNS].reset_index(drop=True)
    return long, static, flags.drop(columns=[c for c in ("line",) if c in flags and flags[c].isna().all()])
