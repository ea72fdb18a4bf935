"""Plots of a monitoring run (:func:`pmed.monitor.run_monitor`): drift per feature, over time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pmed.plots._base import _plt

__all__ = ["psi_bars", "psi_over_windows", "metric_over_windows"]


def psi_bars(features: pd.DataFrame, *, top: int = 25, threshold: float = 0.2):
    """PSI of each feature (largest first, at most ``top``), drifted ones in red."""
    plt = _plt()
    f = features.dropna(subset=["psi"]).sort_values("psi", ascending=False).head(top)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * max(len(f), 3) + 1.2))
    ax.barh(f["feature"].astype(str), f["psi"], color=np.where(f["drift_detected"], "#c0392b", "#7f8c8d"))
    ax.axvline(threshold, color="black", lw=1, ls="--", label=f"PSI {threshold:g}")
    ax.set_xlabel("population stability index (new vs training)")
    ax.set_title("Drift per feature (red: drift detected)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def psi_over_windows(windows: list[dict], *, top: int = 8):
    """PSI per window of the features that drifted most (and of the predictions)."""
    plt = _plt()
    names = [str(w["window"]) for w in windows]
    psi = pd.DataFrame({n: {k: e.get("psi") for k, e in w["drift"]["features"].items()}
                        for n, w in zip(names, windows, strict=True)}).T.astype(float)
    keep = psi.max().sort_values(ascending=False).head(top).index
    fig, ax = plt.subplots(figsize=(7, 4))
    for c in keep:
        ax.plot(range(len(names)), psi[c], marker="o", ms=3, label=str(c))
    pred = [((w["drift"].get("predictions") or {}).get("psi")) for w in windows]
    if any(v is not None for v in pred):
        ax.plot(range(len(names)), [np.nan if v is None else v for v in pred], "k--", marker="s", ms=3,
                label="(predictions)")
    ax.axhline(0.2, color="grey", lw=1, ls=":")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("PSI")
    ax.set_title("Drift over time")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def metric_over_windows(windows: list[dict], metrics=("auroc", "brier", "calibration_slope")):
    """Each metric per window with its CI, and its validation value (dashed) where known."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4))
    names = [str(w["window"]) for w in windows]
    for ax, k in zip(np.atleast_1d(axes), metrics, strict=True):
        est, lo, hi, ref = [], [], [], None
        for w in windows:
            m = ((w.get("performance") or {}).get(k)) or {}
            est.append(m.get("estimate", np.nan))
            lo.append(m.get("ci_low", np.nan))
            hi.append(m.get("ci_high", np.nan))
            ref = m.get("reference", ref)
        x = np.arange(len(names))
        est, lo, hi = (np.asarray(v, dtype=float) for v in (est, lo, hi))
        ax.errorbar(x, est, yerr=[est - lo, hi - est], fmt="o-", ms=3, capsize=2)
        if ref is not None:
            ax.axhline(float(ref), color="grey", ls="--", lw=1, label="validation")
            ax.legend(fontsize=7)
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=7)
        ax.set_title(k.replace("_", " "))
    fig.tight_layout()
    return fig
