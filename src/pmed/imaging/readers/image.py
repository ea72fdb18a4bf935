"""Any supported image file to one 2-D array: the format follows the suffix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pmed.errors import InputError
from pmed.imaging.readers._base import (
    DICOM_SUFFIXES,
    NIFTI_SUFFIXES,
    RASTER_SUFFIXES,
    _suffix,
    to_2d,
)
from pmed.imaging.readers.dicom import read_dicom
from pmed.imaging.readers.nifti import read_nifti
from pmed.imaging.readers.raster import read_raster

__all__ = ["read_image"]


def read_image(path: str | Path, *, volume_slice: str = "middle") -> np.ndarray:
    """Read any supported image file to a 2-D float32 array (the format follows the suffix).

    DICOM (``.dcm`` or no suffix), NIfTI, PNG/JPEG/BMP/TIFF. A 3-D volume (NIfTI, multi-frame
    DICOM) gives its middle slice (``volume_slice="middle"``) or its maximum intensity
    projection (``"mip"``).
    """
    path = Path(path)
    suf = _suffix(path)
    if suf in NIFTI_SUFFIXES:
        return to_2d(read_nifti(path).pixels, volume_slice=volume_slice)
    if suf in RASTER_SUFFIXES:
        return to_2d(read_raster(path).pixels, volume_slice=volume_slice)
    if suf in DICOM_SUFFIXES or suf == "":
        img = read_dicom(path)
        return to_2d(np.asarray(img.pixels, dtype=np.float32), volume_slice=volume_slice,
                     channels_last=img.meta["samples_per_pixel"] > 1)
    raise InputError(f"unsupported image format {suf!r}", file=path,
                     fix="use DICOM (.dcm), NIfTI (.nii/.nii.gz) or PNG/JPEG")
