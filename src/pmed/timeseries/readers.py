"""Readers: every source becomes one long table ``patient_id, time, variable, value``.

``time`` is in hours: since admission for ICU records, since the patient's first observation for
FHIR bundles and long tables with date-times (or since midnight of the first day with
``origin="midnight"``, which wearables use so that days are calendar days). Every reader
checks units and plausible ranges (:func:`pmed.timeseries.variables.check_values`) and returns a
:class:`TimeSeriesData` holding the clean table, the per-patient descriptors, the flags of
what was converted or set missing, and outcomes where the source has them.

Sources: long tables (CSV/Parquet, :func:`read_long`), the PhysioNet/CinC Challenge 2012 format
(:func:`read_physionet2012`), FHIR Observation bundles (:func:`read_fhir`), WFDB waveform
records (:func:`read_wfdb`) and wide per-timestamp wearable tables (:func:`read_wearable`).
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import InputError, ValidationError, format_rows
from pmed.timeseries.variables import (
    FLAG_COLUMNS,
    PHYSIONET2012,
    VITALS,
    WEARABLE,
    VariableSpec,
    check_values,
)

__all__ = [
    "TimeSeriesData",
    "Waveform",
    "LONG_COLUMNS",
    "read_long",
    "read_physionet2012",
    "read_physionet_record",
    "read_physionet_outcomes",
    "read_fhir",
    "read_wfdb",
    "read_wearable",
    "FHIR_LOINC",
]

#: the columns of every long table
LONG_COLUMNS = ["patient_id", "time", "variable", "value"]


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


def _parse_times(raw: pd.Series, lines: np.ndarray, *, source: str | None, column: str
                 ) -> tuple[np.ndarray, pd.Series | None]:
    """Numbers (hours) stay numbers; anything else must parse as ISO date-times.

    Returns hours (for numbers) or NaN plus the parsed date-times.
    """
    num = pd.to_numeric(raw, errors="coerce")
    if num.notna().all():
        return num.to_numpy(dtype=float), None
    if num.notna().any():
        bad = num.isna().to_numpy()
        raise InputError(
            f"column {column!r} mixes numbers and text; cannot parse {raw[bad].iloc[0]!r}",
            file=source, where=_lines_with(bad, lines),
            fix="give times either as hours since admission (numbers) or as ISO date-times, not both")
    dt = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
    bad = dt.isna().to_numpy()
    if bad.any():
        raise InputError(
            f"unparsable time {raw[bad].iloc[0]!r} in column {column!r}", file=source,
            where=_lines_with(bad, lines),
            fix="write times as hours (numbers) or ISO 8601 date-times such as 2024-03-01T08:30:00Z")
    return np.full(len(raw), np.nan), dt


def _hours_from_datetimes(ids: np.ndarray, dt: pd.Series, origin: str) -> np.ndarray:
    s = pd.Series(dt.to_numpy(), index=range(len(dt)))
    first = s.groupby(ids).transform("min")
    if origin == "midnight":
        first = first.dt.floor("D")
    elif origin != "first":
        raise ValueError(f"origin={origin!r}: use 'first' or 'midnight'")
    return ((s - first).dt.total_seconds() / 3600.0).to_numpy()


def _check_monotonic(ids: np.ndarray, t: np.ndarray, lines: np.ndarray, *, source: str | None) -> None:
    """Within each patient, times must not go backwards in file order."""
    same = ids[1:] == ids[:-1]
    back = np.zeros(len(t), dtype=bool)
    back[1:] = same & (t[1:] < t[:-1])
    if back.any():
        i = int(np.flatnonzero(back)[0])
        raise InputError(
            f"times go backwards for patient {ids[i]!r} ({t[i - 1]:g} h then {t[i]:g} h)",
            file=source, where=_lines_with(back, lines),
            fix="sort the rows by patient and time (or pass sort=True to let pmed sort them)")


def _finish(data: pd.DataFrame, *, variables: Mapping[str, VariableSpec], unknown: str,
            source: str | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Check values, split static descriptors off, sort; returns (long, static, flags)."""
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


# --------------------------------------------------------------------------- long tables
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
    """
    from pmed.io.tables import read_raw_table

    path = Path(path)
    src = str(path)
    raw = read_raw_table(path, dtype=str)
    missing = [c for c in (id, time, variable, value) if c not in raw.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(map(repr, missing))}", file=path,
                         where=f"header: {', '.join(map(str, raw.columns))}",
                         fix="name the columns with id=, time=, variable=, value=")
    if raw.empty:
        raise InputError("the file has no measurements (header only)", file=path,
                         fix="check the export: an empty record cannot be summarised")
    lines = np.arange(len(raw)) + 2  # 1-based, after the header
    ids = raw[id].astype(str).to_numpy()
    if raw[id].isna().any():
        bad = raw[id].isna().to_numpy()
        raise InputError(f"missing patient ID in column {id!r}", file=path, where=_lines_with(bad, lines),
                         fix="every row needs a patient ID")
    hours, dt = _parse_times(raw[time].reset_index(drop=True), lines, source=src, column=time)
    if dt is not None:
        hours = _hours_from_datetimes(ids, dt, origin)
        order_key = (dt - dt.min()).dt.total_seconds().to_numpy()
    else:
        order_key = hours
    vals = pd.to_numeric(raw[value], errors="coerce")
    bad = (vals.isna() & raw[value].notna()).to_numpy()
    if bad.any():
        raise InputError(f"unparsable value {raw[value][bad].iloc[0]!r} in column {value!r}", file=path,
                         where=_lines_with(bad, lines),
                         fix="values must be numbers (leave a cell empty when not measured)")
    data = pd.DataFrame({"patient_id": ids, "time": hours, "variable": raw[variable].astype(str).to_numpy(),
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


# --------------------------------------------------------------------------- PhysioNet 2012
def _parse_hhmm(text: str) -> float | None:
    h, sep, m = text.partition(":")
    if not sep:
        return None
    try:
        hh, mm = int(h), int(m)
    except ValueError:
        return None
    if hh < 0 or not 0 <= mm < 60:
        return None
    return hh + mm / 60.0


def _physionet_rows(text: str, name: str) -> tuple[str, list[tuple[float, str, float, int]]]:
    """Parse one stay file; returns its RecordID and (time_h, parameter, value, line) rows."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError("empty record: the file has no lines", file=name,
                         fix="remove the file or re-export the stay")
    if lines[0].strip().replace(" ", "") != "Time,Parameter,Value":
        raise InputError(f"unexpected header {lines[0]!r}", file=name, where="line 1",
                         fix="PhysioNet 2012 files start with the header Time,Parameter,Value")
    rows = []
    rid = None
    bad_time, bad_value, back = [], [], []
    last = -np.inf
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != 3:
            raise InputError(f"expected 3 fields, found {len(parts)}", file=name, where=f"line {i}",
                             fix="each line is Time,Parameter,Value")
        t = _parse_hhmm(parts[0].strip())
        if t is None:
            bad_time.append(i)
            continue
        if t < last:
            back.append(i)
        last = max(last, t)
        param = parts[1].strip()
        try:
            v = float(parts[2])
        except ValueError:
            bad_value.append(i)
            continue
        if param == "RecordID":
            rid = str(int(v)) if float(v).is_integer() else str(v)
            continue
        rows.append((t, param, v, i))
    if bad_time:
        raise InputError("unparsable time (expected HH:MM since admission)", file=name,
                         where=_at(bad_time), fix="write times as HH:MM, e.g. 07:37 or 47:59")
    if back:
        raise InputError("times go backwards (the file must be in time order)", file=name,
                         where=_at(back), fix="sort the lines of the record by time")
    if bad_value:
        raise InputError("unparsable value", file=name, where=_at(bad_value),
                         fix="values must be numbers (-1 marks a missing descriptor)")
    if not rows:
        raise InputError("empty record: no measurements after the header", file=name,
                         fix="remove the file or re-export the stay")
    if rid is None:
        rid = Path(name).stem
    return rid, rows


def read_physionet_record(path: str | Path, *, variables: Mapping[str, VariableSpec] | None = None,
                          unknown: str = "error") -> TimeSeriesData:
    """Read one PhysioNet 2012 stay file (``Time,Parameter,Value``); see :func:`read_physionet2012`."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path, fix="check the path")
    rid, rows = _physionet_rows(path.read_text(), str(path))
    return _physionet_data({rid: (str(path), rows)}, variables=variables, unknown=unknown, source=str(path))


def _physionet_data(records: Mapping[str, tuple[str, list]], *, variables, unknown, source) -> TimeSeriesData:
    ids, files, t, par, val, line = [], [], [], [], [], []
    for rid, (fname, rows) in records.items():
        n = len(rows)
        ids.extend([rid] * n)
        files.extend([fname] * n)
        tt, pp, vv, ll = zip(*rows, strict=True)
        t.extend(tt)
        par.extend(pp)
        val.extend(vv)
        line.extend(ll)
    data = pd.DataFrame({"patient_id": ids, "time": np.asarray(t, float), "variable": par,
                         "value": np.asarray(val, float), "line": line, "file": files})
    variables = dict(variables) if variables is not None else dict(PHYSIONET2012)
    if unknown == "error":
        unk = sorted(set(par) - set(variables))
        if unk:
            problems = []
            for u in unk[:20]:
                hit = data[data["variable"] == u].iloc[0]
                problems.append(f"{hit['file']}: line {int(hit['line'])}: unknown variable {u!r}")
            raise ValidationError(problems, file=source,
                                  fix=("PhysioNet 2012 has 42 named parameters; declare others with a VariableSpec "
                                       "in variables=, or pass unknown='keep' or unknown='drop'"))
    clean, flags = check_values(data, variables=variables, unknown=unknown, source=source)
    is_static = clean["variable"].map(lambda v: bool(getattr(variables.get(v), "static", False))).to_numpy(bool)
    st = clean[is_static].dropna(subset=["value"])
    static = st.groupby(["patient_id", "variable"], sort=False)["value"].first().unstack("variable")
    static = static.reindex(pd.Index(list(records), name="patient_id"))
    static.columns.name = None
    long = clean[~is_static].sort_values(["patient_id", "time"], kind="mergesort")[LONG_COLUMNS]
    return TimeSeriesData(long.reset_index(drop=True), static, flags, None, variables, source)


def read_physionet_outcomes(path: str | Path) -> pd.DataFrame:
    """Read a PhysioNet 2012 outcomes file (``Outcomes-a.txt``), indexed by RecordID.

    ``SAPS-I`` and ``SOFA`` of -1 (not computed) become missing; ``In-hospital_death`` is 0/1.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("outcomes file not found", file=path, fix="pass outcomes= the Outcomes-a.txt path")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InputError(f"cannot parse: {e}", file=path, fix="expected the challenge's CSV outcomes file") from None
    need = ["RecordID", "In-hospital_death"]
    miss = [c for c in need if c not in df.columns]
    if miss:
        raise InputError(f"missing column(s) {', '.join(miss)}", file=path, where="line 1",
                         fix="expected RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death")
    df["RecordID"] = df["RecordID"].astype(int).astype(str)
    df = df.set_index("RecordID")
    df.index.name = "patient_id"
    for c in ("SAPS-I", "SOFA"):
        if c in df:
            df[c] = df[c].where(df[c] >= 0)
    bad = ~df["In-hospital_death"].isin([0, 1])
    if bad.any():
        raise InputError("In-hospital_death must be 0 or 1", file=path,
                         where=_at(np.flatnonzero(bad.to_numpy()) + 2))
    return df


def read_physionet2012(
    path: str | Path,
    *,
    outcomes: str | Path | None | bool = True,
    limit: int | None = None,
    ids: Iterable[str] | None = None,
    variables: Mapping[str, VariableSpec] | None = None,
    unknown: str = "error",
) -> TimeSeriesData:
    """Read PhysioNet/CinC Challenge 2012 stays: a folder of ``*.txt``, a ``.tar.gz``, or one file.

    Parameters
    ----------
    path
        ``set-a.tar.gz``, the extracted ``set-a/`` folder, or a single stay file.
    outcomes
        The outcomes file; ``True`` (default) looks for ``Outcomes-<set>.txt`` beside ``path``
        and uses it when present; ``None``/``False`` reads none.
    limit
        Read only the first ``limit`` stays (in archive/file-name order), for quick checks.
    ids
        Read only these RecordIDs.
    variables, unknown
        The variable registry (default :data:`PHYSIONET2012`) and what to do with parameters
        absent from it (``"error"``, ``"keep"``, ``"drop"``).

    Returns
    -------
    TimeSeriesData
        ``data`` holds the time series (hours since admission), ``static`` Age, Gender, Height and
        ICUType, ``outcomes`` the outcomes of the stays read.

    Raises
    ------
    InputError
        Missing path, empty record, bad header, unparsable or backwards times, bad values.
    ValidationError
        Unknown parameters (``unknown="error"``).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("not found", file=path, fix="point to set-a.tar.gz, the set-a/ folder or a stay file")
    want = None if ids is None else {str(i) for i in ids}
    records: dict[str, tuple[str, list]] = {}

    def take(name: str, text: str) -> bool:
        stem = Path(name).stem
        if want is not None and stem not in want:
            return True
        rid, rows = _physionet_rows(text, name)
        if rid in records:
            raise InputError(f"RecordID {rid} appears in two files", file=name,
                             fix=f"the other file is {records[rid][0]}")
        records[rid] = (name, rows)
        return limit is None or len(records) < limit

    name = path.name.lower()
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        files = [f for f in files if not f.name.lower().startswith("outcomes")]
        if not files:
            raise InputError("no stay files (*.txt) in the folder", file=path,
                             fix="extract set-a.tar.gz there, or pass the archive itself")
        for f in files:
            if not take(str(f), f.read_text()):
                break
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        try:
            with tarfile.open(path, "r:*") as tar:
                for m in tar:
                    if not m.isfile() or not m.name.endswith(".txt"):
                        continue
                    fh = tar.extractfile(m)
                    text = fh.read().decode("utf-8") if fh is not None else ""
                    if not take(f"{path}:{m.name}", text):
                        break
        except (tarfile.TarError, EOFError, OSError) as e:
            raise InputError(f"cannot read the archive: {e}", file=path, fix="check the download (tar.gz)") from None
    else:
        if not take(str(path), path.read_text()):
            pass
    if not records:
        raise InputError("no stays read", file=path, fix="check ids= and the archive's content")
    out = _physionet_data(records, variables=variables, unknown=unknown, source=str(path))
    if outcomes is True:
        base = path.parent if path.is_file() else path.parent
        letter = name.split("-")[-1][:1] if name.startswith("set-") else "a"
        cand = base / f"Outcomes-{letter}.txt"
        outcomes = cand if cand.exists() else None
    if outcomes:
        oc = read_physionet_outcomes(outcomes)
        missing = out.static.index.difference(oc.index)
        if len(missing):
            raise ValidationError([f"{len(missing)} stay(s) without outcomes: {', '.join(missing[:8])}"],
                                  file=outcomes, fix="use the outcomes file of the same set")
        out.outcomes = oc.loc[out.static.index]
    return out


# --------------------------------------------------------------------------- FHIR
#: LOINC code → (variable, UCUM unit → converter to the registry unit; None = already right)
FHIR_LOINC: dict[str, tuple[str, dict[str, Any]]] = {
    "8867-4": ("heart_rate", {"/min": None, "{beats}/min": None, "beats/min": None}),
    "9279-1": ("resp_rate", {"/min": None, "{breaths}/min": None, "breaths/min": None}),
    "8480-6": ("sbp", {"mm[Hg]": None, "mmHg": None}),
    "8462-4": ("dbp", {"mm[Hg]": None, "mmHg": None}),
    "8310-5": ("temperature", {"Cel": None, "[degF]": lambda v: (v - 32) * 5 / 9}),
    "8331-1": ("temperature", {"Cel": None, "[degF]": lambda v: (v - 32) * 5 / 9}),
    "59408-5": ("spo2", {"%": None}),
    "2708-6": ("spo2", {"%": None}),
    "29463-7": ("weight", {"kg": None, "[lb_av]": lambda v: v * 0.45359237, "g": lambda v: v / 1000}),
    "8302-2": ("height", {"cm": None, "[in_i]": lambda v: v * 2.54, "m": lambda v: v * 100}),
    "2339-0": ("glucose", {"mg/dL": None, "mmol/L": lambda v: v * 18.016}),
    "2345-7": ("glucose", {"mg/dL": None, "mmol/L": lambda v: v * 18.016}),
    "2160-0": ("creatinine", {"mg/dL": None, "umol/L": lambda v: v / 88.42}),
}


def _fhir_resources(obj: Any, name: str) -> list[dict]:
    if isinstance(obj, list):
        return [r for o in obj for r in _fhir_resources(o, name)]
    if not isinstance(obj, dict) or "resourceType" not in obj:
        raise InputError("not a FHIR resource (no resourceType)", file=name,
                         fix="give a FHIR Bundle, an Observation, or a list of them (JSON)")
    if obj["resourceType"] == "Bundle":
        return [e.get("resource", {}) for e in obj.get("entry", []) or []]
    return [obj]


def read_fhir(
    path: str | Path | Iterable[str | Path],
    *,
    codes: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
    variables: Mapping[str, VariableSpec] | None = None,
    unknown: str = "error",
    origin: str = "first",
) -> TimeSeriesData:
    """Read FHIR Observation resources (Bundles in JSON) into the long format.

    Each Observation gives ``patient_id`` (``subject.reference``, ``Patient/`` stripped),
    ``time`` (``effectiveDateTime``, ``effectiveInstant`` or ``effectivePeriod.start``),
    ``variable`` (its LOINC code mapped by ``codes``) and ``value`` (``valueQuantity.value``,
    converted from its declared UCUM unit). Components (a blood-pressure panel) are read as
    separate observations. Other resources in the bundle (Patient, Encounter) are ignored.

    Parameters
    ----------
    path
        A JSON file, a folder of ``*.json`` files, or a list of files.
    codes
        LOINC code → (variable, {UCUM unit: converter or None}); default :data:`FHIR_LOINC`.
    variables
        Registry for plausibility (default :data:`VITALS`).
    unknown
        Observations with codes absent from ``codes``: ``"error"`` (default), ``"keep"`` (as
        ``loinc:<code>``, unchecked) or ``"drop"``.
    origin
        Hours since each patient's ``"first"`` observation or ``"midnight"`` of its day.

    Raises
    ------
    InputError
        Unreadable JSON, observations without subject, time or value, unparsable times, unknown
        units, or no observations at all.
    ValidationError
        Unknown codes (``unknown="error"``).
    """
    if isinstance(path, (str, Path)):
        p = Path(path)
        if not p.exists():
            raise InputError("file not found", file=p, fix="check the path")
        files = sorted(p.glob("*.json")) if p.is_dir() else [p]
    else:
        files = [Path(f) for f in path]
    codes = dict(codes) if codes is not None else FHIR_LOINC
    variables = dict(variables) if variables is not None else dict(VITALS)
    rows: list[tuple] = []
    problems: list[str] = []
    converted: list[tuple] = []
    for f in files:
        try:
            obj = json.loads(Path(f).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"cannot read JSON: {e}", file=f, fix="give a FHIR Bundle in JSON") from None
        for k, res in enumerate(_fhir_resources(obj, str(f))):
            if res.get("resourceType") != "Observation":
                continue
            where = f"entry[{k}]" + (f" (id {res['id']})" if "id" in res else "")
            subj = (res.get("subject") or {}).get("reference")
            if not subj:
                problems.append(f"{f}: {where}: no subject.reference")
                continue
            pid = subj.split("/")[-1]
            when = (res.get("effectiveDateTime") or res.get("effectiveInstant")
                    or (res.get("effectivePeriod") or {}).get("start"))
            if not when:
                problems.append(f"{f}: {where}: no effectiveDateTime")
                continue
            if res.get("status") in ("entered-in-error", "cancelled"):
                continue
            parts = [res] + list(res.get("component") or [])
            for part in parts:
                q = part.get("valueQuantity")
                if q is None or "value" not in q:
                    continue
                coding = [c for c in (part.get("code") or {}).get("coding", []) if c.get("code")]
                loinc = next((c["code"] for c in coding if "loinc" in str(c.get("system", ""))),
                             coding[0]["code"] if coding else None)
                if loinc is None:
                    problems.append(f"{f}: {where}: no code.coding")
                    continue
                unit = q.get("code") or q.get("unit") or ""
                if loinc in codes:
                    var, units = codes[loinc]
                    if unit not in units:
                        problems.append(f"{f}: {where}: unit {unit!r} for {var} (LOINC {loinc}) is not one of "
                                        f"{', '.join(units)}")
                        continue
                    value = float(q["value"])
                    conv = units[unit]
                    if conv is not None:
                        new = float(conv(value))
                        converted.append((pid, when, var, value, new, unit))
                        value = new
                    rows.append((pid, when, var, value, f"{f}: {where}"))
                elif unknown == "error":
                    problems.append(f"{f}: {where}: unknown LOINC code {loinc!r}")
                elif unknown == "keep":
                    rows.append((pid, when, f"loinc:{loinc}", float(q["value"]), f"{f}: {where}"))
    if problems:
        raise ValidationError(problems, file=str(path) if isinstance(path, (str, Path)) else None,
                              fix=("map unknown LOINC codes with codes= (or unknown='keep'/'drop'); every "
                                   "Observation needs subject, effectiveDateTime and valueQuantity in a known unit"))
    if not rows:
        raise InputError("no Observations with a value", file=str(path) if isinstance(path, (str, Path)) else None,
                         fix="check that the bundle holds Observation resources with valueQuantity")
    df = pd.DataFrame(rows, columns=["patient_id", "when", "variable", "value", "where"])
    dt = pd.to_datetime(df["when"], errors="coerce", utc=True, format="ISO8601")
    if dt.isna().any():
        bad = df.loc[dt.isna(), "where"].tolist()
        raise InputError(f"unparsable effectiveDateTime {df.loc[dt.isna(), 'when'].iloc[0]!r}",
                         where="; ".join(bad[:5]), fix="use ISO 8601 date-times")
    order = np.lexsort((dt.to_numpy(), df["patient_id"].to_numpy()))
    df, dt = df.iloc[order].reset_index(drop=True), dt.iloc[order].reset_index(drop=True)
    df["time"] = _hours_from_datetimes(df["patient_id"].to_numpy(), dt, origin)
    if unknown == "keep":
        for v in df["variable"].unique():
            variables.setdefault(v, VariableSpec(v, "as given"))
    long, static, flags = _finish(df[LONG_COLUMNS], variables=variables, unknown=unknown,
                                  source=str(path) if isinstance(path, (str, Path)) else None)
    if converted:
        c = pd.DataFrame(converted, columns=["patient_id", "when", "variable", "value", "new_value", "unit"])
        cdt = pd.to_datetime(c["when"], utc=True, format="ISO8601")
        first = dt.groupby(df["patient_id"].to_numpy()).min()
        if origin == "midnight":
            first = first.dt.floor("D")
        c["time"] = ((cdt - c["patient_id"].map(first)).dt.total_seconds() / 3600).to_numpy()
        c["action"] = "converted"
        c["reason"] = c["variable"] + ": declared unit " + c["unit"] + ", converted to " + c["variable"].map(
            lambda v: variables[v].unit if v in variables else "?")
        flags = pd.concat([flags, c[FLAG_COLUMNS]], ignore_index=True) if len(flags) else c[FLAG_COLUMNS]
    return TimeSeriesData(long, static, flags, None, variables, str(path) if isinstance(path, (str, Path)) else None)


# --------------------------------------------------------------------------- WFDB
def read_wfdb(record: str | Path, *, channels: Iterable[str] | None = None) -> Waveform:
    """Read a WFDB record (``.hea`` + ``.dat``) with the ``wfdb`` package.

    Parameters
    ----------
    record
        The record path with or without ``.hea``.
    channels
        Signal names to keep (default: all).

    Raises
    ------
    InputError
        Missing or unreadable record, unknown channel, or a record without samples.
    """
    try:
        import wfdb
    except ImportError:  # pragma: no cover - optional dependency
        raise InputError("reading WFDB records needs the wfdb package", fix="pip install wfdb") from None
    rec = Path(record)
    if rec.suffix in (".hea", ".dat"):
        rec = rec.with_suffix("")
    if not rec.with_suffix(".hea").exists():
        raise InputError("WFDB header not found", file=rec.with_suffix(".hea"),
                         fix="give the record path (the .hea file and its signal files side by side)")
    try:
        r = wfdb.rdrecord(str(rec))
    except Exception as e:  # wfdb raises plain exceptions of many kinds on bad files
        raise InputError(f"cannot read the WFDB record: {e}", file=rec.with_suffix(".hea"),
                         fix="check the header and signal files") from None
    if r.p_signal is None or r.sig_len == 0 or r.p_signal.shape[0] == 0:
        raise InputError("empty record: no samples", file=rec.with_suffix(".hea"), fix="check the recording")
    names = list(r.sig_name)
    sig = pd.DataFrame(r.p_signal, columns=names)
    if channels is not None:
        channels = list(channels)
        miss = [c for c in channels if c not in names]
        if miss:
            raise InputError(f"channel(s) {', '.join(miss)} not in the record", file=rec.with_suffix(".hea"),
                             fix=f"available: {', '.join(names)}")
        sig = sig[channels]
    units = {n: u for n, u in zip(names, r.units, strict=True) if n in sig.columns}
    return Waveform(sig, float(r.fs), units, rec.name, {"comments": list(r.comments or []),
                                                        "n_samples": int(r.sig_len)})


# --------------------------------------------------------------------------- wearables
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
        Missing columns, unparsable times or values, times going backwards, no rows.
    ValidationError
        Stream columns absent from the registry (``unknown="error"``).
    """
    from pmed.io.tables import read_raw_table

    path = Path(path)
    raw = read_raw_table(path, dtype=str)
    for c in (id, time):
        if c not in raw.columns:
            raise InputError(f"missing column {c!r}", file=path, where="line 1",
                             fix=f"name the patient and time columns with id= and time= (found {', '.join(raw.columns)})")
    if raw.empty:
        raise InputError("the file has no rows (header only)", file=path, fix="check the export")
    streams = [c for c in raw.columns if c not in (id, time)]
    lines = np.arange(len(raw)) + 2
    ids = raw[id].astype(str).to_numpy()
    hours, dt = _parse_times(raw[time].reset_index(drop=True), lines, source=str(path), column=time)
    if dt is not None:
        hours = _hours_from_datetimes(ids, dt, "midnight")
    long = []
    for s in streams:
        v = pd.to_numeric(raw[s], errors="coerce")
        bad = (v.isna() & raw[s].notna()).to_numpy()
        if bad.any():
            raise InputError(f"unparsable value {raw[s][bad].iloc[0]!r} in column {s!r}", file=path,
                             where=_lines_with(bad, lines), fix="values must be numbers")
        long.append(pd.DataFrame({"patient_id": ids, "time": hours, "variable": s, "value": v.to_numpy(float),
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
