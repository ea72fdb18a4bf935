"""The ``pmed`` command line: parse, call the Python API, print. No logic lives here.

Errors from :mod:`pmed.errors` and usage errors are printed without a stack trace and mapped to
exit codes:

===  =====================================================
1    other pmed error
2    usage error (unknown command or option, missing or malformed value, a value outside its
     choices or range, a path that does not exist, a file where a folder is wanted), bad
     option value, or input file unreadable (truncated or corrupt compressed files included)
3    malformed schema
4    data break their schema (:class:`~pmed.errors.ValidationError`)
5    patient IDs do not match between tables
6    invalid study file
7    model bundle refused
8    reference data not found
9    optional dependency missing (the message names the extra)
130  interrupted (Ctrl-C)
===  =====================================================
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.main

from pmed.cli._common import console as _console
from pmed.cli._common import progress as _progress
from pmed.cli._params import SEED_MAX, bounded, choice, finite, table_out
from pmed.errors import PmedError
from pmed.progress import RichReporter as _RichReporter

__all__ = ["app", "main"]

#: Most bootstrap resamples (as a study's ``evaluation.bootstrap``): more only costs hours.
MAX_BOOTSTRAP = 100_000
#: Fewest synthetic patients of ``pmed demo`` (pmed.demo.MIN_PATIENTS, without importing it here).
DEMO_MIN_PATIENTS = 100

app = typer.Typer(
    name="pmed",
    help="pmed: validated, explained models for personalized medicine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _parse_blocks(items: list[str] | None) -> dict[str, str]:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise typer.BadParameter(f"{it!r}: use NAME=FILE, e.g. genotypes=cohort.vcf.gz", param_hint="--block")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _flat(items) -> list:
    """Paths of ``items`` with lists opened up (the block files)."""
    return [q for i in items for q in (i if isinstance(i, list) else [i])]


def _checked_blocks(items: list[str] | None) -> list[str] | None:
    """``--block`` values checked while parsing (before the bundle is read), passed on unchanged."""
    _parse_blocks(items)
    return items


@app.command()
def run(
    study: Annotated[Path, typer.Argument(help="study YAML file", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder", file_okay=False)] = Path("pmed-out"),
    scheduler: Annotated[str | None, typer.Option(
        help="fit the cross-validation splits on Dask: 'local' (a LocalCluster) or a scheduler address "
             "tcp://host:8786; the results are the same (docs/scale.md)")] = None,
    workers: Annotated[int, typer.Option(help="worker processes of --scheduler local", min=1)] = 2,
) -> None:
    """Train and cross-validate every candidate model of a study; keep the best."""
    from pmed.study import run_study
    from pmed.study.report import print_study_summary

    with _progress() as p:
        result = run_study(study, out, reporter=_RichReporter(p), scheduler=scheduler, n_workers=workers)
    print_study_summary(result, _console())


@app.command()
def predict(
    model: Annotated[Path, typer.Option("--model", "-m", help="model bundle folder (DIR/model)", exists=True)],
    patients: Annotated[Path, typer.Option("--patients", "-p", help="new patients (CSV/TSV/Parquet)", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="output table (.csv, .tsv or .parquet)", dir_okay=False,
                                      callback=table_out())] = Path("predictions.csv"),
    block: Annotated[list[str] | None, typer.Option("--block", "-b", help="NAME=FILE for modality blocks",
                                                    callback=_checked_blocks)] = None,
    report: Annotated[Path | None, typer.Option("--report", help="folder for one HTML report per patient",
                                                            file_okay=False)] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="also print each patient report to PDF (Chromium)")] = False,
    pgx: Annotated[Path | None, typer.Option(
        "--pgx", help="'pmed pgx call' output (folder or recommendations.tsv) for the pgx_flag of treatment options",
        exists=True)] = None,
    options: Annotated[Path | None, typer.Option(
        "--options", help="treatment options table (bundles of a study with a treatment section; default "
                          "treatment_options.csv beside --out)", dir_okay=False, callback=table_out())] = None,
) -> None:
    """Score new patients with a trained model bundle (and rank their treatment options)."""
    from pmed.io import check_not_input
    from pmed.study import load_bundle, predict_patients
    from pmed.study.predict import new_patient_features, write_patient_reports

    blocks = _parse_blocks(block)
    inputs = [patients, list((blocks or {}).values()), model, pgx]
    options = options if options is not None else out.parent / "treatment_options.csv"
    # before loading anything: --out must not replace --patients, a block file or the bundle, and
    # the report folder (replaced whole) must hold none of them, nor --out, nor lie in the bundle
    check_not_input(out, *inputs)
    check_not_input(options, *inputs)
    if options.resolve() == out.resolve():
        from pmed.errors import InputError

        raise InputError("--options and --out name the same file", file=options,
                         fix="give the treatment options another file (default treatment_options.csv beside --out)")
    if report is not None:
        from pmed.study.predict import check_report_folder

        check_report_folder(report, *_flat(inputs), out=out)
        check_report_folder(report, out=options)
    bundle = load_bundle(model)
    pred = predict_patients(bundle, patients, blocks=blocks, out=out)
    _console().print(f"wrote {len(pred)} predictions to {out}")
    X = new_patient_features(bundle, patients, blocks=blocks) if report is not None or bundle.treatment_model \
        else None
    sections = None
    if bundle.treatment_model is not None:
        from pmed.io import write_table
        from pmed.study.predict import (
            read_pgx_recommendations,
            treatment_options,
            treatment_options_section,
        )

        recs = read_pgx_recommendations(pgx) if pgx is not None else None
        opts = treatment_options(bundle, X, recommendations=recs)
        write_table(opts, options, index=False)
        _console().print(f"wrote {opts['treatment'].nunique()} treatment options for {len(pred)} patients to "
                         f"{options}" + ("" if pgx is not None else " (no --pgx: pgx_flag says 'no PGx calls')"))
        sections = {p: [treatment_options_section(opts, p, bundle.manifest)] for p in pred.index}
    elif pgx is not None:
        _console().print("[yellow]warning[/yellow] --pgx is used for treatment options, and this bundle has none")
    if report is not None:
        paths = write_patient_reports(bundle, X, pred, report, pdf=pdf, inputs=_flat(inputs), sections=sections)
        _console().print(f"wrote {len(paths)} patient reports to {report}/")


def _window(value: str | None) -> str | int | None:
    if value is None or value in ("month", "week"):
        return value
    try:
        n = int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: use month, week or a number of rows", param_hint="--window") from None
    if n < 1:
        raise typer.BadParameter("a window holds at least 1 row", param_hint="--window")
    return n


@app.command()
def monitor(
    model: Annotated[Path, typer.Option("--model", "-m", help="model bundle folder (DIR/model)", exists=True)],
    data: Annotated[Path, typer.Option("--data", "-d", help="new patients (CSV/TSV/Parquet)", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder", file_okay=False)] = Path("pmed-monitor"),
    outcome: Annotated[str | None, typer.Option("--outcome", help="observed outcome column (binary models)")] = None,
    time_col: Annotated[str | None, typer.Option("--time-col", help="date column that orders the rows")] = None,
    window: Annotated[str | None, typer.Option("--window", help="month, week or N rows per window")] = None,
    block: Annotated[list[str] | None, typer.Option("--block", "-b", help="NAME=FILE for modality blocks",
                                                    callback=_checked_blocks)] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="false discovery rate of the drift tests",
                                         min=1e-6, max=0.5)] = 0.05,
    psi_threshold: Annotated[float, typer.Option("--psi-threshold", help="smallest PSI that counts as drift",
                                                 min=0.0)] = 0.2,
) -> None:
    """Drift of new patients against a bundle's training summaries, and its performance per window."""
    from pmed.monitor import run_monitor

    with _progress() as p:
        res = run_monitor(model, data, outcome=outcome, time_col=time_col, window=_window(window),
                          blocks=_parse_blocks(block), alpha=alpha, psi_threshold=psi_threshold,
                          progress=_RichReporter(p))
    files = res.write(out)
    s = res.summary()
    said = (f"drift detected in {', '.join(s['drifted_features']) or 'the predictions'}" if s["drift_detected"]
            else "no drift detected")
    _console().print(f"{s['n_rows']} rows, {s['n_windows']} window(s): {said}; wrote {files['dashboard']}")
    for col, values in s["unseen_categories"].items():
        shown = ", ".join(f"{v!r} ({n} rows)" for v, n in list(values.items())[:5])
        _console().print(f"column {col!r}: categories never seen in training, scored as missing: {shown}")


@app.command()
def update(
    model: Annotated[Path, typer.Option("--model", "-m", help="model bundle folder (DIR/model)", exists=True)],
    data: Annotated[Path, typer.Option("--data", "-d", help="new patients with outcomes (CSV/TSV/Parquet)",
                                       exists=True)],
    outcome: Annotated[str, typer.Option("--outcome", help="observed outcome column")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder (OUT/model and OUT/promotion.json)",
                                      file_okay=False)],
    strategy: Annotated[str, typer.Option("--strategy", help="what the candidate is",
                                          **choice("recalibrate", "refit"))] = "recalibrate",
    time_col: Annotated[str | None, typer.Option("--time-col", help="date column that orders the rows")] = None,
    window: Annotated[str | None, typer.Option("--window", help="month, week or N rows: the last window is "
                                                                "held out for the decision")] = None,
    holdout_fraction: Annotated[float, typer.Option("--holdout-fraction", min=0.05, max=0.9, callback=finite(),
                                                    help="without a time column: the last share of rows held out")] = 0.3,
    block: Annotated[list[str] | None, typer.Option("--block", "-b", help="NAME=FILE for modality blocks",
                                                    callback=_checked_blocks)] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX)] = 0,
) -> None:
    """Recalibrate or refit a bundle on new patients; promote it only on held-out evidence."""
    from pmed.monitor import update_bundle

    res = update_bundle(model, data, outcome=outcome, strategy=strategy, out=out, time_col=time_col,
                        window=_window(window), holdout_fraction=holdout_fraction, blocks=_parse_blocks(block),
                        seed=seed)
    _console().print(f"{res['decision']}: " + "; ".join(res.get("reasons", [])) + f" — wrote {out}")


@app.command()
def evaluate(
    predictions: Annotated[Path, typer.Option("--predictions", help="predictions file (CSV/TSV/Parquet)",
                                                                  exists=True)],
    score: Annotated[str, typer.Option("--score", help="predicted probability column (survival: risk, higher = worse)")],
    outcome: Annotated[str | None, typer.Option("--outcome", help="0/1 outcome column (binary/continuous)")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder", file_okay=False)] = Path("pmed-evaluation"),
    model_col: Annotated[str | None, typer.Option("--model-col", help="column naming the model of each row")] = None,
    group: Annotated[list[str] | None, typer.Option("--group", "-g", help="sensitive attribute column (repeatable)")] = None,
    id_col: Annotated[str | None, typer.Option("--id-col", help="patient ID column pairing models")] = None,
    threshold: Annotated[list[float] | None, typer.Option(
        "--threshold", "-t", help="classification threshold in (0, 1) (repeatable)", callback=bounded(gt=0, lt=1))] = None,
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples for CIs (0: none)", min=0,
                                           max=MAX_BOOTSTRAP)] = 500,
    seed: Annotated[int, typer.Option(help="bootstrap seed", min=0, max=SEED_MAX)] = 0,
    min_group_size: Annotated[int, typer.Option(help="smallest subgroup reported", min=1)] = 30,
    task: Annotated[str, typer.Option(help="binary (probabilities), continuous (values) or survival",
                                      **choice("binary", "continuous", "survival"))] = "binary",
    time_col: Annotated[str | None, typer.Option("--time", help="survival: follow-up time column")] = None,
    event_col: Annotated[str | None, typer.Option("--event", help="survival: event column (1 event, 0 censored)")] = None,
    horizon: Annotated[list[float] | None, typer.Option(
        "--horizon", help="survival: horizon for td-AUC, Brier, calibration (repeatable)", callback=bounded(gt=0))] = None,
    tau: Annotated[float | None, typer.Option(
        "--tau", help="survival: truncation time of Uno's C (default: largest horizon)", callback=bounded(gt=0))] = None,
    mitigate: Annotated[str | None, typer.Option(
        help="fairness post-processing to assess: equalized_odds or demographic_parity",
        **choice("equalized_odds", "demographic_parity"))] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="also print report.html to report.pdf (Chromium)")] = False,
    repeat: Annotated[int | None, typer.Option(
        help="keep only this repeat (column 'repeat' of pmed run's oof_predictions.csv)", min=0)] = None,
) -> None:
    """Evaluate any predictions file: discrimination, calibration, utility, subgroups, report."""
    from pmed.evaluate import evaluate_predictions, read_predictions, roc_inputs, select_repeat
    from pmed.evaluate.engine import check_options
    from pmed.io import check_not_input, check_output_folder, output_folder
    from pmed.report import write_evaluation
    from pmed.report.evaluation import is_evaluation_output
    from pmed.study.report import print_evaluation_summary

    if task == "survival":
        _evaluate_survival(predictions, out=out, time_col=time_col, event_col=event_col, score=score,
                           horizons=horizon or [], tau=tau, n_boot=bootstrap, seed=seed, repeat=repeat)
        return
    if outcome is None:
        raise typer.BadParameter(f"--outcome is required for --task {task}", param_hint="--outcome")
    # before any work: the files written into --out must not replace the predictions, and --out
    # (replaced whole, so that no file of an earlier evaluation lingers) must not hold them
    check_not_input(out, predictions, writes=["metrics.json", "reliability_curve.csv", "decision_curve.csv",
                                              "calibration_curve.csv", "report.html", "report.pdf"])
    check_output_folder(out, owned=is_evaluation_output, inputs=[predictions], what="evaluation")
    check_options(thresholds=threshold or [0.5], n_boot=bootstrap, seed=seed, min_group_size=min_group_size,
                  task=task, mitigate=mitigate, outcome=outcome, score=score, model_col=model_col, groups=group or [])
    df = select_repeat(read_predictions(predictions), repeat, source=str(predictions))
    with _progress() as p:
        bar = p.add_task("evaluating", total=None)
        ev, tables = evaluate_predictions(
            df, outcome=outcome, score=score, model_col=model_col, groups=group or [], id_col=id_col,
            thresholds=threshold or [0.5], n_boot=bootstrap, seed=seed, min_group_size=min_group_size,
            source=str(predictions), task=task, mitigate=mitigate)
        p.update(bar, description="writing report")
        with output_folder(out, owned=is_evaluation_output, inputs=[predictions], what="evaluation") as work:
            paths = write_evaluation(ev, tables, work,
                                     roc_data=roc_inputs(df, outcome=outcome, score=score, model_col=model_col),
                                     context={"data_sources": [str(predictions)]})
            if pdf and "report" in paths:
                from pmed.report import html_to_pdf

                html_to_pdf(paths["report"], work / "report.pdf")
    print_evaluation_summary(ev, out, _console())


def _evaluate_survival(predictions: Path, *, out: Path, time_col: str | None, event_col: str | None,
                       score: str, horizons: list[float], tau: float | None, n_boot: int, seed: int,
                       repeat: int | None) -> None:
    """``pmed evaluate --task survival``: thin glue around :func:`pmed.survival.evaluation.evaluate_survival`."""
    from pmed.evaluate import read_predictions, select_repeat
    from pmed.io import check_not_input, check_output_folder, output_folder
    from pmed.report.evaluation import is_evaluation_output
    from pmed.survival.evaluation import (
        check_survival_options,
        evaluate_survival,
        write_survival_evaluation,
    )

    for flag, value in (("--time", time_col), ("--event", event_col)):
        if value is None:
            raise typer.BadParameter(f"{flag} is required for --task survival", param_hint=flag)
    check_not_input(out, predictions, writes=["metrics.json", "calibration_curve.csv", "decision_curve.csv",
                                              "calibration.png", "decision_curve.png"])
    check_output_folder(out, owned=is_evaluation_output, inputs=[predictions], what="evaluation")
    check_survival_options(horizons=horizons, tau=tau, n_boot=n_boot, seed=seed)
    df = select_repeat(read_predictions(predictions), repeat, source=str(predictions))
    with _progress() as p:
        p.add_task("evaluating survival predictions", total=None)
        metrics, tables = evaluate_survival(df, time=time_col, event=event_col, score=score, horizons=horizons,
                                            tau=tau, n_boot=n_boot, seed=seed, source=str(predictions))
        with output_folder(out, owned=is_evaluation_output, inputs=[predictions], what="evaluation") as work:
            write_survival_evaluation(metrics, tables, work)
    c = metrics["harrell_c"]
    _console().print(f"Harrell's C {c['estimate']:.3f} ({c['ci_low']:.3f}–{c['ci_high']:.3f}); "
                     f"Uno's C {metrics['uno_c']['estimate']:.3f} → {out}")
    for note in metrics["notes"]:
        _console().print(f"[yellow]note[/yellow]: {note}")


@app.command()
def validate(
    patients: Annotated[Path, typer.Argument(help="patient table (CSV/TSV/Parquet)")],
    schema: Annotated[Path | None, typer.Option("--schema", "-s", help="schema YAML/JSON", exists=True,
                                                          dir_okay=False)] = None,
    id: Annotated[str, typer.Option("--id", help="ID column when no schema is given")] = "patient_id",
) -> None:
    """Check a patient table against its schema and report every problem."""
    from pmed.io import read_table

    df = read_table(patients, schema=schema, id=id)
    _console().print(f"[green]ok[/green]: {len(df)} patients, {df.shape[1]} columns")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder", file_okay=False)] = Path("pmed-demo"),
    n_patients: Annotated[int, typer.Option(help="synthetic cohort size", min=DEMO_MIN_PATIENTS)] = 1000,
    seed: Annotated[int, typer.Option(help="random seed", min=0, max=SEED_MAX)] = 0,
) -> None:
    """Run the whole flow on an embedded synthetic cohort and print a summary."""
    from pmed.demo import run_demo

    run_demo(out, n_patients=n_patients, seed=seed, console=_console(), progress=_progress,
             reporter_cls=_RichReporter)


@app.command()
def version() -> None:
    """Print pmed's version."""
    from pmed import __version__

    print(__version__)


def _add_subcommands() -> None:
    from pmed.cli import federated, imaging, omics, pgx, privacy, prs, spatial, timeseries

    app.add_typer(prs.app, name="prs")
    app.add_typer(pgx.app, name="pgx")
    app.add_typer(timeseries.app, name="timeseries")
    app.add_typer(imaging.app, name="imaging")
    app.add_typer(omics.app, name="omics")
    app.add_typer(spatial.app, name="spatial")
    app.add_typer(privacy.app, name="privacy")
    app.add_typer(federated.app, name="federated")
    from pmed.serve import cli as serve  # imports no web package until `pmed serve` runs

    app.add_typer(serve.app, name="serve")


_add_subcommands()


def _tree(t: typer.Typer) -> tuple:
    """What the click command built from ``t`` depends on: its commands, callbacks and groups.

    The objects themselves (compared by identity), not their ids, so that a replaced callback —
    a test's stand-in — always counts as a change.
    """
    return (tuple((c, c.callback) for c in t.registered_commands), t.registered_callback,
            tuple((g, _tree(g.typer_instance)) for g in t.registered_groups))


_built: list = []  # [(tree, click command)]: building takes ~0.1 s, which in-process tests repeat


def _command():
    """The click command of :data:`app`, rebuilt only when its tree changed."""
    tree = _tree(app)
    if not _built or _built[0][0] != tree:
        _built[:] = [(tree, typer.main.get_command(app))]
    return _built[0][1]


def _is_click_error(e: BaseException) -> bool:
    """Whether ``e`` is a ``ClickException`` of the click that typer runs on.

    Older typer runs on ``click``; newer typer vendors it as ``typer._click``. Both export
    ``BadParameter``, whose bases name the right ``ClickException`` — no import of a module that
    may be absent.
    """
    base = next((c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"), None)
    return base is not None and isinstance(e, base)


def _is_broken_stream(e: BaseException) -> bool:
    """Whether ``e`` is what gzip/zlib/bz2/lzma raise for a file cut short or damaged."""
    import lzma
    import zlib

    return isinstance(e, (EOFError, zlib.error, lzma.LZMAError))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning errors into one message and an exit code.

    pmed errors give their own exit codes (module docstring); usage errors — unknown option or
    command, missing or malformed value, a value outside its choices or range, a path that does
    not exist, a file where a folder is wanted — print click's usage line and one ``Error:`` line
    and give 2; Ctrl-C gives ``interrupted`` and 130. Anything else is a bug and keeps its
    traceback.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``pmed`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code.
    """
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    command = _command()
    try:
        # make_context + invoke rather than app(standalone_mode=False): the latter differs across
        # typer versions (some turn Ctrl-C into a silent exit 130, some re-raise Abort).
        with command.make_context("pmed", args) as ctx:
            command.invoke(ctx)
    except PmedError as e:
        from rich.markup import escape

        _console(stderr=True).print(f"[bold red]error[/bold red] {escape(str(e))}", soft_wrap=True)
        return e.exit_code
    except KeyboardInterrupt:
        print("pmed: interrupted", file=sys.stderr)
        return 130
    except typer.Abort as e:
        # click aborts on Ctrl-C *and* on end of input (EOFError) at a prompt: only the first is
        # an interruption (130); the second is a failure that must not pass for one
        if isinstance(e.__cause__ or e.__context__, KeyboardInterrupt):
            print("pmed: interrupted", file=sys.stderr)
            return 130
        print("error: aborted (a prompt got no answer)", file=sys.stderr)
        return 1
    except typer.Exit as e:  # --help, or a command that exits early on purpose
        return int(e.exit_code or 0)
    except Exception as e:
        if _is_click_error(e):
            e.show()  # type: ignore[attr-defined]
            return int(e.exit_code)  # type: ignore[attr-defined]
        if isinstance(e, BrokenPipeError):  # `pmed ... | head`: the reader left; nothing to say
            return 1
        if _is_broken_stream(e):
            # a reader let a decompression error through (pmed's readers name the file; this is the
            # net under the others): one line and exit 2, never a traceback or an "interrupted"
            detail = (str(e).strip().splitlines() or [""])[0][:120]
            print(f"error: an input file is truncated or corrupt ({type(e).__name__}"
                  f"{': ' + detail if detail else ''})", file=sys.stderr)
            print("  fix: check that every input file was written and copied completely", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
