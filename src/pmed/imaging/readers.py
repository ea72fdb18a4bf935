"""Image readers: DICOM (files and series), NIfTI, PNG/JPEG, MedMNIST ``.npz`` and manifests.

Every reader returns plain numpy arrays plus the geometry a clinician would check (pixel
spacing, orientation, origin). Readers of single images return :class:`Image`; volumes
(a DICOM series, a NIfTI file) return :class:`Volume`. :func:`load_dataset` turns a MedMNIST
``.npz`` or a manifest CSV (``patient_id, path, label, split``) into an :class:`ImageSet`: one
``(N, C, H, W)`` float32 array in ``[0, 1]`` per split, ready for :mod:`pmed.imaging.train`.

pydicom, nibabel and Pillow are imported inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import InputError, ValidationError

__all__ = [
    "Image",
    "Volume",
    "ImageSet",
    "DICOM_SUFFIXES",
    "NIFTI_SUFFIXES",
    "RASTER_SUFFIXES",
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

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MANIFEST_COLUMNS = ("patient_id", "path", "label", "split")
SPLITS = ("train", "val", "test")


@dataclass
class Image:
    """One 2-D image (possibly with channels last) and its geometry.

    Attributes
    ----------
    pixels
        ``(rows, columns)`` or ``(rows, columns, channels)`` array; for DICOM in physical
        units (Hounsfield units for CT) after rescale slope/intercept.
    spacing
        Row and column spacing in mm (``(1.0, 1.0)`` when unknown).
    origin
        Position of the first pixel in patient coordinates (mm), when known.
    orientation
        Direction cosines of the rows and columns (``ImageOrientationPatient``), when known.
    meta
        Acquisition attributes that are not identifying (modality, window, rescale...).
    """

    pixels: np.ndarray
    spacing: tuple[float, float] = (1.0, 1.0)
    origin: tuple[float, float, float] | None = None
    orientation: tuple[float, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Volume:
    """A 3-D volume stored ``(slices, rows, columns)`` with its geometry.

    Attributes
    ----------
    pixels
        ``(k, i, j)`` array: ``k`` slices along the slice normal, ``i`` rows, ``j`` columns.
    spacing
        ``(slice, row, column)`` spacing in mm.
    origin
        Patient-coordinate position (mm) of voxel ``(0, 0, 0)``.
    direction
        3×3 matrix whose columns are the unit vectors of the ``j`` (along a row), ``i`` (down
        a column) and ``k`` (slice) axes in patient (LPS for DICOM, RAS for NIfTI) coordinates.
    affine
        4×4 matrix mapping ``(j, i, k, 1)`` voxel indices to patient coordinates.
    meta
        Non-identifying acquisition attributes.
    """

    pixels: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImageSet:
    """Images and labels by split, as the trainer consumes them.

    Attributes
    ----------
    images
        split → ``(N, C, H, W)`` float32 array in ``[0, 1]``.
    labels
        split → ``(N,)`` int array (``-1`` when unknown).
    ids
        split → ``(N,)`` array of patient IDs (``"<split>_<index>"`` for an ``.npz``).
    paths
        split → source path of each image (empty strings for an ``.npz``).
    source
        The file the set was read from.
    """

    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    ids: dict[str, np.ndarray]
    paths: dict[str, np.ndarray]
    source: str = ""

    @property
    def splits(self) -> list[str]:
        """Splits present, in the order train, val, test, then any others."""
        order = [s for s in SPLITS if s in self.images]
        return order + [s for s in self.images if s not in order]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(images, labels, ids)`` of one split.

        Raises
        ------
        InputError
            When the split is absent.
        """
        if name not in self.images:
            raise InputError(f"no split {name!r} (splits present: {', '.join(self.splits) or 'none'})",
                             file=self.source or None, fix=f"choose one of: {', '.join(self.splits)}")
        return self.images[name], self.labels[name], self.ids[name]


# --------------------------------------------------------------------------- DICOM

def _pydicom():
    try:
        import pydicom
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise InputError("reading DICOM needs pydicom", fix="pip install 'pmed[imaging]'") from e
    return pydicom


def _floats(value, n: int | None = None) -> tuple[float, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, (str, bytes, int, float)) else list(value)
    try:
        out = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        return None
    if n is not None and len(out) != n:
        return None
    return out


def _first(value) -> float | None:
    v = _floats(value)
    return v[0] if v else None


def apply_window(pixels: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map intensities through a DICOM linear VOI window to ``[0, 1]``.

    Follows DICOM PS3.3 C.11.2.1.2.1 (the "LINEAR" function): values at or below
    ``center - 0.5 - (width - 1) / 2`` become 0, at or above ``center - 0.5 + (width - 1) / 2``
    become 1, linear in between.

    Parameters
    ----------
    pixels
        Image in stored or physical units (apply rescale first for CT windows in HU).
    center, width
        Window centre and width (``width >= 1``).

    Returns
    -------
    numpy.ndarray
        float32 image in ``[0, 1]``.
    """
    if width < 1:
        raise InputError(f"window width must be >= 1, got {width}", fix="pass a positive window width")
    x = np.asarray(pixels, dtype=np.float64)
    lo = center - 0.5 - (width - 1) / 2
    out = (x - (center - 0.5)) / (width - 1) + 0.5 if width > 1 else (x > lo).astype(float)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _read_dataset(path: Path):
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    if not path.exists():
        raise InputError("DICOM file not found", file=path, fix="check the path")
    try:
        return pydicom.dcmread(path)
    except InvalidDicomError as e:
        raise InputError(f"not a DICOM file ({e})", file=path,
                         fix="check that the file is DICOM (a 128-byte preamble then 'DICM'), "
                             "or read it with force=True if it lacks the preamble") from e
    except Exception as e:  # truncated or damaged files raise many different errors
        raise InputError(f"the DICOM file is damaged and cannot be parsed ({type(e).__name__}: {e})",
                         file=path, fix="re-export or re-transfer the file from the PACS") from e


def _pixels(ds, path: Path) -> np.ndarray:
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise InputError("the DICOM file holds no pixel data", file=path, where="tag (7FE0,0010)",
                         fix="pass an image instance, not a report, structure set or plan")
    try:
        arr = ds.pixel_array
    except Exception as e:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise InputError(f"pixel data cannot be decoded ({type(e).__name__}: {e})", file=path,
                         where=f"transfer syntax {ts}",
                         fix="the file may be truncated, or its compression needs a decoder plugin "
                             "(pip install pylibjpeg pylibjpeg-libjpeg / gdcm)") from e
    return np.asarray(arr)


def read_dicom(
    path: str | Path,
    *,
    rescale: bool = True,
    window: tuple[float, float] | str | None = None,
    frame: int | None = None,
) -> Image:
    """Read one DICOM image.

    Parameters
    ----------
    path
        A DICOM file (``.dcm`` or no suffix).
    rescale
        Apply ``RescaleSlope``/``RescaleIntercept`` (to Hounsfield units for CT).
    window
        ``None`` (physical values), ``"dicom"`` (the file's first ``WindowCenter``/
        ``WindowWidth``; an error if it has none) or ``(center, width)``; windowed images are
        in ``[0, 1]``.
    frame
        For a multi-frame file, the frame to return (default: the middle frame).

    Returns
    -------
    Image
        Pixels (float32 when rescaled or windowed), spacing from ``PixelSpacing`` (or
        ``ImagerPixelSpacing``), origin, orientation and non-identifying metadata.

    Raises
    ------
    InputError
        Missing, non-DICOM or damaged file; no pixel data; a requested window absent.
    """
    path = Path(path)
    ds = _read_dataset(path)
    arr = _pixels(ds, path)
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if n_frames > 1:
        arr = arr[n_frames // 2 if frame is None else frame]
    slope = _first(ds.get("RescaleSlope")) or 1.0
    intercept = _first(ds.get("RescaleIntercept")) or 0.0
    pixels = arr
    if rescale and (slope != 1.0 or intercept != 0.0 or window is not None):
        pixels = arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    photometric = str(ds.get("PhotometricInterpretation", ""))
    wc, ww = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if window is not None:
        if window == "dicom":
            if wc is None or ww is None:
                raise InputError("the file has no WindowCenter/WindowWidth", file=path,
                                 where="tags (0028,1050)/(0028,1051)",
                                 fix="pass an explicit window, e.g. window=(40, 400) for a CT soft-tissue window")
            center, width = wc, ww
        else:
            center, width = (float(window[0]), float(window[1]))
        pixels = apply_window(pixels, center, width)
    if photometric == "MONOCHROME1":  # 0 is white: invert so that bright means dense everywhere
        pixels = 1.0 - pixels if window is not None else pixels.max() + pixels.min() - pixels
    spacing = _floats(ds.get("PixelSpacing"), 2) or _floats(ds.get("ImagerPixelSpacing"), 2) or (1.0, 1.0)
    meta = {
        "modality": str(ds.get("Modality", "")),
        "rows": int(ds.get("Rows", arr.shape[0])),
        "columns": int(ds.get("Columns", arr.shape[1])),
        "rescale_slope": slope, "rescale_intercept": intercept,
        "window_center": wc, "window_width": ww,
        "photometric_interpretation": photometric,
        "slice_thickness": _first(ds.get("SliceThickness")),
        "n_frames": n_frames,
        "samples_per_pixel": int(ds.get("SamplesPerPixel", 1) or 1),
        "sop_class_uid": str(ds.get("SOPClassUID", "")),
    }
    return Image(pixels=pixels, spacing=(float(spacing[0]), float(spacing[1])),
                 origin=_floats(ds.get("ImagePositionPatient"), 3),
                 orientation=_floats(ds.get("ImageOrientationPatient"), 6), meta=meta)


def read_dicom_series(
    source: str | Path | Sequence[str | Path],
    *,
    series_uid: str | None = None,
    rescale: bool = True,
) -> Volume:
    """Stack a DICOM series into a volume with correct slice order, spacing and orientation.

    Slices are ordered by their position along the slice normal (the cross product of the
    row and column direction cosines), not by file name or ``InstanceNumber``; the slice spacing
    is the median distance between consecutive positions (``SliceThickness`` only when the
    series has a single slice).

    Parameters
    ----------
    source
        A folder (every file in it, recursively, that parses as DICOM) or a list of files.
    series_uid
        Which series to read when the folder holds several (default: the only one).
    rescale
        Apply each slice's rescale slope/intercept.

    Returns
    -------
    Volume
        ``(slices, rows, columns)`` pixels in LPS patient coordinates with its affine.

    Raises
    ------
    InputError
        No DICOM files; several series and no ``series_uid``; slices of different shape or
        orientation; duplicate slice positions; missing geometry tags.
    """
    pydicom = _pydicom()
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not folder.exists():
            raise InputError("DICOM series folder not found", file=folder, fix="check the path")
        files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else [folder]
        where = folder
    else:
        files = [Path(p) for p in source]
        where = files[0].parent if files else Path(".")
    slices = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:
            continue  # not DICOM (a DICOMDIR viewer, a text note): skipped
        if "ImagePositionPatient" not in ds and "PixelData" not in ds:
            continue
        slices.append((f, ds))
    if not slices:
        raise InputError("no DICOM image files found", file=where,
                         fix="point at the folder holding the series' .dcm files")
    uids = sorted({str(ds.get("SeriesInstanceUID", "")) for _, ds in slices})
    if series_uid is None and len(uids) > 1:
        raise InputError(f"the folder holds {len(uids)} series", file=where,
                         fix="pass series_uid= one of: " + ", ".join(uids[:5]))
    if series_uid is not None:
        slices = [(f, ds) for f, ds in slices if str(ds.get("SeriesInstanceUID", "")) == series_uid]
        if not slices:
            raise InputError(f"no slice of series {series_uid}", file=where, fix="check the series UID")
    geo = []
    for f, ds in slices:
        pos, ori = _floats(ds.get("ImagePositionPatient"), 3), _floats(ds.get("ImageOrientationPatient"), 6)
        if pos is None or ori is None:
            raise InputError("slice lacks ImagePositionPatient/ImageOrientationPatient", file=f,
                             where="tags (0020,0032)/(0020,0037)",
                             fix="a volume needs the geometry tags; read the file alone with read_dicom")
        geo.append((np.array(pos), np.array(ori)))
    ori0 = geo[0][1]
    for (f, _), (_, ori) in zip(slices, geo, strict=True):
        if not np.allclose(ori, ori0, atol=1e-4):
            raise InputError("slices have different orientations", file=f, where="tag (0020,0037)",
                             fix="a volume needs parallel slices; split the series (e.g. a localizer)")
    row, col = ori0[:3], ori0[3:]
    normal = np.cross(row, col)
    d = np.array([float(np.dot(normal, pos)) for pos, _ in geo])
    order = np.argsort(d, kind="stable")
    d_sorted = d[order]
    if len(d) > 1 and np.any(np.diff(d_sorted) < 1e-4):
        dup = [str(slices[i][0].name) for i in order[1:][np.diff(d_sorted) < 1e-4]]
        raise InputError("two slices share the same position", file=where,
                         where="files " + ", ".join(dup[:5]),
                         fix="the folder may mix acquisitions or hold duplicates; pass series_uid or clean it")
    if len(d) > 1:
        dz = float(np.median(np.diff(d_sorted)))
    else:
        dz = _first(slices[0][1].get("SliceThickness")) or 1.0
    arrays = []
    first_shape = None
    for i in order:
        img = read_dicom(slices[i][0], rescale=rescale)
        px = np.asarray(img.pixels, dtype=np.float32)
        if first_shape is None:
            first_shape = px.shape
        elif px.shape != first_shape:
            raise InputError(f"slice shape {px.shape} differs from {first_shape}", file=slices[i][0],
                             fix="a volume needs slices of one size")
        arrays.append(px)
    pixels = np.stack(arrays)
    ds0 = slices[order[0]][1]
    sp = _floats(ds0.get("PixelSpacing"), 2) or (1.0, 1.0)
    origin = tuple(float(v) for v in geo[order[0]][0])
    direction = np.column_stack([row, col, normal])
    affine = np.eye(4)
    # PixelSpacing is (row spacing = between rows, column spacing = between columns)
    affine[:3, 0] = row * sp[1]
    affine[:3, 1] = col * sp[0]
    affine[:3, 2] = normal * dz
    affine[:3, 3] = origin
    meta = {"modality": str(ds0.get("Modality", "")), "n_slices": len(arrays),
            "series_instance_uid": str(ds0.get("SeriesInstanceUID", ""))}
    return Volume(pixels=pixels, spacing=(dz, float(sp[0]), float(sp[1])), origin=origin,
                  direction=direction, affine=affine, meta=meta)


# --------------------------------------------------------------------------- NIfTI, rasters

def read_nifti(path: str | Path) -> Volume:
    """Read a NIfTI-1/2 image (``.nii`` or ``.nii.gz``) with nibabel.

    Returns
    -------
    Volume
        ``pixels`` transposed to ``(k, j, i)`` → ``(slices, rows, columns)`` order (NIfTI stores
        ``(i, j, k)``), ``spacing`` (slice, row, column) from the affine's column norms, and the
        file's RAS affine (scaled by ``scl_slope``/``scl_inter`` as nibabel does).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("NIfTI file not found", file=path, fix="check the path")
    try:
        import nibabel as nib
    except ImportError as e:  # pragma: no cover
        raise InputError("reading NIfTI needs nibabel", fix="pip install 'pmed[imaging]'") from e
    try:
        img = nib.load(str(path))
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except Exception as e:
        raise InputError(f"cannot read the NIfTI file ({type(e).__name__}: {e})", file=path,
                         fix="check that the file is NIfTI-1/2 and not truncated") from e
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim > 3:
        data = data[..., 0] if data.shape[3] == 1 else data
        if data.ndim > 3:
            raise InputError(f"{data.ndim}-D NIfTI images are not supported (shape {data.shape})", file=path,
                             fix="split the time/channel dimension into 3-D files")
    aff = np.asarray(img.affine, dtype=float)
    zooms = np.linalg.norm(aff[:3, :3], axis=0)
    direction = aff[:3, :3] / np.where(zooms == 0, 1, zooms)
    pixels = np.transpose(data, (2, 1, 0))
    return Volume(pixels=pixels, spacing=(float(zooms[2]), float(zooms[1]), float(zooms[0])),
                  origin=tuple(float(v) for v in aff[:3, 3]), direction=direction, affine=aff,
                  meta={"format": "nifti", "shape_ijk": tuple(int(s) for s in data.shape)})


def read_raster(path: str | Path, *, grayscale: bool = True) -> Image:
    """Read a PNG/JPEG/BMP/TIFF image with Pillow.

    Parameters
    ----------
    grayscale
        Convert colour images to one channel (ITU-R 601 luma); otherwise RGB channels last.

    Returns
    -------
    Image
        Pixels as stored (uint8 or uint16), spacing ``(1, 1)``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("image file not found", file=path, fix="check the path")
    try:
        from PIL import Image as PILImage
        from PIL import UnidentifiedImageError
    except ImportError as e:  # pragma: no cover
        raise InputError("reading PNG/JPEG needs Pillow", fix="pip install pillow") from e
    try:
        with PILImage.open(path) as im:
            im.load()
            if grayscale and im.mode not in ("L", "I", "I;16", "F"):
                im = im.convert("L")
            elif not grayscale and im.mode not in ("RGB", "L"):
                im = im.convert("RGB")
            arr = np.array(im)
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"cannot read the image ({e})", file=path,
                         fix="check that the file is a valid PNG/JPEG and not truncated") from e
    return Image(pixels=arr, meta={"format": path.suffix.lower().lstrip(".")})


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


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
        return np.asarray(read_raster(path).pixels, dtype=np.float32)
    if suf in DICOM_SUFFIXES or suf == "":
        img = read_dicom(path)
        return to_2d(np.asarray(img.pixels, dtype=np.float32), volume_slice=volume_slice,
                     channels_last=img.meta["samples_per_pixel"] > 1)
    raise InputError(f"unsupported image format {suf!r}", file=path,
                     fix="use DICOM (.dcm), NIfTI (.nii/.nii.gz) or PNG/JPEG")


def to_2d(pixels: np.ndarray, *, volume_slice: str = "middle", channels_last: bool = False) -> np.ndarray:
    """Reduce a volume ``(k, i, j)`` to one 2-D image (middle slice or MIP); 2-D passes through.

    With ``channels_last`` a ``(i, j, 3)`` colour image becomes grey (ITU-R 601 luma).
    """
    a = np.asarray(pixels, dtype=np.float32)
    if a.ndim == 2:
        return a
    if channels_last and a.ndim == 3:
        return a[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if a.ndim == 3:
        if volume_slice == "mip":
            return a.max(axis=0)
        return a[a.shape[0] // 2]
    raise InputError(f"cannot reduce an array of shape {a.shape} to 2-D",
                     fix="pass 2-D images or 3-D volumes")


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D image to ``size`` (rows, columns) with linear interpolation."""
    from scipy.ndimage import zoom

    a = np.asarray(image, dtype=np.float32)
    if a.shape == tuple(size):
        return a
    out = zoom(a, (size[0] / a.shape[0], size[1] / a.shape[1]), order=1, grid_mode=True, mode="nearest")
    return out[: size[0], : size[1]].astype(np.float32)


def _minmax(a: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(a)), float(np.max(a))
    return np.zeros_like(a, dtype=np.float32) if hi <= lo else ((a - lo) / (hi - lo)).astype(np.float32)


# --------------------------------------------------------------------------- datasets

def read_npz(path: str | Path) -> ImageSet:
    """Read a MedMNIST-style ``.npz`` (``train_images``, ``train_labels``, ``val_*``, ``test_*``).

    Images ``(N, H, W)`` or ``(N, H, W, C)`` (uint8) become ``(N, C, H, W)`` float32 in
    ``[0, 1]``; labels ``(N,)`` or ``(N, 1)``. IDs are ``"<split>_<index>"``.

    Raises
    ------
    InputError
        Missing or unreadable file; no ``<split>_images``; images without labels; counts that
        differ; multi-label targets.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("npz file not found", file=path, fix="check the path")
    try:
        z = np.load(path, allow_pickle=False)
        keys = list(z.keys())
    except Exception as e:
        raise InputError(f"cannot read the npz file ({type(e).__name__}: {e})", file=path,
                         fix="check that it is a numpy .npz archive") from e
    found = [s for s in SPLITS if f"{s}_images" in keys]
    if not found:
        raise InputError(f"no '<split>_images' arrays in the npz (keys: {', '.join(keys) or 'none'})",
                         file=path, fix="a MedMNIST-style npz holds train_images/train_labels, "
                                        "val_images/val_labels and test_images/test_labels")
    images, labels, ids, paths = {}, {}, {}, {}
    problems = []
    for s in found:
        x = z[f"{s}_images"]
        if f"{s}_labels" not in keys:
            problems.append(f"key '{s}_images' has no matching '{s}_labels'")
            continue
        y = np.asarray(z[f"{s}_labels"])
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            problems.append(f"key '{s}_labels' has shape {y.shape}: multi-label targets are not supported")
            continue
        if len(y) != len(x):
            problems.append(f"'{s}_images' has {len(x)} images but '{s}_labels' has {len(y)} labels")
            continue
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4:
            x = np.moveaxis(x, -1, 1)
        else:
            problems.append(f"'{s}_images' has shape {x.shape}: expected (N, H, W) or (N, H, W, C)")
            continue
        x = x.astype(np.float32)
        scale = 255.0 if z[f"{s}_images"].dtype == np.uint8 else max(float(x.max()), 1.0)
        images[s] = x / np.float32(scale)
        labels[s] = y.astype(int)
        ids[s] = np.array([f"{s}_{i}" for i in range(len(x))])
        paths[s] = np.array([""] * len(x))
    if problems:
        raise ValidationError(problems, file=path, fix="rewrite the npz with matching images/labels per split")
    return ImageSet(images, labels, ids, paths, source=str(path))


def read_manifest(path: str | Path, *, root: str | Path | None = None, check_files: bool = True) -> pd.DataFrame:
    """Read and check a manifest CSV linking images to patients.

    Columns: ``patient_id``, ``path`` (absolute, or relative to the manifest's folder or
    ``root``), ``label`` (integer class; empty when unknown) and ``split`` (``train``, ``val``,
    ``test`` or any name; empty means ``train``).

    Returns
    -------
    pandas.DataFrame
        The manifest with ``path`` resolved to absolute paths, ``label`` as nullable Int64 and
        a ``line`` column (the 1-based CSV line of each row, for messages).

    Raises
    ------
    InputError
        Missing file or columns.
    ValidationError
        Every missing image file, bad label and empty patient ID, each with its line.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("manifest not found", file=path, fix="check the path")
    try:
        df = pd.read_csv(path, dtype={"patient_id": str, "path": str, "split": str}, keep_default_na=False,
                         na_values={"label": ["", "NA", "nan"]})
    except Exception as e:
        raise InputError(f"cannot parse the manifest ({e})", file=path, fix="save it as a comma-separated CSV") from e
    missing = [c for c in ("patient_id", "path") if c not in df.columns]
    if missing:
        raise InputError(f"manifest lacks column(s) {', '.join(missing)} (has: {', '.join(df.columns)})",
                         file=path, where="header, line 1",
                         fix="the header must be: patient_id,path,label,split")
    if "label" not in df.columns:
        df["label"] = pd.NA
    if "split" not in df.columns:
        df["split"] = "train"
    df["split"] = df["split"].astype(str).str.strip().replace("", "train")
    df["line"] = np.arange(len(df)) + 2
    base = Path(root) if root is not None else path.parent
    problems = []
    resolved = []
    for line, pid, p in zip(df["line"], df["patient_id"], df["path"], strict=True):
        if not str(pid).strip():
            problems.append(f"line {line}, column 'patient_id': empty patient ID")
        q = Path(str(p).strip())
        q = q if q.is_absolute() else base / q
        resolved.append(str(q))
        if check_files and (not str(p).strip() or not q.exists()):
            problems.append(f"line {line}, column 'path': image file {str(p)!r} not found (looked at {q})")
    labels = pd.to_numeric(df["label"], errors="coerce")
    bad = df.index[df["label"].notna() & (labels.isna() | (labels.fillna(0) % 1 != 0))]
    for i in bad:
        problems.append(f"line {df.at[i, 'line']}, column 'label': {df.at[i, 'label']!r} is not an integer class")
    if problems:
        raise ValidationError(problems, file=path,
                              fix="paths are relative to the manifest's folder (or --root); fix or drop these rows")
    df["path"] = resolved
    df["label"] = labels.astype("Int64")
    df["patient_id"] = df["patient_id"].astype(str).str.strip()
    return df


def load_dataset(
    path: str | Path,
    *,
    size: tuple[int, int] | int | None = None,
    root: str | Path | None = None,
    splits: Sequence[str] | None = None,
    volume_slice: str = "middle",
) -> ImageSet:
    """Load an ``.npz`` or a manifest CSV into an :class:`ImageSet`.

    Parameters
    ----------
    path
        MedMNIST-style ``.npz`` or manifest ``.csv``/``.tsv``.
    size
        Resize every image to ``(H, W)`` (an int means square). Manifest images of different
        sizes need it; default: the first image's size.
    root
        Folder that relative manifest paths are resolved against (default: the manifest's).
    splits
        Keep only these splits.
    volume_slice
        How volumes are reduced to 2-D (``"middle"`` or ``"mip"``).

    Notes
    -----
    Manifest images are scaled to ``[0, 1]`` one by one (min–max); DICOM images after rescale
    (and their own window when present), so that the model sees comparable intensities.
    """
    path = Path(path)
    if isinstance(size, int):
        size = (size, size)
    if _suffix(path) == ".npz":
        iset = read_npz(path)
        if size is not None:
            for s, x in iset.images.items():
                if x.shape[2:] != tuple(size):
                    iset.images[s] = np.stack([np.stack([resize(c, size) for c in im]) for im in x])
    elif _suffix(path) in (".csv", ".tsv", ".txt"):
        man = read_manifest(path, root=root)
        images, labels, ids, paths = {}, {}, {}, {}
        for s, d in man.groupby("split", sort=False):
            arrs = []
            for line, p in zip(d["line"], d["path"], strict=True):
                try:
                    a = _manifest_image(Path(p), volume_slice)
                except InputError as e:
                    raise InputError(e.message, file=e.file, where=f"manifest {path.name} line {line}",
                                     fix=e.fix) from e
                if size is None:
                    size = a.shape
                arrs.append(resize(a, size)[None])
            images[s] = np.stack(arrs).astype(np.float32)
            labels[s] = d["label"].fillna(-1).to_numpy(dtype=int)
            ids[s] = d["patient_id"].to_numpy(dtype=str)
            paths[s] = d["path"].to_numpy(dtype=str)
        iset = ImageSet(images, labels, ids, paths, source=str(path))
    else:
        raise InputError(f"unsupported dataset format {path.suffix!r}", file=path,
                         fix="pass a MedMNIST-style .npz or a manifest .csv (patient_id,path,label,split)")
    if splits is not None:
        for s in splits:
            iset.split(s)  # raises naming the splits present
        for d in (iset.images, iset.labels, iset.ids, iset.paths):
            for k in [k for k in d if k not in splits]:
                del d[k]
    return iset


def _manifest_image(path: Path, volume_slice: str) -> np.ndarray:
    suf = _suffix(path)
    if suf in DICOM_SUFFIXES or suf == "":
        img = read_dicom(path)
        windowed = img.meta.get("window_center") is not None and (img.meta.get("window_width") or 0) >= 1
        if windowed:  # the file's own window, applied before any MONOCHROME1 inversion
            img = read_dicom(path, window="dicom")
        a = to_2d(np.asarray(img.pixels, dtype=np.float32), volume_slice=volume_slice,
                  channels_last=img.meta["samples_per_pixel"] > 1)
        return a if windowed else _minmax(a)
    return _minmax(read_image(path, volume_slice=volume_slice))
