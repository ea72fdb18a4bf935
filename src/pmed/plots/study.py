"""Plots of a study's cross-validated results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pmed.plots._base import _plt

__all__ = ["roc_curves", "pr_curves", "confusion_matrix", "importance_bar", "predicted_vs_observed",
           "population_position"]


def roc_curves(oof: pd.DataFrame, *, title: str = "ROC (out-of-fold)"):
    """ROC curve of each model from out-of-fold predictions (``model, outcome, prediction``)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, g in oof.groupby("model", sort=False):
        fpr, tpr, _ = roc_curve(g["outcome"], g["prediction"])
        ax.plot(fpr, tpr, label=f"{name} (AUROC {roc_auc_score(g['outcome'], g['prediction']):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def pr_curves(oof: pd.DataFrame, *, title: str = "Precision–recall (out-of-fold)"):
    """Precision–recall curve of each model, with the prevalence as the no-skill line."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, g in oof.groupby("model", sort=False):
        prec, rec, _ = precision_recall_curve(g["outcome"], g["prediction"])
        ax.plot(rec, prec, label=f"{name} (AP {average_precision_score(g['outcome'], g['prediction']):.3f})")
    prev = oof.drop_duplicates("patient_id")["outcome"].mean()
    ax.axhline(prev, ls="--", c="grey", lw=1, label=f"prevalence {prev:.2f}")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title=title, ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def confusion_matrix(cm: dict, *, title: str = "Confusion matrix"):
    """A 2×2 confusion matrix from ``{"tn", "fp", "fn", "tp"}``."""
    plt = _plt()
    m = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(m, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(m[i, j]), ha="center", va="center",
                    color="white" if m[i, j] > m.max() / 2 else "black", fontsize=12)
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["pred 0", "pred 1"],
           yticklabels=["true 0", "true 1"], title=title)
    fig.tight_layout()
    return fig


def importance_bar(importance: pd.DataFrame, *, top: int = 20, title: str = "Feature importance"):
    """Horizontal bars of the ``top`` features of a ``feature, importance`` table."""
    plt = _plt()
    d = importance.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(d) + 1.2))
    ax.barh(d["feature"].astype(str), d["importance"], color="#3b6ea5")
    ax.set(xlabel=str(importance["method"].iloc[0]) if "method" in importance else "importance", title=title)
    fig.tight_layout()
    return fig


def predicted_vs_observed(oof: pd.DataFrame, *, title: str = ""):
    """Scatter of out-of-fold predictions against observed values, with the identity line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(oof["outcome"], oof["prediction"], s=8, alpha=0.5)
    lo = float(min(oof["outcome"].min(), oof["prediction"].min()))
    hi = float(max(oof["outcome"].max(), oof["prediction"].max()))
    ax.plot([lo, hi], [lo, hi], ls="--", c="grey", lw=1)
    ax.set(xlabel="observed", ylabel="predicted (out-of-fold)", title=f"Predicted vs observed {title}")
    fig.tight_layout()
    return fig


def population_position(quantiles, value: float, *, xlabel: str = "prediction"):
    """Where one patient's prediction falls on the population's distribution (from quantiles)."""
    plt = _plt()
    q = np.asarray(quantiles, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 2.6))
    if len(q):
        ax.plot(q, np.linspace(0, 100, len(q)), c="#3b6ea5", lw=2, label="training population (out-of-fold)")
        ax.axvline(value, c="#c0392b", lw=2, label="this patient")
    ax.set(xlabel=xlabel, ylabel="% of patients below")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
