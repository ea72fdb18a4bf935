"""The imaging domain's entry point: ``run_imaging(data) -> ImagingResult``.

:func:`run_imaging` trains a CNN on a MedMNIST-style ``.npz`` or a manifest CSV, evaluates it on
the validation split and embeds every image (the penultimate layer, averaged per patient). The
:class:`ImagingResult` gives the Cohort block ``image_embedding`` (:meth:`~ImagingResult.to_block`),
a JSON summary, and :meth:`~ImagingResult.write`: the model folder ``pmed imaging train``
writes (``model.pt``, ``config.json``, ``history.csv``, ``plots/``, ``val_predictions.csv``,
``evaluation/``) plus ``embedding.csv`` and ``provenance.json``. :func:`read_block` reads such a
folder (or its ``embedding.csv``) back as the block.

This module imports neither PyTorch nor MONAI until :func:`run_imaging` runs, so that
:func:`pmed.cohort.read_block` can read imaging outputs without them.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.cohort import Block
from pmed.errors import InputError, OptionError, require
from pmed.result import PROVENANCE_FILE, DomainResult, make_provenance

__all__ = ["run_imaging", "ImagingResult", "read_block", "EMBEDDING_FILE"]

#: The block's file inside an output folder.
EMBEDDING_FILE = "embedding.csv"

#: Hidden folder inside a training output folder where the running training keeps its
#: checkpoint: it survives a crash (for ``--resume``) and never mixes with the finished output
#: beside it, which stays whole until the new one replaces the folder.
IN_PROGRESS = ".in-progress"

#: What a training output folder may hold (``pmed imaging train --out``).
TRAIN_FILES = frozenset({"model.pt", "config.json", "SHA256SUMS", "checkpoint.pt", "history.csv", "plots",
                         "evaluation", "val_predictions.csv", EMBEDDING_FILE, PROVENANCE_FILE, IN_PROGRESS})

#: Fewest training images of a class that pmed trains on without the classes being declared.
MIN_CLASS_IMAGES = 5

_LIBRARIES = ["torch", "monai", "pydicom", "nibabel", "pillow"]


def _json_float(v: Any) -> float | None:
    """A float for JSON: ``None`` for NaN/inf (``json.dumps(allow_nan=False)`` refuses them)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@dataclass
class ImagingResult(DomainResult):
    """What :func:`run_imaging` found.

    Attributes
    ----------
    model : pmed.imaging.train.ImageClassifier
        The trained classifier (weights of the best validation epoch).
    embeddings : pandas.DataFrame
        Indexed by ``patient_id``: the penultimate-layer features (``img_emb_000`` …), averaged
        over each patient's images (or their ``n_components`` principal components).
    data : dict
        ``source``, ``train_split``, ``val_split`` (``None`` without labelled validation
        images), ``n_train``, ``n_val`` and ``embed_splits``.
    metrics : dict
        ``val_accuracy`` and, for a binary task with ``evaluate``, ``val_auroc`` (estimate and
        95 % CI) and ``val_metrics`` (AUPRC, Brier, accuracy, balanced accuracy).
    predictions : pandas.DataFrame or None
        One row per validation image (``prob_<class>`` columns), when there is a validation split.
    evaluation : dict or None
        The ``metrics.json`` dictionary of the validation evaluation (binary tasks).
    options : dict
        The options of the run (as recorded in the provenance).
    """

    domain = "imaging"
    block_name = "image_embedding"

    model: Any
    embeddings: pd.DataFrame
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None
    evaluation: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # curve tables, ROC inputs and confusion matrix, kept to write the evaluation later
    _evaluation_parts: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    #: the training checkpoint (``checkpoint.pt``), copied into the output folder by ``write``
    checkpoint: Path | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ contract
    def to_block(self) -> Block:
        """The ``image_embedding`` block: embeddings indexed by ``patient_id``, with provenance."""
        prov = {**self.provenance, "domain": self.domain, "modality": "imaging",
                "kind": "cnn_penultimate_layer", "n_features": int(self.embeddings.shape[1]),
                "arch": self.options.get("arch"), "file": self.data.get("source")}
        return Block(self.embeddings.copy(), prov)

    def summary(self) -> dict[str, Any]:
        """Counts, training facts and validation metrics (JSON-ready)."""
        clf = self.model
        s: dict[str, Any] = {
            "n_train": int(self.data.get("n_train", 0)),
            "n_val": int(self.data.get("n_val", 0)),
            "best_epoch": int(clf.best_epoch_),
            "epochs_run": int(len(clf.history_)),
            "stopped_early": bool(clf.stopped_early_),
            "train_time_s": _json_float(clf.train_time_s_),
            "device": str(clf.device_),
            "classes": [c.item() if hasattr(c, "item") else c for c in np.asarray(clf.classes_)],
            "n_patients": int(self.embeddings.shape[0]),
            "n_features": int(self.embeddings.shape[1]),
        }
        if "val_accuracy" in self.metrics:
            s["val_accuracy"] = _json_float(self.metrics["val_accuracy"])
        if "val_auroc" in self.metrics:
            s["val_auroc"] = {k: _json_float(v) for k, v in self.metrics["val_auroc"].items()}
            s["val_metrics"] = {k: _json_float(v) for k, v in self.metrics["val_metrics"].items()}
        return s

    def _owns(self, folder: Path) -> bool:
        return is_train_output(folder)

    def _write_files(self, out: Path) -> dict[str, Path]:
        from pmed.imaging.evaluation import write_image_evaluation
        from pmed.imaging.plots import training_curves
        from pmed.io import write_table
        from pmed.plots._base import save
        from pmed.study.bundle import SUMS_NAME

        clf = self.model
        source = self.data.get("source", "")
        # the model becomes loadable (its SHA256SUMS written) only once every other output is:
        # a failure below leaves no model that `imaging predict` would take for a finished one
        (out / SUMS_NAME).unlink(missing_ok=True)
        title = f"{self.options.get('arch', 'CNN')} on {Path(source).name}" if source else "training"
        paths: dict[str, Path] = {
            "model": out / "model.pt",
            "config": out / "config.json",
            "history": write_table(clf.history_, out / "history.csv", index=False),
            "training_curves": save(training_curves(clf.history_, title=title),
                                    out / "plots" / "training_curves.png"),
        }
        if self.predictions is not None:
            paths["val_predictions"] = write_table(self.predictions, out / "val_predictions.csv", index=False)
        if self.evaluation is not None and self._evaluation_parts is not None:
            ev_paths = write_image_evaluation(self.evaluation, self._evaluation_parts, out / "evaluation",
                                              figures={"training_curves": paths["training_curves"]},
                                              context={"data_sources": [str(source)]})
            paths.update({f"evaluation_{k}": Path(v) for k, v in ev_paths.items()})
        paths["embedding"] = write_table(self.embeddings.reset_index(), out / EMBEDDING_FILE, index=False)
        if self.checkpoint is not None and Path(self.checkpoint).is_file():
            import shutil

            from pmed.models.torch_base import CHECKPOINT_NAME

            # the output folder is staged whole: the checkpoint (for `--resume`) is carried into it
            paths["checkpoint"] = Path(shutil.copy2(self.checkpoint, out / CHECKPOINT_NAME))
        clf.save(out, extra={"data": {k: self.data.get(k) for k in ("source", "train_split", "val_split",
                                                                    "n_train", "n_val")}})
        paths["model_sums"] = out / SUMS_NAME
        return paths


def is_train_output(folder: str | Path) -> bool:
    """Whether ``folder`` holds an earlier output of ``pmed imaging train`` (which may be replaced).

    Its ``provenance.json`` names the imaging domain, or (an interrupted first run, an older
    pmed) it holds nothing but the files that training writes (:data:`TRAIN_FILES`).
    """
    import json

    folder = Path(folder)
    try:
        prov = json.loads((folder / PROVENANCE_FILE).read_text(encoding="utf-8"))
        if isinstance(prov, dict) and prov.get("domain") == "imaging":
            return True
    except (OSError, ValueError):
        pass
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return False
    return bool(names) and names <= TRAIN_FILES


# ---------------------------------------------------------------------- options

#: Largest channel multiplier: 8 × ResNet-18's widths is already ~64 × its weights.
MAX_WIDTH = 8.0


def check_device(device) -> None:
    """Refuse a device name PyTorch does not know, or CUDA where there is none (OptionError)."""
    if device is None or device == "auto":
        return
    torch = require("torch", extra="imaging", feature="pmed.imaging")
    try:
        dev = torch.device(str(device))
    except (RuntimeError, TypeError, ValueError) as e:
        raise OptionError(f"unknown device {str(device)[:40]!r}", fix="pass 'cpu' or 'cuda' (--device)") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("device 'cuda' was asked for but no CUDA GPU is available",
                          fix="pass device='cpu' (CLI: --device cpu), or leave it out")


def check_classes(classes) -> list[int] | None:
    """``classes`` as a sorted list of distinct integers (at least two), or ``None``."""
    if classes is None:
        return None
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, np.ndarray)):
        raise OptionError(f"classes must be a list of integer labels, got {str(classes)[:40]!r}",
                          fix="pass classes=[0, 1] (CLI: --classes 0,1)")
    out = []
    for c in classes:
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)) or not 0 <= c <= 2**31 - 1:
            raise OptionError(f"classes must be integer labels >= 0, got {str(c)[:40]!r}",
                              fix="pass classes=[0, 1] (CLI: --classes 0,1)")
        out.append(int(c))
    if len(set(out)) != len(out) or len(out) < 2:
        raise OptionError(f"classes must list two or more distinct labels, got {out[:10]}",
                          fix="pass classes=[0, 1] (CLI: --classes 0,1)")
    return sorted(out)


def check_options(*, arch, width, epochs, batch_size, lr, patience, size, class_weight, n_boot,
                  n_components, device, n_jobs, seed, train_split, val_split, embed_splits,
                  classes=None) -> None:
    """Refuse bad options of :func:`run_imaging` before any data is read (a wrong choice should cost
    nothing); :class:`~pmed.errors.OptionError` naming the option."""
    require("torch", extra="imaging", feature="pmed.imaging")
    require("monai", extra="imaging", feature="pmed.imaging")
    from pmed.imaging.models import ARCHITECTURES

    def positive(name, value, *, integer=False, allow_none=False, minimum=None):
        if value is None and allow_none:
            return
        ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
        ok = ok and not isinstance(value, bool) and math.isfinite(float(value))
        ok = ok and (value >= minimum if minimum is not None else value > 0)
        if not ok:
            kind = "an integer" if integer else "a number"
            bound = f">= {minimum}" if minimum is not None else "> 0"
            raise OptionError(f"{name} must be {kind} {bound}, got {value!r}",
                              fix=f"pass {name} {bound}" + (" (or None)" if allow_none else ""))

    if arch not in ARCHITECTURES:
        raise OptionError(f"unknown architecture {str(arch)[:40]!r}",
                          fix=f"choose one of: {', '.join(ARCHITECTURES)} (--arch)")
    positive("width", width)
    if width > MAX_WIDTH:
        raise OptionError(f"width must be at most {MAX_WIDTH:g}, got {width!r}",
                          fix="pass width=1 (the published channel widths) or a smaller multiplier")
    positive("epochs", epochs, integer=True, minimum=1)
    positive("batch_size", batch_size, integer=True, minimum=1)
    positive("lr", lr)
    positive("patience", patience, integer=True, allow_none=True, minimum=1)
    positive("size", size, integer=True, allow_none=True, minimum=4)
    positive("n_boot", n_boot, integer=True, minimum=0)
    positive("n_components", n_components, integer=True, allow_none=True, minimum=1)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise OptionError(f"seed must be a non-negative integer, got {seed!r}", fix="pass seed=0")
    if not (class_weight is None or class_weight == "balanced" or isinstance(class_weight, Mapping)):
        raise OptionError(f"class_weight must be 'balanced', None or a dict, got {str(class_weight)[:40]!r}",
                          fix="pass class_weight='balanced' (CLI: --class-weight balanced|none)")
    if n_jobs is not None and (not isinstance(n_jobs, (int, np.integer)) or isinstance(n_jobs, bool)
                               or not (n_jobs >= 1 or n_jobs == -1)):
        raise OptionError(f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs!r}",
                          fix="pass n_jobs=1, 2, … or -1")
    for name, value in (("train_split", train_split), ("val_split", val_split)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise OptionError(f"{name} must be a split name, got {str(value)[:40]!r}",
                              fix="pass e.g. 'train' or 'val'")
    if val_split is not None and val_split == train_split:
        # early stopping and evaluation on the training images: a score that means nothing
        raise OptionError(f"val_split and train_split are both {str(train_split)[:40]!r}",
                          fix="validate on another split (--val-split val)")
    check_classes(classes)
    if embed_splits is not None and (isinstance(embed_splits, str)
                                     or not all(isinstance(s, str) for s in embed_splits)):
        raise OptionError("embed_splits must be a list of split names", fix="pass e.g. ['train', 'val', 'test']")
    check_device(device)


@contextlib.contextmanager
def _torch_threads(n_jobs: int | None) -> Iterator[None]:
    """Run with ``n_jobs`` PyTorch threads (``-1``: all cores), restoring the previous number."""
    if n_jobs is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads((os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------- entry point

def run_imaging(
    data: str | Path,
    *,
    arch: str = "resnet18",
    width: float = 1.0,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    patience: int | None = 8,
    size: int | None = None,
    augment: bool = True,
    class_weight: str | Mapping | None = None,
    device: str | None = None,
    train_split: str = "train",
    val_split: str | None = "val",
    evaluate: bool = True,
    n_boot: int = 500,
    embed_splits: Sequence[str] | None = None,
    n_components: int | None = None,
    root: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    seed: int = 0,
    n_jobs: int | None = None,
    progress=None,
    classes: Sequence[int] | None = None,
) -> ImagingResult:
    """Train a CNN on an image dataset, evaluate it and embed every patient's images.

    Parameters
    ----------
    data
        MedMNIST-style ``.npz`` or manifest CSV (``patient_id, path, label, split``).
    arch, width
        ``"resnet18"`` (MONAI) or ``"cnn"`` (compact), and its channel multiplier.
    epochs, batch_size, lr, patience
        Training budget, mini-batch size, AdamW learning rate, early-stopping patience
        (``None``: never stop early).
    size
        Resize images to ``size × size`` (default: as stored).
    augment, class_weight
        Augment the training split; ``"balanced"``, ``None`` or a dict class → weight.
    device
        ``"cuda"`` or ``"cpu"`` (default: CUDA when available).
    train_split, val_split
        Splits to train on and to early-stop and evaluate on (``None``: no validation). A
        ``val_split`` other than the default ``"val"`` must exist; the default, when absent, is
        skipped with a warning; a validation split labelled only in part is refused.
    evaluate, n_boot
        Evaluate a binary model on the validation split with ``n_boot`` bootstrap resamples.
    embed_splits
        Splits whose images are embedded (default: all).
    n_components
        Keep this many principal components of the embedding.
    root
        Folder that relative manifest paths are resolved against.
    checkpoint_dir, resume
        Write ``checkpoint.pt`` there after every epoch; continue from it.
    seed
        Seed of the weights, batch order, augmentation, bootstrap and PCA.
    n_jobs
        PyTorch CPU threads during the run (``-1``: all cores; default: PyTorch's setting).
    progress
        ``None`` (silent), ``True`` (a bar) or a :class:`pmed.progress.Reporter`.
    classes
        The classes the labels may take (e.g. ``[0, 1]``). Without it, the classes are those of
        the training labels, and a class with fewer than :data:`MIN_CLASS_IMAGES` (5) training
        images is refused as a probable stray label (one ``7`` in a 0/1 data set would otherwise
        train a three-class model without a word). With it, a label outside the list and a listed
        class without training images are refused, and classes of any size are trained.

    Returns
    -------
    ImagingResult

    Raises
    ------
    OptionError
        A bad option, before any data is read.
    MissingDependencyError
        PyTorch or MONAI absent (``pip install 'pmed[imaging]'``).
    InputError, ValidationError
        Unreadable data; unlabelled training images; a rare or undeclared class; validation
        labels that no training image has; a missing split. Messages give counts and the
        manifest lines (``.npz``: indices), never IDs or paths.
    """
    from pmed.progress import as_reporter

    check_options(arch=arch, width=width, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                  size=size, class_weight=class_weight, n_boot=n_boot, n_components=n_components,
                  device=None if device is None else str(device), n_jobs=n_jobs, seed=seed,
                  train_split=train_split, val_split=val_split, embed_splits=embed_splits, classes=classes)
    reporter = as_reporter(progress)
    with _torch_threads(n_jobs):
        return _run(data, reporter, arch=arch, width=width, epochs=epochs, batch_size=batch_size, lr=lr,
                    patience=patience, size=size, augment=augment, class_weight=class_weight, device=device,
                    train_split=train_split, val_split=val_split, evaluate=evaluate, n_boot=n_boot,
                    embed_splits=embed_splits, n_components=n_components, root=root,
                    checkpoint_dir=checkpoint_dir, resume=resume, seed=seed, n_jobs=n_jobs,
                    classes=check_classes(classes))


def _label_name(iset, split: str) -> str:
    return "column 'label'" if iset.where == "line" else f"key '{split}_labels'"


def _values(v: np.ndarray) -> str:
    u = [int(x) for x in np.unique(v)[:5]]
    return ", ".join(map(str, u)) + (", …" if len(np.unique(v)) > 5 else "")


def _check_labels(iset, data: Path, *, train_split: str, val_split: str | None,
                  classes: list[int] | None) -> bool:
    """Refuse labels that would train or evaluate the wrong model silently (issue #16).

    Returns whether the validation split is used (present and labelled).
    """
    import warnings

    from pmed.errors import PmedWarning

    y = iset.labels[train_split]
    unlabelled = y < 0
    if unlabelled.any():
        raise InputError(f"{_label_name(iset, train_split)}: {int(unlabelled.sum())} of {len(y)} training images "
                         f"(split {train_split!r}) have no label ({iset.locate(train_split, unlabelled)})",
                         file=data, fix="label every image of the training split, or move these rows to another split")
    if classes is not None:
        outside = ~np.isin(y, classes)
        if outside.any():
            raise InputError(f"{_label_name(iset, train_split)}: {int(outside.sum())} training images have a label "
                             f"({_values(y[outside])}) outside the declared classes "
                             f"({iset.locate(train_split, outside)})", file=data,
                             fix="correct these labels, or declare their class too (--classes)")
        absent = [c for c in classes if c not in set(y.tolist())]
        if absent:
            raise InputError(f"declared class(es) {', '.join(map(str, absent[:5]))} have no training image "
                             f"(split {train_split!r})", file=data,
                             fix="declare only the classes the training split holds (--classes)")
    else:
        values, counts = np.unique(y, return_counts=True)
        rare = values[counts < MIN_CLASS_IMAGES]
        if len(rare):
            mask = np.isin(y, rare)
            n = int(mask.sum())
            what = f"class {_values(rare)} has" if len(rare) == 1 else f"classes {_values(rare)} have"
            raise InputError(f"{_label_name(iset, train_split)}: {what} only {n} training image"
                             f"{'s' if n != 1 else ''} in all ({iset.locate(train_split, mask)}), fewer than "
                             f"{MIN_CLASS_IMAGES} each: a stray label would add a class to the model", file=data,
                             fix="correct these labels, or declare the classes to train on (--classes "
                                 f"{','.join(str(int(v)) for v in values[:6])})")
    if val_split is None:
        return False
    if val_split not in iset.images:
        if val_split != "val":  # asked for by name: a typo must not train without validation
            iset.split(val_split)
        warnings.warn(f"{Path(data).name}: no split 'val': trained without early stopping or validation metrics",
                      PmedWarning, stacklevel=3)
        return False
    yv = iset.labels[val_split]
    missing = yv < 0
    if missing.all():
        warnings.warn(f"{Path(data).name}: split {val_split!r} has no labels: trained without early stopping "
                      "or validation metrics", PmedWarning, stacklevel=3)
        return False
    if missing.any():
        raise InputError(f"{_label_name(iset, val_split)}: {int(missing.sum())} of {len(yv)} validation images "
                         f"(split {val_split!r}) have no label ({iset.locate(val_split, missing)})", file=data,
                         fix="label them, or move them to a split of their own")
    unseen = ~np.isin(yv, np.unique(y))
    if unseen.any():
        raise InputError(f"{_label_name(iset, val_split)}: {int(unseen.sum())} validation images have a label "
                         f"({_values(yv[unseen])}) that no training image has ({iset.locate(val_split, unseen)})",
                         file=data, fix="correct these labels; validation classes must be among the training classes")
    return True


def _run(data, reporter, *, arch, width, epochs, batch_size, lr, patience, size, augment, class_weight, device,
         train_split, val_split, evaluate, n_boot, embed_splits, n_components, root, checkpoint_dir, resume,
         seed, n_jobs, classes) -> ImagingResult:
    from pmed.imaging.embeddings import image_embeddings
    from pmed.imaging.evaluation import _evaluate, predictions_table
    from pmed.imaging.readers import load_dataset
    from pmed.imaging.train import ImageClassifier

    data = Path(data)
    reporter.start(1, description="imaging: reading images")
    iset = load_dataset(data, size=None if size is None else (int(size), int(size)), root=root)
    X, y, _ = iset.split(train_split)
    has_val = _check_labels(iset, data, train_split=train_split, val_split=val_split, classes=classes)
    Xv = yv = None
    if has_val:
        Xv, yv, _ = iset.split(val_split)
    splits = list(embed_splits) if embed_splits is not None else iset.splits
    for s in splits:
        iset.split(s)  # an absent split is refused before training, naming those present

    reporter.advance()
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
    clf = ImageClassifier(arch=arch, width=width, max_epochs=epochs, batch_size=batch_size, lr=lr,
                          patience=patience, class_weight=class_weight, augment=augment, random_state=seed,
                          device=device or "auto")
    # the classifier reports each epoch to the same reporter
    clf.fit(X, y, X_val=Xv, y_val=yv, resume=resume, progress=reporter, checkpoint_dir=checkpoint_dir)

    reporter.start(2, description="imaging: evaluating")
    metrics: dict[str, Any] = {}
    pred = ev = parts = None
    if has_val:
        _, _, ids_v = iset.split(val_split)
        pred = predictions_table(clf, Xv, ids=ids_v, labels=yv, paths=iset.paths[val_split], split=val_split)
        prob = pred.filter(like="prob_").to_numpy()
        metrics["val_accuracy"] = float(np.mean(clf.classes_[prob.argmax(1)] == yv))
        if evaluate and len(clf.classes_) == 2:
            ev, parts = _evaluate(pred, positive=clf.classes_[1], n_boot=n_boot, seed=seed, thresholds=(0.5,),
                                  source=str(data))
            m = ev["models"]["cnn"]["metrics"]
            metrics["val_auroc"] = {k: m["auroc"][k] for k in ("estimate", "ci_low", "ci_high")}
            metrics["val_metrics"] = {k: m[k]["estimate"] for k in ("auprc", "brier", "accuracy",
                                                                     "balanced_accuracy")}

    reporter.advance("imaging: embedding")
    X_all = np.concatenate([iset.images[s] for s in splits])
    ids_all = np.concatenate([iset.ids[s] for s in splits])
    emb = image_embeddings(clf, X_all, ids_all, n_components=n_components, seed=seed)
    reporter.advance("imaging: done")

    options = {"arch": arch, "width": width, "epochs": epochs, "batch_size": batch_size, "lr": lr,
               "patience": patience, "size": size, "augment": bool(augment),
               "class_weight": class_weight if not isinstance(class_weight, Mapping)
               else {str(k): float(v) for k, v in class_weight.items()},
               "device": str(clf.device_), "train_split": train_split, "val_split": val_split,
               "evaluate": evaluate, "n_boot": n_boot, "embed_splits": splits, "n_components": n_components,
               "resume": resume, "seed": seed, "n_jobs": n_jobs, "classes": classes}
    # the manifest's image files are inputs too: a changed image changes the model
    image_files = sorted({str(p) for s in iset.splits for p in iset.paths[s] if str(p)})
    prov = make_provenance("imaging", inputs={"data": data, "images": image_files or None},
                           options=options, libraries=_LIBRARIES)
    info = {"source": str(data), "train_split": train_split, "val_split": val_split if has_val else None,
            "n_train": int(len(X)), "n_val": int(len(Xv)) if has_val else 0, "embed_splits": splits}
    from pmed.models.torch_base import CHECKPOINT_NAME

    ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    return ImagingResult(model=clf, embeddings=emb, data=info, metrics=metrics, predictions=pred, evaluation=ev,
                         options=options, _evaluation_parts=parts, provenance=prov,
                         checkpoint=ckpt if ckpt is not None and ckpt.is_file() else None)


# ---------------------------------------------------------------------- block reader

def read_block(path: str | Path) -> Block | None:
    """Read an imaging output folder (or its ``embedding.csv``) as the ``image_embedding`` block.

    Returns
    -------
    Block or None
        The embeddings indexed by ``patient_id`` with the folder's provenance; ``None`` for any
        other file (it is then read as a plain table by :func:`pmed.cohort.read_block`).
    """
    from pmed.io.tables import read_table
    from pmed.result import block_source

    found = block_source(path, EMBEDDING_FILE)
    if found is None:
        return None
    file, prov = found
    table = read_table(file, id="patient_id")
    table.index = table.index.astype(str)
    table.index.name = "patient_id"
    return Block(table, {**prov, "domain": "imaging", "reader": "pmed.imaging.api.read_block",
                         "file": str(file), "kind": "cnn_penultimate_layer", "n_features": int(table.shape[1])})
