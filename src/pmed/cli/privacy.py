"""``pmed privacy``: de-identify patient tables and measure their re-identification risk. Parsing
and printing only; the work is in :mod:`pmed.privacy`.

Options naming several columns (``--quasi``, ``--date-cols``) may be repeated and may hold
comma-separated lists: ``--quasi age --quasi sex`` is ``--quasi age,sex``. Nothing printed here
holds a value of the table: counts, column names and line numbers only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmed.cli._params import table_out

__all__ = ["app"]

app = typer.Typer(help="Privacy of patient tables: de-identify them (keyed pseudonyms, identifiers removed, "
                       "dates shifted) and measure or enforce k-anonymity and l-diversity.",
                  no_args_is_help=True)


def _columns(value: list[str] | None) -> list[str] | None:
    """A repeatable column option whose values may be comma-separated: refuse empty names."""
    if value is None:
        return None
    for v in value:
        if not [p for p in str(v).split(",") if p.strip()]:
            raise typer.BadParameter("give at least one column name, e.g. age,sex")
    return value


def _report_out(value: Path | None) -> Path | None:
    if value is not None and value.suffix.lower() not in (".json", ".csv"):
        raise typer.BadParameter("name the report .json or .csv.")
    return value


@app.callback()
def _group() -> None:
    """Privacy of patient tables."""


@app.command()
def deidentify(
    input: Annotated[Path, typer.Argument(help="patient table (CSV, TSV or Parquet); never modified",
                                          exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="de-identified table (.csv, .tsv or .parquet)",
                                      dir_okay=False, callback=table_out())],
    key_file: Annotated[Path, typer.Option("--key-file", help="secret key file (keep it apart from the data; "
                                                              "the same key gives the same pseudonyms)",
                                           dir_okay=False)],
    create_key: Annotated[bool, typer.Option("--create-key", help="create the key file (32 random bytes, "
                                                                  "mode 0600) if it does not exist")] = False,
    id_col: Annotated[str | None, typer.Option("--id-col", help="patient ID column (default: patient_id or "
                                                                "another usual name)")] = None,
    date_cols: Annotated[list[str] | None, typer.Option("--date-cols", help="more date columns to shift "
                                                                            "(repeatable or comma-separated)",
                                                        callback=_columns)] = None,
    quasi: Annotated[list[str] | None, typer.Option("--quasi", help="quasi-identifiers whose k-anonymity the "
                                                                    "report gives (repeatable or comma-separated)",
                                                    callback=_columns)] = None,
    k: Annotated[int, typer.Option("--k", help="the k of that report", min=1)] = 5,
    report: Annotated[Path | None, typer.Option("--report", help="report file (.json or .csv; default "
                                                                 "OUT's name + .deid-report.json)",
                                                dir_okay=False, callback=_report_out)] = None,
) -> None:
    """Remove direct identifiers, pseudonymize the patient ID, shift dates, group ages 90+, cut ZIP codes."""
    from pmed.cli._common import console, pmed_warnings
    from pmed.io import check_not_input
    from pmed.privacy.deid import deidentify_table

    for target in (out, report, key_file if create_key else None):
        check_not_input(target, input)
    with pmed_warnings():
        res = deidentify_table(input, key_file=key_file, create_key=create_key, id_col=id_col,
                               date_cols=date_cols, quasi=quasi, k=k, out=out)
        files = res.write(out, report=report)
    con = console()
    if res.key.get("created"):
        con.print(f"created the key file {key_file} (mode 0600): keep it secret, apart from the data, "
                  "and use it again for every export of this project")
    s = res.summary()
    acts = ", ".join(f"{n} {a}" for a, n in sorted(s["actions"].items()))
    con.print(f"{s['n_rows']} rows, {s['n_columns_in']} columns: {acts}")
    if res.risk and "k_min" in res.risk:
        con.print(f"quasi-identifiers {', '.join(res.risk['quasi'])}: k_min = {res.risk['k_min']}, "
                  f"{res.risk['n_records_below_k']} records in classes smaller than k = {res.risk['k']}")
    con.print(f"wrote {files['table']} and the report {files['report']}")


@app.command()
def check(
    input: Annotated[Path, typer.Argument(help="table (CSV, TSV or Parquet); never modified", exists=True,
                                          dir_okay=False)],
    quasi: Annotated[list[str], typer.Option("--quasi", help="quasi-identifiers (repeatable or comma-separated)",
                                             callback=_columns)],
    k: Annotated[int, typer.Option("--k", help="smallest equivalence class wanted", min=1)],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder (privacy.json, released table)",
                                      file_okay=False)],
    l: Annotated[int | None, typer.Option("--l", help="fewest distinct sensitive values per class "  # noqa: E741
                                                      "(needs --sensitive)", min=1)] = None,
    sensitive: Annotated[str | None, typer.Option("--sensitive", help="the sensitive column")] = None,
    enforce: Annotated[bool, typer.Option("--enforce", help="generalize, then suppress, until k (and l) hold; "
                                                            "write the released table")] = False,
    max_suppression: Annotated[float, typer.Option("--max-suppression", help="share of records that may be "
                                                                             "suppressed before generalizing "
                                                                             "further (0 … 1)",
                                                   min=0.0, max=1.0)] = 0.05,
    id_col: Annotated[str | None, typer.Option("--id-col", help="patient ID column")] = None,
) -> None:
    """k-anonymity and l-diversity over the quasi-identifiers; with --enforce a release that meets them."""
    from pmed.cli._common import console, pmed_warnings
    from pmed.privacy.api import run_privacy

    if l is not None and sensitive is None:
        raise typer.BadParameter("--l needs --sensitive (the column whose values must vary in each class).",
                                 param_hint="'--l'")
    with pmed_warnings():
        res = run_privacy(input, quasi=quasi, k=k, l=l, sensitive=sensitive, enforce=enforce,
                          max_suppression=max_suppression, id_col=id_col)
        files = res.write(out)
    con = console()
    r = res.risk
    con.print(f"{r['n_records']} records in {r['n_classes']} classes over {', '.join(r['quasi'])}: "
              f"k_min = {r['k_min']}; {r['n_classes_below_k']} classes ({r['n_records_below_k']} records) "
              f"below k = {k}")
    if "l" in r:
        con.print(f"l_min = {r['l_min']}; {r['n_classes_below_l']} classes ({r['n_records_below_l']} records) "
                  f"below l = {r['l']}")
    if res.enforcement is not None:
        e = res.enforcement
        levels = ", ".join(f"{q}: {c['level_name']}" for q, c in e["columns"].items())
        con.print(f"enforced: {levels}; {e['records_suppressed']} records suppressed "
                  f"({e['suppressed_share']:.1%}), precision loss {e['precision_loss']:.2f}")
    con.print(f"wrote {files['privacy']}" + (f" and {files['released']}" if "released" in files else ""))
