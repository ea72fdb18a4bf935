"""Plots of clinical utility: decision curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pmed.plots._base import _plt

__all__ = ["decision_curve_plot"]


def _prevalence(dca: pd.DataFrame) -> float:
    """The outcome prevalence behind a decision curve table.

    Taken from ``attrs`` when :func:`pmed.evaluate.utility.decision_curve` left it there,
    else recovered from any treat-all row: ``all = prev − (1 − prev)·w`` with
    ``w = pt/(1 − pt)`` gives ``prev = (all + w)/(1 + w)``.
    """
    if "prevalence" in dca.attrs:
        return float(dca.attrs["prevalence"])
    t = float(dca["threshold"].iloc[0])
    w = t / (1 - t)
    return float((dca["net_benefit_treat_all"].iloc[0] + w) / (1 + w))


def decision_curve_plot(
    dca_df: pd.DataFrame,
    *,
    title: str = "Decision curve",
    models: dict[str, pd.DataFrame] | None = None,
    label: str = "model",
):
    """Net benefit against threshold probability, with treat-all and treat-none references.

    Parameters
    ----------
    dca_df
        Output of :func:`pmed.evaluate.utility.decision_curve`; supplies treat-all and
        treat-none and, unless ``models`` is given, the one model curve (named ``label``).
    title
        Axes title.
    models
        Further model name → decision curve table, to compare models evaluated on the same
        patients. ``dca_df`` supplies the treat-all / treat-none references and is drawn as
        a curve too, unless it is itself one of these tables (so both
        ``plot(a, models={"b": b})`` and ``plot(a, models={"a": a, "b": b})`` draw a and b).
    label
        Legend name of ``dca_df``'s own curve.

    Returns
    -------
    matplotlib.figure.Figure
        Each model's net benefit with its bootstrap interval as a shaded band (where the
        table has one). The y-axis runs from −0.05 to 1.1 × prevalence — the largest net
        benefit any model can reach — so that treat-all, which plunges towards −∞ as the
        threshold rises, does not flatten the curves of interest.
    """
    plt = _plt()
    models = models or {}
    own = {} if any(d is dca_df for d in models.values()) else {label: dca_df}
    curves = {**own, **models}
    prev = _prevalence(dca_df)
    t = dca_df["threshold"].to_numpy()

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, d in curves.items():
        (line,) = ax.plot(d["threshold"], d["net_benefit"], lw=1.8, label=name)
        lo, hi = d.get("net_benefit_ci_low"), d.get("net_benefit_ci_high")
        if lo is not None and hi is not None and np.isfinite(lo.to_numpy(dtype=float)).any():
            ax.fill_between(d["threshold"], lo, hi, color=line.get_color(), alpha=0.18, lw=0)
    ax.plot(t, dca_df["net_benefit_treat_all"], c="grey", lw=1.2, ls="--", label="treat all")
    ax.plot(t, dca_df["net_benefit_treat_none"], c="black", lw=1.2, ls=":", label="treat none")
    ax.set(
        xlabel="threshold probability", ylabel="net benefit", title=title,
        xlim=(float(t.min()), float(t.max())),
        ylim=(-0.05, max(prev * 1.1, 0.01)),  # a floor keeps the axis usable at prevalence ~0
    )
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig
