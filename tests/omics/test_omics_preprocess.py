"""Doublet detection: scrublet per run, the same scores however many processes score the runs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scanpy")

from pmed.omics.preprocess import flag_doublets  # noqa: E402
from pmed.omics.synthetic import simulate_single_cell  # noqa: E402


def test_runs_scored_in_two_processes_give_the_same_doublets():
    ids = [f"P{i}" for i in range(6)]
    a = simulate_single_cell(ids, np.array([0, 1] * 3), cells_per_patient=300, seed=2)
    a.layers["counts"] = a.X.copy()
    b = a.copy()
    # 1,800 cells, six patients of 300: one run each, scored three by three in each process
    flag_doublets(a, batch_key="patient_id", seed=3, max_cells_per_run=400)
    flag_doublets(b, batch_key="patient_id", seed=3, max_cells_per_run=400, n_jobs=2)
    assert np.array_equal(a.obs["doublet_score"].to_numpy(), b.obs["doublet_score"].to_numpy())
    assert np.array_equal(a.obs["predicted_doublet"].to_numpy(), b.obs["predicted_doublet"].to_numpy())
    assert a.obs["doublet_score"].notna().all() and a.obs["doublet_score"].std() > 0
    assert a.uns["pmed_qc"]["doublets"]["n_runs"] == 6  # one run per patient of 300 cells
