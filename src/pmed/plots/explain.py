"""SHAP plots on the probability scale, one row per original clinical feature.

Both plots are drawn by shap's own plotting functions from the grouped explanations
(:meth:`pmed.explain.PatientExplanations.to_shap`), so they read like any SHAP plot while
speaking in percentage points and input features.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from pmed.errors import NotFoundError
from pmed.plots._base import _plt

__all__ = ["beeswarm", "waterfall"]


def _axis_label(expl) -> str:
    if getattr(expl, "horizon", None) is not None:
        return f"SHAP value (change in {expl.what.removeprefix('the ')})"
    if expl.scale == "probability":
        return "SHAP value (change in predicted probability)"
    return "SHAP value (change in predicted outcome)"


def beeswarm(expl, *, max_display: int = 15, title: str | None = None) -> Any:
    """Every patient's SHAP value for each feature, most important features at the top.

    Points are coloured by the feature's value (high red, low blue); categorical features
    have no order, so their points are grey.

    Parameters
    ----------
    expl
        :class:`pmed.explain.PatientExplanations` of several patients.
    max_display
        Features shown; the rest are summed into one row.
    title
        Optional figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    import shap

    fig = plt.figure(figsize=(8.0, 0.4 * min(max_display, expl.values.shape[1]) + 1.5))
    ax = fig.add_subplot()
    with warnings.catch_warnings():
        # shap takes percentiles of each feature's values for the colour scale; categorical
        # features are all-NaN by design (grey points), which numpy warns about
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        shap.plots.beeswarm(expl.to_shap(), max_display=max_display, show=False, ax=ax,
                            plot_size=None)
    ax.set_xlabel(_axis_label(expl))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def waterfall(expl, patient_id: Any, *, max_display: int = 10, title: str | None = None) -> Any:
    """How one patient's features move the prediction from the cohort average to theirs.

    Parameters
    ----------
    expl
        :class:`pmed.explain.PatientExplanations` containing the patient.
    patient_id
        Index label of the patient.
    max_display
        Features shown; the rest are summed into one bar.
    title
        Optional title (default: the patient ID).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if patient_id not in expl.values.index:
        raise NotFoundError("the patient asked for is not among the explained patients",
                            fix="explain that patient first (pass their row to explain())")
    pos = int(np.flatnonzero(expl.values.index == patient_id)[0])
    plt = _plt()
    import shap

    fig = plt.figure()  # shap's waterfall draws on the current figure
    shap.plots.waterfall(expl.to_shap()[pos], max_display=max_display, show=False)
    fig = plt.gcf()
    # no x label: shap writes E[f(X)] and f(x) on twin axes where a label would collide
    what = "predicted probability" if expl.scale == "probability" else "predicted outcome"
    if getattr(expl, "horizon", None) is not None:
        what = expl.what.removeprefix("the ")  # "chance of the event within 1825 days"
    fig.axes[0].set_title(title if title is not None else f"patient {patient_id}: {what}")
    fig.tight_layout()  # shap leaves the feature labels outside the figure's left edge
    return fig
