"""``run_omics`` → ``OmicsResult``: block, summary, written folder read back, progress, seed."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("scanpy")
pytest.importorskip("harmonypy")

from pmed.cohort import Cohort  # noqa: E402
from pmed.cohort import read_block as cohort_read_block  # noqa: E402
from pmed.errors import OptionError, PmedWarning  # noqa: E402
from pmed.omics import OmicsResult, run_omics  # noqa: E402
from pmed.omics.api import FEATURES_FILE, read_block  # noqa: E402


class Recorder:
    def __init__(self):
        self.starts, self.labels, self.advanced = [], [], 0

    def start(self, total, description=""):
        self.starts.append(total)

    def advance(self, description=None, n=1):
        if description:
            self.labels.append(description)
        self.advanced += n


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    from pmed.omics.synthetic import simulate_single_cell

    a = simulate_single_cell([f"P{i}" for i in range(6)], np.array([0, 1, 0, 1, 0, 1]),
                             cells_per_patient=50, n_background=60, seed=3)
    del a.uns["pmed_synthetic"]
    tmp = tmp_path_factory.mktemp("api")
    path = tmp / "cells.h5ad"
    a.write_h5ad(path)
    rec = Recorder()
    res = run_omics(path, batch_key="batch", patient_key="patient_id", sample_key="patient_id",
                    label_key="true_cell_type", doublets=False, umap=False, plots=False,
                    n_top_genes=100, n_comps=10, progress=rec)
    out = tmp / "out"
    files = res.write(out)
    return path, res, rec, out, files


def test_result_and_block(ran):
    _, res, *_ = ran
    assert isinstance(res, OmicsResult) and res.domain == "omics" and res.block_name == "omics"
    block = res.to_block()
    assert block.data.index.name == "patient_id"
    assert sorted(block.data.index) == [f"P{i}" for i in range(6)]
    assert "n_cells" in block.data.columns and any(c.startswith("frac_") for c in block.data)
    assert block.provenance["domain"] == "omics" and block.provenance["options"]["seed"] == 0
    s = res.summary()
    json.dumps(s, allow_nan=False)
    assert s["n_patients"] == 6 and s["integration"]["after"]["kbet_acceptance"] is not None
    assert s["annotation"]["exact_agreement"] > 0.5


def test_progress_is_one_bar_from_qc_to_patient_level(ran):
    rec = ran[2]
    assert len(rec.starts) == 1 and rec.starts[0] == rec.advanced  # every step, once
    assert rec.labels[0] == "QC" and rec.labels[-1] == "patient level"


def test_written_folder_and_reading_it_back(ran):
    path, res, _, out, files = ran
    for name in ("processed.h5ad", "run.json", "integration_metrics.json", FEATURES_FILE,
                 "markers_leiden.csv", "composition.csv", "provenance.json"):
        assert (out / name).is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert "provenance.json" in run["files"] and run["options"]["seed"] == 0
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["inputs"][0]["role"] == "input" and len(prov["inputs"][0]["sha256"]) == 64
    assert prov["options"]["inputs_hashed"] is True
    assert {"scanpy", "anndata", "harmonypy"} <= set(prov["versions"])
    for where in (out, out / FEATURES_FILE):
        b = read_block(where)
        pd.testing.assert_frame_equal(b.data, res.features, check_dtype=False, atol=1e-12)
        assert b.provenance["domain"] == "omics"
    assert read_block(out / "composition.csv") is None
    assert read_block(path) is None
    # the registry dispatches on provenance.json; the block joins a cohort without a bridge
    b = cohort_read_block(out)
    c = Cohort(pd.DataFrame({"age": np.arange(6.0)}, index=pd.Index(b.data.index, name="patient_id")))
    c.add_block("omics", b)
    assert c.blocks["omics"].data.shape == res.features.shape


def test_options_are_checked_before_reading(tmp_path):
    missing = tmp_path / "nope.h5ad"
    with pytest.raises(OptionError, match="unknown option"):
        run_omics(missing, batch_key="b", resolutoin=1.0)
    with pytest.raises(OptionError, match="integration method"):
        run_omics(missing, batch_key="b", method="magic")
    with pytest.raises(OptionError, match="n_jobs"):
        run_omics(missing, batch_key="b", n_jobs=0)


def test_random_state_is_a_deprecated_alias_of_seed():
    import anndata as ad

    from pmed.omics import integration_metrics

    rng = np.random.default_rng(0)
    a = ad.AnnData(X=np.zeros((60, 3), dtype=np.float32),
                   obs=pd.DataFrame({"b": ["x", "y"] * 30}, index=[f"c{i}" for i in range(60)]))
    a.obsm["X_pca"] = rng.normal(size=(60, 4)).astype(np.float32)
    new = integration_metrics(a, batch_key="b", seed=5, max_cells=20)
    with pytest.warns(PmedWarning, match="random_state"):
        old = integration_metrics(a, batch_key="b", random_state=5, max_cells=20)
    assert old == new
    with pytest.raises(OptionError):
        integration_metrics(a, batch_key="b", seed=1, random_state=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name is silent
        integration_metrics(a, batch_key="b", seed=5, max_cells=20)
