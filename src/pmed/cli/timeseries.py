"""``pmed timeseries``: EHR and wearable time series. Parsing and printing only; the work is in
:mod:`pmed.timeseries`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmed.cli._params import bounded, choice

__all__ = ["app"]

app = typer.Typer(help="EHR and wearable time series: read, check units, summarise into patient features.",
                  no_args_is_help=True)


def _hours(value: float | None) -> float | None:
    """``--start``/``--end``: a finite number of hours (``nan``/``inf`` parse as floats)."""
    import math

    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number of hours.")
    return value


@app.callback()
def _group() -> None:
    """EHR and wearable time series."""


@app.command()
def features(
    source: Annotated[Path, typer.Argument(help="PhysioNet 2012 set (.tar.gz or folder), long table "
                                                "(CSV/Parquet), FHIR bundle (.json) or wearable table", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="feature table (.parquet, .csv or .tsv)",
                                      dir_okay=False)] = Path(
        "timeseries_features.parquet"),
    format: Annotated[str, typer.Option(help="auto, physionet2012, long, fhir or wearable",
                                        **choice("auto", "physionet2012", "long", "fhir", "wearable"))] = "auto",
    start: Annotated[float, typer.Option(help="window start, hours", callback=_hours)] = 0.0,
    end: Annotated[float, typer.Option(help="window end, hours (after --start)", callback=_hours)] = 48.0,
    unknown: Annotated[str, typer.Option(help="variables without units/ranges: error, keep or drop",
                                         **choice("error", "keep", "drop"))] = "error",
    derived: Annotated[bool, typer.Option(help="add derived quantities (shock index, PaO2/FiO2)")] = True,
    epoch_minutes: Annotated[float, typer.Option(help="wearables: minutes per row (> 0, at most 1440)",
                                                 callback=bounded(gt=0), max=1440)] = 1.0,
    sort: Annotated[bool, typer.Option("--sort", help="long/wearable tables: sort rows by patient and time "
                                                      "instead of refusing times that go backwards")] = False,
    flags: Annotated[Path | None, typer.Option(help="also write the values converted or set missing (CSV)",
                                                     dir_okay=False)] = None,
    patients: Annotated[Path | None, typer.Option(
        "--patients-out", help="also write descriptors and outcomes per patient (a study's patient table); "
                               "the descriptors then stay out of the feature table", dir_okay=False)] = None,
) -> None:
    """Summarise each patient's series into one row of features (a Cohort block for `pmed run`)."""


    from pmed.cli import _console
    from pmed.cli._common import pmed_warnings, progress_bar
    from pmed.io import check_not_input
    from pmed.timeseries.api import run_timeseries

    if not end > start:  # both options are known here: refuse before reading anything
        raise typer.BadParameter(f"--end {end:g} must be later than --start {start:g}.", param_hint="'--end'")
    for target in (out, flags, patients):  # before reading: an output must not replace the source
        check_not_input(target, source)
    # pmed's warnings (what lowers trust in the features) printed as one line each at the end
    with pmed_warnings():
        with progress_bar() as bar:
            res = run_timeseries(source, format=format, start=start, end=end, unknown=unknown,
                                 derived=derived, epoch_minutes=epoch_minutes, static=patients is None,
                                 sort=sort, progress=bar)
        # the feature table, the tables asked for, and provenance.json beside the feature table
        res.write_feature_file(out, flags=flags, patients=patients)
    con = _console()
    s = res.series.summary()
    con.print(f"read {s['n_patients']} patients, {s['n_observations']} measurements of {s['n_variables']} "
              f"variables ({res.format})")
    con.print(f"unit checks: {s['n_converted']} values converted, {s['n_set_missing']} implausible values set missing")
    con.print(f"wrote {res.features.shape[1]} features × {res.features.shape[0]} patients to {out}")
    if flags is not None:
        con.print(f"wrote {len(res.flags)} flags to {flags}")
    if patients is not None:
        con.print(f"wrote {res.patient_table().shape[1]} descriptor/outcome columns to {patients}")
