"""Images as a fusion modality: one grey image per patient, as a block of pixel columns.

A study's ``fusion: {modalities: {scan: {images: MANIFEST|NPZ, size: 28}}}`` reads the images
(a manifest CSV/TSV of ``patient_id, path`` or a MedMNIST-style ``.npz``, through
:func:`pmed.imaging.readers.load_dataset`), makes each grey, resizes it to ``size`` × ``size``
and scales it to [0, 1], and gives the cohort a block whose columns are the pixels
(``px|row|col``, :func:`pmed.fusion.joint.pixel_column_names`). The joint network reads such a
modality with a CNN encoder; late fusion gives it a CNN of its own. A patient without an image
has all its pixel columns missing, like any absent modality.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import OptionError, PmedWarning, StudyError, ValidationError

__all__ = ["read_image_block", "is_image_modality", "check_image_ids"]

#: the largest side of an image modality: pixels become columns (and a CNN's input)
MAX_SIZE = 128


def read_image_block(path: str | Path, *, size: int = 28, id: str = "patient_id",
                     root: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """Read one image per patient into a table of pixel columns.

    Parameters
    ----------
    path
        A manifest (``.csv``/``.tsv``: ``patient_id``, ``path``; relative paths against the
        manifest's folder or ``root``) or a MedMNIST-style ``.npz`` (IDs ``<split>_<index>``).
    size
        Side of the square grey image every image is resized to.
    id
        Name of the table's index (the cohort's ID column).
    root
        Folder of relative manifest paths.

    Returns
    -------
    (pandas.DataFrame, dict)
        Patients × ``size * size`` float32 pixel columns in [0, 1], indexed by patient ID; and
        the provenance (``source``, ``n_images``, ``size``).

    Raises
    ------
    OptionError
        A size outside 8–128.
    InputError
        A file that cannot be read (from :mod:`pmed.imaging.readers`, naming the file and line).
    ValidationError
        A patient with two images (the lines are named, never the IDs).
    """
    from pmed.fusion.joint import pixel_column_names
    from pmed.imaging.readers import load_dataset

    if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= MAX_SIZE:
        raise OptionError(f"image size must be an integer from 8 to {MAX_SIZE}, got {size!r}",
                          where="size", fix="give e.g. size: 28 (pixels per side)")
    iset = load_dataset(path, size=(size, size), root=root)
    ids = np.concatenate([np.asarray(iset.ids[s]).astype(str) for s in iset.images])
    images = np.concatenate([iset.images[s].mean(axis=1) for s in iset.images])  # grey: mean of channels
    dup = pd.Index(ids).duplicated(keep=False)
    if dup.any():
        lines = np.concatenate([np.asarray(iset.lines.get(s, np.arange(len(iset.ids[s])))) for s in iset.images])
        where = "lines" if iset.where == "line" else "indices"
        raise ValidationError(
            [f"{int(pd.Index(ids[dup]).nunique())} patients have several images ({where} "
             f"{', '.join(map(str, lines[dup][:10]))}{' …' if dup.sum() > 10 else ''})"],
            file=str(path), fix="keep one image per patient for a fusion modality (e.g. the baseline scan)")
    table = pd.DataFrame(images.reshape(len(ids), size * size).astype(np.float32),
                         index=pd.Index(ids, name=id), columns=pixel_column_names(size, size))
    return table, {"source": str(path), "n_images": int(len(ids)), "size": size}


def is_image_modality(columns) -> bool:
    """Whether a modality's columns are pixel columns (``px|row|col``)."""
    from pmed.fusion.joint import PIXEL_PREFIX

    cols = list(columns)
    return bool(cols) and all(str(c).startswith(PIXEL_PREFIX) for c in cols)


def check_image_ids(name: str, table: pd.DataFrame, ids: pd.Index, *, source: str | None = None) -> None:
    """Refuse images none of whose IDs are the cohort's; warn (by counts) of cohort patients
    without an image and of images of patients outside the cohort."""
    have = table.index.isin(ids)
    if not have.any():
        raise StudyError(f"fusion modality {name!r}: none of the {len(table)} images belongs to a patient "
                         f"of the cohort ({len(ids)} patients): the IDs do not match",
                         file=source, where=f"key fusion.modalities.{name}.images",
                         fix="use the patient IDs of the patient table in the manifest's patient_id column")
    n_out = int((~have).sum())
    n_without = int((~ids.isin(table.index)).sum())
    if n_out or n_without:
        warnings.warn(f"fusion modality {name!r}: {n_without} of {len(ids)} patients have no image (the "
                      f"modality is missing for them); {n_out} images belong to no patient of the cohort "
                      "and are ignored", PmedWarning, stacklevel=2)
