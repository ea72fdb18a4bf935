"""Helpers the omics readers share: file checks, numeric text tables, orientation.

Every problem becomes an :class:`~pmed.errors.InputError` naming the file, the line and column
where it can, and the fix: these helpers are fed whatever a user has on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import InputError, format_rows

__all__ = ["TABLE_SUFFIXES", "suffix", "require_file", "read_numeric_table", "read_any_table",
           "orient", "damaged", "short", "short_list"]

TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz"}


def short(value: object, limit: int = 40) -> str:
    """``repr(value)`` with a long text cut to ``limit`` characters: a message never echoes a long
    value. Text is quoted (``'B cells'``), anything else shown as Python shows it (``2.5``)."""
    if not isinstance(value, str):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def short_list(values, limit: int = 6) -> str:
    """The first ``limit`` values (each cut by :func:`short`) and how many there are in all."""
    values = list(values)
    shown = ", ".join(short(str(v), 24) for v in values[:limit])
    return "[" + shown + (f", … ({len(values)} in all)" if len(values) > limit else "") + "]"


def damaged(e: BaseException) -> str | None:
    """Why a read failed when the file itself is cut short or damaged, else ``None``.

    A truncated gzip stream raises ``EOFError``, a damaged one ``zlib.error`` or
    ``gzip.BadGzipFile``; HDF5 says "truncated file" in an ``OSError``. Naming the cause beats
    the parser's words, which blame the delimiter or the format.
    """
    import gzip
    import zlib

    if isinstance(e, EOFError):
        return "truncated (the compressed stream ends early)"
    if isinstance(e, (zlib.error, gzip.BadGzipFile)):
        return "corrupt (the compressed stream is damaged)"
    text = str(e).lower()
    if isinstance(e, OSError) and "truncated" in text:
        return "truncated (shorter than its own header says)"
    if isinstance(e, OSError) and ("corrupt" in text or "bad object header" in text):
        return "corrupt"
    return None


def suffix(path: Path) -> str:
    """``.csv.gz``-style double suffix when the name ends in ``.gz``, else the last suffix."""
    s = "".join(path.suffixes[-2:]).lower()
    return s if s.endswith(".gz") else path.suffix.lower()


def require_file(path: Path, what: str) -> None:
    """Raise :class:`InputError` for a missing or empty (0 bytes) file."""
    if not path.exists():
        raise InputError(f"{what} not found", file=path, fix="check the path")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{what} is empty (0 bytes)", file=path,
                         fix="re-export the file; an empty file holds no cells or genes")


def _sep(path: Path, sep: str | None) -> str:
    return sep if sep is not None else ("," if ".csv" in suffix(path) else "\t")


def read_any_table(path: Path, *, what: str, sep: str | None = None,
                   first_column_str: bool = False, index_col: int | None = None) -> pd.DataFrame:
    """A CSV/TSV (gzip by content, see :func:`pmed.io.open_text`) or Parquet table, as read.

    ``first_column_str`` keeps the first column's values as written (IDs such as ``007``).
    """
    from pmed.io import open_text

    if path.suffix.lower() == ".parquet":
        try:
            return pd.read_parquet(path)
        except Exception as e:  # pyarrow raises its own types for a corrupt file
            raise InputError(f"cannot read {what} as Parquet: the file is truncated, corrupt or not "
                             f"Parquet ({type(e).__name__})", file=path,
                             fix="write or copy the Parquet table again") from e
    sep = _sep(path, sep)
    try:
        with open_text(path) as fh:
            # the header as written: pandas renames a repeated name ("a", "a.1") without a word
            header = pd.read_csv(fh, sep=sep, nrows=1, header=None, dtype=str)
            fh.seek(0)
            if first_column_str:
                head = pd.read_csv(fh, sep=sep, nrows=0).columns
                fh.seek(0)
                df = pd.read_csv(fh, sep=sep, dtype={head[0]: str} if len(head) else None)
            else:
                df = pd.read_csv(fh, sep=sep, index_col=index_col)
    except pd.errors.EmptyDataError as e:
        raise InputError(f"{what} is empty", file=path, fix="give a table with a header row") from e
    except InputError:
        raise
    except Exception as e:  # pandas' parser, a bad encoding (UnicodeDecodeError), gzip errors
        why = damaged(e)
        if why is not None:
            raise InputError(f"the {what} file is {why}", file=path,
                             fix="the file is incomplete or damaged: write or copy it again") from e
        raise InputError(f"cannot parse {what} ({type(e).__name__}: {str(e)[:200]})", file=path,
                         fix=f"give a {'comma' if sep == ',' else 'tab'}-separated table with a "
                             "header row (UTF-8, optionally gzip-compressed)") from e
    names = header.iloc[0] if len(header) else pd.Series(dtype=str)
    names = names[names.notna()]
    dup = names.duplicated(keep=False).to_numpy()
    if dup.any():
        # positions, not names: the header of a count matrix may hold barcodes or sample IDs
        cols = [int(i) + 1 for i in names.index[dup]]
        raise InputError(f"{int(names.duplicated().sum())} column name(s) appear more than once in the header "
                         f"(columns {format_rows(cols)})", file=path, where="line 1",
                         fix="give each column its own name")
    return df


def read_numeric_table(path: Path, *, sep: str | None, what: str) -> pd.DataFrame:
    """A table whose first column holds names and every other cell a number.

    Raises
    ------
    InputError
        Unparsable file, no data, a non-numeric or missing value (with its line and column).
    """
    # index_col=0 also reads R's tables, whose header lacks the name column's title
    df = read_any_table(path, what=what, sep=sep, index_col=0)
    if df.empty:
        raise InputError(f"{what} has no data rows or columns", file=path,
                         fix="give a table with names in the first column and one column per "
                             "sample/cell")
    n_bad = 0
    first_bad: tuple[int, object] | None = None
    for col in list(df.columns):
        if pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col]):
            continue
        # a column pandas left as text may still be numbers (e.g. with stray spaces)
        vals = pd.to_numeric(df[col], errors="coerce") if df[col].dtype == object else None
        if vals is None:
            bad = np.ones(len(df), dtype=bool)
        else:
            bad = (vals.isna() & df[col].notna()).to_numpy()
        if bad.any():
            n_bad += 1
            if first_bad is None:
                first_bad = (int(np.flatnonzero(bad)[0]), col)
        else:
            df[col] = vals
    if first_bad is not None:
        row, col = first_bad
        raise InputError(f"{n_bad} non-numeric column(s) in the {what}", file=path,
                         where=f"line {row + 2}, column {str(col)[:40]!r}",
                         fix="the first column holds names; every other cell must be a number")
    missing = df.isna().to_numpy()
    if missing.any():
        r, c = np.argwhere(missing)[0]
        raise InputError(f"missing value in the {what}", file=path,
                         where=f"line {r + 2}, column {str(df.columns[c])[:40]!r}",
                         fix="fill counts with 0")
    return df


def orient(df: pd.DataFrame, orientation: str, rows: str) -> pd.DataFrame:
    """Rows = ``rows`` (cells or samples), columns = genes. ``auto``: genes outnumber the rest."""
    from pmed.errors import OptionError

    known = ("auto", f"{rows}_by_genes", f"genes_by_{rows}")
    if orientation not in known:
        raise OptionError(f"unknown orientation {orientation!r}", fix=f"use {', '.join(known)}")
    if orientation == f"genes_by_{rows}" or (orientation == "auto" and df.shape[0] > df.shape[1]):
        return df.T
    return df
