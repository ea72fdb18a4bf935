"""Real-data checks: Kang et al. 2018 PBMCs (muscat example) and scanpy's pbmc68k_reduced.

Numbers are reported in docs/results/omics.md; the assertions hold the claims made there.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("scanpy")
pytest.importorskip("harmonypy")
pytest.importorskip("pydeseq2")

from pmed.datasets._paths import shared_data_dir  # noqa: E402

KANG = "data/single_cell/muscat_kang_example_sce.h5ad"
ISGS = ["ISG15", "IFI6", "IFIT1", "MX1", "IFIT3", "ISG20", "LY6E", "OAS1", "IFITM3"]


@pytest.fixture(scope="module")
def kang_run(tmp_path_factory):
    path = shared_data_dir() / KANG
    if not path.exists():
        pytest.skip(f"Kang PBMC data not found: {path} (set PMED_SHARED)")
    import anndata as ad

    from pmed.omics.pipeline import run_pipeline

    a = ad.read_h5ad(path)
    # the two lupus patients: sample_id is ctrl101/stim101/ctrl107/stim107
    a.obs["patient"] = a.obs["sample_id"].astype(str).str.replace(r"^(ctrl|stim)", "", regex=True)
    out = tmp_path_factory.mktemp("kang")
    summary = run_pipeline(a, batch_key="sample_id", label_key="cluster_id", out=out,
                           condition_key="group_id", test="stim", reference="ctrl",
                           pair_key="patient", de_by_cell_type=False)
    return out, summary


@pytest.mark.realdata
def test_kang_correction_improves_mixing_and_keeps_cell_types(kang_run):
    out, s = kang_run
    m = json.loads((out / "integration_metrics.json").read_text())
    before, after = m["before"], m["after"]
    assert after["ilisi_mean"] > before["ilisi_mean"] + 0.8
    assert after["kbet_acceptance"] > before["kbet_acceptance"] + 0.4
    assert after["ari"] >= 0.7  # Leiden clusters on the Harmony embedding vs the 5 labels
    assert after["ari"] > before["ari"]
    assert after["clisi_normalised"] > 0.9  # cell types not erased
    assert m["annotation"]["ari_cell_type_vs_labels"] >= 0.7
    assert m["annotation"]["exact_agreement"] >= 0.85


@pytest.mark.realdata
def test_kang_outputs_written(kang_run):
    import anndata as ad

    out, s = kang_run
    a = ad.read_h5ad(out / "processed.h5ad")
    assert {"leiden", "cell_type", "sig_interferon"} <= set(a.obs.columns)
    assert "X_pca_harmony" in a.obsm and "X_umap" in a.obsm
    assert set(a.obs["cell_type"].astype(str)) <= set(pd.read_csv(
        out / "annotation_scores.csv").columns)
    for f in ("markers_leiden.csv", "markers_cell_type.csv", "composition.csv",
              "patient_features.csv", "biomarkers.csv", "run.json", "plots/umap_sample_id.png",
              "plots/umap_before_sample_id.png", "plots/umap_cell_type.png", "plots/qc.png",
              "plots/integration_metrics.png"):
        assert (out / f).stat().st_size > 0, f
    mk = pd.read_csv(out / "markers_cell_type.csv")
    b = mk[mk.group == "B cells"].head(10)
    assert {"MS4A1", "CD79A", "CD74"} & set(b.gene)
    assert (b.auroc > 0.5).all()
    # stimulated samples have the higher interferon signature
    stim = a.obs["group_id"].astype(str) == "stim"
    assert a.obs.loc[stim, "sig_interferon"].mean() > a.obs.loc[~stim, "sig_interferon"].mean() + 1


@pytest.mark.realdata
def test_kang_pseudobulk_de_recovers_isgs(kang_run):
    out, s = kang_run
    de = pd.read_csv(out / "biomarkers.csv", index_col="gene")
    assert de["design"].iloc[0] == "~patient + group_id; stim vs ctrl"
    ranks = de.loc[[g for g in ISGS if g in de.index], "rank"]
    assert ranks["ISG15"] <= 3
    assert (ranks[["ISG15", "IFI6", "MX1", "ISG20", "LY6E"]] <= 20).all()
    assert (ranks <= 200).all()
    assert (de.loc[ranks.index, "log2fc"] > 2).all()
    assert (de.loc[ranks.index, "fdr"] < 1e-4).all()


@pytest.mark.realdata
def test_pbmc68k_annotation_agrees_with_bulk_labels():
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score

    from pmed.omics import annotate

    try:
        b = sc.datasets.pbmc68k_reduced()  # bundled in the scanpy wheel
    except Exception as e:  # pragma: no cover
        pytest.skip(f"scanpy's bundled pbmc68k_reduced.h5ad not readable: {e}")
    coarse = {"CD14+ Monocyte": "CD14+ Monocytes", "CD19+ B": "B cells",
              "CD4+/CD25 T Reg": "CD4 T cells", "CD4+/CD45RO+ Memory": "CD4 T cells",
              "CD4+/CD45RA+/CD25- Naive T": "CD4 T cells", "CD8+ Cytotoxic T": "CD8 T cells",
              "CD8+/CD45RA+ Naive Cytotoxic": "CD8 T cells", "CD56+ NK": "NK cells",
              "Dendritic": "Dendritic cells", "CD34+": "HSPCs"}
    lineage = {"CD4 T cells": "T/NK", "CD8 T cells": "T/NK", "NK cells": "T/NK",
               "B cells": "B", "CD14+ Monocytes": "myeloid", "FCGR3A+ Monocytes": "myeloid",
               "Dendritic cells": "myeloid", "Plasmacytoid DCs": "myeloid", "HSPCs": "HSPC",
               "Megakaryocytes": "Mk"}
    annotate(b, "pbmc", groupby="louvain", layer="raw")  # raw = log-normalised, 765 genes
    truth = b.obs["bulk_labels"].astype(str).map(coarse)
    ct = b.obs["cell_type"].astype(str)
    ari = adjusted_rand_score(truth, ct)
    exact = np.mean(truth.to_numpy() == ct.to_numpy())
    lin = np.mean(truth.map(lineage).to_numpy() == ct.map(lineage).to_numpy())
    assert ari >= 0.5
    assert exact >= 0.5
    assert lin >= 0.95
    tab = pd.crosstab(b.obs["bulk_labels"], ct)
    assert tab.loc["CD19+ B", "B cells"] / tab.loc["CD19+ B"].sum() > 0.9
    assert tab.loc["CD56+ NK", "NK cells"] / tab.loc["CD56+ NK"].sum() > 0.9
    assert tab.loc["CD34+", "HSPCs"] == tab.loc["CD34+"].sum()
