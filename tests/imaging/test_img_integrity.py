"""Imaging model folders are sealed by SHA256SUMS; a failed training leaves no loadable model of its own (issue 16)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from img_fixtures import one_torch_thread  # noqa: E402, F401 (autouse fixture)

from pmed.errors import BundleError  # noqa: E402
from pmed.imaging.api import IN_PROGRESS  # noqa: E402
from pmed.imaging.synthetic import make_lesion_images  # noqa: E402
from pmed.imaging.train import CONFIG_NAME, MODEL_NAME, ImageClassifier  # noqa: E402
from pmed.study.bundle import SUMS_NAME  # noqa: E402

MODIFIED = "modified after it was written; retrain or restore it"


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    d = tmp_path_factory.mktemp("npz")
    X, y, _ = make_lesion_images(48, size=16, seed=0)
    Xv, yv, _ = make_lesion_images(16, size=16, seed=1)
    u8 = lambda a: np.round(a[:, 0] * 255).astype(np.uint8)  # noqa: E731
    np.savez(d / "lesions.npz", train_images=u8(X), train_labels=y[:, None], val_images=u8(Xv),
             val_labels=yv[:, None], test_images=u8(Xv), test_labels=yv[:, None])
    return d / "lesions.npz"


def _train(npz, out, progress=None, resume=False):
    from pmed.imaging.workflow import train_from_file

    return train_from_file(npz, out, arch="cnn", epochs=2, batch_size=16, evaluate=False, augment=False,
                           patience=None, progress=progress, resume=resume)


@pytest.fixture(scope="module")
def trained(npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("img") / "m"
    _train(npz, out)
    return out


def _copy(trained, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(trained, d)
    return d


def test_written_folder_is_sealed_and_loads(trained, npz, tmp_path):
    from pmed.imaging.workflow import predict_from_file

    listed = sorted(line.split("  ", 1)[1] for line in (trained / SUMS_NAME).read_text().splitlines())
    assert listed == [CONFIG_NAME, MODEL_NAME]
    d = _copy(trained, tmp_path)
    a = predict_from_file(trained, npz, tmp_path / "a.csv", split="val")
    b = predict_from_file(d, npz, tmp_path / "b.csv", split="val")
    assert a.equals(b) and len(a) == 16


@pytest.mark.parametrize("name", [MODEL_NAME, CONFIG_NAME])
def test_one_byte_edit_is_refused(trained, tmp_path, name):
    d = _copy(trained, tmp_path)
    data = bytearray((d / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (d / name).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"{name} does not match the SHA-256") as e:
        ImageClassifier.load(d)
    assert MODIFIED in str(e.value) and e.value.exit_code == 7


def test_semantic_config_edit_is_refused(trained, tmp_path):
    d = _copy(trained, tmp_path)
    cfg = json.loads((d / CONFIG_NAME).read_text())
    cfg["norm"]["mean"] = [0.9]
    (d / CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="config.json does not match"):
        ImageClassifier.load(d)


@pytest.mark.parametrize("name", [SUMS_NAME, MODEL_NAME])
def test_removed_file_is_refused(trained, tmp_path, name):
    d = _copy(trained, tmp_path)
    (d / name).unlink()
    with pytest.raises(BundleError, match=name):
        ImageClassifier.load(d)


def test_unlisted_model_file_is_refused(trained, tmp_path):
    d = _copy(trained, tmp_path)
    sums = d / SUMS_NAME
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines()
                            if not line.endswith(CONFIG_NAME)))
    with pytest.raises(BundleError, match="config.json is not covered"):
        ImageClassifier.load(d)


def test_cli_predict_refuses_an_edited_folder(trained, npz, tmp_path):
    from pmed.cli import main

    d = _copy(trained, tmp_path)
    with open(d / MODEL_NAME, "ab") as f:
        f.write(b"\0")
    rc = main(["imaging", "predict", "--model", str(d), "--data", str(npz), "--out", str(tmp_path / "p.csv"),
               "--split", "val"])
    assert rc == 7
    assert not (tmp_path / "p.csv").exists()


class _FailOnEpoch2:
    """A progress reporter that raises at the second epoch (as a crash mid-training would)."""

    def __init__(self) -> None:
        self.advances = 0

    def start(self, total, description=""):
        pass

    def advance(self, description=None, n=1):
        self.advances += 1
        if self.advances == 3:  # 1: images read, 2: epoch 1, 3: epoch 2
            raise KeyboardInterrupt  # not an Exception: nothing on the way may swallow it


def test_failed_training_in_fresh_folder_leaves_no_loadable_model(npz, tmp_path):
    out = tmp_path / "m"
    with pytest.raises(KeyboardInterrupt):
        _train(npz, out, progress=_FailOnEpoch2())
    assert not (out / SUMS_NAME).exists()
    with pytest.raises(BundleError):
        ImageClassifier.load(out)


def _files(d):
    """Relative path → bytes of every file under ``d`` but the running training's checkpoint."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and IN_PROGRESS not in p.relative_to(d).parts}


def test_failed_retraining_leaves_the_earlier_output_whole(trained, npz, tmp_path):
    """The output folder is staged and swapped (issue #16): a retraining that fails leaves the earlier
    output byte for byte, still sealed and loadable as the earlier run's model (its provenance says
    which), never a mix of the two runs; the failed run's checkpoint waits in ``.in-progress``."""
    d = _copy(trained, tmp_path)
    before = _files(d)
    with pytest.raises(KeyboardInterrupt):
        _train(npz, d, progress=_FailOnEpoch2())
    assert _files(d) == before
    ImageClassifier.load(d)
    assert (d / IN_PROGRESS / "checkpoint.pt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging folder left beside it
    # --resume continues the interrupted run; its output then replaces the folder whole
    s = _train(npz, d, resume=True)
    assert s["epochs_run"] == 2 and not (d / IN_PROGRESS).exists()
    assert json.loads((d / "provenance.json").read_text())["options"]["resume"] is True


def test_failed_write_after_training_leaves_no_loadable_model(npz, tmp_path, monkeypatch):
    import pmed.io

    def boom(*a, **k):
        raise OSError("disk full")

    out = tmp_path / "m"
    monkeypatch.setattr(pmed.io, "write_table", boom)  # the first output written after training
    with pytest.raises(OSError, match="disk full"):
        _train(npz, out)
    assert not (out / MODEL_NAME).exists() and not (out / SUMS_NAME).exists()
