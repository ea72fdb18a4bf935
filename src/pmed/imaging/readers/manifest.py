"""Manifest CSVs (``patient_id, path, label, split``) and :func:`load_dataset`, which turns a
manifest or a MedMNIST ``.npz`` into an :class:`~pmed.imaging.readers.ImageSet`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import InputError, OptionError, format_rows
from pmed.imaging.readers._base import (
    DICOM_SUFFIXES,
    ImageSet,
    _check_size,
    _exists,
    _minmax,
    _one_line_error,
    _suffix,
    _why,
    resize,
    to_2d,
)
from pmed.imaging.readers.dicom import read_dicom
from pmed.imaging.readers.image import read_image
from pmed.imaging.readers.medmnist import read_npz

__all__ = ["read_manifest", "load_dataset"]

_MAX_LABEL = 2**31 - 1


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
        Missing image files, labels that are not integer classes and empty patient IDs: one
        message line giving, per column, how many rows and which lines (never the values).
    """
    from pmed.io.text import open_text

    path = Path(path)
    if not _exists(path):
        raise InputError("manifest not found", file=path, fix="check the path")
    try:
        with open_text(path) as fh:
            df = pd.read_csv(fh, dtype=str, keep_default_na=False,
                             sep="\t" if _suffix(path) == ".tsv" else ",")
    except Exception as e:  # noqa: BLE001 - pandas' parser raises many types on damaged text
        raise InputError(f"cannot parse the manifest ({_why(e, path)})", file=path,
                         fix="save it as a comma-separated CSV (UTF-8)") from e
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in ("patient_id", "path") if c not in df.columns]
    if missing:
        shown = ", ".join(c[:40] for c in df.columns[:12])
        raise InputError(f"manifest lacks column(s) {', '.join(missing)} (has: {shown})",
                         file=path, where="header, line 1",
                         fix="the header must be: patient_id,path,label,split")
    dup = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dup:
        raise InputError(f"manifest repeats column(s) {', '.join(dup)}", file=path, where="header, line 1",
                         fix="name each column once")
    if "label" not in df.columns:
        df["label"] = ""
    if "split" not in df.columns:
        df["split"] = "train"
    df["split"] = df["split"].astype(str).str.strip().replace("", "train")
    df["line"] = np.arange(len(df)) + 2
    base = Path(root) if root is not None else path.parent
    # one summary per kind of problem, with counts and line numbers: the values themselves (image
    # paths named after patients, IDs) are never echoed (issue #16)
    empty_id, missing, resolved = [], [], []
    for line, pid, p in zip(df["line"], df["patient_id"], df["path"], strict=True):
        if not str(pid).strip():
            empty_id.append(int(line))
        q = Path(str(p).strip())
        q = q if q.is_absolute() else base / q
        resolved.append(str(q))
        if check_files and (not str(p).strip() or not _exists(q) or not q.is_file()):
            missing.append(int(line))
    text = df["label"].astype(str).str.strip()
    known = ~text.isin(["", "NA", "nan", "NaN", "N/A"])
    labels = pd.to_numeric(text.where(known), errors="coerce")
    with np.errstate(invalid="ignore"):
        ok = labels.notna() & np.isfinite(labels) & (labels % 1 == 0) & (labels.abs() <= _MAX_LABEL)
    bad_label = [int(v) for v in df.loc[known & ~ok, "line"]]
    problems = []
    if missing:
        problems.append(f"column 'path': {_n(missing, 'image file')} not found (looked in {str(base)[:120]}; "
                        f"{_lines(missing)})")
    if bad_label:
        problems.append(f"column 'label': {_n(bad_label, 'value')} not an integer class ({_lines(bad_label)})")
    if empty_id:
        problems.append(f"column 'patient_id': {_n(empty_id, 'empty patient ID')} ({_lines(empty_id)})")
    if problems:
        raise _one_line_error(problems, file=path,
                              fix="paths are relative to the manifest's folder (or --root); fix or drop these rows")
    df["path"] = resolved
    df["label"] = labels.where(known).astype("Int64")
    df["patient_id"] = df["patient_id"].astype(str).str.strip()
    return df


def _n(rows: list[int], what: str) -> str:
    return f"{len(rows)} {what}{'s are' if len(rows) != 1 else ' is'}"


def _lines(rows: list[int]) -> str:
    return f"line{'s' if len(rows) != 1 else ''} {format_rows(rows)}"


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

    Raises
    ------
    OptionError
        A bad ``size`` or ``volume_slice`` (before anything is read).
    InputError
        An unsupported or unreadable file (manifest images: the message names the manifest line).
    """
    path = Path(path)
    size = _check_size(size)
    if volume_slice not in ("middle", "mip"):
        raise OptionError(f"volume_slice must be 'middle' or 'mip', got {volume_slice!r}",
                          fix="pass volume_slice='middle' or 'mip'")
    if _suffix(path) == ".npz":
        iset = read_npz(path)
        if size is not None:
            for s, x in iset.images.items():
                if x.shape[2:] != tuple(size):
                    iset.images[s] = np.stack([np.stack([resize(c, size) for c in im]) for im in x])
    elif _suffix(path) in (".csv", ".tsv", ".txt"):
        man = read_manifest(path, root=root)
        if man.empty:
            raise InputError("the manifest lists no image", file=path,
                             fix="add one row per image: patient_id,path,label,split")
        images, labels, ids, paths, lines = {}, {}, {}, {}, {}
        for s, d in man.groupby("split", sort=False):
            arrs = []
            for line, p in zip(d["line"], d["path"], strict=True):
                try:
                    a = _manifest_image(Path(p), volume_slice)
                except InputError as e:
                    # the manifest and line locate the image; its path (often named after the
                    # patient) stays out of the message
                    msg = e.message.replace(str(p), "the image").replace(Path(p).name, "the image")
                    raise InputError(msg, file=path, where=f"line {line}, column 'path'", fix=e.fix) from e
                if size is None:
                    size = a.shape
                arrs.append(resize(a, size)[None])
            images[s] = np.stack(arrs).astype(np.float32)
            labels[s] = d["label"].fillna(-1).to_numpy(dtype=int)
            ids[s] = d["patient_id"].to_numpy(dtype=str)
            paths[s] = d["path"].to_numpy(dtype=str)
            lines[s] = d["line"].to_numpy(dtype=int)
        iset = ImageSet(images, labels, ids, paths, source=str(path), lines=lines, where="line")
    else:
        raise InputError(f"unsupported dataset format {path.suffix!r}", file=path,
                         fix="pass a MedMNIST-style .npz or a manifest .csv (patient_id,path,label,split)")
    if splits is not None:
        for s in splits:
            iset.split(s)  # raises naming the splits present
        for d in (iset.images, iset.labels, iset.ids, iset.paths, iset.lines):
            for k in [k for k in d if k not in splits]:
                del d[k]
    return iset


def _manifest_image(path: Path, volume_slice: str) -> np.ndarray:
    suf = _suffix(path)
    if suf in DICOM_SUFFIXES or suf == "":
        img = read_dicom(path)
        wc, ww = img.meta.get("window_center"), img.meta.get("window_width")
        windowed = wc is not None and ww is not None and np.isfinite(wc) and ww >= 1 and np.isfinite(ww)
        if windowed:  # the file's own window, applied before any MONOCHROME1 inversion
            img = read_dicom(path, window="dicom")
        a = to_2d(np.asarray(img.pixels, dtype=np.float32), volume_slice=volume_slice,
                  channels_last=img.meta["samples_per_pixel"] > 1)
        return a if windowed else _minmax(a)
    return _minmax(read_image(path, volume_slice=volume_slice))
