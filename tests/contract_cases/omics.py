"""Contract case for ``pmed.omics.run_omics``: 6 simulated patients, ~50 cells each, in an h5ad."""

from __future__ import annotations

import numpy as np
import pytest

ENTRY = "pmed.omics.run_omics"
INPUT_ROLES = ["input"]


def run(tmp_path):
    pytest.importorskip("scanpy")
    pytest.importorskip("harmonypy")
    from pmed.omics import run_omics
    from pmed.omics.synthetic import simulate_single_cell

    ids = [f"P{i}" for i in range(6)]
    a = simulate_single_cell(ids, np.array([0, 1, 0, 1, 0, 1]), cells_per_patient=50,
                             n_background=60, seed=3)
    assert a.obs["batch"].nunique() == 2  # seed 3 puts the patients in both batches
    del a.uns["pmed_synthetic"]  # its "Epithelial/CTC" key makes anndata warn about slashes
    path = tmp_path / "cells.h5ad"
    a.write_h5ad(path)
    # the fast path: no doublets, no UMAP, no figures, few genes and components
    return run_omics(path, batch_key="batch", patient_key="patient_id", sample_key="patient_id",
                     doublets=False, umap=False, plots=False, n_top_genes=100, n_comps=10,
                     seed=0)
