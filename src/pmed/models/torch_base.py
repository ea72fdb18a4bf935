"""The base of pmed's PyTorch estimators: device choice, a seeded epoch loop, early stopping on a
validation split, class weights, progress and resumable checkpoints.

:class:`TorchEstimator` is a scikit-learn :class:`~sklearn.base.BaseEstimator` (``get_params``,
``set_params``, ``clone`` and pickling as for any estimator); :class:`pmed.timeseries.grud.GRUDClassifier`
and :class:`pmed.imaging.train.ImageClassifier` derive from it. PyTorch is imported only when a
model is fitted (:func:`pmed.errors.require`), so ``import pmed.models`` works without it.

Conventions shared by every subclass:

* ``device="auto"``: CUDA when available, else the CPU; any torch device string otherwise.
* ``random_state`` seeds the weights and the validation split; epoch ``e`` reseeds PyTorch with
  ``random_state · 100003 + e``, so a run resumed from a checkpoint repeats the epochs it missed.
* ``validation_fraction`` of the training rows (stratified by class) is held out and the
  weights of the best validation epoch are kept; training stops after ``patience`` epochs
  without improvement.
* ``class_weight=None`` (unweighted loss: predicted probabilities stay calibrated);
  ``"balanced"`` weights class ``c`` by ``n / (k · n_c)``; a dict maps class → weight.
* ``fit(X, y, *, progress=None, checkpoint_dir=None, resume=False)``: ``progress`` is a
  :mod:`pmed.progress` reporter, ``True`` (a bar) or ``None``; with ``checkpoint_dir`` a
  ``checkpoint.pt`` is written after every epoch and ``resume=True`` continues from it.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from pmed.errors import BundleError, InputError, OptionError, PmedWarning, require

__all__ = ["TorchEstimator", "TorchInputError", "TorchNotFittedError", "EpochProgress", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"


class TorchInputError(InputError, ValueError):
    """Bad data given to a PyTorch estimator.

    An :class:`~pmed.errors.InputError` (exit code 2 on the command line) that is also a
    ``ValueError``, the exception scikit-learn's conventions (and its estimator checks) expect.
    """


class TorchNotFittedError(TorchInputError, NotFittedError):
    """A prediction was asked of an estimator that was not fitted (also scikit-learn's
    ``NotFittedError``)."""


class EpochProgress:
    """Reports one step per epoch to a :mod:`pmed.progress` reporter.

    Parameters
    ----------
    progress
        ``None``/``False`` (silent), ``True`` (a bar on standard error, closed by :meth:`close`)
        or a :class:`pmed.progress.Reporter`.
    total
        Number of epochs.
    done
        Epochs already run (when resuming).
    name
        What is being trained, for the bar's title.
    """

    def __init__(self, progress: Any, *, total: int, done: int = 0, name: str = "training") -> None:
        from pmed.progress import as_reporter

        self._own = progress is True
        self.reporter = as_reporter(progress)
        self.reporter.start(total, description=name)
        if done:
            self.reporter.advance(f"resumed after epoch {done}", n=done)

    @staticmethod
    def message(row: dict) -> str:
        """The bar's text after an epoch."""
        msg = f"epoch {row['epoch']}: loss {row['train_loss']:.3f}"
        if "val_loss" in row:
            msg += f"  val loss {row['val_loss']:.3f}"
        return msg

    def advance(self, row: dict) -> None:
        """One epoch done; ``row`` is its history row."""
        self.reporter.advance(self.message(row))

    def close(self) -> None:
        """Stop the bar this object started (``progress=True``)."""
        if self._own:
            with contextlib.suppress(AttributeError):
                self.reporter.progress.stop()


def _to_python(v: Any) -> Any:
    """Checkpoint-safe values (``torch.load(weights_only=True)`` refuses numpy scalars)."""
    if isinstance(v, dict):
        return {str(k): _to_python(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_to_python(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if hasattr(v, "to_dict"):
        return _to_python(v.to_dict())
    return repr(v)


class TorchEstimator(BaseEstimator):
    """Base class of pmed's PyTorch estimators (see the module docstring for the conventions).

    Parameters
    ----------
    max_epochs
        Most epochs to train.
    batch_size
        Mini-batch size.
    lr
        Learning rate.
    validation_fraction
        Share of the training rows (stratified) held out for early stopping; 0 uses none.
    patience
        Epochs without improvement before stopping (``None``: never stop early).
    class_weight
        ``None`` (default), ``"balanced"`` or a dict class → weight.
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``…
    random_state
        Seed of the weights, batches, dropout and validation split.
    n_jobs
        CPU threads PyTorch may use while fitting (``None``: leave PyTorch's setting).

    Subclasses define their own ``__init__`` listing every parameter explicitly (scikit-learn
    reads the signature) and implement ``fit``, calling :meth:`_train` for the epoch loop.
    """

    #: the pmed extra that installs PyTorch for this estimator (named in the error when missing)
    _extra: ClassVar[str] = "imaging"
    #: deprecated constructor names → current names
    _aliases: ClassVar[dict[str, str]] = {"seed": "random_state", "epochs": "max_epochs", "n_threads": "n_jobs"}

    def __init__(self, *, max_epochs: int = 30, batch_size: int = 64, lr: float = 1e-3,
                 validation_fraction: float = 0.2, patience: int | None = 6,
                 class_weight: str | dict | None = None, device: str | None = "auto",
                 random_state: int = 0, n_jobs: int | None = None) -> None:
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.class_weight = class_weight
        self.device = device
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ settings
    def _torch(self):
        return require("torch", extra=self._extra, feature=type(self).__name__)

    def _param(self, name: str) -> Any:
        """The value of parameter ``name``, honouring its deprecated alias when that was set."""
        for old, new in self._aliases.items():
            if new == name and getattr(self, old, None) is not None:
                return getattr(self, old)
        return getattr(self, name)

    def _seed(self) -> int:
        seed = self._param("random_state")
        if seed is None:
            return 0
        if isinstance(seed, np.random.RandomState):  # scikit-learn lets random_state be a generator
            return int(seed.randint(0, 2**31 - 1))
        return int(seed)

    def _max_epochs(self) -> int:
        n = self._param("max_epochs")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise OptionError(f"{type(self).__name__}: max_epochs must be a whole number >= 1, got {n!r}",
                              fix="pass max_epochs=30 (for example)")
        return int(n)

    def _check_settings(self) -> None:
        """Refuse impossible settings before any data is touched."""
        name = type(self).__name__
        for old, new in self._aliases.items():
            if getattr(self, old, None) is not None:
                warnings.warn(f"{name}({old}=...) is deprecated; pass {new}= instead", PmedWarning, stacklevel=3)
        problems = []
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) \
                or self.batch_size < 1:
            problems.append(f"batch_size must be a whole number >= 1, got {self.batch_size!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            problems.append(f"lr must be > 0, got {self.lr!r}")
        vf = self.validation_fraction
        if vf is not None and not (isinstance(vf, (int, float)) and 0 <= vf < 1):
            problems.append(f"validation_fraction must be in [0, 1), got {vf!r}")
        if self.patience is not None and (not isinstance(self.patience, (int, np.integer)) or self.patience < 1):
            problems.append(f"patience must be a whole number >= 1 or None, got {self.patience!r}")
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            problems.append(f"class_weight must be None, 'balanced' or a dict, got {cw!r}")
        if problems:
            raise OptionError(f"{name}: " + "; ".join(problems), fix="see the estimator's documentation")
        self._max_epochs()

    def _device(self):
        """``torch.device`` to train on: ``device``, or CUDA when available for ``"auto"``/``None``."""
        torch = self._torch()
        d = self.device
        if d is None or d == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            return torch.device(d)
        except (RuntimeError, TypeError, ValueError):
            raise OptionError(f"{type(self).__name__}: unknown device {d!r}",
                              fix="pass device='auto', 'cpu' or 'cuda'") from None

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        """Limit PyTorch's CPU threads to ``n_jobs`` while fitting, then restore them."""
        torch = self._torch()
        n = self._param("n_jobs")
        old = torch.get_num_threads()
        if n:
            torch.set_num_threads(int(n) if n > 0 else max(1, (torch.get_num_threads() or 1)))
        try:
            yield
        finally:
            if n:
                torch.set_num_threads(old)

    # ------------------------------------------------------------------ data helpers
    def _validation_mask(self, y_idx: np.ndarray) -> np.ndarray:
        """Rows held out for early stopping: ``validation_fraction`` of each class, seeded.

        Each class keeps at least one training row; a class of one row is never held out.
        """
        val = np.zeros(len(y_idx), bool)
        frac = self.validation_fraction or 0
        if frac <= 0:
            return val
        rng = np.random.default_rng(self._seed())
        idx = np.arange(len(y_idx))
        for c in np.unique(y_idx):
            ic = rng.permutation(idx[y_idx == c])
            k = min(max(1, int(round(frac * len(ic)))), len(ic) - 1)
            val[ic[:k]] = True
        return val

    def _class_weight_vector(self, y_idx: np.ndarray, k: int) -> np.ndarray:
        """Loss weight of each of the ``k`` classes (in ``classes_`` order)."""
        cw = self.class_weight
        if cw is None:
            return np.ones(k)
        if isinstance(cw, str) and cw == "balanced":
            counts = np.bincount(y_idx, minlength=k).astype(float)
            return np.where(counts > 0, len(y_idx) / (k * np.maximum(counts, 1)), 0.0)
        if isinstance(cw, dict):
            return np.array([float(cw.get(c, cw.get(str(c), 1.0))) for c in self.classes_])
        raise OptionError(f"class_weight must be 'balanced', None or a dict, got {cw!r}",
                          fix="pass class_weight=None (default) or 'balanced'")

    def _checkpoint_params(self) -> dict:
        """The settings a checkpoint must share with the run that resumes it."""
        return self._normalise_params(self.get_params(deep=False))

    # ------------------------------------------------------------------ the loop
    def _train(
        self,
        *,
        module,
        optimizer,
        train_epoch: Callable[[int], float],
        validate: Callable[[], dict] | None,
        scheduler=None,
        monitor: str = "val_loss",
        maximize: bool = False,
        min_delta: float = 0.0,
        bar: EpochProgress | None = None,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        fingerprint: dict | None = None,
    ) -> dict:
        """Run the epochs: seed, train, validate, keep the best weights, checkpoint, stop early.

        Parameters
        ----------
        module, optimizer, scheduler
            The network (already on its device), its optimiser and an optional LR scheduler
            (stepped once per epoch).
        train_epoch
            ``train_epoch(epoch)`` trains one epoch (PyTorch is already seeded for it) and
            returns the mean training loss.
        validate
            ``validate()`` returns the validation metrics of the current weights (a dict with
            ``monitor``, and ``val_loss``); ``None`` without validation data, when every epoch
            runs and the last weights are kept.
        monitor, maximize, min_delta
            The metric that decides the best epoch, its direction, and the smallest change that
            counts as an improvement.
        bar
            Per-epoch progress (:class:`EpochProgress`).
        checkpoint_dir, resume, fingerprint
            Where ``checkpoint.pt`` is written after every epoch; whether to continue from it;
            a summary of the training data that must match for a resume.

        Returns
        -------
        dict
            ``history`` (list of per-epoch dicts), ``best_epoch``, ``best_score``,
            ``stopped_early``, ``fit_time_s`` (this call) and ``train_time_s`` (all epochs,
            resumed ones included).
        """
        torch = self._torch()
        seed, max_epochs = self._seed(), self._max_epochs()
        state: dict[str, Any] = {"epoch": 0, "best_score": None, "best_epoch": 0, "bad_epochs": 0,
                                 "history": [], "best_state": None, "elapsed_s": 0.0}
        ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
        if resume and ckpt is not None and ckpt.exists():
            state = self._load_checkpoint(ckpt, module, optimizer, scheduler, fingerprint)
        has_val = validate is not None
        t0 = time.perf_counter()
        stopped = False
        for epoch in range(state["epoch"] + 1, max_epochs + 1):
            te = time.perf_counter()
            module.train()
            # everything random in an epoch derives from (random_state, epoch): a resumed run repeats it
            torch.manual_seed(seed * 100_003 + epoch)
            row: dict[str, Any] = {"epoch": epoch, "train_loss": float(train_epoch(epoch))}
            if scheduler is not None:
                scheduler.step()
            row["lr"] = float(optimizer.param_groups[0]["lr"])
            if has_val:
                row.update({k: float(v) for k, v in validate().items()})
                score = row[monitor]
                if np.isnan(score):  # e.g. AUROC of a one-class validation split: fall back to the loss
                    score = -row["val_loss"] if maximize else row["val_loss"]
            else:
                score = -row["train_loss"] if maximize else row["train_loss"]
            row["seconds"] = time.perf_counter() - te
            state["history"].append(row)
            best = state["best_score"]
            improved = (best is None or not has_val
                        or (score > best + min_delta if maximize else score < best - min_delta))
            if improved:
                state["best_score"], state["best_epoch"], state["bad_epochs"] = float(score), epoch, 0
                state["best_state"] = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch
            state["elapsed_s"] += row["seconds"]
            if ckpt is not None:
                self._save_checkpoint(ckpt, module, optimizer, scheduler, state, fingerprint)
            if bar is not None:
                bar.advance(row)
            if has_val and self.patience is not None and state["bad_epochs"] >= self.patience:
                stopped = True
                break
        if state["best_state"] is not None:
            module.load_state_dict(state["best_state"])
        module.eval()
        return {"history": state["history"], "best_epoch": int(state["best_epoch"]),
                "best_score": float("nan") if state["best_score"] is None else float(state["best_score"]),
                "stopped_early": stopped, "fit_time_s": time.perf_counter() - t0,
                "train_time_s": float(state["elapsed_s"])}

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, path: Path, module, optimizer, scheduler, state: dict,
                         fingerprint: dict | None) -> None:
        torch = self._torch()
        from pmed.io import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {"model": module.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "state": dict(state), "params": self._checkpoint_params(),
                "data": _to_python(fingerprint or {}), "classes": _to_python(list(self.classes_))}
        with atomic_path(path) as tmp:
            torch.save(blob, tmp)

    def _load_checkpoint(self, path: Path, module, optimizer, scheduler, fingerprint: dict | None) -> dict:
        torch = self._torch()
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is one BundleError
            raise BundleError(f"cannot read the checkpoint ({type(e).__name__}: {e})", file=path,
                              fix="delete it to start afresh, or train without resume") from e
        if (self._normalise_params(blob.get("params", {})) != self._checkpoint_params()
                or blob.get("data") != _to_python(fingerprint or {})):
            raise BundleError("the checkpoint was made with other settings or other data", file=path,
                              fix="resume with the same data and options, or delete the checkpoint")
        module.load_state_dict(blob["model"])
        optimizer.load_state_dict(blob["optimizer"])
        if scheduler is not None and blob.get("scheduler") is not None:
            scheduler.load_state_dict(blob["scheduler"])
        return blob["state"]

    @classmethod
    def _normalise_params(cls, params: dict) -> dict:
        """Settings under today's names, deprecated aliases resolved (older files used
        ``seed``/``epochs``), without those that do not change the result (device, threads)."""
        out = dict(params)
        for old, new in cls._aliases.items():
            if old in out:
                v = out.pop(old)
                if v is not None:
                    out[new] = v
        skip = {"device", "n_jobs", "checkpoint_dir", "progress"}
        return _to_python({k: v for k, v in out.items() if k not in skip})

    @staticmethod
    def _data_fingerprint(arrays: list[np.ndarray], y_idx: np.ndarray) -> dict:
        """What a checkpoint remembers of its training data: size, shapes, a sum, class counts."""
        return {"n": int(len(y_idx)), "shapes": [list(a.shape[1:]) for a in arrays],
                "sum": [round(float(np.nansum(a, dtype=np.float64)), 3) for a in arrays],
                "labels": [int(v) for v in np.bincount(y_idx)]}
