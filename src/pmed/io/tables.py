"""Readers and writers for patient tables: CSV, TSV and Parquet."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd

from pmed.errors import InputError
from pmed.io._atomic import atomic_path
from pmed.schema import TableSchema

__all__ = ["read_table", "read_raw_table", "write_table", "TABLE_SUFFIXES", "check_number_text"]

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".parquet": None, ".pq": None}


def _suffix(path: Path) -> str:
    s = path.suffixes
    if len(s) >= 2 and s[-1] in (".gz", ".bz2", ".xz", ".zst"):
        return s[-2]
    return path.suffix


# An exponent of ten or more digits overflows the C int in pandas' float parser (pandas-dev/pandas
# #63089: read_csv and to_numeric crash the interpreter with a segmentation fault). No real value
# needs one, so such text is refused before pandas sees it.
_HUGE_EXPONENT = re.compile(rb"[0-9.][eE][+-]?[0-9]{10,}")


def check_number_text(data: bytes, *, file: str | Path | None = None) -> None:
    """Refuse numbers whose exponent pandas cannot parse safely (10+ digits), naming the line."""
    m = _HUGE_EXPONENT.search(data)
    if m is None:
        return
    line = data.count(b"\n", 0, m.start()) + 1
    col = m.start() - (data.rfind(b"\n", 0, m.start()) + 1) + 2
    raise InputError("a number has an exponent of ten or more digits, which no measurement needs",
                     file=file, where=f"line {line}, column {col}",
                     fix="correct the value (e.g. 1.5e3, not 1.5e4000000000)")


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed by content (gzip/bz2/xz) as pandas would read them."""
    import bz2
    import gzip
    import lzma

    head = path.open("rb").read(6)
    try:
        if head[:2] == b"\x1f\x8b":
            return gzip.decompress(path.read_bytes())
        if head[:3] == b"BZh":
            return bz2.decompress(path.read_bytes())
        if head[:6] == b"\xfd7zXZ\x00":
            return lzma.decompress(path.read_bytes())
    except (OSError, EOFError, ValueError, lzma.LZMAError) as e:
        raise InputError(f"compressed file is truncated or corrupt ({type(e).__name__})", file=path,
                         fix="re-create or re-download the file") from None
    return path.read_bytes()


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
    if path.is_dir():
        raise InputError(f"{what} is a folder", file=path, fix="name the table file inside it")
    try:
        if TABLE_SUFFIXES[suffix] is None:
            return pd.read_parquet(path)
        data = _read_bytes(path)
        check_number_text(data, file=path)
        return pd.read_csv(io.BytesIO(data), sep=TABLE_SUFFIXES[suffix], dtype=dtype,
                           keep_default_na=True)
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
