"""Readers for spatial omics: where each spot or cell sits, with its counts, as an AnnData.

One entry point, :func:`read_spatial`, recognises

- an ``.h5ad`` file holding coordinates in ``obsm['spatial']`` (scanpy/squidpy layout);
- a Space Ranger output folder (``outs/``: ``filtered_feature_bc_matrix.h5`` or the
  ``filtered_feature_bc_matrix/`` folder, and ``spatial/`` with the spot positions, the scale
  factors and the tissue images);
- a cell table (MERFISH, Xenium, CosMx): cells × genes with centroids, read by
  :func:`read_cell_table` (which also joins a separate cell-metadata table).

Every reader returns the layout scanpy and squidpy use: raw counts in ``X`` (CSR, float32, a copy in
``layers['counts']`` as every pmed reader), ``obsm['spatial']`` = (x, y) in full-resolution pixels
(or the platform's units for cell tables), ``obs`` ``in_tissue``/``array_row``/``array_col`` for
Visium spots and ``uns['spatial'][library_id] = {'images', 'scalefactors', 'metadata'}``. What was
read is recorded in ``uns['pmed_spatial']`` (``source``, ``format``, ``platform``, …).

Bad input raises :class:`~pmed.errors.InputError` naming the file, the place and the fix: spots
without coordinates, images without scale factors, a matrix and a positions file of different runs,
a text column among the genes. Inputs are never modified.

:func:`spot_diameter_px` and :func:`image_and_scale` give the histology code the spot size and the
tissue image with its scale factor.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pmed.errors import DataNotFoundError, InputError, OptionError, require
from pmed.omics._tables import (
    TABLE_SUFFIXES,
    damaged,
    read_any_table,
    require_file,
    short_list,
    suffix,
)

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = [
    "read_spatial",
    "read_cell_table",
    "spot_diameter_px",
    "image_and_scale",
    "COORDINATE_COLUMNS",
]

#: Centroid columns recognised in cell tables, in the order they are tried: (x, y).
COORDINATE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("center_x", "center_y"),  # Vizgen MERFISH cell_metadata.csv
    ("x_centroid", "y_centroid"),  # 10x Xenium cells.csv.gz
    ("CenterX_global_px", "CenterY_global_px"),  # NanoString CosMx metadata_file.csv
    ("x", "y"),
)

# cell id columns tried (case-insensitive) when cell_id= is not given
_ID_COLUMNS = ("cell_id", "cell", "cellid", "entityid", "barcode", "cell_name", "id", "unnamed: 0")

# columns of cell tables that are never genes (case-insensitive): they go to obs
_NON_GENE = {
    "fov", "volume", "area", "cell_area", "nucleus_area", "min_x", "max_x", "min_y", "max_y",
    "z", "center_z", "z_centroid", "centerx_local_px", "centery_local_px", "centerx_global_px",
    "centery_global_px", "center_x", "center_y", "x_centroid", "y_centroid", "x", "y",
    "transcript_counts", "total_counts", "control_probe_counts", "control_codeword_counts",
    "unassigned_codeword_counts", "deprecated_codeword_counts", "genomic_control_counts",
    "total_counts_per_cell", "segmentation_method", "nucleus_count", "aspectratio", "width",
    "height", "slide_id", "run_tissue_name", "ncount_rna", "nfeature_rna", "ncount_negprobes",
    "nfeature_negprobes", "cell_type", "celltype", "sample", "sample_id", "tissue", "region",
    "cluster", "leiden", "louvain", "library_id", "patient_id",
    *_ID_COLUMNS,
}
# CosMx immunofluorescence summaries (Mean.PanCK, Max.DAPI …)
_NON_GENE_PREFIX = re.compile(r"^(mean|max|min|median)[._]", re.IGNORECASE)
# control probes: kept as genes, flagged in var['control']
_CONTROL = re.compile(r"^(blank|negprb|negcontrol|systemcontrol|unassignedcodeword|"
                      r"deprecatedcodeword|intergenic)", re.IGNORECASE)

_SR_POSITION_COLUMNS = ("barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres",
                        "pxl_col_in_fullres")
_CELL_TABLE_SUFFIXES = TABLE_SUFFIXES | {".parquet"}


def _anndata():
    return require("anndata", extra="omics", feature="spatial omics")


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------

def read_spatial(
    path: str | Path,
    *,
    library_id: str | None = None,
    in_tissue_only: bool = True,
    counts_layer: str | None = None,
) -> anndata.AnnData:
    """Read spatial omics data (Visium, MERFISH, Xenium, CosMx), choosing the reader by the input.

    Parameters
    ----------
    path
        An ``.h5ad`` file with ``obsm['spatial']``; a Space Ranger output folder (the ``outs``
        folder, or the sample folder holding it; a ``filtered_feature_bc_matrix.h5`` beside a
        ``spatial/`` folder also works); or a cell table (``.csv``/``.tsv``/``.parquet``,
        optionally gzip) read by :func:`read_cell_table`. A Vizgen ``*cell_by_gene*`` or CosMx
        ``*exprMat_file*`` table is joined with its ``cell_metadata``/``metadata_file`` sibling.
    library_id
        Key of ``uns['spatial']``. Space Ranger: default the library id stored in the ``.h5``
        matrix, else the sample folder's name. ``.h5ad``: must be one of the libraries stored.
    in_tissue_only
        Keep only spots with ``in_tissue == 1`` (when ``obs['in_tissue']`` exists); how many were
        dropped is recorded in ``uns['pmed_spatial']['n_dropped_not_in_tissue']``.
    counts_layer
        ``.h5ad`` only: layer holding raw counts when ``X`` holds something else.

    Returns
    -------
    anndata.AnnData
        Spots/cells × genes: raw counts in ``X`` (CSR float32) and ``layers['counts']``,
        ``obsm['spatial']`` (x, y), ``uns['pmed_spatial']`` = ``{'source', 'format'
        ('h5ad'|'spaceranger'|'cell_table'), 'platform' ('visium'|'cells'), …}``.

    Raises
    ------
    DataNotFoundError
        The path does not exist.
    InputError
        Unknown format, or a malformed input (the message names the file, the place and the fix).
    """
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError("spatial input not found", file=path,
                                fix="check the path: give an .h5ad file, a Space Ranger outs folder "
                                    "or a cell table (.csv/.tsv/.parquet)")
    if path.is_dir():
        root = _spaceranger_root(path)
        if root is None:
            raise InputError("not a Space Ranger output folder (no filtered_feature_bc_matrix.h5 or "
                             "filtered_feature_bc_matrix/ beside a spatial/ folder)", file=path,
                             fix="give Space Ranger's outs folder, with filtered_feature_bc_matrix(.h5) "
                                 "and spatial/ (tissue_positions.csv, scalefactors_json.json, images); "
                                 "for MERFISH, Xenium or CosMx give the cell table file itself")
        return _read_spaceranger(root, library_id=library_id, in_tissue_only=in_tissue_only)
    require_file(path, "spatial input")
    suf = suffix(path)
    if suf == ".h5ad":
        return _read_h5ad(path, library_id=library_id, in_tissue_only=in_tissue_only,
                          counts_layer=counts_layer)
    if suf == ".h5":
        if (path.parent / "spatial").is_dir():
            return _read_spaceranger(path.parent, library_id=library_id,
                                     in_tissue_only=in_tissue_only, matrix=path)
        raise InputError("a 10x .h5 matrix without a spatial/ folder beside it", file=path,
                         fix="give the Space Ranger outs folder holding the matrix and spatial/ (the "
                             "positions of the spots are there)")
    if suf in _CELL_TABLE_SUFFIXES:
        return read_cell_table(path, metadata=_metadata_sibling(path))
    raise InputError(f"unknown spatial format {suf or '(no suffix)'!r}", file=path,
                     fix="give an .h5ad file with obsm['spatial'], a Space Ranger outs folder, or a "
                         "cell table (.csv, .tsv, .parquet; optionally .gz)")


def _metadata_sibling(path: Path) -> Path | None:
    """The cell-metadata table written beside a Vizgen or CosMx count table, if there."""
    for a, b in (("cell_by_gene", "cell_metadata"), ("exprMat_file", "metadata_file")):
        if a in path.name:
            cand = path.with_name(path.name.replace(a, b))
            if cand.is_file():
                return cand
    return None


# --------------------------------------------------------------------------------------------
# shared checks
# --------------------------------------------------------------------------------------------

def _platform(adata: anndata.AnnData) -> str:
    return "visium" if {"array_row", "array_col"} <= set(adata.obs.columns) else "cells"


def _check_coordinates(coords: Any, names: pd.Index, file: Path, where: str, what: str) -> np.ndarray:
    """``coords`` as an n × 2 numeric array, or an InputError naming the spots without them."""
    fix_shape = ("store x and y of every spot/cell as an n × 2 array: "
                 "adata.obsm['spatial'] = adata.obs[['x', 'y']].to_numpy()")
    if isinstance(coords, pd.DataFrame):
        coords = coords.to_numpy()
    try:
        arr = np.asarray(coords)
    except (TypeError, ValueError) as e:
        raise InputError(f"the coordinates are not an array ({type(e).__name__})", file=file,
                         where=where, fix=fix_shape) from e
    if arr.ndim != 2 or arr.shape[0] != len(names) or arr.shape[1] != 2:
        raise InputError(f"the coordinates have shape {arr.shape}, not ({len(names)}, 2)", file=file,
                         where=where, fix=fix_shape + " (drop a z column: [:, :2])")
    if arr.dtype.kind not in "iuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise InputError(f"the coordinates hold values of type {arr.dtype}, not numbers",
                             file=file, where=where, fix=fix_shape) from e
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            lost = names[bad]
            raise InputError(f"{int(bad.sum())} of the {len(names)} {what} have no coordinates "
                             f"(NaN or infinite): {short_list(lost, 5)}", file=file, where=where,
                             fix=f"give x and y for every {what[:-1]}, or drop those {what} first "
                                 "(adata = adata[np.isfinite(adata.obsm['spatial']).all(1)].copy())")
    return arr


def _finish(adata: anndata.AnnData, file: Path, *, fmt: str, counts_layer: str | None = None,
            extra: dict[str, Any] | None = None) -> anndata.AnnData:
    """pmed.omics' checks (unique names, raw counts as CSR float32 + layers['counts']) and the
    record of what was read."""
    from pmed.omics.readers import _finish as omics_finish

    adata = omics_finish(adata, file, counts_layer=counts_layer)
    info: dict[str, Any] = {"source": str(file), "format": fmt, "platform": _platform(adata)}
    info.update({k: v for k, v in (extra or {}).items() if v is not None})
    adata.uns["pmed_spatial"] = info
    return adata


def _in_tissue_filter(adata: anndata.AnnData, file: Path, in_tissue_only: bool) -> tuple[anndata.AnnData, int | None]:
    """Keep the spots with ``in_tissue == 1``; returns the data and how many were dropped."""
    if not in_tissue_only or "in_tissue" not in adata.obs.columns:
        return adata, None
    col = adata.obs["in_tissue"]
    vals = col.astype(int) if pd.api.types.is_bool_dtype(col) else pd.to_numeric(
        col.astype(object), errors="coerce")
    keep = (vals == 1).to_numpy()
    n_drop = int((~keep).sum())
    if not keep.any():
        raise InputError(f"no spot is in the tissue (obs['in_tissue'] is never 1 among {len(keep)} "
                         "spots)", file=file, where="obs['in_tissue']",
                         fix="check the tissue detection of Space Ranger, or read every spot with "
                             "in_tissue_only=False")
    if n_drop:
        adata = adata[keep].copy()
    return adata, n_drop


def _check_scalefactors(libs: dict, file: Path, where_root: str | None = None) -> None:
    """Every library holding images has the scale factors of those images and the spot size.

    ``where_root`` is ``"uns['spatial']"`` for an h5ad; ``None`` for Space Ranger's
    ``scalefactors_json.json`` (``file``), whose keys are named directly.
    """
    for lib, entry in libs.items():
        where = f"{where_root}['{lib}']" if where_root else ""
        if not isinstance(entry, dict):
            raise InputError(f"library {lib!r} is a {type(entry).__name__}, not a dict", file=file,
                             where=where, fix="store {'images': {...}, 'scalefactors': {...}} per "
                                              "library, as scanpy.read_visium does")
        images = entry.get("images") or {}
        if not isinstance(images, dict):
            raise InputError("'images' is not a dict of arrays", file=file, where=f"{where}['images']",
                             fix="store {'hires': array, 'lowres': array}")
        if not images:
            continue
        sf = entry.get("scalefactors")
        need = [f"tissue_{res}_scalef" for res in images] + ["spot_diameter_fullres"]
        if where_root:
            fix = ("store Space Ranger's scalefactors_json.json of this section: "
                   f"adata.uns['spatial'][{lib!r}]['scalefactors'] = json.load(open("
                   "'spatial/scalefactors_json.json'))")
            sf_where = f"{where}['scalefactors']"
        else:
            fix = "copy scalefactors_json.json again from the spatial/ folder of the same Space Ranger run"
            sf_where = "keys"
        if not isinstance(sf, dict) or not sf:
            raise InputError(f"library {lib!r} has images ({', '.join(map(str, images))}) but no scale "
                             "factors: the spots cannot be placed on the images", file=file,
                             where=sf_where, fix=fix)
        missing = [k for k in need if k not in sf]
        if missing:
            raise InputError(f"library {lib!r} has images but its scale factors lack "
                             f"{', '.join(missing)}", file=file, where=sf_where, fix=fix)
        for k in need:
            v = sf[k]
            ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            if not ok or not np.isfinite(v) or v <= 0:
                raise InputError(f"scale factor {k} is {v!r}, not a positive number", file=file,
                                 where=f"{where}['scalefactors']['{k}']" if where_root else f"key {k!r}",
                                 fix=fix)
        for res, img in images.items():
            arr = np.asarray(img)
            if arr.ndim not in (2, 3) or arr.size == 0:
                raise InputError(f"image {res!r} has shape {arr.shape}, not height × width (× channels)",
                                 file=file, where=f"{where}['images']['{res}']" if where_root else None,
                                 fix="store the tissue image as an array (np.asarray(PIL.Image.open(png)))")


# --------------------------------------------------------------------------------------------
# h5ad
# --------------------------------------------------------------------------------------------

def _read_h5ad(path: Path, *, library_id: str | None, in_tissue_only: bool,
               counts_layer: str | None) -> anndata.AnnData:
    from pmed.omics.readers import _h5_precheck

    ad = _anndata()
    _h5_precheck(path)
    try:
        adata = ad.read_h5ad(path)
    except Exception as e:  # h5py/anndata raise many types for a corrupt file
        why = damaged(e)
        raise InputError(f"the h5ad file is {why}" if why else
                         f"cannot read as h5ad ({type(e).__name__}: {str(e)[:200]})", file=path,
                         fix="check that the file is an AnnData .h5ad written by anndata/scanpy/"
                             "squidpy; write or copy it again") from e
    if "spatial" not in adata.obsm:
        pairs = [f"{a}/{b}" for a, b in COORDINATE_COLUMNS if {a, b} <= set(adata.obs.columns)]
        hint = (f"obs holds {pairs[0]}: adata.obsm['spatial'] = adata.obs[{pairs[0].split('/')}]"
                ".to_numpy()") if pairs else "adata.obsm['spatial'] = n × 2 array of x, y"
        raise InputError(f"no coordinates: obsm['spatial'] is missing, so none of the {adata.n_obs} "
                         f"spots/cells can be placed: {short_list(adata.obs_names, 5)}", file=path,
                         where=f"obsm keys {list(adata.obsm.keys())}",
                         fix=f"store x, y of each spot/cell, then write the file again ({hint})")
    libs = adata.uns.get("spatial")
    if libs is not None:
        if not isinstance(libs, dict):
            raise InputError(f"uns['spatial'] is a {type(libs).__name__}, not a dict of libraries",
                             file=path, where="uns['spatial']",
                             fix="store uns['spatial'] = {library_id: {'images': ..., 'scalefactors': ...}}")
        _check_scalefactors(libs, path, "uns['spatial']")
    if library_id is not None and (not isinstance(libs, dict) or library_id not in libs):
        have = list(libs) if isinstance(libs, dict) else []
        raise InputError(f"library {library_id!r} not in uns['spatial'] (libraries: {short_list(have)})",
                         file=path, where="uns['spatial']",
                         fix="give one of the libraries listed, or leave library_id unset")
    if library_id is None and isinstance(libs, dict) and len(libs) == 1:
        library_id = str(next(iter(libs)))
    adata, n_drop = _in_tissue_filter(adata, path, in_tissue_only)
    adata.obsm["spatial"] = _check_coordinates(adata.obsm["spatial"], adata.obs_names, path,
                                               "obsm['spatial']", "spots/cells")
    return _finish(adata, path, fmt="h5ad", counts_layer=counts_layer,
                   extra={"library_id": library_id, "n_dropped_not_in_tissue": n_drop})


# --------------------------------------------------------------------------------------------
# Space Ranger
# --------------------------------------------------------------------------------------------

def _spaceranger_root(path: Path) -> Path | None:
    for cand in (path, path / "outs"):
        has_matrix = ((cand / "filtered_feature_bc_matrix.h5").is_file()
                      or (cand / "filtered_feature_bc_matrix").is_dir())
        if has_matrix and (cand / "spatial").is_dir():
            return cand
    return None


def _read_positions(spatial: Path) -> tuple[pd.DataFrame, Path]:
    """Space Ranger's spot positions, indexed by barcode, columns as Space Ranger names them."""
    cands = [spatial / n for n in ("tissue_positions.parquet", "tissue_positions.csv",
                                   "tissue_positions_list.csv")]
    file = next((c for c in cands if c.is_file()), None)
    if file is None:
        raise InputError("no spot positions (tissue_positions.csv or tissue_positions_list.csv)",
                         file=spatial, fix="copy Space Ranger's whole spatial/ folder: "
                                           "tissue_positions.csv (Space Ranger ≥ 2.0) or "
                                           "tissue_positions_list.csv (older) is in it")
    require_file(file, "spot positions file")
    if file.suffix == ".parquet":
        df = read_any_table(file, what="spot positions").astype(object)
        header = True
    else:
        from pmed.io import open_text

        try:
            with open_text(file) as fh:
                first = fh.readline().strip().split(",")
                fh.seek(0)
                # a header row: Space Ranger ≥ 2.0 writes one; the older list file has none
                header = (first[0].strip().lower() == "barcode"
                          or not all(_is_number(v) for v in first[1:] if v.strip()))
                df = pd.read_csv(fh, header=0 if header else None, dtype=str, keep_default_na=False,
                                 na_values=[""])
        except InputError:
            raise
        except Exception as e:  # parser errors, bad encoding, a truncated gzip stream
            why = damaged(e)
            raise InputError(f"the positions file is {why}" if why else
                             f"cannot parse the positions file ({type(e).__name__}: {str(e)[:200]})",
                             file=file, fix="copy tissue_positions.csv again from Space Ranger's "
                                            "spatial/ folder (comma-separated, 6 columns)") from e
    if df.shape[1] < 6:
        raise InputError(f"the positions file has {df.shape[1]} columns, not 6", file=file,
                         where="line 1", fix="Space Ranger writes barcode, in_tissue, array_row, "
                                             "array_col, pxl_row_in_fullres, pxl_col_in_fullres")
    if header and set(_SR_POSITION_COLUMNS) <= set(df.columns):
        df = df[list(_SR_POSITION_COLUMNS)]
    else:
        df = df.iloc[:, :6]
    df.columns = list(_SR_POSITION_COLUMNS)
    if len(df) == 0:
        raise InputError("the positions file lists no spots", file=file,
                         fix="copy tissue_positions.csv again from Space Ranger's spatial/ folder")
    first_line = 2 if header else 1
    barcodes = df["barcode"].astype(str).str.strip()
    dup = barcodes.duplicated()
    if dup.any():
        raise InputError(f"{int(dup.sum())} barcodes are listed more than once: "
                         f"{short_list(barcodes[dup].unique(), 5)}", file=file,
                         where=f"line {int(np.flatnonzero(dup.to_numpy())[0]) + first_line}",
                         fix="copy tissue_positions.csv again from Space Ranger's spatial/ folder")
    out = pd.DataFrame(index=pd.Index(barcodes.to_numpy(), dtype=str))
    for col in _SR_POSITION_COLUMNS[1:]:
        raw = df[col]
        vals = pd.to_numeric(raw, errors="coerce")
        bad = vals.isna() & raw.notna()
        if col in ("in_tissue", "array_row", "array_col"):
            bad |= raw.isna()
            if not bad.any():
                bad = vals != np.round(vals)
            if col == "in_tissue" and not bad.any():
                bad = ~vals.isin([0, 1])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{int(bad.sum())} values of {col} are not "
                             f"{'0 or 1' if col == 'in_tissue' else 'numbers'} (first: "
                             f"{short_list([raw.iloc[i]], 1)[1:-1]})", file=file,
                             where=f"line {i + first_line}, column {col!r}",
                             fix="copy tissue_positions.csv again from Space Ranger's spatial/ folder")
        if col in ("in_tissue", "array_row", "array_col"):
            vals = vals.astype(np.int64)
        elif not vals.isna().any() and (vals == np.round(vals)).all():
            vals = vals.astype(np.int64)  # Space Ranger < 2.0 writes whole pixels
        out[col] = vals.to_numpy()
    return out, file


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_scalefactors(spatial: Path) -> tuple[dict[str, Any] | None, Path]:
    file = spatial / "scalefactors_json.json"
    if not file.is_file():
        return None, file
    from pmed.io import open_text

    try:
        with open_text(file) as fh:
            sf = json.load(fh)
    except InputError:
        raise
    except Exception as e:  # JSONDecodeError, UnicodeDecodeError
        raise InputError(f"cannot parse the scale factors ({type(e).__name__}: {str(e)[:200]})",
                         file=file, fix="copy scalefactors_json.json again from Space Ranger's "
                                        "spatial/ folder") from e
    if not isinstance(sf, dict):
        raise InputError("the scale factors are not a JSON object", file=file,
                         fix="copy scalefactors_json.json again from Space Ranger's spatial/ folder")
    return sf, file


def _read_image(file: Path) -> np.ndarray:
    Image = require("PIL.Image", extra="imaging", package="pillow", feature="Visium tissue images")
    try:
        with Image.open(file) as im:
            im.load()
            return np.asarray(im).copy()
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError… for a bad image
        raise InputError(f"cannot read the tissue image ({type(e).__name__}: {str(e)[:200]})",
                         file=file, fix="copy the image again from Space Ranger's spatial/ folder "
                                        "(a PNG)") from e


def _h5_attrs(h5: Path) -> dict[str, Any]:
    """The library id and chemistry stored as attributes of a 10x ``.h5`` matrix."""
    import h5py

    try:
        with h5py.File(h5, "r") as f:
            attrs = dict(f.attrs)
    except Exception:  # noqa: BLE001  (the matrix itself was read and checked already)
        return {}

    def text(v):
        if isinstance(v, np.ndarray):
            v = v.ravel()[0] if v.size else ""
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)

    out = {k: text(attrs[k]) for k in ("library_ids", "chemistry_description", "software_version")
           if k in attrs}
    return out


def _read_spaceranger(root: Path, *, library_id: str | None, in_tissue_only: bool,
                      matrix: Path | None = None) -> anndata.AnnData:
    from pmed.omics.readers import read_10x

    spatial = root / "spatial"
    if matrix is None:
        h5 = root / "filtered_feature_bc_matrix.h5"
        matrix = h5 if h5.is_file() else root / "filtered_feature_bc_matrix"
    adata = read_10x(matrix)  # checks the matrix; X CSR float32, layers['counts']
    attrs = _h5_attrs(matrix) if matrix.is_file() else {}
    if library_id is None:
        library_id = attrs.get("library_ids") or (root.parent.name if root.name == "outs" else root.name)
    positions, pos_file = _read_positions(spatial)
    missing = ~adata.obs_names.isin(positions.index)
    if missing.any():
        raise InputError(f"{int(missing.sum())} of the {adata.n_obs} barcodes of the matrix "
                         f"({matrix.name}) are not in the positions file: "
                         f"{short_list(adata.obs_names[missing], 5)}", file=pos_file,
                         where=f"barcodes of {matrix}",
                         fix="the matrix and the positions file come from different runs (or samples): "
                             "take filtered_feature_bc_matrix and spatial/ from the same Space Ranger "
                             "outs folder")
    pos = positions.loc[adata.obs_names]
    for col in ("in_tissue", "array_row", "array_col"):
        adata.obs[col] = pos[col].to_numpy()
    # scanpy/squidpy: obsm['spatial'] = (x, y) = (pxl_col_in_fullres, pxl_row_in_fullres)
    adata.obsm["spatial"] = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy()
    images = {}
    for res in ("hires", "lowres"):
        f = spatial / f"tissue_{res}_image.png"
        if f.is_file():
            images[res] = _read_image(f)
    sf, sf_file = _read_scalefactors(spatial)
    if sf is None and images:
        raise InputError(f"the tissue images ({', '.join(images)}) have no scale factors: "
                         "scalefactors_json.json is missing", file=sf_file,
                         fix="copy scalefactors_json.json from the same Space Ranger run into spatial/; "
                             "without it the spots cannot be placed on the images")
    entry = {"images": images, "scalefactors": sf or {},
             "metadata": {k: v for k, v in attrs.items() if k != "library_ids"}}
    _check_scalefactors({library_id: entry}, sf_file)
    adata.uns["spatial"] = {library_id: entry}
    adata, n_drop = _in_tissue_filter(adata, pos_file, in_tissue_only)
    adata.obsm["spatial"] = _check_coordinates(adata.obsm["spatial"], adata.obs_names, pos_file,
                                               "pxl_row_in_fullres/pxl_col_in_fullres", "spots")
    info = {"source": str(root), "format": "spaceranger", "platform": _platform(adata),
            "library_id": library_id, "n_dropped_not_in_tissue": n_drop}
    adata.uns["pmed_spatial"] = {k: v for k, v in info.items() if v is not None}
    return adata


# --------------------------------------------------------------------------------------------
# cell tables
# --------------------------------------------------------------------------------------------

def _read_table(path: Path, what: str) -> pd.DataFrame:
    require_file(path, what)
    if suffix(path) not in _CELL_TABLE_SUFFIXES:
        raise InputError(f"unknown table format {suffix(path) or '(no suffix)'!r}", file=path,
                         fix="give a .csv, .tsv or .parquet table (optionally .csv.gz/.tsv.gz)")
    df = read_any_table(path, what=what, first_column_str=True)
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise InputError(f"the {what} has no rows or no columns", file=path,
                         fix="give a table with a header row and one row per cell")
    df.columns = [str(c) for c in df.columns]
    return df


def _find_column(df: pd.DataFrame, name: str) -> str | None:
    if name in df.columns:
        return name
    low = {c.lower(): c for c in df.columns}
    return low.get(name.lower())


def _cell_ids(df: pd.DataFrame, path: Path, cell_id: str | None, what: str,
              required: bool) -> tuple[pd.Index, str | None, pd.DataFrame]:
    """The cell ids of a table (as text), the column they came from and the table left.

    ``cell_id`` names the column (an error when absent); ``required``: a table without a
    recognisable id column is an error (else its cells are numbered 0, 1, …).
    """
    col = None
    if cell_id is not None:
        col = _find_column(df, cell_id)
        if col is None:
            raise InputError(f"no cell id column {cell_id!r} in the {what}", file=path, where="line 1",
                             fix=f"name one of its columns with cell_id= (columns: "
                                 f"{short_list(df.columns, 8)})")
    if col is None:
        for cand in _ID_COLUMNS:
            col = _find_column(df, cand)
            if col is not None:
                break
    if col is None:
        first = df.columns[0]
        if df[first].dtype == object and not pd.to_numeric(df[first], errors="coerce").notna().all():
            col = first  # a first column of text: the ids
    if col is None:
        if required:
            raise InputError(f"no cell id column in the {what}", file=path, where="line 1",
                             fix="name the column holding the cell ids with cell_id= (the ids join "
                                 "the counts to the cell metadata)")
        return pd.Index([str(i) for i in range(len(df))], dtype=str), None, df
    raw = df[col].map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
    _refuse_rows(raw.isna(), lambda i: f"{int(raw.isna().sum())} cells have no id", path, col,
                 "give every cell its id")
    ids = raw.astype(str).str.strip()
    if ids.str.fullmatch(r"-?\d+\.0").all():  # integer ids that went through a float column
        ids = ids.str[:-2]
    fov = _find_column(df, "fov")
    keep = np.ones(len(df), dtype=bool)
    if col == "cell_ID" and fov is not None:
        # CosMx: cell_ID counts within each field of view; 0 holds the transcripts of no cell
        keep = (ids != "0").to_numpy()
        ids = df[fov].astype(str) + "_" + ids
    ids = ids[keep]
    df = df.loc[keep]
    dup = ids.duplicated()
    _refuse_rows(dup, lambda i: f"{int(dup.sum())} cell ids repeat an earlier one: "
                                f"{short_list(ids[dup].unique(), 5)}", path, col,
                 "give each cell its own id (or name the id column with cell_id=)")
    return pd.Index(ids.to_numpy(), dtype=str), col, df.drop(columns=[col])


def _refuse_rows(bad, message, path, column: str, fix: str) -> None:
    """Refuse a table with any ``bad`` row: the message (``message(i)`` of the first bad row
    ``i``) names the file, that row's line (after the header) and the column."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(message(i), file=path, where=f"line {i + 2}, column {column!r}", fix=fix)


def _coordinate_columns(tables: list[tuple[pd.DataFrame, Path]], x: str | None,
                        y: str | None) -> tuple[int, str, str]:
    """Which table (index) holds the x and y columns, and their names."""
    if (x is None) != (y is None):
        raise OptionError("give both x= and y= (or neither, to detect them)",
                          fix="name both coordinate columns, e.g. x='center_x', y='center_y'")
    pairs = [(x, y)] if x is not None else list(COORDINATE_COLUMNS)
    for a, b in pairs:
        for i, (df, _) in enumerate(tables):
            ca, cb = _find_column(df, a), _find_column(df, b)
            if ca is not None and cb is not None:
                return i, ca, cb
    cols = [c for df, _ in tables for c in df.columns]
    files = " and ".join(str(p) for _, p in tables)
    if x is not None:
        raise InputError(f"coordinate columns {x!r}/{y!r} not found", file=tables[0][1],
                         where=f"line 1 of {files}",
                         fix=f"name the x and y columns with x= and y= (columns: {short_list(cols, 8)})")
    known = ", ".join(f"{a}/{b}" for a, b in COORDINATE_COLUMNS)
    raise InputError(f"no coordinate columns ({known}) in the cell table"
                     + (" or its metadata" if len(tables) > 1 else ""), file=tables[0][1],
                     where=f"line 1 of {files}",
                     fix="name the centroid columns with x= and y=, or give the cell metadata table "
                         "(metadata=) that holds them")


def _is_gene(name: str) -> bool:
    return name.lower() not in _NON_GENE and not _NON_GENE_PREFIX.match(name)


def read_cell_table(
    counts: str | Path,
    *,
    metadata: str | Path | None = None,
    x: str | None = None,
    y: str | None = None,
    cell_id: str | None = None,
) -> anndata.AnnData:
    """Read a cells × genes table with cell centroids (MERFISH, Xenium, CosMx) into an AnnData.

    Parameters
    ----------
    counts
        Cells × genes counts: CSV, TSV or Parquet (CSV/TSV optionally gzip-compressed), one row
        per cell, a cell id column and one column per gene (control probes such as ``Blank-*``,
        ``NegPrb*`` are kept and flagged in ``var['control']``). Columns that are not genes
        (``fov``, ``volume``, ``cell_area``, coordinates, ``cell_type`` …) go to ``obs``.
    metadata
        Optional table of the same cells (Vizgen ``cell_metadata.csv``, CosMx
        ``*_metadata_file.csv``), joined on the cell id; its columns go to ``obs``.
    x, y
        Coordinate columns. Default: the first pair found of ``center_x/center_y`` (MERFISH),
        ``x_centroid/y_centroid`` (Xenium), ``CenterX_global_px/CenterY_global_px`` (CosMx) and
        ``x/y``, in the metadata table first.
    cell_id
        Cell id column. Default: ``cell_id``, ``cell``, ``EntityID``, ``barcode`` … or a first
        column of text. A CosMx ``cell_ID`` with ``fov`` becomes ``"<fov>_<cell_ID>"`` (cell 0,
        the transcripts outside cells, is dropped).

    Returns
    -------
    anndata.AnnData
        Cells × genes: counts in ``X`` (CSR float32) and ``layers['counts']``, centroids in
        ``obsm['spatial']`` (x, y; the platform's units), ``uns['pmed_spatial']`` with
        ``format='cell_table'`` and ``platform='cells'``.

    Raises
    ------
    InputError
        A missing or unparsable table, a text column among the genes, cells without
        coordinates, repeated ids, or ids that differ between counts and metadata.
    """
    ad = _anndata()
    counts = Path(counts)
    if not counts.exists():
        raise DataNotFoundError("cell table not found", file=counts, fix="check the path")
    cdf = _read_table(counts, "cell-by-gene table")
    ids, _, cdf = _cell_ids(cdf, counts, cell_id, "cell-by-gene table", required=metadata is not None)
    cdf.index = ids
    mdf = None
    meta_path = None
    if metadata is not None:
        meta_path = Path(metadata)
        if not meta_path.exists():
            raise DataNotFoundError("cell metadata table not found", file=meta_path, fix="check the path")
        mdf = _read_table(meta_path, "cell metadata table")
        # the id column may be named otherwise in the metadata (Vizgen: 'cell' and an unnamed one)
        mcid = cell_id if cell_id is not None and _find_column(mdf, cell_id) is not None else None
        mid, _, mdf = _cell_ids(mdf, meta_path, mcid, "cell metadata table", required=True)
        mdf.index = mid
        only_c = ids[~ids.isin(mid)]
        only_m = mid[~mid.isin(ids)]
        if len(only_c) or len(only_m):
            parts = []
            if len(only_c):
                parts.append(f"{len(only_c)} of the {len(ids)} cells of the counts are not in the "
                             f"metadata ({short_list(only_c, 5)})")
            if len(only_m):
                parts.append(f"{len(only_m)} of the {len(mid)} cells of the metadata are not in the "
                             f"counts ({short_list(only_m, 5)})")
            raise InputError("; ".join(parts), file=meta_path, where=f"cell ids, joined with {counts}",
                             fix="give the cell-by-gene and cell-metadata tables of the same run "
                                 "(and name the id column with cell_id= if it was guessed wrongly)")
        mdf = mdf.loc[ids]
    tables = ([(mdf, meta_path)] if mdf is not None else []) + [(cdf, counts)]
    ti, xc, yc = _coordinate_columns(tables, x, y)
    cdf_src, cpath = tables[ti]
    coords = pd.DataFrame({"x": pd.to_numeric(cdf_src[xc], errors="coerce"),
                           "y": pd.to_numeric(cdf_src[yc], errors="coerce")})
    for c, name in (("x", xc), ("y", yc)):
        _refuse_rows(coords[c].isna() & cdf_src[name].notna(),
                     lambda i, name=name: f"the coordinate column {name!r} holds text, not numbers (first: "
                                          f"{short_list([cdf_src[name].iloc[i]], 1)[1:-1]})",
                     cpath, name, "give numeric centroids, or name the right columns with x= and y=")
    xy = _check_coordinates(coords.to_numpy(dtype=np.float64), ids, cpath, f"columns {xc!r}/{yc!r}",
                            "cells")
    coord_cols = {xc, yc} if ti == len(tables) - 1 else set()
    gene_cols = [c for c in cdf.columns if c not in coord_cols and _is_gene(c)
                 and not (x is not None and c in (x, y))]
    obs_parts = []
    if mdf is not None:
        obs_parts.append(mdf.drop(columns=[c for c in (xc, yc) if ti == 0 and c in mdf.columns]))
    rest = [c for c in cdf.columns if c not in gene_cols and c not in coord_cols
            and not (mdf is not None and c in mdf.columns)]
    obs_parts.append(cdf[rest])
    obs = pd.concat(obs_parts, axis=1) if obs_parts else pd.DataFrame(index=ids)
    obs.index = ids
    if not gene_cols:
        raise InputError("no gene columns in the cell-by-gene table", file=counts, where="line 1",
                         fix="one column per gene, besides the cell id, coordinates and metadata "
                             "(fov, volume …)")
    genes = cdf[gene_cols]
    values = np.empty(genes.shape, dtype=np.float64)
    for j, col in enumerate(gene_cols):
        s = genes[col]
        if pd.api.types.is_bool_dtype(s) or not (pd.api.types.is_numeric_dtype(s) or s.dtype == object):
            num = pd.Series(np.nan, index=s.index)
        else:
            num = pd.to_numeric(s, errors="coerce") if s.dtype == object else s.astype(np.float64)
        _refuse_rows(num.isna() & s.notna(),
                     lambda i, col=col, s=s: f"the column {col!r} is read as a gene but holds text (first: "
                                             f"{short_list([s.iloc[i]], 1)[1:-1]})",
                     counts, col, "every column besides the cell id, the coordinates and known metadata "
                                  "(fov, volume, cell_type …) is a gene and must hold counts: move "
                                  f"{col!r} to the metadata table (metadata=) or drop it")
        _refuse_rows(num.isna(), lambda i, col=col: f"missing count in gene column {col!r}", counts, col,
                     "fill missing counts with 0")
        values[:, j] = num.to_numpy(dtype=np.float64)
    neg = values < 0
    if neg.any():
        i, j = (int(v) for v in np.argwhere(neg)[0])
        raise InputError(f"{int(neg.sum())} negative counts: these are not transcript counts",
                         file=counts, where=f"line {i + 2}, column {gene_cols[j]!r}",
                         fix="give the raw cell-by-gene counts the instrument wrote")
    if np.isfinite(values).all() and not np.array_equal(values, np.round(values)):
        raise InputError(f"{np.mean(values[values != 0] != np.round(values[values != 0])):.0%} of the "
                         "non-zero values are not whole numbers: these look normalised (e.g. by cell "
                         "volume), not transcript counts", file=counts,
                         fix="give the raw cell-by-gene counts the instrument wrote")
    from scipy import sparse

    var = pd.DataFrame({"control": [bool(_CONTROL.match(g)) for g in gene_cols]},
                       index=pd.Index(gene_cols, dtype=str))
    adata = ad.AnnData(X=sparse.csr_matrix(values.astype(np.float32)), obs=obs, var=var)
    adata.obsm["spatial"] = xy
    return _finish(adata, counts, fmt="cell_table",
                   extra={"metadata": None if meta_path is None else str(meta_path),
                          "coordinates": [xc, yc]})


# --------------------------------------------------------------------------------------------
# helpers for the histology code
# --------------------------------------------------------------------------------------------

def _library(adata: anndata.AnnData, library_id: str | None) -> tuple[str, dict]:
    libs = adata.uns.get("spatial")
    fix_none = ("read a Visium section with pmed.spatial.read_spatial (Space Ranger folder or an "
                ".h5ad with uns['spatial'])")
    if not isinstance(libs, dict) or not libs:
        raise InputError("the data hold no tissue image: uns['spatial'] is missing or empty",
                         where="uns['spatial']", fix=fix_none)
    if library_id is None:
        info = adata.uns.get("pmed_spatial", {})
        if len(libs) == 1:
            library_id = str(next(iter(libs)))
        elif isinstance(info, dict) and info.get("library_id") in libs:
            library_id = info["library_id"]
        else:
            raise InputError(f"{len(libs)} libraries in uns['spatial'] ({short_list(libs)})",
                             where="uns['spatial']", fix="name one with library_id=")
    if library_id not in libs:
        raise InputError(f"library {library_id!r} not in uns['spatial'] ({short_list(libs)})",
                         where="uns['spatial']", fix="name one of the libraries listed")
    return library_id, libs[library_id]


def _scalefactor(lib: str, entry: dict, image: str) -> float:
    sf = entry.get("scalefactors") or {}
    if image == "fullres":
        return 1.0
    key = f"tissue_{image}_scalef"
    if key not in sf:
        raise InputError(f"library {lib!r} has no scale factor {key}",
                         where=f"uns['spatial']['{lib}']['scalefactors']",
                         fix="store Space Ranger's scalefactors_json.json of the section there")
    return float(sf[key])


def _check_image_name(image: str) -> None:
    if image not in ("hires", "lowres", "fullres"):
        raise OptionError(f"unknown image {image!r}", fix="use 'hires', 'lowres' or 'fullres'")


def spot_diameter_px(adata: anndata.AnnData, library_id: str | None = None, image: str = "hires") -> float:
    """Diameter of a Visium spot in pixels of one of the tissue images.

    Parameters
    ----------
    adata
        Data read by :func:`read_spatial` (``uns['spatial'][library_id]['scalefactors']``).
    library_id
        The library; default the only one (or the one :func:`read_spatial` recorded).
    image
        ``"hires"``, ``"lowres"`` or ``"fullres"`` (the coordinates of ``obsm['spatial']``).

    Returns
    -------
    float
        ``spot_diameter_fullres × tissue_<image>_scalef``.

    Raises
    ------
    InputError
        No library, or its scale factors lack the spot size or the image's factor.
    OptionError
        Unknown ``image``.
    """
    _check_image_name(image)
    lib, entry = _library(adata, library_id)
    sf = entry.get("scalefactors") or {}
    if "spot_diameter_fullres" not in sf:
        raise InputError(f"library {lib!r} has no spot_diameter_fullres scale factor",
                         where=f"uns['spatial']['{lib}']['scalefactors']",
                         fix="store Space Ranger's scalefactors_json.json of the section there")
    return float(sf["spot_diameter_fullres"]) * _scalefactor(lib, entry, image)


def image_and_scale(adata: anndata.AnnData, library_id: str | None = None,
                    image: str = "hires") -> tuple[np.ndarray, float]:
    """The tissue image of a section and the factor mapping ``obsm['spatial']`` onto it.

    Parameters
    ----------
    adata
        Data read by :func:`read_spatial` (``uns['spatial'][library_id]``).
    library_id
        The library; default the only one (or the one :func:`read_spatial` recorded).
    image
        ``"hires"`` or ``"lowres"``.

    Returns
    -------
    tuple of (numpy.ndarray, float)
        The image (height × width × channels, as stored) and ``tissue_<image>_scalef``: a spot at
        ``obsm['spatial'][i]`` sits at pixel ``obsm['spatial'][i] * scalef`` (x = column).

    Raises
    ------
    InputError
        No library, no such image, or no scale factor for it.
    OptionError
        Unknown ``image``.
    """
    _check_image_name(image)
    if image == "fullres":
        raise OptionError("the full-resolution image is not stored in the data",
                          fix="use image='hires' or 'lowres'")
    lib, entry = _library(adata, library_id)
    images = entry.get("images") or {}
    if image not in images:
        raise InputError(f"library {lib!r} has no {image!r} image (images: {short_list(images)})",
                         where=f"uns['spatial']['{lib}']['images']",
                         fix="use one of the images listed, or read the Space Ranger folder with its "
                             f"spatial/tissue_{image}_image.png")
    return np.asarray(images[image]), _scalefactor(lib, entry, image)
