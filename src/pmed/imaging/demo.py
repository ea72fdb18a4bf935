"""The imaging part of ``pmed demo``: lesion images for the synthetic cohort → CNN → embeddings.

:func:`imaging_demo` draws one image per cohort patient whose lesion is more frequent in
patients with the disease (so the image carries real but imperfect signal), trains a compact CNN
for about a minute on a *separate* reference set labelled by the lesion itself (never on the
cohort's outcome, so the embedding cannot leak it into the disease model's cross-validation),
and writes the per-patient embedding that a study lists as block ``image_embedding``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["imaging_demo"]


def imaging_demo(
    ids: Sequence[str],
    outcome: Sequence[int] | np.ndarray,
    out: str | Path,
    *,
    p_lesion: tuple[float, float] = (0.25, 0.75),
    size: int = 32,
    n_reference: int = 600,
    epochs: int = 12,
    n_components: int = 8,
    n_heatmaps: int = 4,
    seed: int = 0,
    device: str | None = None,
) -> dict[str, Any]:
    """Make the demo's imaging block.

    Parameters
    ----------
    ids, outcome
        The cohort's patient IDs and binary disease outcome.
    out
        Folder for ``images/`` (one PNG per patient), ``manifest.csv``, ``model/`` (the lesion
        CNN with its evaluation), ``heatmaps/`` and ``embedding.csv`` (the block).
    p_lesion
        Probability of a lesion without and with the disease.
    size
        Image side in pixels.
    n_reference, epochs
        Size of the lesion-labelled reference set (80 % train, 20 % validation) and the CNN's
        epoch budget (about a minute on 2 CPU cores).
    n_components
        Principal components of the embedding kept as features.
    n_heatmaps
        Grad-CAM PNGs written for the first cohort patients with a lesion.
    seed
        Seed of the images, the CNN and the PCA.

    Returns
    -------
    dict
        ``embedding`` (DataFrame indexed by ``patient_id``), ``lesion_auroc`` (the CNN on the
        reference validation images), ``paths``, ``train_time_s``.
    """
    from pmed.imaging.embeddings import image_embeddings
    from pmed.imaging.explain import save_heatmaps
    from pmed.imaging.synthetic import make_lesion_images, write_lesion_manifest
    from pmed.imaging.train import ImageClassifier
    from pmed.io import write_table

    out = Path(out)
    ids = [str(i) for i in ids]
    y = np.asarray(outcome, dtype=int)
    rng = np.random.default_rng(seed)
    lesion = (rng.random(len(y)) < np.where(y == 1, p_lesion[1], p_lesion[0])).astype(int)
    X, lesion, meta = make_lesion_images(labels=lesion, ids=ids, size=size, contrast=0.25, seed=seed + 1)
    manifest = write_lesion_manifest(out, X, lesion, ids, splits=["cohort"] * len(ids))

    Xr, yr, _ = make_lesion_images(n_reference, size=size, contrast=0.25, seed=seed + 2)
    n_tr = int(0.8 * n_reference)
    # class_weight spelled out: the demo's numbers were made with balanced weights
    clf = ImageClassifier(arch="cnn", max_epochs=epochs, batch_size=32, lr=2e-3, patience=4, random_state=seed,
                          class_weight="balanced", device=device or "auto", checkpoint_dir=out / "model")
    clf.fit(Xr[:n_tr], yr[:n_tr], X_val=Xr[n_tr:], y_val=yr[n_tr:])
    clf.save(out / "model", extra={"data": {"source": "synthetic lesion reference set", "n_train": n_tr,
                                            "n_val": n_reference - n_tr}})
    emb = image_embeddings(clf, X, ids, n_components=n_components, seed=seed)
    paths = {"manifest": out / "manifest.csv", "model": out / "model",
             "embedding": write_table(emb.reset_index(), out / "embedding.csv", index=False)}
    first = np.flatnonzero(lesion == 1)[:n_heatmaps]
    paths["heatmaps"] = save_heatmaps(clf, X[first], out / "heatmaps", ids=[ids[i] for i in first],
                                      labels=lesion[first]) if len(first) else []
    return {"embedding": emb, "lesion_auroc": float(clf.best_score_), "train_time_s": clf.train_time_s_,
            "paths": paths, "manifest": manifest, "truth": meta}


