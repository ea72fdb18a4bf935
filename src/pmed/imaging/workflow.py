"""File-to-file workflows behind ``pmed imaging train | predict | explain | embed``.

Each function reads an ``.npz`` or manifest, calls the Python API and writes its outputs
atomically; the CLI only parses options and prints the returned summary.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import InputError, OptionError

__all__ = ["train_from_file", "predict_from_file", "explain_from_file", "embed_from_file", "model_size"]


def _size(size: int | None) -> tuple[int, int] | None:
    return None if size is None else (int(size), int(size))


def model_size(model_dir: str | Path) -> tuple[int, int]:
    """The (H, W) a saved model was trained on (read from its ``config.json``)."""
    from pmed.errors import BundleError

    cfg = Path(model_dir) / "config.json"
    if not cfg.exists():
        raise BundleError("config.json not found in the model folder", file=model_dir,
                          fix="pass the folder written by `pmed imaging train --out`")
    try:
        shape = json.loads(cfg.read_text(encoding="utf-8"))["image_shape"]
        return int(shape[1]), int(shape[2])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise BundleError(f"config.json is damaged ({type(e).__name__}: no usable image_shape)", file=cfg,
                          fix="retrain with `pmed imaging train`, or restore the model folder") from e


def train_from_file(
    data: str | Path,
    out: str | Path,
    *,
    arch: str = "resnet18",
    width: float = 1.0,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    patience: int | None = 8,
    size: int | None = None,
    augment: bool = True,
    class_weight: str | None = None,
    seed: int = 0,
    device: str | None = None,
    resume: bool = False,
    train_split: str = "train",
    val_split: str | None = "val",
    evaluate: bool = True,
    n_boot: int = 500,
    progress=None,
    root: str | Path | None = None,
    n_jobs: int | None = None,
) -> dict[str, Any]:
    """Train a classifier on a dataset file and write the model folder.

    A thin wrapper: :func:`pmed.imaging.api.run_imaging` (with ``checkpoint_dir=out``) then
    :meth:`~pmed.imaging.api.ImagingResult.write`. Writes into ``out``: ``model.pt`` +
    ``config.json`` (the model), ``checkpoint.pt`` (for ``resume``), ``history.csv`` and
    ``plots/training_curves.png``; with a labelled validation split, ``val_predictions.csv`` and
    ``evaluation/`` (``metrics.json``, curves, plots, ``report.html``: the files of
    ``pmed evaluate``); ``embedding.csv`` (block ``image_embedding``) and ``provenance.json``.

    Returns
    -------
    dict
        :meth:`ImagingResult.summary() <pmed.imaging.api.ImagingResult.summary>` (``n_train``,
        ``n_val``, ``best_epoch``, ``epochs_run``, ``train_time_s``, ``device``, ``val_auroc``
        with ``ci_low``/``ci_high`` and ``val_accuracy`` when evaluated …) and ``paths``.
    """
    from pmed.imaging.api import run_imaging
    from pmed.study.bundle import SUMS_NAME

    out = Path(out)
    # a model already in `out` stops being loadable now: should this training fail, `imaging
    # predict` must refuse the folder, not silently use the model of an earlier run
    (out / SUMS_NAME).unlink(missing_ok=True)
    res = run_imaging(data, arch=arch, width=width, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                      size=size, augment=augment, class_weight=class_weight, device=device,
                      train_split=train_split, val_split=val_split, evaluate=evaluate, n_boot=n_boot, root=root,
                      checkpoint_dir=out, resume=resume, seed=seed, n_jobs=n_jobs, progress=progress)
    paths = res.write(out)
    summary = res.summary()
    summary["paths"] = paths
    return summary


def predict_from_file(
    model: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    split: str = "test",
    device: str | None = None,
    batch_size: int | None = None,
    root: str | Path | None = None,
) -> pd.DataFrame:
    """Predict one split of a dataset with a saved model and write the table to ``out``.

    Returns
    -------
    pandas.DataFrame
        One row per image (see :func:`pmed.imaging.evaluation.predictions_table`).
    """
    from pmed.imaging.evaluation import predictions_table
    from pmed.imaging.readers import load_dataset
    from pmed.imaging.train import ImageClassifier
    from pmed.io import write_table

    clf = ImageClassifier.load(model, device=device)
    iset = load_dataset(data, size=model_size(model), root=root)
    X, y, ids = iset.split(split)
    pred = predictions_table(clf, X, ids=ids, labels=y if (y >= 0).any() else None, paths=iset.paths[split],
                             split=split, batch_size=batch_size)
    write_table(pred, out, index=False)
    return pred


def explain_from_file(
    model: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    split: str = "val",
    ids: Sequence[str] | None = None,
    n: int = 8,
    method: str = "gradcam",
    device: str | None = None,
    root: str | Path | None = None,
) -> list[Path]:
    """Heat-map PNGs for chosen images (``ids``) or the first ``n`` of a split.

    Returns
    -------
    list of pathlib.Path
        The PNGs written into ``out``.
    """
    from pmed.imaging.explain import save_heatmaps
    from pmed.imaging.readers import load_dataset
    from pmed.imaging.train import ImageClassifier

    if method not in ("gradcam", "occlusion"):  # refused before the model and data are read
        raise OptionError(f"method must be 'gradcam' or 'occlusion', got {str(method)[:40]!r}",
                          fix="pass method='gradcam' (CLI: --method gradcam|occlusion)")
    clf = ImageClassifier.load(model, device=device)
    iset = load_dataset(data, size=model_size(model), root=root)
    X, y, all_ids = iset.split(split)
    if ids:
        want = [str(i) for i in ids]
        missing = [i for i in want if i not in set(all_ids.tolist())]
        if missing:
            raise InputError(f"ID(s) {', '.join(missing[:5])} not in split {split!r}", file=data,
                             fix=f"IDs look like {', '.join(all_ids[:3].tolist())}")
        idx = np.flatnonzero(np.isin(all_ids, want))
    else:
        idx = np.arange(min(n, len(X)))
    return save_heatmaps(clf, X[idx], out, ids=all_ids[idx].tolist(), labels=y[idx], method=method)


def embed_from_file(
    model: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    splits: Sequence[str] | None = None,
    n_components: int | None = None,
    device: str | None = None,
    root: str | Path | None = None,
) -> pd.DataFrame:
    """Per-patient embeddings of the images of ``splits`` (default all), written to ``out``.

    The table has a ``patient_id`` column and is what ``Cohort.add_block("image_embedding",
    ...)`` (or a study's block file) takes.
    """
    from pmed.imaging.embeddings import image_embeddings
    from pmed.imaging.readers import load_dataset
    from pmed.imaging.train import ImageClassifier
    from pmed.io import write_table

    clf = ImageClassifier.load(model, device=device)
    iset = load_dataset(data, size=model_size(model), root=root, splits=splits)
    X = np.concatenate([iset.images[s] for s in iset.splits])
    ids = np.concatenate([iset.ids[s] for s in iset.splits])
    emb = image_embeddings(clf, X, ids, n_components=n_components)
    write_table(emb.reset_index(), out, index=False)
    return emb
