"""What :func:`pmed.omics.run_omics` returns: :class:`OmicsResult` (the domain contract)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from pmed.cohort import Block
from pmed.io.jsonio import plain
from pmed.result import PROVENANCE_FILE, DomainResult

__all__ = ["OmicsResult", "FEATURES_FILE"]

#: The patient-level feature table in an output folder (the ``omics`` Cohort block).
FEATURES_FILE = "patient_features.csv"


@dataclass
class OmicsResult(DomainResult):
    """What :func:`run_omics` found.

    Attributes
    ----------
    adata : anndata.AnnData
        The processed cells (log-normalised ``X``, raw ``layers['counts']``, ``obs['leiden']``,
        ``obs['cell_type']``, ``obs['sig_*']``, embeddings in ``obsm``).
    features : pandas.DataFrame
        One row per patient (``patient_id`` index): ``frac_<cell type>``, ``<signature>_mean``,
        ``n_cells``.
    composition : pandas.DataFrame
        Cell-type shares per sample.
    metrics : dict
        Integration metrics before/after correction (and annotation agreement with labels).
    markers : dict
        ``"leiden"`` (and ``"cell_type"`` when there are several types) → Wilcoxon marker table.
    annotation_scores : pandas.DataFrame
        Mean marker-set score per cluster and the type chosen.
    biomarkers, biomarkers_by_cell_type : pandas.DataFrame or None
        Pseudobulk DE over all cells and within each cell type (with a condition).
    info : dict
        Settings and counts of the run (the body of ``run.json``).
    plots : bool
        Whether :meth:`write` draws the figures.
    """

    domain: ClassVar[str] = "omics"
    block_name: ClassVar[str] = "omics"

    adata: Any
    features: pd.DataFrame
    composition: pd.DataFrame
    metrics: dict[str, Any]
    markers: dict[str, pd.DataFrame]
    annotation_scores: pd.DataFrame
    biomarkers: pd.DataFrame | None = None
    biomarkers_by_cell_type: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)
    plots: bool = True

    # -- the contract -------------------------------------------------------------------
    def to_block(self) -> Block:
        """The patient features as the Cohort's ``omics`` block, with this run's provenance."""
        prov = {k: v for k, v in self.provenance.items() if k != "summary"}
        prov.update({"domain": self.domain, "modality": "single-cell RNA-seq",
                     "producer": "pmed.omics", "n_features": int(self.features.shape[1]),
                     "n_cells": int(self.adata.n_obs)})
        return Block(self.features.copy(), prov)

    def summary(self) -> dict[str, Any]:
        """Counts, cell types and the before/after integration metrics (JSON-ready)."""
        keys = ("ilisi_normalised", "kbet_acceptance", "batch_asw", "clisi_normalised", "ari",
                "nmi")
        s = {k: self.info.get(k) for k in ("n_cells_in", "n_genes_in", "n_cells", "n_genes",
                                            "n_clusters", "cell_types", "batch_key")}
        s["method"] = self.metrics.get("settings", {}).get("method")
        s["n_patients"] = int(len(self.features))
        s["n_features"] = int(self.features.shape[1])
        s["integration"] = {name: {k: self.metrics[name].get(k) for k in keys}
                            for name in ("before", "after") if name in self.metrics}
        if "annotation" in self.metrics:
            s["annotation"] = self.metrics["annotation"]
        for k in ("de_design", "de_n_fdr_0.05"):
            if k in self.info:
                s[k] = self.info[k]
        return plain(s)

    def record(self, files: list[str] | None = None) -> dict[str, Any]:
        """The ``run.json`` record: settings, counts, metrics, seconds per step, files written."""
        rec = dict(self.info)
        rec["files"] = list(files if files is not None else self.info.get("files", []))
        return rec

    def _write_files(self, out: Path) -> dict[str, Path]:
        from pmed.io import atomic_path, write_table, write_text_atomic
        from pmed.io.jsonio import to_json

        files: dict[str, Path] = {}
        timings = self.info.setdefault("timings_s", {})

        def table(df: pd.DataFrame, name: str, index: bool = True) -> None:
            files[name] = write_table(df, out / name, index=index)

        table(self.markers["leiden"], "markers_leiden.csv", index=False)
        if "cell_type" in self.markers:
            table(self.markers["cell_type"], "markers_cell_type.csv", index=False)
        table(self.annotation_scores, "annotation_scores.csv")
        table(self.composition, "composition.csv")
        table(self.features, FEATURES_FILE)
        if self.biomarkers is not None:
            table(self.biomarkers, "biomarkers.csv")
        if self.biomarkers_by_cell_type is not None:
            table(self.biomarkers_by_cell_type, "biomarkers_by_cell_type.csv", index=False)
        if self.plots:
            t = time.perf_counter()
            files.update(self._plots(out))
            timings["plots"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        with atomic_path(out / "processed.h5ad") as tmp:
            self.adata.write_h5ad(tmp, compression=None)
        files["processed.h5ad"] = out / "processed.h5ad"
        timings["write_h5ad"] = round(time.perf_counter() - t, 3)
        files["integration_metrics.json"] = write_text_atomic(out / "integration_metrics.json",
                                                              to_json(self.metrics))
        names = sorted(str(p.relative_to(out)) for p in files.values())
        self.info["files"] = [*names, "run.json", PROVENANCE_FILE]
        files["run.json"] = write_text_atomic(out / "run.json", to_json(self.record()))
        return files

    def _plots(self, out: Path) -> dict[str, Path]:
        from pmed.omics import plots as P

        a, batch_key = self.adata, self.info["batch_key"]
        pdir = out / "plots"
        made: dict[str, Path] = {}
        from pmed.io import check_inside, safe_filename

        # column names are user options (--batch-key, --label-key): safe, distinct file names
        used: set[str] = set()
        if "X_umap" in a.obsm:
            for col in dict.fromkeys([batch_key, "leiden", "cell_type", self.info.get("label_key")]):
                if col:
                    png = check_inside(pdir / f"umap_{safe_filename(col, used=used)}.png", out)
                    made[f"plots/umap_{col}.png"] = P.plot_embedding(a, col, png)
        if "X_umap_before" in a.obsm:
            name = f"plots/umap_before_{safe_filename(batch_key)}.png"
            made[name] = P.plot_embedding(a, batch_key, out / name, basis="X_umap_before",
                                          title=f"before correction: {batch_key}")
        made["plots/qc.png"] = P.plot_qc(a, pdir / "qc.png")
        made["plots/integration_metrics.png"] = P.plot_integration_metrics(
            self.metrics, pdir / "integration_metrics.png")
        return {k: Path(v) for k, v in made.items()}
