"""Bulk expression tables (genes × samples or samples × genes), read as samples × genes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pmed.errors import InputError, ValidationError
from pmed.omics._tables import orient, read_any_table, read_numeric_table, require_file

__all__ = ["read_bulk"]


def read_bulk(path: str | Path, *, orientation: str = "auto", sep: str | None = None) -> pd.DataFrame:
    """Read a bulk expression table as samples × genes.

    Parameters
    ----------
    path
        CSV/TSV (or Parquet) with names in the first column.
    orientation
        ``"samples_by_genes"``, ``"genes_by_samples"`` or ``"auto"`` (genes × samples when there are
        more rows than columns, the usual layout of count tables).
    sep
        Separator for text tables; default from the suffix.

    Returns
    -------
    pandas.DataFrame
        Indexed by sample ID (``sample_id``), one column per gene.

    Raises
    ------
    InputError
        Missing, empty or unparsable file, or a non-numeric value.
    ValidationError
        Duplicated sample IDs.
    """
    path = Path(path)
    require_file(path, "bulk expression table")
    if path.suffix.lower() == ".parquet":
        df = read_any_table(path, what="bulk expression table")
        if df.shape[1] < 2 or len(df) == 0:
            raise InputError("bulk expression table has no data rows or columns", file=path,
                             fix="give names in the first column and one column per sample/gene")
        df = df.set_index(df.columns[0])
    else:
        df = read_numeric_table(path, sep=sep, what="bulk expression table")
    df = orient(df, orientation, "samples")
    df.index = df.index.astype(str)
    df.index.name = "sample_id"
    dup = df.index[df.index.duplicated()]
    if len(dup):
        first = int(df.index.duplicated().argmax())  # a position, not the ID (may be a patient's)
        raise ValidationError([f"{len(dup)} duplicated sample IDs, first at sample {first + 1}"],
                              file=path,
                              fix="give each sample one row/column")
    return df
