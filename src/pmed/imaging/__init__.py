"""Medical imaging: readers → augmentation → CNNs → evaluation, heat maps and embeddings.

- :func:`run_imaging` (:mod:`pmed.imaging.api`): the domain's entry point — train a CNN on an
  ``.npz`` or manifest, evaluate it and embed every patient → :class:`ImagingResult`
  (``.to_block()`` is the Cohort block ``image_embedding``, ``.write(out)`` the model folder).
- :mod:`pmed.imaging.readers`: DICOM files and series (pydicom; rescale, windowing,
  orientation and spacing), NIfTI (nibabel), PNG/JPEG (Pillow), MedMNIST ``.npz`` and
  manifest CSVs (``patient_id, path, label, split``) → :class:`ImageSet`.
- :mod:`pmed.imaging.transforms`: seeded MONAI augmentation for the training split.
- :mod:`pmed.imaging.models` / :mod:`pmed.imaging.train`: MONAI ResNet-18 and a compact CNN;
  :class:`ImageClassifier` (early stopping, class weights, resumable checkpoints, GPU when
  present, batch inference).
- :mod:`pmed.imaging.evaluation`: predictions tables and pmed's evaluation engine.
- :mod:`pmed.imaging.explain`: Grad-CAM and occlusion heat maps as PNG overlays.
- :mod:`pmed.imaging.embeddings`: penultimate-layer features as the Cohort block
  ``image_embedding``.
- :mod:`pmed.imaging.deid`: DICOM basic-profile de-identification with a separate mapping.
- :mod:`pmed.imaging.synthetic`: synthetic lesion images for tests and the demo.

Only the readers and the synthetic generator load without PyTorch; the rest import torch and
MONAI when first used (``pip install 'pmed[imaging]'``).
"""

from __future__ import annotations

import importlib

from pmed.imaging.readers import (
    Image,
    ImageSet,
    Volume,
    apply_window,
    load_dataset,
    read_dicom,
    read_dicom_series,
    read_image,
    read_manifest,
    read_nifti,
    read_npz,
    read_raster,
)
from pmed.imaging.synthetic import make_lesion_images, write_lesion_manifest

__all__ = [
    "Image",
    "ImageSet",
    "Volume",
    "apply_window",
    "load_dataset",
    "read_dicom",
    "read_dicom_series",
    "read_image",
    "read_manifest",
    "read_nifti",
    "read_npz",
    "read_raster",
    "make_lesion_images",
    "write_lesion_manifest",
    # loaded on first use (need torch / MONAI / pydicom)
    "run_imaging",
    "ImagingResult",
    "AugmentConfig",
    "Augmenter",
    "ImageClassifier",
    "build_model",
    "predictions_table",
    "evaluate_images",
    "grad_cam",
    "occlusion",
    "save_heatmaps",
    "image_embeddings",
    "add_image_block",
    "deidentify",
]

_LAZY = {
    "run_imaging": "pmed.imaging.api",
    "ImagingResult": "pmed.imaging.api",
    "AugmentConfig": "pmed.imaging.transforms",
    "Augmenter": "pmed.imaging.transforms",
    "ImageClassifier": "pmed.imaging.train",
    "build_model": "pmed.imaging.models",
    "predictions_table": "pmed.imaging.evaluation",
    "evaluate_images": "pmed.imaging.evaluation",
    "grad_cam": "pmed.imaging.explain",
    "occlusion": "pmed.imaging.explain",
    "save_heatmaps": "pmed.imaging.explain",
    "image_embeddings": "pmed.imaging.embeddings",
    "add_image_block": "pmed.imaging.embeddings",
    "deidentify": "pmed.imaging.deid",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pmed.imaging' has no attribute {name!r}")
