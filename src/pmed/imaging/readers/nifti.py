"""NIfTI-1/2 volumes (``.nii``, ``.nii.gz``) with nibabel, in ``(slices, rows, columns)`` order."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pmed.errors import InputError, require
from pmed.imaging.readers._base import MAX_PIXELS, Volume, _exists, _looks_truncated, _why

__all__ = ["read_nifti"]

_FIX = "check that the file is NIfTI-1/2 and not truncated"


def read_nifti(path: str | Path) -> Volume:
    """Read a NIfTI-1/2 image (``.nii`` or ``.nii.gz``) with nibabel.

    Returns
    -------
    Volume
        ``pixels`` transposed to ``(k, j, i)`` → ``(slices, rows, columns)`` order (NIfTI stores
        ``(i, j, k)``), ``spacing`` (slice, row, column) from the affine's column norms, and the
        file's RAS affine (scaled by ``scl_slope``/``scl_inter`` as nibabel does).

    Raises
    ------
    InputError
        Missing, damaged or truncated file; an empty image; more than three dimensions.
    """
    path = Path(path)
    if not _exists(path):
        raise InputError("NIfTI file not found", file=path, fix="check the path")
    nib = require("nibabel", extra="imaging", feature="reading NIfTI")
    try:
        img = nib.load(str(path))
        shape = tuple(int(s) for s in img.shape)
        # a damaged header can claim any size: refuse before nibabel allocates it
        if int(np.prod(shape, dtype=np.float64)) > MAX_PIXELS:
            raise InputError(f"the header claims an image of shape {shape}, more than pmed reads",
                             file=path, where="header field dim", fix=_FIX)
        data = np.asarray(img.get_fdata(dtype=np.float32))
        aff = np.asarray(img.affine, dtype=float)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - nibabel raises many types on damaged files
        what = "the NIfTI file is truncated" if _looks_truncated(e) else "the NIfTI file is damaged or not NIfTI"
        raise InputError(f"{what} ({_why(e, path)})", file=path, fix=_FIX) from e
    if data.size == 0:
        raise InputError(f"the NIfTI image is empty (shape {data.shape})", file=path, fix=_FIX)
    if data.ndim == 1:
        data = data[:, None, None]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim > 3:
        data = data.reshape(data.shape[:3] + tuple(s for s in data.shape[3:] if s != 1))
        if data.ndim > 3:
            raise InputError(f"{data.ndim}-D NIfTI images are not supported (shape {data.shape})", file=path,
                             fix="split the time/channel dimension into 3-D files")
    if aff.shape != (4, 4) or not np.isfinite(aff).all():
        raise InputError("the NIfTI affine (qform/sform) is not a finite 4×4 matrix", file=path,
                         where="header fields qform/sform", fix=_FIX)
    zooms = np.linalg.norm(aff[:3, :3], axis=0)
    direction = aff[:3, :3] / np.where(zooms == 0, 1, zooms)
    pixels = np.transpose(data, (2, 1, 0))
    return Volume(pixels=pixels, spacing=(float(zooms[2]), float(zooms[1]), float(zooms[0])),
                  origin=tuple(float(v) for v in aff[:3, 3]), direction=direction, affine=aff,
                  meta={"format": "nifti", "shape_ijk": tuple(int(s) for s in data.shape)})
