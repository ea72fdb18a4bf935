"""Readable terminal summaries of study results (rich tables)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from pmed.study.run import StudyResult

__all__ = ["print_study_summary", "print_evaluation_summary", "format_metric"]


def format_metric(m: dict, digits: int = 3) -> str:
    """``0.812 (0.781–0.843)`` from a metric dict."""
    def f(v):
        if v is None or v != v:
            return "n/a"
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.{digits}f}"

    return f"{f(m['estimate'])} ({f(m['ci_low'])}–{f(m['ci_high'])})"


def print_study_summary(result: StudyResult, console: Console) -> None:
    """Print the cohort, the model comparison with CIs, and the chosen model."""
    from rich.table import Table

    m = result.metrics
    task = m["task"]
    cv = m["cv"]
    cohort_line = f"{m['n_patients']} patients, {m['n_features']} features"
    if task == "binary":
        cohort_line += f", {m['n_events']} events ({m['prevalence']:.1%})"
    elif task == "survival":
        cohort_line += f", {m['n_events']} events, {m['n_censored']} censored"
    console.print(f"[bold]{m['study']}[/bold] — target [cyan]{m['target']}[/cyan] ({task}); {cohort_line}")
    console.print(f"{cv['folds']}-fold cross-validation × {cv['repeats']} repeat(s), seed {cv['seed']}; "
                  f"95% CIs by bootstrap ({cv['bootstrap_resamples']} resamples)")
    if task == "survival":
        keys = ["harrell_c", "uno_c"] + (["ibs"] if any(r["metrics"].get("ibs") for r in m["models"].values())
                                         else [])
    else:
        keys = (["auroc", "auprc", "brier", "balanced_accuracy"] if task == "binary"
                else ["r2", "rmse", "mae", "spearman"])
    t = Table(title="Models (out-of-fold)", show_lines=False)
    t.add_column("model")
    for k in keys:
        t.add_column(k)
    for name, r in m["models"].items():
        style = "bold green" if name == m["selected_model"] else None
        t.add_row(name, *[format_metric(r["metrics"][k]) for k in keys], style=style)
    console.print(t)
    console.print(f"selected: [bold green]{m['selected_model']}[/bold green] (best {m['select_by']}); "
                  f"top features: {', '.join(result.importance['feature'].head(5))}")
    console.print(f"outputs in {result.out_dir}/ (metrics.json, oof_predictions.csv, "
                  "feature_importance.csv, model/, plots/)")


def print_evaluation_summary(ev: dict, out_dir, console: Console) -> None:
    """Print the headline numbers of an evaluation (``metrics.json`` of ``pmed evaluate``)."""
    from rich.table import Table

    if ev.get("task") == "continuous":
        console.print(f"{ev['n']} patients")
        keys = ["r2", "rmse", "spearman", "calibration_intercept", "calibration_slope"]
    else:
        console.print(f"{ev['n']} patients, {ev['n_events']} events ({ev['prevalence']:.1%})")
        keys = ["auroc", "auprc", "brier", "calibration_intercept", "calibration_slope", "ici"]
    t = Table(title="Evaluation (95% CI)")
    t.add_column("model")
    for k in keys:
        t.add_column(k)
    for name, r in ev["models"].items():
        t.add_row(name, *[format_metric(r["metrics"][k]) for k in keys])
    console.print(t)
    for c in ev.get("comparisons", []):
        console.print(f"{c['model_a']} vs {c['model_b']}: AUROC difference {c['difference']:+.3f}, "
                      f"p = {c['p_value']:.3g} (paired DeLong)")
    what = "metrics.json, plots/" if ev.get("task") == "continuous" else \
        "metrics.json, report.html, decision_curve.csv, plots/"
    console.print(f"outputs in {out_dir}/ ({what})")
