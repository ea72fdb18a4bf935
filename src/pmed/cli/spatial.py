"""``pmed spatial``: tissue domains, spatially variable genes and cell-type maps of spatial
sections. Parsing and printing only; the work is in :mod:`pmed.spatial`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmed.cli._params import choice, finite

__all__ = ["app"]

app = typer.Typer(help="Spatial omics: tissue domains, spatially variable genes (Moran's I), cell-type "
                       "proportions of spots and patient-level spatial features.", no_args_is_help=True)


def _lambda(value: float) -> float:
    if not 0 <= value < 1:
        raise typer.BadParameter(f"must lie in [0, 1), not {value}")
    return value


@app.command()
def domains(
    input: Annotated[Path, typer.Option("--input", "-i", help="the section: h5ad with obsm['spatial'], a Space "
                                                              "Ranger output folder, or a cell table",
                                        exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder: processed.h5ad, svg.csv, domains.csv, "
                                                          "domain_markers.csv, metrics.json, plots/, "
                                                          "patient_features.csv", file_okay=False)],
    n_domains: Annotated[int, typer.Option("--n-domains", "-k", help="how many tissue domains", min=2,
                                           max=50)] = 7,
    spatial_weight: Annotated[float, typer.Option("--lambda", help="weight of the neighbourhood (0: plain "
                                                                   "non-spatial clustering)",
                                                  callback=finite(_lambda))] = 0.8,
    hops: Annotated[int, typer.Option("--hops", help="graph rings that make a neighbourhood", min=1, max=5)] = 2,
    sample: Annotated[str | None, typer.Option("--sample", help="patient ID of the section (default: the "
                                                                "file name)")] = None,
    cell_type_key: Annotated[str | None, typer.Option("--cell-type-key", help="cell-resolved data: the obs "
                                                      "column of cell types (sets each cell's compartment)")] = None,
    reference: Annotated[Path | None, typer.Option("--reference", help="labelled single-cell h5ad: also "
                                                   "estimate cell-type proportions of the spots", exists=True,
                                                   dir_okay=False)] = None,
    label_key: Annotated[str | None, typer.Option("--label-key", help="with --reference: its cell-type "
                                                                      "column")] = None,
    svg: Annotated[bool, typer.Option(help="Moran's I of every gene (svg.csv)")] = True,
    plots: Annotated[bool, typer.Option(help="draw the domain maps over the H&E image")] = True,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**31 - 1)] = 0,
) -> None:
    """Tissue domains (spatially aware, compared with plain clustering), SVGs and patient features."""
    from rich.markup import escape

    from pmed.cli._common import console, progress_bar
    from pmed.spatial import run_spatial

    with progress_bar() as bar:
        res = run_spatial(input, sample=sample, n_domains=n_domains, lambda_=spatial_weight, hops=hops,
                          svg=svg, cell_type_key=cell_type_key, reference=reference, label_key=label_key,
                          plots=plots, seed=seed, progress=bar)
    files = res.write(out)
    con = console()
    for name, sec in res.sections.items():
        m = sec.metrics
        con.print(f"section {escape(name)}: {sec.adata.n_obs} observations, {n_domains} domains")
        if "spatial" in m:
            con.print(f"  contiguity (share of spots whose neighbours are mostly in another domain; lower is "
                      f"better): spatial {m['spatial']['pas']:.3f}, non-spatial {m['nonspatial']['pas']:.3f}")
        if sec.svg is not None:
            top = ", ".join(map(str, sec.svg.index[:5]))
            con.print(f"  spatially variable genes (FDR < 0.05): {int((sec.svg['fdr'] < 0.05).sum())}; "
                      f"top: {escape(top)}")
        comp = sec.adata.obs["compartment"].value_counts()
        con.print("  compartments: " + ", ".join(f"{escape(str(k))} {v}" for k, v in comp.items()))
    con.print(f"wrote {escape(str(out))}/ ({len(files)} files)")


@app.command()
def deconvolve(
    spots: Annotated[Path, typer.Option("--spots", help="the spots: h5ad or Space Ranger folder (raw counts)",
                                        exists=True)],
    reference: Annotated[Path, typer.Option("--reference", help="labelled single-cell h5ad (raw counts)",
                                            exists=True, dir_okay=False)],
    label_key: Annotated[str, typer.Option("--label-key", help="the reference's obs column of cell types")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder: proportions.csv (spot × cell type, "
                                                          "rows sum to 1), provenance.json", file_okay=False)],
    method: Annotated[str, typer.Option("--method", help="poisson: RCTD-style likelihood; nnls: the baseline",
                                        **choice("poisson", "nnls"))] = "poisson",
    min_cells: Annotated[int, typer.Option("--min-cells", help="fewest reference cells of a type", min=1)] = 10,
) -> None:
    """Cell-type proportions of each spot from a labelled single-cell reference."""
    from rich.markup import escape

    from pmed.cli._common import console, progress_bar
    from pmed.spatial import run_deconvolution

    with progress_bar() as bar:
        res = run_deconvolution(spots, reference, label_key=label_key, method=method, min_cells=min_cells,
                                progress=bar)
    res.write(out)
    mean = res.proportions.mean().sort_values(ascending=False)
    console().print(f"{len(res.proportions)} spots, {res.proportions.shape[1]} cell types; mean proportions: "
                    + ", ".join(f"{escape(str(k))} {v:.3f}" for k, v in mean.items()))
    console().print(f"wrote {escape(str(out))}/proportions.csv")
