"""File-to-file workflows behind ``pmed imaging train | predict | explain | embed``.

Each function reads an ``.npz`` or manifest, calls the Python API and writes its outputs
atomically; the CLI only parses options and prints the returned summary.

Before any image or model is read (issue #16) every option is checked (:class:`OptionError`)
and every output path too: an output folder (``train``, ``explain``) must be new, empty or an
earlier output of the same command, which is then replaced whole (staged beside it and swapped
in, so a failed run leaves the previous output and two runs never mix); no input (the data, the
manifest's images, the model folder) may lie inside it; an output table (``predict``, ``embed``)
must not be an input or lie inside the model folder, and is written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import InputError, OptionError, format_rows

__all__ = ["train_from_file", "predict_from_file", "explain_from_file", "embed_from_file", "model_size",
           "is_explain_output"]


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


def _check_images_outside(out: Path, data: Path, root) -> None:
    """Refuse an output folder holding images a manifest lists: it is replaced whole.

    Said with a count and the manifest lines: image names often carry the patient's ID.
    """
    from pmed.imaging.readers import read_manifest
    from pmed.imaging.readers._base import _suffix

    if _suffix(data) not in (".csv", ".tsv", ".txt") or not data.is_file():
        return
    man = read_manifest(data, root=root, check_files=False)
    inside = [int(line) for line, p in zip(man["line"], man["path"], strict=True) if _inside(Path(p), out)]
    if inside:
        raise InputError(f"{len(inside)} image file{'s' if len(inside) != 1 else ''} the manifest lists "
                         f"(line{'s' if len(inside) != 1 else ''} {format_rows(inside)}) lie inside the output "
                         "folder, which pmed replaces whole", file=out, fix="choose another output folder (--out)")


def _check_split(name, what: str = "split") -> None:
    if not isinstance(name, str) or not name.strip():
        raise OptionError(f"{what} must be a split name, got {str(name)[:40]!r}", fix="pass e.g. 'test'")


def _check_int(name: str, value, *, minimum: int, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise OptionError(f"{name} must be an integer >= {minimum}, got {str(value)[:40]!r}",
                          fix=f"pass {name}={max(minimum, 1)} or more")


def _inside(path: Path, folder: Path) -> bool:
    p, f = path.resolve(), folder.resolve()
    return p == f or f in p.parents


def _check_table_out(out: Path, model: Path, *inputs) -> None:
    """An output table: a table name, not an input, not inside the model folder (replaced whole)."""
    from pmed.io import check_not_input
    from pmed.io.tables import check_table_suffix

    if out.is_dir():
        raise InputError("the output path is a folder; a table file is written", file=out,
                         fix="name a file, e.g. predictions.csv")
    check_table_suffix(out)
    check_not_input(out, model, *inputs)
    if model.is_dir() and _inside(out, model):
        raise InputError("the output lies inside the model folder, which `imaging train` replaces whole",
                         file=out, fix="write the table outside the model folder (--out)")


def _check_folder_out(out: Path, model: Path, *inputs, owned, what: str) -> None:
    from pmed.io import check_output_folder

    if model.is_dir() and _inside(out, model):
        raise InputError("the output folder lies inside the model folder, which `imaging train` replaces whole",
                         file=out, fix="choose an output folder outside the model folder (--out)")
    check_output_folder(out, owned=owned, inputs=[model, *inputs], what=what)


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
    classes: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Train a classifier on a dataset file and write the model folder.

    A thin wrapper: :func:`pmed.imaging.api.run_imaging` then
    :meth:`~pmed.imaging.api.ImagingResult.write`. Writes into ``out``: ``model.pt`` +
    ``config.json`` (the model), ``checkpoint.pt`` (for ``resume``), ``history.csv`` and
    ``plots/training_curves.png``; with a labelled validation split, ``val_predictions.csv`` and
    ``evaluation/`` (``metrics.json``, curves, plots, ``report.html``: the files of
    ``pmed evaluate``); ``embedding.csv`` (block ``image_embedding``) and ``provenance.json``.

    ``out`` must be new, empty or an earlier training output (checked before any image is
    read); it is replaced whole when the run succeeds. While training, the checkpoint of every
    epoch is kept in ``out/.in-progress/``: a failed or killed run leaves the earlier output
    whole and loadable (and no model at all in a new folder), and ``resume`` continues from that
    checkpoint (or, after a finished run, from its ``checkpoint.pt``).

    Returns
    -------
    dict
        :meth:`ImagingResult.summary() <pmed.imaging.api.ImagingResult.summary>` (``n_train``,
        ``n_val``, ``best_epoch``, ``epochs_run``, ``train_time_s``, ``device``, ``val_auroc``
        with ``ci_low``/``ci_high`` and ``val_accuracy`` when evaluated …) and ``paths``.
    """
    import shutil

    from pmed.imaging.api import IN_PROGRESS, check_options, is_train_output, run_imaging
    from pmed.io import check_output_folder
    from pmed.models.torch_base import CHECKPOINT_NAME

    check_options(arch=arch, width=width, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                  size=size, class_weight=class_weight, n_boot=n_boot, n_components=None,
                  device=None if device is None else str(device), n_jobs=n_jobs, seed=seed,
                  train_split=train_split, val_split=val_split, embed_splits=None, classes=classes)
    out, data = Path(out), Path(data)
    _check_images_outside(out, data, root)
    check_output_folder(out, owned=is_train_output, inputs=[data, root], what="imaging training output")
    work = out / IN_PROGRESS
    if not resume:
        shutil.rmtree(work, ignore_errors=True)  # a fresh run: an interrupted one is abandoned
    elif not (work / CHECKPOINT_NAME).is_file() and (out / CHECKPOINT_NAME).is_file():
        work.mkdir(parents=True, exist_ok=True)  # resume a finished run (e.g. with more epochs)
        shutil.copy2(out / CHECKPOINT_NAME, work / CHECKPOINT_NAME)
    res = run_imaging(data, arch=arch, width=width, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                      size=size, augment=augment, class_weight=class_weight, device=device,
                      train_split=train_split, val_split=val_split, evaluate=evaluate, n_boot=n_boot, root=root,
                      checkpoint_dir=work, resume=resume, seed=seed, n_jobs=n_jobs, progress=progress,
                      classes=classes)
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

    ``out`` (``.csv``, ``.tsv`` or ``.parquet``) is written atomically; it may not be an input
    nor lie inside the model folder (both refused before the model is read).

    Returns
    -------
    pandas.DataFrame
        One row per image (see :func:`pmed.imaging.evaluation.predictions_table`).
    """
    from pmed.imaging.api import check_device
    from pmed.imaging.evaluation import predictions_table
    from pmed.imaging.readers import load_dataset
    from pmed.imaging.train import ImageClassifier
    from pmed.io import check_not_input, write_table

    _check_split(split)
    _check_int("batch_size", batch_size, minimum=1)
    check_device(device)
    model, data, out = Path(model), Path(data), Path(out)
    _check_table_out(out, model, data, root)
    clf = ImageClassifier.load(model, device=device)
    iset = load_dataset(data, size=model_size(model), root=root)
    X, y, ids = iset.split(split)
    check_not_input(out, *[p for p in iset.paths[split] if str(p)])  # npz images have no path
    pred = predictions_table(clf, X, ids=ids, labels=y if (y >= 0).any() else None, paths=iset.paths[split],
                             split=split, batch_size=batch_size)
    write_table(pred, out, index=False)
    return pred


#: Where ``explain`` says what it wrote (it recognises an earlier output of its own by it).
EXPLAIN_DOMAIN = "imaging.explain"


def is_explain_output(folder: str | Path) -> bool:
    """Whether ``folder`` holds an earlier ``pmed imaging explain`` output (replaced whole).

    Its ``provenance.json`` says so, or (an older pmed) it holds only ``*_gradcam.png`` /
    ``*_occlusion.png`` files.
    """
    import re

    folder = Path(folder)
    try:
        prov = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
        if isinstance(prov, dict) and prov.get("domain") == EXPLAIN_DOMAIN:
            return True
    except (OSError, ValueError):
        pass
    entries = list(folder.iterdir()) if folder.is_dir() else []
    return bool(entries) and all(p.is_file() and re.fullmatch(r".+_(gradcam|occlusion)\.png", p.name)
                                 for p in entries)


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

    ``out`` is a folder, replaced whole (it must be new, empty or an earlier ``explain``
    output), with a ``provenance.json`` beside the PNGs.

    Returns
    -------
    list of pathlib.Path
        The PNGs written into ``out``.
    """
    from pmed.imaging.api import check_device
    from pmed.imaging.explain import save_heatmaps
    from pmed.imaging.readers import load_dataset
    from pmed.imaging.train import ImageClassifier
    from pmed.io import output_folder, write_text_atomic
    from pmed.io.jsonio import to_json
    from pmed.result import make_provenance

    if method not in ("gradcam", "occlusion"):  # refused before the model and data are read
        raise OptionError(f"method must be 'gradcam' or 'occlusion', got {str(method)[:40]!r}",
                          fix="pass method='gradcam' (CLI: --method gradcam|occlusion)")
    _check_split(split)
    _check_int("n", n, minimum=1, allow_none=False)
    if ids is not None and (isinstance(ids, str) or not all(isinstance(i, str) and i for i in ids)):
        raise OptionError("ids must be a list of non-empty patient/image IDs", fix="pass ids=['P001', ...]")
    check_device(device)
    model, data, out = Path(model), Path(data), Path(out)
    _check_images_outside(out, data, root)
    _check_folder_out(out, model, data, root, owned=is_explain_output, what="explain output")
    clf = ImageClassifier.load(model, device=device)
    iset = load_dataset(data, size=model_size(model), root=root)
    X, y, all_ids = iset.split(split)
    if ids:
        want = [str(i) for i in ids]
        present = set(all_ids.tolist())
        missing = [k + 1 for k, i in enumerate(want) if i not in present]
        if missing:
            # by position: an ID is a patient identifier, never echoed (issue #16)
            raise InputError(f"{len(missing)} of {len(want)} --id values {'is' if len(missing) == 1 else 'are'} "
                             f"not in split {split!r} (--id number {format_rows(missing)})", file=data,
                             fix=f"the split holds {len(all_ids)} images; check the IDs and --split")
        idx = np.flatnonzero(np.isin(all_ids, want))
    else:
        idx = np.arange(min(n, len(X)))
    images = [p for p in iset.paths[split] if str(p)]
    prov = make_provenance(EXPLAIN_DOMAIN, inputs={"model": model, "data": data},
                           options={"split": split, "n_ids": len(ids) if ids else None, "n": n,
                                    "method": method})
    with output_folder(out, owned=is_explain_output, inputs=[model, data, root, *images],
                       what="explain output") as work:
        paths = save_heatmaps(clf, X[idx], work, ids=all_ids[idx].tolist(), labels=y[idx], method=method)
        write_text_atomic(work / "provenance.json",
                          to_json({**prov, "outputs": sorted(p.name for p in paths)}))
    return [out / p.name for p in paths]


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
    ...)`` (or a study's block file) takes. ``out`` is written atomically; it may not be an input
    nor lie inside the model folder.
    """
    from pmed.imaging.api import check_device
    from pmed.imaging.embeddings import image_embeddings
    from pmed.imaging.readers import load_dataset
    from pmed.imaging.train import ImageClassifier
    from pmed.io import check_not_input, write_table

    if splits is not None:
        if isinstance(splits, str):
            raise OptionError("splits must be a list of split names", fix="pass splits=['test']")
        for sp in splits:
            _check_split(sp, "each of splits")
    _check_int("n_components", n_components, minimum=1)
    check_device(device)
    model, data, out = Path(model), Path(data), Path(out)
    _check_table_out(out, model, data, root)
    clf = ImageClassifier.load(model, device=device)
    iset = load_dataset(data, size=model_size(model), root=root, splits=splits)
    check_not_input(out, *[p for s in iset.splits for p in iset.paths[s] if str(p)])
    X = np.concatenate([iset.images[s] for s in iset.splits])
    ids = np.concatenate([iset.ids[s] for s in iset.splits])
    emb = image_embeddings(clf, X, ids, n_components=n_components)
    write_table(emb.reset_index(), out, index=False)
    return emb
