"""Image readers: DICOM (files and series), NIfTI, PNG/JPEG, MedMNIST ``.npz`` and manifests.

Every reader returns plain numpy arrays plus the geometry a clinician would check (pixel
spacing, orientation, origin). Readers of single images return :class:`Image`; volumes
(a DICOM series, a NIfTI file) return :class:`Volume`. :func:`load_dataset` turns a MedMNIST
``.npz`` or a manifest CSV (``patient_id, path, label, split``) into an :class:`ImageSet`: one
``(N, C, H, W)`` float32 array in ``[0, 1]`` per split, ready for :mod:`pmed.imaging.train`.

One module per job: :mod:`~pmed.imaging.readers.dicom`, :mod:`~pmed.imaging.readers.nifti`,
:mod:`~pmed.imaging.readers.raster` (PNG/JPEG/BMP/TIFF), :mod:`~pmed.imaging.readers.image`
(any of them by suffix), :mod:`~pmed.imaging.readers.medmnist` (``.npz``) and
:mod:`~pmed.imaging.readers.manifest` (manifest CSVs and :func:`load_dataset`); the types and
the 2-D helpers live in ``_base``. pydicom, nibabel and Pillow are imported inside the
functions that need them; a damaged or hostile file raises an :class:`~pmed.errors.InputError`
naming it, never another exception.
"""

from __future__ import annotations

from pmed.imaging.readers._base import (
    DICOM_SUFFIXES,
    MANIFEST_COLUMNS,
    NIFTI_SUFFIXES,
    RASTER_SUFFIXES,
    SPLITS,
    Image,
    ImageSet,
    Volume,
    resize,
    to_2d,
)
from pmed.imaging.readers.dicom import apply_window, read_dicom, read_dicom_series
from pmed.imaging.readers.image import read_image
from pmed.imaging.readers.manifest import load_dataset, read_manifest
from pmed.imaging.readers.medmnist import read_npz
from pmed.imaging.readers.nifti import read_nifti
from pmed.imaging.readers.raster import read_raster

__all__ = [
    "Image",
    "Volume",
    "ImageSet",
    "DICOM_SUFFIXES",
    "NIFTI_SUFFIXES",
    "RASTER_SUFFIXES",
    "MANIFEST_COLUMNS",
    "SPLITS",
    "apply_window",
    "read_dicom",
    "read_dicom_series",
    "read_nifti",
    "read_raster",
    "read_image",
    "read_npz",
    "read_manifest",
    "load_dataset",
    "to_2d",
    "resize",
]
