"""DICOM: single images (rescale, VOI windows, MONOCHROME1) and series stacked into volumes.

pydicom is imported when a DICOM file is first read (``pip install 'pmed[imaging]'``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pmed.errors import InputError, OptionError, PmedError, PmedWarning, require
from pmed.imaging.readers._base import MAX_PIXELS, Image, Volume, _exists, _first, _floats, _why

__all__ = ["apply_window", "read_dicom", "read_dicom_series", "check_complete", "read_dataset", "NotDicomError"]

_DAMAGED_FIX = "re-export or re-transfer the file from the PACS"


def _pydicom():
    return require("pydicom", extra="imaging", feature="reading DICOM")


def _get(ds, keyword: str, default=None):
    """An attribute's value, or ``default`` when absent or when its bytes do not parse.

    pydicom converts values lazily, on first access: a damaged element raises only then.
    """
    try:
        value = ds.get(keyword, default)
    except Exception as e:  # noqa: BLE001 - any parse error of one element means "unusable"
        warnings.warn(f"DICOM attribute {keyword} cannot be parsed ({type(e).__name__}); ignored",
                      PmedWarning, stacklevel=3)
        return default
    return default if value is None else value


def _int(ds, keyword: str, default: int) -> int:
    v = _first(_get(ds, keyword))
    if v is None or not np.isfinite(v):
        return default
    return int(v)


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
    if not width >= 1 or not np.isfinite(center) or not np.isfinite(width):
        raise InputError(f"window width must be >= 1, got {width} (centre {center})",
                         fix="pass a positive window width and a finite centre")
    x = np.asarray(pixels, dtype=np.float64)
    lo = center - 0.5 - (width - 1) / 2
    with np.errstate(invalid="ignore", over="ignore"):
        out = (x - (center - 0.5)) / (width - 1) + 0.5 if width > 1 else (x > lo).astype(float)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _undefined_length(raw) -> bool:
    return getattr(raw, "length", None) == 0xFFFFFFFF or bool(getattr(raw, "is_undefined_length", False))


def check_complete(ds, path: Path, *, size: int | None = None) -> None:
    """Refuse a DICOM dataset read from a file that was cut short (issue #16).

    pydicom reads a truncated file without complaint: a value cut mid-way comes back shorter
    than its length says, an element whose header is cut is silently dropped, and an
    encapsulated (compressed) pixel data element missing its end only warns. A de-identified copy
    or a training image made from such a file holds part of the pixels and no error. Three checks,
    run on the dataset straight after ``dcmread`` (before any element is converted):

    * the last element must end exactly at the end of the file (a value longer than the bytes
      left, or a few stray bytes of a cut element header, mean the file was cut);
    * native (uncompressed) pixel data must hold Rows × Columns × SamplesPerPixel ×
      BitsAllocated / 8 × NumberOfFrames bytes;
    * a dataset that describes an image (Rows, Columns, BitsAllocated) must hold pixel data
      (unless a Pixel Data Provider URL points elsewhere).

    Raises
    ------
    InputError
        Naming the file and saying "truncated", with the byte counts.
    """
    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    deflated = bool(getattr(ts, "is_deflated", False))
    encapsulated = bool(getattr(ts, "is_encapsulated", False))
    where = "tag (7FE0,0010)"
    try:
        size = path.stat().st_size if size is None else size
    except OSError:
        size = None
    raw = getattr(ds, "_dict", {})
    if raw and size is not None and not deflated:  # a deflated data set's offsets are not file offsets
        last = raw[max(raw)]
        tell, length = getattr(last, "value_tell", None), getattr(last, "length", None)
        if tell is not None and length is not None and not _undefined_length(last):
            end = int(tell) + int(length)
            if end > size:
                held = max(size - int(tell), 0)
                what = "pixel data" if last.tag == 0x7FE00010 else "last element"
                raise InputError(f"the DICOM file is truncated: its {what} holds {held} of the {int(length)} "
                                 "bytes its header declares", file=path,
                                 where=f"tag ({last.tag >> 16:04X},{last.tag & 0xFFFF:04X})", fix=_DAMAGED_FIX)
            tail = size - end
            if 0 < tail < 8:  # pydicom stops silently at an element header cut short
                with open(path, "rb") as fh:
                    fh.seek(end)
                    rest = fh.read(tail)
                if rest.strip(b"\0"):  # zero bytes are padding some writers add; anything else was cut
                    raise InputError(f"the DICOM file is truncated: it ends {tail} byte(s) into an element "
                                     "header", file=path, fix=_DAMAGED_FIX)
    pixel_tag = 0x7FE00010
    has_pixels = any(t in raw for t in (pixel_tag, 0x7FE00008, 0x7FE00009))
    rows, cols = _int(ds, "Rows", 0), _int(ds, "Columns", 0)
    bits = _int(ds, "BitsAllocated", 0)
    if not has_pixels:
        if rows and cols and bits and "PixelDataProviderURL" not in ds:
            raise InputError("the DICOM file is truncated: it describes a "
                             f"{rows}×{cols} image but holds no pixel data", file=path, where=where,
                             fix=_DAMAGED_FIX)
        return
    if pixel_tag not in raw or encapsulated or not (rows and cols and bits):
        return
    elem = raw[pixel_tag]
    if _undefined_length(elem):
        return
    frames = max(_int(ds, "NumberOfFrames", 1), 1)
    spp = max(_int(ds, "SamplesPerPixel", 1), 1)
    n_bits = rows * cols * frames * spp * bits
    expected = (n_bits + 7) // 8
    value = getattr(elem, "value", None)
    held = len(value) if isinstance(value, (bytes, bytearray)) else int(getattr(elem, "length", 0))
    if held < expected:
        raise InputError(f"the DICOM file is truncated: its pixel data hold {held} of the {expected} bytes "
                         f"that Rows×Columns×SamplesPerPixel×BitsAllocated/8×frames "
                         f"({rows}×{cols}×{spp}×{bits}/8×{frames}) need", file=path, where=where,
                         fix=_DAMAGED_FIX)


class NotDicomError(InputError):
    """The file is not DICOM at all (no ``DICM`` marker): folders may hold such files beside images."""


def read_dataset(path: str | Path):
    """Read a whole DICOM file with pydicom, refusing a damaged or truncated one.

    Raises
    ------
    NotDicomError
        The file is not DICOM (an :class:`~pmed.errors.InputError`).
    InputError
        Missing, damaged or truncated (:func:`check_complete`).
    """
    return _read_dataset(Path(path))


def _read_dataset(path: Path, *, stop_before_pixels: bool = False):
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    if not _exists(path):
        raise InputError("DICOM file not found", file=path, fix="check the path")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as e:
        raise NotDicomError(f"not a DICOM file ({_why(e, path)})", file=path,
                         fix="check that the file is DICOM (a 128-byte preamble then 'DICM'), "
                             "or read it with force=True if it lacks the preamble") from e
    except Exception as e:  # truncated or damaged files raise many different errors
        raise InputError(f"the DICOM file is damaged or truncated and cannot be parsed ({_why(e, path)})",
                         file=path, fix=_DAMAGED_FIX) from e
    for w in caught:
        if "End of file reached" in str(w.message):  # an encapsulated element missing its end
            raise InputError("the DICOM file is truncated: it ends inside an element of undefined length "
                             "(no sequence delimiter)", file=path, fix=_DAMAGED_FIX)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not stop_before_pixels:
        check_complete(ds, path)
    return ds


def _pixels(ds, path: Path) -> np.ndarray:
    try:
        has_pixels = any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    except Exception as e:  # noqa: BLE001 - a damaged tag list: treated as no pixel data
        warnings.warn(f"{path}: the DICOM tag list cannot be parsed ({type(e).__name__})", PmedWarning,
                      stacklevel=3)
        has_pixels = False
    if not has_pixels:
        raise InputError("the DICOM file holds no pixel data", file=path, where="tag (7FE0,0010)",
                         fix="pass an image instance, not a report, structure set or plan")
    rows, cols = _int(ds, "Rows", 0), _int(ds, "Columns", 0)
    frames, spp = _int(ds, "NumberOfFrames", 1), _int(ds, "SamplesPerPixel", 1)
    if rows * cols * max(frames, 1) * max(spp, 1) > MAX_PIXELS:
        raise InputError(f"the header claims {rows}×{cols} pixels × {frames} frames, more than pmed reads",
                         file=path, where="tags (0028,0010)/(0028,0011)/(0028,0008)", fix=_DAMAGED_FIX)
    try:
        arr = ds.pixel_array
    except Exception as e:  # noqa: BLE001 - decoders raise anything on damaged data
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise InputError(f"pixel data cannot be decoded ({_why(e, path)})", file=path,
                         where=f"transfer syntax {ts}",
                         fix="the file may be truncated, or its compression needs a decoder plugin "
                             "(pip install pylibjpeg pylibjpeg-libjpeg / gdcm)") from e
    arr = np.asarray(arr)
    if arr.size == 0 or arr.ndim < 2:
        raise InputError(f"the pixel data decode to an empty or 1-D array (shape {arr.shape})",
                         file=path, where="tag (7FE0,0010)", fix=_DAMAGED_FIX)
    return arr


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
    OptionError
        ``window`` neither ``None``, ``"dicom"`` nor ``(center, width)``.
    """
    path = Path(path)
    if window is not None and window != "dicom":
        c_w = _floats(window, 2)
        if c_w is None or isinstance(window, str):
            raise OptionError(f"window must be None, 'dicom' or (center, width), got {window!r}",
                              fix="pass window=(40, 400) for a CT soft-tissue window")
        window = c_w
    ds = _read_dataset(path)
    try:
        return _image(ds, path, rescale=rescale, window=window, frame=frame)
    except PmedError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged attribute surfaces as any exception
        raise InputError(f"the DICOM file is damaged and cannot be read ({_why(e, path)})",
                         file=path, fix=_DAMAGED_FIX) from e


def _image(ds, path: Path, *, rescale: bool, window, frame: int | None) -> Image:
    arr = _pixels(ds, path)
    n_frames = max(_int(ds, "NumberOfFrames", 1), 1)
    spp = max(_int(ds, "SamplesPerPixel", 1), 1)
    if n_frames > 1 and arr.ndim >= 3 and len(arr) == n_frames:
        k = n_frames // 2 if frame is None else frame
        if not -n_frames <= k < n_frames:
            raise OptionError(f"frame {k} does not exist: the file has {n_frames} frames", file=path,
                              fix=f"pass frame= 0 to {n_frames - 1}")
        arr = arr[k]
    slope = _first(_get(ds, "RescaleSlope")) or 1.0
    intercept = _first(_get(ds, "RescaleIntercept")) or 0.0
    if not (np.isfinite(slope) and np.isfinite(intercept)):
        slope, intercept = 1.0, 0.0  # an unusable rescale is ignored (noted in meta)
    pixels = arr
    if rescale and (slope != 1.0 or intercept != 0.0 or window is not None):
        with np.errstate(over="ignore", invalid="ignore"):
            pixels = arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    photometric = str(_get(ds, "PhotometricInterpretation", ""))
    wc, ww = _first(_get(ds, "WindowCenter")), _first(_get(ds, "WindowWidth"))
    if window is not None:
        if window == "dicom":
            if wc is None or ww is None:
                raise InputError("the file has no WindowCenter/WindowWidth", file=path,
                                 where="tags (0028,1050)/(0028,1051)",
                                 fix="pass an explicit window, e.g. window=(40, 400) for a CT soft-tissue window")
            if not ww >= 1 or not np.isfinite(wc) or not np.isfinite(ww):
                raise InputError(f"the file's window width {ww} (centre {wc}) is unusable", file=path,
                                 where="tags (0028,1050)/(0028,1051)",
                                 fix="pass an explicit window, e.g. window=(40, 400)")
            center, width = wc, ww
        else:
            center, width = window
        pixels = apply_window(pixels, center, width)
    if photometric == "MONOCHROME1":  # 0 is white: invert so that bright means dense everywhere
        pixels = 1.0 - pixels if window is not None else pixels.max() + pixels.min() - pixels
    spacing = (_floats(_get(ds, "PixelSpacing"), 2) or _floats(_get(ds, "ImagerPixelSpacing"), 2)
               or (1.0, 1.0))
    meta = {
        "modality": str(_get(ds, "Modality", "")),
        "rows": _int(ds, "Rows", arr.shape[0]),
        "columns": _int(ds, "Columns", arr.shape[1]),
        "rescale_slope": slope, "rescale_intercept": intercept,
        "window_center": wc, "window_width": ww,
        "photometric_interpretation": photometric,
        "slice_thickness": _first(_get(ds, "SliceThickness")),
        "n_frames": n_frames,
        # what the decoded array holds, so that to_2d never takes a volume for colour
        "samples_per_pixel": spp if np.asarray(pixels).ndim == 3 and spp > 1 else 1,
        "sop_class_uid": str(_get(ds, "SOPClassUID", "")),
    }
    return Image(pixels=pixels, spacing=(float(spacing[0]), float(spacing[1])),
                 origin=_floats(_get(ds, "ImagePositionPatient"), 3),
                 orientation=_floats(_get(ds, "ImageOrientationPatient"), 6), meta=meta)


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

    Warns
    -----
    PmedWarning
        When files of the folder are skipped because they do not parse as DICOM.
    """
    pydicom = _pydicom()
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not _exists(folder):
            raise InputError("DICOM series folder not found", file=folder, fix="check the path")
        files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else [folder]
        where = folder
    else:
        files = [Path(p) for p in source]
        where = files[0].parent if files else Path(".")
    slices, skipped = [], 0
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            usable = "ImagePositionPatient" in ds or "PixelData" in ds
        except Exception:  # noqa: BLE001 - not DICOM (a DICOMDIR viewer, a text note): counted
            skipped += 1
            continue
        if usable:
            slices.append((f, ds))
    if skipped:
        warnings.warn(f"{where}: skipped {skipped} file(s) that do not parse as DICOM", PmedWarning,
                      stacklevel=2)
    if not slices:
        raise InputError("no DICOM image files found", file=where,
                         fix="point at the folder holding the series' .dcm files")
    uids = sorted({str(_get(ds, "SeriesInstanceUID", "")) for _, ds in slices})
    if series_uid is None and len(uids) > 1:
        raise InputError(f"the folder holds {len(uids)} series", file=where,
                         fix="pass series_uid= one of: " + ", ".join(uids[:5]))
    if series_uid is not None:
        slices = [(f, ds) for f, ds in slices if str(_get(ds, "SeriesInstanceUID", "")) == series_uid]
        if not slices:
            raise InputError(f"no slice of series {series_uid}", file=where, fix="check the series UID")
    geo = []
    for f, ds in slices:
        pos = _floats(_get(ds, "ImagePositionPatient"), 3)
        ori = _floats(_get(ds, "ImageOrientationPatient"), 6)
        if pos is None or ori is None or not np.all(np.isfinite(pos + ori)):
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
        dz = _first(_get(slices[0][1], "SliceThickness")) or 1.0
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
    sp = _floats(_get(ds0, "PixelSpacing"), 2) or (1.0, 1.0)
    origin = tuple(float(v) for v in geo[order[0]][0])
    direction = np.column_stack([row, col, normal])
    affine = np.eye(4)
    # PixelSpacing is (row spacing = between rows, column spacing = between columns)
    affine[:3, 0] = row * sp[1]
    affine[:3, 1] = col * sp[0]
    affine[:3, 2] = normal * dz
    affine[:3, 3] = origin
    meta = {"modality": str(_get(ds0, "Modality", "")), "n_slices": len(arrays),
            "series_instance_uid": str(_get(ds0, "SeriesInstanceUID", ""))}
    return Volume(pixels=pixels, spacing=(dz, float(sp[0]), float(sp[1])), origin=origin,
                  direction=direction, affine=affine, meta=meta)
