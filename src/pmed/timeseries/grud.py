"""GRU-D: a recurrent network that learns from values, masks and time since last measurement.

After Che et al., "Recurrent Neural Networks for Multivariate Time Series with Missing Values"
(Sci Rep 2018). At each step the input of a variable that was not measured decays from its
last observed value towards the training mean at a learned rate ``γx = exp(-max(0, wx·δ + bx))``,
and the hidden state decays with ``γh = exp(-max(0, Wh·δ + bh))``; the GRU cell also sees the
mask, so that *whether* something was measured informs the prediction.

:class:`GRUDClassifier` is a scikit-learn classifier over the flattened grid of
:meth:`pmed.timeseries.align.Grid.flatten` (columns ``x|var|t``, ``m|var|t``, ``d|var|t``, plus
any static columns), so it cross-validates with :mod:`pmed.evaluate.cv` like any other model,
and a study names it ``family: grud`` (:mod:`pmed.models.registry`). A table without grid columns
(or a plain array) is read as a single time step: each column a variable, NaN where it was not
measured. It derives from :class:`pmed.models.torch_base.TorchEstimator` (device choice, seeded
epochs, early stopping, class weights, progress and resumable checkpoints). PyTorch is imported
only when it is fitted; it uses a GPU when one is present.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin

from pmed.errors import InputError
from pmed.models.torch_base import (
    EpochProgress,
    TorchEstimator,
    TorchInputError,
    TorchNotFittedError,
)
from pmed.timeseries._options import short_list

__all__ = ["GRUDClassifier", "split_grid_columns", "grud_encoder_class"]


def split_grid_columns(columns) -> tuple[list[str], int, list[str]]:
    """``(variables, n_steps, static_columns)`` of a flattened grid table."""
    cols = [str(c) for c in columns]
    xs = [c for c in cols if c.startswith("x|")]
    if not xs:
        raise InputError("no grid columns (x|variable|step) in the table",
                         fix="build the input with pmed.timeseries.to_grid(...).flatten()")
    variables, steps = [], set()
    for c in xs:
        _, v, t = c.split("|")
        if v not in variables:
            variables.append(v)
        steps.add(int(t))
    static = [c for c in cols if not c.startswith(("x|", "m|", "d|"))]
    return variables, len(steps), static


@functools.cache
def grud_encoder_class():
    """GRU-D's recurrence as a PyTorch module class: ``GRUDEncoder(n_vars, hidden)``, whose
    ``forward(x, m, d)`` (values, masks, hours since the last measurement, each ``(n, steps,
    V)``, values standardised) returns the last hidden state ``(n, hidden)``.

    Missing inputs decay towards the training mean (0 after standardisation) and the hidden
    state decays with the time since each variable was last seen (Che et al. 2018). The GRU-D
    classifier adds its head; :class:`pmed.fusion.JointFusion` uses it as a series encoder.
    """
    from pmed.errors import require

    torch = require("torch", extra="timeseries", feature="GRU-D")
    from torch import nn

    class GRUDEncoder(nn.Module):
        def __init__(self, n_vars: int, hidden: int) -> None:
            super().__init__()
            self.hidden = hidden
            self.wx = nn.Parameter(torch.full((n_vars,), 0.1))
            self.bx = nn.Parameter(torch.zeros(n_vars))
            self.gh = nn.Linear(n_vars, hidden)
            self.cell = nn.GRUCell(2 * n_vars, hidden)

        def forward(self, x, m, d):
            B, T, V = x.shape
            h = x.new_zeros(B, self.hidden)
            x_last = x.new_zeros(B, V)  # the training mean is 0 after standardisation
            for t in range(T):
                xt, mt, dt = x[:, t], m[:, t], d[:, t]
                gx = torch.exp(-torch.relu(self.wx * dt + self.bx))
                x_hat = mt * xt + (1 - mt) * (gx * x_last)
                x_last = torch.where(mt > 0, xt, x_last)
                h = h * torch.exp(-torch.relu(self.gh(dt)))
                h = self.cell(torch.cat([x_hat, mt], dim=1), h)
            return h

    return GRUDEncoder


def _module(n_vars: int, hidden: int, n_static: int, dropout: float):
    encoder = grud_encoder_class()  # first: says which extra installs PyTorch when it is missing
    import torch
    from torch import nn

    class _GRUD(encoder):
        # the recurrence's parameters keep their names (wx, bx, gh, cell): saved weights still load
        def __init__(self) -> None:
            super().__init__(n_vars, hidden)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(hidden + n_static, 1)

        def forward(self, x, m, d, s):
            z = self.drop(super().forward(x, m, d))
            if s.shape[1]:
                z = torch.cat([z, s], dim=1)
            return self.head(z).squeeze(1)

    return _GRUD()


class GRUDClassifier(ClassifierMixin, TorchEstimator):
    """GRU-D binary classifier on a flattened grid (see the module docstring).

    Parameters
    ----------
    hidden_size
        GRU hidden units.
    max_epochs, batch_size, lr, weight_decay, dropout
        Training: Adam with these settings, binary cross-entropy, dropout before the output
        layer.
    validation_fraction, patience
        A stratified share of the training rows held out for early stopping on the validation
        loss (the best epoch's weights are kept); its predictions are kept in
        ``validation_predictions_`` (to choose thresholds without touching test data).
    delta_scale
        Hours are divided by this before entering the decay terms.
    class_weight
        ``None`` (default: unweighted, so that probabilities stay calibrated), ``"balanced"``
        or a dict class → weight.
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``…
    random_state
        Seeds the split, initialisation and batches.
    n_jobs
        CPU threads for PyTorch while fitting (default: leave PyTorch's setting).
    epochs, seed, n_threads
        Deprecated names of ``max_epochs``, ``random_state`` and ``n_jobs``.

    Attributes
    ----------
    classes_, variables_, n_steps_, static_columns_, mean_, scale_, static_mean_, static_scale_
        Fitted state; ``history_`` holds the training and validation loss per epoch,
        ``best_epoch_`` the epoch whose weights were kept, ``n_features_in_`` (and
        ``feature_names_in_``) the input columns.
    """

    _extra = "timeseries"

    def __init__(self, *, hidden_size: int = 64, max_epochs: int = 40, batch_size: int = 64, lr: float = 2e-3,
                 weight_decay: float = 1e-4, dropout: float = 0.3, validation_fraction: float = 0.2,
                 patience: int | None = 6, delta_scale: float = 24.0, class_weight: str | dict | None = None,
                 device: str | None = "auto", random_state: int = 0, n_jobs: int | None = None,
                 epochs: int | None = None, seed: int | None = None, n_threads: int | None = None) -> None:
        super().__init__(max_epochs=max_epochs, batch_size=batch_size, lr=lr,
                         validation_fraction=validation_fraction, patience=patience, class_weight=class_weight,
                         device=device, random_state=random_state, n_jobs=n_jobs)
        self.hidden_size = hidden_size
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.delta_scale = delta_scale
        self.epochs = epochs
        self.seed = seed
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN is "not measured": the mask carries it
        tags.classifier_tags.multi_class = False
        return tags

    # ------------------------------------------------------------------ arrays
    def _validate(self, X, y=None, *, reset: bool):
        """scikit-learn's input checks (feature count and names, finite values, labels)."""
        from sklearn.utils.validation import validate_data

        kw = {"ensure_all_finite": "allow-nan", "reset": reset}
        try:
            if y is None and not reset:
                return validate_data(self, X, **kw), None
            return validate_data(self, X, y, **kw)
        except ValueError as e:
            raise TorchInputError(str(e), fix="pass a numeric table, one row per patient") from None

    def _grid(self, X) -> pd.DataFrame:
        """The flattened grid of ``X``: itself, or one time step per column of a plain table."""
        if isinstance(X, pd.DataFrame) and any(str(c).startswith("x|") for c in X.columns):
            return X
        names = ([str(c).replace("|", "_") for c in X.columns] if isinstance(X, pd.DataFrame)
                 else [f"f{j}" for j in range(np.shape(X)[1])])
        a = np.asarray(X, dtype=np.float64)
        m = np.isfinite(a).astype(np.float64)
        cols = {**{f"x|{n}|0": a[:, j] for j, n in enumerate(names)},
                **{f"m|{n}|0": m[:, j] for j, n in enumerate(names)},
                **{f"d|{n}|0": np.zeros(len(a)) for n in names}}
        return pd.DataFrame(cols, index=X.index if isinstance(X, pd.DataFrame) else None)

    def _arrays(self, X: pd.DataFrame):
        if not isinstance(X, pd.DataFrame):
            raise TorchInputError("GRUDClassifier needs the DataFrame of Grid.flatten()",
                                  fix="pass pmed.timeseries.to_grid(...).flatten() (optionally joined with static columns)")
        V, T = len(self.variables_), self.n_steps_
        cols = {k: [f"{k}|{v}|{t}" for t in range(T) for v in self.variables_] for k in ("x", "m", "d")}
        miss = [c for k in cols for c in cols[k] if c not in X.columns][:5]
        if miss:
            raise TorchInputError(f"grid columns missing: {short_list(miss)}", fix="use the same grid as in fit")
        x = X[cols["x"]].to_numpy(np.float32).reshape(-1, T, V)
        m = X[cols["m"]].to_numpy(np.float32).reshape(-1, T, V)
        d = X[cols["d"]].to_numpy(np.float32).reshape(-1, T, V) / np.float32(self.delta_scale)
        x = np.clip((x - self.mean_) / self.scale_, -6, 6)
        x = np.where(m > 0, np.nan_to_num(x), 0.0).astype(np.float32)
        if self.static_columns_:
            s = X[self.static_columns_].to_numpy(np.float64)
            s = (s - self.static_mean_) / self.static_scale_
            s = np.nan_to_num(np.clip(s, -6, 6)).astype(np.float32)
        else:
            s = np.zeros((len(X), 0), np.float32)
        return x, m, d, s

    def _predict_logits(self, net, arrays, device) -> np.ndarray:
        import torch

        net.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(arrays[0]), 512):
                b = [torch.from_numpy(a[i:i + 512]).to(device) for a in arrays]
                out.append(net(*b).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    # ------------------------------------------------------------------ sklearn API
    def fit(self, X, y, *, progress=None, checkpoint_dir=None, resume: bool = False) -> GRUDClassifier:
        """Train on a flattened grid ``X`` (or a plain table) and binary outcomes ``y``; returns self.

        Parameters
        ----------
        X
            ``Grid.flatten()`` (optionally with static columns), or any numeric table.
        y
            Two classes (0/1, or any two labels: the larger one is the event).
        progress
            ``True`` for a bar, or a :class:`pmed.progress.Reporter`; silent by default.
        checkpoint_dir, resume
            Write ``checkpoint.pt`` there after every epoch; continue from it.
        """
        torch = self._torch()
        from sklearn.utils.multiclass import check_classification_targets

        self._check_settings()
        Xa, y = self._validate(X, y, reset=True)
        try:
            check_classification_targets(y)
        except ValueError as e:
            raise TorchInputError(str(e), fix="GRUDClassifier predicts a binary outcome") from None
        self.classes_, y = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            what = ("Only binary classification is supported" if len(self.classes_) > 2
                    else "one class cannot be learnt")
            raise TorchInputError(f"{what}: GRUDClassifier needs two classes, the outcomes hold "
                                  f"{len(self.classes_)}", fix="pass outcomes with exactly two classes")
        y = y.astype(int)
        X = self._grid(X if isinstance(X, pd.DataFrame) else Xa)
        self.variables_, self.n_steps_, self.static_columns_ = split_grid_columns(X.columns)
        V, T = len(self.variables_), self.n_steps_
        xs = X[[f"x|{v}|{t}" for t in range(T) for v in self.variables_]].to_numpy(np.float64).reshape(-1, T, V)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN variables: mean 0, scale 1
            self.mean_ = np.nan_to_num(np.nanmean(xs, axis=(0, 1))).astype(np.float32)
            sd = np.nanstd(xs, axis=(0, 1))
        self.scale_ = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0).astype(np.float32)
        if self.static_columns_:
            st = X[self.static_columns_].to_numpy(np.float64)
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                self.static_mean_ = np.nan_to_num(np.nanmean(st, axis=0))
                ssd = np.nanstd(st, axis=0)
            self.static_scale_ = np.where(np.isfinite(ssd) & (ssd > 0), ssd, 1.0)
        arrays = self._arrays(X)
        val = self._validation_mask(y)
        tr = ~val
        seed = self._seed()
        with self._threads():
            torch.manual_seed(seed)
            device = self._device()
            net = _module(V, self.hidden_size, len(self.static_columns_), self.dropout).to(device)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            w = self._class_weight_vector(y[tr], 2)
            tr_t = [torch.from_numpy(a[tr]).to(device) for a in arrays]
            ytr = torch.from_numpy(y[tr].astype(np.float32)).to(device)
            # per-row weights: the positive/negative class weights (all 1 unless class_weight is set)
            wtr = torch.from_numpy(np.where(y[tr] == 1, w[1], w[0]).astype(np.float32)).to(device)
            lossf = torch.nn.BCEWithLogitsLoss(reduction="none")
            n_tr = int(tr.sum())

            def train_epoch(epoch: int) -> float:
                gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
                perm = torch.randperm(n_tr, generator=gen).to(device)
                total = 0.0
                for i in range(0, n_tr, self.batch_size):
                    b = perm[i:i + self.batch_size]
                    opt.zero_grad()
                    loss = (lossf(net(*[a[b] for a in tr_t]), ytr[b]) * wtr[b]).mean()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                    opt.step()
                    total += loss.item() * len(b)
                return total / max(1, n_tr)

            def validate() -> dict:
                lv = self._predict_logits(net, [a[val] for a in arrays], device)
                pv = 1 / (1 + np.exp(-lv))
                eps = 1e-7
                return {"val_loss": float(-np.mean(y[val] * np.log(pv + eps) + (1 - y[val]) * np.log(1 - pv + eps)))}

            bar = EpochProgress(progress, total=self._max_epochs(), name="training GRU-D")
            try:
                run = self._train(module=net, optimizer=opt, train_epoch=train_epoch,
                                  validate=validate if val.any() else None, monitor="val_loss", min_delta=1e-4,
                                  bar=bar, checkpoint_dir=checkpoint_dir, resume=resume,
                                  fingerprint=self._data_fingerprint(list(arrays), y))
            finally:
                bar.close()
        self.history_ = [{k: v for k, v in r.items()} for r in run["history"]]
        self.best_epoch_ = run["best_epoch"]
        self.stopped_early_ = run["stopped_early"]
        self.device_ = str(device)
        self.net_ = net.to("cpu")
        if val.any():
            lv = self._predict_logits(self.net_, [a[val] for a in arrays], torch.device("cpu"))
            self.validation_predictions_ = (y[val], 1 / (1 + np.exp(-lv)))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise TorchNotFittedError("this GRUDClassifier is not fitted yet", fix="call fit(X, y) first")

    def predict_proba(self, X) -> np.ndarray:
        """``(n, 2)`` probabilities of ``classes_[0]`` and ``classes_[1]``."""
        torch = self._torch()

        self._check_fitted()
        Xa, _ = self._validate(X, reset=False)
        arrays = self._arrays(self._grid(X if isinstance(X, pd.DataFrame) else Xa))
        logit = self._predict_logits(self.net_, arrays, torch.device("cpu"))
        p = (1 / (1 + np.exp(-logit.astype(np.float64))))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        """The predicted class (``classes_[1]`` at probability ≥ 0.5)."""
        p = self.predict_proba(X)[:, 1]
        return self.classes_[(p >= 0.5).astype(int)]

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        # the network's class is built inside _module (PyTorch is imported lazily), so keep its
        # weights as numpy arrays (which pickle and skops, pmed's bundle format, both store) and
        # rebuild the network on loading
        state = dict(super().__getstate__())
        net = state.pop("net_", None)
        if net is not None:
            state["_net_weights"] = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        weights = state.pop("_net_weights", None)
        super().__setstate__(state)
        if weights is not None:
            net = _module(len(self.variables_), self.hidden_size, len(self.static_columns_), self.dropout)
            import torch

            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
            self.net_ = net.eval()
