"""``pmed timeseries``: EHR and wearable time series. Parsing and printing only; the work is in
:mod:`pmed.timeseries`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(help="EHR and wearable time series: read, check units, summarise into patient features.",
                  no_args_is_help=True)


@app.callback()
def _group() -> None:
    """EHR and wearable time series."""


@app.command()
def features(
    source: Annotated[Path, typer.Argument(help="PhysioNet 2012 set (.tar.gz or folder), long table "
                                                "(CSV/Parquet), FHIR bundle (.json) or wearable table")],
    out: Annotated[Path, typer.Option("--out", "-o", help="feature table (.parquet, .csv or .tsv)")] = Path(
        "timeseries_features.parquet"),
    format: Annotated[str, typer.Option(help="auto, physionet2012, long, fhir or wearable")] = "auto",
    start: Annotated[float, typer.Option(help="window start, hours")] = 0.0,
    end: Annotated[float, typer.Option(help="window end, hours")] = 48.0,
    unknown: Annotated[str, typer.Option(help="variables without units/ranges: error, keep or drop")] = "error",
    derived: Annotated[bool, typer.Option(help="add derived quantities (shock index, PaO2/FiO2)")] = True,
    epoch_minutes: Annotated[float, typer.Option(help="wearables: minutes per row")] = 1.0,
    flags: Annotated[Path | None, typer.Option(help="also write the values converted or set missing (CSV)")] = None,
    patients: Annotated[Path | None, typer.Option(
        "--patients-out", help="also write descriptors and outcomes per patient (a study's patient table); "
                               "the descriptors then stay out of the feature table")] = None,
) -> None:
    """Summarise each patient's series into one row of features (a Cohort block for `pmed run`)."""
    from pmed.cli import _console
    from pmed.io import write_table
    from pmed.timeseries.features import features_from_file

    feats, ts, prov = features_from_file(source, format=format, start=start, end=end, unknown=unknown,
                                         derived=derived, epoch_minutes=epoch_minutes,
                                         static=patients is None)
    # patient_id as a plain column: what `pmed run` reads from CSV and Parquet alike
    write_table(feats.reset_index(), out, index=False)
    con = _console()
    s = ts.summary()
    con.print(f"read {s['n_patients']} patients, {s['n_observations']} measurements of {s['n_variables']} "
              f"variables ({prov['format']})")
    con.print(f"unit checks: {s['n_converted']} values converted, {s['n_set_missing']} implausible values set missing")
    con.print(f"wrote {feats.shape[1]} features × {feats.shape[0]} patients to {out}")
    if flags is not None:
        write_table(ts.flags, flags, index=False)
        con.print(f"wrote {len(ts.flags)} flags to {flags}")
    if patients is not None:
        import pandas as pd

        table = ts.static.copy()
        if ts.outcomes is not None:
            table = table.join(ts.outcomes, how="outer") if len(table) else ts.outcomes.copy()
        if table.empty:
            table = pd.DataFrame(index=feats.index)
        table.index.name = "patient_id"
        write_table(table.reset_index(), patients, index=False)
        con.print(f"wrote {table.shape[1]} descriptor/outcome columns to {patients}")
