"""The ``cnn`` family of a study: an image classifier fed by a column of image paths.

A study gives each patient's image as a path in one feature column (a patient-table column or
a block column). The rule that finds it (:func:`find_image_column`): the estimator's
``image_column`` when given; else a column called ``image``; else the single column whose name
ends in ``_path`` (or is ``path``); else the single column whose values are all paths of
existing image files (DICOM, NIfTI, PNG/JPEG/BMP/TIFF). Relative paths are resolved against
``root`` (default: the current working directory).

:class:`ImagePathClassifier` is a :class:`pmed.imaging.train.ImageClassifier` that takes such
a table: it reads every image with :func:`pmed.imaging.readers.read_image` (the format follows
the suffix; volumes give their middle slice), makes it grey, resizes it to ``size`` and scales
it to ``[0, 1]``, then trains or predicts. The other columns of the table are ignored. Its
fitted network is kept as numpy arrays when pickled, so that a pmed bundle (skops) stores it.

This module imports :mod:`pmed.imaging.train` (not PyTorch itself); the registry imports it
only when a ``cnn`` model is built, so ``import pmed.models`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import InputError, StudyError
from pmed.imaging.readers._base import (
    DICOM_SUFFIXES,
    NIFTI_SUFFIXES,
    RASTER_SUFFIXES,
    _check_size,
    _exists,
    _minmax,
    _suffix,
)
from pmed.imaging.train import ImageClassifier
from pmed.imaging.transforms import AugmentConfig

__all__ = ["ImagePathClassifier", "find_image_column", "load_image_column"]

_IMAGE_SUFFIXES = (*RASTER_SUFFIXES, *NIFTI_SUFFIXES, *DICOM_SUFFIXES)
_FIX_COLUMN = ("give each patient's image path in a column named 'image' (or '<name>_path'), or name "
               "it with params: {image_column: NAME}")


def _resolve(value: Any, root: str | Path | None) -> Path:
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() or root is None else Path(root) / p


def _looks_like_images(s: pd.Series, root: str | Path | None) -> bool:
    vals = s.dropna()
    if len(vals) == 0 or pd.api.types.is_numeric_dtype(vals.dtype):
        return False
    vals = vals.astype(str)
    if not vals.map(lambda v: _suffix(Path(v)) in _IMAGE_SUFFIXES).all():
        return False
    return bool(vals.map(lambda v: _exists(_resolve(v, root))).all())


def find_image_column(X: pd.DataFrame, image_column: str | None = None, *,
                      root: str | Path | None = None) -> str:
    """The column of ``X`` that holds the image paths (see the module docstring for the rule).

    Raises
    ------
    StudyError
        When ``image_column`` is not a column of ``X``, or no single column qualifies.
    """
    cols = [str(c) for c in X.columns]
    if image_column is not None:
        if image_column not in cols:
            raise StudyError(f"model family 'cnn': image_column {image_column!r} is not among the features",
                             where="key models[].params.image_column",
                             fix="name a column of the patient table or of a block that holds image paths")
        return image_column
    if "image" in cols:
        return "image"
    named = [c for c in cols if c == "path" or c.lower().endswith("_path")]
    if len(named) == 1:
        return named[0]
    candidates = named or cols
    found = [c for c in candidates if _looks_like_images(X[c], root)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise StudyError(f"model family 'cnn': {len(found)} columns hold image paths "
                         f"({', '.join(found[:5])}); which one is meant is ambiguous",
                         where="key models[].params.image_column",
                         fix="name it with params: {image_column: NAME}")
    raise StudyError("model family 'cnn' trains on images and needs a column of image file paths among "
                     "the features; none was found", where="key models[].family", fix=_FIX_COLUMN)


def load_image_column(paths: pd.Series, *, size: int | tuple[int, int] = 64, root: str | Path | None = None,
                      volume_slice: str = "middle") -> np.ndarray:
    """Read the images named in ``paths`` into one ``(N, 1, H, W)`` float32 array in ``[0, 1]``.

    Each image is read by suffix (:func:`pmed.imaging.readers.read_image`), made grey, resized
    to ``size`` and min-max scaled on its own.

    Raises
    ------
    InputError
        Rows without a path, paths that do not exist (counted, never listed: they may hold
        patient IDs), or an unreadable image (naming the file).
    """
    from pmed.imaging.readers import read_image, resize

    hw = _check_size(size)
    column = str(paths.name) if paths.name is not None else "image"
    missing = paths.isna().to_numpy()
    if missing.any():
        raise InputError(f"column {column!r}: {int(missing.sum())} of {len(paths)} rows have no image path",
                         fix="give every patient an image, or leave out those without one")
    files = [_resolve(v, root) for v in paths.astype(str)]
    absent = [i for i, f in enumerate(files) if not _exists(f) or not f.is_file()]
    if absent:
        where = f" (relative paths are resolved against {Path(root) if root is not None else 'the working folder'})"
        raise InputError(f"column {column!r}: {len(absent)} of {len(files)} image paths do not exist"
                         f" (first at row {absent[0] + 1}){where}",
                         fix="check the paths, or set params: {root: FOLDER} for relative ones")
    out = np.empty((len(files), 1, *hw), dtype=np.float32)
    for i, f in enumerate(files):
        out[i, 0] = resize(_minmax(read_image(f, volume_slice=volume_slice)), hw)
    return out


class ImagePathClassifier(ImageClassifier):
    """:class:`~pmed.imaging.train.ImageClassifier` on a table with a column of image paths.

    Parameters
    ----------
    image_column
        The column holding the image paths (default: found by :func:`find_image_column`).
    size
        Every image is resized to this (an int: square), grey, scaled to ``[0, 1]``.
    root
        Folder against which relative paths are resolved (default: the working folder).
    volume_slice
        For volumes: ``"middle"`` slice or ``"mip"`` (maximum intensity projection).
    arch
        ``"cnn"`` (compact CNN, the default here) or ``"resnet18"``.
    width, max_epochs, batch_size, lr, weight_decay, patience, monitor, class_weight, augment, \
validation_fraction, device, random_state, n_jobs, checkpoint_dir, progress, dropout, epochs, seed
        As for :class:`~pmed.imaging.train.ImageClassifier` (``class_weight=None`` by default).

    Attributes
    ----------
    image_column_ : str
        The column the images were read from.
    """

    def __init__(
        self,
        *,
        image_column: str | None = None,
        size: int | tuple[int, int] = 64,
        root: str | None = None,
        volume_slice: str = "middle",
        arch: str = "cnn",
        width: float = 1.0,
        max_epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        patience: int | None = 8,
        monitor: str = "auroc",
        class_weight: str | dict | None = None,
        augment: bool | AugmentConfig | dict = True,
        validation_fraction: float = 0.0,
        device: str | None = "auto",
        random_state: int = 0,
        n_jobs: int | None = None,
        checkpoint_dir: str | Path | None = None,
        progress: Any = False,
        dropout: float = 0.2,
        epochs: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(arch=arch, width=width, max_epochs=max_epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, patience=patience, monitor=monitor,
                         class_weight=class_weight, augment=augment, validation_fraction=validation_fraction,
                         device=device, random_state=random_state, n_jobs=n_jobs, checkpoint_dir=checkpoint_dir,
                         progress=progress, dropout=dropout, epochs=epochs, seed=seed)
        self.image_column = image_column
        self.size = size
        self.root = root
        self.volume_slice = volume_slice

    def _images(self, X, column: str) -> np.ndarray:
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(np.asarray(X, dtype=object).reshape(len(X), -1))
            X.columns = [str(c) for c in X.columns]
        if column not in X.columns:
            raise InputError(f"the image column {column!r} is missing from the table",
                             fix="provide the column of image paths the model was trained with")
        s = X[column]
        s = s.astype("object").where(s.notna(), None)
        return load_image_column(s.rename(column), size=self.size, root=self.root,
                                 volume_slice=self.volume_slice)

    def fit(self, X, y, **kwargs) -> ImagePathClassifier:
        """Read the images named in ``X`` and train on them (see ``ImageClassifier.fit``)."""
        if isinstance(X, pd.DataFrame):
            column = find_image_column(X, self.image_column, root=self.root)
        else:
            column = self.image_column or "0"
        images = self._images(X, column)
        augment = self.augment
        if isinstance(augment, dict):  # a study's YAML gives the augmentation as a mapping
            self.augment = AugmentConfig(**augment)
        try:
            super().fit(images, np.asarray(y), **kwargs)
        finally:
            self.augment = augment  # the parameter stays as given (scikit-learn's clone relies on it)
        self.image_column_ = column
        return self

    def predict_proba(self, X, *, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities of the images named in ``X``."""
        self._check_fitted()
        return super().predict_proba(self._images(X, self.image_column_), batch_size=batch_size)

    def predict(self, X, *, batch_size: int | None = None) -> np.ndarray:
        """Most probable class of each image named in ``X``."""
        return self.classes_[self.predict_proba(X, batch_size=batch_size).argmax(1)]

    def embed(self, X, *, batch_size: int | None = None) -> np.ndarray:
        """Penultimate-layer activations of the images named in ``X``."""
        self._check_fitted()
        return super().embed(self._images(X, self.image_column_), batch_size=batch_size)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        # skops (pmed's bundle format) stores numpy arrays and plain values, not PyTorch modules:
        # keep the weights as arrays and rebuild the network on loading, on the CPU
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        state.pop("device_", None)
        if model is not None:
            state["_model_weights"] = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
        if isinstance(state.get("history_"), pd.DataFrame):
            state["history_"] = state["history_"].to_dict(orient="list")
        if isinstance(state.get("augment"), AugmentConfig):
            state["augment"] = state["augment"].to_dict()
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        weights = state.pop("_model_weights", None)
        if isinstance(state.get("history_"), dict):
            state["history_"] = pd.DataFrame(state["history_"])
        super().__setstate__(state)
        if weights is not None:
            import torch

            from pmed.imaging.models import build_model

            model = build_model(self.arch, in_channels=int(self.image_shape_[0]), n_classes=len(self.classes_),
                                width=self.width, mean=self.norm_["mean"], std=self.norm_["std"],
                                dropout=self.dropout)
            model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
            self.model_ = model.eval()
            self.device_ = torch.device("cpu")
