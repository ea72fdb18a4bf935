"""The single-cell pipeline end to end: read → QC → integrate → cluster → annotate → patients.

:func:`run_pipeline` is what ``pmed omics pipeline`` calls. It writes into ``out``:

- ``processed.h5ad``: log-normalised ``X``, raw ``layers['counts']``, QC columns,
  ``obs['leiden']``, ``obs['cell_type']``, signature scores ``obs['sig_*']``, ``obsm['X_pca']``,
  the corrected embedding (``obsm['X_pca_harmony']`` by default) and ``obsm['X_umap']``;
- ``integration_metrics.json``: batch mixing and label conservation before and after correction;
- ``markers_leiden.csv`` and ``markers_cell_type.csv``: Wilcoxon marker genes with effect sizes;
- ``annotation_scores.csv``: mean marker-set score per cluster;
- with a sample key: ``composition.csv``, ``patient_features.csv``; with a condition:
  ``biomarkers.csv`` (pseudobulk PyDESeq2 over all cells) and ``biomarkers_by_cell_type.csv``;
- ``run.json``: settings, QC counts, timings per step;
- ``plots/``: UMAP by batch, cluster and cell type (and by batch before correction), QC
  histograms, integration metrics.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pmed.errors import InputError, ValidationError
from pmed.io import atomic_path, write_table, write_text_atomic
from pmed.io.jsonio import plain, to_json

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["run_pipeline", "process"]

_log = logging.getLogger("pmed.omics")


class _Timer:
    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        t = time.perf_counter()
        _log.info("omics step %s ...", name)
        yield
        self.steps[name] = round(time.perf_counter() - t, 3)
        _log.info("omics step %s done in %.1f s", name, self.steps[name])


def _h5_safe(o: Any) -> Any:
    """Drop None values (h5ad cannot store them) from nested dicts/lists."""
    if isinstance(o, Mapping):
        return {str(k): _h5_safe(v) for k, v in o.items() if v is not None}
    if isinstance(o, list | tuple):
        return [_h5_safe(v) for v in o if v is not None]
    return o


#: above this many cells UMAP starts from the corrected embedding instead of a spectral layout
SPECTRAL_INIT_MAX_CELLS = 20_000


def _umap_init(adata: anndata.AnnData, rep: str) -> str:
    """UMAP's starting layout: spectral on small data; on large data the first two components of
    the corrected embedding (the spectral solver needs minutes and may not converge at 100k cells,
    and a PCA start preserves global structure as well, Kobak & Linderman 2021)."""
    if adata.n_obs <= SPECTRAL_INIT_MAX_CELLS or rep not in adata.obsm:
        return "spectral"
    emb = np.asarray(adata.obsm[rep][:, :2], dtype=np.float64)
    adata.obsm["X_umap_init"] = emb  # UMAP rescales its starting layout itself
    return "X_umap_init"


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
    random_state: int = 0,
    timer: _Timer | None = None,
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
    random_state
        Seed of every random step.
    timer
        Collects seconds per step.

    Returns
    -------
    adata : anndata.AnnData
        The processed cells.
    metrics : dict
        :func:`pmed.omics.integrate.integration_metrics` before and after.
    """
    from pmed.omics.cluster import annotate, cluster
    from pmed.omics.integrate import integrate, integration_metrics
    from pmed.omics.patient import signature_scores
    from pmed.omics.preprocess import filter_cells_genes, flag_doublets, normalize_pca, qc_metrics
    from pmed.omics.readers import check_obs_key

    timer = timer or _Timer()
    check_obs_key(adata, batch_key, what="batch key", min_levels=2)
    if label_key is not None:
        check_obs_key(adata, label_key, what="label key")
    if "counts" not in adata.layers:
        from scipy import sparse

        adata.layers["counts"] = sparse.csr_matrix(adata.X)
    with timer.step("qc"):
        qc_metrics(adata)
        adata = filter_cells_genes(adata, min_genes=min_genes, max_pct_mt=max_pct_mt)
    if doublets:
        with timer.step("doublets"):
            adata = flag_doublets(adata, batch_key=batch_key, random_state=random_state,
                                  remove=remove_doublets)
    with timer.step("normalize_hvg_pca"):
        normalize_pca(adata, batch_key=batch_key, n_top_genes=n_top_genes, n_comps=n_comps,
                      random_state=random_state)
    if umap_before is None:
        umap_before = umap and adata.n_obs <= 20000
    cluster_keys = {}
    if label_key is not None or umap_before:
        with timer.step("cluster_before"):
            cluster(adata, use_rep="X_pca", resolution=resolution, n_neighbors=n_neighbors,
                    key_added="leiden_before", umap=umap_before, random_state=random_state)
            if umap_before:
                adata.obsm["X_umap_before"] = adata.obsm.pop("X_umap")
        cluster_keys["before"] = "leiden_before"
    with timer.step(f"integrate_{method}"):
        key = integrate(adata, batch_key, method=method, random_state=random_state)
    with timer.step("neighbors_leiden"):
        cluster(adata, use_rep=key, resolution=resolution, n_neighbors=n_neighbors, umap=False,
                random_state=random_state, neighbors=method != "bbknn")
    cluster_keys["after"] = "leiden"
    if umap:
        import scanpy as sc

        with timer.step("umap"):
            sc.tl.umap(adata, random_state=random_state, init_pos=_umap_init(adata, key))
            adata.obsm.pop("X_umap_init", None)
    with timer.step("annotate"):
        scores = annotate(adata, markers, groupby="leiden", cell_types=cell_types)
    adata.uns["pmed_annotation_scores"] = {"clusters": scores.index.tolist(),
                                           "types": scores.columns.tolist(),
                                           "scores": scores.to_numpy()}
    with timer.step("signatures"):
        used = signature_scores(adata, signatures)
    adata.uns["pmed_signatures"] = {k: v for k, v in used.items()}
    with timer.step("integration_metrics"):
        emb = {"before": "X_pca", "after": key}
        if method == "bbknn" and "X_umap" in adata.obsm:  # graph method: score its UMAP
            emb["after"] = "X_umap"
        metrics = integration_metrics(adata, batch_key=batch_key, label_key=label_key,
                                      embeddings=emb, cluster_keys=cluster_keys,
                                      random_state=random_state)
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


def run_pipeline(
    input: str | Path | anndata.AnnData,
    *,
    batch_key: str,
    out: str | Path,
    label_key: str | None = None,
    metadata: str | Path | pd.DataFrame | None = None,
    metadata_on: str | None = None,
    counts_layer: str | None = None,
    sample_key: str | None = None,
    patient_key: str | None = None,
    condition_key: str | None = None,
    test: str | None = None,
    reference: str | None = None,
    pair_key: str | None = None,
    de_by_cell_type: bool = True,
    plots: bool = True,
    n_jobs: int = 1,
    **options: Any,
) -> dict[str, Any]:
    """Run the whole single-cell pipeline and write its outputs into ``out``.

    Parameters
    ----------
    input
        File or folder (see :func:`pmed.omics.readers.read_omics`) or an AnnData (not modified).
    batch_key
        ``obs`` column corrected for (sample, donor, run, chemistry…).
    out
        Output folder (created).
    label_key
        Known cell types, for the before/after conservation metrics.
    metadata, metadata_on
        Table joined onto the cells before anything else (see :func:`join_metadata`).
    counts_layer
        Layer of an ``.h5ad`` that holds raw counts (default ``X``).
    sample_key
        Sample column for composition and pseudobulk (default ``batch_key``).
    patient_key
        Patient column for patient features (default ``sample_key``).
    condition_key, test, reference
        Pseudobulk differential expression of ``test`` against ``reference`` in this sample-level
        column (e.g. ``response``, ``"responder"``, ``"non_responder"``).
    pair_key
        Sample-level column added to the DE design (``~ pair_key + condition``), e.g. the patient
        for paired before/after samples.
    de_by_cell_type
        Also run the pseudobulk DE within each cell type (``biomarkers_by_cell_type.csv``).
    plots
        Write the figures.
    n_jobs
        Processes/threads for numba and PyDESeq2.
    **options
        Passed to :func:`process` (``method``, ``resolution``, ``markers``, ``cell_types``…).

    Returns
    -------
    dict
        Summary: counts, metrics, paths written, timings.

    Raises
    ------
    InputError
        Unreadable input, missing or single-valued batch key, unknown columns.
    """
    import anndata as ad

    from pmed.omics.cluster import marker_genes
    from pmed.omics.patient import composition, patient_features, pseudobulk, pseudobulk_de
    from pmed.omics.readers import check_obs_key, join_metadata, read_h5ad, read_omics

    try:
        import numba

        numba.set_num_threads(max(1, min(int(n_jobs), numba.config.NUMBA_NUM_THREADS)))
    except Exception:  # numba absent or fixed thread count: not fatal
        pass
    timer = _Timer()
    src = input if isinstance(input, ad.AnnData) else Path(input)
    with timer.step("read"):
        if isinstance(src, ad.AnnData):
            adata = src.copy()
            if "counts" not in adata.layers:
                from scipy import sparse

                adata.layers["counts"] = sparse.csr_matrix(adata.X)
        elif src.suffix.lower() == ".h5ad":
            adata = read_h5ad(src, counts_layer=counts_layer)
        else:
            adata = read_omics(src)
        if metadata is not None:
            join_metadata(adata, metadata, on=metadata_on)
    file = None if isinstance(src, ad.AnnData) else src
    # check every key up front: fail before minutes of work
    check_obs_key(adata, batch_key, what="batch key", file=file, min_levels=2)
    if label_key:
        check_obs_key(adata, label_key, what="label key", file=file)
    sample_key = sample_key or batch_key
    patient_key = patient_key or sample_key
    for k, what in ((sample_key, "sample key"), (patient_key, "patient key"),
                    (condition_key, "condition key"), (pair_key, "pair key")):
        if k:
            check_obs_key(adata, k, what=what, file=file)
    if condition_key is not None:
        levels = set(adata.obs[condition_key].astype(str))
        missing = [v for v in (test, reference) if v is None or v not in levels]
        if missing:
            raise InputError(f"condition levels {missing} not found in obs[{condition_key!r}]",
                             file=file, where=f"values: {sorted(levels)[:10]}",
                             fix="pass --test and --reference among those values")
    n_in = (int(adata.n_obs), int(adata.n_vars))
    adata, metrics = process(adata, batch_key=batch_key, label_key=label_key, timer=timer, **options)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    def _table(df: pd.DataFrame, name: str, index: bool = True) -> None:
        write_table(df, out / name, index=index)
        written.append(name)

    with timer.step("markers"):
        _table(marker_genes(adata, "leiden"), "markers_leiden.csv", index=False)
        if adata.obs["cell_type"].nunique() > 1:
            _table(marker_genes(adata, "cell_type"), "markers_cell_type.csv", index=False)
    scores = adata.uns["pmed_annotation_scores"]
    ann = pd.DataFrame(scores["scores"], index=pd.Index(scores["clusters"], name="leiden"),
                       columns=scores["types"])
    ann["cell_type"] = ann.idxmax(axis=1)
    _table(ann, "annotation_scores.csv")

    summary: dict[str, Any] = {}
    with timer.step("patient_level"):
        comp = composition(adata, sample_key=sample_key)
        _table(comp, "composition.csv")
        feats = patient_features(adata, patient_key=patient_key)
        _table(feats, "patient_features.csv")
        if condition_key is not None:
            assert test is not None and reference is not None
            cov = [pair_key] if pair_key else []
            counts, meta = pseudobulk(adata, sample_key=sample_key)
            for c in [condition_key, *cov]:
                if c not in meta.columns:
                    raise ValidationError(
                        [f"obs column {c!r} varies within a sample of {sample_key!r}"], file=file,
                        fix="condition and pair keys must be constant within each sample")
            de = pseudobulk_de(counts, meta, condition=condition_key, test=test, reference=reference,
                               covariates=cov, n_cpus=n_jobs)
            _table(de, "biomarkers.csv")
            summary["de_design"] = str(de["design"].iloc[0])
            summary["de_n_fdr_0.05"] = int((de["fdr"] < 0.05).sum())
            counts_ct, meta_ct = pseudobulk(adata, sample_key=sample_key, cell_type_key="cell_type")
            parts, skipped = [], {}
            cts = sorted(meta_ct["cell_type"].unique()) if de_by_cell_type else []
            for ct in cts:
                sel = (meta_ct["cell_type"] == ct).to_numpy()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        r = pseudobulk_de(counts_ct[sel], meta_ct[sel], condition=condition_key,
                                          test=test, reference=reference, covariates=cov,
                                          n_cpus=n_jobs)
                except (ValidationError, ValueError) as e:
                    skipped[ct] = str(e).splitlines()[0]
                    continue
                r.insert(0, "cell_type", ct)
                parts.append(r.reset_index())
            if parts:
                _table(pd.concat(parts, ignore_index=True), "biomarkers_by_cell_type.csv",
                       index=False)
            if de_by_cell_type:
                summary["de_by_cell_type_skipped"] = skipped

    if plots:
        from pmed.omics import plots as P

        with timer.step("plots"):
            pdir = out / "plots"
            if "X_umap" in adata.obsm:
                for col in dict.fromkeys([batch_key, "leiden", "cell_type", label_key]):
                    if col:
                        P.plot_embedding(adata, col, pdir / f"umap_{col}.png")
                        written.append(f"plots/umap_{col}.png")
            if "X_umap_before" in adata.obsm:
                P.plot_embedding(adata, batch_key, pdir / f"umap_before_{batch_key}.png",
                                 basis="X_umap_before", title=f"before correction: {batch_key}")
                written.append(f"plots/umap_before_{batch_key}.png")
            P.plot_qc(adata, pdir / "qc.png")
            P.plot_integration_metrics(metrics, pdir / "integration_metrics.png")
            written += ["plots/qc.png", "plots/integration_metrics.png"]

    with timer.step("write_h5ad"):
        with atomic_path(out / "processed.h5ad") as tmp:
            adata.write_h5ad(tmp, compression=None)
        written.append("processed.h5ad")
    write_text_atomic(out / "integration_metrics.json", to_json(metrics))
    written.append("integration_metrics.json")
    summary.update({
        "input": str(input) if not isinstance(input, ad.AnnData) else "AnnData",
        "n_cells_in": n_in[0], "n_genes_in": n_in[1],
        "n_cells": int(adata.n_obs), "n_genes": int(adata.n_vars),
        "n_clusters": int(adata.obs["leiden"].nunique()),
        "cell_types": adata.obs["cell_type"].astype(str).value_counts().to_dict(),
        "batch_key": batch_key, "label_key": label_key, "sample_key": sample_key,
        "patient_key": patient_key, "qc": adata.uns.get("pmed_qc", {}),
        "options": {k: (v if isinstance(v, str | int | float | bool | type(None) | list | tuple)
                        else str(v)) for k, v in options.items()},
        "metrics": metrics, "timings_s": timer.steps,
        "files": sorted(written) + ["run.json"],
    })
    write_text_atomic(out / "run.json", to_json(summary))
    return summary


