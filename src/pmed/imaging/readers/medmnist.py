"""MedMNIST-style ``.npz`` archives: ``<split>_images`` and ``<split>_labels`` per split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pmed.errors import InputError, format_rows
from pmed.imaging.readers._base import (
    MAX_PIXELS,
    SPLITS,
    ImageSet,
    _exists,
    _looks_truncated,
    _one_line_error,
    _why,
)

__all__ = ["read_npz"]

_FIX = "check that it is a numpy .npz archive (np.savez) and not truncated"


def _member(z, key: str, path: Path) -> np.ndarray:
    """One array of the archive, its header checked before numpy allocates what it claims."""
    from numpy.lib import format as npy

    try:
        info = z.zip.getinfo(f"{key}.npy")
        with z.zip.open(info) as f:
            version = npy.read_magic(f)
            reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, _, dtype = reader(f)
        n_bytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if dtype.hasobject:
            raise InputError(f"array {key!r} holds Python objects, which pmed does not unpickle",
                             file=path, fix="save numeric arrays (images uint8, labels int)")
        if n_bytes > info.file_size or np.prod(shape, dtype=np.float64) > 64 * MAX_PIXELS:
            raise InputError(f"array {key!r} claims shape {shape} but the archive holds "
                             f"{info.file_size} bytes for it", file=path, fix=_FIX)
        return np.asarray(z[key])
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - zipfile/zlib/numpy raise many types on damaged files
        what = "is truncated" if _looks_truncated(e) else "cannot be read"
        raise InputError(f"array {key!r} of the npz file {what} ({_why(e, path)})",
                         file=path, fix=_FIX) from e


def read_npz(path: str | Path) -> ImageSet:
    """Read a MedMNIST-style ``.npz`` (``train_images``, ``train_labels``, ``val_*``, ``test_*``).

    Images ``(N, H, W)`` or ``(N, H, W, C)`` (uint8) become ``(N, C, H, W)`` float32 in
    ``[0, 1]``; labels ``(N,)`` or ``(N, 1)``. IDs are ``"<split>_<index>"``.

    Raises
    ------
    InputError
        Missing or unreadable file; no ``<split>_images``.
    ValidationError
        Images without labels; counts that differ; multi-label or non-integer labels
        (``-1`` means unknown); images that are not numeric, finite ``(N, H, W[, C])`` arrays.
    """
    path = Path(path)
    if not _exists(path):
        raise InputError("npz file not found", file=path, fix="check the path")
    try:
        z = np.load(path, allow_pickle=False)
        keys = list(z.keys())
    except Exception as e:  # noqa: BLE001 - not a zip, truncated, a bare .npy …
        what = "the npz file is truncated" if _looks_truncated(e) else "cannot read the npz file"
        raise InputError(f"{what} ({_why(e, path)})", file=path, fix=_FIX) from e
    if not hasattr(z, "zip"):  # a plain .npy named .npz: one array, no splits
        raise InputError("the file is a single .npy array, not an .npz archive", file=path,
                         fix="save the splits with np.savez(train_images=..., train_labels=..., ...)")
    with z:
        return _read(z, keys, path)


def _read(z, keys: list[str], path: Path) -> ImageSet:
    found = [s for s in SPLITS if f"{s}_images" in keys]
    if not found:
        shown = ", ".join(k[:40] for k in keys[:20]) or "none"
        raise InputError(f"no '<split>_images' arrays in the npz (keys: {shown})",
                         file=path, fix="a MedMNIST-style npz holds train_images/train_labels, "
                                        "val_images/val_labels and test_images/test_labels")
    images, labels, ids, paths = {}, {}, {}, {}
    problems = []
    for s in found:
        if f"{s}_labels" not in keys:
            problems.append(f"key '{s}_images' has no matching '{s}_labels'")
            continue
        raw = _member(z, f"{s}_images", path)
        y = _member(z, f"{s}_labels", path)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            problems.append(f"key '{s}_labels' has shape {y.shape}: multi-label targets are not supported")
            continue
        if y.dtype.kind not in "biuf":
            problems.append(f"key '{s}_labels' holds {y.dtype} values: labels must be integer classes")
            continue
        if y.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(y) | (y % 1 != 0)
            if bad.any():
                problems.append(f"key '{s}_labels': {int(bad.sum())} values are not integer classes (NaN or "
                                f"fractional; indices {format_rows(np.flatnonzero(bad).tolist())})")
                continue
        if len(y):
            bad = (y < -1) | (y > 2**31 - 1)  # -1: unknown
            if bad.any():
                problems.append(f"key '{s}_labels': {int(bad.sum())} values outside -1 … 2³¹−1 (-1 means "
                                f"unknown; indices {format_rows(np.flatnonzero(bad).tolist())})")
                continue
        if raw.dtype.kind not in "biuf":
            problems.append(f"'{s}_images' holds {raw.dtype} values: images must be numeric")
            continue
        if raw.ndim == 3:
            x = raw[:, None]
        elif raw.ndim == 4:
            x = np.moveaxis(raw, -1, 1)
        else:
            problems.append(f"'{s}_images' has shape {raw.shape}: expected (N, H, W) or (N, H, W, C)")
            continue
        if len(y) != len(raw):
            problems.append(f"'{s}_images' has {len(raw)} images but '{s}_labels' has {len(y)} labels")
            continue
        if x.size == 0:
            problems.append(f"'{s}_images' has shape {raw.shape}: no pixels")
            continue
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            problems.append(f"'{s}_images' holds NaN or infinite values")
            continue
        # uint8 as MedMNIST stores it; anything else scaled by its own maximum (at least 1)
        scale = 255.0 if raw.dtype == np.uint8 else max(float(x.max()), 1.0)
        images[s] = x / np.float32(scale)
        labels[s] = y.astype(int)
        ids[s] = np.array([f"{s}_{i}" for i in range(len(x))])
        paths[s] = np.array([""] * len(x))
    if problems:
        raise _one_line_error(problems, file=path, fix="rewrite the npz with matching images/labels per split")
    return ImageSet(images, labels, ids, paths, source=str(path), where="index")
