"""Patient reports of survival bundles: the sentences in words and the survival-curve plot.

Computation (the predictions, intervals, hazard ratios) happens in :mod:`pmed.study.predict`;
this module only words and draws what it is given, and renders the page.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pmed.io._atomic import write_text_atomic

__all__ = ["horizon_text", "percent_text", "event_sentence", "median_sentence", "survival_curve_plot",
           "survival_patient_report"]

#: days in a year, for reading a horizon in days as years
_YEAR_DAYS = 365.25


def _plural(n: float, unit: str) -> str:
    word = unit[:-1] if unit.endswith("s") and n == 1 else unit
    return f"{n:g} {word}"


def horizon_text(t: float, unit: str | None = "days") -> str:
    """A horizon in words: ``1826`` days → ``"5 years"``, ``182.5`` days → ``"182.5 days"``.

    Days are read as years from 365 days on when they are a whole or half number of years
    (365, 730, 1826 days: within 1 % of a year's multiple of ½); months as years when they are
    a multiple of 12. Anything else is written in the study's ``time_unit`` as it is.
    """
    unit = (unit or "days").strip().lower() or "days"
    if unit in ("day", "days") and t >= 365:
        years = t / _YEAR_DAYS
        half = round(years * 2) / 2
        if abs(years - half) <= 0.01 * half:
            return _plural(half, "years")
    if unit in ("month", "months") and t >= 12 and float(t) % 12 == 0:
        return _plural(t / 12, "years")
    return _plural(float(t), unit if unit.endswith("s") else unit + "s")


def percent_text(p: float) -> str:
    """A probability as a whole percentage: ``0.234`` → ``"23"``; ``"<1"`` and ``">99"`` at the ends."""
    v = 100 * float(p)
    if 0 < v < 0.5:
        return "<1"
    if 99.5 < v < 100:
        return ">99"
    return f"{v:.0f}"


def event_sentence(horizon: float, surv: float, low: float | None = None, high: float | None = None, *,
                   unit: str | None = "days", event: str = "the event") -> str:
    """One horizon in words, on the event scale (1 − S(t)).

    ``event_sentence(1826, 0.77, 0.70, 0.83)`` → ``"about 23 % chance of the event within
    5 years; 95 % interval 17–30 %"``. The interval of the survival probability ``[low, high]``
    becomes ``[1 − high, 1 − low]``; without one the sentence stops after the horizon.
    """
    pct = percent_text(1 - surv)
    about = "" if pct[0] in "<>" else "about "  # not "about >99 %"
    text = f"{about}{pct} % chance of {event} within {horizon_text(horizon, unit)}"
    if low is not None and high is not None and np.isfinite(low) and np.isfinite(high):
        text += f"; 95 % interval {percent_text(1 - high)}–{percent_text(1 - low)} %"
    return text


def median_sentence(median: float, *, unit: str | None = "days", follow_up: float | None = None) -> str:
    """The predicted median time to the event in words, or that it is not reached."""
    if median is None or not math.isfinite(median):
        within = f" within the training follow-up ({horizon_text(follow_up, unit)})" if follow_up else ""
        return f"The predicted chance of the event stays below 50 %{within}: the median time is not reached."
    m = float(median)
    # a median is an estimate, not a chosen horizon: read days as years (one decimal) from a year on
    when = (f"about {m / _YEAR_DAYS:.1f} years" if (unit or "days").lower() in ("day", "days") and m >= 365
            else horizon_text(round(m, 1), unit))
    return (f"Median predicted time to the event: {when} "
            "(half of patients like this one are predicted to have had it by then).")


def survival_curve_plot(times: Sequence[float], surv: Sequence[float], *, km_time: Sequence[float] = (),
                        km_surv: Sequence[float] = (), horizons: Sequence[float] = (),
                        low: Sequence[float] = (), high: Sequence[float] = (), unit: str | None = "days"):
    """The patient's predicted survival curve against the cohort's Kaplan–Meier curve.

    ``low``/``high`` (one per horizon, may be empty) are drawn as 95 % bars at the horizons.
    Returns the matplotlib figure (save it with :func:`pmed.plots.save`).
    """
    from pmed.plots._base import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    if len(km_time):
        ax.step(np.r_[0.0, km_time], np.r_[1.0, km_surv], where="post", c="#7f8c8d", lw=1.5,
                label="training cohort (Kaplan–Meier)")
    ax.step(times, surv, where="post", c="#c0392b", lw=2, label="this patient (model)")
    if len(low) and len(high):
        s_h = np.interp(horizons, times, surv)
        ax.errorbar(horizons, s_h, yerr=[s_h - np.asarray(low), np.asarray(high) - s_h], fmt="o", c="#c0392b",
                    capsize=3, ms=3, label="95 % interval at the horizons")
    ax.set(xlabel=f"time ({unit or 'days'})", ylabel="probability event-free", ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def survival_patient_report(patient: Mapping[str, Any], out: str | Path, *,
                            figures: Mapping[str, str | Path | bytes] | None = None,
                            title: str = "Patient survival report") -> Path:
    """Write a one-patient survival report (HTML, self-contained).

    Parameters
    ----------
    patient
        ``id``, ``model``, ``outcome`` (what is predicted), ``sentences`` (one per horizon, from
        :func:`event_sentence`), ``median`` (from :func:`median_sentence`), ``interval_method``,
        ``percentile`` (of the risk in the training population), ``hazard_ratios`` (list of
        sentences, cox only), ``shap_scale`` (what the Shapley ``factors`` are measured on, e.g.
        "Shapley values on the chance of the event within 5 years (1825 days), …"; ``None``
        when the factors are what-if sentences), ``factors``/``factor_table`` (factor sentences;
        what-if contributions), ``sections``.
    out
        The HTML file to write (atomically).
    figures
        ``curve`` (:func:`survival_curve_plot`), ``waterfall`` (the Shapley values,
        :func:`pmed.plots.explain.waterfall`), ``population``.
    """
    from pmed.report.html import _embed, _env

    html = _env().get_template("patient_survival_report.html.j2").render(
        title=title, pt=dict(patient), figures=_embed(figures), generated=_dt.date.today().isoformat())
    return write_text_atomic(out, html)
