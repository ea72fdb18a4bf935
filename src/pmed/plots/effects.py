"""Plots of treatment-effect heterogeneity: uplift (TOC) curves and CATE calibration."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pmed.plots._base import _plt

__all__ = ["uplift_plot", "calibration_plot"]


def _finish(fig, ax, xlabel: str, ylabel: str, name: str, title: str):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{name} — {title}" if title else name)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def uplift_plot(curves: Mapping[str, pd.DataFrame], *, title: str = ""):
    """TOC curves (benefit of treating the top fraction ranked by each learner, minus the
    average benefit) from :func:`pmed.effects.evaluate.rate`; 0 is a random ranking."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, c in curves.items():
        ax.plot(c["fraction_treated"], c["toc"], marker="o", ms=3, label=name)
    ax.axhline(0, color="grey", lw=1, ls="--", label="random ranking")
    return _finish(fig, ax, "fraction treated (highest estimated benefit first)",
                   "benefit in the top fraction − average benefit", "Targeting operator characteristic", title)


def calibration_plot(groups: Mapping[str, pd.DataFrame], *, title: str = ""):
    """Observed (doubly robust) vs predicted effect by CATE quantile group, per learner."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    lo = min(min(g["predicted"].min(), g["ci_low"].min()) for g in groups.values())
    hi = max(max(g["predicted"].max(), g["ci_high"].max()) for g in groups.values())
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="perfect calibration")
    for name, g in groups.items():
        ax.errorbar(g["predicted"], g["observed"], yerr=[g["observed"] - g["ci_low"], g["ci_high"] - g["observed"]],
                    marker="o", ms=4, capsize=2, label=name)
    return _finish(fig, ax, "predicted effect (mean CATE of the group)", "observed effect (mean doubly robust score)",
                   "CATE calibration", title)
