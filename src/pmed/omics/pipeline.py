"""The single-cell pipeline's computing core, and the old entry point that also writes.

:func:`pmed.omics.run_omics` (in :mod:`pmed.omics.api`) reads the input, runs :func:`process`
(QC → doublets → normalisation/HVG/PCA → integration → Leiden → UMAP → annotation → signatures →
integration metrics) and the patient level, and returns an :class:`~pmed.omics.api.OmicsResult`
whose ``write(out)`` leaves:

- ``processed.h5ad``: log-normalised ``X``, raw ``layers['counts']``, QC columns,
  ``obs['leiden']``, ``obs['cell_type']``, signature scores ``obs['sig_*']``, ``obsm['X_pca']``,
  the corrected embedding (``obsm['X_pca_harmony']`` by default) and ``obsm['X_umap']``;
- ``integration_metrics.json``: batch mixing and label conservation before and after correction;
- ``markers_leiden.csv`` and ``markers_cell_type.csv``: Wilcoxon marker genes with effect sizes;
- ``annotation_scores.csv``: mean marker-set score per cluster;
- ``composition.csv``, ``patient_features.csv``; with a condition: ``biomarkers.csv``
  (pseudobulk PyDESeq2 over all cells) and ``biomarkers_by_cell_type.csv``;
- ``run.json``: settings, QC counts, timings per step; ``provenance.json``;
- ``plots/``: UMAP by batch, cluster and cell type (and by batch before correction), QC
  histograms, integration metrics.

:func:`run_pipeline` is the older form: ``run_omics(...)`` then ``write(out)``, returning the
``run.json`` record.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pmed.errors import require
from pmed.io.jsonio import plain
from pmed.omics._compat import resolve_seed
from pmed.progress import Reporter, Silent, as_reporter

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["run_pipeline", "process", "process_steps"]


class _Timer:
    """Seconds per step, and one progress step each (the description names the step running)."""

    def __init__(self, reporter: Reporter | None = None) -> None:
        self.steps: dict[str, float] = {}
        self.reporter: Reporter = reporter or Silent()

    @contextmanager
    def step(self, name: str, label: str | None = None, *, report: bool = True) -> Iterator[None]:
        if report:
            self.reporter.advance(label or name.replace("_", " "), n=0)
        t = time.perf_counter()
        yield
        self.steps[name] = round(time.perf_counter() - t, 3)
        if report:
            self.reporter.advance(None, n=1)


def _h5_safe(o: Any) -> Any:
    """Drop None values (h5ad cannot store them) from nested dicts/lists."""
    if isinstance(o, Mapping):
        return {str(k): _h5_safe(v) for k, v in o.items() if v is not None}
    if isinstance(o, list | tuple):
        return [_h5_safe(v) for v in o if v is not None]
    return o


#: above this many cells UMAP starts from the corrected embedding instead of a spectral layout
SPECTRAL_INIT_MAX_CELLS = 20_000

#: at most this many cells also get a UMAP before correction (by default)
UMAP_BEFORE_MAX_CELLS = 20_000


def _umap_init(adata: anndata.AnnData, rep: str) -> str:
    """UMAP's starting layout: spectral on small data; on large data the first two components of
    the corrected embedding (the spectral solver needs minutes and may not converge at 100k cells,
    and a PCA start preserves global structure as well, Kobak & Linderman 2021)."""
    if adata.n_obs <= SPECTRAL_INIT_MAX_CELLS or rep not in adata.obsm:
        return "spectral"
    emb = np.asarray(adata.obsm[rep][:, :2], dtype=np.float64)
    adata.obsm["X_umap_init"] = emb  # UMAP rescales its starting layout itself
    return "X_umap_init"


def process_steps(*, n_cells: int, label_key: str | None = None, doublets: bool = True,
                  umap: bool = True, umap_before: bool | None = None) -> int:
    """How many progress steps :func:`process` reports for these settings (``n_cells`` before QC;
    QC only removes cells, so the count can at most be one short when QC crosses the
    before-correction UMAP threshold)."""
    if umap_before is None:
        umap_before = umap and n_cells <= UMAP_BEFORE_MAX_CELLS
    # qc, normalize, integrate, leiden, annotate, signatures, metrics + the optional ones
    return 7 + int(doublets) + int(label_key is not None or umap_before) + int(umap)


def process(
    adata: anndata.AnnData,
    *,
    batch_key: str,
    label_key: str | None = None,
    method: str = "harmony",
    resolution: float = 0.6,
    n_neighbors: int = 15,
    markers: Any = "pbmc",
    cell_types: Sequence[str] | None = None,
    signatures: Mapping[str, Sequence[str]] | None = None,
    n_top_genes: int = 2000,
    n_comps: int = 30,
    min_genes: int = 50,
    max_pct_mt: float = 20.0,
    doublets: bool = True,
    remove_doublets: bool = False,
    umap: bool = True,
    umap_before: bool | None = None,
    seed: int = 0,
    random_state: int | None = None,
    timer: _Timer | None = None,
    progress: Reporter | bool | None = None,
    n_jobs: int = 1,
) -> tuple[anndata.AnnData, dict[str, Any]]:
    """Run QC, integration, clustering, annotation and metrics on cells in memory.

    Parameters
    ----------
    adata
        Cells with raw counts (``layers['counts']`` or ``X``).
    batch_key
        ``obs`` column corrected for.
    label_key
        ``obs`` column of known cell types, for the conservation metrics.
    method
        Integration method (see :func:`pmed.omics.integrate.integrate`).
    resolution, n_neighbors
        Leiden resolution and neighbours per cell.
    markers, cell_types
        Marker set for annotation and the types expected (see :func:`pmed.omics.cluster.annotate`).
    signatures
        Gene signatures scored per cell (default :data:`pmed.omics.patient.SIGNATURES`).
    n_top_genes, n_comps, min_genes, max_pct_mt, doublets, remove_doublets
        Preprocessing (see :func:`pmed.omics.preprocess.preprocess`).
    umap
        Compute the UMAP of the corrected graph.
    umap_before
        Also a UMAP before correction (default: when there are at most 20,000 cells).
    seed
        Seed of every random step.
    timer
        Collects seconds per step (and reports progress to its reporter).
    progress
        ``True`` for a progress bar, or a :class:`pmed.progress.Reporter`; one step per stage
        (see :func:`process_steps`). Ignored when ``timer`` is given (its reporter is used).
    n_jobs
        Processes for doublet detection (its runs scored side by side; the same scores).
    random_state
        Deprecated alias of ``seed``.

    Returns
    -------
    adata : anndata.AnnData
        The processed cells.
    metrics : dict
        :func:`pmed.omics.integrate.integration_metrics` before and after.
    """
    seed = resolve_seed(seed, random_state, "process")
    from pmed.omics.cluster import annotate, cluster
    from pmed.omics.integrate import integrate, integration_metrics
    from pmed.omics.metadata import check_obs_key
    from pmed.omics.patient import signature_scores
    from pmed.omics.preprocess import filter_cells_genes, flag_doublets, normalize_pca, qc_metrics

    if timer is None:
        timer = _Timer(as_reporter(progress))
        timer.reporter.start(process_steps(n_cells=adata.n_obs, label_key=label_key,
                                           doublets=doublets, umap=umap, umap_before=umap_before),
                             "single-cell pipeline")
    check_obs_key(adata, batch_key, what="batch key", min_levels=2)
    if label_key is not None:
        check_obs_key(adata, label_key, what="label key")
    if "counts" not in adata.layers:
        from scipy import sparse

        adata.layers["counts"] = sparse.csr_matrix(adata.X)
    with timer.step("qc", "QC"):
        qc_metrics(adata)
        adata = filter_cells_genes(adata, min_genes=min_genes, max_pct_mt=max_pct_mt)
    if doublets:
        with timer.step("doublets"):
            adata = flag_doublets(adata, batch_key=batch_key, seed=seed, remove=remove_doublets, n_jobs=n_jobs)
    with timer.step("normalize_hvg_pca", "normalise, HVG, PCA"):
        normalize_pca(adata, batch_key=batch_key, n_top_genes=n_top_genes, n_comps=n_comps,
                      seed=seed)
    if umap_before is None:
        umap_before = umap and adata.n_obs <= UMAP_BEFORE_MAX_CELLS
    cluster_keys = {}
    if label_key is not None or umap_before:
        with timer.step("cluster_before", "clusters before correction"):
            cluster(adata, use_rep="X_pca", resolution=resolution, n_neighbors=n_neighbors,
                    key_added="leiden_before", umap=umap_before, seed=seed)
            if umap_before:
                adata.obsm["X_umap_before"] = adata.obsm.pop("X_umap")
        cluster_keys["before"] = "leiden_before"
    with timer.step(f"integrate_{method}", f"integrate ({method})"):
        key = integrate(adata, batch_key, method=method, seed=seed)
    with timer.step("neighbors_leiden", "neighbours, Leiden"):
        cluster(adata, use_rep=key, resolution=resolution, n_neighbors=n_neighbors, umap=False,
                seed=seed, neighbors=method != "bbknn")
    cluster_keys["after"] = "leiden"
    if umap:
        sc = require("scanpy", extra="omics")

        with timer.step("umap", "UMAP"):
            sc.tl.umap(adata, random_state=seed, init_pos=_umap_init(adata, key))
            adata.obsm.pop("X_umap_init", None)
    with timer.step("annotate", "annotate cell types"):
        scores = annotate(adata, markers, groupby="leiden", cell_types=cell_types)
    adata.uns["pmed_annotation_scores"] = {"clusters": scores.index.tolist(),
                                           "types": scores.columns.tolist(),
                                           "scores": scores.to_numpy()}
    with timer.step("signatures", "signature scores"):
        used = signature_scores(adata, signatures, seed=seed)
    adata.uns["pmed_signatures"] = {k: v for k, v in used.items()}
    with timer.step("integration_metrics", "integration metrics"):
        emb = {"before": "X_pca", "after": key}
        if method == "bbknn" and "X_umap" in adata.obsm:  # graph method: score its UMAP
            emb["after"] = "X_umap"
        metrics = integration_metrics(adata, batch_key=batch_key, label_key=label_key,
                                      embeddings=emb, cluster_keys=cluster_keys, seed=seed)
    metrics["settings"]["method"] = method
    metrics["settings"]["resolution"] = resolution
    if label_key is not None:
        from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

        lab = adata.obs[label_key].astype(str)
        ct = adata.obs["cell_type"].astype(str)
        metrics["annotation"] = {
            "ari_cell_type_vs_labels": float(adjusted_rand_score(lab, ct)),
            "nmi_cell_type_vs_labels": float(normalized_mutual_info_score(lab, ct)),
            "exact_agreement": float((lab.to_numpy() == ct.to_numpy()).mean()),
        }
    adata.uns["pmed_integration_metrics"] = _h5_safe(plain(metrics))
    return adata, metrics


def run_pipeline(input: str | Path | anndata.AnnData, *, out: str | Path, **options: Any) -> dict[str, Any]:
    """Run the whole single-cell pipeline and write its outputs into ``out``.

    The older form of ``pmed.omics.run_omics(input, **options).write(out)``, returning the
    ``run.json`` record instead of the result.

    Parameters
    ----------
    input
        See :func:`pmed.omics.api.run_omics`.
    out
        Output folder (created).
    **options
        The keyword options of :func:`pmed.omics.api.run_omics` (``batch_key``, ``label_key``,
        ``progress`` …) and of :func:`process` (``method``, ``resolution``, ``markers`` …).

    Returns
    -------
    dict
        Summary: counts, metrics, paths written, timings (what ``run.json`` holds).

    Raises
    ------
    InputError
        Unreadable input, missing or single-valued batch key, unknown columns.
    """
    from pmed.omics.api import run_omics

    result = run_omics(input, **options)
    result.write(out)
    return result.record()
