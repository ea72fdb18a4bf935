"""De-identification of patient tables: keyed pseudonyms, identifiers removed, dates shifted.

What :func:`deidentify_table` does to each column (the report lists every column and why):

- the **patient ID column** → a keyed pseudonym, ``psn-`` and 20 hexadecimal characters of
  ``HMAC-SHA-256(key, "pmed-pseudonym" ‖ ID)`` (80 bits): the same patient gets the same
  pseudonym in every file and run with the same key, an unrelated one with another key, and
  nobody without the key can recompute it from a guessed ID;
- **direct identifiers** (names, addresses and places smaller than a state, phone and fax,
  e-mail, record/account/plan numbers, national IDs such as SSN or NHS numbers, URLs and IP
  addresses, free text), found by column name and by value patterns
  (:mod:`pmed.privacy.identifiers`) → **removed**;
- **dates** → shifted by a per-patient offset of −:data:`MAX_SHIFT_DAYS` … +:data:`MAX_SHIFT_DAYS`
  days (never 0) derived from ``HMAC-SHA-256(key, "pmed-date-shift" ‖ ID)``: every date of one
  patient moves by the same number of days in every file, so intervals within a patient (age at
  diagnosis, length of stay, time to event) are kept exactly, while calendar dates are not
  released. Without a patient ID column the dates are cut to their year (HIPAA Safe Harbor).
  A birth date whose patient would be 90 or older (at the latest other date of the row, else
  today) is removed;
- **ages** over 89 → ``"90+"`` (Safe Harbor, 45 CFR 164.514(b)(2)(i)(C));
- **postal codes** → US ZIP codes to their first three digits, ``000`` for the 17 prefixes of
  :data:`~pmed.privacy.identifiers.RESTRICTED_ZIP3` (Safe Harbor); UK postcodes to the outward
  code (``SW1A 1AA`` → ``SW1A``); Canadian ones to the forward sortation area; any other shape
  → removed (counted);
- everything else is kept as it is.

Nothing is ever logged or raised with a patient's value or ID in it: messages give counts and
line numbers.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import InputError, NotFoundError, OptionError, format_rows, shorten
from pmed.privacy.identifiers import (
    RESTRICTED_ZIP3,
    SAMPLE_SIZE,
    classify_column,
    is_birth_date,
    normalize_name,
)

__all__ = ["deidentify_table", "DeidResult", "pseudonym", "date_offset", "truncate_postal",
           "MAX_SHIFT_DAYS", "PSEUDONYM_PREFIX", "split_columns", "ID_CANDIDATES"]

#: Largest date shift, in days (half a year either way).
MAX_SHIFT_DAYS = 182
#: Start of every pseudonym (not a pattern any identifier rule matches).
PSEUDONYM_PREFIX = "psn-"
#: Column names taken as the patient ID when none is named (normalized, in order of preference).
ID_CANDIDATES = ("patient_id", "patientid", "subject_id", "participant_id", "person_id", "pid", "mrn",
                 "medical_record_number", "id")

_US_ZIP = re.compile(r"(\d{5})(?:-?\d{4})?")
_UK_POSTCODE = re.compile(r"(?i)([A-Z]{1,2}\d[A-Z\d]?)\s*(\d[A-Z]{2})")
_UK_OUTWARD = re.compile(r"(?i)[A-Z]{1,2}\d[A-Z\d]?")
_CA_POSTCODE = re.compile(r"(?i)([A-Z]\d[A-Z])\s*-?\s*\d[A-Z]\d")
_LEADING_NUMBER = re.compile(r"^\s*(\d+(?:[.,]\d+)?)")


def split_columns(items: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Column names from a repeatable option whose values may be comma-separated.

    ``["age,sex", "zip"]`` → ``["age", "sex", "zip"]`` (spaces around names dropped, repeats
    removed, order kept).
    """
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    out: list[str] = []
    for item in items:
        for name in str(item).split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out


def _text_id(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def pseudonym(key: bytes, patient_id: object) -> str:
    """The keyed pseudonym of one patient ID.

    Parameters
    ----------
    key
        The secret key (:func:`~pmed.privacy.keys.load_key`).
    patient_id
        The ID (its text, stripped; ``12.0`` reads as ``12``).

    Returns
    -------
    str
        ``psn-`` and 20 hexadecimal characters.
    """
    mac = hmac.new(key, b"pmed-pseudonym\0" + _text_id(patient_id).encode("utf-8"), hashlib.sha256)
    return PSEUDONYM_PREFIX + mac.hexdigest()[:20]


def date_offset(key: bytes, patient_id: object) -> int:
    """The keyed date shift of one patient, in days: ±1 … ±:data:`MAX_SHIFT_DAYS`, never 0.

    Parameters
    ----------
    key
        The secret key.
    patient_id
        The ID.

    Returns
    -------
    int
        Days to add to every date of this patient.
    """
    mac = hmac.new(key, b"pmed-date-shift\0" + _text_id(patient_id).encode("utf-8"), hashlib.sha256).digest()
    r = int.from_bytes(mac[:8], "big") % (2 * MAX_SHIFT_DAYS)
    return r - MAX_SHIFT_DAYS if r < MAX_SHIFT_DAYS else r - MAX_SHIFT_DAYS + 1


def truncate_postal(value: object) -> tuple[str | None, str]:
    """Generalize one postal code as HIPAA Safe Harbor (US) or the outward code (UK) allow.

    Parameters
    ----------
    value
        A ZIP code (``"02134"``, ``"02134-1234"``, ``2134`` read as a number), a UK or Canadian
        postcode.

    Returns
    -------
    tuple
        (generalized code or ``None`` when the shape is unknown, and which rule applied:
        ``"us_zip3"``, ``"us_zip3_restricted"``, ``"uk_outward"``, ``"ca_fsa"``, ``"unknown"``).
    """
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer()):
        text = str(int(value)).zfill(5)
    else:
        text = str(value).strip()
    if m := _US_ZIP.fullmatch(text):
        z3 = m.group(1)[:3]
        return ("000", "us_zip3_restricted") if z3 in RESTRICTED_ZIP3 else (z3, "us_zip3")
    if m := _UK_POSTCODE.fullmatch(text):
        return m.group(1).upper(), "uk_outward"
    if _UK_OUTWARD.fullmatch(text):
        return text.upper(), "uk_outward"
    if m := _CA_POSTCODE.fullmatch(text):
        return m.group(1).upper(), "ca_fsa"
    return None, "unknown"


@dataclass
class DeidResult:
    """What :func:`deidentify_table` made: ``data`` (the de-identified table), ``columns`` (one
    entry per input column: ``column``, ``action`` — ``kept``, ``pseudonymized``, ``removed``,
    ``date-shifted``, ``generalized`` — ``rule``, ``reason`` and counts), ``risk`` (k-anonymity of
    the quasi-identifiers in the output, when named) and ``key`` (the key's file and public
    fingerprint, never the key). ``write(out)`` writes the table and its report."""

    data: pd.DataFrame
    columns: list[dict[str, Any]] = field(default_factory=list)
    risk: dict[str, Any] | None = None
    key: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Counts: rows, columns in and out, columns per action."""
        actions: dict[str, int] = {}
        for c in self.columns:
            actions[c["action"]] = actions.get(c["action"], 0) + 1
        return {"n_rows": int(len(self.data)), "n_columns_in": len(self.columns),
                "n_columns_out": int(self.data.shape[1]), "actions": actions}

    def report(self) -> dict[str, Any]:
        """The whole report (JSON-ready): summary, key fingerprint, every column, risk."""
        return {"summary": self.summary(), "key": self.key, "columns": self.columns, "risk": self.risk,
                "options": self.options, "provenance": self.provenance}

    def report_table(self) -> pd.DataFrame:
        """One row per input column: what was done and why."""
        rows = []
        for c in self.columns:
            rows.append({"column": c["column"], "action": c["action"], "rule": c.get("rule"),
                         "reason": c.get("reason"),
                         "details": "; ".join(f"{k}={v}" for k, v in c.items()
                                              if k not in ("column", "action", "rule", "reason"))})
        return pd.DataFrame(rows, columns=["column", "action", "rule", "reason", "details"])

    def write(self, out: str | Path, *, report: str | Path | None = None) -> dict[str, Path]:
        """Write the de-identified table to ``out`` and the report beside it (or to ``report``).

        Parameters
        ----------
        out
            The table (``.csv``, ``.tsv``, ``.parquet``; the extension picks the format).
        report
            The report: ``.json`` (everything) or ``.csv`` (one row per column). Default:
            ``<out's name without extension>.deid-report.json`` beside ``out``.

        Returns
        -------
        dict
            ``{"table": path, "report": path}``.

        Raises
        ------
        InputError
            An output would replace the input or the key.
        OptionError
            The key file lies in the output's folder; an unknown extension.
        """
        from pmed.io import check_not_input, write_table, write_text_atomic
        from pmed.io.jsonio import to_json
        from pmed.io.tables import check_table_suffix
        from pmed.privacy.keys import check_key_location

        out = check_table_suffix(out)
        report = Path(report) if report is not None else out.with_name(_stem(out.name) + ".deid-report.json")
        if report.suffix.lower() not in (".json", ".csv"):
            raise OptionError(f"cannot write the report as {shorten(report.suffix or 'no extension', 20)}",
                              file=report, fix="name the report .json or .csv")
        key_file = self.key.get("file")
        for target in (out, report):
            check_not_input(target, self.source, key_file)
            if key_file:
                check_key_location(key_file, target)
        if Path(out).resolve() == report.resolve():
            raise OptionError("the report and the table have the same path", file=out,
                              fix="give --report another name")
        files = {"table": write_table(self.data, out, index=False)}
        if report.suffix.lower() == ".csv":
            files["report"] = write_table(self.report_table(), report, index=False)
        else:
            files["report"] = write_text_atomic(report, to_json(self.report()))
        return files


def _stem(name: str) -> str:
    for suffix in (".gz", ".bz2", ".xz"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name.rsplit(".", 1)[0] if "." in name else name


def _lines(mask: np.ndarray, text_table: bool) -> str:
    """Where the rows of ``mask`` are: lines of a text table (header is line 1) or rows."""
    idx = np.flatnonzero(mask)
    return f"lines {format_rows(idx + 2)}" if text_table else f"rows {format_rows(idx + 1)}"


def _parse_dates(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    text = s.astype(object).where(s.isna(), s.astype(str).str.strip())
    try:
        return pd.to_datetime(text, errors="coerce", format="mixed")
    except (ValueError, TypeError):  # mixed time zones
        return pd.to_datetime(text, errors="coerce", format="mixed", utc=True)


def _format_dates(parsed: pd.Series, original: pd.Series) -> pd.Series:
    """Shifted dates in the shape they came in: a datetime column stays one; text becomes ISO."""
    if pd.api.types.is_datetime64_any_dtype(original):
        return parsed
    ok = parsed.notna()
    has_time = bool((parsed[ok].dt.normalize() != parsed[ok]).any()) if ok.any() else False
    fmt = "%Y-%m-%dT%H:%M:%S" if has_time else "%Y-%m-%d"
    return parsed.dt.strftime(fmt).astype(object).where(ok, None)


def _ages(s: pd.Series) -> tuple[pd.Series, int, int]:
    """Ages over 89 as ``"90+"``; returns (column, how many grouped, how many not a number)."""
    if pd.api.types.is_numeric_dtype(s):
        num = pd.to_numeric(s, errors="coerce").astype(float)
        texts = None
    else:
        texts = s.astype(object).where(s.isna(), s.astype(str))
        num = pd.to_numeric(texts.str.extract(_LEADING_NUMBER, expand=False).str.replace(",", "."),
                            errors="coerce").astype(float)
    over = (num >= 90).to_numpy()  # "over 89" in whole years: 89.5 is still 89
    n_bad = int((s.notna() & num.isna()).sum())
    if not over.any():
        return s, 0, n_bad
    if texts is None:
        texts = num.map(lambda v: None if np.isnan(v) else (str(int(v)) if float(v).is_integer() else str(v)))
    out = texts.astype(object).copy()
    out[over] = "90+"
    return out, int(over.sum()), n_bad


def _pick_id(df: pd.DataFrame, id_col: str | None, source: str | None) -> str | None:
    if id_col is not None:
        if id_col not in df.columns:
            raise NotFoundError(f"ID column {shorten(id_col)} not found; the table has: "
                                f"{_names(df.columns)}", file=source, fix="name the patient ID column with --id-col")
        return id_col
    norm = {normalize_name(c): c for c in df.columns}
    for cand in ID_CANDIDATES:
        if cand in norm:
            return norm[cand]
    return None


def _names(columns, limit: int = 30) -> str:
    cols = [shorten(str(c)) for c in columns]
    return ", ".join(cols[:limit]) + (f", … ({len(cols)} in all)" if len(cols) > limit else "")


def _read(data, what: str = "input table") -> tuple[pd.DataFrame, str | None, bool]:
    """(table, source path or None, whether lines are text-table lines)."""
    from pmed.io.tables import TABLE_SUFFIXES, _suffix, read_raw_table

    if isinstance(data, pd.DataFrame):
        named = data.index.name is not None and data.index.name not in data.columns
        return (data.reset_index() if named else data.reset_index(drop=True)), None, False
    path = Path(data)
    df = read_raw_table(path, dtype=object, what=what)
    if len(df) == 0:
        raise InputError(f"the table has a header ({len(df.columns)} columns) but no rows", file=path,
                         fix="check that the right file was given")
    text = TABLE_SUFFIXES.get(_suffix(path).lower()) is not None
    return df, str(path), text


def deidentify_table(
    data: str | Path | pd.DataFrame,
    *,
    key_file: str | Path,
    create_key: bool = False,
    id_col: str | None = None,
    date_cols: str | list[str] | None = None,
    quasi: str | list[str] | None = None,
    k: int = 5,
    out: str | Path | None = None,
    sample: int = SAMPLE_SIZE,
) -> DeidResult:
    """De-identify a patient table (see the module's documentation for every rule).

    Parameters
    ----------
    data
        A CSV/TSV/Parquet file (never modified) or a table.
    key_file
        The secret key file (:func:`~pmed.privacy.keys.load_key`).
    create_key
        Create ``key_file`` (32 random bytes, mode 0600) if it does not exist yet.
    id_col
        The patient ID column (pseudonymized). Default: the first of :data:`ID_CANDIDATES`
        present; with none, dates are cut to their year.
    date_cols
        Columns to date-shift beyond those recognized by name and values (names, or one
        comma-separated string).
    quasi
        Quasi-identifiers whose k-anonymity in the output is reported (:func:`check_risk`).
    k
        The k of that report.
    out
        The output table, when known: the key may not lie in its folder.
    sample
        Values searched per column for identifier patterns.

    Returns
    -------
    DeidResult
        The table, the per-column report and the risk.

    Raises
    ------
    InputError
        Missing, empty or too short key file; unreadable table.
    NotFoundError
        ``id_col``, a date or quasi-identifier column not in the table (the columns are listed).
    OptionError
        The key lies in the output's folder; ``k < 1``.
    """
    from pmed.privacy.keys import check_key_location, key_id, load_key
    from pmed.privacy.keys import create_key as _create_key
    from pmed.result import make_provenance

    dates = split_columns(date_cols)
    quasis = split_columns(quasi)
    if k < 1:
        raise OptionError(f"k must be at least 1, not {k}", fix="give --k 2 or more (5 is usual)")
    if sample < 1:
        raise OptionError(f"sample must be at least 1, not {sample}")
    key_path = Path(key_file)
    check_key_location(key_path, out)
    created = False
    if create_key and not key_path.exists():
        _create_key(key_path)
        created = True
    key = load_key(key_path)

    df, source, text_table = _read(data)
    if out is not None and source is not None:
        from pmed.io import check_not_input

        check_not_input(out, source, key_path)
    missing = [c for c in [*dates, *quasis] if c not in df.columns]
    if missing:
        raise NotFoundError(f"column{'s' if len(missing) > 1 else ''} {_names(missing)} not in the table; it has: "
                            f"{_names(df.columns)}", file=source,
                            fix="name columns as in the table's header (--date-cols, --quasi)")
    pid = _pick_id(df, id_col, source)
    ids = None
    entries: list[dict[str, Any]] = []
    result = pd.DataFrame(index=df.index)
    birth_cols: list[str] = []
    shifted: dict[str, pd.Series] = {}

    if pid is not None:
        raw = df[pid]
        ids = raw.map(_text_id).where(raw.notna() & (raw.astype(str).str.strip() != ""), None)
        offsets = {v: date_offset(key, v) for v in ids.dropna().unique()}
        shift_days = ids.map(offsets)

    for col in df.columns:
        s = df[col]
        if col == pid:
            result[col] = ids.map(lambda v: None if v is None else pseudonym(key, v))
            n_missing = int(ids.isna().sum())
            entries.append({"column": str(col), "action": "pseudonymized", "rule": "patient_id",
                            "reason": "patient ID → keyed HMAC-SHA-256 pseudonym",
                            "n_patients": int(ids.nunique()), "n_missing": n_missing})
            continue
        kind = classify_column(col, s, sample=sample)
        if col in dates and kind.kind != "date":
            kind = type(kind)("date", "date_cols", "named in date_cols")
        if kind.kind == "identifier":
            e = {"column": str(col), "action": "removed", "rule": kind.rule, "reason": kind.reason}
            if kind.n_matched is not None:
                e["n_values_matched"], e["n_values_searched"] = kind.n_matched, kind.n_sampled
            entries.append(e)
            continue
        if kind.kind == "date":
            parsed = _parse_dates(s)
            bad = (s.notna() & parsed.isna()).to_numpy()
            if hasattr(parsed.dt, "tz") and parsed.dt.tz is not None:
                parsed = parsed.dt.tz_convert(None)
            e: dict[str, Any] = {"column": str(col), "rule": kind.rule, "reason": kind.reason}
            if pid is not None:
                moved = parsed + pd.to_timedelta(shift_days.where(parsed.notna()), unit="D")
                no_id = (parsed.notna() & shift_days.isna()).to_numpy()
                moved = moved.where(~no_id)
                shifted[col] = moved
                result[col] = _format_dates(moved, s)
                e.update(action="date-shifted", shift=f"per patient, ±1…{MAX_SHIFT_DAYS} days (keyed)",
                         n_shifted=int(moved.notna().sum()))
                if no_id.any():
                    e["n_removed_no_patient_id"] = int(no_id.sum())
                if is_birth_date(col):
                    birth_cols.append(col)
            else:
                year = parsed.dt.year.astype("Int64").astype(str).where(parsed.notna(), None)
                result[col] = year.astype(object)
                e.update(action="generalized", generalization="year (no patient ID column to shift dates by)",
                         n_generalized=int(parsed.notna().sum()))
            if bad.any():
                e["n_unparsed_removed"] = int(bad.sum())
                e["unparsed_at"] = _lines(bad, text_table)
            entries.append(e)
            continue
        if kind.kind == "age":
            aged, n_over, n_bad = _ages(s)
            result[col] = aged
            e = {"column": str(col), "action": "generalized" if n_over else "kept", "rule": "age_over_89",
                 "reason": "ages over 89 grouped as '90+' (HIPAA Safe Harbor)", "n_grouped_90_plus": n_over}
            if n_bad:
                e["n_not_numeric"] = n_bad
            entries.append(e)
            continue
        if kind.kind == "postal":
            pairs = [truncate_postal(v) if pd.notna(v) and str(v).strip() != "" else (None, "missing") for v in s]
            result[col] = pd.Series([p[0] for p in pairs], index=s.index, dtype=object)
            rules = pd.Series([p[1] for p in pairs]).value_counts()
            e = {"column": str(col), "action": "generalized", "rule": "postal_code",
                 "reason": "US ZIP → 3 digits (000 for sparse areas), UK → outward code, Canada → FSA",
                 **{f"n_{r}": int(n) for r, n in rules.items() if r != "missing"}}
            unknown = np.array([p[1] == "unknown" for p in pairs])
            if unknown.any():
                e["unknown_removed_at"] = _lines(unknown, text_table)
            entries.append(e)
            continue
        result[col] = s
        entries.append({"column": str(col), "action": "kept", "rule": None, "reason": "no identifier rule matched"})

    _drop_old_births(result, entries, birth_cols, shifted)
    result = result.reset_index(drop=True)
    risk = None
    if quasis:
        from pmed.privacy.risk import check_risk

        kept = [q for q in quasis if q in result.columns]
        gone = [q for q in quasis if q not in result.columns]
        if kept:
            risk = check_risk(result, kept, k=min(k, len(result)))
        else:
            risk = {}
        if gone:
            risk["quasi_removed"] = gone
    options = {"id_col": pid, "date_cols": dates, "quasi": quasis, "k": k, "sample": sample}
    prov = make_provenance("privacy", inputs={"table": source} if source else None, options=options)
    return DeidResult(data=result, columns=entries, risk=risk, source=source, options=options, provenance=prov,
                      key={"file": str(key_path), "id": key_id(key), "created": created})


def _drop_old_births(result: pd.DataFrame, entries: list[dict], birth_cols: list[str],
                     shifted: dict[str, pd.Series]) -> None:
    """Remove birth dates of patients 90 or older (at the row's latest other date, else today)."""
    if not birth_cols:
        return
    others = [c for c in shifted if c not in birth_cols]
    today = pd.Timestamp(_dt.date.today())
    ref = (pd.concat([shifted[c] for c in others], axis=1).max(axis=1) if others
           else pd.Series(today, index=result.index))
    ref = ref.fillna(today)
    for col in birth_cols:
        dob = shifted[col]
        age = (ref - dob).dt.days / 365.2425
        old = (age >= 90).to_numpy()
        if old.any():
            result.loc[old, col] = None
            for e in entries:
                if e["column"] == str(col):
                    e["n_removed_age_90_plus"] = int(old.sum())
