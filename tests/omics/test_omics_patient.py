"""Patient level: composition, pseudobulk sums, PyDESeq2 DE, signatures, Cohort block."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

pytest.importorskip("scanpy")

from pmed.errors import IDMismatchError, ValidationError  # noqa: E402
from pmed.omics import (  # noqa: E402
    add_to_cohort,
    composition,
    patient_features,
    pseudobulk,
    pseudobulk_de,
    signature_scores,
)


def _cells(seed=0):
    """6 samples (3 patients x ctrl/stim), 2 cell types, 40 genes; G0-G4 up 4x in stim."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    rows, obs = [], []
    base = rng.lognormal(1.0, 0.5, size=40)
    for p in ("p1", "p2", "p3"):
        pfx = rng.lognormal(0, 0.2, size=40)
        for cond in ("ctrl", "stim"):
            for ct, n in (("T", 30), ("B", 20)):
                mu = base * pfx * (1.5 if ct == "B" else 1.0)
                if cond == "stim":
                    mu = mu.copy()
                    mu[:5] *= 4
                rows.append(rng.poisson(mu, size=(n, 40)))
                obs.append(pd.DataFrame({"sample": f"{p}_{cond}", "patient": p, "cond": cond,
                                         "ct": ct}, index=range(n)))
    X = sparse.csr_matrix(np.vstack(rows).astype(np.float32))
    o = pd.concat(obs, ignore_index=True)
    o.index = [f"c{i}" for i in range(len(o))]
    a = ad.AnnData(X=X, obs=o)
    a.var_names = [f"G{i}" for i in range(40)]
    a.layers["counts"] = X.copy()
    return a


def test_composition_and_pseudobulk_sums():
    a = _cells()
    comp = composition(a, sample_key="sample", cell_type_key="ct")
    assert comp.loc["p1_ctrl", "T"] == pytest.approx(30 / 50)
    np.testing.assert_allclose(comp.sum(axis=1), 1.0)
    counts, meta = pseudobulk(a, sample_key="sample", cell_type_key="ct")
    sel = ((a.obs["sample"] == "p2_stim") & (a.obs["ct"] == "B")).to_numpy()
    np.testing.assert_array_equal(counts.loc["p2_stim|B"].to_numpy(),
                                  np.asarray(a.X[sel].sum(axis=0)).ravel().astype(np.int64))
    assert meta.loc["p2_stim|B", "n_cells"] == 20
    assert meta.loc["p2_stim|B", "patient"] == "p2" and meta.loc["p2_stim|B", "cond"] == "stim"
    _, meta2 = pseudobulk(a, sample_key="sample", min_cells=60)
    assert len(meta2) == 0  # 50 cells per sample < 60


def test_pseudobulk_de_paired_recovers_planted_genes():
    a = _cells()
    counts, meta = pseudobulk(a, sample_key="sample")
    de = pseudobulk_de(counts, meta, condition="cond", test="stim", reference="ctrl",
                       covariates=["patient"])
    assert set(de.index[:5]) == {f"G{i}" for i in range(5)}
    assert (de.loc[[f"G{i}" for i in range(5)], "log2fc"] > 1.5).all()
    assert (de.loc[[f"G{i}" for i in range(5)], "fdr"] < 1e-3).all()
    assert de["design"].iloc[0] == "~patient + cond; stim vs ctrl"
    assert list(de["rank"][:3]) == [1, 2, 3]


def test_pseudobulk_de_refuses_impossible_design():
    a = _cells()
    counts, meta = pseudobulk(a, sample_key="sample")
    with pytest.raises(ValidationError, match="no profile with cond = 'treated'"):
        pseudobulk_de(counts, meta, condition="cond", test="treated", reference="ctrl")
    two = meta["patient"] == "p1"
    with pytest.raises(ValidationError, match="no residual degrees of freedom"):
        pseudobulk_de(counts[two], meta[two], condition="cond", test="stim", reference="ctrl",
                      covariates=["patient"])


def test_signatures_and_patient_features_into_cohort():
    import scanpy as sc

    from pmed.cohort import Cohort

    a = _cells()
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    used = signature_scores(a, {"stimmed": ["G0", "G1", "G2", "G3", "G4"], "none": ["ZZZ"]})
    assert used == {"stimmed": ["G0", "G1", "G2", "G3", "G4"], "none": []}
    stim = (a.obs["cond"] == "stim").to_numpy()
    assert a.obs.loc[stim, "sig_stimmed"].mean() > a.obs.loc[~stim, "sig_stimmed"].mean() + 0.5
    a.obs["cell_type"] = a.obs["ct"]
    f = patient_features(a, patient_key="patient")
    assert list(f.index) == ["p1", "p2", "p3"]
    assert f.loc["p1", "frac_T"] == pytest.approx(0.6)
    assert f.loc["p1", "n_cells"] == 100
    assert "stimmed_mean" in f.columns
    cohort = Cohort(pd.DataFrame({"age": [50, 60, 70]}, index=["p1", "p2", "p3"]))
    add_to_cohort(cohort, f)
    assert cohort.blocks["omics"].data.loc["p2", "frac_B"] == pytest.approx(0.4)
    assert cohort.blocks["omics"].provenance["producer"] == "pmed.omics"
    big = Cohort(pd.DataFrame({"age": [1, 2, 3, 4]}, index=["p1", "p2", "p3", "p4"]))
    with pytest.raises(IDMismatchError):
        add_to_cohort(big, f)
    add_to_cohort(big, f, allow_missing=True)
    assert np.isnan(big.blocks["omics"].data.loc["p4", "frac_T"])


def test_bulk_features_log_cpm_signatures_and_patients():
    from pmed.omics import bulk_features

    bulk = pd.DataFrame({"EPCAM": [0, 100, 50], "KRT8": [0, 300, 100], "G1": [1000, 600, 850]},
                        index=["s1", "s2", "s3"])
    f = bulk_features(bulk, signatures={"ctc": ["EPCAM", "KRT8", "KRT99"]}, genes=["EPCAM"])
    assert f.loc["s2", "expr_EPCAM"] == pytest.approx(np.log2(100 / 1000 * 1e6 + 1))
    assert f["ctc_score"].idxmax() == "s2" and f["ctc_score"].idxmin() == "s1"
    assert f["ctc_score"].mean() == pytest.approx(0.0, abs=1e-12)
    g = bulk_features(bulk, sample_to_patient={"s1": "p1", "s2": "p1", "s3": "p2"},
                      signatures={"ctc": ["EPCAM", "KRT8"]})
    assert list(g.index) == ["p1", "p2"]
    assert g.loc["p1", "ctc_score"] == pytest.approx(f.loc[["s1", "s2"], "ctc_score"].mean())
    with pytest.raises(ValidationError, match="1 samples have no patient"):
        bulk_features(bulk, sample_to_patient={"s1": "p1", "s2": "p1"})
