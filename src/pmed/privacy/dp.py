"""Differentially private model families: ``dp_logistic`` and ``dp_mlp`` (binary targets).

A study names them like any other family, with the privacy budget in ``params``::

    models:
      - family: dp_logistic
        params: {epsilon: 1.0}                     # data_norm, C, max_iter, tol, random_state
      - family: dp_mlp
        params: {epsilon: 3.0, delta: 1.0e-5}      # max_grad_norm, epochs, batch_size, ...

- :class:`DPLogisticClassifier` (``dp_logistic``): L2-regularised logistic regression by
  *objective perturbation* (Chaudhuri, Monteleoni & Sarwate, JMLR 2011, Algorithm 2), the
  mechanism of :class:`diffprivlib.models.LogisticRegression`, whose vector mechanism
  (:class:`diffprivlib.mechanisms.Vector`) draws the noise. Pure ε-differential privacy (δ = 0).
  The theorem needs every row inside the unit ball: each row is first **clipped** to Euclidean
  norm ``data_norm`` (rows longer than that are scaled down onto the sphere, shorter ones are
  untouched), a constant 1 is appended for the intercept, and the row is divided by
  ``sqrt(data_norm² + 1)``; the guarantee then holds whatever the data, by construction, not by
  an assumption about them. ``data_norm=None`` uses ``sqrt(n_features)``, which depends on the
  number of columns only (pmed's preprocessing standardises numeric columns, so that is the
  expected norm of a row).
- :class:`DPMLPClassifier` (``dp_mlp``): a small multilayer perceptron (ReLU, one logit) trained
  by DP-SGD (Abadi et al., CCS 2016) with Opacus: Poisson-sampled batches, per-example gradients
  clipped to ``max_grad_norm``, Gaussian noise whose multiplier
  :meth:`opacus.PrivacyEngine.make_private_with_epsilon` chooses so that the accountant
  (``"rdp"`` by default) reports at most ``epsilon`` after ``epochs`` epochs at ``delta``.
  ``delta=None`` uses ``min(1e-5, n**-1.1)`` for ``n`` training rows (always below ``1/n``).
  PyTorch and Opacus run on CUDA when present (``device="auto"``); the fitted weights are kept
  as NumPy arrays, so predicting (and loading a bundle) needs neither.

After ``fit``, both record what was spent: ``epsilon_``, ``delta_`` and ``privacy_budget_`` (a
JSON-ready dict: mechanism, library and version, ε, δ, accountant, data norm or clipping bound,
noise, how the noise was seeded). :func:`privacy_budget` finds that record inside a fitted
pipeline (or a tuned or recalibrated model, adding up the budgets of several fits), which a study
writes to the bundle manifest under ``privacy``.

What is and is not covered
    The guarantee covers the **fitted model parameters** with respect to the rows they were fitted
    on, given the features the model step receives. pmed's preprocessing (median imputation,
    standardisation, one-hot levels), fitted inside the same pipeline, is not private, and
    neither are the study's other outputs (cross-validated metrics, the manifest's reference
    summaries and prediction quantiles, explanations). Cross-validation refits the model once per
    fold: each fold's model has the stated budget; the bundle holds the final refit.
    Objective perturbation assumes the perturbed objective is minimised exactly (L-BFGS stops
    at ``tol``), and DP-SGD here uses PyTorch's pseudo-random generator unless
    ``secure_mode=True`` (which needs ``torchcsprng``).

Noise seeds
    ``random_state=None`` (the default, and what a study uses unless its params set
    ``random_state``) draws the noise from the operating system's entropy, so that nobody can
    reproduce it. An integer ``random_state`` makes a fit repeatable (tests, benchmarks) but
    whoever knows the seed can subtract the noise: the budget then records
    ``noise_seed: "fixed"`` and says the guarantee does not hold against them.

Families are registered by :func:`register_privacy_families` (idempotent); diffprivlib, PyTorch
and Opacus are imported only when a model is fitted (extra ``privacy``).
"""

from __future__ import annotations

import math
import secrets
import warnings
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from pmed.errors import MissingDependencyError, OptionError, StudyError

__all__ = [
    "DPLogisticClassifier",
    "DPMLPClassifier",
    "DP_FAMILIES",
    "check_epsilon",
    "default_delta",
    "privacy_budget",
    "register_privacy_families",
]

#: family → description (the registry's one line)
DP_FAMILIES = {
    "dp_logistic": "differentially private logistic regression (objective perturbation, diffprivlib; "
                   "params: epsilon (required), data_norm, C), binary",
    "dp_mlp": "differentially private neural network (DP-SGD with Opacus; params: epsilon (required), "
              "delta, max_grad_norm, epochs, batch_size), binary; needs PyTorch",
}

#: Rényi orders of the ``rdp`` accountant: a coarser grid than Opacus' default below 11 (its
#: fractional orders dominate the time of a fit), and orders above its largest (63), without
#: which a small ε at a small δ (ε = 0.1 at δ = 1e-5) cannot be certified at all. Any grid gives
#: a valid bound; a coarser one can only make it looser.
RDP_ORDERS = tuple([1 + x / 4.0 for x in range(1, 40)] + list(range(11, 64))
                   + [64, 80, 96, 128, 160, 192, 256, 384, 512])

_EPS_FIX = "give a finite privacy budget epsilon > 0, e.g. params: {epsilon: 1.0} (smaller is more private)"


def check_epsilon(epsilon: Any, *, name: str = "epsilon") -> float:
    """``epsilon`` as a float, or :class:`~pmed.errors.OptionError` when it is missing, not a
    number, not finite, or ≤ 0 (ε = 0 would mean no information at all; ε = ∞ no privacy)."""
    if epsilon is None:
        raise OptionError(f"a differentially private model needs a privacy budget {name}, and none was given",
                          fix=_EPS_FIX)
    if isinstance(epsilon, bool) or not isinstance(epsilon, Real):
        raise OptionError(f"{name} must be a number, got {epsilon!r}", fix=_EPS_FIX)
    value = float(epsilon)
    if not math.isfinite(value):
        raise OptionError(f"{name} must be finite, got {value} (an infinite budget is no privacy at all)",
                          fix=_EPS_FIX + "; for a model without privacy use family linear")
    if value <= 0:
        raise OptionError(f"{name} must be greater than 0, got {value:g}", fix=_EPS_FIX)
    return value


def _check_positive(value: Any, name: str, *, integer: bool = False) -> float | int:
    ok = (isinstance(value, Integral) if integer else isinstance(value, Real)) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or value <= 0:
        kind = "a positive integer" if integer else "a finite number > 0"
        raise OptionError(f"{name} must be {kind}, got {value!r}", fix=f"set {name} to {kind}")
    return int(value) if integer else float(value)


def default_delta(n: int) -> float:
    """δ when none is given: ``min(1e-5, n**-1.1)``, below ``1/n`` for every training size ``n``."""
    return float(min(1e-5, float(n) ** -1.1))


def _pkg_version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def _validate(est, X, y=None, *, reset: bool):
    from sklearn.utils.validation import validate_data

    if y is None:
        return validate_data(est, X, reset=reset, dtype=np.float64)
    return validate_data(est, X, y, reset=reset, dtype=np.float64)


def _binary_target(y) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.utils.multiclass import check_classification_targets

    check_classification_targets(y)
    classes = np.unique(y)
    if len(classes) != 2:
        raise OptionError(f"a differentially private family fits binary targets with two classes, got "
                          f"{len(classes)} class(es)", fix="give a binary outcome")
    return classes, (y == classes[1]).astype(np.float64)


def _seed_note(random_state) -> dict:
    if random_state is None:
        return {"noise_seed": "secret (operating-system entropy)"}
    return {"noise_seed": "fixed",
            "noise_seed_warning": "random_state was set: whoever knows it can reproduce the noise, and the "
                                  "guarantee does not hold against them (leave random_state unset in production)"}


def _check_fitted(est) -> None:
    from sklearn.exceptions import NotFittedError

    if not hasattr(est, "privacy_budget_"):
        raise NotFittedError(f"this {type(est).__name__} is not fitted yet; call fit(X, y) first")


# ---------------------------------------------------------------------- dp_logistic
def _vector_mechanism():
    """diffprivlib's :class:`~diffprivlib.mechanisms.Vector` (the objective-perturbation noise).

    diffprivlib 0.6.6 imports ``DOUBLE`` and ``DTYPE`` from ``sklearn.tree._tree`` (for its
    private random forest) when the package is imported, names scikit-learn 1.9 no longer has.
    They are set to their former values (``float64``, ``float32``) when missing, so that the
    package imports; pmed uses none of diffprivlib's estimators.
    """
    import sklearn.tree._tree as _tree

    for name, value in (("DOUBLE", np.float64), ("DTYPE", np.float32)):
        if not hasattr(_tree, name):
            setattr(_tree, name, value)
    try:
        from diffprivlib.mechanisms import Vector
    except ImportError as e:
        if e.name is not None and e.name.split(".")[0] != "diffprivlib":
            raise
        raise MissingDependencyError("diffprivlib", extra="privacy", feature="model family dp_logistic") from None
    return Vector


class _LogitOutputs:
    """``predict_proba`` and ``predict`` of a binary classifier from its ``decision_function`` (a logit)."""

    def predict_proba(self, X) -> np.ndarray:
        """``(n, 2)`` probabilities of ``classes_[0]`` and ``classes_[1]``."""
        s = self.decision_function(X)
        p = 0.5 * (1.0 + np.tanh(0.5 * s))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """The predicted class (``classes_[1]`` at probability ≥ 0.5)."""
        return self.classes_[(self.decision_function(X) >= 0).astype(int)]


class DPLogisticClassifier(_LogitOutputs, ClassifierMixin, BaseEstimator):
    """ε-differentially private logistic regression (objective perturbation), binary.

    Parameters
    ----------
    epsilon : float
        The privacy budget ε > 0 (required).
    data_norm : float, optional
        Rows are clipped to this Euclidean norm before fitting (``None``: ``sqrt(n_features)``).
        Larger keeps more of each row but spreads the same noise over a smaller signal.
    C : float
        Inverse L2 regularisation strength, on the rows scaled into the unit ball (the
        regulariser includes the intercept, as objective perturbation needs a strongly convex
        objective). Default 0.1, stronger than scikit-learn's 1.0: at small ε the regulariser
        limits how far the noise pulls the coefficients (on breast cancer, mean AUROC at ε = 1 was
        0.96 with C = 0.1 against 0.88 with C = 1; at ε = 10, 0.977 against 0.987). Objective
        perturbation spends ``2·log(1 + C/4)`` of ε on the curvature term; when ε is smaller than
        that, extra regularisation is added instead (Chaudhuri et al.).
    max_iter, tol : int, float
        L-BFGS-B iterations and gradient tolerance of the perturbed objective.
    random_state : int, optional
        Seeds the noise (see the module's *Noise seeds*); ``None``: secret.

    Attributes
    ----------
    classes_, coef_ (1, n_features), intercept_ (1,), n_features_in_, n_iter_
    epsilon_, delta_ : float
        The budget spent (δ = 0: pure ε-DP).
    privacy_budget_ : dict
        What :func:`privacy_budget` reports.
    clipped_fraction_ : float
        Share of training rows that were clipped (a diagnostic for choosing ``data_norm``; it is
        itself not private and is kept out of ``privacy_budget_``).
    """

    def __init__(self, *, epsilon: float | None = None, data_norm: float | None = None, C: float = 0.1,
                 max_iter: int = 1000, tol: float = 1e-6, random_state: int | None = None) -> None:
        self.epsilon = epsilon
        self.data_norm = data_norm
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, y) -> DPLogisticClassifier:
        """Fit on ``X`` (numeric, no missing values) and binary ``y``; returns ``self``."""
        from scipy.optimize import minimize

        eps = check_epsilon(self.epsilon)
        C = _check_positive(self.C, "C")
        max_iter = _check_positive(self.max_iter, "max_iter", integer=True)
        tol = _check_positive(self.tol, "tol")
        X, y = _validate(self, X, y, reset=True)
        classes, yb = _binary_target(y)
        n, d = X.shape
        R = float(np.sqrt(d)) if self.data_norm is None else _check_positive(self.data_norm, "data_norm")
        Vector = _vector_mechanism()

        norms = np.linalg.norm(X, axis=1)
        factor = np.minimum(1.0, R / np.maximum(norms, np.finfo(float).tiny))
        scale = np.sqrt(R * R + 1.0)
        Z = np.column_stack([X * factor[:, None], np.ones(n)]) / scale  # every row: norm ≤ 1

        lam = 1.0 / (C * n)  # objective (1/n)·Σ log-loss + (1/(2Cn))·‖w‖²

        def loss_grad(w: np.ndarray, *_: Any) -> tuple[float, np.ndarray]:
            s = Z @ w
            loss = float(np.mean(np.logaddexp(0.0, s) - yb * s) + 0.5 * lam * (w @ w))
            p = 0.5 * (1.0 + np.tanh(0.5 * s))  # the logistic function without overflow
            return loss, Z.T @ (p - yb) / n + lam * w

        # Chaudhuri et al.: c = 1/4 bounds the log-loss's curvature; nΛ = 1/C; rows in the unit ball
        mech = Vector(epsilon=eps, function_sensitivity=0.25, data_sensitivity=1.0, dimension=d + 1,
                      alpha=1.0 / C, n=n, random_state=self.random_state)
        noisy = mech.randomise(loss_grad)
        res = minimize(noisy, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter, "gtol": tol})
        w = res.x / scale
        self.classes_ = classes
        self.coef_ = w[None, :-1]
        self.intercept_ = w[-1:].copy()
        self.n_iter_ = np.array([int(res.nit)])
        self.clipped_fraction_ = float(np.mean(norms > R))
        self.epsilon_, self.delta_ = eps, 0.0
        self.privacy_budget_ = {
            "family": "dp_logistic",
            "mechanism": "objective perturbation (Chaudhuri, Monteleoni & Sarwate 2011), diffprivlib vector mechanism",
            "library": f"diffprivlib {_pkg_version('diffprivlib')}",
            "epsilon": eps, "delta": 0.0, "accountant": "pure epsilon-DP, one release",
            "data_norm": R, "rows_clipped_to_data_norm": True, "C": C, "n_train": int(n),
            **_seed_note(self.random_state),
            "covers": "the model's coefficients given its input rows; pmed's preprocessing is not private",
        }
        return self

    def decision_function(self, X) -> np.ndarray:
        """The linear score ``X @ coef_.T + intercept_`` (rows are not clipped at prediction)."""
        _check_fitted(self)
        X = _validate(self, X, reset=False)
        return X @ self.coef_[0] + self.intercept_[0]



# ---------------------------------------------------------------------- dp_mlp
def _quiet_opacus():
    """A warnings filter for Opacus' notices that say nothing about this fit's guarantee."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    for msg in ("Secure RNG turned off", "Full backward hook is firing", "Optimal order is the",
                "Using a non-full backward hook"):
        warnings.filterwarnings("ignore", message=f".*{msg}.*")
    return ctx


class DPMLPClassifier(_LogitOutputs, ClassifierMixin, BaseEstimator):
    """(ε, δ)-differentially private multilayer perceptron trained by DP-SGD (Opacus), binary.

    Parameters
    ----------
    epsilon : float
        The privacy budget ε > 0 (required): the noise is set so that the accountant reports at
        most this after all epochs.
    delta : float, optional
        δ in (0, 1); ``None``: :func:`default_delta` of the training size.
    hidden_layer_sizes : tuple of int
        Widths of the ReLU hidden layers.
    max_grad_norm : float
        Per-example gradient clipping bound.
    epochs, batch_size : int
        Passes over the data and the batch size: Opacus samples each row into a batch with
        probability ``1 / ceil(n / batch_size)`` (Poisson sampling).
    learning_rate : float
        Step size of SGD with momentum 0.9 (``optimizer="sgd"``) or Adam (``"adam"``).
    accountant : {"rdp", "prv", "gdp"}
        Opacus' privacy accountant (RDP: a fast, conservative bound; PRV: tighter, slower).
    secure_mode : bool
        Opacus' cryptographically secure noise (needs ``torchcsprng``).
    device : str
        ``"auto"`` (CUDA when available, else the CPU) or a torch device string.
    n_jobs : int
        CPU threads for PyTorch during ``fit``.
    random_state : int, optional
        Seeds weights, batches and noise (see the module's *Noise seeds*); ``None``: secret.

    Attributes
    ----------
    classes_, coefs_ (list of (in, out) arrays), intercepts_, n_features_in_, n_steps_,
    noise_multiplier_, epsilon_ (reported by the accountant, ≤ ``epsilon``), delta_,
    privacy_budget_, device_
    """

    def __init__(self, *, epsilon: float | None = None, delta: float | None = None,
                 hidden_layer_sizes: tuple[int, ...] = (32,), max_grad_norm: float = 1.0, epochs: int = 20,
                 batch_size: int = 64, learning_rate: float = 0.05, optimizer: str = "sgd",
                 accountant: str = "rdp", secure_mode: bool = False, device: str = "auto", n_jobs: int = 1,
                 random_state: int | None = None) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.hidden_layer_sizes = hidden_layer_sizes
        self.max_grad_norm = max_grad_norm
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.accountant = accountant
        self.secure_mode = secure_mode
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _check_params(self, n: int) -> dict:
        eps = check_epsilon(self.epsilon)
        if self.delta is None:
            delta = default_delta(n)
        else:
            delta = _check_positive(self.delta, "delta")
            if delta >= 1:
                raise OptionError(f"delta must be below 1, got {delta:g}", fix="use e.g. delta: 1.0e-5 (below 1/n)")
        hidden = (self.hidden_layer_sizes,) if isinstance(self.hidden_layer_sizes, Integral) \
            else tuple(self.hidden_layer_sizes)
        for h in hidden:
            _check_positive(h, "hidden_layer_sizes", integer=True)
        if self.optimizer not in ("sgd", "adam"):
            raise OptionError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}", fix="use sgd or adam")
        if self.accountant not in ("rdp", "prv", "gdp"):
            raise OptionError(f"accountant must be 'rdp', 'prv' or 'gdp', got {self.accountant!r}",
                              fix="use rdp (the default)")
        return {"epsilon": eps, "delta": delta, "hidden": tuple(int(h) for h in hidden),
                "max_grad_norm": _check_positive(self.max_grad_norm, "max_grad_norm"),
                "epochs": _check_positive(self.epochs, "epochs", integer=True),
                "batch_size": _check_positive(self.batch_size, "batch_size", integer=True),
                "lr": _check_positive(self.learning_rate, "learning_rate"),
                "n_jobs": _check_positive(self.n_jobs, "n_jobs", integer=True)}

    def fit(self, X, y) -> DPMLPClassifier:
        """Fit on ``X`` (numeric, no missing values) and binary ``y``; returns ``self``."""
        X, y = _validate(self, X, y, reset=True)
        classes, yb = _binary_target(y)
        n, d = X.shape
        p = self._check_params(n)
        try:
            import torch
            from opacus import PrivacyEngine
        except ImportError as e:
            if e.name is not None and e.name.split(".")[0] not in ("torch", "opacus"):
                raise
            raise MissingDependencyError(e.name.split(".")[0] if e.name else "opacus", extra="privacy",
                                         feature="model family dp_mlp") from None
        from torch import nn

        device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto"
                              else self.device)
        seed = secrets.randbits(62) if self.random_state is None else int(self.random_state)
        threads = torch.get_num_threads()
        torch.set_num_threads(p["n_jobs"])
        quiet = _quiet_opacus()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                layers: list = []
                width = d
                for h in p["hidden"]:
                    layers += [nn.Linear(width, h), nn.ReLU()]
                    width = h
                net = nn.Sequential(*layers, nn.Linear(width, 1)).to(device)
            opt = (torch.optim.SGD(net.parameters(), lr=p["lr"], momentum=0.9) if self.optimizer == "sgd"
                   else torch.optim.Adam(net.parameters(), lr=p["lr"]))
            data = torch.utils.data.TensorDataset(torch.as_tensor(X, dtype=torch.float32),
                                                  torch.as_tensor(yb, dtype=torch.float32))
            batch = min(p["batch_size"], n)
            loader = torch.utils.data.DataLoader(data, batch_size=batch,
                                                 generator=torch.Generator().manual_seed(seed + 1))
            noise = torch.Generator(device=device).manual_seed(seed + 2)
            engine = PrivacyEngine(accountant=self.accountant, secure_mode=bool(self.secure_mode))
            orders = {"alphas": list(RDP_ORDERS)} if self.accountant == "rdp" else {}
            try:
                model, dp_opt, dp_loader = engine.make_private_with_epsilon(
                    module=net, optimizer=opt, data_loader=loader, target_epsilon=p["epsilon"],
                    target_delta=p["delta"], epochs=p["epochs"], max_grad_norm=p["max_grad_norm"],
                    poisson_sampling=True, noise_generator=noise, **orders)
            except ValueError as e:
                if "too low" not in str(e):
                    raise
                raise OptionError(f"epsilon = {p['epsilon']:g} at delta = {p['delta']:g} cannot be reached with "
                                  f"{p['epochs']} epochs at sampling rate {batch / n:.3g} (Opacus: {e})",
                                  fix="raise epsilon or delta, or use fewer epochs or a smaller batch_size") from None
            loss_fn = nn.BCEWithLogitsLoss()
            steps = 0
            model.train()
            for _ in range(p["epochs"]):
                for xb, yb_t in dp_loader:  # an empty Poisson batch still takes a (noise-only) step
                    dp_opt.zero_grad()
                    out = model(xb.to(device)).reshape(-1)
                    loss = loss_fn(out, yb_t.to(device)) if len(xb) else out.sum()
                    loss.backward()
                    dp_opt.step()
                    steps += 1
            spent = float(engine.accountant.get_epsilon(delta=p["delta"], **orders))
            rate = float(getattr(dp_loader, "sample_rate", 1 / len(loader)))  # Opacus: 1 / batches per epoch
            sigma = float(dp_opt.noise_multiplier)
            linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
            self.coefs_ = [m.weight.detach().cpu().numpy().T.astype(np.float64) for m in linears]
            self.intercepts_ = [m.bias.detach().cpu().numpy().astype(np.float64) for m in linears]
        finally:
            quiet.__exit__(None, None, None)
            torch.set_num_threads(threads)
        self.classes_ = classes
        self.n_steps_ = steps
        self.noise_multiplier_ = sigma
        self.device_ = str(device)
        self.epsilon_, self.delta_ = spent, p["delta"]
        self.privacy_budget_ = {
            "family": "dp_mlp",
            "mechanism": "DP-SGD (Abadi et al. 2016): Poisson sampling, per-example clipping, Gaussian noise",
            "library": f"opacus {_pkg_version('opacus')}",
            "epsilon": spent, "epsilon_target": p["epsilon"], "delta": p["delta"],
            "delta_default": self.delta is None, "accountant": self.accountant,
            "noise_multiplier": sigma, "max_grad_norm": p["max_grad_norm"], "sample_rate": rate,
            "epochs": p["epochs"], "steps": steps, "n_train": int(n), "secure_mode": bool(self.secure_mode),
            **_seed_note(self.random_state),
            "covers": "the network's weights given its input rows; pmed's preprocessing is not private",
        }
        return self

    def decision_function(self, X) -> np.ndarray:
        """The network's logit for ``classes_[1]`` (computed with NumPy)."""
        _check_fitted(self)
        h = _validate(self, X, reset=False)
        for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_, strict=True)):
            h = h @ W + b
            if i < len(self.coefs_) - 1:
                h = np.maximum(h, 0.0)
        return h[:, 0]



# ---------------------------------------------------------------------- budget of a fitted model
def _children(obj: Any) -> list:
    out: list = []
    steps = getattr(obj, "steps", None)
    if isinstance(steps, list):  # Pipeline
        out += [s[1] for s in steps if isinstance(s, tuple) and len(s) >= 2]
    for attr in ("best_estimator_", "estimator_", "base_estimator_"):
        if hasattr(obj, attr):
            out.append(getattr(obj, attr))
    for attr in ("calibrated_classifiers_", "estimators_"):
        value = getattr(obj, attr, None)
        if isinstance(value, list | tuple):
            out += list(value)
    if type(obj).__name__ == "_CalibratedClassifier":
        out.append(obj.estimator)
    return out


def privacy_budget(estimator: Any) -> dict | None:
    """The privacy budget of a fitted model, or ``None`` when it holds no DP family.

    Looks inside pipelines, tuned models (``best_estimator_``) and recalibrated ones
    (``calibrated_classifiers_``). One differentially private fit: its ``privacy_budget_``.
    Several (e.g. in-fold recalibration fitted one per fold): ``epsilon`` and ``delta`` are their
    sums (basic composition, an upper bound), with each fit under ``parts``.
    """
    found: list[dict] = []
    seen: set[int] = set()
    stack = [estimator]
    while stack:
        obj = stack.pop()
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        budget = getattr(obj, "privacy_budget_", None)
        if isinstance(budget, Mapping):
            found.append(dict(budget))
            continue
        stack.extend(reversed(_children(obj)))
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    return {"family": found[0].get("family"), "composition": "basic (sums over the fits in the model)",
            "epsilon": float(sum(b["epsilon"] for b in found)), "delta": float(sum(b["delta"] for b in found)),
            "n_fits": len(found), "parts": found}


# ---------------------------------------------------------------------- registry
#: The keyword options of each family's estimator, named in the fix of a study's unknown option.
_OPTIONS = {
    "dp_logistic": "epsilon, data_norm, C, max_iter, tol, random_state",
    "dp_mlp": "epsilon, delta, hidden_layer_sizes, max_grad_norm, epochs, batch_size, learning_rate, optimizer, "
              "accountant, secure_mode, device, n_jobs, random_state",
}


def _factory(family: str, cls: type):
    """The registry's factory of ``family``: ``cls(**params)``, a study's bad budget or unknown
    option refused as a :class:`~pmed.errors.StudyError` before anything is fitted. The study's
    seed is not passed on: see the module's "Noise seeds"."""
    def factory(*, task: str, params: Mapping[str, Any], seed: int, X: Any):
        try:
            check_epsilon(params.get("epsilon"))
        except OptionError as e:
            raise StudyError(f"model family {family!r}: {e.message}", where="key models[].params.epsilon",
                             fix=e.fix) from None
        try:
            return cls(**params)
        except TypeError as e:
            raise StudyError(f"model family {family!r}: {e}", where="key models[].params",
                             fix=f"use {_OPTIONS[family]}") from None

    return factory


def register_privacy_families() -> None:
    """Register ``dp_logistic`` and ``dp_mlp`` (task ``binary``) in the model registry (idempotent)."""
    from pmed.models.registry import register_model, registered_families

    known = registered_families()
    factories = {"dp_logistic": _factory("dp_logistic", DPLogisticClassifier),
                 "dp_mlp": _factory("dp_mlp", DPMLPClassifier)}
    for family, description in DP_FAMILIES.items():
        if family not in known:
            register_model(family, factories[family], description=description, tasks=("binary",))
