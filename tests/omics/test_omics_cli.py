"""``pmed omics`` CLI on a small synthetic h5ad (parsing, outputs, error propagation)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("scanpy")
pytest.importorskip("harmonypy")
typer_testing = pytest.importorskip("typer.testing")

from pmed.cli.omics import app  # noqa: E402
from pmed.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def small_h5ad(tmp_path_factory):
    from pmed.omics.synthetic import simulate_single_cell

    ids = [f"P{i}" for i in range(6)]
    a = simulate_single_cell(ids, np.array([0, 1, 0, 1, 0, 1]), cells_per_patient=90, seed=2)
    a.obs["response"] = np.where(a.obs["responder"] == 1, "R", "NR")
    p = tmp_path_factory.mktemp("cli") / "cells.h5ad"
    a.write_h5ad(p)
    return p


def test_cli_pipeline_writes_outputs(small_h5ad, tmp_path):
    out = tmp_path / "run"
    r = typer_testing.CliRunner().invoke(app, [
        "pipeline", "--input", str(small_h5ad), "--batch-key", "batch",
        "--label-key", "true_cell_type", "--out", str(out), "--no-plots", "--no-doublets",
        "--patient-key", "patient_id", "--sample-key", "patient_id", "--condition-key", "response",
        "--test", "R", "--reference", "NR", "--no-de-by-cell-type", "--n-top-genes", "200", "--n-comps", "15"])
    assert r.exit_code == 0, r.output
    assert "Leiden clusters" in r.output and "after:" in r.output
    m = json.loads((out / "integration_metrics.json").read_text())
    assert m["settings"]["batch_key"] == "batch" and m["settings"]["method"] == "harmony"
    assert m["annotation"]["exact_agreement"] > 0.8
    for f in ("processed.h5ad", "markers_leiden.csv", "patient_features.csv", "biomarkers.csv",
              "run.json"):
        assert (out / f).exists(), f
    run = json.loads((out / "run.json").read_text())
    assert run["de_design"] == "~response; R vs NR"


def test_cli_missing_batch_key_is_an_input_error(small_h5ad, tmp_path):
    r = typer_testing.CliRunner().invoke(app, [
        "pipeline", "--input", str(small_h5ad), "--batch-key", "donor", "--out", str(tmp_path)])
    assert isinstance(r.exception, InputError)
    assert "batch key 'donor' is not a column" in str(r.exception)
    assert not (tmp_path / "processed.h5ad").exists()


def test_cli_markers_lists_shipped_set():
    r = typer_testing.CliRunner().invoke(app, ["markers"])
    assert r.exit_code == 0 and "B cells: MS4A1" in r.output
