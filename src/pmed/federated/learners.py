"""What each site computes: summary statistics, the shared encoding, and local model updates.

Pure NumPy/pandas (no Flower import): the Flower ClientApp and ServerApp of
:mod:`pmed.federated.flower_app` call these, and so do the tests and the benchmark's centrally
pooled and site-local baselines, so the three are trained by the same code.

Preprocessing without pooling rows: every site sends, once, per numeric column its count of
observed values, their sum and their sum of squares, and per categorical column the count of
each level (aggregates only; no patient value leaves a site). The server turns these into one
*layout*: numeric columns are imputed with the pooled mean and standardized with the pooled
mean and SD; categorical columns are one-hot coded over the union of levels (a missing or
unseen level is all zeros) and standardized with the pooled level frequency. Medians are not
computed (they need more than sums): the pooled mean stands in for them.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MIN_SITE_PATIENTS", "site_summary", "build_layout", "encode", "split_rows", "init_params",
    "local_train", "predict_proba", "fit_central",
]

#: Fewest patients a site may hold (a smaller site is refused: its updates identify patients).
MIN_SITE_PATIENTS = 20


def _is_numeric(s: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s))


def site_summary(X: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    """Aggregates one site shares: counts, sums, sums of squares, level counts — no row."""
    cols: dict[str, Any] = {}
    for c in X.columns:
        s = X[c]
        if _is_numeric(s):
            v = pd.to_numeric(s, errors="coerce").astype(float).to_numpy()
            ok = np.isfinite(v)
            cols[str(c)] = {"kind": "numeric", "count": int(ok.sum()), "sum": float(v[ok].sum()),
                            "sumsq": float((v[ok] ** 2).sum())}
        else:
            counts = s.dropna().astype(str).value_counts()
            cols[str(c)] = {"kind": "categorical", "levels": {str(k): int(n) for k, n in counts.items()}}
    return {"n": int(len(X)), "n_pos": int(np.sum(y == 1)), "columns": cols}


def build_layout(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The shared encoding from the sites' summaries (columns every site has, in a fixed order)."""
    common = set(summaries[0]["columns"])
    for s in summaries[1:]:
        common &= set(s["columns"])
    dropped = sorted(set().union(*(set(s["columns"]) for s in summaries)) - common)
    layout: dict[str, Any] = {"numeric": [], "categorical": [], "dropped": dropped}
    for c in sorted(common):
        kinds = {s["columns"][c]["kind"] for s in summaries}
        if kinds == {"numeric"}:
            n = sum(s["columns"][c]["count"] for s in summaries)
            tot = sum(s["columns"][c]["sum"] for s in summaries)
            sq = sum(s["columns"][c]["sumsq"] for s in summaries)
            if n == 0:
                layout["dropped"].append(c)
                continue
            mean = tot / n
            sd = float(np.sqrt(max(sq / n - mean**2, 0.0)))
            layout["numeric"].append({"name": c, "mean": mean, "sd": sd if sd > 1e-12 else 1.0})
        else:  # categorical at some site: a level count; a numeric-at-one-site column is dropped
            if kinds != {"categorical"}:
                layout["dropped"].append(c)
                continue
            counts: dict[str, int] = {}
            for s in summaries:
                for lev, k in s["columns"][c]["levels"].items():
                    counts[lev] = counts.get(lev, 0) + k
            n = sum(s["n"] for s in summaries)
            levels = []
            for lev in sorted(counts):
                p = counts[lev] / n
                sd = float(np.sqrt(p * (1 - p)))
                levels.append({"level": lev, "mean": p, "sd": sd if sd > 1e-12 else 1.0})
            layout["categorical"].append({"name": c, "levels": levels})
    layout["n_features"] = len(layout["numeric"]) + sum(len(c["levels"]) for c in layout["categorical"])
    return layout


def encode(X: pd.DataFrame, layout: dict[str, Any]) -> np.ndarray:
    """The standardized design matrix of ``X`` under the shared ``layout``."""
    parts = []
    for col in layout["numeric"]:
        v = pd.to_numeric(X[col["name"]], errors="coerce").astype(float).to_numpy()
        v = np.where(np.isfinite(v), v, col["mean"])
        parts.append(((v - col["mean"]) / col["sd"])[:, None])
    for col in layout["categorical"]:
        s = X[col["name"]].astype("object")
        s = s.where(s.isna(), s.astype(str)).to_numpy()
        for lev in col["levels"]:
            ind = (s == lev["level"]).astype(float)
            parts.append(((ind - lev["mean"]) / lev["sd"])[:, None])
    if not parts:
        return np.zeros((len(X), 0))
    return np.hstack(parts)


def split_rows(y: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """A stratified held-out mask (True = test row), the same wherever it is recomputed."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        test[idx[: int(round(test_fraction * len(idx)))]] = True
    return test


# ---- models: logistic regression and a one-hidden-layer MLP, as lists of arrays --------------

def init_params(model: str, n_features: int, *, hidden: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Starting parameters (the server draws them once; every site starts from the same)."""
    if model == "logistic":
        return [np.zeros(n_features), np.zeros(1)]
    if model == "mlp":
        rng = np.random.default_rng(seed)
        w1 = rng.normal(0, np.sqrt(2.0 / max(n_features, 1)), (n_features, hidden))
        return [w1, np.zeros(hidden), rng.normal(0, np.sqrt(1.0 / hidden), hidden), np.zeros(1)]
    raise ValueError(f"unknown model {model!r}")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))


def _forward(params: list[np.ndarray], Z: np.ndarray):
    if len(params) == 2:
        w, b = params
        return Z @ w + b[0], None
    w1, b1, w2, b2 = params
    h = np.maximum(Z @ w1 + b1, 0.0)
    return h @ w2 + b2[0], h


def predict_proba(params: list[np.ndarray], Z: np.ndarray) -> np.ndarray:
    """Event probabilities of the encoded rows ``Z``."""
    return _sigmoid(_forward(params, Z)[0])


def _gradients(params, Z, y, l2):
    n = len(y)
    z, h = _forward(params, Z)
    r = (_sigmoid(z) - y) / n  # d mean-log-loss / d logit
    if len(params) == 2:
        w, _ = params
        return [Z.T @ r + l2 * w, np.array([r.sum()])]
    w1, b1, w2, _ = params
    dh = np.outer(r, w2) * (h > 0)
    return [Z.T @ dh + l2 * w1, dh.sum(0), h.T @ r + l2 * w2, np.array([r.sum()])]


def local_train(params: list[np.ndarray], Z: np.ndarray, y: np.ndarray, *, steps: int, lr: float,
                l2: float, mu: float = 0.0) -> list[np.ndarray]:
    """``steps`` full-batch gradient steps on mean log-loss + L2 (+ FedProx's ``mu/2·||θ-θ_global||²``).

    Starts from (a copy of) the global ``params``; returns the site's updated parameters.
    """
    glob = [p.copy() for p in params]
    cur = [p.astype(float).copy() for p in params]
    y = y.astype(float)
    for _ in range(steps):
        grads = _gradients(cur, Z, y, l2)
        for i, g in enumerate(grads):
            if mu:
                g = g + mu * (cur[i] - glob[i])
            cur[i] = cur[i] - lr * g
    return cur


def fit_central(Z: np.ndarray, y: np.ndarray, *, model: str, rounds: int, steps: int, lr: float,
                l2: float, hidden: int = 16, seed: int = 0) -> list[np.ndarray]:
    """The same learner on one table (pooled or one site's): ``rounds × steps`` gradient steps."""
    params = init_params(model, Z.shape[1], hidden=hidden, seed=seed)
    return local_train(params, Z, y, steps=rounds * steps, lr=lr, l2=l2)


def params_to_json(params: list[np.ndarray]) -> list:
    return [p.tolist() for p in params]


def params_from_json(obj: list) -> list[np.ndarray]:
    return [np.asarray(p, dtype=float) for p in obj]


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=True)
