"""Render the model report (TRIPOD+AI layout) and the patient report as self-contained HTML."""

from __future__ import annotations

import base64
import datetime as _dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pmed.io._atomic import write_text_atomic

__all__ = ["model_report", "patient_report", "metric_text"]


def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pmed.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.ChainableUndefined,  # context items are optional: absent → placeholder
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["metric"] = metric_text
    env.filters["num"] = _num
    return env


def _num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.{digits}f}"
    return str(v)


def metric_text(m: Mapping | None, digits: int = 3) -> str:
    """``0.812 (95% CI 0.781–0.843)`` from ``{"estimate", "ci_low", "ci_high"}``."""
    if not m or m.get("estimate") is None:
        return "–"
    est = _num(m["estimate"], digits)
    if m.get("ci_low") is None or m.get("ci_high") is None:
        return est
    return f"{est} ({_num(m['ci_low'], digits)}–{_num(m['ci_high'], digits)})"


def _embed(figures: Mapping[str, str | Path | bytes] | None) -> dict[str, str]:
    out = {}
    for name, fig in (figures or {}).items():
        data = fig if isinstance(fig, bytes) else Path(fig).read_bytes()
        out[name] = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return out


def model_report(
    evaluation: Mapping[str, Any],
    out: str | Path,
    *,
    context: Mapping[str, Any] | None = None,
    figures: Mapping[str, str | Path | bytes] | None = None,
    title: str | None = None,
) -> Path:
    """Write the model report: TRIPOD+AI items that software can fill, the rest as placeholders.

    Parameters
    ----------
    evaluation
        The ``metrics.json`` dictionary written by ``pmed evaluate`` (or ``pmed run``'s
        ``evaluation/metrics.json``).
    out
        The HTML file to write (atomically).
    context
        What the evaluation alone does not know: ``study`` (name, description), ``data_sources``
        (list of str), ``eligibility``, ``outcome`` (definition), ``predictors`` (list of
        dicts: name, type, unit, missing, description), ``missing_data`` (str), ``cv`` (dict),
        ``models`` (dict of specifications), ``imbalance`` (str: class weighting and
        recalibration used), ``selected_model``, ``fingerprint``, ``versions``, ``effects``
        (:func:`pmed.report.effects.effects_context`: a "Treatment effects" section, its PNGs embedded),
        ``fusion`` (:func:`pmed.report.fusion.fusion_context`: a "Multimodal fusion" section).
        Any item left out is shown as a marked placeholder for the study team to write.
    figures
        Name → PNG (path or bytes): ``roc``, ``calibration``, ``decision_curve``, …
    """
    ctx = dict(context or {})
    if ctx.get("effects"):  # pmed.report.effects.effects_context: each arm's PNG paths, embedded like the figures
        fx = ctx["effects"]
        ctx["effects"] = {**fx, "arms": [{**a, "plots": _embed(a.get("plots"))} for a in fx.get("arms", [])]}
    if ctx.get("fusion"):  # pmed.report.fusion.fusion_context: its forest plot's path, embedded the same way
        ctx["fusion"] = {**ctx["fusion"], "plots": _embed(ctx["fusion"].get("plots"))}
    html = _env().get_template("model_report.html.j2").render(
        title=title or ctx.get("study", {}).get("name") or "Prediction model report",
        ev=evaluation,
        ctx=ctx,
        figures=_embed(figures),
        generated=_dt.date.today().isoformat(),
    )
    return write_text_atomic(out, html)


def patient_report(
    patient: Mapping[str, Any],
    out: str | Path,
    *,
    figures: Mapping[str, str | Path | bytes] | None = None,
    title: str = "Patient prediction report",
) -> Path:
    """Write a one-patient report: the prediction with its uncertainty, where the patient sits
    in the population, and the factors behind the prediction.

    Parameters
    ----------
    patient
        ``id`` (pseudonymised for sharing), ``model`` (name), ``outcome`` (what is predicted),
        ``prediction`` (probability or value), ``interval`` (``{"low", "high", "level",
        "method"}``) or ``prediction_set`` (list of labels with ``level``), ``percentile`` in
        the training population, ``factors`` (list of sentences) and ``factor_table`` (list of
        dicts: feature, value, contribution), ``inputs`` (feature → value), ``notes``, and
        ``sections``: HTML fragments rendered by pmed's modality packages (e.g. the
        pharmacogenomic calls of :func:`pmed.genomics.pgx.report.render_pgx_section`), already
        escaped by their own templates.
    out
        The HTML file to write (atomically).
    figures
        ``population`` (the patient on the population's distribution), ``waterfall``…
    """
    html = _env().get_template("patient_report.html.j2").render(
        title=title, pt=dict(patient), figures=_embed(figures),
        generated=_dt.date.today().isoformat(),
    )
    return write_text_atomic(out, html)
