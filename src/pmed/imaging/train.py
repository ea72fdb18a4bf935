"""Training and batch inference of image classifiers (:class:`ImageClassifier`).

A scikit-learn estimator (:class:`pmed.models.torch_base.TorchEstimator`) around
:class:`pmed.imaging.models.ImageNet`: ``fit`` trains with AdamW and a cosine learning-rate
schedule, cross-entropy (unweighted unless ``class_weight`` is given), seeded training
augmentation (:class:`pmed.imaging.transforms.Augmenter`, training split only), early stopping
on the validation split and a checkpoint after every epoch from which ``fit(..., resume=True)``
continues exactly where it stopped. It uses the GPU when one is present.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin

from pmed.errors import BundleError, require
from pmed.imaging.transforms import AugmentConfig, Augmenter
from pmed.models.torch_base import (
    CHECKPOINT_NAME,
    EpochProgress,
    TorchEstimator,
    TorchInputError,
    TorchNotFittedError,
)

__all__ = ["ImageClassifier", "CHECKPOINT_NAME", "MODEL_NAME", "CONFIG_NAME"]

log = logging.getLogger(__name__)

MODEL_NAME = "model.pt"
CONFIG_NAME = "config.json"


def _torch():
    return require("torch", extra="imaging", feature="pmed.imaging")


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


class ImageClassifier(ClassifierMixin, TorchEstimator):
    """CNN image classifier with early stopping, optional class weights, seeds and resumable checkpoints.

    Parameters
    ----------
    arch
        ``"resnet18"`` (MONAI ResNet-18) or ``"cnn"`` (compact CNN).
    width
        Channel multiplier of the network.
    max_epochs
        Maximum number of epochs.
    batch_size
        Mini-batch size (training and inference).
    lr, weight_decay
        AdamW learning rate (cosine-annealed to 0 over ``max_epochs``) and weight decay.
    patience
        Stop after this many epochs without improvement of the monitored validation metric
        (``None``: never stop early). Without validation data every epoch runs and the last
        weights are kept.
    monitor
        ``"auroc"`` (maximised) or ``"loss"`` (validation cross-entropy, minimised).
    class_weight
        ``None`` (default: unweighted, probabilities stay calibrated), ``"balanced"`` (weights
        ``n / (k · n_c)``) or a dict class → weight.
    augment
        Augment the training split (:class:`~pmed.imaging.transforms.AugmentConfig`; ``True``
        for the defaults, ``False`` for none).
    validation_fraction
        Without ``X_val``/``y_val``, hold out this stratified share of the training images for
        early stopping (default 0: no validation split).
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cuda"``, ``"cpu"``…
    random_state
        Seed of the weights, batch order, dropout and augmentation.
    n_jobs
        CPU threads PyTorch may use while fitting (``None``: leave PyTorch's setting).
    checkpoint_dir
        Folder for ``checkpoint.pt``, written after every epoch (needed for ``resume``);
        ``fit(checkpoint_dir=...)`` overrides it.
    progress
        Show a progress bar (``True``) or report to a :class:`pmed.progress.Reporter`;
        ``fit(progress=...)`` overrides it.
    dropout
        Dropout before the last layer.
    epochs, seed
        Deprecated names of ``max_epochs`` and ``random_state``.

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
        Whether training stopped before ``max_epochs``.
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
        max_epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        patience: int | None = 8,
        monitor: str = "auroc",
        class_weight: str | dict | None = None,
        augment: bool | AugmentConfig = True,
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
        super().__init__(max_epochs=max_epochs, batch_size=batch_size, lr=lr,
                         validation_fraction=validation_fraction, patience=patience, class_weight=class_weight,
                         device=device, random_state=random_state, n_jobs=n_jobs)
        self.arch = arch
        self.width = width
        self.weight_decay = weight_decay
        self.monitor = monitor
        self.augment = augment
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress
        self.dropout = dropout
        self.epochs = epochs
        self.seed = seed

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # (N, H, W) grey images; (N, C, H, W) also accepted
        return tags

    # ------------------------------------------------------------------ helpers
    def _params(self) -> dict[str, Any]:
        aug = self.augment
        return {"arch": self.arch, "width": self.width, "max_epochs": self._param("max_epochs"),
                "batch_size": self.batch_size, "lr": self.lr, "weight_decay": self.weight_decay,
                "patience": self.patience, "monitor": self.monitor,
                "class_weight": self.class_weight if not isinstance(self.class_weight, dict)
                else {str(k): float(v) for k, v in self.class_weight.items()},
                "augment": aug.to_dict() if isinstance(aug, AugmentConfig) else bool(aug),
                "validation_fraction": self.validation_fraction,
                "random_state": self._param("random_state"), "dropout": self.dropout}

    def _checkpoint_params(self) -> dict:
        return self._normalise_params(self._params())

    @classmethod
    def _normalise_params(cls, params: dict) -> dict:
        out = super()._normalise_params(params)
        out.setdefault("validation_fraction", 0.0)  # checkpoints written before it existed
        return out

    @staticmethod
    def _check_images(X, what: str) -> np.ndarray:
        try:
            X = np.asarray(X, dtype=np.float32)
        except (TypeError, ValueError):
            raise TorchInputError(f"{what}: not an array of numbers",
                                  fix="stack 2-D images into one array (see pmed.imaging.load_dataset)") from None
        if X.ndim == 3:
            X = X[:, None]
        if X.ndim != 4:
            raise TorchInputError(f"{what}: expected images shaped (N, C, H, W) or (N, H, W), got {X.shape}",
                                  fix="stack 2-D images into one array (see pmed.imaging.load_dataset)")
        if len(X) == 0:
            raise TorchInputError(f"{what}: no images", fix="pass at least one image")
        if not np.isfinite(X).all():
            raise TorchInputError(f"{what}: images contain NaN or infinite values", fix="clean or rescale the images")
        return X

    def _class_weights(self, y_idx: np.ndarray, k: int) -> np.ndarray:
        return self._class_weight_vector(y_idx, k)

    def _encode(self, y, what: str) -> np.ndarray:
        y = np.asarray(y)
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise TorchInputError(f"{what}: {int(unknown.sum())} labels were not seen in training",
                                  fix="validation labels must be among the training classes")
        return np.searchsorted(self.classes_, y)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, *, X_val=None, y_val=None, resume: bool = False, progress=None,
            checkpoint_dir: str | Path | None = None) -> ImageClassifier:
        """Train on ``(X, y)``, early-stopping on ``(X_val, y_val)``.

        Parameters
        ----------
        X
            ``(N, C, H, W)`` (or ``(N, H, W)``) float images in ``[0, 1]``.
        y
            ``(N,)`` class labels.
        X_val, y_val
            Validation split (never augmented); without it, ``validation_fraction`` of the
            training images is held out (none by default).
        resume
            Continue from ``checkpoint_dir/checkpoint.pt`` when it exists (same data and
            settings); otherwise start afresh.
        progress
            ``True`` for a bar or a :class:`pmed.progress.Reporter` (default: the constructor's).
        checkpoint_dir
            Where ``checkpoint.pt`` goes (default: the constructor's).

        Returns
        -------
        ImageClassifier
            self, fitted.
        """
        torch = _torch()
        from pmed.imaging.models import build_model

        self._check_settings()
        if self.monitor not in ("auroc", "loss"):
            raise TorchInputError(f"monitor must be 'auroc' or 'loss', got {self.monitor!r}",
                                  fix="pass monitor='auroc'")
        X = self._check_images(X, "training images")
        y = np.asarray(y)
        if y.ndim != 1:
            y = np.ravel(y)
        if len(X) != len(y):
            raise TorchInputError(f"{len(X)} training images but {len(y)} labels", fix="pass one label per image")
        if (y < 0).any() if np.issubdtype(y.dtype, np.number) else False:
            raise TorchInputError("training labels contain -1 (unknown)", fix="label every training image")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise TorchInputError("the training labels hold a single class", fix="training needs two or more classes")
        y_idx = np.searchsorted(self.classes_, y)
        has_val = X_val is not None and y_val is not None
        if has_val:
            X_val = self._check_images(X_val, "validation images")
            yv_idx = self._encode(y_val, "validation labels")
            if X_val.shape[1:] != X.shape[1:]:
                raise TorchInputError(f"validation images are {X_val.shape[1:]}, training images {X.shape[1:]}",
                                      fix="resize both splits to one size (load_dataset(size=...))")
        elif (self.validation_fraction or 0) > 0:
            val = self._validation_mask(y_idx)
            if val.any():
                X_val, yv_idx, has_val = X[val], y_idx[val], True
                X, y, y_idx = X[~val], y[~val], y_idx[~val]
        k = len(self.classes_)
        seed = self._seed()
        max_epochs = self._max_epochs()
        self.image_shape_ = tuple(int(s) for s in X.shape[1:])
        self.n_features_in_ = int(np.prod(self.image_shape_))
        self.device_ = self._device()
        if self.device_.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        mean = X.mean(axis=(0, 2, 3)).astype(float).tolist()
        std = np.maximum(X.std(axis=(0, 2, 3)), 1e-3).astype(float).tolist()
        self.norm_ = {"mean": mean, "std": std}
        with self._threads():
            torch.manual_seed(seed)
            model = build_model(self.arch, in_channels=X.shape[1], n_classes=k, width=self.width, mean=mean,
                                std=std, dropout=self.dropout).to(self.device_)
            opt = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, max_epochs))
            w = torch.tensor(self._class_weights(y_idx, k), dtype=torch.float32, device=self.device_)
            loss_fn = torch.nn.CrossEntropyLoss(weight=w)
            aug = None
            if self.augment is not False and self.augment is not None:
                aug = Augmenter(self.augment if isinstance(self.augment, AugmentConfig) else None, seed=seed)
            yt_all = torch.as_tensor(y_idx, dtype=torch.long)

            def train_epoch(epoch: int) -> float:
                order = np.random.default_rng([seed, epoch]).permutation(len(X))
                if aug is not None:
                    aug.reseed(seed * 100_003 + epoch)
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
                return total / len(X)

            def validate() -> dict:
                prob = self._proba(model, X_val)
                return {"val_loss": float(-np.mean(np.log(np.clip(prob[np.arange(len(yv_idx)), yv_idx], 1e-12, 1)))),
                        "val_auroc": _auroc(yv_idx, prob),
                        "val_accuracy": float(np.mean(prob.argmax(1) == yv_idx))}

            bar = _Progress(self.progress if progress is None else progress, total=max_epochs, done=0)
            try:
                run = self._train(module=model, optimizer=opt, scheduler=sched, train_epoch=train_epoch,
                                  validate=validate if has_val else None,
                                  monitor="val_auroc" if self.monitor == "auroc" else "val_loss",
                                  maximize=self.monitor == "auroc", bar=bar,
                                  checkpoint_dir=self.checkpoint_dir if checkpoint_dir is None else checkpoint_dir,
                                  resume=resume, fingerprint=self._fingerprint(X, y))
            finally:
                bar.close()
        self.model_ = model
        self.history_ = pd.DataFrame(run["history"])
        self.best_epoch_ = run["best_epoch"]
        self.best_score_ = run["best_score"]
        self.stopped_early_ = run["stopped_early"]
        self.fit_time_s_ = run["fit_time_s"]
        self.train_time_s_ = run["train_time_s"]
        return self

    # ------------------------------------------------------------------ checkpoints
    def _fingerprint(self, X: np.ndarray, y: np.ndarray) -> dict:
        return {"n": int(len(X)), "shape": list(X.shape[1:]), "sum": round(float(X.sum(dtype=np.float64)), 3),
                "labels": [int(v) if np.issubdtype(np.asarray(y).dtype, np.integer) else str(v)
                           for v in np.bincount(np.searchsorted(self.classes_, y))]}

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise TorchNotFittedError("the classifier is not fitted",
                                      fix="call fit() or ImageClassifier.load() first")

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
        prob = self.predict_proba(X, batch_size=batch_size)
        return self.classes_[prob.argmax(1)]

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
            raise TorchInputError(f"images are {tuple(X.shape[1:])} but the model was trained on {self.image_shape_}",
                             fix="load the data with the model's size (load_dataset(size=...))")

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path, *, extra: dict | None = None) -> Path:
        """Write ``model.pt`` (weights only), ``config.json`` and ``SHA256SUMS`` into ``folder``.

        ``extra`` adds entries to ``config.json`` (for example the training data's source).
        The files are written into a temporary folder beside ``folder`` and moved in, the
        ``SHA256SUMS`` that covers them last: :meth:`load` refuses a folder whose sums are
        missing (an interrupted save, a failed training) or do not match (an edited file).
        """
        import os
        import shutil
        import tempfile

        torch = _torch()
        from pmed import __version__
        from pmed.io.jsonio import to_json
        from pmed.study.bundle import SUMS_NAME, write_sums

        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cfg = {"schema": "pmed.imaging.model", "version": 1, "pmed_version": __version__,
               "params": self._params(), "classes": self.classes_.tolist(), "image_shape": list(self.image_shape_),
               "norm": self.norm_, "best_epoch": self.best_epoch_, "best_score": self.best_score_,
               "stopped_early": self.stopped_early_, "train_time_s": self.train_time_s_,
               "device": str(self.device_), "n_features": int(self.model_.n_features),
               "history": self.history_.to_dict(orient="records"), **(extra or {})}
        tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.", suffix=".tmp", dir=folder))
        try:
            torch.save({k: v.detach().cpu() for k, v in self.model_.state_dict().items()}, tmp / MODEL_NAME)
            (tmp / CONFIG_NAME).write_text(to_json(cfg))
            write_sums(tmp, [MODEL_NAME, CONFIG_NAME])
            # the old sums go first: between the moves the folder holds no loadable model
            (folder / SUMS_NAME).unlink(missing_ok=True)
            for name in (MODEL_NAME, CONFIG_NAME, SUMS_NAME):
                os.replace(tmp / name, folder / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, device: str | None = None) -> ImageClassifier:
        """Load a model saved by :meth:`save` (weights are read with ``weights_only=True``).

        Raises
        ------
        BundleError
            When the folder lacks ``model.pt``/``config.json``, they do not match each other,
            or either does not match ``SHA256SUMS`` (missing for a folder written before
            this check, or whose training or save did not finish: retrain).
        """
        torch = _torch()
        from pmed.imaging.models import build_model, pick_device
        from pmed.study.bundle import verify_sums

        folder = Path(folder)
        for name in (MODEL_NAME, CONFIG_NAME):
            if not (folder / name).exists():
                raise BundleError(f"{name} not found in the model folder", file=folder,
                                  fix="pass the folder written by `pmed imaging train --out`")
        # before torch reads a byte; other outputs (history, plots, checkpoint.pt) may sit beside
        verify_sums(folder, strict=False, required=(MODEL_NAME, CONFIG_NAME))
        try:
            cfg = json.loads((folder / CONFIG_NAME).read_text())
            p = cls._normalise_params(cfg["params"])  # older folders say epochs/seed
            aug = p.get("augment", True)
            self = cls(**{k: v for k, v in p.items() if k != "augment"},
                       augment=AugmentConfig(**aug) if isinstance(aug, dict) else aug, device=device)
            self.classes_ = np.asarray(cfg["classes"])
            self.image_shape_ = tuple(cfg["image_shape"])
            self.n_features_in_ = int(np.prod(self.image_shape_))
            self.norm_ = cfg["norm"]
            self.device_ = pick_device(None if device == "auto" else device)
            model = build_model(p["arch"], in_channels=self.image_shape_[0], n_classes=len(self.classes_),
                                width=p["width"], mean=self.norm_["mean"], std=self.norm_["std"],
                                dropout=p.get("dropout", 0.2))
            model.load_state_dict(torch.load(folder / MODEL_NAME, map_location="cpu", weights_only=True))
        except BundleError:
            raise
        except Exception as e:  # noqa: BLE001 - any damage is one BundleError
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


class _Progress(EpochProgress):
    """Per-epoch progress of :meth:`ImageClassifier.fit` (a bar with ``progress=True``)."""

    def __init__(self, progress: Any, *, total: int, done: int) -> None:
        super().__init__(progress, total=total, done=done, name="training")

    @staticmethod
    def message(row: dict) -> str:
        msg = f"loss {row['train_loss']:.3f}"
        if "val_auroc" in row:
            msg += f"  val AUROC {row['val_auroc']:.3f}  acc {row['val_accuracy']:.3f}"
        return msg

    def advance(self, row: dict) -> None:
        log.info("epoch %d: %s", row["epoch"], {k: round(v, 4) for k, v in row.items() if k != "epoch"})
        super().advance(row)
