"""Training and batch inference of image classifiers (:class:`ImageClassifier`).

A scikit-learn-style estimator around :class:`pmed.imaging.models.ImageNet`: ``fit`` trains
with AdamW and a cosine learning-rate schedule, class-weighted cross-entropy, seeded training
augmentation (:class:`pmed.imaging.transforms.Augmenter`, training split only), early stopping
on the validation split and a checkpoint after every epoch from which ``fit(..., resume=True)``
continues exactly where it stopped. It uses the GPU when one is present.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import BundleError, InputError
from pmed.imaging.transforms import AugmentConfig, Augmenter

__all__ = ["ImageClassifier", "CHECKPOINT_NAME", "MODEL_NAME", "CONFIG_NAME"]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.pt"
CONFIG_NAME = "config.json"


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise InputError("pmed.imaging needs PyTorch and MONAI",
                         fix="pip install 'pmed[imaging]' (CPU: pip install torch monai)") from e
    return torch


def _auroc(y: np.ndarray, prob: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    if prob.shape[1] == 2:
        return float(roc_auc_score(y, prob[:, 1]))
    present = np.unique(y)
    if len(present) < prob.shape[1]:
        return float("nan")
    return float(roc_auc_score(y, prob, multi_class="ovr", average="macro"))


class ImageClassifier:
    """CNN image classifier with early stopping, class weights, seeds and resumable checkpoints.

    Parameters
    ----------
    arch
        ``"resnet18"`` (MONAI ResNet-18) or ``"cnn"`` (compact CNN).
    width
        Channel multiplier of the network.
    epochs
        Maximum number of epochs.
    batch_size
        Mini-batch size (training and inference).
    lr, weight_decay
        AdamW learning rate (cosine-annealed to 0 over ``epochs``) and weight decay.
    patience
        Stop after this many epochs without improvement of the monitored validation metric
        (``None``: never stop early). Without validation data every epoch runs and the last
        weights are kept.
    monitor
        ``"auroc"`` (maximised) or ``"loss"`` (validation cross-entropy, minimised).
    class_weight
        ``"balanced"`` (weights ``n / (k · n_c)``), ``None`` or a dict class → weight.
    augment
        Augment the training split (:class:`~pmed.imaging.transforms.AugmentConfig`; ``True``
        for the defaults, ``False`` for none).
    seed
        Seed of the weights, batch order, dropout and augmentation.
    device
        ``"cuda"``, ``"cpu"``, ... (default: CUDA when available).
    checkpoint_dir
        Folder for ``checkpoint.pt``, written after every epoch (needed for ``resume``).
    progress
        Show a progress bar (rich) on stderr.
    dropout
        Dropout before the last layer.

    Attributes
    ----------
    model_ : ImageNet
        The trained network (best validation epoch), in eval mode.
    classes_ : numpy.ndarray
        Class labels, in the order of the probability columns.
    history_ : pandas.DataFrame
        Per epoch: ``train_loss``, ``val_loss``, ``val_auroc``, ``val_accuracy``, ``lr``, ``seconds``.
    best_epoch_ : int
        1-based epoch whose weights were kept.
    best_score_ : float
        The monitored metric at that epoch.
    stopped_early_ : bool
        Whether training stopped before ``epochs``.
    device_ : torch.device
        Where the network ran.
    fit_time_s_ : float
        Wall-clock training time of the last ``fit`` call (this process only).
    image_shape_ : tuple
        ``(C, H, W)`` of the training images.
    """

    def __init__(
        self,
        *,
        arch: str = "resnet18",
        width: float = 1.0,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        patience: int | None = 8,
        monitor: str = "auroc",
        class_weight: str | dict | None = "balanced",
        augment: bool | AugmentConfig = True,
        seed: int = 0,
        device: str | None = None,
        checkpoint_dir: str | Path | None = None,
        progress: bool = False,
        dropout: float = 0.2,
    ) -> None:
        self.arch = arch
        self.width = width
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.monitor = monitor
        self.class_weight = class_weight
        self.augment = augment
        self.seed = seed
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress
        self.dropout = dropout

    # ------------------------------------------------------------------ helpers
    def _params(self) -> dict[str, Any]:
        aug = self.augment
        return {"arch": self.arch, "width": self.width, "epochs": self.epochs, "batch_size": self.batch_size,
                "lr": self.lr, "weight_decay": self.weight_decay, "patience": self.patience,
                "monitor": self.monitor,
                "class_weight": self.class_weight if not isinstance(self.class_weight, dict)
                else {str(k): float(v) for k, v in self.class_weight.items()},
                "augment": aug.to_dict() if isinstance(aug, AugmentConfig) else bool(aug),
                "seed": self.seed, "dropout": self.dropout}

    @staticmethod
    def _check_images(X, what: str) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 3:
            X = X[:, None]
        if X.ndim != 4:
            raise InputError(f"{what}: expected images shaped (N, C, H, W) or (N, H, W), got {X.shape}",
                             fix="stack 2-D images into one array (see pmed.imaging.load_dataset)")
        if not np.isfinite(X).all():
            raise InputError(f"{what}: images contain NaN or infinite values", fix="clean or rescale the images")
        return X

    def _class_weights(self, y_idx: np.ndarray, k: int) -> np.ndarray:
        cw = self.class_weight
        if cw is None:
            return np.ones(k)
        if cw == "balanced":
            counts = np.bincount(y_idx, minlength=k).astype(float)
            return np.where(counts > 0, len(y_idx) / (k * np.maximum(counts, 1)), 0.0)
        if isinstance(cw, dict):
            return np.array([float(cw.get(c, cw.get(str(c), 1.0))) for c in self.classes_])
        raise InputError(f"class_weight must be 'balanced', None or a dict, got {cw!r}",
                         fix="pass class_weight='balanced'")

    def _encode(self, y, what: str) -> np.ndarray:
        y = np.asarray(y)
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise InputError(f"{what}: labels {sorted(set(y[unknown].tolist()))[:5]} were not seen in training",
                             fix="validation labels must be among the training classes")
        return np.searchsorted(self.classes_, y)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, *, X_val=None, y_val=None, resume: bool = False) -> ImageClassifier:
        """Train on ``(X, y)``, early-stopping on ``(X_val, y_val)``.

        Parameters
        ----------
        X
            ``(N, C, H, W)`` (or ``(N, H, W)``) float images in ``[0, 1]``.
        y
            ``(N,)`` class labels.
        X_val, y_val
            Validation split (never augmented).
        resume
            Continue from ``checkpoint_dir/checkpoint.pt`` when it exists (same data and
            settings); otherwise start afresh.

        Returns
        -------
        ImageClassifier
            self, fitted.
        """
        torch = _torch()
        from pmed.imaging.models import build_model, pick_device

        X = self._check_images(X, "training images")
        y = np.asarray(y)
        if len(X) != len(y):
            raise InputError(f"{len(X)} training images but {len(y)} labels", fix="pass one label per image")
        if (y < 0).any() if np.issubdtype(y.dtype, np.number) else False:
            raise InputError("training labels contain -1 (unknown)", fix="label every training image")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise InputError("the training labels hold a single class", fix="training needs two or more classes")
        y_idx = np.searchsorted(self.classes_, y)
        has_val = X_val is not None and y_val is not None
        if has_val:
            X_val = self._check_images(X_val, "validation images")
            yv_idx = self._encode(y_val, "validation labels")
            if X_val.shape[1:] != X.shape[1:]:
                raise InputError(f"validation images are {X_val.shape[1:]}, training images {X.shape[1:]}",
                                 fix="resize both splits to one size (load_dataset(size=...))")
        if self.monitor not in ("auroc", "loss"):
            raise InputError(f"monitor must be 'auroc' or 'loss', got {self.monitor!r}", fix="pass monitor='auroc'")
        k = len(self.classes_)
        self.image_shape_ = tuple(int(s) for s in X.shape[1:])
        self.device_ = pick_device(self.device)
        if self.device_.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        mean = X.mean(axis=(0, 2, 3)).astype(float).tolist()
        std = np.maximum(X.std(axis=(0, 2, 3)), 1e-3).astype(float).tolist()
        self.norm_ = {"mean": mean, "std": std}
        torch.manual_seed(self.seed)
        model = build_model(self.arch, in_channels=X.shape[1], n_classes=k, width=self.width, mean=mean, std=std,
                            dropout=self.dropout).to(self.device_)
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.epochs))
        w = torch.tensor(self._class_weights(y_idx, k), dtype=torch.float32, device=self.device_)
        loss_fn = torch.nn.CrossEntropyLoss(weight=w)
        aug = None
        if self.augment is not False and self.augment is not None:
            aug = Augmenter(self.augment if isinstance(self.augment, AugmentConfig) else None, seed=self.seed)

        state = {"epoch": 0, "best_score": None, "best_epoch": 0, "bad_epochs": 0, "history": [],
                 "best_state": None, "elapsed_s": 0.0}
        ckpt = Path(self.checkpoint_dir) / CHECKPOINT_NAME if self.checkpoint_dir else None
        if resume and ckpt is not None and ckpt.exists():
            state = self._load_checkpoint(ckpt, model, opt, sched, X, y)
            log.info("resuming from epoch %d", state["epoch"])

        better = (lambda a, b: a > b) if self.monitor == "auroc" else (lambda a, b: a < b)
        yt_all = torch.as_tensor(y_idx, dtype=torch.long)
        t0 = time.perf_counter()
        bar = _Progress(self.progress, total=self.epochs, done=state["epoch"])
        stopped = False
        try:
            for epoch in range(state["epoch"] + 1, self.epochs + 1):
                te = time.perf_counter()
                model.train()
                # everything random in an epoch derives from (seed, epoch): a resumed run repeats it
                torch.manual_seed(self.seed * 100_003 + epoch)
                order = np.random.default_rng([self.seed, epoch]).permutation(len(X))
                if aug is not None:
                    aug.reseed(self.seed * 100_003 + epoch)
                total = 0.0
                for start in range(0, len(order), self.batch_size):
                    idx = order[start:start + self.batch_size]
                    if len(idx) == 1 and len(order) > 1:
                        continue  # BatchNorm cannot train on a batch of one
                    xb = X[idx] if aug is None else aug(X[idx])
                    xb = torch.from_numpy(np.ascontiguousarray(xb)).to(self.device_)
                    yb = yt_all[idx].to(self.device_)
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(model(xb), yb)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                sched.step()
                row = {"epoch": epoch, "train_loss": total / len(X), "lr": float(opt.param_groups[0]["lr"])}
                if has_val:
                    prob = self._proba(model, X_val)
                    row["val_loss"] = float(-np.mean(np.log(np.clip(prob[np.arange(len(yv_idx)), yv_idx], 1e-12, 1))))
                    row["val_auroc"] = _auroc(yv_idx, prob)
                    row["val_accuracy"] = float(np.mean(prob.argmax(1) == yv_idx))
                    score = row["val_auroc"] if self.monitor == "auroc" else row["val_loss"]
                    if np.isnan(score):
                        score = -row["val_loss"] if self.monitor == "auroc" else row["val_loss"]
                else:
                    score = -row["train_loss"] if self.monitor == "auroc" else row["train_loss"]
                row["seconds"] = time.perf_counter() - te
                state["history"].append(row)
                if state["best_score"] is None or better(score, state["best_score"]) or not has_val:
                    state["best_score"], state["best_epoch"], state["bad_epochs"] = score, epoch, 0
                    state["best_state"] = {k_: v.detach().cpu().clone() for k_, v in model.state_dict().items()}
                else:
                    state["bad_epochs"] += 1
                state["epoch"] = epoch
                state["elapsed_s"] += row["seconds"]
                log.info("epoch %d: %s", epoch, {k_: round(v, 4) for k_, v in row.items() if k_ != "epoch"})
                if ckpt is not None:
                    self._save_checkpoint(ckpt, model, opt, sched, state, X, y)
                bar.advance(row)
                if has_val and self.patience is not None and state["bad_epochs"] >= self.patience:
                    stopped = True
                    break
        finally:
            bar.close()
        model.load_state_dict(state["best_state"])
        model.eval()
        self.model_ = model
        self.history_ = pd.DataFrame(state["history"])
        self.best_epoch_ = int(state["best_epoch"])
        self.best_score_ = float(state["best_score"])
        self.stopped_early_ = stopped
        self.fit_time_s_ = time.perf_counter() - t0
        self.train_time_s_ = float(state["elapsed_s"])
        return self

    # ------------------------------------------------------------------ checkpoints
    def _fingerprint(self, X: np.ndarray, y: np.ndarray) -> dict:
        return {"n": int(len(X)), "shape": list(X.shape[1:]), "sum": round(float(X.sum(dtype=np.float64)), 3),
                "labels": [int(v) if np.issubdtype(np.asarray(y).dtype, np.integer) else str(v)
                           for v in np.bincount(np.searchsorted(self.classes_, y))]}

    def _save_checkpoint(self, path: Path, model, opt, sched, state: dict, X, y) -> None:
        torch = _torch()
        from pmed.io import atomic_path

        blob = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "state": {k: v for k, v in state.items()}, "params": self._params(),
                "data": self._fingerprint(X, y), "classes": self.classes_.tolist()}
        with atomic_path(path) as tmp:
            torch.save(blob, tmp)

    def _load_checkpoint(self, path: Path, model, opt, sched, X, y) -> dict:
        torch = _torch()
        try:
            blob = torch.load(path, map_location=self.device_, weights_only=True)
        except Exception as e:
            raise BundleError(f"cannot read the checkpoint ({type(e).__name__}: {e})", file=path,
                              fix="delete it to start afresh, or train without --resume") from e
        if blob["params"] != self._params() or blob["data"] != self._fingerprint(X, y):
            raise BundleError("the checkpoint was made with other settings or other data", file=path,
                              fix="resume with the same data and options, or delete the checkpoint")
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        return blob["state"]

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise InputError("the classifier is not fitted", fix="call fit() or ImageClassifier.load() first")

    def _proba(self, model, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        torch = _torch()
        was_training = model.training
        model.eval()
        bs = batch_size or max(self.batch_size, 128)
        out = []
        with torch.no_grad():
            for start in range(0, len(X), bs):
                xb = torch.from_numpy(np.ascontiguousarray(X[start:start + bs])).to(self.device_)
                out.append(torch.softmax(model(xb), dim=1).cpu().numpy())
        model.train(was_training)
        return np.concatenate(out).astype(float) if out else np.zeros((0, len(self.classes_)))

    def predict_proba(self, X, *, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities ``(N, n_classes)``, columns in :attr:`classes_` order (batched)."""
        self._check_fitted()
        X = self._check_images(X, "images")
        self._check_shape(X)
        return self._proba(self.model_, X, batch_size)

    def predict(self, X, *, batch_size: int | None = None) -> np.ndarray:
        """Most probable class of each image."""
        return self.classes_[self.predict_proba(X, batch_size=batch_size).argmax(1)]

    def embed(self, X, *, batch_size: int | None = None) -> np.ndarray:
        """Penultimate-layer activations ``(N, n_features)`` (the image embedding)."""
        torch = _torch()
        self._check_fitted()
        X = self._check_images(X, "images")
        self._check_shape(X)
        bs = batch_size or max(self.batch_size, 128)
        self.model_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(X), bs):
                xb = torch.from_numpy(np.ascontiguousarray(X[start:start + bs])).to(self.device_)
                out.append(self.model_.features(xb).cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def _check_shape(self, X: np.ndarray) -> None:
        if tuple(X.shape[1:]) != tuple(self.image_shape_):
            raise InputError(f"images are {tuple(X.shape[1:])} but the model was trained on {self.image_shape_}",
                             fix="load the data with the model's size (load_dataset(size=...))")

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path, *, extra: dict | None = None) -> Path:
        """Write ``model.pt`` (weights only) and ``config.json`` into ``folder``.

        ``extra`` adds entries to ``config.json`` (for example the training data's source).
        """
        torch = _torch()
        from pmed import __version__
        from pmed.io import atomic_path, write_text_atomic
        from pmed.io.jsonio import to_json

        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / MODEL_NAME) as tmp:
            torch.save({k: v.detach().cpu() for k, v in self.model_.state_dict().items()}, tmp)
        cfg = {"schema": "pmed.imaging.model", "version": 1, "pmed_version": __version__,
               "params": self._params(), "classes": self.classes_.tolist(), "image_shape": list(self.image_shape_),
               "norm": self.norm_, "best_epoch": self.best_epoch_, "best_score": self.best_score_,
               "stopped_early": self.stopped_early_, "train_time_s": self.train_time_s_,
               "device": str(self.device_), "n_features": int(self.model_.n_features),
               "history": self.history_.to_dict(orient="records"), **(extra or {})}
        write_text_atomic(folder / CONFIG_NAME, to_json(cfg))
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, device: str | None = None) -> ImageClassifier:
        """Load a model saved by :meth:`save` (weights are read with ``weights_only=True``).

        Raises
        ------
        BundleError
            When the folder lacks ``model.pt``/``config.json`` or they do not match.
        """
        torch = _torch()
        from pmed.imaging.models import build_model, pick_device

        folder = Path(folder)
        for name in (MODEL_NAME, CONFIG_NAME):
            if not (folder / name).exists():
                raise BundleError(f"{name} not found in the model folder", file=folder,
                                  fix="pass the folder written by `pmed imaging train --out`")
        try:
            cfg = json.loads((folder / CONFIG_NAME).read_text())
            p = cfg["params"]
            aug = p.get("augment", True)
            self = cls(**{k: v for k, v in p.items() if k != "augment"},
                       augment=AugmentConfig(**aug) if isinstance(aug, dict) else aug, device=device)
            self.classes_ = np.asarray(cfg["classes"])
            self.image_shape_ = tuple(cfg["image_shape"])
            self.norm_ = cfg["norm"]
            self.device_ = pick_device(device)
            model = build_model(p["arch"], in_channels=self.image_shape_[0], n_classes=len(self.classes_),
                                width=p["width"], mean=self.norm_["mean"], std=self.norm_["std"],
                                dropout=p.get("dropout", 0.2))
            model.load_state_dict(torch.load(folder / MODEL_NAME, map_location="cpu", weights_only=True))
        except BundleError:
            raise
        except Exception as e:
            raise BundleError(f"the model folder is damaged or from another version ({type(e).__name__}: {e})",
                              file=folder, fix="retrain with `pmed imaging train`") from e
        self.model_ = model.to(self.device_).eval()
        self.history_ = pd.DataFrame(cfg.get("history", []))
        self.best_epoch_ = int(cfg.get("best_epoch", 0))
        self.best_score_ = float(cfg.get("best_score", float("nan")))
        self.stopped_early_ = bool(cfg.get("stopped_early", False))
        self.train_time_s_ = float(cfg.get("train_time_s", float("nan")))
        self.config_ = cfg
        return self

    def get_params(self, deep: bool = True) -> dict:
        """Constructor parameters (scikit-learn convention)."""
        return {k: getattr(self, k) for k in ("arch", "width", "epochs", "batch_size", "lr", "weight_decay",
                                              "patience", "monitor", "class_weight", "augment", "seed",
                                              "device", "checkpoint_dir", "progress", "dropout")}

    def set_params(self, **params) -> ImageClassifier:
        """Set constructor parameters (scikit-learn convention); returns self."""
        for k, v in params.items():
            setattr(self, k, v)
        return self


class _Progress:
    """A rich progress bar over epochs, or nothing."""

    def __init__(self, enabled: bool, *, total: int, done: int) -> None:
        self._p = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._p = Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                               TextColumn("{task.description}"), TimeElapsedColumn(),
                               console=Console(stderr=True), transient=False)
            self._p.start()
            self._task = self._p.add_task("", total=total, completed=done)

    def advance(self, row: dict) -> None:
        if self._p is not None:
            msg = f"loss {row['train_loss']:.3f}"
            if "val_auroc" in row:
                msg += f"  val AUROC {row['val_auroc']:.3f}  acc {row['val_accuracy']:.3f}"
            self._p.update(self._task, advance=1, description=msg)

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()


