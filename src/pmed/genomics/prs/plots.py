"""Plots of ancestry-aware score reporting: the reference PC space and score distributions.

Each function takes results (from :mod:`pmed.genomics.prs.ancestry`) and returns a matplotlib
Figure; save it with :func:`pmed.plots._base.save`. Nothing here computes a result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pmed.errors import ValidationError
from pmed.plots._base import _plt

__all__ = ["pca_plot", "score_distribution_plot"]


def _colours(names) -> dict:
    plt = _plt()
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _column(pcs, which, name: str) -> tuple[np.ndarray, str]:
    frame = pcs if isinstance(pcs, pd.DataFrame) else pd.DataFrame(
        np.asarray(pcs, dtype=float), columns=[f"PC{i + 1}" for i in range(np.shape(pcs)[1])])
    if isinstance(which, str):
        if which not in frame.columns:
            raise ValidationError([f"{name} has no column {which!r}"],
                                  fix=f"choose among {list(frame.columns)[:10]}")
        return frame[which].to_numpy(dtype=float), which
    if not 0 <= which < frame.shape[1]:
        raise ValidationError([f"{name} has {frame.shape[1]} PCs; PC index {which} is out of "
                               "range"], fix="choose a smaller PC index")
    return frame.iloc[:, which].to_numpy(dtype=float), str(frame.columns[which])


def pca_plot(
    ref_pcs,
    ref_populations,
    target_pcs=None,
    *,
    target_populations=None,
    x: int | str = 0,
    y: int | str = 1,
    target_label: str = "target",
    title: str = "Reference PCA with projected samples",
):
    """Scatter of two PCs: the reference by population, the targets on top.

    Parameters
    ----------
    ref_pcs
        Reference PC scores (e.g. :attr:`AncestryReference.pcs_`).
    ref_populations
        One label per reference sample (colours).
    target_pcs
        Projected target PCs (:meth:`AncestryReference.transform`), optional.
    target_populations
        The targets' ``MostSimilarPop``: targets are then drawn in their population's colour
        with a black edge; otherwise as black crosses.
    x, y
        The PCs on the axes, by position (0 = PC1) or column name.
    target_label
        Legend name of the targets.
    title
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    rx, xname = _column(ref_pcs, x, "ref_pcs")
    ry, yname = _column(ref_pcs, y, "ref_pcs")
    labels = np.asarray(ref_populations, dtype=object).astype(str)
    if len(labels) != len(rx):
        raise ValidationError([f"ref_populations has {len(labels)} labels for {len(rx)} "
                               "reference samples"], fix="give one label per reference sample")
    names = sorted(set(labels))
    colour = _colours(names)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for name in names:
        sel = labels == name
        ax.scatter(rx[sel], ry[sel], s=10, alpha=0.35, color=colour[name], lw=0,
                   label=f"{name} (reference, n={int(sel.sum())})")
    if target_pcs is not None:
        tx, _ = _column(target_pcs, x, "target_pcs")
        ty, _ = _column(target_pcs, y, "target_pcs")
        if target_populations is None:
            ax.scatter(tx, ty, s=28, marker="x", color="black", lw=1.2,
                       label=f"{target_label} (n={len(tx)})")
        else:
            tl = np.asarray(target_populations, dtype=object).astype(str)
            if len(tl) != len(tx):
                raise ValidationError([f"target_populations has {len(tl)} labels for "
                                       f"{len(tx)} targets"], fix="give one label per target")
            for name in sorted(set(tl)):
                sel = tl == name
                ax.scatter(tx[sel], ty[sel], s=30, color=colour.get(name, "grey"),
                           edgecolor="black", lw=0.8,
                           label=f"{target_label} → {name} (n={int(sel.sum())})")
    ax.set(xlabel=xname, ylabel=yname, title=title)
    ax.legend(fontsize=7, loc="best", markerscale=1.2)
    fig.tight_layout()
    return fig


def score_distribution_plot(
    adjusted: pd.DataFrame,
    *,
    pgs: str | None = None,
    column: str = "SUM",
    bins: int = 30,
    title: str | None = None,
):
    """Distribution of one score in each reference population, with the targets marked.

    Parameters
    ----------
    adjusted
        Output of :func:`pmed.genomics.prs.ancestry.adjust_scores` called with
        ``include_reference=True``.
    pgs
        Which score (``PGS`` value); optional when there is only one.
    column
        The value shown: ``SUM`` (raw), ``Z_MostSimilarPop``, ``Z_norm1``, ``Z_norm2``, …
    bins
        Histogram bins (shared by all populations).
    title
        Axes title (default: the score and column).

    Returns
    -------
    matplotlib.figure.Figure
        Step histograms (densities) of the reference populations; each target is a tick
        under the axis in its ``MostSimilarPop`` colour, and, with at most 20 targets, a
        dashed vertical line.
    """
    plt = _plt()
    need = {"PGS", "REFERENCE", "MostSimilarPop", column}
    missing = sorted(need - set(adjusted.columns))
    if missing:
        raise ValidationError([f"adjusted lacks columns {missing}"],
                              fix="pass the output of adjust_scores(..., include_reference=True)")
    scores = list(pd.unique(adjusted["PGS"]))
    if pgs is None:
        if len(scores) != 1:
            raise ValidationError([f"adjusted holds {len(scores)} scores"],
                                  fix=f"choose one with pgs=, among {scores[:10]}")
        pgs = scores[0]
    elif pgs not in scores:
        raise ValidationError([f"score {pgs!r} is not in adjusted"],
                              fix=f"choose among {scores[:10]}")
    one = adjusted[adjusted["PGS"] == pgs]
    ref = one[one["REFERENCE"].astype(bool)]
    tgt = one[~one["REFERENCE"].astype(bool)]
    if ref.empty:
        raise ValidationError(["adjusted has no reference rows"],
                              fix="call adjust_scores(..., include_reference=True)")
    values = one[column].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    edges = np.histogram_bin_edges(finite, bins=bins) if len(finite) else bins
    names = sorted(set(ref["MostSimilarPop"].astype(str)))
    colour = _colours(names)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in names:
        v = ref.loc[ref["MostSimilarPop"].astype(str) == name, column].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if len(v):
            ax.hist(v, bins=edges, density=True, histtype="step", lw=1.5, color=colour[name],
                    label=f"{name} (reference, n={len(v)})")
    if len(tgt):
        tv = tgt[column].to_numpy(dtype=float)
        tp = tgt["MostSimilarPop"].astype(str).to_numpy()
        ok = np.isfinite(tv)
        cols = [colour.get(p, "black") for p in tp[ok]]
        # a rug just above the axis (x in data units, y in axes units), coloured by population
        ax.scatter(tv[ok], np.full(ok.sum(), 0.03), marker="|", s=300, c=cols, lw=2,
                   transform=ax.get_xaxis_transform(),
                   label=f"targets, coloured by MostSimilarPop (n={int(ok.sum())})")
        if ok.sum() <= 20:
            for v, c in zip(tv[ok], cols, strict=True):
                ax.axvline(v, color=c, ls="--", lw=1)
    ax.set(xlabel=column, ylabel="density", title=title or f"{pgs}: {column}")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
