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

#: Every file ``pmed pgx call`` may write into --out (``pgx_<n>.html`` aside).
OUTPUT_FILES = ["calls.tsv", "recommendations.tsv", "pgx.json", "provenance.json"]


def _sample_names(values: list[str] | None) -> list[str] | None:
    """``--sample`` values must be names: an empty one would match no column (usage error)."""
    if values is None:
        return None
    bad = [i for i, v in enumerate(values, 1) if not v.strip()]
    if bad:
        # which --sample, by its position: the values themselves may be patient IDs
        raise typer.BadParameter(f"--sample number {', '.join(map(str, bad))} is empty.")
    return values


@app.callback()
def _group() -> None:
    """Pharmacogenomics: PharmCAT-compatible star-allele calls, phenotypes, recommendations."""


@app.command("call")
def call(
    vcf: Annotated[Path, typer.Argument(help="GRCh38 VCF (plain or bgzipped, 1+ samples)", exists=True,
                                        dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder (new, empty, or an earlier "
                                      "`pmed pgx call` output, which is replaced whole)",
                                      file_okay=False)] = Path("pmed-pgx"),
    missing_to_ref: Annotated[
        bool, typer.Option("--missing-to-ref", help="positions absent from the VCF are reference")
    ] = False,
    outside_call: Annotated[
        Path | None, typer.Option("--outside-call", help="PharmCAT outside-call TSV (CYP2D6, HLA)",
                                  exists=True, dir_okay=False)
    ] = None,
    sample: Annotated[
        list[str] | None, typer.Option("--sample", "-s", help="call only this sample (repeatable)",
                                       callback=_sample_names)
    ] = None,
    all_matches: Annotated[
        bool, typer.Option("--all-matches", help="report every matching diplotype, not only the top")
    ] = False,
    html: Annotated[bool, typer.Option("--html", help="also write one HTML section per sample")] = False,
) -> None:
    """Call pharmacogenes and write calls.tsv, recommendations.tsv, pgx.json, provenance.json."""

    from rich.markup import escape
    from rich.table import Table

    from pmed.cli._common import console as _console
    from pmed.cli._common import pmed_warnings, progress_bar
    from pmed.genomics.pgx import run_pgx
    from pmed.io import check_not_input, check_output_folder
    from pmed.result import _written_by

    # before any data is read: --out must be a folder that result.write may replace whole (new,
    # empty or an earlier pgx output; every file, HTML sections included, is written there by
    # result.write through a staged folder, so no file of an earlier run lingers), and no input
    # may be inside it or be one of the files written
    check_not_input(out, vcf, outside_call, writes=OUTPUT_FILES)
    check_output_folder(out, owned=lambda d: _written_by(d, "pgx"), inputs=[vcf, outside_call],
                        what="pgx output")
    with pmed_warnings(), progress_bar() as reporter:
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
    if result.build_check:
        console.print(f"genome build: {result.build_check['status']} "
                      f"({escape(result.build_check['message'])})")
    for name, path in paths.items():
        if not name.startswith("html_"):
            console.print(f"  {name}: {path}")
