"""Figures of the single-cell pipeline (matplotlib, files only): UMAPs, QC, integration metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pmed.plots._base import _plt, save

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["plot_embedding", "plot_qc", "plot_integration_metrics"]


def plot_embedding(adata: anndata.AnnData, color: str, path: str | Path, *, basis: str = "X_umap",
                   title: str | None = None, max_legend: int = 30) -> Path:
    """Scatter of a 2-D embedding coloured by a categorical ``obs`` column, saved as PNG."""
    plt = _plt()
    xy = np.asarray(adata.obsm[basis])[:, :2]
    cats = adata.obs[color].astype(str)
    levels = sorted(cats.unique(), key=lambda s: (len(s), s) if s.isdigit() else (0, s))
    cmap = plt.get_cmap("tab20" if len(levels) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    order = np.random.default_rng(0).permutation(len(xy))  # no batch painted last on top
    codes = pd.Categorical(cats, categories=levels).codes
    ax.scatter(xy[order, 0], xy[order, 1], c=[cmap(c % cmap.N) for c in codes[order]], s=3,
               linewidths=0, rasterized=True)
    if len(levels) <= max_legend:
        for i, lv in enumerate(levels):
            ax.scatter([], [], color=cmap(i % cmap.N), s=20, label=lv)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7,
                  markerscale=1.2)
    ax.set_xticks([])
    ax.set_yticks([])
    name = basis.removeprefix("X_").removesuffix("_before").upper()
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
    ax.set_title(title or f"{name} by {color}")
    fig.tight_layout()
    return save(fig, path)


def plot_qc(adata: anndata.AnnData, path: str | Path, *, groupby: str | None = None) -> Path:
    """Histograms of counts, genes and mitochondrial percent per cell (and doublet scores)."""
    plt = _plt()
    cols = [c for c in ("total_counts", "n_genes_by_counts", "pct_counts_mt", "doublet_score")
            if c in adata.obs and adata.obs[c].notna().any()]
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 3.0), squeeze=False)
    for ax, c in zip(axes[0], cols, strict=True):
        v = adata.obs[c].to_numpy(dtype=float)
        ax.hist(v[np.isfinite(v)], bins=50, color="#4c72b0")
        ax.set_title(c, fontsize=9)
        ax.set_ylabel("cells")
    fig.tight_layout()
    return save(fig, path)


def plot_integration_metrics(metrics: dict[str, Any], path: str | Path) -> Path:
    """Bar chart of each metric before and after correction (all scaled so higher is better)."""
    plt = _plt()
    names = [k for k, v in metrics.items() if isinstance(v, dict) and "ilisi_mean" in v]
    keys = [k for k in ("ilisi_normalised", "kbet_acceptance", "batch_asw", "clisi_normalised",
                        "label_silhouette", "ari", "nmi")
            if any(metrics[n].get(k) is not None for n in names)]
    fig, ax = plt.subplots(figsize=(1.1 * len(keys) + 2, 3.4))
    w = 0.8 / max(len(names), 1)
    for i, n in enumerate(names):
        vals = [metrics[n].get(k) if metrics[n].get(k) is not None else np.nan for k in keys]
        ax.bar(np.arange(len(keys)) + i * w, vals, width=w, label=n)
    ax.set_xticks(np.arange(len(keys)) + w * (len(names) - 1) / 2)
    ax.set_xticklabels(keys, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("score (higher = better)")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("integration: batch mixing (left) and biology kept (right)", fontsize=9)
    fig.tight_layout()
    return save(fig, path)
