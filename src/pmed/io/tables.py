"""Readers and writers for patient tables: CSV, TSV and Parquet."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd

from pmed.errors import InputError, OptionError, shorten
from pmed.io._atomic import atomic_path
from pmed.schema import TableSchema

__all__ = ["read_table", "read_raw_table", "write_table", "TABLE_SUFFIXES", "check_number_text",
           "check_table_suffix", "WRITABLE"]

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".parquet": None, ".pq": None}
#: Compressions pandas infers from a text table's name when writing (``x.csv.gz``).
_WRITE_COMPRESSIONS = (".gz", ".bz2", ".xz")
#: What :func:`write_table` writes, for messages (Excel is not among them: no dependency reads it).
WRITABLE = ".csv, .tsv (.txt), .parquet (.pq); text tables optionally .gz/.bz2/.xz-compressed"


def _suffix(path: Path) -> str:
    s = path.suffixes
    if len(s) >= 2 and s[-1] in (".gz", ".bz2", ".xz", ".zst"):
        return s[-2]
    return path.suffix


# An exponent of ten or more digits overflows the C int in pandas' float parser (pandas-dev/pandas
# #63089: read_csv and to_numeric crash the interpreter with a segmentation fault). No real value
# needs one, so such text is refused before pandas sees it.
# A field only, not the middle of a word: a hexadecimal pseudonym ("psn-f744e6473016701277a5")
# is text that pandas never parses as a number.
_HUGE_EXPONENT = re.compile(rb"(?:^|[,\t;| \"'])([+-]?[0-9]*\.?[0-9]+[eE][+-]?[0-9]{10,})", re.MULTILINE)


def check_number_text(data: bytes, *, file: str | Path | None = None) -> None:
    """Refuse numbers whose exponent pandas cannot parse safely (10+ digits), naming the line."""
    m = _HUGE_EXPONENT.search(data)
    if m is None:
        return
    start = m.start(1)
    line = data.count(b"\n", 0, start) + 1
    col = start - (data.rfind(b"\n", 0, start) + 1) + 1
    raise InputError("a number has an exponent of ten or more digits, which no measurement needs",
                     file=file, where=f"line {line}, column {col}",
                     fix="correct the value (e.g. 1.5e3, not 1.5e4000000000)")


def check_table_suffix(path: str | Path) -> Path:
    """Refuse an output table name whose extension :func:`write_table` does not write.

    Called at option time by the CLI (and by :func:`write_table` itself) so that ``--out
    f.xlsx`` fails before any work instead of writing CSV text under an Excel name.

    Raises
    ------
    OptionError
        (exit 2) The extension is missing or not one of :data:`WRITABLE`.
    """
    path = Path(path)
    suffixes = [x.lower() for x in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in _WRITE_COMPRESSIONS
    kind = suffixes[-2] if compressed and len(suffixes) >= 2 else (suffixes[-1] if suffixes else "")
    ok = kind in TABLE_SUFFIXES and not (compressed and TABLE_SUFFIXES[kind] is None)
    if not ok:
        got = "".join(suffixes[-2:] if compressed else suffixes[-1:]) or "no extension"
        raise OptionError(f"cannot write a table as {shorten(got, 20) if suffixes else got}: the "
                          f"extension chooses the format", file=path, fix=f"name the file with one of {WRITABLE}")
    return path


def _duplicate_columns(names, path: Path, where: str | None = "line 1") -> None:
    """Refuse a header that names a column twice (pandas would silently rename one ``age.1``)."""
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names, 1):
        if n is None or (isinstance(n, float) and n != n):  # empty header cells: pandas names them
            continue
        seen.setdefault(str(n).strip(), []).append(i)
    dup = {n: cols for n, cols in seen.items() if len(cols) > 1}
    if dup:
        shown = "; ".join(f"{shorten(n)} (columns {', '.join(map(str, cols[:4]))}"
                          f"{' …' if len(cols) > 4 else ''})" for n, cols in list(dup.items())[:5])
        more = f" and {len(dup) - 5} more" if len(dup) > 5 else ""
        raise InputError(f"duplicate column names in the header: {shown}{more}", file=path,
                         where=where, fix="give every column a unique name")


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed by content (gzip/bz2/xz) as pandas would read them."""
    import bz2
    import gzip
    import lzma
    import zlib

    with path.open("rb") as fh:
        head = fh.read(6)
    try:
        if head[:2] == b"\x1f\x8b":
            return gzip.decompress(path.read_bytes())
        if head[:3] == b"BZh":
            return bz2.decompress(path.read_bytes())
        if head[:6] == b"\xfd7zXZ\x00":
            return lzma.decompress(path.read_bytes())
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as e:
        detail = (str(e).strip().splitlines() or [""])[0][:80]
        kind = "zlib" if isinstance(e, zlib.error) else type(e).__name__
        raise InputError(f"compressed file is truncated or corrupt ({kind}{': ' + detail if detail else ''})",
                         file=path, fix="re-create or re-download the file") from None
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
            _duplicate_columns(_parquet_names(path), path, where=None)
            return pd.read_parquet(path)
        data = _read_bytes(path)
        if not data.strip():
            raise InputError(f"{what} is empty (no header, no rows)", file=path,
                             fix="check that the right file was given and that it was written completely")
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise InputError(f"{what} is UTF-16 encoded", file=path, fix="save it as UTF-8")
        check_number_text(data, file=path)
        sep = TABLE_SUFFIXES[suffix]
        # the header as written: read_csv renames a repeated name ('age' -> 'age.1') without a word
        _duplicate_columns(pd.read_csv(io.BytesIO(data), sep=sep, header=None, nrows=1, dtype=str)
                           .iloc[0].tolist(), path)
        return pd.read_csv(io.BytesIO(data), sep=sep, dtype=dtype, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
            ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        fix = ("check that it is a complete Parquet file" if TABLE_SUFFIXES[suffix] is None
               else "check the delimiter, quoting and encoding (UTF-8)")
        first = first if len(first) <= 200 else first[:200] + "…"  # pandas may quote a whole line
        raise InputError(f"cannot parse: {first}", file=path, fix=fix) from None


def _parquet_names(path: Path) -> list[str]:
    """Column names as stored in a Parquet file (pyarrow keeps repeats that pandas cannot select)."""
    try:
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    except ImportError:
        return []  # pandas' own engine reports what it cannot read


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
    if len(raw) == 0:
        raise InputError(f"the file has a header ({len(raw.columns)} columns) but no rows", file=path,
                         fix="check that the right file was given and that it was written completely")
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
    """Write a table atomically; the format follows the suffix (.csv, .tsv, .parquet).

    Raises
    ------
    OptionError
        (exit 2) An extension this function does not write (``.xlsx``, none): see
        :func:`check_table_suffix`, which callers run before any work.
    """
    path = check_table_suffix(path)
    suffix = _suffix(path).lower()
    with atomic_path(path) as tmp:
        if TABLE_SUFFIXES[suffix] is None:
            df.to_parquet(tmp, index=index)
        else:
            df.to_csv(tmp, sep=TABLE_SUFFIXES[suffix], index=index)
    return path
