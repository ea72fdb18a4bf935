"""Image embeddings as a patient-indexed Cohort block (``image_embedding``).

The penultimate layer of a trained :class:`~pmed.imaging.train.ImageClassifier` summarises
each image in ``n_features`` numbers; :func:`image_embeddings` averages them over each
patient's images so that they can sit next to clinical and genomic features in a
:class:`~pmed.cohort.Cohort` (:func:`add_image_block`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import InputError, OptionError

__all__ = ["image_embeddings", "add_image_block", "BLOCK_NAME"]

BLOCK_NAME = "image_embedding"


def image_embeddings(
    clf,
    images: np.ndarray,
    ids: Sequence[str],
    *,
    prefix: str = "img_emb_",
    aggregate: str = "mean",
    n_components: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-patient embedding table.

    Parameters
    ----------
    clf
        A fitted :class:`~pmed.imaging.train.ImageClassifier`.
    images
        ``(N, C, H, W)`` images.
    ids
        Patient ID of each image (several images per patient are aggregated).
    prefix
        Column name prefix (``img_emb_000``, ...).
    aggregate
        ``"mean"`` or ``"max"`` over a patient's images.
    n_components
        Reduce to this many principal components (fitted on these images) — useful when the
        embedding (512 for ResNet-18) is wide next to a small cohort.
    seed
        Seed of the PCA solver.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``patient_id`` (str), one float column per embedding dimension.
    """
    ids = np.asarray(ids, dtype=str)
    if len(ids) != len(images):
        raise InputError(f"{len(ids)} IDs for {len(images)} images", fix="pass one patient ID per image")
    if aggregate not in ("mean", "max"):
        raise OptionError(f"aggregate must be 'mean' or 'max', got {str(aggregate)[:40]!r}",
                          fix="pass aggregate='mean'")
    z = clf.embed(images)
    if n_components is not None:
        from sklearn.decomposition import PCA

        z = PCA(n_components=min(n_components, z.shape[1], len(z)), random_state=seed).fit_transform(z)
    width = max(3, len(str(z.shape[1] - 1)))
    df = pd.DataFrame(z, columns=[f"{prefix}{i:0{width}d}" for i in range(z.shape[1])])
    df.index = pd.Index(ids, name="patient_id")
    out = df.groupby(level=0, sort=False).agg(aggregate)
    out.index.name = "patient_id"
    return out.astype(float)


def add_image_block(
    cohort,
    embeddings: pd.DataFrame,
    *,
    provenance: Mapping[str, Any] | None = None,
    allow_missing: bool = False,
):
    """Attach an embedding table to ``cohort`` as block ``image_embedding``; returns the cohort.

    Kept for existing code: ``cohort.add_block("image_embedding", run_imaging(...).to_block())``
    does the same from a :func:`pmed.imaging.run_imaging` result.
    """
    from pmed.cohort import Block

    prov = {"domain": "imaging", "modality": "imaging", "kind": "cnn_penultimate_layer",
            "n_features": int(embeddings.shape[1]), **(provenance or {})}
    return cohort.add_block(BLOCK_NAME, Block(embeddings, prov), allow_missing=allow_missing)
