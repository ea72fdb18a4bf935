"""``pmed prs``: polygenic scores. Parsing and printing only; the work is in :mod:`pmed.genomics.prs`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmed.cli._params import choice, finite

__all__ = ["app"]

app = typer.Typer(help="Polygenic scores: PGS Catalog scoring files × PLINK/VCF genotypes.",
                  no_args_is_help=True)


def _scheduler(value: str | None) -> str | None:
    """``local`` or a scheduler address, checked while the command line is parsed."""
    from pmed.errors import OptionError
    from pmed.scale import check_scheduler

    try:
        return None if value is None else check_scheduler(value)
    except OptionError as e:
        raise typer.BadParameter(e.message) from None


@app.command()
def score(
    target: Annotated[list[str], typer.Option(
        "--target", "-t", help="genotypes: .pgen, .bed, .vcf.gz or .bcf (repeatable; glob patterns "
                               "such as 'chr*.pgen' for one file per chromosome)")],
    scorefile: Annotated[list[Path], typer.Option(
        "--scorefile", "-s", help="PGS Catalog or plink2-style scoring file (repeatable)", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder", file_okay=False)] = Path("prs-out"),
    min_overlap: Annotated[float, typer.Option(help="smallest fraction of a score's variants that must match", min=0, max=1,
                                                   callback=finite())] = 0.75,
    keep_ambiguous: Annotated[bool, typer.Option(help="keep strand-ambiguous (A/T, C/G) variants")] = False,
    keep_multiallelic: Annotated[bool, typer.Option(help="keep matches at multi-allelic sites")] = False,
    keep_first_match: Annotated[bool, typer.Option(help="of duplicated score rows, keep the first")] = False,
    impute: Annotated[str, typer.Option(help="missing genotypes: mean (cohort frequency), file (allelefrequency_effect) or none", **choice("mean", "file", "none"))] = "mean",
    dosage: Annotated[str, typer.Option(help="VCF field to score: GT (hardcalls) or DS (dosages)", **choice("GT", "DS"))] = "GT",
    build: Annotated[str | None, typer.Option(help="genome build of the genotypes if their files do not say", **choice("GRCh37", "GRCh38", "hg19", "hg38"))] = None,
    n_jobs: Annotated[int, typer.Option("--n-jobs", "--threads", min=1, help="threads for reading and multiplying (--threads: the earlier name)")] = 1,
    block_size: Annotated[int | None, typer.Option(help="variants per streamed block (default: about 2.5 million genotypes)", min=1)] = None,
    scheduler: Annotated[str | None, typer.Option(help="run on Dask: 'local' or a scheduler address tcp://host:8786", callback=_scheduler)] = None,
    reference: Annotated[Path | None, typer.Option(help="reference panel genotypes for ancestry-aware scores (PCA, most similar population, Z)")] = None,
    ref_populations: Annotated[Path | None, typer.Option(help="table with IID and the population column (default: the reference's .psam)", exists=True)] = None,
    population_column: Annotated[str, typer.Option(help="population column of the reference labels")] = "SuperPop",
    seed: Annotated[int, typer.Option(help="seed of the population classifier (with --reference)", min=0, max=2**32 - 1)] = 0,
) -> None:
    """Score samples on polygenic scores; write DIR/scores.tsv and DIR/match_report.tsv."""
    from pmed.cli._common import console, pmed_warnings, progress_bar
    from pmed.genomics.prs import run_prs
    from pmed.io import check_not_input

    # before scoring: targets may be globs, so only the literal paths are compared
    check_not_input(out, [t for t in target if Path(t).exists()], scorefile, reference, ref_populations,
                    writes=["scores.tsv", "match_report.tsv", "provenance.json", "ancestry.tsv",
                            "scores_adjusted.tsv"])
    with pmed_warnings(), progress_bar() as reporter:
        res = run_prs(
            target, scorefile, out=out, min_overlap=min_overlap, keep_ambiguous=keep_ambiguous,
            keep_multiallelic=keep_multiallelic, keep_first_match=keep_first_match, impute=impute,
            dosage_field=dosage, target_build=build, n_jobs=n_jobs, block_size=block_size,
            scheduler=scheduler, reference=reference, reference_populations=ref_populations,
            population_column=population_column, seed=seed, progress=reporter)
    con = console()
    rep = res.match.report
    for _, r in rep.iterrows():
        con.print(f"[bold]{r['PGS']}[/bold]: {r['matched']}/{r['n_variants']} variants matched "
                  f"({r['overlap']:.1%}); excluded {r['excluded']} (strand-ambiguous "
                  f"{r['excluded_strand_ambiguous']}, multi-allelic {r['excluded_multiallelic']}, "
                  f"duplicate {r['excluded_duplicate_ID']}), not found {r['unmatched']} "
                  f"(of which other alleles at the position {r['unmatched_allele_mismatch']}), "
                  f"unscorable {r['unscorable']}; genome build check: {r['build_check']}")
    con.print(f"{res.provenance['n_samples']} samples × {len(rep)} scores → {out / 'scores.tsv'} "
              f"(match report: {out / 'match_report.tsv'})")
    if res.ancestry is not None:
        pops = res.ancestry.assignment["MostSimilarPop"].value_counts()
        con.print(f"ancestry: {res.ancestry.n_pca_variants} shared SNVs; most similar population "
                  + ", ".join(f"{k} {v}" for k, v in pops.items())
                  + f" → {out / 'scores_adjusted.tsv'} (percentile, Z_MostSimilarPop, Z_norm1, Z_norm2)")
