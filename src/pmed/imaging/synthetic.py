"""Synthetic lesion images: bright blobs on a textured background, for tests and the demo.

The label is carried by the lesion, so a CNN must find it: positive images hold one bright,
roughly round lesion of random position and size; negative images hold either nothing or a
faint, elongated "vessel-like" structure of similar area, on the same smooth texture and noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pmed.errors import InputError

__all__ = ["make_lesion_images", "write_lesion_manifest"]


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    t = gaussian_filter(rng.normal(size=(size, size)), sigma=size / 10)
    t = (t - t.min()) / (np.ptp(t) + 1e-9)
    return 0.25 + 0.25 * t


def make_lesion_images(
    n: int = 200,
    *,
    size: int = 32,
    prevalence: float = 0.5,
    labels: Sequence[int] | np.ndarray | None = None,
    ids: Sequence[str] | None = None,
    contrast: float = 0.35,
    noise: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Make grey-level images whose label is the presence of a bright round lesion.

    Parameters
    ----------
    n
        Number of images (ignored when ``labels`` is given).
    size
        Side in pixels (≥ 16).
    prevalence
        Fraction of positive images when ``labels`` is not given.
    labels
        Labels to draw images for (e.g. a synthetic cohort's outcome), 0/1 each.
    ids
        Patient IDs of the images (default ``"img0001"``, ...).
    contrast
        Lesion brightness above the background: smaller is harder.
    noise
        Standard deviation of the Gaussian pixel noise.
    seed
        Seed of everything random.

    Returns
    -------
    images : numpy.ndarray
        ``(n, 1, size, size)`` float32 in ``[0, 1]``.
    labels : numpy.ndarray
        ``(n,)`` int, 1 = lesion present.
    meta : pandas.DataFrame
        Indexed by ``patient_id``: ``label``, ``lesion_row``, ``lesion_col``, ``lesion_radius``
        (NaN for negatives): the ground truth a heat map should point at.
    """
    if size < 16:
        raise InputError(f"size must be at least 16 pixels, got {size}", fix="pass size=16 or more")
    rng = np.random.default_rng(seed)
    if labels is None:
        y = (rng.random(n) < prevalence).astype(int)
    else:
        y = np.asarray(labels, dtype=int)
        if not np.isin(y, (0, 1)).all():
            raise InputError("labels must be 0/1", fix="pass a binary outcome")
        n = len(y)
    if ids is None:
        ids = [f"img{i + 1:04d}" for i in range(n)]
    elif len(ids) != n:
        raise InputError(f"{len(ids)} ids for {n} images", fix="pass one ID per image")
    rr, cc = np.mgrid[0:size, 0:size].astype(float)
    images = np.empty((n, 1, size, size), dtype=np.float32)
    rows = []
    for i in range(n):
        img = _texture(rng, size)
        r0, c0 = rng.uniform(0.25 * size, 0.75 * size, 2)
        radius = rng.uniform(0.08, 0.16) * size
        if y[i] == 1:
            blob = np.exp(-((rr - r0) ** 2 + (cc - c0) ** 2) / (2 * radius ** 2))
            img = img + contrast * blob
            rows.append((ids[i], 1, r0, c0, radius))
        else:
            if rng.random() < 0.5:  # a faint elongated distractor: shape, not brightness alone
                theta = rng.uniform(0, np.pi)
                u = (rr - r0) * np.cos(theta) + (cc - c0) * np.sin(theta)
                v = -(rr - r0) * np.sin(theta) + (cc - c0) * np.cos(theta)
                img = img + 0.4 * contrast * np.exp(-(u ** 2) / (2 * (2.5 * radius) ** 2)
                                                    - v ** 2 / (2 * (0.35 * radius) ** 2))
            rows.append((ids[i], 0, np.nan, np.nan, np.nan))
        img = img + rng.normal(0, noise, size=(size, size))
        images[i, 0] = np.clip(img, 0, 1)
    meta = pd.DataFrame(rows, columns=["patient_id", "label", "lesion_row", "lesion_col", "lesion_radius"])
    return images, y, meta.set_index("patient_id")


def write_lesion_manifest(
    folder,
    images: np.ndarray,
    labels: np.ndarray,
    ids: Sequence[str],
    *,
    splits: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Write images as 8-bit PNGs plus a ``manifest.csv`` (``patient_id, path, label, split``).

    Returns
    -------
    pandas.DataFrame
        The manifest written (paths relative to ``folder``).
    """
    from pathlib import Path

    from PIL import Image as PILImage

    from pmed.io import atomic_path, write_table

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    splits = list(splits) if splits is not None else ["train"] * len(ids)
    rows = []
    for img, lab, pid, s in zip(images, labels, ids, splits, strict=True):
        rel = f"images/{pid}.png"
        with atomic_path(folder / rel) as tmp:
            PILImage.fromarray(np.round(np.asarray(img)[0] * 255).astype(np.uint8)).save(tmp, format="PNG")
        rows.append((pid, rel, int(lab), s))
    man = pd.DataFrame(rows, columns=["patient_id", "path", "label", "split"])
    write_table(man, folder / "manifest.csv", index=False)
    return man
