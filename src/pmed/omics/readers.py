"""Readers for single-cell and bulk expression data, returning AnnData (cells) or tables (bulk).

Supported inputs:

- ``.h5ad`` (AnnData);
- 10x Genomics output: a matrix folder (``matrix.mtx[.gz]``, ``barcodes.tsv[.gz]``,
  ``features.tsv[.gz]`` or ``genes.tsv[.gz]``) or a ``filtered_feature_bc_matrix.h5`` file;
- CSV/TSV count matrices (cells × genes or genes × cells, first column the names);
- bulk expression tables (genes × samples or samples × genes), read as samples × genes.

Every reader checks what it reads and raises :class:`~pmed.errors.InputError` naming the file and
the fix: an empty file, a matrix whose dimensions do not match its barcodes/genes lists, duplicate
or negative counts, a missing batch/metadata key.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from pmed.errors import InputError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = [
    "read_omics",
    "read_h5ad",
    "read_10x",
    "read_counts_table",
    "read_bulk",
    "join_metadata",
    "check_obs_key",
]

_TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz"}


def _suffix(path: Path) -> str:
    s = "".join(path.suffixes[-2:]).lower()
    return s if s.endswith(".gz") else path.suffix.lower()


def _require_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{what} not found", file=path, fix="check the path")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{what} is empty (0 bytes)", file=path,
                         fix="re-export the file; an empty file holds no cells or genes")


def read_omics(path: str | Path, **kwargs: Any) -> anndata.AnnData:
    """Read any supported single-cell input into an AnnData, choosing the reader by its name.

    Parameters
    ----------
    path
        ``.h5ad``, a 10x matrix folder, a 10x ``.h5`` file or a CSV/TSV count matrix.
    **kwargs
        Passed to the reader chosen.

    Returns
    -------
    anndata.AnnData
        Cells × genes with raw counts in ``X`` (CSR sparse) and a copy in ``layers['counts']``.

    Raises
    ------
    InputError
        Unknown format, missing or empty file, or a malformed matrix.
    """
    path = Path(path)
    if path.is_dir():
        return read_10x(path, **kwargs)
    _require_file(path, "single-cell input")
    suf = _suffix(path)
    if suf == ".h5ad":
        return read_h5ad(path, **kwargs)
    if suf == ".h5":
        return read_10x(path, **kwargs)
    if suf in _TABLE_SUFFIXES:
        return read_counts_table(path, **kwargs)
    raise InputError(f"unknown single-cell format {suf!r}", file=path,
                     fix="give an .h5ad, a 10x matrix folder or .h5 file, or a CSV/TSV count matrix")


def _finish(adata: anndata.AnnData, file: Path, *, counts_layer: str | None = None) -> anndata.AnnData:
    """Common checks: non-empty, unique names, CSR float32 counts kept in layers['counts']."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"no data: {adata.n_obs} cells × {adata.n_vars} genes", file=file,
                         fix="check that the file holds a count matrix")
    problems = []
    for axis, names in (("cell barcodes", adata.obs_names), ("genes", adata.var_names)):
        dup = names[names.duplicated()]
        if len(dup):
            problems.append(f"{len(dup)} duplicated {axis}, e.g. {list(dup[:3])}")
    if problems:
        raise ValidationError(problems, file=file,
                              fix="make names unique (e.g. adata.var_names_make_unique()) first")
    if counts_layer is not None:
        if counts_layer not in adata.layers:
            raise InputError(f"layer {counts_layer!r} not found", file=file,
                             where=f"layers {list(adata.layers)}",
                             fix="name the layer that holds raw counts, or leave it unset to use X")
        adata.X = adata.layers[counts_layer]
    X = adata.X
    if not sparse.issparse(X):
        X = sparse.csr_matrix(np.asarray(X))
    X = sparse.csr_matrix(X, dtype=np.float32)
    if X.nnz and X.data.min() < 0:
        raise InputError("the matrix has negative values: these are not raw counts", file=file,
                         where="X" if counts_layer is None else f"layers['{counts_layer}']",
                         fix="give raw counts (or name the counts layer with counts_layer=)")
    if X.nnz and not np.array_equal(X.data, np.round(X.data)):
        frac = float(np.mean(X.data != np.round(X.data)))
        raise InputError(f"{frac:.0%} of the non-zero values are not whole numbers: these look "
                         "normalised or log-transformed, not raw counts", file=file,
                         where="X" if counts_layer is None else f"layers['{counts_layer}']",
                         fix="name the layer holding raw counts (counts_layer= / --counts-layer), "
                             "or round ambient-corrected counts first")
    adata.X = X
    adata.layers["counts"] = X.copy()
    return adata


def read_h5ad(path: str | Path, *, counts_layer: str | None = None) -> anndata.AnnData:
    """Read an ``.h5ad`` file.

    Parameters
    ----------
    path
        The file.
    counts_layer
        Layer holding raw counts when ``X`` holds something else; default: ``X``.

    Returns
    -------
    anndata.AnnData
    """
    import anndata as ad

    path = Path(path)
    _require_file(path, "h5ad file")
    try:
        adata = ad.read_h5ad(path)
    except Exception as e:  # h5py/anndata raise many types for a corrupt file
        raise InputError(f"cannot read as h5ad ({type(e).__name__}: {e})", file=path,
                         fix="check that the file is an AnnData .h5ad written by anndata/scanpy") from e
    return _finish(adata, path, counts_layer=counts_layer)


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)  # noqa: SIM115


def _find(folder: Path, stems: Sequence[str]) -> Path | None:
    for stem in stems:
        for cand in (folder / stem, folder / f"{stem}.gz"):
            if cand.exists():
                return cand
    return None


def _read_lines_table(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise InputError("file is empty (0 bytes)", file=path, fix="re-export the 10x output")
    with _open_text(path) as fh:
        df = pd.read_csv(fh, sep="\t", header=None, dtype=str)
    return df


def read_10x(path: str | Path) -> anndata.AnnData:
    """Read 10x Genomics Cell Ranger output: a matrix folder or a ``.h5`` file.

    Parameters
    ----------
    path
        Folder holding ``matrix.mtx[.gz]``, ``barcodes.tsv[.gz]`` and ``features.tsv[.gz]`` (or
        ``genes.tsv`` of Cell Ranger 2), or a ``*.h5`` feature-barcode matrix.

    Returns
    -------
    anndata.AnnData
        Cells × genes (gene symbols as names, made unique; IDs in ``var['gene_ids']``).

    Raises
    ------
    InputError
        A file is missing or empty, or the matrix does not match the barcodes/genes lists.
    """
    import anndata as ad

    path = Path(path)
    if path.is_file():
        _require_file(path, "10x .h5 file")
        import scanpy as sc

        try:
            adata = sc.read_10x_h5(path)
        except Exception as e:
            raise InputError(f"cannot read as a 10x .h5 matrix ({type(e).__name__}: {e})",
                             file=path, fix="give Cell Ranger's filtered_feature_bc_matrix.h5") from e
        adata.var_names_make_unique()
        return _finish(adata, path)
    if not path.is_dir():
        raise InputError("10x matrix folder not found", file=path, fix="check the path")
    mtx = _find(path, ["matrix.mtx"])
    bc = _find(path, ["barcodes.tsv"])
    feat = _find(path, ["features.tsv", "genes.tsv"])
    missing = [n for n, p in (("matrix.mtx", mtx), ("barcodes.tsv", bc),
                              ("features.tsv or genes.tsv", feat)) if p is None]
    if missing:
        raise InputError(f"10x folder lacks {', '.join(missing)}", file=path,
                         fix="give Cell Ranger's filtered_feature_bc_matrix folder (files may be .gz)")
    assert mtx is not None and bc is not None and feat is not None
    if mtx.stat().st_size == 0:
        raise InputError("matrix file is empty (0 bytes)", file=mtx, fix="re-export the 10x output")
    from scipy.io import mmread

    try:
        with (gzip.open(mtx, "rb") if mtx.suffix == ".gz" else open(mtx, "rb")) as fh:  # noqa: SIM115
            m = mmread(fh)
    except Exception as e:
        raise InputError(f"cannot read Matrix Market file ({type(e).__name__}: {e})", file=mtx,
                         fix="check that matrix.mtx is a Matrix Market coordinate file") from e
    barcodes = _read_lines_table(bc)[0].to_numpy()
    features = _read_lines_table(feat)
    n_genes, n_cells = m.shape  # 10x stores genes × cells
    problems = []
    if len(features) != n_genes:
        problems.append(f"matrix has {n_genes} rows (genes) but {feat.name} lists {len(features)} genes")
    if len(barcodes) != n_cells:
        problems.append(f"matrix has {n_cells} columns (cells) but {bc.name} lists {len(barcodes)} barcodes")
    if problems:
        raise ValidationError(problems, file=path,
                              fix="matrix.mtx, barcodes.tsv and features.tsv must come from the same run")
    symbols = features[1] if features.shape[1] > 1 else features[0]
    var = pd.DataFrame({"gene_ids": features[0].to_numpy()}, index=pd.Index(symbols.to_numpy(), dtype=str))
    if features.shape[1] > 2:
        var["feature_types"] = features[2].to_numpy()
    adata = ad.AnnData(X=sparse.csr_matrix(m.T), obs=pd.DataFrame(index=pd.Index(barcodes, dtype=str)),
                       var=var)
    adata.var_names_make_unique()
    return _finish(adata, path)


def read_counts_table(
    path: str | Path,
    *,
    orientation: str = "auto",
    sep: str | None = None,
) -> anndata.AnnData:
    """Read a CSV/TSV count matrix whose first column holds names.

    Parameters
    ----------
    path
        The table; ``.gz`` allowed.
    orientation
        ``"cells_by_genes"``, ``"genes_by_cells"`` or ``"auto"`` (genes × cells when there are more
        rows than columns, as in most exported count matrices).
    sep
        Separator; default from the suffix (tab for ``.tsv``/``.txt``, comma for ``.csv``).

    Returns
    -------
    anndata.AnnData
    """
    import anndata as ad

    path = Path(path)
    _require_file(path, "count matrix")
    df = _read_numeric_table(path, sep=sep, what="count matrix")
    df = _orient(df, orientation, "cells")
    adata = ad.AnnData(X=sparse.csr_matrix(df.to_numpy(dtype=np.float32)),
                       obs=pd.DataFrame(index=df.index.astype(str)),
                       var=pd.DataFrame(index=df.columns.astype(str)))
    return _finish(adata, path)


def _read_numeric_table(path: Path, *, sep: str | None, what: str) -> pd.DataFrame:
    if sep is None:
        sep = "," if ".csv" in _suffix(path) else "\t"
    try:
        df = pd.read_csv(path, sep=sep, index_col=0)
    except pd.errors.EmptyDataError as e:
        raise InputError(f"{what} is empty", file=path, fix="give a table with a header row") from e
    except Exception as e:
        raise InputError(f"cannot parse {what} ({type(e).__name__}: {e})", file=path,
                         fix=f"give a {'comma' if sep == ',' else 'tab'}-separated table") from e
    if df.empty:
        raise InputError(f"{what} has no data rows or columns", file=path,
                         fix="give a table with names in the first column and one column per sample/cell")
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        col = bad[0]
        vals = pd.to_numeric(df[col], errors="coerce")
        row = int(np.flatnonzero(vals.isna() & df[col].notna())[0]) if (vals.isna() & df[col].notna()).any() \
            else int(np.flatnonzero(df[col].isna())[0])
        raise InputError(f"{len(bad)} non-numeric column(s) in the {what}", file=path,
                         where=f"line {row + 2}, column {col!r}",
                         fix="the first column holds names; every other cell must be a number")
    if df.isna().to_numpy().any():
        r, c = np.argwhere(df.isna().to_numpy())[0]
        raise InputError(f"missing value in the {what}", file=path,
                         where=f"line {r + 2}, column {df.columns[c]!r}", fix="fill counts with 0")
    return df


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
    """
    path = Path(path)
    _require_file(path, "bulk expression table")
    if path.suffix.lower() == ".parquet":
        df = pd.read_parquet(path)
        df = df.set_index(df.columns[0])
    else:
        df = _read_numeric_table(path, sep=sep, what="bulk expression table")
    df = _orient(df, orientation, "samples")
    df.index = df.index.astype(str)
    df.index.name = "sample_id"
    dup = df.index[df.index.duplicated()]
    if len(dup):
        raise ValidationError([f"{len(dup)} duplicated sample IDs, e.g. {list(dup[:3])}"], file=path,
                              fix="give each sample one row/column")
    return df


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
    cols = list(adata.obs.columns)
    if key not in adata.obs.columns:
        raise InputError(f"{what} {key!r} is not a column of the cell metadata", file=file,
                         where=f"obs columns: {cols[:20]}",
                         fix=f"pass one of the obs columns, or join metadata holding {key!r} first")
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
    file = None
    if not isinstance(metadata, pd.DataFrame):
        file = Path(metadata)
        _require_file(file, "metadata table")
        if file.suffix.lower() == ".parquet":
            metadata = pd.read_parquet(file)
        else:
            sep = "," if ".csv" in _suffix(file) else "\t"
            try:
                head = pd.read_csv(file, sep=sep, nrows=0).columns
                metadata = pd.read_csv(file, sep=sep, dtype={head[0]: str})
            except Exception as e:
                raise InputError(f"cannot parse metadata table ({type(e).__name__}: {e})",
                                 file=file, fix="give a CSV/TSV with a header row") from e
        metadata = metadata.set_index(metadata.columns[0])
    meta = metadata.copy()
    meta.index = meta.index.astype(str)
    if meta.index.duplicated().any():
        dup = meta.index[meta.index.duplicated()]
        raise ValidationError([f"{len(dup)} duplicated keys in the metadata, e.g. {list(dup[:3])}"],
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
            [f"{len(unmatched)} {on or 'barcode'} value(s) ({n_cells} cells) have no metadata row, "
             f"e.g. {unmatched[:5]}"],
            file=file, fix="add rows for them, or pass how='left' to keep them with missing values")
    clash = [c for c in meta.columns if c in adata.obs.columns and c != on]
    if clash:
        raise ValidationError([f"metadata columns already in obs: {clash}"], file=file,
                              fix="rename or drop those columns")
    joined = meta.reindex(keys.to_numpy())
    joined.index = adata.obs_names
    for c in joined.columns:
        adata.obs[c] = joined[c].to_numpy()
    return adata


def _orient(df: pd.DataFrame, orientation: str, rows: str) -> pd.DataFrame:
    """Rows = ``rows`` (cells or samples), columns = genes. ``auto``: genes outnumber the rest."""
    known = ("auto", f"{rows}_by_genes", f"genes_by_{rows}")
    if orientation not in known:
        raise InputError(f"unknown orientation {orientation!r}", fix=f"use {', '.join(known)}")
    if orientation == f"genes_by_{rows}" or (orientation == "auto" and df.shape[0] > df.shape[1]):
        return df.T
    return df
