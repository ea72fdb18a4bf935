"""``pmed omics``: single-cell pipeline. Parsing and printing only; the work is in
:mod:`pmed.omics`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmed.cli._params import bounded, choice, finite

__all__ = ["app"]

app = typer.Typer(help="Single-cell and bulk omics: QC, batch correction, clusters, cell types, "
                       "patient-level biomarkers.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Single-cell and bulk omics."""


def _split(v: str | None) -> list[str] | None:
    return None if not v else [s.strip() for s in v.split(",") if s.strip()]


@app.command()
def pipeline(
    input: Annotated[Path, typer.Option("--input", "-i", help=".h5ad, 10x folder or .h5, or CSV/TSV counts", exists=True)],
    batch_key: Annotated[str, typer.Option("--batch-key", help="obs column to correct for")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder", file_okay=False)],
    label_key: Annotated[str | None, typer.Option("--label-key", help="known cell types (for metrics)")] = None,
    method: Annotated[str, typer.Option(help="harmony, combat, scanorama, bbknn or none",
                                        **choice("harmony", "combat", "scanorama", "bbknn", "none"))] = "harmony",
    resolution: Annotated[float, typer.Option(help="Leiden resolution (> 0)", callback=finite(bounded(gt=0)))] = 0.6,
    markers: Annotated[str, typer.Option(help="marker set: 'pbmc' or a JSON/YAML/CSV file")] = "pbmc",
    cell_types: Annotated[str | None, typer.Option(help="comma-separated types expected (subset of markers)")] = None,
    metadata: Annotated[Path | None, typer.Option(help="table joined onto the cells (first column = key)", exists=True)] = None,
    metadata_on: Annotated[str | None, typer.Option(help="obs column the metadata joins on (default barcodes)")] = None,
    counts_layer: Annotated[str | None, typer.Option(help="h5ad layer with raw counts (default X)")] = None,
    sample_key: Annotated[str | None, typer.Option(help="sample column (default the batch key)")] = None,
    patient_key: Annotated[str | None, typer.Option(help="patient column (default the sample key)")] = None,
    condition_key: Annotated[str | None, typer.Option(help="sample-level column compared by pseudobulk DE")] = None,
    test: Annotated[str | None, typer.Option(help="tested level of the condition")] = None,
    reference: Annotated[str | None, typer.Option(help="reference level of the condition")] = None,
    pair_key: Annotated[str | None, typer.Option(help="pairing column added to the DE design")] = None,
    de_by_cell_type: Annotated[bool, typer.Option(help="also DE within each cell type")] = True,
    n_top_genes: Annotated[int, typer.Option(help="highly variable genes", min=1)] = 2000,
    n_comps: Annotated[int, typer.Option(help="principal components", min=1)] = 30,
    min_genes: Annotated[int, typer.Option(help="QC: fewest genes per cell", min=0)] = 50,
    max_pct_mt: Annotated[float, typer.Option(help="QC: highest mitochondrial percent", min=0, max=100,
                                              callback=finite())] = 20.0,
    doublets: Annotated[bool, typer.Option(help="flag doublets with scrublet")] = True,
    remove_doublets: Annotated[bool, typer.Option(help="drop predicted doublets")] = False,
    plots: Annotated[bool, typer.Option(help="write figures")] = True,
    umap: Annotated[bool, typer.Option(help="compute UMAP embeddings (and their figures)")] = True,
    seed: Annotated[int, typer.Option(help="random seed (0 to 2**32 - 1)", min=0, max=2**32 - 1)] = 0,
    n_jobs: Annotated[int, typer.Option(help="threads/processes", min=1)] = 1,
) -> None:
    """Read, QC, correct batches, cluster, annotate and summarise per patient into DIR."""
    from pmed.cli import _console
    from pmed.cli._common import pmed_warnings, progress_bar
    from pmed.io import check_not_input, check_output_folder
    from pmed.omics.api import run_omics
    from pmed.result import _written_by

    # before the pipeline: the files it writes into --out must not replace an input
    check_not_input(out, input, metadata, writes=[
        "processed.h5ad", "run.json", "integration_metrics.json", "provenance.json", "composition.csv",
        "biomarkers.csv", "biomarkers_by_cell_type.csv", "annotation_scores.csv", "markers_leiden.csv",
        "markers_cell_type.csv", "patient_features.csv", "plots"])
    # and the folder must be one that res.write may replace whole (new, empty or an earlier omics
    # output): said now, not after minutes of work. Every file, plots included, is written by
    # res.write into a staged folder swapped in at the end, so no file of an earlier run lingers.
    marker_file = Path(markers) if markers != "pbmc" and Path(markers).is_file() else None
    check_output_folder(out, owned=lambda d: _written_by(d, "omics"), inputs=[input, metadata, marker_file],
                        what="omics output")
    con = _console()
    with pmed_warnings(), progress_bar() as bar:
        res = run_omics(input, batch_key=batch_key, label_key=label_key, metadata=metadata,
                        metadata_on=metadata_on, counts_layer=counts_layer, sample_key=sample_key,
                        patient_key=patient_key, condition_key=condition_key, test=test,
                        reference=reference, pair_key=pair_key, de_by_cell_type=de_by_cell_type,
                        plots=plots, seed=seed, n_jobs=n_jobs, progress=bar,
                        method=method, resolution=resolution, markers=markers,
                        cell_types=_split(cell_types), n_top_genes=n_top_genes, n_comps=n_comps,
                        min_genes=min_genes, max_pct_mt=max_pct_mt, doublets=doublets,
                        remove_doublets=remove_doublets, umap=umap)
        res.write(out)
    s = res.record()
    con.print(f"cells: {s['n_cells_in']} read, {s['n_cells']} after QC; genes: {s['n_genes']}")
    con.print(f"{s['n_clusters']} Leiden clusters; cell types: "
              + ", ".join(f"{k} {v}" for k, v in s["cell_types"].items()))
    m = s["metrics"]
    for name in ("before", "after"):
        r = m[name]
        line = (f"{name:>6}: iLISI {r['ilisi_mean']:.2f} (normalised {r['ilisi_normalised']:.2f}), "
                f"kBET acceptance {r['kbet_acceptance']:.2f}")
        if r.get("ari") is not None:
            line += f", ARI {r['ari']:.2f}, NMI {r['nmi']:.2f}"
        con.print(line)
    if "de_design" in s:
        con.print(f"pseudobulk DE ({s['de_design']}): {s['de_n_fdr_0.05']} genes at FDR < 0.05")
    con.print(f"wrote {len(s['files'])} files to {out}")


@app.command("markers")
def show_markers(
    markers: Annotated[str, typer.Argument(help="'pbmc' or a JSON/YAML/CSV marker file")] = "pbmc",
) -> None:
    """Print a marker set (cell type → genes)."""
    from pmed.cli import _console
    from pmed.omics.cluster import load_markers

    con = _console()
    for t, genes in load_markers(markers).items():
        con.print(f"{t}: {', '.join(genes)}")
