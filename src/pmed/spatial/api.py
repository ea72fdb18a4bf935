"""One call from spatial sections to patient features: :func:`run_spatial`.

For each section (a Visium h5ad or Space Ranger folder, or a cell table): read it, build the
spatial graph, find spatially variable genes (Moran's I), find tissue domains with the spatial
method and, for comparison, without space (:mod:`pmed.spatial.domains`), name each domain's
compartment from its marker genes (or each cell's from its type), estimate cell-type proportions
of the spots when a labelled reference is given, and compute the patient-level features
(:func:`pmed.spatial.patient.section_features`). The result keeps the contract of every domain:
``to_block()`` (one row per patient), ``summary()`` and ``write(out)``.

:func:`run_deconvolution` is the cell-type map alone (``pmed spatial deconvolve``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from pmed.cohort import Block
from pmed.errors import InputError, OptionError, require
from pmed.progress import Reporter, as_reporter
from pmed.result import DomainResult, block_source, make_provenance

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["run_spatial", "SpatialResult", "SectionResult", "run_deconvolution", "DeconvolutionResult",
           "read_block", "FEATURES_FILE"]

FEATURES_FILE = "patient_features.csv"
LIBRARIES = ("scanpy", "anndata", "torch", "monai")


@dataclass
class SectionResult:
    """One section's outputs (see :class:`SpatialResult`)."""

    sample: str
    adata: Any
    svg: pd.DataFrame | None
    domain_table: pd.DataFrame
    metrics: dict[str, Any]
    features: dict[str, Any]
    proportions: pd.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class SpatialResult(DomainResult):
    """What :func:`run_spatial` found.

    Attributes
    ----------
    sections : dict
        Sample → :class:`SectionResult`: ``adata`` (``obs['spatial_domain']``,
        ``obs['nonspatial_domain']``, ``obs['compartment']``, per-spot QC ``total_counts``,
        ``n_genes_by_counts``, ``pct_counts_mt``, the graph in ``obsp``), ``svg``
        (gene, moran_i, pval, fdr), ``domain_table`` (each domain's mean compartment marker
        score, size and compartment), ``metrics`` (spatial against non-spatial domains:
        contiguity, marker variance explained, seed stability), ``proportions`` (spot × cell type)
        and ``features``.
    features : pandas.DataFrame
        One row per patient (``patient_id``): :func:`~pmed.spatial.patient.section_features`.
    options : dict
        The settings of the run.
    plots : bool
        Whether :meth:`write` draws the domain maps.
    """

    domain: ClassVar[str] = "spatial"
    block_name: ClassVar[str] = "spatial"

    sections: dict[str, SectionResult]
    features: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)
    plots: bool = True

    def to_block(self) -> Block:
        return Block(self.features.copy(), {**self.provenance, "domain": "spatial",
                                            "modality": "spatial transcriptomics"})

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_sections": len(self.sections), "n_features": int(self.features.shape[1])}
        for s, r in self.sections.items():
            m = r.metrics
            out[s] = {"n_obs": int(r.adata.n_obs), "n_domains": int(r.adata.obs["spatial_domain"].nunique()),
                      "n_svg_fdr_0.05": None if r.svg is None else int((r.svg["fdr"] < 0.05).sum()),
                      "pas_spatial": m.get("spatial", {}).get("pas"),
                      "pas_nonspatial": m.get("nonspatial", {}).get("pas")}
        return out

    def _write_files(self, out: Path) -> dict[str, Path]:
        from pmed.io import write_text_atomic
        from pmed.io.jsonio import to_json

        files: dict[str, Path] = {}
        single = len(self.sections) == 1
        for sample, r in self.sections.items():
            folder = out if single else out / "sections" / _safe(sample)
            folder.mkdir(parents=True, exist_ok=True)
            prefix = "" if single else f"{sample}:"
            adata = r.adata.copy()
            for k in ("spatial_domain", "nonspatial_domain"):
                adata.obs[k] = pd.Categorical(adata.obs[k].astype(str))
            adata.obs["compartment"] = adata.obs["compartment"].astype(str)
            path = folder / "processed.h5ad"
            tmp = folder / ".processed.h5ad.tmp"
            adata.write_h5ad(tmp)
            tmp.replace(path)
            files[prefix + "processed"] = path
            dom = adata.obs[["spatial_domain", "nonspatial_domain", "compartment"]].copy()
            dom.index.name = "barcode"
            files[prefix + "domains"] = write_text_atomic(folder / "domains.csv", dom.to_csv())
            files[prefix + "domain_markers"] = write_text_atomic(folder / "domain_markers.csv",
                                                                 r.domain_table.to_csv())
            if r.svg is not None:
                svg = r.svg.reset_index().rename(columns={"index": "gene"})
                cols = ["gene", "moran_i", "pval", "fdr"] + [c for c in svg.columns
                                                             if c not in ("gene", "moran_i", "pval", "fdr")]
                files[prefix + "svg"] = write_text_atomic(folder / "svg.csv", svg[cols].to_csv(index=False))
            if r.proportions is not None:
                files[prefix + "proportions"] = write_text_atomic(folder / "proportions.csv",
                                                                  r.proportions.to_csv(index_label="barcode"))
            files[prefix + "metrics"] = write_text_atomic(
                folder / "metrics.json", to_json({"sample": sample, **r.metrics, "timings_s": r.timings}))
            if self.plots:
                from pmed.spatial.plots import plot_domains

                plots = folder / "plots"
                plots.mkdir(exist_ok=True)
                for key in ("spatial_domain", "nonspatial_domain", "compartment"):
                    files[f"{prefix}plot_{key}"] = plot_domains(adata, key, plots / f"{key}.png",
                                                                title=f"{sample}: {key.replace('_', ' ')}")
        feats = self.features.copy()
        feats.index.name = "patient_id"
        files["features"] = write_text_atomic(out / FEATURES_FILE, feats.to_csv())
        return files


def _safe(name: object) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(name))[:80] or "section"


def _as_sections(inputs: Any, sample: str | None) -> dict[str, Any]:
    if isinstance(inputs, Mapping):
        if not inputs:
            raise OptionError("no section given", fix="pass a file, or {patient_id: file, …}")
        return {str(k): v for k, v in inputs.items()}
    if isinstance(inputs, (str, Path)):
        return {sample or Path(inputs).stem: inputs}
    return {sample or "section": inputs}


def _read(section: Any) -> tuple[anndata.AnnData, str | None]:
    if isinstance(section, (str, Path)):
        from pmed.spatial.io import read_spatial

        return read_spatial(section), str(section)
    return section.copy(), None


def _qc(adata: anndata.AnnData) -> None:
    """Per-spot QC in ``obs``: counts, genes detected and the mitochondrial percentage."""
    import scanpy as sc

    adata.var["mt"] = adata.var_names.str.upper().str.startswith("MT-")
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)


class _Steps:
    """Times each stage of one section (``timings``) and shows it on the progress reporter."""

    def __init__(self, reporter: Reporter, section: str) -> None:
        self.reporter, self.section = reporter, section
        self.timings: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def begin(self, key: str) -> None:
        self.reporter.advance(f"section {self.section}: {key}", n=0)
        self._current = (key, time.perf_counter())

    def end(self) -> None:
        key, t0 = self._current
        self.timings[key] = time.perf_counter() - t0
        self.reporter.advance(n=1)

    @contextlib.contextmanager
    def __call__(self, key: str):
        self.begin(key)
        yield
        self.end()


def run_spatial(
    inputs: Any,
    *,
    sample: str | None = None,
    n_domains: int = 7,
    lambda_: float = 0.8,
    hops: int = 2,
    svg: bool = True,
    cell_type_key: str | None = None,
    reference: Any = None,
    label_key: str | None = None,
    compare: bool = True,
    plots: bool = True,
    seed: int = 0,
    progress: Reporter | bool | None = None,
) -> SpatialResult:
    """Spatial domains, spatially variable genes, cell-type maps and patient features of sections.

    Parameters
    ----------
    inputs
        One section (path of an h5ad / Space Ranger folder / cell table, or an AnnData), or a
        mapping ``{patient_id: section}``.
    sample
        The patient ID of a single section (default: the file name).
    n_domains, lambda_, hops
        :func:`pmed.spatial.domains.spatial_domains`'s settings.
    svg
        Compute Moran's I of every gene (``svg.csv``).
    cell_type_key
        For cell-resolved data: the ``obs`` column of cell types, which then set each cell's
        compartment (:func:`~pmed.spatial.patient.compartments_of_cells`) instead of its
        domain's markers.
    reference, label_key
        A labelled single-cell reference (h5ad path or AnnData) and its cell-type column: spot
        proportions by :func:`pmed.spatial.deconvolve.deconvolve`; their immune share is then
        the immune level of the features.
    compare
        Also cluster without space (``lambda_=0``) and with another seed, and report both in
        ``metrics`` (contiguity, marker variance explained, seed stability).
    plots
        Draw the domain maps over the H&E image when :meth:`~SpatialResult.write` runs.
    seed
        Seeds the PCA, k-means and permutations.
    progress
        ``True`` for a progress bar, or a :class:`pmed.progress.Reporter` (one step per stage of
        each section); silent by default.
    """
    require("anndata", extra="omics", feature="spatial omics")
    require("scanpy", extra="omics", feature="spatial omics")
    from sklearn.metrics import adjusted_rand_score

    from pmed.spatial.domains import (
        domain_markers,
        domain_metrics,
        expression_embedding,
        spatial_domains,
    )
    from pmed.spatial.graph import spatial_neighbors
    from pmed.spatial.patient import (
        compartments_of_cells,
        compartments_of_domains,
        section_features,
    )

    sections = _as_sections(inputs, sample)
    ref = None
    if reference is not None:
        if label_key is None:
            raise OptionError("a reference needs label_key: the obs column of its cell types",
                              fix="pass label_key='cell_type' (or your column's name)")
        ref = _read_reference(reference) if isinstance(reference, (str, Path)) else reference
    results: dict[str, SectionResult] = {}
    rows = {}
    paths = []
    reporter = as_reporter(progress)
    per_section = 6 + bool(svg) + (ref is not None)
    reporter.start(per_section * len(sections), "spatial domains")
    for name, section in sections.items():
        step = _Steps(reporter, name)
        t = step.timings
        with step("read"):
            adata, path = _read(section)
        if path:
            paths.append(path)
        _qc(adata)
        with step("graph"):
            spatial_neighbors(adata)
        table = None
        if svg:
            from pmed.spatial.stats import morans_i

            with step("svg"):
                table = morans_i(adata, seed=seed)
        with step("embedding"):
            Z = expression_embedding(adata, seed=seed)
        with step("domains"):
            labels, _ = spatial_domains(adata, n_domains=n_domains, lambda_=lambda_, hops=hops, embedding=Z,
                                        seed=seed)
        step.begin("comparison")
        flat, _ = spatial_domains(adata, n_domains=n_domains, lambda_=0.0, embedding=Z, seed=seed)
        adata.obs["spatial_domain"] = labels
        adata.obs["nonspatial_domain"] = flat
        dtable = domain_markers(adata, labels)
        metrics: dict[str, Any] = {"settings": {"n_domains": n_domains, "lambda": lambda_, "hops": hops,
                                                "method": "BANKSY-style neighbourhood-augmented PCA + k-means"}}
        if compare:
            metrics["spatial"] = domain_metrics(adata, labels)
            metrics["nonspatial"] = domain_metrics(adata, flat)
            # the same embedding, k-means from other starts: how much the domains hang on them
            again, _ = spatial_domains(adata, n_domains=n_domains, lambda_=lambda_, hops=hops, embedding=Z,
                                       seed=seed + 1)
            flat1, _ = spatial_domains(adata, n_domains=n_domains, lambda_=0.0, embedding=Z, seed=seed + 1)
            metrics["spatial"]["seed_stability_ari"] = float(adjusted_rand_score(labels, again))
            metrics["nonspatial"]["seed_stability_ari"] = float(adjusted_rand_score(flat, flat1))
            metrics["agreement_spatial_nonspatial_ari"] = float(adjusted_rand_score(labels, flat))
        step.end()
        if cell_type_key is not None:
            if cell_type_key not in adata.obs.columns:
                raise OptionError(f"cell_type_key {cell_type_key!r} is not a column of section {name}'s obs "
                                  f"(it has {', '.join(map(str, adata.obs.columns[:8]))})")
            comp = compartments_of_cells(adata.obs[cell_type_key])
        else:
            comp = compartments_of_domains(dtable, labels)
        adata.obs["compartment"] = comp
        props = None
        immune = None
        if ref is not None:
            from pmed.spatial.deconvolve import deconvolve

            with step("deconvolution"):
                props = deconvolve(adata, ref, label_key=label_key)
            kinds = compartments_of_cells(np.asarray(props.columns))
            immune = props.loc[:, kinds == "immune"].sum(axis=1).to_numpy()
        else:
            from pmed.spatial.domains import COMPARTMENT_MARKERS, _marker_scores

            scores = _marker_scores(adata, {"immune": COMPARTMENT_MARKERS["immune"]})
            immune = scores["immune"].to_numpy() if "immune" in scores else None
        with step("features"):
            feats = section_features(adata, comp, immune_score=immune, seed=seed)
        feats["n_spots" if "array_row" in adata.obs.columns else "n_cells"] = int(adata.n_obs)
        rows[name] = feats
        results[name] = SectionResult(sample=name, adata=adata, svg=table, domain_table=dtable, metrics=metrics,
                                      features=feats, proportions=props, timings={k: round(v, 3) for k, v in t.items()})
    features = pd.DataFrame.from_dict(rows, orient="index")
    features.index.name = "patient_id"
    options = {"n_domains": n_domains, "lambda": lambda_, "hops": hops, "svg": svg, "cell_type_key": cell_type_key,
               "label_key": label_key, "compare": compare, "seed": seed}
    prov = make_provenance("spatial", inputs={"sections": paths or None,
                                              "reference": str(reference) if isinstance(reference, (str, Path))
                                              else None},
                           options=options, libraries=LIBRARIES)
    return SpatialResult(sections=results, features=features, options=options, plots=plots, provenance=prov)


def _read_reference(path: str | Path):
    import anndata

    p = Path(path)
    if not p.exists():
        from pmed.errors import DataNotFoundError

        raise DataNotFoundError("the reference does not exist", file=p, fix="give the labelled single-cell h5ad")
    if p.suffix.lower() != ".h5ad":
        from pmed.spatial.io import read_spatial

        return read_spatial(p)
    try:
        return anndata.read_h5ad(p)
    except Exception as e:  # noqa: BLE001 - h5py/anndata raise many kinds for a damaged file
        raise InputError(f"cannot read the reference ({type(e).__name__})", file=p,
                         fix="give an h5ad file written by anndata/scanpy") from None


# ------------------------------------------------------------------ deconvolution alone


@dataclass
class DeconvolutionResult(DomainResult):
    """Spot × cell-type proportions (rows sum to 1) from :func:`run_deconvolution`."""

    domain: ClassVar[str] = "spatial-deconvolution"
    block_name: ClassVar[str] = "spatial_proportions"

    proportions: pd.DataFrame
    method: str = "poisson"

    def to_block(self) -> Block:
        raise OptionError("cell-type proportions are per spot, not per patient",
                          fix="use run_spatial(…, reference=…) for patient features")

    def summary(self) -> dict[str, Any]:
        return {"n_spots": int(len(self.proportions)), "cell_types": list(map(str, self.proportions.columns)),
                "method": self.method,
                "mean_proportion": {str(k): float(v) for k, v in self.proportions.mean().items()}}

    def _write_files(self, out: Path) -> dict[str, Path]:
        from pmed.io import write_text_atomic

        return {"proportions": write_text_atomic(out / "proportions.csv",
                                                 self.proportions.to_csv(index_label="barcode"))}


def run_deconvolution(spots: Any, reference: Any, *, label_key: str, method: str = "poisson",
                      min_cells: int = 10, progress: Reporter | bool | None = None) -> DeconvolutionResult:
    """Cell-type proportions of each spot from a labelled reference (``pmed spatial deconvolve``).

    Parameters
    ----------
    spots
        The spots (h5ad / Space Ranger folder path, or AnnData) with raw counts.
    reference
        Labelled single cells (h5ad path or AnnData) with raw counts.
    label_key
        The reference's ``obs`` column of cell types.
    method
        ``"poisson"`` (RCTD-style likelihood) or ``"nnls"`` (:func:`pmed.spatial.deconvolve.deconvolve`).
    progress
        ``True`` for a progress bar, or a :class:`pmed.progress.Reporter`; silent by default.
    """
    require("anndata", extra="omics", feature="spatial deconvolution")
    from pmed.spatial.deconvolve import deconvolve

    reporter = as_reporter(progress)
    reporter.start(2, "spatial deconvolution")
    step = _Steps(reporter, "spots")
    with step("read"):
        adata, path = _read(spots)
        ref = _read_reference(reference) if isinstance(reference, (str, Path)) else reference
    with step("reference profiles and proportions"):
        props = deconvolve(adata, ref, label_key=label_key, method=method, min_cells=min_cells)
    prov = make_provenance("spatial-deconvolution",
                           inputs={"spots": path, "reference": str(reference) if isinstance(reference, (str, Path))
                                   else None},
                           options={"label_key": label_key, "method": method, "min_cells": min_cells},
                           libraries=LIBRARIES)
    return DeconvolutionResult(proportions=props, method=method, provenance=prov)


def read_block(path: str | Path) -> Block | None:
    """Read a :func:`run_spatial` output folder (or its ``patient_features.csv``) as the block."""
    found = block_source(path, FEATURES_FILE)
    if found is None:
        return None
    file, prov = found
    try:
        df = pd.read_csv(file, dtype={"patient_id": str}).set_index("patient_id")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, KeyError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the spatial patient features ({type(e).__name__})", file=file,
                         fix="write the folder again with pmed spatial domains") from e
    prov.update({"domain": "spatial", "reader": "pmed.spatial.api.read_block", "file": str(file),
                 "modality": "spatial transcriptomics", "n_features": int(df.shape[1])})
    return Block(df, prov)
