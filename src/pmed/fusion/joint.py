"""Joint fusion: one PyTorch network over every modality, trained end to end.

Each modality has its own encoder: an MLP over its preprocessed columns (median imputation and
standardisation of numeric columns, one-hot encoding of categorical ones, fitted on the training
rows that have the modality), a GRU-D recurrence over a time-series grid (columns
``x|var|step``, ``m|var|step``, ``d|var|step`` of :meth:`pmed.timeseries.align.Grid.flatten`),
or a small convolutional network (MONAI blocks) over a grey image stored as pixel columns
``px|row|col`` (:func:`pixel_column_names`).
Each encoder's output is multiplied by the patient's mask for that modality (1 present, 0
absent) and the outputs, with the mask itself, go to a fusion head. So a patient lacking a
modality is predicted from the others without imputing it; *modality dropout* (hiding present
modalities at random while training) teaches the head to do so.

PyTorch is imported only when the model is fitted or loaded; it trains on a GPU when one is
present (:class:`pmed.models.torch_base.TorchEstimator`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import OptionError, PmedWarning, ValidationError
from pmed.fusion._outputs import FusedOutputs
from pmed.fusion.modalities import availability, resolve_modalities
from pmed.models.torch_base import EpochProgress, TorchEstimator, TorchNotFittedError

__all__ = ["JointFusion", "PIXEL_PREFIX", "pixel_column_names", "split_pixel_columns"]

#: prefix of an image modality's pixel columns, ``px|<row>|<col>`` (0-based, row-major)
PIXEL_PREFIX = "px|"

_TASKS = ("binary", "continuous")
_SEP = "+"  # joins modality names, as LateFusion.modalities_used does
_GRID_PREFIXES = ("x|", "m|", "d|")
# standardised inputs are clipped: one absurd value must not saturate an encoder
_CLIP = 6.0
_PREDICT_BATCH = 1024
# channels of the image encoder's stride-2 convolutions: light enough to train a few thousand
# 28×28 to 64×64 images on a CPU in seconds to minutes
_IMAGE_CHANNELS = (16, 32, 64)

# canonical pixel names only (no leading zeros, ASCII digits), so that a name can be rebuilt
_PIXEL_RE = re.compile(r"px\|(0|[1-9][0-9]*)\|(0|[1-9][0-9]*)")


def _frame(X) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)


def _kind(columns) -> str:
    """``"image"``, ``"grid"`` or ``"tabular"``: the encoder a modality's columns get."""
    # any pixel column makes it an image modality, so pixels mixed with others are refused
    if any(str(c).startswith(PIXEL_PREFIX) for c in columns):
        return "image"
    if any(str(c).startswith(_GRID_PREFIXES) for c in columns):
        return "grid"
    return "tabular"


def _shown(names: list[str], k: int = 5) -> str:
    return ", ".join(map(repr, names[:k])) + (f", … ({len(names)} in all)" if len(names) > k else "")


def pixel_column_names(h: int, w: int) -> list[str]:
    """The pixel columns of an ``h`` × ``w`` grey image, row-major: ``px|0|0``, ``px|0|1`` …

    Parameters
    ----------
    h, w
        Image height and width in pixels.

    Returns
    -------
    list of str
        ``h * w`` names ``px|<row>|<col>`` (0-based), the order in which a flattened
        ``(h, w)`` array (``image.reshape(-1)``) fills them.

    Raises
    ------
    OptionError
        When ``h`` or ``w`` is not a whole number >= 1.
    """
    for key, v in (("h", h), ("w", w)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise OptionError(f"{key} must be a whole number >= 1, not {v!r}",
                              where=f"pixel_column_names({key}=)", fix="pass the image's size")
    return [f"{PIXEL_PREFIX}{r}|{c}" for r in range(int(h)) for c in range(int(w))]


def split_pixel_columns(columns: Iterable, *, where: str | None = None) -> tuple[int, int]:
    """The image size ``(h, w)`` that a set of pixel columns ``px|row|col`` forms.

    The columns may come in any order, but must be exactly the ``h * w`` names of
    :func:`pixel_column_names` for some ``h`` and ``w``: one image per row of the table.

    Parameters
    ----------
    columns
        Column names (of one modality).
    where
        Where the columns come from, for the error message.

    Returns
    -------
    tuple of int
        Height and width: one more than the largest row and column index.

    Raises
    ------
    OptionError
        When a column is not a pixel column (the pixels are mixed with other columns), a name
        is not ``px|<row>|<col>`` with 0-based whole numbers, a column is repeated, or a pixel
        of the ``h`` × ``w`` grid has no column.
    """
    where = where or "split_pixel_columns"
    cols = [str(c) for c in columns]
    if not cols:
        raise OptionError("no pixel columns given", where=where,
                          fix=f"give the image's {PIXEL_PREFIX}row|col columns")
    other = [c for c in cols if not c.startswith(PIXEL_PREFIX)]
    if other:
        raise OptionError(f"pixel columns ({PIXEL_PREFIX}row|col) are mixed with "
                          f"{len(other)} other column(s): {_shown(other)}", where=where,
                          fix="put the other columns in a modality of their own")
    cells = [_PIXEL_RE.fullmatch(c) for c in cols]
    bad = [c for c, m in zip(cols, cells, strict=True) if m is None]
    if bad:
        raise OptionError(f"{len(bad)} column name(s) are not {PIXEL_PREFIX}<row>|<col> with "
                          f"0-based whole numbers: {_shown(bad)}", where=where,
                          fix="name the pixels as pmed.fusion.joint.pixel_column_names(h, w) does")
    if len(set(cols)) < len(cols):
        twice = sorted({c for c in cols if cols.count(c) > 1})
        raise OptionError(f"pixel column(s) given twice: {_shown(twice)}", where=where,
                          fix="give each pixel one column")
    rows = [int(m.group(1)) for m in cells]
    cc = [int(m.group(2)) for m in cells]
    h, w = max(rows) + 1, max(cc) + 1
    if len(cols) < h * w:
        have = set(cols)
        lack = [c for c in pixel_column_names(h, w) if c not in have]
        raise OptionError(f"the pixel columns do not form a full {h}×{w} image: {len(lack)} of "
                          f"its {h * w} pixels have no column ({_shown(lack)})", where=where,
                          fix="give every pixel a column, all-missing for a patient without an "
                              "image (pixel_column_names(h, w))")
    return h, w


def _network(layout: list[dict], *, hidden: int, fusion_hidden: int, dropout: float):
    """The joint network: one encoder per entry of ``layout``, then the fusion head.

    ``layout`` entries are ``{"kind": "tabular", "n_in": d}``, ``{"kind": "grid", "n_vars": V}``
    or ``{"kind": "image", "channels": [c1, c2, …]}``. ``forward(*arrays, mask)`` takes one
    array per tabular modality, three (values, masks, hours since last measurement, each
    ``(n, steps, V)``) per grid modality and one ``(n, 1, H, W)`` array per image modality, in
    layout order, then the ``(n, k)`` modality mask.
    """
    from pmed.errors import require

    torch = require("torch", extra="timeseries", feature="JointFusion")
    from torch import nn

    class _Tabular(nn.Module):
        def __init__(self, n_in: int) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(hidden, hidden))

        def forward(self, x):
            return self.net(x)

    class _Image(nn.Module):
        # stride-2 3×3 convolutions (MONAI blocks: conv → batch norm → ReLU) halve the image at
        # each step (28 → 14 → 7 → 4), then a global average and a linear map to `hidden`
        def __init__(self, channels: list[int]) -> None:
            super().__init__()
            require("monai", extra="imaging", feature="JointFusion's image encoder")
            from monai.networks.blocks import Convolution

            blocks, c_in = [], 1
            for c in channels:
                blocks.append(Convolution(spatial_dims=2, in_channels=c_in, out_channels=int(c),
                                          strides=2, kernel_size=3, act="RELU", norm="BATCH"))
                c_in = int(c)
            self.conv = nn.Sequential(*blocks)
            self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, hidden))

        def forward(self, x):
            # a mean rather than AdaptiveAvgPool2d, whose CUDA backward is not deterministic
            return self.out(self.conv(x).mean(dim=(2, 3)))

    def encoder(e: dict):
        if e["kind"] == "grid":
            from pmed.timeseries.grud import grud_encoder_class

            return grud_encoder_class()(int(e["n_vars"]), hidden)
        if e["kind"] == "image":
            return _Image(list(e["channels"]))
        return _Tabular(int(e["n_in"]))

    class _Joint(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.arity = [3 if e["kind"] == "grid" else 1 for e in layout]
            self.encoders = nn.ModuleList(encoder(e) for e in layout)
            self.images = [e["kind"] == "image" for e in layout]
            k = len(layout)
            self.head = nn.Sequential(nn.Linear(k * hidden + k, fusion_hidden), nn.ReLU(),
                                      nn.Dropout(dropout), nn.Linear(fusion_hidden, 1))

        @staticmethod
        def _image(enc, x, present):
            # the CNN sees only the images present (and not dropped): blank stand-ins for absent
            # ones would skew its batch-normalisation statistics, and cost convolutions
            keep = present > 0
            out = x.new_zeros(len(x), hidden)
            if bool(keep.any()):
                out = out.index_put((keep,), enc(x[keep]))
            return out

        def forward(self, *arrays):
            *inputs, mask = arrays
            parts, i = [], 0
            for j, (enc, a) in enumerate(zip(self.encoders, self.arity, strict=True)):
                # an absent (or dropped) modality contributes exactly zero; the mask says so
                if self.images[j]:
                    parts.append(self._image(enc, inputs[i], mask[:, j]))
                else:
                    parts.append(enc(*inputs[i:i + a]) * mask[:, j:j + 1])
                i += a
            return self.head(torch.cat([*parts, mask], dim=1)).squeeze(1)

    return _Joint()


class JointFusion(FusedOutputs, TorchEstimator):
    """One network over several modalities, with per-modality encoders and modality dropout.

    ``fit`` resolves the modalities against the table's columns, fits each tabular modality's
    preprocessing (:func:`pmed.models.zoo.make_preprocessor`: median imputation with missingness
    indicators and standardisation for numeric columns, most-frequent imputation for 0/1
    columns, one-hot encoding for categorical and text columns) on the training patients who
    have that modality, and trains the network (Adam, binary cross-entropy or mean squared error
    on the standardised outcome) with early stopping on a seeded validation split.

    A modality made of pixel columns ``px|row|col`` (:func:`pixel_column_names`: grey values in
    [0, 1], one ``H`` × ``W`` image per patient) is an image modality: its pixels, standardised
    by the training images' mean and standard deviation, go through a small CNN (three stride-2
    3×3 convolution blocks of 16, 32 and 64 channels with batch normalisation and ReLU, from
    :class:`monai.networks.blocks.Convolution`, then a global average and a linear map to
    ``hidden``; MONAI comes with the ``imaging`` extra). With an image modality alone, the model is simply a CNN on the pixel columns.

    A modality is present for a patient when at least one of its columns is not missing
    (:func:`pmed.fusion.availability`); for a grid modality, when at least one ``x|`` value is
    (its ``m|``/``d|`` columns are filled even for a patient never measured); for an image
    modality, when at least one pixel is (a missing pixel of a present image counts as the
    training mean). While training,
    each present modality of each patient is hidden with probability ``modality_dropout`` in
    every batch, never all of a patient's modalities. At prediction the masks come from the
    data. A patient with no modality at all is left out of fitting and gets the training
    prevalence (binary) or mean (continuous), with a :class:`~pmed.errors.PmedWarning`, as in
    :class:`pmed.fusion.LateFusion`.

    Parameters
    ----------
    modalities
        Modality name → column names or :mod:`fnmatch` patterns (see
        :func:`pmed.fusion.resolve_modalities`). A modality whose columns are grid columns
        (``x|var|step``, ``m|var|step``, ``d|var|step``) gets a GRU-D encoder and must hold
        only grid columns; one whose columns are pixel columns (``px|row|col``) gets a CNN
        encoder and must hold exactly the ``H * W`` pixels of one image
        (:func:`split_pixel_columns`). Names must not contain ``"+"``.
    task
        ``"binary"`` (``predict_proba``, ``predict``) or ``"continuous"`` (``predict``).
    hidden
        Output size of each modality's encoder (and its hidden layer).
    fusion_hidden
        Hidden units of the fusion head.
    modality_dropout
        Probability, in ``[0, 1)``, of hiding each present modality of a patient in a training
        batch (never all of them).
    dropout
        Dropout inside the encoders' MLPs and the head, in ``[0, 1)``.
    weight_decay
        Adam's weight decay.
    delta_scale
        Hours since last measurement (grid ``d|`` columns) are divided by this.
    max_epochs, batch_size, lr, validation_fraction, patience, class_weight, device
        As in :class:`~pmed.models.torch_base.TorchEstimator`; ``class_weight`` only for a
        binary task.
    random_state, n_jobs
        Seed of the weights, batches, dropouts and validation split; CPU threads while fitting.

    Attributes
    ----------
    columns_ : dict of str to list of str
        Modality → its resolved columns.
    modality_names_ : list of str
        Modality names, in the order given.
    kinds_ : dict of str to str
        Modality → ``"tabular"``, ``"grid"`` or ``"image"``.
    preprocessors_ : dict of str to ColumnTransformer
        Tabular modality → its fitted preprocessing.
    grids_ : dict of str to dict
        Grid modality → ``{"variables", "n_steps", "mean", "scale"}`` (per-variable training
        mean and standard deviation of the values).
    images_ : dict of str to dict
        Image modality → ``{"shape": [H, W], "mean", "scale", "channels"}`` (mean and standard
        deviation of the training images' pixels; the CNN's channels).
    n_patients_ : dict of str to int
        Modality → the number of training patients who have it.
    classes_ : ndarray
        The two outcome labels (binary only); probabilities are of ``classes_[1]``.
    prior_ : float
        Training prevalence of ``classes_[1]`` (binary) or mean outcome (continuous), over
        every training patient: the prediction for a patient with no modality.
    y_mean_, y_scale_ : float
        Mean and standard deviation of a continuous outcome (the network learns it standardised).
    history_ : list of dict
        Per-epoch training (and validation) loss; ``best_epoch_`` is the epoch whose weights
        were kept, ``stopped_early_`` whether patience ran out, ``device_`` where it trained.
    feature_names_in_ : ndarray of str
        Columns of the training table; ``n_features_in_`` their number.
    """

    _extra = "timeseries"

    def __init__(
        self,
        modalities: Mapping[str, Any] | None = None,
        *,
        task: str = "binary",
        hidden: int = 32,
        fusion_hidden: int = 32,
        modality_dropout: float = 0.2,
        dropout: float = 0.1,
        weight_decay: float = 1e-4,
        delta_scale: float = 24.0,
        max_epochs: int = 60,
        batch_size: int = 64,
        lr: float = 3e-3,
        validation_fraction: float = 0.2,
        patience: int | None = 8,
        class_weight: str | dict | None = None,
        device: str | None = "auto",
        random_state: int = 0,
        n_jobs: int | None = None,
    ) -> None:
        super().__init__(max_epochs=max_epochs, batch_size=batch_size, lr=lr,
                         validation_fraction=validation_fraction, patience=patience,
                         class_weight=class_weight, device=device, random_state=random_state,
                         n_jobs=n_jobs)
        self.modalities = modalities
        self.task = task
        self.hidden = hidden
        self.fusion_hidden = fusion_hidden
        self.modality_dropout = modality_dropout
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.delta_scale = delta_scale

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> dict[str, list[str]]:
        """The modalities as given (name → patterns), after checking every option."""
        self._check_settings()
        where = "JointFusion"
        if self.task not in _TASKS:
            raise OptionError(f"unknown task {self.task!r}", where=f"{where}(task=)",
                              fix=f"use one of: {', '.join(_TASKS)}")
        for key in ("hidden", "fusion_hidden"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise OptionError(f"{key} must be a whole number >= 1, not {v!r}",
                                  where=f"{where}({key}=)", fix=f"pass {key}=32")
        for key in ("modality_dropout", "dropout"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise OptionError(f"{key} must be a number in [0, 1), not {v!r}",
                                  where=f"{where}({key}=)", fix=f"pass {key}=0.2 (0 for none)")
        for key in ("weight_decay", "delta_scale"):
            v = getattr(self, key)
            low_ok = v >= 0 if key == "weight_decay" else v > 0
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not low_ok:
                what = "non-negative" if key == "weight_decay" else "positive"
                raise OptionError(f"{key} must be a {what} number, not {v!r}",
                                  where=f"{where}({key}=)", fix="keep the default")
        if self.task == "continuous" and self.class_weight is not None:
            raise OptionError("class_weight applies to a binary task only",
                              where=f"{where}(class_weight=)", fix="pass class_weight=None")
        spec = self.modalities
        if not isinstance(spec, Mapping) or not spec:
            raise OptionError("no modalities given", where=f"{where}(modalities=)",
                              fix="pass a dict {name: [columns or patterns]}")
        for name in spec:
            if not isinstance(name, str) or not name or _SEP in name:
                raise OptionError(f"modality name {name!r} must be a non-empty string without "
                                  f"{_SEP!r}", where=f"{where}(modalities=)",
                                  fix="rename the modality")
        return {n: ([c] if isinstance(c, str) else list(c)) for n, c in spec.items()}

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise TorchNotFittedError("this JointFusion is not fitted yet",
                                      fix="call fit(X, y) first")

    def _check_X(self, X) -> pd.DataFrame:
        self._check_fitted()
        X = _frame(X)
        need = [c for cols in self.columns_.values() for c in cols]
        absent = [c for c in need if c not in X.columns]
        if absent:
            shown = ", ".join(map(repr, absent[:8])) + (
                f", … ({len(absent)} in all)" if len(absent) > 8 else "")
            raise ValidationError([f"the table lacks {len(absent)} column(s) the fusion was "
                                   f"fitted on: {shown}"],
                                  fix="pass a table with every modality's columns (all-missing "
                                      "for a modality a patient lacks)")
        return X

    # ------------------------------------------------------------------ arrays
    def _availability(self, X: pd.DataFrame) -> np.ndarray:
        """Boolean ``(n, k)``: which patients have which modality."""
        # a grid's m| and d| columns are filled (0, hours) even for a patient never measured:
        # only its values say whether the modality is there
        cols = {n: ([c for c in self.columns_[n] if str(c).startswith("x|")]
                    if self.kinds_[n] == "grid" else self.columns_[n])
                for n in self.modality_names_}
        return availability(X, cols).to_numpy()

    def _fit_grid(self, name: str, X: pd.DataFrame) -> None:
        from pmed.timeseries.grud import split_grid_columns

        variables, n_steps, static = split_grid_columns(self.columns_[name])
        if static:
            raise OptionError(f"modality {name!r} mixes grid columns (x|var|step …) with other "
                              f"columns ({', '.join(map(repr, static[:5]))})",
                              where=f"JointFusion(modalities={{{name!r}: …}})",
                              fix="put the static columns in a modality of their own")
        cols = set(map(str, self.columns_[name]))
        lack = [f"{k}|{v}|{t}" for k in ("x", "m", "d") for t in range(n_steps) for v in variables
                if f"{k}|{v}|{t}" not in cols]
        if lack:
            raise ValidationError([f"grid modality {name!r} lacks {len(lack)} column(s): "
                                   f"{', '.join(map(repr, lack[:5]))}"],
                                  fix="include the x|, m| and d| columns of every variable and "
                                      "step (Grid.flatten())")
        xs = X[[f"x|{v}|{t}" for t in range(n_steps) for v in variables]].to_numpy(np.float64)
        xs = xs.reshape(-1, n_steps, len(variables))
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN variable: mean 0, scale 1
            mean = np.nan_to_num(np.nanmean(xs, axis=(0, 1)))
            sd = np.nanstd(xs, axis=(0, 1))
        scale = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        self.grids_[name] = {"variables": list(variables), "n_steps": int(n_steps),
                             "mean": mean.astype(np.float32), "scale": scale.astype(np.float32)}

    def _fit_image(self, name: str, X: pd.DataFrame, shape: tuple[int, int]) -> None:
        h, w = shape
        px = X[pixel_column_names(h, w)].to_numpy(np.float64)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, sd = float(np.nanmean(px)), float(np.nanstd(px))
        self.images_[name] = {"shape": [int(h), int(w)], "mean": mean,
                              "scale": sd if np.isfinite(sd) and sd > 0 else 1.0,
                              "channels": list(_IMAGE_CHANNELS)}

    def _fit_tabular(self, name: str, X: pd.DataFrame) -> None:
        from pmed.models.zoo import _is_binary as zero_one
        from pmed.models.zoo import make_preprocessor

        cols = self.columns_[name]
        categorical = [c for c in cols if isinstance(X[c].dtype, pd.CategoricalDtype)
                       or pd.api.types.is_object_dtype(X[c].dtype)
                       or pd.api.types.is_string_dtype(X[c].dtype)]
        # which columns are 0/1 depends only on their values, never on the outcome: no leakage
        binary = [c for c in cols if c not in categorical and zero_one(X[c])]
        numeric = [c for c in cols if c not in categorical and c not in binary]
        self.preprocessors_[name] = make_preprocessor(numeric, categorical, binary).fit(X[cols])

    def _arrays(self, X: pd.DataFrame) -> list[np.ndarray]:
        """The network's inputs for ``X``, modality by modality (mask not included)."""
        out: list[np.ndarray] = []
        for name in self.modality_names_:
            if self.kinds_[name] == "grid":
                g = self.grids_[name]
                V, T = len(g["variables"]), g["n_steps"]
                cols = {k: [f"{k}|{v}|{t}" for t in range(T) for v in g["variables"]]
                        for k in ("x", "m", "d")}
                x = X[cols["x"]].to_numpy(np.float32).reshape(-1, T, V)
                m = np.nan_to_num(X[cols["m"]].to_numpy(np.float32)).reshape(-1, T, V)
                d = np.nan_to_num(X[cols["d"]].to_numpy(np.float32)).reshape(-1, T, V)
                d = d / np.float32(self.delta_scale)
                m = np.where(np.isfinite(x), m, 0.0).astype(np.float32)  # NaN is never measured
                x = np.clip((x - g["mean"]) / g["scale"], -_CLIP, _CLIP)
                x = np.where(m > 0, np.nan_to_num(x), 0.0).astype(np.float32)
                out += [x, m, d.astype(np.float32)]
            elif self.kinds_[name] == "image":
                g = self.images_[name]
                h, w = g["shape"]
                px = X[pixel_column_names(h, w)].to_numpy(np.float32).reshape(-1, 1, h, w)
                px = np.clip((px - np.float32(g["mean"])) / np.float32(g["scale"]), -_CLIP, _CLIP)
                # a missing pixel (all of them for an absent image, masked anyway) is the mean
                out.append(np.nan_to_num(px, nan=0.0).astype(np.float32))
            else:
                z = np.asarray(self.preprocessors_[name].transform(X[self.columns_[name]]),
                               dtype=np.float64)
                out.append(np.clip(np.nan_to_num(z), -_CLIP, _CLIP).astype(np.float32))
        return out

    def _layout(self) -> list[dict]:
        out = []
        for n in self.modality_names_:
            if self.kinds_[n] == "grid":
                out.append({"kind": "grid", "n_vars": len(self.grids_[n]["variables"])})
            elif self.kinds_[n] == "image":
                out.append({"kind": "image", "channels": list(self.images_[n]["channels"])})
            else:
                out.append({"kind": "tabular", "n_in": int(self.n_inputs_[n])})
        return out

    def _build(self):
        return _network(self._layout(), hidden=int(self.hidden),
                        fusion_hidden=int(self.fusion_hidden), dropout=float(self.dropout))

    @staticmethod
    def _outputs(net, arrays: list[np.ndarray], device) -> np.ndarray:
        """The network's outputs (logits or standardised values) in batches, without gradients."""
        import torch

        net.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(arrays[-1]), _PREDICT_BATCH):
                b = [torch.from_numpy(a[i:i + _PREDICT_BATCH]).to(device) for a in arrays]
                out.append(net(*b).cpu().numpy().astype(np.float64))
        return np.concatenate(out) if out else np.zeros(0)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, *, progress=None, checkpoint_dir=None, resume: bool = False) -> JointFusion:
        """Fit each modality's preprocessing, then train the network end to end.

        Parameters
        ----------
        X : pandas.DataFrame
            Patients × features; a modality a patient lacks has all its columns missing.
        y : array-like of shape (n_patients,)
            Outcome: two labels (binary) or numbers (continuous).
        progress
            ``True`` for a bar, or a :class:`pmed.progress.Reporter`; silent by default.
        checkpoint_dir, resume
            Write ``checkpoint.pt`` there after every epoch; continue from it.

        Returns
        -------
        JointFusion
            ``self``.

        Raises
        ------
        OptionError
            For invalid options, a modality that matches no column, or pixel columns that do
            not form one full image (or are mixed with other columns).
        ValidationError
            For an outcome that is not of the task's kind or not as long as ``X``, or a modality
            no training patient has.
        """
        torch = self._torch()
        spec = self._check_params()
        X = _frame(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValidationError([f"y has shape {y.shape}, X has {len(X)} rows"],
                                  fix="pass one outcome per patient, in the rows' order")
        if pd.isna(y).any():
            raise ValidationError([f"{int(pd.isna(y).sum())} missing outcome(s)"],
                                  fix="drop patients without an outcome before fitting")
        self.columns_ = resolve_modalities(spec, list(X.columns))
        self.modality_names_ = list(self.columns_)
        self.kinds_ = {n: _kind(cols) for n, cols in self.columns_.items()}
        # malformed pixel columns are refused before any data is read
        shapes = {n: split_pixel_columns(cols, where=f"JointFusion(modalities={{{n!r}: …}})")
                  for n, cols in self.columns_.items() if self.kinds_[n] == "image"}
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]

        binary = self.task == "binary"
        if binary:
            classes = np.unique(y)
            if len(classes) != 2:
                raise ValidationError([f"a binary outcome needs two labels, y has {len(classes)}"],
                                      fix="check the outcome column, or use task='continuous'")
            self.classes_ = classes
            t = (y == classes[1]).astype(np.float64)
        else:
            self.__dict__.pop("classes_", None)  # from an earlier binary fit: not a classifier now
            try:
                t = y.astype(np.float64)
            except (TypeError, ValueError):
                raise ValidationError(
                    ["a continuous outcome must be numeric"],
                    fix="check the outcome column, or use task='binary'") from None
        self.prior_ = float(np.mean(t))

        avail = self._availability(X)
        self.n_patients_ = {n: int(avail[:, j].sum()) for j, n in enumerate(self.modality_names_)}
        empty = [n for n, k in self.n_patients_.items() if k == 0]
        if empty:
            raise ValidationError([f"no training patient has modality {n!r} (every one of its "
                                   "columns is missing)" for n in empty],
                                  fix="drop the modality, or check its columns")
        keep = avail.any(axis=1)
        if not keep.all():
            warnings.warn(f"JointFusion: {int((~keep).sum())} of {len(X)} patients have no "
                          f"modality at all (every column of {', '.join(self.modality_names_)} "
                          "missing); they are not used in fitting", PmedWarning, stacklevel=2)
        X, t, avail = X.iloc[np.flatnonzero(keep)], t[keep], avail[keep]
        if binary and len(np.unique(t)) < 2:
            raise ValidationError(["the patients with at least one modality have one outcome only"],
                                  fix="check the outcome and the modalities' columns")

        self.preprocessors_, self.grids_, self.images_, self.n_inputs_ = {}, {}, {}, {}
        for j, name in enumerate(self.modality_names_):
            # preprocessing learns from the patients who have the modality, not imputed absentees
            rows = X.iloc[np.flatnonzero(avail[:, j])]
            if self.kinds_[name] == "grid":
                self._fit_grid(name, rows)
            elif self.kinds_[name] == "image":
                self._fit_image(name, rows, shapes[name])
            else:
                self._fit_tabular(name, rows)
        arrays = self._arrays(X)
        for name, a in zip(self.modality_names_, self._per_modality(arrays), strict=True):
            if self.kinds_[name] == "tabular":
                self.n_inputs_[name] = int(a[0].shape[1])
        mask = avail.astype(np.float32)
        if binary:
            self.y_mean_, self.y_scale_ = 0.0, 1.0
            target = t.astype(np.float32)
        else:
            sd = float(np.std(t))
            self.y_mean_, self.y_scale_ = float(np.mean(t)), (sd if sd > 0 else 1.0)
            target = ((t - self.y_mean_) / self.y_scale_).astype(np.float32)

        # stratified by outcome for a binary task; a plain seeded share for a continuous one
        val = self._validation_mask(t.astype(int) if binary else np.zeros(len(t), int))
        tr = ~val
        seed = self._seed()
        p_drop = float(self.modality_dropout)
        with self._threads(), _deterministic_cudnn(torch):
            torch.manual_seed(seed)
            device = self._device()
            net = self._build().to(device)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            tr_t = [torch.from_numpy(a[tr]).to(device) for a in [*arrays, mask]]
            ytr = torch.from_numpy(target[tr]).to(device)
            if binary:
                w = self._class_weight_vector(t[tr].astype(int), 2)
                wtr = torch.from_numpy(np.where(t[tr] == 1, w[1], w[0]).astype(np.float32))
                lossf = torch.nn.BCEWithLogitsLoss(reduction="none")
            else:
                wtr = torch.ones(int(tr.sum()))
                lossf = torch.nn.MSELoss(reduction="none")
            wtr = wtr.to(device)
            n_tr = int(tr.sum())

            def train_epoch(epoch: int) -> float:
                gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
                perm = torch.randperm(n_tr, generator=gen).to(device)
                total = 0.0
                for i in range(0, n_tr, self.batch_size):
                    b = perm[i:i + self.batch_size]
                    inputs = [a[b] for a in tr_t]
                    if p_drop > 0:
                        inputs[-1] = _drop_modalities(torch, inputs[-1], p_drop)
                    opt.zero_grad()
                    loss = (lossf(net(*inputs), ytr[b]) * wtr[b]).mean()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                    opt.step()
                    total += loss.item() * len(b)
                return total / max(1, n_tr)

            def validate() -> dict:
                out = self._outputs(net, [a[val] for a in [*arrays, mask]], device)
                if binary:
                    p = np.clip(1 / (1 + np.exp(-out)), 1e-7, 1 - 1e-7)
                    yv = target[val]
                    return {"val_loss": float(-np.mean(yv * np.log(p) + (1 - yv) * np.log(1 - p)))}
                return {"val_loss": float(np.mean((out - target[val]) ** 2))}

            bar = EpochProgress(progress, total=self._max_epochs(), name="training joint fusion")
            try:
                run = self._train(module=net, optimizer=opt, train_epoch=train_epoch,
                                  validate=validate if val.any() else None, monitor="val_loss",
                                  min_delta=1e-4, bar=bar, checkpoint_dir=checkpoint_dir,
                                  resume=resume,
                                  fingerprint=self._data_fingerprint(
                                      [*arrays, mask, target[:, None]],
                                      t.astype(int) if binary else np.zeros(len(t), int)))
            finally:
                bar.close()
        self.history_ = [dict(r) for r in run["history"]]
        self.best_epoch_ = run["best_epoch"]
        self.stopped_early_ = run["stopped_early"]
        self.device_ = str(device)
        self.net_ = net.to("cpu").eval()
        return self

    def _per_modality(self, arrays: list[np.ndarray]) -> list[list[np.ndarray]]:
        """``arrays`` grouped by modality (three per grid modality, one per tabular one)."""
        out, i = [], 0
        for name in self.modality_names_:
            a = 3 if self.kinds_[name] == "grid" else 1
            out.append(arrays[i:i + a])
            i += a
        return out

    def _save_checkpoint(self, path, module, optimizer, scheduler, state, fingerprint) -> None:
        # the base records classes_, which a continuous task has not: record none for it
        if hasattr(self, "classes_"):
            return super()._save_checkpoint(path, module, optimizer, scheduler, state, fingerprint)
        self.classes_ = np.array([])
        try:
            return super()._save_checkpoint(path, module, optimizer, scheduler, state, fingerprint)
        finally:
            del self.classes_

    # ------------------------------------------------------------------ predict
    def _values(self, X) -> np.ndarray:
        """Probability of ``classes_[1]`` (binary) or the prediction (continuous) per patient."""
        import torch

        X = self._check_X(X)
        avail = self._availability(X)
        some = avail.any(axis=1)
        none = int((~some).sum())
        if none:
            what = "prevalence" if self.task == "binary" else "mean"
            warnings.warn(f"JointFusion: {none} of {len(X)} patients have no modality at all; they "
                          f"get the training {what} ({self.prior_:.4g})", PmedWarning, stacklevel=3)
        out = np.full(len(X), self.prior_, dtype=float)
        if some.any():
            rows = np.flatnonzero(some)
            Xs = X.iloc[rows]
            z = self._outputs(self.net_, [*self._arrays(Xs), avail[rows].astype(np.float32)],
                              torch.device("cpu"))
            out[rows] = (1 / (1 + np.exp(-z)) if self.task == "binary"
                         else z * self.y_scale_ + self.y_mean_)
        return out

    def modalities_used(self, X) -> pd.Series:
        """Which modalities each patient is predicted from: the ones they have.

        Parameters
        ----------
        X : pandas.DataFrame
            Patients × (at least) every modality's columns.

        Returns
        -------
        pandas.Series of str
            Indexed as ``X``: modality names in modality order joined by ``"+"``
            (``"clinical+prs"``), ``""`` for a patient with no modality (predicted by the
            training prevalence or mean), as :meth:`pmed.fusion.LateFusion.modalities_used`.
        """
        X = self._check_X(X)
        avail = self._availability(X)
        keys = [_SEP.join(n for n, a in zip(self.modality_names_, row, strict=True) if a)
                for row in avail]
        return pd.Series(keys, index=X.index, name="modalities_used", dtype=object)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        # the network's classes are built inside _network (PyTorch is imported lazily), so keep
        # its weights as numpy arrays (which pickle and skops, pmed's bundle format, both store)
        # and rebuild the network on loading, as GRUDClassifier does
        state = dict(super().__getstate__())
        net = state.pop("net_", None)
        if net is not None:
            state["_net_weights"] = {k: v.detach().cpu().numpy()
                                     for k, v in net.state_dict().items()}
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        weights = state.pop("_net_weights", None)
        super().__setstate__(state)
        if weights is not None:
            import torch

            net = self._build()
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
            self.net_ = net.eval()


@contextmanager
def _deterministic_cudnn(torch) -> Iterator[None]:
    """cuDNN restricted to deterministic convolution algorithms (then restored), so that a seed
    fixes an image encoder's training on a GPU as it does on a CPU."""
    cudnn = torch.backends.cudnn
    before = (cudnn.deterministic, cudnn.benchmark)
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = before


def _drop_modalities(torch, mask, p: float):
    """``mask`` with each present modality hidden with probability ``p``, never all of a row's."""
    hide = (torch.rand(mask.shape, device=mask.device) < p) & (mask > 0)
    kept = mask * (~hide).to(mask.dtype)
    emptied = (kept.sum(dim=1) == 0) & (mask.sum(dim=1) > 0)
    # a row left with nothing gets back one of its modalities, drawn among those it has (drawn
    # for every row, without a branch: no device sync, and the random stream does not depend
    # on the data)
    pick = (torch.rand(mask.shape, device=mask.device) * mask).argmax(dim=1)
    restore = torch.nn.functional.one_hot(pick, mask.shape[1]).to(mask.dtype)
    return torch.where(emptied[:, None], restore, kept)
