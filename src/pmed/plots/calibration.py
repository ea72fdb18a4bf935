"""Calibration plot: binned observed risk with intervals, the smooth curve and its band."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pmed.plots._base import _plt

__all__ = ["calibration_plot"]


def calibration_plot(
    curve_df: pd.DataFrame,
    smooth_df: pd.DataFrame | None = None,
    *,
    title: str = "Calibration",
    label: str | None = None,
):
    """Observed against predicted risk.

    Parameters
    ----------
    curve_df
        Output of :func:`pmed.evaluate.calibration.reliability_curve`
        (``mean_predicted, observed, ci_low, ci_high, n``): one point per bin with its
        interval as an error bar.
    smooth_df
        Optional output of :func:`pmed.evaluate.calibration.smooth_calibration`
        (``predicted, observed, ci_low, ci_high``): the lowess curve and its bootstrap band.
    title
        Axes title.
    label
        Legend name of the model, if any.

    Returns
    -------
    matplotlib.figure.Figure
        Square axes on [0, 1] × [0, 1] with the diagonal of perfect calibration.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    name = f"{label}: " if label else ""
    if smooth_df is not None and len(smooth_df):
        s = smooth_df.sort_values("predicted")
        (line,) = ax.plot(s["predicted"], s["observed"], lw=1.6, label=f"{name}smoothed (lowess)")
        band = s[["ci_low", "ci_high"]].notna().all(axis=1)
        if band.any():
            level = smooth_df.attrs.get("level")  # set by smooth_calibration
            what = f"{level:.0%} bootstrap band" if level else "bootstrap band"
            ax.fill_between(s["predicted"][band], s["ci_low"][band], s["ci_high"][band],
                            color=line.get_color(), alpha=0.2, lw=0, label=what)
    if len(curve_df):
        obs = curve_df["observed"].to_numpy(float)
        # error bars are distances from the point; a NaN interval draws no bar
        lower = np.nan_to_num(obs - curve_df["ci_low"].to_numpy(float))
        upper = np.nan_to_num(curve_df["ci_high"].to_numpy(float) - obs)
        ax.errorbar(curve_df["mean_predicted"], obs, yerr=[lower, upper], fmt="o", ms=4,
                    capsize=2.5, c="black", lw=1, label=f"{name}binned (Wilson interval)")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted risk", ylabel="observed proportion",
           title=title, aspect="equal")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
