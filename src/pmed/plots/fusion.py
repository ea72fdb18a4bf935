"""Plot of a multimodal fusion: each modality alone, fused, and fused without each modality."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pmed.plots._base import _plt

__all__ = ["fusion_forest"]


def _finite(v) -> float:
    """A JSON ``null`` or NaN as NaN, so that matplotlib leaves the point or bar out."""
    return float(v) if isinstance(v, (int, float)) and not math.isnan(float(v)) else math.nan


def fusion_forest(rows: Sequence[Mapping], *, metric: str, fused: float | None = None,
                  title: str = ""):
    """Forest plot of one metric with its confidence intervals, one row per model.

    Parameters
    ----------
    rows
        Top to bottom: ``label`` (the row's name), ``estimate``, ``ci_low``, ``ci_high`` and
        ``kind`` (``single``, ``fused`` or ``without``: the marker and colour). A missing
        estimate or bound (``None``/NaN) draws no point or no bar.
    metric
        The x axis label (``AUROC``…).
    fused
        The fused model's estimate: a vertical dashed line, so that each row reads against it.
    title
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    style = {"single": ("o", "tab:blue"), "fused": ("D", "black"), "without": ("s", "tab:orange")}
    names = {"single": "modality alone", "fused": "fused model",
             "without": "fused without one modality"}
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(rows) + 1.4))
    seen = set()
    for i, r in enumerate(rows):
        est, lo, hi = (_finite(r.get(k)) for k in ("estimate", "ci_low", "ci_high"))
        marker, colour = style.get(r.get("kind"), ("o", "grey"))
        if not (math.isnan(lo) or math.isnan(hi)):
            ax.hlines(i, lo, hi, color=colour, lw=2)
        label = names.get(r.get("kind"))
        ax.plot([est], [i], marker=marker, color=colour, ms=7, ls="none",
                label=label if label not in seen else None)  # one legend entry per kind
        seen.add(label)
    if fused is not None and not math.isnan(_finite(fused)):
        ax.axvline(_finite(fused), color="black", lw=1, ls="--")
    ax.set_yticks(range(len(rows)), [str(r.get("label")) for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first row on top, as in the report's table
    ax.set_xlabel(f"{metric} (95 % CI)")
    ax.set_title(title or f"Multimodal fusion — {metric}")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
