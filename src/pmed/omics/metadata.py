"""Cell metadata: check that an ``obs`` column is usable, and join sample/patient tables onto cells."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pmed.errors import InputError, OptionError, ValidationError
from pmed.omics._tables import read_any_table, require_file, short, short_list

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["check_obs_key", "join_metadata"]


def check_obs_key(adata: anndata.AnnData, key: str, *, what: str = "batch key",
                  file: str | Path | None = None, min_levels: int = 1) -> None:
    """Raise a clear :class:`~pmed.errors.InputError` if ``key`` is not a usable ``obs`` column.

    Parameters
    ----------
    adata
        The data.
    key
        Column of ``adata.obs`` that must exist, have no missing values and at least
        ``min_levels`` distinct values.
    what
        What the key is, for the message (``"batch key"``, ``"label key"``).
    file
        File the data came from, for the message.
    min_levels
        Fewest distinct values accepted.
    """
    if key not in adata.obs.columns:
        raise InputError(f"{what} {short(key)} is not a column of the cell metadata", file=file,
                         where=f"obs columns: {short_list(adata.obs.columns)}",
                         fix="pass one of the obs columns, or join metadata holding it first (--metadata)")
    col = adata.obs[key]
    n_na = int(col.isna().sum())
    if n_na:
        raise InputError(f"{what} {key!r} is missing for {n_na} of {adata.n_obs} cells", file=file,
                         where=f"obs column {key!r}", fix="fill it or drop those cells")
    n = col.nunique()
    if n < min_levels:
        raise InputError(f"{what} {key!r} has {n} distinct value(s); at least {min_levels} needed",
                         file=file, where=f"obs column {key!r}",
                         fix="choose a column that separates the batches/groups")


def join_metadata(
    adata: anndata.AnnData,
    metadata: pd.DataFrame | str | Path,
    *,
    on: str | None = None,
    how: str = "require_all",
) -> anndata.AnnData:
    """Join sample/patient/batch metadata onto the cells.

    Parameters
    ----------
    adata
        Cells; changed in place and returned.
    metadata
        Table (or CSV/TSV/Parquet path) indexed by the join key (first column of a file).
    on
        ``obs`` column to join on (such as ``sample_id``); ``None`` joins on the cell barcodes.
    how
        ``"require_all"``: every cell must find a row (else :class:`ValidationError` with the
        unmatched keys); ``"left"``: unmatched cells get missing values.

    Returns
    -------
    anndata.AnnData
    """
    if how not in ("require_all", "left"):
        raise OptionError(f"unknown join how={how!r}", fix="use 'require_all' or 'left'")
    file = None
    if not isinstance(metadata, pd.DataFrame):
        file = Path(metadata)
        require_file(file, "metadata table")
        metadata = read_any_table(file, what="metadata table", first_column_str=True)
        if metadata.shape[1] == 0:
            raise InputError("metadata table has no columns", file=file,
                             fix="give a CSV/TSV with a header row, the join key first")
        metadata = metadata.set_index(metadata.columns[0])
    meta = metadata.copy()
    meta.index = meta.index.astype(str)
    if meta.index.duplicated().any():
        dup = meta.index[meta.index.duplicated()]
        # counts only: the keys may be patient IDs, which messages never echo
        raise ValidationError([f"{len(dup)} duplicated keys in the metadata"],
                              file=file, fix="give one metadata row per key")
    if on is None:
        keys = pd.Series(adata.obs_names.astype(str), index=adata.obs_names)
    else:
        check_obs_key(adata, on, what="join key")
        keys = adata.obs[on].astype(str)
    unmatched = sorted(set(keys) - set(meta.index))
    if unmatched and how == "require_all":
        n_cells = int(keys.isin(unmatched).sum())
        raise ValidationError(
            [f"{len(unmatched)} {on or 'barcode'} value(s) ({n_cells} cells) have no metadata row"],
            file=file, fix="add rows for them (in Python, how='left' keeps them with missing values)")
    clash = [c for c in meta.columns if c in adata.obs.columns and c != on]
    if clash:
        raise ValidationError([f"{len(clash)} metadata column(s) already in obs: {short_list(clash)}"],
                              file=file, fix="rename or drop those columns")
    joined = meta.reindex(keys.to_numpy())
    joined.index = adata.obs_names
    for c in joined.columns:
        adata.obs[c] = joined[c].to_numpy()
    return adata
