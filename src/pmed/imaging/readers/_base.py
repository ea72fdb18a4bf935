"""What every image reader shares: the result types, suffixes and 2-D reduction/resizing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pmed.errors import InputError, OptionError

__all__ = [
    "Image",
    "Volume",
    "ImageSet",
    "DICOM_SUFFIXES",
    "NIFTI_SUFFIXES",
    "RASTER_SUFFIXES",
    "MANIFEST_COLUMNS",
    "SPLITS",
    "to_2d",
    "resize",
]

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MANIFEST_COLUMNS = ("patient_id", "path", "label", "split")
SPLITS = ("train", "val", "test")

# Refuse images larger than this many pixels per 2-D image / voxels per volume: a damaged
# header can claim sizes that would exhaust memory long before the pixels turn out missing.
MAX_PIXELS = 1 << 28


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
    lines
        split → where each image is listed, for messages: the 1-based line of a manifest CSV;
        for an ``.npz`` the 0-based index into ``<split>_labels`` (see :attr:`where`).
    where
        ``"line"`` (a manifest) or ``"index"`` (an ``.npz``): what :attr:`lines` counts.
    """

    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    ids: dict[str, np.ndarray]
    paths: dict[str, np.ndarray]
    source: str = ""
    lines: dict[str, np.ndarray] = field(default_factory=dict)
    where: str = "index"

    def locate(self, split: str, mask: np.ndarray) -> str:
        """``"lines 3, 9"`` / ``"indices 2, 8 of 'train_labels'"``: where the images of ``mask`` are listed."""
        from pmed.errors import format_rows

        idx = np.flatnonzero(np.asarray(mask))
        at = self.lines.get(split)
        pos = [int(v) for v in (at[idx] if at is not None and len(at) == len(mask) else idx)]
        if self.where == "line":
            return f"line{'s' if len(pos) != 1 else ''} {format_rows(pos)}"
        return f"{'indices' if len(pos) != 1 else 'index'} {format_rows(pos)} of '{split}_labels'"

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
            present = ", ".join(repr(s[:40]) for s in self.splits[:10]) or "none"
            raise InputError(f"no split {str(name)[:40]!r} (splits present: {present})",
                             file=self.source or None, fix=f"choose one of: {present}")
        return self.images[name], self.labels[name], self.ids[name]


def _why(e: BaseException, path: Path | None = None) -> str:
    """An exception as ``Type: text`` on one short line.

    The file's path is replaced by its name: the message names the file already, and a path
    repeated inside the cause makes lines long (and, for images named after patients, repeats
    the identifier).
    """
    text = str(e)
    if path is not None:
        text = text.replace(str(path), path.name)
    text = " ".join(text.split())
    return f"{type(e).__name__}: {text[:160]}" if text else type(e).__name__


def _one_line_error(problems: list[str], *, file=None, fix: str | None = None):
    """A :class:`~pmed.errors.ValidationError` (exit 4, ``problems`` kept) whose message is one line.

    The CLI prints one diagnosis line (issue #16): each problem is already a summary (a count and
    the rows), so they are joined with ``"; "``.
    """
    from pmed.errors import ValidationError

    err = ValidationError(problems, file=file, fix=fix)
    err.message = "; ".join(problems)
    err.args = (str(err),)
    return err


#: Words in a reader's exception that mean the file ends too early.
_TRUNCATION_HINTS = ("truncated", "end-of-stream", "ended before", "expected", "unexpected end", "eof",
                     "broken data stream", "incomplete")


def _looks_truncated(e: BaseException) -> bool:
    text = f"{type(e).__name__} {e}".lower()
    return isinstance(e, EOFError) or any(h in text for h in _TRUNCATION_HINTS)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _exists(path: Path) -> bool:
    """``path.exists()`` that answers ``False`` for names the OS refuses (too long, NUL bytes)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _floats(value, n: int | None = None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        items = [value] if isinstance(value, (str, bytes, int, float)) else list(value)
        out = tuple(float(v) for v in items)
    except (TypeError, ValueError, OverflowError):
        return None
    if n is not None and len(out) != n:
        return None
    return out


def _first(value) -> float | None:
    v = _floats(value)
    return v[0] if v else None


def to_2d(pixels: np.ndarray, *, volume_slice: str = "middle", channels_last: bool = False) -> np.ndarray:
    """Reduce a volume ``(k, i, j)`` to one 2-D image (middle slice or MIP); 2-D passes through.

    With ``channels_last`` a ``(i, j, 3)`` colour image becomes grey (ITU-R 601 luma).

    Raises
    ------
    InputError
        An empty image, or an array of more than three dimensions.
    OptionError
        ``volume_slice`` other than ``"middle"`` or ``"mip"``.
    """
    if volume_slice not in ("middle", "mip"):
        raise OptionError(f"volume_slice must be 'middle' or 'mip', got {volume_slice!r}",
                          fix="pass volume_slice='middle' or 'mip'")
    a = np.asarray(pixels, dtype=np.float32)
    if a.size == 0:
        raise InputError(f"the image is empty (shape {a.shape})", fix="check the file; it holds no pixels")
    if a.ndim == 2:
        return a
    if channels_last and a.ndim == 3:
        if a.shape[-1] >= 3:
            return a[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return a[..., 0]
    if a.ndim == 3:
        if volume_slice == "mip":
            return a.max(axis=0)
        return a[a.shape[0] // 2]
    raise InputError(f"cannot reduce an array of shape {a.shape} to 2-D",
                     fix="pass 2-D images or 3-D volumes")


def _check_size(size) -> tuple[int, int] | None:
    """``size`` as ``(H, W)`` of positive ints (an int means square), or ``None``."""
    if size is None:
        return None
    try:
        hw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    except (TypeError, ValueError, OverflowError):
        hw = ()
    if len(hw) != 2 or min(hw) < 1 or hw[0] * hw[1] > MAX_PIXELS:
        raise OptionError(f"size must be a positive int or (height, width), got {size!r}",
                          fix="pass size=64 or size=(64, 64)")
    return hw


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D image to ``size`` (rows, columns) with linear interpolation."""
    from scipy.ndimage import zoom

    size = _check_size(size)
    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 2 or a.size == 0:
        raise InputError(f"cannot resize an image of shape {a.shape}", fix="pass a non-empty 2-D image")
    if a.shape == tuple(size):
        return a
    out = zoom(a, (size[0] / a.shape[0], size[1] / a.shape[1]), order=1, grid_mode=True, mode="nearest")
    return out[: size[0], : size[1]].astype(np.float32)


def _minmax(a: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(a)), float(np.max(a))
    if not hi > lo:  # constant image, or NaN present (left as NaN: training refuses it by name)
        return (np.zeros_like(a, dtype=np.float32) if hi == lo
                else np.full(a.shape, np.nan, dtype=np.float32))
    with np.errstate(invalid="ignore", over="ignore"):
        return ((a - lo) / (hi - lo)).astype(np.float32)
