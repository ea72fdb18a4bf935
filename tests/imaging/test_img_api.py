"""``run_imaging``: options refused before reading, one progress reporter, the block read back."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from img_fixtures import one_torch_thread  # noqa: E402, F401 (autouse fixture)

from pmed.cohort import Cohort, read_block  # noqa: E402
from pmed.errors import InputError, OptionError  # noqa: E402
from pmed.imaging import ImagingResult, run_imaging  # noqa: E402
from pmed.imaging.api import read_block as imaging_read_block  # noqa: E402
from pmed.imaging.synthetic import make_lesion_images  # noqa: E402


class Recorder:
    """A pmed.progress Reporter that remembers what it was told."""

    def __init__(self):
        self.events = []

    def start(self, total, description=""):
        self.events.append(("start", total, description))

    def advance(self, description=None, n=1):
        self.events.append(("advance", n, description))


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    X, y, _ = make_lesion_images(40, size=16, seed=0)
    u8 = np.round(X[:, 0] * 255).astype(np.uint8)
    p = tmp_path_factory.mktemp("api") / "small.npz"
    np.savez(p, train_images=u8[:28], train_labels=y[:28], val_images=u8[28:], val_labels=y[28:],
             test_images=u8[:6], test_labels=y[:6])
    return p


@pytest.fixture(scope="module")
def result(npz):
    rec = Recorder()
    res = run_imaging(npz, arch="cnn", width=0.5, epochs=2, batch_size=16, n_boot=10, device="cpu",
                      embed_splits=["val", "test"], n_components=4, n_jobs=1, progress=rec)
    return res, rec


@pytest.mark.parametrize("kw, match", [
    ({"arch": "nonsense"}, "architecture"),
    ({"epochs": 0}, "epochs"),
    ({"lr": -1.0}, "lr"),
    ({"width": float("nan")}, "width"),
    ({"class_weight": "heavy"}, "class_weight"),
    ({"n_jobs": 0}, "n_jobs"),
    ({"device": "tpu9"}, "device"),
    ({"seed": -3}, "seed"),
    ({"embed_splits": "train"}, "embed_splits"),
])
def test_bad_options_are_refused_before_any_data_is_read(tmp_path, kw, match):
    # the data file does not even exist: the option error must come first
    with pytest.raises(OptionError, match=match):
        run_imaging(tmp_path / "absent.npz", **kw)


def test_missing_data_after_good_options(tmp_path):
    with pytest.raises(InputError, match="not found"):
        run_imaging(tmp_path / "absent.npz", arch="cnn")


def test_result_block_summary_and_progress(result):
    res, rec = result
    assert isinstance(res, ImagingResult) and res.domain == "imaging"
    block = res.to_block()
    assert block.data.shape == (18, 4)  # 12 val + 6 test images, 4 principal components
    assert block.data.index.name == "patient_id" and block.provenance["domain"] == "imaging"
    s = res.summary()
    json.dumps(s, allow_nan=False)
    assert s["n_train"] == 28 and s["n_val"] == 12 and s["epochs_run"] == 2 and "val_auroc" in s
    assert res.provenance["options"]["seed"] == 0 and res.provenance["options"]["n_jobs"] == 1
    assert {"torch", "monai"} <= set(res.provenance["versions"])
    starts = [e[2] for e in rec.events if e[0] == "start"]
    assert starts[0] == "imaging: reading images" and "training" in starts
    assert sum(e[1] for e in rec.events if e[0] == "advance") >= 2 + 2  # epochs + stages


def test_write_and_read_block(result, tmp_path):
    res, _ = result
    files = res.write(tmp_path / "out")
    for key in ("model", "config", "history", "training_curves", "val_predictions", "embedding", "provenance",
                "evaluation_metrics"):
        assert files[key].exists(), key
    back = imaging_read_block(tmp_path / "out")
    pd.testing.assert_frame_equal(back.data, res.embeddings, check_dtype=False, atol=1e-9)
    assert imaging_read_block(tmp_path / "out" / "embedding.csv") is not None
    assert imaging_read_block(tmp_path / "out" / "history.csv") is None
    # through the registry, and into a cohort
    block = read_block(tmp_path / "out")
    assert block.provenance["domain"] == "imaging"
    cohort = Cohort(pd.DataFrame({"age": np.arange(18.0)}, index=pd.Index(block.data.index, name="patient_id")))
    cohort.add_block(res.block_name, block)
    assert cohort.blocks["image_embedding"].data.shape == (18, 4)


def test_n_jobs_is_restored(npz):
    before = torch.get_num_threads()
    with pytest.raises(InputError):
        run_imaging(npz, arch="cnn", epochs=1, n_jobs=2, train_split="nosuch")
    assert torch.get_num_threads() == before
