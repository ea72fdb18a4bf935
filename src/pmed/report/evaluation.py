"""Writing an evaluation: ``metrics.json``, curve tables, plots and the model report.

:mod:`pmed.evaluate` only computes (the evaluation dictionary and its curve tables); drawing
and writing them live here, with the other renderers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pmed.io.jsonio import to_json

__all__ = ["write_evaluation", "is_evaluation_output"]


def is_evaluation_output(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier ``pmed evaluate`` output (its ``metrics.json`` says so)."""
    import json

    try:
        metrics = json.loads((Path(folder) / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(metrics, dict) and metrics.get("schema") == "pmed.evaluation"


def write_evaluation(
    evaluation: dict,
    tables: Mapping[str, Mapping[str, pd.DataFrame]],
    out_dir: str | Path,
    *,
    context: Mapping[str, Any] | None = None,
    roc_data: pd.DataFrame | None = None,
    figures: Mapping[str, Path] | None = None,
    report: bool = True,
) -> dict[str, Path]:
    """Write ``metrics.json``, curve CSVs, plots and ``report.html`` into ``out_dir``.

    ``roc_data`` (columns ``model, outcome, prediction``) adds ROC curves to the plots;
    ``figures`` adds PNGs made elsewhere (e.g. ``shap_beeswarm``) to the report.
    """
    from pmed import plots
    from pmed.io import write_table, write_text_atomic
    from pmed.plots.calibration import calibration_plot
    from pmed.plots.utility import decision_curve_plot

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": write_text_atomic(
        out / "metrics.json", to_json(evaluation))}
    if evaluation.get("task") == "continuous":
        if roc_data is not None:  # model, outcome, prediction
            from pmed.io import check_inside, safe_filename

            used: set[str] = set()  # model names are data: one safe, distinct file name each
            for m, d in roc_data.groupby("model", sort=False):
                png = out / "plots" / f"predicted_vs_observed_{safe_filename(m, used=used)}.png"
                paths[f"plot_{m}"] = plots.save(plots.predicted_vs_observed(d, title=str(m)),
                                                check_inside(png, out))
        return paths  # the HTML model report covers binary outcomes for now
    dca_all = pd.concat([t["decision_curve"].assign(model=m) for m, t in tables.items()], ignore_index=True)
    cal_all = pd.concat([t["calibration"].assign(model=m) for m, t in tables.items()], ignore_index=True)
    rel_all = pd.concat([t["reliability"].assign(model=m) for m, t in tables.items()], ignore_index=True)
    paths["reliability_curve"] = write_table(rel_all, out / "reliability_curve.csv", index=False)
    paths["decision_curve"] = write_table(dca_all, out / "decision_curve.csv", index=False)
    paths["calibration_curve"] = write_table(cal_all, out / "calibration_curve.csv", index=False)

    figures = dict(figures or {})
    first = next(iter(tables))
    fig = decision_curve_plot(tables[first]["decision_curve"], label=first,
                              models={m: t["decision_curve"] for m, t in tables.items() if m != first})
    figures["decision_curve"] = plots.save(fig, out / "plots" / "decision_curve.png")
    best = max(evaluation["models"], key=lambda m: evaluation["models"][m]["metrics"]["auroc"]["estimate"])
    figures["calibration"] = plots.save(
        calibration_plot(tables[best]["reliability"], tables[best]["calibration"], title=f"Calibration — {best}",
                         label=best),
        out / "plots" / "calibration.png")
    if roc_data is not None:
        figures["roc"] = plots.save(plots.roc_curves(roc_data), out / "plots" / "roc.png")
    paths.update({f"plot_{k}": v for k, v in figures.items()})
    if report:
        from pmed.report.html import model_report

        paths["report"] = model_report(evaluation, out / "report.html", context=context, figures=figures)
    return paths
