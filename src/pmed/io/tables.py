"""Readers and writers for patient tables: CSV, TSV and Parquet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pmed.errors import InputError
from pmed.io._atomic import atomic_path
from pmed.schema import TableSchema

__all__ = ["read_table", "read_raw_table", "write_table", "TABLE_SUFFIXES"]

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".parquet": None, ".pq": None}


def _suffix(path: Path) -> str:
    s = path.suffixes
    if len(s) >= 2 and s[-1] in (".gz", ".bz2", ".xz", ".zst"):
        return s[-2]
    return path.suffix


def read_raw_table(
    path: str | Path,
    *,
    dtype=None,
    what: str = "file",
    missing_fix: str = "check the path",
) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet file as it is (no schema), with pmed's errors for bad input.

    Parameters
    ----------
    path
        ``.csv``, ``.tsv``/``.txt`` (optionally compressed), ``.parquet``/``.pq``.
    dtype
        Passed to :func:`pandas.read_csv` (``object``/``str`` keeps text as written).
    what
        Names the file in the "not found" message (``"predictions file"``…).
    missing_fix
        The fix suggested when the file does not exist.

    Raises
    ------
    InputError
        Missing file, unknown suffix, or unparsable content (first line of the parser's message).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} not found", file=path, fix=missing_fix)
    suffix = _suffix(path).lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"unknown table format {suffix!r}", file=path,
                         fix="use .csv, .tsv or .parquet")
    try:
        if TABLE_SUFFIXES[suffix] is None:
            return pd.read_parquet(path)
        return pd.read_csv(path, sep=TABLE_SUFFIXES[suffix], dtype=dtype, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
            ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot parse: {first}", file=path,
                         fix="check the delimiter, quoting and encoding (UTF-8)") from None


def read_table(
    path: str | Path,
    *,
    schema: TableSchema | str | Path | None = None,
    id: str | None = None,
) -> pd.DataFrame:
    """Read a patient table and validate it against a schema.

    Parameters
    ----------
    path
        A ``.csv``, ``.tsv``/``.txt`` (optionally compressed) or ``.parquet`` file.
    schema
        A :class:`~pmed.schema.TableSchema`, or the path of its YAML/JSON form. Without one,
        types are inferred and only the ID column is checked.
    id
        ID column name when no schema is given (default ``patient_id``).

    Returns
    -------
    pandas.DataFrame
        Indexed by patient ID (strings), typed by the schema.

    Raises
    ------
    InputError
        The file is missing, of an unknown kind, or cannot be parsed.
    ValidationError
        The content breaks the schema (see :meth:`TableSchema.validate`).
    """
    path = Path(path)
    raw = read_raw_table(path, dtype=object, missing_fix="check the path (relative paths in a study "
                                                         "are relative to the study file)")
    if isinstance(schema, (str, Path)):
        schema = TableSchema.read(schema)
    if schema is None:
        schema = TableSchema(id=id or "patient_id")
        validated = schema.validate(raw, source=str(path))
        return _infer_types(validated)
    return schema.validate(raw, source=str(path))


def _infer_types(df: pd.DataFrame) -> pd.DataFrame:
    """Turn object columns read as text into numbers where every value parses."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            num = pd.to_numeric(out[c], errors="coerce")
            if num.notna().sum() == out[c].notna().sum():
                out[c] = num
    return out


def write_table(df: pd.DataFrame, path: str | Path, *, index: bool = True) -> Path:
    """Write a table atomically; the format follows the suffix (.csv, .tsv, .parquet)."""
    path = Path(path)
    suffix = _suffix(path).lower()
    with atomic_path(path) as tmp:
        if TABLE_SUFFIXES.get(suffix, ",") is None:
            df.to_parquet(tmp, index=index)
        else:
            df.to_csv(tmp, sep=TABLE_SUFFIXES.get(suffix, ","), index=index)
    return path
