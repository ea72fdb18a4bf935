"""PhysioNet/CinC Challenge 2012 stays (``Time,Parameter,Value`` files) and their outcomes."""

from __future__ import annotations

import gzip
import tarfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import InputError, ValidationError
from pmed.timeseries._options import short
from pmed.timeseries.readers._base import (
    LONG_COLUMNS,
    TimeSeriesData,
    _at,
    _check_options,
    _read_text,
)
from pmed.timeseries.variables import PHYSIONET2012, VariableSpec, check_values

__all__ = ["read_physionet2012", "read_physionet_record", "read_physionet_outcomes"]


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
        raise InputError(f"unexpected header {short(lines[0], 40)}", file=name, where="line 1",
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
            rid = str(int(v)) if v.is_integer() else str(v)
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
    _check_options(unknown)
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path, fix="check the path")
    rid, rows = _physionet_rows(_read_text(path), str(path))
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
                problems.append(f"{hit['file']}: line {int(hit['line'])}: unknown variable {short(u)}")
            if len(unk) > 20:
                problems.append(f"… {len(unk)} unknown variables in all")
            raise ValidationError(problems, file=source,
                                  fix=("PhysioNet 2012 has 42 named parameters; keep others unchecked with --unknown "
                                       "keep or ignore them with --unknown drop (in Python: unknown='keep'/'drop', "
                                       "or declare them with a VariableSpec in variables=)"))
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

    Raises
    ------
    InputError
        Missing or unparsable file, missing columns, RecordIDs that are not whole numbers or
        appear twice, outcomes other than 0/1.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("outcomes file not found", file=path, fix="pass outcomes= the Outcomes-a.txt path")
    fix = "expected the challenge's CSV: RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"
    try:
        df = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError,
            ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot parse: {first[:120]}", file=path, fix=fix) from None
    need = ["RecordID", "In-hospital_death"]
    miss = [c for c in need if c not in df.columns]
    if miss:
        raise InputError(f"missing column(s) {', '.join(miss)}", file=path, where="line 1", fix=fix)
    if any((df.columns == c).sum() > 1 for c in df.columns):
        raise InputError("a column name appears twice", file=path, where="line 1", fix=fix)
    rows = np.arange(len(df)) + 2
    rid = pd.to_numeric(df["RecordID"], errors="coerce")
    bad = ~(rid.notna() & np.isfinite(rid) & (rid == rid.round())).to_numpy()
    if bad.any():
        raise InputError("RecordID must be a whole number", file=path, where=_at(rows[bad]), fix=fix)
    df["RecordID"] = rid.astype(np.int64).astype(str)
    dup = df["RecordID"].duplicated(keep=False).to_numpy()
    if dup.any():
        raise InputError("the same RecordID appears on several lines", file=path, where=_at(rows[dup]),
                         fix="give each stay's outcomes once")
    for c in df.columns:
        if c != "RecordID":
            num = pd.to_numeric(df[c], errors="coerce")
            if num.notna().sum() == df[c].notna().sum():  # numbers stay numbers, text stays text
                df[c] = num
    death = df["In-hospital_death"]
    bad = ~death.isin([0, 1]).to_numpy()
    if bad.any():
        raise InputError("In-hospital_death must be 0 or 1", file=path, where=_at(rows[bad]), fix=fix)
    df["In-hospital_death"] = death.astype(np.int64)
    df = df.set_index("RecordID")
    df.index.name = "patient_id"
    for c in ("SAPS-I", "SOFA"):
        if c in df and pd.api.types.is_numeric_dtype(df[c]):
            df[c] = df[c].where(df[c] >= 0)
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
        Unknown parameters (``unknown="error"``), or stays without outcomes.
    OptionError
        ``unknown`` outside its choices (before anything is read).
    """
    _check_options(unknown)
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
            raise InputError("the same RecordID appears in two files", file=name,
                             fix=f"the other file is {records[rid][0]}; keep one file per stay")
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
            if not take(str(f), _read_text(f)):
                break
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        try:
            with tarfile.open(path, "r:*") as tar:
                for m in tar:
                    if not m.isfile() or not m.name.endswith(".txt"):
                        continue
                    fh = tar.extractfile(m)
                    member = f"{path}:{m.name}"
                    try:
                        text = fh.read().decode("utf-8-sig") if fh is not None else ""
                    except UnicodeDecodeError as e:
                        raise InputError(f"not UTF-8 text (byte {e.start} cannot be decoded)", file=member,
                                         fix="check the download (tar.gz)") from None
                    if not take(member, text):
                        break
        except (EOFError, zlib.error, tarfile.ReadError, gzip.BadGzipFile) as e:
            # a cut download ends the gzip stream early (EOFError) or cuts a member (ReadError)
            raise InputError(f"the archive is truncated or corrupt ({type(e).__name__})", file=path,
                             fix="the download is incomplete or damaged: download set-a.tar.gz again") from None
        except (tarfile.TarError, OSError) as e:
            raise InputError(f"cannot read the archive: {type(e).__name__}: {str(e)[:120]}", file=path,
                             fix="check the download (tar.gz)") from None
    else:
        take(str(path), _read_text(path))
    if not records:
        raise InputError("no stays read", file=path,
                         fix="check that the archive holds stay files (*.txt) and, in Python, the RecordIDs given as ids=")
    out = _physionet_data(records, variables=variables, unknown=unknown, source=str(path))
    if outcomes is True:
        letter = name.split("-")[-1][:1] if name.startswith("set-") else "a"
        cand = path.parent / f"Outcomes-{letter}.txt"
        outcomes = cand if cand.exists() else None
    if outcomes:
        oc = read_physionet_outcomes(outcomes)
        missing = out.static.index.difference(oc.index)
        if len(missing):
            raise ValidationError([f"{len(missing)} of {len(out.static)} stay(s) read have no line in the "
                                   "outcomes file"],
                                  file=outcomes, fix="use the outcomes file of the same set")
        out.outcomes = oc.loc[out.static.index]
    return out
