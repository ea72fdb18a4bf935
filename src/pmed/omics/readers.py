"""Readers for single-cell expression data, returning AnnData (cells × genes, raw counts).

Supported inputs:

- ``.h5ad`` (AnnData);
- 10x Genomics output: a matrix folder (``matrix.mtx[.gz]``, ``barcodes.tsv[.gz]``,
  ``features.tsv[.gz]`` or ``genes.tsv[.gz]``) or a ``filtered_feature_bc_matrix.h5`` file;
- CSV/TSV count matrices (cells × genes or genes × cells, first column the names).

Every reader checks what it reads and raises :class:`~pmed.errors.InputError` naming the file and
the fix: an empty file, a matrix whose dimensions do not match its barcodes/genes lists,
duplicate names, negative, fractional or non-finite counts. Whatever bytes a file holds, the
outcome is an AnnData or a :class:`~pmed.errors.PmedError` (``tests/omics/test_omics_fuzz.py``).

Bulk tables (:func:`pmed.omics.bulk.read_bulk`) and the metadata helpers
(:func:`pmed.omics.metadata.check_obs_key`, :func:`~pmed.omics.metadata.join_metadata`) live in
their own modules and are re-exported here, where they used to be.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from pmed.errors import InputError, PmedWarning, ValidationError, format_rows, require
from pmed.omics._mtx import mmread_checked, mtx_header
from pmed.omics._tables import (
    TABLE_SUFFIXES,
    damaged,
    orient,
    read_numeric_table,
    require_file,
    short_list,
    suffix,
)
from pmed.omics.bulk import read_bulk
from pmed.omics.metadata import check_obs_key, join_metadata

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = [
    "OmicsWarning",
    "read_omics",
    "read_h5ad",
    "read_10x",
    "read_counts_table",
    "read_bulk",
    "join_metadata",
    "check_obs_key",
]

# the old private names, for code that imported them from here
_suffix = suffix
_require_file = require_file
_TABLE_SUFFIXES = TABLE_SUFFIXES


class OmicsWarning(PmedWarning):
    """Cells or genes read, but changed on the way: duplicated gene names made unique."""


def _unique_genes(adata: anndata.AnnData, file: Path) -> None:
    """Make repeated gene names unique (``TBCE``, ``TBCE-1``), with a warning that counts them.

    Genes, not cells: two features sharing a symbol are common (10x lists Ensembl IDs with
    their symbols), and each keeps its counts under its own name; nothing is dropped. Gene
    names are not identifiers of people, so a few are named.
    """
    names = adata.var_names
    dup = names[names.duplicated()]
    if not len(dup):
        return
    first = list(dict.fromkeys(str(d) for d in dup))
    warnings.warn(f"{file}: {len(dup)} gene names repeat an earlier one ({len(first)} distinct: "
                  f"{short_list(first, 5)}); made unique by appending -1, -2 …, every gene kept",
                  OmicsWarning, stacklevel=3)
    adata.var_names_make_unique()


def _anndata():
    return require("anndata", extra="omics", feature="single-cell data")


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
    require_file(path, "single-cell input")
    suf = suffix(path)
    if suf == ".h5ad":
        return read_h5ad(path, **kwargs)
    if suf == ".h5":
        return read_10x(path, **kwargs)
    if suf in TABLE_SUFFIXES:
        return read_counts_table(path, **kwargs)
    raise InputError(f"unknown single-cell format {suf!r}", file=path,
                     fix="give an .h5ad, a 10x matrix folder or .h5 file, or a CSV/TSV count matrix")


def _as_csr(X: Any, file: Path, where: str) -> sparse.csr_matrix:
    """``X`` as a float32 CSR matrix, or an InputError when it is not a numeric matrix."""
    fix = "give raw counts (whole, non-negative numbers)"
    if not sparse.issparse(X):
        try:
            X = np.asarray(X)
        except (TypeError, ValueError) as e:  # ragged or odd objects anndata let through
            raise InputError(f"the count matrix is not an array ({type(e).__name__})", file=file,
                             where=where, fix=fix) from e
        if X.ndim != 2:
            raise InputError(f"the count matrix is {X.ndim}-dimensional", file=file, where=where,
                             fix=fix)
    if X.dtype.kind not in "biuf":
        raise InputError(f"the count matrix holds values of type {X.dtype}, not numbers",
                         file=file, where=where, fix=fix)
    with np.errstate(over="ignore", invalid="ignore"):  # too large values: checked by _finish
        return sparse.csr_matrix(X, dtype=np.float32)


def _finish(adata: anndata.AnnData, file: Path, *, counts_layer: str | None = None) -> anndata.AnnData:
    """Common checks: non-empty, unique names, CSR float32 counts kept in layers['counts']."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"no data: {adata.n_obs} cells × {adata.n_vars} genes", file=file,
                         fix="check that the file holds a count matrix")
    dup = adata.obs_names.duplicated(keep=False)
    if dup.any():
        # counts and positions only: barcodes can carry sample or patient IDs
        rows = (np.flatnonzero(dup) + 1).tolist()
        raise InputError(f"{int(adata.obs_names.duplicated().sum())} cell barcodes repeat an earlier one "
                         f"(cells {format_rows(rows)})", file=file, where="cell names (obs_names)",
                         fix="give each cell its own barcode: when samples were joined, prefix the sample "
                             "(anndata.concat(..., index_unique='-'))")
    _unique_genes(adata, file)
    if counts_layer is not None:
        if counts_layer not in adata.layers:
            raise InputError(f"layer {counts_layer!r} not found", file=file,
                             where=f"layers {list(adata.layers)}",
                             fix="name the layer that holds raw counts, or leave it unset to use X")
        adata.X = adata.layers[counts_layer]
    where = "X" if counts_layer is None else f"layers['{counts_layer}']"
    X = _as_csr(adata.X, file, where)
    if X.shape != (adata.n_obs, adata.n_vars):
        raise InputError(f"the matrix is {X.shape[0]} × {X.shape[1]} but there are {adata.n_obs} "
                         f"cells and {adata.n_vars} genes", file=file, where=where,
                         fix="write the file again with anndata")
    X.eliminate_zeros()  # explicit zeros are no data (and keep the checks below to real values)
    if X.nnz and not np.isfinite(X.data).all():
        raise InputError(f"{int((~np.isfinite(X.data)).sum())} values are NaN or infinite: these "
                         "are not raw counts", file=file, where=where,
                         fix="give raw counts (whole, non-negative numbers)")
    if X.nnz and X.data.min() < 0:
        raise InputError("the matrix has negative values: these are not raw counts", file=file,
                         where=where,
                         fix="give raw counts (or name the counts layer with counts_layer=)")
    if X.nnz and not np.array_equal(X.data, np.round(X.data)):
        frac = float(np.mean(X.data != np.round(X.data)))
        raise InputError(f"{frac:.0%} of the non-zero values are not whole numbers: these look "
                         "normalised or log-transformed, not raw counts", file=file, where=where,
                         fix="name the layer holding raw counts (counts_layer= / --counts-layer), "
                             "or round ambient-corrected counts first")
    adata.X = X
    adata.layers["counts"] = X.copy()
    return adata


#: Seconds the structure check of an ``.h5ad`` may take (plus one per 100 MB of file).
H5AD_CHECK_TIMEOUT_S = 120.0

# Run in a child process: open the HDF5 file, read every attribute and every small dataset.
# A corrupt file can send the HDF5 library into an endless loop (a damaged heap free list) or a
# segmentation fault, neither of which Python can interrupt in-process.
_H5_WALK = """
import sys, h5py
def walk(o):
    for k in o.attrs:
        o.attrs[k]
    if isinstance(o, h5py.Group):
        for k in o:
            walk(o[k])
    elif isinstance(o, h5py.Dataset) and o.id.get_storage_size() < 16 << 20:
        o[()]
with h5py.File(sys.argv[1], "r") as f:
    walk(f)
"""


def _h5_precheck(path: Path) -> None:
    """Refuse an HDF5 file on which the HDF5 library hangs or crashes (checked in a child)."""
    import subprocess
    import sys

    import h5py  # anndata's own dependency

    if not h5py.is_hdf5(path):  # reads the signature only: anndata refuses such a file at once
        return
    timeout = H5AD_CHECK_TIMEOUT_S + path.stat().st_size / 100e6
    fix = "the file is damaged: write it again with anndata (adata.write_h5ad) or re-download it"
    try:
        r = subprocess.run([sys.executable, "-c", _H5_WALK, str(path)], capture_output=True,
                           timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise InputError(f"reading the HDF5 structure did not finish in {timeout:.0f} s",
                         file=path, fix=fix) from e
    except OSError as e:  # no way to start a process here: read it directly
        warnings.warn(f"{path}: the h5ad structure check could not run ({type(e).__name__}); "
                      "reading the file directly", PmedWarning, stacklevel=3)
        return
    if r.returncode < 0:
        raise InputError(f"the HDF5 library crashed reading this file (signal {-r.returncode})",
                         file=path, fix=fix)
    # a Python error in the child (rc 1) is left to anndata's reader, which names it


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

    Raises
    ------
    InputError
        Missing, empty or unreadable file, or a matrix that is not raw counts.
    """
    ad = _anndata()
    path = Path(path)
    require_file(path, "h5ad file")
    _h5_precheck(path)
    try:
        adata = ad.read_h5ad(path)
    except Exception as e:  # h5py/anndata raise many types for a corrupt file
        why = damaged(e)
        if why is not None:
            raise InputError(f"the h5ad file is {why}", file=path,
                             fix="the file is incomplete or damaged: write it again with anndata "
                                 "(adata.write_h5ad) or copy it again") from e
        raise InputError(f"cannot read as h5ad ({type(e).__name__}: {str(e)[:200]})", file=path,
                         fix="check that the file is an AnnData .h5ad written by anndata/scanpy") from e
    return _finish(adata, path, counts_layer=counts_layer)


def _find(folder: Path, stems: Sequence[str]) -> Path | None:
    for stem in stems:
        for cand in (folder / stem, folder / f"{stem}.gz"):
            if cand.is_file():
                return cand
    return None


def _read_lines_table(path: Path) -> pd.DataFrame:
    """A 10x barcodes/features list: tab-separated, no header, gzip or not (by content)."""
    from pmed.io import open_text

    if path.stat().st_size == 0:
        raise InputError("file is empty (0 bytes)", file=path, fix="re-export the 10x output")
    try:
        with open_text(path) as fh:
            df = pd.read_csv(fh, sep="\t", header=None, dtype=str, quoting=3)  # 3: QUOTE_NONE
    except pd.errors.EmptyDataError as e:
        raise InputError("file holds no lines", file=path, fix="re-export the 10x output") from e
    except InputError:  # pmed.io's own diagnosis (a truncated or corrupt compressed file)
        raise
    except Exception as e:  # parser errors, bad encoding, a truncated gzip stream
        why = damaged(e)
        if why is not None:
            raise InputError(f"the file is {why}", file=path,
                             fix="the file is incomplete or damaged: re-export the 10x output") from e
        raise InputError(f"cannot read as a 10x list ({type(e).__name__}: {str(e)[:200]})",
                         file=path, fix="one tab-separated line per barcode/feature (UTF-8, "
                                        "optionally gzip-compressed), as Cell Ranger writes") from e
    if len(df) == 0 or df.shape[1] == 0:
        raise InputError("file holds no lines", file=path, fix="re-export the 10x output")
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
    ad = _anndata()
    path = Path(path)
    if path.is_file():
        require_file(path, "10x .h5 file")
        sc = require("scanpy", extra="omics", feature="reading 10x .h5 files")
        _h5_precheck(path)
        try:
            adata = sc.read_10x_h5(path)
        except Exception as e:  # h5py and scanpy raise many types for a corrupt file
            why = damaged(e)
            if why is not None:
                raise InputError(f"the 10x .h5 file is {why}", file=path,
                                 fix="the file is incomplete or damaged: copy it again from Cell Ranger's "
                                     "output") from e
            raise InputError(f"cannot read as a 10x .h5 matrix ({type(e).__name__}: {str(e)[:200]})",
                             file=path, fix="give Cell Ranger's filtered_feature_bc_matrix.h5") from e
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
    barcodes = _read_lines_table(bc)[0].to_numpy()
    features = _read_lines_table(feat)
    # dimensions first: a wrong header must not make mmread allocate a huge matrix
    fmt, n_genes, n_cells, nnz = mtx_header(mtx)  # 10x stores genes × cells
    problems = []
    if len(features) != n_genes:
        problems.append(f"matrix has {n_genes} rows (genes) but {feat.name} lists {len(features)} genes")
    if len(barcodes) != n_cells:
        problems.append(f"matrix has {n_cells} columns (cells) but {bc.name} lists {len(barcodes)} barcodes")
    if problems:
        raise ValidationError(problems, file=path,
                              fix="matrix.mtx, barcodes.tsv and features.tsv must come from the same run")
    m = mmread_checked(mtx, fmt, n_genes, n_cells, nnz)
    if tuple(m.shape) != (n_genes, n_cells):
        raise InputError(f"matrix entries give {m.shape[0]} × {m.shape[1]}, the header "
                         f"{n_genes} × {n_cells}", file=mtx, fix="re-export the 10x output")
    symbols = features[1] if features.shape[1] > 1 else features[0]
    var = pd.DataFrame({"gene_ids": features[0].to_numpy()},
                       index=pd.Index(symbols.fillna("").to_numpy(), dtype=str))
    if features.shape[1] > 2:
        var["feature_types"] = features[2].to_numpy()
    X = _as_csr(m, mtx, "entries").T.tocsr()
    adata = ad.AnnData(X=X, obs=pd.DataFrame(index=pd.Index(barcodes, dtype=str)), var=var)
    return _finish(adata, path)  # repeated symbols are made unique there, with a warning


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
        The table; gzip-compressed allowed (detected by content).
    orientation
        ``"cells_by_genes"``, ``"genes_by_cells"`` or ``"auto"`` (genes × cells when there are more
        rows than columns, as in most exported count matrices).
    sep
        Separator; default from the suffix (tab for ``.tsv``/``.txt``, comma for ``.csv``).

    Returns
    -------
    anndata.AnnData

    Raises
    ------
    InputError
        Missing, empty or unparsable file, a non-numeric or missing value (with its line and
        column), or values that are not raw counts.
    """
    ad = _anndata()
    path = Path(path)
    require_file(path, "count matrix")
    df = read_numeric_table(path, sep=sep, what="count matrix")
    df = orient(df, orientation, "cells")
    with np.errstate(over="ignore", invalid="ignore"):  # too large values: caught by _finish
        X = df.to_numpy(dtype=np.float64).astype(np.float32)
    adata = ad.AnnData(X=sparse.csr_matrix(X),
                       obs=pd.DataFrame(index=df.index.astype(str)),
                       var=pd.DataFrame(index=df.columns.astype(str)))
    return _finish(adata, path)
