"""run_spatial: tissue domains against known regions, patient features with known answers, the real
Visium and MERFISH sections end to end, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

pytest.importorskip("scanpy")

from conftest import shared_dir  # noqa: E402
from pmed.spatial import run_spatial, section_features, spatial_neighbors  # noqa: E402
from pmed.spatial.synthetic import synthetic_section  # noqa: E402

DATA = shared_dir() / "data" / "spatial"
VISIUM = DATA / "visium_breast_cancer_blockA1.h5ad"
MERFISH = DATA / "merfish_nsclc_chen2024.h5ad"


def test_spatial_domains_recover_known_regions_better_than_plain_clustering():
    from sklearn.metrics import adjusted_rand_score

    a = synthetic_section(purity=0.6, infiltration=0.1, seed=0)
    res = run_spatial(a, sample="S", n_domains=3, svg=False, plots=False)
    s = res.sections["S"]
    truth = a.obs["region"].to_numpy()
    spatial = adjusted_rand_score(truth, s.adata.obs["spatial_domain"])
    flat = adjusted_rand_score(truth, s.adata.obs["nonspatial_domain"])
    # seed 0, purity 0.6: spatial 0.85-0.87, non-spatial 0.60-0.63 (purity 0.5 and 0.7 alike)
    assert spatial > 0.8 and spatial > flat + 0.15, (spatial, flat)
    assert s.metrics["spatial"]["pas"] < 0.02 < 0.1 < s.metrics["nonspatial"]["pas"]
    # each domain is named after the compartment whose markers it carries, as the truth says
    named = pd.crosstab(s.adata.obs["compartment"], a.obs["region"])
    for region in ("tumour", "immune", "stroma"):
        assert named[region].idxmax() == region


def test_progress_names_each_stage_and_reaches_its_total():
    from conftest import ProgressRecorder

    rec = ProgressRecorder()
    res = run_spatial(synthetic_section(n_rows=12, n_cols=12, seed=4), sample="S", n_domains=3, plots=False,
                      progress=rec)
    assert rec.starts == [(7, "spatial domains")] and rec.steps == 7
    assert rec.labels == [f"section S: {k}" for k in
                          ("read", "graph", "svg", "embedding", "domains", "comparison", "features")]
    assert set(res.sections["S"].timings) == {"read", "graph", "svg", "embedding", "domains", "comparison",
                                              "features"}


def test_image_features_join_the_expression_as_a_third_part():
    from sklearn.metrics import adjusted_rand_score

    from pmed.spatial.domains import spatial_domains

    a = synthetic_section(n_rows=24, n_cols=24, purity=0.45, seed=4)
    spatial_neighbors(a)
    truth = a.obs["region"].cat.codes.to_numpy()
    rng = np.random.default_rng(0)
    # a tile feature that tells the region apart (stain colour), with noise
    image = np.eye(3)[truth] * 2 + rng.normal(0, 1.0, (a.n_obs, 3))
    without, _ = spatial_domains(a, n_domains=3, seed=0)
    with_image, _ = spatial_domains(a, n_domains=3, image=image, image_weight=0.5, seed=0)
    assert adjusted_rand_score(truth, with_image) > adjusted_rand_score(truth, without)
    noise = rng.normal(0, 1.0, (a.n_obs, 3))  # an uninformative image changes little at a small weight
    weak, _ = spatial_domains(a, n_domains=3, image=noise, image_weight=0.1, seed=0)
    assert adjusted_rand_score(without, weak) > 0.8
    with pytest.raises(Exception, match="rows"):
        spatial_domains(a, n_domains=3, image=image[:10])


def test_immune_infiltration_of_the_tumour_is_measured():
    got, true_share = {}, {}
    for inf in (0.0, 0.5):
        a = synthetic_section(n_rows=24, n_cols=24, infiltration=inf, seed=1)
        got[inf] = run_spatial(a, sample="S", n_domains=3, svg=False, plots=False, compare=False).features.loc["S"]
        true_share[inf] = float((a.obs["region"] == "tumour").mean())
    assert got[0.5]["immune_in_tumour"] > got[0.0]["immune_in_tumour"] + 0.5
    # the nest is found in both, to within a ring of spots (seen 0.17 and 0.22 against 0.2 at 30 x 30)
    for inf in got:
        assert got[inf]["share_tumour"] == pytest.approx(true_share[inf], abs=0.07)


def _grid(n_rows: int = 10, n_cols: int = 10):
    import anndata

    rows, cols = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    rows, cols = rows.ravel(), 2 * cols.ravel() + rows.ravel() % 2
    obs = pd.DataFrame({"array_row": rows, "array_col": cols}, index=[f"s{i}" for i in range(rows.size)])
    a = anndata.AnnData(X=sparse.csr_matrix((rows.size, 1)), obs=obs)
    a.obsm["spatial"] = np.column_stack([cols * 50.0, rows * 86.6])
    spatial_neighbors(a)
    return a


def test_interface_and_enrichment_known_answers():
    a = _grid()
    left = a.obs["array_col"].to_numpy() < 10
    comp = np.where(left, "tumour", "immune")
    f = section_features(a, comp, n_perms=200)
    W = a.obsp["spatial_connectivities"].tocoo()
    boundary = sum(1 for i, j in zip(W.row, W.col, strict=True) if left[i] and not left[j])
    assert boundary > 0
    assert f["tumour_immune_interface_mm"] == pytest.approx(boundary * 0.1)
    assert f["interface_per_tumour"] == pytest.approx(boundary / left.sum())
    touching = {i for i, j in zip(W.row, W.col, strict=True) if left[i] and not left[j]}
    assert f["immune_next_to_tumour"] == pytest.approx(len(touching) / left.sum())
    assert f["share_tumour"] == pytest.approx(left.mean()) and f["share_immune"] == pytest.approx(1 - left.mean())
    assert f["tumour_immune_enrichment_z"] < -5  # two halves: far fewer contacts than chance
    mixed = np.random.default_rng(0).permutation(comp)
    assert abs(section_features(a, mixed, n_perms=200)["tumour_immune_enrichment_z"]) < 3.5


@pytest.mark.realdata
def test_visium_section_end_to_end(tmp_path):
    from pmed.cohort import read_block

    res = run_spatial(VISIUM, sample="BC1", n_domains=7, seed=0)
    s = res.sections["BC1"]
    m = s.metrics
    # seen: spatial 0.014, non-spatial 0.16-0.18 (share of spots whose neighbours are mostly elsewhere)
    assert m["spatial"]["pas"] < 0.03 and m["nonspatial"]["pas"] > 4 * m["spatial"]["pas"]
    assert m["spatial"]["seed_stability_ari"] > 0.9
    comps = set(s.domain_table["compartment"])
    assert {"tumour", "immune"} <= comps
    # the tumour domains carry the epithelial markers, the immune ones the immune markers
    t = s.domain_table
    assert t.loc[t["compartment"] == "tumour", "tumour"].max() > 0.4
    assert t.loc[t["compartment"] == "immune", "immune"].max() > 0.4
    # spatially variable genes: thousands at FDR 5 %, the known tumour/immune genes among the top
    svg = s.svg
    assert (svg["fdr"] < 0.05).sum() > 1000
    assert {"KRT8", "CD74", "IGKC"} <= set(svg.index[:30])
    out = tmp_path / "spatial out é"
    files = res.write(out)
    for name in ("processed.h5ad", "svg.csv", "domains.csv", "domain_markers.csv", "metrics.json",
                 "patient_features.csv", "provenance.json", "plots/spatial_domain.png"):
        assert (out / name).exists(), name
    assert list(pd.read_csv(out / "svg.csv").columns[:4]) == ["gene", "moran_i", "pval", "fdr"]
    import anndata

    back = anndata.read_h5ad(out / "processed.h5ad")
    assert back.obs["spatial_domain"].nunique() == 7
    # per-spot QC beside the domains; total counts are the raw counts' row sums
    assert {"n_genes_by_counts", "pct_counts_mt"} <= set(back.obs.columns)
    assert back.obs["total_counts"].iloc[0] == pytest.approx(9046)
    assert (out / "plots" / "spatial_domain.png").stat().st_size > 50_000  # drawn over the H&E image
    assert json.loads((out / "provenance.json").read_text())["domain"] == "spatial"
    assert set(files) >= {"features", "provenance"}
    block = read_block(out)
    assert block.data.index.tolist() == ["BC1"] and block.data.loc["BC1", "n_spots"] == 3796
    assert block.data.loc["BC1", "tumour_immune_interface_mm"] > 1


@pytest.mark.realdata
def test_merfish_cells_take_their_compartment_from_their_type():
    res = run_spatial(MERFISH, sample="LC1", cell_type_key="cell_type", n_domains=5, svg=False, plots=False,
                      compare=False)
    f = res.features.loc["LC1"]
    # 634 epithelial; 829 lymphocytes + 491 myeloid + 206 plasma + 18 mast; 588 fibroblasts; 411 vascular
    assert f["share_tumour"] == pytest.approx(634 / 3177)
    assert f["share_immune"] == pytest.approx(1544 / 3177)
    assert f["share_stroma"] == pytest.approx(588 / 3177) and f["share_vessel"] == pytest.approx(411 / 3177)
    assert f["n_cells"] == 3177 and f["tumour_immune_interface_mm"] > 0


def test_cli_domains_and_deconvolve(tmp_path, capsys, monkeypatch):
    from typer.testing import CliRunner

    from pmed.cli import app
    from pmed.spatial.deconvolve import pseudo_spots

    a = synthetic_section(n_rows=20, n_cols=20, seed=2)
    a.obs["region"] = a.obs["region"].astype(str)
    path = tmp_path / "section.h5ad"
    a.write_h5ad(path)
    runner = CliRunner()
    monkeypatch.setenv("PMED_PROGRESS_INTERVAL", "0")  # a line per step, however short
    r = runner.invoke(app, ["spatial", "domains", "--input", str(path), "--out", str(tmp_path / "dom"),
                            "--n-domains", "3", "--no-plots", "--sample", "P7"])
    monkeypatch.delenv("PMED_PROGRESS_INTERVAL")
    assert r.exit_code == 0, r.output
    assert "spatially variable genes" in r.output and "contiguity" in r.output
    # no terminal here: progress comes as plain lines on stderr
    assert "spatial domains: started (7 steps)" in r.stderr and "spatial domains: done in" in r.stderr
    feats = pd.read_csv(tmp_path / "dom" / "patient_features.csv")
    assert feats["patient_id"].tolist() == ["P7"]
    dom = pd.read_csv(tmp_path / "dom" / "domains.csv")
    assert len(dom) == a.n_obs and dom["spatial_domain"].nunique() == 3
    r = runner.invoke(app, ["spatial", "domains", "--input", str(path), "--out", str(tmp_path / "x"),
                            "--lambda", "1"])
    assert r.exit_code == 2 and "--lambda" in r.output

    cells = synthetic_section(n_rows=20, n_cols=20, seed=3)  # "cells": one region each
    cells.obs["cell_type"] = cells.obs["region"].astype(str)
    ref = tmp_path / "reference.h5ad"
    cells.write_h5ad(ref)
    spots, truth = pseudo_spots(cells, label_key="cell_type", spot_size=250.0)
    spots_path = tmp_path / "spots.h5ad"
    spots.write_h5ad(spots_path)
    r = runner.invoke(app, ["spatial", "deconvolve", "--spots", str(spots_path), "--reference", str(ref),
                            "--label-key", "cell_type", "--out", str(tmp_path / "dec")])
    assert r.exit_code == 0, r.output
    props = pd.read_csv(tmp_path / "dec" / "proportions.csv", index_col=0)
    assert np.allclose(props.sum(axis=1), 1)
    from pmed.cli import main

    rc = main(["spatial", "deconvolve", "--spots", str(spots_path), "--reference", str(ref),
               "--label-key", "no_such_column", "--out", str(tmp_path / "dec2")])
    err = capsys.readouterr().err
    assert rc == 2 and "no_such_column" in err and "cell_type" in err and "Traceback" not in err
    assert not (tmp_path / "dec2").exists()
