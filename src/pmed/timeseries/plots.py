"""Plots for time series: one patient's trajectories, grid missingness, calibration side by side.

Each function draws (returns a matplotlib figure) or, given ``path``, saves a PNG through
:func:`pmed.plots._base.save`; the numbers come from the computing modules, never from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.plots._base import _plt, save

__all__ = ["plot_patient", "plot_missingness", "plot_calibration_comparison"]


def _out(fig, path):
    return save(fig, path) if path is not None else fig


def plot_patient(data: pd.DataFrame, patient_id: str, *, variables: Sequence[str], path: str | Path | None = None):
    """Measurements of ``variables`` over time for one patient (one panel each)."""
    plt = _plt()
    d = data[data["patient_id"].astype(str) == str(patient_id)]
    fig, axes = plt.subplots(len(variables), 1, figsize=(7, 1.8 * len(variables)), sharex=True, squeeze=False)
    for ax, v in zip(axes[:, 0], variables, strict=True):
        dv = d[d["variable"] == v]
        ax.plot(dv["time"], dv["value"], marker="o", ms=3, lw=1)
        ax.set_ylabel(v)
    axes[-1, 0].set_xlabel("hours")
    fig.tight_layout()
    return _out(fig, path)


def plot_missingness(grid, *, path: str | Path | None = None):
    """Share of patients with a measurement, per variable and time step of a :class:`Grid`."""
    plt = _plt()
    share = grid.mask.mean(axis=0).T  # variables × steps
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(grid.variables) + 1.5))
    im = ax.imshow(share, aspect="auto", vmin=0, vmax=1, cmap="viridis",
                   extent=(grid.times[0], grid.times[-1] + grid.step, len(grid.variables) - 0.5, -0.5))
    ax.set_yticks(range(len(grid.variables)), grid.variables, fontsize=7)
    ax.set_xlabel("hours")
    fig.colorbar(im, ax=ax, label="share measured")
    fig.tight_layout()
    return _out(fig, path)


def plot_calibration_comparison(oof: pd.DataFrame, path: str | Path | None = None, *,
                                labels: Mapping[str, str] | None = None, n_bins: int = 10):
    """Reliability curves (deciles of predicted risk) of several models' out-of-fold predictions."""
    from pmed.evaluate.calibration import reliability_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    hi = 0.0
    for m, g in oof.groupby("model", sort=False):
        c = reliability_curve(g["outcome"].to_numpy(int), g["prediction"].to_numpy(float), n_bins=n_bins)
        ax.plot(c["mean_predicted"], c["observed"], marker="o", ms=3, label=(labels or {}).get(m, m))
        hi = max(hi, float(np.nanmax(c[["mean_predicted", "observed"]].to_numpy())))
    ax.set_xlim(0, min(1, hi * 1.05))
    ax.set_ylim(0, min(1, hi * 1.05))
    ax.set_xlabel("predicted risk")
    ax.set_ylabel("observed risk")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _out(fig, path)
