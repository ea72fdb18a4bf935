"""``pmed pgx``: pharmacogenomic calls and recommendations from a VCF (no logic here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    name="pgx",
    help="Pharmacogenomics: PharmCAT-compatible star-allele calls, phenotypes, recommendations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _group() -> None:
    """Pharmacogenomics: PharmCAT-compatible star-allele calls, phenotypes, recommendations."""


@app.command("call")
def call(
    vcf: Annotated[Path, typer.Argument(help="GRCh38 VCF (plain or bgzipped, 1+ samples)", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder", file_okay=False)] = Path("pmed-pgx"),
    missing_to_ref: Annotated[
        bool, typer.Option("--missing-to-ref", help="positions absent from the VCF are reference")
    ] = False,
    outside_call: Annotated[
        Path | None, typer.Option("--outside-call", help="PharmCAT outside-call TSV (CYP2D6, HLA)",
                                  exists=True)
    ] = None,
    sample: Annotated[
        list[str] | None, typer.Option("--sample", "-s", help="call only this sample (repeatable)")
    ] = None,
    all_matches: Annotated[
        bool, typer.Option("--all-matches", help="report every matching diplotype, not only the top")
    ] = False,
    html: Annotated[bool, typer.Option("--html", help="also write one HTML section per sample")] = False,
) -> None:
    """Call pharmacogenes and write calls.tsv, recommendations.tsv, pgx.json, provenance.json."""
    from rich.table import Table

    from pmed.cli._common import console as _console
    from pmed.cli._common import progress_bar
    from pmed.genomics.pgx import run_pgx
    from pmed.io import check_not_input

    check_not_input(out, vcf, outside_call, writes=["calls.tsv", "recommendations.tsv", "pgx.json",
                                                   "provenance.json"])
    with progress_bar() as reporter:
        result = run_pgx(
            vcf, samples=sample, missing_to_ref=missing_to_ref, outside_calls=outside_call,
            top_candidate_only=not all_matches, progress=reporter,
        )
    paths = result.write(out, html=html)
    console = _console()
    calls = result.calls_table()
    if len(result.samples) == 1:
        table = Table("gene", "diplotypes", "phenotype", "activity score", title="PGx calls")
        for _, r in calls.iterrows():
            table.add_row(r["gene"], r["diplotypes"], r["phenotype"], r["activity_score"])
        console.print(table)
    n_recs = len(result.recommendations_table())
    console.print(
        f"{len(result.samples)} sample(s), {len(calls)} gene calls, {n_recs} recommendations "
        f"(data {result.data_version})"
    )
    for name, path in paths.items():
        if not name.startswith("html_"):
            console.print(f"  {name}: {path}")
