"""Helpers the omics readers share: file checks, numeric text tables, orientation.

Every problem becomes an :class:`~pmed.errors.InputError` naming the file, the line and column
where it can, and the fix: these helpers are fed whatever a user has on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import InputError

__all__ = ["TABLE_SUFFIXES", "suffix", "require_file", "read_numeric_table", "read_any_table",
           "orient"]

TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz"}


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
            raise InputError(f"cannot read {what} as Parquet ({type(e).__name__})", file=path,
                             fix="check that the file is a Parquet table") from e
    sep = _sep(path, sep)
    try:
        with open_text(path) as fh:
            if first_column_str:
                head = pd.read_csv(fh, sep=sep, nrows=0).columns
                fh.seek(0)
                return pd.read_csv(fh, sep=sep, dtype={head[0]: str} if len(head) else None)
            return pd.read_csv(fh, sep=sep, index_col=index_col)
    except pd.errors.EmptyDataError as e:
        raise InputError(f"{what} is empty", file=path, fix="give a table with a header row") from e
    except InputError:
        raise
    except Exception as e:  # pandas' parser, a bad encoding (UnicodeDecodeError), gzip errors
        raise InputError(f"cannot parse {what} ({type(e).__name__}: {str(e)[:200]})", file=path,
                         fix=f"give a {'comma' if sep == ',' else 'tab'}-separated table with a "
                             "header row (UTF-8, optionally gzip-compressed)") from e


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
