"""GRU-D: a recurrent network that learns from values, masks and time since last measurement.

After Che et al., "Recurrent Neural Networks for Multivariate Time Series with Missing Values"
(Sci Rep 2018). At each step the input of a variable that was not measured decays from its
last observed value towards the training mean at a learned rate ``γx = exp(-max(0, wx·δ + bx))``,
and the hidden state decays with ``γh = exp(-max(0, Wh·δ + bh))``; the GRU cell also sees the
mask, so that *whether* something was measured informs the prediction.

:class:`GRUDClassifier` is a scikit-learn classifier over the flattened grid of
:meth:`pmed.timeseries.align.Grid.flatten` (columns ``x|var|t``, ``m|var|t``, ``d|var|t``, plus
any static columns), so it cross-validates with :mod:`pmed.evaluate.cv` like any other model.
PyTorch is imported only when it is fitted; it uses a GPU when one is present.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from pmed.errors import InputError

__all__ = ["GRUDClassifier", "split_grid_columns"]


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


def _module(n_vars: int, hidden: int, n_static: int, dropout: float):
    import torch
    from torch import nn

    class _GRUD(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wx = nn.Parameter(torch.full((n_vars,), 0.1))
            self.bx = nn.Parameter(torch.zeros(n_vars))
            self.gh = nn.Linear(n_vars, hidden)
            self.cell = nn.GRUCell(2 * n_vars, hidden)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(hidden + n_static, 1)

        def forward(self, x, m, d, s):
            B, T, V = x.shape
            h = x.new_zeros(B, hidden)
            x_last = x.new_zeros(B, V)  # the training mean is 0 after standardisation
            for t in range(T):
                xt, mt, dt = x[:, t], m[:, t], d[:, t]
                gx = torch.exp(-torch.relu(self.wx * dt + self.bx))
                x_hat = mt * xt + (1 - mt) * (gx * x_last)
                x_last = torch.where(mt > 0, xt, x_last)
                h = h * torch.exp(-torch.relu(self.gh(dt)))
                h = self.cell(torch.cat([x_hat, mt], dim=1), h)
            z = self.drop(h)
            if s.shape[1]:
                z = torch.cat([z, s], dim=1)
            return self.head(z).squeeze(1)

    return _GRUD()


class GRUDClassifier(ClassifierMixin, BaseEstimator):
    """GRU-D binary classifier on a flattened grid (see the module docstring).

    Parameters
    ----------
    hidden_size
        GRU hidden units.
    epochs, batch_size, lr, weight_decay, dropout
        Training: Adam with these settings, binary cross-entropy (unweighted, so that
        probabilities stay calibrated), dropout before the output layer.
    validation_fraction, patience
        A stratified share of the training rows held out for early stopping on the validation
        loss (the best epoch's weights are kept); its predictions are kept in
        ``validation_predictions_`` (to choose thresholds without touching test data).
    delta_scale
        Hours are divided by this before entering the decay terms.
    seed
        Seeds the split, initialisation and batches.
    device
        ``"cuda"``/``"cpu"``; default: CUDA when available.
    n_threads
        CPU threads for PyTorch while fitting (default: leave PyTorch's setting).

    Attributes
    ----------
    classes_, variables_, n_steps_, static_columns_, mean_, scale_, static_mean_, static_scale_
        Fitted state; ``history_`` holds the training and validation loss per epoch.
    """

    def __init__(self, *, hidden_size: int = 64, epochs: int = 40, batch_size: int = 64, lr: float = 2e-3,
                 weight_decay: float = 1e-4, dropout: float = 0.3, validation_fraction: float = 0.2,
                 patience: int = 6, delta_scale: float = 24.0, seed: int = 0, device: str | None = None,
                 n_threads: int | None = None) -> None:
        self.hidden_size = hidden_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.delta_scale = delta_scale
        self.seed = seed
        self.device = device
        self.n_threads = n_threads

    # ------------------------------------------------------------------ arrays
    def _arrays(self, X: pd.DataFrame):
        if not isinstance(X, pd.DataFrame):
            raise InputError("GRUDClassifier needs the DataFrame of Grid.flatten()",
                             fix="pass pmed.timeseries.to_grid(...).flatten() (optionally joined with static columns)")
        V, T = len(self.variables_), self.n_steps_
        cols = {k: [f"{k}|{v}|{t}" for t in range(T) for v in self.variables_] for k in ("x", "m", "d")}
        miss = [c for k in cols for c in cols[k] if c not in X.columns][:5]
        if miss:
            raise InputError(f"grid columns missing: {', '.join(miss)}", fix="use the same grid as in fit")
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

    def _device(self):
        import torch

        return torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))

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
    def fit(self, X: pd.DataFrame, y) -> GRUDClassifier:
        """Train on a flattened grid ``X`` and 0/1 outcomes ``y``; returns self."""
        import torch

        y = np.asarray(y).astype(int)
        self.classes_ = np.array([0, 1])
        if set(np.unique(y)) - {0, 1}:
            raise InputError("GRUDClassifier is binary: outcomes must be 0/1")
        self.variables_, self.n_steps_, self.static_columns_ = split_grid_columns(X.columns)
        V, T = len(self.variables_), self.n_steps_
        xs = X[[f"x|{v}|{t}" for t in range(T) for v in self.variables_]].to_numpy(np.float64).reshape(-1, T, V)
        with np.errstate(invalid="ignore"):
            self.mean_ = np.nan_to_num(np.nanmean(xs, axis=(0, 1))).astype(np.float32)
            sd = np.nanstd(xs, axis=(0, 1))
        self.scale_ = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0).astype(np.float32)
        if self.static_columns_:
            st = X[self.static_columns_].to_numpy(np.float64)
            with np.errstate(invalid="ignore"):
                self.static_mean_ = np.nan_to_num(np.nanmean(st, axis=0))
                ssd = np.nanstd(st, axis=0)
            self.static_scale_ = np.where(np.isfinite(ssd) & (ssd > 0), ssd, 1.0)
        arrays = self._arrays(X)

        rng = np.random.default_rng(self.seed)
        idx = np.arange(len(y))
        val = np.zeros(len(y), bool)
        if self.validation_fraction and self.validation_fraction > 0:
            for c in (0, 1):
                ic = rng.permutation(idx[y == c])
                val[ic[: max(1, int(round(self.validation_fraction * len(ic))))]] = True
        tr = ~val
        old_threads = torch.get_num_threads()
        if self.n_threads:
            torch.set_num_threads(self.n_threads)
        try:
            torch.manual_seed(self.seed)
            device = self._device()
            net = _module(V, self.hidden_size, len(self.static_columns_), self.dropout).to(device)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            lossf = torch.nn.BCEWithLogitsLoss()
            tr_t = [torch.from_numpy(a[tr]).to(device) for a in arrays]
            ytr = torch.from_numpy(y[tr].astype(np.float32)).to(device)
            best, best_state, bad = np.inf, None, 0
            self.history_ = []
            gen = torch.Generator().manual_seed(self.seed)
            for _epoch in range(self.epochs):
                net.train()
                perm = torch.randperm(int(tr.sum()), generator=gen).to(device)
                total = 0.0
                for i in range(0, len(perm), self.batch_size):
                    b = perm[i:i + self.batch_size]
                    opt.zero_grad()
                    loss = lossf(net(*[a[b] for a in tr_t]), ytr[b])
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                    opt.step()
                    total += loss.item() * len(b)
                rec = {"train_loss": total / max(1, len(perm))}
                if val.any():
                    lv = self._predict_logits(net, [a[val] for a in arrays], device)
                    pv = 1 / (1 + np.exp(-lv))
                    eps = 1e-7
                    vl = float(-np.mean(y[val] * np.log(pv + eps) + (1 - y[val]) * np.log(1 - pv + eps)))
                    rec["val_loss"] = vl
                    if vl < best - 1e-4:
                        best, bad = vl, 0
                        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    else:
                        bad += 1
                self.history_.append(rec)
                if val.any() and bad >= self.patience:
                    break
            if best_state is not None:
                net.load_state_dict(best_state)
            self.net_ = net.to("cpu")
            if val.any():
                lv = self._predict_logits(self.net_, [a[val] for a in arrays], torch.device("cpu"))
                self.validation_predictions_ = (y[val], 1 / (1 + np.exp(-lv)))
        finally:
            if self.n_threads:
                torch.set_num_threads(old_threads)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """``(n, 2)`` probabilities of outcome 0 and 1."""
        import torch

        arrays = self._arrays(X)
        logit = self._predict_logits(self.net_, arrays, torch.device("cpu"))
        p = 1 / (1 + np.exp(-logit))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """0/1 predictions at probability 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
